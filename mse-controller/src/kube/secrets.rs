//! The Secrets an Ingress references, fetched whole.
//!
//! Keeping every Secret of a cluster in memory would hold tokens, passwords and keys of
//! every application, most of them nothing to do with routing. So the Secret watch keeps
//! the data of `kubernetes.io/tls` Secrets only (certificates are what the gateway serves)
//! and drops the data of every other Secret as it arrives (`strip`). A Secret of another
//! type is read whole, with a GET, only while an Ingress this gateway serves references
//! it in the Ingress's own namespace:
//! - `spec.tls[].secretName` (a certificate in a Secret that is not typed `kubernetes.io/tls`),
//! - `auth-secret`, `auth-tls-secret` and `proxy-ssl-secret` (under any of the annotation
//!   prefixes; parsed by `mse-annotations`, so a reference the gateway would refuse, such
//!   as one into another namespace, is never fetched).
//!
//! The watch still sees every Secret's metadata, so a referenced Secret is fetched again
//! when its `resourceVersion` changes, and dropped from memory when nothing references it
//! any more or it is deleted.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use ::kube::Client;
use ::kube::api::Api;
use ::kube::runtime::reflector::ObjectRef;
use futures_util::future::join_all;
use mse_model::api::{Ingress, Secret};
use mse_model::{Kind, ObjectKey, Snapshot};
use mse_router::{CompileOptions, selected_ingresses};

use super::assemble::arcs;
use super::stores::Stores;
use super::strip::is_tls;

/// How long one GET of a Secret may take before it counts as failed.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// A Secret by namespace and name.
pub(crate) type SecretName = (String, String);

/// The referenced Secrets read whole so far, by namespace and name.
#[derive(Debug, Default)]
pub(crate) struct SecretCache {
    fetched: HashMap<SecretName, Arc<Secret>>,
}

/// The outcome of [`SecretCache::refresh`].
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Refreshed {
    /// Secrets read (or found deleted).
    pub(crate) fetched: usize,
    /// Secrets that could not be read; the last version read, if any, stays in use.
    pub(crate) failed: usize,
}

// === impl SecretCache ===

impl SecretCache {
    /// The fetched Secrets, in no particular order.
    pub(crate) fn secrets(&self) -> impl Iterator<Item = &Arc<Secret>> {
        self.fetched.values()
    }

    /// Makes the cache hold exactly the Secrets in `wanted` (name -> the resourceVersion
    /// the watch has), reading those that are missing or outdated.
    pub(crate) async fn refresh(
        &mut self,
        client: &Client,
        wanted: &BTreeMap<SecretName, Option<String>>,
    ) -> Refreshed {
        self.fetched.retain(|name, _| wanted.contains_key(name));
        let stale: Vec<&SecretName> = wanted
            .iter()
            .filter(|(name, version)| {
                self.fetched
                    .get(*name)
                    .is_none_or(|s| s.metadata.resource_version != **version)
            })
            .map(|(name, _)| name)
            .collect();
        let results = join_all(stale.into_iter().map(|name| fetch(client, name))).await;
        let mut outcome = Refreshed::default();
        for (name, result) in results {
            match result {
                Ok(Some(mut secret)) => {
                    outcome.fetched += 1;
                    secret.metadata.managed_fields = None;
                    self.fetched.insert(name, Arc::new(secret));
                }
                Ok(None) => {
                    outcome.fetched += 1;
                    self.fetched.remove(&name);
                }
                Err(error) => {
                    outcome.failed += 1;
                    tracing::warn!(
                        secret = %format!("{}/{}", name.0, name.1),
                        %error,
                        "cannot read a referenced Secret; retrying"
                    );
                }
            }
        }
        outcome
    }

    /// Puts a Secret in the cache as if it had been fetched (for tests of assembly).
    #[cfg(test)]
    pub(crate) fn insert(&mut self, secret: Secret) {
        let m = &secret.metadata;
        let name = (
            m.namespace.clone().unwrap_or_default(),
            m.name.clone().unwrap_or_default(),
        );
        self.fetched.insert(name, Arc::new(secret));
    }
}

async fn fetch(client: &Client, name: &SecretName) -> (SecretName, Result<Option<Secret>, String>) {
    let api: Api<Secret> = Api::namespaced(client.clone(), &name.0);
    let result = match tokio::time::timeout(FETCH_TIMEOUT, api.get_opt(&name.1)).await {
        Ok(Ok(secret)) => Ok(secret),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!("no answer within {FETCH_TIMEOUT:?}")),
    };
    (name.clone(), result)
}

/// The Secrets to read whole: those the Ingresses this gateway serves reference, which the
/// watch knows and whose data it does not keep, with the resourceVersion it has of each.
pub(crate) fn wanted(
    stores: &Stores,
    options: &CompileOptions,
) -> BTreeMap<SecretName, Option<String>> {
    let selection = Snapshot {
        ingresses: arcs(&stores.ingresses),
        ingress_classes: arcs(&stores.classes),
        mse_configs: arcs(&stores.configs),
        ..Snapshot::default()
    };
    let by_key: HashMap<ObjectKey, &Ingress> = selection
        .ingresses
        .iter()
        .map(|s| (ObjectKey::of(Kind::Ingress, &s.object.metadata), &*s.object))
        .collect();
    let mut wanted = BTreeMap::new();
    for key in selected_ingresses(&selection, options) {
        let Some(ingress) = by_key.get(&key) else {
            continue;
        };
        for name in references(&key, ingress) {
            let stub = stores
                .secrets
                .iter()
                .find_map(|s| s.get(&ObjectRef::new(&name).within(&key.namespace)));
            if let Some(stub) = stub.filter(|s| !is_tls(s)) {
                wanted.insert(
                    (key.namespace.to_string(), name),
                    stub.metadata.resource_version.clone(),
                );
            }
        }
    }
    wanted
}

/// The names of the Secrets in its own namespace an Ingress reads.
pub(crate) fn references(key: &ObjectKey, ingress: &Ingress) -> Vec<String> {
    let mut names: Vec<String> = ingress
        .spec
        .iter()
        .flat_map(|s| s.tls.iter().flatten())
        .filter_map(|t| t.secret_name.clone())
        .collect();
    // Only keys naming a Secret (`auth-secret`, `auth-tls-secret`, `proxy-ssl-secret`)
    // reference one: the annotations of an Ingress without such a key are not parsed,
    // which for a large cluster is most of the work of every change.
    if let Some(annotations) = ingress
        .metadata
        .annotations
        .as_ref()
        .filter(|a| a.keys().any(|k| k.contains("secret")))
    {
        let policy = mse_annotations::parse(key, None, annotations).value;
        let refs = [
            policy.auth.basic.as_ref().map(|b| &b.secret),
            policy.tls.client_ca.as_ref(),
            policy.backend.tls.secret.as_ref(),
        ];
        for r in refs.into_iter().flatten() {
            if r.namespace_or(&key.namespace) == &*key.namespace {
                names.push(r.name.clone());
            }
        }
    }
    names.sort();
    names.dedup();
    names
}
