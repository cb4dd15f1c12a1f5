//! End to end over loopback: the upstream HTTP/1.1 client against real and hand-written
//! upstreams: body framing, interim responses, broken responses, connection reuse and the
//! retry of a reused connection the upstream closed.
#![cfg(test)]

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use mse_proxy::echo::EchoServer;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What a hand-written upstream does with request `req` on connection `conn`.
enum Act {
    /// Write these bytes, keep the connection.
    Answer(&'static [u8]),
    /// Write these bytes, then close.
    AnswerAndClose(Vec<u8>),
    /// Close without answering.
    Close,
}

/// A hand-written HTTP/1.1 upstream; returns its address and a count of connections.
async fn raw_upstream(script: fn(usize, usize) -> Act) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let conns = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&conns);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let conn = counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                for req in 0.. {
                    if !read_request(&mut stream, &mut buf).await {
                        return;
                    }
                    match script(conn, req) {
                        Act::Answer(bytes) => {
                            if stream.write_all(bytes).await.is_err() {
                                return;
                            }
                        }
                        Act::AnswerAndClose(bytes) => {
                            let _ = stream.write_all(&bytes).await;
                            return;
                        }
                        Act::Close => return,
                    }
                }
            });
        }
    });
    (addr, conns)
}

/// Reads one request head and its Content-Length body off `stream`.
async fn read_request(stream: &mut tokio::net::TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                buf.drain(..end + 4 + len);
                return true;
            }
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn routes(addr: SocketAddr) -> String {
    [
        ingress("up", Some("up.example.com"), &[("/", "Prefix", "up")]),
        service("up", &[addr]),
    ]
    .concat()
}

#[tokio::test]
async fn chunked_upstream_responses_are_relayed_and_the_connection_reused() {
    let echo = EchoServer::bind(SocketAddr::from(([127, 0, 0, 1], 0)), "chunky")
        .await
        .unwrap();
    let (gw, _) = gateway(&routes(echo.addr()));
    let mut tx = h1(http_addr(&gw)).await;
    for i in 0..3 {
        let req = Request::get(format!("/c/{i}"))
            .header("host", "up.example.com")
            .header("x-echo-chunks", "7")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let r = send1(&mut tx, req).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json()["path"], format!("/c/{i}"));
        assert!(r.headers.get("content-length").is_none(), "{:?}", r.headers);
    }
    let mut h2 = h2c(http_addr(&gw)).await;
    let req = Request::get("http://up.example.com/h2")
        .header("x-echo-chunks", "3")
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert_eq!(send2(&mut h2, req).await.json()["path"], "/h2");
    assert!(
        echo.connections() <= 2,
        "{} upstream connections",
        echo.connections()
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn request_bodies_without_a_length_are_sent_chunked() {
    let echo = EchoServer::bind(SocketAddr::from(([127, 0, 0, 1], 0)), "sink")
        .await
        .unwrap();
    let (gw, _) = gateway(&routes(echo.addr()));
    // A streamed HTTP/2 body carries no Content-Length: the upstream gets it chunked.
    let stream = tokio::net::TcpStream::connect(http_addr(&gw))
        .await
        .unwrap();
    let (mut tx, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let pieces: Vec<Result<http_body::Frame<Bytes>, std::convert::Infallible>> = (0..7)
        .map(|_| Ok(http_body::Frame::data(Bytes::from(vec![b'z'; 10_000]))))
        .collect();
    let body = http_body_util::StreamBody::new(futures_util::stream::iter(pieces));
    let req = Request::post("http://up.example.com/upload")
        .body(body)
        .unwrap();
    let resp = bounded("streamed upload", tx.send_request(req))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let bytes = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    let seen: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(seen["body_bytes"], 70_000);
    assert_eq!(seen["headers"]["transfer-encoding"], "chunked");
    // An empty POST gets Content-Length: 0.
    let mut h2 = h2c(http_addr(&gw)).await;
    let req = Request::post("http://up.example.com/empty")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let r = send2(&mut h2, req).await;
    assert_eq!(r.json()["headers"]["content-length"], "0");
    gw.shutdown().await;
}

#[tokio::test]
async fn a_response_delimited_by_close_is_relayed_and_its_connection_not_reused() {
    let (addr, conns) = raw_upstream(|_, _| {
        Act::AnswerAndClose(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end".to_vec(),
        )
    })
    .await;
    let (gw, _) = gateway(&routes(addr));
    let mut tx = h1(http_addr(&gw)).await;
    for _ in 0..2 {
        let r = send1(&mut tx, get_req("up.example.com", "/")).await;
        assert_eq!(
            (r.status, r.body.as_ref()),
            (StatusCode::OK, &b"until the end"[..])
        );
    }
    assert_eq!(conns.load(Ordering::SeqCst), 2);
    gw.shutdown().await;
}

#[tokio::test]
async fn interim_responses_are_skipped() {
    let (addr, _) = raw_upstream(|_, _| {
        Act::Answer(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok")
    })
    .await;
    let (gw, _) = gateway(&routes(addr));
    let r = get(http_addr(&gw), "up.example.com", "/").await;
    assert_eq!(
        (r.status, r.body.as_ref()),
        (StatusCode::CREATED, &b"ok"[..])
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn broken_or_missing_upstream_responses_get_502() {
    for (i, script) in [
        (|_, _| Act::AnswerAndClose(b"SMTP ready\r\n\r\n".to_vec())) as fn(usize, usize) -> Act,
        |_, _| Act::Answer(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"),
        |_, _| Act::Close,
        |_, _| Act::AnswerAndClose(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n".to_vec()),
        |_, _| Act::Answer(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n"),
        |_, _| {
            let mut big = b"HTTP/1.1 200 OK\r\nX-Big: ".to_vec();
            big.extend(std::iter::repeat_n(b'b', 70 * 1024));
            big.extend_from_slice(b"\r\nContent-Length: 0\r\n\r\n");
            Act::AnswerAndClose(big)
        },
    ]
    .into_iter()
    .enumerate()
    {
        let (addr, _) = raw_upstream(script).await;
        let (gw, _) = gateway(&routes(addr));
        let r = get(http_addr(&gw), "up.example.com", "/").await;
        assert_eq!(
            r.status,
            StatusCode::BAD_GATEWAY,
            "case {i}: {:?}",
            String::from_utf8_lossy(&r.body)
        );
        gw.shutdown().await;
    }
}

#[tokio::test]
async fn a_body_cut_short_by_the_upstream_aborts_the_client_response() {
    let (addr, _) = raw_upstream(|_, _| {
        Act::AnswerAndClose(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part".to_vec())
    })
    .await;
    let (gw, _) = gateway(&routes(addr));
    let mut tx = h1(http_addr(&gw)).await;
    tx.ready().await.unwrap();
    // The client sees the connection fail, before or after the head: never a short body
    // that looks complete.
    if let Ok(resp) = bounded("response", tx.send_request(get_req("up.example.com", "/"))).await {
        assert_eq!(resp.status(), StatusCode::OK);
        let body = bounded("body", http_body_util::BodyExt::collect(resp.into_body())).await;
        assert!(body.is_err(), "a truncated body must not look complete");
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn a_reused_connection_closed_without_answer_is_retried_for_idempotent_requests_only() {
    // Every connection answers its first request and closes on the second without a word,
    // like an upstream whose keep-alive timeout fired just as the request arrived.
    let (addr, conns) = raw_upstream(|_, req| match req {
        0 => Act::Answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
        _ => Act::Close,
    })
    .await;
    let (gw, table) = gateway_with(&routes(addr), |c| c.workers = 1);
    let mut tx = h1(http_addr(&gw)).await;
    for _ in 0..3 {
        let r = send1(&mut tx, get_req("up.example.com", "/")).await;
        assert_eq!(r.status, StatusCode::OK);
    }
    assert_eq!(
        conns.load(Ordering::SeqCst),
        3,
        "each retry opened a new connection"
    );
    // A POST with a body may have been processed: it is not sent twice.
    let post = Request::builder()
        .method(Method::POST)
        .uri("/")
        .header("host", "up.example.com")
        .body(Full::new(Bytes::from_static(b"pay once")))
        .unwrap();
    let r = send1(&mut tx, post).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert_eq!(conns.load(Ordering::SeqCst), 3);
    assert_eq!(table.metrics().requests(2), 3);
    gw.shutdown().await;
}
