//! Conformance of the client-facing HTTP/1.1 server over raw loopback sockets: connections.
//! Pipelining, keep-alive and close, and the header read timeout. Each test asserts the
//! bytes the client gets and what the backend saw.
#![cfg(test)]

mod http1_client;
mod support;

use std::time::{Duration, Instant};

use http1_client::*;
use mse_proxy::ProxyConfig;
use support::*;

// === pipelining and keep-alive ===

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let (a, gw, mut c) = echo_client(|_| {}).await;
    c.send(format!("{}{}", get_a("/one"), get_a("/two"))).await;
    for path in ["/one", "/two"] {
        let r = c.response().await;
        assert_eq!((r.version.as_str(), r.status), ("HTTP/1.1", 200));
        assert_eq!(r.header("x-echo-service"), Some("a"));
        assert_eq!(r.json()["path"], path);
    }
    // Three, the middle one with a body.
    let post = "POST /p/2 HTTP/1.1\r\nHost: a.example.com\r\nContent-Length: 5\r\n\r\nhello";
    c.send(format!("{}{post}{}", get_a("/p/1?q=1"), get_a("/p/3")))
        .await;
    for (path, method, body) in [
        ("/p/1", "GET", ""),
        ("/p/2", "POST", "hello"),
        ("/p/3", "GET", ""),
    ] {
        let seen = c.response().await.json();
        assert_eq!(
            (&seen["path"], &seen["method"]),
            (&path.into(), &method.into())
        );
        assert_eq!(seen["body"], body);
    }
    assert_eq!(a.requests(), 5);
    gw.shutdown().await;
}

#[tokio::test]
async fn sequential_requests_share_one_keep_alive_connection() {
    let (a, gw, mut c) = echo_client(|_| {}).await;
    for i in 0..5 {
        let r = c.ask(get_a(&format!("/seq/{i}"))).await;
        assert_eq!(r.status, 200);
        assert!(!r.connection_has("close"), "{:?}", r.headers);
        assert_eq!(r.json()["path"], format!("/seq/{i}"));
    }
    assert_eq!(a.requests(), 5);
    gw.shutdown().await;
}

#[tokio::test]
async fn http10_without_keep_alive_is_answered_then_closed() {
    let (a, gw, mut c) = echo_client(|_| {}).await;
    let r = c
        .ask("GET /ten HTTP/1.0\r\nHost: a.example.com\r\n\r\n")
        .await;
    // HTTP/1.1 in the status line is what nginx sends too (RFC 9110 section 2.5).
    assert!(matches!(r.version.as_str(), "HTTP/1.0" | "HTTP/1.1") && r.status == 200);
    assert!(!r.connection_has("keep-alive"), "{:?}", r.headers);
    assert_eq!(r.json()["path"], "/ten");
    assert!(c.closes().await);
    assert_eq!(a.requests(), 1);
    gw.shutdown().await;
}

#[tokio::test]
async fn http10_with_keep_alive_stays_open_and_says_so() {
    let (a, gw, mut c) = echo_client(|_| {}).await;
    for path in ["/k/1", "/k/2"] {
        let r = c
            .ask(format!(
                "GET {path} HTTP/1.0\r\nHost: a.example.com\r\nConnection: Keep-Alive\r\n\r\n"
            ))
            .await;
        // HTTP/1.1 in the status line is what nginx sends too (RFC 9110 section 2.5).
        assert!(matches!(r.version.as_str(), "HTTP/1.0" | "HTTP/1.1") && r.status == 200);
        assert!(r.connection_has("keep-alive"), "{:?}", r.headers);
        assert!(r.header("content-length").is_some(), "{:?}", r.headers);
        assert_eq!(r.json()["path"], path);
    }
    // Without the token the next one closes.
    c.send("GET /k/3 HTTP/1.0\r\nHost: a.example.com\r\n\r\n")
        .await;
    assert_eq!(c.response().await.json()["path"], "/k/3");
    assert!(c.closes().await);
    assert_eq!(a.requests(), 3);
    gw.shutdown().await;
}

#[tokio::test]
async fn connection_close_is_answered_with_close_and_nothing_after_it_is_served() {
    let (a, gw, mut c) = echo_client(|_| {}).await;
    let close = "GET /last HTTP/1.1\r\nHost: a.example.com\r\nConnection: close\r\n\r\n";
    let r = c.ask(format!("{close}{}", get_a("/never"))).await;
    assert_eq!((r.version.as_str(), r.status), ("HTTP/1.1", 200));
    assert!(r.connection_has("close"), "{:?}", r.headers);
    assert_eq!(r.json()["path"], "/last");
    assert!(c.closes().await);
    assert_eq!(a.requests(), 1);
    gw.shutdown().await;
}

// === header read timeout ===

fn short_header_read(c: &mut ProxyConfig) {
    c.timeouts.header_read = Duration::from_millis(300);
}

#[tokio::test]
async fn a_half_sent_head_is_closed_after_the_header_read_timeout() {
    let (a, gw, _) = echo_client(short_header_read).await;
    let started = Instant::now();
    let mut c = Client::connect(http_addr(&gw)).await;
    c.send("GET /slow HTTP/1.1\r\nHost: a.exa").await;
    let (rest, closed) = c.rest(WAIT).await;
    let took = started.elapsed();
    assert!(closed, "{rest:?}");
    assert!(
        rest.is_empty() || rest.starts_with("HTTP/1.1 408"),
        "{rest:?}"
    );
    // Not before the timeout; how long after it depends on the machine.
    assert!(took >= Duration::from_millis(250), "{took:?}");
    assert_eq!(a.requests(), 0);
    gw.shutdown().await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_keep_alive_timeout() {
    let (a, gw, mut c) = echo_client(|c| c.timeouts.keep_alive = Duration::from_millis(300)).await;
    c.send(get_a("/once")).await;
    assert_eq!(c.response().await.status, 200);
    let started = Instant::now();
    assert!(
        c.closes().await,
        "idle connection still open after {WAIT:?}"
    );
    // Not before the timeout.
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(a.requests(), 1);
    gw.shutdown().await;
}

#[tokio::test]
async fn a_head_sent_in_pieces_within_the_timeout_is_served() {
    // A timeout far longer than sending the pieces takes on any machine; the pauses only
    // make each piece its own read.
    let (a, gw, mut c) = echo_client(|c| c.timeouts.header_read = WAIT).await;
    for piece in [
        "GET /pie",
        "ces HTTP/1.1\r\nHo",
        "st: a.example.com\r\n",
        "\r\n",
    ] {
        c.send(piece).await;
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(c.response().await.json()["path"], "/pieces");
    assert_eq!(a.requests(), 1);
    gw.shutdown().await;
}
