//! [`Metrics`]: the data plane's Prometheus metrics.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

use crate::stats::{Collector, Snapshot};

/// Status classes, in the order of [`Metrics::requests`].
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// The data plane's metrics, shared by every worker and encoded by the admin server.
///
/// Every handle is registered once; the request path only touches atomics (no label
/// lookup per request).
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: [Counter; 5],
    upstream_connect_errors: Counter,
    upstream_timeouts: Counter,
    /// Retries on another endpoint: sent, and left out for the retry budget.
    retries: [Counter; 2],
    in_flight: Gauge,
    connections: Counter,
    tls_handshake_errors: Counter,
    table_generation: Gauge,
    table_publishes: Counter,
    /// Mirror copies by outcome, in the order of [`MIRROR_RESULTS`].
    mirror: [Counter; 3],
    /// Exchanges ended by a timeout while relaying, in the order of [`TIMEOUT_KINDS`].
    timeouts: [Counter; 2],
    /// When each served certificate expires, by Secret.
    ssl_expiry: Family<[(&'static str, String); 2], Gauge>,
    /// Outlier ejections, and endpoints ejected now, by Service port.
    ejections: Family<ServicePort, Counter>,
    ejected: Family<ServicePort, Gauge>,
    /// How to ask each running worker for its per-route counters.
    workers: Mutex<Vec<Collector>>,
    /// The control plane: the last compile that was published.
    config: ConfigMetrics,
    /// The limits shared through Redis.
    pub(crate) redis: crate::policy::shared_limit::RedisMetrics,
    /// The span exporters and what became of their spans.
    pub(crate) exporters: crate::otel::Exporters,
    /// Where the control plane's watch counts are read at each scrape (kube mode).
    watches: std::sync::OnceLock<WatchSource>,
}

/// What the control plane's watches of one kind did since they started
/// ([`Metrics::watch_counts`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WatchReport {
    /// The kind (`Ingress`, `Service`, ...).
    pub kind: String,
    /// Lists completed, the first of each watch included.
    pub lists: u64,
    /// Lists after a watch's first (its resourceVersion expired).
    pub relists: u64,
    /// Watch requests after a watch's first (a broken or ended stream, or after a relist).
    pub restarts: u64,
    /// Errors the watches met.
    pub errors: u64,
}

impl WatchReport {
    /// The report of `kind`'s watches.
    pub fn new(kind: &str, lists: u64, relists: u64, restarts: u64, errors: u64) -> Self {
        Self {
            kind: kind.to_owned(),
            lists,
            relists,
            restarts,
            errors,
        }
    }
}

/// Reads the watch counts at scrape time.
struct WatchSource(Box<dyn Fn() -> Vec<WatchReport> + Send + Sync>);

impl std::fmt::Debug for WatchSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WatchSource")
    }
}

/// The labels of a Service port: `namespace`, `service`, `port`.
type ServicePort = [(&'static str, String); 3];

/// What the control plane reports of its last compile ([`Metrics::compiled`]).
#[derive(Debug, Default)]
struct ConfigMetrics {
    last_success: Gauge,
    duration: Gauge<f64, std::sync::atomic::AtomicU64>,
    compiles: Counter,
    routes: Gauge,
    objects: Family<[(&'static str, &'static str); 1], Gauge>,
    diagnostics: Family<[(&'static str, &'static str); 2], Gauge>,
}

/// What one compile saw, for [`Metrics::compiled`].
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct CompileReport {
    /// How long compiling took.
    pub duration: Duration,
    /// Routes in the table.
    pub routes: usize,
    /// Objects of the snapshot by kind (`Ingress`, `Service`, ...).
    pub objects: Vec<(&'static str, usize)>,
    /// Diagnostics by severity (`error`, `warning`, `info`) and code.
    pub diagnostics: Vec<(&'static str, &'static str)>,
}

/// What timed out while a response was relayed: the upstream sent nothing for longer
/// than the read timeout, or the client took nothing for longer than the write timeout.
const TIMEOUT_KINDS: [&str; 2] = ["upstream_read", "client_write"];

/// One kind of timeout, for [`Metrics::timed_out`].
#[derive(Clone, Copy, Debug)]
pub(crate) enum TimeoutKind {
    UpstreamRead = 0,
    ClientWrite = 1,
}

/// Outcomes of a mirror copy: answered, not sent (the worker's limit of copies in flight
/// was reached, or the mirror has no endpoint), failed (connect error, timeout, or the
/// request body outran the copy).
const MIRROR_RESULTS: [&str; 3] = ["mirrored", "skipped", "failed"];

/// One outcome of a mirror copy, for [`Metrics::mirror_result`].
#[derive(Clone, Copy, Debug)]
pub(crate) enum MirrorResult {
    Mirrored = 0,
    Skipped = 1,
    Failed = 2,
}

// === impl Metrics ===

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Metrics in a registry of their own.
    pub fn new() -> Self {
        Self::with_registry(Registry::default())
    }

    /// Metrics added to `registry`, which may already hold the caller's own metrics; they
    /// are encoded together by [`Metrics::encode`]. Names start with `mse_`.
    pub fn with_registry(mut registry: Registry) -> Self {
        let reg = registry.sub_registry_with_prefix("mse");
        let by_class = Family::<[(&'static str, &'static str); 1], Counter>::default();
        let requests = CLASSES.map(|c| by_class.get_or_create(&[("class", c)]).clone());
        reg.register(
            "requests",
            "Requests answered, by status class (gateway errors included)",
            by_class,
        );
        let upstream_connect_errors = Counter::default();
        reg.register(
            "upstream_connect_errors",
            "Upstream connection attempts that failed (refused, unreachable, DNS, timeout)",
            upstream_connect_errors.clone(),
        );
        let upstream_timeouts = Counter::default();
        reg.register(
            "upstream_timeouts",
            "Requests answered 504 because the upstream did not connect or respond in time",
            upstream_timeouts.clone(),
        );
        let retries = [Counter::default(), Counter::default()];
        reg.register(
            "upstream_retries",
            "Attempts sent again to another endpoint (proxy-next-upstream)",
            retries[0].clone(),
        );
        reg.register(
            "upstream_retries_over_budget",
            "Retries not sent because the worker's retry budget was used up",
            retries[1].clone(),
        );
        let in_flight = Gauge::default();
        reg.register(
            "requests_in_flight",
            "Requests being proxied now (until their response body ends)",
            in_flight.clone(),
        );
        let connections = Counter::default();
        reg.register(
            "downstream_connections",
            "Client connections accepted",
            connections.clone(),
        );
        let tls_handshake_errors = Counter::default();
        reg.register(
            "tls_handshake_errors",
            "Client TLS handshakes that failed or timed out",
            tls_handshake_errors.clone(),
        );
        let table_generation = Gauge::default();
        reg.register(
            "route_table_generation",
            "Generation of the route table being served",
            table_generation.clone(),
        );
        let table_publishes = Counter::default();
        reg.register(
            "route_table_publishes",
            "Route tables published (hot swaps)",
            table_publishes.clone(),
        );
        let by_result = Family::<[(&'static str, &'static str); 1], Counter>::default();
        let mirror = MIRROR_RESULTS.map(|r| by_result.get_or_create(&[("result", r)]).clone());
        reg.register(
            "mirror_requests",
            "Copies of requests for mirror-target-*, by outcome (mirrored, skipped, failed)",
            by_result,
        );
        let by_kind = Family::<[(&'static str, &'static str); 1], Counter>::default();
        let timeouts = TIMEOUT_KINDS.map(|k| by_kind.get_or_create(&[("kind", k)]).clone());
        reg.register(
            "timeouts",
            "Exchanges closed because the upstream sent nothing within the read timeout \
             (upstream_read) or the client took nothing within the write timeout (client_write)",
            by_kind,
        );
        let redis = crate::policy::shared_limit::RedisMetrics::register(reg);
        let ssl_expiry = Family::<[(&'static str, String); 2], Gauge>::default();
        reg.register(
            "ssl_expire_time_seconds",
            "When the certificate of each TLS Secret being served expires (notAfter), in seconds since the Unix epoch",
            ssl_expiry.clone(),
        );
        let ejections = Family::<ServicePort, Counter>::default();
        reg.register(
            "upstream_ejections",
            "Endpoints ejected by outlier detection (failures in a row), by Service port",
            ejections.clone(),
        );
        let ejected = Family::<ServicePort, Gauge>::default();
        reg.register(
            "upstream_ejected_endpoints",
            "Endpoints ejected by outlier detection now, by Service port",
            ejected.clone(),
        );
        let exported = Counter::default();
        reg.register(
            "tracing_spans_exported",
            "Spans the OTLP collector accepted",
            exported.clone(),
        );
        let dropped = Family::<[(&'static str, &'static str); 1], Counter>::default();
        // One at a time: the family's lock is held while a handle is borrowed.
        let queue_full = dropped.get_or_create(&[("reason", "queue_full")]).clone();
        let export_failed = dropped
            .get_or_create(&[("reason", "export_failed")])
            .clone();
        let exporters = crate::otel::Exporters::new(crate::otel::SpanCounts {
            exported,
            dropped_queue_full: queue_full,
            dropped_export_failed: export_failed,
        });
        reg.register(
            "tracing_spans_dropped",
            "Spans not exported: the exporter's queue was full (queue_full), or the collector \
             refused them or could not be reached in time (export_failed)",
            dropped,
        );
        let config = ConfigMetrics::default();
        let sub = reg.sub_registry_with_prefix("ingress_config");
        sub.register(
            "last_reload_successful_timestamp_seconds",
            "When the last compiled route table was published, in seconds since the Unix epoch",
            config.last_success.clone(),
        );
        sub.register(
            "last_reload_duration_seconds",
            "How long the last compile of the route table took",
            config.duration.clone(),
        );
        sub.register(
            "reloads",
            "Route tables compiled and published",
            config.compiles.clone(),
        );
        sub.register(
            "routes",
            "Routes in the table being served",
            config.routes.clone(),
        );
        sub.register(
            "objects",
            "Objects of the last compiled snapshot, by kind",
            config.objects.clone(),
        );
        sub.register(
            "diagnostics",
            "Diagnostics of the last compile, by severity and code",
            config.diagnostics.clone(),
        );
        Self {
            ssl_expiry,
            ejections,
            ejected,
            config,
            exporters,
            watches: std::sync::OnceLock::new(),
            workers: Mutex::new(Vec::new()),
            registry,
            requests,
            upstream_connect_errors,
            upstream_timeouts,
            retries,
            in_flight,
            connections,
            tls_handshake_errors,
            table_generation,
            table_publishes,
            mirror,
            timeouts,
            redis,
        }
    }

    /// Every metric in the OpenMetrics text format, the per-route request metrics of the
    /// running workers included (`mse_ingress_*`, with ingress-nginx's label names). Each
    /// worker is asked for a copy of its counters; one that does not answer within a
    /// second is left out of this scrape.
    pub async fn scrape(&self) -> String {
        let asks: Vec<_> = {
            let mut workers = self.workers.lock().unwrap_or_else(PoisonError::into_inner);
            workers.retain(|w| !w.is_closed());
            workers
                .iter()
                .filter_map(|w| {
                    let (tx, rx) = oneshot::channel();
                    w.send(tx).ok().map(|()| rx)
                })
                .collect()
        };
        let mut snapshots = Vec::with_capacity(asks.len());
        for rx in asks {
            if let Ok(Ok(s)) = tokio::time::timeout(Duration::from_secs(1), rx).await {
                snapshots.push(s);
            }
        }
        let mut out = self.encode();
        if out.ends_with("# EOF\n") {
            out.truncate(out.len() - "# EOF\n".len());
        }
        crate::stats::encode(snapshots, &mut out);
        out.push_str("# EOF\n");
        out
    }

    /// Reports a compile whose table was just published: its time, duration, routes,
    /// objects and diagnostics (`mse_ingress_config_*`).
    pub fn compiled(&self, report: &CompileReport) {
        let c = &self.config;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        c.last_success.set(i64::try_from(now).unwrap_or(i64::MAX));
        c.duration.set(report.duration.as_secs_f64());
        c.compiles.inc();
        c.routes
            .set(i64::try_from(report.routes).unwrap_or(i64::MAX));
        c.objects.clear();
        for (kind, n) in &report.objects {
            c.objects
                .get_or_create(&[("kind", *kind)])
                .set(i64::try_from(*n).unwrap_or(i64::MAX));
        }
        c.diagnostics.clear();
        for (severity, code) in &report.diagnostics {
            c.diagnostics
                .get_or_create(&[("severity", *severity), ("code", *code)])
                .inc();
        }
    }

    /// The outlier ejection counter and ejected-endpoints gauge of a Service port.
    pub(crate) fn outlier_handles(
        &self,
        service: &mse_model::ObjectKey,
        port: u16,
    ) -> (Counter, Gauge) {
        let labels: ServicePort = [
            ("namespace", service.namespace.to_string()),
            ("service", service.name.to_string()),
            ("port", port.to_string()),
        ];
        (
            self.ejections.get_or_create(&labels).clone(),
            self.ejected.get_or_create(&labels).clone(),
        )
    }

    /// Outlier ejections of a Service port so far.
    pub fn upstream_ejections(&self, namespace: &str, service: &str, port: u16) -> u64 {
        let labels: ServicePort = [
            ("namespace", namespace.to_owned()),
            ("service", service.to_owned()),
            ("port", port.to_string()),
        ];
        self.ejections.get_or_create(&labels).get()
    }

    /// Registers a worker: the scrape sends its requests for counters to the receiver.
    pub(crate) fn add_worker(&self) -> mpsc::UnboundedReceiver<oneshot::Sender<Snapshot>> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.workers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(tx);
        rx
    }

    /// The metrics kept in this struct in the OpenMetrics text format: everything but the
    /// per-route request metrics of the workers (see [`Metrics::scrape`]).
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(2048);
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        if let Some(source) = self.watches.get() {
            if out.ends_with("# EOF\n") {
                out.truncate(out.len() - "# EOF\n".len());
            }
            encode_watches(&(source.0)(), &mut out);
            out.push_str("# EOF\n");
        }
        out
    }

    /// Exports the control plane's watch counts (`mse_ingress_watch_*_total{kind}`), read
    /// from `read` at each scrape. Only the first call has an effect.
    pub fn watch_counts(&self, read: impl Fn() -> Vec<WatchReport> + Send + Sync + 'static) {
        let _ = self.watches.set(WatchSource(Box::new(read)));
    }

    /// Requests answered with a status of this class (`2` for 2xx, ...).
    pub fn requests(&self, class: u16) -> u64 {
        class_index(class * 100).map_or(0, |i| self.requests[i].get())
    }

    /// Upstream connection attempts that failed.
    pub fn upstream_connect_errors(&self) -> u64 {
        self.upstream_connect_errors.get()
    }

    /// Requests that timed out upstream.
    pub fn upstream_timeouts(&self) -> u64 {
        self.upstream_timeouts.get()
    }

    /// Attempts sent again to another endpoint.
    pub fn upstream_retries(&self) -> u64 {
        self.retries[0].get()
    }

    /// Retries not sent because the retry budget was used up.
    pub fn upstream_retries_over_budget(&self) -> u64 {
        self.retries[1].get()
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> i64 {
        self.in_flight.get()
    }

    /// Route tables published so far.
    pub fn table_publishes(&self) -> u64 {
        self.table_publishes.get()
    }

    /// Mirror copies that got an answer.
    pub fn mirrored(&self) -> u64 {
        self.mirror[MirrorResult::Mirrored as usize].get()
    }

    /// Mirror copies not sent: too many in flight on the worker, or no mirror endpoint.
    pub fn mirror_skipped(&self) -> u64 {
        self.mirror[MirrorResult::Skipped as usize].get()
    }

    /// Mirror copies that failed or timed out.
    pub fn mirror_failed(&self) -> u64 {
        self.mirror[MirrorResult::Failed as usize].get()
    }

    pub(crate) fn mirror_result(&self, result: MirrorResult) {
        self.mirror[result as usize].inc();
    }

    pub(crate) fn count_status(&self, status: u16) {
        if let Some(i) = class_index(status) {
            self.requests[i].inc();
        }
    }

    pub(crate) fn connect_error(&self) {
        self.upstream_connect_errors.inc();
    }

    pub(crate) fn timed_out(&self, kind: TimeoutKind) {
        self.timeouts[kind as usize].inc();
    }

    /// A retry was sent (`true`) or left out for the budget (`false`).
    pub(crate) fn retry(&self, sent: bool) {
        self.retries[usize::from(!sent)].inc();
    }

    pub(crate) fn timeout(&self) {
        self.upstream_timeouts.inc();
    }

    pub(crate) fn in_flight_gauge(&self) -> &Gauge {
        &self.in_flight
    }

    pub(crate) fn connection_accepted(&self) {
        self.connections.inc();
    }

    pub(crate) fn tls_handshake_error(&self) {
        self.tls_handshake_errors.inc();
    }

    /// The expiry of each certificate of a table about to be served; Secrets no longer
    /// served are dropped.
    pub(crate) fn certificates(&self, certs: &[mse_router::Certificate]) {
        self.ssl_expiry.clear();
        for c in certs {
            if let Some((_, not_after)) = c.validity {
                let labels = [
                    ("namespace", c.secret.namespace.to_string()),
                    ("secret", c.secret.name.to_string()),
                ];
                self.ssl_expiry.get_or_create(&labels).set(not_after);
            }
        }
    }

    /// The expiry a Secret's certificate is reported with, if it is served.
    pub fn ssl_expire_time(&self, namespace: &str, secret: &str) -> Option<i64> {
        let labels = [
            ("namespace", namespace.to_owned()),
            ("secret", secret.to_owned()),
        ];
        self.ssl_expiry.get(&labels).map(|g| g.get())
    }

    pub(crate) fn published(&self, generation: u64) {
        self.table_publishes.inc();
        self.table_generation
            .set(i64::try_from(generation).unwrap_or(i64::MAX));
    }
}

/// The watch counts in the OpenMetrics text format.
fn encode_watches(reports: &[WatchReport], out: &mut String) {
    use std::fmt::Write as _;
    let families: [(&str, &str, fn(&WatchReport) -> u64); 4] = [
        (
            "lists",
            "Lists the control plane's watches completed, by kind (the first of each included)",
            |w| w.lists,
        ),
        (
            "relists",
            "Lists after a watch's first, by kind: its resourceVersion had expired",
            |w| w.relists,
        ),
        (
            "restarts",
            "Watch requests after a watch's first, by kind: the stream broke or ended, or a relist finished",
            |w| w.restarts,
        ),
        (
            "errors",
            "Errors the control plane's watches met, by kind (failed lists and watches, expired versions)",
            |w| w.errors,
        ),
    ];
    for (name, help, get) in families {
        let _ = writeln!(out, "# HELP mse_ingress_watch_{name} {help}.");
        let _ = writeln!(out, "# TYPE mse_ingress_watch_{name} counter");
        for w in reports {
            let kind: String = w.kind.chars().filter(char::is_ascii_alphanumeric).collect();
            let _ = writeln!(
                out,
                "mse_ingress_watch_{name}_total{{kind=\"{kind}\"}} {}",
                get(w)
            );
        }
    }
}

fn class_index(status: u16) -> Option<usize> {
    match status {
        100..=599 => Some(usize::from(status / 100 - 1)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_counted_by_class_and_encoded() {
        let m = Metrics::new();
        m.count_status(200);
        m.count_status(204);
        m.count_status(503);
        m.count_status(42);
        m.published(7);
        assert_eq!(m.requests(2), 2);
        assert_eq!(m.requests(5), 1);
        assert_eq!(m.requests(4), 0);
        let text = m.encode();
        assert!(
            text.contains("mse_requests_total{class=\"2xx\"} 2"),
            "{text}"
        );
        assert!(text.contains("mse_route_table_generation 7"), "{text}");
        assert!(text.contains("mse_route_table_publishes_total 1"), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }
}
