//! Redirects in the decision phase: `permanent-redirect`, `temporal-redirect`, the HTTPS
//! redirect (`ssl-redirect`, `force-ssl-redirect`) and `app-root`, answered by the gateway
//! itself with the route's CORS and response header edits.

use bytes::Bytes;
use http::header::LOCATION;
use http::uri::PathAndQuery;
use http::{Request, Response};
use mse_router::{RedirectVars, Route};

use crate::policy::cors;

/// The redirect `route` answers this request with, response header edits applied.
pub(crate) fn answer<B>(
    tls: bool,
    route: &Route,
    req: &Request<B>,
    host: &str,
    path: &str,
) -> Option<Response<Bytes>> {
    let host = host_without_port(host).to_ascii_lowercase();
    let vars = RedirectVars {
        scheme: if tls { "https" } else { "http" },
        host: &host,
        request_uri: req.uri().path_and_query().map_or("/", PathAndQuery::as_str),
        uri: path,
    };
    let (status, location) = route.redirect_for(tls, &vars)?;
    let mut response = Response::new(Bytes::new());
    *response.status_mut() = status;
    response.headers_mut().insert(LOCATION, location);
    if let Some(c) = cors::answer(route.policy.as_deref(), req.headers()) {
        c.apply(response.headers_mut());
    }
    if let Some(p) = &route.policy {
        p.response_headers.apply(response.headers_mut());
    }
    Some(response)
}

/// `host[:port]` or `[v6][:port]` without the port.
pub(crate) fn host_without_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |i| &host[..=i]);
    }
    // A byte scan: hosts are short, and a `char` search costs more to set up than this.
    match host.bytes().position(|b| b == b':') {
        Some(i) => &host[..i],
        None => host,
    }
}
