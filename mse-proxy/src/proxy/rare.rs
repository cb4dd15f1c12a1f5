//! The per-request state of the policies few requests use, in one box.
//!
//! A request's chosen upstream ([`super::select::Chosen`]) and its prepared exchange
//! ([`super::exchange::Prepared`]) move from phase to phase, and every future that holds
//! them carries their room: a field there is paid by every request, whether its route uses
//! the policy or not. State that only some routes' requests carry lives here instead: a
//! request that needs none of it holds one `None`, and one that needs any of it allocates
//! the box once and keeps it from upstream selection to the response. A new policy's
//! per-request state belongs here unless most requests carry it.

use std::net::SocketAddr;
use std::sync::Arc;

use super::auth::PendingAuth;
use crate::forwarded::Trusted;
use crate::policy::balance::Extras;
use crate::policy::external_auth::AuthCookies;
use crate::policy::limit::ConnSlot;
use crate::tls::ClientHeaders;

/// What few requests carry besides their upstream; see the module docs.
#[derive(Default)]
pub(super) struct Rare {
    /// What a trusted proxy in front said (`use-forwarded-headers`).
    pub(super) trusted: Option<Box<Trusted>>,
    /// The `ssl-client-*` headers, for a host that verifies client certificates.
    pub(super) client_cert: Option<ClientHeaders>,
    /// Authentication still to wait for (a bcrypt check, `auth-url`).
    pub(super) auth: Option<PendingAuth>,
    /// The `Set-Cookie` of the `auth-url` answer, for the client's answer.
    pub(super) auth_cookies: Option<Box<AuthCookies>>,
    /// What the balancing of the route needs besides the endpoint (in-flight count,
    /// affinity cookie); empty for round robin.
    pub(super) extras: Extras,
    /// The request's count against its client's `limit-connections`.
    pub(super) slot: Option<Box<ConnSlot>>,
    /// The cluster's endpoints, for a route that retries on another one.
    pub(super) endpoints: Option<Arc<[SocketAddr]>>,
}

// === impl Rare ===

impl Rare {
    /// Boxed, or `None` when it holds nothing (the common request).
    pub(super) fn boxed(self) -> Option<Box<Self>> {
        let empty = self.trusted.is_none()
            && self.client_cert.is_none()
            && self.auth.is_none()
            && self.auth_cookies.is_none()
            && self.extras.load.is_none()
            && self.extras.set_cookie.is_none()
            && self.slot.is_none()
            && self.endpoints.is_none();
        (!empty).then(|| Box::new(self))
    }

    /// The state of a request, made when the first rare part of it comes.
    pub(super) fn get(rare: &mut Option<Box<Self>>) -> &mut Self {
        rare.get_or_insert_with(Box::default)
    }
}
