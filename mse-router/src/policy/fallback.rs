//! [`FallbackPolicy`]: where an Ingress's requests go when its own Service cannot answer
//! them well (`default-backend` and `custom-http-errors`).
//!
//! The semantics are ingress-nginx's, which Higress follows:
//!
//! - When a route's backend is unavailable (its Service or port is missing) or its Service
//!   has no ready endpoint, requests go to the `default-backend` Service as they are: same
//!   method, path, Host and body.
//! - When the upstream answers with one of the `custom-http-errors` codes, that answer is
//!   dropped and the request is sent once more, to the `default-backend` Service or, when
//!   the Ingress names none, to the gateway-wide default backend
//!   ([`crate::CompileOptions::default_backend`]): as `GET /` without body, Host kept,
//!   with `X-Code`, `X-Format`, `X-Original-URI`, `X-Namespace`, `X-Ingress-Name`,
//!   `X-Service-Name` and `X-Service-Port` telling the error page what happened. Its answer
//!   is relayed whatever its status: an error page is never intercepted again.

use mse_annotations::Group;

use super::{Registration, compiled_elsewhere};
use crate::table::ClusterId;

/// `default-backend` and `custom-http-errors`. The compiler resolves them into
/// [`RoutePolicy::fallback`] once the Services are known (`compile/fallback.rs`).
///
/// [`RoutePolicy::fallback`]: super::RoutePolicy::fallback
pub(crate) const POLICY: Registration = Registration {
    name: "fallback",
    groups: &[Group::Fallback],
    keys: &[],
    build: compiled_elsewhere,
};

/// The fallback of one Ingress, shared by all of its routes through their
/// [`crate::RoutePolicy`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FallbackPolicy {
    /// The `default-backend` Service port, when it resolved.
    pub cluster: Option<ClusterId>,
    /// The `custom-http-errors` codes, sorted. Only kept when some Service can answer
    /// them: [`Self::cluster`] or the gateway-wide default backend.
    pub codes: Box<[u16]>,
}

// === impl FallbackPolicy ===

impl FallbackPolicy {
    /// Whether an upstream answer with this status is replaced by an error page.
    pub fn intercepts(&self, status: u16) -> bool {
        self.codes.binary_search(&status).is_ok()
    }

    /// Whether it does anything.
    pub(crate) fn is_empty(&self) -> bool {
        self.cluster.is_none() && self.codes.is_empty()
    }
}
