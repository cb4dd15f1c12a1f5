//! End to end over loopback: routing, the gateway's own error answers, headers seen by the
//! upstream, load balancing and upstream connection reuse.
#![cfg(test)]

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use mse_proxy::echo::{EchoOptions, EchoServer};
use support::*;

const LOOPBACK: ([u8; 4], u16) = ([127, 0, 0, 1], 0);

/// A loopback port nothing listens on.
async fn closed_port() -> SocketAddr {
    let l = tokio::net::TcpListener::bind(SocketAddr::from(LOOPBACK))
        .await
        .expect("bind");
    l.local_addr().expect("addr")
}

#[tokio::test]
async fn host_picks_the_backend() {
    let (a, b) = (echo("a").await, echo("b").await);
    let yaml = routed_to(&[("a", a.addr()), ("b", b.addr())]);
    let (gw, _) = gateway(&yaml);
    let addr = http_addr(&gw);
    let ra = get(addr, "a.example.com", "/x").await;
    assert_eq!(ra.status, StatusCode::OK);
    assert_eq!(ra.service(), "a");
    let rb = get(addr, "B.Example.com:8080", "/x").await;
    assert_eq!(rb.status, StatusCode::OK);
    assert_eq!(rb.service(), "b");
    assert_eq!(
        rb.echoed_header("host").as_deref(),
        Some("B.Example.com:8080"),
        "Host is kept"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn exact_then_longest_prefix_picks_the_backend() {
    let (api, web, exact) = (echo("api").await, echo("web").await, echo("exact").await);
    let yaml = [
        ingress(
            "shop",
            Some("shop.example.com"),
            &[
                ("/api", "Prefix", "api"),
                ("/", "Prefix", "web"),
                ("/api/login", "Exact", "exact"),
            ],
        ),
        service("api", &[api.addr()]),
        service("web", &[web.addr()]),
        service("exact", &[exact.addr()]),
    ]
    .concat();
    let (gw, _) = gateway(&yaml);
    let addr = http_addr(&gw);
    for (path, want) in [
        ("/api", "api"),
        ("/api/orders", "api"),
        ("/apiary", "web"),
        ("/", "web"),
        ("/api/login", "exact"),
        ("/api/login/", "api"),
    ] {
        let r = get(addr, "shop.example.com", path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(r.service(), want, "{path}");
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn the_normalised_path_is_matched_and_forwarded_with_its_query() {
    let (api, web) = (echo("api").await, echo("web").await);
    let yaml = [
        ingress(
            "shop",
            Some("shop.example.com"),
            &[("/api", "Prefix", "api"), ("/", "Prefix", "web")],
        ),
        service("api", &[api.addr()]),
        service("web", &[web.addr()]),
    ]
    .concat();
    let (gw, _) = gateway(&yaml);
    let r = get(
        http_addr(&gw),
        "shop.example.com",
        "/web/..//api/./v1/%7Euser?q=a%2Fb&x",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.service(), "api");
    let echoed = r.json();
    assert_eq!(echoed["path"], "/api/v1/~user");
    assert_eq!(echoed["query"], "q=a%2Fb&x");
    // A path that climbs above the root cannot escape the route either.
    let r = get(http_addr(&gw), "shop.example.com", "/../../api").await;
    assert_eq!(r.service(), "api");
    assert_eq!(r.json()["path"], "/api");
    gw.shutdown().await;
}

#[tokio::test]
async fn unknown_host_or_unmatched_path_gets_404() {
    let a = echo("a").await;
    let yaml = [
        ingress("a", Some("a.example.com"), &[("/only", "Exact", "svc-a")]),
        service("svc-a", &[a.addr()]),
    ]
    .concat();
    let (gw, table) = gateway(&yaml);
    let addr = http_addr(&gw);
    let r = get(addr, "nobody.example.com", "/only").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body, "404 Not Found\n");
    assert_eq!(r.headers["content-type"], "text/plain; charset=utf-8");
    assert_eq!(
        get(addr, "a.example.com", "/other").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(addr, "a.example.com", "/only").await.status,
        StatusCode::OK
    );
    assert_eq!(a.requests(), 1);
    assert_eq!(table.metrics().requests(4), 2);
    assert_eq!(table.metrics().requests(2), 1);
    gw.shutdown().await;
}

#[tokio::test]
async fn missing_service_or_no_ready_endpoint_gets_503() {
    let yaml = [
        ingress(
            "a",
            Some("a.example.com"),
            &[
                ("/gone", "Prefix", "missing"),
                ("/empty", "Prefix", "empty"),
            ],
        ),
        service("empty", &[]),
    ]
    .concat();
    let (gw, _) = gateway(&yaml);
    let addr = http_addr(&gw);
    let r = get(addr, "a.example.com", "/gone").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.body, "503 Service Unavailable\n");
    assert_eq!(
        get(addr, "a.example.com", "/empty").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn refused_upstream_connection_gets_502() {
    let dead = closed_port().await;
    let yaml = [
        ingress("a", Some("a.example.com"), &[("/", "Prefix", "dead")]),
        service("dead", &[dead]),
    ]
    .concat();
    let (gw, table) = gateway(&yaml);
    let r = get(http_addr(&gw), "a.example.com", "/").await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert_eq!(r.body, "502 Bad Gateway\n");
    assert_eq!(table.metrics().upstream_connect_errors(), 1);
    gw.shutdown().await;
}

#[tokio::test]
async fn upstream_slower_than_the_response_timeout_gets_504() {
    let slow = echo("slow").await;
    let yaml = [
        ingress("a", Some("a.example.com"), &[("/", "Prefix", "slow")]),
        service("slow", &[slow.addr()]),
    ]
    .concat();
    let (gw, table) = gateway_with(&yaml, |c| {
        c.timeouts.upstream_response = Duration::from_millis(300)
    });
    let addr = http_addr(&gw);
    let mut tx = h1(addr).await;
    // The upstream answers after an hour: a 504 at all means the gateway's timeout fired.
    let req = Request::get("/")
        .header("host", "a.example.com")
        .header("x-echo-delay-ms", "3600000");
    let r = send1(&mut tx, req.body(Full::new(Bytes::new())).unwrap()).await;
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(table.metrics().upstream_timeouts(), 1);
    // The same client connection still works, and a fast answer is not cut short.
    let r = send1(&mut tx, get_req("a.example.com", "/")).await;
    assert_eq!(r.status, StatusCode::OK);
    gw.shutdown().await;
}

#[tokio::test]
async fn request_head_larger_than_the_limit_gets_431() {
    let a = echo("a").await;
    let yaml = routed_to(&[("a", a.addr())]);
    let (gw, _) = gateway_with(&yaml, |c| c.max_header_size = 16 * 1024);
    let big = "v".repeat(20 * 1024);
    let request = format!("GET / HTTP/1.1\r\nHost: a.example.com\r\nX-Big: {big}\r\n\r\n");
    let answer = raw(http_addr(&gw), request.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:?}");
    // Just under the limit passes.
    let fits = "v".repeat(12 * 1024);
    let mut tx = h1(http_addr(&gw)).await;
    let req = Request::get("/")
        .header("host", "a.example.com")
        .header("x-big", fits.as_str());
    assert_eq!(
        send1(&mut tx, req.body(Full::new(Bytes::new())).unwrap())
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(a.requests(), 1);
    gw.shutdown().await;
}

#[tokio::test]
async fn malformed_requests_get_400_and_connect_gets_405() {
    let a = echo("a").await;
    let yaml = [
        ingress("any", None, &[("/", "Prefix", "svc-a")]),
        service("svc-a", &[a.addr()]),
    ]
    .concat();
    let (gw, _) = gateway(&yaml);
    let addr = http_addr(&gw);
    let answer = raw(addr, b"GET / HTTP/1.1\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 400"), "no Host: {answer:?}");
    let answer = raw(addr, b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 400"), "two Hosts: {answer:?}");
    let answer = raw(addr, b"GET / HTTP/1.1\r\nHost a\r\n\r\n").await;
    assert!(
        answer.starts_with("HTTP/1.1 400"),
        "broken header: {answer:?}"
    );
    let answer = raw(
        addr,
        b"CONNECT a.example.com:443 HTTP/1.1\r\nHost: a.example.com:443\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 405"), "CONNECT: {answer:?}");
    // HTTP/1.0 needs no Host, and rules without a host serve it.
    let answer = raw(addr, b"GET /ten HTTP/1.0\r\n\r\n").await;
    assert!(
        answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200"),
        "{answer:?}"
    );
    assert_eq!(a.requests(), 1);
    gw.shutdown().await;
}

#[tokio::test]
async fn upstream_sees_forwarded_headers_and_no_hop_by_hop_headers() {
    let a = echo("a").await;
    let yaml = routed_to(&[("a", a.addr())]);
    let (gw, _) = gateway(&yaml);
    let addr = http_addr(&gw);
    let mut tx = h1(addr).await;
    let req = Request::get("/h")
        .header("host", "a.example.com")
        .header("connection", "keep-alive, x-hop")
        .header("x-hop", "secret")
        .header("keep-alive", "timeout=5")
        .header("proxy-connection", "keep-alive")
        .header("te", "trailers")
        .header("upgrade", "h2c")
        .header("x-forwarded-for", "203.0.113.7")
        .header("x-end-to-end", "kept")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let r = send1(&mut tx, req).await;
    assert_eq!(r.status, StatusCode::OK);
    let seen = r.json();
    let headers = seen["headers"].as_object().expect("headers");
    for hop in [
        "x-hop",
        "keep-alive",
        "proxy-connection",
        "te",
        "upgrade",
        "transfer-encoding",
    ] {
        assert!(
            !headers.contains_key(hop),
            "{hop} reached the upstream: {headers:?}"
        );
    }
    assert_ne!(
        headers.get("connection").and_then(|v| v.as_str()),
        Some("keep-alive, x-hop")
    );
    assert_eq!(headers["x-end-to-end"], "kept");
    assert_eq!(headers["host"], "a.example.com");
    assert_eq!(headers["x-forwarded-for"], "203.0.113.7, 127.0.0.1");
    assert_eq!(headers["x-real-ip"], "127.0.0.1");
    assert_eq!(headers["x-forwarded-proto"], "http");
    assert_eq!(headers["x-forwarded-host"], "a.example.com");
    assert_eq!(headers["x-forwarded-port"], addr.port().to_string());
    assert_eq!(seen["version"], "HTTP/1.1");
    gw.shutdown().await;
}

#[tokio::test]
async fn request_and_response_bodies_stream_through() {
    let a = echo("a").await;
    let yaml = routed_to(&[("a", a.addr())]);
    let (gw, _) = gateway(&yaml);
    let mut tx = h1(http_addr(&gw)).await;
    let upload = Bytes::from(vec![b'u'; 300_000]);
    let req = Request::post("/upload")
        .header("host", "a.example.com")
        .body(Full::new(upload))
        .unwrap();
    let r = send1(&mut tx, req).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["body_bytes"], 300_000);
    assert_eq!(r.json()["method"], "POST");
    let req = Request::get("/download")
        .header("host", "a.example.com")
        .header("x-echo-body-bytes", "2000000")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let r = send1(&mut tx, req).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body.len(), 2_000_000);
    // HEAD gets the head only, and the upstream status passes through.
    let req = Request::builder()
        .method(Method::HEAD)
        .uri("/")
        .header("host", "a.example.com")
        .header("x-echo-status", "418")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let r = send1(&mut tx, req).await;
    assert_eq!(r.status, StatusCode::IM_A_TEAPOT);
    assert!(r.body.is_empty());
    gw.shutdown().await;
}

#[tokio::test]
async fn requests_go_round_robin_over_the_endpoints() {
    let (e1, e2) = (echo("one").await, echo("two").await);
    let yaml = [
        ingress("a", Some("a.example.com"), &[("/", "Prefix", "pair")]),
        service("pair", &[e1.addr(), e2.addr()]),
    ]
    .concat();
    let (gw, _) = gateway(&yaml);
    for _ in 0..10 {
        assert_eq!(
            get(http_addr(&gw), "a.example.com", "/").await.status,
            StatusCode::OK
        );
    }
    assert_eq!((e1.requests(), e2.requests()), (5, 5));
    gw.shutdown().await;
}

#[tokio::test]
async fn upstream_connections_are_kept_alive_and_reused() {
    let a = echo("a").await;
    let yaml = routed_to(&[("a", a.addr())]);
    let (gw, _) = gateway(&yaml);
    let mut tx = h1(http_addr(&gw)).await;
    for _ in 0..20 {
        assert_eq!(
            send1(&mut tx, get_req("a.example.com", "/")).await.status,
            StatusCode::OK
        );
    }
    assert_eq!(a.requests(), 20);
    assert_eq!(
        a.connections(),
        1,
        "one client connection is served by one worker and one upstream connection"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn a_pooled_connection_the_upstream_closed_is_replaced() {
    let a = EchoServer::bind_with(SocketAddr::from(LOOPBACK), "a", {
        let mut o = EchoOptions::default();
        o.idle_timeout = Some(Duration::from_millis(100));
        o
    })
    .await
    .unwrap();
    let yaml = routed_to(&[("a", a.addr())]);
    let (gw, table) = gateway(&yaml);
    let mut tx = h1(http_addr(&gw)).await;
    for i in 1..=4 {
        assert_eq!(
            send1(&mut tx, get_req("a.example.com", "/")).await.status,
            StatusCode::OK
        );
        // The upstream closes the idle pooled connection before the next request.
        bounded("the upstream closing the idle connection", async {
            while a.closed_connections() < i {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
    }
    assert_eq!(a.requests(), 4);
    assert_eq!(a.connections(), 4);
    assert_eq!(table.metrics().requests(5), 0);
    gw.shutdown().await;
}

#[tokio::test]
async fn external_name_services_are_resolved_by_dns() {
    let a = echo("external").await;
    let yaml = [
        ingress("a", Some("a.example.com"), &[("/", "Prefix", "ext")]),
        external_service("ext", "localhost", a.addr().port()),
    ]
    .concat();
    let (gw, _) = gateway(&yaml);
    let r = get(http_addr(&gw), "a.example.com", "/").await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{:?}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.service(), "external");
    assert_eq!(r.echoed_header("host").as_deref(), Some("a.example.com"));
    gw.shutdown().await;
}
