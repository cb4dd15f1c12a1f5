//! Local rate and connection limits end to end over loopback: `limit-rpm` and
//! `limit-rps` per client address (127.0.0.1 and 127.0.0.2 are different clients),
//! `limit-whitelist`, `limit-connections` with requests held open by the backend,
//! `limit-req-status-code`, and Higress's `route-limit-*` shared by every client.
//!
//! Rates are one request per minute: no token can come back while a test runs (it would
//! take a minute), so the requests that pass are exactly the burst (for the per-client
//! limits, as NGINX: `rate x multiplier`, plus the one request the rate allows).
#![cfg(test)]

mod http1_client;
mod support;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mse_router::RouteTable;
use mse_router::global::GlobalFlags;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{Semaphore, mpsc};

use http1_client::*;
use support::*;

const ONE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1));
const TWO: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

/// `a.example.com` routed to `backend` with `annotations`, and the gateway's ConfigMap
/// holding `data`.
fn table_of(
    backend: SocketAddr,
    annotations: &[(&str, &str)],
    data: &[(&str, &str)],
) -> Arc<RouteTable> {
    let yaml = format!(
        "{}{}",
        annotate(&routed_to(&[("a", backend)]), annotations),
        gateway_config_map(data)
    );
    let mut opts = configmap_options();
    opts.flags = GlobalFlags::default();
    let t = compile_yaml_with(&yaml, &opts);
    // Applied: neither `not-applied` nor any other warning.
    let problems: Vec<_> = t
        .diagnostics()
        .iter()
        .filter(|d| d.severity >= mse_model::Severity::Warning && d.code != "no-endpoints")
        .collect();
    assert!(problems.is_empty(), "{problems:#?}");
    t
}

/// A client connection from `from` (any loopback address: Linux accepts all of
/// 127.0.0.0/8).
async fn connect_from(from: IpAddr, gateway: SocketAddr) -> Client {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from, 0)).unwrap();
    let stream = bounded("connect", socket.connect(gateway)).await.unwrap();
    Client {
        stream,
        buf: Vec::new(),
    }
}

/// The statuses and bodies of `n` requests sent back to back from `from`, one
/// connection each.
async fn burst(gateway: SocketAddr, from: IpAddr, n: usize) -> Vec<(u16, String)> {
    let mut out = Vec::new();
    for _ in 0..n {
        let r = connect_from(from, gateway).await.ask(get_a("/")).await;
        out.push((r.status, lossy(&r.body)));
    }
    out
}

/// How many answers have `status`.
fn count(answers: &[(u16, String)], status: u16) -> usize {
    answers.iter().filter(|(s, _)| *s == status).count()
}

/// The requests that may pass: `burst`, plus one if a minute went by (a token back).
fn allowed(burst: usize, started: Instant) -> std::ops::RangeInclusive<usize> {
    let refilled = usize::from(started.elapsed() >= Duration::from_secs(60));
    burst..=burst + refilled
}

#[tokio::test]
async fn limit_rpm_passes_the_burst_of_each_client_address_then_answers_503() {
    let a = echo("a").await;
    let annotations = [("limit-rpm", "1"), ("limit-burst-multiplier", "3")];
    let (gw, _shared) = gateway_serving(table_of(a.addr(), &annotations, &[]), |_| {});
    let addr = http_addr(&gw);
    let started = Instant::now();
    let one = burst(addr, ONE, 6).await;
    assert!(allowed(4, started).contains(&count(&one, 200)), "{one:?}");
    // The burst comes first, then the refusals.
    assert!(one[..4].iter().all(|(s, _)| *s == 200), "{one:?}");
    for (status, body) in &one[4..] {
        if *status != 200 {
            assert_eq!((*status, body.as_str()), (503, "503 Service Unavailable\n"));
        }
    }
    // Another address has a bucket of its own.
    let two = burst(addr, TWO, 5).await;
    assert!(allowed(4, started).contains(&count(&two, 200)), "{two:?}");
    assert_eq!(count(&two, 200) + count(&two, 503), 5, "{two:?}");
}

#[tokio::test]
async fn limit_rps_with_the_default_multiplier_and_the_global_status_code() {
    let a = echo("a").await;
    // Both buckets apply; limit-rpm 1 (6 at once with the default multiplier) is the
    // tighter one, and no token of it comes back while the test runs.
    let table = table_of(
        a.addr(),
        &[("limit-rpm", "1"), ("limit-rps", "1")],
        &[("limit-req-status-code", "429")],
    );
    let (gw, _shared) = gateway_serving(table, |_| {});
    let started = Instant::now();
    let answers = burst(http_addr(&gw), ONE, 8).await;
    assert!(
        allowed(6, started).contains(&count(&answers, 200)),
        "{answers:?}"
    );
    assert_eq!(
        count(&answers, 200) + count(&answers, 429),
        8,
        "{answers:?}"
    );
    assert!(answers.contains(&(429, "429 Too Many Requests\n".to_owned())));
}

#[tokio::test]
async fn limit_whitelist_exempts_its_clients() {
    let a = echo("a").await;
    let annotations = [
        ("limit-rpm", "1"),
        ("limit-burst-multiplier", "1"),
        ("limit-whitelist", "127.0.0.2/32, 10.0.0.0/8"),
    ];
    let (gw, _shared) = gateway_serving(table_of(a.addr(), &annotations, &[]), |_| {});
    let addr = http_addr(&gw);
    let started = Instant::now();
    let exempt = burst(addr, TWO, 8).await;
    assert_eq!(count(&exempt, 200), 8, "{exempt:?}");
    let limited = burst(addr, ONE, 4).await;
    assert!(
        allowed(2, started).contains(&count(&limited, 200)),
        "{limited:?}"
    );
}

#[tokio::test]
async fn route_limit_is_shared_by_every_client_and_answers_429() {
    let a = echo("a").await;
    let annotations = [
        ("higress.io/route-limit-rpm", "1"),
        ("higress.io/route-limit-burst-multiplier", "4"),
    ];
    let (gw, _shared) = gateway_serving(table_of(a.addr(), &annotations, &[]), |_| {});
    let addr = http_addr(&gw);
    let started = Instant::now();
    let mut answers = burst(addr, ONE, 2).await;
    answers.extend(burst(addr, TWO, 6).await);
    assert!(
        allowed(4, started).contains(&count(&answers, 200)),
        "{answers:?}"
    );
    assert!(answers[..4].iter().all(|(s, _)| *s == 200), "{answers:?}");
    for (status, body) in &answers[4..] {
        if *status != 200 {
            assert_eq!((*status, body.as_str()), (429, "local_rate_limited"));
        }
    }
}

#[tokio::test]
async fn a_new_table_keeps_the_buckets_of_unchanged_routes() {
    let a = echo("a").await;
    let annotations = [("limit-rpm", "1"), ("limit-burst-multiplier", "2")];
    let (gw, shared) = gateway_serving(table_of(a.addr(), &annotations, &[]), |_| {});
    let addr = http_addr(&gw);
    let started = Instant::now();
    let before = burst(addr, ONE, 3).await;
    // A new table, as any change in the cluster publishes one.
    shared.publish(table_of(a.addr(), &annotations, &[]));
    let after = burst(addr, ONE, 3).await;
    let passed = count(&before, 200) + count(&after, 200);
    assert!(
        allowed(3, started).contains(&passed),
        "{before:?} {after:?}"
    );
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
async fn limit_connections_counts_requests_in_flight_per_client_address() {
    let (backend, gate, mut arrived) = holding_backend().await;
    let annotations = [("limit-connections", "2")];
    let data = [("limit-conn-status-code", "503")];
    let (gw, _shared) = gateway_serving(table_of(backend, &annotations, &data), |_| {});
    let addr = http_addr(&gw);
    // Two requests held by the backend.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut c = connect_from(ONE, addr).await;
        c.send(get_a("/")).await;
        bounded("the request reaches the backend", arrived.recv()).await;
        held.push(c);
    }
    // A third from the same address is refused; another address passes.
    let r = connect_from(ONE, addr).await.ask(get_a("/")).await;
    assert_eq!(
        (r.status, lossy(&r.body).as_str()),
        (503, "503 Service Unavailable\n")
    );
    let mut other = connect_from(TWO, addr).await;
    other.send(get_a("/")).await;
    bounded("the other client's request arrives", arrived.recv()).await;
    // Released, the held requests end, and their slots with them.
    gate.add_permits(3);
    for c in held.iter_mut().chain([&mut other]) {
        let r = c.response().await;
        assert_eq!((r.status, lossy(&r.body).as_str()), (200, "held"));
    }
    // A keep-alive connection's next request counts again, once.
    let mut c = held.remove(0);
    c.send(get_a("/")).await;
    bounded("the next request arrives", arrived.recv()).await;
    let mut d = connect_from(ONE, addr).await;
    d.send(get_a("/")).await;
    bounded("the next request arrives", arrived.recv()).await;
    let r = connect_from(ONE, addr).await.ask(get_a("/")).await;
    assert_eq!(r.status, 503);
    gate.add_permits(2);
    assert_eq!(c.response().await.status, 200);
    assert_eq!(d.response().await.status, 200);
}
