//! Handling one request, phase by phase (the order is in [`crate::phases`]): the request
//! head ([`head`]), then route, access, decision and upstream selection under one look at
//! the table ([`select`]), the exchange with the upstream ([`exchange`]) and the response
//! ([`respond`]); the log phase runs when the response body ends ([`crate::body`]). The
//! gateway's own policies, which these phases call, are in [`crate::policy`].

mod auth;
mod exchange;
mod head;
mod hop;
mod protocol;
mod rare;
mod respond;
mod select;
#[cfg(test)]
mod sizes;

use std::borrow::Cow;
use std::cell::Cell;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::Incoming;
use mse_router::{InvalidPath, decoded_request_path, request_path};
use tokio::sync::watch;

use crate::body::{BodyCheck, InFlight, ProxyBody, RequestBody};
use crate::error::ProxyError;
use crate::forwarded::{ConnForward, X_REQUEST_ID};
use crate::http1::{PendingUpgrade, Stop, UpstreamBody, materialize};

use crate::log::{AccessRecord, LogFormat};
use crate::log_writer::{RequestId, valid_request_id};
use crate::metrics::Metrics;
use crate::phases::{RequestInfo, Steps};
use crate::policy::compress::Compression;
use crate::policy::limit::ConnSlot;
use crate::policy::load::LoadGuard;
use crate::policy::{mirror, retry, shared_limit};
use crate::stats::{Outcome, Tally};
use crate::table::SharedTable;
use crate::tls::ConnTls;
use crate::upstream::{Pool, Sent};

use self::head::Target;
use self::rare::Rare;
use self::select::Choice;

/// What one worker thread shares between its connections.
pub(crate) struct Worker {
    pub(crate) table: SharedTable,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) pool: Pool,
    /// The steps an embedding team registered; empty for most gateways.
    pub(crate) steps: Steps,
    /// HTTP/1.1 client connections and upgraded connections hold a receiver; shutdown
    /// waits until all are dropped.
    pub(crate) live: watch::Sender<()>,
    /// Tells HTTP/1.1 client connections to stop.
    pub(crate) stop: Stop,
    /// Basic-auth credentials this worker accepted, and its bcrypt slots.
    pub(crate) auth_cache: crate::policy::basic_auth::AuthCache,
    /// The TLS client for `https` `auth-url`s, made on first use.
    pub(crate) auth_tls: crate::policy::auth_tls::AuthTls,
    /// `auth-url` answers this worker remembers (`auth-cache-key`).
    pub(crate) auth_answers: crate::policy::external_auth::Answers,
    /// The retries this worker may still send (`proxy-next-upstream`).
    pub(crate) budget: crate::policy::retry::Budget,
    /// Client connections open (`max-worker-connections` bounds them).
    pub(crate) open: Cell<usize>,
    /// Whether the last connection accepted was closed for the limit (logged once until
    /// one is served again).
    pub(crate) full: Cell<bool>,
    /// This worker's per-route request counters.
    pub(crate) stats: crate::stats::WorkerStats,
    /// Access log lines not written yet.
    pub(crate) log: crate::log_writer::LogBuffer,
    /// `X-Request-ID`s for requests without one.
    pub(crate) ids: crate::log_writer::RequestIds,
    /// The forwarding lines of the last connection accepted.
    pub(crate) last_forward: crate::forwarded::LastForward,
}

/// What one client connection shares between its requests.
pub(crate) struct ConnCtx {
    pub(crate) worker: Rc<Worker>,
    pub(crate) peer: SocketAddr,
    pub(crate) tls: bool,
    /// What the TLS handshake settled (server name, policy, client certificate).
    pub(crate) tls_conn: Option<Box<ConnTls>>,
    /// The format its requests are logged with, `None` when they are not: the access log
    /// settings of the table being served when the connection was accepted (like nginx, a
    /// connection keeps the configuration it started with).
    pub(crate) access_log: Option<Arc<LogFormat>>,
    /// The forwarding headers that are the same for every request of the connection.
    pub(crate) forward: Rc<ConnForward>,
    /// While an HTTP/1.1 upgrade request is handled: the client's socket once the `101`
    /// answer is written.
    pub(crate) upgrade: Cell<Option<PendingUpgrade>>,
    /// Response compression, as the table served when the connection was accepted says;
    /// `None` when it is off.
    pub(crate) compression: Option<Arc<Compression>>,
    /// `generate-request-id`, as that table says.
    pub(crate) generate_ids: bool,
    /// Tracing, as that table says; `None` when it is off.
    pub(crate) tracing: Option<Arc<crate::otel::Tracer>>,
}

/// An answer ready to relay.
enum Forwarded {
    /// From the inline client.
    Plain(Response<UpstreamBody>),
    /// From hyper's client (upgrade requests).
    Hyper(Response<Incoming>),
    /// The gateway's own answer (a redirect, a CORS preflight, a step's answer).
    Local(Response<Bytes>),
}

// === impl ConnCtx ===

impl ConnCtx {
    pub(crate) fn new(
        worker: Rc<Worker>,
        peer: SocketAddr,
        tls: bool,
        local_port: u16,
        access_log: Option<Arc<LogFormat>>,
    ) -> Self {
        let forward = worker.last_forward.get(peer.ip(), tls, local_port);
        Self {
            worker,
            peer,
            tls,
            tls_conn: None,
            access_log,
            forward,
            upgrade: Cell::new(None),
            compression: None,
            generate_ids: true,
            tracing: None,
        }
    }
}

impl ConnCtx {
    /// The connection came over TLS with this handshake.
    pub(crate) fn with_tls(mut self, conn: ConnTls) -> Self {
        self.tls_conn = Some(Box::new(conn));
        self
    }

    /// Its answers are compressed as `compression` says.
    pub(crate) fn with_compression(mut self, compression: Option<Arc<Compression>>) -> Self {
        self.compression = compression;
        self
    }

    /// Its requests get an `X-Request-ID` when they have none as `generate` says, and
    /// spans as `tracing` says.
    pub(crate) fn with_ids(
        mut self,
        generate: bool,
        tracing: Option<Arc<crate::otel::Tracer>>,
    ) -> Self {
        self.generate_ids = generate;
        self.tracing = tracing;
        self
    }
}

/// The service of every client connection: always answers, never fails.
pub(crate) async fn handle(
    cx: Rc<ConnCtx>,
    req: Box<Request<RequestBody>>,
) -> Result<Response<ProxyBody>, Infallible> {
    let guard = InFlight::new(&cx.worker);
    let mut tally = Tally::start(&req);
    // Nothing is recorded when the connection's table turns the log off.
    let mut log = cx
        .access_log
        .as_ref()
        .map(|f| AccessRecord::new(f, cx.peer, cx.tls, &req));
    let mut req = req;
    // Tracing: a sampled request's span, which reads what the log record collects.
    let span = match &cx.tracing {
        Some(t) => crate::otel::start(t, &mut req),
        None => None,
    };
    if span.is_some() && log.is_none() {
        log = Some(AccessRecord::unlogged(cx.peer, cx.tls, &req));
    }
    let mut new_id = request_id(&cx, &mut req, log.as_deref_mut());
    if !cx.worker.steps.is_empty()
        && let Some(id) = new_id.take()
    {
        // Registered steps see the request's header map: the id is in it.
        req.headers_mut().insert(X_REQUEST_ID, id.value());
    }
    // What registered steps see of the request; nothing at all without them.
    // Boxed, so that gateways without steps do not carry its room in every request's
    // future.
    let mut info =
        (!cx.worker.steps.is_empty()).then(|| Box::new(RequestInfo::new(cx.peer, cx.tls, &req)));
    // The in-flight count of `least_conn` and `random`: held until the body ends.
    let mut load = None;
    // The count against `limit-connections`: held until the body ends too.
    let mut slot = None;
    let held = (&mut load, &mut slot);
    // Response compression: the codings the client accepts, read before the request
    // goes upstream.
    let negotiated = cx.compression.as_ref().map(|c| c.negotiate(&req));
    let forwarded = forward(
        &cx,
        (req, new_id),
        (log.as_deref_mut(), &mut tally),
        info.as_deref_mut(),
        held,
    )
    .await;
    let mut response = match forwarded {
        Ok(answer) => answer.into_response(guard.with_load(load).with_slot(slot)),
        Err(e) => {
            tally.outcome |= outcome_of(&e);
            respond::report(&e);
            respond::error_response(&e, guard)
        }
    };
    if let Some(info) = &info {
        respond::run_steps(&cx.worker.steps, info, &mut response);
    }
    if let (Some(c), Some(n)) = (&cx.compression, negotiated) {
        c.apply(n, &mut response);
    }
    // The log phase: counted now, logged when the body ends.
    let status = response.status().as_u16();
    cx.worker.metrics.count_status(status);
    tally.status = status;
    response.body_mut().set_tally(tally, log);
    if span.is_some() {
        response.body_mut().set_span(span);
    }
    Ok(response)
}

/// The request's `X-Request-ID`: the client's when it is valid, which stays in the header
/// map, else a new one, returned: it goes upstream with the request, written into the
/// head beside the forwarding headers (or into the map where that travels on, see
/// [`exchange::prepare`]), as ingress-nginx sends `$req_id`. With `generate-request-id:
/// "false"` none is made, and a client's goes upstream as it came.
#[inline]
fn request_id(
    cx: &ConnCtx,
    req: &mut Request<RequestBody>,
    log: Option<&mut AccessRecord>,
) -> Option<RequestId> {
    // The parser noted whether the request has one; most have none.
    if req.body().present().request_id() {
        return client_request_id(cx, req, log);
    }
    if !cx.generate_ids {
        return None;
    }
    let id = cx.worker.ids.next();
    if let Some(log) = log {
        log.request_id = Some(id.value());
    }
    Some(id)
}

/// [`request_id`] of a request that may have one: kept when it is valid, else replaced.
#[inline(never)]
fn client_request_id(
    cx: &ConnCtx,
    req: &mut Request<RequestBody>,
    log: Option<&mut AccessRecord>,
) -> Option<RequestId> {
    if let Some(v) = req
        .headers()
        .get(&X_REQUEST_ID)
        .filter(|v| valid_request_id(v))
    {
        if let Some(log) = log {
            log.request_id = Some(v.clone());
        }
        return None;
    }
    if !cx.generate_ids {
        return None;
    }
    // Invalid ones are replaced.
    req.headers_mut().remove(&X_REQUEST_ID);
    let id = cx.worker.ids.next();
    if let Some(log) = log {
        log.request_id = Some(id.value());
    }
    Some(id)
}

/// What an error says for the per-route counters.
fn outcome_of(e: &ProxyError) -> u8 {
    match e {
        ProxyError::Connect { .. } | ProxyError::Resolve { .. } => Outcome::CONNECT_ERROR,
        ProxyError::ConnectTimeout { .. } => Outcome::CONNECT_ERROR | Outcome::TIMEOUT,
        ProxyError::ResponseTimeout { .. } => Outcome::TIMEOUT,
        ProxyError::AuthUnavailable { .. } => Outcome::AUTH_REFUSED,
        _ => 0,
    }
}

/// The phases from the request head to the response. Each phase is a plain function;
/// the two waits (the upstream's answer, an error page) are here, so that no phase adds a
/// future of its own to every request.
async fn forward(
    cx: &ConnCtx,
    (mut req, mut new_id): (Box<Request<RequestBody>>, Option<RequestId>),
    (mut log, tally): (Option<&mut AccessRecord>, &mut Tally),
    mut info: Option<&mut RequestInfo>,
    (load, slot): (&mut Option<LoadGuard>, &mut Option<Box<ConnSlot>>),
) -> Result<Forwarded, ProxyError> {
    // Request head.
    let target = Target::read(&req)?;
    let host = target.host_str()?;
    // Route, access, decision, upstream selection.
    let (chosen, new_path) = {
        // Normalised once: the same path is matched and forwarded. Paths that servers
        // read differently (a backslash, an encoded separator, `..;`) are refused.
        let raw = req.uri().path();
        let path = match request_path(raw) {
            Ok(path) => path,
            Err(e) => decoded_or_refused(cx, raw, e)?,
        };
        let choice = select::choose(
            cx,
            &req,
            (host, &*path),
            (log.as_deref_mut(), &mut *tally),
            info.as_deref_mut(),
        )?;
        match choice {
            Choice::Answer(answer) => return Ok(Forwarded::Local(*answer)),
            Choice::Forward(mut chosen) => {
                let rare = chosen.rare.as_deref_mut();
                let (pending, taken, shared) = rare.map_or((None, None, None), |r| {
                    (r.auth.take(), r.slot.take(), r.shared_limit.take())
                });
                *slot = taken;
                // Access: the limits shared by the replicas, for the routes that have them.
                if let Some(limiter) = shared {
                    let vars = shared_limit::vars(cx.tls, &req, host, &path);
                    match Box::pin(limiter.admit(&vars)).await {
                        Ok(Some(held)) => ConnSlot::hold_shared(slot, held),
                        Ok(None) => {}
                        Err(answer) => {
                            tally.outcome |= Outcome::RATE_LIMITED;
                            return Ok(Forwarded::Local(answer));
                        }
                    }
                }
                // Access: authentication that waits, for the routes that have it.
                let (auth, new_path) = match pending {
                    Some(p) => {
                        let path_seen = String::from(&*path);
                        let new_path = chosen.new_path(path);
                        // The authentication request carries the request's headers.
                        if let Some(id) = new_id.take() {
                            req.headers_mut().insert(X_REQUEST_ID, id.value());
                        }
                        let verdict = auth::run(cx, p, &req, host, &path_seen);
                        (Some(Box::pin(verdict).await?), new_path)
                    }
                    None => (None, chosen.new_path(path)),
                };
                match auth {
                    Some(auth::Verdict::Answer(answer)) => {
                        if answer.status().is_client_error() {
                            tally.outcome |= Outcome::AUTH_REFUSED;
                        }
                        return Ok(Forwarded::Local(*answer));
                    }
                    Some(auth::Verdict::Pass(headers, cookies)) => {
                        set_headers(&mut req, headers);
                        if cookies.is_some() {
                            Rare::get(&mut chosen.rare).auth_cookies = cookies;
                        }
                    }
                    None => {}
                }
                (chosen, new_path)
            }
        }
    };
    // Access: the body limit, known now that the route (or its canary) is.
    if let Some(limit) = chosen.body_limit {
        match req.body().check(limit) {
            BodyCheck::Pass => {}
            BodyCheck::TooLarge => return Err(ProxyError::PayloadTooLarge { limit }),
            // Rare: a body of unknown length under a limit, counted as it streams.
            BodyCheck::Count => req = Box::new(req.map(|b| b.counted(limit))),
        }
    }
    // Exchange.
    let mut prepared = exchange::prepare(cx, &mut req, &target, (chosen, new_path), info, new_id)?;
    if let Some(protocol) = prepared.rare.as_mut().and_then(|r| r.protocol.take()) {
        // Rare, so boxed: TLS or HTTP/2 to the upstream.
        if let Some(log) = log.as_deref_mut() {
            log.upstream = Some(prepared.upstream.clone());
        }
        return Box::pin(protocol::forward(
            cx,
            protocol,
            prepared,
            req,
            (log, tally),
            load,
            host,
        ))
        .await;
    }
    let sent_at = Instant::now();
    if let Some(log) = log.as_deref_mut() {
        log.upstream = Some(prepared.upstream.clone());
    }
    let route_timeout = cx.worker.pool.has_route_timeout();
    // The in-flight count of the route's balancing, held until the body ends; a retry
    // moves it to the endpoint it goes to.
    let mut held = prepared.rare.as_mut().and_then(|r| r.extras.load.take());
    let sent = match (prepared.mirror(), prepared.exchange(route_timeout)) {
        // Rare, so boxed: the route's own timeouts or retries.
        (None, Some(policy)) => {
            let upstream = prepared.upstream.clone();
            let endpoints = prepared.rare.as_ref().and_then(|r| r.endpoints.as_ref());
            let extras = prepared.extras();
            let send = retry::send(
                &cx.worker,
                policy,
                (upstream, endpoints),
                &mut held,
                &mut req,
                extras.as_ref(),
            );
            let (sent, used) = Box::pin(send).await?;
            if used != prepared.upstream {
                tally.outcome |= Outcome::RETRIED;
                failed_over(cx, &mut prepared, &used, &req);
            }
            let headers = std::mem::take(req.headers_mut());
            if let Some(log) = log.as_deref_mut() {
                log.upstream = Some(used.clone());
            }
            prepared.upstream = used;
            sent.with_headers(headers)
        }
        (None, None) if !prepared.upgrade => {
            let extras = prepared.extras();
            let pool = &cx.worker.pool;
            let mut waits = pool.waits(None);
            waits.sent_at = Some(sent_at);
            let metrics = &cx.worker.metrics;
            cx.worker.budget.request();
            let mut sent = match pool
                .send_plain(
                    &prepared.upstream,
                    &mut req,
                    extras.as_ref(),
                    metrics,
                    waits,
                )
                .await
            {
                Ok(sent) => sent,
                // Rare, so boxed: the connection did not open; another endpoint.
                Err(e) => {
                    let first = &prepared.upstream;
                    // A retry's response timeout counts from its own sending.
                    let mut waits = waits;
                    waits.sent_at = None;
                    let other =
                        retry::refused(&cx.worker, e, first, &mut req, extras.as_ref(), waits);
                    let (sent, used) = Box::pin(other).await?;
                    if let Some(log) = log.as_deref_mut() {
                        log.upstream = Some(used.clone());
                    }
                    tally.outcome |= Outcome::RETRIED;
                    failed_over(cx, &mut prepared, &used, &req);
                    prepared.upstream = used;
                    sent
                }
            };
            // Only an error page request needs the headers as sent; the answer is large,
            // and handing them over moves it.
            if prepared.pages.is_some() {
                sent = sent.with_headers(std::mem::take(req.headers_mut()));
            }
            sent
        }
        // Rare, so boxed: an upgrade, on a connection of its own.
        (None, None) => {
            let metrics = &cx.worker.metrics;
            let upgrade = cx
                .worker
                .pool
                .send_upgrade(&prepared.upstream, *req, metrics);
            Box::pin(upgrade).await?
        }
        // Rare, so boxed: the future of every request is as large as its largest state.
        (Some(m), _) => Box::pin(mirror::send(&cx.worker, m, &prepared.upstream, req)).await?,
    };
    tally.upstream_answered(sent_at);
    exchange::log_sent(log.as_deref_mut(), &sent);
    *load = held;
    // Response.
    match sent {
        Sent::Plain {
            head,
            conn,
            headers: sent_headers,
        } => {
            let mut response = respond::plain(head, conn, &prepared.upstream)?;
            if let Some(pages) = prepared
                .pages
                .take()
                .filter(|p| p.intercepts(response.status()))
            {
                materialize(&mut response);
                response = Box::pin(pages.answer(&cx.worker, response, sent_headers, log)).await;
            }
            respond::finish(cx, &mut response, &prepared, host);
            Ok(Forwarded::Plain(response))
        }
        Sent::Upgrade { response, conn } => Ok(Forwarded::Hyper(respond::upgraded(
            cx, response, conn, prepared, host,
        ))),
    }
}

/// A request that failed over to `used`: with `session-cookie-change-on-failure`, its
/// answer points the client's affinity cookie there.
#[cold]
fn failed_over(
    cx: &ConnCtx,
    prepared: &mut exchange::Prepared,
    used: &crate::upstream::Upstream,
    req: &Request<RequestBody>,
) {
    let table = &cx.worker.table;
    let headers = (req.headers(), cx.tls);
    let policy = prepared.policy.as_deref();
    if let Some(c) = crate::policy::balance::failed_over(table, policy, used, headers) {
        Rare::get(&mut prepared.rare).extras.set_cookie = Some(c);
    }
}

/// Sets the `auth-response-headers` of the authentication answer on the request, in place
/// of the client's headers of the same names; an empty value only takes the client's out.
fn set_headers(req: &mut Request<RequestBody>, headers: http::HeaderMap) {
    let mut last = None;
    for (name, value) in headers {
        if let Some(name) = name {
            req.headers_mut().remove(&name);
            last = Some(name);
        }
        if let Some(name) = &last
            && !value.is_empty()
        {
            req.headers_mut().append(name.clone(), value);
        }
    }
}

/// A path [`request_path`] refused: with `mse-decode-path-separators`, the path with its
/// separators decoded; otherwise 400. Rare, so the table is looked at only here.
#[cold]
fn decoded_or_refused<'a>(
    cx: &ConnCtx,
    path: &'a str,
    e: InvalidPath,
) -> Result<Cow<'a, str>, ProxyError> {
    let bad = |e: InvalidPath| ProxyError::BadRequest { reason: e.reason() };
    if e == InvalidPath::DotSegmentParameters
        || !cx.worker.table.load().settings().decode_path_separators
    {
        return Err(bad(e));
    }
    decoded_request_path(path).map_err(bad)
}

// === impl Forwarded ===

impl Forwarded {
    fn into_response(self, guard: InFlight) -> Response<ProxyBody> {
        match self {
            Self::Plain(response) => {
                let (parts, body) = response.into_parts();
                Response::from_parts(parts, ProxyBody::upstream(body, guard))
            }
            Self::Hyper(response) => {
                let (parts, body) = response.into_parts();
                Response::from_parts(parts, ProxyBody::incoming(body, guard))
            }
            Self::Local(response) => {
                let (parts, body) = response.into_parts();
                Response::from_parts(parts, ProxyBody::full(body, guard))
            }
        }
    }
}
