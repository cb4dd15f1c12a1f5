//! `proxy-send-timeout`: an upstream that takes no more of the request within it gets
//! its connection closed, and the client 504 (ingress-nginx's `proxy_send_timeout`).
#![cfg(test)]

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const HOST: &str = "upload.example.com";

/// A backend that accepts connections and never reads from them.
async fn deaf() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    addr
}

/// Uploads a body far larger than the socket buffers on the way, and returns the status
/// line the gateway answers with while the upload is stuck.
async fn stuck_upload(gateway: SocketAddr) -> String {
    const LEN: usize = 256 << 20;
    let s = TcpStream::connect(gateway).await.unwrap();
    let (mut rd, mut wr) = s.into_split();
    let head = format!("PUT /big HTTP/1.1\r\nhost: {HOST}\r\ncontent-length: {LEN}\r\n\r\n");
    let upload = tokio::spawn(async move {
        wr.write_all(head.as_bytes()).await?;
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..LEN / chunk.len() {
            wr.write_all(&chunk).await?;
        }
        Ok::<_, std::io::Error>(())
    });
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    bounded("the gateway's answer to the stuck upload", async {
        while !answer.windows(2).any(|w| w == b"\r\n") {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    upload.abort();
    let text = String::from_utf8_lossy(&answer);
    text.lines().next().unwrap_or("").to_owned()
}

fn routed(annotations: &[(&str, &str)], endpoint: SocketAddr) -> String {
    let mut y = annotate(
        &ingress("r", Some(HOST), &[("/", "Prefix", "svc")]),
        annotations,
    );
    y.push_str(&service("svc", &[endpoint]));
    y
}

#[tokio::test]
async fn an_upstream_that_takes_no_more_of_the_request_gets_504() {
    let addr = deaf().await;
    let annotations = [
        ("proxy-send-timeout", "1"),
        ("proxy-body-size", "0"),
        // The wait for the answer is far longer than the test's deadline: only the send
        // timeout can answer in time.
        ("proxy-read-timeout", "600"),
    ];
    let (g, table) = gateway_with(&routed(&annotations, addr), |c| {
        c.timeouts.upstream_response = Duration::from_secs(600);
    });
    let status = stuck_upload(http_addr(&g)).await;
    assert!(status.starts_with("HTTP/1.1 504 "), "{status:?}");
    assert!(table.metrics().upstream_timeouts() >= 1);
}

#[tokio::test]
async fn the_gateway_wide_proxy_send_timeout_applies_to_routes_without_their_own() {
    let addr = deaf().await;
    let mut yaml = routed(
        &[("proxy-body-size", "0"), ("proxy-read-timeout", "600")],
        addr,
    );
    yaml.push_str(&gateway_config_map(&[("proxy-send-timeout", "1s")]));
    let table = compile_yaml_with(&yaml, &configmap_options());
    let (g, _) = gateway_serving(table, |c| {
        c.timeouts.upstream_response = Duration::from_secs(600);
    });
    let status = stuck_upload(http_addr(&g)).await;
    assert!(status.starts_with("HTTP/1.1 504 "), "{status:?}");
}
