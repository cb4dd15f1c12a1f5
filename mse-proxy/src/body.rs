//! [`ProxyBody`]: the response body the gateway sends, either a short text of its own or
//! the upstream's body streamed through; [`RequestBody`]: a client's request body, from
//! either server.
//!
//! The body also ends the request's bookkeeping when it is dropped: the in-flight gauge,
//! returning the upstream connection to the pool (only when the body was read to its end,
//! so the connection is between two exchanges), and the access log line with the bytes
//! sent. One enum, no boxing.

use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use mse_router::HeaderOps;

use crate::http1::{H1Body, Present, RawHeaders, UpstreamBody};
use crate::log::AccessRecord;
use crate::metrics::TimeoutKind;
use crate::policy::compress::Encoder;
use crate::policy::limit::ConnSlot;
use crate::policy::load::LoadGuard;
use crate::proxy::Worker;
use crate::stats::Tally;

/// The body of a client's request.
pub(crate) enum RequestBody {
    /// Read off an HTTP/1.1 connection by the gateway's own server.
    H1(H1Body),
    /// From hyper's HTTP/2 server.
    H2(Incoming),
    /// A body of unknown length under a `proxy-body-size` limit, counted as it is read.
    /// Boxed: rare.
    Limited(Box<Limited>),
}

/// A body counted against a limit: past it, reading fails with [`BodyTooLarge`].
///
/// The body it counts is behind a pointer to `dyn Body`, so that [`RequestBody`] is not a
/// recursive type: its drop and its small methods stay inlined where they are used.
pub(crate) struct Limited {
    inner: Pin<Box<dyn Body<Data = Bytes, Error = std::io::Error>>>,
    /// What the counted body's parser noted.
    present: Present,
    /// Bytes still allowed.
    left: u64,
    limit: u64,
}

/// The error a [`Limited`] body fails with past its limit.
#[derive(Debug, thiserror::Error)]
#[error("the request body is larger than {limit} bytes")]
pub(crate) struct BodyTooLarge {
    /// The limit in bytes.
    pub(crate) limit: u64,
}

/// What a request body limit decides before anything is sent.
pub(crate) enum BodyCheck {
    /// Within the limit (or empty).
    Pass,
    /// Its length is unknown: it must be counted as it streams ([`RequestBody::counted`]).
    Count,
    /// Its declared length is over the limit.
    TooLarge,
}

// === impl RequestBody ===

impl RequestBody {
    /// Which of the headers the proxy looks up the request has, as its parser noted;
    /// everything may be there for HTTP/2, whose headers hyper parsed.
    pub(crate) fn present(&self) -> Present {
        match self {
            Self::H1(body) => body.present(),
            Self::H2(_) => Present::ALL,
            Self::Limited(l) => l.present,
        }
    }

    /// Checks the body against `limit` as far as its declared length allows. A request
    /// without a body (most) is only asked whether it has one.
    #[inline]
    pub(crate) fn check(&self, limit: u64) -> BodyCheck {
        if self.is_end_stream() {
            return BodyCheck::Pass;
        }
        self.check_declared(limit)
    }

    #[inline(never)]
    fn check_declared(&self, limit: u64) -> BodyCheck {
        let hint = self.size_hint();
        if hint.lower() > limit {
            BodyCheck::TooLarge
        } else if hint.exact().is_some() {
            BodyCheck::Pass
        } else {
            BodyCheck::Count
        }
    }

    /// This body, failing with [`BodyTooLarge`] once more than `limit` bytes were read.
    /// A body read whole before, to be sent again (a retry on another endpoint).
    pub(crate) fn buffered(bytes: Bytes) -> Self {
        let len = bytes.len() as u64;
        let full =
            http_body_util::BodyExt::map_err(http_body_util::Full::new(bytes), |e| match e {});
        RequestBody::Limited(Box::new(Limited {
            present: Present::ALL,
            inner: Box::pin(full),
            left: len,
            limit: len,
        }))
    }

    pub(crate) fn counted(self, limit: u64) -> Self {
        RequestBody::Limited(Box::new(Limited {
            present: self.present(),
            inner: Box::pin(self),
            left: limit,
            limit,
        }))
    }
}

/// Counts one request in flight from its start until its response body is dropped.
pub(crate) struct InFlight {
    worker: Rc<Worker>,
    /// The request's count against its endpoint (`least_conn`, `random`).
    load: Option<LoadGuard>,
    /// The request's count against its client's `limit-connections`.
    slot: Option<Box<ConnSlot>>,
}

/// The body of every response the proxy sends.
pub(crate) struct ProxyBody {
    inner: Inner,
    ended: bool,
    bytes: u64,
    /// What the metrics note of the request, set once the answer is known.
    tally: Option<Tally>,
    log: Option<Box<AccessRecord>>,
    /// The request's span, when it is traced.
    span: Option<Box<crate::otel::Started>>,
    guard: InFlight,
}

enum Inner {
    Full(Option<Bytes>),
    /// Read from a pooled connection of the inline client.
    Upstream(UpstreamBody),
    /// The response to an upgrade request that was not upgraded (hyper's client).
    Incoming(Incoming),
    /// Another body, compressed as it streams (`use-gzip`, `enable-brotli`). Boxed: rare.
    Compressed(Box<Compressed>),
}

/// A body compressed as it streams; see [`crate::policy::compress`].
struct Compressed {
    inner: Inner,
    encoder: Encoder,
    /// Input taken in since the encoder last flushed.
    unflushed: bool,
    /// The inner body's trailers, sent after the last compressed bytes.
    trailers: Option<http::HeaderMap>,
    done: bool,
}

// `Body` is implemented without pin projection: every part is `Unpin`.
const _: fn() = || {
    fn unpin<T: Unpin>() {}
    unpin::<Incoming>();
    unpin::<UpstreamBody>();
    unpin::<H1Body>();
};

// === impl RequestBody ===

impl Body for RequestBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        match self.get_mut() {
            RequestBody::H1(body) => Pin::new(body).poll_frame(cx),
            RequestBody::H2(body) => Pin::new(body)
                .poll_frame(cx)
                .map(|f| f.map(|r| r.map_err(std::io::Error::other))),
            RequestBody::Limited(l) => l.poll_counted(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            RequestBody::H1(body) => body.is_end_stream(),
            RequestBody::H2(body) => body.is_end_stream(),
            RequestBody::Limited(l) => l.inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RequestBody::H1(body) => body.size_hint(),
            RequestBody::H2(body) => body.size_hint(),
            RequestBody::Limited(l) => l.inner.size_hint(),
        }
    }
}

// === impl Limited ===

impl Limited {
    fn poll_counted(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let polled = self.inner.as_mut().poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            let n = data.len() as u64;
            if n > self.left {
                self.left = 0;
                let too_large = BodyTooLarge { limit: self.limit };
                return Poll::Ready(Some(Err(std::io::Error::other(too_large))));
            }
            self.left -= n;
        }
        polled
    }
}

// === impl InFlight ===

impl InFlight {
    pub(crate) fn new(worker: &Rc<Worker>) -> Self {
        worker.metrics.in_flight_gauge().inc();
        Self {
            worker: Rc::clone(worker),
            load: None,
            slot: None,
        }
    }

    /// Holds `load` until the response ends.
    pub(crate) fn with_load(mut self, load: Option<LoadGuard>) -> Self {
        self.load = load;
        self
    }

    /// Holds `slot` until the response ends.
    pub(crate) fn with_slot(mut self, slot: Option<Box<ConnSlot>>) -> Self {
        self.slot = slot;
        self
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.worker.metrics.in_flight_gauge().dec();
    }
}

// === impl ProxyBody ===

impl ProxyBody {
    /// A body of the gateway's own.
    pub(crate) fn full(data: Bytes, guard: InFlight) -> Self {
        let data = (!data.is_empty()).then_some(data);
        Self::new(Inner::Full(data), guard)
    }

    /// The upstream's body; its connection goes back to the pool once it has been read to
    /// its end.
    pub(crate) fn upstream(body: UpstreamBody, guard: InFlight) -> Self {
        Self::new(Inner::Upstream(body), guard)
    }

    /// A body from hyper's client.
    pub(crate) fn incoming(body: Incoming, guard: InFlight) -> Self {
        Self::new(Inner::Incoming(body), guard)
    }

    fn new(inner: Inner, guard: InFlight) -> Self {
        Self {
            inner,
            ended: false,
            bytes: 0,
            tally: None,
            log: None,
            span: None,
            guard,
        }
    }

    /// The upstream response's headers as received, when they were kept so (see
    /// [`RawHeaders`]): the answer is written with them besides its header map.
    pub(crate) fn raw_headers(&self) -> Option<&RawHeaders> {
        match &self.inner {
            Inner::Upstream(body) => body.raw_headers(),
            _ => None,
        }
    }

    /// The response header edits left to the writer (see [`UpstreamBody::defer_edits`]).
    pub(crate) fn deferred_edits(&self) -> Option<&HeaderOps> {
        match &self.inner {
            Inner::Upstream(body) => body.deferred_edits(),
            _ => None,
        }
    }

    /// Moves the headers kept as received, and the edits left to the writer, into
    /// `headers`: for a server that writes the map only.
    pub(crate) fn headers_into_map(&mut self, headers: &mut http::HeaderMap) {
        if let Inner::Upstream(body) = &mut self.inner {
            body.headers_into_map(headers);
        }
    }

    /// Counts the request, and logs it, when the body is dropped.
    pub(crate) fn set_tally(&mut self, tally: Tally, log: Option<Box<AccessRecord>>) {
        self.tally = Some(tally);
        self.log = log;
    }

    /// Ends `span` when the body is dropped (after [`ProxyBody::set_tally`]).
    pub(crate) fn set_span(&mut self, span: Option<Box<crate::otel::Started>>) {
        self.span = span;
    }

    /// Compresses the body as it streams with `encoder`.
    pub(crate) fn compress(&mut self, encoder: Encoder) {
        let inner = std::mem::replace(&mut self.inner, Inner::Full(None));
        self.inner = Inner::Compressed(Box::new(Compressed {
            inner,
            encoder,
            unflushed: false,
            trailers: None,
            done: false,
        }));
    }

    fn inner_is_end(&self) -> bool {
        self.inner.is_end()
    }
}

impl Inner {
    #[inline]
    fn is_end(&self) -> bool {
        match self {
            Inner::Full(data) => data.is_none(),
            Inner::Upstream(body) => body.is_end_stream(),
            Inner::Incoming(body) => body.is_end_stream(),
            Inner::Compressed(c) => c.done,
        }
    }

    /// Polls the body; a compressed one polls its inner body with [`Inner::poll_plain`],
    /// so that nothing here is recursive and this stays inlined.
    #[inline]
    fn poll(
        &mut self,
        worker: &Worker,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        match self {
            Inner::Compressed(c) => c.poll(worker, cx),
            plain => plain.poll_plain(worker, cx),
        }
    }

    /// Polls a body that is not [`Inner::Compressed`] (one never is inside another).
    #[inline]
    fn poll_plain(
        &mut self,
        worker: &Worker,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        match self {
            Inner::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            Inner::Upstream(body) => {
                let polled = Pin::new(body).poll_frame(cx);
                if let Poll::Ready(Some(Err(e))) = &polled
                    && e.kind() == std::io::ErrorKind::TimedOut
                {
                    worker.metrics.timed_out(TimeoutKind::UpstreamRead);
                }
                polled
            }
            Inner::Incoming(body) => Pin::new(body)
                .poll_frame(cx)
                .map(|f| f.map(|r| r.map_err(std::io::Error::other))),
            Inner::Compressed(_) => Poll::Ready(None),
        }
    }

    /// The upstream connection's body, also under compression.
    #[inline]
    fn upstream_mut(&mut self) -> Option<&mut UpstreamBody> {
        match self {
            Inner::Upstream(body) => Some(body),
            Inner::Compressed(c) => match &mut c.inner {
                Inner::Upstream(body) => Some(body),
                _ => None,
            },
            _ => None,
        }
    }
}

// === impl Compressed ===

impl Compressed {
    #[inline(never)]
    fn poll(
        &mut self,
        worker: &Worker,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        loop {
            if self.done {
                return Poll::Ready(self.trailers.take().map(|t| Ok(Frame::trailers(t))));
            }
            let out = match self.inner.poll_plain(worker, cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        self.unflushed = true;
                        self.encoder.write(&data)
                    }
                    Err(frame) => {
                        if let Ok(t) = frame.into_trailers() {
                            self.trailers = Some(t);
                        }
                        continue;
                    }
                },
                Poll::Ready(None) => {
                    self.done = true;
                    self.encoder.finish()
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                // Nothing more at once: what the encoder holds goes out now.
                Poll::Pending if self.unflushed => {
                    self.unflushed = false;
                    self.encoder.flush()
                }
                Poll::Pending => return Poll::Pending,
            };
            match out {
                Ok(out) if out.is_empty() => {}
                Ok(out) => return Poll::Ready(Some(Ok(Frame::data(out)))),
                Err(e) => return Poll::Ready(Some(Err(e))),
            }
        }
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = self.get_mut();
        let polled = this.inner.poll(&this.guard.worker, cx);
        match &polled {
            Poll::Ready(None) => this.ended = true,
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.bytes += data.len() as u64;
                }
            }
            Poll::Ready(Some(Err(_))) | Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.inner_is_end()
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Full(Some(data)) => SizeHint::with_exact(data.len() as u64),
            Inner::Full(None) => SizeHint::with_exact(0),
            Inner::Upstream(body) => body.size_hint(),
            Inner::Incoming(body) => body.size_hint(),
            Inner::Compressed(_) => SizeHint::default(),
        }
    }
}

impl Drop for ProxyBody {
    fn drop(&mut self) {
        // A body dropped half-read leaves its connection mid-response: never reused.
        let reusable = self.inner.upstream_mut().and_then(|b| b.take_reusable());
        if reusable.is_none() && self.tally.is_none() {
            return;
        }
        // One reading of the clock: when the connection went idle, when the request ended.
        let now = Instant::now();
        if let Some(conn) = reusable {
            self.guard.worker.pool.put_at(conn, now);
        }
        if let Some(t) = &mut self.tally {
            t.end(now);
            let worker = &self.guard.worker;
            worker.stats.record(t, self.bytes);
            if let Some(log) = self.log.take() {
                if let Some(span) = self.span.take() {
                    end_span(worker, *span, t, &log);
                }
                write_log(worker, t, &log, self.bytes);
            }
        }
    }
}

/// Ends a traced request's span.
#[inline(never)]
fn end_span(worker: &Worker, span: crate::otel::Started, t: &Tally, log: &AccessRecord) {
    let labels = worker.stats.labels(t.serial, t.slot);
    crate::otel::finish(span, t, log, labels.as_deref());
}

/// Writes the access log line of a request into the worker's buffer.
#[inline(never)]
fn write_log(worker: &Worker, t: &Tally, log: &AccessRecord, bytes: u64) {
    if log.off {
        return;
    }
    let labels = worker.stats.labels(t.serial, t.slot);
    worker
        .log
        .push(|clock, out| log.write(t, bytes, labels.as_deref(), clock, out));
}
