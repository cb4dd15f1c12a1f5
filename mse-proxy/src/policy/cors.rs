//! CORS in the request path: the gateway answers preflights from allowed origins itself,
//! and adds the CORS headers to the answers of other requests from allowed origins. What
//! is allowed, and the header values, come from [`mse_router::CorsPolicy`].
//!
//! A route without CORS costs one `Option` check; a route with it one `Origin` lookup
//! more.

use std::sync::Arc;

use bytes::Bytes;

use http::header::{ACCESS_CONTROL_REQUEST_METHOD, ORIGIN};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use mse_router::{AllowedOrigin, CorsPolicy, RoutePolicy};

/// The CORS headers an answer needs, decided from the request.
pub(crate) struct CorsAnswer {
    cors: Arc<CorsPolicy>,
    allowed: AllowedOrigin,
}

/// The gateway's own answer to a CORS preflight (`OPTIONS` with `Origin` and
/// `Access-Control-Request-Method`) from an allowed origin: 204 with the CORS headers,
/// then the response header edits of the route. `None` for any other request: a preflight
/// from an origin that is not allowed goes to the upstream, as in ingress-nginx.
///
/// Inline, so that a request to a route without CORS, or any request but `OPTIONS`, costs
/// two checks.
#[inline]
pub(crate) fn preflight<B>(
    policy: Option<&RoutePolicy>,
    req: &Request<B>,
) -> Option<Response<Bytes>> {
    let p = policy?;
    let cors = p.cors.as_deref()?;
    if req.method() != Method::OPTIONS {
        return None;
    }
    options_preflight(p, cors, req)
}

/// [`preflight`] for an `OPTIONS` request to a route with CORS.
#[inline(never)]
fn options_preflight<B>(
    p: &RoutePolicy,
    cors: &CorsPolicy,
    req: &Request<B>,
) -> Option<Response<Bytes>> {
    if !req.headers().contains_key(ACCESS_CONTROL_REQUEST_METHOD) {
        return None;
    }
    let allowed = cors.allow(req.headers().get(ORIGIN)?)?;
    let mut response = Response::new(Bytes::new());
    *response.status_mut() = StatusCode::NO_CONTENT;
    cors.apply_preflight(&allowed, response.headers_mut());
    p.response_headers.apply(response.headers_mut());
    Some(response)
}

/// What the answer to a request with these headers needs, when the route has CORS and the
/// request comes from an allowed origin, or has no `Origin` and every origin is allowed.
pub(crate) fn answer(policy: Option<&RoutePolicy>, headers: &HeaderMap) -> Option<CorsAnswer> {
    let cors = policy?.cors.as_ref()?;
    let allowed = match headers.get(ORIGIN) {
        Some(origin) => cors.allow(origin)?,
        None => cors.allow_without_origin()?,
    };
    Some(CorsAnswer {
        cors: Arc::clone(cors),
        allowed,
    })
}

// === impl CorsAnswer ===

impl CorsAnswer {
    /// Adds the CORS headers to an answer.
    pub(crate) fn apply(&self, headers: &mut HeaderMap) {
        self.cors.apply_response(&self.allowed, headers);
    }
}
