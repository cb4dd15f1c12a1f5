//! Passive outlier detection, on every cluster of more than one endpoint: an endpoint
//! that fails requests in a row is ejected for a while, then let back in (envoy's
//! `consecutive_5xx` with its ejection arithmetic).
//!
//! A failure is an attempt of this gateway that failed on the endpoint: the connection
//! was refused, reset or timed out, the answer was not HTTP, or its status was 5xx. After
//! `mse-outlier-consecutive-errors` failures (5) with no success in between, the endpoint
//! is ejected for `mse-outlier-base-ejection-time` (30 s) times the number of its
//! ejections in a row, at most `mse-outlier-max-ejection-time` (300 s); an endpoint that
//! stays in for the longest ejection time starts counting its ejections from one again.
//! Never more than half of a cluster's endpoints (rounded down) are out at once: a
//! failing endpoint past that cap keeps getting requests, and a cluster of one endpoint
//! never ejects it. An endpoint is let back in when its time is up, as the next selection
//! (or a look at `/metrics` or `/debug/routes`) notices, with its failures counted from
//! zero. Selection of every balancer skips ejected endpoints (see [`ClusterHealth::avoid`]);
//! a retry goes to an ejected endpoint only when every other one was tried.
//!
//! The state is per cluster and endpoint, shared by every worker as relaxed atomics (it
//! steers choices and orders nothing), and carried over to a new table for the same
//! Service port and endpoint address. Failures are rare writes; what every request pays
//! is one relaxed load at selection (the cluster's count of ejected endpoints: only when
//! it is not zero are the endpoints' deadlines read) and one when the answer is not a
//! 5xx (the gateway-wide count of endpoints with failures counted: only when it is not
//! zero is the endpoint looked up by address and its count reset). Failures look the
//! endpoint up by address in a map swapped in with each table ([`Outliers`]).
//!
//! The same per-endpoint state counts the upstream connections opened for routes with
//! `connection-policy-*` ([`ConnPermit`]): a new connection past
//! `connection-policy-tcp-max-connection` (all endpoints of the Service together) or
//! `-per-endpoint` is not opened and the request is answered 503 at once, as envoy's
//! circuit breaker answers an overflow (envoy would first hold the request as pending;
//! here it is not queued). The counts are read and raised without a lock, so workers
//! opening connections at the same instant may overshoot a limit by one each.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use mse_model::ObjectKey;
use mse_router::global::UpstreamSettings;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use serde::Serialize;

use crate::upstream::Upstream;

/// When an endpoint is ejected and for how long, from the global configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rules {
    /// Failures in a row that eject an endpoint; zero: never.
    pub(crate) consecutive: u32,
    /// The first ejection's length.
    pub(crate) base: Duration,
    /// The longest ejection.
    pub(crate) max: Duration,
}

impl Rules {
    pub(crate) fn of(u: &UpstreamSettings) -> Self {
        Self {
            consecutive: u.outlier_consecutive_errors,
            base: u.outlier_base_ejection_time,
            max: u.outlier_max_ejection_time,
        }
    }

    /// How long the `n`-th ejection in a row lasts: `n` times the base, capped.
    pub(crate) fn ejection(&self, n: u32) -> Duration {
        self.base
            .saturating_mul(n.max(1))
            .min(self.max.max(self.base))
    }
}

/// How many of `n` endpoints may be out at once.
pub(crate) fn cap(n: usize) -> u32 {
    u32::try_from(n / 2).unwrap_or(u32::MAX)
}

/// The gateway-wide part: the clock, the count of endpoints with failures counted, and
/// every cluster's endpoints by address. Owned by the shared table, held by each worker's
/// upstream pool.
pub(crate) struct Outliers {
    /// Endpoints (of every cluster) with failures counted: while zero, an answer that is
    /// not a failure has nothing to reset.
    suspects: Arc<AtomicU32>,
    by_addr: ArcSwap<ByAddr>,
    clock: Instant,
}

/// The clusters an endpoint address is in, with its index in each.
type ByAddr = HashMap<SocketAddr, Box<[(Arc<ClusterHealth>, u32)]>>;

/// One cluster's endpoints: their health and the count of those ejected.
pub(crate) struct ClusterHealth {
    /// `namespace/name:port` of the Service, for logs and `/debug/routes`.
    service: Box<str>,
    addrs: Arc<[SocketAddr]>,
    endpoints: Box<[Arc<Endpoint>]>,
    /// Endpoints ejected now (some perhaps with their time up, not noticed yet).
    ejected: AtomicU32,
    rules: Rules,
    clock: Instant,
    /// `mse_upstream_ejections` and `mse_upstream_ejected_endpoints` of the Service port.
    ejections: Counter,
    ejected_now: Gauge,
}

/// One endpoint's health, shared by the tables that have its Service port and address.
pub(crate) struct Endpoint {
    /// Failures in a row.
    failures: AtomicU32,
    /// When it is let back in, in nanoseconds of the clock (never zero); zero: it is in.
    until: AtomicU64,
    /// Its ejections in a row.
    streak: AtomicU32,
    /// When it was last let back in, in nanoseconds of the clock.
    back_at: AtomicU64,
    suspects: Arc<AtomicU32>,
    /// Upstream connections open to it that count against `connection-policy-*`.
    open: AtomicU32,
}

/// One upstream connection counted against `connection-policy-*`, until it is dropped;
/// it also carries the connection's limit of requests.
pub(crate) struct ConnPermit {
    /// The endpoint it is counted on, when a connection count is limited.
    counted: Option<Arc<Endpoint>>,
    /// `connection-policy-http-max-request-per-connection`.
    pub(crate) max_requests: u32,
}

// === impl Outliers ===

impl Default for Outliers {
    fn default() -> Self {
        Self {
            suspects: Arc::default(),
            by_addr: ArcSwap::default(),
            clock: Instant::now(),
        }
    }
}

impl Outliers {
    /// Now, in nanoseconds of the clock (at least 1).
    fn now(&self) -> u64 {
        nanos_since(self.clock)
    }

    /// Notes an answer of `upstream`: a 5xx is a failure, anything else a success.
    #[inline]
    pub(crate) fn answered(&self, upstream: &Upstream, status: u16) {
        if status >= 500 {
            self.failed(upstream);
        } else if self.suspects.load(Relaxed) != 0 {
            self.succeeded(upstream);
        }
    }

    /// Notes an attempt on `upstream` that ended in `e`, unless the gateway itself held it
    /// back (a `connection-policy-*` limit: `BackendUnavailable`), which is no fault of
    /// the endpoint.
    #[cold]
    pub(crate) fn errored(&self, upstream: &Upstream, e: &crate::error::ProxyError) {
        if !matches!(e, crate::error::ProxyError::BackendUnavailable { .. }) {
            self.failed(upstream);
        }
    }

    /// Notes an attempt on `upstream` that failed (refused, reset, timed out, not HTTP).
    #[cold]
    pub(crate) fn failed(&self, upstream: &Upstream) {
        let Upstream::Addr(addr) = upstream else {
            return;
        };
        let map = self.by_addr.load();
        let Some(clusters) = map.get(addr) else {
            return;
        };
        let now = self.now();
        for (c, i) in clusters.iter() {
            c.failed(*i as usize, now);
        }
    }

    #[cold]
    fn succeeded(&self, upstream: &Upstream) {
        let Upstream::Addr(addr) = upstream else {
            return;
        };
        if let Some(clusters) = self.by_addr.load().get(addr) {
            for (c, i) in clusters.iter() {
                if let Some(e) = c.endpoints.get(*i as usize) {
                    e.reset();
                }
            }
        }
    }

    /// The health of the (first) cluster endpoint `addr` is in, for a retry.
    pub(crate) fn cluster_of(&self, addr: &SocketAddr) -> Option<Arc<ClusterHealth>> {
        let map = self.by_addr.load();
        map.get(addr)?.first().map(|(c, _)| Arc::clone(c))
    }

    /// A permit for a new connection to `upstream` under `limits`: `Err` with the reason
    /// when the Service or the endpoint has as many connections open as it may.
    pub(crate) fn permit(
        &self,
        upstream: &Upstream,
        limits: &mse_router::ConnectionLimits,
    ) -> Result<Box<ConnPermit>, &'static str> {
        let max_requests = limits.max_requests.unwrap_or(u32::MAX);
        let counted = if limits.max_connections.is_some() || limits.max_per_endpoint.is_some() {
            let Upstream::Addr(addr) = upstream else {
                return Ok(Box::new(ConnPermit {
                    counted: None,
                    max_requests,
                }));
            };
            let map = self.by_addr.load();
            match map.get(addr).and_then(|c| c.first()) {
                Some((c, i)) => Some(c.open_connection(*i as usize, limits)?),
                None => None,
            }
        } else {
            None
        };
        Ok(Box::new(ConnPermit {
            counted,
            max_requests,
        }))
    }

    /// The health of a cluster of the table being built: its endpoints' state carried
    /// over from `previous` (the cluster of the same Service port in the table it
    /// replaces) where the address is the same.
    pub(crate) fn cluster(
        &self,
        (service, port): (&ObjectKey, u16),
        addrs: &Arc<[SocketAddr]>,
        rules: Rules,
        previous: Option<&ClusterHealth>,
        (ejections, ejected_now): (Counter, Gauge),
    ) -> ClusterHealth {
        let endpoints: Box<[Arc<Endpoint>]> = addrs
            .iter()
            .map(|a| {
                let kept = previous.and_then(|p| {
                    let i = p.addrs.iter().position(|b| b == a)?;
                    p.endpoints.get(i).cloned()
                });
                kept.unwrap_or_else(|| {
                    Arc::new(Endpoint {
                        failures: AtomicU32::new(0),
                        until: AtomicU64::new(0),
                        streak: AtomicU32::new(0),
                        back_at: AtomicU64::new(0),
                        suspects: Arc::clone(&self.suspects),
                        open: AtomicU32::new(0),
                    })
                })
            })
            .collect();
        let out = endpoints
            .iter()
            .filter(|e| e.until.load(Relaxed) != 0)
            .count();
        let out = u32::try_from(out).unwrap_or(u32::MAX);
        ejected_now.set(i64::from(out));
        ClusterHealth {
            service: format!("{}/{}:{port}", service.namespace, service.name).into(),
            addrs: Arc::clone(addrs),
            endpoints,
            ejected: AtomicU32::new(out),
            rules,
            clock: self.clock,
            ejections,
            ejected_now,
        }
    }

    /// Takes the clusters of a newly published table.
    pub(crate) fn publish<'a>(&self, clusters: impl Iterator<Item = &'a Arc<ClusterHealth>>) {
        let mut map: HashMap<SocketAddr, Vec<(Arc<ClusterHealth>, u32)>> = HashMap::new();
        for c in clusters {
            for (a, i) in c.addrs.iter().zip(0u32..) {
                let list = map.entry(*a).or_default();
                // Clusters of one Service port (one per upstream protocol) may share it.
                if !list.iter().any(|(known, _)| Arc::ptr_eq(known, c)) {
                    list.push((Arc::clone(c), i));
                }
            }
        }
        let map: ByAddr = map.into_iter().map(|(a, v)| (a, v.into())).collect();
        self.by_addr.store(Arc::new(map));
    }
}

fn nanos_since(clock: Instant) -> u64 {
    u64::try_from(clock.elapsed().as_nanos())
        .unwrap_or(u64::MAX)
        .max(1)
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

// === impl ClusterHealth ===

impl ClusterHealth {
    /// `i`, or when endpoint `i` is ejected the next one in order that is not.
    #[inline]
    pub(crate) fn avoid(&self, i: usize) -> usize {
        if self.ejected.load(Relaxed) == 0 {
            return i;
        }
        self.avoid_slow(i, nanos_since(self.clock))
    }

    #[cold]
    fn avoid_slow(&self, i: usize, now: u64) -> usize {
        let n = self.endpoints.len().max(1);
        (0..n)
            .map(|k| (i + k) % n)
            .find(|&j| !self.out(j, now))
            .unwrap_or(i)
    }

    /// Whether endpoint `i` is ejected now.
    #[inline]
    pub(crate) fn is_out(&self, i: usize) -> bool {
        self.ejected.load(Relaxed) != 0 && self.out(i, nanos_since(self.clock))
    }

    /// The endpoints ejected now, as a bit set of the first 64.
    pub(crate) fn out_mask(&self) -> u64 {
        if self.ejected.load(Relaxed) == 0 {
            return 0;
        }
        let now = nanos_since(self.clock);
        (0..self.endpoints.len().min(64))
            .filter(|&i| self.out(i, now))
            .fold(0, |m, i| m | (1 << i))
    }

    /// Whether it is the state of these endpoints under these rules.
    pub(crate) fn same(&self, addrs: &[SocketAddr], rules: Rules) -> bool {
        self.rules == rules && *self.addrs == *addrs
    }

    /// The cluster's endpoint addresses.
    pub(crate) fn addrs(&self) -> &Arc<[SocketAddr]> {
        &self.addrs
    }

    /// Whether endpoint `i` is out at `now`; lets it back in when its time is up.
    fn out(&self, i: usize, now: u64) -> bool {
        let Some(e) = self.endpoints.get(i) else {
            return false;
        };
        let until = e.until.load(Relaxed);
        if until == 0 {
            return false;
        }
        if now < until {
            return true;
        }
        if e.until.compare_exchange(until, 0, Relaxed, Relaxed).is_ok() {
            e.back_at.store(now, Relaxed);
            let _ = self
                .ejected
                .fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1));
            self.ejected_now.dec();
            tracing::info!(service = %self.service, endpoint = %self.addrs[i], "outlier endpoint let back in");
        }
        false
    }

    /// Counts a failure of endpoint `i` at `now`; ejects it at the threshold, when the
    /// cap allows. Whether it was ejected.
    fn failed(&self, i: usize, now: u64) -> bool {
        let Some(e) = self.endpoints.get(i) else {
            return false;
        };
        if self.rules.consecutive == 0 || e.until.load(Relaxed) != 0 || self.endpoints.len() < 2 {
            return false;
        }
        let before = e.failures.fetch_add(1, Relaxed);
        if before == 0 {
            e.suspects.fetch_add(1, Relaxed);
        }
        if before + 1 < self.rules.consecutive {
            return false;
        }
        // A place under the cap first, then the endpoint (once, whoever counted last).
        let cap = cap(self.endpoints.len());
        if self
            .ejected
            .fetch_update(Relaxed, Relaxed, |n| (n < cap).then_some(n + 1))
            .is_err()
        {
            return false;
        }
        let streak = next_streak(
            e.streak.load(Relaxed),
            e.back_at.load(Relaxed),
            now,
            self.rules,
        );
        let until = now.saturating_add(nanos(self.rules.ejection(streak)));
        if e.until
            .compare_exchange(0, until, Relaxed, Relaxed)
            .is_err()
        {
            self.ejected.fetch_sub(1, Relaxed);
            return false;
        }
        e.streak.store(streak, Relaxed);
        e.reset();
        self.ejections.inc();
        self.ejected_now.inc();
        tracing::warn!(
            service = %self.service,
            endpoint = %self.addrs[i],
            failures = self.rules.consecutive,
            ejection = ?self.rules.ejection(streak),
            "outlier endpoint ejected"
        );
        true
    }

    /// Counts a new connection to endpoint `i` when `limits` allow it.
    fn open_connection(
        &self,
        i: usize,
        limits: &mse_router::ConnectionLimits,
    ) -> Result<Arc<Endpoint>, &'static str> {
        let e = self.endpoints.get(i).ok_or("no such endpoint")?;
        if let Some(max) = limits.max_connections {
            let open: u32 = self.endpoints.iter().map(|e| e.open.load(Relaxed)).sum();
            if open >= max {
                return Err("connection-policy-tcp-max-connection reached");
            }
        }
        let max = limits.max_per_endpoint.unwrap_or(u32::MAX);
        e.open
            .fetch_update(Relaxed, Relaxed, |n| (n < max).then_some(n + 1))
            .map_err(|_| "connection-policy-tcp-max-connection-per-endpoint reached")?;
        Ok(Arc::clone(e))
    }

    /// Lets back in the endpoints whose time is up, and counts those still out.
    pub(crate) fn sweep(&self) {
        let now = nanos_since(self.clock);
        let mut out = 0u32;
        for i in 0..self.endpoints.len() {
            out += u32::from(self.out(i, now));
        }
        self.ejected.store(out, Relaxed);
        self.ejected_now.set(i64::from(out));
    }

    /// The endpoints ejected now, for `/debug/routes`.
    pub(crate) fn report(&self) -> Vec<Ejected> {
        let now = nanos_since(self.clock);
        (0..self.endpoints.len())
            .filter(|&i| self.out(i, now))
            .map(|i| {
                let e = &self.endpoints[i];
                Ejected {
                    service: self.service.to_string(),
                    endpoint: self.addrs[i],
                    ejections_in_a_row: e.streak.load(Relaxed),
                    remaining_ms: e.until.load(Relaxed).saturating_sub(now) / 1_000_000,
                }
            })
            .collect()
    }
}

/// The number of the next ejection in a row of an endpoint with `streak` ejections in
/// a row, last let back in at `back_at`: one again after it stayed in for the longest
/// ejection time.
fn next_streak(streak: u32, back_at: u64, now: u64, rules: Rules) -> u32 {
    if streak > 0 && now.saturating_sub(back_at) >= nanos(rules.max.max(rules.base)) {
        1
    } else {
        streak.saturating_add(1)
    }
}

/// An ejected endpoint, as `/debug/routes` lists it.
#[derive(Debug, Serialize)]
pub(crate) struct Ejected {
    service: String,
    endpoint: SocketAddr,
    ejections_in_a_row: u32,
    remaining_ms: u64,
}

// === impl Endpoint ===

impl Endpoint {
    /// A success (or an ejection): failures are counted from zero again.
    fn reset(&self) {
        if self.failures.load(Relaxed) != 0 && self.failures.swap(0, Relaxed) != 0 {
            self.suspects.fetch_sub(1, Relaxed);
        }
    }
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        if let Some(e) = &self.counted {
            let _ = e.open.fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1));
        }
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        if *self.failures.get_mut() != 0 {
            self.suspects.fetch_sub(1, Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    fn rules(consecutive: u32) -> Rules {
        Rules {
            consecutive,
            base: Duration::from_secs(30),
            max: Duration::from_secs(300),
        }
    }

    fn cluster(o: &Outliers, n: u16, r: Rules) -> ClusterHealth {
        let addrs: Arc<[SocketAddr]> = (1..=n)
            .map(|p| SocketAddr::from(([127, 0, 0, 1], p)))
            .collect();
        let key = ObjectKey::new(mse_model::Kind::Service, "ns", "svc");
        o.cluster(
            (&key, 80),
            &addrs,
            r,
            None,
            (Counter::default(), Gauge::default()),
        )
    }

    #[test]
    fn ejections_grow_with_each_one_in_a_row_up_to_the_cap() {
        let r = rules(5);
        assert_eq!(r.ejection(0), Duration::from_secs(30));
        assert_eq!(r.ejection(1), Duration::from_secs(30));
        assert_eq!(r.ejection(3), Duration::from_secs(90));
        assert_eq!(r.ejection(10), Duration::from_secs(300));
        assert_eq!(r.ejection(u32::MAX), Duration::from_secs(300));
        // A maximum below the base: the base.
        let short = Rules {
            max: Duration::from_secs(1),
            ..r
        };
        assert_eq!(short.ejection(4), Duration::from_secs(30));
    }

    #[test]
    fn the_streak_starts_again_after_a_quiet_longest_ejection() {
        let r = rules(5);
        assert_eq!(next_streak(0, 0, 10 * SEC, r), 1);
        assert_eq!(next_streak(2, 100 * SEC, 200 * SEC, r), 3);
        assert_eq!(next_streak(4, 100 * SEC, 400 * SEC, r), 1);
    }

    #[test]
    fn at_most_half_the_endpoints_are_out() {
        assert_eq!(cap(1), 0);
        assert_eq!(cap(2), 1);
        assert_eq!(cap(3), 1);
        assert_eq!(cap(10), 5);
    }

    #[test]
    fn consecutive_failures_eject_and_a_success_resets_the_count() {
        let o = Outliers::default();
        let c = cluster(&o, 4, rules(3));
        let t = 5 * SEC;
        assert!(!c.failed(0, t));
        assert!(!c.failed(0, t));
        c.endpoints[0].reset();
        assert_eq!(o.suspects.load(Relaxed), 0);
        assert!(!c.failed(0, t));
        assert!(!c.failed(0, t));
        assert_eq!(o.suspects.load(Relaxed), 1);
        assert!(c.failed(0, t), "the third in a row ejects");
        assert_eq!(o.suspects.load(Relaxed), 0, "an ejection resets the count");
        assert!(c.out(0, t + 29 * SEC));
        assert_eq!(c.avoid_slow(0, t + SEC), 1);
        assert_eq!(c.ejections.get(), 1);
        assert_eq!(c.ejected_now.get(), 1);
        // Back in after 30 s; the next ejection in a row lasts 60 s.
        assert!(!c.out(0, t + 30 * SEC));
        assert_eq!(c.ejected.load(Relaxed), 0);
        assert_eq!(c.ejected_now.get(), 0);
        let t2 = t + 31 * SEC;
        for _ in 0..2 {
            assert!(!c.failed(0, t2));
        }
        assert!(c.failed(0, t2));
        assert!(c.out(0, t2 + 59 * SEC));
        assert!(!c.out(0, t2 + 60 * SEC));
    }

    #[test]
    fn no_more_than_half_are_ejected_and_one_endpoint_never() {
        let o = Outliers::default();
        let c = cluster(&o, 3, rules(1));
        assert!(c.failed(0, SEC));
        assert!(!c.failed(1, SEC), "one of three is the most");
        assert!(!c.failed(2, SEC));
        assert_eq!(c.avoid_slow(0, 2 * SEC), 1);
        assert_eq!(c.avoid_slow(2, 2 * SEC), 2);
        let one = cluster(&o, 1, rules(1));
        assert!(!one.failed(0, SEC));
        let off = cluster(&o, 4, rules(0));
        assert!(!off.failed(0, SEC));
        assert_eq!(off.ejected.load(Relaxed), 0);
    }

    #[test]
    fn a_cluster_state_shared_by_two_clusters_counts_a_failure_once() {
        let o = Outliers::default();
        let c = Arc::new(cluster(&o, 2, rules(2)));
        o.publish([&c, &c].into_iter());
        let a = Upstream::Addr(c.addrs[0]);
        o.failed(&a);
        assert_eq!(c.ejected.load(Relaxed), 0, "one failure, not two");
        o.failed(&a);
        assert_eq!(c.ejected.load(Relaxed), 1);
    }

    #[test]
    fn connections_are_counted_per_endpoint_and_for_the_service() {
        let o = Outliers::default();
        let c = Arc::new(cluster(&o, 2, rules(5)));
        o.publish([&c].into_iter());
        let (a, b) = (Upstream::Addr(c.addrs[0]), Upstream::Addr(c.addrs[1]));
        let per = mse_router::ConnectionLimits {
            max_per_endpoint: Some(1),
            ..Default::default()
        };
        let held = o.permit(&a, &per).unwrap();
        assert!(o.permit(&a, &per).is_err());
        assert!(o.permit(&b, &per).is_ok(), "dropped at once");
        drop(held);
        assert!(o.permit(&a, &per).is_ok());
        let total = mse_router::ConnectionLimits {
            max_connections: Some(2),
            ..Default::default()
        };
        let held = [o.permit(&a, &total).unwrap(), o.permit(&a, &total).unwrap()];
        assert!(o.permit(&b, &total).is_err());
        drop(held);
        assert!(o.permit(&b, &total).is_ok());
    }

    #[test]
    fn state_carries_over_to_a_new_table_by_address() {
        let o = Outliers::default();
        let c = cluster(&o, 3, rules(1));
        assert!(c.failed(1, SEC));
        // The same Service port with one endpoint more, in another order.
        let addrs: Arc<[SocketAddr]> = [4u16, 2, 1, 3]
            .iter()
            .map(|p| SocketAddr::from(([127, 0, 0, 1], *p)))
            .collect();
        let key = ObjectKey::new(mse_model::Kind::Service, "ns", "svc");
        let next = o.cluster(
            (&key, 80),
            &addrs,
            rules(1),
            Some(&c),
            (Counter::default(), Gauge::default()),
        );
        assert_eq!(next.ejected.load(Relaxed), 1);
        assert!(next.out(1, 2 * SEC));
        assert!(!next.out(0, 2 * SEC));
    }
}
