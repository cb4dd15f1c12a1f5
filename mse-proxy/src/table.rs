//! [`SharedTable`]: the route table being served, swapped atomically, plus what the proxy
//! derives from each table once when it is published (its certificates, round-robin
//! cursors, and the [`Settings`] of its global configuration).

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::{ArcSwap, ArcSwapOption, Guard};
use mse_model::ObjectKey;
use mse_router::{Balance, Certificate, Cluster, ClusterTarget, RouteId, RouteTable, TlsPolicyId};
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;

use crate::config::ProxyConfig;
use crate::metrics::Metrics;
use crate::policy::balance::{self, Balancing, Extras, KeySource, TokenKey};
use crate::policy::limit::{self, Limiter};
use crate::policy::load::Loads;
use crate::policy::outlier::{self, ClusterHealth, Outliers};
use crate::policy::shared_limit::{self, Hub, SharedLimiter};
use crate::settings::{Defaults, Settings};
use crate::stats::LabelTable;
use crate::tls::{PolicyKit, TableResolver};
use crate::upstream::{ConfigCache, Protocol, Upstream};

/// The route table being served, shared by every worker, the TLS resolver and the admin
/// server. Cheap to clone.
///
/// [`SharedTable::publish`] swaps in a new table atomically: requests that already looked
/// up a route finish on the table they saw, new requests see the new one, and nothing
/// waits on a lock.
#[derive(Clone)]
pub struct SharedTable {
    inner: Arc<Shared>,
}

struct Shared {
    current: ArcSwap<ProxyTable>,
    metrics: Arc<Metrics>,
    provider: Arc<CryptoProvider>,
    /// The certificate of server names the table has none for (`None`: it could not be
    /// made, and such handshakes fail).
    fallback: Option<Arc<CertifiedKey>>,
    /// The data plane's own values of the global settings, and the lock that orders the
    /// builds of new tables (never taken on the request path).
    defaults: Mutex<Defaults>,
    /// The key of the affinity cookies' tokens (see [`crate::policy::balance`]).
    affinity_key: ArcSwapOption<TokenKey>,
    /// The endpoints' outlier state, by address (see [`crate::policy::outlier`]).
    outliers: Arc<Outliers>,
    /// The Redis of the shared limits (see [`crate::policy::shared_limit`]).
    redis: Hub,
}

/// One published [`RouteTable`] with the state the proxy keeps beside it: a round-robin
/// cursor per cluster, the certificates loaded into rustls and the settings of its global
/// configuration.
pub struct ProxyTable {
    routes: Arc<RouteTable>,
    clusters: Vec<ClusterState>,
    certs: Vec<Option<LoadedCert>>,
    /// The loaded keys by certificate, shared with the handshakes' resolver.
    keys: Arc<[Option<Arc<CertifiedKey>>]>,
    /// The rustls configuration of each host TLS policy, by [`TlsPolicyId`].
    tls: Vec<Option<PolicyTls>>,
    settings: Settings,
    /// The local limits' state, by route id (see [`crate::policy::limit`]).
    limiters: Box<[Option<Arc<Limiter>>]>,
    /// The shared limits' state, by route id (see [`crate::policy::shared_limit`]).
    shared_limiters: Box<[Option<Arc<SharedLimiter>>]>,
    /// The label sets of the per-route metrics (see [`crate::stats`]).
    labels: Arc<LabelTable>,
}

/// One host TLS policy, ready for handshakes.
struct PolicyTls {
    kit: Arc<PolicyKit>,
    config: Arc<ServerConfig>,
}

/// Round-robin state of one cluster, padded to a cache line so that workers picking
/// endpoints of different clusters do not contend.
#[repr(align(64))]
struct ClusterState {
    next: AtomicUsize,
    /// The DNS name of an ExternalName cluster, shared with every request to it.
    name: Option<Arc<str>>,
    /// What its routes' `load-balance`, `upstream-hash-by` or affinity needs.
    balancing: Balancing,
    /// Its upstream protocol, when not plain HTTP/1.1.
    protocol: Option<Arc<Protocol>>,
    /// Its endpoints' outlier state and connection counts, for a cluster of endpoints.
    health: Option<Arc<ClusterHealth>>,
}

struct LoadedCert {
    source: Certificate,
    key: Arc<CertifiedKey>,
}

/// Where a request goes, decided while the table guard is held.
pub(crate) enum Pick {
    /// An upstream address or name.
    To(Upstream),
    /// The cluster has no ready endpoint.
    NoEndpoints,
}

// === impl SharedTable ===

impl SharedTable {
    /// A shared table serving [`RouteTable::empty`] (every request gets 404) until the
    /// first [`SharedTable::publish`].
    pub fn new(metrics: Arc<Metrics>) -> Self {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let fallback = crate::tls::fallback_certificate(&provider)
            .inspect_err(|e| {
                tracing::error!(error = %crate::error::Chain(e), "no fallback certificate: handshakes for unknown server names fail");
            })
            .ok();
        let defaults = Defaults::default();
        let affinity_key = ArcSwapOption::from(TokenKey::new(&provider, None).map(Arc::new));
        if affinity_key.load().is_none() {
            tracing::error!(
                "no key for affinity cookies: affinity: cookie falls back to round robin"
            );
        }
        let outliers = Arc::new(Outliers::default());
        let redis = Hub::new(metrics.redis.clone());
        let build = Build {
            provider: &provider,
            fallback: fallback.as_ref(),
            previous: None,
            defaults: &defaults,
            affinity_key: None,
            outliers: (&outliers, &metrics),
            redis: &redis,
            exporters: &metrics.exporters,
        };
        let empty = ProxyTable::build(Arc::new(RouteTable::empty()), &build);
        Self {
            inner: Arc::new(Shared {
                current: ArcSwap::from_pointee(empty),
                metrics,
                provider,
                fallback,
                defaults: Mutex::new(defaults),
                affinity_key,
                outliers,
                redis,
            }),
        }
    }

    /// Takes the data plane's own values of the global settings from `config` (a setting
    /// the table's global configuration sets still wins), and rebuilds the table being
    /// served with them. [`crate::Gateway::start`] calls it.
    pub(crate) fn set_defaults(&self, config: &ProxyConfig) {
        let mut defaults = self
            .inner
            .defaults
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *defaults = Defaults::from(config);
        self.inner.redis.tune(&config.shared_limits);
        if let Some(key) = &config.affinity_key {
            let key = TokenKey::new(&self.inner.provider, Some(key.secret()));
            self.inner.affinity_key.store(key.map(Arc::new));
        }
        let current = self.inner.current.load_full();
        let next = ProxyTable::build(
            Arc::clone(&current.routes),
            &Build {
                provider: &self.inner.provider,
                fallback: self.inner.fallback.as_ref(),
                previous: Some(&current),
                defaults: &defaults,
                affinity_key: self.inner.affinity_key.load().as_deref(),
                outliers: (&self.inner.outliers, &self.inner.metrics),
                redis: &self.inner.redis,
                exporters: &self.inner.metrics.exporters,
            },
        );
        self.inner.outliers.publish(next.health());
        self.inner.current.store(Arc::new(next));
    }

    /// Swaps in `table`. Certificates rustls cannot load are logged as errors naming their
    /// Secret and left out (their hosts get the fallback certificate); certificates equal to
    /// ones of the previous table are not loaded again.
    pub fn publish(&self, table: Arc<RouteTable>) {
        let generation = table.generation();
        let defaults = self
            .inner
            .defaults
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let previous = self.inner.current.load_full();
        let next = ProxyTable::build(
            table,
            &Build {
                provider: &self.inner.provider,
                fallback: self.inner.fallback.as_ref(),
                previous: Some(&previous),
                defaults: &defaults,
                affinity_key: self.inner.affinity_key.load().as_deref(),
                outliers: (&self.inner.outliers, &self.inner.metrics),
                redis: &self.inner.redis,
                exporters: &self.inner.metrics.exporters,
            },
        );
        self.inner.outliers.publish(next.health());
        self.inner.metrics.certificates(next.routes.certificates());
        let old = self.inner.current.swap(Arc::new(next));
        drop(defaults);
        self.inner.metrics.published(generation);
        tracing::info!(
            from = old.routes.generation(),
            to = generation,
            "route table published"
        );
    }

    /// The table being served now. Holding the returned `Arc` keeps that table alive.
    pub fn current(&self) -> Arc<ProxyTable> {
        self.inner.current.load_full()
    }

    /// The route table being served now.
    pub fn routes(&self) -> Arc<RouteTable> {
        Arc::clone(&self.inner.current.load().routes)
    }

    /// The metrics every part of the data plane updates.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    /// The endpoints' outlier state, shared with every worker's upstream pool.
    pub(crate) fn outliers(&self) -> &Arc<Outliers> {
        &self.inner.outliers
    }

    /// The affinity token of an endpoint (see [`crate::policy::balance`]).
    pub(crate) fn affinity_token(&self, addr: &std::net::SocketAddr) -> Option<u64> {
        self.inner
            .affinity_key
            .load()
            .as_ref()
            .map(|k| k.token(addr))
    }

    /// The endpoints ejected now by outlier detection; endpoints whose time is up are
    /// let back in first.
    pub fn ejected_endpoints(&self) -> serde_json::Value {
        let table = self.inner.current.load();
        let mut out = Vec::new();
        for h in table.health() {
            h.sweep();
            out.extend(h.report());
        }
        serde_json::to_value(out).unwrap_or_default()
    }

    /// The crypto provider certificates are loaded with.
    pub(crate) fn provider(&self) -> &Arc<CryptoProvider> {
        &self.inner.provider
    }

    /// A short-lived view of the current table for the request path: no reference count
    /// is touched. Drop it before any `.await`.
    pub(crate) fn load(&self) -> Guard<Arc<ProxyTable>> {
        self.inner.current.load()
    }
}

impl fmt::Debug for SharedTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.inner.current.load();
        f.debug_struct("SharedTable")
            .field("generation", &t.routes.generation())
            .field("routes", &t.routes.routes().len())
            .finish()
    }
}

/// What building a [`ProxyTable`] needs besides its route table.
struct Build<'a> {
    provider: &'a Arc<CryptoProvider>,
    fallback: Option<&'a Arc<CertifiedKey>>,
    previous: Option<&'a ProxyTable>,
    defaults: &'a Defaults,
    affinity_key: Option<&'a TokenKey>,
    outliers: (&'a Outliers, &'a Metrics),
    redis: &'a Hub,
    /// The gateway's span exporters.
    exporters: &'a crate::otel::Exporters,
}

// === impl ProxyTable ===

impl ProxyTable {
    fn build(routes: Arc<RouteTable>, b: &Build<'_>) -> Self {
        let (provider, previous, affinity_key) = (&**b.provider, b.previous, b.affinity_key);
        let mut settings = Settings::derive(routes.global(), b.defaults);
        settings.tracing = crate::otel::Tracer::of(&routes.global().tracing, b.exporters);
        let protocols: Vec<Arc<Protocol>> = previous
            .map(|p| {
                p.clusters
                    .iter()
                    .filter_map(|c| c.protocol.clone())
                    .collect()
            })
            .unwrap_or_default();
        let mut configs = ConfigCache::default();
        let rules = outlier::Rules::of(&routes.global().upstream);
        let before = previous.map(Previous::of);
        let clusters = routes
            .clusters()
            .iter()
            .zip(balance::plan(
                &routes,
                affinity_key,
                previous.map(Previous::of),
            ))
            .map(|(c, balancing)| ClusterState {
                next: AtomicUsize::new(0),
                name: match &c.target {
                    ClusterTarget::ExternalName { host, .. } => Some(Arc::from(&**host)),
                    ClusterTarget::Endpoints(_) => None,
                },
                balancing,
                protocol: c
                    .protocol
                    .as_ref()
                    .map(|p| Protocol::build(p, c, b.provider, &protocols, &mut configs)),
                health: health(c, rules, before.as_ref(), b.outliers),
            })
            .collect();
        let certs = routes
            .certificates()
            .iter()
            .map(|c| {
                if let Some(key) = previous.and_then(|p| p.reuse(c)) {
                    return Some(LoadedCert {
                        source: c.clone(),
                        key,
                    });
                }
                load_cert(c, provider).map(|key| LoadedCert {
                    source: c.clone(),
                    key,
                })
            })
            .collect::<Vec<_>>();
        let keys: Arc<[Option<Arc<CertifiedKey>>]> = certs
            .iter()
            .map(|c: &Option<LoadedCert>| c.as_ref().map(|l| Arc::clone(&l.key)))
            .collect();
        let resolver = Arc::new(TableResolver {
            routes: Arc::clone(&routes),
            keys: Arc::clone(&keys),
            fallback: b.fallback.cloned(),
        });
        let tls = routes
            .tls_policies()
            .iter()
            .map(|policy| {
                let kit = match previous.and_then(|p| p.reuse_kit(policy)) {
                    Some(kit) => kit,
                    None => match PolicyKit::new(policy, provider) {
                        Ok(kit) => Arc::new(kit),
                        Err(e) => {
                            let secret = policy.client.as_ref().map(|c| c.secret.to_string());
                            tracing::error!(
                                secret = secret.as_deref().unwrap_or(""),
                                error = %e,
                                "a host TLS policy cannot be set up; handshakes for its hosts fail"
                            );
                            return None;
                        }
                    },
                };
                match kit.server_config(resolver.clone()) {
                    Ok(config) => Some(PolicyTls { kit, config }),
                    Err(e) => {
                        tracing::error!(error = %e, "a host TLS policy cannot be set up; handshakes for its hosts fail");
                        None
                    }
                }
            })
            .collect();
        let limiters = limit::plan(&routes, previous.map(|p| (&*p.routes, &*p.limiters)));
        let shared_limiters = shared_limit::plan(
            &routes,
            previous.map(|p| (&*p.routes, &*p.shared_limiters)),
            b.redis,
        );
        // The same routes (new defaults only) keep their label sets.
        let labels = match previous.filter(|p| Arc::ptr_eq(&p.routes, &routes)) {
            Some(p) => Arc::clone(&p.labels),
            None => Arc::new(LabelTable::build(&routes)),
        };
        Self {
            routes,
            clusters,
            certs,
            keys,
            tls,
            settings,
            limiters,
            shared_limiters,
            labels,
        }
    }

    /// The rustls configuration and kit of a host TLS policy; `None` when it could not be
    /// set up (its hosts' handshakes fail rather than go on without it).
    pub(crate) fn tls_policy(
        &self,
        id: TlsPolicyId,
    ) -> Option<(Arc<ServerConfig>, Arc<PolicyKit>)> {
        let p = self.tls.get(id.0 as usize)?.as_ref()?;
        Some((Arc::clone(&p.config), Arc::clone(&p.kit)))
    }

    /// The kit of a host TLS policy, when it could be set up.
    pub(crate) fn tls_kit(&self, id: TlsPolicyId) -> Option<&Arc<PolicyKit>> {
        Some(&self.tls.get(id.0 as usize)?.as_ref()?.kit)
    }

    fn reuse_kit(&self, policy: &mse_router::HostTls) -> Option<Arc<PolicyKit>> {
        self.tls
            .iter()
            .flatten()
            .find(|p| p.kit.policy == *policy)
            .map(|p| Arc::clone(&p.kit))
    }

    /// What the data plane applies of the table's global configuration.
    /// The local limits of route `id`, when it has any.
    pub(crate) fn limiter(&self, id: RouteId) -> Option<&Arc<Limiter>> {
        self.limiters.get(id.0 as usize)?.as_ref()
    }

    /// The shared limits of route `id`, when it has any.
    pub(crate) fn shared_limiter(&self, id: RouteId) -> Option<&Arc<SharedLimiter>> {
        self.shared_limiters.get(id.0 as usize)?.as_ref()
    }

    /// The label sets of the per-route metrics.
    pub(crate) fn labels(&self) -> &Arc<LabelTable> {
        &self.labels
    }

    pub(crate) fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The compiled route table.
    pub fn routes(&self) -> &Arc<RouteTable> {
        &self.routes
    }

    /// The generation of the route table.
    pub fn generation(&self) -> u64 {
        self.routes.generation()
    }

    /// How many of the table's certificates rustls loaded.
    pub fn loaded_certificates(&self) -> usize {
        self.certs.iter().flatten().count()
    }

    /// The certificate for a TLS server name, as [`RouteTable::certificate_for`] picks it;
    /// `None` when the table has none for it (or it failed to load): the caller's
    /// fallback certificate applies.
    pub fn certified_key(&self, server_name: Option<&str>) -> Option<Arc<CertifiedKey>> {
        let id = self.routes.certificate_for(server_name)?;
        self.keys.get(id.0 as usize)?.clone()
    }

    /// Picks the next upstream of a cluster, round robin over its endpoints.
    pub(crate) fn pick(&self, cluster: &Cluster) -> Pick {
        let Some(state) = self.clusters.get(cluster.id.0 as usize) else {
            return Pick::NoEndpoints;
        };
        match &cluster.target {
            ClusterTarget::Endpoints(addrs) => match addrs.len() {
                0 => Pick::NoEndpoints,
                1 => Pick::To(Upstream::Addr(addrs[0])),
                n => {
                    let i = match state.balancing.warming_pick() {
                        Some(i) => i,
                        None => state.next.fetch_add(1, Ordering::Relaxed),
                    } % n;
                    let i = state.health.as_ref().map_or(i, |h| h.avoid(i));
                    Pick::To(Upstream::Addr(addrs[i]))
                }
            },
            ClusterTarget::ExternalName { port, .. } => match &state.name {
                Some(host) => Pick::To(Upstream::Name {
                    host: Arc::clone(host),
                    port: *port,
                }),
                None => Pick::NoEndpoints,
            },
        }
    }

    /// Picks an upstream of a cluster as `balance` says; round robin where it cannot
    /// choose (one endpoint, an ExternalName Service).
    pub(crate) fn pick_balanced(
        &self,
        cluster: &Cluster,
        how: &Balance,
        src: &KeySource<'_>,
        extras: &mut Extras,
    ) -> Pick {
        let (Some(state), ClusterTarget::Endpoints(addrs)) =
            (self.clusters.get(cluster.id.0 as usize), &cluster.target)
        else {
            return self.pick(cluster);
        };
        let rr = || state.next.fetch_add(1, Ordering::Relaxed) % addrs.len().max(1);
        let health = state.health.as_deref();
        match balance::pick(&state.balancing, (addrs, health), how, src, rr, extras) {
            Some(i) => match addrs.get(i) {
                Some(a) => Pick::To(Upstream::Addr(*a)),
                None => self.pick(cluster),
            },
            None => self.pick(cluster),
        }
    }

    /// The outlier state of every cluster that has one.
    fn health(&self) -> impl Iterator<Item = &Arc<ClusterHealth>> {
        self.clusters.iter().filter_map(|c| c.health.as_ref())
    }

    /// The upstream protocol of a cluster, when not plain HTTP/1.1.
    pub(crate) fn protocol(&self, cluster: &Cluster) -> Option<Arc<Protocol>> {
        self.clusters.get(cluster.id.0 as usize)?.protocol.clone()
    }

    /// The balancing state of a backend's cluster.
    pub(crate) fn balancing(&self, backend: &mse_router::Backend) -> Option<&Balancing> {
        match backend {
            mse_router::Backend::Cluster(id) => {
                self.clusters.get(id.0 as usize).map(|c| &c.balancing)
            }
            mse_router::Backend::Unavailable { .. } => None,
        }
    }

    /// The endpoint load of the cluster of the same Service port and endpoints, if this
    /// table kept one.
    fn loads_of(&self, index: usize, cluster: &Cluster) -> Option<&Arc<Loads>> {
        let c = self.routes.clusters().get(index)?;
        if c.target != cluster.target {
            return None;
        }
        self.clusters.get(index)?.balancing.loads()
    }

    fn reuse(&self, cert: &Certificate) -> Option<Arc<CertifiedKey>> {
        self.certs.iter().flatten().find_map(|l| {
            (l.source.chain == cert.chain && l.source.key.secret_der() == cert.key.secret_der())
                .then(|| Arc::clone(&l.key))
        })
    }
}

impl fmt::Debug for ProxyTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyTable")
            .field("generation", &self.routes.generation())
            .field("routes", &self.routes.routes().len())
            .field("clusters", &self.clusters.len())
            .field("certificates", &self.loaded_certificates())
            .finish()
    }
}

/// The table being replaced, for what a new table carries over: the endpoint load of
/// clusters whose endpoints did not change, so that requests in flight and response times
/// stay counted across publishes.
pub(crate) struct Previous<'t> {
    table: &'t ProxyTable,
    by_port: HashMap<(&'t ObjectKey, u16), usize>,
}

impl<'t> Previous<'t> {
    fn of(table: &'t ProxyTable) -> Self {
        let by_port = (table.routes.clusters().iter())
            .enumerate()
            .map(|(i, c)| ((&c.service, c.port), i))
            .collect();
        Self { table, by_port }
    }

    /// The outlier state the previous table kept for `cluster`'s Service port.
    fn health(&self, cluster: &Cluster) -> Option<&'t Arc<ClusterHealth>> {
        let i = *self.by_port.get(&(&cluster.service, cluster.port))?;
        self.table.clusters.get(i)?.health.as_ref()
    }

    /// The load the previous table kept for `cluster`'s Service port and endpoints.
    pub(crate) fn loads(&self, cluster: &Cluster) -> Option<Arc<Loads>> {
        let i = *self.by_port.get(&(&cluster.service, cluster.port))?;
        self.table.loads_of(i, cluster).map(Arc::clone)
    }

    /// The endpoints of the previous table's cluster of `cluster`'s Service port and
    /// selection, with their slow start if it had `warmup`.
    pub(crate) fn warmup(
        &self,
        cluster: &Cluster,
    ) -> Option<(&'t [SocketAddr], Option<&'t crate::policy::warmup::Warmup>)> {
        let t = self.table;
        let same = (t.routes.clusters().iter().zip(&t.clusters)).filter(|(c, _)| {
            c.service == cluster.service
                && c.port == cluster.port
                && c.selection == cluster.selection
        });
        let mut found = None;
        for (c, state) in same {
            let ClusterTarget::Endpoints(addrs) = &c.target else {
                continue;
            };
            let warmup = state.balancing.warmup();
            if found.is_none() || warmup.is_some() {
                found = Some((&addrs[..], warmup));
            }
            if warmup.is_some() {
                break;
            }
        }
        found
    }
}

/// The outlier state of a cluster of endpoints: the previous table's when
/// its endpoints and rules are the same, else a new one that keeps the state of the
/// endpoints it still has.
fn health(
    c: &Cluster,
    rules: outlier::Rules,
    previous: Option<&Previous<'_>>,
    (outliers, metrics): (&Outliers, &Metrics),
) -> Option<Arc<ClusterHealth>> {
    let ClusterTarget::Endpoints(addrs) = &c.target else {
        return None;
    };
    if addrs.is_empty() {
        return None;
    }
    let before = previous.and_then(|p| p.health(c));
    if let Some(h) = before.filter(|h| h.same(addrs, rules)) {
        return Some(Arc::clone(h));
    }
    let handles = metrics.outlier_handles(&c.service, c.port);
    Some(Arc::new(outliers.cluster(
        (&c.service, c.port),
        addrs,
        rules,
        before.map(|h| &**h),
        handles,
    )))
}

fn load_cert(cert: &Certificate, provider: &CryptoProvider) -> Option<Arc<CertifiedKey>> {
    match CertifiedKey::from_der(cert.chain.clone(), cert.key.clone_key(), provider) {
        Ok(key) => Some(Arc::new(key)),
        Err(e) => {
            tracing::error!(
                secret = %cert.secret,
                error = %e,
                "TLS certificate cannot be loaded; its hosts get the fallback certificate"
            );
            None
        }
    }
}
