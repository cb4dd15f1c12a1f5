//! Pure data types for the mse-ingress gateway.
//!
//! This crate is the bottom of the workspace: every other crate speaks in its types.
//! It owns
//! - the Kubernetes objects the gateway reads, re-exported from [`k8s_openapi`]
//!   ([`api`]), plus the gateway's own [`MseIngressConfig`] resource;
//! - [`Snapshot`], one consistent set of those objects, which the router compiles;
//! - [`load_manifests`], which turns YAML or JSON text (many documents, `kind: List`
//!   included) into objects, with a [`Diagnostic`] for every document it could not use;
//! - [`Diagnostic`], the one shape every layer uses to report a problem with the input;
//! - [`slim`], which reduces objects to what the gateway reads before they are kept.
//!
//! It does no I/O: callers hand it bytes and a file name.
//!
//! ```
//! use mse_model::{load_manifests, Snapshot};
//!
//! let yaml = r#"
//! apiVersion: networking.k8s.io/v1
//! kind: Ingress
//! metadata: { name: shop, namespace: default }
//! spec:
//!   rules:
//!   - host: shop.example.com
//!     http:
//!       paths:
//!       - { path: /, pathType: Prefix, backend: { service: { name: shop, port: { number: 80 } } } }
//! ---
//! apiVersion: v1
//! kind: NotAThing
//! metadata: { name: x }
//! "#;
//! let loaded = load_manifests(yaml, Some("shop.yaml"));
//! let mut snapshot = Snapshot::default();
//! snapshot.extend(loaded.objects);
//! assert_eq!(snapshot.ingresses.len(), 1);
//! // The unknown kind is skipped with a note, not an error.
//! assert_eq!(loaded.diagnostics.len(), 1);
//! assert!(loaded.diagnostics[0].to_string().starts_with("shop.yaml:12: info:"));
//! ```

mod crd;
mod diag;
mod lines;
mod load;
mod object;
pub mod slim;
mod snapshot;

pub use crd::{
    CommonSpec, GlobalSpec, IngressLocalSpec, IngressSpec as MseIngressSpec, InstanceSpec,
    IpAccessControl, MonitorSpec, MseIngressConfig, MseIngressConfigSpec, MseIngressConfigStatus,
    Phase, StatusCondition,
};
pub use diag::{Diagnostic, Origin, Severity};
pub use lines::AnnotationLines;
pub use load::{Loaded, Object, load_manifests};
pub use object::{Kind, ObjectKey, SourceRef};
pub use snapshot::{Snapshot, Sourced};

/// The Kubernetes API types the gateway reads, re-exported so that every crate uses the
/// same versions.
pub mod api {
    pub use k8s_openapi::api::core::v1::{ConfigMap, Endpoints, Pod, Secret, Service};
    pub use k8s_openapi::api::discovery::v1::EndpointSlice;
    pub use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
    pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
}

pub use k8s_openapi;

/// The `spec.controller` value of an IngressClass that this gateway serves.
pub const CONTROLLER_NAME: &str = "mse.alibabacloud.com/ingress";

/// The API group of [`MseIngressConfig`].
pub const MSE_API_GROUP: &str = "mse.alibabacloud.com";
