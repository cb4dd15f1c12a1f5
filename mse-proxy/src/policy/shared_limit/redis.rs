//! The Redis side of the shared limits: one connection per gateway process, driven by a
//! thread of its own, two Lua scripts (each one atomic call), and the health of the
//! connection.
//!
//! The request path never talks to Redis itself: it hands a [`Job`] to the thread and
//! waits for the answer at most [`SharedLimitConfig::timeout`]. A call that fails or
//! times out marks Redis down: from then on every request is decided by the replica's
//! own (local) limit, without waiting, until the thread's probe (every
//! [`SharedLimitConfig::probe_interval`]) connects again and a `PING` answers.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use redis::aio::MultiplexedConnection;
use tokio::sync::{mpsc, oneshot};

use super::SharedLimiter;

/// How the limits shared through Redis behave ([`crate::ProxyConfig::shared_limits`]).
/// The Redis itself is named by the global configuration (`--redis-url`, `redis-url`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SharedLimitConfig {
    /// The longest a request waits for Redis (connecting included) before it is decided
    /// by the replica's own limit and Redis is marked down (100 ms).
    pub timeout: Duration,
    /// How often a down Redis is tried again, and how often a replica renews the
    /// `concurrency-limit` slots it holds (1 s). Slots of a replica that stopped renewing
    /// them return to the others after five intervals, and at least 2 s.
    pub probe_interval: Duration,
    /// The period `rate-limit` counts over: one second, as MSE defines it. Longer periods
    /// make "requests per period" countable in tests.
    pub rate_window: Duration,
}

impl Default for SharedLimitConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_millis(100),
            probe_interval: Duration::from_secs(1),
            rate_window: Duration::from_secs(1),
        }
    }
}

impl SharedLimitConfig {
    /// How long Redis keeps the `concurrency-limit` slots of a replica that stopped
    /// renewing them.
    pub(crate) fn hold_ttl(&self) -> Duration {
        (self.probe_interval * 5).max(Duration::from_secs(2))
    }
}

/// The metrics of the shared limits, on the admin `/metrics`.
#[derive(Clone, Debug, Default)]
pub(crate) struct RedisMetrics {
    /// Calls to Redis (one per batch of tokens or slots, one per renewal).
    calls: Counter,
    /// Calls that failed or timed out, and failed reconnections.
    errors: Counter,
    /// 1 while Redis is configured and down: the replicas' own limits apply.
    fallback: Gauge,
    /// Requests decided by the replica's own limit because Redis was down.
    fallback_decisions: Counter,
}

impl RedisMetrics {
    /// Registers them under `reg` (prefix `mse_`).
    pub(crate) fn register(reg: &mut Registry) -> Self {
        let m = Self::default();
        reg.register(
            "redis_limit_calls",
            "Calls to Redis for rate-limit and concurrency-limit (one per batch of tokens or slots)",
            m.calls.clone(),
        );
        reg.register(
            "redis_limit_errors",
            "Calls to Redis for shared limits that failed or timed out, and failed reconnections",
            m.errors.clone(),
        );
        reg.register(
            "redis_limit_fallback",
            "1 while Redis is configured but down: each replica enforces rate-limit and concurrency-limit on its own",
            m.fallback.clone(),
        );
        reg.register(
            "redis_limit_fallback_decisions",
            "Requests decided by the replica's own limit because Redis was down",
            m.fallback_decisions.clone(),
        );
        m
    }

    pub(crate) fn fell_back(&self) {
        self.fallback_decisions.inc();
    }

    /// The calls made so far.
    pub(crate) fn calls(&self) -> u64 {
        self.calls.get()
    }
}

/// GCRA over a batch: takes up to `want` tokens of a bucket of `burst` tokens that
/// refills one token every `interval` microseconds, on Redis's clock. Returns how many
/// it took, or when it has none, minus the microseconds until the next one comes.
const LEASE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local n = math.floor((burst * interval - (tat - now)) / interval)
if n > want then n = want end
if n <= 0 then
  local wait = math.ceil(tat + interval - burst * interval - now)
  if wait < 1 then wait = 1 end
  return -wait
end
tat = tat + n * interval
redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1000)
return n
";

/// Sets how many slots replica ARGV[1] holds: up to ARGV[2], as far as the limit ARGV[3]
/// leaves room beside the other replicas' live holdings. KEYS[1] is a hash of holdings
/// by replica, KEYS[2] a sorted set of when each expires (ARGV[4] ms from now). Returns
/// what it holds now.
const HOLD: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local me = ARGV[1]
local want = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
for _, r in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)) do
  redis.call('HDEL', KEYS[1], r)
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local others = 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if all[i] ~= me then others = others + tonumber(all[i + 1]) end
end
local room = limit - others
if room < 0 then room = 0 end
local n = want
if n > room then n = room end
if n > 0 then
  redis.call('HSET', KEYS[1], me, n)
  redis.call('ZADD', KEYS[2], now + ttl, me)
else
  n = 0
  redis.call('HDEL', KEYS[1], me)
  redis.call('ZREM', KEYS[2], me)
end
redis.call('PEXPIRE', KEYS[1], ttl * 2)
redis.call('PEXPIRE', KEYS[2], ttl * 2)
return n
";

/// One call the request path (or the renewal) asks of the Redis thread.
pub(crate) enum Job {
    /// [`LEASE`]: `rate-limit` tokens.
    Lease {
        key: Arc<str>,
        interval_us: f64,
        burst: u32,
        want: u32,
        reply: oneshot::Sender<Result<i64, ()>>,
    },
    /// [`HOLD`]: `concurrency-limit` slots.
    Hold {
        keys: Arc<[Box<str>; 2]>,
        want: u32,
        limit: u32,
        reply: oneshot::Sender<Result<i64, ()>>,
    },
}

/// The connection to one Redis, shared by every route's limiter of a process.
#[derive(Debug)]
pub(crate) struct Redis {
    jobs: mpsc::Sender<Job>,
    up: AtomicBool,
    /// How many times Redis came back: what a replica learnt of the Redis before (that
    /// a bucket is empty) no longer holds.
    epoch: AtomicU64,
    pub(crate) config: SharedLimitConfig,
    pub(crate) metrics: RedisMetrics,
    /// This process's name in the `concurrency-limit` holdings.
    pub(crate) replica: Arc<str>,
    /// The URL as logs show it (no password).
    shown: String,
    /// The limiters whose `concurrency-limit` slots the thread renews.
    holders: Mutex<Vec<Weak<SharedLimiter>>>,
}

// === impl Redis ===

impl Redis {
    /// Whether calls may be made (Redis was not found down).
    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// How many times Redis came back after being down.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Sends `job` and waits for its answer at most the configured timeout; `Err` (and
    /// Redis marked down) when it cannot be sent, fails or takes longer.
    pub(crate) async fn call(
        &self,
        job: Job,
        reply: oneshot::Receiver<Result<i64, ()>>,
    ) -> Result<i64, ()> {
        if self.jobs.try_send(job).is_err() {
            self.down("the queue of calls to Redis is full");
            return Err(());
        }
        match tokio::time::timeout(self.config.timeout, reply).await {
            Ok(Ok(Ok(n))) => Ok(n),
            Ok(_) => Err(()),
            Err(_) => {
                self.metrics.errors.inc();
                self.down("no answer in time");
                Err(())
            }
        }
    }

    /// Marks Redis down (logged once per outage).
    fn down(&self, why: &str) {
        if self.up.swap(false, Ordering::Relaxed) {
            self.metrics.fallback.set(1);
            tracing::warn!(
                redis = %self.shown,
                error = why,
                "Redis unreachable: rate-limit and concurrency-limit are enforced per replica until it answers again"
            );
        }
    }

    fn back_up(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        if !self.up.swap(true, Ordering::Relaxed) {
            self.metrics.fallback.set(0);
            tracing::info!(redis = %self.shown, "Redis answers again: rate-limit and concurrency-limit are shared by the replicas again");
        }
    }

    /// Has the thread renew `limiter`'s `concurrency-limit` slots.
    pub(crate) fn hold_for(&self, limiter: &Arc<SharedLimiter>) {
        let mut h = self.holders.lock().unwrap_or_else(PoisonError::into_inner);
        h.retain(|w| w.strong_count() > 0);
        h.push(Arc::downgrade(limiter));
    }

    fn holders(&self) -> Vec<Arc<SharedLimiter>> {
        let h = self.holders.lock().unwrap_or_else(PoisonError::into_inner);
        h.iter().filter_map(Weak::upgrade).collect()
    }
}

/// Starts the thread of a connection to `url`. `None` when the thread cannot be started
/// (logged): the limits are then enforced per replica.
pub(crate) fn start(
    url: &str,
    config: SharedLimitConfig,
    metrics: RedisMetrics,
    replica: Arc<str>,
) -> Option<Arc<Redis>> {
    let shown = redacted(url);
    let client = match redis::Client::open(url) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(redis = %shown, error = %e, "the Redis URL cannot be used: rate-limit and concurrency-limit are enforced per replica");
            return None;
        }
    };
    let (jobs, rx) = mpsc::channel(4096);
    let redis = Arc::new(Redis {
        jobs,
        up: AtomicBool::new(true),
        epoch: AtomicU64::new(0),
        config,
        metrics,
        replica,
        shown,
        holders: Mutex::default(),
    });
    let weak = Arc::downgrade(&redis);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let started = runtime.and_then(|rt| {
        std::thread::Builder::new()
            .name("mse-redis".to_owned())
            .spawn(move || rt.block_on(run(client, weak, rx)))
    });
    if let Err(e) = started {
        tracing::error!(error = %e, "the Redis thread cannot start: rate-limit and concurrency-limit are enforced per replica");
        return None;
    }
    Some(redis)
}

/// The thread's loop: runs jobs (each on a task of its own, over one multiplexed
/// connection), probes a down Redis and renews the slots held. Ends when every
/// [`Redis`] handle is gone.
async fn run(client: redis::Client, redis: Weak<Redis>, mut jobs: mpsc::Receiver<Job>) {
    let Some(config) = redis.upgrade().map(|r| r.config.clone()) else {
        return;
    };
    let lease = redis::Script::new(LEASE);
    let hold = redis::Script::new(HOLD);
    let mut conn: Option<MultiplexedConnection> = None;
    let mut tick = tokio::time::interval(config.probe_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            job = jobs.recv() => {
                let Some(job) = job else { return };
                let Some(r) = redis.upgrade() else { return };
                if conn.is_none() {
                    conn = connect(&client, &r).await;
                }
                let Some(c) = conn.clone() else {
                    fail(job);
                    continue;
                };
                let (lease, hold) = (lease.clone(), hold.clone());
                tokio::spawn(async move { run_job(&r, c, job, (&lease, &hold)).await });
            }
            _ = tick.tick() => {
                let Some(r) = redis.upgrade() else { return };
                if !r.is_up() {
                    conn = None;
                    if let Some(c) = connect(&client, &r).await {
                        if ping(&c, config.timeout).await {
                            conn = Some(c.clone());
                            // Holdings first, so that no replica counts on slots Redis
                            // no longer knows (after a restart).
                            renew(&r, &c, &hold).await;
                            r.back_up();
                        } else {
                            r.metrics.errors.inc();
                        }
                    }
                } else if let Some(c) = &conn {
                    // Found down here too when no request asks (a replica that knows
                    // a bucket is empty does not).
                    if ping(c, config.timeout).await {
                        renew(&r, c, &hold).await;
                    } else {
                        r.metrics.errors.inc();
                        r.down("no answer to PING");
                    }
                }
            }
        }
    }
}

/// Whether Redis answers `PING` within `timeout`.
async fn ping(c: &MultiplexedConnection, timeout: Duration) -> bool {
    let mut c = c.clone();
    let cmd = redis::cmd("PING");
    let answer = cmd.query_async::<String>(&mut c);
    matches!(tokio::time::timeout(timeout, answer).await, Ok(Ok(_)))
}

async fn connect(client: &redis::Client, r: &Redis) -> Option<MultiplexedConnection> {
    let timeout = r.config.timeout;
    let attempt = client.get_multiplexed_async_connection();
    match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok(c)) => Some(c),
        Ok(Err(e)) => {
            r.metrics.errors.inc();
            r.down(&e.to_string());
            None
        }
        Err(_) => {
            r.metrics.errors.inc();
            r.down("connecting took too long");
            None
        }
    }
}

fn fail(job: Job) {
    let (Job::Lease { reply, .. } | Job::Hold { reply, .. }) = job;
    let _ = reply.send(Err(()));
}

async fn run_job(
    r: &Redis,
    mut c: MultiplexedConnection,
    job: Job,
    (lease, hold): (&redis::Script, &redis::Script),
) {
    r.metrics.calls.inc();
    let timeout = r.config.timeout;
    let (result, reply) = match job {
        Job::Lease {
            key,
            interval_us,
            burst,
            want,
            reply,
        } => {
            let mut call = lease.key(&*key);
            call.arg(interval_us).arg(burst).arg(want);
            let answer = tokio::time::timeout(timeout, call.invoke_async::<i64>(&mut c)).await;
            (answer, reply)
        }
        Job::Hold {
            keys,
            want,
            limit,
            reply,
        } => {
            let ttl = u64::try_from(r.config.hold_ttl().as_millis()).unwrap_or(u64::MAX);
            let mut call = hold.key(&*keys[0]);
            call.key(&*keys[1])
                .arg(&*r.replica)
                .arg(want)
                .arg(limit)
                .arg(ttl);
            let answer = tokio::time::timeout(timeout, call.invoke_async::<i64>(&mut c)).await;
            (answer, reply)
        }
    };
    let answer = match result {
        Ok(Ok(n)) => Ok(n),
        Ok(Err(e)) => {
            r.metrics.errors.inc();
            r.down(&e.to_string());
            Err(())
        }
        Err(_) => {
            r.metrics.errors.inc();
            r.down("no answer in time");
            Err(())
        }
    };
    let _ = reply.send(answer);
}

/// Renews the slots every limiter holds: each holds what it has in flight, so that
/// slots it no longer uses go back to the other replicas.
async fn renew(r: &Arc<Redis>, c: &MultiplexedConnection, hold: &redis::Script) {
    for limiter in r.holders() {
        let Some(conc) = &limiter.conc else {
            continue;
        };
        // No refill of the request path in between: it would be undone.
        let _one = conc.refill.lock().await;
        let keys = Arc::clone(&conc.keys);
        let Some((want, limit)) = limiter.renewal() else {
            continue;
        };
        let (reply, answer) = oneshot::channel();
        let job = Job::Hold {
            keys,
            want,
            limit,
            reply,
        };
        run_job(r, c.clone(), job, (hold, hold)).await;
        if let Ok(Ok(n)) = answer.await {
            limiter.renewed(u32::try_from(n).unwrap_or(0));
        }
    }
}

/// `url` without its password.
fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find('/').unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => {
            let user = rest[..at].split_once(':').map_or(&rest[..at], |(u, _)| u);
            format!("{scheme}://{user}:***{}", &rest[at..])
        }
        None => url.to_owned(),
    }
}

/// The Redis of the current global configuration, kept across tables: one connection
/// (and thread) per URL, made when a table first names it.
#[derive(Debug)]
pub(crate) struct Hub {
    metrics: RedisMetrics,
    config: Mutex<SharedLimitConfig>,
    current: Mutex<Option<(String, Arc<Redis>)>>,
    replica: Arc<str>,
}

impl Hub {
    pub(crate) fn new(metrics: RedisMetrics) -> Self {
        let replica = format!("{:016x}", fastrand::u64(..));
        Self {
            metrics,
            config: Mutex::default(),
            current: Mutex::default(),
            replica: replica.into(),
        }
    }

    /// Takes the gateway's configuration; a different one starts a new connection.
    pub(crate) fn tune(&self, config: &SharedLimitConfig) {
        let mut c = self.config.lock().unwrap_or_else(PoisonError::into_inner);
        if *c != *config {
            *c = config.clone();
            *self.current.lock().unwrap_or_else(PoisonError::into_inner) = None;
        }
    }

    /// The period `rate-limit` counts over.
    pub(crate) fn window(&self) -> Duration {
        let c = self.config.lock().unwrap_or_else(PoisonError::into_inner);
        c.rate_window
    }

    /// The connection to `url` (started on first use); `None` without a URL.
    pub(crate) fn redis(&self, url: Option<&str>) -> Option<Arc<Redis>> {
        let url = url?;
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((u, r)) = current.as_ref()
            && u == url
        {
            return Some(Arc::clone(r));
        }
        let config = self
            .config
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let r = start(url, config, self.metrics.clone(), Arc::clone(&self.replica))?;
        *current = Some((url.to_owned(), Arc::clone(&r)));
        Some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_stay_out_of_logs() {
        assert_eq!(
            redacted("redis://:s3cret@redis:6379/0"),
            "redis://:***@redis:6379/0"
        );
        assert_eq!(
            redacted("redis://app:s3cret@redis/1"),
            "redis://app:***@redis/1"
        );
        assert_eq!(redacted("redis://redis:6379"), "redis://redis:6379");
    }
}
