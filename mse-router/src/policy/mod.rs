//! [`RoutePolicy`]: what the data plane does to a route's requests besides forwarding them,
//! built once per Ingress from its annotations and shared by all of its routes.
//!
//! Each policy has a module here with its configuration, its compile step and the
//! methods the data plane calls, and a [`Registration`] in [`POLICIES`]: the annotation
//! groups and keys it applies (every other valid key gets the `not-applied` warning) and
//! its `build`, which fills its part of the [`RoutePolicy`] from the parsed annotations.
//! Adding a policy is its module, its field in [`RoutePolicy`] and one line in
//! [`POLICIES`]; its request-time half joins the data plane's phases from a module of
//! its own there. Policies that need other objects of the snapshot (Services,
//! ConfigMaps) are completed by the compiler after `build`; those compiled into the
//! route's match register only their keys.

use std::sync::{Arc, OnceLock};

use http::{HeaderMap, HeaderName, HeaderValue};
use mse_annotations::{BodySize, Group, IngressPolicy, KeySpec, RewriteTarget};

mod access;
mod access_log;
mod auth;
mod balance;
mod body;
mod cors;
mod exchange;
mod fallback;
mod headers;
mod limit;
mod matched;
mod mirror;
mod redirect;
mod rewrite;
mod shared_limit;
mod upstream;

pub use access::{AccessRules, IngressAccess, Refusal};
pub(crate) use auth::stored;
pub use auth::{
    AnswerCache, AuthPolicy, BasicAuthPolicy, CacheKey, CacheValid, EXTERNAL_AUTH_TIMEOUT,
    ExternalAuthPolicy, HashKind, KeyPart, KeyVar, StoredHash, parse_htpasswd,
};
pub use balance::{Balance, CookieAffinity};
pub use cors::{AllowedOrigin, CorsPolicy};
pub use exchange::{ConnectionLimits, ExchangePolicy, RetryPolicy};
pub use fallback::FallbackPolicy;
pub(crate) use headers::protected_header;
pub use headers::{HeaderOps, LocationRewrite};
pub use limit::{LocalLimits, Rate};
pub use mirror::MirrorPolicy;
pub(crate) use redirect::to_https;
pub use redirect::{Location, Redirect, RedirectVars};
use rewrite::X_FORWARDED_PREFIX;
pub use shared_limit::{LimitAnswer, SharedLimit, SharedLimits};
pub use upstream::{UpstreamProtocol, UpstreamTls};

/// Every policy, in the order their `build` runs.
pub(crate) const POLICIES: &[Registration] = &[
    redirect::POLICY,
    headers::POLICY,
    rewrite::POLICY,
    cors::POLICY,
    mirror::POLICY,
    fallback::POLICY,
    body::POLICY,
    access_log::POLICY,
    access::POLICY,
    limit::POLICY,
    shared_limit::POLICY,
    auth::POLICY,
    balance::POLICY,
    exchange::POLICY,
    upstream::POLICY,
    matched::CONDITIONS,
    matched::CANARY,
    matched::SERVER_ALIAS,
    matched::HOST_TLS,
];

/// One policy as the compiler knows it.
pub(crate) struct Registration {
    /// A short name, for people reading the list.
    pub(crate) name: &'static str,
    /// The annotation groups it applies as a whole.
    pub(crate) groups: &'static [Group],
    /// Single keys (without prefix) it applies from groups it does not apply as a whole.
    pub(crate) keys: &'static [&'static str],
    /// Fills its fields of a [`RoutePolicy`] from the parsed annotations; pushes the
    /// annotations it cannot apply, with the reason.
    pub(crate) build: fn(&IngressPolicy, &mut RoutePolicy, &mut Vec<Refused>),
}

/// The name of the policy that applies annotation `spec`, if one does: a valid annotation
/// no policy applies is parsed but has no effect.
pub(crate) fn applies(spec: &KeySpec) -> Option<&'static str> {
    POLICIES
        .iter()
        .find(|r| r.groups.contains(&spec.group) || r.keys.contains(&spec.name))
        .map(|r| r.name)
}

/// For the policies compiled elsewhere: nothing to fill in from the annotations alone.
fn compiled_elsewhere(_: &IngressPolicy, _: &mut RoutePolicy, _: &mut Vec<Refused>) {}

/// An annotation that was refused: its key (without prefix) and why.
pub(crate) type Refused = (&'static str, String);

/// The annotations of one Ingress that act on its requests, ready for the data plane: one
/// field (or a few) per registered policy.
#[derive(Clone, Debug, Default)]
pub struct RoutePolicy {
    /// `temporal-redirect` or `permanent-redirect`: every request is answered with it.
    pub redirect: Option<Redirect>,
    /// `ssl-redirect` as written; `None` means the default: true when the host has a
    /// certificate. The router resolves it per route into [`Route::https_redirect`].
    ///
    /// [`Route::https_redirect`]: crate::Route::https_redirect
    pub ssl_redirect: Option<bool>,
    /// `force-ssl-redirect` as written; `None` means the gateway-wide default
    /// (`force-ssl-redirect` of the global configuration, false by default).
    pub force_ssl_redirect: Option<bool>,
    /// `app-root`: a request for exactly `/` gets a 302 to this path.
    pub app_root: Option<Box<str>>,
    /// `request-header-control-*`.
    pub request_headers: HeaderOps,
    /// `response-header-control-*`.
    pub response_headers: HeaderOps,
    /// `rewrite-path`, or a `rewrite-target` without capture groups on a path that is not
    /// a regex: replaces the matched prefix (or exact path, or the part a regex matched).
    pub rewrite: Option<Box<str>>,
    /// `rewrite-target` on regex paths: the whole path is replaced by the template, with
    /// `$n` taken from the path regex's capture groups.
    pub rewrite_template: Option<RewriteTarget>,
    /// `upstream-vhost`: the `Host` sent upstream.
    pub upstream_vhost: Option<HeaderValue>,
    /// `x-forwarded-prefix`: the value of the `X-Forwarded-Prefix` sent upstream.
    pub forwarded_prefix: Option<HeaderValue>,
    /// `connection-proxy-header`: the `Connection` header sent upstream.
    pub connection: Option<HeaderValue>,
    /// `proxy-redirect-from` and `-to`: how `Location` and `Refresh` of upstream answers
    /// are rewritten.
    pub location_rewrite: Option<LocationRewrite>,
    /// `enable-cors` and the `cors-*` keys.
    pub cors: Option<Arc<CorsPolicy>>,
    /// `mirror-target-*` and `mirror-percentage`, resolved by the compiler (it needs the
    /// Services), so building from annotations alone leaves it `None`.
    pub mirror: Option<Arc<MirrorPolicy>>,
    /// `default-backend` and `custom-http-errors`, resolved by the compiler once the
    /// Services are known (see [`FallbackPolicy`]).
    pub fallback: Option<FallbackPolicy>,
    /// `proxy-body-size`; `None`: the gateway-wide `proxy-body-size` applies.
    pub body_size: Option<BodySize>,
    /// `enable-access-log: "false"`: requests of these routes are not logged.
    pub no_access_log: bool,
    /// The IP lists of the Ingress (route and host level), compiled. The compiler folds
    /// them with the other Ingresses' host lists into each route's [`Route::access`],
    /// which is what requests are checked against.
    ///
    /// [`Route::access`]: crate::Route::access
    pub access: Option<Box<IngressAccess>>,
    /// `auth-type: basic` and `auth-url`, completed by the compiler (it needs the Secret
    /// and the Services), so building from annotations alone leaves it `None`.
    pub auth: Option<Arc<AuthPolicy>>,
    /// `load-balance`, `upstream-hash-by` and cookie affinity; `None`: round robin.
    pub balance: Option<Balance>,
    /// `route-limit-*` and `limit-*`: the local rate and connection limits.
    pub limits: Option<Box<LocalLimits>>,
    /// `rate-limit` and `concurrency-limit`: the limits shared by the replicas.
    pub shared_limits: Option<Box<SharedLimits>>,
    /// The timeouts and retries of the exchange; `None`: the gateway-wide timeouts, no
    /// retry on another endpoint.
    pub exchange: Option<Box<ExchangePolicy>>,
    /// Derived from the fields above on first use, once the policy is shared.
    head_plan: PlanCell,
}

/// What a data plane writing HTTP/1.1 request heads itself needs of a policy's request
/// header edits, derived once per policy ([`RoutePolicy::request_head_plan`]).
#[derive(Debug)]
pub struct RequestHeadPlan {
    /// `name: value\r\n` for every header [`RoutePolicy::edit_request`] sets or adds, in
    /// order.
    pub lines: Box<[u8]>,
    /// The request's own headers it takes out first (see
    /// [`RoutePolicy::replaces_request_header`]).
    pub replaced: Box<[HeaderName]>,
    /// Every header name the `request-header-control-*` edits name.
    pub edited: Box<[HeaderName]>,
}

/// A lazily derived [`RequestHeadPlan`]; a clone starts empty, since its fields may be
/// changed before it is used.
#[derive(Debug, Default)]
struct PlanCell(OnceLock<RequestHeadPlan>);

impl Clone for PlanCell {
    fn clone(&self) -> Self {
        Self::default()
    }
}

// === impl RoutePolicy ===

impl RoutePolicy {
    /// The policy of an Ingress, or `None` when none of its annotations act on requests:
    /// every registered policy's `build`, in [`POLICIES`] order. Annotations that cannot
    /// apply are returned with the reason.
    pub(crate) fn build(p: &IngressPolicy) -> (Option<Self>, Vec<Refused>) {
        let mut refused = Vec::new();
        let mut policy = Self::default();
        for r in POLICIES {
            (r.build)(p, &mut policy, &mut refused);
        }
        if policy.is_empty() {
            return (None, refused);
        }
        policy.request_headers.shrink();
        policy.response_headers.shrink();
        (Some(policy), refused)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.redirect.is_none()
            && self.ssl_redirect.is_none()
            && self.force_ssl_redirect.is_none()
            && self.body_size.is_none()
            && !self.no_access_log
            && self.app_root.is_none()
            && self.request_headers.is_empty()
            && self.response_headers.is_empty()
            && self.rewrite.is_none()
            && self.rewrite_template.is_none()
            && self.upstream_vhost.is_none()
            && self.forwarded_prefix.is_none()
            && self.connection.is_none()
            && self.location_rewrite.is_none()
            && self.cors.is_none()
            && self.mirror.is_none()
            && self.access.is_none()
            && self.auth.is_none()
            && self.balance.is_none()
            && self.limits.is_none()
            && self.shared_limits.is_none()
            && self.exchange.is_none()
    }

    /// How many headers [`Self::edit_request`] may add at most: room to reserve at once.
    pub fn request_headers_added(&self) -> usize {
        usize::from(self.upstream_vhost.is_some())
            + usize::from(self.forwarded_prefix.is_some())
            + usize::from(self.connection.is_some())
            + self.request_headers.update.len()
            + self.request_headers.add.len()
    }

    /// The request headers [`Self::edit_request`] takes out before adding its own:
    /// `Host` for `upstream-vhost`, `X-Forwarded-Prefix`, `Connection` for
    /// `connection-proxy-header`, and the removed and updated names of
    /// `request-header-control-*`.
    fn replaced_request_headers(&self) -> impl Iterator<Item = &HeaderName> {
        static HOST: HeaderName = http::header::HOST;
        static PREFIX: HeaderName = X_FORWARDED_PREFIX;
        static CONNECTION: HeaderName = http::header::CONNECTION;
        let host = self.upstream_vhost.as_ref().map(|_| &HOST);
        let prefix = self.forwarded_prefix.as_ref().map(|_| &PREFIX);
        let connection = self.connection.as_ref().map(|_| &CONNECTION);
        host.into_iter()
            .chain(prefix)
            .chain(connection)
            .chain(&self.request_headers.remove)
            .chain(self.request_headers.update.iter().map(|(n, _)| n))
    }

    /// Whether [`Self::edit_request`] removes or replaces the request's header `name`.
    pub fn replaces_request_header(&self, name: &HeaderName) -> bool {
        self.request_head_plan().replaced.contains(name)
    }

    /// The request header edits as a data plane writing HTTP/1.1 heads needs them, derived
    /// on the first call. Change no field of a policy after this is called.
    pub fn request_head_plan(&self) -> &RequestHeadPlan {
        self.head_plan.0.get_or_init(|| {
            let mut lines = Vec::new();
            self.for_each_request_header(|name, value| {
                for part in [name.as_str().as_bytes(), b": ", value.as_bytes(), b"\r\n"] {
                    lines.extend_from_slice(part);
                }
            });
            RequestHeadPlan {
                lines: lines.into(),
                replaced: self.replaced_request_headers().cloned().collect(),
                edited: self.request_headers.names().cloned().collect(),
            }
        })
    }

    /// Every header [`Self::edit_request`] sets or adds, in order: for a data plane that
    /// writes them straight into the upstream request, leaving out the request's own
    /// headers for which [`Self::replaces_request_header`] is true.
    pub fn for_each_request_header(&self, mut f: impl FnMut(&HeaderName, &HeaderValue)) {
        if let Some(host) = &self.upstream_vhost {
            f(&http::header::HOST, host);
        }
        if let Some(prefix) = &self.forwarded_prefix {
            f(&X_FORWARDED_PREFIX, prefix);
        }
        if let Some(connection) = &self.connection {
            f(&http::header::CONNECTION, connection);
        }
        for (n, v) in &self.request_headers.update {
            f(n, v);
        }
        for (n, v) in &self.request_headers.add {
            f(n, v);
        }
    }

    /// Applies `upstream-vhost`, `x-forwarded-prefix` and the request header edits to the
    /// headers sent upstream: the same two steps a data plane writing the head itself
    /// takes ([`Self::replaces_request_header`], [`Self::for_each_request_header`]).
    pub fn edit_request(&self, headers: &mut HeaderMap) {
        for name in self.replaced_request_headers() {
            headers.remove(name);
        }
        self.for_each_request_header(|name, value| {
            headers.append(name.clone(), value.clone());
        });
    }
}

#[cfg(test)]
mod tests;
