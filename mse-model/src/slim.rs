//! Reducing objects to what the gateway reads, before they are kept.
//!
//! A gateway keeps every object it watches for as long as it runs, and most of what a
//! Kubernetes object carries is never read by the compiler: managed fields (often half the
//! object), the `kubectl.kubernetes.io/last-applied-configuration` copy of it, status,
//! scheduling and topology details. Every source calls these functions on each object
//! before storing it ([`Snapshot::push`](crate::Snapshot::push) does it for what it is
//! given), so snapshots hold only:
//!
//! - **Every kind**: `metadata` name, namespace, uid, resourceVersion, generation,
//!   creationTimestamp and deletionTimestamp (what stores, watches and status writers key
//!   and order objects by). Labels, annotations, owner references, finalizers and managed
//!   fields go, except as below.
//! - **Ingress**: annotations (without the last-applied copy), spec and status.
//! - **IngressClass**: annotations (`is-default-class`) and spec.
//! - **Service**: `spec.type`, `externalName`, `clusterIP`, `selector` and the ports'
//!   name, port, targetPort and appProtocol.
//! - **EndpointSlice**: the `kubernetes.io/service-name` label, `addressType`, the ports'
//!   name and port, and each endpoint's addresses, conditions and target reference (kind,
//!   namespace, name).
//! - **Endpoints** (legacy): each subset's ready addresses (ip and target reference) and
//!   ports' name and port.
//! - **Secret**, **ConfigMap**: type, data; **MseIngressConfig**: spec.
//! - **Pod**: labels and `status.podIP`/`podIPs` (what service subsets select on).
//!
//! Lists are also trimmed to their length: a list read from YAML or JSON usually has room
//! for more items than it holds.
//!
//! ```
//! use mse_model::{load_manifests, slim, Object};
//!
//! let yaml = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  managedFields: [{ manager: kubectl }]\nspec:\n  type: ClusterIP\n  sessionAffinity: None\n  ports: [{ name: http, port: 80, targetPort: 8080, protocol: TCP }]\nstatus: { loadBalancer: {} }\n";
//! let mut loaded = load_manifests(yaml, None);
//! let Object::Service(svc) = &mut loaded.objects[0].0 else { unreachable!() };
//! slim::service(svc);
//! assert!(svc.metadata.managed_fields.is_none() && svc.status.is_none());
//! let spec = svc.spec.as_ref().unwrap();
//! assert_eq!(spec.session_affinity, None);
//! assert_eq!(spec.ports.as_ref().unwrap()[0].port, 80);
//! ```

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort as CorePort, EndpointSubset, ObjectReference, PodStatus,
    ServicePort, ServiceSpec,
};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointPort};
use k8s_openapi::api::networking::v1::{HTTPIngressRuleValue, IngressRule, IngressTLS};

use crate::api::{
    ConfigMap, EndpointSlice, Endpoints, Ingress, IngressClass, ObjectMeta, Pod, Secret, Service,
};
use crate::crd::MseIngressConfig;
use crate::load::Object;

/// The annotation `kubectl apply` keeps a copy of the whole object in.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The label that ties an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Keeps an Ingress's annotations, spec and status.
pub fn ingress(o: &mut Ingress) {
    meta(&mut o.metadata, Keep::Annotations);
    if let Some(spec) = o.spec.as_mut() {
        if let Some(rules) = spec.rules.as_mut() {
            rules.iter_mut().for_each(rule);
            rules.shrink_to_fit();
        }
        if let Some(tls) = spec.tls.as_mut() {
            tls.iter_mut().for_each(tls_entry);
            tls.shrink_to_fit();
        }
    }
    if let Some(lb) = o.status.as_mut().and_then(|s| s.load_balancer.as_mut())
        && let Some(ingress) = lb.ingress.as_mut()
    {
        ingress.shrink_to_fit();
    }
}

fn rule(r: &mut IngressRule) {
    if let Some(HTTPIngressRuleValue { paths }) = r.http.as_mut() {
        paths.shrink_to_fit();
    }
}

fn tls_entry(t: &mut IngressTLS) {
    if let Some(hosts) = t.hosts.as_mut() {
        hosts.shrink_to_fit();
    }
}

/// Keeps an IngressClass's annotations and spec.
pub fn ingress_class(o: &mut IngressClass) {
    meta(&mut o.metadata, Keep::Annotations);
}

/// Keeps a Service's type, external name, cluster IP, selector and ports (name, port,
/// target port).
pub fn service(o: &mut Service) {
    meta(&mut o.metadata, Keep::Nothing);
    o.status = None;
    o.spec = o.spec.take().map(|s| ServiceSpec {
        cluster_ip: s.cluster_ip,
        external_name: s.external_name,
        ports: s.ports.map(|ports| {
            rebuilt(ports, |p| ServicePort {
                name: p.name,
                port: p.port,
                target_port: p.target_port,
                app_protocol: p.app_protocol,
                ..ServicePort::default()
            })
        }),
        selector: s.selector,
        type_: s.type_,
        ..ServiceSpec::default()
    });
}

/// Keeps an EndpointSlice's Service label, address type, ports (name, port) and endpoints
/// (addresses, conditions, target reference).
pub fn endpoint_slice(o: &mut EndpointSlice) {
    meta(&mut o.metadata, Keep::Label(SERVICE_NAME_LABEL));
    o.endpoints = rebuilt(std::mem::take(&mut o.endpoints), |e| Endpoint {
        addresses: rebuilt(e.addresses, |a| a),
        conditions: e.conditions,
        target_ref: e.target_ref.map(reference),
        ..Endpoint::default()
    });
    o.ports = o.ports.take().map(|ports| {
        rebuilt(ports, |p| EndpointPort {
            name: p.name,
            port: p.port,
            ..EndpointPort::default()
        })
    });
}

/// Keeps legacy Endpoints' ready addresses (ip, target reference) and ports (name, port).
pub fn endpoints(o: &mut Endpoints) {
    meta(&mut o.metadata, Keep::Nothing);
    o.subsets = o.subsets.take().map(|subsets| {
        rebuilt(subsets, |s| EndpointSubset {
            addresses: s.addresses.map(|a| {
                rebuilt(a, |a| EndpointAddress {
                    ip: a.ip,
                    target_ref: a.target_ref.map(reference),
                    ..EndpointAddress::default()
                })
            }),
            not_ready_addresses: None,
            ports: s.ports.map(|p| {
                rebuilt(p, |p| CorePort {
                    name: p.name,
                    port: p.port,
                    ..CorePort::default()
                })
            }),
        })
    });
}

/// Keeps a Secret's type and data.
pub fn secret(o: &mut Secret) {
    meta(&mut o.metadata, Keep::Nothing);
}

/// Keeps a ConfigMap's data.
pub fn config_map(o: &mut ConfigMap) {
    meta(&mut o.metadata, Keep::Nothing);
}

/// Keeps an MseIngressConfig's spec.
pub fn mse_config(o: &mut MseIngressConfig) {
    meta(&mut o.metadata, Keep::Nothing);
    o.status = None;
}

/// Keeps a Pod's labels and addresses.
pub fn pod(o: &mut Pod) {
    let labels = o.metadata.labels.take();
    meta(&mut o.metadata, Keep::Nothing);
    o.metadata.labels = labels;
    o.spec = None;
    o.status = o.status.take().map(|s| PodStatus {
        pod_ip: s.pod_ip,
        pod_ips: s.pod_ips,
        ..PodStatus::default()
    });
}

impl Object {
    /// Reduces the object to what the gateway reads (see [the module](crate::slim)).
    pub fn slim(&mut self) {
        match self {
            Object::Ingress(o) => ingress(o),
            Object::IngressClass(o) => ingress_class(o),
            Object::Service(o) => service(o),
            Object::EndpointSlice(o) => endpoint_slice(o),
            Object::Endpoints(o) => endpoints(o),
            Object::Secret(o) => secret(o),
            Object::ConfigMap(o) => config_map(o),
            Object::MseIngressConfig(o) => mse_config(o),
            Object::Pod(o) => pod(o),
        }
    }
}

/// What a kind keeps of its labels and annotations.
#[derive(Clone, Copy)]
enum Keep {
    Nothing,
    /// Every annotation but the last-applied copy; no label.
    Annotations,
    /// This label only; no annotation.
    Label(&'static str),
}

fn meta(m: &mut ObjectMeta, keep: Keep) {
    let kept = std::mem::take(m);
    let (labels, annotations) = match keep {
        Keep::Nothing => (None, None),
        Keep::Annotations => (
            None,
            kept.annotations.map(|mut a| {
                a.remove(LAST_APPLIED);
                a
            }),
        ),
        Keep::Label(name) => (
            kept.labels.and_then(|mut l| {
                let (k, v) = l.remove_entry(name)?;
                Some(BTreeMap::from([(k, v)]))
            }),
            None,
        ),
    };
    *m = ObjectMeta {
        name: kept.name,
        namespace: kept.namespace,
        uid: kept.uid,
        resource_version: kept.resource_version,
        generation: kept.generation,
        creation_timestamp: kept.creation_timestamp,
        deletion_timestamp: kept.deletion_timestamp,
        labels,
        annotations,
        ..ObjectMeta::default()
    };
}

fn reference(r: ObjectReference) -> ObjectReference {
    ObjectReference {
        kind: r.kind,
        namespace: r.namespace,
        name: r.name,
        ..ObjectReference::default()
    }
}

/// `v` with `f` applied to each item, in an allocation of exactly its length (collecting
/// in place would keep the spare room of the original).
fn rebuilt<T>(v: Vec<T>, f: impl FnMut(T) -> T) -> Vec<T> {
    let mut out: Vec<T> = v.into_iter().map(f).collect();
    out.shrink_to_fit();
    out
}

#[cfg(test)]
mod tests;
