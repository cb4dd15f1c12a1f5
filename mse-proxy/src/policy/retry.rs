//! The exchange's timeouts and retries of routes with an [`ExchangePolicy`] (`timeout`,
//! `proxy-connect-timeout`, `proxy-read-timeout`, `proxy-next-upstream*`).
//!
//! A failed attempt is tried again on the next endpoint of the cluster, in round-robin
//! order from the one that failed, so that no endpoint is tried twice; only while nothing
//! of the answer went to the client (every attempt ends at its response head), only for
//! idempotent methods unless `non_idempotent` is set, and only with a body that was read
//! whole first (at most [`MAX_BUFFERED`] bytes of declared length): a streaming body is
//! never sent twice. Retries are budgeted per worker ([`Budget`]): at most
//! [`BUDGET_PERCENT`] % of the requests of retrying routes, plus [`BUDGET_MIN`], so that a
//! failing backend never gets a multiple of the load.

use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::Request;
use http_body::Body;
use http_body_util::{BodyExt, Full};
use mse_router::{ExchangePolicy, RetryPolicy};
use tokio::time::Instant;

use crate::body::RequestBody;
use crate::error::ProxyError;
use crate::http1::HeadExtras;
use crate::proxy::Worker;
use crate::upstream::{Sent, Upstream, idempotent};

/// The policy of a route without one, when the gateway-wide `downstream.routeTimeout`
/// bounds every request.
pub(crate) static NONE: ExchangePolicy = ExchangePolicy {
    total: None,
    connect: None,
    read: None,
    retry: None,
};

/// The largest request body read whole so that it can be sent again.
pub(crate) const MAX_BUFFERED: u64 = 64 * 1024;
/// Retries allowed per 100 requests of retrying routes.
pub(crate) const BUDGET_PERCENT: u32 = 20;
/// Retries allowed beyond the share, so that a quiet worker may retry at all.
pub(crate) const BUDGET_MIN: u32 = 10;
/// Past this many requests both counts are halved: the budget follows recent traffic.
const BUDGET_SPAN: u32 = 1000;

/// One worker's retry budget: plain counters, as the worker is one thread.
#[derive(Default)]
pub(crate) struct Budget {
    requests: Cell<u32>,
    retries: Cell<u32>,
}

// === impl Budget ===

impl Budget {
    /// Counts a request that may be retried.
    fn request(&self) {
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
/// that gave it. `endpoints`: the cluster's endpoints, for retries.
pub(crate) async fn send(
    worker: &Worker,
    policy: &ExchangePolicy,
    first: Upstream,
    endpoints: Option<&Arc<[SocketAddr]>>,
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
    if retry.is_some() {
        worker.budget.request();
    }
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
        let next = match (again, retry, endpoints) {
            (true, Some(r), Some(all)) => next_endpoint(r, all, &upstream, attempt, start, total)
                .filter(|_| {
                    let granted = worker.budget.take();
                    worker.metrics.retry(granted);
                    granted
                }),
            _ => None,
        };
        match next {
            Some(next) => {
                tracing::debug!(%upstream, %next, attempt, "retrying on another endpoint");
                // The failed attempt's connection, if any, is dropped here: closed.
                drop(sent);
                upstream = next;
                attempt += 1;
            }
            None => return sent.map(|s| (s, upstream)),
        }
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

/// The endpoint after `current` in the cluster's order, when another attempt is allowed:
/// within `proxy-next-upstream-tries` and `-timeout`, the whole request's `timeout`, and
/// not past the endpoints (attempt `k` goes to the `k`-th endpoint after the first).
fn next_endpoint(
    r: &RetryPolicy,
    all: &[SocketAddr],
    current: &Upstream,
    attempt: u32,
    start: Instant,
    total: Option<Instant>,
) -> Option<Upstream> {
    let n = all.len();
    let tries = match r.tries {
        0 => n,
        t => (t as usize).min(n),
    };
    let now = Instant::now();
    if attempt as usize >= tries
        || r.timeout.is_some_and(|t| now >= start + t)
        || total.is_some_and(|at| now >= at)
    {
        return None;
    }
    let Upstream::Addr(addr) = current else {
        return None;
    };
    let i = all.iter().position(|a| a == addr)?;
    all.get((i + 1) % n).map(|a| Upstream::Addr(*a))
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
        let mut at = Upstream::Addr(all[first]);
        let mut seen = vec![all[first].port()];
        let mut attempt = 1;
        while let Some(next) = next_endpoint(r, all, &at, attempt, start, None) {
            let Upstream::Addr(a) = next else {
                unreachable!("only addresses")
            };
            seen.push(a.port());
            at = next;
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
