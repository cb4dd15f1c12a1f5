//! The real `mse-controller` binary against an in-memory API server, through a kubeconfig:
//! an MseIngressConfig becomes a gateway, status follows the Deployment and Service, a
//! spec change reaches the Deployment, an invalid spec fails with a message, and deleting
//! the config takes the gateway with it.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail the test loudly"
)]

mod support;

use kube::api::{Api, Patch, PatchParams, PostParams};
use mse_model::MseIngressConfig;
use mse_model::k8s_openapi::api::apps::v1::Deployment;
use mse_model::k8s_openapi::api::core::v1::Service;
use mse_test_apiserver::ApiServer;
use serde_json::{Value, json};

use self::support::{Operator, TEST_MANAGER, eventually, operator_requests, rbac_needs};

const APPS: &str = "apps/v1";
const CORE: &str = "v1";
const MSE: &str = "mse.alibabacloud.com/v1alpha1";

/// What a user (or kubectl) writes: two 2c4g replicas for class `mse`, Ingresses of `shop`.
fn config(replicas: i64, size: &str) -> Value {
    json!({
        "apiVersion": MSE,
        "kind": "MseIngressConfig",
        "metadata": { "name": "gw" },
        "spec": {
            "name": "shop-gateway",
            "common": {
                "instance": { "replicas": replicas, "spec": size },
                "pay": { "payType": "POSTPAY" },
            },
            "ingress": { "local": { "ingressClass": "mse", "watchNamespace": "shop" } },
        },
    })
}

fn status(server: &ApiServer) -> Value {
    server
        .get(MSE, "MseIngressConfig", None, "gw")
        .map(|c| c["status"].clone())
        .unwrap_or_default()
}

fn phase_is(server: &ApiServer, phase: &str, generation: i64) -> Option<Value> {
    let s = status(server);
    (s["phase"] == phase && s["observedGeneration"] == generation).then_some(s)
}

/// Sets a status field of a gateway object through the API server, as the kubelet or a
/// cloud controller would.
async fn set_status<K>(api: &Api<K>, status: Value)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let params = PatchParams {
        field_manager: Some(TEST_MANAGER.to_owned()),
        ..Default::default()
    };
    api.patch_status("gw", &params, &Patch::Merge(json!({ "status": status })))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_becomes_a_gateway_that_follows_spec_and_status() {
    let server = ApiServer::start().await.unwrap();
    let operator = Operator::start(
        &server,
        &[
            "--gateway-namespace",
            "edge",
            "--gateway-image",
            "registry.example/gw:1",
        ],
    );
    let client = operator.client().await;
    let configs = Api::<MseIngressConfig>::all(client.clone());
    let created: MseIngressConfig = serde_json::from_value(config(2, "2c4g")).unwrap();
    let params = PostParams {
        field_manager: Some(TEST_MANAGER.to_owned()),
        ..Default::default()
    };
    let created = configs.create(&params, &created).await.unwrap();
    let uid = created.metadata.uid.clone().unwrap();

    // Its objects appear, owned by it.
    let deployment = eventually("the gateway Deployment", || {
        server.get(APPS, "Deployment", Some("edge"), "gw")
    })
    .await;
    assert_eq!(deployment["spec"]["replicas"], 2);
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "registry.example/gw:1");
    assert_eq!(
        container["resources"]["limits"],
        json!({ "cpu": "2", "memory": "4Gi" })
    );
    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for arg in [
        "--ingress-class=mse",
        "--publish-service=edge/gw",
        "--namespace=shop",
        "--admin-addr=0.0.0.0:9901",
    ] {
        assert!(args.contains(&arg), "{arg} not in {args:?}");
    }
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    let service = eventually("the Service", || {
        server.get(CORE, "Service", Some("edge"), "gw")
    })
    .await;
    assert_eq!(service["spec"]["type"], "LoadBalancer");
    let ports: Vec<&Value> = service["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["port"])
        .collect();
    assert_eq!(ports, [&json!(80), &json!(443)]);
    let class = eventually("the IngressClass", || {
        server.get("networking.k8s.io/v1", "IngressClass", None, "mse")
    })
    .await;
    assert_eq!(class["spec"]["controller"], "mse.alibabacloud.com/ingress");
    assert_eq!(class["spec"]["parameters"]["name"], "gw");
    let pdb = eventually("the PDB", || {
        server.get("policy/v1", "PodDisruptionBudget", Some("edge"), "gw")
    })
    .await;
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);
    let rbac = "rbac.authorization.k8s.io/v1";
    for (api_version, kind, ns, name) in [
        (CORE, "ServiceAccount", Some("edge"), "gw"),
        (rbac, "ClusterRole", None, "mse-ingress-gateway-gw"),
        (rbac, "ClusterRoleBinding", None, "mse-ingress-gateway-gw"),
        (rbac, "Role", Some("edge"), "gw"),
        (rbac, "RoleBinding", Some("edge"), "gw"),
    ] {
        let object = eventually(kind, || server.get(api_version, kind, ns, name)).await;
        assert_eq!(
            object["metadata"]["ownerReferences"][0]["uid"],
            uid.as_str(),
            "{kind}"
        );
    }
    for object in [&deployment, &service, &class, &pdb] {
        let owner = &object["metadata"]["ownerReferences"][0];
        assert_eq!(
            (&owner["kind"], &owner["uid"], &owner["controller"]),
            (&json!("MseIngressConfig"), &json!(uid), &json!(true))
        );
    }

    // Pending -> Running (a replica is ready) -> Listening (the load balancer has an address).
    let pending = eventually("phase Pending", || phase_is(&server, "Pending", 1)).await;
    let ignored = pending["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "SettingsIgnored")
        .unwrap();
    assert_eq!(ignored["status"], "True");
    assert!(
        ignored["message"]
            .as_str()
            .unwrap()
            .contains("spec.common.pay")
    );
    let deployments = Api::<Deployment>::namespaced(client.clone(), "edge");
    set_status(&deployments, json!({ "replicas": 2, "readyReplicas": 1 })).await;
    let running = eventually("phase Running", || phase_is(&server, "Running", 1)).await;
    assert_eq!(running["readyReplicas"], 1);
    let services = Api::<Service>::namespaced(client.clone(), "edge");
    set_status(
        &services,
        json!({ "loadBalancer": { "ingress": [{ "ip": "203.0.113.10" }] } }),
    )
    .await;
    let listening = eventually("phase Listening", || phase_is(&server, "Listening", 1)).await;
    assert_eq!(listening["address"], "203.0.113.10");

    // The API server restarts its watches; a spec change still reaches the Deployment.
    server.cut_watches();
    let spec = PatchParams {
        field_manager: Some(TEST_MANAGER.to_owned()),
        ..Default::default()
    };
    let replicas = json!({ "spec": { "common": { "instance": { "replicas": 4 } } } });
    configs
        .patch("gw", &spec, &Patch::Merge(&replicas))
        .await
        .unwrap();
    eventually("4 replicas", || {
        server
            .get(APPS, "Deployment", Some("edge"), "gw")
            .filter(|d| d["spec"]["replicas"] == 4)
    })
    .await;
    let listening = eventually("status of generation 2", || {
        phase_is(&server, "Listening", 2)
    })
    .await;
    assert_eq!(listening["replicas"], 4);

    // An invalid size fails with a message naming field and value; the gateway keeps running.
    let bad = json!({ "spec": { "common": { "instance": { "spec": "3c6g" } } } });
    configs
        .patch("gw", &spec, &Patch::Merge(&bad))
        .await
        .unwrap();
    let failed = eventually("phase Failed", || phase_is(&server, "Failed", 3)).await;
    assert_eq!(
        failed["message"],
        "spec.common.instance.spec: expected one of 2c4g, 4c8g, 8c16g, 16c32g, got \"3c6g\""
    );
    let reconciled = failed["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Reconciled")
        .unwrap();
    assert_eq!(
        (&reconciled["status"], &reconciled["reason"]),
        (&json!("False"), &json!("InvalidSpec"))
    );
    let deployment = server.get(APPS, "Deployment", Some("edge"), "gw").unwrap();
    assert_eq!(deployment["spec"]["replicas"], 4);
    let good = json!({ "spec": { "common": { "instance": { "spec": "4c8g" } } } });
    configs
        .patch("gw", &spec, &Patch::Merge(&good))
        .await
        .unwrap();
    let healed = eventually("Listening again", || phase_is(&server, "Listening", 4)).await;
    assert!(healed.get("message").is_none_or(Value::is_null), "{healed}");

    check_wire_contract(&server);
    let log = operator.stop().await;
    assert!(log.contains("operator stopped"), "{log}");

    // Deleting the config takes every object with it (the stand-in garbage collector). The
    // operator is stopped first: a reconcile still running when the config goes may apply
    // an object again, which a cluster's garbage collector deletes later for its missing
    // owner, but the stand-in's collects dependents only when the owner is deleted.
    server.delete(MSE, "MseIngressConfig", None, "gw").unwrap();
    for (api_version, kind, ns, name) in [
        (APPS, "Deployment", Some("edge"), "gw"),
        (CORE, "Service", Some("edge"), "gw"),
        (CORE, "ServiceAccount", Some("edge"), "gw"),
        ("policy/v1", "PodDisruptionBudget", Some("edge"), "gw"),
        ("networking.k8s.io/v1", "IngressClass", None, "mse"),
        (rbac, "ClusterRole", None, "mse-ingress-gateway-gw"),
        (rbac, "ClusterRoleBinding", None, "mse-ingress-gateway-gw"),
        (rbac, "Role", Some("edge"), "gw"),
        (rbac, "RoleBinding", Some("edge"), "gw"),
    ] {
        assert!(
            server.get(api_version, kind, ns, name).is_none(),
            "{kind} {name} left behind"
        );
    }
}

/// One server-side apply exactly as the API server received it, and every request the
/// operator made is granted by the ClusterRole in deploy/.
fn check_wire_contract(server: &ApiServer) {
    let requests = operator_requests(server);
    let apply = requests
        .iter()
        .find(|r| r.method == "PATCH" && r.path == "/apis/apps/v1/namespaces/edge/deployments/gw")
        .expect("the Deployment was applied");
    assert_eq!(apply.query, "&force=true&fieldManager=mse-ingress-operator");
    assert_eq!(
        apply.content_type.as_deref(),
        Some("application/apply-patch+yaml")
    );
    let body: Value = serde_json::from_str(&apply.body).unwrap();
    assert_eq!(
        (&body["apiVersion"], &body["kind"]),
        (&json!("apps/v1"), &json!("Deployment"))
    );
    assert!(body.get("status").is_none(), "an apply never sends status");
    let status = requests
        .iter()
        .find(|r| r.path == "/apis/mse.alibabacloud.com/v1alpha1/mseingressconfigs/gw/status")
        .expect("status was written");
    assert_eq!(
        (status.method.as_str(), status.query.as_str()),
        ("PATCH", "&fieldManager=mse-ingress-operator")
    );
    assert_eq!(
        status.content_type.as_deref(),
        Some("application/merge-patch+json")
    );

    // Reconciles of one config never overlap: each opens by reading its IngressClass and
    // closes by listing the classes it made.
    let mut open = false;
    for r in requests.iter().filter(|r| r.method == "GET") {
        if r.path == "/apis/networking.k8s.io/v1/ingressclasses/mse" {
            assert!(!open, "a reconcile started while another was running");
            open = true;
        } else if r.path == "/apis/networking.k8s.io/v1/ingressclasses"
            && r.query.contains("labelSelector")
        {
            assert!(open, "a reconcile ended that had not started");
            open = false;
        }
    }

    let shipped = support::shipped_operator_rules();
    let listed = mse_controller::operator::rbac::policy_rules(
        mse_controller::operator::rbac::OPERATOR_CALLS,
    );
    for r in &requests {
        for (group, resource, verb) in rbac_needs(r) {
            let what = format!(
                "{verb} {resource} ({group:?}) for {} {}?{}",
                r.method, r.path, r.query
            );
            assert!(
                mse_controller::operator::rbac::granted(&shipped, &group, &resource, &verb),
                "deploy/ does not grant {what}"
            );
            assert!(
                mse_controller::operator::rbac::granted(&listed, &group, &resource, &verb),
                "OPERATOR_CALLS lacks {what}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_range_replicas_fail_and_build_nothing() {
    let server = ApiServer::start().await.unwrap();
    let mut bad = config(31, "4c8g");
    bad["metadata"]["name"] = json!("gw");
    server.create(bad).unwrap();
    let operator = Operator::start(&server, &[]);
    let failed = eventually("phase Failed", || phase_is(&server, "Failed", 1)).await;
    assert_eq!(
        failed["message"],
        "spec.common.instance.replicas: expected 0 to 30, got \"31\""
    );
    // The default namespace, and nothing was made in it.
    assert!(
        server
            .get(APPS, "Deployment", Some("mse-ingress"), "gw")
            .is_none()
    );
    assert!(
        server
            .list("networking.k8s.io/v1", "IngressClass")
            .is_empty()
    );
    let log = operator.stop().await;
    assert!(log.contains("expected 0 to 30"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budget_and_class_follow_the_spec() {
    let server = ApiServer::start().await.unwrap();
    server.create(config(2, "4c8g")).unwrap();
    let operator = Operator::start(&server, &["--gateway-namespace", "edge"]);
    eventually("the PDB", || {
        server.get("policy/v1", "PodDisruptionBudget", Some("edge"), "gw")
    })
    .await;
    eventually("class mse", || {
        server.get("networking.k8s.io/v1", "IngressClass", None, "mse")
    })
    .await;

    // One replica: a budget would block every node drain, so it goes.
    let configs = Api::<MseIngressConfig>::all(operator.client().await);
    let spec = PatchParams {
        field_manager: Some(TEST_MANAGER.to_owned()),
        ..Default::default()
    };
    let one = json!({ "spec": { "common": { "instance": { "replicas": 1 } } } });
    configs
        .patch("gw", &spec, &Patch::Merge(&one))
        .await
        .unwrap();
    eventually("generation 2 reconciled", || {
        phase_is(&server, "Pending", 2)
    })
    .await;
    assert!(
        server
            .get("policy/v1", "PodDisruptionBudget", Some("edge"), "gw")
            .is_none()
    );
    assert_eq!(
        server.get(APPS, "Deployment", Some("edge"), "gw").unwrap()["spec"]["replicas"],
        1
    );

    // A new class name: the new IngressClass is made, the old one removed, the gateway told.
    let class = json!({ "spec": { "ingress": { "local": { "ingressClass": "edge-public" } } } });
    configs
        .patch("gw", &spec, &Patch::Merge(&class))
        .await
        .unwrap();
    eventually("generation 3 reconciled", || {
        phase_is(&server, "Pending", 3)
    })
    .await;
    let classes: Vec<Value> = server.list("networking.k8s.io/v1", "IngressClass");
    let names: Vec<&Value> = classes.iter().map(|c| &c["metadata"]["name"]).collect();
    assert_eq!(names, [&json!("edge-public")]);
    let deployment = server.get(APPS, "Deployment", Some("edge"), "gw").unwrap();
    let args = &deployment["spec"]["template"]["spec"]["containers"][0]["args"];
    assert!(
        args.as_array()
            .unwrap()
            .contains(&json!("--ingress-class=edge-public")),
        "{args}"
    );

    // A class another controller owns is left alone, and the config says why.
    server
        .create(json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
            "metadata": { "name": "nginx-public" },
            "spec": { "controller": "k8s.io/ingress-nginx" },
        }))
        .unwrap();
    let taken = json!({ "spec": { "ingress": { "local": { "ingressClass": "nginx-public" } } } });
    configs
        .patch("gw", &spec, &Patch::Merge(&taken))
        .await
        .unwrap();
    let failed = eventually("phase Failed", || phase_is(&server, "Failed", 4)).await;
    assert_eq!(
        failed["message"],
        "IngressClass nginx-public is taken by controller k8s.io/ingress-nginx"
    );
    let nginx = server
        .get("networking.k8s.io/v1", "IngressClass", None, "nginx-public")
        .unwrap();
    assert_eq!(nginx["spec"]["controller"], "k8s.io/ingress-nginx");
    assert!(nginx["metadata"].get("ownerReferences").is_none());
    operator.stop().await;
}
