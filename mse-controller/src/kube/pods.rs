//! Pods are watched only while they are needed: while some Ingress this gateway serves
//! asks for a service subset (`service-subset`), or always when
//! [`KubeOptions::pods`](super::KubeOptions::pods) says so. A cluster's Pods are many
//! and change often; a gateway without subsets neither lists them nor keeps them.
//!
//! The watch starts when a snapshot is assembled and some served Ingress has the key, and
//! stops (its store dropped) when none has it any more. Until its first list arrives the
//! subsets see no Pods and, as with no matching Pod, every endpoint serves them; the
//! list wakes the publisher like any change.

use std::collections::HashSet;

use ::kube::Client;
use mse_model::{Kind, ObjectKey, Snapshot};
use mse_router::{CompileOptions, selected_ingresses};
use tokio::task::JoinSet;

use super::assemble::arcs;
use super::stores::{Stores, start_pods};
use super::watches::Progress;

/// The Pod watch and whether it runs.
pub(crate) struct PodWatch {
    /// Watch Pods whatever the Ingresses say (and from the start).
    always: bool,
    client: Client,
    namespaces: Vec<String>,
    running: Option<Running>,
}

/// A running Pod watch: its tasks (aborted when dropped) and where its entries in the
/// progress begin.
struct Running {
    _tasks: JoinSet<()>,
    first: usize,
}

// === impl PodWatch ===

impl PodWatch {
    /// `always`: the Pods are watched from the start ([`Stores::start`] started them).
    pub(crate) fn new(always: bool, client: Client, namespaces: Vec<String>) -> Self {
        Self {
            always,
            client,
            namespaces,
            running: None,
        }
    }

    /// Starts or stops the watch as the Ingresses of `stores` need it.
    pub(crate) fn update(
        &mut self,
        stores: &mut Stores,
        progress: &mut Progress,
        selection: &CompileOptions,
    ) {
        if self.always {
            return;
        }
        let needed = wants_pods(stores, selection);
        match (&self.running, needed) {
            (None, true) => {
                let first = progress.len();
                let mut tasks = JoinSet::new();
                stores.pods = start_pods(&self.client, &self.namespaces, progress, &mut tasks);
                tracing::info!("an Ingress asks for a service subset: watching Pods");
                self.running = Some(Running {
                    _tasks: tasks,
                    first,
                });
            }
            (Some(r), false) => {
                progress.truncate(r.first);
                stores.pods.clear();
                self.running = None;
                tracing::info!(
                    "no Ingress asks for a service subset any more: Pods are no longer watched"
                );
            }
            _ => {}
        }
    }
}

/// Whether some Ingress this gateway serves has a `service-subset` annotation.
pub(crate) fn wants_pods(stores: &Stores, options: &CompileOptions) -> bool {
    let selection = Snapshot {
        ingresses: arcs(&stores.ingresses),
        ingress_classes: arcs(&stores.classes),
        mse_configs: arcs(&stores.configs),
        ..Snapshot::default()
    };
    let asks = |s: &&mse_model::Sourced<mse_model::api::Ingress>| {
        (s.object.metadata.annotations.as_ref())
            .is_some_and(|a| mse_annotations::lookup(a, "service-subset").is_some())
    };
    let asking: HashSet<ObjectKey> = selection
        .ingresses
        .iter()
        .filter(asks)
        .map(|s| ObjectKey::of(Kind::Ingress, &s.object.metadata))
        .collect();
    if asking.is_empty() {
        return false;
    }
    selected_ingresses(&selection, options)
        .iter()
        .any(|k| asking.contains(k))
}
