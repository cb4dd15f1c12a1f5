//! [`MirrorPolicy`]: `mirror-target-service`, `mirror-target-fqdn[-port]` and
//! `mirror-percentage`, resolved at compile time to the addresses the data plane sends
//! copies of requests to.

use std::sync::Arc;

use mse_annotations::Group;

use super::{Registration, compiled_elsewhere};
use crate::table::ClusterTarget;

/// The mirror annotations. The compiler resolves them into [`RoutePolicy::mirror`] once
/// the Services are known (`compile/mirror.rs`).
///
/// [`RoutePolicy::mirror`]: super::RoutePolicy::mirror
pub(crate) const POLICY: Registration = Registration {
    name: "mirror",
    groups: &[Group::Mirror],
    keys: &[],
    build: compiled_elsewhere,
};

/// Where copies of an Ingress's requests go, and how many of them.
///
/// The data plane sends a copy of a sampled share of requests to one address of
/// `target` and drops the answer; the client's response never depends on it.
#[derive(Clone, Debug)]
pub struct MirrorPolicy {
    /// The mirror Service's ready endpoints with the resolved target port, or a DNS name
    /// and port (an ExternalName Service or `mirror-target-fqdn`).
    pub target: ClusterTarget,
    /// Share of requests copied, 0 to 100.
    pub percentage: u8,
    /// The target as written (`namespace/name:port` or `host:port`), for logs.
    pub name: Arc<str>,
}
