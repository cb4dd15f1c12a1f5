//! Route, access, decision and upstream selection: the phases that read the route table,
//! under one look at it, so that a request sees one table from lookup to endpoint.

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, LOCATION};
use http::{HeaderValue, Request, Response, StatusCode};
use mse_router::{AuthPolicy, Backend, BodySize, RequestHead, Route, RoutePolicy, WEIGHT_SCALE};

use super::ConnCtx;
use super::auth::PendingAuth;
use super::rare::{Rare, rare};
use crate::body::RequestBody;
use crate::error::ProxyError;
use crate::forwarded::Trusted;
use crate::log::AccessRecord;
use crate::phases::RequestInfo;
use crate::policy::balance::{self, Extras, KeySource};
use crate::policy::basic_auth::{self, Check};
use crate::policy::fallback::{self, ErrorPages};
use crate::policy::limit::{self, ConnSlot};
use crate::policy::{cors, redirect};
use crate::settings::Settings;
use crate::stats::{Outcome, Tally};
use crate::table::{Pick, ProxyTable};
use crate::tls::{self, HostCheck};
use crate::upstream::{Protocol, Upstream};

/// What the phases up to upstream selection decided.
pub(super) enum Choice {
    /// The gateway answers the request itself. Boxed, as the rarer case.
    Answer(Box<Response<Bytes>>),
    /// The request goes upstream.
    Forward(Chosen),
}

/// Where a request goes, and the policy it goes with.
pub(super) struct Chosen {
    pub(super) upstream: Upstream,
    /// The policy of the Ingress that serves the request (the canary's, when one won).
    pub(super) policy: Option<Arc<RoutePolicy>>,
    /// The rewritten path; `None` when there is no rewrite or it gives the same path.
    rewritten: Option<String>,
    /// `custom-http-errors` pages, when the route has them. Boxed: large enough that
    /// every request would copy it as it moves from phase to phase.
    pub(super) pages: Option<Box<ErrorPages>>,
    /// The largest request body (`proxy-body-size`); `None`: no limit.
    pub(super) body_limit: Option<u64>,
    /// `Strict-Transport-Security` for the answer: an HTTPS request to a host with a
    /// certificate of its own, with `hsts` on.
    pub(super) hsts: Option<Arc<HeaderValue>>,
    /// What only some requests carry (trusted proxy, client certificate, authentication,
    /// balancing extras, limit slot, retry endpoints); `None` for most.
    pub(super) rare: Option<Box<Rare>>,
}

/// Looks the request up, runs the registered steps' access phase, then the decision phase
/// (CORS preflight, redirects, canary, rewrite) and picks the upstream.
pub(super) fn choose(
    cx: &ConnCtx,
    req: &Request<RequestBody>,
    (host, path): (&str, &str),
    (mut log, tally): (Option<&mut AccessRecord>, &mut Tally),
    info: Option<&mut RequestInfo>,
) -> Result<Choice, ProxyError> {
    let table = cx.worker.table.load();
    let settings = table.settings();
    cx.worker.pool.tune(settings);
    // The label sets of this table; the slot is set once the destination is known.
    let labels = table.labels();
    cx.worker.stats.follow(labels);
    tally.serial = labels.serial();
    let head = RequestHead::new(host, path)
        .method(req.method().as_str())
        .query(req.uri().query())
        .headers(req.headers())
        .tls(cx.tls);
    // Route.
    let found = table.routes().lookup(&head);
    if let Some(m) = &found {
        tally.slot = labels.slot(m.route, None);
    }
    // A proxy in front, trusted with `use-forwarded-headers`: the client it names, and
    // whether it took the request over TLS.
    let trusted = settings
        .forwarding
        .as_ref()
        .and_then(|f| f.read(cx.peer.ip(), req.headers()));
    // The client address, derived once: what every IP rule checks and the access log and
    // X-Real-IP name.
    let client = client_ip(cx, trusted.as_deref());
    if let Some(log) = log.as_deref_mut() {
        log.remote.set_ip(client);
    }
    let tls = cx.tls || trusted.as_ref().is_some_and(|t| t.says_https());
    // Access: the IP lists (the gateway's, then the route's with its host's).
    check_ip_lists(&table, settings, found.as_ref().map(|m| m.route), client)?;
    // Access: the host's TLS policy. Over TLS, a client without the certificate the host
    // requires is refused before anything else, as NGINX does; over plain HTTP, after the
    // redirects (to HTTPS, most likely).
    let mut refused = None;
    let mut client_cert = None;
    match tls::check_request(cx.tls_conn.as_deref(), &table, host) {
        HostCheck::Pass(headers) => client_cert = headers,
        HostCheck::Misdirected => return Err(ProxyError::Misdirected),
        HostCheck::Forbidden => {
            let answer = forbidden();
            if cx.tls {
                return Ok(Choice::Answer(Box::new(answer)));
            }
            refused = Some(answer);
        }
        HostCheck::Refuse { text, error_page } => {
            let answer = refusal(text, error_page);
            if cx.tls {
                return Ok(Choice::Answer(Box::new(answer)));
            }
            refused = Some(answer);
        }
    }
    if let Some(info) = info {
        info.set_client(client);
        if let Some(m) = &found {
            info.set_ingress(&m.route.ingress);
        }
        if let Some(answer) = cx.worker.steps.access(info, req.headers()) {
            return Ok(Choice::Answer(Box::new(answer)));
        }
    }
    let Some(m) = found else {
        if let Some(answer) = refused {
            return Ok(Choice::Answer(Box::new(answer)));
        }
        // No route: the gateway-wide default backend, else 404.
        let mut chosen = Chosen::plain(fallback::unmatched(&table)?);
        chosen.body_limit = settings.max_body;
        chosen.rare = rare!(trusted, client_cert);
        return Ok(Choice::Forward(chosen));
    };
    // Decision: the CORS preflight and redirects answer before authentication, as the
    // rewrite-phase `return`s of ingress-nginx do.
    if let Some(answer) = decide(tls, m.route, req, host, path) {
        return Ok(Choice::Answer(Box::new(answer)));
    }
    if let Some(answer) = refused {
        return Ok(Choice::Answer(Box::new(answer)));
    }
    // Access: the local rate and connection limits (before authentication, as NGINX's
    // preaccess phase).
    let slot = match m.route.policy.as_ref().and_then(|p| p.limits.as_ref()) {
        Some(_) => match admit(&table, m.route, client) {
            Ok(slot) => slot,
            Err(answer) => {
                tally.outcome |= Outcome::RATE_LIMITED;
                return Ok(Choice::Answer(answer));
            }
        },
        None => None,
    };
    // Access: the limits shared by the replicas, waited for with the authentication.
    let shared_limit = table.shared_limiter(m.route.id).cloned();
    // Access: authentication of the main route (canaries inherit it).
    let auth = match m.route.policy.as_ref().and_then(|p| p.auth.as_ref()) {
        Some(a) => match authenticate(cx, a, req, client) {
            Ok(pending) => pending,
            Err(answer) => {
                tally.outcome |= Outcome::AUTH_REFUSED;
                return Ok(Choice::Answer(answer));
            }
        },
        None => None,
    };
    // Canaries: the roll only matters for weighted ones.
    let roll = match &m.route.canary {
        Some(_) => fastrand::u32(..WEIGHT_SCALE),
        None => 0,
    };
    // A client holding an affinity cookie stays where it is (`affinity-canary-behavior`).
    let sticky = match &m.route.canary {
        Some(_) => balance::sticky_destination(m.route, &head, |b| table.balancing(b)),
        None => None,
    };
    let dest = match sticky {
        Some(d) => d,
        None => m.route.destination(&head, roll),
    };
    if let (Some(c), Some(all)) = (dest.canary, &m.route.canary) {
        let i = all.versions.iter().position(|v| std::ptr::eq(v, c));
        tally.slot = labels.slot(m.route, i);
    }
    if let Some(log) = log {
        log.off = dest.policy.is_some_and(|p| p.no_access_log);
    }
    // `None` too for a rewrite that gives the same path.
    let rewritten = dest
        .policy
        .and_then(|p| p.rewrite_path(&m.route.path, path));
    let policy = dest.policy.map(Arc::clone);
    let body_limit = match policy.as_ref().and_then(|p| p.body_size) {
        Some(BodySize::Limit(n)) => Some(n),
        Some(BodySize::Unlimited) => None,
        None => settings.max_body,
    };
    let hsts = settings
        .hsts
        .as_ref()
        .filter(|_| tls && m.route.own_certificate)
        .cloned();
    // Upstream selection.
    let src = KeySource {
        head: &head,
        uri: req.uri(),
        client,
        tls,
    };
    let mut extras = Extras::default();
    let (upstream, pages, endpoints, protocol) = select_upstream(
        &table,
        m.route,
        dest.backend,
        policy.as_deref(),
        (&src, &mut extras),
    )?;
    Ok(Choice::Forward(Chosen {
        upstream,
        policy,
        rewritten,
        pages,
        body_limit,
        hsts,
        rare: rare!(
            trusted,
            client_cert,
            auth,
            extras,
            slot,
            shared_limit,
            endpoints,
            protocol
        ),
    }))
}

/// The client address of a request: the connection's peer (the PROXY protocol header's
/// source address, when the listener reads one), unless the peer is a trusted proxy
/// (`use-forwarded-headers` with `proxy-real-ip-cidr`, or `--trusted-proxies`) that names
/// the client in its X-Forwarded-For list.
fn client_ip(cx: &ConnCtx, trusted: Option<&Trusted>) -> IpAddr {
    trusted
        .and_then(|t| t.real_ip)
        .unwrap_or_else(|| cx.peer.ip())
}

/// The IP lists, in order: the gateway's (503 when one could not be read), then the
/// route's, which fold in its host's (see [`mse_router::AccessRules`]). A refused client
/// gets 403.
fn check_ip_lists(
    table: &ProxyTable,
    settings: &Settings,
    route: Option<&Route>,
    client: IpAddr,
) -> Result<(), ProxyError> {
    if settings.access_closed {
        return Err(ProxyError::BackendUnavailable {
            reason: "the gateway-wide IP list is invalid (fail closed)".into(),
        });
    }
    let gateway = table.routes().access();
    let route = route.and_then(|r| r.access.as_ref());
    for rules in [gateway, route].into_iter().flatten() {
        if rules.check(client).is_err() {
            return Err(ProxyError::Forbidden { ip: client });
        }
    }
    Ok(())
}

/// Admits a request of `client` under the route's local limits, or answers it.
fn admit(
    table: &ProxyTable,
    route: &Route,
    client: IpAddr,
) -> Result<Option<Box<ConnSlot>>, Box<Response<Bytes>>> {
    let Some(limiter) = table.limiter(route.id) else {
        return Ok(None);
    };
    match limiter.admit(client, Instant::now()) {
        Ok(slot) => Ok(slot.map(Box::new)),
        Err(over) => {
            let s = table.settings();
            let answer = limit::refusal(over, s.limit_req_status, s.limit_conn_status);
            Err(Box::new(answer))
        }
    }
}

/// NGINX's answer to a client certificate whose subject `auth-tls-match-cn` refuses.
fn forbidden() -> Response<Bytes> {
    let mut r = Response::new(Bytes::from_static(b"client certificate unauthorized"));
    *r.status_mut() = StatusCode::FORBIDDEN;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// The answer to a request without the client certificate its host requires: NGINX's 400
/// (its 495 and 496, which it sends as 400), or a redirect to `auth-tls-error-page`.
fn refusal(text: &str, error_page: Option<&str>) -> Response<Bytes> {
    if let Some(location) = error_page.and_then(|p| HeaderValue::from_str(p).ok()) {
        let mut r = Response::new(Bytes::new());
        *r.status_mut() = StatusCode::FOUND;
        r.headers_mut().insert(LOCATION, location);
        return r;
    }
    let mut r = Response::new(Bytes::from(format!("400 Bad Request\n{text}\n")));
    *r.status_mut() = StatusCode::BAD_REQUEST;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Basic authentication as far as it goes without waiting; what is left to wait for, or
/// the 401.
fn authenticate(
    cx: &ConnCtx,
    auth: &Arc<AuthPolicy>,
    req: &Request<RequestBody>,
    client: IpAddr,
) -> Result<Option<PendingAuth>, Box<Response<Bytes>>> {
    let mut slow = None;
    if let Some(basic) = &auth.basic {
        match basic_auth::check(basic, req.headers(), &cx.worker.auth_cache) {
            Check::Pass => {}
            Check::Deny(answer) => return Err(answer),
            Check::Slow(p) => slow = Some(p),
        }
    }
    let external = auth.external.as_ref().map(|_| Arc::clone(auth));
    if slow.is_none() && external.is_none() {
        return Ok(None);
    }
    Ok(Some(PendingAuth {
        slow,
        external,
        client,
    }))
}

/// The decision phase's own answers: a CORS preflight, then the route's redirects. `tls`:
/// the client's request came over TLS (to the gateway, or to a trusted proxy in front).
fn decide(
    tls: bool,
    route: &Route,
    req: &Request<RequestBody>,
    host: &str,
    path: &str,
) -> Option<Response<Bytes>> {
    if let Some(answer) = cors::preflight(route.policy.as_deref(), req) {
        return Some(answer);
    }
    if route.may_redirect(tls) {
        return redirect::answer(tls, route, req, host, path);
    }
    None
}

/// The endpoint of the route's backend (round robin, or as the policy's balancing says),
/// and its error pages; else its Ingress's `default-backend`; else the error.
/// The upstream, the error pages, the endpoints for retries and the upstream protocol.
type Selected = (
    Upstream,
    Option<Box<ErrorPages>>,
    Option<Arc<[SocketAddr]>>,
    Option<Arc<Protocol>>,
);

/// The endpoints a retry may go to: for a route that retries, in a cluster of more than
/// one endpoint. Shared, not copied.
fn retry_endpoints(
    policy: Option<&RoutePolicy>,
    cluster: &mse_router::Cluster,
) -> Option<Arc<[SocketAddr]>> {
    policy?.exchange.as_ref()?.retry.as_ref()?;
    match &cluster.target {
        mse_router::ClusterTarget::Endpoints(all) if all.len() > 1 => Some(Arc::clone(all)),
        _ => None,
    }
}

fn select_upstream(
    table: &Arc<ProxyTable>,
    route: &Route,
    backend: &Backend,
    policy: Option<&RoutePolicy>,
    (src, extras): (&KeySource<'_>, &mut Extras),
) -> Result<Selected, ProxyError> {
    let or_default = |e: ProxyError| match fallback::default_backend(table, policy) {
        Some(up) => Ok((up, None, None, None)),
        None => Err(e),
    };
    let cluster = match backend {
        Backend::Cluster(c) => table.routes().cluster(*c),
        Backend::Unavailable { reason } => {
            return or_default(ProxyError::BackendUnavailable {
                reason: Arc::clone(reason),
            });
        }
    };
    let picked = match policy.and_then(|p| p.balance.as_ref()) {
        None => table.pick(cluster),
        Some(how) => table.pick_balanced(cluster, how, src, extras),
    };
    match picked {
        Pick::To(upstream) => Ok((
            upstream,
            ErrorPages::new(table, route, cluster).map(Box::new),
            retry_endpoints(policy, cluster),
            table.protocol(cluster),
        )),
        Pick::NoEndpoints => or_default(ProxyError::NoEndpoints {
            service: cluster.service.clone(),
            port: cluster.port,
        }),
    }
}

// === impl Chosen ===

impl Chosen {
    /// A request that no route matched, to the gateway-wide default backend.
    fn plain(upstream: Upstream) -> Self {
        Self {
            upstream,
            policy: None,
            rewritten: None,
            pages: None,
            body_limit: None,
            hsts: None,
            rare: None,
        }
    }

    /// The path to send upstream when it is not the one received: the rewritten one, else
    /// the normalised one when normalising changed it.
    pub(super) fn new_path(&mut self, normalised: Cow<'_, str>) -> Option<String> {
        match (self.rewritten.take(), normalised) {
            (Some(p), _) | (None, Cow::Owned(p)) => Some(p),
            (None, Cow::Borrowed(_)) => None,
        }
    }
}
