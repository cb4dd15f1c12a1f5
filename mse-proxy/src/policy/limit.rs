//! Local rate and connection limits in the access phase (`route-limit-*`, `limit-*`;
//! configuration and semantics in [`mse_router::LocalLimits`]).
//!
//! Each limited route has one [`Limiter`], shared by every worker, so that a limit holds
//! for the whole replica. Buckets are kept as a GCRA: the theoretical arrival time of
//! the next request, in nanoseconds from the limiter's start; a request passes when that
//! time, pushed one interval further, is at most `burst` intervals ahead of now. A
//! full bucket is a time in the past, so a new or forgotten client starts with exactly
//! its burst and never more.
//!
//! The per-client state lives in [`SHARDS`] maps behind a short lock each, at most
//! [`PER_SHARD`] clients per map. When a map is full, the clients whose buckets are full
//! again and who hold no request are forgotten first (nothing is lost), then the one
//! closest to a full bucket; a client holding requests is never forgotten, and when every
//! client of a full map holds one, a new client is refused as over the limit.
//!
//! Limiters carry over to a newly published table for the same route (Ingress and
//! field) with the same limits, so that publishing a table neither refills buckets nor
//! loses connection counts.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Response, StatusCode};
use mse_model::ObjectKey;
use mse_router::{LocalLimits, Rate, RouteTable};

use crate::policy::shared_limit::SharedSlot;

/// How many maps the per-client state of a route is spread over.
pub(crate) const SHARDS: usize = 16;
/// The most clients one map remembers: with [`SHARDS`], the most per route.
pub(crate) const PER_SHARD: usize = 1024;

/// The buckets and counts of one route.
#[derive(Debug)]
pub(crate) struct Limiter {
    limits: LocalLimits,
    base: Instant,
    /// `route-limit-*`: the route's bucket (its theoretical arrival time).
    route: AtomicU64,
    /// `limit-*`: per client; empty without per-client limits.
    shards: Box<[Mutex<Shard>]>,
    hasher: std::collections::hash_map::RandomState,
}

#[derive(Debug, Default)]
struct Shard {
    clients: HashMap<IpAddr, Client>,
}

/// One client's buckets and requests in flight.
#[derive(Clone, Copy, Debug, Default)]
struct Client {
    rps: u64,
    rpm: u64,
    in_flight: u32,
}

/// Why a request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Over {
    /// `route-limit-*`.
    Route,
    /// `limit-rps` or `limit-rpm` (or no room to remember the client).
    ClientRate,
    /// `limit-connections`.
    Connections,
}

/// A request counted against its client's `limit-connections`, or its route's
/// `concurrency-limit` (see [`crate::policy::shared_limit`]), or both, until dropped.
#[derive(Debug)]
pub(crate) struct ConnSlot {
    /// Held for its `Drop`.
    _local: Option<LocalSlot>,
    shared: Option<SharedSlot>,
}

/// The `limit-connections` part of a [`ConnSlot`].
#[derive(Debug)]
struct LocalSlot {
    limiter: Arc<Limiter>,
    shard: usize,
    client: IpAddr,
}

// === impl Limiter ===

impl Limiter {
    pub(crate) fn new(limits: &LocalLimits) -> Self {
        let shards = if limits.per_client() { SHARDS } else { 0 };
        Self {
            limits: limits.clone(),
            base: Instant::now(),
            route: AtomicU64::new(0),
            shards: (0..shards).map(|_| Mutex::default()).collect(),
            hasher: Default::default(),
        }
    }

    /// Admits a request of `client` at `now`, or says which limit refuses it. A request
    /// counted against `limit-connections` holds the returned slot until it ends.
    pub(crate) fn admit(
        self: &Arc<Self>,
        client: IpAddr,
        now: Instant,
    ) -> Result<Option<ConnSlot>, Over> {
        let now =
            u64::try_from(now.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX);
        let exempt = self
            .limits
            .exempt
            .as_ref()
            .is_some_and(|e| e.contains(client));
        if self.shards.is_empty() || exempt {
            return self.take_route(now).map(|()| None);
        }
        let shard = self.shard_of(client);
        let mut map = self.lock(shard);
        let Some(mut c) = map.get_or_make(client, now) else {
            return Err(Over::ClientRate);
        };
        let rps = next(&self.limits.client_rps, c.rps, now).ok_or(Over::ClientRate)?;
        let rpm = next(&self.limits.client_rpm, c.rpm, now).ok_or(Over::ClientRate)?;
        if self.limits.connections.is_some_and(|n| c.in_flight >= n) {
            return Err(Over::Connections);
        }
        self.take_route(now)?;
        c.rps = rps;
        c.rpm = rpm;
        let counted = self.limits.connections.is_some();
        c.in_flight += u32::from(counted);
        map.clients.insert(client, c);
        drop(map);
        Ok(counted.then(|| ConnSlot {
            _local: Some(LocalSlot {
                limiter: Arc::clone(self),
                shard,
                client,
            }),
            shared: None,
        }))
    }

    /// Takes a token of the route's bucket, when it has one.
    fn take_route(&self, now: u64) -> Result<(), Over> {
        let Some(rate) = &self.limits.route else {
            return Ok(());
        };
        let mut tat = self.route.load(Ordering::Relaxed);
        loop {
            let new = next(&Some(*rate), tat, now).ok_or(Over::Route)?;
            match self
                .route
                .compare_exchange_weak(tat, new, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return Ok(()),
                Err(seen) => tat = seen,
            }
        }
    }

    fn shard_of(&self, client: IpAddr) -> usize {
        (self.hasher.hash_one(client) as usize) % self.shards.len()
    }

    fn lock(&self, shard: usize) -> MutexGuard<'_, Shard> {
        // A shard holds plain counters: one left by a panicking thread is still usable.
        self.shards[shard]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// How many clients it remembers.
    #[cfg(test)]
    fn remembered(&self) -> usize {
        (0..self.shards.len())
            .map(|i| self.lock(i).clients.len())
            .sum()
    }
}

/// The bucket's new theoretical arrival time once a request at `now` takes a token, or
/// `None` when it has none left. No bucket: always a token.
fn next(rate: &Option<Rate>, tat: u64, now: u64) -> Option<u64> {
    let Some(rate) = rate else {
        return Some(tat);
    };
    let t = rate.interval_nanos();
    let new = tat.max(now).saturating_add(t);
    let ahead = u128::from(new - now);
    (ahead <= u128::from(t) * u128::from(rate.burst)).then_some(new)
}

// === impl Shard ===

impl Shard {
    /// The client's state (a new one starts with full buckets), or `None` when the map
    /// is full of clients holding requests.
    fn get_or_make(&mut self, client: IpAddr, now: u64) -> Option<Client> {
        if let Some(c) = self.clients.get(&client) {
            return Some(*c);
        }
        if self.clients.len() >= PER_SHARD {
            self.make_room(now);
        }
        (self.clients.len() < PER_SHARD).then(Client::default)
    }

    /// Forgets the clients with full buckets and nothing in flight; if none, the one
    /// without requests in flight whose buckets are fullest.
    fn make_room(&mut self, now: u64) {
        self.clients
            .retain(|_, c| c.in_flight > 0 || c.rps.max(c.rpm) > now);
        if self.clients.len() < PER_SHARD {
            return;
        }
        let fullest = (self.clients.iter())
            .filter(|(_, c)| c.in_flight == 0)
            .min_by_key(|(_, c)| c.rps.max(c.rpm))
            .map(|(ip, _)| *ip);
        if let Some(ip) = fullest {
            self.clients.remove(&ip);
        }
    }
}

// === impl ConnSlot ===

impl ConnSlot {
    /// Adds a request's `concurrency-limit` slot to what `slot` holds.
    pub(crate) fn hold_shared(slot: &mut Option<Box<ConnSlot>>, shared: SharedSlot) {
        match slot {
            Some(s) => s.shared = Some(shared),
            None => {
                *slot = Some(Box::new(ConnSlot {
                    _local: None,
                    shared: Some(shared),
                }));
            }
        }
    }
}

impl Drop for LocalSlot {
    fn drop(&mut self) {
        let mut map = self.limiter.lock(self.shard);
        if let Some(c) = map.clients.get_mut(&self.client) {
            c.in_flight = c.in_flight.saturating_sub(1);
        }
    }
}

/// The limiters of a table's routes, by route id: carried over from `previous` (the
/// routes of the table being replaced and their limiters) for the same route with the
/// same limits, new otherwise.
pub(crate) fn plan(
    routes: &RouteTable,
    previous: Option<(&RouteTable, &[Option<Arc<Limiter>>])>,
) -> Box<[Option<Arc<Limiter>>]> {
    let mut old: HashMap<(&ObjectKey, &str), &Arc<Limiter>> = HashMap::new();
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
            let limits = r.policy.as_ref()?.limits.as_deref()?;
            let kept = old
                .remove(&(&r.ingress, &*r.field))
                .filter(|l| l.limits == *limits);
            Some(kept.map_or_else(|| Arc::new(Limiter::new(limits)), Arc::clone))
        })
        .collect()
}

/// The answer to a request over a limit: Higress's 429 `local_rate_limited` for the
/// route's limit, else the global `limit-req-status-code` or `limit-conn-status-code`.
pub(crate) fn refusal(over: Over, req_status: u16, conn_status: u16) -> Response<Bytes> {
    let (status, body) = match over {
        Over::Route => (StatusCode::TOO_MANY_REQUESTS, None),
        Over::ClientRate => (status_or_503(req_status), Some(())),
        Over::Connections => (status_or_503(conn_status), Some(())),
    };
    let body = match body {
        None => Bytes::from_static(b"local_rate_limited"),
        Some(()) => Bytes::from(format!(
            "{} {}\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or("Error")
        )),
    };
    let mut r = Response::new(body);
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn status_or_503(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE)
}

#[cfg(test)]
mod tests;
