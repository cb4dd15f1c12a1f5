//! Compiling a [`Snapshot`] into a [`RouteTable`].
//!
//! The rules, in the order they apply (ANNOTATIONS.md Part A, the Ingress specification,
//! and ingress-nginx where both are silent):
//!
//! 1. **Class selection**: an Ingress is ours when its class (the legacy
//!    `kubernetes.io/ingress.class` annotation, else `spec.ingressClassName`) names an
//!    IngressClass whose `spec.controller` is ours, or names the configured class and no
//!    IngressClass object of that name exists; an Ingress without a class is ours when one
//!    of our IngressClasses is marked default.
//! 2. **Age order**: Ingresses are processed oldest first (`creationTimestamp`; objects
//!    without one count as newest), then by namespace and name. The first definition of a
//!    host + path wins; a later duplicate is left out with a diagnostic naming the winner.
//! 3. **Paths**: `Exact` matches the whole normalised path; `Prefix` and
//!    `ImplementationSpecific` match by path segment; a trailing `/` on a prefix is
//!    ignored; `use-regex`, `full-path-regex` and `rewrite-target` with groups make regex
//!    paths of that Ingress's Prefix paths. Lookup tries Exact, then the longest Prefix
//!    (the catch-all `/` last), then regexes, then `spec.defaultBackend`. Match conditions
//!    (`match-method`, `*-match-header-*`, ...) are part of a route's identity and order.
//! 4. **Canaries** pair with the main route of the same host, path and conditions once
//!    every main Ingress is in place (see [`crate::Canaries`]).
//! 5. **Backends**: Service (in the Ingress's namespace) -> port by number or name ->
//!    target port -> ready addresses from EndpointSlices (legacy Endpoints when the Service
//!    has no slice). A missing Service or port keeps the route, answering 503.
//! 6. **TLS**: each `spec.tls` entry assigns its Secret's certificate to its hosts; the
//!    oldest Ingress wins a host; an entry without hosts provides the default certificate.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use mse_annotations::{
    AuthSecretType, Group, INGRESS_CLASS, IS_DEFAULT_CLASS, IngressPolicy, Mirror, MirrorTarget,
    ObjectRef, ServiceRef, Support,
};
use mse_model::api::{EndpointSlice, Endpoints, Ingress, Secret, Service};
use mse_model::k8s_openapi::api::core::v1::ServicePort;
use mse_model::k8s_openapi::api::networking::v1::IngressBackend;
use mse_model::k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use mse_model::{Diagnostic, Kind, ObjectKey, Severity, Snapshot, SourceRef, Sourced};
use rustls_pki_types::CertificateDer;

use crate::canary::{Canaries, CanaryVersion};
use crate::host::{HostMatch, wildcard_suffix};
use crate::matching::Conditions;
use crate::path::RegexPath;
use crate::path::{PathMatch, normalize_path};
use crate::policy::{self, HeaderOps, RoutePolicy};
use crate::table::{
    Backend, Candidates, Cluster, ClusterId, ClusterTarget, FastMap, Route, RouteId, RouteTable,
    VirtualHost,
};
use crate::tls::{CertId, Certificate, TlsTable, parse_key_pair};

/// What [`compile`] needs besides the snapshot.
#[derive(Clone, Debug)]
pub struct CompileOptions {
    /// The class name accepted where no IngressClass object of that name exists (file
    /// mode, or a cluster without the IngressClass yet). Default `mse`.
    pub ingress_class: String,
    /// The IngressClass `spec.controller` value this gateway serves.
    pub controller: String,
    /// The gateway-wide default backend (`--default-backend-service`, namespace required):
    /// serves requests no route matches, and the `custom-http-errors` of Ingresses without
    /// `default-backend`. `None`: unmatched requests get 404.
    pub default_backend: Option<ServiceRef>,
}

impl Default for CompileOptions {
    fn default() -> Self {
        Self {
            ingress_class: "mse".to_owned(),
            controller: mse_model::CONTROLLER_NAME.to_owned(),
            default_backend: None,
        }
    }
}

/// Compiles a snapshot into a route table. Never fails: every problem becomes a
/// diagnostic in [`RouteTable::diagnostics`], and only what it touches is left out.
/// The result does not depend on the order of objects in the snapshot.
pub fn compile(snapshot: &Snapshot, opts: &CompileOptions) -> RouteTable {
    let mut cx = Compiler::new(snapshot);
    let ingresses = cx.select_ingresses(snapshot, opts);
    cx.add_gateway_default(opts);
    for ing in &ingresses {
        cx.add_ingress(ing);
    }
    cx.add_host_redirects(&ingresses);
    cx.apply_canaries();
    let gateway_default = cx.gateway_default;
    let mut table = cx.finish(snapshot.generation);
    table.default_backend = gateway_default;
    crate::lint::locate_annotations(&mut table.diagnostics, &snapshot.annotation_lines);
    table
}

/// The Ingresses [`compile`] would serve (class selection), oldest first.
pub(crate) fn selected_ingresses(snapshot: &Snapshot, opts: &CompileOptions) -> Vec<ObjectKey> {
    let mut cx = Compiler::new(snapshot);
    cx.select_ingresses(snapshot, opts)
        .into_iter()
        .map(|s| s.key)
        .collect()
}

/// An Ingress chosen for compiling, with what sorting and diagnostics need.
#[derive(Clone)]
struct Selected<'s> {
    key: ObjectKey,
    source: Option<&'s SourceRef>,
    ingress: &'s Ingress,
}

struct Compiler<'s> {
    services: HashMap<(&'s str, &'s str), &'s Service>,
    slices: HashMap<(&'s str, &'s str), Vec<&'s EndpointSlice>>,
    endpoints: HashMap<(&'s str, &'s str), &'s Endpoints>,
    secrets: HashMap<(&'s str, &'s str), &'s Secret>,

    routes: Vec<Route>,
    clusters: Vec<Cluster>,
    cluster_ids: HashMap<(ObjectKey, u16), ClusterId>,
    vhosts: BTreeMap<HostOrder, VirtualHost>,
    /// `from-to-www-redirect`: (Ingress, the other host, the rule's host it redirects to).
    www: Vec<(ObjectKey, HostMatch, Box<str>)>,
    /// `app-root`: (Ingress, a host of its rules, its policy).
    app_roots: Vec<(ObjectKey, HostMatch, Arc<RoutePolicy>)>,
    tls: TlsBuilder,
    /// Canary Ingresses, in age order, paired with main routes at the end.
    canaries: Vec<PendingCanary<'s>>,
    /// Ingresses whose routes are closed by a security annotation: no canary pairs with
    /// them, so that the canary cannot be a way around the closure.
    closed: HashSet<ObjectKey>,
    /// The gateway-wide default backend, when it resolved.
    gateway_default: Option<ClusterId>,
    diagnostics: Vec<Diagnostic>,
}

/// What a route gets besides host, path and origin.
struct RouteAttrs {
    backend: Backend,
    policy: Option<Arc<RoutePolicy>>,
    ignore_case: bool,
    conditions: Option<Arc<Conditions>>,
}

impl RouteAttrs {
    fn new(backend: Backend, policy: Option<Arc<RoutePolicy>>) -> Self {
        Self {
            backend,
            policy,
            ignore_case: false,
            conditions: None,
        }
    }
}

/// A canary Ingress waiting for every main route to be in place.
struct PendingCanary<'s> {
    sel: Selected<'s>,
    policy: IngressPolicy,
}

/// Host patterns in lookup order: exact, wildcard, any. Used to lay out the table.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum HostOrder {
    Exact(Box<str>),
    Wildcard(Box<str>),
    Any,
}

impl HostOrder {
    fn of(h: &HostMatch) -> Self {
        match h {
            HostMatch::Exact(s) => HostOrder::Exact(s.clone()),
            HostMatch::Wildcard(s) => HostOrder::Wildcard(s.clone()),
            HostMatch::Any => HostOrder::Any,
        }
    }
    fn host(&self) -> HostMatch {
        match self {
            HostOrder::Exact(s) => HostMatch::Exact(s.clone()),
            HostOrder::Wildcard(s) => HostMatch::Wildcard(s.clone()),
            HostOrder::Any => HostMatch::Any,
        }
    }
}

#[derive(Default)]
struct TlsBuilder {
    certs: Vec<Certificate>,
    by_secret: HashMap<ObjectKey, Option<CertId>>,
    /// host pattern -> (certificate, the Ingress that claimed it)
    hosts: BTreeMap<HostOrder, (CertId, ObjectKey)>,
    /// The DNS names of each certificate's leaf (`None`: it could not be read).
    names: HashMap<CertId, Option<Vec<String>>>,
}

// === impl Compiler ===

impl<'s> Compiler<'s> {
    fn new(snapshot: &'s Snapshot) -> Self {
        let mut diagnostics = Vec::new();
        let services = index_unique(
            &snapshot.services,
            Kind::Service,
            |s| &s.metadata,
            &mut diagnostics,
        );
        let secrets = index_unique(
            &snapshot.secrets,
            Kind::Secret,
            |s| &s.metadata,
            &mut diagnostics,
        );
        let endpoints = index_unique(
            &snapshot.endpoints,
            Kind::Endpoints,
            |s| &s.metadata,
            &mut diagnostics,
        );
        let mut slices: HashMap<(&str, &str), Vec<&EndpointSlice>> = HashMap::new();
        for s in &snapshot.endpoint_slices {
            let meta = &s.object.metadata;
            let svc = meta
                .labels
                .as_ref()
                .and_then(|l| l.get("kubernetes.io/service-name"));
            if let Some(svc) = svc {
                slices
                    .entry((ns_of(meta), svc.as_str()))
                    .or_default()
                    .push(&s.object);
            }
        }
        for v in slices.values_mut() {
            v.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
            v.dedup_by(|a, b| a.metadata.name == b.metadata.name);
        }
        Self {
            services,
            slices,
            endpoints,
            secrets,
            routes: Vec::new(),
            clusters: Vec::new(),
            cluster_ids: HashMap::new(),
            vhosts: BTreeMap::new(),
            www: Vec::new(),
            app_roots: Vec::new(),
            tls: TlsBuilder::default(),
            canaries: Vec::new(),
            closed: HashSet::new(),
            gateway_default: None,
            diagnostics,
        }
    }

    /// Class selection, then age order.
    fn select_ingresses(
        &mut self,
        snapshot: &'s Snapshot,
        opts: &CompileOptions,
    ) -> Vec<Selected<'s>> {
        let mut ours: Vec<&str> = Vec::new();
        let mut others: Vec<&str> = Vec::new();
        let mut default_ours = false;
        for c in &snapshot.ingress_classes {
            let name = c.object.metadata.name.as_deref().unwrap_or("");
            let controller = c.object.spec.as_ref().and_then(|s| s.controller.as_deref());
            if controller == Some(opts.controller.as_str()) {
                ours.push(name);
                let is_default = c
                    .object
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(IS_DEFAULT_CLASS))
                    .is_some_and(|v| v.trim() == "true");
                default_ours |= is_default;
            } else {
                others.push(name);
            }
        }
        if !ours.contains(&opts.ingress_class.as_str())
            && !others.contains(&opts.ingress_class.as_str())
        {
            ours.push(opts.ingress_class.as_str());
        }

        let mut selected = Vec::new();
        for s in &snapshot.ingresses {
            let ing = &*s.object;
            let key = ObjectKey::of(Kind::Ingress, &ing.metadata);
            let annotated = ing
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(INGRESS_CLASS))
                .map(|v| v.trim())
                .filter(|v| !v.is_empty());
            let spec_class = ing
                .spec
                .as_ref()
                .and_then(|s| s.ingress_class_name.as_deref());
            let class = annotated.or(spec_class);
            if let (Some(a), Some(c)) = (annotated, spec_class)
                && a != c
            {
                self.diagnostics.push(
                    Diagnostic::warning(
                        "conflicting-ingress-class",
                        format!(
                            "the {INGRESS_CLASS} annotation ({a:?}) and spec.ingressClassName ({c:?}) disagree; the annotation wins, as in ingress-nginx"
                        ),
                    )
                    .object(key.clone())
                    .source(s.source.clone())
                    .key(INGRESS_CLASS),
                );
            }
            let is_ours = match class {
                Some(c) => ours.contains(&c),
                None => default_ours,
            };
            if !is_ours {
                if class.is_none() {
                    self.diagnostics.push(
                        Diagnostic::info(
                            "ingress-not-selected",
                            format!(
                                "no ingress class and no IngressClass for {} is marked default; set spec.ingressClassName: {} to have this gateway serve it",
                                opts.controller, opts.ingress_class
                            ),
                        )
                        .object(key)
                        .source(s.source.clone()),
                    );
                }
                continue;
            }
            selected.push(Selected {
                key,
                source: s.source.as_ref(),
                ingress: ing,
            });
        }
        selected.sort_by(|a, b| age_order(a, b));
        selected
    }

    fn add_ingress(&mut self, sel: &Selected<'s>) {
        let ing = sel.ingress;
        // Annotations first: their diagnostics are reported whatever happens next.
        let policy = match ing.metadata.annotations.as_ref() {
            Some(a) => {
                let parsed = mse_annotations::parse(&sel.key, sel.source, a);
                // Keys whose value was rejected already say what happens instead.
                let reported: Vec<Arc<str>> = parsed
                    .diagnostics
                    .iter()
                    .filter(|d| d.severity >= Severity::Warning)
                    .filter_map(|d| d.origin.key.clone())
                    .collect();
                self.diagnostics.extend(parsed.diagnostics);
                self.not_applied(sel, a, &reported, &parsed.value);
                parsed.value
            }
            None => IngressPolicy::default(),
        };
        if policy.is_excluded() {
            // `canary` is not a boolean: the parser's error says the Ingress is left out.
            return;
        }
        let Some(spec) = ing.spec.as_ref() else {
            self.diag(
                Diagnostic::error("empty-ingress", "Ingress has no spec; nothing to route"),
                sel,
                None,
            );
            return;
        };
        if policy.canary.canary().is_some() {
            // Paired with main routes once every main Ingress is in place.
            self.canaries.push(PendingCanary {
                sel: sel.clone(),
                policy,
            });
            return;
        }
        // A security annotation that cannot be honoured (bad value, missing Secret): the
        // routes answer 503 rather than be served without it; the diagnostics say why.
        let mut failed: Vec<String> = policy.fail_closed.iter().map(|f| f.key.clone()).collect();
        failed.extend(self.check_references(sel, &policy));
        if failed.is_empty() {
            // Only when nothing else already closes the routes: one reason is enough.
            failed.extend(self.unenforced_security(sel, &policy));
        }
        if !failed.is_empty() {
            self.closed.insert(sel.key.clone());
        }
        let closed: Option<Arc<str>> = (!failed.is_empty()).then(|| {
            format!(
                "security annotation {} cannot be honoured (fail closed)",
                failed.join(", ")
            )
            .into()
        });
        let route_policy = self.route_policy(sel, &policy, closed.is_some());
        let conditions = Conditions::build(&policy.matching).map(Arc::new);
        let rules = spec.rules.as_deref().unwrap_or(&[]);
        if rules.is_empty() && spec.default_backend.is_none() {
            self.diag(
                Diagnostic::error(
                    "empty-ingress",
                    "Ingress has neither rules nor spec.defaultBackend; nothing to route",
                ),
                sel,
                None,
            );
        }
        let aliases: Vec<HostMatch> = policy
            .tls
            .aliases
            .iter()
            .filter_map(|a| HostMatch::parse(a).ok())
            .filter(|h| *h != HostMatch::Any)
            .collect();
        let mut rule_hosts: Vec<HostMatch> = Vec::new();
        for (ri, rule) in rules.iter().enumerate() {
            let field = format!("spec.rules[{ri}].host");
            let host = match HostMatch::parse(rule.host.as_deref().unwrap_or("")) {
                Ok(h) => h,
                Err(e) => {
                    self.diag(
                        Diagnostic::error("invalid-host", format!("{e}; this rule is left out"))
                            .value(rule.host.clone().unwrap_or_default()),
                        sel,
                        Some(&field),
                    );
                    continue;
                }
            };
            if !rule_hosts.contains(&host) {
                rule_hosts.push(host.clone());
            }
            let Some(http) = rule.http.as_ref() else {
                // A host-only rule is legal (it can carry TLS); routes come from the default
                // backend, if any.
                continue;
            };
            for (pi, p) in http.paths.iter().enumerate() {
                let field = format!("spec.rules[{ri}].http.paths[{pi}]");
                let path = match path_match(&policy, p.path.as_deref(), &p.path_type) {
                    Ok(path) => path,
                    Err(e) => {
                        let (d, suffix) = *e;
                        self.diag(d, sel, Some(&format!("{field}{suffix}")));
                        continue;
                    }
                };
                let mut backend =
                    self.resolve_backend(&p.backend, sel, &format!("{field}.backend"));
                if let Some(reason) = &closed {
                    backend = Backend::Unavailable {
                        reason: reason.clone(),
                    };
                }
                // `server-alias`: the same route on each alias host.
                let hosts = std::iter::once(&host).chain(aliases.iter().filter(|a| **a != host));
                for h in hosts {
                    let attrs = RouteAttrs {
                        ignore_case: policy.matching.ignore_path_case,
                        conditions: conditions.clone(),
                        ..RouteAttrs::new(backend.clone(), route_policy.clone())
                    };
                    self.insert_route(
                        sel,
                        h.clone(),
                        path.clone(),
                        false,
                        field.as_str().into(),
                        attrs,
                    );
                }
            }
        }
        for a in &aliases {
            if !rule_hosts.contains(a) {
                rule_hosts.push(a.clone());
            }
        }
        if let Some(db) = spec.default_backend.as_ref() {
            let field = "spec.defaultBackend";
            let mut backend = self.resolve_backend(db, sel, field);
            if let Some(reason) = &closed {
                backend = Backend::Unavailable {
                    reason: reason.clone(),
                };
            }
            // The default backend serves requests no rule of this Ingress matched: on the
            // any-host pattern, and on each of this Ingress's own hosts.
            let mut hosts = vec![HostMatch::Any];
            hosts.extend(rule_hosts.iter().filter(|h| **h != HostMatch::Any).cloned());
            for h in hosts {
                self.insert_route(
                    sel,
                    h,
                    PathMatch::Prefix("".into()),
                    true,
                    field.into(),
                    RouteAttrs::new(backend.clone(), route_policy.clone()),
                );
            }
        }
        if let Some(p) = route_policy.as_ref().filter(|p| p.app_root.is_some()) {
            for h in &rule_hosts {
                self.app_roots
                    .push((sel.key.clone(), h.clone(), Arc::clone(p)));
            }
        }
        if policy.redirect.from_to_www && closed.is_none() {
            for h in &rule_hosts {
                let HostMatch::Exact(name) = h else { continue };
                let other = match name.strip_prefix("www.") {
                    Some(bare) => bare.to_owned(),
                    None => format!("www.{name}"),
                };
                if let Ok(other @ HostMatch::Exact(_)) = HostMatch::parse(&other) {
                    self.www.push((sel.key.clone(), other, name.clone()));
                }
            }
        }
        self.add_tls(sel, &aliases);
    }

    /// `from-to-www-redirect`: once every rule is known, a host the rules do not define
    /// gets a route answering 308 to its `www.`-less (or `www.`) twin, keeping the request
    /// URI.
    ///
    /// `app-root`: a host of the Ingress's rules without an Exact `/` route gets one that
    /// answers with the redirect, whichever Ingress would serve `/` otherwise.
    fn add_host_redirects(&mut self, ingresses: &[Selected<'s>]) {
        if self.www.is_empty() && self.app_roots.is_empty() {
            return;
        }
        let by_key: HashMap<&ObjectKey, &Selected<'s>> =
            ingresses.iter().map(|s| (&s.key, s)).collect();
        for (key, host, policy) in std::mem::take(&mut self.app_roots) {
            let Some(sel) = by_key.get(&key) else {
                continue;
            };
            let defined = self
                .vhosts
                .get(&HostOrder::of(&host))
                .is_some_and(|vh| vh.exact.contains_key("/"));
            if defined {
                // An Exact `/` route exists (an older app-root, or a rule's own path).
                continue;
            }
            let root = policy.app_root.as_deref().unwrap_or("/");
            let field = format!("app-root {root}");
            self.insert_answer_route(sel, host, PathMatch::Exact("/".into()), &field, policy);
        }
        for (key, other, target) in std::mem::take(&mut self.www) {
            let Some(sel) = by_key.get(&key) else {
                continue;
            };
            if self.vhosts.contains_key(&HostOrder::of(&other)) {
                // Defined by some rule (or redirected already by an older Ingress).
                continue;
            }
            let policy = Arc::new(RoutePolicy::www_redirect(&target));
            let field = format!("from-to-www-redirect to {target}");
            self.insert_answer_route(sel, other, PathMatch::Prefix("".into()), &field, policy);
        }
    }

    /// A route the gateway answers itself (a redirect): it has no backend, and `field`
    /// names the annotation that made it.
    fn insert_answer_route(
        &mut self,
        sel: &Selected<'s>,
        host: HostMatch,
        path: PathMatch,
        field: &str,
        policy: Arc<RoutePolicy>,
    ) {
        let backend = Backend::Unavailable {
            reason: Arc::from(format!("{field} answers these requests")),
        };
        self.insert_route(
            sel,
            host,
            path,
            false,
            field.into(),
            RouteAttrs::new(backend, Some(policy)),
        );
    }

    fn insert_route(
        &mut self,
        sel: &Selected<'s>,
        host: HostMatch,
        path: PathMatch,
        default_backend: bool,
        field: Box<str>,
        attrs: RouteAttrs,
    ) {
        let id = RouteId(self.routes.len() as u32);
        let RouteAttrs {
            backend,
            policy,
            ignore_case,
            conditions,
        } = attrs;
        // Regex paths carry the case flag in the regex.
        let ignore_case = ignore_case && matches!(path, PathMatch::Exact(_) | PathMatch::Prefix(_));
        let cond_key: Option<Box<str>> = conditions.as_deref().map(|c| c.key().into());
        let existing = if default_backend {
            self.vhosts
                .get(&HostOrder::of(&host))
                .and_then(|vh| vh.fallback)
        } else {
            self.find_route(&host, &path, ignore_case, cond_key.as_deref())
        };
        if let Some(winner) = existing {
            let w = &self.routes[winner.0 as usize];
            let (code, what) = if default_backend {
                (
                    "duplicate-default-backend",
                    format!("the default backend for host {host}"),
                )
            } else if let Some(k) = &cond_key {
                (
                    "duplicate-route",
                    format!("host {host}, path {path} and conditions {k}"),
                )
            } else {
                ("duplicate-route", format!("host {host} and path {path}"))
            };
            let by = if w.ingress == sel.key {
                format!("earlier in this Ingress at {}", w.field)
            } else {
                format!("by the older {} at {}", w.ingress, w.field)
            };
            let d = Diagnostic::error(
                code,
                format!("{what} is already defined {by}; this one is left out"),
            );
            self.diag(d, sel, Some(&field));
            return;
        }
        let vh = self.vhosts.entry(HostOrder::of(&host)).or_default();
        self.routes.push(Route {
            id,
            host,
            path,
            ignore_case,
            conditions,
            default_backend,
            ingress: sel.key.clone(),
            field,
            source: sel.source.cloned(),
            backend,
            policy,
            canary: None,
            // Resolved in `finish`, once every certificate is known.
            https_redirect: false,
        });
        let routes = &self.routes;
        let route = &routes[id.0 as usize];
        let add = |map: &mut FastMap<Box<str>, Candidates>, key: &str| {
            let merged = match map.remove(key) {
                None => Candidates::One(id),
                Some(c) => {
                    let mut ids = c.ids().to_vec();
                    ids.push(id);
                    // Ids grow with age, so equal ranks keep the older route first.
                    ids.sort_by_key(|i| {
                        let r = &routes[i.0 as usize];
                        (Conditions::rank(r.conditions.as_deref()), *i)
                    });
                    Candidates::Many(ids.into())
                }
            };
            map.insert(key.into(), merged);
        };
        match (&route.path, default_backend, ignore_case) {
            (_, true, _) => vh.fallback = Some(id),
            (PathMatch::Exact(p), false, false) => add(&mut vh.exact, p),
            (PathMatch::Prefix(p), false, false) => add(&mut vh.prefix, p),
            (PathMatch::Exact(p), false, true) => add(&mut vh.exact_ci, &p.to_ascii_lowercase()),
            (PathMatch::Prefix(p), false, true) => {
                add(&mut vh.prefix_ci, &p.to_ascii_lowercase());
            }
            (PathMatch::Regex(_), false, _) => vh.regex.push(id),
        }
    }

    fn resolve_backend(&mut self, b: &IngressBackend, sel: &Selected<'s>, field: &str) -> Backend {
        let ns: &str = &sel.key.namespace;
        let unavailable = |reason: String| Backend::Unavailable {
            reason: reason.into(),
        };
        let Some(svc_ref) = b.service.as_ref() else {
            if let Some(r) = b.resource.as_ref() {
                let reason = format!(
                    "resource backend {}/{} is not supported; requests answer 503",
                    r.kind, r.name
                );
                self.diag(
                    Diagnostic::error("unsupported-backend", reason.clone()),
                    sel,
                    Some(&format!("{field}.resource")),
                );
                return unavailable(reason);
            }
            let reason = "backend names no service".to_owned();
            self.diag(
                Diagnostic::error("invalid-backend", format!("{reason}; requests answer 503")),
                sel,
                Some(field),
            );
            return unavailable(reason);
        };
        let svc_field = format!("{field}.service");
        let svc_key = ObjectKey::new(Kind::Service, ns, svc_ref.name.as_str());
        let Some(svc) = self.services.get(&(ns, svc_ref.name.as_str())).copied() else {
            let reason = format!("{svc_key} not found");
            self.diag(
                Diagnostic::error(
                    "missing-service",
                    format!("{reason}; requests to this path answer 503"),
                )
                .value(svc_ref.name.clone()),
                sel,
                Some(&svc_field),
            );
            return unavailable(reason);
        };
        let spec = svc.spec.as_ref();
        let ports = spec.and_then(|s| s.ports.as_deref()).unwrap_or(&[]);
        let want = svc_ref.port.as_ref();
        let port = match want {
            Some(p) if p.number.is_some() => ports.iter().find(|sp| Some(sp.port) == p.number),
            Some(p) if p.name.is_some() => ports
                .iter()
                .find(|sp| sp.name.is_some() && sp.name == p.name),
            _ => None,
        };
        let is_external = spec.and_then(|s| s.type_.as_deref()) == Some("ExternalName");
        if is_external {
            let Some(host) = spec
                .and_then(|s| s.external_name.as_deref())
                .filter(|h| !h.is_empty())
            else {
                let reason =
                    format!("{svc_key} is of type ExternalName but has no spec.externalName");
                self.diag(
                    Diagnostic::error("invalid-service", format!("{reason}; requests answer 503")),
                    sel,
                    Some(&svc_field),
                );
                return unavailable(reason);
            };
            let number = want.and_then(|p| p.number).or(port.map(|p| p.port));
            let Some(number) = number.and_then(|n| u16::try_from(n).ok()) else {
                let reason = format!(
                    "{svc_key} is of type ExternalName; the backend must give a port number"
                );
                self.diag(
                    Diagnostic::error(
                        "missing-service-port",
                        format!("{reason}; requests answer 503"),
                    ),
                    sel,
                    Some(&svc_field),
                );
                return unavailable(reason);
            };
            let target_port = external_port(port).unwrap_or(number);
            let target = ClusterTarget::ExternalName {
                host: host.into(),
                port: target_port,
            };
            return Backend::Cluster(self.cluster(svc_key, number, None, || target));
        }
        let Some(port) = port else {
            let wanted = match want {
                Some(p) => p
                    .number
                    .map(|n| n.to_string())
                    .or(p.name.clone())
                    .unwrap_or_default(),
                None => String::new(),
            };
            let reason = if wanted.is_empty() {
                "backend gives no service port".to_owned()
            } else {
                format!("{svc_key} has no port {wanted}")
            };
            self.diag(
                Diagnostic::error(
                    "missing-service-port",
                    format!("{reason}; requests to this path answer 503"),
                )
                .value(wanted),
                sel,
                Some(&format!("{svc_field}.port")),
            );
            return unavailable(reason);
        };
        let Ok(number) = u16::try_from(port.port) else {
            return unavailable(format!("{svc_key} port {} is out of range", port.port));
        };
        let port_name = port.name.as_deref().filter(|n| !n.is_empty());
        // Endpoints are resolved, and their absence reported, once per Service port.
        if let Some(id) = self.cluster_ids.get(&(svc_key.clone(), number)) {
            return Backend::Cluster(*id);
        }
        let addrs = self.endpoints_for(
            ns,
            &svc_ref.name,
            port_name,
            port.target_port.as_ref(),
            number,
        );
        if addrs.is_empty() {
            self.diag(
                Diagnostic::warning(
                    "no-endpoints",
                    format!("{svc_key} port {number} has no ready endpoints; requests answer 503 until one is ready"),
                ),
                sel,
                Some(&svc_field),
            );
        }
        let target = ClusterTarget::Endpoints(addrs.into());
        Backend::Cluster(self.cluster(svc_key, number, port_name, || target))
    }

    fn cluster(
        &mut self,
        service: ObjectKey,
        port: u16,
        port_name: Option<&str>,
        target: impl FnOnce() -> ClusterTarget,
    ) -> ClusterId {
        if let Some(id) = self.cluster_ids.get(&(service.clone(), port)) {
            return *id;
        }
        let id = ClusterId(self.clusters.len() as u32);
        self.clusters.push(Cluster {
            id,
            service: service.clone(),
            port,
            port_name: port_name.map(Into::into),
            target: target(),
        });
        self.cluster_ids.insert((service, port), id);
        id
    }

    /// Ready addresses for one Service port: EndpointSlices first (their ports are named
    /// after the Service port), legacy Endpoints when the Service has no slice.
    fn endpoints_for(
        &self,
        ns: &str,
        svc: &str,
        port_name: Option<&str>,
        target_port: Option<&IntOrString>,
        service_port: u16,
    ) -> Vec<SocketAddr> {
        let numeric_target = match target_port {
            Some(IntOrString::Int(t)) => u16::try_from(*t).ok(),
            Some(IntOrString::String(s)) => s.parse::<u16>().ok(),
            None => Some(service_port),
        };
        let mut out = Vec::new();
        if let Some(slices) = self.slices.get(&(ns, svc)) {
            for slice in slices {
                if slice.address_type == "FQDN" {
                    continue;
                }
                let ports = slice.ports.as_deref().unwrap_or(&[]);
                let port = ports
                    .iter()
                    .find(|p| p.name.as_deref().filter(|n| !n.is_empty()) == port_name)
                    .and_then(|p| p.port)
                    .and_then(|p| u16::try_from(p).ok())
                    .or(if ports.is_empty() {
                        numeric_target
                    } else {
                        None
                    });
                let Some(port) = port else { continue };
                for ep in &slice.endpoints {
                    let ready = ep.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
                    if !ready {
                        continue;
                    }
                    for a in &ep.addresses {
                        if let Ok(ip) = a.parse::<IpAddr>() {
                            out.push(SocketAddr::new(ip, port));
                        }
                    }
                }
            }
        } else if let Some(eps) = self.endpoints.get(&(ns, svc)) {
            for subset in eps.subsets.as_deref().unwrap_or(&[]) {
                let ports = subset.ports.as_deref().unwrap_or(&[]);
                let port = ports
                    .iter()
                    .find(|p| p.name.as_deref().filter(|n| !n.is_empty()) == port_name)
                    .and_then(|p| u16::try_from(p.port).ok())
                    .or(if ports.is_empty() {
                        numeric_target
                    } else {
                        None
                    });
                let Some(port) = port else { continue };
                for a in subset.addresses.as_deref().unwrap_or(&[]) {
                    if let Ok(ip) = a.ip.parse::<IpAddr>() {
                        out.push(SocketAddr::new(ip, port));
                    }
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// The certificates of `spec.tls`; `server-alias` hosts get the certificate of the
    /// entries that list hosts.
    fn add_tls(&mut self, sel: &Selected<'s>, aliases: &[HostMatch]) {
        let Some(tls) = sel.ingress.spec.as_ref().and_then(|s| s.tls.as_deref()) else {
            return;
        };
        for (ti, entry) in tls.iter().enumerate() {
            let field = format!("spec.tls[{ti}]");
            let Some(secret_name) = entry.secret_name.as_deref().filter(|s| !s.is_empty()) else {
                self.diag(
                    Diagnostic::warning(
                        "missing-tls-secret-name",
                        "TLS entry has no secretName; its hosts get the default certificate",
                    ),
                    sel,
                    Some(&field),
                );
                continue;
            };
            let Some(cert) = self.certificate(&sel.key.namespace, secret_name, sel, &field) else {
                continue;
            };
            let hosts = entry.hosts.as_deref().unwrap_or(&[]);
            let mut patterns = Vec::new();
            if hosts.is_empty() {
                patterns.push(HostMatch::Any);
            }
            for h in hosts {
                match HostMatch::parse(h) {
                    Ok(HostMatch::Any) | Err(_) => self.diag(
                        Diagnostic::error(
                            "invalid-host",
                            "TLS host is not a DNS name or `*.` wildcard; it is left out",
                        )
                        .value(h.clone()),
                        sel,
                        Some(&format!("{field}.hosts")),
                    ),
                    Ok(p) => patterns.push(p),
                }
            }
            if !hosts.is_empty() {
                patterns.extend(
                    aliases
                        .iter()
                        .filter(|a| !patterns.contains(a))
                        .cloned()
                        .collect::<Vec<_>>(),
                );
            }
            for p in patterns {
                let order = HostOrder::of(&p);
                if let Some((other, owner)) = self.tls.hosts.get(&order) {
                    if *other != cert {
                        let d = Diagnostic::warning(
                            "duplicate-tls",
                            format!(
                                "host {p} already has a certificate from the older {owner}; this entry's certificate is not used for it"
                            ),
                        );
                        self.diag(d, sel, Some(&field));
                    }
                    continue;
                }
                self.check_covers(cert, &p, sel, &field);
                self.tls.hosts.insert(order, (cert, sel.key.clone()));
                let c = &mut self.tls.certs[cert.0 as usize];
                if !c.hosts.contains(&p) {
                    c.hosts.push(p);
                }
            }
        }
    }

    /// The certificate from a Secret, loaded once however many Ingresses name it.
    fn certificate(
        &mut self,
        ns: &str,
        name: &str,
        sel: &Selected<'s>,
        field: &str,
    ) -> Option<CertId> {
        let key = ObjectKey::new(Kind::Secret, ns, name);
        if let Some(known) = self.tls.by_secret.get(&key) {
            return *known;
        }
        let result = match self.secrets.get(&(ns, name)) {
            None => Err((
                "missing-secret",
                format!("{key} not found; hosts of this entry get the default certificate"),
            )),
            Some(s) => {
                let data = s.data.as_ref();
                let crt = data.and_then(|d| d.get("tls.crt")).map(|b| b.0.as_slice());
                let k = data.and_then(|d| d.get("tls.key")).map(|b| b.0.as_slice());
                match (crt, k) {
                    (Some(c), Some(k)) => parse_key_pair(c, k).map_err(|e| {
                        (
                            "invalid-tls-secret",
                            format!("{key}: {e}; hosts of this entry get the default certificate"),
                        )
                    }),
                    _ => Err((
                        "invalid-tls-secret",
                        format!(
                            "{key} lacks tls.crt or tls.key; hosts of this entry get the default certificate"
                        ),
                    )),
                }
            }
        };
        let id = match result {
            Ok((chain, private)) => {
                let id = CertId(self.tls.certs.len() as u32);
                self.tls.certs.push(Certificate {
                    id,
                    secret: key.clone(),
                    hosts: Vec::new(),
                    chain,
                    key: Arc::new(private),
                });
                Some(id)
            }
            Err((code, msg)) => {
                self.diag(
                    Diagnostic::error(code, msg).value(name),
                    sel,
                    Some(&format!("{field}.secretName")),
                );
                None
            }
        };
        self.tls.by_secret.insert(key, id);
        id
    }

    /// Checks the Secrets and Services that annotations name. A missing or incomplete
    /// Secret of a security annotation is an error, and its key is returned so that the
    /// Ingress fails closed; a missing fallback or mirror Service is a warning.
    fn check_references(&mut self, sel: &Selected<'s>, policy: &IngressPolicy) -> Vec<String> {
        let annotations = sel.ingress.metadata.annotations.as_ref();
        let key_of = |name: &str| {
            annotations
                .and_then(|a| mse_annotations::lookup(a, name))
                .map_or_else(
                    || format!("{}{name}", mse_annotations::PREFIXES[0]),
                    |f| f.key.to_owned(),
                )
        };
        let mut secrets: Vec<(&str, &ObjectRef, Option<&str>)> = Vec::new();
        if let Some(b) = &policy.auth.basic {
            let data = (b.secret_type == AuthSecretType::AuthFile).then_some("auth");
            secrets.push(("auth-secret", &b.secret, data));
        }
        if let Some(ca) = &policy.tls.client_ca {
            secrets.push(("auth-tls-secret", ca, Some("ca.crt")));
        }
        if let Some(s) = &policy.backend.tls.secret {
            let data = policy.backend.tls.verify.then_some("ca.crt");
            secrets.push(("proxy-ssl-secret", s, data));
        }
        let mut failed = Vec::new();
        for (name, r, data_key) in secrets {
            let ns = r.namespace_or(&sel.key.namespace).to_owned();
            let found = self.secrets.get(&(ns.as_str(), r.name.as_str())).copied();
            let problem = match found {
                None => Some((
                    "missing-secret",
                    format!("Secret {ns}/{} not found", r.name),
                )),
                Some(secret) => data_key
                    .filter(|k| !secret.data.as_ref().is_some_and(|d| d.contains_key(*k)))
                    .map(|k| {
                        (
                            "invalid-secret",
                            format!("Secret {ns}/{} has no {k} key", r.name),
                        )
                    }),
            };
            if let Some((code, what)) = problem {
                let key = key_of(name);
                self.diag(
                    Diagnostic::error(
                        code,
                        format!("{what}; security annotations fail closed: the routes of this Ingress answer 503 until it is fixed"),
                    )
                    .value(r.to_string()),
                    sel,
                    Some(&key),
                );
                failed.push(key);
            }
        }
        let mut services: Vec<(&str, &ServiceRef)> = Vec::new();
        if let Some(fb) = &policy.fallback.default_backend {
            services.push(("default-backend", fb));
        }
        if let Some(Mirror {
            target: MirrorTarget::Service(m),
            ..
        }) = &policy.mirror
        {
            services.push(("mirror-target-service", m));
        }
        for (name, r) in services {
            let ns = r.service.namespace_or(&sel.key.namespace).to_owned();
            if !self
                .services
                .contains_key(&(ns.as_str(), r.service.name.as_str()))
            {
                let key = key_of(name);
                self.diag(
                    Diagnostic::warning(
                        "missing-service",
                        format!(
                            "Service {ns}/{} not found; {name} has no effect until it exists",
                            r.service.name
                        ),
                    )
                    .value(r.to_string()),
                    sel,
                    Some(&key),
                );
            }
        }
        failed
    }

    /// Warns when a TLS host is not among the names of the certificate it was given:
    /// clients would reject the certificate for that host.
    fn check_covers(&mut self, cert: CertId, host: &HostMatch, sel: &Selected<'s>, field: &str) {
        let certs = &self.tls.certs;
        let names = self
            .tls
            .names
            .entry(cert)
            .or_insert_with(|| {
                let leaf = certs.get(cert.0 as usize)?.chain.first()?;
                dns_names(leaf)
            })
            .clone();
        let Some(names) = names else {
            return;
        };
        if covers(&names, host) {
            return;
        }
        let secret = &self.tls.certs[cert.0 as usize].secret;
        let listed = if names.is_empty() {
            "no DNS names (the Common Name is ignored by browsers and by this gateway)".to_owned()
        } else {
            names.join(", ")
        };
        self.diag(
            Diagnostic::error(
                "tls-host-not-covered",
                format!(
                    "TLS host {host} is not covered by the certificate in {secret}, which names {listed}; clients will reject the certificate for this host"
                ),
            )
            .value(host.to_string()),
            sel,
            Some(&format!("{field}.hosts")),
        );
    }

    /// Pairs each canary Ingress's paths with the main route of the same route key (host,
    /// path type, path, `ignore-path-case` and match conditions; namespaces may differ), in
    /// age order. A canary path without a main route gets a warning: it would get no
    /// traffic. The canary's backend is resolved like any other; the policy is the main
    /// route's with the canary's own header control, as Higress does.
    fn apply_canaries(&mut self) {
        let mut by_route: BTreeMap<RouteId, Vec<CanaryVersion>> = BTreeMap::new();
        for pc in std::mem::take(&mut self.canaries) {
            let sel = &pc.sel;
            let Some(canary) = pc.policy.canary.canary() else {
                continue;
            };
            let (own, refused) = RoutePolicy::build(&pc.policy);
            self.report_refused(sel, refused);
            self.note_inherited(sel);
            let conditions = Conditions::build(&pc.policy.matching);
            let cond_key = conditions.as_ref().map(Conditions::key);
            let ignore_case = pc.policy.matching.ignore_path_case;
            let spec = sel.ingress.spec.as_ref();
            let rules = spec.and_then(|s| s.rules.as_deref()).unwrap_or(&[]);
            if rules.is_empty() {
                self.diag(
                    Diagnostic::warning(
                        "canary-without-main",
                        "this canary has no rules to pair with a main Ingress (its defaultBackend is not used), so it gets no traffic",
                    ),
                    sel,
                    None,
                );
            }
            for (ri, rule) in rules.iter().enumerate() {
                let Ok(host) = HostMatch::parse(rule.host.as_deref().unwrap_or("")) else {
                    continue;
                };
                for (pi, p) in rule.http.iter().flat_map(|h| h.paths.iter()).enumerate() {
                    let field = format!("spec.rules[{ri}].http.paths[{pi}]");
                    // Paths the main routes left out (with a diagnostic) pair with nothing.
                    let Ok(path) = path_match(&pc.policy, p.path.as_deref(), &p.path_type) else {
                        continue;
                    };
                    let ci = ignore_case && !matches!(path, PathMatch::Regex(_));
                    let main = self.find_route(&host, &path, ci, cond_key);
                    let Some(main) = main else {
                        let key = match cond_key {
                            Some(k) => format!("host {host}, path {path} and conditions {k}"),
                            None => format!("host {host} and path {path}"),
                        };
                        self.diag(
                            Diagnostic::warning(
                                "canary-without-main",
                                format!(
                                    "this canary's {key} pair with no main Ingress (no non-canary Ingress serves them), so it gets no traffic"
                                ),
                            ),
                            sel,
                            Some(&field),
                        );
                        continue;
                    };
                    let main_route = &self.routes[main.0 as usize];
                    if self.closed.contains(&main_route.ingress) {
                        let d = Diagnostic::warning(
                            "canary-main-closed",
                            format!(
                                "the main {} answers 503 (a security annotation fails closed), so this canary gets no traffic either",
                                main_route.ingress
                            ),
                        );
                        self.diag(d, sel, Some(&field));
                        continue;
                    }
                    let policy = canary_policy(main_route.policy.as_deref(), own.as_ref());
                    let backend =
                        self.resolve_backend(&p.backend, sel, &format!("{field}.backend"));
                    let ready = match &backend {
                        Backend::Cluster(c) => match &self.clusters[c.0 as usize].target {
                            ClusterTarget::Endpoints(a) => !a.is_empty(),
                            ClusterTarget::ExternalName { .. } => true,
                        },
                        Backend::Unavailable { .. } => false,
                    };
                    by_route.entry(main).or_default().push(CanaryVersion::new(
                        sel.key.clone(),
                        field.into(),
                        backend,
                        ready,
                        policy,
                        canary,
                    ));
                }
            }
        }
        for (id, versions) in by_route {
            self.routes[id.0 as usize].canary = Some(Box::new(Canaries::new(versions)));
        }
    }

    /// A note for each route-level annotation of a canary Ingress that the canary takes
    /// from its main route instead (Higress and ingress-nginx alike).
    fn note_inherited(&mut self, sel: &Selected<'s>) {
        const INHERITED: &[Group] = &[
            Group::Rewrite,
            Group::Redirect,
            Group::Cors,
            Group::Fallback,
            Group::Mirror,
        ];
        let Some(annotations) = sel.ingress.metadata.annotations.as_ref() else {
            return;
        };
        for key in annotations.keys() {
            let Some((_, name)) = mse_annotations::split_key(key) else {
                continue;
            };
            // These decide the route key the canary pairs by, so they do count.
            if matches!(name, "use-regex" | "full-path-regex") {
                continue;
            }
            if mse_annotations::spec(name).is_some_and(|s| INHERITED.contains(&s.group)) {
                self.diag(
                    Diagnostic::info(
                        "canary-inherits",
                        "a canary takes this from its main route; the value here is not used",
                    )
                    .value(annotations[key].clone()),
                    sel,
                    Some(key),
                );
            }
        }
    }

    /// The main route with exactly this host, path and conditions, if any.
    fn find_route(
        &self,
        host: &HostMatch,
        path: &PathMatch,
        ignore_case: bool,
        cond_key: Option<&str>,
    ) -> Option<RouteId> {
        let vh = self.vhosts.get(&HostOrder::of(host))?;
        let ids: &[RouteId] = match (path, ignore_case) {
            (PathMatch::Exact(p), false) => vh.exact.get(p).map_or(&[], |c| c.ids()),
            (PathMatch::Prefix(p), false) => vh.prefix.get(p).map_or(&[], |c| c.ids()),
            (PathMatch::Exact(p), true) => vh
                .exact_ci
                .get(p.to_ascii_lowercase().as_str())
                .map_or(&[], |c| c.ids()),
            (PathMatch::Prefix(p), true) => vh
                .prefix_ci
                .get(p.to_ascii_lowercase().as_str())
                .map_or(&[], |c| c.ids()),
            (PathMatch::Regex(_), _) => &vh.regex,
        };
        ids.iter().copied().find(|id| {
            let r = &self.routes[id.0 as usize];
            r.path == *path && r.conditions.as_deref().map(Conditions::key) == cond_key
        })
    }

    /// Says so for every valid annotation whose feature the data plane does not apply yet,
    /// so that nobody mistakes "parsed" for "in effect". Security keys are not listed here:
    /// they close the routes instead (see [`Self::unenforced_security`]); canary keys have
    /// their own diagnostic.
    fn not_applied(
        &mut self,
        sel: &Selected<'s>,
        annotations: &BTreeMap<String, String>,
        reported: &[Arc<str>],
        policy: &IngressPolicy,
    ) {
        /// Annotation groups the data plane applies. Each feature joins this list when its
        /// layer lands.
        const APPLIED: &[Group] = &[
            Group::Cors,
            Group::Fallback,
            Group::Headers,
            Group::Matching,
            Group::Mirror,
            Group::Redirect,
            Group::Rewrite,
        ];
        for key in annotations.keys() {
            let Some((_, name)) = mse_annotations::split_key(key) else {
                continue;
            };
            let Some(spec) = mse_annotations::spec(name) else {
                continue;
            };
            let parsed = matches!(spec.support, Support::Supported | Support::Different(_));
            if !parsed
                || spec.security
                || spec.group == Group::Canary
                || APPLIED.contains(&spec.group)
                || policy::applied(name, policy)
                || reported.iter().any(|r| **r == **key)
            {
                continue;
            }
            self.diag(
                Diagnostic::warning(
                    "not-applied",
                    "valid, but this gateway build does not apply it yet: requests are served as if it were absent",
                )
                .value(annotations[key].clone()),
                sel,
                Some(key),
            );
        }
    }

    /// The redirects, header edits and rewrites of an Ingress, built once for all of its
    /// routes. Routes closed by a security annotation get none: they answer 503 whatever
    /// else is asked. Header edits that cannot apply get a warning.
    fn route_policy(
        &mut self,
        sel: &Selected<'s>,
        policy: &IngressPolicy,
        closed: bool,
    ) -> Option<Arc<RoutePolicy>> {
        if closed {
            return RoutePolicy::ssl_only(policy).map(Arc::new);
        }
        let (built, refused) = RoutePolicy::build(policy);
        let built = self.with_fallback(sel, policy, built);
        let built = self.with_mirror(sel, policy, built);
        self.report_refused(sel, refused);
        built.map(Arc::new)
    }

    /// A warning for each header edit that cannot apply.
    fn report_refused(&mut self, sel: &Selected<'s>, refused: Vec<policy::Refused>) {
        for (name, why) in refused {
            let key = sel
                .ingress
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| mse_annotations::lookup(a, name))
                .map(|f| f.key.to_owned());
            self.diag(
                Diagnostic::warning("ignored-annotation", why),
                sel,
                key.as_deref(),
            );
        }
    }

    /// Security annotations that parsed but that the data plane does not enforce yet
    /// (authentication, client certificates, IP allow and deny lists). Serving such routes
    /// would serve them open, so they fail closed like an invalid value would: 503, with an
    /// Error naming the annotation.
    fn unenforced_security(&mut self, sel: &Selected<'s>, policy: &IngressPolicy) -> Vec<String> {
        let annotations = sel.ingress.metadata.annotations.as_ref();
        let present = |name: &str| {
            annotations
                .and_then(|a| mse_annotations::lookup(a, name))
                .map(|f| f.key.to_owned())
        };
        let mut keys = Vec::new();
        let checks: [(bool, &[&str]); 4] = [
            (policy.auth.basic.is_some(), &["auth-type", "auth-secret"]),
            (policy.auth.external.is_some(), &["auth-url"]),
            (policy.tls.client_ca.is_some(), &["auth-tls-secret"]),
            (
                policy.access.allow.is_some()
                    || policy.access.deny.is_some()
                    || policy.access.host_allow.is_some()
                    || policy.access.host_deny.is_some(),
                &[
                    "whitelist-source-range",
                    "allowlist-source-range",
                    "denylist-source-range",
                    "blacklist-source-range",
                    "domain-whitelist-source-range",
                    "domain-blacklist-source-range",
                ],
            ),
        ];
        for (configured, names) in checks {
            if !configured {
                continue;
            }
            for key in names.iter().filter_map(|n| present(n)) {
                if policy.fail_closed.iter().any(|f| f.key == key) {
                    continue;
                }
                self.diag(
                    Diagnostic::error(
                        "security-not-enforced",
                        "this gateway build parses but does not yet enforce this security annotation; \
                         the Ingress's routes answer 503 instead of being served without it",
                    ),
                    sel,
                    Some(&key),
                );
                keys.push(key);
            }
        }
        keys
    }

    fn diag(&mut self, d: Diagnostic, sel: &Selected<'s>, key: Option<&str>) {
        let mut d = d.object(sel.key.clone()).source(sel.source.cloned());
        if let Some(k) = key {
            d = d.key(k);
        }
        self.diagnostics.push(d);
    }

    fn finish(self, generation: u64) -> RouteTable {
        let mut table = RouteTable {
            generation,
            routes: self.routes,
            clusters: self.clusters,
            diagnostics: self.diagnostics,
            ..RouteTable::default()
        };
        for (i, (order, mut vh)) in self.vhosts.into_iter().enumerate() {
            let i = i as u32;
            let routes = &table.routes;
            vh.regex.sort_by_key(|id| {
                let r = &routes[id.0 as usize];
                (
                    std::cmp::Reverse(r.path.path().len()),
                    Conditions::rank(r.conditions.as_deref()),
                    *id,
                )
            });
            vh.seal(routes);
            match &order {
                HostOrder::Exact(h) => {
                    table.exact_hosts.insert(h.clone(), i);
                }
                HostOrder::Wildcard(s) => {
                    table.wildcard_hosts.insert(s.clone(), i);
                }
                HostOrder::Any => table.any_host = Some(i),
            }
            table.vhosts.push((order.host(), vh));
        }
        let mut tls = TlsTable {
            certs: self.tls.certs,
            ..TlsTable::default()
        };
        for (order, (id, _)) in self.tls.hosts {
            match order {
                HostOrder::Exact(h) => {
                    tls.exact.insert(h, id);
                }
                HostOrder::Wildcard(s) => {
                    tls.wildcard.insert(s, id);
                }
                HostOrder::Any => tls.default = Some(id),
            }
        }
        for route in &mut table.routes {
            let has_tls = match &route.host {
                HostMatch::Exact(h) => {
                    tls.exact.contains_key(h)
                        || wildcard_suffix(h).is_some_and(|s| tls.wildcard.contains_key(s))
                }
                HostMatch::Wildcard(s) => tls.wildcard.contains_key(s),
                HostMatch::Any => false,
            };
            route.https_redirect = match &route.policy {
                Some(p) => p.redirects_to_https(has_tls),
                None => has_tls,
            };
        }
        table.tls = tls;
        table
    }
}

/// Characters that make a path a regex when `rewrite-target` is set (Higress).
const REGEX_CHARS: &[char] = &[
    '\\', '.', '+', '*', '?', '(', ')', '|', '[', ']', '{', '}', '^', '$',
];

/// The regex a Prefix or ImplementationSpecific path becomes, if it becomes one:
/// `full-path-regex` (whole path), `use-regex`, or `rewrite-target` with capture groups or
/// on a path with regex characters (the start of the path), as Higress does. `None`:
/// the path stays a Prefix.
fn regex_path(
    policy: &IngressPolicy,
    raw: &str,
    path_type: &str,
) -> Option<Result<RegexPath, String>> {
    if path_type == "Exact" {
        return None;
    }
    let r = &policy.rewrite;
    let by_target = r.path.is_none()
        && r.target
            .as_ref()
            .is_some_and(|t| t.uses_groups() || raw.contains(REGEX_CHARS));
    if !(r.full_path_regex || r.use_regex || by_target) {
        return None;
    }
    Some(RegexPath::new(
        raw,
        r.full_path_regex,
        policy.matching.ignore_path_case,
    ))
}

/// An Exact or Prefix path (normalised; a Prefix without its trailing slash).
fn plain_path(raw: &str, path_type: &str) -> PathMatch {
    let normal = normalize_path(raw);
    if path_type == "Exact" {
        PathMatch::Exact(normal.into())
    } else {
        PathMatch::Prefix(normal.trim_end_matches('/').into())
    }
}

/// The path of one `paths[]` entry as routes key it: Exact, Prefix, or the regex the
/// Ingress's annotations make of it. An invalid entry is an Error diagnostic, with the
/// suffix of the field it is about (`""`, `.path`, `.pathType`); the entry is left out.
fn path_match(
    policy: &IngressPolicy,
    raw: Option<&str>,
    path_type: &str,
) -> Result<PathMatch, Box<(Diagnostic, &'static str)>> {
    let raw = raw.filter(|p| !p.is_empty()).unwrap_or("/");
    if !raw.starts_with('/') {
        let d = Diagnostic::error(
            "invalid-path",
            "path must start with '/'; this path is left out",
        );
        return Err(Box::new((d.value(raw), "")));
    }
    if !matches!(
        path_type,
        "Exact" | "Prefix" | "ImplementationSpecific" | ""
    ) {
        let d = Diagnostic::error(
            "invalid-path-type",
            "pathType must be Exact, Prefix or ImplementationSpecific; this path is left out",
        );
        return Err(Box::new((d.value(path_type), ".pathType")));
    }
    match regex_path(policy, raw, path_type) {
        None => Ok(plain_path(raw, path_type)),
        Some(Ok(r)) => Ok(PathMatch::Regex(r)),
        Some(Err(e)) => {
            let d = Diagnostic::error(
                "invalid-path",
                format!(
                    "the path is a regex here ({}) and does not compile: {e}; this path is left out",
                    regex_reason(policy)
                ),
            );
            Err(Box::new((d.value(raw), ".path")))
        }
    }
}

/// The main route's policy with the canary's own header control (Higress).
fn canary_policy(
    main: Option<&RoutePolicy>,
    own: Option<&RoutePolicy>,
) -> Option<Arc<RoutePolicy>> {
    let mut p = main.cloned().unwrap_or_default();
    match own {
        Some(own) => {
            p.request_headers = own.request_headers.clone();
            p.response_headers = own.response_headers.clone();
        }
        None => {
            p.request_headers = HeaderOps::default();
            p.response_headers = HeaderOps::default();
        }
    }
    (!p.is_empty()).then(|| Arc::new(p))
}

/// Which annotation made a path a regex, for diagnostics.
fn regex_reason(policy: &IngressPolicy) -> &'static str {
    let r = &policy.rewrite;
    if r.full_path_regex {
        "full-path-regex"
    } else if r.use_regex {
        "use-regex"
    } else {
        "rewrite-target"
    }
}

/// The numeric `targetPort` of an ExternalName Service's port: the port to connect to on
/// the external host (a named target port means nothing there).
pub(crate) fn external_port(port: Option<&ServicePort>) -> Option<u16> {
    port.and_then(|p| match &p.target_port {
        Some(IntOrString::Int(t)) => u16::try_from(*t).ok(),
        _ => None,
    })
}

fn ns_of(meta: &mse_model::api::ObjectMeta) -> &str {
    meta.namespace
        .as_deref()
        .filter(|n| !n.is_empty())
        .unwrap_or("default")
}

/// The DNS subject alternative names of a certificate, lower case; `None` when it cannot
/// be parsed (the TLS layer reports that).
fn dns_names(der: &CertificateDer<'_>) -> Option<Vec<String>> {
    let cert = webpki::EndEntityCert::try_from(der).ok()?;
    Some(
        cert.valid_dns_names()
            .map(|n| n.trim_end_matches('.').to_ascii_lowercase())
            .collect(),
    )
}

/// Whether certificate names cover a host pattern, as a TLS client checks: an exact name,
/// or a `*.` name covering exactly one more label; a wildcard host needs the same wildcard.
fn covers(names: &[String], host: &HostMatch) -> bool {
    match host {
        HostMatch::Any => true,
        HostMatch::Exact(h) => names.iter().any(|n| {
            **n == **h
                || n.strip_prefix("*.")
                    .is_some_and(|suffix| h.split_once('.').is_some_and(|(_, rest)| rest == suffix))
        }),
        HostMatch::Wildcard(s) => names.iter().any(|n| n.strip_prefix("*.") == Some(&**s)),
    }
}

/// Oldest first; objects without a creation time count as newest; then namespace/name.
fn age_order(a: &Selected<'_>, b: &Selected<'_>) -> Ordering {
    let ta = a.ingress.metadata.creation_timestamp.as_ref().map(|t| t.0);
    let tb = b.ingress.metadata.creation_timestamp.as_ref().map(|t| t.0);
    match (ta, tb) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
    .then_with(|| a.key.namespace.cmp(&b.key.namespace))
    .then_with(|| a.key.name.cmp(&b.key.name))
}

/// Indexes objects by namespace/name. Two objects with one name (possible in file mode)
/// keep the first in file/line order, with a warning naming both.
fn index_unique<'s, T>(
    list: &'s [Sourced<T>],
    kind: Kind,
    meta: impl Fn(&T) -> &mse_model::api::ObjectMeta,
    diagnostics: &mut Vec<Diagnostic>,
) -> HashMap<(&'s str, &'s str), &'s T> {
    let mut sorted: Vec<&Sourced<T>> = list.iter().collect();
    sorted.sort_by(|a, b| source_order(a.source.as_ref(), b.source.as_ref()));
    let mut out: HashMap<(&str, &str), &Sourced<T>> = HashMap::with_capacity(list.len());
    for s in sorted {
        let m = meta(&s.object);
        let k = (ns_of(m), m.name.as_deref().unwrap_or(""));
        if let Some(first) = out.get(&k) {
            let at = first
                .source
                .as_ref()
                .map(|s| format!(" at {s}"))
                .unwrap_or_default();
            diagnostics.push(
                Diagnostic::warning(
                    "duplicate-object",
                    format!(
                        "{kind} {}/{} is defined twice; the first definition{at} is used",
                        k.0, k.1
                    ),
                )
                .object(ObjectKey::new(kind, k.0, k.1))
                .source(s.source.clone()),
            );
            continue;
        }
        out.insert(k, s);
    }
    out.into_iter().map(|(k, v)| (k, &*v.object)).collect()
}

fn source_order(a: Option<&SourceRef>, b: Option<&SourceRef>) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) => a.file.cmp(&b.file).then(a.line.cmp(&b.line)),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

mod fallback;
mod mirror;

#[cfg(test)]
mod tests;
