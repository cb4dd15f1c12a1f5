//! Handling one request: match it against the current table, forward it over HTTP/1.1,
//! and relay the response (or an upgraded connection) back.

use std::borrow::Cow;
use std::cell::Cell;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use http::header::{
    CONNECTION, CONTENT_TYPE, COOKIE, EXPECT, HOST, LOCATION, TE, TRAILER, TRANSFER_ENCODING,
    UPGRADE,
};
use http::uri::PathAndQuery;
use http::{
    HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri, Version,
};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use mse_router::{
    Backend, RedirectVars, RequestHead, Route, RoutePolicy, WEIGHT_SCALE, normalize_path,
};
use tokio::sync::watch;

use crate::body::{InFlight, ProxyBody, RequestBody};
use crate::error::{Blame, Chain, ProxyError};
use crate::fallback;
use crate::forwarded::{ConnForward, ForwardHeaders};
use crate::http1::{HeadExtras, PendingUpgrade, Stop, UpstreamBody, materialize};
use crate::log::AccessRecord;
use crate::metrics::Metrics;
use crate::table::{Pick, SharedTable};
use crate::upstream::{Pool, Sent, Upstream};

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// What one worker thread shares between its connections.
pub(crate) struct Worker {
    pub(crate) table: SharedTable,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) pool: Pool,
    pub(crate) access_log: bool,
    /// HTTP/1.1 client connections and upgraded connections hold a receiver; shutdown
    /// waits until all are dropped.
    pub(crate) live: watch::Sender<()>,
    /// Tells HTTP/1.1 client connections to stop.
    pub(crate) stop: Stop,
}

/// What one client connection shares between its requests.
pub(crate) struct ConnCtx {
    pub(crate) worker: Rc<Worker>,
    pub(crate) peer: SocketAddr,
    pub(crate) tls: bool,
    /// The forwarding headers that are the same for every request of the connection.
    pub(crate) forward: Rc<ConnForward>,
    /// While an HTTP/1.1 upgrade request is handled: the client's socket once the `101`
    /// answer is written.
    pub(crate) upgrade: Cell<Option<PendingUpgrade>>,
}

/// An upstream response ready to relay.
enum Forwarded {
    /// From the inline client.
    Plain(Response<UpstreamBody>),
    /// From hyper's client (upgrade requests).
    Hyper(Response<Incoming>),
    /// The gateway's own answer (a redirect), without a body.
    Local(Response<()>),
}

// === impl ConnCtx ===

impl ConnCtx {
    pub(crate) fn new(worker: Rc<Worker>, peer: SocketAddr, tls: bool, local_port: u16) -> Self {
        let peer_ip = header_value(&peer.ip().to_string());
        let local_port = header_value(&local_port.to_string());
        Self {
            worker,
            peer,
            tls,
            forward: Rc::new(ConnForward::new(peer_ip, tls, local_port)),
            upgrade: Cell::new(None),
        }
    }
}

fn header_value(s: &str) -> HeaderValue {
    // IP addresses and port numbers are always valid header values.
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The service of every client connection: always answers, never fails.
pub(crate) async fn handle(
    cx: Rc<ConnCtx>,
    req: Box<Request<RequestBody>>,
) -> Result<Response<ProxyBody>, Infallible> {
    let guard = InFlight::new(&cx.worker);
    // Nothing is recorded when the log is off or no subscriber listens to `access`.
    let log_on = cx.worker.access_log && tracing::enabled!(target: "access", tracing::Level::INFO);
    let mut log = log_on.then(|| AccessRecord::new(cx.peer, cx.tls, &req));
    let mut response = match forward(&cx, req, log.as_deref_mut()).await {
        Ok(Forwarded::Plain(response)) => {
            let (parts, body) = response.into_parts();
            Response::from_parts(parts, ProxyBody::upstream(body, guard))
        }
        Ok(Forwarded::Hyper(response)) => {
            let (parts, body) = response.into_parts();
            Response::from_parts(parts, ProxyBody::incoming(body, guard))
        }
        Ok(Forwarded::Local(response)) => {
            let (parts, ()) = response.into_parts();
            Response::from_parts(parts, ProxyBody::full(Bytes::new(), guard))
        }
        Err(e) => {
            report(&e);
            error_response(&e, guard)
        }
    };
    let status = response.status().as_u16();
    cx.worker.metrics.count_status(status);
    if let Some(mut log) = log {
        log.status = status;
        response.body_mut().set_log(log);
    }
    Ok(response)
}

async fn forward(
    cx: &ConnCtx,
    mut req: Box<Request<RequestBody>>,
    mut log: Option<&mut AccessRecord>,
) -> Result<Forwarded, ProxyError> {
    if req.method() == Method::CONNECT {
        return Err(ProxyError::MethodNotAllowed);
    }
    let (host, from_authority) = request_host(&req)?;
    let host_str = match &host {
        Some(h) => h
            .to_str()
            .map_err(|_| bad("the host is not printable ASCII"))?,
        None => "",
    };
    // Normalised once: the same path is matched and forwarded.
    let path = normalize_path(req.uri().path());
    let (upstream, policy, rewritten, mut pages) = 'pick: {
        let table = cx.worker.table.load();
        let head = RequestHead::new(host_str, &path)
            .method(req.method().as_str())
            .query(req.uri().query())
            .headers(req.headers())
            .tls(cx.tls);
        let Some(m) = table.routes().lookup(&head) else {
            // No route: the gateway-wide default backend, else 404.
            break 'pick (fallback::unmatched(&table)?, None, None, None);
        };
        if let Some(log) = log.as_deref_mut() {
            log.ingress = Some(m.route.ingress.clone());
        }
        if let Some(answer) = crate::cors::preflight(m.route.policy.as_deref(), &req) {
            return Ok(Forwarded::Local(answer));
        }
        if m.route.may_redirect(cx.tls)
            && let Some(answer) = redirect(cx, m.route, &req, host_str, &path)
        {
            return Ok(Forwarded::Local(answer));
        }
        // Canaries: the roll only matters for weighted ones.
        let roll = match &m.route.canary {
            Some(_) => fastrand::u32(..WEIGHT_SCALE),
            None => 0,
        };
        let dest = m.route.destination(&head, roll);
        if let (Some(log), Some(c)) = (log.as_deref_mut(), dest.canary) {
            log.ingress = Some(c.ingress.clone());
        }
        let policy = dest.policy;
        // `None` too for a rewrite that gives the same path.
        let rewritten = policy.and_then(|p| p.rewrite_path(&m.route.path, &path));
        let policy = policy.map(Arc::clone);
        let cluster = match dest.backend {
            Backend::Cluster(c) => Some(table.routes().cluster(*c)),
            Backend::Unavailable { .. } => None,
        };
        let Some(cluster) = cluster else {
            let reason = match dest.backend {
                Backend::Unavailable { reason } => Arc::clone(reason),
                Backend::Cluster(_) => Arc::from("the route's cluster is missing"),
            };
            if let Some(up) = fallback::default_backend(&table, policy.as_deref()) {
                break 'pick (up, policy, rewritten, None);
            }
            return Err(ProxyError::BackendUnavailable { reason });
        };
        match table.pick(cluster) {
            Pick::To(upstream) => {
                let pages = fallback::ErrorPages::new(&table, m.route, cluster);
                (upstream, policy, rewritten, pages)
            }
            Pick::NoEndpoints => {
                if let Some(up) = fallback::default_backend(&table, policy.as_deref()) {
                    break 'pick (up, policy, rewritten, None);
                }
                return Err(ProxyError::NoEndpoints {
                    service: cluster.service.clone(),
                    port: cluster.port,
                });
            }
        }
    };
    let new_path = match (rewritten, path) {
        (Some(p), _) | (None, Cow::Owned(p)) => Some(p),
        (None, Cow::Borrowed(_)) => None,
    };

    let upgrade = wants_upgrade(&req);
    let client_upgrade = upgrade.then(|| cx.upgrade.take()).flatten();
    let cors = crate::cors::answer(policy.as_deref(), req.headers());
    let mirror = policy
        .as_ref()
        .and_then(|p| p.mirror.as_ref())
        .filter(|m| !upgrade && crate::mirror::sampled(m));
    // The request is changed where it is: it is large, and moved only as a box.
    if let Some(p) = &mut pages {
        p.keep_target(req.method(), req.uri());
    }
    set_origin_form(req.uri_mut(), new_path)?;
    if req.version() == Version::HTTP_2 {
        join_cookies(req.headers_mut());
    }
    *req.version_mut() = Version::HTTP_11;
    // The gateway's X-Forwarded-* headers and the route's request header edits go
    // straight into the upstream request head, unless the header map travels on (an
    // upgrade, a mirror copy) or a header edit names the forwarding headers.
    let in_map = upgrade
        || mirror.is_some()
        || policy.as_deref().is_some_and(|p| {
            p.request_head_plan()
                .edited
                .iter()
                .any(ForwardHeaders::replaces)
        });
    // One growth of the map for every header added below, not one per insert.
    let added = usize::from(from_authority || host.is_none())
        + if in_map {
            5 + policy
                .as_deref()
                .map_or(0, RoutePolicy::request_headers_added)
        } else {
            0
        };
    if added > 0 {
        req.headers_mut().reserve(added);
    }
    let forwarded = prepare_request_headers(
        req.headers_mut(),
        cx,
        host.as_ref(),
        from_authority,
        upgrade,
    );
    let forwarded = if in_map {
        forwarded.insert_into(req.headers_mut());
        if let Some(p) = &policy {
            p.edit_request(req.headers_mut());
        }
        None
    } else {
        Some(forwarded)
    };
    let mut forwarded = forwarded;
    if let Some(p) = &mut pages
        && let Some(f) = forwarded.take()
    {
        // The error page request is built from the header map: it needs both again.
        p.keep_head_extras(f, policy.clone());
    }
    let extras = forwarded
        .as_ref()
        .or_else(|| pages.as_ref().and_then(fallback::ErrorPages::forwarded))
        .map(|f| HeadExtras {
            forwarded: f,
            edits: policy.as_deref(),
        });
    let sent_at = log.is_some().then(Instant::now);
    if let Some(log) = log.as_deref_mut() {
        log.upstream = Some(upstream.clone());
    }
    let sent = match mirror {
        None => {
            cx.worker
                .pool
                .send(&upstream, req, extras.as_ref(), upgrade, &cx.worker.metrics)
                .await?
        }
        // Rare, so boxed: the future of every request is as large as its largest state.
        Some(m) => Box::pin(crate::mirror::send(&cx.worker, m, &upstream, req)).await?,
    };
    let status = match &sent {
        Sent::Plain { head, .. } => head.status,
        Sent::Upgrade { response, .. } => response.status(),
    };
    if let Some(log) = log.as_deref_mut() {
        log.upstream_status = Some(status.as_u16());
        log.upstream_time = sent_at.map(|t| t.elapsed());
    }
    match sent {
        Sent::Plain {
            head,
            conn,
            headers: sent_headers,
        } => {
            if head.status == StatusCode::SWITCHING_PROTOCOLS {
                return Err(ProxyError::BadResponse {
                    upstream,
                    reason: "101 Switching Protocols to a request that asked for no upgrade",
                });
            }
            let mut response = head.into_response(conn);
            if let Some(pages) = pages.filter(|p| p.intercepts(response.status())) {
                materialize(&mut response);
                response = Box::pin(pages.answer(&cx.worker, response, sent_headers, log)).await;
            }
            // Headers kept as received (see `RawHeaders`) are written out with the
            // hop-by-hop ones left out, and the map's replacing received ones of the same
            // name; edits that need more than that see them all in the map first. The
            // map then only holds what the gateway set.
            if response.body().raw_headers().is_none() {
                strip_hop_by_hop(response.headers_mut(), false);
            }
            if let Some(c) = &cors {
                materialize(&mut response);
                c.apply(response.headers_mut());
            }
            if let Some(p) = &policy {
                if needs_all_headers(p, &response) {
                    materialize(&mut response);
                }
                if response.body().raw_headers().is_some() {
                    // Updates and additions only: the server writes them beside the
                    // received headers.
                    response.body_mut().defer_edits(Arc::clone(p));
                } else {
                    edit_response(cx, p, response.headers_mut(), &upstream, host_str);
                }
            }
            Ok(Forwarded::Plain(response))
        }
        Sent::Upgrade { mut response, conn } => {
            let switched = response.status() == StatusCode::SWITCHING_PROTOCOLS;
            strip_hop_by_hop(response.headers_mut(), switched);
            if let Some(c) = &cors {
                c.apply(response.headers_mut());
            }
            if let Some(p) = &policy {
                edit_response(cx, p, response.headers_mut(), &upstream, host_str);
            }
            if let (true, Some(client)) = (switched, client_upgrade) {
                let server = hyper::upgrade::on(&mut response);
                spawn_tunnel(&cx.worker, client, server, conn, upstream);
            }
            Ok(Forwarded::Hyper(response))
        }
    }
}

/// The redirect `route` answers this request with, response header edits applied.
fn redirect(
    cx: &ConnCtx,
    route: &Route,
    req: &Request<RequestBody>,
    host: &str,
    path: &str,
) -> Option<Response<()>> {
    let host = host_without_port(host).to_ascii_lowercase();
    let vars = RedirectVars {
        scheme: if cx.tls { "https" } else { "http" },
        host: &host,
        request_uri: req.uri().path_and_query().map_or("/", PathAndQuery::as_str),
        uri: path,
    };
    let (status, location) = route.redirect_for(cx.tls, &vars)?;
    let mut response = Response::new(());
    *response.status_mut() = status;
    response.headers_mut().insert(LOCATION, location);
    if let Some(c) = crate::cors::answer(route.policy.as_deref(), req.headers()) {
        c.apply(response.headers_mut());
    }
    if let Some(p) = &route.policy {
        p.response_headers.apply(response.headers_mut());
    }
    Some(response)
}

/// Whether the policy's response edits need every header in the map: a location rewrite
/// reads `Location`, a removal must reach received headers, and an added header must not
/// replace a received one of the same name. Updates replace received headers as they are.
fn needs_all_headers(policy: &RoutePolicy, response: &Response<UpstreamBody>) -> bool {
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
fn edit_response(
    cx: &ConnCtx,
    policy: &RoutePolicy,
    headers: &mut HeaderMap,
    upstream: &Upstream,
    host: &str,
) {
    if policy.location_rewrite.is_some() {
        let scheme = if cx.tls { "https" } else { "http" };
        policy.rewrite_locations(
            headers,
            &upstream.to_string(),
            &format!("{scheme}://{host}"),
        );
    }
    policy.response_headers.apply(headers);
}

/// `host[:port]` or `[v6][:port]` without the port.
fn host_without_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |i| &host[..=i]);
    }
    host.split_once(':').map_or(host, |(h, _)| h)
}

fn bad(reason: &'static str) -> ProxyError {
    ProxyError::BadRequest { reason }
}

/// The request's host: the URI authority (HTTP/2 `:authority`, or an HTTP/1.1
/// absolute-form target, which wins over `Host` per RFC 9112 section 3.2.2), else the one
/// `Host` header. The flag says it came from the authority.
fn request_host<B>(req: &Request<B>) -> Result<(Option<HeaderValue>, bool), ProxyError> {
    if let Some(authority) = req.uri().authority() {
        let s = authority.as_str();
        let s = s.rsplit_once('@').map_or(s, |(_, host)| host);
        let v = HeaderValue::from_str(s).map_err(|_| bad("the authority is not a valid host"))?;
        return Ok((Some(v), true));
    }
    let mut hosts = req.headers().get_all(HOST).iter();
    match (hosts.next(), hosts.next()) {
        (Some(_), Some(_)) => Err(bad("more than one Host header")),
        (Some(h), None) => Ok((Some(h.clone()), false)),
        (None, _) if req.version() == Version::HTTP_11 => {
            Err(bad("an HTTP/1.1 request must have a Host header"))
        }
        (None, _) => Ok((None, false)),
    }
}

/// Rewrites the target to origin form (`/path?query`), with the normalised path when it
/// differs from the one received.
fn set_origin_form(uri: &mut Uri, new_path: Option<String>) -> Result<(), ProxyError> {
    match new_path {
        Some(mut path) => {
            if let Some(q) = uri.query() {
                // A rewrite that adds a query keeps the request's after it, as nginx does.
                path.push(if path.contains('?') { '&' } else { '?' });
                path.push_str(q);
            }
            *uri = Uri::try_from(path).map_err(|_| bad("the path is not a valid URI path"))?;
        }
        None if uri.scheme().is_some() || uri.authority().is_some() => {
            let pq = uri
                .path_and_query()
                .cloned()
                .unwrap_or_else(|| PathAndQuery::from_static("/"));
            *uri = Uri::from(pq);
        }
        None => {}
    }
    Ok(())
}

/// Whether an HTTP/1.1 request asks to switch protocols (WebSocket and others).
fn wants_upgrade<B>(req: &Request<B>) -> bool {
    req.version() == Version::HTTP_11
        && req.headers().contains_key(UPGRADE)
        && connection_has(req.headers(), "upgrade")
}

fn connection_has(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Removes hop-by-hop headers, sets `Host` when it came as the URI authority, and returns
/// the gateway's own forwarding headers for this request.
fn prepare_request_headers(
    headers: &mut HeaderMap,
    cx: &ConnCtx,
    host: Option<&HeaderValue>,
    from_authority: bool,
    upgrade: bool,
) -> ForwardHeaders {
    strip_hop_by_hop(headers, upgrade);
    match host {
        Some(h) if from_authority => {
            headers.insert(HOST, h.clone());
        }
        Some(_) => {}
        // HTTP/1.0 without Host: an empty Host is what RFC 9112 asks for.
        None => {
            headers.insert(HOST, HeaderValue::from_static(""));
        }
    }
    ForwardHeaders::new(
        Rc::clone(&cx.forward),
        forwarded_for(headers, cx.forward.peer_ip()),
        host.cloned(),
    )
}

/// HTTP/2 clients may split `Cookie` into several fields; an HTTP/1.1 upstream gets them
/// as one, joined by `; ` (RFC 9113 section 8.2.3).
fn join_cookies(headers: &mut HeaderMap) {
    let mut values = headers.get_all(COOKIE).iter();
    let (Some(_), Some(_)) = (values.next(), values.next()) else {
        return;
    };
    let joined = headers
        .get_all(COOKIE)
        .iter()
        .map(HeaderValue::as_bytes)
        .collect::<Vec<_>>()
        .join(&b"; "[..]);
    if let Ok(value) = HeaderValue::from_bytes(&joined) {
        headers.insert(COOKIE, value);
    }
}

/// `X-Forwarded-For` with the client address appended to what the client sent, as
/// ingress-nginx does; `None` when the client sent none (the address alone).
fn forwarded_for(headers: &HeaderMap, ip: &HeaderValue) -> Option<HeaderValue> {
    let mut prior = headers.get_all(X_FORWARDED_FOR).iter();
    let first = prior.next()?;
    let mut buf = BytesMut::with_capacity(first.len() + ip.len() + 16);
    buf.extend_from_slice(first.as_bytes());
    for v in prior {
        buf.extend_from_slice(b", ");
        buf.extend_from_slice(v.as_bytes());
    }
    buf.extend_from_slice(b", ");
    buf.extend_from_slice(ip.as_bytes());
    HeaderValue::from_maybe_shared(buf.freeze()).ok()
}

/// The fixed hop-by-hop names, as bits of the set `strip_hop_by_hop` finds.
const HOP_BY_HOP: [HeaderName; 8] = [
    CONNECTION,
    TE,
    TRAILER,
    TRANSFER_ENCODING,
    UPGRADE,
    EXPECT,
    KEEP_ALIVE,
    PROXY_CONNECTION,
];
const CONNECTION_BIT: u8 = 1;
const UPGRADE_BIT: u8 = 1 << 4;

/// The bit of a hop-by-hop name in `HOP_BY_HOP`, if it is one. Names are lower case.
fn hop_bit(name: &HeaderName) -> u8 {
    match name.as_str() {
        "connection" => 1,
        "te" => 1 << 1,
        "trailer" => 1 << 2,
        "transfer-encoding" => 1 << 3,
        "upgrade" => 1 << 4,
        "expect" => 1 << 5,
        "keep-alive" => 1 << 6,
        "proxy-connection" => 1 << 7,
        _ => 0,
    }
}

/// Removes the headers that belong to one connection (RFC 9110 section 7.6.1): the ones
/// `Connection` names, and `Connection`, `Keep-Alive`, `Proxy-Connection`, `TE`, `Trailer`,
/// `Transfer-Encoding` and `Upgrade`. An upgrade keeps `Upgrade` and `Connection: upgrade`.
/// `Expect` goes too: the gateway answered `100-continue` itself when it started reading
/// the request body.
fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    // One pass over the names finds which are present (most messages carry none, or only
    // `Connection`), so only those are looked up again to be removed.
    let mut present = headers.keys().fold(0u8, |bits, name| bits | hop_bit(name));
    if keep_upgrade {
        present &= !UPGRADE_BIT;
    }
    if present & CONNECTION_BIT != 0 {
        remove_connection_named(headers);
    }
    for (i, name) in HOP_BY_HOP.iter().enumerate() {
        if present & (1 << i) != 0 {
            headers.remove(name);
        }
    }
    if keep_upgrade {
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

/// Removes the headers the `Connection` header names (never `Host`).
fn remove_connection_named(headers: &mut HeaderMap) {
    let mut named: Vec<HeaderName> = Vec::new();
    for value in headers.get_all(CONNECTION) {
        let Ok(value) = value.to_str() else { continue };
        for token in value.split(',').map(str::trim) {
            if token.is_empty()
                || token.eq_ignore_ascii_case("close")
                || token.eq_ignore_ascii_case("keep-alive")
                || token.eq_ignore_ascii_case("upgrade")
            {
                continue;
            }
            if let Ok(name) = HeaderName::from_bytes(token.as_bytes())
                && name != HOST
            {
                named.push(name);
            }
        }
    }
    for name in named {
        headers.remove(name);
    }
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

fn report(e: &ProxyError) {
    match e.blame() {
        Blame::Upstream if e.upstream().is_some() => {
            tracing::warn!(error = %Chain(e), "request failed upstream");
        }
        _ => tracing::debug!(error = %Chain(e), status = e.status().as_u16(), "request refused"),
    }
}

/// The gateway's own answer to a request it could not proxy: the status and a short text.
fn error_response(e: &ProxyError, guard: InFlight) -> Response<ProxyBody> {
    let status = e.status();
    let text: &'static str = match status {
        StatusCode::BAD_REQUEST => "400 Bad Request\n",
        StatusCode::NOT_FOUND => "404 Not Found\n",
        StatusCode::METHOD_NOT_ALLOWED => "405 Method Not Allowed\n",
        StatusCode::BAD_GATEWAY => "502 Bad Gateway\n",
        StatusCode::SERVICE_UNAVAILABLE => "503 Service Unavailable\n",
        StatusCode::GATEWAY_TIMEOUT => "504 Gateway Timeout\n",
        _ => "500 Internal Server Error\n",
    };
    let mut response = Response::new(ProxyBody::full(Bytes::from_static(text.as_bytes()), guard));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_named_headers_and_hop_by_hop_headers_are_removed() {
        let mut h = HeaderMap::new();
        h.insert(
            CONNECTION,
            HeaderValue::from_static("keep-alive, X-Secret, host"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert(HOST, HeaderValue::from_static("a.example"));
        h.insert(KEEP_ALIVE, HeaderValue::from_static("timeout=5"));
        h.insert(PROXY_CONNECTION, HeaderValue::from_static("keep-alive"));
        h.insert(TE, HeaderValue::from_static("trailers"));
        h.insert(TRAILER, HeaderValue::from_static("x-sum"));
        h.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        h.insert(UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(EXPECT, HeaderValue::from_static("100-continue"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h, false);
        let left: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["host", "x-kept"]);
    }

    #[test]
    fn split_cookies_are_joined_for_http11() {
        let mut h = HeaderMap::new();
        h.append(COOKIE, HeaderValue::from_static("a=1"));
        h.append(COOKIE, HeaderValue::from_static("b=2"));
        join_cookies(&mut h);
        assert_eq!(h.get_all(COOKIE).iter().collect::<Vec<_>>(), ["a=1; b=2"]);
    }

    #[test]
    fn hop_bits_follow_the_table() {
        for (i, name) in HOP_BY_HOP.iter().enumerate() {
            assert_eq!(hop_bit(name), 1 << i, "{name}");
        }
        assert_eq!(hop_bit(&HOST), 0);
    }

    #[test]
    fn upgrade_keeps_upgrade_and_connection_upgrade_only() {
        let mut h = HeaderMap::new();
        h.insert(CONNECTION, HeaderValue::from_static("Upgrade, keep-alive"));
        h.insert(UPGRADE, HeaderValue::from_static("websocket"));
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h[CONNECTION], "upgrade");
        assert_eq!(h[UPGRADE], "websocket");
        let mut plain = HeaderMap::new();
        plain.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut plain, false);
        assert_eq!(plain.len(), 1);
    }

    #[test]
    fn forwarded_for_appends_the_client_to_every_prior_hop() {
        let ip = HeaderValue::from_static("10.0.0.9");
        let mut h = HeaderMap::new();
        // The client address alone is written from the connection's lines.
        assert_eq!(forwarded_for(&h, &ip), None);
        h.append(X_FORWARDED_FOR, HeaderValue::from_static("1.1.1.1"));
        h.append(
            X_FORWARDED_FOR,
            HeaderValue::from_static("2.2.2.2, 3.3.3.3"),
        );
        assert_eq!(
            forwarded_for(&h, &ip).unwrap(),
            "1.1.1.1, 2.2.2.2, 3.3.3.3, 10.0.0.9"
        );
    }

    #[test]
    fn targets_become_origin_form_with_the_normalised_path_and_the_query_kept() {
        let mut uri: Uri = "https://a.example/x/../y?q=1".parse().unwrap();
        set_origin_form(&mut uri, Some("/y".to_owned())).unwrap();
        assert_eq!(uri, "/y?q=1");
        let mut uri: Uri = "http://a.example/z?k".parse().unwrap();
        set_origin_form(&mut uri, None).unwrap();
        assert_eq!(uri.to_string(), "/z?k");
        let mut uri: Uri = "/same".parse().unwrap();
        set_origin_form(&mut uri, None).unwrap();
        assert_eq!(uri, "/same");
    }

    #[test]
    fn upgrade_needs_http11_upgrade_and_the_connection_token() {
        let req = |v: Version, conn: &'static str| {
            Request::builder()
                .version(v)
                .header(UPGRADE, "websocket")
                .header(CONNECTION, conn)
                .body(())
                .unwrap()
        };
        assert!(wants_upgrade(&req(Version::HTTP_11, "keep-alive, Upgrade")));
        assert!(!wants_upgrade(&req(Version::HTTP_11, "keep-alive")));
        assert!(!wants_upgrade(&req(Version::HTTP_10, "upgrade")));
    }
}
