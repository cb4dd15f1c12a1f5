//! The access log: one tracing event with target `access` per request, emitted when its
//! response body ends, with the fields ingress-nginx users know.

use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use http::{HeaderValue, Method, Uri, Version};
use mse_model::ObjectKey;

use crate::upstream::Upstream;

/// What the access log says about one request, filled in as the request progresses.
pub(crate) struct AccessRecord {
    pub(crate) start: Instant,
    pub(crate) remote: SocketAddr,
    pub(crate) tls: bool,
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) version: Version,
    pub(crate) host: Option<HeaderValue>,
    pub(crate) status: u16,
    pub(crate) upstream: Option<Upstream>,
    pub(crate) upstream_status: Option<u16>,
    pub(crate) upstream_time: Option<Duration>,
    pub(crate) ingress: Option<ObjectKey>,
    /// The route's Ingress says `enable-access-log: "false"`: nothing is written.
    pub(crate) off: bool,
}

/// Displays `-` for a missing value, as nginx logs do.
struct OrDash<T>(Option<T>);

impl<T: fmt::Display> fmt::Display for OrDash<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(v) => v.fmt(f),
            None => f.write_str("-"),
        }
    }
}

struct Namespaced<'a>(&'a ObjectKey);

impl fmt::Display for Namespaced<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.0.namespace, self.0.name)
    }
}

// === impl AccessRecord ===

impl AccessRecord {
    pub(crate) fn new<B>(remote: SocketAddr, tls: bool, req: &http::Request<B>) -> Box<Self> {
        Box::new(Self {
            start: Instant::now(),
            remote,
            tls,
            method: req.method().clone(),
            uri: req.uri().clone(),
            version: req.version(),
            host: req.headers().get(http::header::HOST).cloned(),
            status: 0,
            upstream: None,
            upstream_status: None,
            upstream_time: None,
            ingress: None,
            off: false,
        })
    }

    pub(crate) fn emit(&self, bytes: u64, complete: bool) {
        if self.off {
            return;
        }
        let host = self
            .host
            .as_ref()
            .and_then(|h| h.to_str().ok())
            .or_else(|| self.uri.authority().map(|a| a.as_str()))
            .unwrap_or("-");
        let path = self.uri.path_and_query().map_or("-", |p| p.as_str());
        tracing::info!(
            target: "access",
            remote_addr = %self.remote.ip(),
            host,
            method = %self.method,
            path,
            protocol = ?self.version,
            scheme = if self.tls { "https" } else { "http" },
            status = self.status,
            bytes,
            complete,
            request_time = self.start.elapsed().as_secs_f64(),
            upstream_addr = %OrDash(self.upstream.as_ref()),
            upstream_status = %OrDash(self.upstream_status),
            upstream_response_time = %OrDash(self.upstream_time.map(|d| d.as_secs_f64())),
            ingress = %OrDash(self.ingress.as_ref().map(Namespaced)),
        );
    }
}
