//! End to end over loopback: hot swaps under traffic, graceful shutdown, the admin server.
#![cfg(test)]

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use mse_model::Diagnostic;
use mse_proxy::admin::{self, AdminState};
use mse_proxy::echo::EchoServer;
use support::*;

fn slow_get(host: &str, delay_ms: u64) -> Request<Full<Bytes>> {
    Request::get("/slow")
        .header("host", host)
        .header("x-echo-delay-ms", delay_ms.to_string())
        .body(Full::new(Bytes::new()))
        .unwrap()
}

fn routes_to(svc_name: &str, echo: &EchoServer) -> String {
    [
        ingress("app", Some("app.example.com"), &[("/", "Prefix", svc_name)]),
        service(svc_name, &[echo.addr()]),
    ]
    .concat()
}

#[tokio::test]
async fn a_request_started_on_one_table_finishes_after_another_is_published() {
    let (a, b) = (echo("a").await, echo("b").await);
    let (gw, table) = gateway(&routes_to("svc-a", &a));
    let addr = http_addr(&gw);
    let long = tokio::spawn(async move {
        let mut tx = h1(addr).await;
        send1(&mut tx, slow_get("app.example.com", 800)).await
    });
    // Let the long request reach the upstream before the swap.
    while a.requests() == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    table.publish(compile_yaml(&routes_to("svc-b", &b)));
    let after = get(addr, "app.example.com", "/").await;
    assert_eq!(after.service(), "b", "new requests see the new table");
    let long = bounded("the long request", long).await.unwrap();
    assert_eq!(long.status, StatusCode::OK);
    assert_eq!(
        long.service(),
        "a",
        "the in-flight request finished where it started"
    );
    // A table without the host: 404 from now on, with no restart.
    table.publish(compile_yaml(&ingress(
        "other",
        Some("other.example.com"),
        &[("/", "Prefix", "x")],
    )));
    assert_eq!(
        get(addr, "app.example.com", "/").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(table.metrics().table_publishes(), 3);
    gw.shutdown().await;
}

#[tokio::test]
async fn requests_across_many_publishes_never_fail() {
    let (a, b) = (echo("a").await, echo("b").await);
    let table_a = compile_yaml(&routes_to("svc-a", &a));
    let table_b = compile_yaml(&routes_to("svc-b", &b));
    let (gw, table) = gateway(&routes_to("svc-a", &a));
    let addr = http_addr(&gw);

    let keep_alive = tokio::spawn(async move {
        let mut tx = h1(addr).await;
        let mut statuses = Vec::new();
        for _ in 0..300 {
            statuses.push(send1(&mut tx, get_req("app.example.com", "/")).await.status);
        }
        statuses
    });
    let fresh = tokio::spawn(async move {
        let mut statuses = Vec::new();
        for _ in 0..100 {
            statuses.push(get(addr, "app.example.com", "/").await.status);
        }
        statuses
    });
    let h2 = tokio::spawn(async move {
        let mut tx = h2c(addr).await;
        let mut statuses = Vec::new();
        for _ in 0..200 {
            let req = Request::get("http://app.example.com/")
                .body(Full::new(Bytes::new()))
                .unwrap();
            statuses.push(send2(&mut tx, req).await.status);
        }
        statuses
    });
    let mut publishes = 0;
    while !(keep_alive.is_finished() && fresh.is_finished() && h2.is_finished()) {
        let next = if publishes % 2 == 0 {
            &table_b
        } else {
            &table_a
        };
        table.publish(Arc::clone(next));
        publishes += 1;
        tokio::time::sleep(Duration::from_millis(2)).await;
        assert!(publishes < 100_000, "the clients never finished");
    }
    for (name, task) in [
        ("keep-alive", keep_alive),
        ("new connections", fresh),
        ("h2c", h2),
    ] {
        let statuses = bounded(name, task).await.unwrap();
        assert!(
            statuses.iter().all(|s| *s == StatusCode::OK),
            "{name}: {statuses:?}"
        );
    }
    assert!(
        publishes >= 10,
        "only {publishes} publishes happened during the traffic"
    );
    assert!(
        a.requests() > 0 && b.requests() > 0,
        "both tables served: {} {}",
        a.requests(),
        b.requests()
    );
    assert_eq!(a.requests() + b.requests(), 600);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(table.metrics().in_flight(), 0);
    gw.shutdown().await;
}

#[tokio::test]
async fn graceful_shutdown_drains_an_in_flight_request_and_stops_accepting() {
    let a = echo("a").await;
    let (gw, _) = gateway(&routes_to("svc-a", &a));
    let addr = http_addr(&gw);
    let mut tx = h1(addr).await;
    let slow = tokio::spawn(async move { send1(&mut tx, slow_get("app.example.com", 600)).await });
    while a.requests() == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = Instant::now();
    bounded("shutdown", gw.shutdown()).await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(400),
        "shutdown returned before the request ended: {took:?}"
    );
    assert!(
        took < Duration::from_secs(4),
        "shutdown waited for the grace period: {took:?}"
    );
    let slow = bounded("the slow request", slow).await.unwrap();
    assert_eq!(slow.status, StatusCode::OK);
    // Nobody accepts on the old address any more.
    let refused = tokio::net::TcpStream::connect(addr).await;
    assert!(refused.is_err(), "the listener is still open");
}

#[tokio::test]
async fn shutdown_closes_what_is_still_running_when_the_grace_period_ends() {
    let a = echo("a").await;
    let (gw, _) = gateway_with(&routes_to("svc-a", &a), |c| {
        c.timeouts.shutdown_grace = Duration::from_millis(300)
    });
    let addr = http_addr(&gw);
    let slow = tokio::spawn(async move {
        let mut tx = h1(addr).await;
        tx.ready().await.unwrap();
        tx.send_request(slow_get("app.example.com", 5_000)).await
    });
    while a.requests() == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = Instant::now();
    bounded("shutdown", gw.shutdown()).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let cut = bounded("the cut request", slow).await.unwrap();
    assert!(cut.is_err(), "the request should have been cut: {cut:?}");
}

async fn admin_get(addr: SocketAddr, path: &str) -> Reply {
    get(addr, "admin", path).await
}

#[tokio::test]
async fn admin_reports_health_readiness_metrics_routes_and_diagnostics() {
    let a = echo("a").await;
    let yaml = [
        ingress(
            "app",
            Some("app.example.com"),
            &[("/", "Prefix", "svc-a"), ("/missing", "Prefix", "nope")],
        ),
        service("svc-a", &[a.addr()]),
    ]
    .concat();
    let (gw, table) = gateway(&yaml);
    let state = AdminState::new(table.clone());
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let admin_addr = listener.local_addr().unwrap();
    let server = tokio::spawn(admin::serve(listener, state.clone()));

    assert_eq!(
        admin_get(admin_addr, "/healthz").await.status,
        StatusCode::OK
    );
    assert_eq!(
        admin_get(admin_addr, "/readyz").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    state.set_ready(true);
    assert_eq!(
        admin_get(admin_addr, "/readyz").await.status,
        StatusCode::OK
    );
    assert_eq!(
        admin_get(admin_addr, "/nothing").await.status,
        StatusCode::NOT_FOUND
    );

    assert_eq!(
        get(http_addr(&gw), "app.example.com", "/").await.status,
        StatusCode::OK
    );
    assert_eq!(
        get(http_addr(&gw), "app.example.com", "/missing")
            .await
            .status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let metrics = admin_get(admin_addr, "/metrics").await;
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(
        text.contains("mse_requests_total{class=\"2xx\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("mse_requests_total{class=\"5xx\"} 1"),
        "{text}"
    );
    assert!(text.contains("mse_route_table_publishes_total 1"), "{text}");
    assert!(text.contains("mse_requests_in_flight 0"), "{text}");

    let routes = admin_get(admin_addr, "/debug/routes").await.json();
    assert_eq!(routes["generation"], table.routes().generation());
    assert_eq!(
        routes["routes"].as_array().map(Vec::len),
        Some(2),
        "{routes}"
    );

    state.set_extra_diagnostics(vec![Diagnostic::warning("from-loader", "a loader note")]);
    let diags = admin_get(admin_addr, "/debug/diagnostics").await.json();
    let codes: Vec<&str> = diags
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["code"].as_str())
        .collect();
    assert!(codes.contains(&"missing-service"), "{codes:?}");
    assert_eq!(codes.last(), Some(&"from-loader"), "{codes:?}");

    server.abort();
    gw.shutdown().await;
}
