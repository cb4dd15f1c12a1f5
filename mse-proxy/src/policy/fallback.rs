//! Fallback in the data plane: the gateway-wide default backend for requests no route
//! matches, `default-backend` for routes whose Service cannot be reached, and error pages
//! for `custom-http-errors` (semantics in [`mse_router::FallbackPolicy`]).
//!
//! An error page is fetched at most once per request: the fallback's own answer is relayed
//! whatever its status. While it is fetched, the upstream's error answer is kept unread, so
//! that it can still be relayed when the fallback has no ready endpoint or fails; once the
//! error page is there, the error answer is dropped, and its connection goes back to the
//! pool only when its body had already arrived whole. The route's response header edits
//! apply to an error page as to any other answer of the route.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::FutureExt;
use http::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, EXPECT, TRANSFER_ENCODING};
use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Empty};
use mse_router::{Cluster, ClusterId, FallbackPolicy, Route, RouteId, RoutePolicy};

use crate::error::ProxyError;
use crate::forwarded::ForwardHeaders;
use crate::http1::UpstreamBody;
use crate::log::AccessRecord;
use crate::proxy::Worker;
use crate::table::{Pick, ProxyTable};
use crate::upstream::{Pool, Sent, Upstream};

const X_CODE: HeaderName = HeaderName::from_static("x-code");
const X_FORMAT: HeaderName = HeaderName::from_static("x-format");
const X_ORIGINAL_URI: HeaderName = HeaderName::from_static("x-original-uri");
const X_NAMESPACE: HeaderName = HeaderName::from_static("x-namespace");
const X_INGRESS_NAME: HeaderName = HeaderName::from_static("x-ingress-name");
const X_SERVICE_NAME: HeaderName = HeaderName::from_static("x-service-name");
const X_SERVICE_PORT: HeaderName = HeaderName::from_static("x-service-port");

/// How much of an intercepted error body is read, when it is already there, to reuse its
/// connection.
const DRAIN_LIMIT: usize = 64 * 1024;

/// Where a request goes that no route matched: the gateway-wide default backend. Without
/// one the answer is 404; a default backend without a ready endpoint answers 503.
pub(crate) fn unmatched(table: &ProxyTable) -> Result<Upstream, ProxyError> {
    let cluster = table
        .routes()
        .default_backend()
        .ok_or(ProxyError::NoRoute)?;
    match table.pick(cluster) {
        Pick::To(upstream) => Ok(upstream),
        Pick::NoEndpoints => Err(ProxyError::NoEndpoints {
            service: cluster.service.clone(),
            port: cluster.port,
        }),
    }
}

/// The `default-backend` upstream for a route whose own backend is unavailable or has no
/// ready endpoint. `None` when the route has no default backend or it has no ready
/// endpoint either: the route's own error stands.
pub(crate) fn default_backend(
    table: &ProxyTable,
    policy: Option<&RoutePolicy>,
) -> Option<Upstream> {
    let id = policy?.fallback.as_ref()?.cluster?;
    let cluster = table.routes().clusters().get(id.0 as usize)?;
    match table.pick(cluster) {
        Pick::To(upstream) => Some(upstream),
        Pick::NoEndpoints => None,
    }
}

/// What a request routed to an Ingress with `custom-http-errors` keeps until the
/// upstream's status is known.
pub(crate) struct ErrorPages {
    /// The table the route came from: cluster and route ids are only valid in it.
    table: Arc<ProxyTable>,
    route: RouteId,
    /// The cluster the request was sent to, for `X-Service-Name` and `X-Service-Port`.
    served: ClusterId,
    /// The request URI as received, for `X-Original-URI`.
    original_uri: Option<PathAndQuery>,
    /// The request method: a HEAD request gets its error page with HEAD.
    head: bool,
    /// The gateway's forwarding headers and the route's policy, when they were written
    /// into the request head rather than into its header map.
    head_extras: Option<(ForwardHeaders, Option<Arc<RoutePolicy>>)>,
}

// === impl ErrorPages ===

impl ErrorPages {
    /// Error pages for a request served by `route` through `cluster`, when its Ingress
    /// lists `custom-http-errors` (the router keeps them only when some Service can
    /// answer them).
    pub(crate) fn new(table: &Arc<ProxyTable>, route: &Route, cluster: &Cluster) -> Option<Self> {
        let f = route.policy.as_ref()?.fallback.as_ref()?;
        if f.codes.is_empty() {
            return None;
        }
        Some(Self {
            table: Arc::clone(table),
            route: route.id,
            served: cluster.id,
            original_uri: None,
            head: false,
            head_extras: None,
        })
    }

    /// Keeps the method and the request URI as received (`X-Original-URI`).
    pub(crate) fn keep_target(&mut self, method: &Method, uri: &Uri) {
        self.head = *method == Method::HEAD;
        self.original_uri = uri.path_and_query().cloned();
    }

    /// Keeps what was written into the request head besides its header map (forwarding
    /// headers, the policy's request header edits), for the error page request.
    pub(crate) fn keep_head_extras(
        &mut self,
        forwarded: ForwardHeaders,
        policy: Option<Arc<RoutePolicy>>,
    ) {
        self.head_extras = Some((forwarded, policy));
    }

    /// The forwarding headers kept by [`Self::keep_head_extras`].
    pub(crate) fn forwarded(&self) -> Option<&ForwardHeaders> {
        self.head_extras.as_ref().map(|(f, _)| f)
    }

    fn policy(&self) -> Option<&FallbackPolicy> {
        let route = self.table.routes().routes().get(self.route.0 as usize)?;
        route.policy.as_ref()?.fallback.as_ref()
    }

    /// Whether an upstream answer with this status is replaced by an error page.
    pub(crate) fn intercepts(&self, status: StatusCode) -> bool {
        self.policy().is_some_and(|f| f.intercepts(status.as_u16()))
    }

    /// The Service that serves the error pages: the Ingress's `default-backend`, else the
    /// gateway-wide default backend.
    fn fallback_cluster(&self) -> Option<&Cluster> {
        let routes = self.table.routes();
        match self.policy()?.cluster {
            Some(id) => routes.clusters().get(id.0 as usize),
            None => routes.default_backend(),
        }
    }

    /// The error page for an upstream answer whose status this Ingress intercepts, or that
    /// answer itself when no error page can be had (no ready endpoint, or the fallback
    /// failed).
    pub(crate) async fn answer(
        self,
        worker: &Worker,
        original: Response<UpstreamBody>,
        sent_headers: HeaderMap,
        log: Option<&mut AccessRecord>,
    ) -> Response<UpstreamBody> {
        let Some(cluster) = self.fallback_cluster() else {
            return original;
        };
        let upstream = match self.table.pick(cluster) {
            Pick::To(upstream) => upstream,
            Pick::NoEndpoints => {
                tracing::debug!(
                    service = %cluster.service,
                    port = cluster.port,
                    "the error page Service has no ready endpoint; relaying the upstream's answer"
                );
                return original;
            }
        };
        let mut req = self.request(original.status(), sent_headers);
        match worker
            .pool
            .send_plain(
                &upstream,
                &mut req,
                None,
                &worker.metrics,
                worker.pool.waits(None),
            )
            .await
        {
            Ok(Sent::Plain { head, conn, .. })
                if head.status != StatusCode::SWITCHING_PROTOCOLS =>
            {
                release(original, &worker.pool);
                if let Some(log) = log {
                    log.upstream = Some(upstream);
                    log.upstream_status = Some(head.status.as_u16());
                }
                head.into_response(conn)
            }
            Ok(_) => original,
            Err(e) => {
                tracing::debug!(
                    %upstream,
                    error = %crate::error::Chain(&e),
                    "the error page request failed; relaying the upstream's answer"
                );
                original
            }
        }
    }

    /// The error page request: `GET /` (`HEAD /` for a HEAD request) without body, with
    /// the headers the request was sent upstream with and the ingress-nginx `X-*` headers.
    fn request(&self, status: StatusCode, mut headers: HeaderMap) -> Request<Empty<Bytes>> {
        if let Some((f, policy)) = &self.head_extras {
            f.clone().insert_into(&mut headers);
            if let Some(p) = policy {
                p.edit_request(&mut headers);
            }
        }
        for name in [CONTENT_LENGTH, TRANSFER_ENCODING, CONTENT_TYPE, EXPECT] {
            headers.remove(name);
        }
        headers.insert(X_CODE, HeaderValue::from(status.as_u16()));
        match headers.get(ACCEPT).cloned() {
            Some(accept) => headers.insert(X_FORMAT, accept),
            None => headers.remove(X_FORMAT),
        };
        match self
            .original_uri
            .as_ref()
            .and_then(|u| HeaderValue::from_str(u.as_str()).ok())
        {
            Some(uri) => headers.insert(X_ORIGINAL_URI, uri),
            None => headers.remove(X_ORIGINAL_URI),
        };
        let routes = self.table.routes();
        let ingress = routes
            .routes()
            .get(self.route.0 as usize)
            .map(|r| &r.ingress);
        let served = routes.clusters().get(self.served.0 as usize);
        let named = [
            (X_NAMESPACE, ingress.map(|i| &*i.namespace)),
            (X_INGRESS_NAME, ingress.map(|i| &*i.name)),
            (X_SERVICE_NAME, served.map(|c| &*c.service.name)),
        ];
        for (name, value) in named {
            match value.and_then(|v| HeaderValue::from_str(v).ok()) {
                Some(v) => headers.insert(name, v),
                None => headers.remove(name),
            };
        }
        match served {
            Some(c) => headers.insert(X_SERVICE_PORT, HeaderValue::from(c.port)),
            None => headers.remove(X_SERVICE_PORT),
        };
        let method = if self.head { Method::HEAD } else { Method::GET };
        let mut req = Request::new(Empty::new());
        *req.method_mut() = method;
        *req.uri_mut() = Uri::from_static("/");
        *req.headers_mut() = headers;
        req
    }
}

/// Drops an intercepted answer. Its connection goes back to the pool only when the rest
/// of its body is already there (and small): waiting for it would delay the error page.
fn release(response: Response<UpstreamBody>, pool: &Pool) {
    let mut body = response.into_body();
    let mut read = 0;
    while read <= DRAIN_LIMIT {
        match body.frame().now_or_never() {
            Some(Some(Ok(frame))) => read += frame.data_ref().map_or(0, Bytes::len),
            Some(None) => break,
            Some(Some(Err(_))) | None => return,
        }
    }
    if let Some(conn) = body.take_reusable() {
        pool.put(conn);
    }
}
