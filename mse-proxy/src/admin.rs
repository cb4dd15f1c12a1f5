//! The admin server: health, readiness, metrics and what the gateway is serving.
//!
//! | path | answer |
//! |---|---|
//! | `GET /healthz` | 200 while the process runs |
//! | `GET /readyz` | 200 once [`AdminState::set_ready`] was called with `true`, else 503 |
//! | `GET /metrics` | [`crate::Metrics::scrape`], OpenMetrics text |
//! | `GET /debug/routes` | the current table's [`mse_router::RouteTable::to_json`], with `ejected_endpoints`: the endpoints outlier detection ejected now (Service, address, ejections in a row, milliseconds left) |
//! | `GET /debug/diagnostics` | JSON array: the table's diagnostics, then the caller's |
//! | `GET /debug/config` | the effective global configuration; `origins` says where each setting not at its default came from |
//!
//! `/debug/routes` and `/debug/diagnostics` take filters, all optional and combined:
//! `host=` (the routes that serve that request host, wildcard and host-less rules
//! included; for diagnostics, those of the Ingresses with such routes), `namespace=` (of
//! the Ingress, or of the object a diagnostic is about) and, for diagnostics,
//! `severity=` (`info`, `warning` or `error`: that severity and the more serious ones).
//! An unknown filter or severity is answered 400.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::header::{ALLOW, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use mse_model::{Diagnostic, ObjectKey, Severity};
use mse_router::{Route, RouteTable, normalize_host};
use tokio::net::TcpListener;

use crate::table::SharedTable;

/// What the admin server reports. Cheap to clone; every clone shares the same state.
#[derive(Clone, Debug)]
pub struct AdminState {
    inner: Arc<AdminInner>,
}

#[derive(Debug)]
struct AdminInner {
    table: SharedTable,
    ready: AtomicBool,
    extra: ArcSwap<Vec<Diagnostic>>,
}

// === impl AdminState ===

impl AdminState {
    /// State for `table`, not ready yet.
    pub fn new(table: SharedTable) -> Self {
        Self {
            inner: Arc::new(AdminInner {
                table,
                ready: AtomicBool::new(false),
                extra: ArcSwap::from_pointee(Vec::new()),
            }),
        }
    }

    /// Marks the gateway ready (first table compiled, listeners bound) or not.
    pub fn set_ready(&self, ready: bool) {
        self.inner.ready.store(ready, Ordering::Release);
    }

    /// Whether `/readyz` answers 200.
    pub fn is_ready(&self) -> bool {
        self.inner.ready.load(Ordering::Acquire)
    }

    /// Replaces the diagnostics reported beside the table's own (for example, problems
    /// found while loading manifests).
    pub fn set_extra_diagnostics(&self, diagnostics: Vec<Diagnostic>) {
        self.inner.extra.store(Arc::new(diagnostics));
    }

    /// Every current diagnostic: the table's, then the extra ones.
    pub fn diagnostics(&self) -> Vec<Diagnostic> {
        let routes = self.inner.table.routes();
        let extra = self.inner.extra.load();
        routes
            .diagnostics()
            .iter()
            .chain(extra.iter())
            .cloned()
            .collect()
    }

    /// The table being served.
    pub fn table(&self) -> &SharedTable {
        &self.inner.table
    }
}

/// Serves the admin endpoints on `listener` (HTTP/1.1) until the returned future is
/// dropped. Each connection runs as its own task on the current runtime.
pub async fn serve(listener: TcpListener, state: AdminState) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(std::time::Duration::from_secs(10));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "admin accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let state = state.clone();
        let conn = http.serve_connection(
            TokioIo::new(stream),
            service_fn(move |req| {
                let state = state.clone();
                async move {
                    if is_scrape(&req) {
                        // Endpoints whose ejection is over leave the gauge first.
                        let _ = state.inner.table.ejected_endpoints();
                        let body = state.inner.table.metrics().scrape().await;
                        return Ok::<_, Infallible>(metrics(body));
                    }
                    Ok(answer(&state, &req))
                }
            }),
        );
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "admin connection failed");
            }
        });
    }
}

/// `GET /metrics`: answered apart, as the only answer that waits (for the workers).
fn is_scrape(req: &Request<Incoming>) -> bool {
    (req.method() == Method::GET || req.method() == Method::HEAD) && req.uri().path() == "/metrics"
}

fn metrics(body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    r
}

fn answer(state: &AdminState, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "405 Method Not Allowed\n");
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    match req.uri().path() {
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" if state.is_ready() => text(StatusCode::OK, "ready\n"),
        "/readyz" => text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n"),
        "/debug/routes" | "/debug/diagnostics" => {
            let filter = match Filter::parse(req.uri().query().unwrap_or("")) {
                Ok(f) => f,
                Err(e) => return bad_request(&e),
            };
            if req.uri().path() == "/debug/routes" {
                let mut routes = filter.routes(&state.inner.table.routes());
                routes["ejected_endpoints"] = state.inner.table.ejected_endpoints();
                json(&routes)
            } else {
                json(&filter.diagnostics(state))
            }
        }
        "/debug/config" => json(&state.inner.table.routes().global().to_json()),
        _ => text(StatusCode::NOT_FOUND, "404 Not Found\n"),
    }
}

/// The filters of `/debug/routes` and `/debug/diagnostics` (see the module docs).
#[derive(Debug, Default, PartialEq)]
struct Filter {
    host: Option<String>,
    namespace: Option<String>,
    severity: Option<Severity>,
}

impl Filter {
    fn parse(query: &str) -> Result<Self, String> {
        let mut f = Self::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "host" => f.host = Some(normalize_host(v).into_owned()),
                "namespace" => f.namespace = Some(v.to_owned()),
                "severity" => {
                    f.severity = Some(match v {
                        "info" => Severity::Info,
                        "warning" => Severity::Warning,
                        "error" => Severity::Error,
                        _ => {
                            return Err(format!("severity={v:?}: expected info, warning or error"));
                        }
                    });
                }
                _ => {
                    return Err(format!(
                        "{k:?} is not a filter; the filters are host, namespace and severity"
                    ));
                }
            }
        }
        Ok(f)
    }

    fn route(&self, r: &Route) -> bool {
        self.host.as_deref().is_none_or(|h| r.host.matches(h))
            && self
                .namespace
                .as_deref()
                .is_none_or(|n| *r.ingress.namespace == *n)
    }

    /// The table as JSON, its routes filtered.
    fn routes(&self, table: &RouteTable) -> serde_json::Value {
        let mut out = table.to_json();
        if self.host.is_some() || self.namespace.is_some() {
            let kept: Vec<&Route> = table
                .routes_in_order()
                .into_iter()
                .filter(|r| self.route(r))
                .collect();
            out["routes"] = serde_json::to_value(kept).unwrap_or_default();
        }
        out
    }

    fn diagnostics(&self, state: &AdminState) -> Vec<Diagnostic> {
        let mut all = state.diagnostics();
        if let Some(s) = self.severity {
            all.retain(|d| d.severity >= s);
        }
        if let Some(n) = &self.namespace {
            all.retain(|d| {
                d.origin
                    .object
                    .as_ref()
                    .is_some_and(|o| *o.namespace == **n)
            });
        }
        if self.host.is_some() {
            let table = state.inner.table.routes();
            let ingresses: Vec<&ObjectKey> = table
                .routes_in_order()
                .into_iter()
                .filter(|r| self.route(r))
                .map(|r| &r.ingress)
                .collect();
            all.retain(|d| {
                d.origin
                    .object
                    .as_ref()
                    .is_some_and(|o| ingresses.contains(&o))
            });
        }
        all
    }
}

fn bad_request(why: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(format!("400 Bad Request: {why}\n"))));
    *r.status_mut() = StatusCode::BAD_REQUEST;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn json<T: serde::Serialize + ?Sized>(value: &T) -> Response<Full<Bytes>> {
    match serde_json::to_vec_pretty(value) {
        Ok(mut body) => {
            body.push(b'\n');
            let mut r = Response::new(Full::new(Bytes::from(body)));
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            r
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot serialise an admin answer");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "500 Internal Server Error\n",
            )
        }
    }
}
