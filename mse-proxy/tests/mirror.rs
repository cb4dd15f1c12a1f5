//! End to end over loopback: `mirror-target-service`, `mirror-target-fqdn` and
//! `mirror-percentage`. The mirror gets a copy of the request as the main backend got it,
//! the client's answer comes from the main backend only, and a mirror that never answers
//! does not slow the client down.
#![cfg(test)]

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use mse_proxy::Metrics;
use support::*;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// An Ingress for `host` routed to Service `svc`, with these annotations (names without
/// prefix).
fn annotated(name: &str, host: &str, svc: &str, annotations: &[(&str, &str)]) -> String {
    annotate(
        &ingress(name, Some(host), &[("/", "Prefix", svc)]),
        annotations,
    )
}

/// What a [`Recorder`] received.
#[derive(Clone, Debug)]
struct Seen {
    method: Method,
    /// Path and query.
    target: String,
    headers: HeaderMap,
    body: Bytes,
}

/// A backend that records every request and answers `200 mirror`.
struct Recorder {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: JoinHandle<()>,
}

impl Recorder {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let log = Arc::clone(&seen);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let log = Arc::clone(&log);
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let log = Arc::clone(&log);
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body.collect().await.map(|b| b.to_bytes());
                            log.lock().unwrap().push(Seen {
                                method: parts.method,
                                target: parts
                                    .uri
                                    .path_and_query()
                                    .map(|p| p.as_str().to_owned())
                                    .unwrap_or_default(),
                                headers: parts.headers,
                                body: body.unwrap_or_default(),
                            });
                            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(
                                b"mirror",
                            ))))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Self { addr, seen, task }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits until `n` requests were recorded.
    async fn wait_for(&self, n: usize) -> Vec<Seen> {
        bounded("waiting for the mirror", async {
            loop {
                let seen = self.seen();
                if seen.len() >= n {
                    return seen;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A listener that accepts connections and never reads from them nor answers; the
/// counter says how many it accepted.
async fn black_hole() -> (SocketAddr, Arc<AtomicUsize>, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::Relaxed);
            held.push(stream);
        }
    });
    (addr, accepted, task)
}

fn post(host: &str, path: &str, body: impl Into<Bytes>) -> Request<Full<Bytes>> {
    Request::post(path)
        .header("host", host)
        .header("x-custom", "abc")
        .header("content-type", "text/plain")
        .body(Full::new(body.into()))
        .expect("request")
}

/// Mirror copies finished (answered, failed or skipped).
fn settled(m: &Metrics) -> u64 {
    m.mirrored() + m.mirror_failed() + m.mirror_skipped()
}

#[tokio::test]
async fn the_mirror_gets_what_the_backend_got_and_the_client_gets_the_backend_answer() {
    let main = echo("main").await;
    let shadow = Recorder::start().await;
    let fqdn = Recorder::start().await;
    let yaml = [
        annotated(
            "shop",
            "shop.example.com",
            "main",
            &[
                ("mirror-target-service", "shadow"),
                ("rewrite-path", "/v2"),
                ("request-header-control-add", "x-added 1"),
            ],
        ),
        annotated(
            "named",
            "named.example.com",
            "main",
            &[
                ("mirror-target-fqdn", "localhost"),
                ("mirror-target-fqdn-port", &fqdn.addr.port().to_string()),
            ],
        ),
        service("main", &[main.addr()]),
        service("shadow", &[shadow.addr]),
    ]
    .concat();
    let (gw, table) = gateway(&yaml);
    let addr = http_addr(&gw);
    let mut tx = h1(addr).await;

    let r = send1(
        &mut tx,
        post("shop.example.com", "/items?q=1", "hello mirror"),
    )
    .await;
    assert_eq!((r.status, r.service()), (StatusCode::OK, "main"));
    let echoed = r.json();
    assert_eq!(echoed["path"], "/v2/items");
    let seen = shadow.wait_for(1).await;
    let copy = &seen[0];
    assert_eq!(copy.method, Method::POST);
    assert_eq!(copy.target, "/v2/items?q=1", "the target after the rewrite");
    assert_eq!(copy.body, "hello mirror");
    // Every header the backend saw, the mirror saw with the same value (Host included).
    let headers = echoed["headers"].as_object().expect("headers");
    for name in [
        "host",
        "x-custom",
        "x-added",
        "content-type",
        "content-length",
        "x-forwarded-for",
        "x-real-ip",
        "x-forwarded-host",
        "x-forwarded-proto",
    ] {
        assert_eq!(
            copy.headers.get(name).and_then(|v| v.to_str().ok()),
            headers[name].as_str(),
            "{name}"
        );
    }
    assert_eq!(copy.headers["host"], "shop.example.com");

    // A larger body streamed in chunks reaches both whole; a GET has no body.
    let big = Bytes::from(vec![b'b'; 100 * 1024]);
    let r = send1(&mut tx, post("shop.example.com", "/big", big.clone())).await;
    assert_eq!(r.json()["body_bytes"], 100 * 1024);
    let r = send1(&mut tx, get_req("shop.example.com", "/plain")).await;
    assert_eq!((r.status, r.service()), (StatusCode::OK, "main"));
    let seen = shadow.wait_for(3).await;
    assert_eq!(seen[1].body, big);
    assert_eq!(
        (seen[2].method.clone(), seen[2].body.len()),
        (Method::GET, 0)
    );
    assert_eq!(seen[2].target, "/v2/plain");

    // A mirror named by DNS.
    let r = send1(&mut tx, get_req("named.example.com", "/by-name")).await;
    assert_eq!((r.status, r.service()), (StatusCode::OK, "main"));
    let seen = fqdn.wait_for(1).await;
    assert_eq!(seen[0].target, "/by-name");
    assert_eq!(seen[0].headers["host"], "named.example.com");

    let metrics = table.metrics();
    bounded("counting", async {
        while metrics.mirrored() < 4 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert_eq!(metrics.mirror_failed(), 0);
    let text = metrics.encode();
    assert!(
        text.contains("mse_mirror_requests_total{result=\"mirrored\"} 4"),
        "{text}"
    );
    let routes = table.routes();
    let not_applied: Vec<_> = routes
        .diagnostics()
        .iter()
        .filter(|d| d.code == "not-applied")
        .filter_map(|d| d.origin.key.as_deref())
        .collect();
    assert!(
        not_applied.iter().all(|k| !k.contains("mirror")),
        "{not_applied:?}"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn a_mirror_that_never_answers_does_not_slow_the_client() {
    let main = echo("main").await;
    let (hole, accepted, _task) = black_hole().await;
    let yaml = [
        annotated(
            "shop",
            "shop.example.com",
            "main",
            &[
                ("mirror-target-service", "default/hole:80"),
                // Above the 16 MiB upload below (the default is 1m).
                ("proxy-body-size", "32m"),
            ],
        ),
        service("main", &[main.addr()]),
        service("hole", &[hole]),
    ]
    .concat();
    // Copies time out after the upstream response timeout: an hour here, so that a client
    // request held back by its copy never completes, and a failed copy is one abandoned,
    // not one timed out.
    let (gw, table) = gateway_with(&yaml, |c| {
        c.timeouts.upstream_response = Duration::from_secs(3600);
    });
    let mut tx = h1(http_addr(&gw)).await;
    for i in 0..20 {
        let r = send1(&mut tx, get_req("shop.example.com", &format!("/{i}"))).await;
        assert_eq!((r.status, r.service()), (StatusCode::OK, "main"));
    }
    // A body far larger than the copy's buffer, which the mirror never reads: the copy is
    // abandoned, the upstream request is not held back.
    for size in [1024, 16 * 1024 * 1024] {
        let body = Bytes::from(vec![b'x'; size]);
        let r = send1(&mut tx, post("shop.example.com", "/upload", body)).await;
        assert_eq!((r.status, r.service()), (StatusCode::OK, "main"));
        assert_eq!(r.json()["body_bytes"], size);
    }
    let metrics = table.metrics();
    assert_eq!(metrics.mirrored(), 0);
    assert!(accepted.load(Ordering::Relaxed) > 0, "copies were sent");
    // The large upload's copy was abandoned: no copy can have timed out yet.
    bounded("the copy of the large upload failing", async {
        while metrics.mirror_failed() == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    gw.shutdown().await;
}

#[tokio::test]
async fn mirror_percentage_samples_requests() {
    let main = echo("main").await;
    let half = echo("half").await;
    let none = echo("none").await;
    let yaml = [
        annotated(
            "half",
            "half.example.com",
            "main",
            &[
                ("mirror-target-service", "half"),
                ("mirror-percentage", "50"),
            ],
        ),
        annotated(
            "none",
            "none.example.com",
            "main",
            &[
                ("mirror-target-service", "none"),
                ("mirror-percentage", "0"),
            ],
        ),
        // The mirror Service does not exist: a warning, and requests are served unmirrored.
        annotated(
            "missing",
            "missing.example.com",
            "main",
            &[("mirror-target-service", "nowhere")],
        ),
        service("main", &[main.addr()]),
        service("half", &[half.addr()]),
        service("none", &[none.addr()]),
    ]
    .concat();
    let (gw, table) = gateway(&yaml);
    let mut tx = h1(http_addr(&gw)).await;
    const N: u64 = 400;
    for i in 0..N {
        for host in ["half.example.com", "none.example.com"] {
            let r = send1(&mut tx, get_req(host, &format!("/{i}"))).await;
            assert_eq!((r.status, r.service()), (StatusCode::OK, "main"));
        }
    }
    let r = send1(&mut tx, get_req("missing.example.com", "/")).await;
    assert_eq!((r.status, r.service()), (StatusCode::OK, "main"));

    // Wait until every copy sent has been counted, and the count no longer moves.
    let metrics = table.metrics();
    bounded("mirror copies settling", async {
        loop {
            let before = settled(metrics);
            tokio::time::sleep(Duration::from_millis(100)).await;
            if before == settled(metrics) && half.requests() == metrics.mirrored() {
                break;
            }
        }
    })
    .await;
    let copied = half.requests();
    assert!(
        (N * 35 / 100..=N * 65 / 100).contains(&copied),
        "{copied} of {N} copied at 50%"
    );
    assert_eq!(none.requests(), 0, "0% copies nothing");
    assert_eq!(metrics.mirror_failed() + metrics.mirror_skipped(), 0);
    assert!(
        table
            .routes()
            .diagnostics()
            .iter()
            .any(|d| d.code == "missing-service"
                && d.origin
                    .key
                    .as_deref()
                    .is_some_and(|k| k.ends_with("mirror-target-service"))),
        "the missing mirror Service is reported"
    );
    gw.shutdown().await;
}
