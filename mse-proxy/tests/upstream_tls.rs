//! End to end over loopback: `backend-protocol: HTTPS` and `proxy-ssl-*` against real TLS
//! upstreams (rcgen certificates), and cleartext HTTP/2 upstreams (`H2C`, Istio's port
//! naming) sharing one connection.
#![cfg(test)]

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls::ServerConfig;
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;
use rustls::server::WebPkiClientVerifier;
use support::*;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// What the upstream saw of its connections.
#[derive(Default)]
struct Seen {
    connections: AtomicUsize,
    requests: AtomicUsize,
}

/// An upstream on loopback: TLS with `leaf` (and client certificates of `client_ca`
/// required) when given, cleartext otherwise. It answers every request with headers
/// naming the server name the client sent, the ALPN protocol and the HTTP version.
struct Upstream {
    addr: SocketAddr,
    seen: Arc<Seen>,
}

async fn upstream(leaf: Option<&Leaf>, client_ca: Option<&TestCa>) -> Upstream {
    upstream_with(leaf, client_ca, rustls::DEFAULT_VERSIONS).await
}

/// [`upstream`] offering only the TLS `versions`.
async fn upstream_with(
    leaf: Option<&Leaf>,
    client_ca: Option<&TestCa>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Upstream {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = leaf.map(|leaf| {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(versions)
            .unwrap();
        let builder = match client_ca {
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                roots.add(ca.cert.clone()).unwrap();
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .unwrap();
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder
            .with_single_cert(
                vec![leaf.der.clone()],
                PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap(),
            )
            .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        TlsAcceptor::from(Arc::new(config))
    });
    let seen = Arc::new(Seen::default());
    let counts = Arc::clone(&seen);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            counts.connections.fetch_add(1, Ordering::SeqCst);
            let acceptor = acceptor.clone();
            let counts = Arc::clone(&counts);
            tokio::spawn(async move {
                let (sni, alpn, io) = match acceptor {
                    Some(a) => {
                        let Ok(tls) = a.accept(stream).await else {
                            return;
                        };
                        let conn = tls.get_ref().1;
                        let sni = conn.server_name().unwrap_or("").to_owned();
                        let alpn = conn
                            .alpn_protocol()
                            .map(|p| String::from_utf8_lossy(p).into_owned())
                            .unwrap_or_default();
                        (sni, alpn, Io::Tls(Box::new(tls)))
                    }
                    None => (String::new(), String::new(), Io::Plain(stream)),
                };
                let svc = service_fn(move |req: Request<Incoming>| {
                    counts.requests.fetch_add(1, Ordering::SeqCst);
                    let (sni, alpn) = (sni.clone(), alpn.clone());
                    async move {
                        let r = Response::builder()
                            .header("x-sni", sni)
                            .header("x-alpn", alpn)
                            .header("x-version", format!("{:?}", req.version()))
                            .header(
                                "x-authority",
                                req.uri()
                                    .authority()
                                    .map(|a| a.to_string())
                                    .or_else(|| {
                                        req.headers()
                                            .get("host")
                                            .and_then(|h| h.to_str().ok())
                                            .map(str::to_owned)
                                    })
                                    .unwrap_or_default(),
                            )
                            .body(Full::new(Bytes::from_static(b"upstream")))
                            .unwrap();
                        Ok::<_, std::convert::Infallible>(r)
                    }
                });
                let server = auto::Builder::new(TokioExecutor::new());
                let _ = match io {
                    Io::Tls(s) => server.serve_connection(TokioIo::new(s), svc).await,
                    Io::Plain(s) => server.serve_connection(TokioIo::new(s), svc).await,
                };
            });
        }
    });
    Upstream { addr, seen }
}

enum Io {
    Plain(tokio::net::TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>),
}

/// Ingress `up` routing `up.example.com` to Service `svc-up` (endpoint `addr`), with
/// `annotations`, plus `extra` objects.
fn routed(addr: SocketAddr, annotations: &[(&str, &str)], extra: &str) -> String {
    let mut y = annotate(&routed_to(&[("up", addr)]), annotations);
    y.push_str(extra);
    y
}

async fn get_up(gw: &mse_proxy::GatewayHandle) -> Reply {
    get(http_addr(gw), "up.example.com", "/").await
}

fn header<'a>(r: &'a Reply, name: &str) -> &'a str {
    r.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// A self-signed certificate for `name`.
fn self_signed(name: &str) -> Leaf {
    let c = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
    Leaf {
        der: c.cert.der().clone(),
        cert_pem: c.cert.pem(),
        key_pem: c.signing_key.serialize_pem(),
    }
}

#[tokio::test]
async fn https_without_verification_accepts_a_self_signed_certificate_and_reuses_connections() {
    let up = upstream(Some(&self_signed("backend.internal")), None).await;
    let (gw, _) = gateway(&routed(up.addr, &[("backend-protocol", "HTTPS")], ""));
    for _ in 0..10 {
        let r = get_up(&gw).await;
        assert_eq!(r.status, StatusCode::OK, "{r:?}");
        assert_eq!(&r.body[..], b"upstream");
        assert_eq!(header(&r, "x-alpn"), "http/1.1");
        assert_eq!(header(&r, "x-version"), "HTTP/1.1");
        assert_eq!(header(&r, "x-authority"), "up.example.com");
        // No SNI unless proxy-ssl-server-name is on.
        assert_eq!(header(&r, "x-sni"), "");
    }
    // Keep-alive: the ten requests did not each need a connection of their own.
    let conns = up.seen.connections.load(Ordering::SeqCst);
    assert!(conns < 10, "{conns} connections for 10 requests");
    gw.shutdown().await;
}

#[tokio::test]
async fn https_verification_accepts_the_right_ca_and_refuses_another() {
    let ca = TestCa::new();
    let other = TestCa::new();
    let up = upstream(Some(&ca.leaf(&["backend.internal"])), None).await;
    let annotations = [
        ("backend-protocol", "HTTPS"),
        ("proxy-ssl-verify", "on"),
        ("proxy-ssl-secret", "upstream-ca"),
        ("proxy-ssl-name", "backend.internal"),
    ];
    let right = secret("upstream-ca", &[("ca.crt", &ca.cert_pem)]);
    let (gw, _) = gateway(&routed(up.addr, &annotations, &right));
    assert_eq!(get_up(&gw).await.status, StatusCode::OK);
    gw.shutdown().await;

    let wrong = secret("upstream-ca", &[("ca.crt", &other.cert_pem)]);
    let (gw, _) = gateway(&routed(up.addr, &annotations, &wrong));
    assert_eq!(get_up(&gw).await.status, StatusCode::BAD_GATEWAY);
    gw.shutdown().await;

    // The right CA, but a name the certificate does not carry.
    let mut renamed = annotations;
    renamed[3] = ("proxy-ssl-name", "someone-else.internal");
    let (gw, _) = gateway(&routed(up.addr, &renamed, &right));
    assert_eq!(get_up(&gw).await.status, StatusCode::BAD_GATEWAY);
    gw.shutdown().await;
}

#[tokio::test]
async fn verification_without_a_usable_ca_fails_closed() {
    let ca = TestCa::new();
    let up = upstream(Some(&ca.leaf(&["backend.internal"])), None).await;
    let annotations = [
        ("backend-protocol", "HTTPS"),
        ("proxy-ssl-verify", "on"),
        ("proxy-ssl-secret", "upstream-ca"),
    ];
    // Missing Secret, a Secret without ca.crt, and one whose ca.crt is not PEM.
    for extra in [
        String::new(),
        secret("upstream-ca", &[("other", "x")]),
        secret("upstream-ca", &[("ca.crt", "not a certificate")]),
    ] {
        let yaml = routed(up.addr, &annotations, &extra);
        let table = compile_yaml(&yaml);
        let d = table
            .diagnostics()
            .iter()
            .find(|d| {
                d.origin.key.as_deref() == Some("nginx.ingress.kubernetes.io/proxy-ssl-secret")
            })
            .unwrap_or_else(|| {
                panic!(
                    "a diagnostic for proxy-ssl-secret: {:?}",
                    table.diagnostics()
                )
            });
        assert_eq!(d.severity, mse_model::Severity::Error);
        assert!(d.to_string().contains("Ingress default/up"), "{d}");
        assert!(d.to_string().contains("upstream-ca"), "{d}");
        let (gw, _) = gateway_serving(table, |_| {});
        assert_eq!(get_up(&gw).await.status, StatusCode::SERVICE_UNAVAILABLE);
        gw.shutdown().await;
    }
    assert_eq!(up.seen.requests.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn mutual_tls_upstream_gets_the_client_certificate_of_proxy_ssl_secret() {
    let ca = TestCa::new();
    let client_ca = TestCa::new();
    let up = upstream(Some(&ca.leaf(&["backend.internal"])), Some(&client_ca)).await;
    // Without a client certificate the upstream refuses the handshake.
    let (gw, _) = gateway(&routed(up.addr, &[("backend-protocol", "HTTPS")], ""));
    assert_eq!(get_up(&gw).await.status, StatusCode::BAD_GATEWAY);
    gw.shutdown().await;

    let client = client_ca.client("gateway");
    let creds = secret(
        "upstream-client",
        &[("tls.crt", &client.cert_pem), ("tls.key", &client.key_pem)],
    );
    let annotations = [
        ("backend-protocol", "HTTPS"),
        ("proxy-ssl-secret", "upstream-client"),
    ];
    let (gw, _) = gateway(&routed(up.addr, &annotations, &creds));
    let r = get_up(&gw).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(&r.body[..], b"upstream");
    gw.shutdown().await;
}

#[tokio::test]
async fn sni_is_sent_only_with_proxy_ssl_server_name() {
    let ca = TestCa::new();
    let up = upstream(Some(&ca.leaf(&["backend.internal"])), None).await;
    let named = [
        ("backend-protocol", "HTTPS"),
        ("proxy-ssl-name", "backend.internal"),
    ];
    let (gw, _) = gateway(&routed(up.addr, &named, ""));
    assert_eq!(header(&get_up(&gw).await, "x-sni"), "");
    gw.shutdown().await;

    let sni = [
        ("backend-protocol", "HTTPS"),
        ("proxy-ssl-name", "backend.internal"),
        ("proxy-ssl-server-name", "on"),
    ];
    let (gw, _) = gateway(&routed(up.addr, &sni, ""));
    assert_eq!(header(&get_up(&gw).await, "x-sni"), "backend.internal");
    gw.shutdown().await;

    // Without proxy-ssl-name: the Service's own name.
    let (gw, _) = gateway(&routed(
        up.addr,
        &[
            ("backend-protocol", "HTTPS"),
            ("proxy-ssl-server-name", "on"),
        ],
        "",
    ));
    assert_eq!(header(&get_up(&gw).await, "x-sni"), "svc-up.default.svc");
    gw.shutdown().await;
}

#[tokio::test]
async fn grpcs_speaks_http2_negotiated_by_alpn() {
    let ca = TestCa::new();
    let up = upstream(Some(&ca.leaf(&["backend.internal"])), None).await;
    let (gw, _) = gateway(&routed(up.addr, &[("backend-protocol", "GRPCS")], ""));
    let r = get_up(&gw).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(header(&r, "x-alpn"), "h2");
    assert_eq!(header(&r, "x-version"), "HTTP/2.0");
    assert_eq!(header(&r, "x-authority"), "up.example.com");
    gw.shutdown().await;
}

#[tokio::test]
async fn h2c_upstream_carries_many_requests_on_one_connection() {
    let up = upstream(None, None).await;
    let (gw, _) = gateway(&routed(up.addr, &[("backend-protocol", "H2C")], ""));
    let r = get_up(&gw).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(header(&r, "x-version"), "HTTP/2.0");
    // Concurrent requests over several client connections: one upstream connection per
    // gateway worker at most, however many requests.
    let addr = http_addr(&gw);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        tasks.push(tokio::spawn(async move {
            let mut tx = h1(addr).await;
            for _ in 0..10 {
                let r = send1(&mut tx, get_req("up.example.com", "/")).await;
                assert_eq!(r.status, StatusCode::OK);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(up.seen.requests.load(Ordering::SeqCst), 81);
    // One connection per gateway worker (two), however many requests came at once:
    // those that came while it was being opened waited for it.
    let conns = up.seen.connections.load(Ordering::SeqCst);
    assert!(conns <= 2, "{conns} connections for 81 requests");
    gw.shutdown().await;
}

#[tokio::test]
async fn service_ports_named_grpc_or_http2_get_http2_without_the_annotation() {
    let up = upstream(None, None).await;
    let yaml = routed_to(&[("up", up.addr)]).replace("name: http,", "name: grpc-api,");
    let (gw, _) = gateway(&yaml);
    let r = get_up(&gw).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(header(&r, "x-version"), "HTTP/2.0");
    gw.shutdown().await;
    // grpc-web is HTTP/1.1.
    let yaml = routed_to(&[("up", up.addr)]).replace("name: http,", "name: grpc-web,");
    let (gw, _) = gateway(&yaml);
    assert_eq!(header(&get_up(&gw).await, "x-version"), "HTTP/1.1");
    gw.shutdown().await;
}

#[tokio::test]
async fn service_port_app_protocol_chooses_the_upstream_protocol() {
    let with_app = |addr, app: &str| {
        routed_to(&[("up", addr)]).replace(
            "name: http, port: 80,",
            &format!("name: http, port: 80, appProtocol: {app},"),
        )
    };
    let plain = upstream(None, None).await;
    for (app, version) in [
        ("kubernetes.io/h2c", "HTTP/2.0"),
        ("grpc", "HTTP/2.0"),
        ("kubernetes.io/ws", "HTTP/1.1"),
        ("http", "HTTP/1.1"),
    ] {
        let (gw, _) = gateway(&with_app(plain.addr, app));
        let r = get_up(&gw).await;
        assert_eq!(r.status, StatusCode::OK, "{app}: {r:?}");
        assert_eq!(header(&r, "x-version"), version, "{app}");
        gw.shutdown().await;
    }
    // appProtocol wins over the port's name.
    let yaml = with_app(plain.addr, "http").replace("name: http,", "name: grpc-api,");
    let (gw, _) = gateway(&yaml);
    assert_eq!(header(&get_up(&gw).await, "x-version"), "HTTP/1.1");
    gw.shutdown().await;
    // TLS, not verified (as backend-protocol: HTTPS without proxy-ssl-verify).
    let tls = upstream(Some(&self_signed("backend.internal")), None).await;
    for app in ["https", "kubernetes.io/wss"] {
        let (gw, _) = gateway(&with_app(tls.addr, app));
        let r = get_up(&gw).await;
        assert_eq!(r.status, StatusCode::OK, "{app}: {r:?}");
        assert_eq!(header(&r, "x-alpn"), "http/1.1", "{app}");
        gw.shutdown().await;
    }
}

#[tokio::test]
async fn trailers_of_a_chunked_http11_upstream_reach_http11_and_http2_clients() {
    use http_body_util::BodyExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // An HTTP/1.1 upstream answering every request with a chunked body and a trailer.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut head = Vec::new();
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    let Ok(n) = s.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    head.extend_from_slice(&buf[..n]);
                }
                let answer = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntrailer: x-checksum\r\nconnection: close\r\n\r\n5\r\nhello\r\n0\r\nx-checksum: 42\r\n\r\n";
                let _ = s.write_all(answer).await;
            });
        }
    });
    let (gw, _) = gateway(&routed_to(&[("t", addr)]));
    let check = |r: Response<Incoming>| async move {
        assert_eq!(r.status(), StatusCode::OK);
        let collected = bounded("the body", r.into_body().collect()).await.unwrap();
        let trailers = collected.trailers().cloned().expect("trailers");
        assert_eq!(trailers.get("x-checksum").unwrap(), "42");
        assert_eq!(&collected.to_bytes()[..], b"hello");
    };
    let mut tx = h1(http_addr(&gw)).await;
    check(
        tx.send_request(get_req("t.example.com", "/"))
            .await
            .unwrap(),
    )
    .await;
    let mut tx = h2c(http_addr(&gw)).await;
    let req = Request::get("http://t.example.com/")
        .body(Full::new(Bytes::new()))
        .unwrap();
    check(tx.send_request(req).await.unwrap()).await;
    gw.shutdown().await;
}

/// An HTTP/1.1 upstream that answers each request with the bytes of its chunked request
/// body section (everything after the head), once the last chunk and trailers are in.
async fn chunked_body_echo() -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut seen = Vec::new();
                let body_at = loop {
                    let Ok(n) = s.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    seen.extend_from_slice(&buf[..n]);
                    let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let body = &seen[end + 4..];
                    let last_chunk =
                        body.starts_with(b"0\r\n") || body.windows(5).any(|w| w == b"\r\n0\r\n");
                    if last_chunk && body.ends_with(b"\r\n\r\n") {
                        break end + 4;
                    }
                };
                let body = &seen[body_at..];
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(body).await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn request_trailers_reach_an_http11_upstream_from_http11_and_http2_clients() {
    let addr = chunked_body_echo().await;
    let (gw, _) = gateway(&routed_to(&[("t", addr)]));
    // HTTP/1.1: a chunked upload with a trailer section.
    let answer = raw(
        http_addr(&gw),
        b"POST /up HTTP/1.1\r\nhost: t.example.com\r\ntransfer-encoding: chunked\r\ntrailer: x-checksum\r\nconnection: close\r\n\r\n5\r\nhello\r\n0\r\nx-checksum: 42\r\nx-count: 1\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.ends_with("5\r\nhello\r\n0\r\nx-checksum: 42\r\nx-count: 1\r\n\r\n"),
        "{answer}"
    );
    // HTTP/2: DATA, then a HEADERS frame of trailers ending the stream.
    let tcp = tokio::net::TcpStream::connect(http_addr(&gw))
        .await
        .unwrap();
    let (client, conn) = bounded("h2 handshake", h2::client::handshake(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut client = bounded("h2 ready", client.ready()).await.unwrap();
    let req = Request::post("http://t.example.com/up").body(()).unwrap();
    let (response, mut send) = client.send_request(req, false).unwrap();
    send.send_data(Bytes::from_static(b"hello"), false).unwrap();
    let mut trailers = http::HeaderMap::new();
    trailers.insert("x-checksum", http::HeaderValue::from_static("42"));
    send.send_trailers(trailers).unwrap();
    let response = bounded("answer", response).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let mut got = Vec::new();
    while let Some(chunk) = bounded("body", body.data()).await {
        got.extend_from_slice(&chunk.unwrap());
    }
    let got = String::from_utf8(got).unwrap();
    assert!(got.ends_with("0\r\nx-checksum: 42\r\n\r\n"), "{got:?}");
    assert!(got.contains("hello"), "{got:?}");
    gw.shutdown().await;
}

#[tokio::test]
async fn retries_go_to_another_endpoint_on_http2_and_tls_clusters() {
    // One endpoint refuses connections; the other answers.
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let h2c = upstream(None, None).await;
    let tls = upstream(Some(&self_signed("backend.internal")), None).await;
    for (protocol, live) in [("H2C", &h2c), ("HTTPS", &tls)] {
        let yaml = [
            ingress("up", Some("up.example.com"), &[("/", "Prefix", "svc-up")]),
            service("svc-up", &[dead, live.addr]),
        ]
        .concat();
        let before = live.seen.requests.load(Ordering::SeqCst);
        let yaml = annotate(
            &yaml,
            &[
                ("backend-protocol", protocol),
                ("proxy-next-upstream", "error"),
            ],
        );
        let table = compile_yaml(&yaml);
        assert!(
            table.diagnostics().iter().all(|d| d.code != "not-applied"),
            "{:#?}",
            table.diagnostics()
        );
        let (gw, _) = gateway(&yaml);
        let mut tx = h1(http_addr(&gw)).await;
        // Round robin sends every other request to the dead endpoint first.
        for i in 0..6 {
            let r = send1(&mut tx, get_req("up.example.com", "/")).await;
            assert_eq!(r.status, StatusCode::OK, "{protocol} request {i}: {r:?}");
        }
        assert_eq!(live.seen.requests.load(Ordering::SeqCst) - before, 6);
        gw.shutdown().await;
        // Without proxy-next-upstream, the requests sent to the dead endpoint fail.
        let plain = [
            ingress("up", Some("up.example.com"), &[("/", "Prefix", "svc-up")]),
            service("svc-up", &[dead, live.addr]),
        ]
        .concat();
        let (gw, _) = gateway(&annotate(&plain, &[("backend-protocol", protocol)]));
        let mut failed = 0;
        for _ in 0..6 {
            let r = get(http_addr(&gw), "up.example.com", "/").await;
            failed += usize::from(r.status == StatusCode::BAD_GATEWAY);
        }
        assert_eq!(failed, 3, "{protocol}");
        gw.shutdown().await;
    }
}

#[tokio::test]
async fn an_http2_upstream_that_closes_its_connection_gets_a_new_one() {
    // Each connection answers one request, then says GOAWAY and closes.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let counts = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counts.connections.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let (done_tx, mut done_rx) = tokio::sync::mpsc::channel::<()>(1);
                let svc = service_fn(move |_req: Request<Incoming>| {
                    let done = done_tx.clone();
                    async move {
                        let _ = done.try_send(());
                        Ok::<_, std::convert::Infallible>(Response::new(Full::new(
                            Bytes::from_static(b"once"),
                        )))
                    }
                });
                let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc);
                tokio::pin!(conn);
                tokio::select! {
                    _ = conn.as_mut() => return,
                    _ = done_rx.recv() => conn.as_mut().graceful_shutdown(),
                }
                let _ = conn.await;
            });
        }
    });
    let (gw, _) = gateway(&routed(addr, &[("backend-protocol", "H2C")], ""));
    let mut tx = h1(http_addr(&gw)).await;
    for _ in 0..5 {
        let r = send1(&mut tx, get_req("up.example.com", "/")).await;
        assert_eq!(r.status, StatusCode::OK, "{r:?}");
        assert_eq!(&r.body[..], b"once");
    }
    assert!(seen.connections.load(Ordering::SeqCst) >= 2);
    gw.shutdown().await;
}

#[tokio::test]
async fn proxy_ssl_protocols_and_ciphers_limit_what_is_offered() {
    let ca = TestCa::new();
    // rcgen's keys are ECDSA: an RSA-only suite list cannot agree with this upstream.
    let leaf = ca.leaf(&["backend.internal"]);
    let tls13_only = upstream_with(Some(&leaf), None, &[&rustls::version::TLS13]).await;
    let offered = |versions: &'static str, ciphers: Option<&'static str>| {
        let mut a = vec![
            ("backend-protocol", "HTTPS"),
            ("proxy-ssl-protocols", versions),
        ];
        if let Some(c) = ciphers {
            a.push(("proxy-ssl-ciphers", c));
        }
        a
    };
    for (versions, status) in [
        ("TLSv1.2", StatusCode::BAD_GATEWAY),
        ("TLSv1.3", StatusCode::OK),
        ("TLSv1.2 TLSv1.3", StatusCode::OK),
    ] {
        let (gw, _) = gateway(&routed(tls13_only.addr, &offered(versions, None), ""));
        assert_eq!(get_up(&gw).await.status, status, "{versions}");
        gw.shutdown().await;
    }
    let tls12_only = upstream_with(Some(&leaf), None, &[&rustls::version::TLS12]).await;
    for (ciphers, status) in [
        ("ECDHE-RSA-AES128-GCM-SHA256", StatusCode::BAD_GATEWAY),
        ("ECDHE-ECDSA-AES128-GCM-SHA256", StatusCode::OK),
    ] {
        let (gw, _) = gateway(&routed(
            tls12_only.addr,
            &offered("TLSv1.2", Some(ciphers)),
            "",
        ));
        assert_eq!(get_up(&gw).await.status, status, "{ciphers}");
        gw.shutdown().await;
    }
}
