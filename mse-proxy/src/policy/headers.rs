//! Header control in the response phase: `response-header-control-*` and
//! `proxy-redirect-from`/`-to` on upstream answers. (The request side is written straight
//! into the upstream request head by the HTTP/1.1 client, from
//! [`mse_router::RoutePolicy::request_head_plan`].)

use http::{HeaderMap, Response};
use mse_router::RoutePolicy;

use crate::http1::UpstreamBody;
use crate::upstream::Upstream;

/// Whether the policy's response edits need every header in the map: a location rewrite
/// reads `Location`, a removal must reach received headers, and an added header must not
/// replace a received one of the same name. Updates replace received headers as they are.
pub(crate) fn needs_all_headers(policy: &RoutePolicy, response: &Response<UpstreamBody>) -> bool {
    let Some(raw) = response.body().raw_headers() else {
        return false;
    };
    let ops = &policy.response_headers;
    policy.location_rewrite.is_some()
        || !ops.remove.is_empty()
        || ops.add.iter().any(|(name, _)| raw.contains(name))
}

/// Applies `proxy-redirect-from`/`-to` and the response header edits to an upstream
/// answer.
pub(crate) fn edit_response(
    tls: bool,
    policy: &RoutePolicy,
    headers: &mut HeaderMap,
    upstream: &Upstream,
    host: &str,
) {
    if policy.location_rewrite.is_some() {
        let scheme = if tls { "https" } else { "http" };
        policy.rewrite_locations(
            headers,
            &upstream.to_string(),
            &format!("{scheme}://{host}"),
        );
    }
    policy.response_headers.apply(headers);
}
