//! The exchange phase: the upstream request head (origin form, hop-by-hop headers out,
//! forwarding headers and the route's header edits in), the mirror copy, and the send.

use std::sync::Arc;

use http::header::CONNECTION;
use http::{HeaderValue, Request, Version};
use mse_router::{ExchangePolicy, MirrorPolicy, RoutePolicy};

use super::ConnCtx;
use super::head::{Target, join_cookies, set_origin_form, wants_upgrade};
use super::hop::prepare_request_headers;
use super::rare::Rare;
use super::select::Chosen;
use crate::body::RequestBody;
use crate::error::ProxyError;
use crate::forwarded::{ForwardHeaders, X_REQUEST_ID};
use crate::http1::HeadExtras;
use crate::log::AccessRecord;
use crate::log_writer::RequestId;
use crate::phases::RequestInfo;
use crate::policy::cors::{self, CorsAnswer};
use crate::policy::fallback::ErrorPages;
use crate::policy::mirror;
use crate::upstream::{Sent, Upstream};

/// The request made ready to send, and what the response phase needs of it.
pub(super) struct Prepared {
    pub(super) upstream: Upstream,
    pub(super) policy: Option<Arc<RoutePolicy>>,
    pub(super) pages: Option<Box<ErrorPages>>,
    /// The CORS headers the answer gets, decided from the request.
    pub(super) cors: Option<CorsAnswer>,
    /// `Strict-Transport-Security` for the answer.
    pub(super) hsts: Option<Arc<HeaderValue>>,
    pub(super) upgrade: bool,
    /// Whether a copy goes to the route's mirror.
    mirrored: bool,
    /// The client's `Connection` (nothing but `close` or `keep-alive` in it) was left in
    /// the header map, for the head to leave out: removing it from the map costs more.
    connection_in_map: bool,
    /// The forwarding headers, when they are written straight into the head rather than
    /// into the request's header map.
    forwarded: Option<ForwardHeaders>,
    /// What only some requests carry (auth cookies, balancing extras, retry endpoints),
    /// from [`Chosen`]; `None` for most.
    pub(super) rare: Option<Box<Rare>>,
}

/// Turns the request into the one sent upstream: origin-form target, hop-by-hop headers
/// out, forwarding headers and the route's request header edits in, then the registered
/// steps' edits. Decides the CORS answer and whether the request is mirrored.
pub(super) fn prepare(
    cx: &ConnCtx,
    req: &mut Request<RequestBody>,
    target: &Target,
    (chosen, new_path): (Chosen, Option<String>),
    info: Option<&mut RequestInfo>,
    request_id: Option<RequestId>,
) -> Result<Prepared, ProxyError> {
    let Chosen {
        upstream,
        policy,
        mut pages,
        hsts,
        mut rare,
        ..
    } = chosen;
    let mut trusted = None;
    if let Some(r) = &mut rare {
        if let Some(c) = r.client_cert.take() {
            c.apply(req.headers_mut());
        }
        trusted = r.trusted.take();
    }
    let present = req.body().present();
    let upgrade = present.upgrade() && wants_upgrade(req);
    if upgrade && let Some(client) = cx.upgrade.take() {
        Rare::get(&mut rare).client_upgrade = Some(client);
    }
    let cors = cors::answer(policy.as_deref(), req.headers());
    let mirrored = policy
        .as_ref()
        .and_then(|p| p.mirror.as_ref())
        .is_some_and(|m| !upgrade && mirror::sampled(m));
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
        || mirrored
        || rare.as_ref().is_some_and(|r| r.protocol.is_some())
        || policy.as_deref().is_some_and(|p| {
            p.request_head_plan().edited.iter().any(|name| {
                ForwardHeaders::replaces(name) || (request_id.is_some() && *name == X_REQUEST_ID)
            })
        });
    // One growth of the map for every header added below, not one per insert.
    let added = usize::from(target.from_authority || target.host.is_none())
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
    // Where only the head is made of the map (no error pages, no steps), the client's
    // `Connection` stays in it and the head leaves it out.
    let connection_in_map =
        present.only_connection() && !in_map && pages.is_none() && info.is_none();
    let strip = if connection_in_map {
        present.connection_left()
    } else {
        present
    };
    let forwarded = prepare_request_headers(req.headers_mut(), cx, target, strip, upgrade, trusted)
        .with_request_id(request_id);
    let mut forwarded = if in_map {
        forwarded.insert_into(req.headers_mut());
        if let Some(p) = &policy {
            p.edit_request(req.headers_mut());
            if upgrade && p.connection.is_some() {
                // `connection-proxy-header` must not undo the upgrade.
                req.headers_mut()
                    .insert(CONNECTION, HeaderValue::from_static("upgrade"));
            }
        }
        None
    } else {
        Some(forwarded)
    };
    if let Some(info) = info {
        cx.worker.steps.upstream_request(info, req.headers_mut());
    }
    if let Some(p) = &mut pages
        && let Some(f) = forwarded.take()
    {
        // The error page request is built from the header map: it needs both again.
        p.keep_head_extras(f, policy.clone());
    }
    Ok(Prepared {
        upstream,
        policy,
        pages,
        cors,
        hsts,
        upgrade,
        mirrored,
        connection_in_map,
        forwarded,
        rare,
    })
}

// === impl Prepared ===

impl Prepared {
    /// What the HTTP/1.1 client writes into the head besides the request's header map.
    pub(super) fn extras(&self) -> Option<HeadExtras<'_>> {
        self.forwarded
            .as_ref()
            .or_else(|| self.pages.as_deref().and_then(ErrorPages::forwarded))
            .map(|f| HeadExtras {
                forwarded: f,
                edits: self.policy.as_deref(),
                connection: self.connection_in_map,
            })
    }

    /// The route's timeouts and retries, for a request that is not an upgrade; with
    /// `route_timeout` (the gateway-wide `downstream.routeTimeout` is set), an empty
    /// policy for routes without one.
    pub(super) fn exchange(&self, route_timeout: bool) -> Option<&ExchangePolicy> {
        if self.upgrade {
            return None;
        }
        match self.policy.as_deref().and_then(|p| p.exchange.as_deref()) {
            Some(p) => Some(p),
            None if route_timeout => Some(&crate::policy::retry::NONE),
            None => None,
        }
    }

    /// The route's mirror, when this request is copied to it.
    pub(super) fn mirror(&self) -> Option<&Arc<MirrorPolicy>> {
        self.policy
            .as_ref()
            .and_then(|p| p.mirror.as_ref())
            .filter(|_| self.mirrored)
    }
}

/// Notes the upstream's status in the access log.
pub(super) fn log_sent(log: Option<&mut AccessRecord>, sent: &Sent) {
    if let Some(log) = log {
        let status = match sent {
            Sent::Plain { head, .. } => head.status,
            Sent::Upgrade { response, .. } => response.status(),
        };
        log.upstream_status = Some(status.as_u16());
    }
}
