//! The exchange phase: the upstream request head (origin form, hop-by-hop headers out,
//! forwarding headers and the route's header edits in), the mirror copy, and the send.

use std::sync::Arc;
use std::time::Instant;

use http::header::CONNECTION;
use http::{HeaderValue, Request, Version};
use mse_router::RoutePolicy;

use super::ConnCtx;
use super::head::{Target, join_cookies, set_origin_form, wants_upgrade};
use super::hop::prepare_request_headers;
use super::select::Chosen;
use crate::body::RequestBody;
use crate::error::ProxyError;
use crate::forwarded::ForwardHeaders;
use crate::http1::HeadExtras;
use crate::http1::PendingUpgrade;
use crate::log::AccessRecord;
use crate::phases::RequestInfo;
use crate::policy::cors::{self, CorsAnswer};
use crate::policy::fallback::ErrorPages;
use crate::policy::mirror;
use crate::upstream::{Sent, Upstream};

/// An upstream's answer, and what the response phase needs to relay it.
pub(super) struct Exchanged {
    pub(super) sent: Sent,
    pub(super) upstream: Upstream,
    pub(super) policy: Option<Arc<RoutePolicy>>,
    pub(super) pages: Option<ErrorPages>,
    /// The CORS headers the answer gets, decided from the request.
    pub(super) cors: Option<CorsAnswer>,
    /// For an upgrade: the client's socket once the `101` answer is written.
    pub(super) client_upgrade: Option<PendingUpgrade>,
}

/// Sends the request to the chosen upstream (and a copy to the mirror, when sampled) and
/// waits for the answer's head.
pub(super) async fn send(
    cx: &ConnCtx,
    mut req: Box<Request<RequestBody>>,
    target: &Target,
    chosen: Chosen,
    new_path: Option<String>,
    mut log: Option<&mut AccessRecord>,
    info: Option<&mut RequestInfo>,
) -> Result<Exchanged, ProxyError> {
    let Chosen {
        upstream,
        policy,
        mut pages,
        ..
    } = chosen;
    let upgrade = wants_upgrade(&req);
    let client_upgrade = upgrade.then(|| cx.upgrade.take()).flatten();
    let cors = cors::answer(policy.as_deref(), req.headers());
    let mirror = policy
        .as_ref()
        .and_then(|p| p.mirror.as_ref())
        .filter(|m| !upgrade && mirror::sampled(m));
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
    let forwarded = prepare_request_headers(
        req.headers_mut(),
        cx,
        target.host.as_ref(),
        target.from_authority,
        upgrade,
    );
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
    let extras = forwarded
        .as_ref()
        .or_else(|| pages.as_ref().and_then(ErrorPages::forwarded))
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
        Some(m) => Box::pin(mirror::send(&cx.worker, m, &upstream, req)).await?,
    };
    if let Some(log) = log {
        let status = match &sent {
            Sent::Plain { head, .. } => head.status,
            Sent::Upgrade { response, .. } => response.status(),
        };
        log.upstream_status = Some(status.as_u16());
        log.upstream_time = sent_at.map(|t| t.elapsed());
    }
    Ok(Exchanged {
        sent,
        upstream,
        policy,
        pages,
        cors,
        client_upgrade,
    })
}
