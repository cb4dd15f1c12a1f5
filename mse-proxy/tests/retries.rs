//! The exchange's timeouts and retries (`timeout`, `proxy-read-timeout`,
//! `proxy-next-upstream*`): real gateways and loopback backends that count the requests
//! they get.
#![cfg(test)]

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const HOST: &str = "retry.example.com";

/// A keep-alive HTTP/1.1 backend answering every request with `status` and the request's
/// body; counts the requests it got.
struct Backend {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
}

impl Backend {
    async fn start(status: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&hits);
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                tokio::spawn(serve(s, status, Arc::clone(&counter)));
            }
        });
        Self { addr, hits }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// Serves requests on one connection until the gateway closes it.
async fn serve(mut s: TcpStream, status: u16, hits: Arc<AtomicUsize>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(0, |v| v.trim().parse().unwrap());
        // A chunked body (the tests send small ones) ends with its last chunk.
        let chunked = head.contains("transfer-encoding: chunked");
        let done = |buf: &[u8]| match chunked {
            true => buf[end..]
                .windows(5)
                .position(|w| w == b"0\r\n\r\n")
                .map(|i| end + i + 5),
            false => (buf.len() >= end + len).then_some(end + len),
        };
        let stop = loop {
            if let Some(stop) = done(&buf) {
                break stop;
            }
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let body: Vec<u8> = buf.drain(..stop).skip(end).collect();
        hits.fetch_add(1, Ordering::SeqCst);
        let head = format!(
            "HTTP/1.1 {status} X\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        if s.write_all(head.as_bytes()).await.is_err() || s.write_all(&body).await.is_err() {
            return;
        }
    }
}

/// A backend that takes connections and requests and never answers.
async fn silent() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    addr
}

/// An address nothing listens on.
async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

/// Ingress `r` for [`HOST`] with `annotations`, to a Service with `endpoints`.
fn routed(annotations: &[(&str, &str)], endpoints: &[SocketAddr]) -> String {
    let mut y = annotate(
        &ingress("r", Some(HOST), &[("/", "Prefix", "svc")]),
        annotations,
    );
    y.push_str(&service("svc", endpoints));
    y
}

/// Sends `n` requests made by `make` on one connection; the statuses.
async fn statuses(
    addr: SocketAddr,
    n: usize,
    make: impl Fn() -> Request<Full<Bytes>>,
) -> Vec<StatusCode> {
    let mut tx = h1(addr).await;
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(send1(&mut tx, make()).await.status);
    }
    out
}

fn post(body: &'static str) -> Request<Full<Bytes>> {
    Request::post("/upload")
        .header("host", HOST)
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap()
}

#[tokio::test]
async fn a_backend_that_never_answers_gets_504_within_the_route_timeout() {
    let addr = silent().await;
    for key in [("higress.io/timeout", "1"), ("proxy-read-timeout", "1")] {
        let (g, _) = gateway_with(&routed(&[key], &[addr]), |c| {
            // The gateway-wide wait is far longer than the route's.
            c.timeouts.upstream_response = std::time::Duration::from_secs(600);
        });
        let reply = get(http_addr(&g), HOST, "/").await;
        assert_eq!(reply.status, StatusCode::GATEWAY_TIMEOUT, "{key:?}");
    }
}

#[tokio::test]
async fn a_closed_port_is_retried_on_another_endpoint_when_asked() {
    let up = Backend::start(200).await;
    let endpoints = [closed_port().await, up.addr];
    let (g, _) = gateway(&routed(&[("proxy-next-upstream", "error")], &endpoints));
    let got = statuses(http_addr(&g), 6, || get_req(HOST, "/")).await;
    assert!(got.iter().all(|s| *s == StatusCode::OK), "{got:?}");
    assert_eq!(up.hits(), 6);
    // Without the keys too, as ingress-nginx's default `error timeout` does: nothing of
    // the request went out, so it goes to the other endpoint.
    let (g, _) = gateway(&routed(&[], &endpoints));
    let got = statuses(http_addr(&g), 6, || get_req(HOST, "/")).await;
    assert!(got.iter().all(|s| *s == StatusCode::OK), "{got:?}");
    assert_eq!(up.hits(), 12);
    // Only `off` keeps the failure: round robin sends every other request to the closed
    // port.
    let (g, _) = gateway(&routed(&[("proxy-next-upstream", "off")], &endpoints));
    let got = statuses(http_addr(&g), 6, || get_req(HOST, "/")).await;
    assert!(got.contains(&StatusCode::BAD_GATEWAY), "{got:?}");
}

#[tokio::test]
async fn a_503_is_retried_only_when_its_status_is_named() {
    let failing = Backend::start(503).await;
    let up = Backend::start(200).await;
    let endpoints = [failing.addr, up.addr];
    let asked = routed(
        &[("proxy-next-upstream", "error timeout http_503")],
        &endpoints,
    );
    let (g, _) = gateway(&asked);
    let got = statuses(http_addr(&g), 6, || get_req(HOST, "/")).await;
    assert!(got.iter().all(|s| *s == StatusCode::OK), "{got:?}");
    assert!(failing.hits() > 0);
    let (g, _) = gateway(&routed(
        &[("proxy-next-upstream", "error http_502")],
        &endpoints,
    ));
    let got = statuses(http_addr(&g), 6, || get_req(HOST, "/")).await;
    assert!(got.contains(&StatusCode::SERVICE_UNAVAILABLE), "{got:?}");
}

#[tokio::test]
async fn a_post_is_retried_only_with_non_idempotent() {
    let failing = Backend::start(502).await;
    let up = Backend::start(200).await;
    let endpoints = [failing.addr, up.addr];
    let (g, _) = gateway(&routed(&[("proxy-next-upstream", "http_502")], &endpoints));
    let got = statuses(http_addr(&g), 6, || post("payload")).await;
    assert!(got.contains(&StatusCode::BAD_GATEWAY), "{got:?}");
    assert_eq!(failing.hits() + up.hits(), 6, "a POST went out once each");

    let asked = routed(
        &[("proxy-next-upstream", "http_502 non_idempotent")],
        &endpoints,
    );
    let (g, _) = gateway(&asked);
    let mut tx = h1(http_addr(&g)).await;
    for _ in 0..6 {
        let reply = send1(&mut tx, post("payload")).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(
            reply.body, "payload",
            "the buffered body is sent again whole"
        );
    }
}

#[tokio::test]
async fn tries_bound_the_attempts() {
    let all = [
        Backend::start(503).await,
        Backend::start(503).await,
        Backend::start(503).await,
    ];
    let endpoints: Vec<_> = all.iter().map(|b| b.addr).collect();
    let annotations = [
        ("proxy-next-upstream", "http_503"),
        ("proxy-next-upstream-tries", "2"),
    ];
    let (g, _) = gateway(&routed(&annotations, &endpoints));
    let got = statuses(http_addr(&g), 5, || get_req(HOST, "/")).await;
    assert!(
        got.iter().all(|s| *s == StatusCode::SERVICE_UNAVAILABLE),
        "{got:?}"
    );
    let hits: usize = all.iter().map(Backend::hits).sum();
    assert_eq!(hits, 10, "two attempts per request");
}

#[tokio::test]
async fn retries_stay_within_the_budget_under_continuous_failure() {
    let all = [Backend::start(503).await, Backend::start(503).await];
    let endpoints: Vec<_> = all.iter().map(|b| b.addr).collect();
    let annotations = [
        ("proxy-next-upstream", "http_503"),
        ("proxy-next-upstream-tries", "2"),
    ];
    let (g, shared) = gateway(&routed(&annotations, &endpoints));
    let n = 400;
    let got = statuses(http_addr(&g), n, || get_req(HOST, "/")).await;
    assert!(got.iter().all(|s| *s == StatusCode::SERVICE_UNAVAILABLE));
    let retries = all.iter().map(Backend::hits).sum::<usize>() - n;
    // 20 % of the requests plus 10 per worker (two workers), with a little tolerance;
    // without a budget every request would have been retried.
    assert!(retries > 0, "some requests were retried");
    assert!(
        retries <= n / 5 + 2 * 10 + 5,
        "{retries} retries for {n} requests"
    );
    let m = shared.metrics();
    assert_eq!(m.upstream_retries(), retries as u64);
    assert_eq!(m.upstream_retries_over_budget(), (n - retries) as u64);
}

#[tokio::test]
async fn the_gateway_wide_route_timeout_bounds_routes_without_their_own() {
    let addr = silent().await;
    let higress = "---\napiVersion: v1\nkind: ConfigMap\nmetadata: { name: higress-config, namespace: ingress }\ndata:\n  higress: |\n    downstream:\n      routeTimeout: 1\n";
    let yaml = format!("{}{higress}", routed(&[], &[addr]));
    let table = compile_yaml_with(&yaml, &configmap_options());
    let (g, _) = gateway_serving(table, |c| {
        c.timeouts.upstream_response = std::time::Duration::from_secs(600);
    });
    let reply = get(http_addr(&g), HOST, "/").await;
    assert_eq!(reply.status, StatusCode::GATEWAY_TIMEOUT);
}

#[tokio::test]
async fn http2_clients_are_retried_too() {
    let up = Backend::start(200).await;
    let endpoints = [closed_port().await, up.addr];
    let (g, _) = gateway(&routed(&[("proxy-next-upstream", "error")], &endpoints));
    let mut tx = h2c(http_addr(&g)).await;
    for _ in 0..4 {
        let req = Request::get(format!("http://{HOST}/"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        assert_eq!(send2(&mut tx, req).await.status, StatusCode::OK);
    }
    assert_eq!(up.hits(), 4);
}

#[tokio::test]
async fn a_timeout_is_retried_on_another_endpoint_when_named() {
    let up = Backend::start(200).await;
    let endpoints = [silent().await, up.addr];
    let annotations = [
        ("proxy-next-upstream", "timeout"),
        ("proxy-read-timeout", "1"),
    ];
    let (g, _) = gateway(&routed(&annotations, &endpoints));
    let got = statuses(http_addr(&g), 2, || get_req(HOST, "/")).await;
    assert_eq!(got, [StatusCode::OK, StatusCode::OK]);
    assert_eq!(up.hits(), 2);
}

#[tokio::test]
async fn a_streaming_body_is_never_retried() {
    let failing = Backend::start(502).await;
    let up = Backend::start(200).await;
    let endpoints = [failing.addr, up.addr];
    let asked = routed(
        &[("proxy-next-upstream", "http_502 non_idempotent")],
        &endpoints,
    );
    let (g, _) = gateway(&asked);
    // A chunked body has no declared length: it streams, once.
    let chunked = format!(
        "POST /upload HTTP/1.1\r\nhost: {HOST}\r\ntransfer-encoding: chunked\r\n\r\n7\r\npayload\r\n0\r\n\r\n"
    );
    let mut answers = Vec::new();
    for _ in 0..4 {
        answers.push(raw(http_addr(&g), chunked.as_bytes()).await);
    }
    assert!(
        answers.iter().any(|a| a.starts_with("HTTP/1.1 502 ")),
        "{answers:?}"
    );
    assert_eq!(failing.hits() + up.hits(), 4, "each body went out once");
}

#[tokio::test]
async fn a_least_conn_route_retries_on_endpoints_not_tried_yet() {
    let all = [
        Backend::start(503).await,
        Backend::start(503).await,
        Backend::start(200).await,
    ];
    let endpoints: Vec<_> = all.iter().map(|b| b.addr).collect();
    let annotations = [
        ("load-balance", "least_conn"),
        ("proxy-next-upstream", "http_503"),
        ("proxy-next-upstream-tries", "0"),
    ];
    let (g, _) = gateway(&routed(&annotations, &endpoints));
    let n = 6;
    let got = statuses(http_addr(&g), n, || get_req(HOST, "/")).await;
    assert!(got.iter().all(|s| *s == StatusCode::OK), "{got:?}");
    assert_eq!(all[2].hits(), n);
    // No endpoint twice for one request: at most the two failing ones before it.
    assert!(all[0].hits() + all[1].hits() <= 2 * n);
}
