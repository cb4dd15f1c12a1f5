//! Local rate and connection limits, per gateway replica: Higress `route-limit-*` (one
//! token bucket for a route, all clients together; excess requests get 429 with the body
//! `local_rate_limited`) and ingress-nginx `limit-*` (a bucket and a connection count per
//! client address; excess requests get `limit-req-status-code` or
//! `limit-conn-status-code` of the global configuration, 503 by default).
//!
//! A bucket starts full and refills at the rate; a request takes one token. A route's
//! bucket holds `rate x burst multiplier` tokens; a client's holds one more, as NGINX's
//! `limit_req ... burst=rate x multiplier nodelay` (which ingress-nginx writes) lets the
//! burst through on top of the request that the rate allows. This is the configuration; the data plane keeps the
//! buckets and counts.

use std::time::Duration;

use mse_annotations::{IngressPolicy, IpSet};

use super::{Refused, Registration, RoutePolicy};

pub(super) const POLICY: Registration = Registration {
    name: "local-limits",
    groups: &[],
    keys: &[
        "route-limit-rps",
        "route-limit-rpm",
        "route-limit-burst-multiplier",
        "limit-rps",
        "limit-rpm",
        "limit-connections",
        "limit-burst-multiplier",
        "limit-whitelist",
        "limit-allowlist",
    ],
    build,
};

/// A token bucket: `rate` tokens per period, at most `burst` held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Tokens added per period (at least 1).
    pub rate: u32,
    /// The period: one minute, else one second.
    pub per_minute: bool,
    /// The most tokens the bucket holds: the rate times the burst multiplier.
    pub burst: u32,
}

/// The local limits of an Ingress's routes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LocalLimits {
    /// `route-limit-rpm` or `route-limit-rps`: one bucket per route.
    pub route: Option<Rate>,
    /// `limit-rps`: one bucket per client address.
    pub client_rps: Option<Rate>,
    /// `limit-rpm`: one bucket per client address.
    pub client_rpm: Option<Rate>,
    /// `limit-connections`: requests in flight per client address.
    pub connections: Option<u32>,
    /// `limit-whitelist` / `limit-allowlist`: clients the per-client limits skip.
    pub exempt: Option<IpSet>,
}

// === impl Rate ===

impl Rate {
    /// A bucket of `rate` per period holding `rate x multiplier` tokens.
    pub fn new(rate: u32, per_minute: bool, multiplier: u32) -> Self {
        let rate = rate.max(1);
        Self {
            rate,
            per_minute,
            burst: rate.saturating_mul(multiplier.max(1)),
        }
    }

    /// A per-client bucket as NGINX's `limit_req` with `burst = rate x multiplier` and
    /// `nodelay` behaves: the burst plus the request the rate allows, at once.
    pub fn nginx(rate: u32, per_minute: bool, multiplier: u32) -> Self {
        let mut r = Self::new(rate, per_minute, multiplier);
        r.burst = r.burst.saturating_add(1);
        r
    }

    /// The time one token takes to come back, in nanoseconds (at least 1).
    pub fn interval_nanos(&self) -> u64 {
        let period = if self.per_minute {
            Duration::from_secs(60)
        } else {
            Duration::from_secs(1)
        };
        let nanos = u64::try_from(period.as_nanos()).unwrap_or(u64::MAX);
        (nanos / u64::from(self.rate.max(1))).max(1)
    }
}

// === impl LocalLimits ===

impl LocalLimits {
    /// Whether a per-client limit is set (the data plane then keeps per-client state).
    pub fn per_client(&self) -> bool {
        self.client_rps.is_some() || self.client_rpm.is_some() || self.connections.is_some()
    }
}

fn build(p: &IngressPolicy, out: &mut RoutePolicy, _: &mut Vec<Refused>) {
    let l = &p.limits;
    let c = &l.client;
    let m = c.burst_multiplier;
    let limits = LocalLimits {
        route: l
            .route
            .map(|r| Rate::new(r.requests, r.per_minute, r.burst_multiplier)),
        client_rps: c.rps.map(|n| Rate::nginx(n, false, m)),
        client_rpm: c.rpm.map(|n| Rate::nginx(n, true, m)),
        connections: c.connections,
        exempt: (!c.exempt.is_empty()).then(|| IpSet::new(&c.exempt)),
    };
    if limits.route.is_some() || limits.per_client() {
        out.limits = Some(Box::new(limits));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_holds_the_rate_times_the_multiplier() {
        let r = Rate::new(10, false, 5);
        assert_eq!(r.burst, 50);
        assert_eq!(r.interval_nanos(), 100_000_000);
        let r = Rate::new(1, true, 1);
        assert_eq!(r.burst, 1);
        assert_eq!(r.interval_nanos(), 60_000_000_000);
        assert_eq!(Rate::new(u32::MAX, false, 5).burst, u32::MAX);
        // NGINX's limit_req: burst 5 with nodelay passes 6 at once.
        assert_eq!(Rate::nginx(1, true, 5).burst, 6);
        assert_eq!(Rate::nginx(u32::MAX, false, 5).burst, u32::MAX);
    }
}
