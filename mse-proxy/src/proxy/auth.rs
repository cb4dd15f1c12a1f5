//! The waiting half of the access phase: a bcrypt check on a blocking thread and the
//! external authentication subrequest. Only routes that need one of them get here (see
//! [`super::select`]); the rest pay one `Option` check.

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use mse_router::AuthPolicy;

use super::ConnCtx;
use crate::error::ProxyError;
use crate::policy::basic_auth::{self, Pending};
use crate::policy::external_auth::{self, AuthCookies, Original, Outcome};
use crate::policy::redirect::host_without_port;

/// The authentication still to do for one request, once its synchronous part passed.
pub(super) struct PendingAuth {
    /// A bcrypt check not remembered yet.
    pub(super) slow: Option<Box<Pending>>,
    /// The route's authentication, when it has `auth-url`.
    pub(super) external: Option<Arc<AuthPolicy>>,
    /// The client's address as the access phase derived it (the peer, or what a trusted
    /// proxy in front said), for the subrequest's `X-Real-IP` and `X-Forwarded-For`.
    pub(super) client: IpAddr,
}

/// What the authentication decided.
pub(super) enum Verdict {
    /// Go on, with these headers set on the upstream request (`auth-response-headers`),
    /// and these cookies for the client's answer.
    Pass(HeaderMap, Option<Box<AuthCookies>>),
    /// The client gets this answer.
    Answer(Box<Response<Bytes>>),
}

/// Runs the pending checks: basic first, then external, as ingress-nginx orders
/// `auth_basic` before `auth_request`.
pub(super) async fn run<B>(
    cx: &ConnCtx,
    pending: PendingAuth,
    req: &Request<B>,
    host: &str,
    path: &str,
) -> Result<Verdict, ProxyError> {
    if let Some(slow) = pending.slow
        && let Some(answer) = basic_auth::verify_slow(slow, &cx.worker.auth_cache).await
    {
        return Ok(Verdict::Answer(Box::new(answer)));
    }
    let Some(external) = pending.external.as_ref().and_then(|a| a.external.as_ref()) else {
        return Ok(Verdict::Pass(HeaderMap::new(), None));
    };
    let host = host_without_port(host);
    let orig = Original {
        tls: cx.tls,
        host,
        path,
        client: pending.client,
    };
    Ok(
        match external_auth::check(&cx.worker, external, req, &orig).await? {
            Outcome::Pass(headers, cookies) => Verdict::Pass(headers, cookies),
            Outcome::Answer(answer) => Verdict::Answer(Box::new(answer)),
        },
    )
}
