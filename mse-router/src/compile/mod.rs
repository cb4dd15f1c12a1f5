//! Compiling a [`Snapshot`] into a [`RouteTable`].
//!
//! The rules, in the order they apply (ANNOTATIONS.md Part A, the Ingress specification,
//! and ingress-nginx where both are silent):
//!
//! 1. **Class selection**: an Ingress is ours when its class (the legacy
//!    `kubernetes.io/ingress.class` annotation, else `spec.ingressClassName`) names an
//!    IngressClass whose `spec.controller` is ours, or names the configured class and no
//!    IngressClass object of that name exists; an Ingress without a class is ours when one
//!    of our IngressClasses is marked default. An `MseIngressConfig` linked from our
//!    IngressClass (`spec.parameters`) narrows its Ingresses to its `watchNamespace` and
//!    may add others with its `ingressClass` (see `selection`).
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
//!
//! Before all of this, the gateway-wide configuration is read (see `global`): the
//! ConfigMap of [`CompileOptions::configmap`], `higress-config`, explicit flags and the
//! linked `MseIngressConfig`. It sets defaults the routes use (`ssl-redirect`,
//! `global-allowed-response-headers`) and travels with the table ([`RouteTable::global`]).

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use mse_annotations::global::{GlobalConfig, GlobalFlags};
use mse_annotations::{IngressPolicy, ObjectRef, ServiceRef};
use mse_model::api::{ConfigMap, EndpointSlice, Endpoints, Ingress, Secret, Service};
use mse_model::{Diagnostic, Kind, ObjectKey, Snapshot, SourceRef, Sourced};

use crate::host::HostMatch;
use crate::matching::Conditions;
use crate::policy::RoutePolicy;
use crate::table::{Backend, Cluster, ClusterId, Route, RouteTable, VirtualHost};

use backends::external_port;
pub use parsed::CompileCache;
pub use selection::selected_ingresses;
use tls::TlsBuilder;

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
    /// The ConfigMap of ingress-nginx keys (`--configmap NAMESPACE/NAME`; without a
    /// namespace, `default`). `higress-config` is read from its namespace.
    pub configmap: Option<ObjectRef>,
    /// The command-line flags given explicitly that have a global-configuration
    /// equivalent: they beat the ConfigMaps (a flag left at its default does not).
    pub flags: GlobalFlags,
}

impl Default for CompileOptions {
    fn default() -> Self {
        Self {
            ingress_class: "mse".to_owned(),
            controller: mse_model::CONTROLLER_NAME.to_owned(),
            default_backend: None,
            configmap: None,
            flags: GlobalFlags::default(),
        }
    }
}

/// Compiles a snapshot into a route table. Never fails: every problem becomes a
/// diagnostic in [`RouteTable::diagnostics`], and only what it touches is left out.
/// The result does not depend on the order of objects in the snapshot.
///
/// This is the first compile: see [`compile_with`] for the ones after it.
pub fn compile(snapshot: &Snapshot, opts: &CompileOptions) -> RouteTable {
    compile_with(snapshot, opts, None)
}

/// [`compile`], given the global configuration in force (the previous table's
/// [`RouteTable::global`]): a global setting whose new value is bad keeps its value from
/// there, with a diagnostic, instead of falling back to a default.
pub fn compile_with(
    snapshot: &Snapshot,
    opts: &CompileOptions,
    previous: Option<&GlobalConfig>,
) -> RouteTable {
    compile_cached(snapshot, opts, previous, &mut CompileCache::new())
}

/// [`compile_with`], reusing the parsed annotations `cache` kept from the compiles before
/// it, and keeping this compile's for the next (see [`CompileCache`]). The table is the
/// one [`compile_with`] gives; only the time it takes differs.
pub fn compile_cached(
    snapshot: &Snapshot,
    opts: &CompileOptions,
    previous: Option<&GlobalConfig>,
    cache: &mut CompileCache,
) -> RouteTable {
    let mut cx = Compiler::new(snapshot, std::mem::take(cache));
    cx.global = Arc::new(cx.global_config(snapshot, opts, previous));
    let ingresses = cx.select_ingresses(snapshot, opts);
    cx.add_gateway_default(opts);
    for ing in &ingresses {
        cx.add_ingress(ing);
    }
    cx.add_host_redirects(&ingresses);
    cx.apply_canaries();
    cx.resolve_access();
    let gateway_default = cx.gateway_default;
    cx.parsed.end();
    *cache = std::mem::take(&mut cx.parsed);
    let mut table = cx.finish(snapshot.generation);
    table.default_backend = gateway_default;
    table.ingresses = ingresses.into_iter().map(|s| s.key).collect();
    crate::lint::locate_annotations(&mut table.diagnostics, &snapshot.annotation_lines);
    table
}

/// An Ingress chosen for compiling, with what sorting and diagnostics need.
#[derive(Clone)]
struct Selected<'s> {
    key: ObjectKey,
    source: Option<&'s SourceRef>,
    ingress: &'s Ingress,
}

/// The state of one compile run. Each step of [`compile`] is a method in the module of its
/// job; this module holds the state and the order of the steps.
struct Compiler<'s> {
    services: HashMap<(&'s str, &'s str), &'s Service>,
    slices: HashMap<(&'s str, &'s str), Vec<&'s EndpointSlice>>,
    endpoints: HashMap<(&'s str, &'s str), &'s Endpoints>,
    secrets: HashMap<(&'s str, &'s str), &'s Secret>,
    config_maps: HashMap<(&'s str, &'s str), &'s ConfigMap>,

    routes: Vec<Route>,
    /// Regex paths compiled so far, shared by the routes that use the same one.
    regexes: routes::RegexCache,
    /// Parsed annotations by distinct set, from the compiles before and for the next.
    parsed: CompileCache,
    clusters: Vec<Cluster>,
    cluster_ids: HashMap<(ObjectKey, u16), ClusterId>,
    /// Clusters of a Service port with an Ingress's `backend-protocol`, by the port's own
    /// cluster and the protocol.
    protocol_clusters: HashMap<(ClusterId, Arc<crate::policy::UpstreamProtocol>), ClusterId>,
    /// Clusters of a Service port with an Ingress's `service-upstream`, `service-subset`
    /// or `warmup`, by the port's own cluster and the setting.
    variant_clusters: HashMap<(ClusterId, variants::Variant), ClusterId>,
    /// The Pods of the snapshot, for `service-subset`.
    pods: variants::Pods<'s>,
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
    /// The gateway-wide configuration, read before any Ingress.
    global: Arc<GlobalConfig>,
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
    policy: Arc<IngressPolicy>,
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

// === impl Compiler ===

impl<'s> Compiler<'s> {
    fn new(snapshot: &'s Snapshot, mut parsed: CompileCache) -> Self {
        parsed.begin();
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
        let config_maps = index_unique(
            &snapshot.config_maps,
            Kind::ConfigMap,
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
            config_maps,
            routes: Vec::new(),
            regexes: routes::RegexCache::new(),
            parsed,
            clusters: Vec::new(),
            cluster_ids: HashMap::new(),
            protocol_clusters: HashMap::new(),
            variant_clusters: HashMap::new(),
            pods: variants::Pods::new(snapshot),
            vhosts: BTreeMap::new(),
            www: Vec::new(),
            app_roots: Vec::new(),
            tls: TlsBuilder::default(),
            canaries: Vec::new(),
            closed: HashSet::new(),
            gateway_default: None,
            global: Arc::default(),
            diagnostics,
        }
    }

    fn diag(&mut self, d: Diagnostic, sel: &Selected<'s>, key: Option<&str>) {
        let mut d = d.object(sel.key.clone()).source(sel.source.cloned());
        if let Some(k) = key {
            d = d.key(k);
        }
        self.diagnostics.push(d);
    }
}

fn ns_of(meta: &mse_model::api::ObjectMeta) -> &str {
    meta.namespace
        .as_deref()
        .filter(|n| !n.is_empty())
        .unwrap_or("default")
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

mod access;
mod applied;
mod auth;
mod backends;
mod canaries;
mod checks;
mod custom_headers;
mod fallback;
mod finish;
mod global;
mod host_tls;
mod ingress;
mod mirror;
mod parsed;
mod redirects;
mod routes;
mod selection;
mod tls;
mod upstream;
mod variants;

#[cfg(test)]
mod tests;
