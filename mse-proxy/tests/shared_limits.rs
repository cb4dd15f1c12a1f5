//! MSE `rate-limit` and `concurrency-limit` shared by two gateways through a real
//! `redis-server` (the Debian package) on a free loopback port: the total admitted across
//! both gateways stays within the limit, the fallback answers (status, JSON body,
//! redirect), Redis killed mid-test (each gateway falls back to its own limit at once,
//! the fallback shows on `/metrics`), and Redis restarted (shared again).
//!
//! The rate window is a day: no token comes back while a test runs, so the requests that
//! pass are exactly the bucket. Leases of tokens are spent before a gateway asks Redis
//! again, and a request is refused only when its gateway's lease is empty and Redis has
//! nothing left, so sending requests until both gateways refuse admits exactly the limit
//! (the batch only moves which gateway admits which request).
#![cfg(test)]

mod support;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use mse_proxy::admin::{self, AdminState};
use mse_proxy::{GatewayHandle, SharedTable};
use mse_router::RouteTable;
use mse_router::global::GlobalFlags;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};

use support::*;

const MSE: &str = "mse.ingress.kubernetes.io";

/// A `redis-server` on loopback, killed when dropped.
struct RedisServer {
    child: Option<Child>,
    port: u16,
}

impl RedisServer {
    /// Starts one on a free port and waits until it answers `PING`.
    async fn start() -> Self {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        Self::start_on(port).await
    }

    /// Starts one on `port` (a restart) and waits until it answers `PING`.
    async fn start_on(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs (apt-get install redis-server)");
        let server = Self {
            child: Some(child),
            port,
        };
        bounded("redis-server answering PING", async {
            loop {
                if ping(port).await {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        server
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it and waits until it is gone.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    if s.write_all(b"PING\r\n").await.is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    matches!(s.read(&mut buf).await, Ok(n) if buf[..n].starts_with(b"+PONG"))
}

/// `{name}.example.com` (Ingress `name`) routed to `backend` with the MSE `annotations`,
/// the gateways' Redis named by the ConfigMap's `redis-url`.
fn table_of(
    name: &str,
    backend: SocketAddr,
    annotations: &[(&str, &str)],
    redis: &str,
) -> Arc<RouteTable> {
    let annotations: Vec<(String, &str)> = annotations
        .iter()
        .map(|(k, v)| (format!("{MSE}/{k}"), *v))
        .collect();
    let annotations: Vec<(&str, &str)> = annotations.iter().map(|(k, v)| (&**k, *v)).collect();
    let yaml = format!(
        "{}{}",
        annotate(&routed_to(&[(name, backend)]), &annotations),
        gateway_config_map(&[("redis-url", redis)])
    );
    let mut opts = configmap_options();
    opts.flags = GlobalFlags::default();
    let t = compile_yaml_with(&yaml, &opts);
    // Applied, and shared: neither `not-applied` nor `limit-per-replica`.
    let problems: Vec<_> = t
        .diagnostics()
        .iter()
        .filter(|d| d.severity >= mse_model::Severity::Warning && d.code != "no-endpoints")
        .collect();
    assert!(problems.is_empty(), "{problems:#?}");
    t
}

/// A gateway replica: its listener, its table and its admin listener.
struct Replica {
    _gw: GatewayHandle,
    addr: SocketAddr,
    admin: SocketAddr,
}

async fn replica(table: Arc<RouteTable>) -> Replica {
    let (gw, shared) = gateway_serving(table, |c| {
        c.shared_limits.rate_window = Duration::from_secs(24 * 3600);
        // Generous, so that a slow machine never looks like a slow Redis.
        c.shared_limits.timeout = Duration::from_secs(5);
        c.shared_limits.probe_interval = Duration::from_millis(100);
    });
    let admin = admin_of(&shared).await;
    Replica {
        addr: http_addr(&gw),
        _gw: gw,
        admin,
    }
}

async fn admin_of(table: &SharedTable) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(admin::serve(listener, AdminState::new(table.clone())));
    addr
}

async fn scrape(admin: SocketAddr) -> String {
    let r = get(admin, "admin", "/metrics").await;
    assert_eq!(r.status, StatusCode::OK);
    String::from_utf8(r.body.to_vec()).unwrap()
}

/// The value of the metric line starting with `name` (labels included), if any.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Scrapes until `metric` has `value`.
async fn metric_until(admin: SocketAddr, name: &str, value: f64) -> String {
    bounded(&format!("{name} = {value}"), async {
        loop {
            let text = scrape(admin).await;
            if metric(&text, name) == Some(value) {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

/// `n` requests for `a.example.com`, alternating between the replicas; the answers in
/// order.
async fn alternate(replicas: &[&Replica], n: usize) -> Vec<support::Reply> {
    alternate_to(replicas, "a.example.com", n).await
}

async fn alternate_to(replicas: &[&Replica], host: &str, n: usize) -> Vec<support::Reply> {
    let mut out = Vec::new();
    for i in 0..n {
        let r = replicas[i % replicas.len()];
        out.push(bounded("a request", get(r.addr, host, "/")).await);
    }
    out
}

fn count(answers: &[support::Reply], status: StatusCode) -> usize {
    answers.iter().filter(|r| r.status == status).count()
}

#[tokio::test]
async fn two_gateways_share_one_rate_limit() {
    let redis = RedisServer::start().await;
    let a = echo("a").await;
    let table = table_of("a", a.addr(), &[("rate-limit", "40")], &redis.url());
    let (one, two) = (replica(Arc::clone(&table)).await, replica(table).await);
    let answers = alternate(&[&one, &two], 100).await;
    // Exactly the bucket, across both: leases come out of it and are spent first.
    assert_eq!(count(&answers, StatusCode::OK), 40, "{answers:?}");
    assert_eq!(count(&answers, StatusCode::TOO_MANY_REQUESTS), 60);
    // Both admitted some: the limit is shared, not split or per replica.
    let per = |k: usize| {
        (answers.iter().skip(k).step_by(2))
            .filter(|r| r.status == StatusCode::OK)
            .count()
    };
    assert!(per(0) > 0 && per(1) > 0, "{} and {}", per(0), per(1));
    let refused = answers.iter().find(|r| r.status != StatusCode::OK).unwrap();
    assert_eq!(&refused.body[..], b"sentinel rate limited");
    assert_eq!(refused.headers["content-type"], "text/plain; charset=utf-8");
    // Counted as rate limited per route (each gateway its own), and in batches: fewer
    // calls than requests.
    // (Responses are counted as their bodies end, just after the client has them.)
    let calls = bounded("60 requests counted as rate limited", async {
        loop {
            let (mut calls, mut limited) = (0.0, 0.0);
            for r in [&one, &two] {
                let text = scrape(r.admin).await;
                limited += text
                    .lines()
                    .find(|l| l.starts_with("mse_ingress_rate_limited_requests_total{"))
                    .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                    .unwrap_or(0.0);
                calls += metric(&text, "mse_redis_limit_calls_total").unwrap_or(0.0);
                assert_eq!(metric(&text, "mse_redis_limit_fallback"), Some(0.0));
            }
            if limited == 60.0 {
                return calls;
            }
            assert!(limited < 60.0, "{limited} counted as rate limited");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    // 40 tokens in leases of up to 5 (an eighth of the limit); once Redis says the
    // bucket is empty, each gateway refuses without asking until a token comes back.
    assert!(calls < 40.0, "{calls} calls to Redis");
    eprintln!("{calls} calls to Redis for 100 requests");
}

#[tokio::test]
async fn the_fallback_answers_a_status_a_json_body_or_a_redirect() {
    let redis = RedisServer::start().await;
    let a = echo("a").await;
    let table = table_of(
        "a",
        a.addr(),
        &[
            ("rate-limit", "2"),
            ("rate-limit-fallback-custom-response-code", "503"),
            ("rate-limit-fallback-custom-response-body-type", "json"),
            (
                "rate-limit-fallback-custom-response-body",
                "{\"busy\":true}",
            ),
        ],
        &redis.url(),
    );
    let one = replica(table).await;
    let answers = alternate(&[&one], 3).await;
    assert_eq!(count(&answers, StatusCode::OK), 2);
    let over = &answers[2];
    assert_eq!(over.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(over.headers["content-type"], "application/json");
    assert_eq!(&over.body[..], b"{\"busy\":true}");

    // A second route (another Ingress, so another bucket) redirecting instead.
    let b = echo("b").await;
    let table = table_of(
        "b",
        b.addr(),
        &[
            ("rate-limit", "1"),
            (
                "rate-limit-fallback-redirect-url",
                "https://busy.example.com/sorry",
            ),
        ],
        &redis.url(),
    );
    let other = replica(table).await;
    let answers = alternate_to(&[&other], "b.example.com", 3).await;
    assert_eq!(count(&answers, StatusCode::OK), 1, "{answers:?}");
    for over in &answers[1..] {
        assert_eq!(over.status, StatusCode::FOUND);
        assert_eq!(over.headers["location"], "https://busy.example.com/sorry");
    }
}

/// A backend that answers each request only once a permit is released, and reports each
/// request head as it arrives.
async fn holding_backend() -> (SocketAddr, Arc<Semaphore>, mpsc::UnboundedReceiver<()>) {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let gate = Arc::new(Semaphore::new(0));
    let (arrived, rx) = mpsc::unbounded_channel();
    let held = Arc::clone(&gate);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let (gate, arrived) = (Arc::clone(&held), arrived.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    buf.clear();
                    let _ = arrived.send(());
                    let Ok(permit) = gate.acquire().await else {
                        return;
                    };
                    permit.forget();
                    let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nheld";
                    if s.write_all(answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, gate, rx)
}

#[tokio::test]
async fn two_gateways_share_one_concurrency_limit() {
    let redis = RedisServer::start().await;
    let (backend, gate, mut arrived) = holding_backend().await;
    let table = table_of(
        "a",
        backend,
        &[
            ("concurrency-limit", "3"),
            (
                "concurrency-limit-fallback-custom-response-body-type",
                "json",
            ),
            (
                "concurrency-limit-fallback-custom-response-body",
                "{\"slots\":0}",
            ),
        ],
        &redis.url(),
    );
    let (one, two) = (replica(Arc::clone(&table)).await, replica(table).await);
    // Five requests, alternating; each either reaches the backend (and stays there) or
    // is answered at once.
    let mut held = Vec::new();
    let mut refused = Vec::new();
    for i in 0..5 {
        let addr = [one.addr, two.addr][i % 2];
        let mut req = tokio::spawn(async move { get(addr, "a.example.com", "/").await });
        let outcome = bounded("a request admitted or refused", async {
            tokio::select! {
                _ = arrived.recv() => None,
                r = &mut req => Some(r.unwrap()),
            }
        })
        .await;
        match outcome {
            None => held.push(req),
            Some(r) => refused.push(r),
        }
    }
    assert_eq!(held.len(), 3, "{refused:?}");
    assert_eq!(refused.len(), 2);
    for r in &refused {
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(&r.body[..], b"{\"slots\":0}");
        assert_eq!(r.headers["content-type"], "application/json");
    }
    // Released, they end, and their slots come back.
    gate.add_permits(100);
    for h in held {
        let r = bounded("a held request", h).await.unwrap();
        assert_eq!(r.status, StatusCode::OK);
    }
    for r in [&one, &two] {
        let again = bounded("a request", get(r.addr, "a.example.com", "/")).await;
        assert_eq!(again.status, StatusCode::OK);
    }
}

#[tokio::test]
async fn redis_killed_falls_back_to_each_gateway_and_restarted_is_shared_again() {
    let mut redis = RedisServer::start().await;
    let port = redis.port;
    let a = echo("a").await;
    let table = table_of("a", a.addr(), &[("rate-limit", "4")], &redis.url());
    let (one, two) = (replica(Arc::clone(&table)).await, replica(table).await);
    let shared = alternate(&[&one, &two], 12).await;
    assert_eq!(count(&shared, StatusCode::OK), 4);

    // Redis gone: each gateway finds out (its probe), then answers at once under its
    // own limit, the whole limit.
    redis.kill();
    for r in [&one, &two] {
        let text = metric_until(r.admin, "mse_redis_limit_fallback", 1.0).await;
        let errors = metric(&text, "mse_redis_limit_errors_total").unwrap_or(0.0);
        assert!(errors >= 1.0, "{text}");
        let answers = alternate(&[r], 8).await;
        assert_eq!(count(&answers, StatusCode::OK), 4, "{answers:?}");
        assert_eq!(count(&answers, StatusCode::TOO_MANY_REQUESTS), 4);
        let text = scrape(r.admin).await;
        let local = metric(&text, "mse_redis_limit_fallback_decisions_total");
        assert!(local.unwrap_or(0.0) >= 8.0, "{text}");
    }

    // Back (empty): both gateways find it again and share its fresh bucket.
    let _redis = RedisServer::start_on(port).await;
    for r in [&one, &two] {
        metric_until(r.admin, "mse_redis_limit_fallback", 0.0).await;
    }
    let again = alternate(&[&one, &two], 12).await;
    assert_eq!(count(&again, StatusCode::OK), 4, "{again:?}");
}

#[tokio::test]
async fn without_redis_each_gateway_enforces_the_limit_and_the_compiler_says_so() {
    let a = echo("a").await;
    let yaml = annotate(
        &routed_to(&[("a", a.addr())]),
        &[(&format!("{MSE}/rate-limit"), "3")],
    );
    let table = compile_yaml(&yaml);
    let warning = table
        .diagnostics()
        .iter()
        .find(|d| d.code == "limit-per-replica")
        .expect("a limit-per-replica warning");
    let text = warning.to_string();
    for part in [
        "Ingress default/a",
        "mse.ingress.kubernetes.io/rate-limit",
        "\"3\"",
        "per replica",
    ] {
        assert!(text.contains(part), "{text}");
    }
    let one = replica(table).await;
    let answers = alternate(&[&one], 5).await;
    assert_eq!(count(&answers, StatusCode::OK), 3, "{answers:?}");
    // No Redis: nothing falls back, nothing is counted as an error.
    let text = scrape(one.admin).await;
    assert_eq!(metric(&text, "mse_redis_limit_fallback"), Some(0.0));
    assert_eq!(metric(&text, "mse_redis_limit_calls_total"), Some(0.0));
}
