//! Per-route request metrics, with the label names of ingress-nginx's
//! `nginx_ingress_controller_*` families so that its dashboards carry over.
//!
//! Each published table interns its label sets once ([`LabelTable`]): one slot per route
//! and per canary of a route, plus slot 0 for requests no route matched. A request notes
//! its slot in its [`Tally`]; when its response ends, the worker adds it to its own
//! counters ([`WorkerStats`], plain integers behind a `RefCell`: one thread per worker, so
//! no lock and no atomic shared between workers on the request path). A scrape asks every
//! worker for a copy of its counters and adds them up by label set
//! ([`crate::Metrics::scrape`]), so the cardinality is bounded by the route table (times
//! the methods and statuses seen), never by clients.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http::Method;
use mse_router::{Backend, Route, RouteTable};
use tokio::sync::{mpsc, oneshot};

/// The label values of one slot.
#[derive(Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct SlotLabels {
    pub(crate) namespace: Arc<str>,
    pub(crate) ingress: Arc<str>,
    pub(crate) service: Arc<str>,
    pub(crate) service_port: u16,
    /// The rule's host: `foo.example.com`, `*.example.com`, or `*` for a rule without one.
    pub(crate) host: Box<str>,
    /// The rule's path, never the request's.
    pub(crate) path: Box<str>,
    /// ingress-nginx's upstream name, `namespace-service-port`, of the route's main
    /// backend; empty without a Service.
    pub(crate) upstream: Box<str>,
    /// The canary's upstream name when the slot is a canary's, else empty.
    pub(crate) canary: Box<str>,
}

/// The label sets of one table: slot 0 for unmatched requests, then each route's slot
/// followed by one per canary.
#[derive(Debug)]
pub(crate) struct LabelTable {
    serial: u64,
    slots: Box<[Arc<SlotLabels>]>,
    /// The slot of each route's main destination, by route id.
    base: Box<[u32]>,
}

/// What the metrics (and the access log) note about one request until its response ends.
/// Small and `Copy`: it travels with the response body.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tally {
    pub(crate) start: Instant,
    /// The [`LabelTable`] the slot belongs to.
    pub(crate) serial: u64,
    /// The request body's declared length.
    pub(crate) request_bytes: u64,
    /// Microseconds from `start` until the response ended (see [`Tally::end`]).
    pub(crate) duration_us: u64,
    /// Microseconds until the upstream's response head; `u32::MAX`: none.
    pub(crate) upstream_us: u32,
    pub(crate) slot: u32,
    pub(crate) status: u16,
    pub(crate) method: u8,
    /// [`Outcome`] bits.
    pub(crate) outcome: u8,
}

/// How a request ended besides its status, as bits of [`Tally::outcome`].
pub(crate) struct Outcome;

impl Outcome {
    pub(crate) const CONNECT_ERROR: u8 = 1;
    pub(crate) const TIMEOUT: u8 = 2;
    pub(crate) const RETRIED: u8 = 4;
    pub(crate) const RATE_LIMITED: u8 = 8;
    pub(crate) const AUTH_REFUSED: u8 = 16;
}

/// Methods with a label of their own; others are counted as `OTHER`.
const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "OTHER",
];

/// Upper bounds of the duration histograms, in microseconds (Prometheus' default buckets,
/// as ingress-nginx uses).
const TIME_BOUNDS_US: [u64; 11] = [
    5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000,
    10_000_000,
];

/// Upper bounds of the size histograms, in bytes.
const SIZE_BOUNDS: [u64; 7] = [10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000];

/// A histogram: counts per bucket (not cumulative), their sum and count.
#[derive(Clone, Debug)]
struct Hist<const N: usize> {
    buckets: [u64; N],
    /// Past the last bound.
    over: u64,
    sum: u64,
    count: u64,
}

impl<const N: usize> Default for Hist<N> {
    fn default() -> Self {
        Self {
            buckets: [0; N],
            over: 0,
            sum: 0,
            count: 0,
        }
    }
}

/// The counters of one method and status of one slot.
#[derive(Clone, Debug)]
struct Series {
    method: u8,
    status: u16,
    duration: Hist<11>,
    upstream: Hist<11>,
    request_size: Hist<7>,
    response_size: Hist<7>,
}

/// The counters of one slot.
#[derive(Clone, Debug, Default)]
pub(crate) struct SlotStats {
    series: Vec<Series>,
    /// By [`Outcome`] bit: connect errors, timeouts, retried, rate limited, auth refused.
    outcomes: [u64; 5],
}

/// One worker's counters.
#[derive(Default)]
pub(crate) struct WorkerStats {
    inner: RefCell<Inner>,
}

#[derive(Default)]
struct Inner {
    current: Option<Generation>,
    previous: Option<Generation>,
    /// Counters of tables no longer served, by label set, so that a label set's counters
    /// keep growing across tables.
    retired: HashMap<Arc<SlotLabels>, SlotStats>,
}

struct Generation {
    labels: Arc<LabelTable>,
    slots: Vec<Option<Box<SlotStats>>>,
}

/// A worker's copy of its counters, by label set.
pub(crate) type Snapshot = Vec<(Arc<SlotLabels>, SlotStats)>;

/// How the scrape asks a worker for a [`Snapshot`].
pub(crate) type Collector = mpsc::UnboundedSender<oneshot::Sender<Snapshot>>;

static SERIALS: AtomicU64 = AtomicU64::new(1);

// === impl LabelTable ===

impl LabelTable {
    /// The label sets of `table`'s routes and canaries.
    pub(crate) fn build(table: &RouteTable) -> Self {
        let mut slots = vec![Arc::new(SlotLabels::default())];
        let mut base = Vec::with_capacity(table.routes().len());
        for route in table.routes() {
            base.push(u32::try_from(slots.len()).unwrap_or(0));
            slots.push(Arc::new(labels(
                table,
                route,
                &route.ingress,
                &route.backend,
                None,
            )));
            if let Some(canaries) = &route.canary {
                for c in canaries.versions.iter() {
                    let main = upstream_name(table, &route.backend);
                    slots.push(Arc::new(labels(
                        table,
                        route,
                        &c.ingress,
                        &c.backend,
                        Some(main),
                    )));
                }
            }
        }
        Self {
            serial: SERIALS.fetch_add(1, Ordering::Relaxed),
            slots: slots.into(),
            base: base.into(),
        }
    }

    pub(crate) fn serial(&self) -> u64 {
        self.serial
    }

    /// The slot of `route`, or of its canary `canary` (an index in its versions).
    pub(crate) fn slot(&self, route: &Route, canary: Option<usize>) -> u32 {
        let base = self.base.get(route.id.0 as usize).copied().unwrap_or(0);
        match canary {
            Some(i) => base + 1 + u32::try_from(i).unwrap_or(0),
            None => base,
        }
    }

    pub(crate) fn get(&self, slot: u32) -> Option<&Arc<SlotLabels>> {
        self.slots.get(slot as usize)
    }
}

fn upstream_name(table: &RouteTable, backend: &Backend) -> Box<str> {
    match backend {
        Backend::Cluster(c) => {
            let c = table.cluster(*c);
            format!("{}-{}-{}", c.service.namespace, c.service.name, c.port).into()
        }
        Backend::Unavailable { .. } => "".into(),
    }
}

/// The labels of a route's main destination (`main` is `None`) or of one of its canaries
/// (`main`: the main destination's upstream name).
fn labels(
    table: &RouteTable,
    route: &Route,
    ingress: &mse_model::ObjectKey,
    backend: &Backend,
    main: Option<Box<str>>,
) -> SlotLabels {
    let (service, service_port) = match backend {
        Backend::Cluster(c) => {
            let c = table.cluster(*c);
            (Arc::clone(&c.service.name), c.port)
        }
        Backend::Unavailable { .. } => (Arc::from(""), 0),
    };
    let own = upstream_name(table, backend);
    // A canary's slot names the main upstream as ingress-nginx's `$proxy_upstream_name`
    // does, and its own as the alternative.
    let (upstream, canary) = match main {
        Some(main) => (main, own),
        None => (own, "".into()),
    };
    SlotLabels {
        namespace: Arc::clone(&ingress.namespace),
        ingress: Arc::clone(&ingress.name),
        service,
        service_port,
        host: route.host.to_string().into(),
        path: route.path.path().into(),
        upstream,
        canary,
    }
}

// === impl Tally ===

impl Tally {
    /// The tally of a request whose head was just read.
    #[inline]
    pub(crate) fn start<B: http_body::Body>(req: &http::Request<B>) -> Self {
        let body = req.body();
        let request_bytes = if body.is_end_stream() {
            0
        } else {
            body.size_hint().lower()
        };
        Self {
            start: Instant::now(),
            serial: 0,
            request_bytes,
            duration_us: 0,
            upstream_us: u32::MAX,
            slot: 0,
            status: 0,
            method: method_index(req.method()),
            outcome: 0,
        }
    }

    /// The upstream answered `sent_at.elapsed()` after the request was sent.
    #[inline]
    pub(crate) fn upstream_answered(&mut self, sent_at: Instant) {
        let us = sent_at.elapsed().as_micros();
        self.upstream_us = u32::try_from(us).unwrap_or(u32::MAX - 1);
    }

    /// The response ended at `now`.
    #[inline]
    pub(crate) fn end(&mut self, now: Instant) {
        let us = now.saturating_duration_since(self.start).as_micros();
        self.duration_us = u64::try_from(us).unwrap_or(u64::MAX);
    }

    /// The request's duration, once it ended.
    pub(crate) fn duration(&self) -> Duration {
        Duration::from_micros(self.duration_us)
    }

    /// The upstream's response time, when there was an upstream answer.
    pub(crate) fn upstream_time(&self) -> Option<Duration> {
        (self.upstream_us != u32::MAX).then(|| Duration::from_micros(u64::from(self.upstream_us)))
    }
}

#[inline]
fn method_index(m: &Method) -> u8 {
    match *m {
        Method::GET => 0,
        Method::HEAD => 1,
        Method::POST => 2,
        Method::PUT => 3,
        Method::DELETE => 4,
        Method::PATCH => 5,
        Method::OPTIONS => 6,
        _ => 7,
    }
}

// === impl Hist ===

impl<const N: usize> Hist<N> {
    #[inline]
    fn observe(&mut self, v: u64, bounds: &[u64; N]) {
        match bounds.iter().position(|b| v <= *b) {
            Some(i) => self.buckets[i] += 1,
            None => self.over += 1,
        }
        self.sum += v;
        self.count += 1;
    }

    fn add(&mut self, other: &Self) {
        for (a, b) in self.buckets.iter_mut().zip(other.buckets) {
            *a += b;
        }
        self.over += other.over;
        self.sum += other.sum;
        self.count += other.count;
    }
}

// === impl SlotStats ===

impl SlotStats {
    fn add(&mut self, other: &SlotStats) {
        for s in &other.series {
            self.series_mut(s.method, s.status).add(s);
        }
        for (a, b) in self.outcomes.iter_mut().zip(other.outcomes) {
            *a += b;
        }
    }

    fn series_mut(&mut self, method: u8, status: u16) -> &mut Series {
        let i = match self
            .series
            .iter()
            .position(|s| s.method == method && s.status == status)
        {
            Some(i) => i,
            None => {
                self.series.push(Series {
                    method,
                    status,
                    duration: Hist::default(),
                    upstream: Hist::default(),
                    request_size: Hist::default(),
                    response_size: Hist::default(),
                });
                self.series.len() - 1
            }
        };
        &mut self.series[i]
    }

    fn record(&mut self, t: &Tally, elapsed_us: u64, bytes: u64) {
        let s = self.series_mut(t.method, t.status);
        s.duration.observe(elapsed_us, &TIME_BOUNDS_US);
        if t.upstream_us != u32::MAX {
            s.upstream
                .observe(u64::from(t.upstream_us), &TIME_BOUNDS_US);
        }
        s.request_size.observe(t.request_bytes, &SIZE_BOUNDS);
        s.response_size.observe(bytes, &SIZE_BOUNDS);
        if t.outcome != 0 {
            for (bit, n) in self.outcomes.iter_mut().enumerate() {
                if t.outcome & (1 << bit) != 0 {
                    *n += 1;
                }
            }
        }
    }
}

impl Series {
    fn add(&mut self, other: &Series) {
        self.duration.add(&other.duration);
        self.upstream.add(&other.upstream);
        self.request_size.add(&other.request_size);
        self.response_size.add(&other.response_size);
    }
}

// === impl WorkerStats ===

impl WorkerStats {
    /// Makes `labels` the worker's current label table, when it is not already: a cheap
    /// comparison on every request, a move of the counters when the table changed.
    #[inline]
    pub(crate) fn follow(&self, labels: &Arc<LabelTable>) {
        let inner = self.inner.borrow();
        if inner
            .current
            .as_ref()
            .is_some_and(|g| g.labels.serial == labels.serial)
        {
            return;
        }
        drop(inner);
        self.switch(labels);
    }

    #[cold]
    fn switch(&self, labels: &Arc<LabelTable>) {
        let mut inner = self.inner.borrow_mut();
        let next = Generation {
            labels: Arc::clone(labels),
            slots: Vec::new(),
        };
        let old = inner.previous.take();
        inner.previous = inner.current.replace(next);
        if let Some(old) = old {
            inner.retire(old);
        }
    }

    /// Adds a request whose response ended after `bytes` body bytes.
    /// `t` has ended ([`Tally::end`]).
    pub(crate) fn record(&self, t: &Tally, bytes: u64) {
        let elapsed = t.duration_us;
        let mut inner = self.inner.borrow_mut();
        let Inner {
            current, previous, ..
        } = &mut *inner;
        let generation = [current.as_mut(), previous.as_mut()]
            .into_iter()
            .flatten()
            .find(|g| g.labels.serial == t.serial);
        let Some(g) = generation else {
            // A request that saw no table of this worker's (it failed before the route
            // phase): counted as unmatched in the current table.
            if let Some(g) = current.as_mut() {
                g.slot(0).record(t, elapsed, bytes);
            }
            return;
        };
        g.slot(t.slot).record(t, elapsed, bytes);
    }

    /// The labels of a slot of a table this worker still keeps.
    pub(crate) fn labels(&self, serial: u64, slot: u32) -> Option<Arc<SlotLabels>> {
        let inner = self.inner.borrow();
        [inner.current.as_ref(), inner.previous.as_ref()]
            .into_iter()
            .flatten()
            .find(|g| g.labels.serial == serial)
            .and_then(|g| g.labels.get(slot).cloned())
    }

    /// A copy of every counter, by label set.
    pub(crate) fn snapshot(&self) -> Snapshot {
        let inner = self.inner.borrow();
        let mut out: Snapshot = inner
            .retired
            .iter()
            .map(|(l, s)| (Arc::clone(l), s.clone()))
            .collect();
        for g in [inner.current.as_ref(), inner.previous.as_ref()]
            .into_iter()
            .flatten()
        {
            for (i, s) in g.slots.iter().enumerate() {
                if let (Some(s), Some(l)) = (s, g.labels.slots.get(i)) {
                    out.push((Arc::clone(l), SlotStats::clone(s)));
                }
            }
        }
        out
    }
}

impl Inner {
    fn retire(&mut self, g: Generation) {
        for (i, s) in g.slots.into_iter().enumerate() {
            if let (Some(s), Some(l)) = (s, g.labels.slots.get(i)) {
                self.retired.entry(Arc::clone(l)).or_default().add(&s);
            }
        }
    }
}

impl Generation {
    fn slot(&mut self, slot: u32) -> &mut SlotStats {
        let i = if (slot as usize) < self.labels.slots.len() {
            slot as usize
        } else {
            0
        };
        if self.slots.len() <= i {
            self.slots.resize_with(self.labels.slots.len(), || None);
        }
        self.slots[i].get_or_insert_with(Box::default)
    }
}

// === encoding ===

/// Adds the worker snapshots up by label set and writes them in the OpenMetrics text
/// format (without the final `# EOF`).
pub(crate) fn encode(snapshots: Vec<Snapshot>, out: &mut String) {
    let mut merged: HashMap<Arc<SlotLabels>, SlotStats> = HashMap::new();
    for snapshot in snapshots {
        for (labels, stats) in snapshot {
            merged.entry(labels).or_default().add(&stats);
        }
    }
    let mut all: Vec<(Arc<SlotLabels>, SlotStats)> = merged.into_iter().collect();
    all.sort_by(|a, b| label_key(&a.0).cmp(&label_key(&b.0)));
    for s in &mut all {
        s.1.series.sort_by_key(|s| (s.method, s.status));
    }

    family(
        out,
        "requests",
        "counter",
        "Requests answered, by route, method and status",
    );
    for (l, s) in &all {
        for series in &s.series {
            let _ = write!(out, "mse_ingress_requests_total{{");
            request_labels(out, l, series);
            let _ = writeln!(out, "}} {}", series.duration.count);
        }
    }
    let hists: [(&str, &str, fn(&Series) -> &Hist<11>); 2] = [
        (
            "request_duration_seconds",
            "Time from the request head to the end of the response",
            |s| &s.duration,
        ),
        (
            "response_duration_seconds",
            "Time from sending the request upstream to the upstream's response head",
            |s| &s.upstream,
        ),
    ];
    for (name, help, get) in hists {
        family(out, name, "histogram", help);
        for (l, s) in &all {
            for series in &s.series {
                let h = get(series);
                if h.count > 0 {
                    histogram(out, name, l, series, h, &TIME_BOUNDS_US, 1e6);
                }
            }
        }
    }
    let sizes: [(&str, &str, fn(&Series) -> &Hist<7>); 2] = [
        (
            "request_size",
            "Request body sizes (declared length), in bytes",
            |s| &s.request_size,
        ),
        (
            "response_size",
            "Response body bytes sent to the client",
            |s| &s.response_size,
        ),
    ];
    for (name, help, get) in sizes {
        family(out, name, "histogram", help);
        for (l, s) in &all {
            for series in &s.series {
                histogram(out, name, l, series, get(series), &SIZE_BOUNDS, 1.0);
            }
        }
    }
    let outcomes = [
        (
            "upstream_connect_errors",
            "Requests that ended because the upstream could not be connected to",
        ),
        (
            "upstream_timeouts",
            "Requests that ended because the upstream did not connect or answer in time",
        ),
        (
            "upstream_retried_requests",
            "Requests that were sent again to another endpoint (proxy-next-upstream)",
        ),
        (
            "rate_limited_requests",
            "Requests refused by the route's rate or connection limits (local, or shared by the replicas)",
        ),
        (
            "auth_refused_requests",
            "Requests refused by the route's authentication (basic auth, auth-url)",
        ),
    ];
    for (bit, (name, help)) in outcomes.into_iter().enumerate() {
        family(out, name, "counter", help);
        for (l, s) in &all {
            if !s.series.is_empty() || s.outcomes[bit] > 0 {
                let _ = write!(out, "mse_ingress_{name}_total{{");
                route_labels(out, l);
                let _ = writeln!(out, "}} {}", s.outcomes[bit]);
            }
        }
    }
}

fn label_key(l: &SlotLabels) -> (&str, &str, &str, &str, &str, &str) {
    (
        &l.namespace,
        &l.ingress,
        &l.host,
        &l.path,
        &l.service,
        &l.canary,
    )
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP mse_ingress_{name} {help}.");
    let _ = writeln!(out, "# TYPE mse_ingress_{name} {kind}");
}

fn histogram<const N: usize>(
    out: &mut String,
    name: &str,
    l: &SlotLabels,
    series: &Series,
    h: &Hist<N>,
    bounds: &[u64; N],
    divisor: f64,
) {
    let mut cumulative = 0;
    for (i, b) in bounds.iter().enumerate() {
        cumulative += h.buckets[i];
        let _ = write!(out, "mse_ingress_{name}_bucket{{");
        request_labels(out, l, series);
        let _ = writeln!(out, ",le=\"{}\"}} {cumulative}", *b as f64 / divisor);
    }
    cumulative += h.over;
    let _ = write!(out, "mse_ingress_{name}_bucket{{");
    request_labels(out, l, series);
    let _ = writeln!(out, ",le=\"+Inf\"}} {cumulative}");
    let _ = write!(out, "mse_ingress_{name}_sum{{");
    request_labels(out, l, series);
    let _ = writeln!(out, "}} {}", h.sum as f64 / divisor);
    let _ = write!(out, "mse_ingress_{name}_count{{");
    request_labels(out, l, series);
    let _ = writeln!(out, "}} {}", h.count);
}

fn route_labels(out: &mut String, l: &SlotLabels) {
    let pairs: [(&str, &str); 6] = [
        ("namespace", &l.namespace),
        ("ingress", &l.ingress),
        ("service", &l.service),
        ("host", &l.host),
        ("path", &l.path),
        ("canary", &l.canary),
    ];
    for (i, (k, v)) in pairs.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(k);
        out.push_str("=\"");
        escape_label(out, v);
        out.push('"');
    }
}

fn request_labels(out: &mut String, l: &SlotLabels, s: &Series) {
    route_labels(out, l);
    let method = METHODS
        .get(usize::from(s.method))
        .copied()
        .unwrap_or("OTHER");
    let _ = write!(out, ",method=\"{method}\",status=\"{}\"", s.status);
}

fn escape_label(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_labels_escaped() {
        let mut h = Hist::<7>::default();
        h.observe(5, &SIZE_BOUNDS);
        h.observe(50, &SIZE_BOUNDS);
        h.observe(u64::MAX / 2, &SIZE_BOUNDS);
        let l = SlotLabels {
            path: "/a\"b".into(),
            ..SlotLabels::default()
        };
        let s = Series {
            method: 0,
            status: 200,
            duration: Hist::default(),
            upstream: Hist::default(),
            request_size: Hist::default(),
            response_size: h.clone(),
        };
        let mut out = String::new();
        histogram(&mut out, "response_size", &l, &s, &h, &SIZE_BOUNDS, 1.0);
        assert!(out.contains("path=\"/a\\\"b\""), "{out}");
        assert!(out.contains("le=\"10\"} 1\n"), "{out}");
        assert!(out.contains("le=\"100\"} 2\n"), "{out}");
        assert!(out.contains("le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("_count{") && out.ends_with("} 3\n"), "{out}");
    }
}
