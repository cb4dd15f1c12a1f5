//! An in-memory Kubernetes API server for tests.
//!
//! [`ApiServer::start`] binds `127.0.0.1:0` and speaks the Kubernetes REST protocol over
//! plain HTTP/1.1, so the real kube-rs client (and a binary given
//! [`ApiServer::kubeconfig`]) talks to it as to a cluster: discovery, get, list with
//! selectors and pagination, watch with bookmarks and streaming lists, create, replace with
//! optimistic concurrency, merge, JSON and strategic-merge patches, server-side apply, the
//! `/status` subresource, delete with garbage collection of dependents. Tests also read and
//! write the same store directly ([`ApiServer::apply`], [`ApiServer::get`], ...), see every
//! request served ([`ApiServer::requests`]), cut every open watch
//! ([`ApiServer::cut_watches`]) and forget the change history ([`ApiServer::compact`]).
//!
//! ```no_run
//! # async fn example() -> std::io::Result<()> {
//! use mse_test_apiserver::ApiServer;
//! use serde_json::json;
//!
//! let server = ApiServer::start().await?;
//! server.apply(json!({
//!     "apiVersion": "v1", "kind": "ConfigMap",
//!     "metadata": {"name": "settings", "namespace": "default"},
//!     "data": {"mode": "test"},
//! }));
//! server.write_kubeconfig(std::path::Path::new("kubeconfig.yaml"))?;
//! # Ok(())
//! # }
//! ```
//!
//! # What it stands in for, and where it differs from a real cluster
//!
//! - **Resources**: a fixed table (core Namespaces, Services, Endpoints, Secrets,
//!   ConfigMaps, Pods, ServiceAccounts, Events; Ingresses, IngressClasses, EndpointSlices,
//!   `events.k8s.io` Events, Leases, Deployments, PodDisruptionBudgets, RBAC, CRDs and
//!   MseIngressConfigs). Creating a CRD does not serve a new resource. Core and
//!   `events.k8s.io` Events are separate stores here, one store in a cluster.
//! - **Validation**: names, label and annotation syntax, the required fields of
//!   `events.k8s.io` Events and Lease durations. No other defaulting or validation of
//!   built-in types, no admission, no authentication or RBAC: every request is allowed.
//!   Bodies are not checked against their kind's schema: an object with a wrongly shaped
//!   field is stored, and a typed client then fails to decode it.
//!   Namespaces need not exist before objects are created in them; `default`,
//!   `kube-system`, `kube-public` and `kube-node-lease` exist from the start.
//! - **Generations**: every kind gets `metadata.generation`, bumped when anything other than
//!   `metadata` and `status` changes.
//! - **Patches**: a strategic merge patch is applied as a JSON merge patch (lists are
//!   replaced whole, not merged by key; `$patch` directives are not read). Server-side apply
//!   is simplified as the [`apply` module docs](#server-side-apply) say.
//! - **Garbage collection and namespaces**: deleting an object deletes its dependents (the
//!   objects whose `ownerReferences` name its uid) at once, in the same request, standing
//!   in for kube-controller-manager's garbage collector, which does it asynchronously;
//!   `propagationPolicy: Orphan` strips the reference instead. Deleting a Namespace removes
//!   everything in it at once (no `Terminating` phase). Finalizers hold a deletion until
//!   they are cleared, as in a cluster.
//! - **Protocol**: plain HTTP/1.1 and JSON only (YAML accepted in request bodies); no TLS,
//!   HTTP/2, protobuf, `Table` answers, aggregated discovery or OpenAPI documents. `kubectl`
//!   gets, lists, watches, labels, deletes and `apply --server-side --validate=false` work;
//!   client-side `kubectl apply` and `kubectl edit` need the OpenAPI documents.
//! - **History**: the last 100 000 changes are kept for watches to resume from (or none
//!   after [`ApiServer::compact`]); lists honour `limit`/`continue` with pages that all show
//!   the state of the first page, rebuilt from that history.
//!
//! # Server-side apply
//!
//! An apply creates a missing object and merges the applied fields into an existing one.
//! Each manager's fields are recorded in `metadata.managedFields` (`operation: Apply`,
//! `FieldsV1`); a field the manager applied before and omits now is removed unless another
//! applier owns it; a field another applier owns with a different value is a 409 conflict
//! unless `force=true`. Differences: lists are atomic (a list is replaced whole and owned as
//! one field; a cluster merges lists with merge keys item by item), and writes other than
//! apply take no field ownership, so they never conflict with an apply.

mod apply;
mod error;
mod http;
mod meta;
mod ops;
mod resources;
mod selector;
mod server;
mod store;
mod validate;

pub use error::ApiError;
pub use server::{ApiServer, Builder, RequestRecord};
