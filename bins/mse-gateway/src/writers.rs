//! Kube mode: what the gateway writes to the API server (Ingress status, Events), and the
//! leader election that lets one replica write while every replica serves traffic.

use anyhow::Context;
use mse_controller::status::{
    AddressWatch, DEFAULT_LEASE_NAME, DiagnosticEvents, IngressStatusWriter, LeaderElector,
    LeaderHandle, LeaseSettings, PublishAddress, instance_identity, pod_namespace,
};
use mse_controller::{Compiled, KubeWatch};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the gateway writes to the API server in kube mode.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct WriteOptions {
    /// Where the address for Ingress status comes from (`--publish-service` or
    /// `--publish-status-address`); `None`: Ingress status is not written.
    pub publish: Option<PublishAddress>,
    /// The leader election Lease: namespace (default: the pod's), name (`--election-id`,
    /// default `mse-ingress-leader`), this replica's identity (pod name or host name with a
    /// random suffix) and timings.
    pub lease: LeaseSettings,
    /// Whether diagnostics become Events on the objects they concern. Default true.
    pub events: bool,
}

impl Default for WriteOptions {
    fn default() -> Self {
        Self {
            publish: None,
            lease: LeaseSettings::new(pod_namespace(), DEFAULT_LEASE_NAME, instance_identity()),
            events: true,
        }
    }
}

/// The running election and the writers that follow it.
pub(crate) struct Writers {
    election: LeaderHandle,
    _addresses: Option<AddressWatch>,
    tasks: Vec<JoinHandle<()>>,
}

impl Writers {
    /// Starts the election, and the status and Event writers on every compiled table.
    pub(crate) fn start(
        source: &KubeWatch,
        compiled: watch::Receiver<Option<Compiled>>,
        options: &WriteOptions,
    ) -> anyhow::Result<Self> {
        let client = source.client().clone();
        let identity = options.lease.identity.clone();
        let election = LeaderElector::new(client.clone(), options.lease.clone())
            .context("leader election settings")?
            .spawn();
        tracing::info!(
            lease = %format_args!("{}/{}", options.lease.namespace, options.lease.name),
            identity = %identity,
            "leader election started; only the leader writes Ingress status and Events"
        );
        let mut tasks = Vec::new();
        let addresses = options.publish.clone().map(|p| p.watch(client.clone()));
        if let Some(addresses) = &addresses {
            let writer = IngressStatusWriter::new(client.clone());
            tasks.push(tokio::spawn(writer.run(
                compiled.clone(),
                addresses.subscribe(),
                election.subscribe(),
            )));
        }
        if options.events {
            let events = DiagnosticEvents::new(client, &identity);
            tasks.push(tokio::spawn(events.run(compiled, election.subscribe())));
        }
        Ok(Self {
            election,
            _addresses: addresses,
            tasks,
        })
    }

    /// Leadership as it changes.
    pub(crate) fn leadership(&self) -> watch::Receiver<bool> {
        self.election.subscribe()
    }

    /// Gives up leadership (releasing the Lease, so another replica takes over at once) and
    /// stops the writers. Ingress status is left as it is: the other replicas still serve.
    pub(crate) async fn stop(self) {
        self.election.release().await;
        for task in self.tasks {
            task.abort();
        }
    }
}
