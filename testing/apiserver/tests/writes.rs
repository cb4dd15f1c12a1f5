//! Writes through kube-rs: optimistic concurrency, the status subresource and generations,
//! and server-side apply.
#![cfg(test)]

mod support;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use mse_test_apiserver::ApiServer;
use serde_json::{Value, json};

use support::{api_code, client};

fn generation(d: &Deployment) -> i64 {
    d.metadata.generation.unwrap()
}

fn deployment(replicas: i64, labels: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "gw", "namespace": "default", "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "gw"}},
            "template": {"metadata": {"labels": {"app": "gw"}},
                         "spec": {"containers": [{"name": "gw", "image": "gw:1"}]}},
        },
    })
}

#[tokio::test]
async fn replace_with_a_stale_resource_version_is_a_conflict() {
    let server = ApiServer::start().await.unwrap();
    let api: Api<Ingress> = Api::namespaced(client(&server).await, "shop");
    let ing: Ingress = serde_json::from_value(json!({
        "metadata": {"name": "web"}, "spec": {"rules": [{"host": "a.example"}]},
    }))
    .unwrap();
    let created = api.create(&PostParams::default(), &ing).await.unwrap();

    let mut first = created.clone();
    first.spec.as_mut().unwrap().rules.as_mut().unwrap()[0].host = Some("b.example".into());
    let replaced = api
        .replace("web", &PostParams::default(), &first)
        .await
        .unwrap();
    assert_ne!(
        replaced.metadata.resource_version,
        created.metadata.resource_version
    );

    // a second writer still holding the first version loses
    let mut stale = created.clone();
    stale.spec.as_mut().unwrap().rules.as_mut().unwrap()[0].host = Some("c.example".into());
    let result = api.replace("web", &PostParams::default(), &stale).await;
    assert_eq!(api_code(result), (409, "Conflict".to_owned()));

    // and wins once it has read the fresh version
    stale.metadata.resource_version = replaced.metadata.resource_version.clone();
    let won = api
        .replace("web", &PostParams::default(), &stale)
        .await
        .unwrap();
    let host = won.spec.unwrap().rules.unwrap()[0].host.clone();
    assert_eq!(host.as_deref(), Some("c.example"));

    // a patch carrying a stale resourceVersion is a conflict too
    let patch = json!({"metadata": {"resourceVersion": created.metadata.resource_version},
        "spec": {"rules": [{"host": "d.example"}]}});
    let result = api
        .patch("web", &PatchParams::default(), &Patch::Merge(&patch))
        .await;
    assert_eq!(api_code(result), (409, "Conflict".to_owned()));
}

#[tokio::test]
async fn status_writes_keep_the_generation_and_spec_writes_bump_it() {
    let server = ApiServer::start().await.unwrap();
    let api: Api<Deployment> = Api::default_namespaced(client(&server).await);
    let apply = PatchParams::apply("operator");
    let created = api
        .patch("gw", &apply, &Patch::Apply(deployment(2, json!({}))))
        .await
        .unwrap();
    assert_eq!(generation(&created), 1);

    let status = json!({"status": {"observedGeneration": 1, "replicas": 2}});
    let with_status = api
        .patch_status("gw", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
    assert_eq!(generation(&with_status), 1);
    assert_eq!(with_status.status.as_ref().unwrap().replicas, Some(2));

    // a status write cannot change the spec, a main write cannot change the status
    let both = json!({"spec": {"replicas": 9}, "status": {"replicas": 9}});
    let via_status = api
        .patch_status("gw", &PatchParams::default(), &Patch::Merge(&both))
        .await
        .unwrap();
    assert_eq!(via_status.spec.as_ref().unwrap().replicas, Some(2));
    assert_eq!(via_status.status.as_ref().unwrap().replicas, Some(9));
    assert_eq!(generation(&via_status), 1);
    let via_main = api
        .patch("gw", &PatchParams::default(), &Patch::Merge(&both))
        .await
        .unwrap();
    assert_eq!(via_main.spec.as_ref().unwrap().replicas, Some(9));
    assert_eq!(via_main.status.as_ref().unwrap().replicas, Some(9));
    assert_eq!(generation(&via_main), 2);

    // labels are metadata: no new generation
    let labels = json!({"metadata": {"labels": {"team": "edge"}}});
    let relabelled = api
        .patch("gw", &PatchParams::default(), &Patch::Merge(&labels))
        .await
        .unwrap();
    assert_eq!(generation(&relabelled), 2);

    // replace_status through PUT
    let mut fresh = api.get_status("gw").await.unwrap();
    fresh.status.as_mut().unwrap().ready_replicas = Some(1);
    let put = api
        .replace_status("gw", &PostParams::default(), &fresh)
        .await
        .unwrap();
    assert_eq!(put.status.as_ref().unwrap().ready_replicas, Some(1));
    assert_eq!(generation(&put), 2);
}

#[tokio::test]
async fn server_side_apply_creates_updates_and_removes_dropped_fields() {
    let server = ApiServer::start().await.unwrap();
    let api: Api<Deployment> = Api::default_namespaced(client(&server).await);
    let apply = PatchParams::apply("operator");
    let labels = json!({"app": "gw", "tier": "edge"});
    let created = api
        .patch("gw", &apply, &Patch::Apply(deployment(2, labels)))
        .await
        .unwrap();
    let managed = created.metadata.managed_fields.as_ref().unwrap();
    assert_eq!(managed.len(), 1);
    assert_eq!(managed[0].manager.as_deref(), Some("operator"));
    assert_eq!(managed[0].operation.as_deref(), Some("Apply"));

    // the same apply again changes nothing
    let again = api
        .patch(
            "gw",
            &apply,
            &Patch::Apply(deployment(2, json!({"app": "gw", "tier": "edge"}))),
        )
        .await
        .unwrap();
    assert_eq!(
        again.metadata.resource_version,
        created.metadata.resource_version
    );

    // a label this manager set before and omits now goes away, the new value lands
    let updated = api
        .patch(
            "gw",
            &apply,
            &Patch::Apply(deployment(3, json!({"app": "gw"}))),
        )
        .await
        .unwrap();
    let labels = updated.metadata.labels.clone().unwrap();
    assert_eq!(labels.get("tier"), None);
    assert_eq!(updated.spec.as_ref().unwrap().replicas, Some(3));
    assert_eq!(generation(&updated), 2);

    // a field set by another write (not an apply) survives the manager's applies
    let other = json!({"metadata": {"annotations": {"note": "kept"}}});
    api.patch("gw", &PatchParams::default(), &Patch::Merge(&other))
        .await
        .unwrap();
    let kept = api
        .patch(
            "gw",
            &apply,
            &Patch::Apply(deployment(3, json!({"app": "gw"}))),
        )
        .await
        .unwrap();
    assert_eq!(kept.metadata.annotations.unwrap()["note"], "kept");
}

#[tokio::test]
async fn server_side_apply_conflicts_between_managers_unless_forced() {
    let server = ApiServer::start().await.unwrap();
    let api: Api<Deployment> = Api::default_namespaced(client(&server).await);
    api.patch(
        "gw",
        &PatchParams::apply("operator"),
        &Patch::Apply(deployment(2, json!({}))),
    )
    .await
    .unwrap();
    let scaler = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "gw"}, "spec": {"replicas": 5}});

    let result = api
        .patch("gw", &PatchParams::apply("scaler"), &Patch::Apply(&scaler))
        .await;
    let Err(kube::Error::Api(status)) = result else {
        panic!("expected a conflict, got {result:?}");
    };
    assert_eq!(status.code, 409);
    assert!(
        status
            .message
            .contains("conflict with \"operator\": .spec.replicas"),
        "{}",
        status.message
    );

    // the same value is shared ownership, not a conflict
    let same = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "gw"}, "spec": {"replicas": 2}});
    api.patch("gw", &PatchParams::apply("scaler"), &Patch::Apply(&same))
        .await
        .unwrap();

    let forced = api
        .patch(
            "gw",
            &PatchParams::apply("scaler").force(),
            &Patch::Apply(&scaler),
        )
        .await
        .unwrap();
    assert_eq!(forced.spec.unwrap().replicas, Some(5));
    // the operator no longer owns replicas: its next apply without them leaves them alone
    let mut without = deployment(2, json!({}));
    without["spec"].as_object_mut().unwrap().remove("replicas");
    let after = api
        .patch(
            "gw",
            &PatchParams::apply("operator"),
            &Patch::Apply(&without),
        )
        .await
        .unwrap();
    assert_eq!(after.spec.unwrap().replicas, Some(5));
}

#[tokio::test]
async fn apply_needs_a_field_manager_and_patches_need_an_object() {
    let server = ApiServer::start().await.unwrap();
    let client = client(&server).await;
    let request = http::Request::patch("/apis/apps/v1/namespaces/default/deployments/gw")
        .header("content-type", "application/apply-patch+yaml")
        .body(b"kind: Deployment\napiVersion: apps/v1\n".to_vec())
        .unwrap();
    let result = client.request_text(request).await;
    assert_eq!(api_code(result), (422, "Invalid".to_owned()));

    let request =
        http::Request::patch("/apis/apps/v1/namespaces/default/deployments/gw?fieldManager=a")
            .header("content-type", "application/apply-patch+yaml")
            .body(b"kind: [unclosed".to_vec())
            .unwrap();
    let result = client.request_text(request).await;
    assert_eq!(api_code(result), (400, "BadRequest".to_owned()));

    let api: Api<Deployment> = Api::default_namespaced(client);
    let result = api
        .patch(
            "missing",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {}})),
        )
        .await;
    assert_eq!(api_code(result), (404, "NotFound".to_owned()));
}

#[tokio::test]
async fn apply_to_the_status_of_a_cluster_scoped_custom_resource() {
    let server = ApiServer::start().await.unwrap();
    let gvk = GroupVersionKind::gvk("mse.alibabacloud.com", "v1alpha1", "MseIngressConfig");
    let resource = ApiResource::from_gvk_with_plural(&gvk, "mseingressconfigs");
    let api: Api<DynamicObject> = Api::all_with(client(&server).await, &resource);
    let status = json!({"apiVersion": "mse.alibabacloud.com/v1alpha1", "kind": "MseIngressConfig",
        "metadata": {"name": "default"}, "status": {"phase": "Ready"}});
    let params = PatchParams::apply("mse-operator");
    // /status of a missing object is not found: apply creates only through the main resource
    let missing = api
        .patch_status("default", &params, &Patch::Apply(&status))
        .await;
    assert_eq!(api_code(missing), (404, "NotFound".to_owned()));

    let spec = json!({"apiVersion": "mse.alibabacloud.com/v1alpha1", "kind": "MseIngressConfig",
        "metadata": {"name": "default"}, "spec": {"replicas": 2}, "status": {"phase": "Ignored"}});
    let created = api
        .patch("default", &PatchParams::apply("user"), &Patch::Apply(&spec))
        .await
        .unwrap();
    assert!(
        created.data.get("status").is_none(),
        "status is not set through the main resource"
    );
    let updated = api
        .patch_status("default", &params, &Patch::Apply(&status))
        .await
        .unwrap();
    assert_eq!(updated.data["status"]["phase"], "Ready");
    assert_eq!(updated.data["spec"]["replicas"], 2);
    assert_eq!(updated.metadata.generation, Some(1));
    let managers: Vec<(Option<String>, Option<String>)> = updated
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .map(|m| (m.manager, m.subresource))
        .collect();
    assert_eq!(
        managers,
        [
            (Some("user".to_owned()), None),
            (Some("mse-operator".to_owned()), Some("status".to_owned()))
        ]
    );
}
