use k8s_openapi::api::core::v1::Container;
use mse_model::{MseIngressConfig, MseIngressConfigSpec};

use super::*;
use crate::operator::{OperatorOptions, owner_reference};

fn config(spec: serde_json::Value) -> MseIngressConfig {
    let mut c = MseIngressConfig {
        spec: serde_json::from_value::<MseIngressConfigSpec>(spec).unwrap(),
        ..Default::default()
    };
    c.metadata.name = Some("gw".to_owned());
    c.metadata.uid = Some("uid-1".to_owned());
    c
}

fn build(spec: serde_json::Value) -> GatewayObjects {
    let c = config(spec);
    let options = OperatorOptions {
        gateway_image: "registry.example/mse-gateway:1.2".to_owned(),
        gateway_namespace: "edge".to_owned(),
    };
    let plan = Plan::new(&c, &options).unwrap();
    build_all(&plan, &owner_reference(&c).unwrap())
}

fn container(objects: &GatewayObjects) -> &Container {
    let pod = objects
        .deployment
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap();
    &pod.containers[0]
}

#[test]
fn every_object_is_owned_labelled_and_placed() {
    let o = build(serde_json::json!({ "name": "shop-gateway" }));
    let metas = [
        &o.service_account.metadata,
        &o.role.metadata,
        &o.role_binding.metadata,
        &o.deployment.metadata,
        &o.service.metadata,
        &o.pod_disruption_budget.as_ref().unwrap().metadata,
    ];
    for m in metas {
        assert_eq!(m.name.as_deref(), Some("gw"));
        assert_eq!(m.namespace.as_deref(), Some("edge"));
    }
    let cluster = [
        &o.cluster_role.metadata,
        &o.cluster_role_binding.metadata,
        &o.ingress_class.metadata,
    ];
    for m in cluster {
        assert_eq!(m.namespace, None);
    }
    for m in metas.iter().chain(&cluster) {
        let owner = &m.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (
                owner.api_version.as_str(),
                owner.kind.as_str(),
                owner.name.as_str(),
                owner.uid.as_str()
            ),
            (
                "mse.alibabacloud.com/v1alpha1",
                "MseIngressConfig",
                "gw",
                "uid-1"
            )
        );
        assert_eq!(owner.controller, Some(true));
        let labels = m.labels.as_ref().unwrap();
        assert_eq!(
            labels["app.kubernetes.io/managed-by"],
            "mse-ingress-operator"
        );
        assert_eq!(labels["app.kubernetes.io/instance"], "gw");
        assert_eq!(
            m.annotations.as_ref().unwrap()[GATEWAY_NAME_ANNOTATION],
            "shop-gateway"
        );
    }
    assert_eq!(
        o.cluster_role.metadata.name.as_deref(),
        Some("mse-ingress-gateway-gw")
    );
}

#[test]
fn deployment_takes_replicas_size_image_and_probes() {
    let o = build(serde_json::json!({
        "common": { "instance": { "replicas": 5, "spec": "8c16g" } },
    }));
    let spec = o.deployment.spec.as_ref().unwrap();
    assert_eq!(spec.replicas, Some(5));
    assert_eq!(
        spec.selector.match_labels.as_ref(),
        Some(&selector_labels_of("gw"))
    );
    let pod = spec.template.spec.as_ref().unwrap();
    assert_eq!(pod.service_account_name.as_deref(), Some("gw"));
    let c = container(&o);
    assert_eq!(c.image.as_deref(), Some("registry.example/mse-gateway:1.2"));
    let resources = c.resources.as_ref().unwrap();
    for amounts in [
        resources.requests.as_ref().unwrap(),
        resources.limits.as_ref().unwrap(),
    ] {
        assert_eq!(amounts["cpu"].0, "8");
        assert_eq!(amounts["memory"].0, "16Gi");
    }
    let ready = c
        .readiness_probe
        .as_ref()
        .unwrap()
        .http_get
        .as_ref()
        .unwrap();
    assert_eq!(ready.path.as_deref(), Some("/readyz"));
    assert_eq!(ready.port, IntOrString::String("admin".to_owned()));
    let live = c
        .liveness_probe
        .as_ref()
        .unwrap()
        .http_get
        .as_ref()
        .unwrap();
    assert_eq!(live.path.as_deref(), Some("/healthz"));
    let admin = c
        .ports
        .as_ref()
        .unwrap()
        .iter()
        .find(|p| p.name.as_deref() == Some("admin"));
    assert_eq!(admin.unwrap().container_port, 9901);
    assert_eq!(
        c.security_context
            .as_ref()
            .unwrap()
            .allow_privilege_escalation,
        Some(false)
    );
}

fn selector_labels_of(name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "app.kubernetes.io/name".to_owned(),
            "mse-gateway".to_owned(),
        ),
        ("app.kubernetes.io/instance".to_owned(), name.to_owned()),
    ])
}

#[test]
fn gateway_args_point_at_its_class_service_and_namespace() {
    let o = build(serde_json::json!({
        "ingress": { "local": { "ingressClass": "mse", "watchNamespace": "shop" } },
    }));
    assert_eq!(
        container(&o).args.as_deref().unwrap(),
        [
            "--ingress-class=mse",
            "--publish-service=edge/gw",
            "--election-id=gw-leader",
            "--http-addr=0.0.0.0:8080",
            "--https-addr=0.0.0.0:8443",
            "--admin-addr=0.0.0.0:9901",
            "--workers=4",
            "--log-format=json",
            "--namespace=shop",
        ]
    );
    // No namespace flag when every namespace is watched.
    let o = build(serde_json::json!({ "ingress": { "local": { "watchNamespace": "" } } }));
    assert!(
        !container(&o)
            .args
            .as_ref()
            .unwrap()
            .iter()
            .any(|a| a.starts_with("--namespace"))
    );
}

#[test]
fn service_is_a_load_balancer_on_80_and_443() {
    let o = build(serde_json::json!({}));
    let spec = o.service.spec.as_ref().unwrap();
    assert_eq!(spec.type_.as_deref(), Some("LoadBalancer"));
    assert_eq!(spec.selector.as_ref(), Some(&selector_labels_of("gw")));
    let ports: Vec<(i32, Option<IntOrString>)> = spec
        .ports
        .as_ref()
        .unwrap()
        .iter()
        .map(|p| (p.port, p.target_port.clone()))
        .collect();
    assert_eq!(
        ports,
        [
            (80, Some(IntOrString::String("http".to_owned()))),
            (443, Some(IntOrString::String("https".to_owned())))
        ]
    );
}

#[test]
fn pdb_only_with_more_than_one_replica() {
    let o = build(serde_json::json!({ "common": { "instance": { "replicas": 2 } } }));
    let pdb = o.pod_disruption_budget.unwrap().spec.unwrap();
    assert_eq!(pdb.max_unavailable, Some(IntOrString::Int(1)));
    assert_eq!(
        pdb.selector.unwrap().match_labels,
        Some(selector_labels_of("gw"))
    );
    for replicas in [0, 1] {
        let o = build(serde_json::json!({ "common": { "instance": { "replicas": replicas } } }));
        assert_eq!(o.pod_disruption_budget, None);
    }
}

#[test]
fn ingress_class_links_the_config() {
    let o = build(serde_json::json!({ "ingress": { "local": { "ingressClass": "mse" } } }));
    assert_eq!(o.ingress_class.metadata.name.as_deref(), Some("mse"));
    let spec = o.ingress_class.spec.unwrap();
    assert_eq!(
        spec.controller.as_deref(),
        Some("mse.alibabacloud.com/ingress")
    );
    let p = spec.parameters.unwrap();
    assert_eq!(
        (
            p.api_group.as_deref(),
            p.kind.as_str(),
            p.name.as_str(),
            p.namespace
        ),
        (Some("mse.alibabacloud.com"), "MseIngressConfig", "gw", None)
    );
}

#[test]
fn bindings_grant_the_roles_to_the_service_account() {
    let o = build(serde_json::json!({}));
    let crb = &o.cluster_role_binding;
    assert_eq!(crb.role_ref.kind, "ClusterRole");
    assert_eq!(
        Some(&crb.role_ref.name),
        o.cluster_role.metadata.name.as_ref()
    );
    let rb = &o.role_binding;
    assert_eq!(
        (rb.role_ref.kind.as_str(), rb.role_ref.name.as_str()),
        ("Role", "gw")
    );
    for subjects in [&crb.subjects, &rb.subjects] {
        let s = &subjects.as_ref().unwrap()[0];
        assert_eq!(
            (s.kind.as_str(), s.name.as_str(), s.namespace.as_deref()),
            ("ServiceAccount", "gw", Some("edge"))
        );
    }
    let rules = o.role.rules.as_ref().unwrap();
    assert!(crate::operator::rbac::granted(
        rules,
        "coordination.k8s.io",
        "leases",
        "update"
    ));
    let rules = o.cluster_role.rules.as_ref().unwrap();
    assert!(crate::operator::rbac::granted(
        rules,
        "networking.k8s.io",
        "ingresses/status",
        "patch"
    ));
    assert!(!crate::operator::rbac::granted(
        rules,
        "coordination.k8s.io",
        "leases",
        "update"
    ));
}
