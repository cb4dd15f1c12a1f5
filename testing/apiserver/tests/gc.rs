//! Deleting through kube-rs: dependents named by ownerReferences are collected (or
//! orphaned), finalizers hold a deletion until cleared, and watches see each deletion.
#![cfg(test)]

mod support;

use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use mse_test_apiserver::ApiServer;
use serde_json::json;

use support::{api_code, client, within};

async fn create(api: &Api<ConfigMap>, name: &str, owner: Option<&ConfigMap>) -> ConfigMap {
    let mut object = json!({"metadata": {"name": name}});
    if let Some(owner) = owner {
        object["metadata"]["ownerReferences"] = json!([{
            "apiVersion": "v1", "kind": "ConfigMap",
            "name": owner.metadata.name, "uid": owner.metadata.uid,
        }]);
    }
    let cm: ConfigMap = serde_json::from_value(object).unwrap();
    api.create(&PostParams::default(), &cm).await.unwrap()
}

#[tokio::test]
async fn deleting_an_owner_deletes_its_dependents() {
    let server = ApiServer::start().await.unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(client(&server).await);
    let owner = create(&api, "owner", None).await;
    let child = create(&api, "child", Some(&owner)).await;
    create(&api, "grandchild", Some(&child)).await;
    create(&api, "unrelated", None).await;
    let rv = server.resource_version().to_string();
    let mut events = api
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();

    api.delete("owner", &DeleteParams::default()).await.unwrap();
    let mut deleted = Vec::new();
    while deleted.len() < 3 {
        match within("a deletion", events.try_next())
            .await
            .unwrap()
            .unwrap()
        {
            WatchEvent::Deleted(cm) => deleted.push(cm.metadata.name.unwrap()),
            WatchEvent::Bookmark(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(deleted, ["owner", "child", "grandchild"]);
    for name in ["owner", "child", "grandchild"] {
        assert_eq!(api_code(api.get(name).await), (404, "NotFound".to_owned()));
    }
    assert!(api.get("unrelated").await.is_ok());
}

#[tokio::test]
async fn orphaning_keeps_dependents_without_the_reference() {
    let server = ApiServer::start().await.unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(client(&server).await);
    let owner = create(&api, "owner", None).await;
    create(&api, "child", Some(&owner)).await;
    api.delete("owner", &DeleteParams::orphan()).await.unwrap();
    let child = api.get("child").await.unwrap();
    assert!(child.metadata.owner_references.is_none());
}

#[tokio::test]
async fn finalizers_hold_a_deletion_until_cleared() {
    let server = ApiServer::start().await.unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(client(&server).await);
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "held", "finalizers": ["mse.alibabacloud.com/cleanup"]},
    }))
    .unwrap();
    api.create(&PostParams::default(), &cm).await.unwrap();
    api.delete("held", &DeleteParams::default()).await.unwrap();
    let marked = api.get("held").await.unwrap();
    assert!(marked.metadata.deletion_timestamp.is_some());

    // as kube-runtime's finalizer helper clears it: a JSON patch with a test
    let patch: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/metadata/finalizers/0", "value": "mse.alibabacloud.com/cleanup"},
        {"op": "remove", "path": "/metadata/finalizers/0"},
    ]))
    .unwrap();
    api.patch("held", &PatchParams::default(), &Patch::Json::<()>(patch))
        .await
        .unwrap();
    assert_eq!(
        api_code(api.get("held").await),
        (404, "NotFound".to_owned())
    );

    // a failed test operation changes nothing
    api.create(&PostParams::default(), &cm).await.unwrap();
    let wrong: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/metadata/finalizers/0", "value": "other"},
        {"op": "remove", "path": "/metadata/finalizers/0"},
    ]))
    .unwrap();
    let result = api
        .patch("held", &PatchParams::default(), &Patch::Json::<()>(wrong))
        .await;
    assert_eq!(api_code(result).0, 422);
}

#[tokio::test]
async fn deleting_a_namespace_deletes_what_is_in_it() {
    let server = ApiServer::start().await.unwrap();
    let client = client(&server).await;
    server.apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}));
    let shop: Api<ConfigMap> = Api::namespaced(client.clone(), "shop");
    create(&shop, "a", None).await;
    let default: Api<ConfigMap> = Api::default_namespaced(client.clone());
    create(&default, "b", None).await;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client);
    namespaces
        .delete("shop", &DeleteParams::default())
        .await
        .unwrap();
    assert!(
        shop.list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(default.get("b").await.is_ok());
}
