//! Unit tests of the codec: chunked decoding, response heads, header names, request heads.

use std::io;
use std::rc::Rc;

use bytes::BytesMut;
use http::header::CONTENT_LENGTH;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use mse_router::HeaderOps;

use super::chunked::{Chunk, Step, decode_chunk};
use super::client::{HeadExtras, encode_head};
use super::head::{Framing, ResponseHead, header_name, parse_response};
use crate::forwarded::{ConnForward, ForwardHeaders};

fn decode_all(input: &[u8], split: usize) -> io::Result<(Vec<u8>, Option<HeaderMap>)> {
    let mut state = Chunk::Size;
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in input.chunks(split) {
        buf.extend_from_slice(piece);
        loop {
            match decode_chunk(&mut state, &mut buf)? {
                Step::Data(d) => out.extend_from_slice(&d),
                Step::NeedMore => break,
                Step::End(t) => return Ok((out, t)),
            }
        }
    }
    Err(io::ErrorKind::UnexpectedEof.into())
}

#[test]
fn chunked_bodies_decode_however_the_bytes_are_split() {
    let input = b"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Sum: 12\r\n\r\n";
    for split in [1, 2, 3, 7, input.len()] {
        let (body, trailers) = decode_all(input, split).unwrap();
        assert_eq!(body, b"hello, world", "split {split}");
        assert_eq!(trailers.unwrap()["x-sum"], "12");
    }
    let (body, _) = decode_all(
        b"a\r\n0123456789\r\nB;x=\"y z\"\r\n0123456789a\r\n0\r\n\r\n",
        2,
    )
    .unwrap();
    assert_eq!(body, b"01234567890123456789a");
    let (body, trailers) = decode_all(b"0003\r\nabc\r\n0\r\n\r\n", 1).unwrap();
    assert_eq!((body.as_slice(), trailers), (&b"abc"[..], None));
}

#[test]
fn malformed_chunked_bodies_are_errors() {
    for bad in [
        &b"zz\r\n"[..],
        b"3\r\nabcd\r\n",
        b"\r\n",
        b"12345678901234567\r\n",
        // Signs, whitespace, prefixes.
        b"+3\r\nabc\r\n",
        b" 3\r\nabc\r\n",
        b"3 \r\nabc\r\n",
        b"3\t;x\r\nabc\r\n",
        b"0x3\r\nabc\r\n",
        // Bare LF or CR in a chunk line, after data, in the trailers.
        b"3\nabc\r\n0\r\n\r\n",
        b"3;x\nabc\r\n0\r\n\r\n",
        b"3;x\ry\r\nabc\r\n0\r\n\r\n",
        b"3;\x01\r\nabc\r\n0\r\n\r\n",
        b"3\r\nabc\n0\r\n\r\n",
        b"3\r\nabc\r\n0\r\n\n",
        b"3\r\nabc\r\n0\r\nX: 1\n\r\n",
        b"3\r\nabc\r\n0\r\nX: 1\r\n folded\r\n\r\n",
    ] {
        assert!(
            decode_all(bad, 1).is_err(),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

fn head(raw: &str, method: Method) -> Result<Option<ResponseHead>, &'static str> {
    let mut buf = BytesMut::from(raw.as_bytes());
    parse_response(&mut buf, &method)
}

#[test]
fn headers_kept_as_received_leave_out_hop_by_hop_and_replaced_ones() {
    let raw = "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\
               Date: x\r\nX-A: 1\r\nX-B: 2\r\nContent-Length: 3\r\n\r\n";
    let h = head(raw, Method::GET).unwrap().unwrap();
    assert!(h.headers.is_empty());
    let kept = h.raw.unwrap();
    assert!(kept.has_date());
    assert_eq!(kept.length(), Some(3));
    let mut replaced = HeaderMap::new();
    replaced.insert("x-a", HeaderValue::from_static("new"));
    let mut out = Vec::new();
    kept.write(&mut out, &replaced, None);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "Date: x\r\nX-B: 2\r\nContent-Length: 3\r\n"
    );
    // Names a deferred update sets are left out as well.
    let edits = HeaderOps {
        update: vec![(
            HeaderName::from_static("x-b"),
            HeaderValue::from_static("9"),
        )],
        ..HeaderOps::default()
    };
    let mut out = Vec::new();
    kept.write(&mut out, &replaced, Some(&edits));
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "Date: x\r\nContent-Length: 3\r\n"
    );
    kept.into_map(&mut replaced);
    let names: Vec<_> = replaced
        .iter()
        .map(|(n, v)| (n.as_str(), v.to_str().unwrap()))
        .collect();
    assert_eq!(
        names,
        [
            ("x-a", "new"),
            ("date", "x"),
            ("x-b", "2"),
            ("content-length", "3")
        ]
    );
    // Lines in another form than `name: value\r\n` are written in that form, and
    // the others copied as they came.
    let raw = "HTTP/1.1 200 OK\r\nA: 1\r\nB:2\r\nC:  3  \r\nD: 4\nE: 5\r\nF: 6\r\n\
               Connection: close\r\nG: 7\r\nContent-Length: 0\r\n\r\n";
    let kept = head(raw, Method::GET).unwrap().unwrap().raw.unwrap();
    let mut out = Vec::new();
    kept.write(&mut out, &HeaderMap::new(), None);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\nF: 6\r\nG: 7\r\nContent-Length: 0\r\n"
    );
    // Chunked framing and Connection naming a header go through the map.
    for raw in [
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nConnection: X-A\r\nX-A: 1\r\nContent-Length: 0\r\n\r\n",
    ] {
        let h = head(raw, Method::GET).unwrap().unwrap();
        assert!(h.raw.is_none() && !h.headers.is_empty(), "{raw}");
    }
}

#[test]
fn cached_header_names_parse_as_uncached_ones() {
    let long = "x-".repeat(40);
    let raws = [
        "Content-Length",
        "content-length",
        "X-Custom-Thing",
        "x-custom-thing",
        "Host",
        long.as_str(),
    ];
    // Twice: the second round is served from the cache.
    for _ in 0..2 {
        for raw in raws {
            assert_eq!(
                header_name(raw.as_bytes()),
                HeaderName::from_bytes(raw.as_bytes()).ok(),
                "{raw}"
            );
        }
    }
    assert_eq!(header_name(b""), None);
    assert_eq!(header_name(b"bad name"), None);
    assert_eq!(header_name(b"bad name"), None);
}

#[test]
fn framing_follows_rfc_9112() {
    let h = head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", Method::GET)
        .unwrap()
        .unwrap();
    assert_eq!((h.framing, h.keep_alive), (Framing::Length(5), true));
    let h = head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", Method::HEAD)
        .unwrap()
        .unwrap();
    assert_eq!(h.framing, Framing::Empty);
    let h = head("HTTP/1.1 204 No Content\r\n\r\n", Method::GET)
        .unwrap()
        .unwrap();
    assert_eq!((h.framing, h.keep_alive), (Framing::Empty, true));
    let h = head(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        Method::GET,
    )
    .unwrap()
    .unwrap();
    assert_eq!((h.framing, h.keep_alive), (Framing::Chunked, true));
    let h = head(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        Method::GET,
    )
    .unwrap()
    .unwrap();
    assert_eq!((h.framing, h.keep_alive), (Framing::Close, false));
    let h = head("HTTP/1.1 200 OK\r\n\r\n", Method::GET)
        .unwrap()
        .unwrap();
    assert_eq!((h.framing, h.keep_alive), (Framing::Close, false));
    let h = head(
        "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        Method::GET,
    )
    .unwrap()
    .unwrap();
    assert_eq!((h.framing, h.keep_alive), (Framing::Chunked, false));
    assert!(!h.headers.contains_key(CONTENT_LENGTH));
    let h = head(
        "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n",
        Method::GET,
    )
    .unwrap()
    .unwrap();
    assert!(!h.keep_alive);
    let h = head("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", Method::GET)
        .unwrap()
        .unwrap();
    assert!(!h.keep_alive);
    let h = head(
        "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n",
        Method::GET,
    )
    .unwrap()
    .unwrap();
    assert!(h.keep_alive);
    assert!(
        head(
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            Method::GET
        )
        .is_err()
    );
    assert!(head("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", Method::GET).is_err());
    assert!(
        head("HTTP/1.1 200 OK\r\nContent-Le", Method::GET)
            .unwrap()
            .is_none()
    );
    assert!(head("garbage\r\n\r\n", Method::GET).is_err());
}

#[test]
fn request_heads_are_serialised_in_origin_form() {
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static("a.example"));
    let mut out = Vec::new();
    encode_head(
        &mut out,
        &Method::POST,
        "/p?q=1",
        &headers,
        None,
        false,
        true,
    );
    assert_eq!(
        out,
        b"POST /p?q=1 HTTP/1.1\r\nhost: a.example\r\ncontent-length: 0\r\n\r\n"
    );
    out.clear();
    encode_head(&mut out, &Method::PUT, "/", &headers, None, true, false);
    assert_eq!(
        out,
        b"PUT / HTTP/1.1\r\nhost: a.example\r\ntransfer-encoding: chunked\r\n\r\n"
    );
}

#[test]
fn forwarding_headers_replace_the_clients_in_the_head() {
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static("a.example"));
    headers.insert("x-real-ip", HeaderValue::from_static("6.6.6.6"));
    headers.insert("x-forwarded-host", HeaderValue::from_static("spoofed"));
    headers.insert("x-other", HeaderValue::from_static("kept"));
    let conn = Rc::new(ConnForward::for_peer(
        std::net::IpAddr::from([10, 0, 0, 1]),
        true,
        443,
    ));
    let f = ForwardHeaders::new(
        conn,
        Some(HeaderValue::from_static("1.1.1.1, 10.0.0.1")),
        None,
        None,
    );
    let mut out = Vec::new();
    let x = HeadExtras {
        forwarded: &f,
        edits: None,
        connection: false,
    };
    encode_head(&mut out, &Method::GET, "/", &headers, Some(&x), false, true);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "GET / HTTP/1.1\r\nhost: a.example\r\nx-other: kept\r\nx-forwarded-for: 1.1.1.1, 10.0.0.1\r\nx-real-ip: 10.0.0.1\r\nx-forwarded-proto: https\r\nx-forwarded-port: 443\r\n\r\n"
    );
    // A client's `Connection` left in the map is left out of the head.
    headers.insert("connection", HeaderValue::from_static("close"));
    let x = HeadExtras {
        connection: true,
        ..x
    };
    let mut out = Vec::new();
    encode_head(&mut out, &Method::GET, "/", &headers, Some(&x), false, true);
    let head = String::from_utf8(out).unwrap();
    assert!(!head.to_ascii_lowercase().contains("connection:"), "{head}");
    assert!(head.contains("x-other: kept\r\n"), "{head}");
    headers.remove("connection");
    // In the map, the same headers replace the client's.
    f.insert_into(&mut headers);
    assert_eq!(headers["x-real-ip"], "10.0.0.1");
    assert!(!headers.contains_key("x-forwarded-host"));
    assert_eq!(headers.get_all("x-forwarded-for").iter().count(), 1);
}

#[test]
fn the_parser_notes_which_looked_up_headers_a_request_has() {
    let present = |raw: &str| {
        let mut buf = BytesMut::from(raw);
        let parsed = super::head::parse_request(&mut buf, 64 * 1024, 8 * 1024, |p| p);
        let (req, _) = parsed.ok().flatten().expect("a complete head");
        *req.body()
    };
    let plain = present("GET / HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n");
    assert!(!plain.hop_by_hop() && !plain.upgrade() && !plain.forwarded_for());
    assert!(!plain.request_id());
    for hop in [
        "Connection: x-secret",
        "TE: trailers",
        "Trailer: x",
        "Transfer-Encoding: chunked",
        "Keep-Alive: 5",
        "Proxy-Connection: keep-alive",
        "Expect: 100-continue",
        "Upgrade: websocket",
    ] {
        let p = present(&format!("POST / HTTP/1.1\r\nHost: a\r\n{hop}\r\n\r\n"));
        assert!(p.hop_by_hop(), "{hop}");
        assert_eq!(p.upgrade(), hop.starts_with("Upgrade"), "{hop}");
    }
    for (connection, only) in [
        ("close", true),
        ("keep-alive, Upgrade", true),
        ("x-secret", false),
    ] {
        let p = present(&format!(
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: {connection}\r\n\r\n"
        ));
        assert!(p.hop_by_hop(), "{connection}");
        assert_eq!(p.only_connection(), only, "{connection}");
    }
    let p = present("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\nTE: trailers\r\n\r\n");
    assert!(!p.only_connection());
    assert!(!plain.only_connection());
    let xff = present("GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.1.1.1\r\n\r\n");
    assert!(xff.forwarded_for() && !xff.hop_by_hop());
    let xff = present("GET / HTTP/1.1\r\nHost: a\r\nx-FORWARDED-for: 1.1.1.1\r\n\r\n");
    assert!(xff.forwarded_for());
    let id = present("GET / HTTP/1.1\r\nHost: a\r\nX-Request-Id: abc\r\n\r\n");
    assert!(id.request_id() && !id.forwarded_for() && !id.hop_by_hop());
}
