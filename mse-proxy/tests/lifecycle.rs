//! End to end over loopback: hot swaps under traffic, graceful shutdown, the admin server.
#![cfg(test)]

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

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

    // Each client makes at least its count of requests, and goes on until the publishes
    // are done.
    let done = Arc::new(AtomicBool::new(false));
    let more = |made: usize, least: usize, done: &AtomicBool| {
        made < least || !done.load(Ordering::Relaxed)
    };
    let keep_alive = tokio::spawn({
        let done = Arc::clone(&done);
        async move {
            let mut tx = h1(addr).await;
            let mut statuses = Vec::new();
            while more(statuses.len(), 300, &done) {
                statuses.push(send1(&mut tx, get_req("app.example.com", "/")).await.status);
            }
            statuses
        }
    });
    let fresh = tokio::spawn({
        let done = Arc::clone(&done);
        async move {
            let mut statuses = Vec::new();
            while more(statuses.len(), 100, &done) {
                statuses.push(get(addr, "app.example.com", "/").await.status);
            }
            statuses
        }
    });
    let h2 = tokio::spawn({
        let done = Arc::clone(&done);
        async move {
            let mut tx = h2c(addr).await;
            let mut statuses = Vec::new();
            while more(statuses.len(), 200, &done) {
                let req = Request::get("http://app.example.com/")
                    .body(Full::new(Bytes::new()))
                    .unwrap();
                statuses.push(send2(&mut tx, req).await.status);
            }
            statuses
        }
    });
    // Each publish is followed by a request the new table served, however fast the
    // clients run.
    const PUBLISHES: usize = 50;
    for publish in 0..PUBLISHES {
        let (next, served_by) = if publish % 2 == 0 {
            (&table_b, &b)
        } else {
            (&table_a, &a)
        };
        let before = served_by.requests();
        table.publish(Arc::clone(next));
        bounded("a request on the new table", async {
            while served_by.requests() == before {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await;
    }
    done.store(true, Ordering::Relaxed);
    let mut total = 0;
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
        total += statuses.len() as u64;
    }
    assert_eq!(a.requests() + b.requests(), total);
    assert_eq!(table.metrics().table_publishes(), 1 + PUBLISHES as u64);
    // The last response ends just after the client has it.
    let metrics = table.metrics();
    bounded("in-flight requests ending", async {
        while metrics.in_flight() != 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    gw.shutdown().await;
}

#[tokio::test]
async fn graceful_shutdown_drains_an_in_flight_request_and_stops_accepting() {
    let a = echo("a").await;
    // A grace period of an hour: a shutdown that waited for it never returns.
    let (gw, table) = gateway_with(&routes_to("svc-a", &a), |c| {
        c.timeouts.shutdown_grace = Duration::from_secs(3600)
    });
    let addr = http_addr(&gw);
    let mut tx = h1(addr).await;
    let slow = tokio::spawn(async move { send1(&mut tx, slow_get("app.example.com", 600)).await });
    while table.metrics().in_flight() == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    bounded("shutdown", gw.shutdown()).await;
    assert_eq!(
        table.metrics().in_flight(),
        0,
        "shutdown returned before the request ended"
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
        // Answered after an hour: shutdown returns only because the grace period ends.
        tx.send_request(slow_get("app.example.com", 3_600_000))
            .await
    });
    while a.requests() == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    bounded("shutdown", gw.shutdown()).await;
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
