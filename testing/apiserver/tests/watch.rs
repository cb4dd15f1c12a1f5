//! Raw watch streams through kube-rs: which events a write produces, selectors, bookmarks,
//! timeouts and expired resourceVersions.
#![cfg(test)]

mod support;

use std::time::Duration;

use futures_util::{Stream, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::core::PartialObjectMeta;
use mse_test_apiserver::ApiServer;
use serde_json::{Value, json};

use support::{client, within};

fn configmap(name: &str, app: &str, value: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": app}},
        "data": {"key": value},
    })
}

/// The next event of a watch other than a bookmark, as (type, name).
async fn next<K: kube::Resource + Clone>(
    stream: &mut (impl Stream<Item = kube::Result<WatchEvent<K>>> + Unpin),
) -> (String, String) {
    loop {
        let event = next_or_bookmark(stream).await;
        if event.0 != "BOOKMARK" {
            return event;
        }
    }
}

/// The next event of a watch, as (type, name); a bookmark's name is its resourceVersion.
async fn next_or_bookmark<K: kube::Resource + Clone>(
    stream: &mut (impl Stream<Item = kube::Result<WatchEvent<K>>> + Unpin),
) -> (String, String) {
    let event = within("a watch event", stream.try_next())
        .await
        .expect("the watch stream works")
        .expect("the watch stream goes on");
    match event {
        WatchEvent::Added(o) => ("ADDED".into(), o.meta().name.clone().unwrap_or_default()),
        WatchEvent::Modified(o) => ("MODIFIED".into(), o.meta().name.clone().unwrap_or_default()),
        WatchEvent::Deleted(o) => ("DELETED".into(), o.meta().name.clone().unwrap_or_default()),
        WatchEvent::Bookmark(b) => ("BOOKMARK".into(), b.metadata.resource_version),
        WatchEvent::Error(s) => ("ERROR".into(), format!("{} {}", s.code, s.reason)),
    }
}

fn pair(kind: &str, name: &str) -> (String, String) {
    (kind.to_owned(), name.to_owned())
}

#[tokio::test]
async fn writes_that_change_nothing_emit_no_event() {
    let server = ApiServer::start().await.unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(client(&server).await);
    let stored = server.apply(configmap("same", "web", "1"));
    let rv = server.resource_version();
    let mut events = api
        .watch(&WatchParams::default(), &rv.to_string())
        .await
        .unwrap()
        .boxed();

    // the same object through every write path
    server.apply(configmap("same", "web", "1"));
    let mut put: ConfigMap = serde_json::from_value(stored).unwrap();
    api.replace("same", &PostParams::default(), &put)
        .await
        .unwrap();
    let merge = json!({"data": {"key": "1"}});
    api.patch("same", &PatchParams::default(), &Patch::Merge(&merge))
        .await
        .unwrap();
    let apply = configmap("same", "web", "1");
    let params = PatchParams::apply("tests");
    api.patch("same", &params, &Patch::Apply(&apply))
        .await
        .unwrap();
    let changed_by_apply = server.resource_version();
    // the first apply records its manager, which is a change; the second is not
    api.patch("same", &params, &Patch::Apply(&apply))
        .await
        .unwrap();
    assert_eq!(server.resource_version(), changed_by_apply);
    assert_eq!(changed_by_apply, rv + 1);

    put.data = Some([("key".to_owned(), "2".to_owned())].into());
    put.metadata.resource_version = None;
    let last = api
        .replace("same", &PostParams::default(), &put)
        .await
        .unwrap();
    // exactly two events, the apply's and the change's: their resourceVersions follow on
    let mut versions = Vec::new();
    while versions.len() < 2 {
        let event = within("a watch event", events.try_next())
            .await
            .unwrap()
            .unwrap();
        match event {
            WatchEvent::Modified(cm) => versions.push(cm.metadata.resource_version.unwrap()),
            WatchEvent::Bookmark(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        versions,
        [
            changed_by_apply.to_string(),
            last.metadata.resource_version.unwrap()
        ]
    );
    assert_eq!(server.resource_version(), changed_by_apply + 1);
}

#[tokio::test]
async fn objects_leaving_a_selector_are_deleted_from_its_watch() {
    let server = ApiServer::start().await.unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(client(&server).await);
    server.apply(configmap("web-1", "web", "1"));
    server.apply(configmap("api-1", "api", "1"));
    let params = WatchParams::default().labels("app=web");
    let mut events = api.watch(&params, "0").await.unwrap().boxed();
    assert_eq!(next(&mut events).await, pair("ADDED", "web-1"));

    server.apply(configmap("web-1", "api", "1"));
    assert_eq!(next(&mut events).await, pair("DELETED", "web-1"));
    server.apply(configmap("api-1", "web", "1"));
    assert_eq!(next(&mut events).await, pair("ADDED", "api-1"));
    server.apply(configmap("api-1", "web", "2"));
    assert_eq!(next(&mut events).await, pair("MODIFIED", "api-1"));
    server.delete("v1", "ConfigMap", None, "web-1");
    server.delete("v1", "ConfigMap", None, "api-1");
    assert_eq!(next(&mut events).await, pair("DELETED", "api-1"));
}

#[tokio::test]
async fn a_watch_from_before_a_compaction_gets_410_expired() {
    let server = ApiServer::start().await.unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(client(&server).await);
    let old = server.resource_version();
    server.apply(configmap("a", "web", "1"));
    server.compact();
    let mut events = api
        .watch(&WatchParams::default(), &old.to_string())
        .await
        .unwrap()
        .boxed();
    assert_eq!(next(&mut events).await, pair("ERROR", "410 Expired"));
    assert!(
        within("the end of the stream", events.next())
            .await
            .is_none()
    );

    // from the current resourceVersion the watch works
    let now = server.resource_version().to_string();
    let mut events = api
        .watch(&WatchParams::default(), &now)
        .await
        .unwrap()
        .boxed();
    server.apply(configmap("b", "web", "1"));
    assert_eq!(next(&mut events).await, pair("ADDED", "b"));
}

#[tokio::test]
async fn idle_watches_get_bookmarks_and_end_after_their_timeout() {
    let server = ApiServer::builder()
        .bookmark_interval(Duration::from_millis(50))
        .start()
        .await
        .unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(client(&server).await);
    server.apply(configmap("a", "web", "1"));
    let rv = server.resource_version().to_string();
    let params = WatchParams::default().timeout(2);
    assert!(params.bookmarks);
    let mut events = api.watch(&params, &rv).await.unwrap().boxed();
    assert_eq!(next_or_bookmark(&mut events).await, pair("BOOKMARK", &rv));
    // bookmarks follow the global resourceVersion, writes to other resources included
    server.apply(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "s", "namespace": "default"}}));
    let global = server.resource_version().to_string();
    loop {
        let (kind, version) = next_or_bookmark(&mut events).await;
        assert_eq!(kind, "BOOKMARK");
        if version == global {
            break;
        }
        assert_eq!(version, rv);
    }
    // ends by itself: the remaining events are bookmarks, then the stream closes
    let rest: Vec<_> = within("the end of the watch", events.collect::<Vec<_>>()).await;
    assert!(
        rest.iter()
            .all(|e| matches!(e, Ok(WatchEvent::Bookmark(_))))
    );
}

#[tokio::test]
async fn metadata_watches_carry_partial_objects() {
    let server = ApiServer::start().await.unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(client(&server).await);
    server.apply(configmap("a", "web", "1"));
    let mut events = api
        .watch_metadata(&WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();
    let event = within("a metadata event", events.try_next())
        .await
        .unwrap()
        .unwrap();
    let WatchEvent::Added(meta): WatchEvent<PartialObjectMeta<ConfigMap>> = event else {
        panic!("expected ADDED");
    };
    assert_eq!(meta.metadata.name.as_deref(), Some("a"));
    let listed = api.list_metadata(&Default::default()).await.unwrap();
    assert_eq!(listed.items.len(), 1);

    // the server answers metadata only when asked for it
    let request = http::Request::get("/api/v1/namespaces/default/configmaps")
        .header(
            "accept",
            "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
        )
        .body(Vec::new())
        .unwrap();
    let text = client(&server).await.request_text(request).await.unwrap();
    let list: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(list["kind"], "PartialObjectMetadataList");
    assert_eq!(list["items"][0]["metadata"]["name"], "a");
    assert!(list["items"][0].get("data").is_none());
}
