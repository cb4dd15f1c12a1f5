//! Canary releases: the canary Ingresses paired with one main route, and the choice of
//! destination per request.
//!
//! Within one canary Ingress the ingress-nginx order applies: `canary-by-header`, then
//! `canary-by-query`, then `canary-by-cookie`, then `canary-weight`. A header (query,
//! cookie) `always` or the configured value sends the request to that canary; `never`
//! forbids that canary for the request; anything else falls through. Several canaries may
//! pair with one route: their request rules are tried in creation order and the first that
//! selects its canary wins; otherwise the weights of all of them split the traffic, and the
//! share of a forbidden canary stays on the main route.

use std::sync::Arc;

use http::HeaderName;
use mse_annotations::{Canary, CanaryMatch, CanaryRule};
use mse_model::ObjectKey;
use serde::Serialize;

use crate::matching::RequestHead;
use crate::policy::RoutePolicy;
use crate::table::{Backend, Route};

/// Weights are kept in parts per million of all requests.
pub const WEIGHT_SCALE: u32 = 1_000_000;

/// The canaries of one main route, in creation order.
#[derive(Clone, Debug, Serialize)]
pub struct Canaries {
    /// Each canary version.
    pub versions: Box<[CanaryVersion]>,
    /// Whether any version has a header, query or cookie rule (else only weights count).
    #[serde(skip)]
    pub(crate) by_request: bool,
}

/// One canary Ingress paired with a main route.
#[derive(Clone, Debug, Serialize)]
pub struct CanaryVersion {
    /// The canary Ingress.
    pub ingress: ObjectKey,
    /// Where in it: `spec.rules[0].http.paths[1]`.
    pub field: Box<str>,
    /// Its backend.
    pub backend: Backend,
    /// Whether the backend has a ready endpoint; when it has none, requests chosen for
    /// this canary go to the main route's backend instead.
    pub ready: bool,
    /// The main route's policy, with the canary's own header control.
    #[serde(skip)]
    pub policy: Option<Arc<RoutePolicy>>,
    /// Share of all requests, in parts per [`WEIGHT_SCALE`], after normalisation.
    pub share: u32,
    #[serde(skip)]
    rules: Rules,
}

#[derive(Clone, Debug, Default)]
struct Rules {
    /// The header rule with its name parsed once.
    header: Option<(HeaderName, CanaryRule)>,
    query: Option<CanaryRule>,
    cookie: Option<CanaryRule>,
}

/// What one request attribute says about one canary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    /// Send it to this canary.
    Force,
    /// Never to this canary.
    Forbid,
    /// Fall through.
    Pass,
}

/// Where a request goes after the canaries had their say.
#[derive(Clone, Copy, Debug)]
pub struct Destination<'t> {
    /// The backend.
    pub backend: &'t Backend,
    /// The policy to apply: the main route's, or the canary's (header control differs).
    pub policy: Option<&'t Arc<RoutePolicy>>,
    /// The canary chosen, `None` for the main route.
    pub canary: Option<&'t CanaryVersion>,
}

impl CanaryVersion {
    /// A canary version from its parsed annotations; `share` is set by
    /// [`Canaries::new`].
    pub(crate) fn new(
        ingress: ObjectKey,
        field: Box<str>,
        backend: Backend,
        ready: bool,
        policy: Option<Arc<RoutePolicy>>,
        canary: &Canary,
    ) -> Self {
        let share = if canary.weight_total == 0 {
            0
        } else {
            let s = u64::from(canary.weight.min(canary.weight_total)) * u64::from(WEIGHT_SCALE)
                / u64::from(canary.weight_total);
            u32::try_from(s).unwrap_or(WEIGHT_SCALE)
        };
        Self {
            ingress,
            field,
            backend,
            ready,
            policy,
            share,
            rules: Rules {
                header: canary.header.as_ref().and_then(|r| {
                    Some((HeaderName::from_bytes(r.name.as_bytes()).ok()?, r.clone()))
                }),
                query: canary.query.clone(),
                cookie: canary.cookie.clone(),
            },
        }
    }

    fn verdict(&self, req: &RequestHead<'_>) -> Verdict {
        let r = &self.rules;
        if let Some((name, rule)) = &r.header {
            let v = judge(rule, req.header(name));
            if v != Verdict::Pass {
                return v;
            }
        }
        if let Some(rule) = &r.query {
            let v = judge(rule, req.query_value(&rule.name));
            if v != Verdict::Pass {
                return v;
            }
        }
        if let Some(rule) = &r.cookie {
            return judge(rule, req.cookie(&rule.name));
        }
        Verdict::Pass
    }
}

fn judge(rule: &CanaryRule, value: Option<&str>) -> Verdict {
    let Some(v) = value else {
        return Verdict::Pass;
    };
    let hit = match &rule.matcher {
        CanaryMatch::AlwaysNever => match v {
            "always" => true,
            "never" => return Verdict::Forbid,
            _ => false,
        },
        CanaryMatch::Value(want) => v == want,
        CanaryMatch::Pattern(re) => re.is_match(v),
    };
    if hit { Verdict::Force } else { Verdict::Pass }
}

impl Canaries {
    /// The canaries of one route, in creation order. When their shares add up to more than
    /// all requests, they are scaled down proportionally.
    pub(crate) fn new(mut versions: Vec<CanaryVersion>) -> Self {
        let total: u64 = versions.iter().map(|v| u64::from(v.share)).sum();
        if total > u64::from(WEIGHT_SCALE) {
            for v in &mut versions {
                let s = u64::from(v.share) * u64::from(WEIGHT_SCALE) / total;
                v.share = u32::try_from(s).unwrap_or(WEIGHT_SCALE);
            }
        }
        let by_request = versions.iter().any(|v| {
            v.rules.header.is_some() || v.rules.query.is_some() || v.rules.cookie.is_some()
        });
        Self {
            versions: versions.into(),
            by_request,
        }
    }

    /// The version `req` goes to, if any: the first whose request rules select it, else
    /// by weight with `roll` (uniform in `0..WEIGHT_SCALE`). A canary that its rules
    /// forbid or that has no ready endpoint leaves the request on the main route.
    pub fn choose(&self, req: &RequestHead<'_>, roll: u32) -> Option<&CanaryVersion> {
        // At most 64 versions can be forbidden one by one; more is beyond any real use,
        // and those beyond 64 simply cannot be forbidden by `never`.
        let mut forbidden = 0u64;
        if self.by_request {
            for (i, v) in self.versions.iter().enumerate() {
                match v.verdict(req) {
                    Verdict::Force => return v.ready.then_some(v),
                    Verdict::Forbid if i < 64 => forbidden |= 1 << i,
                    _ => {}
                }
            }
        }
        let mut acc = 0u32;
        for (i, v) in self.versions.iter().enumerate() {
            if v.share == 0 {
                continue;
            }
            acc = acc.saturating_add(v.share);
            if roll < acc {
                let allowed = i >= 64 || forbidden & (1 << i) == 0;
                return (allowed && v.ready).then_some(v);
            }
        }
        None
    }
}

impl Route {
    /// Where this request goes: a canary's backend when one is chosen (see
    /// [`Canaries::choose`]), else the route's own. `roll` is uniform in
    /// `0..`[`WEIGHT_SCALE`]; it only matters for weighted canaries.
    pub fn destination(&self, req: &RequestHead<'_>, roll: u32) -> Destination<'_> {
        if let Some(v) = self.canary.as_deref().and_then(|c| c.choose(req, roll)) {
            return Destination {
                backend: &v.backend,
                policy: v.policy.as_ref(),
                canary: Some(v),
            };
        }
        Destination {
            backend: &self.backend,
            policy: self.policy.as_ref(),
            canary: None,
        }
    }
}
