//! A raw HTTP/1.1 client, gateways waiting an hour for a request head, and hand-written
//! upstreams, shared by the HTTP/1.1 conformance tests.
#![cfg(test)]
#![allow(
    dead_code,
    reason = "each test binary uses a different subset of the helpers"
)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mse_proxy::echo::EchoServer;
use mse_proxy::{GatewayHandle, ProxyConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::*;

/// The longest any single read from the gateway may take: far longer than it takes on any
/// machine, so that only a bug gets near it.
pub(crate) const WAIT: Duration = Duration::from_secs(30);

// === a raw HTTP/1.1 client ===

/// One response as the client received it; header names lower-cased.
#[derive(Debug)]
pub(crate) struct Resp {
    pub(crate) version: String,
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
    pub(crate) chunked: bool,
}

impl Resp {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the `Connection` header lists `token` (case-insensitively).
    pub(crate) fn connection_has(&self, token: &str) -> bool {
        self.header("connection")
            .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    }

    /// The echo backend's report.
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", lossy(&self.body)))
    }
}

pub(crate) fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A raw connection; `buf` keeps bytes read past the last response (pipelining).
pub(crate) struct Client {
    pub(crate) stream: TcpStream,
    pub(crate) buf: Vec<u8>,
}

impl Client {
    pub(crate) async fn connect(addr: SocketAddr) -> Self {
        let stream = tokio::time::timeout(WAIT, TcpStream::connect(addr))
            .await
            .expect("connect in time")
            .expect("connect");
        Self {
            stream,
            buf: Vec::new(),
        }
    }

    pub(crate) async fn send(&mut self, bytes: impl AsRef<[u8]>) {
        let written = tokio::time::timeout(WAIT, self.stream.write_all(bytes.as_ref())).await;
        written.expect("write in time").expect("write");
    }

    /// Reads more bytes; false at end of stream (or a reset).
    pub(crate) async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 4096];
        match tokio::time::timeout(WAIT, self.stream.read(&mut chunk)).await {
            Err(_) => panic!("nothing within {WAIT:?}; so far {:?}", lossy(&self.buf)),
            Ok(Ok(0) | Err(_)) => false,
            Ok(Ok(n)) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// One line without its CRLF (or bare LF).
    pub(crate) async fn line(&mut self) -> String {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                return lossy(&line).trim_end_matches(['\r', '\n']).to_owned();
            }
            assert!(self.fill().await, "closed mid-line: {:?}", lossy(&self.buf));
        }
    }

    pub(crate) async fn exact(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            assert!(self.fill().await, "closed after {:?}", lossy(&self.buf));
        }
        self.buf.drain(..n).collect()
    }

    /// Sends `req` and reads its response (not to HEAD).
    pub(crate) async fn ask(&mut self, req: impl AsRef<[u8]>) -> Resp {
        self.send(req).await;
        self.response().await
    }

    /// One response to a request that is not HEAD.
    pub(crate) async fn response(&mut self) -> Resp {
        self.read(false).await
    }

    /// Reads a response framed as RFC 9112 section 6.3 says.
    pub(crate) async fn read(&mut self, head: bool) -> Resp {
        let status_line = self.line().await;
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default().to_owned();
        let status = parts
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let mut headers = Vec::new();
        loop {
            let line = self.line().await;
            if line.is_empty() {
                break;
            }
            let (n, v) = line.split_once(':').expect("a header line");
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
        let mut r = Resp {
            version,
            status,
            headers,
            body: Vec::new(),
            chunked: false,
        };
        if head || status < 200 || status == 204 || status == 304 {
            return r;
        }
        if let Some(te) = r.header("transfer-encoding") {
            assert!(te.eq_ignore_ascii_case("chunked"), "{te}");
            r.chunked = true;
            loop {
                let size = self.line().await;
                let size = size.split(';').next().unwrap_or_default().trim();
                let size = usize::from_str_radix(size, 16).expect("chunk size");
                if size == 0 {
                    while !self.line().await.is_empty() {}
                    break;
                }
                let data = self.exact(size).await;
                r.body.extend_from_slice(&data);
                assert_eq!(self.line().await, "", "chunk not ended by CRLF");
            }
        } else if let Some(len) = r.header("content-length") {
            r.body = self.exact(len.parse().expect("content-length")).await;
        } else {
            while self.fill().await {}
            r.body = std::mem::take(&mut self.buf);
        }
        r
    }

    /// Whether the gateway closes the connection (within [`WAIT`]); bytes instead fail.
    pub(crate) async fn closes(&mut self) -> bool {
        let (rest, closed) = self.rest(WAIT).await;
        assert!(rest.is_empty(), "unexpected bytes: {rest:?}");
        closed
    }

    /// The next response, or `None` if the gateway closes the connection first.
    pub(crate) async fn next_or_closed(&mut self) -> Option<Resp> {
        if self.buf.is_empty() && !self.fill().await {
            return None;
        }
        Some(self.response().await)
    }

    /// Everything until the gateway closes or resets (true) or is `quiet` (false).
    pub(crate) async fn rest(&mut self, quiet: Duration) -> (String, bool) {
        let mut chunk = [0u8; 4096];
        let closed = loop {
            match tokio::time::timeout(quiet, self.stream.read(&mut chunk)).await {
                Ok(Ok(0) | Err(_)) => break true,
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
                Err(_) => break false,
            }
        };
        (lossy(&std::mem::take(&mut self.buf)), closed)
    }
}

/// A GET for `path` on `a.example.com`.
pub(crate) fn get_a(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: a.example.com\r\n\r\n")
}

/// A gateway serving `yaml` that waits an hour for a request head, unless `tweak` says
/// otherwise: a connection that ends within [`WAIT`] was ended by the gateway's choice, not
/// by its header read timeout.
pub(crate) fn gateway_waiting_an_hour(
    yaml: &str,
    tweak: impl FnOnce(&mut ProxyConfig),
) -> GatewayHandle {
    let (gw, _) = gateway_with(yaml, |c| {
        c.timeouts.header_read = Duration::from_secs(3600);
        c.timeouts.keep_alive = Duration::from_secs(3600);
        tweak(c);
    });
    gw
}

/// An echo backend `a` behind a [`gateway_waiting_an_hour`] for `a.example.com`, and a
/// client connection.
pub(crate) async fn echo_client(
    tweak: impl FnOnce(&mut ProxyConfig),
) -> (EchoServer, GatewayHandle, Client) {
    let a = echo("a").await;
    let gw = gateway_waiting_an_hour(&routed_to(&[("a", a.addr())]), tweak);
    let c = Client::connect(http_addr(&gw)).await;
    (a, gw, c)
}

/// What a [`scripted`] upstream received: request lines, and the bytes of each connection.
#[derive(Default)]
pub(crate) struct Seen {
    pub(crate) lines: Vec<String>,
    pub(crate) conns: Vec<Vec<u8>>,
}

/// A hand-written upstream for `up.example.com`: reads each request head (and its
/// Content-Length body when `read_body`), records it, writes `answer`, and closes the
/// connection when `close`.
pub(crate) async fn scripted(
    answer: &'static [u8],
    read_body: bool,
    close: bool,
) -> (SocketAddr, Arc<Mutex<Seen>>) {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let log = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                let (mut buf, mut chunk) = (Vec::new(), [0u8; 4096]);
                let conn = {
                    let mut seen = log.lock().unwrap();
                    seen.conns.push(Vec::new());
                    seen.conns.len() - 1
                };
                let mut read =
                    async |s: &mut TcpStream, buf: &mut Vec<u8>| match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => false,
                        Ok(n) => {
                            buf.extend_from_slice(&chunk[..n]);
                            log.lock().unwrap().conns[conn].extend_from_slice(&chunk[..n]);
                            true
                        }
                    };
                loop {
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = lossy(&buf[..end]);
                        let line = head.lines().next().unwrap_or("").to_owned();
                        log.lock().unwrap().lines.push(line);
                        let len: usize = head
                            .to_ascii_lowercase()
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse().ok())
                            .filter(|_| read_body)
                            .unwrap_or(0);
                        while buf.len() < end + 4 + len {
                            if !read(&mut s, &mut buf).await {
                                return;
                            }
                        }
                        buf.drain(..end + 4 + len);
                        if s.write_all(answer).await.is_err() || close {
                            return;
                        }
                    }
                    if !read(&mut s, &mut buf).await {
                        return;
                    }
                }
            });
        }
    });
    (addr, seen)
}
