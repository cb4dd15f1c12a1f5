//! [`MirrorPolicy`]: `mirror-target-service`, `mirror-target-fqdn[-port]` and
//! `mirror-percentage`, resolved at compile time to the addresses the data plane sends
//! copies of requests to.

use std::sync::Arc;

use crate::table::ClusterTarget;

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
