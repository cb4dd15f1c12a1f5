//! Configuration sources for the mse-ingress gateway, and the loop that compiles what they
//! see into route tables.
//!
//! In the crate graph this sits after the pure crates and beside the data plane:
//! `mse-model` -> `mse-annotations` -> `mse-router` -> **`mse-controller`** -> `bins/`. It
//! does the I/O on the configuration side: it reads objects, builds one consistent
//! [`mse_model::Snapshot`] per change and publishes it on a [`tokio::sync::watch`]
//! channel. [`run_compile_loop`] turns each snapshot into an [`mse_router::RouteTable`] off
//! the request path; the binary hands each table to the data plane (`mse-proxy`), which this
//! crate does not know.
//!
//! - [`FileSource`]: file mode. Manifests in files and directories (a mounted ConfigMap
//!   included), read in a deterministic order. The last good version of a half-written
//!   file is kept, duplicates are reported, and [`FileSource::watch`] picks up edits within
//!   a second (file events, debounced, with polling as a safety net).
//! - [`KubeSource`]: Kubernetes mode. kube-runtime watchers and reflector stores for every
//!   kind the gateway reads, in the namespaces given or the whole cluster; the first
//!   snapshot once every watch has listed, then one per change (bursts coalesced). Secrets
//!   keep their data only when they are TLS Secrets or referenced by an Ingress served.
//!   [`KubeWatch::client`] is the client for writers that belong beside it.
//! - [`run_compile_loop`]: compiles the newest snapshot of either source, logs its
//!   diagnostics once each and publishes a [`Compiled`] table.
//! - [`status`]: what the gateway writes to the API server in Kubernetes mode: leader
//!   election on a Lease, Ingress status, and diagnostics as Events.
//! - [`operator`]: turns each `MseIngressConfig` into a gateway Deployment, Service, RBAC,
//!   PodDisruptionBudget and IngressClass (the `mse-controller` binary).
//!
//! ```
//! use mse_controller::FileSource;
//!
//! let dir = tempfile::tempdir()?;
//! std::fs::write(
//!     dir.path().join("shop.yaml"),
//!     r#"
//! apiVersion: networking.k8s.io/v1
//! kind: Ingress
//! metadata: { name: shop }
//! spec:
//!   rules:
//!   - host: shop.example.com
//!     http:
//!       paths:
//!       - { path: /, pathType: Prefix, backend: { service: { name: web, port: { number: 80 } } } }
//! ---
//! this is: [not valid
//! "#,
//! )?;
//!
//! let snapshot = FileSource::new([dir.path()]).load();
//! assert_eq!(snapshot.ingresses.len(), 1);
//! // The broken document is reported with its file and line; the rest is served.
//! let error = &snapshot.diagnostics[0];
//! assert_eq!(error.code, "malformed-yaml");
//! assert!(error.origin.source.as_ref().is_some_and(|s| s.file.ends_with("shop.yaml")));
//! # Ok::<(), std::io::Error>(())
//! ```

mod compile_loop;
mod error;
mod file;
mod kube;
pub mod operator;
mod signal;
pub mod status;

pub use self::kube::{KubeOptions, KubeSource, KubeWatch, WatchCounter, WatchCounts};
pub use compile_loop::{Compiled, run_compile_loop};
pub use error::ControllerError;
pub use file::{FileSource, FileWatch};
pub use signal::shutdown_signal;
