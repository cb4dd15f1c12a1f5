//! The direct store access tests use to set the scene: the same store, the same rules and
//! the same watch events as HTTP writes.
#![cfg(test)]

mod support;

use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, WatchEvent, WatchParams};
use mse_test_apiserver::{ApiError, ApiServer};
use serde_json::json;

use support::{client, within};

const MANIFESTS: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
spec:
  ports: [{port: 80}]
status:
  loadBalancer:
    ingress: [{ip: 203.0.113.7}]
---
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata:
  name: mse
spec:
  controller: mse.alibabacloud.com/ingress
"#;

#[tokio::test]
async fn yaml_documents_are_applied_in_order_and_keep_their_status() {
    let server = ApiServer::start().await.unwrap();
    let stored = server.apply_yaml(MANIFESTS);
    assert_eq!(stored.len(), 3);
    let service = server.get("v1", "Service", Some("shop"), "web").unwrap();
    assert_eq!(
        service["status"]["loadBalancer"]["ingress"][0]["ip"],
        "203.0.113.7"
    );
    assert_eq!(service["metadata"]["generation"], 1);
    let class = server
        .get("networking.k8s.io/v1", "IngressClass", None, "mse")
        .unwrap();
    assert!(class["metadata"].get("namespace").is_none());

    // the kube-rs client sees the same objects
    let api: Api<Service> = Api::namespaced(client(&server).await, "shop");
    let seen = api.get("web").await.unwrap();
    assert_eq!(
        seen.metadata.uid.as_deref(),
        service["metadata"]["uid"].as_str()
    );

    // applying the same text again changes nothing
    let rv = server.resource_version();
    server.apply_yaml(MANIFESTS);
    assert_eq!(server.resource_version(), rv);
}

#[tokio::test]
async fn direct_writes_reach_watches_and_bump_generations() {
    let server = ApiServer::start().await.unwrap();
    let api: Api<Service> = Api::default_namespaced(client(&server).await);
    let mut events = api
        .watch(&WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();
    let service = |port: u16| {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
               "spec": {"ports": [{"port": port}]}})
    };
    let created = server.create(service(80)).unwrap();
    assert_eq!(created["metadata"]["namespace"], "default");
    let updated = server.apply(service(8080));
    assert_eq!(updated["metadata"]["generation"], 2);
    assert_eq!(updated["metadata"]["uid"], created["metadata"]["uid"]);
    let deleted = server.delete("v1", "Service", None, "web").unwrap();
    assert_eq!(deleted["spec"]["ports"][0]["port"], 8080);
    assert!(server.get("v1", "Service", None, "web").is_none());
    assert!(server.delete("v1", "Service", None, "web").is_none());

    let mut seen = Vec::new();
    while seen.len() < 3 {
        match within("a watch event", events.try_next())
            .await
            .unwrap()
            .unwrap()
        {
            WatchEvent::Added(_) => seen.push("ADDED"),
            WatchEvent::Modified(_) => seen.push("MODIFIED"),
            WatchEvent::Deleted(_) => seen.push("DELETED"),
            WatchEvent::Bookmark(_) => {}
            WatchEvent::Error(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(seen, ["ADDED", "MODIFIED", "DELETED"]);
}

#[tokio::test]
async fn direct_writes_are_validated() {
    let server = ApiServer::start().await.unwrap();
    let bad = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "9lives"}});
    assert!(matches!(
        server.try_apply(bad),
        Err(ApiError::Invalid { .. })
    ));
    let unknown = json!({"apiVersion": "v1", "kind": "Widget", "metadata": {"name": "w"}});
    assert!(matches!(
        server.try_apply(unknown),
        Err(ApiError::UnknownKind { .. })
    ));
    let err = server.try_apply_yaml("kind: [").unwrap_err();
    assert_eq!(err.code(), 400);
    assert!(server.list("v1", "Widget").is_empty());
    assert_eq!(server.list("v1", "Namespace").len(), 4);
}
