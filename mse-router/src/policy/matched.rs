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

/// Client certificates (`auth-tls-*`), versions and cipher suites: a host's TLS policy,
/// compiled into the TLS table by server name (`compile/host_tls.rs`).
pub(crate) const HOST_TLS: Registration = Registration {
    name: "host-tls",
    groups: &[],
    keys: &[
        "auth-tls-secret",
        "auth-tls-verify-client",
        "auth-tls-verify-depth",
        "auth-tls-pass-certificate-to-upstream",
        "auth-tls-error-page",
        "auth-tls-match-cn",
        "ssl-ciphers",
        "ssl-cipher",
        "tls-min-protocol-version",
        "tls-max-protocol-version",
    ],
    build: compiled_elsewhere,
};
