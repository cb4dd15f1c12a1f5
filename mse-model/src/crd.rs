//! The `MseIngressConfig` custom resource (`mse.alibabacloud.com/v1alpha1`, cluster-scoped).
//!
//! Field names follow the MSE documentation so that manifests written for MSE apply
//! unchanged. Cloud-only fields (`common.pay`, `common.network`, SLB specs,
//! `securityGroupType`, SLS logging) are kept as raw JSON: they are accepted and reported
//! as having no effect.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

/// One gateway's configuration.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MseIngressConfig {
    /// Standard object metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The desired gateway.
    #[serde(default)]
    pub spec: MseIngressConfigSpec,
    /// What the operator observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<MseIngressConfigStatus>,
}

/// `spec` of [`MseIngressConfig`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommonSpec {
    /// Replicas and size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<InstanceSpec>,
    /// Billing. Cloud-only, no effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pay: Option<serde_json::Value>,
    /// vSwitches and SLB specs. Cloud-only, no effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<serde_json::Value>,
    /// Security group type. Cloud-only, no effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_group_type: Option<String>,
}

/// `spec.common.instance`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GlobalSpec {
    /// Gateway-wide IP allow and deny lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_access_control: Option<IpAccessControl>,
    /// TLS settings (`enableHardwareAcceleration` is cloud-only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<serde_json::Value>,
}

/// `spec.global.ipAccessControl`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MonitorSpec {
    /// Tracing (`openTelemetry.sampleRate`, `xTrace.sampleRate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracing: Option<serde_json::Value>,
    /// Logging (SLS). Cloud-only, no effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logging: Option<serde_json::Value>,
}

/// `spec.ingress`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressSpec {
    /// The cluster this gateway watches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<IngressLocalSpec>,
}

/// `spec.ingress.local`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
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

/// `status` of [`MseIngressConfig`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MseIngressConfigStatus {
    /// `Pending`, `Running`, `Listening` or `Failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Why, when `Failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
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
