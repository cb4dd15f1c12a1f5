//! The compiled, immutable route table and request matching.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use mse_annotations::global::GlobalConfig;
use mse_model::{Diagnostic, ObjectKey, SourceRef};
use serde::Serialize;

use crate::canary::Canaries;
use crate::host::{HostMatch, normalize_host, wildcard_suffix};
use crate::matching::{Conditions, RequestHead};
use crate::path::PathMatch;
use crate::policy::{AccessRules, RedirectVars, RoutePolicy};
use crate::tls::{CertId, Certificate, HostTls, SniEntry, TlsPolicyId, TlsTable};

/// Index of a [`Route`] in [`RouteTable::routes`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct RouteId(pub u32);

/// Index of a [`Cluster`] in [`RouteTable::clusters`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ClusterId(pub u32);

/// One path of one Ingress rule (or an Ingress's `spec.defaultBackend`), compiled.
#[derive(Clone, Debug, Serialize)]
pub struct Route {
    /// Its index in [`RouteTable::routes`].
    pub id: RouteId,
    /// The hosts it serves.
    pub host: HostMatch,
    /// How it matches the path. A default-backend route is `Prefix /`.
    pub path: PathMatch,
    /// `ignore-path-case`: an Exact or Prefix path compared without regard to ASCII case
    /// (regex paths carry the flag in the regex).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub ignore_case: bool,
    /// Conditions besides host and path (`match-method`, `*-match-header-*`, ...), shared
    /// by the Ingress's routes; `None` when there are none.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "conditions_text"
    )]
    pub conditions: Option<Arc<Conditions>>,
    /// Whether it comes from `spec.defaultBackend`: then it is tried only after every
    /// rule of its host failed to match.
    pub default_backend: bool,
    /// The Ingress that defined it.
    pub ingress: ObjectKey,
    /// Where in the Ingress: `spec.rules[0].http.paths[1]` or `spec.defaultBackend`.
    pub field: Box<str>,
    /// File and line of the Ingress, in file mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceRef>,
    /// Where matching requests go.
    pub backend: Backend,
    /// Redirects, header edits and rewrites from the Ingress's annotations, shared by all
    /// of its routes; `None` when it has none.
    #[serde(skip)]
    pub policy: Option<Arc<RoutePolicy>>,
    /// The canary Ingresses paired with this route, when there are any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary: Option<Box<Canaries>>,
    /// Whether plaintext requests get a 308 to HTTPS: `force-ssl-redirect`, else
    /// `ssl-redirect`, which defaults to true when the host has a certificate of its own.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub https_redirect: bool,
    /// Whether the route's host has a certificate of its own (not the default one): its
    /// HTTPS answers get `Strict-Transport-Security` when the global `hsts` is on.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub own_certificate: bool,
    /// The IP lists its requests must pass after the gateway's: its Ingress's lists, and
    /// the host lists of every Ingress of its host where its own Ingress has no list of
    /// that kind (see [`AccessRules`]); `None` when there are none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access: Option<Arc<AccessRules>>,
}

/// Where a route sends requests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// A Service port, resolved to a [`Cluster`].
    Cluster(ClusterId),
    /// The backend could not be resolved (missing Service or port, unsupported backend
    /// kind). The route still matches, and answers 503 with this reason.
    Unavailable {
        /// Why, for logs and the response.
        reason: Arc<str>,
    },
}

/// One Service port, with the addresses that serve it.
#[derive(Clone, Debug, Serialize)]
pub struct Cluster {
    /// Its index in [`RouteTable::clusters`].
    pub id: ClusterId,
    /// The Service.
    pub service: ObjectKey,
    /// The Service port (`spec.ports[].port`).
    pub port: u16,
    /// The Service port's name, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_name: Option<Box<str>>,
    /// The addresses to connect to.
    pub target: ClusterTarget,
    /// How its endpoints are spoken to, when not plain HTTP/1.1 (`backend-protocol`,
    /// `proxy-ssl-*`, or the Service port's name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Arc<crate::policy::UpstreamProtocol>>,
    /// How its addresses were chosen when not as every endpoint of the Service port:
    /// `service-upstream` (the cluster IP) or `service-subset` (the pods of a subset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selection: Option<Box<str>>,
    /// `warmup`: a new endpoint's share of requests grows to its full share over this
    /// time (round robin and least_conn).
    #[serde(
        rename = "warmup_ms",
        skip_serializing_if = "Option::is_none",
        serialize_with = "millis"
    )]
    pub warmup: Option<std::time::Duration>,
}

fn millis<S: serde::Serializer>(d: &Option<std::time::Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        None => s.serialize_none(),
    }
}

/// The addresses behind a [`Cluster`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClusterTarget {
    /// Ready endpoint addresses with the resolved target port. Empty means no ready
    /// endpoint: requests get 503.
    Endpoints(Arc<[SocketAddr]>),
    /// A Service of type ExternalName: the data plane resolves `host` by DNS.
    ExternalName {
        /// The DNS name.
        host: Box<str>,
        /// The port to connect to.
        port: u16,
    },
}

/// How the host of a request matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HostKind {
    /// An exact host name.
    Exact,
    /// A `*.` wildcard.
    Wildcard,
    /// A rule without a host.
    Any,
}

/// The result of [`RouteTable::lookup`]: the route, and why it was chosen.
#[derive(Clone, Copy, Debug)]
pub struct Match<'t> {
    /// The route that matched.
    pub route: &'t Route,
    /// How the host matched.
    pub host: HostKind,
    /// The route's cluster, when its backend resolved.
    pub cluster: Option<&'t Cluster>,
}

impl Route {
    /// Whether some request may be answered with a redirect instead of being forwarded,
    /// over TLS (`tls`) or not.
    pub fn may_redirect(&self, tls: bool) -> bool {
        (self.https_redirect && !tls) || self.policy.as_ref().is_some_and(|p| p.may_redirect())
    }

    /// The redirect that answers this request, if any (see [`RoutePolicy::redirect_for`]).
    pub fn redirect_for(
        &self,
        tls: bool,
        vars: &RedirectVars<'_>,
    ) -> Option<(http::StatusCode, http::HeaderValue)> {
        match &self.policy {
            Some(p) => p.redirect_for(tls, self.https_redirect, vars),
            None if self.https_redirect && !tls => crate::policy::to_https(vars),
            None => None,
        }
    }
}

impl Match<'_> {
    /// A one-line explanation: which host and path rule won, from which Ingress.
    pub fn why(&self) -> String {
        let host = match self.host {
            HostKind::Exact => format!("host {} (exact)", self.route.host),
            HostKind::Wildcard => format!("host {} (wildcard)", self.route.host),
            HostKind::Any => "any host (rule without host)".to_owned(),
        };
        let path = if self.route.default_backend {
            "no path matched, so the default backend".to_owned()
        } else {
            format!("path {}", self.route.path)
        };
        format!(
            "{host}, {path}, from {} {}",
            self.route.ingress, self.route.field
        )
    }
}

impl fmt::Display for Match<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.why())
    }
}

/// The map type of the lookup indexes. Keys come from configuration, never from clients,
/// and the hasher is randomly seeded, so a fast non-cryptographic hash is safe here.
pub(crate) type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// The routes that share one host pattern and path, in the order they are tried: more
/// specific match conditions first, then age. Almost always a single route.
#[derive(Clone, Debug)]
pub(crate) enum Candidates {
    One(RouteId),
    Many(Box<[RouteId]>),
}

impl Candidates {
    pub(crate) fn ids(&self) -> &[RouteId] {
        match self {
            Candidates::One(id) => std::slice::from_ref(id),
            Candidates::Many(ids) => ids,
        }
    }

    /// The first route whose conditions `req` meets. With `conditional` set, only routes
    /// with conditions (`Some(true)`) or only routes without (`Some(false)`) are tried.
    fn pick(
        &self,
        routes: &[Route],
        req: &RequestHead<'_>,
        conditional: Option<bool>,
    ) -> Option<RouteId> {
        self.ids().iter().copied().find(|id| {
            let c = routes[id.0 as usize].conditions.as_deref();
            conditional.is_none_or(|want| want == c.is_some()) && c.is_none_or(|c| c.matches(req))
        })
    }
}

/// The routes of one host pattern, indexed for lookup.
#[derive(Clone, Debug, Default)]
pub(crate) struct VirtualHost {
    pub(crate) exact: FastMap<Box<str>, Candidates>,
    /// Keyed by the prefix without trailing slash (`""` for `/`).
    pub(crate) prefix: FastMap<Box<str>, Candidates>,
    /// `ignore-path-case` Exact routes, keyed by the ASCII-lowercased path.
    pub(crate) exact_ci: FastMap<Box<str>, Candidates>,
    /// `ignore-path-case` Prefix routes, keyed by the ASCII-lowercased prefix.
    pub(crate) prefix_ci: FastMap<Box<str>, Candidates>,
    /// Regex routes in the order they are tried: longer pattern first, then conditions,
    /// then age.
    pub(crate) regex: Vec<RouteId>,
    /// All of `regex` at once, when there are enough of them to be worth it.
    pub(crate) regex_set: Option<regex::RegexSet>,
    /// The `spec.defaultBackend` route used when no path matched.
    pub(crate) fallback: Option<RouteId>,
}

/// From this many regex routes on, one host matches them with a single `RegexSet` pass.
const REGEX_SET_FROM: usize = 8;

impl VirtualHost {
    /// Exact paths, then Prefix paths by segment, longest first (the catch-all `/` last),
    /// then regex paths, then the Ingress default backend. Routes without
    /// `ignore-path-case` come before those with it at the same step.
    fn find(&self, routes: &[Route], req: &RequestHead<'_>) -> Option<RouteId> {
        let path = req.path;
        if let Some(id) = self.exact.get(path).and_then(|c| c.pick(routes, req, None)) {
            return Some(id);
        }
        let folded = (!self.exact_ci.is_empty() || !self.prefix_ci.is_empty())
            .then(|| path.to_ascii_lowercase());
        if let Some(id) = folded
            .as_deref()
            .and_then(|p| self.exact_ci.get(p))
            .and_then(|c| c.pick(routes, req, None))
        {
            return Some(id);
        }
        // Longest prefix first, by path segment: the whole path, then the path cut at each
        // '/' from the right ("/a/b" -> "/a/b", "/a"); the root comes after regexes.
        let trimmed = path.strip_suffix('/').unwrap_or(path);
        let mut end = trimmed.len();
        if !self.prefix.is_empty() || !self.prefix_ci.is_empty() {
            while end > 0 {
                let cut = &trimmed[..end];
                if let Some(id) = self.prefix_at(routes, req, cut, folded.as_deref(), None) {
                    return Some(id);
                }
                end = cut.rfind('/').unwrap_or(0);
            }
        }
        // The root: routes with conditions, then regexes, then the catch-all.
        let root = self.prefix.get("");
        let root_ci = folded.as_ref().and_then(|_| self.prefix_ci.get(""));
        let conditional = |c: &Candidates| {
            (c.ids().len() > 1 || routes[c.ids()[0].0 as usize].conditions.is_some())
                .then(|| c.pick(routes, req, Some(true)))
                .flatten()
        };
        if let Some(id) = [root, root_ci].into_iter().flatten().find_map(conditional) {
            return Some(id);
        }
        if let Some(id) = self.find_regex(routes, req) {
            return Some(id);
        }
        if let Some(id) = [root, root_ci]
            .into_iter()
            .flatten()
            .find_map(|c| c.pick(routes, req, Some(false)))
        {
            return Some(id);
        }
        self.fallback
    }

    /// The routes at prefix `cut` (a prefix of the path), then the `ignore-path-case`
    /// routes at the same prefix of the folded path.
    fn prefix_at(
        &self,
        routes: &[Route],
        req: &RequestHead<'_>,
        cut: &str,
        folded: Option<&str>,
        conditional: Option<bool>,
    ) -> Option<RouteId> {
        if let Some(id) = self
            .prefix
            .get(cut)
            .and_then(|c| c.pick(routes, req, conditional))
        {
            return Some(id);
        }
        // ASCII folding keeps byte offsets, so the same cut applies to the folded path.
        let f = folded?.get(..cut.len())?;
        self.prefix_ci.get(f)?.pick(routes, req, conditional)
    }

    fn find_regex(&self, routes: &[Route], req: &RequestHead<'_>) -> Option<RouteId> {
        if self.regex.is_empty() {
            return None;
        }
        let fits = |id: &RouteId| {
            routes[id.0 as usize]
                .conditions
                .as_deref()
                .is_none_or(|c| c.matches(req))
        };
        match &self.regex_set {
            Some(set) => set
                .matches(req.path)
                .iter()
                .map(|i| self.regex[i])
                .find(fits),
            None => self
                .regex
                .iter()
                .copied()
                .find(|id| routes[id.0 as usize].path.matches(req.path) && fits(id)),
        }
    }

    /// Builds the `RegexSet` once every regex route is in place.
    pub(crate) fn seal(&mut self, routes: &[Route]) {
        if self.regex.len() < REGEX_SET_FROM {
            return;
        }
        let patterns = self
            .regex
            .iter()
            .filter_map(|id| match &routes[id.0 as usize].path {
                PathMatch::Regex(r) => Some(r.regex().as_str()),
                _ => None,
            });
        // Too large a set just means one regex at a time.
        self.regex_set = regex::RegexSetBuilder::new(patterns)
            .size_limit(mse_annotations::value::REGEX_SIZE_LIMIT * 8)
            .dfa_size_limit(mse_annotations::value::REGEX_SIZE_LIMIT * 8)
            .build()
            .ok();
    }
}

/// The compiled route table: immutable, cheap to share, and matched without locks.
///
/// Built by [`crate::compile`]; a data plane swaps a whole new table in on every change.
#[derive(Clone, Debug, Default)]
pub struct RouteTable {
    pub(crate) generation: u64,
    pub(crate) routes: Vec<Route>,
    pub(crate) clusters: Vec<Cluster>,
    pub(crate) vhosts: Vec<(HostMatch, VirtualHost)>,
    pub(crate) exact_hosts: FastMap<Box<str>, u32>,
    pub(crate) wildcard_hosts: FastMap<Box<str>, u32>,
    pub(crate) any_host: Option<u32>,
    pub(crate) tls: TlsTable,
    pub(crate) diagnostics: Vec<Diagnostic>,
    /// The Ingresses class selection chose, in age order.
    pub(crate) ingresses: Vec<ObjectKey>,
    /// The gateway-wide default backend, for requests no route matches.
    pub(crate) default_backend: Option<ClusterId>,
    /// The gateway-wide configuration compiled with the table.
    pub(crate) global: Arc<GlobalConfig>,
    /// The gateway-wide IP lists of [`Self::global`], compiled.
    pub(crate) access: Option<Arc<AccessRules>>,
}

impl RouteTable {
    /// A table with no routes: every request gets 404.
    pub fn empty() -> Self {
        Self::default()
    }

    /// The generation of the snapshot this table was compiled from.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The gateway-wide IP lists, compiled; `None` when there are none. (A list that
    /// failed to parse with no last good value closes the gateway instead: see
    /// `AccessSettings::closed` of [`Self::global`].)
    pub fn access(&self) -> Option<&Arc<AccessRules>> {
        self.access.as_ref()
    }

    /// Every route, indexed by [`RouteId`].
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// Every cluster, indexed by [`ClusterId`].
    pub fn clusters(&self) -> &[Cluster] {
        &self.clusters
    }

    /// The route with this id.
    pub fn route(&self, id: RouteId) -> &Route {
        &self.routes[id.0 as usize]
    }

    /// The cluster with this id.
    pub fn cluster(&self, id: ClusterId) -> &Cluster {
        &self.clusters[id.0 as usize]
    }

    /// The gateway-wide default backend ([`crate::CompileOptions::default_backend`]), when
    /// it resolved: requests [`Self::lookup`] finds no route for go there instead of
    /// getting 404, and it answers the `custom-http-errors` of Ingresses without
    /// `default-backend`.
    pub fn default_backend(&self) -> Option<&Cluster> {
        self.default_backend.map(|id| self.cluster(id))
    }

    /// The gateway-wide configuration this table was compiled with: the data plane reads
    /// its connection and request settings from the table it serves, so a new
    /// configuration applies when the table is swapped in.
    pub fn global(&self) -> &GlobalConfig {
        &self.global
    }

    /// The global configuration, shared.
    pub fn global_shared(&self) -> &Arc<GlobalConfig> {
        &self.global
    }

    /// Every problem found while compiling, in a stable order.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }

    /// The Ingresses this table serves: every Ingress class selection chose, oldest first,
    /// whether or not all of its routes compiled. These are the Ingresses whose status
    /// carries the gateway's address.
    pub fn ingresses(&self) -> &[ObjectKey] {
        &self.ingresses
    }

    /// Every usable TLS certificate, indexed by [`CertId`].
    pub fn certificates(&self) -> &[Certificate] {
        &self.tls.certs
    }

    /// The certificate to present for a TLS ClientHello's server name: exact host, then
    /// a `*.` wildcard, then the default certificate (a `spec.tls` entry without hosts).
    /// `None` means the data plane's own fallback certificate.
    pub fn certificate_for(&self, server_name: Option<&str>) -> Option<CertId> {
        self.tls.lookup(server_name)
    }

    /// The certificate and handshake policy for a TLS server name (or a request's host):
    /// each looked up as [`RouteTable::certificate_for`] does.
    pub fn tls_for(&self, server_name: Option<&str>) -> SniEntry {
        SniEntry {
            cert: self.tls.lookup(server_name),
            policy: self.tls.policy(server_name),
        }
    }

    /// Every distinct host TLS policy, indexed by [`TlsPolicyId`]; the first is the
    /// default one, and the only one when no host sets TLS annotations.
    pub fn tls_policies(&self) -> &[HostTls] {
        &self.tls.policies
    }

    /// A host TLS policy.
    pub fn tls_policy(&self, id: TlsPolicyId) -> &HostTls {
        self.tls
            .policies
            .get(id.0 as usize)
            .unwrap_or(&self.tls.policies[0])
    }

    /// Whether some host asks for client certificates.
    pub fn has_client_auth(&self) -> bool {
        self.tls.client_auth
    }

    /// The handshake policy for a server name (or a request's host), as
    /// [`RouteTable::tls_for`] finds it.
    pub fn tls_policy_for(&self, server_name: Option<&str>) -> TlsPolicyId {
        self.tls.policy(server_name)
    }

    /// Finds the route for a request: the host picks one host pattern (exact, then the
    /// one-label wildcard, then rules without host), and within it the path picks the
    /// route (Exact, then the longest Prefix by segment, then the Ingress default backend).
    /// A host that matched but whose paths do not is not retried under a wider pattern.
    pub fn lookup(&self, req: &RequestHead<'_>) -> Option<Match<'_>> {
        let host = normalize_host(req.host);
        let (vh, kind) = self.vhost_for(&host)?;
        let id = self.vhosts[vh as usize].1.find(&self.routes, req)?;
        let route = &self.routes[id.0 as usize];
        let cluster = match &route.backend {
            Backend::Cluster(c) => Some(&self.clusters[c.0 as usize]),
            Backend::Unavailable { .. } => None,
        };
        Some(Match {
            route,
            host: kind,
            cluster,
        })
    }

    fn vhost_for(&self, host: &str) -> Option<(u32, HostKind)> {
        if let Some(v) = self.exact_hosts.get(host) {
            return Some((*v, HostKind::Exact));
        }
        if !self.wildcard_hosts.is_empty()
            && let Some(v) = wildcard_suffix(host).and_then(|s| self.wildcard_hosts.get(s))
        {
            return Some((*v, HostKind::Wildcard));
        }
        self.any_host.map(|v| (v, HostKind::Any))
    }

    /// Every route in the order lookup tries them: host patterns (exact, wildcard, any),
    /// and within each, Exact paths (longest first), Prefix paths (longest first), then
    /// the default backend. This is what `/debug/routes` shows.
    pub fn routes_in_order(&self) -> Vec<&Route> {
        let mut out = Vec::with_capacity(self.routes.len());
        let sorted = |maps: [&FastMap<Box<str>, Candidates>; 2]| {
            let mut keys: Vec<(&Box<str>, &Candidates)> =
                maps.into_iter().flat_map(|m| m.iter()).collect();
            keys.sort_by(|a, b| by_len_desc(a.0, b.0));
            keys.into_iter()
                .flat_map(|(_, c)| c.ids().iter().map(|id| self.route(*id)))
                .collect::<Vec<_>>()
        };
        for (_, vh) in &self.vhosts {
            out.extend(sorted([&vh.exact, &vh.exact_ci]));
            let mut prefix = sorted([&vh.prefix, &vh.prefix_ci]);
            // The catch-all `/` routes without conditions come after regexes.
            let split = prefix
                .iter()
                .position(|r| r.path.path() == "/" && r.conditions.is_none())
                .unwrap_or(prefix.len());
            let catch_all = prefix.split_off(split);
            out.extend(prefix);
            out.extend(vh.regex.iter().map(|id| self.route(*id)));
            out.extend(catch_all);
            out.extend(vh.fallback.map(|id| self.route(id)));
        }
        out
    }

    /// The table as JSON, for `/debug/routes`: generation, the Ingresses served, routes in
    /// lookup order, clusters with their endpoints, certificates, the host TLS policies, the
    /// global configuration
    /// (with where each setting came from) and the diagnostic count.
    pub fn to_json(&self) -> serde_json::Value {
        #[derive(Serialize)]
        struct Cert<'a> {
            id: u32,
            secret: &'a ObjectKey,
            hosts: &'a [HostMatch],
            default: bool,
            #[serde(skip_serializing_if = "Option::is_none")]
            not_after: Option<String>,
        }
        let certs: Vec<Cert<'_>> = self
            .tls
            .certs
            .iter()
            .map(|c| Cert {
                id: c.id.0,
                secret: &c.secret,
                hosts: &c.hosts,
                default: self.tls.default == Some(c.id),
                not_after: c.validity.map(|(_, t)| crate::x509::format_time(t)),
            })
            .collect();
        serde_json::json!({
            "generation": self.generation,
            "ingresses": self.ingresses.iter().map(ObjectKey::namespaced_name).collect::<Vec<_>>(),
            "routes": self.routes_in_order(),
            "clusters": self.clusters,
            "certificates": certs,
            "tls": self.tls.policies_json(),
            "default_backend": self.default_backend,
            "global": self.global.to_json(),
            "diagnostics": self.diagnostics.len(),
        })
    }
}

fn conditions_text<S: serde::Serializer>(
    c: &Option<Arc<Conditions>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match c {
        Some(c) => s.serialize_str(c.key()),
        None => s.serialize_none(),
    }
}

fn by_len_desc(a: &str, b: &str) -> std::cmp::Ordering {
    b.len().cmp(&a.len()).then_with(|| a.cmp(b))
}
