//! The HTTP/2 server's limits against floods, over raw loopback sockets with frames
//! written by hand: rapid reset (streams opened and cancelled at once), CONTINUATION
//! floods, and more concurrent streams than the server allows.
#![cfg(test)]

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const WAIT: Duration = Duration::from_secs(30);

const DATA: u8 = 0;
const HEADERS: u8 = 1;
const RST_STREAM: u8 = 3;
const SETTINGS: u8 = 4;
const GOAWAY: u8 = 7;
const CONTINUATION: u8 = 9;

const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const ACK: u8 = 0x1;

const REFUSED_STREAM: u32 = 0x7;
const CANCEL: u32 = 0x8;
const ENHANCE_YOUR_CALM: u32 = 0xb;

/// One frame: kind, flags, stream and payload.
#[derive(Debug)]
struct Frame {
    kind: u8,
    flags: u8,
    stream: u32,
    payload: Vec<u8>,
}

impl Frame {
    /// The error code of a RST_STREAM or GOAWAY frame.
    fn error_code(&self) -> Option<u32> {
        let at = match self.kind {
            RST_STREAM => 0,
            GOAWAY => 4,
            _ => return None,
        };
        let b = self.payload.get(at..at + 4)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = len.to_be_bytes()[1..].to_vec();
    f.extend_from_slice(&[kind, flags]);
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An HPACK block for `GET http://a.example.com/`: indexed `:method GET`, `:scheme http`,
/// `:path /`, and `:authority` as a literal that is not indexed.
fn get_block() -> Vec<u8> {
    let mut b = vec![0x82, 0x86, 0x84, 0x01, 13];
    b.extend_from_slice(b"a.example.com");
    b
}

/// A connection that has exchanged the preface and SETTINGS with the gateway.
struct H2 {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl H2 {
    async fn connect(addr: SocketAddr) -> Self {
        let stream = bounded("connecting", TcpStream::connect(addr))
            .await
            .expect("connect");
        let mut c = Self {
            stream,
            buf: Vec::new(),
        };
        let mut hello = PREFACE.to_vec();
        hello.extend(frame(SETTINGS, 0, 0, &[]));
        c.send(&hello).await;
        // The server's SETTINGS, acknowledged, so that its limits are in force.
        loop {
            let f = c.next().await.expect("the server's SETTINGS");
            if f.kind == SETTINGS && f.flags & ACK == 0 {
                break;
            }
        }
        c.send(&frame(SETTINGS, ACK, 0, &[])).await;
        c
    }

    async fn send(&mut self, bytes: &[u8]) {
        // The server may close before it has read everything: that is an outcome the
        // tests look at, not a failure to write.
        let _ = tokio::time::timeout(WAIT, self.stream.write_all(bytes)).await;
    }

    /// The next frame; `None` once the server closed the connection.
    async fn next(&mut self) -> Option<Frame> {
        loop {
            if self.buf.len() >= 9 {
                let len = u32::from_be_bytes([0, self.buf[0], self.buf[1], self.buf[2]]) as usize;
                if self.buf.len() >= 9 + len {
                    let head: Vec<u8> = self.buf.drain(..9).collect();
                    let payload = self.buf.drain(..len).collect();
                    let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]);
                    return Some(Frame {
                        kind: head[3],
                        flags: head[4],
                        stream: stream & 0x7fff_ffff,
                        payload,
                    });
                }
            }
            let mut chunk = [0u8; 4096];
            match tokio::time::timeout(WAIT, self.stream.read(&mut chunk)).await {
                Err(_) => panic!("no frame within {WAIT:?}"),
                Ok(Ok(0) | Err(_)) => return None,
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Frames until the server closes the connection.
    async fn until_closed(&mut self) -> Vec<Frame> {
        let mut frames = Vec::new();
        while let Some(f) = self.next().await {
            frames.push(f);
        }
        frames
    }
}

/// A gateway routing `a.example.com` to an echo backend.
async fn echo_gateway() -> (mse_proxy::echo::EchoServer, mse_proxy::GatewayHandle) {
    let a = echo("a").await;
    let (gw, _) = gateway(&routed_to(&[("a", a.addr())]));
    (a, gw)
}

#[tokio::test]
async fn a_plain_request_is_served_over_hand_written_frames() {
    let (a, gw) = echo_gateway().await;
    let mut c = H2::connect(http_addr(&gw)).await;
    c.send(&frame(HEADERS, END_STREAM | END_HEADERS, 1, &get_block()))
        .await;
    let mut ended = false;
    while !ended {
        let f = c.next().await.expect("the answer");
        ended = f.stream == 1 && f.kind == DATA && f.flags & END_STREAM != 0;
        assert!(f.kind != RST_STREAM && f.kind != GOAWAY, "{f:?}");
    }
    assert_eq!(a.requests(), 1);
    drop(c);
    gw.shutdown().await;
}

#[tokio::test]
async fn rapid_reset_ends_the_connection_with_enhance_your_calm() {
    let (a, gw) = echo_gateway().await;
    let mut c = H2::connect(http_addr(&gw)).await;
    const STREAMS: u32 = 2000;
    let mut flood = Vec::new();
    for i in 0..STREAMS {
        let id = 2 * i + 1;
        flood.extend(frame(HEADERS, END_STREAM | END_HEADERS, id, &get_block()));
        flood.extend(frame(RST_STREAM, 0, id, &CANCEL.to_be_bytes()));
    }
    c.send(&flood).await;
    let frames = c.until_closed().await;
    let goaway = frames.iter().find(|f| f.kind == GOAWAY);
    assert_eq!(
        goaway.and_then(Frame::error_code),
        Some(ENHANCE_YOUR_CALM),
        "{goaway:?}"
    );
    assert!(a.requests() < u64::from(STREAMS) / 2, "{}", a.requests());
    gw.shutdown().await;
}

#[tokio::test]
async fn a_continuation_flood_ends_the_connection_with_enhance_your_calm() {
    let (a, gw) = echo_gateway().await;
    let mut c = H2::connect(http_addr(&gw)).await;
    // A header block that never ends: CONTINUATION frames without END_HEADERS, empty so
    // that no header size limit is ever reached.
    let mut flood = frame(HEADERS, END_STREAM, 1, &get_block());
    for _ in 0..10_000 {
        flood.extend(frame(CONTINUATION, 0, 1, &[]));
    }
    c.send(&flood).await;
    let frames = c.until_closed().await;
    let goaway = frames.iter().find(|f| f.kind == GOAWAY);
    assert_eq!(
        goaway.and_then(Frame::error_code),
        Some(ENHANCE_YOUR_CALM),
        "{goaway:?}"
    );
    assert_eq!(a.requests(), 0);
    gw.shutdown().await;
}

#[tokio::test]
async fn streams_past_the_concurrency_limit_are_refused() {
    let (_a, gw) = echo_gateway().await;
    let limit = mse_proxy::ProxyConfig::default().max_concurrent_streams;
    let mut c = H2::connect(http_addr(&gw)).await;
    // Requests whose bodies never come keep their streams open.
    let extra = 20;
    let mut open = Vec::new();
    for i in 0..limit + extra {
        open.extend(frame(HEADERS, END_HEADERS, 2 * i + 1, &get_block()));
    }
    c.send(&open).await;
    let mut refused = 0;
    while refused < extra {
        let f = c.next().await.expect("the connection stays open");
        assert_ne!(f.kind, GOAWAY, "{f:?}");
        if f.kind == RST_STREAM {
            assert_eq!(f.error_code(), Some(REFUSED_STREAM), "{f:?}");
            assert!(f.stream > 2 * limit, "stream {} refused", f.stream);
            refused += 1;
        }
    }
    // Closing the connection ends the streams waiting for their bodies.
    drop(c);
    gw.shutdown().await;
}
