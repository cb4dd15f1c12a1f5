//! What the gateway writes to the Kubernetes API server: leader election, Ingress status
//! and Events.
//!
//! Every replica of the gateway serves traffic; only one writes. [`LeaderElector`] holds a
//! `coordination.k8s.io/v1` Lease and publishes leadership on a
//! [`tokio::sync::watch::Receiver<bool>`]; [`IngressStatusWriter`] and
//! [`DiagnosticEvents`] write only while it says `true`.
//!
//! - [`LeaderElector`]: create, renew or take over the Lease with optimistic concurrency;
//!   release it on shutdown.
//! - [`IngressStatusWriter`]: the gateway's address ([`PublishAddress`]: fixed, or a
//!   Service's, watched) in `status.loadBalancer.ingress` of the Ingresses the route table
//!   serves, written only where it differs.
//! - [`DiagnosticEvents`]: each compile's diagnostics as `events.k8s.io/v1` Events on the
//!   objects they concern, one per problem, rate limited.
//!
//! ```no_run
//! # async fn wire(
//! #     client: kube::Client,
//! #     compiled: tokio::sync::watch::Receiver<Option<mse_controller::Compiled>>,
//! # ) -> Result<(), mse_controller::ControllerError> {
//! use mse_controller::status::{
//!     DiagnosticEvents, IngressStatusWriter, LeaderElector, LeaseSettings, PublishAddress,
//!     instance_identity, pod_namespace,
//! };
//!
//! let identity = instance_identity();
//! let settings = LeaseSettings::new(pod_namespace(), "mse-ingress-leader", identity.clone());
//! let election = LeaderElector::new(client.clone(), settings)?.spawn();
//! let addresses = PublishAddress::parse_service("ingress/mse-gateway")?.watch(client.clone());
//! tokio::spawn(IngressStatusWriter::new(client.clone()).run(
//!     compiled.clone(),
//!     addresses.subscribe(),
//!     election.subscribe(),
//! ));
//! tokio::spawn(DiagnosticEvents::new(client, &identity).run(compiled, election.subscribe()));
//! // ... on shutdown:
//! election.release().await;
//! # Ok(()) }
//! ```

mod address;
mod events;
mod ingress;
mod lease;

use std::error::Error;
use std::fmt::Write as _;

pub use address::{AddressWatch, Addresses, PublishAddress, service_addresses};
pub use events::{DiagnosticEvents, EVENT_ACTION, EventSettings, EventsFlush, event_type};
pub use ingress::{IngressStatusWriter, StatusSync};
pub use lease::{LeaderElector, LeaderHandle, LeaseSettings};

/// The field manager named on every write (`?fieldManager=`).
pub const FIELD_MANAGER: &str = "mse-gateway";

/// The Lease name used when none is given (`--election-id`).
pub const DEFAULT_LEASE_NAME: &str = "mse-ingress-leader";

/// Where Kubernetes mounts the pod's namespace with its service account token.
const NAMESPACE_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// This process's identity for leader election and Events: the pod name (`POD_NAME`, set
/// from the downward API), else the host name, plus a random suffix so that a restarted
/// pod of the same name is a new candidate.
pub fn instance_identity() -> String {
    let base = std::env::var("POD_NAME")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "mse-gateway".to_owned());
    let suffix: String = (0..5)
        .map(|_| fastrand::alphanumeric().to_ascii_lowercase())
        .collect();
    format!("{base}_{suffix}")
}

/// The namespace this pod runs in: `POD_NAMESPACE`, else the service account's namespace
/// file, else `default`.
pub fn pod_namespace() -> String {
    std::env::var("POD_NAMESPACE")
        .ok()
        .or_else(|| std::fs::read_to_string(NAMESPACE_FILE).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "default".to_owned())
}

/// An error and its sources, joined with `: `, for one log field.
fn chain(e: &dyn Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let _ = write!(out, ": {s}");
        source = s.source();
    }
    out
}
