//! What is dropped from objects before they are stored: everything the compiler never
//! reads and that costs memory in a large cluster.
//!
//! - Every kind but Pod: what [`mse_model::slim`] drops (managed fields, the
//!   `kubectl.kubernetes.io/last-applied-configuration` copy, status but an Ingress's,
//!   unread spec fields and labels).
//! - Secret: also `data` and `stringData` unless the type is `kubernetes.io/tls`; the
//!   Secrets an Ingress references are fetched whole on their own (see `secrets`).
//! - Pod: everything but name, namespace, labels, the version fields the watch needs, and
//!   the Pod's addresses.
//!
//! Names, namespaces and `resourceVersion` always stay: the store keys objects by them,
//! and a resumed watch starts from the last version seen.

use mse_model::MseIngressConfig;
use mse_model::api::{
    ConfigMap, EndpointSlice, Ingress, IngressClass, ObjectMeta, Pod, Secret, Service,
};
use mse_model::k8s_openapi::api::core::v1::PodStatus;
use mse_model::slim;

/// The Secret type whose data is always kept.
pub(crate) const TLS_SECRET_TYPE: &str = "kubernetes.io/tls";

/// Reduces an object of one kind to what the gateway reads.
pub(crate) trait Strip {
    /// Drops what the compiler does not read, in place.
    fn strip(&mut self);
}

/// Whether a Secret's data is kept however it is used.
pub(crate) fn is_tls(secret: &Secret) -> bool {
    secret.type_.as_deref() == Some(TLS_SECRET_TYPE)
}

impl Strip for Ingress {
    fn strip(&mut self) {
        slim::ingress(self);
    }
}

impl Strip for IngressClass {
    fn strip(&mut self) {
        slim::ingress_class(self);
    }
}

impl Strip for Service {
    fn strip(&mut self) {
        slim::service(self);
    }
}

impl Strip for EndpointSlice {
    fn strip(&mut self) {
        slim::endpoint_slice(self);
    }
}

impl Strip for ConfigMap {
    fn strip(&mut self) {
        slim::config_map(self);
    }
}

impl Strip for MseIngressConfig {
    fn strip(&mut self) {
        slim::mse_config(self);
    }
}

impl Strip for Secret {
    fn strip(&mut self) {
        slim::secret(self);
        if !is_tls(self) {
            self.data = None;
            self.string_data = None;
        }
    }
}

impl Strip for Pod {
    fn strip(&mut self) {
        let m = std::mem::take(&mut self.metadata);
        self.metadata = ObjectMeta {
            name: m.name,
            namespace: m.namespace,
            labels: m.labels,
            resource_version: m.resource_version,
            uid: m.uid,
            creation_timestamp: m.creation_timestamp,
            deletion_timestamp: m.deletion_timestamp,
            ..ObjectMeta::default()
        };
        self.spec = None;
        self.status = self.status.take().map(|s| PodStatus {
            pod_ip: s.pod_ip,
            pod_ips: s.pod_ips,
            ..PodStatus::default()
        });
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use mse_model::k8s_openapi::ByteString;
    use mse_model::k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
    use mse_model::slim::LAST_APPLIED;
    use serde_json::json;

    use super::*;

    fn from<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
        serde_json::from_value(v).unwrap()
    }

    fn noisy_meta() -> serde_json::Value {
        json!({
            "name": "x", "namespace": "shop", "resourceVersion": "42", "uid": "u-1",
            "labels": { "app": "web" },
            "annotations": {
                LAST_APPLIED: "{\"a\": \"copy\"}",
                "nginx.ingress.kubernetes.io/rewrite-target": "/"
            },
            "managedFields": [{ "manager": "kubectl", "operation": "Apply" }],
            "ownerReferences": [{ "apiVersion": "v1", "kind": "ReplicaSet", "name": "rs", "uid": "u-2" }]
        })
    }

    #[test]
    fn managed_fields_and_the_last_applied_copy_go_and_annotations_stay() {
        let mut ing: Ingress =
            from(json!({ "metadata": noisy_meta(), "spec": { "ingressClassName": "mse" } }));
        ing.strip();
        assert_eq!(ing.metadata.managed_fields, None::<Vec<ManagedFieldsEntry>>);
        let annotations = ing.metadata.annotations.unwrap();
        assert_eq!(
            annotations.keys().collect::<Vec<_>>(),
            ["nginx.ingress.kubernetes.io/rewrite-target"]
        );
        assert_eq!(ing.metadata.resource_version.as_deref(), Some("42"));
        assert_eq!(ing.spec.unwrap().ingress_class_name.as_deref(), Some("mse"));
    }

    #[test]
    fn a_service_loses_its_status_and_keeps_its_spec() {
        let mut svc: Service = from(json!({
            "metadata": noisy_meta(),
            "spec": { "ports": [{ "port": 80 }] },
            "status": { "loadBalancer": { "ingress": [{ "ip": "1.2.3.4" }] } }
        }));
        svc.strip();
        assert!(svc.status.is_none());
        assert_eq!(svc.spec.unwrap().ports.unwrap()[0].port, 80);
    }

    #[test]
    fn only_tls_secrets_keep_their_data() {
        let secret = |ty: &str| -> Secret {
            from(json!({
                "metadata": noisy_meta(), "type": ty,
                "data": { "tls.crt": "Y3J0", "tls.key": "a2V5" }
            }))
        };
        let mut tls = secret(TLS_SECRET_TYPE);
        tls.strip();
        let data = tls.data.unwrap();
        assert_eq!(data.get("tls.crt"), Some(&ByteString(b"crt".to_vec())));
        assert!(tls.metadata.managed_fields.is_none());

        let mut opaque = secret("Opaque");
        opaque.string_data = Some(BTreeMap::from([("auth".to_owned(), "u:p".to_owned())]));
        opaque.strip();
        assert_eq!((opaque.data, opaque.string_data), (None, None));
        // What the watch and a later fetch need stays.
        assert_eq!(opaque.metadata.resource_version.as_deref(), Some("42"));
        assert_eq!(opaque.type_.as_deref(), Some("Opaque"));
    }

    #[test]
    fn a_pod_keeps_its_labels_and_addresses_only() {
        let mut pod: Pod = from(json!({
            "metadata": noisy_meta(),
            "spec": { "containers": [{ "name": "app", "image": "web:1" }], "nodeName": "n1" },
            "status": {
                "phase": "Running", "podIP": "10.0.0.7", "podIPs": [{ "ip": "10.0.0.7" }],
                "hostIP": "192.168.0.1", "conditions": [{ "type": "Ready", "status": "True" }]
            }
        }));
        pod.strip();
        assert!(pod.spec.is_none());
        let m = &pod.metadata;
        assert_eq!(m.labels.as_ref().unwrap()["app"], "web");
        assert_eq!(
            (m.name.as_deref(), m.namespace.as_deref()),
            (Some("x"), Some("shop"))
        );
        assert_eq!(m.resource_version.as_deref(), Some("42"));
        assert!(
            m.annotations.is_none() && m.owner_references.is_none() && m.managed_fields.is_none()
        );
        let status = pod.status.unwrap();
        assert_eq!(status.pod_ip.as_deref(), Some("10.0.0.7"));
        assert_eq!(status.pod_ips.unwrap()[0].ip, "10.0.0.7");
        assert!(status.phase.is_none() && status.host_ip.is_none() && status.conditions.is_none());
    }
}
