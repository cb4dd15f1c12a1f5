//! OpenTelemetry spans end to end: real requests through a real gateway, the spans
//! received by an OTLP/gRPC collector on loopback (a tonic server for the collector's
//! `TraceService/Export`), the `traceparent` the upstream saw, and the span counters.
#![cfg(test)]

mod support;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use http::{Request, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use mse_proxy::echo::EchoServer;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use support::*;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tonic::Status;
use tonic::server::{Grpc, UnaryService};
use tonic_prost::ProstCodec;

/// What the collector received: the service name of each batch and its spans.
#[derive(Clone, Default)]
struct Received {
    spans: Arc<Mutex<Vec<(String, Span)>>>,
    arrived: Arc<Notify>,
}

impl Received {
    fn spans(&self) -> Vec<(String, Span)> {
        self.spans.lock().unwrap().clone()
    }

    /// Waits until `n` spans arrived.
    async fn wait_for(&self, n: usize) -> Vec<(String, Span)> {
        bounded("spans arriving at the collector", async {
            loop {
                let notified = self.arrived.notified();
                let spans = self.spans();
                if spans.len() >= n {
                    return spans;
                }
                notified.await;
            }
        })
        .await
    }
}

type Answer = Pin<
    Box<dyn Future<Output = Result<tonic::Response<ExportTraceServiceResponse>, Status>> + Send>,
>;

struct Export(Received);

impl UnaryService<ExportTraceServiceRequest> for Export {
    type Response = ExportTraceServiceResponse;
    type Future = Answer;

    fn call(&mut self, request: tonic::Request<ExportTraceServiceRequest>) -> Self::Future {
        let received = self.0.clone();
        Box::pin(async move {
            for rs in request.into_inner().resource_spans {
                let service = rs
                    .resource
                    .iter()
                    .flat_map(|r| &r.attributes)
                    .find(|kv| kv.key == "service.name")
                    .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                        Value::StringValue(s) => Some(s.clone()),
                        _ => None,
                    })
                    .unwrap_or_default();
                for ss in rs.scope_spans {
                    for span in ss.spans {
                        received.spans.lock().unwrap().push((service.clone(), span));
                    }
                }
            }
            received.arrived.notify_waiters();
            Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
        })
    }
}

/// An OTLP/gRPC collector on a free loopback port.
async fn collector() -> (SocketAddr, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Received::default();
    let r = received.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let r = r.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<Incoming>| {
                    let r = r.clone();
                    async move {
                        let mut grpc = Grpc::new(ProstCodec::<
                            ExportTraceServiceResponse,
                            ExportTraceServiceRequest,
                        >::default());
                        let answer = match req.uri().path() {
                            "/opentelemetry.proto.collector.trace.v1.TraceService/Export" => {
                                grpc.unary(Export(r), req).await
                            }
                            _ => Status::unimplemented("no such method").into_http(),
                        };
                        Ok::<_, Infallible>(answer)
                    }
                });
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, received)
}

fn traced_yaml(a: &EchoServer, config: &[(&str, &str)]) -> String {
    [
        ingress(
            "traced",
            Some("traced.example.com"),
            &[("/traced", "Prefix", "svc-a")],
        ),
        service("svc-a", &[a.addr()]),
        gateway_config_map(config),
    ]
    .concat()
}

fn otel_config(collector: SocketAddr, ratio: &str) -> Vec<(&'static str, String)> {
    vec![
        ("enable-opentelemetry", "true".to_owned()),
        ("otlp-collector-host", collector.ip().to_string()),
        ("otlp-collector-port", collector.port().to_string()),
        ("otel-sampler-ratio", ratio.to_owned()),
        ("otel-service-name", "edge".to_owned()),
    ]
}

fn as_pairs<'a>(v: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    v.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn attr<'a>(span: &'a Span, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

fn text_attr<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
    match attr(span, key)? {
        Value::StringValue(s) => Some(s),
        _ => None,
    }
}

fn int_attr(span: &Span, key: &str) -> Option<i64> {
    match attr(span, key)? {
        Value::IntValue(i) => Some(*i),
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The value of `name{labels}` in an OpenMetrics text, 0 when it is absent.
fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0)
}

/// Waits until `n` spans are counted as exported; fails past `n`.
async fn exported(t: &mse_proxy::SharedTable, n: u64) {
    let scrape = bounded("spans counted as exported", async {
        loop {
            let s = t.metrics().encode();
            if metric(&s, "mse_tracing_spans_exported_total ") >= n {
                return s;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(metric(&scrape, "mse_tracing_spans_exported_total "), n);
}

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

#[tokio::test]
async fn a_traced_request_is_exported_as_a_child_of_the_client_span_and_parents_the_upstream() {
    let (addr, received) = collector().await;
    let a = EchoServer::bind(SocketAddr::from(([127, 0, 0, 1], 0)), "a")
        .await
        .unwrap();
    let config = otel_config(addr, "0");
    let table = compile_yaml_with(&traced_yaml(&a, &as_pairs(&config)), &configmap_options());
    let (gw, t) = gateway_serving(table, |_| {});
    let mut tx = h1(http_addr(&gw)).await;
    // Sampled by the client: the parent-based sampler follows it even at ratio 0.
    let parent = format!("00-{TRACE_ID}-{CLIENT_SPAN}-01");
    let r = send1(
        &mut tx,
        request(
            "traced.example.com",
            "POST",
            "/traced/orders?id=7",
            &[("traceparent", &parent), ("tracestate", "vendor=abc")],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let spans = received.wait_for(1).await;
    assert_eq!(spans.len(), 1, "{spans:?}");
    let (service, span) = &spans[0];
    assert_eq!(service, "edge");
    assert_eq!(hex(&span.trace_id), TRACE_ID);
    assert_eq!(hex(&span.parent_span_id), CLIENT_SPAN);
    assert_eq!(span.span_id.len(), 8);
    assert_ne!(hex(&span.span_id), CLIENT_SPAN);
    assert_eq!(span.trace_state, "vendor=abc");
    // The upstream's parent is the gateway's span, in the client's trace.
    let upstream_saw = r
        .echoed_header("traceparent")
        .expect("traceparent upstream");
    assert_eq!(
        upstream_saw,
        format!("00-{TRACE_ID}-{}-01", hex(&span.span_id))
    );
    assert_eq!(r.echoed_header("tracestate").as_deref(), Some("vendor=abc"));
    // Attributes after the HTTP semantic conventions, and the route's.
    assert_eq!(span.name, "POST /traced");
    assert_eq!(span.kind, 2, "SPAN_KIND_SERVER");
    assert_eq!(text_attr(span, "http.request.method"), Some("POST"));
    assert_eq!(text_attr(span, "http.route"), Some("/traced"));
    assert_eq!(int_attr(span, "http.response.status_code"), Some(200));
    assert_eq!(text_attr(span, "url.path"), Some("/traced/orders"));
    assert_eq!(text_attr(span, "url.query"), Some("id=7"));
    assert_eq!(text_attr(span, "url.scheme"), Some("http"));
    assert_eq!(
        text_attr(span, "server.address"),
        Some("traced.example.com")
    );
    assert_eq!(text_attr(span, "client.address"), Some("127.0.0.1"));
    assert_eq!(text_attr(span, "k8s.namespace.name"), Some("default"));
    assert_eq!(text_attr(span, "k8s.ingress.name"), Some("traced"));
    assert_eq!(text_attr(span, "k8s.service.name"), Some("svc-a"));
    assert_eq!(int_attr(span, "k8s.service.port"), Some(80));
    assert_eq!(text_attr(span, "upstream.name"), Some("default-svc-a-80"));
    let upstream = a.addr().to_string();
    assert_eq!(text_attr(span, "upstream.address"), Some(upstream.as_str()));
    assert_eq!(int_attr(span, "upstream.status_code"), Some(200));
    assert!(span.status.is_none(), "a 200 is no error");
    assert!(span.end_time_unix_nano >= span.start_time_unix_nano);
    assert!(span.start_time_unix_nano > 0);
    // Counted as exported (once the collector's answer is in).
    exported(&t, 1).await;
    gw.shutdown().await;
}

#[tokio::test]
async fn a_new_trace_starts_at_the_gateway_at_ratio_one() {
    let (addr, received) = collector().await;
    let a = EchoServer::bind(SocketAddr::from(([127, 0, 0, 1], 0)), "a")
        .await
        .unwrap();
    let config = otel_config(addr, "1");
    let table = compile_yaml_with(&traced_yaml(&a, &as_pairs(&config)), &configmap_options());
    let (gw, _t) = gateway_serving(table, |_| {});
    let mut tx = h1(http_addr(&gw)).await;
    let r = send1(&mut tx, get_req("traced.example.com", "/traced/x")).await;
    assert_eq!(r.status, StatusCode::OK);
    // No route: a span without route attributes, and a 404.
    let r404 = send1(&mut tx, get_req("nowhere.example.com", "/x")).await;
    assert_eq!(r404.status, StatusCode::NOT_FOUND);
    let spans = received.wait_for(2).await;
    let routed = spans
        .iter()
        .map(|(_, s)| s)
        .find(|s| text_attr(s, "url.path") == Some("/traced/x"))
        .expect("the routed request's span");
    assert!(routed.parent_span_id.is_empty(), "a root span");
    assert_eq!(routed.trace_id.len(), 16);
    let upstream_saw = r
        .echoed_header("traceparent")
        .expect("traceparent upstream");
    assert_eq!(
        upstream_saw,
        format!("00-{}-{}-01", hex(&routed.trace_id), hex(&routed.span_id))
    );
    assert_eq!(r.echoed_header("tracestate"), None);
    let unrouted = spans
        .iter()
        .map(|(_, s)| s)
        .find(|s| text_attr(s, "url.path") == Some("/x"))
        .expect("the unrouted request's span");
    assert_eq!(unrouted.name, "GET");
    assert_eq!(int_attr(unrouted, "http.response.status_code"), Some(404));
    assert_eq!(text_attr(unrouted, "http.route"), None);
    gw.shutdown().await;
}

#[tokio::test]
async fn ratio_zero_exports_nothing_and_leaves_the_headers_alone() {
    let (addr, received) = collector().await;
    let a = EchoServer::bind(SocketAddr::from(([127, 0, 0, 1], 0)), "a")
        .await
        .unwrap();
    let config = otel_config(addr, "0");
    let table = compile_yaml_with(&traced_yaml(&a, &as_pairs(&config)), &configmap_options());
    let (gw, t) = gateway_serving(table, |_| {});
    let mut tx = h1(http_addr(&gw)).await;
    for _ in 0..20 {
        let r = send1(&mut tx, get_req("traced.example.com", "/traced/quiet")).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.echoed_header("traceparent"), None);
    }
    // A client's unsampled trace is followed too: not sampled, passed on unchanged.
    let unsampled = format!("00-{TRACE_ID}-{CLIENT_SPAN}-00");
    let r = send1(
        &mut tx,
        request(
            "traced.example.com",
            "GET",
            "/traced/quiet",
            &[("traceparent", &unsampled)],
        ),
    )
    .await;
    assert_eq!(r.echoed_header("traceparent"), Some(unsampled));
    // Then one sampled request: once its span arrived, nothing came before it.
    let parent = format!("00-{TRACE_ID}-{CLIENT_SPAN}-01");
    let r = send1(
        &mut tx,
        request(
            "traced.example.com",
            "GET",
            "/traced/marker",
            &[("traceparent", &parent)],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let spans = received.wait_for(1).await;
    gw.shutdown().await;
    let paths: Vec<_> = received
        .spans()
        .iter()
        .map(|(_, s)| text_attr(s, "url.path").unwrap_or("").to_owned())
        .collect();
    assert_eq!(paths, vec!["/traced/marker"], "{spans:?}");
    exported(&t, 1).await;
}

#[tokio::test]
async fn an_untrusted_incoming_span_starts_a_new_trace() {
    let (addr, received) = collector().await;
    let a = EchoServer::bind(SocketAddr::from(([127, 0, 0, 1], 0)), "a")
        .await
        .unwrap();
    let mut config = otel_config(addr, "1");
    config.push(("opentelemetry-trust-incoming-span", "false".to_owned()));
    let table = compile_yaml_with(&traced_yaml(&a, &as_pairs(&config)), &configmap_options());
    let (gw, _t) = gateway_serving(table, |_| {});
    let mut tx = h1(http_addr(&gw)).await;
    let parent = format!("00-{TRACE_ID}-{CLIENT_SPAN}-01");
    let r = send1(
        &mut tx,
        request(
            "traced.example.com",
            "GET",
            "/traced/x",
            &[("traceparent", &parent), ("tracestate", "vendor=abc")],
        ),
    )
    .await;
    let spans = received.wait_for(1).await;
    let span = &spans[0].1;
    assert_ne!(hex(&span.trace_id), TRACE_ID);
    assert!(span.parent_span_id.is_empty());
    assert_eq!(
        r.echoed_header("traceparent"),
        Some(format!(
            "00-{}-{}-01",
            hex(&span.trace_id),
            hex(&span.span_id)
        ))
    );
    assert_eq!(r.echoed_header("tracestate"), None);
    gw.shutdown().await;
}

#[tokio::test]
async fn a_dead_collector_never_holds_requests_and_its_spans_are_counted_as_dropped() {
    // A port nothing listens on.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let a = EchoServer::bind(SocketAddr::from(([127, 0, 0, 1], 0)), "a")
        .await
        .unwrap();
    let config = otel_config(dead, "1");
    let table = compile_yaml_with(&traced_yaml(&a, &as_pairs(&config)), &configmap_options());
    let (gw, t) = gateway_serving(table, |_| {});
    let mut tx = h1(http_addr(&gw)).await;
    const N: u64 = 50;
    for _ in 0..N {
        let r = send1(&mut tx, get_req("traced.example.com", "/traced/x")).await;
        assert_eq!(r.status, StatusCode::OK);
    }
    // Every span is accounted for: dropped, none exported.
    let dropped = |s: &str| {
        metric(
            s,
            "mse_tracing_spans_dropped_total{reason=\"export_failed\"} ",
        ) + metric(s, "mse_tracing_spans_dropped_total{reason=\"queue_full\"} ")
    };
    let scrape = bounded("spans counted as dropped", async {
        loop {
            let s = t.metrics().encode();
            if dropped(&s) >= N {
                return s;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(dropped(&scrape), N, "{scrape}");
    assert_eq!(metric(&scrape, "mse_tracing_spans_exported_total "), 0);
    gw.shutdown().await;
}

#[tokio::test]
async fn a_collector_that_never_answers_never_holds_requests() {
    // Accepts connections and never reads from them.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent = listener.local_addr().unwrap();
    let held = Arc::new(Mutex::new(Vec::new()));
    let h = Arc::clone(&held);
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            h.lock().unwrap().push(s);
        }
    });
    let a = EchoServer::bind(SocketAddr::from(([127, 0, 0, 1], 0)), "a")
        .await
        .unwrap();
    let config = otel_config(silent, "1");
    let table = compile_yaml_with(&traced_yaml(&a, &as_pairs(&config)), &configmap_options());
    let (gw, t) = gateway_serving(table, |_| {});
    let mut tx = h1(http_addr(&gw)).await;
    // Each request is bounded (support::send1): none waits on the stuck export.
    for _ in 0..200 {
        let r = send1(&mut tx, get_req("traced.example.com", "/traced/x")).await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let scrape = t.metrics().encode();
    assert_eq!(metric(&scrape, "mse_tracing_spans_exported_total "), 0);
    gw.shutdown().await;
}
