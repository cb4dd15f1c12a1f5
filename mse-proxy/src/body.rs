//! [`ProxyBody`]: the response body the gateway sends, either a short text of its own or
//! the upstream's body streamed through.
//!
//! The body also ends the request's bookkeeping when it is dropped: the in-flight gauge,
//! returning the upstream connection to the pool (only when the body was read to its end,
//! so the connection is between two exchanges), and the access log line with the bytes
//! sent. One enum, no boxing.

use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;

use crate::log::AccessRecord;
use crate::proxy::Worker;
use crate::upstream::Upstream;

/// Counts one request in flight from its start until its response body is dropped.
pub(crate) struct InFlight {
    worker: Rc<Worker>,
}

/// The body of every response the proxy sends.
pub(crate) struct ProxyBody {
    inner: Inner,
    ended: bool,
    bytes: u64,
    pooled: Option<(Upstream, SendRequest<Incoming>)>,
    log: Option<Box<AccessRecord>>,
    guard: InFlight,
}

enum Inner {
    Full(Option<Bytes>),
    Upstream(Incoming),
}

// `Body` is implemented without pin projection: every part is `Unpin`.
const _: fn() = || {
    fn unpin<T: Unpin>() {}
    unpin::<Incoming>();
};

// === impl InFlight ===

impl InFlight {
    pub(crate) fn new(worker: &Rc<Worker>) -> Self {
        worker.metrics.in_flight_gauge().inc();
        Self {
            worker: Rc::clone(worker),
        }
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
        Self::new(Inner::Full(data), None, guard)
    }

    /// The upstream's body; `pooled` goes back to the pool once it has been read to its end.
    pub(crate) fn upstream(
        body: Incoming,
        pooled: Option<(Upstream, SendRequest<Incoming>)>,
        guard: InFlight,
    ) -> Self {
        Self::new(Inner::Upstream(body), pooled, guard)
    }

    fn new(
        inner: Inner,
        pooled: Option<(Upstream, SendRequest<Incoming>)>,
        guard: InFlight,
    ) -> Self {
        Self {
            inner,
            ended: false,
            bytes: 0,
            pooled,
            log: None,
            guard,
        }
    }

    /// Logs the request when the body is dropped.
    pub(crate) fn set_log(&mut self, log: Box<AccessRecord>) {
        self.log = Some(log);
    }

    fn inner_is_end(&self) -> bool {
        match &self.inner {
            Inner::Full(data) => data.is_none(),
            Inner::Upstream(body) => body.is_end_stream(),
        }
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let polled = match &mut this.inner {
            Inner::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            Inner::Upstream(body) => Pin::new(body).poll_frame(cx),
        };
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
        }
    }
}

impl Drop for ProxyBody {
    fn drop(&mut self) {
        let complete = self.ended || self.inner_is_end();
        if let Some((upstream, conn)) = self.pooled.take() {
            // A body dropped half-read leaves its connection mid-response: never reuse it.
            if complete {
                self.guard.worker.pool.put(upstream, conn);
            }
        }
        if let Some(log) = self.log.take() {
            log.emit(self.bytes, complete);
        }
    }
}
