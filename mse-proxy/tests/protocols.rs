//! End to end over loopback: h2c, TLS with SNI and ALPN, the fallback certificate, and
//! WebSocket upgrades.
#![cfg(test)]

mod support;

use std::net::SocketAddr;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{Request, StatusCode};
use http_body_util::Full;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use mse_proxy::{FALLBACK_CERT_CN, FALLBACK_CERT_SAN};
use support::*;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

fn h2_get(uri: &str) -> Request<Full<Bytes>> {
    Request::get(uri)
        .version(http::Version::HTTP_2)
        .body(Full::new(Bytes::new()))
        .unwrap()
}

#[tokio::test]
async fn h2c_with_prior_knowledge_is_proxied_to_http11_upstreams() {
    let (a, b) = (echo("a").await, echo("b").await);
    let yaml = routed_to(&[("a", a.addr()), ("b", b.addr())]);
    let (gw, _) = gateway(&yaml);
    let mut tx = h2c(http_addr(&gw)).await;
    // Several streams on one connection, routed by :authority.
    let (mut tx_a, mut tx_b) = (tx.clone(), tx.clone());
    let (ra, rb) = tokio::join!(
        send2(&mut tx_a, h2_get("http://a.example.com/one?x=1")),
        send2(&mut tx_b, h2_get("http://b.example.com/two")),
    );
    assert_eq!((ra.status, ra.service()), (StatusCode::OK, "a"));
    assert_eq!((rb.status, rb.service()), (StatusCode::OK, "b"));
    let seen = ra.json();
    assert_eq!(seen["version"], "HTTP/1.1");
    assert_eq!(seen["host"], "a.example.com");
    assert_eq!(seen["path"], "/one");
    assert_eq!(seen["query"], "x=1");
    assert_eq!(seen["headers"]["x-forwarded-host"], "a.example.com");
    // Cookies split over several HTTP/2 fields reach the HTTP/1.1 upstream as one.
    let req = Request::get("http://a.example.com/c")
        .header("cookie", "a=1")
        .header("cookie", "b=2")
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert_eq!(
        send2(&mut tx, req).await.json()["headers"]["cookie"],
        "a=1; b=2"
    );
    let missing = send2(&mut tx, h2_get("http://nobody.example.com/")).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    gw.shutdown().await;
}

#[tokio::test]
async fn h2c_request_headers_larger_than_the_limit_get_431() {
    let a = echo("a").await;
    let yaml = routed_to(&[("a", a.addr())]);
    let (gw, _) = gateway_with(&yaml, |c| c.max_header_size = 16 * 1024);
    let mut tx = h2c(http_addr(&gw)).await;
    let big = "v".repeat(32 * 1024);
    let req = Request::get("http://a.example.com/")
        .header("x-big", big.as_str())
        .body(Full::new(Bytes::new()))
        .unwrap();
    bounded("ready", tx.ready()).await.unwrap();
    let resp = bounded("oversized request", tx.send_request(req))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert_eq!(a.requests(), 0);
    gw.shutdown().await;
}

fn tls_yaml(ca: &TestCa, backends: &[(&str, SocketAddr)]) -> (String, Vec<Leaf>) {
    let mut yaml = String::new();
    let mut leaves = Vec::new();
    for (host, addr) in backends {
        let name = host.split('.').next().unwrap();
        let leaf = ca.leaf(&[host]);
        yaml.push_str(&tls_secret(
            &format!("{name}-tls"),
            &leaf.cert_pem,
            &leaf.key_pem,
        ));
        yaml.push_str(&tls_ingress(
            name,
            &format!("{name}-tls"),
            &[host],
            &format!("svc-{name}"),
        ));
        yaml.push_str(&service(&format!("svc-{name}"), &[*addr]));
        leaves.push(leaf);
    }
    (yaml, leaves)
}

#[tokio::test]
async fn sni_picks_each_hosts_certificate() {
    let (a, b) = (echo("a").await, echo("b").await);
    let ca = TestCa::new();
    let (yaml, leaves) = tls_yaml(
        &ca,
        &[("a.example.com", a.addr()), ("b.example.com", b.addr())],
    );
    let (gw, table) = gateway(&yaml);
    assert_eq!(table.current().loaded_certificates(), 2);
    let client = verifying_client(&ca.cert, &[b"http/1.1"]);
    for (host, leaf, svc) in [
        ("a.example.com", &leaves[0], "a"),
        ("b.example.com", &leaves[1], "b"),
    ] {
        // The client verifies the chain and that the certificate names `host`.
        let stream = tls(&client, https_addr(&gw), host).await;
        assert_eq!(peer_leaf(&stream), leaf.der, "{host}");
        assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
        let (mut tx, conn) = http1::handshake(TokioIo::new(stream)).await.unwrap();
        tokio::spawn(conn);
        let r = send1(&mut tx, get_req(host, "/secure")).await;
        assert_eq!((r.status, r.service()), (StatusCode::OK, svc));
        assert_eq!(r.json()["headers"]["x-forwarded-proto"], "https");
        assert_eq!(
            r.json()["headers"]["x-forwarded-port"],
            https_addr(&gw).port().to_string()
        );
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn unknown_or_missing_sni_gets_the_fallback_certificate() {
    let a = echo("a").await;
    let ca = TestCa::new();
    let (yaml, leaves) = tls_yaml(&ca, &[("a.example.com", a.addr())]);
    let (gw, _) = gateway(&yaml);
    let client = trusting_client(&[b"http/1.1"]);
    let stream = tls(&client, https_addr(&gw), "unknown.example.com").await;
    let leaf = peer_leaf(&stream);
    assert_ne!(leaf, leaves[0].der);
    assert!(der_contains(&leaf, FALLBACK_CERT_CN));
    assert!(der_contains(&leaf, FALLBACK_CERT_SAN));
    // An IP address is never sent as SNI: the client sends no server name at all.
    let stream = tls(&client, https_addr(&gw), "127.0.0.1").await;
    assert!(der_contains(&peer_leaf(&stream), FALLBACK_CERT_CN));
    // A verifying client rejects the fallback certificate for a host the table has none for.
    let verifying = verifying_client(&ca.cert, &[b"http/1.1"]);
    let tcp = tokio::net::TcpStream::connect(https_addr(&gw))
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("unknown.example.com").unwrap();
    assert!(
        bounded("handshake", verifying.connect(name, tcp))
            .await
            .is_err()
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn a_certificate_rustls_cannot_load_is_skipped_not_fatal() {
    let (a, c) = (echo("a").await, echo("c").await);
    let ca = TestCa::new();
    let (mut yaml, _) = tls_yaml(&ca, &[("a.example.com", a.addr())]);
    // A certificate with somebody else's key: the PEM parses, rustls refuses the pair.
    let cert = ca.leaf(&["c.example.com"]);
    let other = ca.leaf(&["other.example.com"]);
    yaml.push_str(&tls_secret("c-tls", &cert.cert_pem, &other.key_pem));
    yaml.push_str(&tls_ingress("c", "c-tls", &["c.example.com"], "svc-c"));
    yaml.push_str(&service("svc-c", &[c.addr()]));
    let (gw, table) = gateway(&yaml);
    assert_eq!(table.current().loaded_certificates(), 1);
    let client = trusting_client(&[b"http/1.1"]);
    let stream = tls(&client, https_addr(&gw), "c.example.com").await;
    assert!(der_contains(&peer_leaf(&stream), FALLBACK_CERT_CN));
    let (mut tx, conn) = http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    assert_eq!(
        send1(&mut tx, get_req("c.example.com", "/"))
            .await
            .service(),
        "c"
    );
    // The good certificate is still served.
    let verifying = verifying_client(&ca.cert, &[b"http/1.1"]);
    tls(&verifying, https_addr(&gw), "a.example.com").await;
    gw.shutdown().await;
}

#[tokio::test]
async fn alpn_h2_serves_http2_over_tls() {
    let a = echo("a").await;
    let ca = TestCa::new();
    let (yaml, _) = tls_yaml(&ca, &[("a.example.com", a.addr())]);
    let (gw, _) = gateway(&yaml);
    let client = verifying_client(&ca.cert, &[b"h2", b"http/1.1"]);
    let stream = tls(&client, https_addr(&gw), "a.example.com").await;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (tx, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut requests = Vec::new();
    for i in 0..8 {
        let mut tx = tx.clone();
        requests.push(tokio::spawn(async move {
            send2(
                &mut tx,
                h2_get(&format!("https://a.example.com/stream/{i}")),
            )
            .await
        }));
    }
    for (i, r) in requests.into_iter().enumerate() {
        let r = r.await.unwrap();
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json()["path"], format!("/stream/{i}"));
        assert_eq!(r.json()["headers"]["x-forwarded-proto"], "https");
        assert_eq!(r.json()["version"], "HTTP/1.1");
    }
    gw.shutdown().await;
}

/// A WebSocket backend that echoes every data message.
async fn websocket_backend() -> SocketAddr {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                while let Some(Ok(msg)) = ws.next().await {
                    if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn websocket_upgrades_pass_through_both_ways() {
    let backend = websocket_backend().await;
    let yaml = [
        ingress("ws", Some("ws.example.com"), &[("/chat", "Prefix", "ws")]),
        service("ws", &[backend]),
    ]
    .concat();
    // A grace period of an hour: a shutdown that waited for it never returns.
    let (gw, _) = gateway_with(&yaml, |c| {
        c.timeouts.shutdown_grace = std::time::Duration::from_secs(3600)
    });
    let stream = tokio::net::TcpStream::connect(http_addr(&gw))
        .await
        .unwrap();
    let (mut ws, response) = bounded(
        "WebSocket handshake",
        tokio_tungstenite::client_async("ws://ws.example.com/chat/room", stream),
    )
    .await
    .expect("handshake through the gateway");
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    for i in 0..5 {
        let text = format!("hello {i}");
        ws.send(Message::text(text.clone())).await.unwrap();
        let back = bounded("echo", ws.next()).await.unwrap().unwrap();
        assert_eq!(back, Message::text(text));
    }
    ws.send(Message::binary(vec![0u8, 1, 2, 255]))
        .await
        .unwrap();
    assert_eq!(
        bounded("echo", ws.next()).await.unwrap().unwrap(),
        Message::binary(vec![0u8, 1, 2, 255])
    );
    ws.close(None).await.unwrap();
    // The backend's close frame comes back through the tunnel, then the stream ends.
    while let Some(Ok(msg)) = bounded("close", ws.next()).await {
        assert!(msg.is_close(), "{msg:?}");
    }
    drop(ws);
    // With the tunnel closed, shutdown has nothing to wait for.
    bounded("shutdown", gw.shutdown()).await;
}

/// One HTTP/2 stream as a byte stream, for a WebSocket codec on top of it.
struct H2Stream {
    send: h2::SendStream<Bytes>,
    recv: h2::RecvStream,
    pending: Bytes,
}

impl tokio::io::AsyncRead for H2Stream {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        while self.pending.is_empty() {
            match self.recv.poll_data(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(std::io::Error::other(e))),
                Poll::Ready(Some(Ok(data))) => {
                    let _ = self.recv.flow_control().release_capacity(data.len());
                    self.pending = data;
                }
            }
        }
        let n = self.pending.len().min(buf.remaining());
        let chunk = self.pending.split_to(n);
        buf.put_slice(&chunk);
        Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncWrite for H2Stream {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        // h2 buffers what the window does not take yet; the messages here are small.
        let sent = self
            .send
            .send_data(Bytes::copy_from_slice(buf), false)
            .map(|()| buf.len())
            .map_err(std::io::Error::other);
        std::task::Poll::Ready(sent)
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let _ = self.send.send_data(Bytes::new(), true);
        std::task::Poll::Ready(Ok(()))
    }
}

#[tokio::test]
async fn websocket_over_http2_extended_connect_reaches_an_http11_websocket_upstream() {
    use tokio_tungstenite::tungstenite::protocol::Role;
    let backend = websocket_backend().await;
    let yaml = [
        ingress("ws", Some("ws.example.com"), &[("/chat", "Prefix", "ws")]),
        service("ws", &[backend]),
    ]
    .concat();
    let (gw, _) = gateway(&yaml);
    let tcp = tokio::net::TcpStream::connect(http_addr(&gw))
        .await
        .unwrap();
    let (client, conn) = bounded("h2 handshake", h2::client::handshake(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut client = bounded("h2 ready", client.ready()).await.unwrap();
    // The server's SETTINGS announce extended CONNECT (RFC 8441 section 3).
    bounded("SETTINGS_ENABLE_CONNECT_PROTOCOL", async {
        while !client.is_extended_connect_protocol_enabled() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    let connect = Request::builder()
        .method(http::Method::CONNECT)
        .version(http::Version::HTTP_2)
        .uri("http://ws.example.com/chat/room")
        .extension(h2::ext::Protocol::from_static("websocket"))
        .header("sec-websocket-version", "13")
        .body(())
        .unwrap();
    let (response, send) = client.send_request(connect, false).unwrap();
    let response = bounded("CONNECT answer", response).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get("sec-websocket-accept").is_none());
    assert!(response.headers().get("upgrade").is_none());
    let io = H2Stream {
        send,
        recv: response.into_body(),
        pending: Bytes::new(),
    };
    let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(io, Role::Client, None).await;
    for i in 0..5 {
        let text = format!("over h2 {i}");
        ws.send(Message::text(text.clone())).await.unwrap();
        let back = bounded("echo", ws.next()).await.unwrap().unwrap();
        assert_eq!(back, Message::text(text));
    }
    ws.send(Message::binary(vec![9u8; 3000])).await.unwrap();
    assert_eq!(
        bounded("echo", ws.next()).await.unwrap().unwrap(),
        Message::binary(vec![9u8; 3000])
    );
    // A plain request on the same connection still works beside the tunnel.
    let (answer, _) = client
        .send_request(
            Request::get("http://ws.example.com/chat").body(()).unwrap(),
            true,
        )
        .unwrap();
    // The WebSocket backend refuses a request that is not a handshake.
    let answer = bounded("plain request", answer).await.unwrap();
    assert_ne!(answer.status(), StatusCode::OK);
    ws.close(None).await.unwrap();
    drop(ws);
    // An extended CONNECT to a path no route has gets 404, and no tunnel.
    let missing = Request::builder()
        .method(http::Method::CONNECT)
        .uri("http://nobody.example.com/chat")
        .extension(h2::ext::Protocol::from_static("websocket"))
        .body(())
        .unwrap();
    let (answer, _send) = client.send_request(missing, false).unwrap();
    let answer = bounded("missing route", answer).await.unwrap();
    assert_eq!(answer.status(), StatusCode::NOT_FOUND);
    gw.shutdown().await;
}
