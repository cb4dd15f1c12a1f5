//! The manifests in `deploy/` cannot rot: every document parses into its Kubernetes type
//! without losing a field, `deploy/crd.yaml` is what `mse-controller --print-crd` prints,
//! and the operator's ClusterRole grants exactly what the code says it needs.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail the test loudly"
)]

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use mse_controller::operator::rbac::{self, GATEWAY_CLUSTER_RULES, GATEWAY_NAMESPACE_RULES};
use mse_model::MseIngressConfig;
use mse_model::k8s_openapi::api::apps::v1::Deployment;
use mse_model::k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use mse_model::k8s_openapi::api::networking::v1::IngressClass;
use mse_model::k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule};
use mse_model::k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use self::support::{deploy_dir, documents, shipped_operator_rules};

/// Parses `doc` as `T` and checks that writing it back gives the same JSON, so a
/// misspelt or misplaced field (which a typed parse silently drops) fails the test.
fn typed<T: DeserializeOwned + Serialize>(file: &Path, doc: &Value) -> T {
    let object: T =
        serde_json::from_value(doc.clone()).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let back = serde_json::to_value(&object).unwrap();
    assert_eq!(
        &back,
        doc,
        "{}: fields lost or changed by parsing",
        file.display()
    );
    object
}

#[test]
fn every_document_parses_into_its_type() {
    let docs = documents();
    let mut kinds = BTreeSet::new();
    for (file, doc) in &docs {
        let kind = doc["kind"].as_str().unwrap_or_default().to_owned();
        match (
            doc["apiVersion"].as_str().unwrap_or_default(),
            kind.as_str(),
        ) {
            ("apiextensions.k8s.io/v1", "CustomResourceDefinition") => {
                drop(typed::<CustomResourceDefinition>(file, doc))
            }
            ("v1", "Namespace") => drop(typed::<Namespace>(file, doc)),
            ("v1", "ServiceAccount") => drop(typed::<ServiceAccount>(file, doc)),
            ("rbac.authorization.k8s.io/v1", "ClusterRole") => {
                drop(typed::<ClusterRole>(file, doc))
            }
            ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
                drop(typed::<ClusterRoleBinding>(file, doc))
            }
            ("apps/v1", "Deployment") => drop(typed::<Deployment>(file, doc)),
            ("networking.k8s.io/v1", "IngressClass") => drop(typed::<IngressClass>(file, doc)),
            ("mse.alibabacloud.com/v1alpha1", "MseIngressConfig") => {
                let config: MseIngressConfig = typed(file, doc);
                let plan = mse_controller::operator::Plan::new(&config, &Default::default());
                assert!(plan.is_ok(), "{}: {plan:?}", file.display());
            }
            (api_version, kind) => panic!("{}: unexpected {api_version} {kind}", file.display()),
        }
        kinds.insert(kind);
    }
    let expected = [
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "Deployment",
        "IngressClass",
        "MseIngressConfig",
        "Namespace",
        "ServiceAccount",
    ];
    assert_eq!(
        kinds.iter().map(String::as_str).collect::<Vec<_>>(),
        expected
    );
}

#[test]
fn crd_yaml_is_what_print_crd_prints() {
    let output = Command::new(env!("CARGO_BIN_EXE_mse-controller"))
        .arg("--print-crd")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed = String::from_utf8(output.stdout).unwrap();
    let path = deploy_dir().join("crd.yaml");
    if std::env::var_os("MSE_BLESS").is_some() {
        std::fs::write(&path, &printed).unwrap();
        return;
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == printed,
        "deploy/crd.yaml differs from `mse-controller --print-crd`; regenerate it with \
         `cargo run -p mse-controller-bin -- --print-crd > deploy/crd.yaml` \
         (or MSE_BLESS=1 cargo test -p mse-controller-bin --test deploy)"
    );
    // And the printed CRD is the library's, field for field.
    let parsed: CustomResourceDefinition = serde_yaml_ng::from_str(&printed).unwrap();
    assert_eq!(parsed, mse_controller::operator::crd());
}

fn triples(rules: &[PolicyRule]) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for r in rules {
        for g in r.api_groups.iter().flatten() {
            for res in r.resources.iter().flatten() {
                for v in &r.verbs {
                    out.insert((g.clone(), res.clone(), v.clone()));
                }
            }
        }
    }
    out
}

#[test]
fn operator_cluster_role_grants_exactly_what_the_code_needs() {
    let shipped = shipped_operator_rules();
    let needed: Vec<_> = rbac::operator_permissions().collect();
    let needed = triples(&rbac::policy_rules(&needed));
    for (group, resource, verb) in &needed {
        assert!(
            rbac::granted(&shipped, group, resource, verb),
            "deploy/operator-rbac.yaml does not grant {verb} on {resource} ({group:?})"
        );
    }
    let extra: Vec<_> = triples(&shipped).difference(&needed).cloned().collect();
    assert!(
        extra.is_empty(),
        "deploy/operator-rbac.yaml grants more than the code uses: {extra:?}"
    );
}

#[test]
fn operator_holds_every_permission_it_grants_a_gateway() {
    // Kubernetes refuses to let the operator create a Role granting what it lacks.
    let shipped = shipped_operator_rules();
    for p in GATEWAY_CLUSTER_RULES.iter().chain(GATEWAY_NAMESPACE_RULES) {
        for resource in p.resources {
            for verb in p.verbs {
                assert!(
                    rbac::granted(&shipped, p.group, resource, verb),
                    "{verb} {resource}"
                );
            }
        }
    }
}

#[test]
fn operator_deployment_runs_as_the_bound_service_account() {
    let docs = documents();
    let find = |kind: &str| {
        docs.iter()
            .find(|(_, d)| d["kind"] == kind)
            .unwrap()
            .1
            .clone()
    };
    let deployment: Deployment = serde_json::from_value(find("Deployment")).unwrap();
    let binding: ClusterRoleBinding = serde_json::from_value(find("ClusterRoleBinding")).unwrap();
    let pod = deployment.spec.unwrap().template.spec.unwrap();
    let subject = &binding.subjects.unwrap()[0];
    assert_eq!(
        pod.service_account_name.as_deref(),
        Some(subject.name.as_str())
    );
    assert_eq!(deployment.metadata.namespace, subject.namespace);
    assert_eq!(binding.role_ref.name, "mse-ingress-operator");
}
