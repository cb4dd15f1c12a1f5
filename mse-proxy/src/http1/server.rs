//! The client side of HTTP/1.1: one task per connection reads and parses each request
//! head, hands the request to the proxy, and writes the response itself.
//!
//! hyper's server dispatcher cost about as much per request as all the proxying around
//! it (a state machine polled several times per exchange, a timer re-armed per request, a
//! graceful-shutdown watch polled on every wake-up). Here one loop does what an HTTP/1.1
//! server must, and nothing else:
//!
//! - Request heads are parsed by `httparse` off a per-connection buffer; header values
//!   share the buffer's memory. A head larger than the limit gets 431, a target longer than
//!   its limit 414, a malformed one 400 (`Content-Length` beside `Transfer-Encoding`,
//!   `Transfer-Encoding` other than one final `chunked`, conflicting or listed lengths, as
//!   RFC 9112 section 6.3 asks; 501 for a coding before `chunked`), and the connection
//!   closes. So does every answer of the gateway's own to a bad request (400, 408, 413).
//! - The request body ([`H1Body`]) reads the same buffer as it is polled, so a body
//!   already received with its head costs no extra read. `Expect: 100-continue` is
//!   answered when the body is first read. A body left unread closes the connection after
//!   the response, unless all of it is already buffered: the rest of the stream can then
//!   never be mistaken for a request.
//! - Responses are framed by their `Content-Length`, else by the body's known length,
//!   else chunked (HTTP/1.1) or by closing (HTTP/1.0). The head and whatever of the body
//!   is ready go out in one write. Pipelined requests are answered in order.
//! - One timer per connection bounds the wait for a request: `keep-alive` while an idle
//!   connection waits for the first byte of its next request, `client-header-timeout` from
//!   that byte (from the connection's start for its first request) until the head is
//!   complete; it is re-armed only when it fires, not per request. A stalled request body
//!   is bounded the same way (`client-body-timeout`, 408).
//! - After `keep-alive-requests` requests (or the first one, when `keep-alive` is zero) the
//!   answer says `Connection: close` and the connection ends.
//! - At shutdown, connections waiting for a request close at once; the others close after
//!   the response in progress, which says `Connection: close`.
//! - A `101 Switching Protocols` answer to an upgrade request hands the socket (and any
//!   bytes read past the head) to the tunnel; an HTTP/2 connection preface hands the
//!   connection to hyper's HTTP/2 server.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker, ready};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::FutureExt;
use http::{Method, Request, Response, StatusCode, Version};
use http_body::{Body, Frame, SizeHint};
use tokio::sync::oneshot;

use super::body::BodyReader;
pub(crate) use super::head::Refusal;
use super::head::{Present, RequestMeta, parse_request};
use super::io::{Gone, Io, Prefixed};
use super::respond::{date, respond, status_line, write_all};
use super::{fill, line};
use crate::body::{ProxyBody, RequestBody};
use crate::metrics::TimeoutKind;
use crate::proxy::{self, ConnCtx};
use crate::timer::LazyTimer;

const READ_CHUNK: usize = 8 * 1024;
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// What the connection loop and the body of the request in progress share.
pub(super) struct ClientConn {
    pub(super) io: Box<dyn Io>,
    /// Bytes read and not consumed yet.
    pub(super) buf: BytesMut,
    /// How much of the current request's body is still to come.
    body: BodyReader,
    /// Bytes of a `100 Continue` still to write before the body is read.
    continue_left: usize,
    /// Bounds each wait for the client to take more of a response (nginx's
    /// `send_timeout`).
    pub(super) write: StallTimer,
    /// Bounds each wait for more of a request body (`client-body-timeout`).
    read: StallTimer,
}

/// The longest wait between two successful reads or writes on the client connection.
/// The clock starts when an operation finds the socket not ready, so a client that keeps
/// up costs no clock reading.
pub(super) struct StallTimer {
    limit: Duration,
    stalled: Option<Instant>,
    timer: LazyTimer,
    /// It expired: the connection is closed and counted.
    pub(super) expired: bool,
}

impl StallTimer {
    fn new(limit: Duration) -> Self {
        Self {
            limit,
            stalled: None,
            timer: LazyTimer::default(),
            expired: false,
        }
    }

    /// The operation made progress.
    pub(super) fn progress(&mut self) {
        self.stalled = None;
    }

    /// Whether the operation that found the socket not ready has waited too long;
    /// otherwise the task is woken when it may have.
    pub(super) fn poll_expired(&mut self, task: &mut Context<'_>) -> bool {
        let since = *self.stalled.get_or_insert_with(Instant::now);
        self.expired = self.timer.poll_expired(since + self.limit, task);
        self.expired
    }
}

pub(super) type Shared = Rc<RefCell<ClientConn>>;

/// The body of an HTTP/1.1 request, read off the client connection as it is polled.
pub(crate) struct H1Body {
    conn: Shared,
    /// Which of the headers the proxy looks up the request has.
    present: Present,
}

/// How a connection ended.
pub(crate) enum Ended {
    /// Closed, or handed to a tunnel.
    Closed,
    /// It opened with the HTTP/2 preface: these bytes and the socket go to the HTTP/2
    /// server.
    H2(Prefixed),
}

/// Marks a response after which the connection closes (the gateway's own answer to a bad
/// request): what follows on the connection is not read as a request.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CloseConnection;

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

/// Limits of one client connection, read from the table being served when it is
/// accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limits {
    /// The largest request head.
    pub(crate) max_head: usize,
    /// The longest request target (414 beyond it).
    pub(crate) max_target: usize,
    /// The time to receive a whole request head, from its first byte.
    pub(crate) header_read: Duration,
    /// How long an idle connection waits for the first byte of its next request; zero:
    /// one request per connection.
    pub(crate) keep_alive: Duration,
    /// Requests served on the connection.
    pub(crate) max_requests: u32,
    /// The longest wait between two writes to the client.
    pub(crate) client_write: Duration,
    /// The longest wait between two reads of a request body.
    pub(crate) body_read: Duration,
}

/// What the answer to a request depends on besides the response.
pub(super) struct Meta {
    pub(super) version: Version,
    pub(super) keep_alive: bool,
    /// A `HEAD` request: the answer has no body.
    pub(super) head: bool,
    upgrade: Option<(oneshot::Sender<Upgraded>, PendingUpgrade)>,
}

impl Meta {
    fn new(req: &Request<RequestBody>, head: &RequestMeta) -> Self {
        let upgrade = head.upgrade.then(|| {
            let (tx, rx) = oneshot::channel();
            (tx, PendingUpgrade(rx))
        });
        Self {
            version: head.version,
            keep_alive: head.keep_alive,
            head: *req.method() == Method::HEAD,
            upgrade,
        }
    }
}

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

/// Bounds the wait for a request, on one timer per connection: `idle` until the first
/// byte of a head, then `header` until the head is complete. The clock is read only when
/// a read finds nothing to take: a request whose head arrives whole while the connection
/// is polled costs no clock reading.
struct HeadTimer {
    header: Duration,
    idle: Duration,
    /// When the current wait started; `None` until a read first found nothing to take.
    since: Option<Instant>,
    /// Whether a head has begun (or, for the first request, the connection started).
    reading: bool,
    timer: LazyTimer,
}

impl HeadTimer {
    fn new(limits: &Limits) -> Self {
        Self {
            header: limits.header_read,
            idle: limits.keep_alive,
            since: None,
            reading: true,
            timer: LazyTimer::default(),
        }
    }

    /// A new wait for a head; `reading`: it has already begun.
    fn start(&mut self, reading: bool) {
        self.since = None;
        self.reading = reading;
    }

    /// Part of a head is buffered: the header timeout runs from the next wait on.
    fn began(&mut self) {
        if !self.reading {
            self.reading = true;
            self.since = None;
        }
    }

    /// Whether the wait has lasted longer than the limit; otherwise the task is woken
    /// when it may have.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> bool {
        let since = *self.since.get_or_insert_with(Instant::now);
        let limit = if self.reading { self.header } else { self.idle };
        self.timer.poll_expired(since + limit, cx)
    }
}

// === serving ===

/// Serves HTTP/1.1 requests on `io` until the client or the server ends the connection.
pub(crate) async fn serve(cx: Rc<ConnCtx>, io: Box<dyn Io>, limits: Limits) -> Ended {
    let shared: Shared = Rc::new(RefCell::new(ClientConn {
        io,
        buf: BytesMut::new(),
        body: BodyReader::Done,
        continue_left: 0,
        write: StallTimer::new(limits.client_write),
        read: StallTimer::new(limits.body_read),
    }));
    let stop = &cx.worker.stop;
    let mut timer = HeadTimer::new(&limits);
    // `keep-alive: 0`: one request per connection.
    let max_requests = if limits.keep_alive.is_zero() {
        1
    } else {
        limits.max_requests
    };
    let max_head = (limits.max_head, limits.max_target);
    let mut served: u32 = 0;
    // Sized for a usual response head: one allocation, not a chain of growths, for a
    // connection that carries one request.
    let mut out: Vec<u8> = Vec::with_capacity(1024);
    let mut first = true;
    let mut waiting_id = None;
    let ended = loop {
        timer.start(first);
        let next = poll_fn(|task| {
            poll_next(
                &shared,
                first,
                max_head,
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
        served = served.saturating_add(1);
        if stop.stopped()
            || served >= max_requests
            || response.extensions().get::<CloseConnection>().is_some()
        {
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
    if shared.try_borrow().is_ok_and(|c| c.write.expired) {
        cx.worker.metrics.timed_out(TimeoutKind::ClientWrite);
    }
    if let Ended::Closed = ended
        && cx.tls
        && let Ok(mut c) = shared.try_borrow_mut()
    {
        // A clean end of the stream: TLS sends its close_notify. Plain TCP needs no
        // shutdown of its own (one system call per connection): closing the socket sends
        // the same FIN.
        let _ = poll_fn(|task| Pin::new(&mut *c.io).poll_shutdown(task)).now_or_never();
    }
    ended
}

/// Waits for the next request head, or for the end of the connection.
fn poll_next(
    shared: &Shared,
    first: bool,
    (max_head, max_target): (usize, usize),
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
                let parsed = parse_request(&mut c.buf, max_head, max_target, |present| {
                    RequestBody::H1(H1Body {
                        conn: Rc::clone(shared),
                        present,
                    })
                })?;
                match parsed {
                    Some((req, head)) => {
                        c.body = BodyReader::new(head.body);
                        c.continue_left = if head.expect_continue && !c.body.is_done() {
                            CONTINUE.len()
                        } else {
                            0
                        };
                        let meta = Meta::new(&req, &head);
                        return Poll::Ready(Ok(Next::Request(req, meta)));
                    }
                    None if c.buf.len() >= max_head => {
                        return Poll::Ready(Err(Refusal(
                            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                        )));
                    }
                    // Part of a head: the header timeout applies.
                    None => timer.began(),
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

/// After a response: whether the request's body was read to its end, or what is left of
/// it is already buffered (and is dropped). Otherwise the connection cannot go on.
fn discard_body(shared: &Shared) -> bool {
    let mut c = shared.borrow_mut();
    match c.body {
        BodyReader::Done => true,
        BodyReader::Length(n) if n <= c.buf.len() as u64 => {
            let _ = c.buf.split_to(n as usize);
            c.body = BodyReader::Done;
            true
        }
        _ => false,
    }
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
pub(super) fn take_io(shared: &Shared) -> Option<Prefixed> {
    let mut c = shared.try_borrow_mut().ok()?;
    let io = std::mem::replace(&mut c.io, Box::new(Gone));
    let prefix = c.buf.split().freeze();
    Some(Prefixed { prefix, io })
}

// === impl H1Body ===

impl H1Body {
    /// Which of the headers the proxy looks up the request has.
    pub(crate) fn present(&self) -> Present {
        self.present
    }

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
        match c.body.poll_frame(&mut *c.io, &mut c.buf, READ_CHUNK, task) {
            Poll::Pending if c.read.poll_expired(task) => Poll::Ready(Some(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client sent no more of the request body within client-body-timeout",
            )))),
            Poll::Pending => Poll::Pending,
            ready => {
                c.read.progress();
                ready
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
        self.conn.try_borrow().is_ok_and(|c| c.body.is_done())
    }

    fn size_hint(&self) -> SizeHint {
        self.conn
            .try_borrow()
            .map_or_else(|_| SizeHint::default(), |c| c.body.size_hint())
    }
}
