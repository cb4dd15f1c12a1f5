//! A lean HTTP/1.1 client for upstream requests, driven inline by the request's own task.
//!
//! hyper's client runs each connection as a task of its own and hands every request and
//! response across channels; profiling showed that hand-off costing about as much as the
//! rest of a proxied request. Here the request task writes the head, streams the body,
//! reads the response head, and the response body ([`UpstreamBody`]) reads the socket
//! directly as the client consumes it. A connection goes back to the pool only after its
//! response was read to the end (RFC 9112 section 9.3: one exchange at a time).
//!
//! Framing follows RFC 9112 section 6.3: no body for HEAD, 1xx, 204 and 304; chunked when
//! `Transfer-Encoding` ends in `chunked` (any other coding, or `Content-Length` beside it,
//! reads to close and the connection is not reused); `Content-Length` otherwise, all values
//! equal; else until the upstream closes. Upgrades do not use this client.

use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use futures_util::FutureExt;
use http::header::CONTENT_LENGTH;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode, Version};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use mse_router::{HeaderOps, RoutePolicy};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::timer::LazyTimer;
use crate::upstream::Upstream;

/// The largest upstream response head accepted (nginx's `proxy_buffer_size` is 4-8 KiB and
/// answers 502 beyond it; ours is generous).
const MAX_HEAD: usize = 64 * 1024;
/// Response headers accepted at most.
const MAX_HEADERS: usize = 128;
/// Responses with up to this many headers (nearly all) need no allocation for their
/// offsets.
const FEW_HEADERS: usize = 32;
/// The largest chunk-size or trailer line accepted.
const MAX_LINE: usize = 8 * 1024;
const READ_CHUNK: usize = 16 * 1024;

/// One upstream connection, owned by whoever uses it now: a request, or the pool.
pub(crate) struct Conn {
    io: TcpStream,
    /// Bytes read and not consumed yet.
    buf: BytesMut,
    /// The pool key.
    pub(crate) upstream: Upstream,
    /// Whether it carried an exchange before (a failure before any response byte may then
    /// be the upstream closing an idle connection, which is worth one retry).
    pub(crate) reused: bool,
    /// Bounds the wait for each response head (see [`LazyTimer`]).
    pub(crate) timer: LazyTimer,
}

/// What went wrong in one exchange, and whether the request may be sent again.
#[derive(Debug)]
pub(crate) enum ExchangeError {
    /// Writing the request head failed: nothing of the request body was consumed.
    WriteHead(io::Error),
    /// The request body could not be written upstream.
    Body(io::Error),
    /// The request body could not be read from the client.
    ClientBody(io::Error),
    /// The connection closed or failed before any byte of a response arrived.
    NoResponse(io::Error),
    /// The response head is malformed or too large.
    BadResponse(&'static str),
    /// The connection failed while the response head was partly read.
    Read(io::Error),
}

/// A parsed response head and how its body is framed.
pub(crate) struct ResponseHead {
    pub(crate) status: StatusCode,
    /// The headers, unless they are kept as received (`raw`).
    pub(crate) headers: HeaderMap,
    raw: Option<RawHeaders>,
    framing: Framing,
    keep_alive: bool,
}

/// Response headers kept as received: the head's bytes and where each line is. Most
/// answers are relayed with their headers unchanged, or with a few headers added or
/// replaced; parsing every header into a `HeaderMap` to write it out again costs more than
/// the rest of the response. The answer's own `HeaderMap` then holds only what the gateway
/// sets, and replaces the received headers of the same name.
///
/// Only heads whose framing needs no rewriting are kept this way: no `Transfer-Encoding`,
/// and a `Connection` header naming no other header.
pub(crate) struct RawHeaders {
    head: Bytes,
    /// Name offset and length, value offset and length.
    spans: Vec<(u32, u32, u32, u32)>,
    /// Bit `i`: line `i` is hop-by-hop.
    hop_by_hop: u64,
    has_date: bool,
    length: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    Empty,
    Length(u64),
    Chunked,
    Close,
}

/// The body of an upstream response, read from the connection as it is polled.
pub(crate) struct UpstreamBody {
    conn: Option<Box<Conn>>,
    state: BodyState,
    keep_alive: bool,
    /// The response's headers as received, when they were kept so.
    raw: Option<RawHeaders>,
    /// The route's response header edits, left to the writer of headers kept as
    /// received (see [`UpstreamBody::defer_edits`]).
    edits: Option<Arc<RoutePolicy>>,
}

#[derive(Debug, PartialEq, Eq)]
enum BodyState {
    Length(u64),
    Chunked(Chunk),
    Close,
    Done,
}

/// Where a chunked body decoder is (RFC 9112 section 7.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Chunk {
    Size,
    Data(u64),
    DataEnd,
    Trailers,
}

/// One step of the chunked decoder.
#[derive(Debug, PartialEq)]
pub(crate) enum Step {
    Data(Bytes),
    NeedMore,
    End(Option<HeaderMap>),
}

// === impl Conn ===

impl Conn {
    pub(crate) fn new(io: TcpStream, upstream: Upstream) -> Self {
        Self {
            io,
            buf: BytesMut::with_capacity(8 * 1024),
            upstream,
            reused: false,
            timer: LazyTimer::default(),
        }
    }

    /// Whether an idle connection can carry a request: not closed by the upstream, and
    /// holding no unexpected bytes. Costs no system call unless the socket became
    /// readable while idle.
    pub(crate) fn is_usable(&mut self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match self.io.poll_read_ready(&mut cx) {
            Poll::Pending => true,
            Poll::Ready(Err(_)) => false,
            // Readable while idle: either the upstream closed it (read gives 0), sent
            // something unexpected, or the readiness was stale.
            Poll::Ready(Ok(())) => {
                let mut probe = [0u8; 1];
                matches!(self.io.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
            }
        }
    }

    /// Writes the request head, the first body frame when it is already there (appended
    /// to `head`, so one write carries both), then the rest of the body; then reads the
    /// response head. `head` is left unchanged when the request has no body.
    pub(crate) async fn exchange<B>(
        &mut self,
        head: &mut Vec<u8>,
        body: &mut B,
        chunked: bool,
        method: &Method,
    ) -> Result<ResponseHead, ExchangeError>
    where
        B: Body<Data = Bytes> + Unpin,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let out = head;
        let mut body_done = body.is_end_stream();
        // Coalesce the head with a body that is already buffered (small POSTs): one write.
        if !body_done && let Some(polled) = body.frame().now_or_never() {
            match polled {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        encode_data(out, &data, chunked);
                    }
                    body_done = body.is_end_stream();
                }
                Some(Err(e)) => return Err(ExchangeError::ClientBody(io::Error::other(e))),
                None => body_done = true,
            }
            if body_done && chunked {
                out.extend_from_slice(b"0\r\n\r\n");
            }
        }
        self.io
            .write_all(out)
            .await
            .map_err(ExchangeError::WriteHead)?;
        if !body_done {
            self.send_body(body, chunked).await?;
        }
        self.read_head(method).await
    }

    async fn send_body<B>(&mut self, body: &mut B, chunked: bool) -> Result<(), ExchangeError>
    where
        B: Body<Data = Bytes> + Unpin,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let mut out = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| ExchangeError::ClientBody(io::Error::other(e)))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            if data.is_empty() {
                continue;
            }
            let written = if chunked {
                out.clear();
                encode_data(&mut out, &data, true);
                self.io.write_all(&out).await
            } else {
                self.io.write_all(&data).await
            };
            written.map_err(ExchangeError::Body)?;
        }
        if chunked {
            self.io
                .write_all(b"0\r\n\r\n")
                .await
                .map_err(ExchangeError::Body)?;
        }
        Ok(())
    }

    async fn read_head(&mut self, method: &Method) -> Result<ResponseHead, ExchangeError> {
        let mut seen_bytes = false;
        loop {
            if !self.buf.is_empty() {
                seen_bytes = true;
                match parse_head(&mut self.buf, method)? {
                    // 100 Continue, 103 Early Hints: the final response follows. A 101 is
                    // returned: this client never asks for one, so the caller refuses it.
                    Some(head)
                        if head.status.is_informational()
                            && head.status != StatusCode::SWITCHING_PROTOCOLS =>
                    {
                        continue;
                    }
                    Some(head) => return Ok(head),
                    None if self.buf.len() > MAX_HEAD => {
                        return Err(ExchangeError::BadResponse("response head too large"));
                    }
                    None => {}
                }
            }
            match std::future::poll_fn(|cx| fill(&mut self.io, &mut self.buf, READ_CHUNK, cx)).await
            {
                Ok(0) if seen_bytes => {
                    return Err(ExchangeError::Read(io::ErrorKind::UnexpectedEof.into()));
                }
                Ok(0) => {
                    return Err(ExchangeError::NoResponse(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "connection closed before a response",
                    )));
                }
                Ok(_) => {}
                Err(e) if seen_bytes => return Err(ExchangeError::Read(e)),
                Err(e) => return Err(ExchangeError::NoResponse(e)),
            }
        }
    }
}

fn encode_data(out: &mut Vec<u8>, data: &[u8], chunked: bool) {
    if chunked {
        if data.is_empty() {
            return;
        }
        chunk_size_line(out, data.len());
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
    } else {
        out.extend_from_slice(data);
    }
}

/// Reads what the socket has into `buf`; `Ok(0)` is end of stream.
///
/// Goes through `AsyncRead`, which on epoll treats a read that did not fill the buffer as
/// draining the socket: the next read waits for the next event instead of costing a
/// system call that would only say `EAGAIN`.
/// `chunk`: how much room to make when less than 1 KiB is left. The client-facing server
/// reads with it too.
pub(crate) fn fill<R>(
    io: &mut R,
    buf: &mut BytesMut,
    chunk: usize,
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>>
where
    R: tokio::io::AsyncRead + Unpin + ?Sized,
{
    if buf.capacity() - buf.len() < 1024 {
        buf.reserve(chunk);
    }
    tokio_util::io::poll_read_buf(Pin::new(io), cx, buf)
}

/// Appends the size line of a chunk of `len` bytes.
pub(crate) fn chunk_size_line(out: &mut Vec<u8>, len: usize) {
    use std::io::Write;
    let _ = write!(out, "{len:x}\r\n");
}

/// One `Content-Length` value: digits only.
pub(crate) fn content_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// Serialises a request head in origin form. The caller has prepared the headers (hop by
/// hop removed, `Host` set); `chunked` adds `Transfer-Encoding: chunked`, and a body-less
/// POST, PUT or PATCH without `Content-Length` gets `Content-Length: 0`.
///
/// With `extras`, the client's own `X-Forwarded-*` and `X-Real-IP` headers are skipped
/// and the gateway's are written instead, and the route's request header edits are
/// applied as the head is written.
pub(crate) fn encode_head(
    out: &mut Vec<u8>,
    method: &Method,
    target: &str,
    headers: &HeaderMap,
    extras: Option<&HeadExtras<'_>>,
    chunked: bool,
    empty: bool,
) {
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        if extras.is_some_and(|x| x.replaces(name)) {
            continue;
        }
        line(out, name.as_str().as_bytes(), value.as_bytes());
    }
    if let Some(x) = extras {
        x.encode(out);
    }
    if chunked {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    } else if empty
        && matches!(*method, Method::POST | Method::PUT | Method::PATCH)
        && !headers.contains_key(CONTENT_LENGTH)
    {
        out.extend_from_slice(b"content-length: 0\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

fn line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// The request headers the gateway sets itself: `X-Forwarded-For` (the client's list with
/// the client appended), `X-Real-IP`, `X-Forwarded-Proto`, `X-Forwarded-Host` and
/// `X-Forwarded-Port`. On the common path they are written straight into the request head
/// ([`encode_head`]), so the header map is neither probed nor grown for them; where the
/// map itself travels on (upgrades, mirror copies, error pages, header edits naming
/// them) they are inserted into it ([`ForwardHeaders::insert_into`]).
#[derive(Clone, Debug)]
pub(crate) struct ForwardHeaders {
    conn: Rc<ConnForward>,
    /// `X-Forwarded-For` when the client sent one: theirs with the client appended.
    /// `None`: the client address alone.
    for_: Option<HeaderValue>,
    /// `None`: a request without host; a client's `X-Forwarded-Host` is removed.
    host: Option<HeaderValue>,
}

/// The forwarding headers that are the same for every request of one client connection,
/// with their head lines written once.
#[derive(Debug)]
pub(crate) struct ConnForward {
    peer_ip: HeaderValue,
    proto: HeaderValue,
    port: HeaderValue,
    /// `x-forwarded-for` (the client address alone), `x-real-ip`, `x-forwarded-proto` and
    /// `x-forwarded-port` lines.
    lines: Box<[u8]>,
    /// Where the lines after `x-forwarded-for` start.
    after_for: usize,
}

impl ConnForward {
    /// For a client at `peer_ip` on a listener at `port`, over TLS or not.
    pub(crate) fn new(peer_ip: HeaderValue, tls: bool, port: HeaderValue) -> Self {
        let proto = HeaderValue::from_static(if tls { "https" } else { "http" });
        let mut lines = Vec::new();
        line(&mut lines, b"x-forwarded-for", peer_ip.as_bytes());
        let after_for = lines.len();
        line(&mut lines, b"x-real-ip", peer_ip.as_bytes());
        line(&mut lines, b"x-forwarded-proto", proto.as_bytes());
        line(&mut lines, b"x-forwarded-port", port.as_bytes());
        Self {
            peer_ip,
            proto,
            port,
            lines: lines.into(),
            after_for,
        }
    }

    /// The client address.
    pub(crate) fn peer_ip(&self) -> &HeaderValue {
        &self.peer_ip
    }
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

impl ForwardHeaders {
    /// Whether `name` is one of the headers this replaces.
    pub(crate) fn replaces(name: &HeaderName) -> bool {
        let n = name.as_str();
        n.as_bytes().first() == Some(&b'x')
            && matches!(
                n,
                "x-forwarded-for"
                    | "x-real-ip"
                    | "x-forwarded-proto"
                    | "x-forwarded-host"
                    | "x-forwarded-port"
            )
    }

    /// The headers of a request from the connection of `conn`: `for_` is the client's own
    /// `X-Forwarded-For` with the client appended, if it sent one.
    pub(crate) fn new(
        conn: Rc<ConnForward>,
        for_: Option<HeaderValue>,
        host: Option<HeaderValue>,
    ) -> Self {
        Self { conn, for_, host }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let c = &*self.conn;
        match &self.for_ {
            None => out.extend_from_slice(&c.lines),
            Some(v) => {
                line(out, b"x-forwarded-for", v.as_bytes());
                out.extend_from_slice(&c.lines[c.after_for..]);
            }
        }
        if let Some(h) = &self.host {
            line(out, b"x-forwarded-host", h.as_bytes());
        }
    }

    /// Puts these headers into `headers`, replacing the client's.
    pub(crate) fn insert_into(self, headers: &mut HeaderMap) {
        let c = &*self.conn;
        let for_ = self.for_.unwrap_or_else(|| c.peer_ip.clone());
        headers.insert(X_FORWARDED_FOR, for_);
        headers.insert(X_REAL_IP, c.peer_ip.clone());
        headers.insert(X_FORWARDED_PROTO, c.proto.clone());
        match self.host {
            Some(h) => headers.insert(X_FORWARDED_HOST, h),
            None => headers.remove(X_FORWARDED_HOST),
        };
        headers.insert(X_FORWARDED_PORT, c.port.clone());
    }
}

/// What [`encode_head`] writes besides the request's header map: the gateway's forwarding
/// headers and the route's request header edits (`upstream-vhost`, `x-forwarded-prefix`,
/// `request-header-control-*`), which then need no insert into the map. Where the map
/// travels on, the caller inserts them instead and passes no extras.
pub(crate) struct HeadExtras<'a> {
    pub(crate) forwarded: &'a ForwardHeaders,
    pub(crate) edits: Option<&'a RoutePolicy>,
}

impl HeadExtras<'_> {
    /// Whether the request's own header `name` is left out of the head.
    fn replaces(&self, name: &HeaderName) -> bool {
        ForwardHeaders::replaces(name)
            || self.edits.is_some_and(|p| p.replaces_request_header(name))
    }

    fn encode(&self, out: &mut Vec<u8>) {
        self.forwarded.encode(out);
        if let Some(p) = self.edits {
            out.extend_from_slice(&p.request_head_plan().lines);
        }
    }
}

/// Parses a complete response head off the front of `buf`; `None` when more bytes are
/// needed.
fn parse_head(buf: &mut BytesMut, method: &Method) -> Result<Option<ResponseHead>, ExchangeError> {
    // The header slots are left uninitialised (6 KiB of stores per response otherwise);
    // the offsets of each name and value are kept so the head is frozen once and sliced.
    let mut slots =
        [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut spans = Spans::default();
    let (len, code, version, count) = {
        let mut res = httparse::Response::new(&mut []);
        let base = buf.as_ptr() as usize;
        let parsed = httparse::ParserConfig::default()
            .parse_response_with_uninit_headers(&mut res, buf, &mut slots);
        let len = match parsed {
            Ok(httparse::Status::Complete(len)) if len > MAX_HEAD => {
                return Err(ExchangeError::BadResponse("response head too large"));
            }
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => {
                return Err(ExchangeError::BadResponse("too many response headers"));
            }
            Err(_) => return Err(ExchangeError::BadResponse("malformed response head")),
        };
        let count = res.headers.len();
        spans.record(res.headers, base);
        (len, res.code.unwrap_or(0), res.version.unwrap_or(1), count)
    };
    let spans = spans.as_slice();
    let head = buf.split_to(len).freeze();
    let status = StatusCode::from_u16(code)
        .map_err(|_| ExchangeError::BadResponse("invalid status code"))?;
    let mut seen = Seen::default();
    let mut has_date = false;
    let mut hop_by_hop = 0u64;
    for (i, &(n, nl, v, vl)) in spans.iter().enumerate() {
        let (n, nl, v, vl) = (n as usize, nl as usize, v as usize, vl as usize);
        let kind = raw_kind(&head[n..n + nl]);
        has_date |= kind == Kind::Date;
        if kind.hop_by_hop() && i < 64 {
            hop_by_hop |= 1 << i;
        }
        seen.note(kind, &head[v..v + vl]);
    }
    let version = if version == 0 {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    let transfer_encoding = seen.transfer_encoding.is_some();
    let keep_raw = !transfer_encoding && !seen.other_tokens && count <= 64;
    let length = seen.length.ok().flatten();
    let (framing, mut keep_alive) = seen.framing(status, method, version)?;
    keep_alive &= framing != Framing::Close;
    if keep_raw {
        return Ok(Some(ResponseHead {
            status,
            headers: HeaderMap::new(),
            raw: Some(RawHeaders {
                head,
                spans: spans.to_vec(),
                hop_by_hop,
                has_date,
                length,
            }),
            framing,
            keep_alive,
        }));
    }
    // Room for the few headers a route's policy or CORS add to the answer, so that adding
    // them does not grow the map.
    let mut headers = HeaderMap::with_capacity(count + 4);
    for &(n, nl, v, vl) in spans {
        let (n, nl, v, vl) = (n as usize, nl as usize, v as usize, vl as usize);
        let name = header_name(&head[n..n + nl])
            .ok_or(ExchangeError::BadResponse("invalid response header name"))?;
        let value = HeaderValue::from_maybe_shared(head.slice(v..v + vl))
            .map_err(|_| ExchangeError::BadResponse("invalid response header value"))?;
        headers.append(name, value);
    }
    // Transfer-Encoding overrides Content-Length (RFC 9112 section 6.3): a length that
    // does not describe the decoded body must not reach the client.
    if matches!(framing, Framing::Chunked | Framing::Close) && transfer_encoding {
        headers.remove(CONTENT_LENGTH);
    }
    Ok(Some(ResponseHead {
        status,
        headers,
        raw: None,
        framing,
        keep_alive,
    }))
}

/// The headers the framing or the hop-by-hop rules care about, by name as received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Connection,
    TransferEncoding,
    ContentLength,
    Date,
    /// Another hop-by-hop header (RFC 9110 section 7.6.1), or `Expect`.
    HopByHop,
    Other,
}

impl Kind {
    fn hop_by_hop(self) -> bool {
        matches!(
            self,
            Kind::Connection | Kind::TransferEncoding | Kind::HopByHop
        )
    }
}

/// What kind of header `name` (any case) is.
pub(crate) fn raw_kind(name: &[u8]) -> Kind {
    let is = |s: &str| name.eq_ignore_ascii_case(s.as_bytes());
    match name.len() {
        2 if is("te") => Kind::HopByHop,
        4 if is("date") => Kind::Date,
        6 if is("expect") => Kind::HopByHop,
        7 if is("upgrade") || is("trailer") => Kind::HopByHop,
        10 if is("connection") => Kind::Connection,
        10 if is("keep-alive") => Kind::HopByHop,
        14 if is("content-length") => Kind::ContentLength,
        16 if is("proxy-connection") => Kind::HopByHop,
        17 if is("transfer-encoding") => Kind::TransferEncoding,
        _ => Kind::Other,
    }
}

/// Where each header of a parsed head is: name offset and length, value offset and
/// length, relative to the start of the head. Heads with up to [`FEW_HEADERS`] headers
/// (nearly all) need no allocation.
pub(crate) struct Spans {
    few: [(u32, u32, u32, u32); FEW_HEADERS],
    more: Vec<(u32, u32, u32, u32)>,
    count: usize,
}

impl Default for Spans {
    fn default() -> Self {
        Self {
            few: [(0, 0, 0, 0); FEW_HEADERS],
            more: Vec::new(),
            count: 0,
        }
    }
}

impl Spans {
    /// Records where `headers`, parsed from a buffer starting at address `base`, are.
    pub(crate) fn record(&mut self, headers: &[httparse::Header<'_>], base: usize) {
        let offset = |s: &[u8]| (s.as_ptr() as usize - base) as u32;
        self.count = headers.len();
        if self.count > FEW_HEADERS {
            self.more.reserve_exact(self.count);
        }
        for (i, h) in headers.iter().enumerate() {
            let span = (
                offset(h.name.as_bytes()),
                h.name.len() as u32,
                offset(h.value),
                h.value.len() as u32,
            );
            match self.few.get_mut(i) {
                Some(slot) if self.count <= FEW_HEADERS => *slot = span,
                _ => self.more.push(span),
            }
        }
    }

    pub(crate) fn as_slice(&self) -> &[(u32, u32, u32, u32)] {
        if self.count <= FEW_HEADERS {
            &self.few[..self.count]
        } else {
            &self.more
        }
    }
}

/// Names cached per worker by [`header_name`], and the longest name cached.
const NAME_CACHE: usize = 64;
const NAME_CACHE_MAX: usize = 32;

struct CachedName {
    len: u8,
    raw: [u8; NAME_CACHE_MAX],
    name: HeaderName,
}

thread_local! {
    static NAMES: std::cell::RefCell<[Option<CachedName>; NAME_CACHE]> =
        const { std::cell::RefCell::new([const { None }; NAME_CACHE]) };
}

/// A header name as received, parsed. Parsing (lower-casing, matching the standard names)
/// costs more than the rest of a header, and the peers of a worker send the same few
/// names, spelled the same way, on every message: so each worker keeps the last name
/// seen per slot, with its raw bytes, and a name seen before is only compared.
pub(crate) fn header_name(raw: &[u8]) -> Option<HeaderName> {
    let (Some(&first), Some(&last)) = (raw.first(), raw.last()) else {
        return None;
    };
    if raw.len() > NAME_CACHE_MAX {
        return HeaderName::from_bytes(raw).ok();
    }
    let slot = (raw.len() * 31 + usize::from(first) * 7 + usize::from(last)) % NAME_CACHE;
    NAMES.with_borrow_mut(|cache| {
        let entry = &mut cache[slot];
        if let Some(c) = entry
            && c.raw[..usize::from(c.len)] == *raw
        {
            return Some(c.name.clone());
        }
        let name = HeaderName::from_bytes(raw).ok()?;
        let mut copy = [0u8; NAME_CACHE_MAX];
        copy[..raw.len()].copy_from_slice(raw);
        *entry = Some(CachedName {
            len: raw.len() as u8,
            raw: copy,
            name: name.clone(),
        });
        Some(name)
    })
}

/// What the framing of a message depends on, gathered as its headers are read (the
/// server side reads requests with it too).
pub(crate) struct Seen {
    /// `Connection` tokens.
    pub(crate) close: bool,
    pub(crate) keep_alive_token: bool,
    pub(crate) upgrade_token: bool,
    /// Tokens naming other headers.
    pub(crate) other_tokens: bool,
    /// `Some(last coding is chunked)` when `Transfer-Encoding` is present.
    pub(crate) transfer_encoding: Option<bool>,
    pub(crate) content_length: bool,
    /// The one length all `Content-Length` values agree on, or why there is none.
    pub(crate) length: Result<Option<u64>, &'static str>,
}

impl Default for Seen {
    fn default() -> Self {
        Self {
            close: false,
            keep_alive_token: false,
            upgrade_token: false,
            other_tokens: false,
            transfer_encoding: None,
            content_length: false,
            length: Ok(None),
        }
    }
}

impl Seen {
    /// Notes one header.
    pub(crate) fn header(&mut self, name: &HeaderName, value: &[u8]) {
        self.note(raw_kind(name.as_str().as_bytes()), value);
    }

    /// Notes one header of this kind.
    pub(crate) fn note(&mut self, kind: Kind, value: &[u8]) {
        match kind {
            Kind::Connection => {
                for t in value.split(|b| *b == b',').map(trim_ascii) {
                    let close = t.eq_ignore_ascii_case(b"close");
                    let keep_alive = t.eq_ignore_ascii_case(b"keep-alive");
                    let upgrade = t.eq_ignore_ascii_case(b"upgrade");
                    self.close |= close;
                    self.keep_alive_token |= keep_alive;
                    self.upgrade_token |= upgrade;
                    self.other_tokens |= !(close || keep_alive || upgrade || t.is_empty());
                }
            }
            Kind::TransferEncoding => {
                let last = value
                    .split(|b| *b == b',')
                    .map(trim_ascii)
                    .rfind(|t| !t.is_empty());
                let chunked = self.transfer_encoding.unwrap_or(false);
                self.transfer_encoding =
                    Some(last.map_or(chunked, |t| t.eq_ignore_ascii_case(b"chunked")));
            }
            Kind::ContentLength => {
                self.content_length = true;
                for part in value.split(|b| *b == b',').map(trim_ascii) {
                    let n = content_length(part);
                    self.length = match (self.length, n) {
                        (Err(e), _) => Err(e),
                        (_, None) => Err("invalid Content-Length"),
                        (Ok(Some(l)), Some(n)) if l != n => {
                            Err("conflicting Content-Length values")
                        }
                        (Ok(_), Some(n)) => Ok(Some(n)),
                    };
                }
            }
            Kind::Date | Kind::HopByHop | Kind::Other => {}
        }
    }

    /// How the body is delimited, and whether the connection may carry another exchange.
    fn framing(
        self,
        status: StatusCode,
        method: &Method,
        version: Version,
    ) -> Result<(Framing, bool), ExchangeError> {
        let keep_alive = !self.close && (version == Version::HTTP_11 || self.keep_alive_token);
        if *method == Method::HEAD
            || status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
        {
            return Ok((Framing::Empty, keep_alive));
        }
        if let Some(chunked) = self.transfer_encoding {
            // With Content-Length beside it the message is suspect: read it, never reuse.
            let keep = keep_alive && !self.content_length;
            return Ok(if chunked {
                (Framing::Chunked, keep)
            } else {
                (Framing::Close, false)
            });
        }
        Ok(match self.length.map_err(ExchangeError::BadResponse)? {
            Some(0) => (Framing::Empty, keep_alive),
            Some(n) => (Framing::Length(n), keep_alive),
            None => (Framing::Close, false),
        })
    }
}

// === impl ResponseHead ===

impl ResponseHead {
    /// The body, reading from `conn`.
    pub(crate) fn body(&self, conn: Box<Conn>) -> UpstreamBody {
        let state = match self.framing {
            Framing::Empty => BodyState::Done,
            Framing::Length(n) => BodyState::Length(n),
            Framing::Chunked => BodyState::Chunked(Chunk::Size),
            Framing::Close => BodyState::Close,
        };
        UpstreamBody {
            conn: Some(conn),
            state,
            keep_alive: self.keep_alive,
            raw: None,
            edits: None,
        }
    }

    /// The answer to relay: status, headers (kept as received in the body when they
    /// were, see [`RawHeaders`]) and the body, reading from `conn`.
    pub(crate) fn into_response(mut self, conn: Box<Conn>) -> Response<UpstreamBody> {
        let mut body = self.body(conn);
        body.raw = self.raw.take();
        let mut response = Response::new(body);
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers;
        response
    }
}

/// Moves headers kept as received into the answer's header map, behind the ones already
/// there (which replace received ones of the same name); hop-by-hop headers are left out.
pub(crate) fn materialize(response: &mut Response<UpstreamBody>) {
    let mut headers = std::mem::take(response.headers_mut());
    response.body_mut().headers_into_map(&mut headers);
    *response.headers_mut() = headers;
}

// === impl RawHeaders ===

impl RawHeaders {
    fn lines(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.spans.iter().map(|&(n, nl, v, vl)| {
            let (n, nl, v, vl) = (n as usize, nl as usize, v as usize, vl as usize);
            (&self.head[n..n + nl], &self.head[v..v + vl])
        })
    }

    /// The lines that are not hop-by-hop.
    fn end_to_end(&self) -> impl Iterator<Item = (usize, &[u8], &[u8])> {
        self.lines()
            .enumerate()
            .filter(|(i, _)| self.hop_by_hop & (1 << i) == 0)
            .map(|(i, (n, v))| (i, n, v))
    }

    /// Whether a header named `name` was received.
    pub(crate) fn contains(&self, name: &HeaderName) -> bool {
        let name = name.as_str().as_bytes();
        self.lines().any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    /// Whether a `Date` header was received.
    pub(crate) fn has_date(&self) -> bool {
        self.has_date
    }

    /// The `Content-Length` received.
    pub(crate) fn length(&self) -> Option<u64> {
        self.length
    }

    /// Writes the received header lines, but for hop-by-hop ones and those `replaced`
    /// has a header of the same name for.
    /// `edits`: headers they update are left out too (the caller writes the edits).
    pub(crate) fn write(&self, out: &mut Vec<u8>, replaced: &HeaderMap, edits: Option<&HeaderOps>) {
        let updated = |name: &[u8]| {
            edits.is_some_and(|e| {
                e.update
                    .iter()
                    .any(|(n, _)| n.as_str().as_bytes().eq_ignore_ascii_case(name))
            })
        };
        // Lines written as `name: value\r\n` are copied in runs, with one copy for
        // consecutive ones; others are written out again in that form.
        let head = &self.head[..];
        let mut run = 0..0;
        for (i, name, value) in self.end_to_end() {
            if (!replaced.is_empty()
                && replaced
                    .keys()
                    .any(|k| k.as_str().as_bytes().eq_ignore_ascii_case(name)))
                || updated(name)
            {
                continue;
            }
            let (n, nl, v, vl) = self.spans[i];
            let (n, nl, v, vl) = (n as usize, nl as usize, v as usize, vl as usize);
            let canonical = head.get(n + nl..v) == Some(b": ".as_slice())
                && head.get(v + vl..v + vl + 2) == Some(b"\r\n".as_slice());
            if canonical && run.end == n && !run.is_empty() {
                run.end = v + vl + 2;
                continue;
            }
            out.extend_from_slice(&head[run]);
            if canonical {
                run = n..v + vl + 2;
            } else {
                run = 0..0;
                line(out, name, value);
            }
        }
        out.extend_from_slice(&head[run]);
    }

    /// Moves the headers into `headers`, behind the ones already there (which replace
    /// received ones of the same name); hop-by-hop headers are left out.
    pub(crate) fn into_map(self, headers: &mut HeaderMap) {
        let replaced: Vec<HeaderName> = headers.keys().cloned().collect();
        headers.reserve(self.spans.len());
        for (i, raw, _) in self.end_to_end() {
            let (_, _, v, vl) = self.spans[i];
            let (v, vl) = (v as usize, vl as usize);
            // httparse has checked names and values; a name or value `http` would still
            // refuse is dropped rather than relayed.
            let (Some(name), Ok(value)) = (
                header_name(raw),
                HeaderValue::from_maybe_shared(self.head.slice(v..v + vl)),
            ) else {
                continue;
            };
            if !replaced.contains(&name) {
                headers.append(name, value);
            }
        }
    }
}

// === impl UpstreamBody ===

impl UpstreamBody {
    /// The response's headers as received, when they were kept so.
    pub(crate) fn raw_headers(&self) -> Option<&RawHeaders> {
        self.raw.as_ref()
    }

    /// Leaves the route's response header edits (updates and additions only) to the
    /// writer of the headers kept as received, instead of inserting them into the
    /// answer's map. Only when the headers are kept so.
    pub(crate) fn defer_edits(&mut self, policy: Arc<RoutePolicy>) {
        if self.raw.is_some() {
            self.edits = Some(policy);
        }
    }

    /// The response header edits left to the writer.
    pub(crate) fn deferred_edits(&self) -> Option<&HeaderOps> {
        self.edits.as_deref().map(|p| &p.response_headers)
    }

    /// Moves the headers kept as received into `headers`, and applies the edits left to
    /// the writer: for a server that writes the map only.
    pub(crate) fn headers_into_map(&mut self, headers: &mut HeaderMap) {
        if let Some(raw) = self.raw.take() {
            raw.into_map(headers);
        }
        if let Some(p) = self.edits.take() {
            p.response_headers.apply(headers);
        }
    }

    /// The connection, when the body was read to its end and the upstream keeps it open.
    pub(crate) fn take_reusable(&mut self) -> Option<Box<Conn>> {
        if self.state != BodyState::Done || !self.keep_alive {
            return None;
        }
        let mut conn = self.conn.take()?;
        conn.reused = true;
        conn.buf.is_empty().then_some(conn)
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Frame<Bytes>>>> {
        let Some(conn) = self.conn.as_mut() else {
            return Poll::Ready(None);
        };
        loop {
            match &mut self.state {
                BodyState::Done => return Poll::Ready(None),
                BodyState::Length(remaining) => {
                    if !conn.buf.is_empty() {
                        let n = conn
                            .buf
                            .len()
                            .min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                        *remaining -= n as u64;
                        if *remaining == 0 {
                            self.state = BodyState::Done;
                        }
                        return Poll::Ready(Some(Ok(Frame::data(conn.buf.split_to(n).freeze()))));
                    }
                }
                BodyState::Close => {
                    if !conn.buf.is_empty() {
                        let n = conn.buf.len();
                        return Poll::Ready(Some(Ok(Frame::data(conn.buf.split_to(n).freeze()))));
                    }
                }
                BodyState::Chunked(chunk) => match decode_chunk(chunk, &mut conn.buf) {
                    Ok(Step::Data(data)) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                    Ok(Step::End(trailers)) => {
                        self.state = BodyState::Done;
                        return Poll::Ready(trailers.map(|t| Ok(Frame::trailers(t))));
                    }
                    Ok(Step::NeedMore) => {}
                    Err(e) => return Poll::Ready(Some(Err(e))),
                },
            }
            match ready!(fill(&mut conn.io, &mut conn.buf, READ_CHUNK, cx)) {
                Ok(0) if self.state == BodyState::Close => {
                    self.state = BodyState::Done;
                    self.keep_alive = false;
                    return Poll::Ready(None);
                }
                Ok(0) => {
                    return Poll::Ready(Some(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "upstream closed the connection in the middle of the body",
                    ))));
                }
                Ok(_) => {}
                Err(e) => return Poll::Ready(Some(Err(e))),
            }
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.get_mut().poll_next(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.state == BodyState::Done
    }

    fn size_hint(&self) -> SizeHint {
        match self.state {
            BodyState::Done => SizeHint::with_exact(0),
            BodyState::Length(n) => SizeHint::with_exact(n),
            _ => SizeHint::default(),
        }
    }
}

/// Decodes as much of a chunked body as `buf` holds.
pub(crate) fn decode_chunk(state: &mut Chunk, buf: &mut BytesMut) -> io::Result<Step> {
    let bad = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("invalid chunked body: {what}"),
        )
    };
    loop {
        match *state {
            Chunk::Size => {
                let Some(line) = take_line(buf)? else {
                    return Ok(Step::NeedMore);
                };
                let digits = line[..].split(|b| *b == b';').next().unwrap_or(&[]);
                let digits = trim_ascii(digits);
                if digits.is_empty() || digits.len() > 16 {
                    return Err(bad("chunk size"));
                }
                let size = std::str::from_utf8(digits)
                    .ok()
                    .and_then(|s| u64::from_str_radix(s, 16).ok())
                    .ok_or_else(|| bad("chunk size"))?;
                *state = if size == 0 {
                    Chunk::Trailers
                } else {
                    Chunk::Data(size)
                };
            }
            Chunk::Data(remaining) => {
                if buf.is_empty() {
                    return Ok(Step::NeedMore);
                }
                let n = buf
                    .len()
                    .min(usize::try_from(remaining).unwrap_or(usize::MAX));
                let left = remaining - n as u64;
                *state = if left == 0 {
                    Chunk::DataEnd
                } else {
                    Chunk::Data(left)
                };
                return Ok(Step::Data(buf.split_to(n).freeze()));
            }
            Chunk::DataEnd => {
                let Some(line) = take_line(buf)? else {
                    return Ok(Step::NeedMore);
                };
                if !line.is_empty() {
                    return Err(bad("data longer than its chunk size"));
                }
                *state = Chunk::Size;
            }
            Chunk::Trailers => {
                let mut trailers: Option<HeaderMap> = None;
                // Trailers are consumed only once the whole section is there.
                let Some(end) = find_trailer_end(buf) else {
                    if buf.len() > MAX_LINE * 4 {
                        return Err(bad("trailer section too large"));
                    }
                    return Ok(Step::NeedMore);
                };
                let section = buf.split_to(end);
                for line in section[..].split(|b| *b == b'\n') {
                    let line = trim_ascii(line);
                    if line.is_empty() {
                        continue;
                    }
                    let Some(colon) = line.iter().position(|b| *b == b':') else {
                        return Err(bad("trailer line"));
                    };
                    let name =
                        HeaderName::from_bytes(&line[..colon]).map_err(|_| bad("trailer name"))?;
                    let value = HeaderValue::from_bytes(trim_ascii(&line[colon + 1..]))
                        .map_err(|_| bad("trailer value"))?;
                    trailers
                        .get_or_insert_with(HeaderMap::new)
                        .append(name, value);
                }
                return Ok(Step::End(trailers));
            }
        }
    }
}

/// Takes one line (without its CRLF or LF) off the front of `buf`.
fn take_line(buf: &mut BytesMut) -> io::Result<Option<BytesMut>> {
    match buf.iter().position(|b| *b == b'\n') {
        Some(i) => {
            let mut line = buf.split_to(i + 1);
            line.truncate(i);
            if line.last() == Some(&b'\r') {
                line.truncate(i - 1);
            }
            Ok(Some(line))
        }
        None if buf.len() > MAX_LINE => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "invalid chunked body: line too long",
        )),
        None => Ok(None),
    }
}

/// The length of the trailer section including the empty line that ends it.
fn find_trailer_end(buf: &BytesMut) -> Option<usize> {
    let mut start = 0;
    while let Some(i) = buf[start..].iter().position(|b| *b == b'\n') {
        let line = &buf[start..start + i];
        if line.is_empty() || line == b"\r" {
            return Some(start + i + 1);
        }
        start += i + 1;
    }
    None
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    b.trim_ascii()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let (body, trailers) = decode_all(b"3\nabc\n0\n\n", 1).unwrap();
        assert_eq!((body.as_slice(), trailers), (&b"abc"[..], None));
    }

    #[test]
    fn malformed_chunked_bodies_are_errors() {
        for bad in [
            &b"zz\r\n"[..],
            b"3\r\nabcd\r\n",
            b"\r\n",
            b"12345678901234567\r\n",
        ] {
            assert!(
                decode_all(bad, 1).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    fn head(raw: &str, method: Method) -> Result<Option<ResponseHead>, ExchangeError> {
        let mut buf = BytesMut::from(raw.as_bytes());
        parse_head(&mut buf, &method)
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
        let conn = Rc::new(ConnForward::new(
            HeaderValue::from_static("10.0.0.1"),
            true,
            HeaderValue::from_static("443"),
        ));
        let f = ForwardHeaders::new(
            conn,
            Some(HeaderValue::from_static("1.1.1.1, 10.0.0.1")),
            None,
        );
        let mut out = Vec::new();
        let x = HeadExtras {
            forwarded: &f,
            edits: None,
        };
        encode_head(&mut out, &Method::GET, "/", &headers, Some(&x), false, true);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "GET / HTTP/1.1\r\nhost: a.example\r\nx-other: kept\r\nx-forwarded-for: 1.1.1.1, 10.0.0.1\r\nx-real-ip: 10.0.0.1\r\nx-forwarded-proto: https\r\nx-forwarded-port: 443\r\n\r\n"
        );
        // In the map, the same headers replace the client's.
        f.insert_into(&mut headers);
        assert_eq!(headers["x-real-ip"], "10.0.0.1");
        assert!(!headers.contains_key("x-forwarded-host"));
        assert_eq!(headers.get_all("x-forwarded-for").iter().count(), 1);
    }
}
