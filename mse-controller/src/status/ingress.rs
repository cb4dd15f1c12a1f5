//! Ingress status: the gateway's address in `status.loadBalancer.ingress` of the Ingresses
//! it serves.
//!
//! The writer compares what each Ingress has with what it should have and writes only the
//! difference, through the `/status` subresource with a JSON merge patch. It never writes
//! what an Ingress already has, and it remembers each write until the input shows the
//! Ingress's next version, so a snapshot that does not yet show its own write does not
//! cause a second one: no write storms, and no loop of writes and watch events.
//!
//! An Ingress that is not ours is left alone, except one that still carries our address:
//! what we wrote, or exactly our current address list (written by this gateway before a
//! restart or by another replica when it led). Its status is cleared, since we no longer
//! serve it; an address another controller has written since is never touched. On shutdown nothing is cleared (ingress-nginx's default too): another replica,
//! or the next version of this one, still serves the Ingresses.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use k8s_openapi::api::networking::v1::{Ingress, IngressLoadBalancerIngress};
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use mse_model::{Kind, ObjectKey, Sourced};
use tokio::sync::watch;

use super::address::Addresses;
use super::{FIELD_MANAGER, chain};
use crate::Compiled;

/// How long the run loop waits before retrying writes that failed.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// What one [`IngressStatusWriter::sync`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatusSync {
    /// Ingresses given our address.
    pub updated: usize,
    /// Ingresses whose address was removed.
    pub cleared: usize,
    /// Writes that failed (retried on the next sync).
    pub failed: usize,
}

/// A write we made, remembered until the input shows a newer version of the Ingress.
#[derive(Clone, Debug)]
struct Written {
    /// The Ingress's `resourceVersion` when we decided to write.
    seen_version: Option<String>,
    /// What we wrote (empty: cleared).
    status: Vec<IngressLoadBalancerIngress>,
}

/// Writes the gateway's address into the status of the Ingresses it serves.
pub struct IngressStatusWriter {
    client: Client,
    written: HashMap<ObjectKey, Written>,
}

// === impl IngressStatusWriter ===

impl IngressStatusWriter {
    /// A writer using `client`.
    pub fn new(client: Client) -> Self {
        Self {
            client,
            written: HashMap::new(),
        }
    }

    /// Brings the status of `ingresses` in line: `ours` (the Ingresses the route table
    /// serves, [`mse_router::RouteTable::ingresses`]) get `addresses`; others that carry
    /// our address are cleared. Only differences are written. A failed write is logged and
    /// counted, and tried again on the next call.
    pub async fn sync(
        &mut self,
        ours: &[ObjectKey],
        ingresses: &[Sourced<Ingress>],
        addresses: &[IngressLoadBalancerIngress],
    ) -> StatusSync {
        let ours: HashSet<&ObjectKey> = ours.iter().collect();
        // Written in the order given; compared in a canonical order.
        let desired_ours = sorted(addresses.to_vec());
        let mut report = StatusSync::default();
        let mut present = HashSet::new();
        for ingress in ingresses {
            let ingress = &*ingress.object;
            let key = ObjectKey::of(Kind::Ingress, &ingress.metadata);
            present.insert(key.clone());
            let current = current_status(ingress);
            let is_ours = ours.contains(&key);
            let desired = if is_ours {
                desired_ours.clone()
            } else if !current.is_empty()
                && (current == desired_ours
                    || self.written.get(&key).is_some_and(|w| w.status == current))
            {
                Vec::new()
            } else {
                self.written.remove(&key);
                continue;
            };
            if current == desired {
                self.forget_if_done(&key, &desired);
                continue;
            }
            let version = ingress.metadata.resource_version.clone();
            if let Some(w) = self.written.get(&key)
                && w.seen_version == version
                && w.status == desired
            {
                // Our write of this is not in the input yet.
                continue;
            }
            let to_write = if desired.is_empty() {
                &[][..]
            } else {
                addresses
            };
            match self.write(&key, to_write).await {
                Ok(()) => {
                    if desired.is_empty() {
                        report.cleared += 1;
                    } else {
                        report.updated += 1;
                    }
                    self.written.insert(
                        key,
                        Written {
                            seen_version: version,
                            status: desired,
                        },
                    );
                }
                Err(e) => {
                    report.failed += 1;
                    tracing::warn!(
                        ingress = %key,
                        error = %chain(&e),
                        "could not write Ingress status; retrying later"
                    );
                }
            }
        }
        self.written.retain(|k, _| present.contains(k));
        report
    }

    /// Runs [`Self::sync`] on every new compile or address while `leader` says we lead,
    /// until the compile or leadership channel closes. Nothing is written while the
    /// addresses are unknown (`None`) or before the first compile. Failed writes are
    /// retried after a few seconds.
    pub async fn run(
        mut self,
        mut compiled: watch::Receiver<Option<Compiled>>,
        mut addresses: watch::Receiver<Option<Addresses>>,
        mut leader: watch::Receiver<bool>,
    ) {
        let mut addresses_open = true;
        loop {
            let leading = *leader.borrow_and_update();
            let input = compiled.borrow_and_update().clone();
            let addrs = addresses.borrow_and_update().clone();
            let mut retry = false;
            if let (true, Some(c), Some(a)) = (leading, input, addrs) {
                let report = self
                    .sync(c.table.ingresses(), &c.snapshot.ingresses, &a)
                    .await;
                if report != StatusSync::default() {
                    tracing::info!(
                        updated = report.updated,
                        cleared = report.cleared,
                        failed = report.failed,
                        "Ingress status written"
                    );
                }
                retry = report.failed > 0;
            }
            tokio::select! {
                changed = compiled.changed() => if changed.is_err() { return },
                changed = leader.changed() => if changed.is_err() { return },
                changed = addresses.changed(), if addresses_open => {
                    addresses_open = changed.is_ok();
                }
                () = tokio::time::sleep(RETRY_AFTER), if retry => {}
            }
        }
    }

    /// Drops the memory of a write once the input shows its result.
    fn forget_if_done(&mut self, key: &ObjectKey, now: &[IngressLoadBalancerIngress]) {
        if self.written.get(key).is_some_and(|w| w.status == now) && now.is_empty() {
            self.written.remove(key);
        }
    }

    /// Merge-patches `status.loadBalancer.ingress` (removing it when `status` is empty).
    async fn write(
        &self,
        key: &ObjectKey,
        status: &[IngressLoadBalancerIngress],
    ) -> Result<(), kube::Error> {
        let api: Api<Ingress> = Api::namespaced(self.client.clone(), &key.namespace);
        let list = if status.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::to_value(status).map_err(kube::Error::SerdeError)?
        };
        let patch = serde_json::json!({ "status": { "loadBalancer": { "ingress": list } } });
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PatchParams::default()
        };
        match api
            .patch_status(&key.name, &params, &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {
                tracing::debug!(ingress = %key, addresses = status.len(), "Ingress status written");
                Ok(())
            }
            // Deleted since the snapshot: nothing to write.
            Err(kube::Error::Api(s)) if s.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// An Ingress's `status.loadBalancer.ingress`, sorted.
fn current_status(ingress: &Ingress) -> Vec<IngressLoadBalancerIngress> {
    let list = ingress
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.clone())
        .unwrap_or_default();
    sorted(list)
}

fn sorted(mut list: Vec<IngressLoadBalancerIngress>) -> Vec<IngressLoadBalancerIngress> {
    list.sort_by(|a, b| (&a.ip, &a.hostname).cmp(&(&b.ip, &b.hostname)));
    list
}
