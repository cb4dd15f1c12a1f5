//! The Kubernetes objects of one gateway, built from its [`Plan`] (pure functions).
//!
//! Every object carries the same labels and a controller owner reference to the
//! `MseIngressConfig`, so deleting that removes them all (through the garbage collector)
//! and the operator's watches see only its own objects.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, Container, ContainerPort, EnvVar, EnvVarSource, HTTPGetAction,
    ObjectFieldSelector, PodAffinityTerm, PodAntiAffinity, PodSecurityContext, PodSpec,
    PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile, SecurityContext, Service,
    ServiceAccount, ServicePort, ServiceSpec, WeightedPodAffinityTerm,
};
use k8s_openapi::api::networking::v1::{
    IngressClass, IngressClassParametersReference, IngressClassSpec,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use mse_model::{CONTROLLER_NAME, MSE_API_GROUP};

use super::plan::Plan;
use super::rbac::{GATEWAY_CLUSTER_RULES, GATEWAY_NAMESPACE_RULES, policy_rules};

/// The `app.kubernetes.io/managed-by` value on every object the operator makes; its
/// watches select on it.
pub const MANAGED_BY: &str = "mse-ingress-operator";

/// `app.kubernetes.io/name` of every gateway object.
pub const APP_NAME: &str = "mse-gateway";

/// Label with the `MseIngressConfig`'s name (`app.kubernetes.io/instance`).
pub const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";

/// Annotation with the gateway's display name (`spec.name`).
pub const GATEWAY_NAME_ANNOTATION: &str = "mse.alibabacloud.com/gateway-name";

/// Ports inside the pod: unprivileged, so the gateway runs without root or capabilities.
/// The Service maps 80 and 443 onto them.
pub const HTTP_PORT: i32 = 8080;
/// TLS port inside the pod.
pub const HTTPS_PORT: i32 = 8443;
/// The admin listener (probes, metrics), bound on all addresses so the kubelet reaches it.
pub const ADMIN_PORT: i32 = 9901;

/// User and group the gateway runs as (the conventional "nonroot" of distroless images).
const RUN_AS: i64 = 65532;

/// All objects of one gateway, in the order they are applied: identity and permissions
/// first, so the pods can start with them.
#[derive(Clone, Debug, PartialEq)]
pub struct GatewayObjects {
    /// The gateway pods' identity.
    pub service_account: ServiceAccount,
    /// What the gateway reads cluster-wide.
    pub cluster_role: ClusterRole,
    /// Grants `cluster_role` to `service_account`.
    pub cluster_role_binding: ClusterRoleBinding,
    /// Leader-election Lease access in the gateway's namespace.
    pub role: Role,
    /// Grants `role` to `service_account`.
    pub role_binding: RoleBinding,
    /// The gateway pods.
    pub deployment: Deployment,
    /// The load balancer in front of them.
    pub service: Service,
    /// Keeps all but one replica up through voluntary disruptions, with more than one.
    pub pod_disruption_budget: Option<PodDisruptionBudget>,
    /// The class Ingresses name to be served by this gateway.
    pub ingress_class: IngressClass,
}

/// Builds every object of the gateway `plan` describes, owned by `owner`.
pub fn build_all(plan: &Plan, owner: &OwnerReference) -> GatewayObjects {
    GatewayObjects {
        service_account: build_service_account(plan, owner),
        cluster_role: build_cluster_role(plan, owner),
        cluster_role_binding: build_cluster_role_binding(plan, owner),
        role: build_role(plan, owner),
        role_binding: build_role_binding(plan, owner),
        deployment: build_deployment(plan, owner),
        service: build_service(plan, owner),
        pod_disruption_budget: plan.wants_pdb().then(|| build_pdb(plan, owner)),
        ingress_class: build_ingress_class(plan, owner),
    }
}

/// The labels that pick the gateway's pods.
pub fn selector_labels(plan: &Plan) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_owned(), APP_NAME.to_owned()),
        (INSTANCE_LABEL.to_owned(), plan.name.clone()),
    ])
}

fn labels(plan: &Plan) -> BTreeMap<String, String> {
    let mut labels = selector_labels(plan);
    labels.insert(
        "app.kubernetes.io/managed-by".to_owned(),
        MANAGED_BY.to_owned(),
    );
    labels.insert(
        "app.kubernetes.io/component".to_owned(),
        "gateway".to_owned(),
    );
    labels
}

fn meta(plan: &Plan, owner: &OwnerReference, name: &str, namespaced: bool) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: namespaced.then(|| plan.namespace.clone()),
        labels: Some(labels(plan)),
        annotations: Some(BTreeMap::from([(
            GATEWAY_NAME_ANNOTATION.to_owned(),
            plan.gateway_name.clone(),
        )])),
        owner_references: Some(vec![owner.clone()]),
        ..Default::default()
    }
}

fn service_account_subject(plan: &Plan) -> Vec<Subject> {
    vec![Subject {
        kind: "ServiceAccount".to_owned(),
        name: plan.name.clone(),
        namespace: Some(plan.namespace.clone()),
        ..Default::default()
    }]
}

/// The gateway pods' ServiceAccount.
pub fn build_service_account(plan: &Plan, owner: &OwnerReference) -> ServiceAccount {
    ServiceAccount {
        metadata: meta(plan, owner, &plan.name, true),
        ..Default::default()
    }
}

/// The gateway's cluster-wide permissions ([`GATEWAY_CLUSTER_RULES`]).
pub fn build_cluster_role(plan: &Plan, owner: &OwnerReference) -> ClusterRole {
    ClusterRole {
        metadata: meta(plan, owner, &plan.cluster_role_name(), false),
        rules: Some(policy_rules(GATEWAY_CLUSTER_RULES)),
        ..Default::default()
    }
}

/// Binds the gateway's ClusterRole to its ServiceAccount.
pub fn build_cluster_role_binding(plan: &Plan, owner: &OwnerReference) -> ClusterRoleBinding {
    ClusterRoleBinding {
        metadata: meta(plan, owner, &plan.cluster_role_name(), false),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".to_owned(),
            kind: "ClusterRole".to_owned(),
            name: plan.cluster_role_name(),
        },
        subjects: Some(service_account_subject(plan)),
    }
}

/// The gateway's permissions in its own namespace ([`GATEWAY_NAMESPACE_RULES`]).
pub fn build_role(plan: &Plan, owner: &OwnerReference) -> Role {
    Role {
        metadata: meta(plan, owner, &plan.name, true),
        rules: Some(policy_rules(GATEWAY_NAMESPACE_RULES)),
    }
}

/// Binds the gateway's Role to its ServiceAccount.
pub fn build_role_binding(plan: &Plan, owner: &OwnerReference) -> RoleBinding {
    RoleBinding {
        metadata: meta(plan, owner, &plan.name, true),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".to_owned(),
            kind: "Role".to_owned(),
            name: plan.name.clone(),
        },
        subjects: Some(service_account_subject(plan)),
    }
}

/// The gateway's command line, as `mse-gateway` takes it in kube mode.
pub fn gateway_args(plan: &Plan) -> Vec<String> {
    let mut args = vec![
        format!("--ingress-class={}", plan.ingress_class),
        format!("--publish-service={}", plan.service_ref()),
        // One Lease per gateway: two configs' gateways in one namespace elect apart.
        format!("--election-id={}-leader", plan.name),
        format!("--http-addr=0.0.0.0:{HTTP_PORT}"),
        format!("--https-addr=0.0.0.0:{HTTPS_PORT}"),
        format!("--admin-addr=0.0.0.0:{ADMIN_PORT}"),
        format!("--workers={}", plan.size.cpus),
        "--log-format=json".to_owned(),
    ];
    if let Some(ns) = &plan.watch_namespace {
        args.push(format!("--namespace={ns}"));
    }
    args
}

/// The gateway Deployment: `plan.replicas` pods of `plan.size`, probed on the admin port.
pub fn build_deployment(plan: &Plan, owner: &OwnerReference) -> Deployment {
    let selector = selector_labels(plan);
    Deployment {
        metadata: meta(plan, owner, &plan.name, true),
        spec: Some(DeploymentSpec {
            replicas: Some(plan.replicas),
            selector: LabelSelector {
                match_labels: Some(selector.clone()),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(plan)),
                    ..Default::default()
                }),
                spec: Some(pod_spec(plan, selector)),
            },
            ..Default::default()
        }),
        status: None,
    }
}

fn pod_spec(plan: &Plan, selector: BTreeMap<String, String>) -> PodSpec {
    PodSpec {
        service_account_name: Some(plan.name.clone()),
        containers: vec![container(plan)],
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(RUN_AS),
            run_as_group: Some(RUN_AS),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".to_owned(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        // Spread replicas over nodes where the scheduler can, so one node does not take
        // the whole gateway down.
        affinity: Some(Affinity {
            pod_anti_affinity: Some(PodAntiAffinity {
                preferred_during_scheduling_ignored_during_execution: Some(vec![
                    WeightedPodAffinityTerm {
                        weight: 100,
                        pod_affinity_term: PodAffinityTerm {
                            label_selector: Some(LabelSelector {
                                match_labels: Some(selector),
                                ..Default::default()
                            }),
                            topology_key: "kubernetes.io/hostname".to_owned(),
                            ..Default::default()
                        },
                    },
                ]),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn container(plan: &Plan) -> Container {
    let amounts = BTreeMap::from([
        ("cpu".to_owned(), Quantity(plan.size.cpus.to_string())),
        (
            "memory".to_owned(),
            Quantity(format!("{}Gi", plan.size.memory_gib)),
        ),
    ]);
    Container {
        name: "gateway".to_owned(),
        image: Some(plan.image.clone()),
        args: Some(gateway_args(plan)),
        env: Some(vec![
            field_env("POD_NAME", "metadata.name"),
            field_env("POD_NAMESPACE", "metadata.namespace"),
        ]),
        ports: Some(vec![
            container_port("http", HTTP_PORT),
            container_port("https", HTTPS_PORT),
            container_port("admin", ADMIN_PORT),
        ]),
        // Requests equal limits: the size is what MSE would reserve for the replica.
        resources: Some(ResourceRequirements {
            requests: Some(amounts.clone()),
            limits: Some(amounts),
            ..Default::default()
        }),
        readiness_probe: Some(admin_probe("/readyz", 5)),
        liveness_probe: Some(admin_probe("/healthz", 10)),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_owned()]),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn field_env(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.to_owned(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn container_port(name: &str, port: i32) -> ContainerPort {
    ContainerPort {
        name: Some(name.to_owned()),
        container_port: port,
        // Part of the list's merge key for server-side apply: always set it.
        protocol: Some("TCP".to_owned()),
        ..Default::default()
    }
}

fn admin_probe(path: &str, period_seconds: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::String("admin".to_owned()),
            ..Default::default()
        }),
        period_seconds: Some(period_seconds),
        failure_threshold: Some(3),
        ..Default::default()
    }
}

/// The gateway's LoadBalancer Service: ports 80 and 443 onto the pods' HTTP and TLS ports.
pub fn build_service(plan: &Plan, owner: &OwnerReference) -> Service {
    let port = |name: &str, port: i32| ServicePort {
        name: Some(name.to_owned()),
        port,
        target_port: Some(IntOrString::String(name.to_owned())),
        protocol: Some("TCP".to_owned()),
        ..Default::default()
    };
    Service {
        metadata: meta(plan, owner, &plan.name, true),
        spec: Some(ServiceSpec {
            type_: Some("LoadBalancer".to_owned()),
            selector: Some(selector_labels(plan)),
            ports: Some(vec![port("http", 80), port("https", 443)]),
            ..Default::default()
        }),
        status: None,
    }
}

/// At most one gateway pod down at a time through voluntary disruptions (node drains).
pub fn build_pdb(plan: &Plan, owner: &OwnerReference) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: meta(plan, owner, &plan.name, true),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(selector_labels(plan)),
                ..Default::default()
            }),
            ..Default::default()
        }),
        status: None,
    }
}

/// The IngressClass Ingresses name to reach this gateway; its parameters link the
/// `MseIngressConfig`, whose gateway-wide settings the gateway then applies.
pub fn build_ingress_class(plan: &Plan, owner: &OwnerReference) -> IngressClass {
    IngressClass {
        metadata: meta(plan, owner, &plan.ingress_class, false),
        spec: Some(IngressClassSpec {
            controller: Some(CONTROLLER_NAME.to_owned()),
            parameters: Some(IngressClassParametersReference {
                api_group: Some(MSE_API_GROUP.to_owned()),
                kind: "MseIngressConfig".to_owned(),
                name: plan.name.clone(),
                ..Default::default()
            }),
        }),
    }
}

#[cfg(test)]
#[path = "objects_tests.rs"]
mod tests;
