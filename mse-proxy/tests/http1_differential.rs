//! The gateway's HTTP/1.1 request parsing against hyper's server, on generated requests:
//! the gateway never accepts a request whose framing hyper refuses, and where both accept
//! they agree on the request, its body and where the next request starts.
//!
//! Each case is written whole to hyper's HTTP/1.1 server over an in-memory duplex (its
//! real parser and chunked decoder), followed by a second request; the gateway's side is
//! its head parser and chunked decoder, as its server runs them.
#![cfg(test)]

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{Method, Request, Response, Version};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use mse_proxy::{decode_chunked, parse_request_head};
use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const NEXT: &[u8] = b"GET /next HTTP/1.1\r\nHost: a.example.com\r\n\r\n";

/// A request as a server saw it: method, target and body (`None`: the body failed).
#[derive(Clone, Debug, PartialEq)]
struct Seen {
    method: Method,
    target: String,
    body: Option<Bytes>,
}

/// What the gateway accepts of `bytes`: the first request and how many bytes it took;
/// `None` when it refuses it or it is incomplete.
fn gateway(bytes: &[u8]) -> Option<(Seen, Version, usize)> {
    let (req, head) = parse_request_head(bytes, 32 * 1024, 8 * 1024).ok()??;
    let rest = &bytes[head..];
    let (body, used) = if req.headers().contains_key(TRANSFER_ENCODING) {
        let (data, _, used) = decode_chunked(rest, rest.len()).ok()??;
        (Bytes::from(data), used)
    } else if let Some(cl) = req.headers().get(CONTENT_LENGTH) {
        let n: usize = cl.to_str().ok()?.parse().ok()?;
        (Bytes::copy_from_slice(rest.get(..n)?), n)
    } else {
        (Bytes::new(), 0)
    };
    let seen = Seen {
        method: req.method().clone(),
        target: req.uri().to_string(),
        body: Some(body),
    };
    Some((seen, req.version(), head + used))
}

/// The requests hyper's server reads from `bytes`, in order.
fn hyper_reads(bytes: &[u8]) -> Vec<Seen> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let (mut client, server) = tokio::io::duplex(1 << 20);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let service = service_fn(move |req: Request<Incoming>| {
            let log = Arc::clone(&log);
            async move {
                let (parts, body) = req.into_parts();
                let body = body.collect().await.ok().map(|b| b.to_bytes());
                log.lock().unwrap().push(Seen {
                    method: parts.method,
                    target: parts.uri.to_string(),
                    body,
                });
                Ok::<_, Infallible>(Response::new(Empty::<Bytes>::new()))
            }
        });
        // Half-close: the client's end of stream does not cut the pipelined request short.
        let conn = hyper::server::conn::http1::Builder::new()
            .half_close(true)
            .serve_connection(TokioIo::new(server), service);
        let talk = async {
            client.write_all(bytes).await.expect("write");
            client.shutdown().await.expect("shutdown");
            let mut answers = Vec::new();
            let _ = client.read_to_end(&mut answers).await;
        };
        let both = async { tokio::join!(conn, talk) };
        // The connection fails when hyper refuses what it reads: that is an outcome, not
        // an error of the test.
        let (_served, ()) = tokio::time::timeout(Duration::from_secs(30), both)
            .await
            .expect("hyper's server ends the connection");
        seen.lock().unwrap().clone()
    })
}

/// Framing header lines: the plain ones often, and shapes servers have read differently.
fn framing() -> impl Strategy<Value = &'static str> {
    let odd = prop::sample::select(vec![
        "Content-Length: 5",
        "Content-Length: 0",
        "Content-Length: 5, 5",
        "Content-Length: 5,6",
        "Content-Length: 05",
        "Content-Length: +5",
        "Content-Length: -5",
        "Content-Length:5",
        "Content-Length: 5 ",
        "Content-Length : 5",
        "Content-Length: 99999999999999999999",
        "Content-Length: 0x5",
        "Transfer-Encoding: chunked",
        "Transfer-Encoding: chunked",
        "Transfer-Encoding: chunked",
        "Transfer-Encoding: Chunked",
        "Transfer-Encoding:chunked",
        "Transfer-Encoding: chunked ",
        "Transfer-Encoding: gzip, chunked",
        "Transfer-Encoding: chunked, gzip",
        "Transfer-Encoding: chunked, chunked",
        "Transfer-Encoding: identity",
        "Transfer-Encoding: ,chunked",
        "Transfer-Encoding: \"chunked\"",
        "Transfer-Encoding : chunked",
        "Transfer-Encoding: chunked\r\n x",
        " Transfer-Encoding: chunked",
        "Transfer-Encoding:\tchunked",
        "Transfer-Encoding: xchunked",
        "Transfer-Encoding: chunked;q=1",
    ]);
    prop_oneof![
        3 => Just("Transfer-Encoding: chunked"),
        1 => Just("Content-Length: 5"),
        3 => odd,
    ]
}

/// Ordinary header lines.
fn ordinary() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "Host: a.example.com",
        "X-A: b",
        "Expect: 100-continue",
    ])
}

/// A line end inside a chunked body: mostly CRLF, sometimes a shape that is not.
fn chunk_eol() -> impl Strategy<Value = &'static str> {
    let odd = prop::sample::select(vec!["\n", "\r", " \r\n", "\r\r\n", "\n\r"]);
    prop_oneof![12 => Just("\r\n"), 1 => odd]
}

/// Bodies: chunked ones, mostly well-formed, odd chunk lines, and plain bytes.
fn body() -> impl Strategy<Value = String> {
    let fixed = prop::sample::select(vec![
        "",
        "hello",
        "0\r\n\r\n",
        "5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
        "5\r\nhello\r\n0\r\nX-T: 1\r\n y\r\n\r\n",
        "5\r\nhello\r\n0\r\nX-T: 1\n\r\n",
        "10000000000000005\r\nhello\r\n0\r\n\r\n",
        "00005\r\nhello\r\n0\r\n\r\n",
        "5\r\nhelloXX0\r\n\r\n",
    ])
    .prop_map(str::to_owned);
    let size = prop_oneof![
        6 => Just(""),
        1 => prop::sample::select(vec!["+", " ", "0x", "-", "00"]),
    ];
    let ext = prop_oneof![
        3 => prop::sample::select(vec!["", ";a=b", ";a", ";a=\"b c\""]),
        1 => prop::sample::select(vec![" ;a", ";a\rb", "\t", ";a\x01"]),
    ];
    let chunked = (
        size,
        1usize..20,
        ext,
        chunk_eol(),
        chunk_eol(),
        chunk_eol(),
        chunk_eol(),
    )
        .prop_map(|(prefix, n, ext, e1, e2, e3, e4)| {
            format!("{prefix}{n:x}{ext}{e1}{}{e2}0{e3}{e4}", "d".repeat(n))
        });
    // Chunk-size lines of a small alphabet: digits, separators and line ends.
    let noise = "[0-9a-fA-F;= \t\r\n+xX-]{0,24}".prop_map(|s| format!("{s}hello\r\n0\r\n\r\n"));
    prop_oneof![2 => fixed, 4 => chunked, 1 => noise]
}

fn request() -> impl Strategy<Value = Vec<u8>> {
    let method = prop::sample::select(vec!["GET", "POST", "PUT"]);
    let target = prop::sample::select(vec!["/", "/a?b=1", "http://a.example.com/x", "*"]);
    let version = prop::sample::select(vec!["HTTP/1.1", "HTTP/1.1", "HTTP/1.0"]);
    let eol = prop::sample::select(vec!["\r\n", "\r\n", "\n"]);
    let headers = (
        prop::option::weighted(0.9, framing()),
        prop::option::weighted(0.2, framing()),
        prop::collection::vec(ordinary(), 0..3),
    )
        .prop_map(|(f1, f2, mut o)| {
            o.extend(f1);
            o.extend(f2);
            o
        })
        .prop_shuffle();
    (method, target, version, eol, headers, body()).prop_map(|(m, t, v, eol, headers, body)| {
        let mut head = format!("{m} {t} {v}{eol}");
        for h in headers {
            head.push_str(h);
            head.push_str(eol);
        }
        head.push_str(eol);
        head.push_str(&body);
        head.into_bytes()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn the_gateway_never_accepts_a_framing_hyper_refuses(message in request()) {
        let mut bytes = message;
        bytes.extend_from_slice(NEXT);
        let Some((ours, version, used)) = gateway(&bytes) else {
            return Ok(());
        };
        let theirs = hyper_reads(&bytes);
        let text = String::from_utf8_lossy(&bytes);
        prop_assert!(!theirs.is_empty(), "hyper refused the head of {text:?}");
        prop_assert_eq!(&theirs[0], &ours, "{:?}", text);
        // Where the gateway's request ends the next one starts, for hyper too.
        if version == Version::HTTP_11 && bytes[used..] == *NEXT {
            prop_assert_eq!(theirs.get(1).map(|s| s.target.as_str()), Some("/next"), "{:?}", text);
        }
    }
}

#[test]
fn both_servers_accept_the_plain_shapes() {
    for message in [
        "GET / HTTP/1.1\r\nHost: a.example.com\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a.example.com\r\nContent-Length: 5\r\n\r\nhello",
        "POST / HTTP/1.1\r\nHost: a.example.com\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a.example.com\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
    ] {
        let mut bytes = message.as_bytes().to_vec();
        bytes.extend_from_slice(NEXT);
        let (ours, _, used) = gateway(&bytes).expect("the gateway accepts it");
        assert_eq!(&bytes[used..], NEXT);
        let theirs = hyper_reads(&bytes);
        assert_eq!(theirs.len(), 2, "{message:?}: {theirs:?}");
        assert_eq!(theirs[0], ours);
        assert_eq!(theirs[1].target, "/next");
    }
}
