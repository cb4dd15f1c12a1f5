//! The operator's errors.

/// A spec value the operator cannot build a gateway from.
///
/// Displayed as `FIELD: REASON, got "VALUE"`; it becomes the `Failed` status's message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}, got {value:?}")]
pub struct InvalidSpec {
    /// The field's path, for example `spec.common.instance.spec`.
    pub field: &'static str,
    /// The value as written.
    pub value: String,
    /// What was expected.
    pub reason: String,
}

impl InvalidSpec {
    pub(crate) fn new(field: &'static str, value: &str, reason: impl Into<String>) -> Self {
        InvalidSpec {
            field,
            value: value.to_owned(),
            reason: reason.into(),
        }
    }
}

/// Why one reconcile of an `MseIngressConfig` did not finish. The controller retries it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReconcileError {
    /// The API server refused or failed a request about one of the gateway's objects.
    #[error("{action} {kind} {name}")]
    Api {
        /// What the operator was doing: `applying`, `deleting`, `reading`, `listing`.
        action: &'static str,
        /// The object's kind.
        kind: &'static str,
        /// `NAMESPACE/NAME`, or `NAME` for cluster-scoped objects.
        name: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// The IngressClass this config would create is another controller's or another
    /// `MseIngressConfig`'s.
    #[error("IngressClass {class} is taken by {by}")]
    ClassTaken {
        /// The IngressClass.
        class: String,
        /// Whose it is, for example `MseIngressConfig other` or `controller k8s.io/ingress-nginx`.
        by: String,
    },
    /// An object could not be turned into the JSON the API server takes.
    #[error("encoding {kind} {name}")]
    Encode {
        /// The object's kind.
        kind: &'static str,
        /// Its name.
        name: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The object has no name or UID yet, so nothing can point back at it.
    #[error("the MseIngressConfig has no name or uid")]
    NoIdentity,
}

// === impl ReconcileError ===

impl ReconcileError {
    /// A short, stable label for metrics and logs.
    pub fn metric_label(&self) -> &'static str {
        match self {
            ReconcileError::Api { .. } => "api",
            ReconcileError::ClassTaken { .. } => "class_taken",
            ReconcileError::Encode { .. } => "encode",
            ReconcileError::NoIdentity => "no_identity",
        }
    }
}

/// Why the operator could not start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OperatorError {
    /// The kubeconfig could not be read or used.
    #[error("loading the Kubernetes client configuration")]
    Config {
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The Kubernetes client could not be built.
    #[error("building the Kubernetes client")]
    Client {
        /// Why.
        #[source]
        source: kube::Error,
    },
    /// The CustomResourceDefinition could not be rendered.
    #[error("rendering the CustomResourceDefinition")]
    Render {
        /// Why.
        #[source]
        source: serde_yaml_ng::Error,
    },
}
