//! The exchange's timeouts and retries of routes with an [`ExchangePolicy`] (`timeout`,
//! `proxy-connect-timeout`, `proxy-read-timeout`, `proxy-next-upstream*`).
//!
//! A failed attempt is tried again on an endpoint of the cluster not tried yet: the
//! cheapest by the route's balancing when it counts load (`least_conn`, `random`,
//! `ewma`; the request's count moves with it), else the next in round-robin order; only while nothing
//! of the answer went to the client (every attempt ends at its response head), only for
//! idempotent methods unless `non_idempotent` is set, and only with a body that was read
//! whole first (at most [`MAX_BUFFERED`] bytes of declared length): a streaming body is
//! never sent twice. Retries are budgeted per worker ([`Budget`]): at most
//! [`BUDGET_PERCENT`] % of the requests of retrying routes, plus [`BUDGET_MIN`], so that a
//! failing backend never gets a multiple of the load. The same rules apply to clusters of
//! another protocol (upstream TLS, HTTP/2: [`send_protocol`]), where a timed-out attempt is
//! one whose response head did not come in time.
//! A retry skips the endpoints outlier
//! detection ejected while an untried one is left that is not ejected.
//!
//! Routes without `proxy-next-upstream` get the part of ingress-nginx's default
//! (`error timeout`, 3 tries) that is always safe ([`refused`]): an attempt whose
//! connection could not be opened (refused, unreachable, or not within the connect
//! timeout) sent nothing of the request, so it goes to another endpoint of the cluster,
//! up to [`DEFAULT_TRIES`] attempts in all, within the same budget, for every method. A
//! connection that broke after the request went out is not retried there: the upstream
//! may have acted on it.

use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use mse_router::{ExchangePolicy, RetryPolicy};
use tokio::time::Instant;

use crate::body::RequestBody;
use crate::error::ProxyError;
use crate::http1::HeadExtras;
use crate::policy::load::LoadGuard;
use crate::proxy::Worker;
use crate::upstream::{Protocol, Sent, Upstream, idempotent, send_protocol as send_protocol_once};

/// The policy of a route without one, when the gateway-wide `downstream.routeTimeout`
/// bounds every request.
pub(crate) static NONE: ExchangePolicy = ExchangePolicy {
    total: None,
    connect: None,
    read: None,
    send: None,
    retry: None,
    connections: None,
};

/// The largest request body read whole so that it can be sent again.
pub(crate) const MAX_BUFFERED: u64 = 64 * 1024;
/// Retries allowed per 100 requests of retrying routes.
pub(crate) const BUDGET_PERCENT: u32 = 20;
/// Retries allowed beyond the share, so that a quiet worker may retry at all.
pub(crate) const BUDGET_MIN: u32 = 10;
/// Past this many requests both counts are halved: the budget follows recent traffic.
const BUDGET_SPAN: u32 = 1000;
/// Attempts at most, the first included, for routes without `proxy-next-upstream`
/// (ingress-nginx's `proxy-next-upstream-tries` default).
pub(crate) const DEFAULT_TRIES: usize = 3;

/// One worker's retry budget: plain counters, as the worker is one thread.
#[derive(Default)]
pub(crate) struct Budget {
    requests: Cell<u32>,
    retries: Cell<u32>,
}

// === impl Budget ===

impl Budget {
    /// Counts a request that may be retried.
    pub(crate) fn request(&self) {
        let n = self.requests.get() + 1;
        if n >= BUDGET_SPAN {
            self.requests.set(n / 2);
            self.retries.set(self.retries.get() / 2);
        } else {
            self.requests.set(n);
        }
    }

    /// Takes one retry, if the budget has room.
    fn take(&self) -> bool {
        let allowed = BUDGET_MIN + self.requests.get() * BUDGET_PERCENT / 100;
        let used = self.retries.get();
        if used < allowed {
            self.retries.set(used + 1);
            true
        } else {
            false
        }
    }
}

/// The request's body as each attempt sends it.
enum Payload {
    /// None, or a streaming body sent once: the request itself is sent.
    AsIs,
    /// Read whole, sent again with each attempt.
    Buffered(Bytes),
}

/// Sends `req` under the route's exchange policy; returns the answer and the endpoint
/// that gave it. `endpoints`: the cluster's endpoints, for retries; `load`: the request's
/// count in the route's `least_conn`, `random` or `ewma` balancing, which moves with a
/// retry to the endpoint it goes to.
pub(crate) async fn send(
    worker: &Worker,
    policy: &ExchangePolicy,
    (first, endpoints): (Upstream, Option<&Arc<[SocketAddr]>>),
    load: &mut Option<LoadGuard>,
    req: &mut Request<RequestBody>,
    extras: Option<&HeadExtras<'_>>,
) -> Result<(Sent, Upstream), ProxyError> {
    let start = Instant::now();
    let waits = worker.pool.waits(Some(policy));
    let total = waits.total.map(|t| start + t);
    let mut retry = policy
        .retry
        .as_ref()
        .filter(|r| r.non_idempotent || idempotent(req.method()))
        .filter(|_| endpoints.is_some());
    let mut payload = Payload::AsIs;
    if retry.is_some() && !req.body().is_end_stream() {
        match req.body().size_hint().exact() {
            Some(n) if n <= MAX_BUFFERED => {
                let body = req.body_mut().collect().await;
                let body = body.map_err(|e| crate::upstream::client_body_failure(&e))?;
                payload = Payload::Buffered(body.to_bytes());
            }
            _ => retry = None,
        }
    }
    // Without `proxy-next-upstream`, a request may still be retried (see [`refused`]).
    if retry.is_some() || policy.retry.is_none() {
        worker.budget.request();
    }
    let mut tried = Tried::default();
    let mut upstream = first;
    let mut attempt = 1u32;
    loop {
        let sent = {
            let fut = attempt_once(worker, &upstream, req, &payload, extras, waits);
            match total {
                Some(at) => match tokio::time::timeout_at(at, fut).await {
                    Ok(sent) => sent,
                    Err(_) => {
                        worker.metrics.timeout();
                        return Err(ProxyError::ResponseTimeout { upstream });
                    }
                },
                None => fut.await,
            }
        };
        let again = match (&sent, retry) {
            (Ok(Sent::Plain { head, .. }), Some(r)) => r.retries_status(head.status.as_u16()),
            (Err(e), Some(r)) => retries_error(r, e),
            _ => false,
        };
        let sent = match sent {
            // No `proxy-next-upstream`: the default for a connection that did not open.
            Err(e) if policy.retry.is_none() && unsent(&e) => {
                let other = refused(worker, e, &upstream, req, extras, waits);
                return match total {
                    Some(at) => match tokio::time::timeout_at(at, other).await {
                        Ok(sent) => sent,
                        Err(_) => {
                            worker.metrics.timeout();
                            Err(ProxyError::ResponseTimeout { upstream })
                        }
                    },
                    None => other.await,
                };
            }
            sent => sent,
        };
        let next = match (again, retry, endpoints) {
            (true, Some(r), Some(all)) if may_retry(r, all.len(), attempt, start, total) => {
                let health = ejected(worker, &upstream, all.len());
                tried
                    .next(all, &upstream, load.as_ref(), health)
                    .filter(|_| {
                        let granted = worker.budget.take();
                        worker.metrics.retry(granted);
                        granted
                    })
            }
            _ => None,
        };
        match (next, endpoints) {
            (Some(i), Some(all)) => {
                let next = Upstream::Addr(all[i]);
                tracing::debug!(%upstream, %next, attempt, "retrying on another endpoint");
                // The failed attempt's connection, if any, is dropped here: closed.
                drop(sent);
                move_load(load, i);
                upstream = next;
                attempt += 1;
            }
            _ => return sent.map(|s| (s, upstream)),
        }
    }
}

/// [`send`] for a cluster spoken to with hyper's client (`backend-protocol`, upstream
/// TLS, HTTP/2): the same rules, each attempt a request of its own; returns the answer
/// and the endpoint that gave it. `waits` bounds each attempt as for a single one.
pub(crate) async fn send_protocol(
    worker: &Worker,
    (protocol, policy): (&Arc<Protocol>, &ExchangePolicy),
    (first, endpoints): (Upstream, &Arc<[SocketAddr]>),
    load: &mut Option<LoadGuard>,
    mut req: Request<RequestBody>,
    waits: crate::upstream::Waits,
) -> Result<(Response<Incoming>, Upstream), ProxyError> {
    let start = Instant::now();
    let total = waits.total.map(|t| start + t);
    let (pool, metrics) = (&worker.pool, &worker.metrics);
    let retry = policy
        .retry
        .as_ref()
        .filter(|r| r.non_idempotent || idempotent(req.method()));
    let payload = match retry {
        Some(_) if req.body().is_end_stream() => Some(Bytes::new()),
        Some(_) => match req.body().size_hint().exact() {
            Some(n) if n <= MAX_BUFFERED => {
                let body = req.body_mut().collect().await;
                let body = body.map_err(|e| crate::upstream::client_body_failure(&e))?;
                Some(body.to_bytes())
            }
            _ => None,
        },
        None => None,
    };
    // A streaming body is sent once, as it is.
    let (Some(retry), Some(payload)) = (retry, payload) else {
        let sent = send_protocol_once(pool, protocol, &first, req, waits, metrics).await;
        return sent.map(|r| (r, first));
    };
    worker.budget.request();
    let (parts, _) = req.into_parts();
    let mut tried = Tried::default();
    let mut upstream = first;
    let mut attempt = 1u32;
    loop {
        let copy = Request::from_parts(parts.clone(), RequestBody::buffered(payload.clone()));
        let sent = send_protocol_once(pool, protocol, &upstream, copy, waits, metrics).await;
        let again = match &sent {
            Ok(r) => retry.retries_status(r.status().as_u16()),
            Err(e) => retries_error(retry, e),
        };
        let next = (again && may_retry(retry, endpoints.len(), attempt, start, total))
            .then(|| {
                let health = ejected(worker, &upstream, endpoints.len());
                tried.next(endpoints, &upstream, load.as_ref(), health)
            })
            .flatten()
            .filter(|_| {
                let granted = worker.budget.take();
                metrics.retry(granted);
                granted
            });
        let Some(i) = next else {
            return sent.map(|r| (r, upstream));
        };
        let next = Upstream::Addr(endpoints[i]);
        tracing::debug!(%upstream, %next, attempt, "retrying on another endpoint");
        drop(sent);
        move_load(load, i);
        upstream = next;
        attempt += 1;
    }
}

/// Moves the request's count in the route's balancing to endpoint `i`.
fn move_load(load: &mut Option<LoadGuard>, i: usize) {
    if let Some(guard) = load.take() {
        let (loads, timed) = (Arc::clone(guard.loads().0), guard.timed());
        drop(guard);
        *load = Some(loads.start(i, timed));
    }
}

/// One attempt on `upstream`.
async fn attempt_once(
    worker: &Worker,
    upstream: &Upstream,
    req: &mut Request<RequestBody>,
    payload: &Payload,
    extras: Option<&HeadExtras<'_>>,
    waits: crate::upstream::Waits,
) -> Result<Sent, ProxyError> {
    let metrics = &worker.metrics;
    match payload {
        Payload::AsIs => {
            worker
                .pool
                .send_plain(upstream, req, extras, metrics, waits)
                .await
        }
        Payload::Buffered(body) => {
            let mut copy = Request::new(Full::new(body.clone()));
            *copy.method_mut() = req.method().clone();
            *copy.uri_mut() = req.uri().clone();
            *copy.version_mut() = req.version();
            *copy.headers_mut() = req.headers().clone();
            worker
                .pool
                .send_plain(upstream, &mut copy, extras, metrics, waits)
                .await
        }
    }
}

/// For a route without `proxy-next-upstream`: `err`, an attempt on `first` whose
/// connection did not open, is tried on other endpoints of the cluster not ejected, up to
/// [`DEFAULT_TRIES`] attempts in all, while the budget allows and the connection is what
/// fails. Returns the answer and the endpoint that gave it, or the last error.
pub(crate) async fn refused<B>(
    worker: &Worker,
    err: ProxyError,
    first: &Upstream,
    req: &mut Request<B>,
    extras: Option<&HeadExtras<'_>>,
    waits: crate::upstream::Waits,
) -> Result<(Sent, Upstream), ProxyError>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut err = err;
    let Upstream::Addr(addr) = first else {
        return Err(err);
    };
    if !unsent(&err) {
        return Err(err);
    }
    let Some(health) = worker.pool.outliers().cluster_of(addr) else {
        return Err(err);
    };
    let all = Arc::clone(health.addrs());
    let mut tried = Tried::default();
    let mut at = first.clone();
    for _ in 1..DEFAULT_TRIES.min(all.len()) {
        let out = health.out_mask();
        let Some(i) = tried.next(&all, &at, None, Some(out)) else {
            break;
        };
        let granted = worker.budget.take();
        worker.metrics.retry(granted);
        if !granted {
            break;
        }
        let next = Upstream::Addr(all[i]);
        tracing::debug!(upstream = %at, %next, "connection failed; trying another endpoint");
        at = next;
        let metrics = &worker.metrics;
        match worker
            .pool
            .send_plain(&at, req, extras, metrics, waits)
            .await
        {
            Ok(sent) => return Ok((sent, at)),
            Err(e) if unsent(&e) => err = e,
            Err(e) => return Err(e),
        }
    }
    Err(err)
}

/// Whether a failed attempt sent nothing of the request: its connection did not open.
pub(crate) fn unsent(e: &ProxyError) -> bool {
    matches!(
        e,
        ProxyError::Connect { .. } | ProxyError::ConnectTimeout { .. }
    )
}

/// The endpoints of `upstream`'s cluster that outlier detection ejected, as a bit set,
/// when the cluster has `n` endpoints.
fn ejected(worker: &Worker, upstream: &Upstream, n: usize) -> Option<u64> {
    let Upstream::Addr(addr) = upstream else {
        return None;
    };
    let health = worker.pool.outliers().cluster_of(addr)?;
    (health.addrs().len() == n).then(|| health.out_mask())
}

/// Whether a failed attempt is tried again under `r`.
fn retries_error(r: &RetryPolicy, e: &ProxyError) -> bool {
    match e {
        ProxyError::Connect { .. } | ProxyError::Upstream { .. } | ProxyError::Resolve { .. } => {
            r.on_error
        }
        ProxyError::ConnectTimeout { .. } | ProxyError::ResponseTimeout { .. } => r.on_timeout,
        ProxyError::BadResponse { .. } => r.on_invalid_header,
        _ => false,
    }
}

/// Whether attempt `attempt + 1` may start: within `proxy-next-upstream-tries` (and one
/// attempt per endpoint at most), `proxy-next-upstream-timeout` and the whole request's
/// `timeout`.
fn may_retry(
    r: &RetryPolicy,
    endpoints: usize,
    attempt: u32,
    start: Instant,
    total: Option<Instant>,
) -> bool {
    let tries = match r.tries {
        0 => endpoints,
        t => (t as usize).min(endpoints),
    };
    let now = Instant::now();
    (attempt as usize) < tries
        && r.timeout.is_none_or(|t| now < start + t)
        && total.is_none_or(|at| now < at)
}

/// The endpoints a request was sent to, by index in the cluster (the first 64; a larger
/// cluster is walked in order, which repeats none either).
#[derive(Default)]
struct Tried(u64);

impl Tried {
    /// Marks `current` as tried and picks the next endpoint not tried: the cheapest by
    /// the route's balancing when it counts load, else the next one in round-robin order.
    /// `ejected`: the endpoints outlier detection ejected, passed over while another
    /// untried one is left.
    fn next(
        &mut self,
        all: &[SocketAddr],
        current: &Upstream,
        load: Option<&LoadGuard>,
        ejected: Option<u64>,
    ) -> Option<usize> {
        let Upstream::Addr(addr) = current else {
            return None;
        };
        let n = all.len();
        let i = all.iter().position(|a| a == addr)?;
        if n > 64 {
            return Some((i + 1) % n);
        }
        self.0 |= 1 << i;
        let everyone = if n == 64 { u64::MAX } else { (1 << n) - 1 };
        let skip = match ejected {
            Some(out) if (self.0 | out) & everyone != everyone => self.0 | out,
            _ => self.0,
        };
        if let Some(g) = load
            && g.loads().0.len() == n
        {
            return g.loads().0.cheapest_untried((i + 1) % n, skip, g.timed());
        }
        (1..n).map(|k| (i + k) % n).find(|&j| skip & (1 << j) == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(tries: u32) -> RetryPolicy {
        RetryPolicy {
            on_error: true,
            on_timeout: true,
            on_invalid_header: false,
            on_status: Box::new([]),
            non_idempotent: false,
            tries,
            timeout: None,
        }
    }

    fn addrs(n: u16) -> Vec<SocketAddr> {
        (1..=n)
            .map(|p| SocketAddr::from(([127, 0, 0, 1], p)))
            .collect()
    }

    /// The endpoints attempts go to, from the one at `first`.
    fn walk(r: &RetryPolicy, all: &[SocketAddr], first: usize) -> Vec<u16> {
        let start = Instant::now();
        let mut tried = Tried::default();
        let mut at = Upstream::Addr(all[first]);
        let mut seen = vec![all[first].port()];
        let mut attempt = 1;
        while may_retry(r, all.len(), attempt, start, None) {
            let Some(i) = tried.next(all, &at, None, None) else {
                break;
            };
            seen.push(all[i].port());
            at = Upstream::Addr(all[i]);
            attempt += 1;
        }
        seen
    }

    #[test]
    fn attempts_go_round_the_endpoints_once_at_most() {
        let all = addrs(3);
        assert_eq!(walk(&policy(0), &all, 1), [2, 3, 1]);
        assert_eq!(walk(&policy(2), &all, 2), [3, 1]);
        assert_eq!(walk(&policy(10), &all, 0), [1, 2, 3]);
        assert_eq!(walk(&policy(1), &all, 0), [1]);
    }

    #[test]
    fn a_retry_passes_over_ejected_endpoints_while_another_is_left() {
        let all = addrs(4);
        let mut tried = Tried::default();
        let at = Upstream::Addr(all[0]);
        // Endpoint 1 (port 2) is ejected: 2 comes first.
        assert_eq!(tried.next(&all, &at, None, Some(0b0010)), Some(2));
        // Everything untried is ejected: an ejected one rather than none.
        let mut tried = Tried::default();
        assert_eq!(tried.next(&all, &at, None, Some(0b1110)), Some(1));
    }

    #[test]
    fn the_budget_allows_a_share_of_requests_plus_a_minimum() {
        let b = Budget::default();
        let mut granted = 0;
        for _ in 0..500 {
            b.request();
            granted += usize::from(b.take());
        }
        assert_eq!(
            granted,
            500 * BUDGET_PERCENT as usize / 100 + BUDGET_MIN as usize
        );
    }
}
