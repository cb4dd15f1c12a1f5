//! Building one [`Snapshot`] from the stores: pure, no I/O.
//!
//! Objects are shared with the stores (`Arc`s, no copies) and carry no file
//! [`SourceRef`](mse_model::SourceRef): a diagnostic names them by kind, namespace and
//! name. Secrets are the TLS Secrets of the store plus the referenced Secrets read whole
//! (see `secrets`); the data-less rest is left out. Lists are sorted by namespace and
//! name, so the same objects always make the same snapshot.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use ::kube::runtime::reflector::Store;
use mse_model::api::{ObjectMeta, Secret};
use mse_model::{Snapshot, Sourced};

use super::secrets::SecretCache;
use super::stores::Stores;
use super::strip::is_tls;

/// A summary of which object versions a snapshot holds: equal fingerprints mean the same
/// objects at the same versions, so a relist that found nothing new publishes nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fingerprint {
    objects: usize,
    /// A hash of every object's kind, namespace, name, uid and resourceVersion, in order.
    versions: u64,
}

/// The snapshot of the stores now (generation 0: the caller numbers it), and its
/// fingerprint.
pub(crate) fn assemble(stores: &Stores, cache: &SecretCache) -> (Snapshot, Fingerprint) {
    let mut secrets: Vec<Sourced<Secret>> = arcs(&stores.secrets)
        .into_iter()
        .filter(|s| is_tls(&s.object))
        .collect();
    secrets.extend(cache.secrets().map(|s| Sourced {
        object: Arc::clone(s),
        source: None,
    }));
    sort(&mut secrets, |s| &s.metadata);
    let snapshot = Snapshot {
        ingresses: arcs(&stores.ingresses),
        ingress_classes: arcs(&stores.classes),
        services: arcs(&stores.services),
        endpoint_slices: arcs(&stores.slices),
        secrets,
        config_maps: arcs(&stores.config_maps),
        mse_configs: arcs(&stores.configs),
        pods: arcs(&stores.pods),
        ..Snapshot::default()
    };
    let fingerprint = fingerprint(&snapshot);
    (snapshot, fingerprint)
}

/// Every object of these stores, shared, sorted by namespace and name.
pub(crate) fn arcs<K>(stores: &[Store<K>]) -> Vec<Sourced<K>>
where
    K: ::kube::Resource<DynamicType = ()> + Clone + 'static,
{
    let mut all: Vec<Sourced<K>> = stores
        .iter()
        .flat_map(Store::state)
        .map(|object| Sourced {
            object,
            source: None,
        })
        .collect();
    sort(&mut all, |o| o.meta());
    all
}

fn sort<K>(list: &mut [Sourced<K>], meta: impl Fn(&K) -> &ObjectMeta) {
    list.sort_by(|a, b| {
        let (a, b) = (meta(&a.object), meta(&b.object));
        (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name))
    });
}

fn fingerprint(s: &Snapshot) -> Fingerprint {
    // The lists are sorted, so hashing them in order is deterministic.
    let mut h = DefaultHasher::new();
    let mut add = |tag: u8, m: &ObjectMeta| {
        (tag, &m.namespace, &m.name, &m.uid, &m.resource_version).hash(&mut h);
    };
    s.ingresses.iter().for_each(|o| add(0, &o.object.metadata));
    s.ingress_classes
        .iter()
        .for_each(|o| add(1, &o.object.metadata));
    s.services.iter().for_each(|o| add(2, &o.object.metadata));
    s.endpoint_slices
        .iter()
        .for_each(|o| add(3, &o.object.metadata));
    s.secrets.iter().for_each(|o| add(4, &o.object.metadata));
    s.config_maps
        .iter()
        .for_each(|o| add(5, &o.object.metadata));
    s.mse_configs
        .iter()
        .for_each(|o| add(6, &o.object.metadata));
    s.pods.iter().for_each(|o| add(7, &o.object.metadata));
    Fingerprint {
        objects: s.len(),
        versions: h.finish(),
    }
}
