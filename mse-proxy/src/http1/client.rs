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
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::FutureExt;
use futures_util::future::{Either, select};
use http::header::{CONNECTION, CONTENT_LENGTH};
use http::{HeaderMap, HeaderName, Method, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use mse_router::{HeaderOps, RoutePolicy};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::body::BodyReader;
use super::chunked::{encode_chunk, last_chunk};
use super::head::{MAX_RESPONSE_HEAD, RawHeaders, ResponseHead, parse_response};
use super::{fill, line};
use crate::forwarded::ForwardHeaders;
use crate::timer::LazyTimer;
use crate::upstream::Upstream;

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
    /// Bounds the wait for each response head, then the waits while its body is read
    /// (see [`LazyTimer`]).
    pub(crate) timer: LazyTimer,
    /// Requests it carried (`upstream-keepalive-requests`).
    pub(crate) requests: u32,
    /// The longest wait between two reads of a response body.
    read_timeout: Duration,
    /// `proxy-send-timeout`: the longest wait for the upstream to take a write.
    pub(crate) send_timeout: Duration,
    /// Its count against the route's `connection-policy-*`, when it has one.
    pub(crate) permit: Option<Box<crate::policy::outlier::ConnPermit>>,
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
    /// The upstream took no write of the request within `proxy-send-timeout`.
    SendTimeout,
}

/// The body of an upstream response, read from the connection as it is polled.
pub(crate) struct UpstreamBody {
    conn: Option<Box<Conn>>,
    state: BodyReader,
    keep_alive: bool,
    /// The response's headers as received, when they were kept so.
    raw: Option<RawHeaders>,
    /// The route's response header edits, left to the writer of headers kept as
    /// received (see [`UpstreamBody::defer_edits`]).
    edits: Option<Arc<RoutePolicy>>,
    /// Since when the upstream has sent nothing, while the body is being read.
    stalled: Option<Instant>,
}

// === impl Conn ===

impl Conn {
    /// The longest wait between two reads of a response body, for the next exchange.
    pub(crate) fn set_read_timeout(&mut self, read_timeout: Duration) {
        self.read_timeout = read_timeout;
    }

    pub(crate) fn new(io: TcpStream, upstream: Upstream, read_timeout: Duration) -> Self {
        Self {
            io,
            buf: BytesMut::with_capacity(8 * 1024),
            upstream,
            reused: false,
            timer: LazyTimer::default(),
            requests: 0,
            read_timeout,
            send_timeout: Duration::from_secs(60),
            permit: None,
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
        self.requests = self.requests.saturating_add(1);
        let mut body_done = body.is_end_stream();
        // Coalesce the head with a body that is already buffered (small POSTs): one write.
        if !body_done && let Some(polled) = body.frame().now_or_never() {
            let mut trailers = None;
            match polled {
                Some(Ok(frame)) => {
                    match frame.into_data() {
                        Ok(data) => encode_data(out, &data, chunked),
                        Err(frame) => trailers = frame.into_trailers().ok(),
                    }
                    body_done = trailers.is_some() || body.is_end_stream();
                }
                Some(Err(e)) => return Err(ExchangeError::ClientBody(io::Error::other(e))),
                None => body_done = true,
            }
            if body_done && chunked {
                last_chunk(out, trailers.as_ref());
            }
        }
        write_timed(&mut self.io, out, self.send_timeout)
            .await
            .map_err(|e| sent_error(e, ExchangeError::WriteHead))?;
        if body_done {
            return read_head(&mut self.io, &mut self.buf, method).await;
        }
        // Boxed: the future of every request is as large as its largest state, and most
        // requests have no body left to send here.
        Box::pin(self.send_while_reading(body, chunked, method)).await
    }

    /// Sends the rest of the body while reading the response: an upstream may answer
    /// before the upload ends (a 413 to a large body, say) and stop reading, and its
    /// answer must reach the client rather than wait for an upload that cannot finish.
    /// A final response head that arrives first stops the upload; the connection then
    /// carries no other exchange, its request having been cut short.
    async fn send_while_reading<B>(
        &mut self,
        body: &mut B,
        chunked: bool,
        method: &Method,
    ) -> Result<ResponseHead, ExchangeError>
    where
        B: Body<Data = Bytes> + Unpin,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (mut rd, mut wr) = self.io.split();
        let send = pin!(send_body(&mut wr, body, chunked, self.send_timeout));
        let mut read = pin!(read_head(&mut rd, &mut self.buf, method));
        let early = match select(read.as_mut(), send).await {
            Either::Left((head, _)) => head,
            Either::Right((Ok(()), _)) => return read.await,
            Either::Right((Err(ExchangeError::Body(e)), _)) => {
                // The upstream may have answered and closed: its answer is still readable.
                read.await.map_err(|_| ExchangeError::Body(e))
            }
            Either::Right((Err(e), _)) => return Err(e),
        };
        early.map(|mut head| {
            head.keep_alive = false;
            head
        })
    }
}

/// Writes `buf` whole; a write the upstream does not take within `limit` fails with
/// `TimedOut`. The timer starts only when the socket does not take the bytes at once.
async fn write_timed<W>(io: &mut W, buf: &[u8], limit: Duration) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    let mut write = pin!(io.write_all(buf));
    if let Some(done) = write.as_mut().now_or_never() {
        return done;
    }
    match tokio::time::timeout(limit, write).await {
        Ok(done) => done,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the upstream took no write within proxy-send-timeout",
        )),
    }
}

/// A write error as what it says of the exchange: `SendTimeout`, or `other`.
fn sent_error(e: io::Error, other: fn(io::Error) -> ExchangeError) -> ExchangeError {
    if e.kind() == io::ErrorKind::TimedOut {
        ExchangeError::SendTimeout
    } else {
        other(e)
    }
}

/// Writes the rest of a request body, each write within `limit` (`proxy-send-timeout`).
async fn send_body<W, B>(
    io: &mut W,
    body: &mut B,
    chunked: bool,
    limit: Duration,
) -> Result<(), ExchangeError>
where
    W: AsyncWrite + Unpin,
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut out = Vec::new();
    // The request's trailers go after the last chunk; without chunked framing there is
    // nowhere to put them.
    let mut trailers = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ExchangeError::ClientBody(io::Error::other(e)))?;
        let data = match frame.into_data() {
            Ok(data) => data,
            Err(frame) => {
                if let Ok(t) = frame.into_trailers() {
                    trailers = Some(t);
                }
                continue;
            }
        };
        if data.is_empty() {
            continue;
        }
        let written = if chunked {
            out.clear();
            encode_data(&mut out, &data, true);
            write_timed(io, &out, limit).await
        } else {
            write_timed(io, &data, limit).await
        };
        written.map_err(|e| sent_error(e, ExchangeError::Body))?;
    }
    if chunked {
        out.clear();
        last_chunk(&mut out, trailers.as_ref());
        write_timed(io, &out, limit)
            .await
            .map_err(|e| sent_error(e, ExchangeError::Body))?;
    }
    Ok(())
}

/// Reads the final response head off `io` through `buf`, skipping interim responses.
async fn read_head<R>(
    io: &mut R,
    buf: &mut BytesMut,
    method: &Method,
) -> Result<ResponseHead, ExchangeError>
where
    R: AsyncRead + Unpin,
{
    let mut seen_bytes = false;
    loop {
        if !buf.is_empty() {
            seen_bytes = true;
            match parse_response(buf, method).map_err(ExchangeError::BadResponse)? {
                // 100 Continue, 103 Early Hints: the final response follows. A 101 is
                // returned: this client never asks for one, so the caller refuses it.
                Some(head)
                    if head.status.is_informational()
                        && head.status != StatusCode::SWITCHING_PROTOCOLS =>
                {
                    continue;
                }
                Some(head) => return Ok(head),
                None if buf.len() > MAX_RESPONSE_HEAD => {
                    return Err(ExchangeError::BadResponse("response head too large"));
                }
                None => {}
            }
        }
        match std::future::poll_fn(|cx| fill(io, buf, READ_CHUNK, cx)).await {
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

fn encode_data(out: &mut Vec<u8>, data: &[u8], chunked: bool) {
    if chunked {
        encode_chunk(out, data);
    } else {
        out.extend_from_slice(data);
    }
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

/// What [`encode_head`] writes besides the request's header map: the gateway's forwarding
/// headers and the route's request header edits (`upstream-vhost`, `x-forwarded-prefix`,
/// `request-header-control-*`), which then need no insert into the map. Where the map
/// travels on, the caller inserts them instead and passes no extras.
pub(crate) struct HeadExtras<'a> {
    pub(crate) forwarded: &'a ForwardHeaders,
    pub(crate) edits: Option<&'a RoutePolicy>,
    /// The map still holds the client's `Connection`, which the head leaves out.
    pub(crate) connection: bool,
}

impl HeadExtras<'_> {
    /// Whether the request's own header `name` is left out of the head.
    fn replaces(&self, name: &HeaderName) -> bool {
        ForwardHeaders::replaces(name)
            || (self.connection && name == CONNECTION)
            || self.edits.is_some_and(|p| p.replaces_request_header(name))
    }

    fn encode(&self, out: &mut Vec<u8>) {
        self.forwarded.encode(out);
        if let Some(p) = self.edits {
            out.extend_from_slice(&p.request_head_plan().lines);
        }
    }
}

// === impl ResponseHead ===

impl ResponseHead {
    /// The body, reading from `conn`.
    pub(crate) fn body(&self, conn: Box<Conn>) -> UpstreamBody {
        UpstreamBody {
            conn: Some(conn),
            state: BodyReader::new(self.framing),
            keep_alive: self.keep_alive,
            raw: None,
            edits: None,
            stalled: None,
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
        if !self.state.is_done() || !self.keep_alive {
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
        let polled = self
            .state
            .poll_frame(&mut conn.io, &mut conn.buf, READ_CHUNK, cx);
        if polled.is_ready() {
            self.stalled = None;
            return polled;
        }
        // As nginx's `proxy_read_timeout`: the clock starts when a read finds nothing, so
        // a body that keeps coming costs no clock reading.
        let since = *self.stalled.get_or_insert_with(Instant::now);
        if conn.timer.poll_expired(since + conn.read_timeout, cx) {
            self.state = BodyReader::Broken;
            return Poll::Ready(Some(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the upstream sent nothing within the read timeout",
            ))));
        }
        Poll::Pending
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
        self.state.is_done()
    }

    fn size_hint(&self) -> SizeHint {
        self.state.size_hint()
    }
}
