//! The operator: turns each `MseIngressConfig` into a running gateway.
//!
//! For every `MseIngressConfig` it applies, with server-side apply under one field
//! manager ([`FIELD_MANAGER`], forcing conflicts), a ServiceAccount, a ClusterRole and
//! ClusterRoleBinding, a Role and RoleBinding for the gateway's leader Lease, a
//! Deployment running `mse-gateway`, a LoadBalancer Service, a PodDisruptionBudget (with
//! more than one replica) and the IngressClass that links the config. It then writes the
//! config's `status` (phase, replicas, address, conditions; see [`status`]).
//!
//! - [`Plan`] checks the spec and fills in defaults; [`objects`] builds each object from
//!   a plan (pure functions); [`rbac`] lists the permissions granted and needed;
//!   [`crd()`] is the CustomResourceDefinition, generated from the Rust type.
//! - [`run`] drives a kube-runtime `Controller` over the configs, owning the Deployments
//!   and Services it made, so a replica becoming ready or a load balancer getting its
//!   address updates the status at once.
//!
//! Every object has a controller owner reference to its `MseIngressConfig`, so deleting
//! the config deletes the gateway through Kubernetes' garbage collector (a cluster-scoped
//! owner may own namespaced objects). No finalizer is used: nothing outside the cluster
//! has to be released, and an owner reference also covers objects the operator never
//! got to write.
//!
//! ```
//! use mse_controller::operator::{OperatorOptions, Plan, objects};
//! use mse_model::MseIngressConfig;
//!
//! let config: MseIngressConfig = serde_json::from_value(serde_json::json!({
//!     "metadata": { "name": "gw", "uid": "6c1a" },
//!     "spec": { "common": { "instance": { "replicas": 2, "spec": "2c4g" } } },
//! }))?;
//! let plan = Plan::new(&config, &OperatorOptions::default())?;
//! let owner = mse_controller::operator::owner_reference(&config).expect("named, with a uid");
//! let gateway = objects::build_all(&plan, &owner);
//! assert_eq!(gateway.deployment.spec.unwrap().replicas, Some(2));
//! assert!(gateway.pod_disruption_budget.is_some());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod crd;
mod error;
pub mod objects;
mod plan;
pub mod rbac;
mod reconcile;
pub mod status;

use std::future::Future;
use std::path::Path;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Client;
use kube::config::{Config, KubeConfigOptions, Kubeconfig};
use mse_model::MseIngressConfig;

pub use self::crd::{crd, crd_yaml};
pub use self::error::{InvalidSpec, OperatorError, ReconcileError};
pub use self::plan::{
    DEFAULT_GATEWAY_NAME, DEFAULT_REPLICAS, Ignored, MAX_REPLICAS, Plan, SIZES, Size,
};

/// The one field manager of every write the operator makes.
pub const FIELD_MANAGER: &str = "mse-ingress-operator";

/// The gateway image when `--gateway-image` is not given.
pub const DEFAULT_GATEWAY_IMAGE: &str = concat!(
    "ghcr.io/mse-ingress/mse-gateway:",
    env!("CARGO_PKG_VERSION")
);

/// The namespace of gateway objects when `--gateway-namespace` is not given.
pub const DEFAULT_GATEWAY_NAMESPACE: &str = "mse-ingress";

/// How the operator builds gateways.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatorOptions {
    /// The `mse-gateway` container image.
    pub gateway_image: String,
    /// Where the namespaced gateway objects go; the namespace must exist.
    pub gateway_namespace: String,
}

impl Default for OperatorOptions {
    fn default() -> Self {
        OperatorOptions {
            gateway_image: DEFAULT_GATEWAY_IMAGE.to_owned(),
            gateway_namespace: DEFAULT_GATEWAY_NAMESPACE.to_owned(),
        }
    }
}

/// A controller owner reference to `config`, or `None` while it has no name or UID.
pub fn owner_reference(config: &MseIngressConfig) -> Option<OwnerReference> {
    kube::Resource::controller_owner_ref(config, &())
}

/// A client for the cluster `kubeconfig` names, or, without one, the usual places
/// (`$KUBECONFIG`, `~/.kube/config`, then the in-cluster service account).
pub async fn connect(kubeconfig: Option<&Path>) -> Result<Client, OperatorError> {
    let config = match kubeconfig {
        Some(path) => {
            let file = Kubeconfig::read_from(path).map_err(|e| OperatorError::Config {
                source: Box::new(e),
            })?;
            Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
                .await
                .map_err(|e| OperatorError::Config {
                    source: Box::new(e),
                })?
        }
        None => Config::infer().await.map_err(|e| OperatorError::Config {
            source: Box::new(e),
        })?,
    };
    Client::try_from(config).map_err(|source| OperatorError::Client { source })
}

/// Runs the operator until `shutdown` resolves, then lets running reconciles finish.
///
/// Watch and API errors are logged and retried with backoff; they never end the loop.
pub async fn run(
    client: Client,
    options: OperatorOptions,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    reconcile::run(client, options, shutdown).await;
}
