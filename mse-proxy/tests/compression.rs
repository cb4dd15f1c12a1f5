//! Response compression end to end over loopback (`use-gzip`, `enable-brotli` and their
//! settings): real clients ask with `Accept-Encoding`, the bodies they get are decoded
//! with `flate2` and `brotli` and compared with what the backend sent.
#![cfg(test)]

mod support;

use std::convert::Infallible;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::stream;
use http::{Request, Response};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use mse_router::RouteTable;
use support::*;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

type Chunks = mpsc::UnboundedSender<Bytes>;

/// A backend whose answers the path picks (see [`answer`]); `/stream` answers chunked
/// with the chunks the test sends through [`Backend::stream`], ending when it is dropped.
struct Backend {
    addr: SocketAddr,
    streams: Arc<Mutex<Option<mpsc::UnboundedReceiver<Bytes>>>>,
}

/// `n` bytes of compressible text.
fn text(n: usize) -> Vec<u8> {
    b"the quick brown fox jumps over the lazy dog; "
        .iter()
        .copied()
        .cycle()
        .take(n)
        .collect()
}

fn answer(path: &str) -> Response<BoxBody<Bytes, Infallible>> {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let n: usize = query
        .strip_prefix("n=")
        .and_then(|n| n.parse().ok())
        .unwrap_or(4000);
    let full = |b: Vec<u8>| Full::new(Bytes::from(b)).boxed();
    let r = Response::builder();
    let r = match path {
        "/html" => r
            .header("content-type", "text/html; charset=utf-8")
            .header("etag", "\"v1\"")
            .header("accept-ranges", "bytes")
            .header("vary", "Origin"),
        "/json" => r.header("content-type", "application/json"),
        "/png" => r.header("content-type", "image/png"),
        "/untyped" => r,
        "/encoded" => r
            .header("content-type", "text/html")
            .header("content-encoding", "gzip"),
        "/no-transform" => r
            .header("content-type", "text/html")
            .header("cache-control", "public, no-transform"),
        "/empty" => return r.status(204).body(full(Vec::new())).unwrap(),
        "/missing" => r.status(404).header("content-type", "text/html"),
        "/created" => r.status(201).header("content-type", "text/html"),
        _ => r.status(500),
    };
    r.body(full(text(n))).unwrap()
}

impl Backend {
    async fn start() -> Self {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let streams: Arc<Mutex<Option<mpsc::UnboundedReceiver<Bytes>>>> = Arc::default();
        let shared = Arc::clone(&streams);
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let shared = Arc::clone(&shared);
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let path = req.uri().path_and_query().unwrap().as_str().to_owned();
                        let response = if path == "/stream" {
                            let rx = shared.lock().unwrap().take().expect("a stream is set up");
                            let chunks = stream::unfold(rx, |mut rx| async move {
                                let c = rx.recv().await?;
                                Some((Ok::<_, Infallible>(Frame::data(c)), rx))
                            });
                            Response::builder()
                                .header("content-type", "text/event-stream")
                                .body(BodyExt::boxed(StreamBody::new(chunks)))
                                .unwrap()
                        } else {
                            answer(&path)
                        };
                        async move { Ok::<_, Infallible>(response) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(conn), svc)
                        .await;
                });
            }
        });
        Self { addr, streams }
    }

    /// The sender of the next `/stream` answer's chunks.
    fn stream(&self) -> Chunks {
        let (tx, rx) = mpsc::unbounded_channel();
        *self.streams.lock().unwrap() = Some(rx);
        tx
    }
}

fn table(backend: SocketAddr, data: &[(&str, &str)]) -> Arc<RouteTable> {
    let yaml = format!(
        "{}{}",
        routed_to(&[("a", backend)]),
        gateway_config_map(data)
    );
    let table = compile_yaml_with(&yaml, &configmap_options());
    let problems: Vec<_> = table
        .diagnostics()
        .iter()
        .filter(|d| d.severity >= mse_model::Severity::Warning && d.code != "no-endpoints")
        .collect();
    assert!(problems.is_empty(), "{problems:#?}");
    table
}

const BOTH: &[(&str, &str)] = &[
    ("use-gzip", "true"),
    ("enable-brotli", "true"),
    ("gzip-types", "application/json text/event-stream"),
    ("brotli-types", "application/json text/event-stream"),
    ("gzip-min-length", "1000"),
];

async fn ask(addr: SocketAddr, method: &str, path: &str, accept: Option<&str>) -> Reply {
    let headers: Vec<_> = accept.map(|a| ("accept-encoding", a)).into_iter().collect();
    let mut tx = h1(addr).await;
    send1(&mut tx, request("a.example.com", method, path, &headers)).await
}

fn header<'a>(r: &'a Reply, name: &str) -> Option<&'a str> {
    r.headers.get(name).map(|v| v.to_str().unwrap())
}

fn gunzip(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(b)
        .read_to_end(&mut out)
        .expect("a gzip stream");
    out
}

fn unbrotli(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    brotli::Decompressor::new(b, 4096)
        .read_to_end(&mut out)
        .expect("a brotli stream");
    out
}

#[tokio::test]
async fn gzip_and_brotli_are_negotiated_and_round_trip() {
    let backend = Backend::start().await;
    let (gw, _t) = gateway_serving(table(backend.addr, BOTH), |_| {});
    let addr = http_addr(&gw);

    let br = ask(addr, "GET", "/html?n=20000", Some("gzip, deflate, br")).await;
    assert_eq!(br.status, 200);
    assert_eq!(header(&br, "content-encoding"), Some("br"));
    assert_eq!(header(&br, "content-length"), None);
    assert_eq!(header(&br, "etag"), Some("W/\"v1\""));
    assert_eq!(header(&br, "accept-ranges"), None);
    let vary: Vec<_> = br.headers.get_all("vary").iter().collect();
    assert_eq!(vary, ["Origin", "Accept-Encoding"]);
    assert!(br.body.len() < 2000, "{} bytes", br.body.len());
    assert_eq!(unbrotli(&br.body), text(20000));

    let gz = ask(addr, "GET", "/json?n=20000", Some("br;q=0.5, gzip")).await;
    assert_eq!(header(&gz, "content-encoding"), Some("gzip"));
    assert_eq!(header(&gz, "vary"), Some("Accept-Encoding"));
    assert_eq!(gunzip(&gz.body), text(20000));

    // 404 is compressed as nginx does; the gateway's own 404 is too short.
    let missing = ask(addr, "GET", "/missing", Some("gzip")).await;
    assert_eq!(missing.status, 404);
    assert_eq!(gunzip(&missing.body), text(4000));

    // The client accepts neither: sent as it is, with Vary for caches.
    for accept in [None, Some("identity"), Some("gzip;q=0, br;q=0")] {
        let plain = ask(addr, "GET", "/html", accept).await;
        assert_eq!(header(&plain, "content-encoding"), None, "{accept:?}");
        assert_eq!(header(&plain, "content-length"), Some("4000"));
        assert_eq!(header(&plain, "etag"), Some("\"v1\""));
        assert_eq!(header(&plain, "accept-ranges"), Some("bytes"));
        let vary: Vec<_> = plain.headers.get_all("vary").iter().collect();
        assert_eq!(vary, ["Origin", "Accept-Encoding"]);
        assert_eq!(plain.body, text(4000));
    }
}

#[tokio::test]
async fn answers_that_do_not_qualify_are_sent_as_they_are() {
    let backend = Backend::start().await;
    let (gw, _t) = gateway_serving(table(backend.addr, BOTH), |_| {});
    let addr = http_addr(&gw);
    let accept = Some("gzip, br");
    for path in [
        "/png",
        "/untyped",
        "/html?n=999",
        "/created",
        "/no-transform",
    ] {
        let r = ask(addr, "GET", path, accept).await;
        assert_eq!(header(&r, "content-encoding"), None, "{path}");
        let n = if path == "/html?n=999" { 999 } else { 4000 };
        assert_eq!(
            header(&r, "content-length"),
            Some(&*n.to_string()),
            "{path}"
        );
        assert_eq!(r.body, text(n), "{path}");
    }
    // Already encoded: passed through untouched.
    let encoded = ask(addr, "GET", "/encoded", accept).await;
    assert_eq!(header(&encoded, "content-encoding"), Some("gzip"));
    assert_eq!(encoded.body, text(4000));
    assert_eq!(header(&encoded, "vary"), None);
    // 204 and HEAD: no coding.
    let empty = ask(addr, "GET", "/empty", accept).await;
    assert_eq!(empty.status, 204);
    assert_eq!(header(&empty, "content-encoding"), None);
    let head = ask(addr, "HEAD", "/html", accept).await;
    assert_eq!(head.status, 200);
    assert_eq!(header(&head, "content-encoding"), None);
    assert_eq!(header(&head, "content-length"), Some("4000"));
    assert!(head.body.is_empty());
}

#[tokio::test]
async fn off_by_default_and_per_coding() {
    let backend = Backend::start().await;
    let (gw, shared) = gateway_serving(table(backend.addr, &[]), |_| {});
    let addr = http_addr(&gw);
    let r = ask(addr, "GET", "/html", Some("gzip, br")).await;
    assert_eq!(header(&r, "content-encoding"), None);
    assert_eq!(header(&r, "vary"), Some("Origin"));
    assert_eq!(r.body, text(4000));

    // gzip only, at its highest level: a brotli-first client gets gzip. New connections
    // take the new table.
    shared.publish(table(
        backend.addr,
        &[("use-gzip", "true"), ("gzip-level", "9")],
    ));
    let r = ask(addr, "GET", "/html", Some("br, gzip;q=0.1")).await;
    assert_eq!(header(&r, "content-encoding"), Some("gzip"));
    assert_eq!(gunzip(&r.body), text(4000));
    // ingress-nginx's default gzip-types have JSON.
    let r = ask(addr, "GET", "/json", Some("gzip")).await;
    assert_eq!(header(&r, "content-encoding"), Some("gzip"));
    let r = ask(addr, "GET", "/html", Some("br")).await;
    assert_eq!(header(&r, "content-encoding"), None);
}

#[tokio::test]
async fn over_http2_too() {
    let backend = Backend::start().await;
    let (gw, _t) = gateway_serving(table(backend.addr, BOTH), |_| {});
    let mut tx = h2c(http_addr(&gw)).await;
    let req = request(
        "a.example.com",
        "GET",
        "http://a.example.com/html?n=10000",
        &[("accept-encoding", "br")],
    );
    let r = send2(&mut tx, req).await;
    assert_eq!(r.status, 200);
    assert_eq!(header(&r, "content-encoding"), Some("br"));
    assert_eq!(header(&r, "content-length"), None);
    assert_eq!(unbrotli(&r.body), text(10000));
}

/// A chunked upstream answer is compressed as it streams: the client decodes each chunk
/// before the backend sends the next one.
#[tokio::test]
async fn streamed_answers_are_compressed_chunk_by_chunk() {
    let backend = Backend::start().await;
    let (gw, _t) = gateway_serving(table(backend.addr, BOTH), |_| {});
    let addr = http_addr(&gw);
    for coding in ["gzip", "br"] {
        let chunks = backend.stream();
        let mut tx = h1(addr).await;
        let req = request(
            "a.example.com",
            "GET",
            "/stream",
            &[("accept-encoding", coding)],
        );
        bounded("connection ready", tx.ready()).await.unwrap();
        let chunk = |i: usize| Bytes::from(format!("data: event {i} {}\n\n", "x".repeat(i * 50)));
        chunks.send(chunk(0)).unwrap();
        let response = bounded("the response head", tx.send_request(req))
            .await
            .unwrap();
        assert_eq!(
            response.headers()["content-encoding"].to_str().unwrap(),
            coding
        );
        assert_eq!(response.headers().get("content-length"), None);
        let mut body = response.into_body();
        // The decoder writes what it decoded so far into a Vec.
        let mut gz = flate2::write::GzDecoder::new(Vec::new());
        let mut br = brotli::DecompressorWriter::new(Vec::new(), 4096);
        let mut expected = Vec::new();
        for i in 0..5 {
            if i > 0 {
                chunks.send(chunk(i)).unwrap();
            }
            expected.extend_from_slice(&chunk(i));
            loop {
                let decoded: &[u8] = if coding == "gzip" {
                    gz.get_ref()
                } else {
                    br.get_ref()
                };
                if decoded.len() >= expected.len() {
                    assert_eq!(decoded, &expected[..]);
                    break;
                }
                let frame = bounded("the next compressed frame", body.frame())
                    .await
                    .expect("the body goes on")
                    .unwrap();
                let data = frame.into_data().unwrap();
                if coding == "gzip" {
                    gz.write_all(&data).unwrap();
                    gz.flush().unwrap();
                } else {
                    br.write_all(&data).unwrap();
                    br.flush().unwrap();
                }
            }
        }
        drop(chunks);
        let rest = bounded("the end of the body", body.collect())
            .await
            .unwrap()
            .to_bytes();
        let all = if coding == "gzip" {
            gz.write_all(&rest).unwrap();
            gz.finish().unwrap()
        } else {
            br.write_all(&rest).unwrap();
            br.into_inner()
                .unwrap_or_else(|_| panic!("a complete brotli stream"))
        };
        assert_eq!(all, expected, "{coding}");
    }
}
