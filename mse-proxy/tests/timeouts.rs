//! What the gateway does when an upstream or a client does not keep pace: an upstream
//! that answers before the upload ends, an upstream that stalls in the middle of a
//! response body, and a client that stops reading. Raw sockets on loopback on both sides.
#![cfg(test)]

mod support;

use std::net::SocketAddr;

use support::*;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

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
