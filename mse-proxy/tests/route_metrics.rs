//! Per-route request metrics scraped from the admin listener after real requests: the
//! ingress-nginx label names, the matched rule path (never the request's), canaries,
//! histograms, and the counters of connect errors and refused requests.
#![cfg(test)]

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use http_body_util::Full;
use mse_proxy::admin::{self, AdminState};
use mse_proxy::{GatewayHandle, SharedTable};
use support::*;

/// Serves the admin endpoints of `table` on loopback; the address to scrape.
async fn admin_of(table: &SharedTable) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(admin::serve(listener, AdminState::new(table.clone())));
    addr
}

/// `GET /metrics`, checked for the OpenMetrics ending.
async fn scrape(admin: SocketAddr) -> String {
    let r = get(admin, "admin", "/metrics").await;
    assert_eq!(r.status, StatusCode::OK);
    let text = String::from_utf8(r.body.to_vec()).unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    text
}

/// Scrapes until every line of `want` is in the scrape (responses are counted as their
/// bodies end, just after the client has them); the last scrape.
async fn scrape_until(admin: SocketAddr, want: &[String]) -> String {
    bounded("the expected metrics", async {
        loop {
            let text = scrape(admin).await;
            if want.iter().all(|w| text.lines().any(|l| l == w)) {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

fn labels(ingress: &str, svc: &str, host: &str, path: &str, canary: &str) -> String {
    format!(
        "namespace=\"default\",ingress=\"{ingress}\",service=\"{svc}\",host=\"{host}\",path=\"{path}\",canary=\"{canary}\""
    )
}

async fn started() -> (GatewayHandle, SharedTable, Vec<mse_proxy::echo::EchoServer>) {
    let a = echo("svc-a").await;
    let b = echo("svc-b").await;
    // A port nothing listens on: connections are refused.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let yaml = [
        ingress(
            "shop",
            Some("shop.example.com"),
            &[("/api", "Prefix", "svc-a")],
        ),
        annotate(
            &ingress(
                "shop-canary",
                Some("shop.example.com"),
                &[("/api", "Prefix", "svc-b")],
            ),
            &[("canary", "true"), ("canary-by-header", "x-canary")],
        ),
        annotate(
            &ingress(
                "secure",
                Some("secure.example.com"),
                &[("/", "Prefix", "svc-a")],
            ),
            &[("auth-type", "basic"), ("auth-secret", "users")],
        ),
        secret("users", &[("auth", "u:{SHA}KvPXpIScDQubdcQXyPXUdUCmoqA=")]),
        ingress(
            "down",
            Some("down.example.com"),
            &[("/", "Prefix", "svc-down")],
        ),
        service("svc-a", &[a.addr()]),
        service("svc-b", &[b.addr()]),
        service("svc-down", &[closed]),
    ]
    .concat();
    let (gw, table) = gateway(&yaml);
    (gw, table, vec![a, b])
}

#[tokio::test]
async fn requests_are_counted_by_route_method_status_and_canary() {
    let (gw, table, _backends) = started().await;
    let admin = admin_of(&table).await;
    let addr = http_addr(&gw);

    let mut tx = h1(addr).await;
    for i in 0..3 {
        let path = format!("/api/items/{i}?page=2");
        let r = send1(&mut tx, request("shop.example.com", "GET", &path, &[])).await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let post = http::Request::builder()
        .method("POST")
        .uri("/api/orders")
        .header("host", "shop.example.com")
        .header("content-length", "5")
        .body(Full::new(Bytes::from_static(b"hello")))
        .unwrap();
    assert_eq!(send1(&mut tx, post).await.status, StatusCode::OK);
    for _ in 0..2 {
        let req = request(
            "shop.example.com",
            "GET",
            "/api/x",
            &[("x-canary", "always")],
        );
        let r = send1(&mut tx, req).await;
        assert_eq!(r.service(), "svc-b");
    }
    assert_eq!(
        get(addr, "nowhere.example.com", "/zzz").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get_as(addr, "secure.example.com", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get(addr, "down.example.com", "/").await.status,
        StatusCode::BAD_GATEWAY
    );

    let shop = labels("shop", "svc-a", "shop.example.com", "/api", "");
    let canary = labels(
        "shop-canary",
        "svc-b",
        "shop.example.com",
        "/api",
        "default-svc-b-80",
    );
    let secure = labels("secure", "svc-a", "secure.example.com", "/", "");
    let down = labels("down", "svc-down", "down.example.com", "/", "");
    let unmatched = "namespace=\"\",ingress=\"\",service=\"\",host=\"\",path=\"\",canary=\"\"";
    let want = [
        format!("mse_ingress_requests_total{{{shop},method=\"GET\",status=\"200\"}} 3"),
        format!("mse_ingress_requests_total{{{shop},method=\"POST\",status=\"200\"}} 1"),
        format!("mse_ingress_requests_total{{{canary},method=\"GET\",status=\"200\"}} 2"),
        format!("mse_ingress_requests_total{{{unmatched},method=\"GET\",status=\"404\"}} 1"),
        format!("mse_ingress_requests_total{{{secure},method=\"GET\",status=\"401\"}} 1"),
        format!("mse_ingress_requests_total{{{down},method=\"GET\",status=\"502\"}} 1"),
        format!("mse_ingress_auth_refused_requests_total{{{secure}}} 1"),
        format!("mse_ingress_upstream_connect_errors_total{{{down}}} 1"),
        format!("mse_ingress_upstream_connect_errors_total{{{shop}}} 0"),
        format!(
            "mse_ingress_request_duration_seconds_count{{{shop},method=\"GET\",status=\"200\"}} 3"
        ),
        format!(
            "mse_ingress_request_duration_seconds_bucket{{{shop},method=\"GET\",status=\"200\",le=\"+Inf\"}} 3"
        ),
        format!(
            "mse_ingress_response_duration_seconds_count{{{shop},method=\"GET\",status=\"200\"}} 3"
        ),
        format!("mse_ingress_request_size_sum{{{shop},method=\"POST\",status=\"200\"}} 5"),
        format!(
            "mse_ingress_request_size_bucket{{{shop},method=\"POST\",status=\"200\",le=\"10\"}} 1"
        ),
    ];
    let text = scrape_until(admin, &want).await;
    // The request's own path never becomes a label.
    assert!(!text.contains("/api/items"), "{text}");
    assert!(!text.contains("page=2"), "{text}");
    // The gateway answered the 404 and the 401 itself: no upstream time for them.
    assert!(
        !text.contains(&format!(
            "mse_ingress_response_duration_seconds_count{{{secure},method=\"GET\",status=\"401\"}}"
        )),
        "{text}"
    );
    // The response sizes add up to the bodies the client got.
    let sizes = text
        .lines()
        .find(|l| {
            l.starts_with(&format!(
                "mse_ingress_response_size_count{{{shop},method=\"GET\",status=\"200\"}}"
            ))
        })
        .unwrap();
    assert!(sizes.ends_with(" 3"), "{sizes}");
    gw.shutdown().await;
}

#[tokio::test]
async fn counters_of_a_label_set_keep_growing_across_tables() {
    let (gw, table, backends) = started().await;
    let admin = admin_of(&table).await;
    let addr = http_addr(&gw);
    let shop = labels("shop", "svc-a", "shop.example.com", "/api", "");
    let line =
        |n: u32| format!("mse_ingress_requests_total{{{shop},method=\"GET\",status=\"200\"}} {n}");
    assert_eq!(
        get(addr, "shop.example.com", "/api/1").await.status,
        StatusCode::OK
    );
    scrape_until(admin, &[line(1)]).await;
    // The same routes in a new table (another Ingress added): the count goes on.
    let yaml = [
        ingress(
            "shop",
            Some("shop.example.com"),
            &[("/api", "Prefix", "svc-a")],
        ),
        ingress(
            "other",
            Some("other.example.com"),
            &[("/", "Prefix", "svc-a")],
        ),
        service("svc-a", &[backends[0].addr()]),
    ]
    .concat();
    table.publish(compile_yaml(&yaml));
    assert_eq!(
        get(addr, "shop.example.com", "/api/2").await.status,
        StatusCode::OK
    );
    assert_eq!(
        get(addr, "other.example.com", "/").await.status,
        StatusCode::OK
    );
    let other = labels("other", "svc-a", "other.example.com", "/", "");
    scrape_until(
        admin,
        &[
            line(2),
            format!("mse_ingress_requests_total{{{other},method=\"GET\",status=\"200\"}} 1"),
        ],
    )
    .await;
    gw.shutdown().await;
}
