//! The annotations compiled into a route's match rather than into its [`RoutePolicy`]:
//! they decide which route a request takes, so they are registered here only for the
//! list of applied keys.
//!
//! [`RoutePolicy`]: super::RoutePolicy

use mse_annotations::Group;

use super::{Registration, compiled_elsewhere};

/// `match-method`, `*-match-header-*`, `ignore-path-case` and the other match
/// conditions: part of a route's identity, compiled into [`crate::Conditions`] by the
/// compiler (`compile/ingress.rs`).
pub(crate) const CONDITIONS: Registration = Registration {
    name: "conditions",
    groups: &[Group::Matching],
    keys: &[],
    build: compiled_elsewhere,
};

/// `canary` and the `canary-by-*` and `canary-weight*` keys: paired with the main
/// routes by the compiler (`compile/canaries.rs`) into [`crate::Canaries`].
pub(crate) const CANARY: Registration = Registration {
    name: "canary",
    groups: &[Group::Canary],
    keys: &[],
    build: compiled_elsewhere,
};

/// `server-alias`: each route of the Ingress repeated on the alias hosts
/// (`compile/ingress.rs`).
pub(crate) const SERVER_ALIAS: Registration = Registration {
    name: "server-alias",
    groups: &[],
    keys: &["server-alias"],
    build: compiled_elsewhere,
};
