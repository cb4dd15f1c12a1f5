//! OpenTelemetry tracing: one server span per proxied request, exported over OTLP/gRPC.
//!
//! With `enable-opentelemetry` and a collector, each table carries a [`Tracer`]; a
//! connection takes the one of the table served when it is accepted, as it does the access
//! log. Per request:
//!
//! - [`start`] reads a client's `traceparent` (when `opentelemetry-trust-incoming-span`
//!   says so) with the W3C trace context propagator, and decides with the parent-based
//!   ratio sampler. An unsampled request gets nothing made for it, and its headers go
//!   upstream as they came.
//! - A sampled one gets a span id, and the `traceparent` sent upstream names that span as
//!   the parent, so that the upstream's spans nest under the gateway's.
//! - When its response ends, [`finish`] turns it into an OTLP span (attributes after the
//!   OpenTelemetry HTTP semantic conventions, plus the route's Ingress, Service and
//!   upstream) and offers it to the [`Exporter`]'s bounded queue without waiting: a full
//!   queue drops it, counted.
//!
//! The exporter is a thread of its own that takes spans from the queue in batches and
//! sends each batch in one `Export` call; a collector that is slow or down delays or drops
//! spans, never requests.

use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderName, HeaderValue, Request, Uri};
use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, TraceContextExt, TraceFlags, TraceId, TraceState,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, InstrumentationScope, KeyValue, any_value::Value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    IdGenerator, RandomIdGenerator, Sampler, SamplingDecision, ShouldSample,
};
use prometheus_client::metrics::counter::Counter;
use tokio::sync::mpsc;

use crate::log::AccessRecord;
use crate::stats::{SlotLabels, Tally};

/// Spans waiting for the exporter; past this, new ones are dropped.
const QUEUE: usize = 4096;
/// Spans sent in one `Export` call at most.
const BATCH: usize = 512;
/// How long one `Export` call may take, connecting included.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// What a table's global configuration says of tracing, with the exporter its spans go to.
pub(crate) struct Tracer {
    sampler: Sampler,
    trust_incoming: bool,
    exporter: Arc<Exporter>,
}

/// One collector's queue of finished spans, emptied by a thread of its own.
#[derive(Debug)]
pub(crate) struct Exporter {
    key: ExporterKey,
    queue: mpsc::Sender<Span>,
    counts: Arc<SpanCounts>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct ExporterKey {
    host: String,
    port: u16,
    service: String,
}

/// What became of the spans, for `/metrics`.
#[derive(Debug)]
pub(crate) struct SpanCounts {
    pub(crate) exported: Counter,
    /// The queue was full.
    pub(crate) dropped_queue_full: Counter,
    /// The collector refused them, or could not be reached in time.
    pub(crate) dropped_export_failed: Counter,
}

/// The exporters of one gateway, so that tables with the same collector share one.
#[derive(Debug)]
pub(crate) struct Exporters {
    live: Mutex<Vec<Weak<Exporter>>>,
    counts: Arc<SpanCounts>,
}

/// A sampled request's span until its response ends.
pub(crate) struct Started {
    exporter: Arc<Exporter>,
    trace_id: TraceId,
    span_id: SpanId,
    /// `None` for a span that starts a trace.
    parent: Option<SpanId>,
    trace_state: String,
    /// Unix time in nanoseconds.
    start_ns: u64,
}

// === impl Tracer ===

impl Tracer {
    /// The tracer of `t`; `None` when tracing is off or there is no collector.
    pub(crate) fn of(
        t: &mse_router::global::TracingSettings,
        exporters: &Exporters,
    ) -> Option<Arc<Self>> {
        if !t.enabled {
            return None;
        }
        let Some(host) = &t.collector_host else {
            tracing::warn!(
                "enable-opentelemetry is on without otlp-collector-host: no spans are made"
            );
            return None;
        };
        let key = ExporterKey {
            host: host.clone(),
            port: t.collector_port,
            service: t.service_name.clone(),
        };
        let exporter = exporters.get(key)?;
        Some(Arc::new(Self {
            sampler: Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(t.sample_rate))),
            trust_incoming: t.trust_incoming_span,
            exporter,
        }))
    }
}

impl std::fmt::Debug for Tracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracer")
            .field("sampler", &self.sampler)
            .field("trust_incoming", &self.trust_incoming)
            .field("collector", &self.exporter.key)
            .finish()
    }
}

/// Decides whether the request is traced; when it is, sets the `traceparent` that goes
/// upstream to the new span, and returns the span.
pub(crate) fn start<B>(t: &Tracer, req: &mut Request<B>) -> Option<Box<Started>> {
    let propagator = TraceContextPropagator::new();
    let parent_cx = (t.trust_incoming && req.headers().contains_key(TRACEPARENT))
        .then(|| propagator.extract(&Headers(req.headers())))
        .filter(|cx| cx.span().span_context().is_valid());
    let ids = RandomIdGenerator::default();
    let (trace_id, parent, trace_state) = match &parent_cx {
        Some(cx) => {
            let sc = cx.span().span_context().clone();
            (sc.trace_id(), Some(sc.span_id()), sc.trace_state().clone())
        }
        None => (ids.new_trace_id(), None, TraceState::default()),
    };
    let decision = t
        .sampler
        .should_sample(
            parent_cx.as_ref(),
            trace_id,
            "",
            &SpanKind::Server,
            &[],
            &[],
        )
        .decision;
    if decision != SamplingDecision::RecordAndSample {
        return None;
    }
    let span_id = ids.new_span_id();
    let ours = SpanContext::new(trace_id, span_id, TraceFlags::SAMPLED, false, trace_state);
    let trace_state = ours.trace_state().header();
    let cx = Context::new().with_remote_span_context(ours);
    propagator.inject_context(&cx, &mut HeadersMut(req.headers_mut()));
    Some(Box::new(Started {
        exporter: Arc::clone(&t.exporter),
        trace_id,
        span_id,
        parent,
        trace_state,
        start_ns: unix_nanos(SystemTime::now()),
    }))
}

/// Ends the span of a request whose response ended, and offers it to the exporter.
pub(crate) fn finish(s: Started, t: &Tally, r: &AccessRecord, labels: Option<&SlotLabels>) {
    let elapsed = u64::try_from(t.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
    let method = r.method.as_str();
    let route = labels.map(|l| &*l.path).filter(|p| !p.is_empty());
    let name = match route {
        Some(route) => format!("{method} {route}"),
        None => method.to_owned(),
    };
    let mut attributes = Vec::with_capacity(16);
    attributes.push(text("http.request.method", method));
    attributes.push(int("http.response.status_code", i64::from(t.status)));
    if let Some(route) = route {
        attributes.push(text("http.route", route));
    }
    attributes.push(text("url.path", r.uri.path()));
    if let Some(q) = r.uri.query() {
        attributes.push(text("url.query", q));
    }
    attributes.push(text("url.scheme", if r.tls { "https" } else { "http" }));
    if let Some(host) = host_of(r.host.as_ref(), &r.uri) {
        attributes.push(text("server.address", host));
    }
    attributes.push(text("client.address", &r.remote.ip().to_string()));
    attributes.push(text(
        "network.protocol.version",
        match r.version {
            http::Version::HTTP_2 => "2",
            http::Version::HTTP_10 => "1.0",
            _ => "1.1",
        },
    ));
    if let Some(l) = labels.filter(|l| !l.ingress.is_empty()) {
        attributes.push(text("k8s.namespace.name", &l.namespace));
        attributes.push(text("k8s.ingress.name", &l.ingress));
        if !l.service.is_empty() {
            attributes.push(text("k8s.service.name", &l.service));
            attributes.push(int("k8s.service.port", i64::from(l.service_port)));
        }
        let upstream = if l.canary.is_empty() {
            &l.upstream
        } else {
            &l.canary
        };
        if !upstream.is_empty() {
            attributes.push(text("upstream.name", upstream));
        }
    }
    if let Some(u) = &r.upstream {
        attributes.push(text("upstream.address", &u.to_string()));
    }
    if let Some(status) = r.upstream_status {
        attributes.push(int("upstream.status_code", i64::from(status)));
    }
    let status = (t.status >= 500).then(|| Status {
        code: 2, // ERROR: a server span is an error for 5xx only.
        message: String::new(),
    });
    let span = Span {
        trace_id: s.trace_id.to_bytes().to_vec(),
        span_id: s.span_id.to_bytes().to_vec(),
        trace_state: s.trace_state,
        parent_span_id: s.parent.map(|p| p.to_bytes().to_vec()).unwrap_or_default(),
        flags: u32::from(TraceFlags::SAMPLED.to_u8()),
        name,
        kind: span::SpanKind::Server as i32,
        start_time_unix_nano: s.start_ns,
        end_time_unix_nano: s.start_ns.saturating_add(elapsed),
        attributes,
        status,
        ..Span::default()
    };
    s.exporter.offer(span);
}

fn host_of<'a>(host: Option<&'a HeaderValue>, uri: &'a Uri) -> Option<&'a str> {
    let h = match host.and_then(|h| h.to_str().ok()) {
        Some(h) => h,
        None => uri.host()?,
    };
    // Without the port; an IPv6 literal keeps its brackets' content.
    let h = match h.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => h.split(':').next().unwrap_or(h),
    };
    Some(h)
}

fn text(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(value.to_owned())),
        }),
        ..KeyValue::default()
    }
}

fn int(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(Value::IntValue(value)),
        }),
        ..KeyValue::default()
    }
}

fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The request headers, as the propagator reads them.
struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

/// The request headers, as the propagator writes them: an empty `tracestate` is left out.
struct HeadersMut<'a>(&'a mut HeaderMap);

impl Injector for HeadersMut<'_> {
    fn set(&mut self, key: &str, value: String) {
        let Ok(name) = HeaderName::from_bytes(key.as_bytes()) else {
            return;
        };
        match HeaderValue::try_from(value) {
            Ok(v) if !v.is_empty() => {
                self.0.insert(name, v);
            }
            _ => {
                self.0.remove(name);
            }
        }
    }
}

// === impl Exporters ===

impl Exporters {
    /// No exporter yet; spans are counted in `counts`.
    pub(crate) fn new(counts: SpanCounts) -> Self {
        Self {
            live: Mutex::new(Vec::new()),
            counts: Arc::new(counts),
        }
    }

    /// The exporter to `key`'s collector: the one already running, else a new one.
    fn get(&self, key: ExporterKey) -> Option<Arc<Exporter>> {
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        live.retain(|w| w.strong_count() > 0);
        if let Some(e) = live.iter().filter_map(Weak::upgrade).find(|e| e.key == key) {
            return Some(e);
        }
        let exporter = Exporter::spawn(key, Arc::clone(&self.counts))?;
        live.push(Arc::downgrade(&exporter));
        Some(exporter)
    }
}

// === impl Exporter ===

impl Exporter {
    fn spawn(key: ExporterKey, counts: Arc<SpanCounts>) -> Option<Arc<Self>> {
        let (queue, rx) = mpsc::channel(QUEUE);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .inspect_err(
                |e| tracing::error!(error = %e, "no runtime for the span exporter: tracing is off"),
            )
            .ok()?;
        let origin = format!("http://{}:{}", bracketed(&key.host), key.port);
        let origin: Uri = match origin.parse() {
            Ok(o) => o,
            Err(e) => {
                tracing::error!(collector = %origin, error = %e, "the OTLP collector's address is not a URI: tracing is off");
                return None;
            }
        };
        let resource = Resource {
            attributes: vec![text("service.name", &key.service)],
            ..Resource::default()
        };
        let sending = Sending {
            origin,
            resource,
            counts: Arc::clone(&counts),
            failures: 0,
        };
        let spawned = std::thread::Builder::new()
            .name("mse-otlp".to_owned())
            .spawn(move || runtime.block_on(sending.run(rx)));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "no thread for the span exporter: tracing is off");
            return None;
        }
        tracing::info!(collector = %key.host, port = key.port, service = %key.service, "exporting spans over OTLP/gRPC");
        Some(Arc::new(Self { key, queue, counts }))
    }

    /// Queues a finished span, or drops it when the queue is full: never waits.
    fn offer(&self, span: Span) {
        if self.queue.try_send(span).is_err() {
            self.counts.dropped_queue_full.inc();
        }
    }
}

fn bracketed(host: &str) -> std::borrow::Cow<'_, str> {
    if host.contains(':') {
        format!("[{host}]").into()
    } else {
        host.into()
    }
}

/// The exporter thread's side: batches from the queue to the collector.
struct Sending {
    origin: Uri,
    resource: Resource,
    counts: Arc<SpanCounts>,
    /// Batches that could not be exported so far.
    failures: u64,
}

type GrpcClient = tonic::client::Grpc<
    hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        tonic::body::Body,
    >,
>;

impl Sending {
    async fn run(mut self, mut rx: mpsc::Receiver<Span>) {
        let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        connector.set_nodelay(true);
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .http2_only(true)
                .build(connector);
        let mut grpc: GrpcClient = tonic::client::Grpc::with_origin(client, self.origin.clone());
        let mut batch = Vec::with_capacity(BATCH);
        // Ends when every sender is gone: the tables that had this collector are replaced.
        while rx.recv_many(&mut batch, BATCH).await > 0 {
            let n = batch.len() as u64;
            let request = ExportTraceServiceRequest {
                resource_spans: vec![ResourceSpans {
                    resource: Some(self.resource.clone()),
                    scope_spans: vec![ScopeSpans {
                        scope: Some(InstrumentationScope {
                            name: "mse-ingress".to_owned(),
                            version: env!("CARGO_PKG_VERSION").to_owned(),
                            ..InstrumentationScope::default()
                        }),
                        spans: std::mem::take(&mut batch),
                        ..ScopeSpans::default()
                    }],
                    ..ResourceSpans::default()
                }],
            };
            match tokio::time::timeout(EXPORT_TIMEOUT, export(&mut grpc, request)).await {
                Ok(Ok(())) => {
                    self.counts.exported.inc_by(n);
                }
                Ok(Err(e)) => self.failed(n, &e),
                Err(_) => self.failed(n, &"timed out"),
            };
        }
    }

    fn failed(&mut self, n: u64, e: &dyn std::fmt::Display) {
        self.counts.dropped_export_failed.inc_by(n);
        // Logged once, then once every hundred failed batches.
        self.failures += 1;
        if (self.failures - 1).is_multiple_of(100) {
            tracing::warn!(collector = %self.origin, spans = n, error = %e, "spans could not be exported; dropped");
        }
    }
}

async fn export(
    grpc: &mut GrpcClient,
    request: ExportTraceServiceRequest,
) -> Result<(), tonic::Status> {
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let codec =
        tonic_prost::ProstCodec::<ExportTraceServiceRequest, ExportTraceServiceResponse>::default();
    let path = http::uri::PathAndQuery::from_static(EXPORT_PATH);
    grpc.unary(tonic::Request::new(request), path, codec)
        .await
        .map(drop)
}
