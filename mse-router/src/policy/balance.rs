//! `load-balance`, `upstream-hash-by` and cookie affinity (`affinity: cookie` with the
//! `session-cookie-*` keys): how the upstream-selection phase picks one of a Service's
//! endpoints. Round robin, the default, is no policy at all. Precedence as parsed: cookie
//! affinity, then hashing, then the algorithm.
//!
//! These keys are Service-scope: a canary Ingress applies its own to its own Service
//! (see the compiler's canary pairing).

use std::sync::Arc;
use std::time::Duration;

use mse_annotations::{
    AffinityMode, CanaryAffinity, HashKey, IngressPolicy, LoadBalance, SameSite,
};

use super::{Refused, Registration, RoutePolicy};

/// Load balancing and session affinity.
pub(crate) const POLICY: Registration = Registration {
    name: "load-balancing",
    groups: &[],
    keys: &[
        "load-balance",
        "upstream-hash-by",
        "upstream-hash-by-subset",
        "upstream-hash-by-subset-size",
        "affinity",
        "affinity-mode",
        "affinity-canary-behavior",
        "session-cookie-name",
        "session-cookie-path",
        "session-cookie-max-age",
        "session-cookie-expires",
        "session-cookie-domain",
        "session-cookie-secure",
        "session-cookie-samesite",
        "session-cookie-conditional-samesite-none",
        "session-cookie-change-on-failure",
    ],
    build,
};

/// How a route's requests pick an endpoint, when not round robin.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Balance {
    /// `least_conn`: the endpoint with the fewest requests in flight from this gateway.
    LeastConn,
    /// `random`: the less loaded of two endpoints drawn at random.
    Random,
    /// `ewma`: of two endpoints drawn at random, the one with the lower peak EWMA of
    /// response times times its requests in flight.
    Ewma,
    /// `upstream-hash-by`: consistent hashing of that part of the request.
    Hash(HashKey),
    /// `upstream-hash-by-subset`: the key's consistent hash picks a subset of this many
    /// endpoints (in address order), the request one of them at random.
    HashSubset(HashKey, u32),
    /// `affinity: cookie`.
    Cookie(Arc<CookieAffinity>),
}

/// Cookie session affinity: the first answer sets a cookie naming the endpoint (by a
/// keyed hash, never its address); later requests carrying it go to that endpoint while
/// it is ready.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CookieAffinity {
    /// `session-cookie-name`.
    pub name: Box<str>,
    /// `session-cookie-path`.
    pub path: Box<str>,
    /// `session-cookie-max-age`.
    pub max_age: Option<Duration>,
    /// `session-cookie-expires`: the cookie's `Expires` is this long after it is set.
    pub expires: Option<Duration>,
    /// `session-cookie-domain`.
    pub domain: Option<Box<str>>,
    /// `session-cookie-secure`: `Secure` on every answer; HTTPS requests get it anyway.
    pub secure: bool,
    /// `session-cookie-samesite`.
    pub same_site: Option<SameSite>,
    /// `session-cookie-conditional-samesite-none`.
    pub conditional_same_site_none: bool,
    /// `affinity-canary-behavior: sticky` (the default): a client holding the cookie of
    /// a canary's endpoint stays on the canary.
    pub sticky_canary: bool,
    /// `affinity-mode: persistent`.
    pub persistent: bool,
    /// `session-cookie-change-on-failure`: when the client's endpoint failed, the cookie
    /// is pointed at the endpoint that answered.
    pub change_on_failure: bool,
}

fn build(p: &IngressPolicy, policy: &mut RoutePolicy, _refused: &mut Vec<Refused>) {
    let b = &p.backend;
    policy.balance = if let Some(a) = &b.affinity {
        Some(Balance::Cookie(Arc::new(CookieAffinity {
            name: a.cookie.name.as_str().into(),
            path: a.cookie.path.as_str().into(),
            max_age: a.cookie.max_age,
            expires: a.cookie.expires,
            domain: a.cookie.domain.as_deref().map(Box::from),
            secure: a.cookie.secure,
            same_site: a.cookie.same_site,
            conditional_same_site_none: a.cookie.conditional_same_site_none,
            sticky_canary: a.canary_behavior == CanaryAffinity::Sticky,
            persistent: a.mode == AffinityMode::Persistent,
            change_on_failure: a.cookie.change_on_failure,
        })))
    } else if let Some(key) = &b.hash_by {
        Some(match b.hash_subset {
            Some(size) => Balance::HashSubset(key.clone(), size),
            None => Balance::Hash(key.clone()),
        })
    } else {
        match b.load_balance {
            LoadBalance::RoundRobin => None,
            LoadBalance::LeastConn => Some(Balance::LeastConn),
            LoadBalance::Random => Some(Balance::Random),
            LoadBalance::Ewma => Some(Balance::Ewma),
        }
    };
}
