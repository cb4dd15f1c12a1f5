//! The exchange and response phases for upstreams spoken to otherwise than in plain
//! HTTP/1.1 (`backend-protocol` HTTPS, HTTP2/H2C, GRPC, GRPCS; Service ports named after
//! Istio's convention): hyper's client on the connections of
//! [`crate::upstream::send_protocol`], decided once per request from the cluster.
//!
//! `grpc-timeout` (gRPC's deadline, sent by the client) bounds the wait for the response
//! head besides the route's own timeouts; the header goes upstream unchanged, so the
//! server enforces the same deadline on the rest of the call. A deadline that passes
//! before the upstream answered gets gRPC's own answer, a trailers-only response with
//! `grpc-status: 4` (DEADLINE_EXCEEDED), rather than 504: a gRPC client maps 504 to
//! UNAVAILABLE, which it may retry, while the deadline is the caller's own (Envoy's router
//! answers its gRPC timeouts so too). Other timeouts answer 504 as for any request.
//!
//! Retries on another endpoint (`proxy-next-upstream*`) follow [`retry::send_protocol`].
//! Not on these routes: mirroring and `custom-http-errors` pages, which need the inline
//! HTTP/1.1 client; WebSocket to an HTTP/2 upstream is refused with 502.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST, SET_COOKIE, STRICT_TRANSPORT_SECURITY, TE};
use http::uri::{Authority, Scheme};
use http::{HeaderName, HeaderValue, Request, Response, StatusCode, Uri, Version};
use hyper::body::Incoming;

use super::exchange::Prepared;
use super::hop::strip_hop_by_hop;
use super::{ConnCtx, Forwarded, respond};
use crate::body::RequestBody;
use crate::error::ProxyError;
use crate::log::AccessRecord;
use crate::policy::headers::edit_response;
use crate::policy::load::LoadGuard;
use crate::policy::retry;
use crate::stats::{Outcome, Tally};
use crate::upstream::{Protocol, send_protocol, send_protocol_upgrade};

const GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");

/// Sends the prepared request with the cluster's protocol and makes the answer ready.
pub(super) async fn forward(
    cx: &ConnCtx,
    protocol: Arc<Protocol>,
    mut prepared: Prepared,
    mut req: Box<Request<RequestBody>>,
    (log, tally): (Option<&mut AccessRecord>, &mut Tally),
    load: &mut Option<LoadGuard>,
    host: &str,
) -> Result<Forwarded, ProxyError> {
    let sent_at = Instant::now();
    let worker = &cx.worker;
    let mut waits = worker.pool.waits(
        prepared
            .policy
            .as_deref()
            .and_then(|p| p.exchange.as_deref()),
    );
    if let Some(total) = waits.total {
        waits.response = waits.response.min(total);
    }
    let grpc = is_grpc(req.headers());
    let deadline = grpc
        .then(|| req.headers().get(GRPC_TIMEOUT).and_then(grpc_timeout))
        .flatten();
    let by_deadline = deadline.is_some_and(|d| d < waits.response);
    if let Some(d) = deadline {
        waits.response = waits.response.min(d);
    }
    *load = prepared.rare.as_mut().and_then(|r| r.extras.load.take());
    let upstream = prepared.upstream.clone();
    if prepared.upgrade {
        if protocol.http2 {
            return Err(ProxyError::BadResponse {
                upstream,
                reason: "WebSocket upgrades to an HTTP/2 upstream are not available",
            });
        }
        let (response, conn) = send_protocol_upgrade(
            &worker.pool,
            &protocol,
            &upstream,
            *req,
            waits,
            &worker.metrics,
        )
        .await?;
        note((log, tally), response.status(), sent_at);
        return Ok(Forwarded::Hyper(respond::upgraded(
            cx, response, conn, prepared, host,
        )));
    }
    if protocol.http2 {
        to_http2(&mut req, &protocol, grpc)?;
    } else {
        *req.version_mut() = Version::HTTP_11;
    }
    // The route's retries on another endpoint, for a cluster of more than one.
    let retrying = prepared
        .policy
        .as_deref()
        .and_then(|p| p.exchange.as_deref())
        .filter(|e| e.retry.is_some())
        .zip(prepared.rare.as_ref().and_then(|r| r.endpoints.clone()));
    let sent = match retrying {
        Some((policy, all)) => {
            let send = retry::send_protocol(
                worker,
                (&protocol, policy),
                (upstream.clone(), &all),
                load,
                *req,
                waits,
            );
            match Box::pin(send).await {
                Ok((response, used)) => {
                    if used != upstream {
                        tally.outcome |= Outcome::RETRIED;
                    }
                    prepared.upstream = used;
                    Ok(response)
                }
                Err(e) => Err(e),
            }
        }
        None => {
            let send = send_protocol(
                &worker.pool,
                &protocol,
                &upstream,
                *req,
                waits,
                &worker.metrics,
            );
            send.await
        }
    };
    let upstream = prepared.upstream.clone();
    let mut log = log;
    if let Some(log) = log.as_deref_mut() {
        log.upstream = Some(upstream.clone());
    }
    let mut response = match sent {
        Ok(r) => r,
        Err(ProxyError::ResponseTimeout { .. }) if by_deadline => {
            tracing::debug!(%upstream, "grpc-timeout passed before the upstream answered");
            return Ok(Forwarded::Local(deadline_exceeded()));
        }
        Err(e) => return Err(e),
    };
    note((log, tally), response.status(), sent_at);
    *response.version_mut() = Version::HTTP_11;
    finish(cx, &mut response, &mut prepared, host);
    Ok(Forwarded::Hyper(response))
}

/// Notes the upstream's status and time for the access log and the route's metrics.
fn note(
    (log, tally): (Option<&mut AccessRecord>, &mut Tally),
    status: StatusCode,
    sent_at: Instant,
) {
    tally.upstream_answered(sent_at);
    if let Some(log) = log {
        log.upstream_status = Some(status.as_u16());
    }
}

/// Whether the request is a gRPC call (`application/grpc`, `application/grpc+proto`...).
fn is_grpc(headers: &http::HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// The request for an HTTP/2 upstream: an absolute target whose authority is the `Host`
/// header (HTTP/2 carries it as `:authority`), and `TE: trailers` for gRPC, which
/// requires it (the hop-by-hop header was taken out with the others).
fn to_http2(
    req: &mut Request<RequestBody>,
    protocol: &Protocol,
    grpc: bool,
) -> Result<(), ProxyError> {
    let scheme = if protocol.tls.is_some() {
        Scheme::HTTPS
    } else {
        Scheme::HTTP
    };
    let authority = req
        .headers_mut()
        .remove(HOST)
        .and_then(|h| Authority::try_from(h.as_bytes()).ok());
    let mut parts = std::mem::take(req.uri_mut()).into_parts();
    parts.scheme = Some(scheme);
    parts.authority = Some(authority.unwrap_or_else(|| Authority::from_static("localhost")));
    if parts.path_and_query.is_none() {
        parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
    }
    *req.uri_mut() = Uri::from_parts(parts).map_err(|_| ProxyError::BadRequest {
        reason: "the request target cannot be sent over HTTP/2",
    })?;
    *req.version_mut() = Version::HTTP_2;
    if grpc {
        req.headers_mut()
            .insert(TE, HeaderValue::from_static("trailers"));
    }
    Ok(())
}

/// `grpc-timeout`: up to 8 digits and a unit (H, M, S, m, u, n); `None` when malformed,
/// as gRPC servers treat it.
fn grpc_timeout(v: &HeaderValue) -> Option<Duration> {
    let v = v.as_bytes();
    let (digits, unit) = v.split_at(v.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(match unit {
        b"H" => Duration::from_secs(n.checked_mul(3600)?),
        b"M" => Duration::from_secs(n.checked_mul(60)?),
        b"S" => Duration::from_secs(n),
        b"m" => Duration::from_millis(n),
        b"u" => Duration::from_micros(n),
        b"n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// gRPC's answer to a call whose deadline passed: trailers-only, DEADLINE_EXCEEDED.
fn deadline_exceeded() -> Response<Bytes> {
    let mut r = Response::new(Bytes::new());
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    h.insert("grpc-status", HeaderValue::from_static("4"));
    h.insert(
        "grpc-message",
        HeaderValue::from_static("deadline exceeded before the upstream answered"),
    );
    r
}

/// Makes the upstream's answer ready for the client: hop-by-hop headers, CORS, cookies,
/// HSTS and the route's response header edits.
fn finish(cx: &ConnCtx, response: &mut Response<Incoming>, prepared: &mut Prepared, host: &str) {
    strip_hop_by_hop(response.headers_mut(), false);
    if let Some(c) = &prepared.cors {
        c.apply(response.headers_mut());
    }
    let rare = prepared.rare.as_deref();
    if let Some(c) = rare
        .and_then(|r| r.auth_cookies.as_ref())
        .filter(|c| c.apply_to(response.status()))
    {
        c.append_to(response.headers_mut());
    }
    if let Some(v) = &prepared.hsts {
        response
            .headers_mut()
            .insert(STRICT_TRANSPORT_SECURITY, HeaderValue::clone(v));
    }
    if let Some(v) = rare.and_then(|r| r.extras.set_cookie.as_ref()) {
        response
            .headers_mut()
            .append(SET_COOKIE, HeaderValue::clone(v));
    }
    if let Some(p) = &prepared.policy {
        edit_response(cx.tls, p, response.headers_mut(), &prepared.upstream, host);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_reads_every_unit_and_refuses_the_rest() {
        let t = |s: &'static str| grpc_timeout(&HeaderValue::from_static(s));
        assert_eq!(t("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(t("2M"), Some(Duration::from_secs(120)));
        assert_eq!(t("3S"), Some(Duration::from_secs(3)));
        assert_eq!(t("250m"), Some(Duration::from_millis(250)));
        assert_eq!(t("7u"), Some(Duration::from_micros(7)));
        assert_eq!(t("9n"), Some(Duration::from_nanos(9)));
        for bad in ["", "S", "123456789S", "1x", "-1S", "1.5S"] {
            assert_eq!(t(bad), None, "{bad}");
        }
    }
}
