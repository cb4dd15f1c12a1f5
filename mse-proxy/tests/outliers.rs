//! Passive outlier detection and the default retry of a connection that did not open:
//! real gateways, loopback backends that can be killed and started again on the same
//! port, and clients under continuous load.
#![cfg(test)]

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use mse_proxy::SharedTable;
use mse_proxy::admin::{self, AdminState};
use serde_json::Value;
use support::*;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

const HOST: &str = "outlier.example.com";

/// A loopback HTTP/1.1 backend answering `status` with its name; [`Backend::kill`] closes
/// its listener and every connection at once, as a crashed process would.
struct Backend {
    addr: SocketAddr,
    name: &'static str,
    hits: Arc<AtomicUsize>,
    tasks: Arc<std::sync::Mutex<JoinSet<()>>>,
}

impl Backend {
    async fn start(name: &'static str, status: u16) -> Self {
        Self::on(SocketAddr::from(([127, 0, 0, 1], 0)), name, status).await
    }

    async fn on(addr: SocketAddr, name: &'static str, status: u16) -> Self {
        let listener = TcpListener::bind(addr).await.expect("backend binds");
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let tasks = Arc::new(std::sync::Mutex::new(JoinSet::new()));
        let (counter, conns) = (Arc::clone(&hits), Arc::clone(&tasks));
        tasks.lock().unwrap().spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let counter = Arc::clone(&counter);
                let service = service_fn(move |_req: Request<Incoming>| {
                    counter.fetch_add(1, Ordering::SeqCst);
                    let mut r = Response::new(Full::new(Bytes::from_static(name.as_bytes())));
                    *r.status_mut() = StatusCode::from_u16(status).unwrap();
                    r.headers_mut()
                        .insert("x-backend", http::HeaderValue::from_static(name));
                    async move { Ok::<_, std::convert::Infallible>(r) }
                });
                conns.lock().unwrap().spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            addr,
            name,
            hits,
            tasks,
        }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Closes the listener and every connection.
    fn kill(&self) {
        self.tasks.lock().unwrap().abort_all();
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Ingress `r` for [`HOST`] with `annotations`, to a Service with `endpoints`, and the
/// gateway's ConfigMap with `global`.
fn routed(
    annotations: &[(&str, &str)],
    endpoints: &[SocketAddr],
    global: &[(&str, &str)],
) -> String {
    let mut y = annotate(
        &ingress("r", Some(HOST), &[("/", "Prefix", "svc")]),
        annotations,
    );
    y.push_str(&service("svc", endpoints));
    y.push_str(&gateway_config_map(global));
    y
}

/// A gateway serving `yaml` (with its ConfigMap), and its admin server.
async fn gateway_and_admin(yaml: &str) -> (mse_proxy::GatewayHandle, SharedTable, SocketAddr) {
    let (g, table) = gateway_serving(compile_yaml_with(yaml, &configmap_options()), |_| {});
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let admin_addr = listener.local_addr().unwrap();
    tokio::spawn(admin::serve(listener, AdminState::new(table.clone())));
    (g, table, admin_addr)
}

/// The addresses `/debug/routes` lists as ejected.
async fn ejected(admin_addr: SocketAddr) -> Vec<String> {
    let r = get(admin_addr, "admin", "/debug/routes").await;
    assert_eq!(r.status, StatusCode::OK);
    let v: Value = r.json();
    v["ejected_endpoints"]
        .as_array()
        .expect("ejected_endpoints is an array")
        .iter()
        .map(|e| e["endpoint"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// Polls `check` until it holds, for at most a generous deadline.
async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The load of the fault test: requests by phase, and failures by phase.
#[derive(Default)]
struct Load {
    phase: AtomicU8,
    sent: [AtomicUsize; 3],
    failed: [AtomicUsize; 3],
    stop: AtomicBool,
}

impl Load {
    fn total(&self) -> usize {
        self.sent.iter().map(|n| n.load(Ordering::SeqCst)).sum()
    }
}

/// One client: keep-alive requests until told to stop; a failed request (an error or a
/// status other than 200) is counted in the phase it was sent in, and the connection is
/// opened again.
async fn client(addr: SocketAddr, load: Arc<Load>) {
    let mut tx = None;
    while !load.stop.load(Ordering::SeqCst) {
        let phase = usize::from(load.phase.load(Ordering::SeqCst));
        if tx.is_none() {
            tx = Some(h1(addr).await);
        }
        let Some(conn) = tx.as_mut() else { continue };
        let ok = match conn.ready().await {
            Ok(()) => match conn.send_request(get_req(HOST, "/")).await {
                Ok(r) => r.status() == StatusCode::OK && r.into_body().collect().await.is_ok(),
                Err(_) => false,
            },
            Err(_) => false,
        };
        load.sent[phase].fetch_add(1, Ordering::SeqCst);
        if !ok {
            load.failed[phase].fetch_add(1, Ordering::SeqCst);
            tx = None;
        }
    }
}

#[tokio::test]
async fn a_killed_endpoint_is_ejected_without_failed_requests_and_comes_back() {
    let backends = [
        Backend::start("a", 200).await,
        Backend::start("b", 200).await,
        Backend::start("c", 200).await,
    ];
    let endpoints: Vec<_> = backends.iter().map(|b| b.addr).collect();
    let yaml = routed(&[], &endpoints, &[("mse-outlier-base-ejection-time", "1s")]);
    let (g, table, admin_addr) = gateway_and_admin(&yaml).await;
    let load = Arc::new(Load::default());
    let clients: Vec<_> = (0..4)
        .map(|_| tokio::spawn(client(http_addr(&g), Arc::clone(&load))))
        .collect();
    until("every endpoint has traffic", || async {
        backends.iter().all(|b| b.hits() > 50)
    })
    .await;

    // Phase 1: `b` dies; its ejection shows.
    let victim = backends[1].addr;
    load.phase.store(1, Ordering::SeqCst);
    backends[1].kill();
    until("the killed endpoint is listed as ejected", || async {
        ejected(admin_addr).await.contains(&victim.to_string())
    })
    .await;
    assert!(
        table.metrics().upstream_ejections("default", "svc", 80) >= 1,
        "the ejection is counted"
    );

    // Phase 2: from the ejection on, with `b` still dead (its ejections end and start
    // again), not one request fails.
    load.phase.store(2, Ordering::SeqCst);
    let at_ejection = load.total();
    until("a few thousand requests after the ejection", || async {
        load.total() >= at_ejection + 3000 && load.total() >= 5000
    })
    .await;

    // `b` comes back on the same port and gets traffic again.
    let back = Backend::on(victim, "b", 200).await;
    until("the restarted endpoint answers requests again", || async {
        back.hits() > 20
    })
    .await;
    load.stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.await.unwrap();
    }

    let total = load.total();
    let failed: usize = load.failed.iter().map(|n| n.load(Ordering::SeqCst)).sum();
    assert_eq!(
        load.failed[2].load(Ordering::SeqCst),
        0,
        "no request fails once the endpoint is ejected"
    );
    assert!(
        failed * 1000 < total,
        "{failed} of {total} requests failed (at most 0.1 % may)"
    );
    assert_eq!(back.name, "b");
}

/// Sends `n` requests on one connection; the statuses and the backends that answered.
async fn requests(
    addr: SocketAddr,
    n: usize,
    make: impl Fn(usize) -> Request<Full<Bytes>>,
) -> Vec<(StatusCode, String)> {
    let mut tx = h1(addr).await;
    let mut out = Vec::new();
    for i in 0..n {
        let r = send1(&mut tx, make(i)).await;
        let by = r
            .headers
            .get("x-backend")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        out.push((r.status, by));
    }
    out
}

#[tokio::test]
async fn every_balancer_passes_over_an_endpoint_ejected_for_5xx() {
    let balancers: [&[(&str, &str)]; 6] = [
        &[],
        &[("load-balance", "least_conn")],
        &[("load-balance", "random")],
        &[("load-balance", "ewma")],
        &[("upstream-hash-by", "$request_uri")],
        &[("affinity", "cookie")],
    ];
    for annotations in balancers {
        let failing = Backend::start("failing", 500).await;
        let up = [
            Backend::start("a", 200).await,
            Backend::start("b", 200).await,
        ];
        let endpoints = [up[0].addr, failing.addr, up[1].addr];
        // Ejections last far longer than the test: the endpoint stays out.
        let global = [("mse-outlier-base-ejection-time", "10m")];
        // A round-robin route to the same Service sends the failing endpoint its five
        // failures in a row (a balancer may keep away from a failing endpoint by itself).
        let mut yaml = routed(annotations, &endpoints, &global);
        yaml.push_str("---\n");
        yaml.push_str(&ingress("rr", Some(HOST), &[("/rr", "Prefix", "svc")]));
        let (g, table, admin_addr) = gateway_and_admin(&yaml).await;
        let m = table.metrics();
        let mut sent = 0;
        let mut tx = h1(http_addr(&g)).await;
        while m.upstream_ejections("default", "svc", 80) == 0 {
            assert!(
                sent < 500,
                "{annotations:?}: no ejection after {sent} requests"
            );
            send1(&mut tx, get_req(HOST, "/rr")).await;
            sent += 1;
        }
        assert_eq!(
            ejected(admin_addr).await,
            [failing.addr.to_string()],
            "{annotations:?}"
        );
        assert_eq!(
            failing.hits(),
            5,
            "{annotations:?}: five failures in a row eject"
        );
        let after = requests(http_addr(&g), 60, |i| get_req(HOST, &format!("/{i}"))).await;
        assert!(
            after.iter().all(|(s, _)| *s == StatusCode::OK),
            "{annotations:?}: {after:?}"
        );
        assert_eq!(failing.hits(), 5, "{annotations:?}: no request reaches it");
        let scrape = m.scrape().await;
        assert!(
            scrape.contains(
                "mse_upstream_ejected_endpoints{namespace=\"default\",service=\"svc\",port=\"80\"} 1"
            ),
            "{scrape}"
        );
    }
}

#[tokio::test]
async fn a_connection_refused_goes_to_another_endpoint_by_default() {
    let up = Backend::start("up", 200).await;
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    // Outlier detection off: every request round-robined to the closed port is retried.
    let global = [("mse-outlier-consecutive-errors", "0")];
    let (g, table, _) = gateway_and_admin(&routed(&[], &[closed, up.addr], &global)).await;
    let got = requests(http_addr(&g), 20, |_| get_req(HOST, "/")).await;
    assert!(got.iter().all(|(s, _)| *s == StatusCode::OK), "{got:?}");
    assert_eq!(up.hits(), 20);
    assert!(table.metrics().upstream_retries() >= 10);
    // A POST too: nothing of it went out.
    let got = requests(http_addr(&g), 6, |_| {
        Request::post("/")
            .header("host", HOST)
            .body(Full::new(Bytes::from_static(b"payload")))
            .unwrap()
    })
    .await;
    assert!(got.iter().all(|(s, _)| *s == StatusCode::OK), "{got:?}");
    // `proxy-next-upstream: off` keeps the failure.
    let (g, _, _) = gateway_and_admin(&routed(
        &[("proxy-next-upstream", "off")],
        &[closed, up.addr],
        &global,
    ))
    .await;
    let got = requests(http_addr(&g), 6, |_| get_req(HOST, "/")).await;
    assert!(
        got.iter().any(|(s, _)| *s == StatusCode::BAD_GATEWAY),
        "{got:?}"
    );
}

#[tokio::test]
async fn an_ejected_affinity_endpoint_moves_the_cookie_only_with_change_on_failure() {
    for change in [false, true] {
        let a = Backend::start("a", 200).await;
        let b = Backend::start("b", 200).await;
        let annotations = [
            ("affinity", "cookie"),
            (
                "session-cookie-change-on-failure",
                if change { "true" } else { "false" },
            ),
        ];
        let global = [
            ("mse-outlier-base-ejection-time", "10m"),
            ("mse-outlier-consecutive-errors", "1"),
        ];
        let (g, table, admin_addr) =
            gateway_and_admin(&routed(&annotations, &[a.addr, b.addr], &global)).await;
        // A session: the cookie names one endpoint.
        let first = get(http_addr(&g), HOST, "/").await;
        let cookie = first.headers["set-cookie"].to_str().unwrap().to_owned();
        let pair = cookie.split(';').next().unwrap().to_owned();
        let holder = first.headers["x-backend"].to_str().unwrap().to_owned();
        let victim = if holder == "a" { &a } else { &b };
        victim.kill();
        // The next request fails over (connection refused) and ejects it; the cookie
        // moves with it only with change-on-failure.
        let with_cookie = || request(HOST, "GET", "/", &[("cookie", pair.as_str())]);
        let mut tx = h1(http_addr(&g)).await;
        let r = send1(&mut tx, with_cookie()).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_ne!(r.headers["x-backend"], holder.as_str());
        let moved = r
            .headers
            .get("set-cookie")
            .map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(moved.is_some(), change, "change {change}: {moved:?}");
        if let Some(moved) = moved {
            assert!(moved.starts_with("INGRESSCOOKIE="), "{moved}");
            assert_ne!(moved.split(';').next().unwrap(), pair);
        }
        until("the endpoint is ejected", || async {
            ejected(admin_addr).await == [victim.addr.to_string()]
        })
        .await;
        // While it is out, the old cookie's requests go elsewhere.
        let r = send1(&mut tx, with_cookie()).await;
        assert_eq!(r.status, StatusCode::OK, "change {change}");
        assert_ne!(r.headers["x-backend"], holder.as_str());
        let moved = r
            .headers
            .get("set-cookie")
            .map(|v| v.to_str().unwrap().to_owned());
        if change {
            let moved = moved.expect("a new cookie");
            assert!(moved.starts_with("INGRESSCOOKIE="), "{moved}");
            assert_ne!(moved.split(';').next().unwrap(), pair);
        } else {
            assert_eq!(moved, None, "the cookie keeps naming the failed endpoint");
        }
        assert!(table.metrics().upstream_ejections("default", "svc", 80) >= 1);
    }
}
