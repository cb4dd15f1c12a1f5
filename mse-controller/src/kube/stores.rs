//! The reflector stores of every kind the gateway reads, and starting their watches.

use std::fmt::Debug;

use ::kube::Client;
use ::kube::api::{Api, Resource};
use ::kube::runtime::reflector::Store;
use mse_model::MseIngressConfig;
use mse_model::api::{ConfigMap, EndpointSlice, Ingress, IngressClass, Pod, Secret, Service};
use mse_model::k8s_openapi::NamespaceResourceScope;
use serde::de::DeserializeOwned;
use tokio::task::JoinSet;

use super::strip::Strip;
use super::watches::{Need, Progress};

/// One store per watch: namespaced kinds have one per watched namespace (or one for the
/// whole cluster), cluster-scoped kinds one each.
#[derive(Clone, Default)]
pub(crate) struct Stores {
    pub(crate) ingresses: Vec<Store<Ingress>>,
    pub(crate) classes: Vec<Store<IngressClass>>,
    pub(crate) services: Vec<Store<Service>>,
    pub(crate) slices: Vec<Store<EndpointSlice>>,
    /// Every Secret; the data only of TLS Secrets (see `secrets`).
    pub(crate) secrets: Vec<Store<Secret>>,
    pub(crate) config_maps: Vec<Store<ConfigMap>>,
    pub(crate) configs: Vec<Store<MseIngressConfig>>,
    /// Empty unless Pods were asked for.
    pub(crate) pods: Vec<Store<Pod>>,
}

// === impl Stores ===

impl Stores {
    /// Starts every watch on `tasks` and returns their stores, empty until each has listed.
    pub(crate) fn start(
        client: &Client,
        namespaces: &[String],
        config_map_namespaces: &[String],
        pods: bool,
        progress: &mut Progress,
        tasks: &mut JoinSet<()>,
    ) -> Self {
        let mut w = Starter {
            client,
            namespaces,
            progress,
            tasks,
        };
        Self {
            ingresses: w.namespaced(),
            classes: vec![w.cluster(Need::Required)],
            services: w.namespaced(),
            slices: w.namespaced(),
            secrets: w.namespaced(),
            config_maps: w.config_maps(config_map_namespaces),
            configs: vec![w.cluster(Need::UnlessAbsent)],
            pods: if pods { w.namespaced() } else { Vec::new() },
        }
    }
}

/// Starts the Pod watches (one per namespace, or one for the whole cluster) on `tasks`.
pub(crate) fn start_pods(
    client: &Client,
    namespaces: &[String],
    progress: &mut Progress,
    tasks: &mut JoinSet<()>,
) -> Vec<Store<Pod>> {
    Starter {
        client,
        namespaces,
        progress,
        tasks,
    }
    .namespaced()
}

struct Starter<'a> {
    client: &'a Client,
    namespaces: &'a [String],
    progress: &'a mut Progress,
    tasks: &'a mut JoinSet<()>,
}

impl Starter<'_> {
    fn namespaced<K>(&mut self) -> Vec<Store<K>>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
        K: Strip + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    {
        let kind = K::kind(&());
        if self.namespaces.is_empty() {
            let api = Api::all(self.client.clone());
            let name = format!("{kind} (all namespaces)");
            return vec![self.progress.spawn(self.tasks, api, name, Need::Required)];
        }
        self.namespaces
            .iter()
            .map(|ns| {
                let api = Api::namespaced(self.client.clone(), ns);
                let name = format!("{kind} in namespace {ns}");
                self.progress.spawn(self.tasks, api, name, Need::Required)
            })
            .collect()
    }

    /// ConfigMaps in the watched namespaces, and also in `extra` (the namespace of the
    /// gateway's own ConfigMap) when only some namespaces are watched.
    fn config_maps(&mut self, extra: &[String]) -> Vec<Store<ConfigMap>> {
        let mut stores = self.namespaced::<ConfigMap>();
        if self.namespaces.is_empty() {
            return stores;
        }
        let mut extra: Vec<&String> = extra
            .iter()
            .filter(|ns| !self.namespaces.contains(ns))
            .collect();
        extra.sort();
        extra.dedup();
        for ns in extra {
            let api = Api::namespaced(self.client.clone(), ns);
            let name = format!("ConfigMap in namespace {ns} (the gateway's configuration)");
            stores.push(self.progress.spawn(self.tasks, api, name, Need::Required));
        }
        stores
    }

    fn cluster<K>(&mut self, need: Need) -> Store<K>
    where
        K: Resource<DynamicType = ()>,
        K: Strip + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    {
        let api = Api::all(self.client.clone());
        let name = K::kind(&()).into_owned();
        self.progress.spawn(self.tasks, api, name, need)
    }
}
