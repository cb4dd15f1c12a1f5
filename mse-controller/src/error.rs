//! The crate's error type.
//!
//! Problems with the input (a malformed manifest, an unreadable file) are never errors here:
//! they are [`mse_model::Diagnostic`]s in the snapshot, and the gateway keeps serving. An
//! error means the controller itself could not do its job.

use std::path::PathBuf;

use tokio::task::JoinError;

/// Why a source or the compile loop could not start or continue.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControllerError {
    /// A blocking task (reading manifests) panicked, or the runtime shut down under it.
    #[error("the {task} task did not complete")]
    Task {
        /// What the task was doing, for example `initial manifest load`.
        task: &'static str,
        /// Why it did not complete.
        #[source]
        source: JoinError,
    },
    /// A task ended before it produced what was waited for.
    #[error("the {task} stopped")]
    Stopped {
        /// Which task.
        task: &'static str,
    },
    /// No Kubernetes client configuration: the kubeconfig file cannot be read or used, or
    /// none was given and none can be inferred.
    #[error("{}", kubeconfig_message(.path.as_deref()))]
    Kubeconfig {
        /// The kubeconfig file given, if one was.
        path: Option<PathBuf>,
        /// What went wrong.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

fn kubeconfig_message(path: Option<&std::path::Path>) -> String {
    match path {
        Some(p) => format!("cannot use the kubeconfig {}", p.display()),
        None => "no Kubernetes configuration found (in-cluster service account, $KUBECONFIG or ~/.kube/config)".to_owned(),
    }
}

// === impl ControllerError ===

impl ControllerError {
    /// A short, stable label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            ControllerError::Task { .. } => "task",
            ControllerError::Stopped { .. } => "stopped",
            ControllerError::Kubeconfig { .. } => "kubeconfig",
        }
    }
}
