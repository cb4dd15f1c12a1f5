//! Conformance of the client-facing HTTP/1.1 server over raw loopback sockets: responses.
//! HEAD, and response framing per client version. Each test asserts the bytes the client
//! gets and what the backend saw.
#![cfg(test)]

mod http1_client;
mod support;

use http1_client::*;
use support::*;

// === HEAD and response framing ===

#[tokio::test]
async fn head_gets_the_length_without_a_body_and_the_connection_goes_on() {
    let (a, gw, mut c) = echo_client(|_| {}).await;
    let head = "HEAD /h HTTP/1.1\r\nHost: a.example.com\r\n\r\n";
    c.send(format!("{head}{}", get_a("/g"))).await;
    let r = c.read(true).await;
    assert_eq!(r.status, 200);
    let len: usize = r
        .header("content-length")
        .expect("Content-Length")
        .parse()
        .unwrap();
    assert!(len > 0, "{:?}", r.headers);
    assert!(r.header("transfer-encoding").is_none(), "{:?}", r.headers);
    // Had body bytes followed the HEAD response, this would not parse as a response.
    let r = c.response().await;
    assert_eq!(r.json()["path"], "/g");
    assert_eq!(a.requests(), 2);
    gw.shutdown().await;
}

const CHUNKED_ANSWER: &[u8] =
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7;x=y\r\n, world\r\n0\r\n\r\n";

#[tokio::test]
async fn a_chunked_upstream_response_reaches_an_http11_client_chunked() {
    let (addr, seen) = scripted(CHUNKED_ANSWER, true, false).await;
    let gw = gateway_waiting_an_hour(&routed_to(&[("up", addr)]), |_| {});
    let mut c = Client::connect(http_addr(&gw)).await;
    for _ in 0..2 {
        let r = c
            .ask("GET /c HTTP/1.1\r\nHost: up.example.com\r\n\r\n")
            .await;
        assert_eq!((r.status, r.chunked), (200, true), "{r:?}");
        assert!(r.header("content-length").is_none(), "{:?}", r.headers);
        assert_eq!(r.body, b"hello, world");
    }
    assert_eq!(seen.lock().unwrap().lines.len(), 2);
    gw.shutdown().await;
}

#[tokio::test]
async fn a_chunked_upstream_response_reaches_an_http10_client_delimited_by_close() {
    let (addr, _) = scripted(CHUNKED_ANSWER, true, false).await;
    let gw = gateway_waiting_an_hour(&routed_to(&[("up", addr)]), |_| {});
    for extra in ["", "Connection: keep-alive\r\n"] {
        let mut c = Client::connect(http_addr(&gw)).await;
        let r = c
            .ask(format!(
                "GET /c HTTP/1.0\r\nHost: up.example.com\r\n{extra}\r\n"
            ))
            .await;
        // HTTP/1.1 in the status line is what nginx sends too (RFC 9110 section 2.5).
        assert!(matches!(r.version.as_str(), "HTTP/1.0" | "HTTP/1.1") && r.status == 200);
        assert!(r.header("transfer-encoding").is_none(), "{:?}", r.headers);
        // Without Content-Length the helper read to the close: the body came whole.
        assert_eq!(r.body, b"hello, world", "{:?}", r.headers);
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn a_close_delimited_response_to_http10_keep_alive_does_not_claim_keep_alive() {
    let (addr, _) = scripted(CHUNKED_ANSWER, true, false).await;
    let gw = gateway_waiting_an_hour(&routed_to(&[("up", addr)]), |_| {});
    let mut c = Client::connect(http_addr(&gw)).await;
    let r = c
        .ask("GET /c HTTP/1.0\r\nHost: up.example.com\r\nConnection: keep-alive\r\n\r\n")
        .await;
    assert!(r.header("content-length").is_none(), "{:?}", r.headers);
    assert!(!r.connection_has("keep-alive"), "{:?}", r.headers);
    gw.shutdown().await;
}

#[tokio::test]
async fn a_close_delimited_upstream_response_reaches_the_client_whole() {
    let answer = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end";
    let (addr, seen) = scripted(answer, true, true).await;
    let gw = gateway_waiting_an_hour(&routed_to(&[("up", addr)]), |_| {});
    let mut c = Client::connect(http_addr(&gw)).await;
    let get = "GET / HTTP/1.1\r\nHost: up.example.com\r\n\r\n";
    let r = c.ask(get).await;
    assert_eq!((r.status, r.body.as_slice()), (200, &b"until the end"[..]));
    if r.chunked || r.header("content-length").is_some() {
        c.send(get).await;
        assert_eq!(c.response().await.body, b"until the end");
        assert_eq!(seen.lock().unwrap().lines.len(), 2);
    }
    gw.shutdown().await;
}
