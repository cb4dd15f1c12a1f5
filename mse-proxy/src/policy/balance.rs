//! Upstream selection beyond round robin: `load-balance` (`least_conn`, `random`,
//! `ewma`), `upstream-hash-by` and cookie affinity, from the route's [`Balance`].
//!
//! What they need besides the endpoint list is built once per published table, for the
//! clusters that some route balances this way ([`Balancing`]): the consistent-hash ring,
//! the per-endpoint load ([`super::load`]) and the affinity tokens of the endpoints. Round robin, the default, uses none of it.
//!
//! An affinity cookie holds the token of its endpoint ([`TokenKey`]): HKDF-Expand
//! (HMAC-SHA256) of the endpoint's address under a secret, the configured
//! [`crate::AffinityKey`] or one drawn at random when the gateway starts, so the cookie
//! tells nothing about the cluster. Tokens stay the same from table to table, and from
//! replica to replica when they share the key.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use http::HeaderValue;
use http::header::USER_AGENT;
use mse_router::{
    Backend, Balance, CookieAffinity, Destination, HashKey, HashRing, RequestHead, Route,
    RouteTable, SameSite,
};
use rustls::crypto::CryptoProvider;
use rustls::crypto::tls13::HkdfExpander;

use super::load::{LoadGuard, Loads};
use super::outlier::ClusterHealth;
use super::warmup::Warmup;
use crate::table::Previous;

/// What one cluster needs for the balancing its routes ask for, built with the table.
#[derive(Debug, Default)]
pub(crate) struct Balancing {
    ring: Option<HashRing>,
    subsets: Option<Subsets>,
    load: Option<Arc<Loads>>,
    /// `(token, endpoint index)`, sorted by token.
    tokens: Option<Box<[(u64, u32)]>>,
    /// `warmup`: the slow start of endpoints that joined lately.
    warmup: Option<Warmup>,
}

/// `upstream-hash-by-subset`: the endpoints in address order cut into subsets, and a
/// consistent-hash ring over the subsets (each placed by its first endpoint).
#[derive(Debug)]
struct Subsets {
    ring: HashRing,
    /// Endpoint indexes of each subset.
    members: Box<[Box<[u32]>]>,
}

/// What the request needs of the route's selection besides the endpoint.
#[derive(Debug, Default)]
pub(crate) struct Extras {
    /// Counts the request against its endpoint.
    pub(crate) load: Option<LoadGuard>,
    /// A `Set-Cookie` value for the answer (a new affinity session).
    /// Boxed: rare, and every request carries the room of this field.
    pub(crate) set_cookie: Option<Box<HeaderValue>>,
}

/// The parts of a request the hash keys read.
pub(crate) struct KeySource<'a> {
    pub(crate) head: &'a RequestHead<'a>,
    /// The target as received (`$request_uri` is its path and query).
    pub(crate) uri: &'a http::Uri,
    pub(crate) client: IpAddr,
    /// The client's request came over TLS (to the gateway, or to a trusted proxy).
    pub(crate) tls: bool,
}

/// Per cluster (by [`mse_router::ClusterId`]): what its routes' balancing needs.
/// `previous`: the table being replaced, whose endpoint load carries over where a
/// cluster's endpoints and balancing stayed the same.
pub(crate) fn plan(
    routes: &RouteTable,
    key: Option<&TokenKey>,
    previous: Option<Previous<'_>>,
) -> Vec<Balancing> {
    #[derive(Clone, Copy, Default)]
    struct Needs {
        ring: bool,
        subset: Option<u32>,
        load: bool,
        ewma: bool,
        tokens: bool,
    }
    let mut needs = vec![Needs::default(); routes.clusters().len()];
    let mut mark = |backend: &Backend, balance: Option<&Balance>| {
        let (Backend::Cluster(id), Some(b)) = (backend, balance) else {
            return;
        };
        let Some(n) = needs.get_mut(id.0 as usize) else {
            return;
        };
        match b {
            Balance::LeastConn | Balance::Random => n.load = true,
            Balance::Ewma => {
                n.load = true;
                n.ewma = true;
            }
            Balance::Hash(_) => n.ring = true,
            Balance::HashSubset(_, size) => {
                n.subset.get_or_insert(*size);
            }
            Balance::Cookie(_) => n.tokens = true,
            _ => {}
        }
    };
    for r in routes.routes() {
        mark(
            &r.backend,
            r.policy.as_ref().and_then(|p| p.balance.as_ref()),
        );
        for v in r.canary.iter().flat_map(|c| c.versions.iter()) {
            mark(
                &v.backend,
                v.policy.as_ref().and_then(|p| p.balance.as_ref()),
            );
        }
    }
    routes
        .clusters()
        .iter()
        .zip(needs)
        .map(|(c, n)| {
            let now = Instant::now();
            let addrs = match &c.target {
                mse_router::ClusterTarget::Endpoints(a) if a.len() > 1 || n.tokens => a,
                _ => return Balancing::default(),
            };
            Balancing {
                ring: n.ring.then(|| HashRing::new(addrs)),
                subsets: n.subset.map(|size| subsets(addrs, size)),
                load: n.load.then(|| {
                    let kept = previous.as_ref().and_then(|p| p.loads(c));
                    kept.filter(|l| l.len() == addrs.len() && l.has_ewma() == n.ewma)
                        .unwrap_or_else(|| Arc::new(Loads::new(addrs.len(), n.ewma)))
                }),
                tokens: key.filter(|_| n.tokens).map(|k| tokens(addrs, k)),
                warmup: c.warmup.map(|window| {
                    let before = previous.as_ref().and_then(|p| p.warmup(c));
                    Warmup::new(addrs, window, before, now)
                }),
            }
        })
        .collect()
}

fn subsets(addrs: &[SocketAddr], size: u32) -> Subsets {
    let mut order: Vec<(SocketAddr, u32)> = addrs.iter().copied().zip(0u32..).collect();
    order.sort_unstable();
    let chunks = order.chunks(size.max(1) as usize);
    let firsts: Vec<SocketAddr> = chunks
        .clone()
        .filter_map(|c| c.first())
        .map(|e| e.0)
        .collect();
    Subsets {
        ring: HashRing::new(&firsts),
        members: chunks.map(|c| c.iter().map(|e| e.1).collect()).collect(),
    }
}

fn tokens(addrs: &[SocketAddr], key: &TokenKey) -> Box<[(u64, u32)]> {
    let mut t: Vec<(u64, u32)> = addrs
        .iter()
        .zip(0u32..)
        .map(|(a, i)| (key.token(a), i))
        .collect();
    t.sort_unstable();
    t.into()
}

impl Balancing {
    /// The endpoint load, when its routes balance by it.
    pub(crate) fn loads(&self) -> Option<&Arc<Loads>> {
        self.load.as_ref()
    }

    /// The slow start of the cluster's endpoints, when it has `warmup`.
    pub(crate) fn warmup(&self) -> Option<&Warmup> {
        self.warmup.as_ref()
    }

    /// Round robin's pick while an endpoint warms up; `None`: round robin as usual.
    pub(crate) fn warming_pick(&self) -> Option<usize> {
        self.warmup.as_ref()?.pick(None, Instant::now())
    }
}

/// The key of the affinity tokens: HKDF (HMAC-SHA256, from the TLS provider) extracted
/// from a secret; an endpoint's token is the first 8 bytes expanded from its address.
pub(crate) struct TokenKey(Box<dyn HkdfExpander>);

impl TokenKey {
    /// The key from `secret`, or from 32 random bytes; `None` when the provider has no
    /// TLS 1.3 suite to take HKDF from, or no randomness.
    pub(crate) fn new(provider: &CryptoProvider, secret: Option<&[u8]>) -> Option<Self> {
        let hkdf = provider
            .cipher_suites
            .iter()
            .find_map(|s| s.tls13())?
            .hkdf_provider;
        let mut random = [0u8; 32];
        let secret = match secret {
            Some(s) => s,
            None => {
                provider.secure_random.fill(&mut random).ok()?;
                &random
            }
        };
        Some(Self(hkdf.extract_from_secret(None, secret)))
    }

    pub(crate) fn token(&self, addr: &SocketAddr) -> u64 {
        let ip = match addr.ip() {
            IpAddr::V4(ip) => ip.to_ipv6_mapped().octets(),
            IpAddr::V6(ip) => ip.octets(),
        };
        let block = self
            .0
            .expand_block(&[b"affinity", &ip, &addr.port().to_be_bytes()]);
        let mut first = [0u8; 8];
        for (d, s) in first.iter_mut().zip(block.as_ref()) {
            *d = *s;
        }
        u64::from_be_bytes(first)
    }
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

/// The index of the endpoint of `addrs` the request goes to under `balance`, with what
/// it needs besides; `None` leaves the request to round robin (the cluster has what it
/// takes for no other choice, e.g. one endpoint). `rr`: the cluster's round-robin pick,
/// for new affinity sessions and ties. `health`: the cluster's outlier state; an ejected
/// endpoint is passed over for the next one that is not (see [`super::outlier`]).
pub(crate) fn pick(
    b: &Balancing,
    (addrs, health): (&[SocketAddr], Option<&ClusterHealth>),
    balance: &Balance,
    src: &KeySource<'_>,
    rr: impl FnOnce() -> usize,
    extras: &mut Extras,
) -> Option<usize> {
    let avoid = |i: usize| health.map_or(i, |h| h.avoid(i));
    match balance {
        Balance::LeastConn => {
            let load = b.load.as_ref()?;
            let warming = b
                .warmup
                .as_ref()
                .and_then(|w| w.pick(Some(load), Instant::now()));
            let i = avoid(match warming {
                Some(i) => i,
                None => load.least(rr())?,
            });
            extras.load = Some(load.start(i, false));
            Some(i)
        }
        Balance::Random | Balance::Ewma => {
            let load = b.load.as_ref()?;
            let ewma = matches!(balance, Balance::Ewma);
            let i = avoid(load.two_choices(ewma)?);
            extras.load = Some(load.start(i, ewma));
            Some(i)
        }
        Balance::Hash(key) => b.ring.as_ref()?.endpoint(hash_of(key, src)).map(avoid),
        Balance::HashSubset(key, _) => {
            let s = b.subsets.as_ref()?;
            let members = s.members.get(s.ring.endpoint(hash_of(key, src))?)?;
            let i = members.get(fastrand::usize(..members.len().max(1)))?;
            Some(avoid(*i as usize))
        }
        Balance::Cookie(c) => {
            let tokens = b.tokens.as_deref()?;
            let held = src.head.cookie(&c.name).and_then(|v| find(tokens, v));
            match held {
                Some(i) if !health.is_some_and(|h| h.is_out(i)) => return Some(i),
                // Its endpoint is ejected: another one, and the cookie moves to it only
                // with `session-cookie-change-on-failure`.
                Some(_) if !c.change_on_failure => return Some(avoid(rr() % addrs.len().max(1))),
                _ => {}
            }
            let i = avoid(rr() % addrs.len().max(1));
            let token = tokens.iter().find(|t| t.1 as usize == i)?.0;
            let agent = src.head.headers.and_then(|h| h.get(USER_AGENT));
            let agent = agent.and_then(|a| a.to_str().ok()).unwrap_or("");
            extras.set_cookie =
                set_cookie(c, token, (agent, src.tls), SystemTime::now()).map(Box::new);
            Some(i)
        }
        _ => None,
    }
}

/// `session-cookie-change-on-failure`: after a request of a cookie-affinity route failed
/// over from its endpoint to `used`, the `Set-Cookie` that points the client at `used`;
/// `None` when the route has no such affinity. `headers`: the request's (its
/// `User-Agent` decides `SameSite=None`).
pub(crate) fn failed_over(
    table: &crate::table::SharedTable,
    policy: Option<&mse_router::RoutePolicy>,
    used: &crate::upstream::Upstream,
    (headers, tls): (&http::HeaderMap, bool),
) -> Option<Box<HeaderValue>> {
    let Some(Balance::Cookie(c)) = policy.and_then(|p| p.balance.as_ref()) else {
        return None;
    };
    let crate::upstream::Upstream::Addr(addr) = used else {
        return None;
    };
    if !c.change_on_failure {
        return None;
    }
    let token = table.affinity_token(addr)?;
    let agent = headers.get(USER_AGENT).and_then(|a| a.to_str().ok());
    set_cookie(c, token, (agent.unwrap_or(""), tls), SystemTime::now()).map(Box::new)
}

/// The endpoint a cookie's token names, if it is one of `tokens`.
fn find(tokens: &[(u64, u32)], value: &str) -> Option<usize> {
    let token = u64::from_str_radix(value, 16)
        .ok()
        .filter(|_| value.len() == 16)?;
    let i = tokens.binary_search_by_key(&token, |t| t.0).ok()?;
    tokens.get(i).map(|t| t.1 as usize)
}

/// Whether the request carries an affinity cookie naming an endpoint of the cluster.
pub(crate) fn affinitized(b: &Balancing, c: &CookieAffinity, head: &RequestHead<'_>) -> bool {
    let Some(tokens) = b.tokens.as_deref() else {
        return false;
    };
    head.cookie(&c.name).and_then(|v| find(tokens, v)).is_some()
}

/// Where a request goes when it holds an affinity cookie: the main route's backend when
/// the cookie names one of its endpoints, else a sticky canary whose endpoint it names.
/// `None`: the canary rules decide. Only routes with canaries get here.
pub(crate) fn sticky_destination<'t>(
    route: &'t Route,
    head: &RequestHead<'_>,
    balancing: impl Fn(&Backend) -> Option<&'t Balancing>,
) -> Option<Destination<'t>> {
    let cookie_of = |policy: Option<&'t Arc<mse_router::RoutePolicy>>| match policy
        .and_then(|p| p.balance.as_ref())
    {
        Some(Balance::Cookie(c)) => Some(Arc::clone(c)),
        _ => None,
    };
    let holds = |backend: &Backend, c: &CookieAffinity| {
        balancing(backend).is_some_and(|b| affinitized(b, c, head))
    };
    if let Some(c) = cookie_of(route.policy.as_ref())
        && holds(&route.backend, &c)
    {
        return Some(Destination {
            backend: &route.backend,
            policy: route.policy.as_ref(),
            canary: None,
        });
    }
    let versions = route.canary.as_deref()?.versions.iter();
    for v in versions.filter(|v| v.ready) {
        if let Some(c) = cookie_of(v.policy.as_ref())
            && c.sticky_canary
            && holds(&v.backend, &c)
        {
            return Some(Destination {
                backend: &v.backend,
                policy: v.policy.as_ref(),
                canary: Some(v),
            });
        }
    }
    None
}

fn hash_of(key: &HashKey, src: &KeySource<'_>) -> u64 {
    let mut h = DefaultHasher::new();
    feed(key, src, &mut h);
    h.finish()
}

/// Feeds the part of the request `key` names to `h`; a missing part as empty. Each part
/// is length-prefixed, so that `$a$b` never confuses `x`,`yz` with `xy`,`z`.
fn feed(key: &HashKey, src: &KeySource<'_>, h: &mut DefaultHasher) {
    match key {
        HashKey::ClientIp => match src.client {
            IpAddr::V4(ip) => ip.octets()[..].hash(h),
            IpAddr::V6(ip) => ip.octets()[..].hash(h),
        },
        HashKey::RequestUri => {
            let uri = src.uri.path_and_query().map_or("/", |p| p.as_str());
            uri.as_bytes().hash(h);
        }
        HashKey::Host => src.head.host.as_bytes().hash(h),
        HashKey::Header(name) => {
            let v = src.head.headers.and_then(|m| m.get(name.as_str()));
            v.map_or(&b""[..], HeaderValue::as_bytes).hash(h);
        }
        HashKey::Query(name) => src.head.query_value(name).unwrap_or("").as_bytes().hash(h),
        HashKey::Cookie(name) => src.head.cookie(name).unwrap_or("").as_bytes().hash(h),
        HashKey::Combined(parts) => {
            for p in parts {
                feed(p, src, h);
            }
        }
    }
}

/// `Set-Cookie` for a new affinity session on the endpoint of `token`.
fn set_cookie(
    c: &CookieAffinity,
    token: u64,
    (agent, tls): (&str, bool),
    now: SystemTime,
) -> Option<HeaderValue> {
    use std::fmt::Write;
    let mut v = format!("{}={token:016x}; Path={}", c.name, c.path);
    if let Some(age) = c.max_age {
        let _ = write!(v, "; Max-Age={}", age.as_secs());
    }
    if let Some(after) = c.expires {
        let _ = write!(v, "; Expires={}", httpdate::fmt_http_date(now + after));
    }
    if let Some(domain) = &c.domain {
        let _ = write!(v, "; Domain={domain}");
    }
    if c.secure || tls {
        v.push_str("; Secure");
    }
    match c.same_site {
        Some(SameSite::Lax) => v.push_str("; SameSite=Lax"),
        Some(SameSite::Strict) => v.push_str("; SameSite=Strict"),
        Some(SameSite::None)
            if !(c.conditional_same_site_none && rejects_same_site_none(agent)) =>
        {
            v.push_str("; SameSite=None");
        }
        _ => {}
    }
    v.push_str("; HttpOnly");
    HeaderValue::from_str(&v).ok()
}

/// The browsers that reject `SameSite=None` cookies (they drop the cookie or read it as
/// `Strict`): Chrome and Chromium 51 to 66, every browser on iOS 12, Safari on macOS
/// 10.14.
fn rejects_same_site_none(agent: &str) -> bool {
    let chrome = ["Chrome/", "Chromium/"].iter().any(|p| {
        agent.split(p).nth(1).is_some_and(|rest| {
            let major = rest.split('.').next().and_then(|m| m.parse::<u32>().ok());
            major.is_some_and(|m| (51..=66).contains(&m))
        })
    });
    let ios12 = agent.contains("iP") && agent.contains(" OS 12_");
    let mac_safari = agent.contains("Mac OS X 10_14")
        && agent.contains("Version/")
        && agent.contains("Safari")
        && !agent.contains("Chrom");
    chrome || ios12 || mac_safari
}

#[cfg(test)]
mod tests {
    use super::rejects_same_site_none;

    #[test]
    fn the_browsers_that_reject_same_site_none() {
        for agent in [
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/66.0.3359.181 Safari/537.36",
            "Mozilla/5.0 (Linux) Chromium/51.0.2704.0 Safari/537.36",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 12_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/12.1.2 Mobile/15E148 Safari/604.1",
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/12.1.2 Safari/605.1.15",
        ] {
            assert!(rejects_same_site_none(agent), "{agent}");
        }
        for agent in [
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
            "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
            "curl/8.5.0",
        ] {
            assert!(!rejects_same_site_none(agent), "{agent}");
        }
    }
}
