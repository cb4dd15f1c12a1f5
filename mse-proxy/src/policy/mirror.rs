//! Mirroring (`mirror-target-*`): a copy of a sampled share of a route's requests goes to
//! the mirror target, and its answer is read and dropped.
//!
//! The copy carries what the upstream gets: the same method, the target after rewrites,
//! and the headers after the gateway's own and the route's edits, `Host` included (like
//! the subrequest of nginx's `mirror`, which inherits the request's headers; Envoy, under
//! Higress, would append `-shadow` to the host instead).
//!
//! The mirror never delays or changes the client's answer:
//! - the copy runs in a task of its own on the worker, bounded by the upstream response
//!   timeout as a whole;
//! - at most [`MAX_IN_FLIGHT`] copies run per worker; past that, requests are not copied;
//! - the request body is handed to the copy as the upstream request consumes it, through
//!   a buffer of at most [`MAX_BUFFERED`] bytes. A mirror slower than that is abandoned
//!   (its request fails and its connection is closed): the client is never held back.
//!
//! Upgrade requests (WebSocket) are not copied.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::marker::PhantomData;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http::Request;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use mse_router::{ClusterTarget, MirrorPolicy};

use crate::body::RequestBody;
use crate::error::{Chain, ProxyError};
use crate::metrics::MirrorResult;
use crate::proxy::Worker;
use crate::upstream::{Sent, Upstream};

/// Copies in flight per worker at most.
pub(crate) const MAX_IN_FLIGHT: usize = 128;
/// Request body bytes buffered for a copy that lags behind the upstream request, at most.
pub(crate) const MAX_BUFFERED: usize = 256 * 1024;

thread_local! {
    /// Copies in flight on this worker (each worker is one thread).
    static IN_FLIGHT: Cell<usize> = const { Cell::new(0) };
}

/// Whether this request is copied to the mirror: `percentage` out of 100, drawn from the
/// worker's own generator.
pub(crate) fn sampled(mirror: &MirrorPolicy) -> bool {
    match mirror.percentage {
        0 => false,
        p if p >= 100 => true,
        p => fastrand::u8(..100) < p,
    }
}

/// Sends `req` to `upstream` as [`crate::upstream::Pool::send`] does, and a copy of it to
/// `mirror` in a task of its own. The request must not ask for an upgrade.
pub(crate) async fn send(
    worker: &Rc<Worker>,
    mirror: &Arc<MirrorPolicy>,
    upstream: &Upstream,
    req: Box<Request<RequestBody>>,
) -> Result<Sent, ProxyError> {
    let target = pick(&mirror.target);
    let slot = target.as_ref().and_then(|_| Slot::take());
    let (Some(target), Some(slot)) = (target, slot) else {
        worker.metrics.mirror_result(MirrorResult::Skipped);
        return worker
            .pool
            .send(upstream, req, None, false, &worker.metrics)
            .await;
    };
    let mut copy = Request::new(CopyBody { pipe: None });
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.version_mut() = req.version();
    *copy.headers_mut() = req.headers().clone();
    if req.body().is_end_stream() {
        spawn(worker, slot, Arc::clone(mirror), target, copy);
        return worker
            .pool
            .send(upstream, req, None, false, &worker.metrics)
            .await;
    }
    let pipe = Rc::new(RefCell::new(Pipe::default()));
    copy.body_mut().pipe = Some(Rc::clone(&pipe));
    spawn(worker, slot, Arc::clone(mirror), target, copy);
    let (parts, body) = req.into_parts();
    let tee = Tee {
        inner: body,
        pipe: Some(pipe),
    };
    let mut req = Request::from_parts(parts, tee);
    let sent = worker
        .pool
        .send_plain(
            upstream,
            &mut req,
            None,
            &worker.metrics,
            worker.pool.waits(None),
        )
        .await?;
    Ok(sent.with_headers(std::mem::take(req.headers_mut())))
}

/// One address of the mirror target, at random; `None` when it has no endpoint.
fn pick(target: &ClusterTarget) -> Option<Upstream> {
    match target {
        ClusterTarget::Endpoints(addrs) => match addrs.len() {
            0 => None,
            1 => Some(Upstream::Addr(addrs[0])),
            n => Some(Upstream::Addr(addrs[fastrand::usize(..n)])),
        },
        ClusterTarget::ExternalName { host, port } => Some(Upstream::Name {
            host: Arc::from(&**host),
            port: *port,
        }),
    }
}

/// Runs one copy: sends it, reads the answer to its end and drops it, all within the
/// upstream response timeout.
fn spawn(
    worker: &Rc<Worker>,
    slot: Slot,
    mirror: Arc<MirrorPolicy>,
    upstream: Upstream,
    req: Request<CopyBody>,
) {
    let worker = Rc::clone(worker);
    tokio::task::spawn_local(async move {
        let _slot = slot;
        let limit = worker.pool.response_timeout();
        let pipe = req.body().pipe.clone();
        let run = async {
            match pipe {
                // A copy abandoned while it writes to a mirror that does not read stops
                // at once rather than at its timeout.
                Some(pipe) => tokio::select! {
                    r = exchange(&worker, &upstream, req) => r,
                    () = WhenAbandoned(pipe) => Err("the mirror fell behind the request body".to_owned()),
                },
                None => exchange(&worker, &upstream, req).await,
            }
        };
        let result = match tokio::time::timeout(limit, run).await {
            Ok(Ok(())) => MirrorResult::Mirrored,
            Ok(Err(e)) => {
                tracing::debug!(mirror = %mirror.name, %upstream, error = %e, "mirror request failed");
                MirrorResult::Failed
            }
            Err(_) => {
                tracing::debug!(mirror = %mirror.name, %upstream, "mirror request timed out");
                MirrorResult::Failed
            }
        };
        worker.metrics.mirror_result(result);
    });
}

async fn exchange(
    worker: &Worker,
    upstream: &Upstream,
    mut req: Request<CopyBody>,
) -> Result<(), String> {
    let sent = worker
        .pool
        .send_plain(
            upstream,
            &mut req,
            None,
            &worker.metrics,
            worker.pool.waits(None),
        )
        .await
        .map_err(|e| Chain(&e).to_string())?;
    let Sent::Plain { head, conn, .. } = sent else {
        return Ok(());
    };
    let mut body = head.body(conn);
    while let Some(frame) = body.frame().await {
        frame.map_err(|e| e.to_string())?;
    }
    if let Some(conn) = body.take_reusable() {
        worker.pool.put(conn);
    }
    Ok(())
}

/// A place among the worker's copies in flight, given back when dropped.
struct Slot {
    /// Taken and given back on the same thread.
    _local: PhantomData<Rc<()>>,
}

// === impl Slot ===

impl Slot {
    fn take() -> Option<Self> {
        IN_FLIGHT.with(|n| {
            let now = n.get();
            (now < MAX_IN_FLIGHT).then(|| {
                n.set(now + 1);
                Self {
                    _local: PhantomData,
                }
            })
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        IN_FLIGHT.with(|n| n.set(n.get().saturating_sub(1)));
    }
}

/// The request body on its way from the upstream request to the copy.
#[derive(Default)]
struct Pipe {
    chunks: VecDeque<Bytes>,
    buffered: usize,
    state: PipeState,
    /// The copy's body, waiting for data.
    waker: Option<Waker>,
    /// The copy's task, waiting to hear that the copy was abandoned (it may be stuck
    /// writing to a mirror that does not read).
    abandon_waker: Option<Waker>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum PipeState {
    #[default]
    Open,
    /// The body ended; what is buffered is all there is.
    Done,
    /// The copy fell behind, or either side went away: the copy fails.
    Abandoned,
}

// === impl Pipe ===

impl Pipe {
    fn push(&mut self, data: &Bytes) {
        if self.state != PipeState::Open || data.is_empty() {
            return;
        }
        if self.buffered + data.len() > MAX_BUFFERED {
            self.abandon();
            return;
        }
        self.buffered += data.len();
        // A clone of `Bytes` shares the buffer: nothing is copied.
        self.chunks.push_back(data.clone());
        self.wake();
    }

    fn finish(&mut self) {
        if self.state == PipeState::Open {
            self.state = PipeState::Done;
            self.wake();
        }
    }

    fn abandon(&mut self) {
        if self.state == PipeState::Open {
            self.state = PipeState::Abandoned;
            self.chunks.clear();
            self.buffered = 0;
            self.wake();
            if let Some(w) = self.abandon_waker.take() {
                w.wake();
            }
        }
    }

    fn wake(&mut self) {
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }
}

/// Resolves when the copy is abandoned.
struct WhenAbandoned(Rc<RefCell<Pipe>>);

impl Future for WhenAbandoned {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut p = self.0.borrow_mut();
        if p.state == PipeState::Abandoned {
            return Poll::Ready(());
        }
        p.abandon_waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// The client's request body on its way upstream, handing each data frame to the copy.
struct Tee {
    inner: RequestBody,
    /// `None` once the copy has all of the body or was abandoned.
    pipe: Option<Rc<RefCell<Pipe>>>,
}

impl Body for Tee {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Some(pipe) = &this.pipe {
            let mut p = pipe.borrow_mut();
            match &polled {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Some(data) = frame.data_ref() {
                        p.push(data);
                    }
                    // The upstream request stops polling once the body says it ended.
                    if this.inner.is_end_stream() {
                        p.finish();
                    }
                }
                Poll::Ready(None) => p.finish(),
                Poll::Ready(Some(Err(_))) => p.abandon(),
                Poll::Pending => {}
            }
            let open = p.state == PipeState::Open;
            drop(p);
            if !open {
                this.pipe = None;
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Tee {
    fn drop(&mut self) {
        // The upstream request gave up before the body ended: so does the copy.
        if let Some(pipe) = &self.pipe {
            pipe.borrow_mut().abandon();
        }
    }
}

/// The body of a copy: what the [`Tee`] handed over, or nothing.
struct CopyBody {
    pipe: Option<Rc<RefCell<Pipe>>>,
}

impl Body for CopyBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let Some(pipe) = &self.pipe else {
            return Poll::Ready(None);
        };
        let mut p = pipe.borrow_mut();
        if let Some(data) = p.chunks.pop_front() {
            p.buffered -= data.len();
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        match p.state {
            PipeState::Done => Poll::Ready(None),
            PipeState::Abandoned => Poll::Ready(Some(Err(io::Error::other(
                "the mirror fell behind the request body and was abandoned",
            )))),
            PipeState::Open => {
                p.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.pipe.as_ref().is_none_or(|p| {
            let p = p.borrow();
            p.state == PipeState::Done && p.chunks.is_empty()
        })
    }
}

impl Drop for CopyBody {
    fn drop(&mut self) {
        // The copy ended early (failed or timed out): stop buffering for it.
        if let Some(pipe) = &self.pipe {
            pipe.borrow_mut().abandon();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pipe_abandons_a_copy_that_falls_behind() {
        let mut p = Pipe::default();
        let chunk = Bytes::from(vec![0u8; MAX_BUFFERED / 2]);
        p.push(&chunk);
        p.push(&chunk);
        assert_eq!(p.state, PipeState::Open);
        assert_eq!(p.buffered, MAX_BUFFERED);
        p.push(&Bytes::from_static(b"x"));
        assert_eq!(p.state, PipeState::Abandoned);
        assert!(p.chunks.is_empty());
        // Nothing more is taken once abandoned, and finishing does not revive it.
        p.push(&Bytes::from_static(b"y"));
        p.finish();
        assert_eq!((p.state, p.buffered), (PipeState::Abandoned, 0));
    }

    #[test]
    fn the_worker_limit_bounds_copies_in_flight() {
        let slots: Vec<Slot> = std::iter::from_fn(Slot::take)
            .take(MAX_IN_FLIGHT + 5)
            .collect();
        assert_eq!(slots.len(), MAX_IN_FLIGHT);
        assert!(Slot::take().is_none());
        drop(slots);
        assert!(Slot::take().is_some());
    }

    #[test]
    fn percentages_zero_and_hundred_are_exact() {
        let policy = |percentage| MirrorPolicy {
            target: ClusterTarget::Endpoints(Arc::from(Vec::new())),
            percentage,
            name: Arc::from("m"),
        };
        assert!((0..1000).all(|_| !sampled(&policy(0))));
        assert!((0..1000).all(|_| sampled(&policy(100))));
        let half = (0..10_000).filter(|_| sampled(&policy(50))).count();
        assert!((4_000..6_000).contains(&half), "{half}");
    }
}
