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
use crate::http1::PendingUpgrade;
use crate::policy::balance::Extras;
use crate::policy::external_auth::AuthCookies;
use crate::policy::limit::ConnSlot;
use crate::policy::shared_limit::SharedLimiter;
use crate::tls::ClientHeaders;
use crate::upstream::Protocol;

/// What few requests carry besides their upstream; see the module docs.
#[derive(Default)]
pub(super) struct Rare {
    /// What a trusted proxy in front said (`use-forwarded-headers`).
    pub(super) trusted: Option<Box<Trusted>>,
    /// The `ssl-client-*` headers, for a host that verifies client certificates.
    pub(super) client_cert: Option<Box<ClientHeaders>>,
    /// Authentication still to wait for (a bcrypt check, `auth-url`).
    pub(super) auth: Option<PendingAuth>,
    /// The `Set-Cookie` of the `auth-url` answer, for the client's answer.
    pub(super) auth_cookies: Option<Box<AuthCookies>>,
    /// What the balancing of the route needs besides the endpoint (in-flight count,
    /// affinity cookie); empty for round robin.
    pub(super) extras: Extras,
    /// The request's count against its client's `limit-connections`.
    pub(super) slot: Option<Box<ConnSlot>>,
    /// The route's `rate-limit` and `concurrency-limit`, still to wait for.
    pub(super) shared_limit: Option<Arc<SharedLimiter>>,
    /// The cluster's endpoints, for a route that retries on another one.
    pub(super) endpoints: Option<Arc<[SocketAddr]>>,
    /// The upstream protocol, when not plain HTTP/1.1.
    pub(super) protocol: Option<Arc<Protocol>>,
    /// For an upgrade: the client's socket once the `101` answer is written.
    pub(super) client_upgrade: Option<PendingUpgrade>,
}

/// `rare!(field, ...)`: the fields of [`Rare`] a request has, from locals of the same
/// names, boxed; or `None` when every one of them is empty (`Option::None`, or empty
/// balancing extras). Fields not named are empty. A macro rather than a function, so that
/// the common request neither builds the struct nor moves it to find out it is empty.
macro_rules! rare {
    ($($field:ident),* $(,)?) => {{
        if $(crate::proxy::rare::Empty::is_empty(&$field))&&* {
            None
        } else {
            Some(Box::new(crate::proxy::rare::Rare {
                $($field,)*
                ..Default::default()
            }))
        }
    }};
}
pub(super) use rare;

/// Whether a part of [`Rare`] holds nothing.
pub(super) trait Empty {
    fn is_empty(&self) -> bool;
}

impl<T> Empty for Option<T> {
    fn is_empty(&self) -> bool {
        self.is_none()
    }
}

impl Empty for Extras {
    fn is_empty(&self) -> bool {
        self.load.is_none() && self.set_cookie.is_none()
    }
}

// === impl Rare ===

impl Rare {
    /// The state of a request, made when the first rare part of it comes.
    pub(super) fn get(rare: &mut Option<Box<Self>>) -> &mut Self {
        rare.get_or_insert_with(Box::default)
    }
}
