//! The `MseIngressConfig` custom resource (`mse.alibabacloud.com/v1alpha1`, cluster-scoped).
//!
//! Field names follow the MSE documentation so that manifests written for MSE apply
//! unchanged. Cloud-only fields (`common.pay`, `common.network`, SLB specs,
//! `securityGroupType`, SLS logging) are kept as raw JSON: they are accepted and reported
//! as having no effect.
//!
//! The types derive [`schemars::JsonSchema`], so the operator builds the
//! CustomResourceDefinition's schema from them: a doc comment here is a field description
//! there.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// One gateway's configuration.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MseIngressConfig {
    /// Standard object metadata.
    // The API server validates metadata itself; a CRD schema leaves it out.
    #[serde(default)]
    #[schemars(skip)]
    pub metadata: ObjectMeta,
    /// The desired gateway.
    #[serde(default)]
    pub spec: MseIngressConfigSpec,
    /// What the operator observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<MseIngressConfigStatus>,
}

/// `spec` of [`MseIngressConfig`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MseIngressConfigSpec {
    /// Gateway name (default `mse-ingress`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Reuse an existing gateway by id (`gw-...`). Cloud-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// On reuse, overwrite the existing gateway's settings. Cloud-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#override: Option<bool>,
    /// Instance sizing and cloud settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub common: Option<CommonSpec>,
    /// Gateway-wide settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global: Option<GlobalSpec>,
    /// Observability.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor: Option<MonitorSpec>,
    /// Which Ingresses this gateway serves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<IngressSpec>,
}

/// `spec.common`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommonSpec {
    /// Replicas and size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<InstanceSpec>,
    /// Billing. Cloud-only, no effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_object")]
    pub pay: Option<serde_json::Value>,
    /// vSwitches and SLB specs. Cloud-only, no effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_object")]
    pub network: Option<serde_json::Value>,
    /// Security group type. Cloud-only, no effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_group_type: Option<String>,
}

/// `spec.common.instance`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstanceSpec {
    /// Gateway replicas, 0 to 30 (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Size: `2c4g`, `4c8g` (default), `8c16g` or `16c32g`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<String>,
}

/// `spec.global`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GlobalSpec {
    /// Gateway-wide IP allow and deny lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_access_control: Option<IpAccessControl>,
    /// TLS settings (`enableHardwareAcceleration` is cloud-only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_object")]
    pub tls: Option<serde_json::Value>,
}

/// `spec.global.ipAccessControl`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IpAccessControl {
    /// Only these addresses or CIDRs may connect, when non-empty.
    #[serde(default)]
    pub whitelist: Vec<String>,
    /// These addresses or CIDRs are refused.
    #[serde(default)]
    pub blacklist: Vec<String>,
}

/// `spec.monitor`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MonitorSpec {
    /// Tracing (`openTelemetry.sampleRate`, `xTrace.sampleRate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_object")]
    pub tracing: Option<serde_json::Value>,
    /// Logging (SLS). Cloud-only, no effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_object")]
    pub logging: Option<serde_json::Value>,
}

/// `spec.ingress`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IngressSpec {
    /// The cluster this gateway watches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<IngressLocalSpec>,
}

/// `spec.ingress.local`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IngressLocalSpec {
    /// Unset: watch nothing; `""`: every Ingress; `nginx`: nginx-class and unclassed;
    /// anything else: that class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_class: Option<String>,
    /// Empty: every namespace; else only this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch_namespace: Option<String>,
}

/// `status` of [`MseIngressConfig`], written by the operator.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MseIngressConfigStatus {
    /// `Pending`, `Running`, `Listening` or `Failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// Why, when `Failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Desired gateway replicas (`spec.common.instance.replicas` or its default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Gateway replicas that pass their readiness probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    /// The load balancer's address (IP or host name), once it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The latest observations of the gateway's state, one per `type`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<StatusCondition>,
}

/// Where a gateway is in its life: `status.phase`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Phase {
    /// Its objects are (being) created; no replica is ready yet.
    Pending,
    /// At least one replica is ready; the load balancer has no address yet.
    Running,
    /// Ready replicas behind a load balancer with an address.
    Listening,
    /// The spec cannot be applied; `message` says why.
    Failed,
}

/// One condition in `status.conditions`, shaped like Kubernetes' `metav1.Condition`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusCondition {
    /// What the condition is about, in CamelCase (for example `Available`).
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// A CamelCase word for the last transition.
    pub reason: String,
    /// What happened, for people.
    pub message: String,
    /// When `status` last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "date_time")]
    pub last_transition_time: Option<Time>,
    /// The `metadata.generation` the condition was set for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Schema of a field kept as raw JSON: any object, stored as written.
fn free_form_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "nullable": true,
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// Schema of an optional RFC 3339 time.
fn date_time(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "format": "date-time", "nullable": true })
}

// Written with its `apiVersion` and `kind`, as every Kubernetes object is, so a client can
// create or apply it as it is. (Reading ignores them: the loader dispatched on them.)
impl Serialize for MseIngressConfig {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use k8s_openapi::Resource;
        use serde::ser::SerializeStruct;

        let fields = 4 + usize::from(self.status.is_some());
        let mut s = serializer.serialize_struct("MseIngressConfig", fields)?;
        s.serialize_field("apiVersion", Self::API_VERSION)?;
        s.serialize_field("kind", Self::KIND)?;
        s.serialize_field("metadata", &self.metadata)?;
        s.serialize_field("spec", &self.spec)?;
        if let Some(status) = &self.status {
            s.serialize_field("status", status)?;
        }
        s.end()
    }
}

// The k8s-openapi traits make the resource usable with any Kubernetes client that is
// generic over them (kube-rs's `Api<MseIngressConfig>` among them) without this crate
// depending on a client.
impl k8s_openapi::Resource for MseIngressConfig {
    const API_VERSION: &'static str = "mse.alibabacloud.com/v1alpha1";
    const GROUP: &'static str = "mse.alibabacloud.com";
    const KIND: &'static str = "MseIngressConfig";
    const VERSION: &'static str = "v1alpha1";
    const URL_PATH_SEGMENT: &'static str = "mseingressconfigs";
    type Scope = k8s_openapi::ClusterResourceScope;
}

impl k8s_openapi::ListableResource for MseIngressConfig {
    const LIST_KIND: &'static str = "MseIngressConfigList";
}

impl k8s_openapi::Metadata for MseIngressConfig {
    type Ty = ObjectMeta;

    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_as_a_kubernetes_object() {
        let mut config = MseIngressConfig::default();
        config.metadata.name = Some("gw".to_owned());
        let json = serde_json::to_value(&config).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "apiVersion": "mse.alibabacloud.com/v1alpha1",
                "kind": "MseIngressConfig",
                "metadata": { "name": "gw" },
                "spec": {},
            })
        );
        assert_eq!(
            serde_json::from_value::<MseIngressConfig>(json).unwrap(),
            config
        );
    }

    #[test]
    fn status_uses_the_kubernetes_field_names() {
        let json = serde_json::json!({
            "phase": "Failed",
            "message": "spec.common.instance.spec: expected one of 2c4g, 4c8g, 8c16g, 16c32g, got \"3c6g\"",
            "observedGeneration": 4,
            "replicas": 3,
            "readyReplicas": 1,
            "address": "203.0.113.7",
            "conditions": [{
                "type": "Reconciled",
                "status": "False",
                "reason": "InvalidSpec",
                "message": "spec.common.instance.spec: ...",
                "lastTransitionTime": "2026-01-02T03:04:05Z",
                "observedGeneration": 4,
            }],
        });
        let status: MseIngressConfigStatus = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(status.phase, Some(Phase::Failed));
        assert_eq!(status.conditions[0].type_, "Reconciled");
        assert!(status.conditions[0].last_transition_time.is_some());
        assert_eq!(serde_json::to_value(&status).unwrap(), json);
    }
}
