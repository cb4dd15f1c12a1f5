//! End to end over loopback: `default-backend`, `custom-http-errors` and the gateway-wide
//! default backend. Each test asserts what the client got and what the backends saw.
#![cfg(test)]

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use mse_model::{Snapshot, load_manifests};
use mse_proxy::{Gateway, GatewayHandle, SharedTable};
use mse_router::{CompileOptions, ServiceRef, compile};
use support::*;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A backend that answers every request with one status and body, counting requests.
struct Fixed {
    addr: SocketAddr,
    requests: Arc<AtomicU64>,
    connections: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl Fixed {
    async fn start(status: u16, body: &'static str) -> Self {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicU64::new(0));
        let count = Arc::clone(&requests);
        let connections = Arc::new(AtomicU64::new(0));
        let accepted = Arc::clone(&connections);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                accepted.fetch_add(1, Ordering::Relaxed);
                let count = Arc::clone(&count);
                tokio::spawn(async move {
                    let svc = service_fn(move |_req: Request<Incoming>| {
                        count.fetch_add(1, Ordering::Relaxed);
                        let response = Response::builder()
                            .status(status)
                            .header("x-fixed", "yes")
                            .body(Full::new(Bytes::from_static(body.as_bytes())))
                            .unwrap();
                        async move { Ok::<_, Infallible>(response) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Self {
            addr,
            requests,
            connections,
            task,
        }
    }

    fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }
}

impl Drop for Fixed {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An Ingress `name` for host `name.test` whose paths go to Services (port 80), with
/// annotations (names without prefix).
fn annotated(name: &str, paths: &[PathRule<'_>], annotations: &[(&str, &str)]) -> String {
    let host = format!("{name}.test");
    let list = annotations
        .iter()
        .map(|(k, v)| {
            let v = serde_json::to_string(v).unwrap();
            format!("\"nginx.ingress.kubernetes.io/{k}\": {v}")
        })
        .collect::<Vec<_>>()
        .join(", ");
    ingress(name, Some(&host), paths).replacen(
        "namespace: default }",
        &format!("namespace: default, annotations: {{ {list} }} }}"),
        1,
    )
}

/// Starts a gateway serving `yaml`, with the gateway-wide default backend `default_backend`
/// (`ns/name[:port]`) when given.
fn gateway_with_default(yaml: &str, default_backend: Option<&str>) -> (GatewayHandle, SharedTable) {
    init_tracing();
    let loaded = load_manifests(yaml, Some("test.yaml"));
    let mut snapshot = Snapshot {
        generation: 1,
        ..Default::default()
    };
    snapshot.extend(loaded.objects);
    let options = CompileOptions {
        default_backend: default_backend.map(|r| r.parse::<ServiceRef>().unwrap()),
        ..CompileOptions::default()
    };
    let table = shared(Arc::new(compile(&snapshot, &options)));
    let handle = Gateway::start(loopback_config(), table.clone()).unwrap();
    (handle, table)
}

/// Sends `req` on a new HTTP/1.1 connection.
async fn send(addr: SocketAddr, req: Request<Full<Bytes>>) -> Reply {
    let mut tx = h1(addr).await;
    send1(&mut tx, req).await
}

fn text(r: &Reply) -> &str {
    std::str::from_utf8(&r.body).unwrap()
}

/// A loopback address nothing listens on.
async fn closed_port() -> SocketAddr {
    let l = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    l.local_addr().unwrap()
}

#[tokio::test]
async fn default_backend_serves_a_service_without_ready_endpoints() {
    let errors = echo("errors").await;
    let yaml = [
        annotated(
            "shop",
            &[("/", "Prefix", "empty")],
            &[("default-backend", "errors")],
        ),
        annotated(
            "gone",
            &[("/", "Prefix", "missing")],
            &[("default-backend", "errors")],
        ),
        annotated("plain", &[("/", "Prefix", "empty")], &[]),
        service("empty", &[]),
        service("errors", &[errors.addr()]),
    ]
    .concat();
    let (gw, table) = gateway(&yaml);
    let addr = http_addr(&gw);

    // Method, path, query, Host and body as sent: only the Service changes.
    let req = Request::post("/cart/items?q=1")
        .header("host", "shop.test")
        .body(Full::new(Bytes::from_static(b"payload")))
        .unwrap();
    let r = send(addr, req).await;
    assert_eq!((r.status, r.service()), (StatusCode::OK, "errors"));
    let seen = r.json();
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["path"], "/cart/items");
    assert_eq!(seen["query"], "q=1");
    assert_eq!(seen["host"], "shop.test");
    assert_eq!(seen["body"], "payload");

    // The route's Service does not exist at all.
    let r = get(addr, "gone.test", "/x").await;
    assert_eq!((r.status, r.service()), (StatusCode::OK, "errors"));
    assert_eq!(r.json()["path"], "/x");

    // Without default-backend the route still answers 503.
    let r = get(addr, "plain.test", "/").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(errors.requests(), 2);

    let routes = table.routes();
    assert!(
        routes.diagnostics().iter().all(|d| d.code != "not-applied"),
        "{:?}",
        routes.diagnostics()
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn custom_http_errors_answer_with_the_error_page() {
    let main = Fixed::start(503, "main is down\n").await;
    let errors = echo("errors").await;
    let yaml = [
        annotated(
            "shop",
            &[("/", "Prefix", "main")],
            &[
                ("default-backend", "errors"),
                ("custom-http-errors", "404,503"),
            ],
        ),
        service("main", &[main.addr]),
        service("errors", &[errors.addr()]),
    ]
    .concat();
    let (gw, _table) = gateway(&yaml);
    let addr = http_addr(&gw);

    let req = Request::post("/cart/../cart?x=1")
        .header("host", "shop.test")
        .header("accept", "text/html")
        .header("x-request-id", "req-42")
        .header("content-type", "text/plain")
        .body(Full::new(Bytes::from_static(b"order")))
        .unwrap();
    let r = send(addr, req).await;
    // The client gets the error page's answer, not the upstream's.
    assert_eq!((r.status, r.service()), (StatusCode::OK, "errors"));
    assert!(r.headers.get("x-fixed").is_none());
    let seen = r.json();
    assert_eq!(seen["method"], "GET");
    assert_eq!(seen["path"], "/");
    assert_eq!(seen["query"], serde_json::Value::Null);
    assert_eq!(seen["body_bytes"], 0);
    assert_eq!(seen["host"], "shop.test");
    let header = |name: &str| r.echoed_header(name);
    assert_eq!(header("x-code").as_deref(), Some("503"));
    assert_eq!(header("x-format").as_deref(), Some("text/html"));
    assert_eq!(
        header("x-original-uri").as_deref(),
        Some("/cart/../cart?x=1")
    );
    assert_eq!(header("x-namespace").as_deref(), Some("default"));
    assert_eq!(header("x-ingress-name").as_deref(), Some("shop"));
    assert_eq!(header("x-service-name").as_deref(), Some("main"));
    assert_eq!(header("x-service-port").as_deref(), Some("80"));
    assert_eq!(header("x-request-id").as_deref(), Some("req-42"));
    assert_eq!(header("content-type"), None);
    assert_eq!((main.requests(), errors.requests()), (1, 1));

    // Again on one client connection: each request gets its error page.
    let mut tx = h1(addr).await;
    for i in 0..3 {
        let r = send1(&mut tx, get_req("shop.test", &format!("/p{i}"))).await;
        assert_eq!((r.status, r.service()), (StatusCode::OK, "errors"));
        assert_eq!(r.echoed_header("x-original-uri"), Some(format!("/p{i}")));
        assert_eq!(r.echoed_header("x-format"), None);
    }
    assert_eq!((main.requests(), errors.requests()), (4, 4));
    // An intercepted answer whose body had arrived whole leaves its connection reusable:
    // one per worker at most.
    assert!(main.connections() <= 2, "{}", main.connections());
    gw.shutdown().await;
}

#[tokio::test]
async fn unlisted_codes_pass_through_and_error_pages_are_not_intercepted_again() {
    let main = echo("main").await;
    let errors = echo("errors").await;
    let yaml = [
        annotated(
            "shop",
            &[("/", "Prefix", "main")],
            &[
                ("default-backend", "errors"),
                ("custom-http-errors", "404,503"),
            ],
        ),
        service("main", &[main.addr()]),
        service("errors", &[errors.addr()]),
    ]
    .concat();
    let (gw, _table) = gateway(&yaml);
    let addr = http_addr(&gw);

    for status in ["200", "500"] {
        let req = Request::get("/a")
            .header("host", "shop.test")
            .header("x-echo-status", status)
            .body(Full::new(Bytes::new()))
            .unwrap();
        let r = send(addr, req).await;
        assert_eq!(r.status.as_str(), status);
        assert_eq!(r.service(), "main");
        assert_eq!(r.json()["path"], "/a");
    }
    assert_eq!(errors.requests(), 0);

    // The error page request carries the client's headers, so the echo error page answers
    // 503 too: that answer is relayed, not sent to the error page again.
    let req = Request::get("/b")
        .header("host", "shop.test")
        .header("x-echo-status", "503")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let r = send(addr, req).await;
    assert_eq!(
        (r.status, r.service()),
        (StatusCode::SERVICE_UNAVAILABLE, "errors")
    );
    assert_eq!(r.echoed_header("x-code").as_deref(), Some("503"));
    assert_eq!((main.requests(), errors.requests()), (3, 1));
    gw.shutdown().await;
}

#[tokio::test]
async fn without_a_usable_error_page_the_upstream_answer_is_relayed() {
    let main = Fixed::start(404, "no such page\n").await;
    let refused = closed_port().await;
    let yaml = [
        annotated(
            "empty",
            &[("/", "Prefix", "main")],
            &[
                ("default-backend", "no-endpoints"),
                ("custom-http-errors", "404"),
            ],
        ),
        annotated(
            "refused",
            &[("/", "Prefix", "main")],
            &[
                ("default-backend", "refuses"),
                ("custom-http-errors", "404"),
            ],
        ),
        service("main", &[main.addr]),
        service("no-endpoints", &[]),
        service("refuses", &[refused]),
    ]
    .concat();
    let (gw, _table) = gateway(&yaml);
    let addr = http_addr(&gw);
    for host in ["empty.test", "refused.test"] {
        let r = get(addr, host, "/x").await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{host}");
        assert_eq!(text(&r), "no such page\n", "{host}");
        assert_eq!(r.headers["x-fixed"], "yes", "{host}");
    }
    assert_eq!(main.requests(), 2);
    gw.shutdown().await;
}

/// `shop.test/api` served by `api`, and `pages.test` by `missing` (which answers 404)
/// with `custom-http-errors: 404` and no `default-backend`.
fn shop_and_pages(api: &mse_proxy::echo::EchoServer, missing: &Fixed) -> String {
    [
        ingress("shop", Some("shop.test"), &[("/api", "Prefix", "api")]),
        annotated(
            "pages",
            &[("/", "Prefix", "missing")],
            &[("custom-http-errors", "404")],
        ),
        service("api", &[api.addr()]),
        service("missing", &[missing.addr]),
    ]
    .concat()
}

#[tokio::test]
async fn the_gateway_default_backend_serves_unmatched_requests_and_error_pages() {
    let api = echo("api").await;
    let fallback = echo("fallback").await;
    let missing = Fixed::start(404, "not here\n").await;
    let yaml = shop_and_pages(&api, &missing) + &service("fallback", &[fallback.addr()]);
    let (gw, table) = gateway_with_default(&yaml, Some("default/fallback"));
    let addr = http_addr(&gw);

    let r = get(addr, "shop.test", "/api/x").await;
    assert_eq!((r.status, r.service()), (StatusCode::OK, "api"));
    // An unknown host, and a known host with no matching path: path and Host unchanged.
    for (host, path) in [("other.test", "/any/where?k=v"), ("shop.test", "/other")] {
        let r = get(addr, host, path).await;
        assert_eq!(
            (r.status, r.service()),
            (StatusCode::OK, "fallback"),
            "{host}{path}"
        );
        let seen = r.json();
        assert_eq!(seen["host"], host);
        assert_eq!(
            format!("{}", seen["path"].as_str().unwrap()),
            path.split('?').next().unwrap()
        );
    }
    // custom-http-errors without default-backend: the gateway default serves the page.
    let r = get(addr, "pages.test", "/gone").await;
    assert_eq!((r.status, r.service()), (StatusCode::OK, "fallback"));
    assert_eq!(r.json()["path"], "/");
    assert_eq!(r.echoed_header("x-code").as_deref(), Some("404"));
    assert_eq!(r.echoed_header("x-ingress-name").as_deref(), Some("pages"));
    assert_eq!(fallback.requests(), 3);

    let routes = table.routes();
    let json = routes.to_json();
    let id = json["default_backend"].as_u64().unwrap();
    assert_eq!(json["clusters"][id as usize]["service"]["name"], "fallback");
    assert!(
        routes
            .diagnostics()
            .iter()
            .all(|d| d.code != "ignored-annotation"),
        "{:?}",
        routes.diagnostics()
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn without_a_gateway_default_backend_unmatched_requests_get_404() {
    let api = echo("api").await;
    let missing = Fixed::start(404, "not here\n").await;
    let yaml = shop_and_pages(&api, &missing);
    let (gw, table) = gateway_with_default(&yaml, None);
    let addr = http_addr(&gw);
    for (host, path) in [("other.test", "/"), ("shop.test", "/other")] {
        let r = get(addr, host, path).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{host}{path}");
    }
    // No Service answers the error codes: the upstream's answer is relayed, and the
    // annotation is reported as ignored.
    let r = get(addr, "pages.test", "/gone").await;
    assert_eq!((r.status, text(&r)), (StatusCode::NOT_FOUND, "not here\n"));
    let routes = table.routes();
    assert!(routes.default_backend().is_none());
    assert!(
        routes
            .diagnostics()
            .iter()
            .any(|d| d.code == "ignored-annotation"
                && d.origin.key.as_deref()
                    == Some("nginx.ingress.kubernetes.io/custom-http-errors")),
        "{:?}",
        routes.diagnostics()
    );
    assert_eq!(api.requests(), 0);
    gw.shutdown().await;
}
