//! `warmup` (MSE): slow start. An endpoint that joins a cluster while the gateway runs gets
//! a share of the requests that grows with its age, from a tenth of a warm endpoint's share
//! to all of it once `warmup` has passed (a linear ramp, as Envoy's slow start with its
//! default aggression and minimum weight). Endpoints the gateway found when it first saw
//! the cluster are warm at once. Applied by round robin and `least_conn`.
//!
//! While some endpoint is warming, a pick is a weighted random draw: round robin weighs an
//! endpoint by its warm-up factor, `least_conn` by the factor over its requests in flight
//! plus one (as Envoy weighs hosts of unequal weight). Once every endpoint is warm the
//! picks are the algorithm's own again, at the cost of one atomic load.
//!
//! The join times are kept per published table and carried over from the table it
//! replaces, by address, for the cluster of the same Service port and selection.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::load::Loads;

/// The weight of an endpoint that has just joined, relative to a warm one.
const MIN_WEIGHT: f64 = 0.1;

/// The slow start of one cluster's endpoints.
#[derive(Debug)]
pub(crate) struct Warmup {
    window: Duration,
    /// When each endpoint (by index) joined; `None`: warm from the start.
    since: Box<[Option<Instant>]>,
    /// Set once every endpoint is warm.
    warm: AtomicBool,
}

/// The warm-up factor of an endpoint that joined `age` ago: from [`MIN_WEIGHT`] up to 1
/// at `window`.
fn factor(age: Duration, window: Duration) -> f64 {
    if window.is_zero() || age >= window {
        return 1.0;
    }
    (age.as_secs_f64() / window.as_secs_f64()).max(MIN_WEIGHT)
}

// === impl Warmup ===

impl Warmup {
    /// The slow start of endpoints `addrs` with `window`. `previous`: the endpoints of the
    /// same cluster in the table being replaced, with their slow start if it had one;
    /// `None` when that table had no such cluster (every endpoint is then warm).
    pub(crate) fn new(
        addrs: &[SocketAddr],
        window: Duration,
        previous: Option<(&[SocketAddr], Option<&Warmup>)>,
        now: Instant,
    ) -> Self {
        let since: Box<[Option<Instant>]> = addrs
            .iter()
            .map(|a| {
                let (old, warmup) = previous?;
                match old.iter().position(|o| o == a) {
                    Some(i) => warmup.and_then(|w| w.since.get(i).copied().flatten()),
                    None => Some(now),
                }
            })
            .collect();
        let warm = since.iter().all(Option::is_none);
        Self {
            window,
            since,
            warm: AtomicBool::new(warm),
        }
    }

    fn weight(&self, i: usize, now: Instant) -> f64 {
        match self.since.get(i).copied().flatten() {
            Some(t) => factor(now.saturating_duration_since(t), self.window),
            None => 1.0,
        }
    }

    /// The endpoint a request goes to while some endpoint warms up; `None` once all are
    /// warm (the algorithm picks as usual). `loads`: the requests in flight, for
    /// `least_conn`.
    pub(crate) fn pick(&self, loads: Option<&Loads>, now: Instant) -> Option<usize> {
        if self.warm.load(Ordering::Relaxed) {
            return None;
        }
        if (0..self.since.len()).all(|i| self.weight(i, now) >= 1.0) {
            self.warm.store(true, Ordering::Relaxed);
            return None;
        }
        let weight = |i: usize| {
            let w = self.weight(i, now);
            match loads {
                Some(l) => w / (f64::from(l.in_flight(i)) + 1.0),
                None => w,
            }
        };
        let n = self.since.len();
        let total: f64 = (0..n).map(weight).sum();
        let mut r = fastrand::f64() * total;
        for i in 0..n {
            r -= weight(i);
            if r < 0.0 {
                return Some(i);
            }
        }
        n.checked_sub(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(ports: &[u16]) -> Vec<SocketAddr> {
        ports
            .iter()
            .map(|p| SocketAddr::from(([127, 0, 0, 1], *p)))
            .collect()
    }

    #[test]
    fn the_factor_ramps_from_the_minimum_to_one() {
        let w = Duration::from_secs(100);
        assert_eq!(factor(Duration::ZERO, w), MIN_WEIGHT);
        assert_eq!(factor(Duration::from_secs(5), w), MIN_WEIGHT);
        assert!((factor(Duration::from_secs(50), w) - 0.5).abs() < 1e-9);
        assert_eq!(factor(Duration::from_secs(100), w), 1.0);
        assert_eq!(factor(Duration::from_secs(500), w), 1.0);
        assert_eq!(factor(Duration::ZERO, Duration::ZERO), 1.0);
    }

    #[test]
    fn only_endpoints_that_join_later_warm_up_and_their_start_carries_over() {
        let t0 = Instant::now();
        let w = Duration::from_secs(100);
        // First sight of the cluster: everything is warm.
        let first = Warmup::new(&addrs(&[1, 2]), w, None, t0);
        assert_eq!(first.pick(None, t0), None);
        // Endpoint 3 joins at t0 + 10 s.
        let t1 = t0 + Duration::from_secs(10);
        let second = Warmup::new(
            &addrs(&[1, 2, 3]),
            w,
            Some((&addrs(&[1, 2]), Some(&first))),
            t1,
        );
        assert_eq!(second.since[2], Some(t1));
        assert_eq!(second.since[..2], [None, None]);
        // Still warming in the next table, from when it joined.
        let t2 = t1 + Duration::from_secs(30);
        let third = Warmup::new(
            &addrs(&[3, 1]),
            w,
            Some((&addrs(&[1, 2, 3]), Some(&second))),
            t2,
        );
        assert_eq!(third.since[..], [Some(t1), None]);
        assert!((third.weight(0, t2) - 0.3).abs() < 1e-9);
        // Warm after the window: the algorithm picks again.
        assert_eq!(third.pick(None, t1 + w), None);
        assert!(third.warm.load(Ordering::Relaxed));
    }

    #[test]
    fn a_warming_endpoint_gets_a_share_that_follows_its_weight() {
        let t0 = Instant::now();
        let w = Duration::from_secs(100);
        let warmup = Warmup::new(&addrs(&[1, 2]), w, Some((&addrs(&[1]), None)), t0);
        let share = |at: Instant| {
            let n = 20_000;
            let new = (0..n).filter(|_| warmup.pick(None, at) == Some(1)).count();
            new as f64 / n as f64
        };
        // Weight 0.1 against 1: about 9 %; weight 0.5: about 33 %.
        let early = share(t0);
        assert!((0.05..0.14).contains(&early), "{early}");
        let half = share(t0 + Duration::from_secs(50));
        assert!((0.27..0.40).contains(&half), "{half}");
    }
}
