//! The crate's error type.
//!
//! Problems with the input (a malformed manifest, an unreadable file) are never errors here:
//! they are [`mse_model::Diagnostic`]s in the snapshot, and the gateway keeps serving. An
//! error means the controller itself could not do its job.

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
}

// === impl ControllerError ===

impl ControllerError {
    /// A short, stable label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            ControllerError::Task { .. } => "task",
        }
    }
}
