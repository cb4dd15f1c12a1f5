//! kube-rs watchers and reflectors against the server: they see every change, and recover
//! from cut watches and from an expired resourceVersion without losing an event.
#![cfg(test)]

mod support;

use std::collections::BTreeSet;

use futures_util::StreamExt;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use mse_test_apiserver::{ApiServer, RequestRecord};
use serde_json::{Value, json};

use support::{client, eventually, within};

fn ingress(name: &str, host: &str) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"rules": [{"host": host}]},
    })
}

/// (namespace, name, resourceVersion) of every object the reflector holds.
fn reflected(store: &Store<Ingress>) -> BTreeSet<(String, String, String)> {
    store
        .state()
        .iter()
        .map(|i| {
            let m = &i.metadata;
            (
                m.namespace.clone().unwrap_or_default(),
                m.name.clone().unwrap_or_default(),
                m.resource_version.clone().unwrap_or_default(),
            )
        })
        .collect()
}

/// The same for what the server stores.
fn stored(server: &ApiServer) -> BTreeSet<(String, String, String)> {
    server
        .list("networking.k8s.io/v1", "Ingress")
        .iter()
        .map(|o| {
            let m = &o["metadata"];
            let s = |k: &str| m[k].as_str().unwrap_or_default().to_owned();
            (s("namespace"), s("name"), s("resourceVersion"))
        })
        .collect()
}

fn host_of(store: &Store<Ingress>, name: &str) -> Option<String> {
    store
        .state()
        .iter()
        .find(|i| i.metadata.name.as_deref() == Some(name))
        .and_then(|i| i.spec.as_ref()?.rules.as_ref()?.first()?.host.clone())
}

fn is_list(r: &RequestRecord) -> bool {
    r.method == "GET" && r.path.ends_with("/ingresses") && !r.query.contains("watch=true")
}

fn is_watch(r: &RequestRecord) -> bool {
    r.path.ends_with("/ingresses") && r.query.contains("watch=true")
}

async fn start_reflector(server: &ApiServer, config: watcher::Config) -> Store<Ingress> {
    let api: Api<Ingress> = Api::all(client(server).await);
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(writer, watcher(api, config).default_backoff());
    tokio::spawn(stream.applied_objects().for_each(|_| async {}));
    within("the reflector's first list", reader.wait_until_ready())
        .await
        .expect("writer alive");
    // the request is recorded in the same step that opens the watch on the server
    eventually("the watch to open", || {
        server.requests().iter().any(is_watch)
    })
    .await;
    reader
}

#[tokio::test]
async fn reflector_sees_create_modify_and_delete() {
    let server = ApiServer::start().await.unwrap();
    server.apply(ingress("before", "before.example"));
    let reader = start_reflector(&server, watcher::Config::default()).await;
    assert_eq!(
        host_of(&reader, "before").as_deref(),
        Some("before.example")
    );

    let api: Api<Ingress> = Api::namespaced(client(&server).await, "shop");
    let created = api
        .create(
            &PostParams::default(),
            &serde_json::from_value(ingress("web", "web.example")).unwrap(),
        )
        .await
        .unwrap();
    eventually("the created Ingress", || host_of(&reader, "web").is_some()).await;

    let mut changed = created.clone();
    changed.spec.as_mut().unwrap().rules.as_mut().unwrap()[0].host = Some("new.example".into());
    api.replace("web", &PostParams::default(), &changed)
        .await
        .unwrap();
    eventually("the modified Ingress", || {
        host_of(&reader, "web").as_deref() == Some("new.example")
    })
    .await;

    api.delete("web", &DeleteParams::default()).await.unwrap();
    eventually("the deleted Ingress to go", || {
        host_of(&reader, "web").is_none()
    })
    .await;
    eventually("the reflector to match the server", || {
        reflected(&reader) == stored(&server)
    })
    .await;
}

#[tokio::test]
async fn reflector_resumes_after_cut_watches_without_relisting() {
    let server = ApiServer::start().await.unwrap();
    server.apply(ingress("a", "a.example"));
    server.apply(ingress("b", "b.example"));
    let reader = start_reflector(&server, watcher::Config::default()).await;
    let watches_before = server.requests().iter().filter(|r| is_watch(r)).count();

    // no await between the cut and the writes: the watcher cannot have reconnected yet,
    // so it must resume from its last resourceVersion and replay these
    server.cut_watches();
    server.apply(ingress("a", "changed.example"));
    server.delete("networking.k8s.io/v1", "Ingress", Some("shop"), "b");
    server.apply(ingress("c", "c.example"));

    eventually("the reflector to match the server after the cut", || {
        reflected(&reader) == stored(&server)
    })
    .await;
    assert_eq!(host_of(&reader, "a").as_deref(), Some("changed.example"));
    let requests = server.requests();
    assert_eq!(
        requests.iter().filter(|r| is_list(r)).count(),
        1,
        "no relist"
    );
    let watches: Vec<&RequestRecord> = requests.iter().filter(|r| is_watch(r)).collect();
    assert!(watches.len() > watches_before, "the watcher reconnected");
}

#[tokio::test]
async fn reflector_relists_after_an_expired_resource_version() {
    let server = ApiServer::start().await.unwrap();
    server.apply(ingress("a", "a.example"));
    server.apply(ingress("b", "b.example"));
    let reader = start_reflector(&server, watcher::Config::default()).await;

    // the watcher's resourceVersion is older than the history once compacted: its resumed
    // watch gets a 410 Expired event and it lists again
    server.cut_watches();
    server.apply(ingress("a", "changed.example"));
    server.delete("networking.k8s.io/v1", "Ingress", Some("shop"), "b");
    server.compact();
    server.apply(ingress("c", "c.example"));

    eventually("the reflector to match the server after the relist", || {
        reflected(&reader) == stored(&server)
    })
    .await;
    assert_eq!(host_of(&reader, "a").as_deref(), Some("changed.example"));
    eventually("a second list", || {
        server.requests().iter().filter(|r| is_list(r)).count() >= 2
    })
    .await;

    // and it keeps watching after the relist
    server.apply(ingress("d", "d.example"));
    eventually("the Ingress created after the relist", || {
        host_of(&reader, "d").is_some()
    })
    .await;
}

#[tokio::test]
async fn streaming_list_reflector_is_ready_and_resumes() {
    let server = ApiServer::start().await.unwrap();
    server.apply(ingress("a", "a.example"));
    let reader = start_reflector(&server, watcher::Config::default().streaming_lists()).await;
    assert_eq!(host_of(&reader, "a").as_deref(), Some("a.example"));
    let requests = server.requests();
    assert!(
        requests
            .iter()
            .any(|r| is_watch(r) && r.query.contains("sendInitialEvents=true")),
        "{requests:?}"
    );
    assert_eq!(requests.iter().filter(|r| is_list(r)).count(), 0);

    server.cut_watches();
    server.apply(ingress("b", "b.example"));
    eventually("the reflector to match the server", || {
        reflected(&reader) == stored(&server)
    })
    .await;
}

#[tokio::test]
async fn reflector_over_many_pages_holds_everything() {
    let server = ApiServer::start().await.unwrap();
    for i in 0..25 {
        server.apply(ingress(&format!("ing-{i:02}"), "x.example"));
    }
    let reader = start_reflector(&server, watcher::Config::default().page_size(4)).await;
    assert_eq!(reflected(&reader), stored(&server));
    let lists = server.requests().iter().filter(|r| is_list(r)).count();
    assert_eq!(lists, 7, "25 objects in pages of 4");
}
