//! The response phase: the upstream's answer made ready for the client (hop-by-hop
//! headers, CORS, the route's header edits; error pages are fetched by `forward`), the
//! tunnel of an upgraded connection, the gateway's own error answers, and the registered
//! steps' response hook.

use http::header::{SET_COOKIE, STRICT_TRANSPORT_SECURITY};
use http::{HeaderValue, Response, StatusCode};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

use std::sync::Arc;

use super::exchange::Prepared;
use super::hop::strip_hop_by_hop;
use super::{ConnCtx, Worker};
use crate::body::{InFlight, ProxyBody, RequestBody};
use crate::error::{Blame, Chain, ProxyError};
use crate::http1::{
    CloseConnection, Conn, PendingUpgrade, ResponseHead, UpstreamBody, materialize,
};
use crate::phases::{RequestInfo, Steps, plain_text};
use crate::policy::headers::{edit_response, needs_all_headers};
use crate::upstream::Upstream;

/// The answer of the inline client, refused when it switches protocols unasked.
pub(super) fn plain(
    head: ResponseHead,
    conn: Box<Conn>,
    upstream: &Upstream,
) -> Result<Response<UpstreamBody>, ProxyError> {
    if head.status == StatusCode::SWITCHING_PROTOCOLS {
        return Err(ProxyError::BadResponse {
            upstream: upstream.clone(),
            reason: "101 Switching Protocols to a request that asked for no upgrade",
        });
    }
    Ok(head.into_response(conn))
}

/// Makes an upstream's (or an error page's) answer ready for the client: hop-by-hop
/// headers, CORS, HSTS and the route's response header edits.
pub(super) fn finish(
    cx: &ConnCtx,
    response: &mut Response<UpstreamBody>,
    prepared: &Prepared,
    host: &str,
) {
    // Headers kept as received (see `RawHeaders`) are written out with the hop-by-hop
    // ones left out, and the map's replacing received ones of the same name; edits that
    // need more than that see them all in the map first. The map then only holds what
    // the gateway set.
    if response.body().raw_headers().is_none() {
        strip_hop_by_hop(response.headers_mut(), false);
    }
    if let Some(c) = &prepared.cors {
        materialize(response);
        c.apply(response.headers_mut());
    }
    let rare = prepared.rare.as_deref();
    if let Some(c) = rare
        .and_then(|r| r.auth_cookies.as_ref())
        .filter(|c| c.apply_to(response.status()))
    {
        // Beside the upstream's own cookies: every header kept as received goes into the
        // map first, since one set in the map would replace them.
        materialize(response);
        c.append_to(response.headers_mut());
    }
    if let Some(v) = &prepared.hsts {
        // A header in the map replaces the upstream's of the same name.
        response
            .headers_mut()
            .insert(STRICT_TRANSPORT_SECURITY, HeaderValue::clone(v));
    }
    if let Some(v) = rare.and_then(|r| r.extras.set_cookie.as_ref()) {
        // Beside the upstream's own cookies, which a header in the map would replace.
        materialize(response);
        response
            .headers_mut()
            .append(SET_COOKIE, HeaderValue::clone(v));
    }
    if let Some(p) = &prepared.policy {
        if needs_all_headers(p, response) {
            materialize(response);
        }
        if response.body().raw_headers().is_some() {
            // Updates and additions only: the server writes them beside the received
            // headers.
            response.body_mut().defer_edits(Arc::clone(p));
        } else {
            edit_response(cx.tls, p, response.headers_mut(), &prepared.upstream, host);
        }
    }
}

/// The answer to an upgrade request (hyper's client), and the tunnel when it switched.
pub(super) fn upgraded(
    cx: &ConnCtx,
    mut response: Response<Incoming>,
    conn: SendRequest<RequestBody>,
    prepared: Prepared,
    host: &str,
) -> Response<Incoming> {
    let switched = response.status() == StatusCode::SWITCHING_PROTOCOLS;
    strip_hop_by_hop(response.headers_mut(), switched);
    if let Some(c) = &prepared.cors {
        c.apply(response.headers_mut());
    }
    if let Some(v) = &prepared.hsts {
        response
            .headers_mut()
            .insert(STRICT_TRANSPORT_SECURITY, HeaderValue::clone(v));
    }
    if let Some(v) = prepared
        .rare
        .as_deref()
        .and_then(|r| r.extras.set_cookie.as_ref())
    {
        response
            .headers_mut()
            .append(SET_COOKIE, HeaderValue::clone(v));
    }
    if let Some(p) = &prepared.policy {
        edit_response(cx.tls, p, response.headers_mut(), &prepared.upstream, host);
    }
    let client = prepared.rare.and_then(|mut r| r.client_upgrade.take());
    if let (true, Some(client)) = (switched, client) {
        let server = hyper::upgrade::on(&mut response);
        spawn_tunnel(&cx.worker, client, server, conn, prepared.upstream);
    }
    response
}

/// The registered steps' response hook, on whatever answer the client gets. Headers kept
/// as received move into the map first, so a step sees them all.
pub(super) fn run_steps(steps: &Steps, info: &RequestInfo, response: &mut Response<ProxyBody>) {
    let mut headers = std::mem::take(response.headers_mut());
    response.body_mut().headers_into_map(&mut headers);
    steps.response(info, response.status(), &mut headers);
    *response.headers_mut() = headers;
}

/// Copies bytes both ways between the upgraded client and upstream connections.
fn spawn_tunnel(
    worker: &Worker,
    client: PendingUpgrade,
    server: hyper::upgrade::OnUpgrade,
    conn: SendRequest<RequestBody>,
    upstream: Upstream,
) {
    let guard = worker.live.subscribe();
    tokio::task::spawn_local(async move {
        let _guard = guard;
        let (client, server) = tokio::join!(client.0, server);
        // The upstream connection has handed its socket over.
        drop(conn);
        match (client, server) {
            (Ok(mut client), Ok(server)) => {
                let mut server = TokioIo::new(server);
                match tokio::io::copy_bidirectional(&mut client, &mut server).await {
                    Ok((up, down)) => {
                        tracing::debug!(%upstream, up, down, "upgraded connection closed");
                    }
                    Err(e) => tracing::debug!(%upstream, error = %e, "upgraded connection failed"),
                }
            }
            (Err(_), _) => {
                tracing::debug!(%upstream, "the client connection ended before the upgrade");
            }
            (_, Err(e)) => {
                tracing::debug!(%upstream, error = %e, "upgrade did not complete");
            }
        }
    });
}

pub(super) fn report(e: &ProxyError) {
    match e.blame() {
        Blame::Upstream if e.upstream().is_some() => {
            tracing::warn!(error = %Chain(e), "request failed upstream");
        }
        _ => tracing::debug!(error = %Chain(e), status = e.status().as_u16(), "request refused"),
    }
}

/// The gateway's own answer to a request it could not proxy: the status and a short text.
pub(super) fn error_response(e: &ProxyError, guard: InFlight) -> Response<ProxyBody> {
    let status = e.status();
    let text: &'static str = match status {
        StatusCode::BAD_REQUEST => "400 Bad Request\n",
        StatusCode::FORBIDDEN => "403 Forbidden\n",
        StatusCode::NOT_FOUND => "404 Not Found\n",
        StatusCode::METHOD_NOT_ALLOWED => "405 Method Not Allowed\n",
        StatusCode::REQUEST_TIMEOUT => "408 Request Timeout\n",
        StatusCode::PAYLOAD_TOO_LARGE => "413 Payload Too Large\n",
        StatusCode::MISDIRECTED_REQUEST => "421 Misdirected Request\n",
        StatusCode::BAD_GATEWAY => "502 Bad Gateway\n",
        StatusCode::SERVICE_UNAVAILABLE => "503 Service Unavailable\n",
        StatusCode::GATEWAY_TIMEOUT => "504 Gateway Timeout\n",
        _ => "500 Internal Server Error\n",
    };
    let mut response = plain_text(status, text).map(|body| ProxyBody::full(body, guard));
    // The rest of what the client sent cannot be trusted to start a request: after a
    // malformed request, a body over the limit or one that stalled, the connection ends.
    if matches!(
        status,
        StatusCode::BAD_REQUEST | StatusCode::REQUEST_TIMEOUT | StatusCode::PAYLOAD_TOO_LARGE
    ) {
        response.extensions_mut().insert(CloseConnection);
    }
    response
}
