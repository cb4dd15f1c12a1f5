//! The phases a request passes through, and [`Step`]: how a team that embeds the data
//! plane adds its own behaviour to them without changing this crate.
//!
//! Every request passes these phases, in this order (`docs/architecture.md` lists which
//! module does what in each):
//!
//! | phase | what happens | may answer the request |
//! |---|---|---|
//! | connection | accept, client address, TLS and ALPN, one task per connection | no (closes) |
//! | request head | parse, `Host` or `:authority`, path normalisation | 400, 405, 431 |
//! | route | lookup in the current table | 404 (no default backend) |
//! | access | [`Step::access`] of every registered step | yes |
//! | decision | CORS preflight, redirects, canary choice, rewrite | 204, 3xx |
//! | upstream selection | cluster, endpoint, default backend, error pages | 503 |
//! | exchange | forwarding headers, [`Step::upstream_request`], mirror, send | 502, 504 |
//! | response | hop-by-hop, CORS, header edits, error pages, [`Step::response`] | replaces with an error page |
//! | log | access log line and metrics when the response body ends | no |
//!
//! The gateway's own policies are compiled once per route into the table
//! ([`mse_router::RoutePolicy`]), so a route without them pays one `Option` check per
//! phase. Steps registered here run for every request of the gateway; a step decides from
//! [`RequestInfo::ingress`] which routes it cares about. With no step registered the
//! request path does no work for them at all.
//!
//! Steps are synchronous: they run inline on the connection's task, with no future or
//! allocation of their own. A step that needs to wait for I/O does not fit this trait.
//!
//! ```
//! use http::{HeaderMap, StatusCode};
//! use mse_proxy::phases::{RequestInfo, Step, Steps, Verdict};
//!
//! /// Refuses requests without `X-Team`.
//! struct NeedsTeam;
//!
//! impl Step for NeedsTeam {
//!     fn name(&self) -> &'static str {
//!         "needs-team"
//!     }
//!
//!     fn access(&self, _req: &RequestInfo, headers: &HeaderMap) -> Verdict {
//!         if headers.contains_key("x-team") {
//!             Verdict::Continue
//!         } else {
//!             Verdict::respond(StatusCode::FORBIDDEN, "403 Forbidden\n")
//!         }
//!     }
//! }
//!
//! let mut steps = Steps::default();
//! steps.push(NeedsTeam);
//! let mut config = mse_proxy::ProxyConfig::default();
//! config.steps = steps;
//! ```

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri};
use mse_model::ObjectKey;

/// What a step knows of the request it sees.
#[derive(Clone, Debug)]
pub struct RequestInfo {
    peer: SocketAddr,
    client: IpAddr,
    tls: bool,
    method: Method,
    uri: Uri,
    host: Option<HeaderValue>,
    ingress: Option<ObjectKey>,
}

/// What [`Step::access`] decides.
#[derive(Debug)]
pub enum Verdict {
    /// The request goes on to the next step and phase.
    Continue,
    /// The request is answered with this response; no later step or phase sees it, and it
    /// is not forwarded. The gateway sets the framing headers.
    Respond(Response<Bytes>),
}

/// One step in the request path. Every method has a default that does nothing, so a step
/// implements only the phases it joins.
pub trait Step: Send + Sync + 'static {
    /// A short name for logs and `Debug` output.
    fn name(&self) -> &'static str;

    /// Access phase, after the route lookup and before any redirect or the canary choice:
    /// answer the request, or let it pass. `headers` are the request's as the client sent
    /// them (hop-by-hop ones included).
    fn access(&self, req: &RequestInfo, headers: &HeaderMap) -> Verdict {
        let _ = (req, headers);
        Verdict::Continue
    }

    /// Exchange phase: edit the headers sent upstream, after the route's own header edits.
    /// The gateway writes `X-Forwarded-*`, `X-Real-IP` and the framing headers itself, so
    /// a step does not set those.
    fn upstream_request(&self, req: &RequestInfo, headers: &mut HeaderMap) {
        let _ = (req, headers);
    }

    /// Response phase: edit the headers of the answer the client gets, whoever produced
    /// it (an upstream, a redirect, an error page, or the gateway's own error).
    fn response(&self, req: &RequestInfo, status: StatusCode, headers: &mut HeaderMap) {
        let _ = (req, status, headers);
    }
}

/// The steps registered with a gateway ([`crate::ProxyConfig::steps`]), run in the order
/// they were pushed.
#[derive(Clone, Default)]
pub struct Steps(Vec<Arc<dyn Step>>);

// === impl RequestInfo ===

impl RequestInfo {
    pub(crate) fn new<B>(peer: SocketAddr, tls: bool, req: &Request<B>) -> Self {
        Self {
            peer,
            client: peer.ip(),
            tls,
            method: req.method().clone(),
            uri: req.uri().clone(),
            host: req.headers().get(HOST).cloned(),
            ingress: None,
        }
    }

    pub(crate) fn set_ingress(&mut self, ingress: &ObjectKey) {
        self.ingress = Some(ingress.clone());
    }

    pub(crate) fn set_client(&mut self, client: IpAddr) {
        self.client = client;
    }

    /// The connection's peer: the address the PROXY protocol header names when the
    /// listener reads one, else the socket's.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The client address the gateway's IP rules and logs use: [`Self::peer`], unless
    /// the peer is a trusted proxy naming the client in its `X-Forwarded-For` list.
    pub fn client_ip(&self) -> IpAddr {
        self.client
    }

    /// Whether the request came over TLS.
    pub fn tls(&self) -> bool {
        self.tls
    }

    /// The request method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The request target as received.
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// The host the request names: the URI authority, else the `Host` header; empty when
    /// it has neither.
    pub fn host(&self) -> &str {
        match self.uri.authority() {
            Some(a) => a.host(),
            None => self
                .host
                .as_ref()
                .and_then(|h| h.to_str().ok())
                .unwrap_or(""),
        }
    }

    /// The Ingress whose route matched the request, once the route phase found one;
    /// `None` for a request no route matched.
    pub fn ingress(&self) -> Option<&ObjectKey> {
        self.ingress.as_ref()
    }
}

// === impl Verdict ===

impl Verdict {
    /// An answer with this status and a plain-text body.
    pub fn respond(status: StatusCode, text: &'static str) -> Self {
        Self::Respond(plain_text(status, text))
    }
}

/// A plain-text answer of the gateway's own: a step's, or an error.
pub(crate) fn plain_text(status: StatusCode, text: &'static str) -> Response<Bytes> {
    let mut response = Response::new(Bytes::from_static(text.as_bytes()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

// === impl Steps ===

impl Steps {
    /// Adds a step after those already registered.
    pub fn push(&mut self, step: impl Step) {
        self.0.push(Arc::new(step));
    }

    /// Whether no step is registered.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The access phase: the first step that answers wins.
    pub(crate) fn access(&self, req: &RequestInfo, headers: &HeaderMap) -> Option<Response<Bytes>> {
        self.0.iter().find_map(|s| match s.access(req, headers) {
            Verdict::Continue => None,
            Verdict::Respond(answer) => Some(answer),
        })
    }

    pub(crate) fn upstream_request(&self, req: &RequestInfo, headers: &mut HeaderMap) {
        for s in &self.0 {
            s.upstream_request(req, headers);
        }
    }

    pub(crate) fn response(&self, req: &RequestInfo, status: StatusCode, headers: &mut HeaderMap) {
        for s in &self.0 {
            s.response(req, status, headers);
        }
    }
}

impl fmt::Debug for Steps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|s| s.name()))
            .finish()
    }
}
