//! Per-endpoint load, for `least_conn`, `random` and `ewma`: the requests in flight from
//! this gateway to each endpoint and, for `ewma`, a peak EWMA of their response times.
//!
//! The state is shared by every worker as atomics with `Relaxed` ordering: it steers
//! choices and orders nothing, and two updates racing may lose one sample, which only
//! blurs an estimate. It is built with the published table for the clusters that need
//! it, and carried over from the table it replaces while a cluster's endpoints stay the
//! same; round robin never touches it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

/// How fast the EWMA forgets: a sample's weight falls by `e` every this many
/// nanoseconds (10 s, as ingress-nginx).
const DECAY_NANOS: f64 = 10e9;

/// The cost of an endpoint with requests in flight and no response time measured yet:
/// above any measured one, so a new endpoint gets one request until it has answered.
const UNMEASURED: f64 = 1e15;

/// The load of a cluster's endpoints.
#[derive(Debug)]
pub(crate) struct Loads {
    in_flight: Box<[AtomicU32]>,
    /// One per endpoint for `ewma`; empty otherwise.
    ewma: Box<[Ewma]>,
    /// What the EWMA's times count from.
    base: Instant,
}

/// A peak EWMA of response times: jumps to a slower sample at once, decays towards
/// faster ones.
#[derive(Debug, Default)]
struct Ewma {
    /// Nanoseconds, as `f64` bits.
    nanos: AtomicU64,
    /// When it was last updated, in nanoseconds since [`Loads::base`].
    at: AtomicU64,
}

/// A request in flight to an endpoint, counted until it is dropped (when the response
/// body ends, or the request fails); for `ewma`, its response time is then recorded.
#[derive(Debug)]
pub(crate) struct LoadGuard {
    loads: Arc<Loads>,
    index: usize,
    started: Option<Instant>,
}

// === impl Loads ===

impl Loads {
    /// The load of `n` endpoints; `ewma`: with response times.
    pub(crate) fn new(n: usize, ewma: bool) -> Self {
        Self {
            in_flight: (0..n).map(|_| AtomicU32::new(0)).collect(),
            ewma: (0..if ewma { n } else { 0 })
                .map(|_| Ewma::default())
                .collect(),
            base: Instant::now(),
        }
    }

    /// Whether it keeps response times (`ewma`).
    pub(crate) fn has_ewma(&self) -> bool {
        !self.ewma.is_empty()
    }

    /// How many endpoints.
    pub(crate) fn len(&self) -> usize {
        self.in_flight.len()
    }

    pub(crate) fn in_flight(&self, i: usize) -> u32 {
        self.in_flight
            .get(i)
            .map_or(u32::MAX, |c| c.load(Ordering::Relaxed))
    }

    /// The endpoint with the fewest requests in flight; ties go to the first from
    /// `start` on.
    pub(crate) fn least(&self, start: usize) -> Option<usize> {
        let n = self.len();
        (0..n)
            .map(|k| (start + k) % n)
            .min_by_key(|&i| self.in_flight(i))
    }

    /// Of two endpoints drawn at random, the cheaper: by requests in flight, or with
    /// `ewma` by response time times requests in flight. `None` with fewer than two.
    pub(crate) fn two_choices(&self, ewma: bool) -> Option<usize> {
        let n = self.len();
        if n < 2 {
            return None;
        }
        let a = fastrand::usize(..n);
        let b = (a + 1 + fastrand::usize(..n - 1)) % n;
        let cheaper = if ewma {
            let now = self.now();
            self.cost(b, now) < self.cost(a, now)
        } else {
            self.in_flight(b) < self.in_flight(a)
        };
        Some(if cheaper { b } else { a })
    }

    /// For a retry: the cheapest endpoint from `start` on (by requests in flight, or with
    /// `ewma` by cost) whose bit in `tried` is clear; `None` when all were tried.
    pub(crate) fn cheapest_untried(&self, start: usize, tried: u64, ewma: bool) -> Option<usize> {
        let n = self.len();
        let now = self.now();
        let untried = (0..n)
            .map(|k| (start + k) % n)
            .filter(|&i| i >= 64 || tried & (1 << i) == 0);
        if ewma {
            untried.min_by(|&a, &b| self.cost(a, now).total_cmp(&self.cost(b, now)))
        } else {
            untried.min_by_key(|&i| self.in_flight(i))
        }
    }

    /// Counts a request to endpoint `i`; `timed`: record its response time.
    pub(crate) fn start(self: &Arc<Self>, i: usize, timed: bool) -> LoadGuard {
        if let Some(c) = self.in_flight.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        LoadGuard {
            loads: Arc::clone(self),
            index: i,
            started: timed.then(Instant::now),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// The EWMA of endpoint `i` decayed to `now`, times its requests in flight plus one.
    fn cost(&self, i: usize, now: u64) -> f64 {
        let pending = self.in_flight(i);
        let Some(e) = self.ewma.get(i) else {
            return UNMEASURED;
        };
        let estimate = f64::from_bits(e.nanos.load(Ordering::Relaxed));
        if estimate == 0.0 {
            return if pending == 0 {
                0.0
            } else {
                UNMEASURED + f64::from(pending)
            };
        }
        let age = now.saturating_sub(e.at.load(Ordering::Relaxed));
        estimate * decay(age) * (f64::from(pending) + 1.0)
    }

    /// Takes a response time of endpoint `i`.
    fn observe(&self, i: usize, nanos: f64) {
        let Some(e) = self.ewma.get(i) else {
            return;
        };
        let now = self.now();
        let prev = f64::from_bits(e.nanos.load(Ordering::Relaxed));
        let next = if nanos > prev {
            nanos
        } else {
            let w = decay(now.saturating_sub(e.at.load(Ordering::Relaxed)));
            prev * w + nanos * (1.0 - w)
        };
        e.nanos.store(next.to_bits(), Ordering::Relaxed);
        e.at.store(now, Ordering::Relaxed);
    }
}

/// The weight left to an estimate `age` nanoseconds old.
fn decay(age: u64) -> f64 {
    // Precision is irrelevant at these magnitudes.
    let age = age as f64;
    (-age / DECAY_NANOS).exp()
}

// === impl LoadGuard ===

impl LoadGuard {
    /// The loads it counts in, and the endpoint it counts.
    pub(crate) fn loads(&self) -> (&Arc<Loads>, usize) {
        (&self.loads, self.index)
    }

    /// Whether it records a response time (`ewma`).
    pub(crate) fn timed(&self) -> bool {
        self.started.is_some()
    }
}

impl Drop for LoadGuard {
    fn drop(&mut self) {
        if let Some(c) = self.loads.in_flight.get(self.index) {
            c.fetch_sub(1, Ordering::Relaxed);
        }
        if let Some(started) = self.started {
            let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            let nanos = nanos as f64;
            self.loads.observe(self.index, nanos);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slower_sample_is_taken_at_once_a_faster_one_decays_in() {
        let loads = Loads::new(2, true);
        loads.observe(0, 1e6);
        let now = loads.now();
        let first = loads.cost(0, now);
        assert!(first > 0.0 && first <= 1e6);
        loads.observe(0, 5e6);
        assert!(loads.cost(0, loads.now()) > 4.9e6);
        loads.observe(0, 1.0);
        // Right after: the estimate has barely moved towards the fast sample.
        assert!(loads.cost(0, loads.now()) > 1e6);
    }

    #[test]
    fn a_retry_takes_the_least_loaded_endpoint_not_tried() {
        let loads = Arc::new(Loads::new(3, false));
        let _a = loads.start(0, false);
        let _b = loads.start(1, false);
        let _c = loads.start(1, false);
        // Endpoint 2 was tried: of the others, 0 has fewer in flight.
        assert_eq!(loads.cheapest_untried(1, 0b100, false), Some(0));
        assert_eq!(loads.cheapest_untried(0, 0b000, false), Some(2));
        assert_eq!(loads.cheapest_untried(0, 0b111, false), None);
    }

    #[test]
    fn an_unmeasured_endpoint_with_a_request_in_flight_costs_most() {
        let loads = Arc::new(Loads::new(2, true));
        loads.observe(1, 1e9);
        let _held = loads.start(0, true);
        let now = loads.now();
        assert!(loads.cost(0, now) > loads.cost(1, now));
    }
}
