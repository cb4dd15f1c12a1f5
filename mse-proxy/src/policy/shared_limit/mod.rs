//! Limits shared by the replicas in the access phase: MSE `rate-limit` and
//! `concurrency-limit` (configuration in [`mse_router::SharedLimits`]), counted in Redis
//! when the global configuration names one (`--redis-url`, `redis-url`).
//!
//! Each limited route has one [`SharedLimiter`] per process, shared by every worker,
//! carried over to a newly published table for the same route with the same limits.
//!
//! **Rate.** Redis keeps one GCRA bucket per route (`rate-limit` tokens per
//! [`SharedLimitConfig::rate_window`], holding `rate-limit` tokens), read and updated by
//! one Lua script on Redis's clock. A replica does not ask for every request: it leases a
//! batch of tokens and spends them locally. The batch starts at one token, doubles each
//! time a lease is used up, and is at most an eighth of the limit (and [`MAX_BATCH`]); a lease is good for an
//! eighth of the window, after which its unspent tokens are dropped. Accuracy: no more
//! requests pass than the shared bucket hands out, but a token may be spent up to an
//! eighth of a window after Redis handed it out; and tokens a replica leased and did not
//! spend are lost, so while a lease is open another replica may be refused although the
//! route as a whole is under its limit (at most one batch per replica).
//!
//! **Concurrency.** Redis keeps, per route, how many slots each replica holds (one Lua
//! script sets a replica's holding as far as the limit leaves room beside the others'). A
//! replica admits a request while its requests in flight are fewer than the slots it
//! holds, and asks Redis for more only when they are not, for its requests in flight plus
//! one plus a headroom of a sixteenth of the limit. Every
//! [`SharedLimitConfig::probe_interval`] it sets its holding to what it has in flight, so
//! that idle slots go back to the others; the holdings of a replica that stops renewing
//! them expire. Accuracy: never more requests in flight than the limit while Redis is up
//! (a restarted Redis forgets holdings until the next renewal), but a replica may be
//! refused while another holds idle headroom, until that renewal.
//!
//! **Redis down or slow.** A request waits for Redis at most
//! [`SharedLimitConfig::timeout`]; a failed or late call marks Redis down, and then every
//! request is decided at once by the replica's own limit: the whole `rate-limit` (a
//! local GCRA bucket of the same size) and the whole `concurrency-limit`, for this
//! replica alone, as without Redis. The `mse_redis_limit_fallback` gauge is 1 meanwhile
//! and a warning is logged; the Redis thread tries again every probe interval, and once
//! a `PING` answers the limits are shared again.

mod redis;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, LOCATION};
use http::{HeaderValue, Response, StatusCode};
use mse_model::ObjectKey;
use mse_router::{LimitAnswer, Location, RedirectVars, RouteTable, SharedLimit, SharedLimits};
use tokio::sync::oneshot;

pub use self::redis::SharedLimitConfig;
pub(crate) use self::redis::{Hub, RedisMetrics};
use self::redis::{Job, Redis};

/// The most tokens one lease holds.
pub(crate) const MAX_BATCH: u32 = 1024;

/// The shared limits of one route, in one process.
#[derive(Debug)]
pub(crate) struct SharedLimiter {
    limits: SharedLimits,
    redis: Option<Arc<Redis>>,
    window: Duration,
    rate: Option<RateState>,
    conc: Option<ConcState>,
}

/// `rate-limit`: the lease of tokens, and the local bucket for when Redis is down.
#[derive(Debug)]
struct RateState {
    key: Arc<str>,
    lease: Mutex<Lease>,
    /// One refill at a time; the others wait for it and spend what it brought.
    refill: tokio::sync::Mutex<()>,
    /// The local bucket: its theoretical arrival time, in nanoseconds from `base`.
    local: AtomicU64,
    base: Instant,
}

#[derive(Debug)]
struct Lease {
    tokens: u32,
    until: Instant,
    /// The tokens of this lease, and of the next one to ask for.
    size: u32,
    want: u32,
    /// Redis said its bucket is empty until then (in this epoch of Redis, see
    /// [`Redis::epoch`]): requests are refused without asking again.
    empty_until: Option<(Instant, u64)>,
}

/// `concurrency-limit`: requests in flight (low 32 bits) and slots held in Redis (high
/// 32 bits), in one word so that admitting and renewing never race.
#[derive(Debug)]
struct ConcState {
    keys: Arc<[Box<str>; 2]>,
    packed: AtomicU64,
    refill: tokio::sync::Mutex<()>,
}

/// A request counted against a route's `concurrency-limit` until dropped.
#[derive(Debug)]
pub(crate) struct SharedSlot(Arc<SharedLimiter>);

/// Which limit refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Over {
    Rate,
    Concurrency,
}

// === impl SharedLimiter ===

impl SharedLimiter {
    fn new(
        limits: &SharedLimits,
        (ingress, field): (&ObjectKey, &str),
        redis: Option<Arc<Redis>>,
        window: Duration,
    ) -> Arc<Self> {
        // One hash tag per route, so that its keys live together in a Redis cluster.
        let tag = format!(
            "mse:limit:{{{}/{}/{field}}}",
            ingress.namespace, ingress.name
        );
        let limiter = Arc::new(Self {
            limits: limits.clone(),
            window,
            rate: limits.rate.as_ref().map(|_| RateState {
                key: format!("{tag}:rate").into(),
                lease: Mutex::new(Lease {
                    tokens: 0,
                    until: Instant::now(),
                    size: 0,
                    want: 1,
                    empty_until: None,
                }),
                refill: tokio::sync::Mutex::new(()),
                local: AtomicU64::new(0),
                base: Instant::now(),
            }),
            conc: limits.concurrency.as_ref().map(|_| ConcState {
                keys: Arc::new([format!("{tag}:held").into(), format!("{tag}:expiry").into()]),
                packed: AtomicU64::new(0),
                refill: tokio::sync::Mutex::new(()),
            }),
            redis,
        });
        if let (Some(r), Some(_)) = (&limiter.redis, &limiter.conc) {
            r.hold_for(&limiter);
        }
        limiter
    }

    /// Admits a request, or gives the answer of the limit it is over. A request under
    /// `concurrency-limit` holds the returned slot until it ends.
    pub(crate) async fn admit(
        self: &Arc<Self>,
        vars: &RedirectVars<'_>,
    ) -> Result<Option<SharedSlot>, Response<Bytes>> {
        if let Some(rate) = &self.rate
            && !self.admit_rate(rate).await
        {
            return Err(self.answer(Over::Rate, vars));
        }
        let Some(conc) = &self.conc else {
            return Ok(None);
        };
        if self.admit_conc(conc).await {
            Ok(Some(SharedSlot(Arc::clone(self))))
        } else {
            Err(self.answer(Over::Concurrency, vars))
        }
    }

    /// The shared Redis, when one is configured and up; counts a local decision when it
    /// is configured and down.
    fn shared(&self) -> Option<&Arc<Redis>> {
        let r = self.redis.as_ref()?;
        if r.is_up() {
            return Some(r);
        }
        r.metrics.fell_back();
        None
    }

    fn rate_limit(&self) -> u32 {
        self.limits.rate.as_ref().map_or(1, |l| l.limit)
    }

    fn conc_limit(&self) -> u32 {
        self.limits.concurrency.as_ref().map_or(1, |l| l.limit)
    }

    /// The time one `rate-limit` token takes to come back, in nanoseconds.
    fn interval_nanos(&self) -> u64 {
        let window = u64::try_from(self.window.as_nanos()).unwrap_or(u64::MAX);
        (window / u64::from(self.rate_limit())).max(1)
    }

    async fn admit_rate(&self, rate: &RateState) -> bool {
        if rate.spend(Instant::now()) {
            return true;
        }
        let Some(redis) = self.shared() else {
            return self.local_rate(rate);
        };
        let bound = redis.config.timeout;
        let Ok(_one) = tokio::time::timeout(bound, rate.refill.lock()).await else {
            return self.local_rate(rate);
        };
        // Another request may have refilled the lease meanwhile.
        if rate.spend(Instant::now()) {
            return true;
        }
        if !redis.is_up() {
            redis.metrics.fell_back();
            return self.local_rate(rate);
        }
        let now = Instant::now();
        if rate.known_empty(now, redis.epoch()) {
            return false;
        }
        let max = (self.rate_limit() / 8).clamp(1, MAX_BATCH);
        let want = rate.next_want(max);
        let (reply, answer) = oneshot::channel();
        let job = Job::Lease {
            key: Arc::clone(&rate.key),
            interval_us: self.interval_nanos() as f64 / 1000.0,
            burst: self.rate_limit(),
            want,
            reply,
        };
        let epoch = redis.epoch();
        match redis.call(job, answer).await {
            Ok(n) if n > 0 => {
                let n = u32::try_from(n).unwrap_or(u32::MAX);
                rate.leased(n, Instant::now() + self.window / 8)
            }
            Ok(wait) => {
                let wait = Duration::from_micros(wait.unsigned_abs());
                rate.empty(Instant::now() + wait.min(self.window), epoch);
                false
            }
            Err(()) => {
                redis.metrics.fell_back();
                self.local_rate(rate)
            }
        }
    }

    /// The replica's own bucket: the whole limit, per window.
    fn local_rate(&self, rate: &RateState) -> bool {
        let now = u64::try_from(rate.base.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let t = self.interval_nanos();
        let burst = u128::from(t) * u128::from(self.rate_limit());
        let mut tat = rate.local.load(Ordering::Relaxed);
        loop {
            let new = tat.max(now).saturating_add(t);
            if u128::from(new - now) > burst {
                return false;
            }
            match (rate.local).compare_exchange_weak(tat, new, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(seen) => tat = seen,
            }
        }
    }

    async fn admit_conc(&self, conc: &ConcState) -> bool {
        let Some(redis) = self.shared() else {
            return conc.enter(|_| self.conc_limit());
        };
        if conc.enter(|held| held) {
            return true;
        }
        let bound = redis.config.timeout;
        let Ok(_one) = tokio::time::timeout(bound, conc.refill.lock()).await else {
            return conc.enter(|_| self.conc_limit());
        };
        if conc.enter(|held| held) {
            return true;
        }
        if !redis.is_up() {
            redis.metrics.fell_back();
            return conc.enter(|_| self.conc_limit());
        }
        let (in_flight, _) = conc.load();
        let headroom = self.conc_limit() / 16;
        let want = in_flight.saturating_add(1).saturating_add(headroom);
        let (reply, answer) = oneshot::channel();
        let job = Job::Hold {
            keys: Arc::clone(&conc.keys),
            want,
            limit: self.conc_limit(),
            reply,
        };
        match redis.call(job, answer).await {
            Ok(n) => {
                conc.set_held(u32::try_from(n).unwrap_or(0));
                conc.enter(|held| held)
            }
            Err(()) => {
                redis.metrics.fell_back();
                conc.enter(|_| self.conc_limit())
            }
        }
    }

    /// What to renew: the requests in flight (the slots held beyond them go back), and
    /// the limit; `None` when nothing is held or in flight.
    fn renewal(&self) -> Option<(u32, u32)> {
        let c = self.conc.as_ref()?;
        let (in_flight, held) = c.load();
        (in_flight > 0 || held > 0).then(|| {
            // Admit nothing beyond what is in flight until Redis answers.
            c.set_held(in_flight);
            (in_flight, self.conc_limit())
        })
    }

    fn renewed(&self, held: u32) {
        if let Some(c) = &self.conc {
            c.set_held(held);
        }
    }

    /// The `-fallback-*` answer of the limit a request is over.
    fn answer(&self, over: Over, vars: &RedirectVars<'_>) -> Response<Bytes> {
        let limit = match over {
            Over::Rate => self.limits.rate.as_ref(),
            Over::Concurrency => self.limits.concurrency.as_ref(),
        };
        answer(limit, vars)
    }
}

/// What a `-fallback-redirect-url` with request variables needs of the request.
pub(crate) fn vars<'a, B>(
    tls: bool,
    req: &'a http::Request<B>,
    host: &'a str,
    path: &'a str,
) -> RedirectVars<'a> {
    RedirectVars {
        scheme: if tls { "https" } else { "http" },
        host: crate::policy::redirect::host_without_port(host),
        request_uri: req
            .uri()
            .path_and_query()
            .map_or("/", http::uri::PathAndQuery::as_str),
        uri: path,
    }
}

fn answer(limit: Option<&SharedLimit>, vars: &RedirectVars<'_>) -> Response<Bytes> {
    let mut r = Response::new(Bytes::new());
    match limit.map(|l| &l.answer) {
        Some(LimitAnswer::Respond {
            status,
            content_type,
            body,
        }) => {
            *r.body_mut() = Bytes::copy_from_slice(body.as_bytes());
            *r.status_mut() = *status;
            r.headers_mut().insert(CONTENT_TYPE, content_type.clone());
        }
        Some(LimitAnswer::Redirect(location)) => {
            let value = match location {
                Location::Fixed(v) => Some(v.clone()),
                Location::Template(t) => HeaderValue::from_str(&vars.render(t)).ok(),
            };
            *r.status_mut() = StatusCode::FOUND;
            if let Some(v) = value {
                r.headers_mut().insert(LOCATION, v);
            }
        }
        None => *r.status_mut() = StatusCode::TOO_MANY_REQUESTS,
    }
    r
}

// === impl RateState ===

impl RateState {
    /// Spends a leased token, when the lease has one and is still good.
    fn spend(&self, now: Instant) -> bool {
        let mut l = self.lease.lock().unwrap_or_else(PoisonError::into_inner);
        if l.tokens > 0 && now < l.until {
            l.tokens -= 1;
            true
        } else {
            false
        }
    }

    /// The size of the next lease: double the last when it was spent, what was spent of
    /// it when it expired with tokens left; at most `max`.
    fn next_want(&self, max: u32) -> u32 {
        let mut l = self.lease.lock().unwrap_or_else(PoisonError::into_inner);
        let want = if l.tokens == 0 {
            l.want.saturating_mul(2)
        } else {
            l.size - l.tokens
        };
        l.want = want.clamp(1, max);
        l.want
    }

    /// Takes a lease of `n` (at least 1) tokens good `until`, spending one for the
    /// request asking.
    fn leased(&self, n: u32, until: Instant) -> bool {
        let mut l = self.lease.lock().unwrap_or_else(PoisonError::into_inner);
        l.size = n;
        l.tokens = n.saturating_sub(1);
        l.until = until;
        l.empty_until = None;
        n > 0
    }

    /// Redis's bucket is empty until `until`; the next lease starts small again.
    fn empty(&self, until: Instant, epoch: u64) {
        let mut l = self.lease.lock().unwrap_or_else(PoisonError::into_inner);
        l.size = 0;
        l.tokens = 0;
        l.want = 1;
        l.empty_until = Some((until, epoch));
    }

    /// Whether Redis said, in this `epoch`, that its bucket is empty at `now`.
    fn known_empty(&self, now: Instant, epoch: u64) -> bool {
        let l = self.lease.lock().unwrap_or_else(PoisonError::into_inner);
        l.empty_until
            .is_some_and(|(until, e)| e == epoch && now < until)
    }
}

// === impl ConcState ===

impl ConcState {
    /// (requests in flight, slots held).
    fn load(&self) -> (u32, u32) {
        split(self.packed.load(Ordering::Acquire))
    }

    /// Counts a request in when fewer than `bound(held)` are in flight.
    fn enter(&self, bound: impl Fn(u32) -> u32) -> bool {
        let mut cur = self.packed.load(Ordering::Acquire);
        loop {
            let (in_flight, held) = split(cur);
            if in_flight >= bound(held) {
                return false;
            }
            match self.packed.compare_exchange_weak(
                cur,
                cur + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(seen) => cur = seen,
            }
        }
    }

    fn leave(&self) {
        self.packed.fetch_sub(1, Ordering::AcqRel);
    }

    fn set_held(&self, held: u32) {
        let mut cur = self.packed.load(Ordering::Acquire);
        loop {
            let next = (u64::from(held) << 32) | (cur & u64::from(u32::MAX));
            match self
                .packed
                .compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return,
                Err(seen) => cur = seen,
            }
        }
    }
}

fn split(packed: u64) -> (u32, u32) {
    // Truncation intended: the two halves of the word.
    ((packed & u64::from(u32::MAX)) as u32, (packed >> 32) as u32)
}

// === impl SharedSlot ===

impl Drop for SharedSlot {
    fn drop(&mut self) {
        if let Some(c) = &self.0.conc {
            c.leave();
        }
    }
}

/// The shared limiters of a table's routes, by route id: carried over from `previous`
/// for the same route with the same limits and the same Redis, new otherwise.
pub(crate) fn plan(
    routes: &RouteTable,
    previous: Option<(&RouteTable, &[Option<Arc<SharedLimiter>>])>,
    hub: &Hub,
) -> Box<[Option<Arc<SharedLimiter>>]> {
    let needed = (routes.routes().iter())
        .any(|r| r.policy.as_ref().is_some_and(|p| p.shared_limits.is_some()));
    if !needed {
        return Box::default();
    }
    let redis = hub.redis(routes.global().redis_url.as_deref());
    let window = hub.window();
    let mut old: HashMap<(&ObjectKey, &str), &Arc<SharedLimiter>> = HashMap::new();
    if let Some((table, limiters)) = previous {
        for (r, l) in table.routes().iter().zip(limiters) {
            if let Some(l) = l {
                old.insert((&r.ingress, &r.field), l);
            }
        }
    }
    routes
        .routes()
        .iter()
        .map(|r| {
            let limits = r.policy.as_ref()?.shared_limits.as_deref()?;
            let kept = old.remove(&(&r.ingress, &*r.field)).filter(|l| {
                l.limits == *limits
                    && l.window == window
                    && match (&l.redis, &redis) {
                        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                        (None, None) => true,
                        _ => false,
                    }
            });
            Some(kept.map_or_else(
                || SharedLimiter::new(limits, (&r.ingress, &r.field), redis.clone(), window),
                Arc::clone,
            ))
        })
        .collect()
}

/// One route's shared `rate-limit` outside a gateway, for the benchmark of the request
/// path's cost (`benches/shared_limit.rs`); not an API.
#[doc(hidden)]
#[derive(Debug)]
pub struct BenchLimiter {
    limiter: Arc<SharedLimiter>,
}

impl BenchLimiter {
    /// A `rate-limit` of `limit` per `window`, counted in the Redis at `url` (or, without
    /// one, by this process alone). Call from within a tokio runtime with timers.
    pub fn new(url: Option<&str>, limit: u32, window: Duration) -> Self {
        let hub = Hub::new(RedisMetrics::default());
        hub.tune(&SharedLimitConfig {
            rate_window: window,
            ..SharedLimitConfig::default()
        });
        let limits = SharedLimits {
            rate: Some(SharedLimit {
                limit,
                answer: LimitAnswer::Respond {
                    status: StatusCode::TOO_MANY_REQUESTS,
                    content_type: HeaderValue::from_static("text/plain"),
                    body: "".into(),
                },
            }),
            concurrency: None,
        };
        let key = ObjectKey::new(
            mse_model::Kind::Ingress,
            "bench",
            format!("{:x}", fastrand::u64(..)),
        );
        let redis = hub.redis(url);
        Self {
            limiter: SharedLimiter::new(&limits, (&key, "r"), redis, hub.window()),
        }
    }

    /// Admits one request: whether it passes.
    pub async fn admit(&self) -> bool {
        match &self.limiter.rate {
            Some(rate) => self.limiter.admit_rate(rate).await,
            None => true,
        }
    }

    /// The calls made to Redis so far.
    pub fn redis_calls(&self) -> u64 {
        self.limiter.redis.as_ref().map_or(0, |r| r.metrics.calls())
    }
}

#[cfg(test)]
mod tests;
