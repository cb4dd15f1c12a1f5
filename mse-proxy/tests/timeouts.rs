//! What the gateway does when an upstream or a client does not keep pace: an upstream
//! that answers before the upload ends, an upstream that stalls in the middle of a
//! response body, and a client that stops reading. Raw sockets on loopback on both sides.
#![cfg(test)]

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use support::*;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// Reads until a whole response head arrived, or the connection ended; returns what was
/// read.
async fn read_head<R: AsyncRead + Unpin>(io: &mut R) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        match io.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// A raw upstream on loopback that serves one connection with `serve`.
async fn raw_upstream<F, Fut>(serve: F) -> SocketAddr
where
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        serve(stream).await;
    });
    addr
}

#[tokio::test]
async fn an_answer_before_the_upload_ends_reaches_the_client() {
    let upstream = raw_upstream(|mut s| async move {
        let head = read_head(&mut s).await;
        assert!(head.starts_with("POST /upload HTTP/1.1\r\n"), "{head}");
        s.write_all(
            b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 9\r\nconnection: close\r\n\r\ntoo large",
        )
        .await
        .unwrap();
        // Closes with the upload unread.
    })
    .await;
    let (g, _) = gateway(&routed_to(&[("big", upstream)]));
    let (mut rd, mut wr) = TcpStream::connect(http_addr(&g))
        .await
        .unwrap()
        .into_split();
    let total: usize = 64 << 20;
    // The upload goes on in a task of its own: once the gateway stops reading it, it
    // blocks, and the answer must arrive all the same.
    let upload = tokio::spawn(async move {
        let head = format!(
            "POST /upload HTTP/1.1\r\nhost: big.example.com\r\ncontent-length: {total}\r\n\r\n"
        );
        wr.write_all(head.as_bytes()).await.unwrap();
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..total / chunk.len() {
            if wr.write_all(&chunk).await.is_err() {
                return;
            }
        }
    });
    let answer = bounded("the upstream's early answer", read_head(&mut rd)).await;
    assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");
    upload.abort();
    g.shutdown().await;
}

/// Waits until the gateway's metrics text holds `line`.
async fn metric_shows(table: &mse_proxy::SharedTable, line: &str) {
    bounded(line, async {
        while !table.metrics().encode().lines().any(|l| l == line) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

/// Reads until the connection ends; returns what was read.
async fn read_to_end<R: AsyncRead + Unpin>(io: &mut R) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match io.read(&mut buf).await {
            Ok(0) | Err(_) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

const SHORT: Duration = Duration::from_millis(200);

#[tokio::test]
async fn an_upstream_that_stalls_in_the_body_is_cut_off_after_the_read_timeout() {
    let (closed_tx, closed_rx) = oneshot::channel();
    let upstream = raw_upstream(|mut s| async move {
        read_head(&mut s).await;
        let mut answer = b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n".to_vec();
        answer.extend_from_slice(&[b'x'; 1000]);
        s.write_all(&answer).await.unwrap();
        // Stalls, holding the connection until the gateway lets go of it.
        let rest = read_to_end(&mut s).await;
        let _ = closed_tx.send(rest.len());
    })
    .await;
    let (g, table) = gateway_with(&routed_to(&[("slow", upstream)]), |c| {
        c.timeouts.upstream_read = SHORT;
    });
    let mut client = TcpStream::connect(http_addr(&g)).await.unwrap();
    client
        .write_all(b"GET / HTTP/1.1\r\nhost: slow.example.com\r\n\r\n")
        .await
        .unwrap();
    let got = bounded("the client connection to close", read_to_end(&mut client)).await;
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200 "), "{text}");
    let body = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(got.len() - body, 1000, "the body is cut short");
    let rest = bounded("the upstream connection to close", closed_rx).await;
    assert_eq!(rest.unwrap(), 0);
    metric_shows(&table, r#"mse_timeouts_total{kind="upstream_read"} 1"#).await;
    g.shutdown().await;
}

#[tokio::test]
async fn a_client_that_stops_reading_is_cut_off_after_the_write_timeout() {
    let total: usize = 64 << 20;
    let (closed_tx, closed_rx) = oneshot::channel();
    let upstream = raw_upstream(move |mut s| async move {
        read_head(&mut s).await;
        let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {total}\r\n\r\n");
        s.write_all(head.as_bytes()).await.unwrap();
        let chunk = vec![b'x'; 64 * 1024];
        let mut sent = 0;
        while sent < total && s.write_all(&chunk).await.is_ok() {
            sent += chunk.len();
        }
        let _ = closed_tx.send(sent);
    })
    .await;
    let (g, table) = gateway_with(&routed_to(&[("big", upstream)]), |c| {
        c.timeouts.client_write = SHORT;
    });
    let mut client = TcpStream::connect(http_addr(&g)).await.unwrap();
    client
        .write_all(b"GET / HTTP/1.1\r\nhost: big.example.com\r\n\r\n")
        .await
        .unwrap();
    // The client reads nothing: the gateway gives up on it, and on the upstream.
    let sent = bounded("the upstream connection to close", closed_rx).await;
    assert!(sent.unwrap() < total, "the upstream could not send it all");
    metric_shows(&table, r#"mse_timeouts_total{kind="client_write"} 1"#).await;
    let got = bounded("the client connection to close", read_to_end(&mut client)).await;
    assert!(got.len() < total, "the client got {} bytes", got.len());
    g.shutdown().await;
}
