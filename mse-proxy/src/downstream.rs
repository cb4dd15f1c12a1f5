//! The client side of HTTP/1.1: one task per connection reads and parses each request
//! head, hands the request to the proxy, and writes the response itself.
//!
//! hyper's server dispatcher cost about as much per request as all the proxying around
//! it (a state machine polled several times per exchange, a timer re-armed per request, a
//! graceful-shutdown watch polled on every wake-up). Here one loop does what an HTTP/1.1
//! server must, and nothing else:
//!
//! - Request heads are parsed by `httparse` off a per-connection buffer; header values
//!   share the buffer's memory. A head larger than the limit gets 431, a malformed one 400
//!   (`Content-Length` beside `Transfer-Encoding`, a coding other than `chunked` last, or
//!   conflicting lengths, as RFC 9112 section 6.3 asks), and the connection closes.
//! - The request body ([`H1Body`]) reads the same buffer as it is polled, so a body
//!   already received with its head costs no extra read. `Expect: 100-continue` is
//!   answered when the body is first read. A body left unread closes the connection after
//!   the response, unless all of it is already buffered: the rest of the stream can then
//!   never be mistaken for a request.
//! - Responses are framed by their `Content-Length`, else by the body's known length,
//!   else chunked (HTTP/1.1) or by closing (HTTP/1.0). The head and whatever of the body
//!   is ready go out in one write. Pipelined requests are answered in order.
//! - One timer per connection bounds the wait for a whole request head, idle keep-alive
//!   time included; it is re-armed only when it fires, not per request.
//! - At shutdown, connections waiting for a request close at once; the others close after
//!   the response in progress, which says `Connection: close`.
//! - A `101 Switching Protocols` answer to an upgrade request hands the socket (and any
//!   bytes read past the head) to the tunnel; an HTTP/2 connection preface hands the
//!   connection to hyper's HTTP/2 server.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::poll_fn;
use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker, ready};
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use futures_util::FutureExt;
use http::header::{CONTENT_LENGTH, DATE, EXPECT, UPGRADE};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri, Version};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;

use crate::body::{ProxyBody, RequestBody};
use crate::h1::{
    Chunk, RawHeaders, Seen, Spans, Step, chunk_size_line, content_length, decode_chunk, fill,
    header_name,
};
use crate::proxy::{self, ConnCtx};
use crate::timer::LazyTimer;

/// A client connection's byte stream: a TCP socket, or TLS over one.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin {}

impl<T: AsyncRead + AsyncWrite + Unpin> Io for T {}

/// Request headers accepted at most (hyper's default is 100).
const MAX_HEADERS: usize = 128;
const READ_CHUNK: usize = 8 * 1024;
/// Response body bytes gathered behind the head for one write, at most.
const COALESCE: usize = 64 * 1024;
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// What the connection loop and the body of the request in progress share.
pub(crate) struct ClientConn {
    io: Box<dyn Io>,
    /// Bytes read and not consumed yet.
    buf: BytesMut,
    /// How much of the current request's body is still to come.
    body: Framing,
    /// Bytes of a `100 Continue` still to write before the body is read.
    continue_left: usize,
}

type Shared = Rc<RefCell<ClientConn>>;

/// Where the body of the request in progress is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    Done,
    Length(u64),
    Chunked(Chunk),
    /// Reading it failed: the connection cannot carry another request.
    Broken,
}

/// The body of an HTTP/1.1 request, read off the client connection as it is polled.
pub(crate) struct H1Body {
    conn: Shared,
}

/// How a connection ended.
pub(crate) enum Ended {
    /// Closed, or handed to a tunnel.
    Closed,
    /// It opened with the HTTP/2 preface: these bytes and the socket go to the HTTP/2
    /// server.
    H2(Prefixed),
}

/// A socket with bytes already read from it in front: what an upgraded client connection
/// or an HTTP/2 connection recognised by its preface continues with.
pub(crate) struct Prefixed {
    prefix: Bytes,
    io: Box<dyn Io>,
}

/// Sent to the tunnel once the `101` answer is written.
pub(crate) type Upgraded = Prefixed;

/// Resolves to the client's socket once the gateway has written the `101` answer to an
/// upgrade request (see [`ConnCtx::upgrade`]).
pub(crate) struct PendingUpgrade(pub(crate) oneshot::Receiver<Upgraded>);

/// The per-worker signal that stops connections at shutdown.
#[derive(Default)]
pub(crate) struct Stop {
    stopped: Cell<bool>,
    next_id: Cell<u64>,
    /// Connections waiting for a request head, to be woken when the worker stops.
    waiting: RefCell<HashMap<u64, Waker>>,
}

/// Limits of one server.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) max_head: usize,
    pub(crate) header_read: Duration,
}

/// What one request head says besides the request itself.
struct Meta {
    version: Version,
    keep_alive: bool,
    head: bool,
    upgrade: Option<(oneshot::Sender<Upgraded>, PendingUpgrade)>,
    body: Framing,
    expect_continue: bool,
}

/// A request head the server answers itself before closing.
#[derive(Debug)]
struct Refusal(StatusCode);

enum Next {
    /// Boxed: moving it through the poll result costs more than the allocation.
    Request(Box<Request<RequestBody>>, Meta),
    H2,
    Closed,
}

// === impl Stop ===

impl Stop {
    /// Wakes every connection waiting for a request; the others stop after their
    /// response.
    pub(crate) fn stop(&self) {
        self.stopped.set(true);
        for (_, waker) in self.waiting.borrow_mut().drain() {
            waker.wake();
        }
    }

    fn stopped(&self) -> bool {
        self.stopped.get()
    }

    fn register(&self, waker: &Waker) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        self.waiting.borrow_mut().insert(id, waker.clone());
        id
    }

    fn unregister(&self, id: u64) {
        self.waiting.borrow_mut().remove(&id);
    }
}

/// Bounds the wait for a request head, on one timer per connection.
struct HeadTimer {
    limit: Duration,
    since: Instant,
    timer: LazyTimer,
}

impl HeadTimer {
    fn new(limit: Duration) -> Self {
        Self {
            limit,
            since: Instant::now(),
            timer: LazyTimer::default(),
        }
    }

    /// The wait for a head starts now.
    fn start(&mut self) {
        self.since = Instant::now();
    }

    /// Whether the wait has lasted longer than the limit; otherwise the task is woken
    /// when it may have.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> bool {
        self.timer.poll_expired(self.since + self.limit, cx)
    }
}

// === serving ===

/// Serves HTTP/1.1 requests on `io` until the client or the server ends the connection.
pub(crate) async fn serve(cx: Rc<ConnCtx>, io: Box<dyn Io>, limits: Limits) -> Ended {
    let shared: Shared = Rc::new(RefCell::new(ClientConn {
        io,
        buf: BytesMut::new(),
        body: Framing::Done,
        continue_left: 0,
    }));
    let stop = &cx.worker.stop;
    let mut timer = HeadTimer::new(limits.header_read);
    let mut out: Vec<u8> = Vec::new();
    let mut first = true;
    let mut waiting_id = None;
    let ended = loop {
        timer.start();
        let next = poll_fn(|task| {
            poll_next(
                &shared,
                first,
                limits,
                &mut timer,
                task,
                stop,
                &mut waiting_id,
            )
        })
        .await;
        first = false;
        let (req, mut meta) = match next {
            Ok(Next::Request(req, meta)) => (req, meta),
            Ok(Next::H2) => break take_io(&shared).map_or(Ended::Closed, Ended::H2),
            Ok(Next::Closed) => break Ended::Closed,
            Err(Refusal(status)) => {
                cx.worker.metrics.count_status(status.as_u16());
                refuse(&shared, &mut out, status).await;
                break Ended::Closed;
            }
        };
        let tx = meta.upgrade.take().map(|(tx, rx)| {
            cx.upgrade.replace(Some(rx));
            tx
        });
        let response = match proxy::handle(Rc::clone(&cx), req).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        cx.upgrade.take();
        if response.status() == StatusCode::SWITCHING_PROTOCOLS
            && let Some(tx) = tx
        {
            upgrade(&shared, &mut out, response, tx).await;
            break Ended::Closed;
        }
        if stop.stopped() {
            meta.keep_alive = false;
        }
        let reusable = respond(&shared, &mut out, response, &meta).await && discard_body(&shared);
        if !reusable {
            break Ended::Closed;
        }
    };
    if let Some(id) = waiting_id {
        stop.unregister(id);
    }
    if let Ended::Closed = ended
        && let Ok(mut c) = shared.try_borrow_mut()
    {
        // A clean end of the stream: TLS sends its close_notify.
        let _ = poll_fn(|task| Pin::new(&mut *c.io).poll_shutdown(task)).now_or_never();
    }
    ended
}

/// Waits for the next request head, or for the end of the connection.
fn poll_next(
    shared: &Shared,
    first: bool,
    limits: Limits,
    timer: &mut HeadTimer,
    task: &mut Context<'_>,
    stop: &Stop,
    waiting_id: &mut Option<u64>,
) -> Poll<Result<Next, Refusal>> {
    let mut c = shared.borrow_mut();
    let c = &mut *c;
    loop {
        if !c.buf.is_empty() {
            if first && c.buf.len() < H2_PREFACE.len() && H2_PREFACE.starts_with(&c.buf) {
                // Maybe the HTTP/2 preface: wait for all of it.
            } else if first && c.buf.starts_with(H2_PREFACE) {
                return Poll::Ready(Ok(Next::H2));
            } else {
                match parse(&mut c.buf, limits.max_head, shared)? {
                    Some((req, meta)) => {
                        c.body = meta.body;
                        c.continue_left = if meta.expect_continue && c.body != Framing::Done {
                            CONTINUE.len()
                        } else {
                            0
                        };
                        return Poll::Ready(Ok(Next::Request(req, meta)));
                    }
                    None if c.buf.len() >= limits.max_head => {
                        return Poll::Ready(Err(Refusal(
                            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                        )));
                    }
                    None => {}
                }
            }
        } else if stop.stopped() {
            return Poll::Ready(Ok(Next::Closed));
        }
        match fill(&mut *c.io, &mut c.buf, READ_CHUNK, task) {
            Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Poll::Ready(Ok(Next::Closed)),
            Poll::Ready(Ok(_)) => {}
            Poll::Pending => {
                if timer.poll_expired(task) {
                    return Poll::Ready(Ok(Next::Closed));
                }
                if waiting_id.is_none() {
                    *waiting_id = Some(stop.register(task.waker()));
                }
                return Poll::Pending;
            }
        }
    }
}

/// Parses a complete request head off the front of `buf`; `None` when more bytes are
/// needed.
fn parse(
    buf: &mut BytesMut,
    max_head: usize,
    shared: &Shared,
) -> Result<Option<(Box<Request<RequestBody>>, Meta)>, Refusal> {
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut spans = Spans::default();
    let bad = Refusal(StatusCode::BAD_REQUEST);
    let (len, method, target, version, count) = {
        let mut req = httparse::Request::new(&mut []);
        let base = buf.as_ptr() as usize;
        let len = match httparse::ParserConfig::default()
            .parse_request_with_uninit_headers(&mut req, buf, &mut slots)
        {
            Ok(httparse::Status::Complete(len)) if len > max_head => {
                return Err(Refusal(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE));
            }
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => {
                return Err(Refusal(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE));
            }
            Err(_) => return Err(bad),
        };
        let offset = |s: &[u8]| (s.as_ptr() as usize - base) as u32;
        let count = req.headers.len();
        spans.record(req.headers, base);
        let method = Method::from_bytes(req.method.unwrap_or("").as_bytes())
            .map_err(|_| Refusal(StatusCode::BAD_REQUEST))?;
        let path = req.path.unwrap_or("");
        let target = (offset(path.as_bytes()) as usize, path.len());
        let version = match req.version {
            Some(0) => Version::HTTP_10,
            _ => Version::HTTP_11,
        };
        (len, method, target, version, count)
    };
    let spans = spans.as_slice();
    let head = buf.split_to(len).freeze();
    let uri = Uri::from_maybe_shared(head.slice(target.0..target.0 + target.1))
        .map_err(|_| Refusal(StatusCode::BAD_REQUEST))?;
    let mut headers = HeaderMap::with_capacity(count);
    let mut seen = Seen::default();
    let mut expect_continue = false;
    for &(n, nl, v, vl) in spans {
        let (n, nl, v, vl) = (n as usize, nl as usize, v as usize, vl as usize);
        let name = header_name(&head[n..n + nl]).ok_or(Refusal(StatusCode::BAD_REQUEST))?;
        let value = HeaderValue::from_maybe_shared(head.slice(v..v + vl))
            .map_err(|_| Refusal(StatusCode::BAD_REQUEST))?;
        if name == EXPECT {
            expect_continue = value.as_bytes().eq_ignore_ascii_case(b"100-continue");
        } else {
            seen.header(&name, value.as_bytes());
        }
        headers.append(name, value);
    }
    let keep_alive = !seen.close && (version == Version::HTTP_11 || seen.keep_alive_token);
    let body = body_framing(&seen, version)?;
    let mut req = Request::new(RequestBody::H1(H1Body {
        conn: Rc::clone(shared),
    }));
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    *req.version_mut() = version;
    let mut upgrade = None;
    if seen.upgrade_token && version == Version::HTTP_11 && headers.contains_key(UPGRADE) {
        let (tx, rx) = oneshot::channel();
        upgrade = Some((tx, PendingUpgrade(rx)));
    }
    let head_method = *req.method() == Method::HEAD;
    *req.headers_mut() = headers;
    Ok(Some((
        Box::new(req),
        Meta {
            version,
            keep_alive,
            head: head_method,
            upgrade,
            body,
            expect_continue: expect_continue && version == Version::HTTP_11,
        },
    )))
}

/// How the request's body is delimited (RFC 9112 section 6.3); a request whose length
/// cannot be told for sure is refused.
fn body_framing(seen: &Seen, version: Version) -> Result<Framing, Refusal> {
    let bad = Refusal(StatusCode::BAD_REQUEST);
    if let Some(chunked) = seen.transfer_encoding {
        if version == Version::HTTP_10 || seen.content_length || !chunked {
            return Err(bad);
        }
        return Ok(Framing::Chunked(Chunk::Size));
    }
    match seen.length {
        Err(_) => Err(bad),
        Ok(None | Some(0)) => Ok(Framing::Done),
        Ok(Some(n)) => Ok(Framing::Length(n)),
    }
}

/// After a response: whether the request's body was read to its end, or what is left of
/// it is already buffered (and is dropped). Otherwise the connection cannot go on.
fn discard_body(shared: &Shared) -> bool {
    let mut c = shared.borrow_mut();
    match c.body {
        Framing::Done => true,
        Framing::Length(n) if n <= c.buf.len() as u64 => {
            let _ = c.buf.split_to(n as usize);
            c.body = Framing::Done;
            true
        }
        _ => false,
    }
}

/// Writes all of `data`, then flushes (a TLS stream sends its records).
async fn write_all(shared: &Shared, data: &[u8]) -> io::Result<()> {
    let mut at = 0;
    poll_fn(|task| {
        let mut c = shared.borrow_mut();
        while at < data.len() {
            match ready!(Pin::new(&mut *c.io).poll_write(task, &data[at..])) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(n) => at += n,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        Pin::new(&mut *c.io).poll_flush(task)
    })
    .await
}

/// How a response body goes out.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Out {
    None,
    Length(u64),
    Chunked,
    Close,
}

/// Writes `response`; returns whether the connection may carry another request.
async fn respond(
    shared: &Shared,
    out: &mut Vec<u8>,
    response: Response<ProxyBody>,
    meta: &Meta,
) -> bool {
    let (mut parts, body) = response.into_parts();
    let status = parts.status;
    let mut keep_alive = meta.keep_alive;
    let no_body = meta.head
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let declared = match parts
        .headers
        .get(CONTENT_LENGTH)
        .map(|v| content_length(v.as_bytes()))
    {
        Some(Some(n)) => Some(n),
        Some(None) => {
            parts.headers.remove(CONTENT_LENGTH);
            None
        }
        None => body.raw_headers().and_then(RawHeaders::length),
    };
    let framing = if no_body {
        Out::None
    } else if let Some(n) = declared {
        Out::Length(n)
    } else if let Some(n) = body.size_hint().exact() {
        Out::Length(n)
    } else if meta.version == Version::HTTP_11 {
        Out::Chunked
    } else {
        keep_alive = false;
        Out::Close
    };
    status_line(out, status);
    let raw = body.raw_headers();
    let edits = body.deferred_edits();
    if let Some(raw) = raw {
        raw.write(out, &parts.headers, edits);
    }
    for (name, value) in &parts.headers {
        if edits.is_some_and(|e| e.update.iter().any(|(n, _)| n == name)) {
            continue;
        }
        line(out, name.as_str().as_bytes(), value.as_bytes());
    }
    if let Some(e) = edits {
        for (name, value) in e.update.iter().chain(&e.add) {
            line(out, name.as_str().as_bytes(), value.as_bytes());
        }
    }
    if !parts.headers.contains_key(DATE) && !raw.is_some_and(RawHeaders::has_date) {
        date(out);
    }
    match framing {
        Out::Length(n) if declared.is_none() => {
            let mut digits = [0u8; 20];
            line(out, b"content-length", decimal(n, &mut digits));
        }
        Out::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        _ => {}
    }
    if !keep_alive {
        out.extend_from_slice(b"connection: close\r\n");
    } else if meta.version == Version::HTTP_10 {
        out.extend_from_slice(b"connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if framing == Out::None {
        drop(body);
        return write_all(shared, out).await.is_ok() && keep_alive;
    }
    let mut left = match framing {
        Out::Length(n) => n,
        _ => u64::MAX,
    };
    // Dropped as soon as it ends, before the last write: the request is over (in-flight
    // gauge, upstream connection back to the pool) by the time the client has it all.
    let mut body = Some(body);
    let mut failed = false;
    // The head and whatever of the body is ready now go out in one write.
    while out.len() < COALESCE
        && let Some(b) = body.as_mut()
    {
        match b.frame().now_or_never() {
            Some(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    failed |= !encode(out, &data, framing, &mut left);
                }
            }
            Some(None) => {
                body = None;
                if framing == Out::Chunked {
                    out.extend_from_slice(b"0\r\n\r\n");
                }
            }
            Some(Some(Err(_))) => {
                failed = true;
                break;
            }
            None => break,
        }
    }
    if write_all(shared, out).await.is_err() {
        return false;
    }
    while !failed && let Some(b) = body.as_mut() {
        match b.frame().await {
            Some(Ok(frame)) => {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                out.clear();
                let whole = match framing {
                    Out::Chunked if data.len() > 4096 => {
                        chunk_size_line(out, data.len());
                        write_all(shared, out).await.is_ok()
                            && write_all(shared, &data).await.is_ok()
                            && write_all(shared, b"\r\n").await.is_ok()
                    }
                    Out::Chunked => {
                        encode(out, &data, framing, &mut left);
                        write_all(shared, out).await.is_ok()
                    }
                    _ => {
                        let n = (data.len() as u64).min(left) as usize;
                        left -= n as u64;
                        failed |= n < data.len();
                        write_all(shared, &data[..n]).await.is_ok()
                    }
                };
                if !whole {
                    return false;
                }
            }
            None => {
                body = None;
                if framing == Out::Chunked && write_all(shared, b"0\r\n\r\n").await.is_err() {
                    return false;
                }
            }
            Some(Err(_)) => failed = true,
        }
    }
    // A body cut short, or longer than its length: the client must see the connection
    // end rather than a complete message.
    let complete = body.is_none() && !failed && !matches!(framing, Out::Length(_) if left != 0);
    complete && keep_alive
}

/// Appends one data frame in the response's framing; false when it is longer than the
/// declared length (the excess is dropped).
fn encode(out: &mut Vec<u8>, data: &[u8], framing: Out, left: &mut u64) -> bool {
    match framing {
        Out::Chunked => {
            if !data.is_empty() {
                chunk_size_line(out, data.len());
                out.extend_from_slice(data);
                out.extend_from_slice(b"\r\n");
            }
            true
        }
        Out::None => true,
        Out::Length(_) | Out::Close => {
            let n = (data.len() as u64).min(*left) as usize;
            *left -= n as u64;
            out.extend_from_slice(&data[..n]);
            n == data.len()
        }
    }
}

/// The decimal digits of `n`, written at the end of `buf`.
fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[at..];
        }
    }
}

/// Starts `out` afresh with the status line.
fn status_line(out: &mut Vec<u8>, status: StatusCode) {
    out.clear();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Appends a `Date` header, formatted at most once a second per worker.
fn date(out: &mut Vec<u8>) {
    thread_local! {
        static DATE: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let now = SystemTime::now();
    let secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    DATE.with_borrow_mut(|(at, text)| {
        if *at != secs {
            *at = secs;
            *text = httpdate::fmt_http_date(now);
        }
        line(out, b"date", text.as_bytes());
    });
}

/// The gateway's own short answer to a request head it refuses; the connection closes.
async fn refuse(shared: &Shared, out: &mut Vec<u8>, status: StatusCode) {
    let text = format!(
        "{} {}\n",
        status.as_str(),
        status.canonical_reason().unwrap_or("")
    );
    status_line(out, status);
    out.extend_from_slice(b"content-type: text/plain; charset=utf-8\r\n");
    line(out, b"content-length", text.len().to_string().as_bytes());
    date(out);
    out.extend_from_slice(b"connection: close\r\n\r\n");
    out.extend_from_slice(text.as_bytes());
    let _ = write_all(shared, out).await;
}

/// Writes the `101` answer and hands the socket, with what was read past the head, to
/// the tunnel.
async fn upgrade(
    shared: &Shared,
    out: &mut Vec<u8>,
    response: Response<ProxyBody>,
    tx: oneshot::Sender<Upgraded>,
) {
    let (parts, body) = response.into_parts();
    status_line(out, StatusCode::SWITCHING_PROTOCOLS);
    for (name, value) in &parts.headers {
        line(out, name.as_str().as_bytes(), value.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    drop(body);
    if write_all(shared, out).await.is_err() {
        return;
    }
    if let Some(io) = take_io(shared) {
        let _ = tx.send(io);
    }
}

/// Takes the socket and its unread bytes out of the connection.
fn take_io(shared: &Shared) -> Option<Prefixed> {
    let mut c = shared.try_borrow_mut().ok()?;
    let io = std::mem::replace(&mut c.io, Box::new(Gone));
    let prefix = c.buf.split().freeze();
    Some(Prefixed { prefix, io })
}

// === impl H1Body ===

impl H1Body {
    fn poll_next(&mut self, task: &mut Context<'_>) -> Poll<Option<io::Result<Frame<Bytes>>>> {
        let mut c = self.conn.borrow_mut();
        let c = &mut *c;
        while c.continue_left > 0 {
            let at = CONTINUE.len() - c.continue_left;
            match ready!(Pin::new(&mut *c.io).poll_write(task, &CONTINUE[at..])) {
                Ok(0) => return Poll::Ready(Some(Err(io::ErrorKind::WriteZero.into()))),
                Ok(n) => c.continue_left -= n,
                Err(e) => return Poll::Ready(Some(Err(e))),
            }
            if c.continue_left == 0 {
                ready!(Pin::new(&mut *c.io).poll_flush(task))?;
            }
        }
        loop {
            match &mut c.body {
                Framing::Done => return Poll::Ready(None),
                Framing::Broken => {
                    return Poll::Ready(Some(Err(io::Error::other("the request body failed"))));
                }
                Framing::Length(left) => {
                    if !c.buf.is_empty() {
                        let n = c
                            .buf
                            .len()
                            .min(usize::try_from(*left).unwrap_or(usize::MAX));
                        *left -= n as u64;
                        if *left == 0 {
                            c.body = Framing::Done;
                        }
                        return Poll::Ready(Some(Ok(Frame::data(c.buf.split_to(n).freeze()))));
                    }
                }
                Framing::Chunked(chunk) => match decode_chunk(chunk, &mut c.buf) {
                    Ok(Step::Data(data)) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                    Ok(Step::End(trailers)) => {
                        c.body = Framing::Done;
                        return Poll::Ready(trailers.map(|t| Ok(Frame::trailers(t))));
                    }
                    Ok(Step::NeedMore) => {}
                    Err(e) => {
                        c.body = Framing::Broken;
                        return Poll::Ready(Some(Err(e)));
                    }
                },
            }
            match ready!(fill(&mut *c.io, &mut c.buf, READ_CHUNK, task)) {
                Ok(0) => {
                    c.body = Framing::Broken;
                    return Poll::Ready(Some(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the client closed the connection in the middle of the request body",
                    ))));
                }
                Ok(_) => {}
                Err(e) => {
                    c.body = Framing::Broken;
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
    }
}

impl Body for H1Body {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        task: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.get_mut().poll_next(task)
    }

    fn is_end_stream(&self) -> bool {
        self.conn
            .try_borrow()
            .is_ok_and(|c| c.body == Framing::Done)
    }

    fn size_hint(&self) -> SizeHint {
        match self.conn.try_borrow().map(|c| c.body) {
            Ok(Framing::Done) => SizeHint::with_exact(0),
            Ok(Framing::Length(n)) => SizeHint::with_exact(n),
            _ => SizeHint::default(),
        }
    }
}

// === impl Prefixed ===

impl Prefixed {
    /// A socket with nothing read from it yet.
    pub(crate) fn new(io: Box<dyn Io>) -> Self {
        Self {
            prefix: Bytes::new(),
            io,
        }
    }
}

impl AsyncRead for Prefixed {
    fn poll_read(
        self: Pin<&mut Self>,
        task: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.prefix.is_empty() {
            let n = this.prefix.len().min(buf.remaining());
            buf.put_slice(&this.prefix.split_to(n));
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut *this.io).poll_read(task, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        self: Pin<&mut Self>,
        task: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.get_mut().io).poll_write(task, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, task: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.get_mut().io).poll_flush(task)
    }

    fn poll_shutdown(self: Pin<&mut Self>, task: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.get_mut().io).poll_shutdown(task)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        task: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.get_mut().io).poll_write_vectored(task, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// What is left in a connection whose socket was handed on.
struct Gone;

impl AsyncRead for Gone {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Poll::Ready(Err(io::ErrorKind::NotConnected.into()))
    }
}

impl AsyncWrite for Gone {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, _: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(Err(io::ErrorKind::NotConnected.into()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
