//! [`Snapshot`]: one consistent set of every object the gateway sees.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::api::{
    ConfigMap, EndpointSlice, Endpoints, Ingress, IngressClass, Pod, Secret, Service,
};
use crate::crd::MseIngressConfig;
use crate::diag::Diagnostic;
use crate::lines::AnnotationLines;
use crate::load::Object;
use crate::object::{Kind, ObjectKey, SourceRef};

/// An object together with where it was read from.
#[derive(Clone, Debug)]
pub struct Sourced<T> {
    /// The object, shared: snapshots are cheap to clone.
    pub object: Arc<T>,
    /// File and line, when it came from a file.
    pub source: Option<SourceRef>,
}

impl<T> Sourced<T> {
    /// Wraps an object with no file origin (for example, one read from the API server).
    pub fn new(object: T) -> Self {
        Self {
            object: Arc::new(object),
            source: None,
        }
    }

    /// Wraps an object read from a file.
    pub fn with_source(object: T, source: SourceRef) -> Self {
        Self {
            object: Arc::new(object),
            source: Some(source),
        }
    }
}

/// Every object the gateway sees at one moment: the router's only input.
///
/// The order of objects in each list carries no meaning: the router sorts by age and
/// name wherever order matters, so the same objects in any order compile to the same table.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Increases with every new snapshot from a source.
    pub generation: u64,
    /// `networking.k8s.io/v1` Ingresses.
    pub ingresses: Vec<Sourced<Ingress>>,
    /// `networking.k8s.io/v1` IngressClasses.
    pub ingress_classes: Vec<Sourced<IngressClass>>,
    /// `v1` Services.
    pub services: Vec<Sourced<Service>>,
    /// `discovery.k8s.io/v1` EndpointSlices.
    pub endpoint_slices: Vec<Sourced<EndpointSlice>>,
    /// Legacy `v1` Endpoints, used for a Service that has no EndpointSlice.
    pub endpoints: Vec<Sourced<Endpoints>>,
    /// `v1` Secrets (TLS certificates, later auth and CA secrets).
    pub secrets: Vec<Sourced<Secret>>,
    /// `v1` ConfigMaps.
    pub config_maps: Vec<Sourced<ConfigMap>>,
    /// `MseIngressConfig` resources.
    pub mse_configs: Vec<Sourced<MseIngressConfig>>,
    /// `v1` Pods, reduced to name, labels and addresses: what service subsets select on.
    /// Manifest files give the Pods they hold; the Kubernetes source fills this only when
    /// asked to watch Pods.
    pub pods: Vec<Sourced<Pod>>,
    /// Problems found while reading the objects (bad YAML, unknown kinds).
    pub diagnostics: Vec<Diagnostic>,
    /// Per file: the line of each annotation key, so that a diagnostic about an annotation
    /// points at the annotation's own line (files whose text the source still trusts).
    pub annotation_lines: BTreeMap<Arc<str>, AnnotationLines>,
}

impl Snapshot {
    /// Adds one object to the list of its kind, reduced to what the gateway reads first
    /// ([`Object::slim`]).
    pub fn push(&mut self, mut object: Object, source: Option<SourceRef>) {
        object.slim();
        fn wrap<T>(o: T, source: Option<SourceRef>) -> Sourced<T> {
            Sourced {
                object: Arc::new(o),
                source,
            }
        }
        match object {
            Object::Ingress(o) => self.ingresses.push(wrap(*o, source)),
            Object::IngressClass(o) => self.ingress_classes.push(wrap(*o, source)),
            Object::Service(o) => self.services.push(wrap(*o, source)),
            Object::EndpointSlice(o) => self.endpoint_slices.push(wrap(*o, source)),
            Object::Endpoints(o) => self.endpoints.push(wrap(*o, source)),
            Object::Secret(o) => self.secrets.push(wrap(*o, source)),
            Object::ConfigMap(o) => self.config_maps.push(wrap(*o, source)),
            Object::MseIngressConfig(o) => self.mse_configs.push(wrap(*o, source)),
            Object::Pod(o) => self.pods.push(wrap(*o, source)),
        }
    }

    /// Adds objects as returned by [`crate::load_manifests`].
    pub fn extend(&mut self, objects: impl IntoIterator<Item = (Object, Option<SourceRef>)>) {
        for (o, s) in objects {
            self.push(o, s);
        }
    }

    /// The number of objects of every kind together.
    pub fn len(&self) -> usize {
        self.ingresses.len()
            + self.ingress_classes.len()
            + self.services.len()
            + self.endpoint_slices.len()
            + self.endpoints.len()
            + self.secrets.len()
            + self.config_maps.len()
            + self.mse_configs.len()
            + self.pods.len()
    }

    /// Whether the snapshot holds no object.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl ObjectKey {
    /// The key of an object from its kind and metadata. A namespaced object without a
    /// namespace gets `default`, as `kubectl apply` would give it.
    pub fn of(kind: Kind, meta: &ObjectMeta) -> ObjectKey {
        let ns = if kind.is_namespaced() {
            meta.namespace
                .as_deref()
                .filter(|n| !n.is_empty())
                .unwrap_or("default")
        } else {
            ""
        };
        ObjectKey::new(kind, ns, meta.name.as_deref().unwrap_or(""))
    }
}
