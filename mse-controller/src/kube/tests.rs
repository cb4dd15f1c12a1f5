//! Stripping is tested beside it (`strip`); here: building snapshots from stores, which
//! Secrets are read whole, and when the publishing task publishes. Stores are fed by hand
//! with the events a watcher would send; the watches themselves are tested end to end
//! against an API server (`bins/mse-gateway/tests/kube.rs`).

use std::sync::Arc;
use std::time::Duration;

use ::kube::runtime::reflector::{self, Store, store::Writer};
use ::kube::runtime::watcher::Event;
use ::kube::{Client, Config};
use mse_model::api::{Ingress, Pod, Secret, Service};
use mse_model::{Kind, ObjectKey, Snapshot};
use mse_router::CompileOptions;
use serde_json::json;
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use super::assemble::assemble;
use super::pods::{PodWatch, wants_pods};
use super::publish::Publisher;
use super::secrets::{SecretCache, references, wanted};
use super::stores::Stores;
use super::strip::Strip;
use super::watches::Progress;

fn from<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v).unwrap()
}

/// An Ingress of class `class` in `ns` with a TLS entry per secret name and these
/// annotations.
fn ingress(
    ns: &str,
    name: &str,
    class: &str,
    tls: &[&str],
    annotations: serde_json::Value,
) -> Ingress {
    let tls: Vec<_> = tls
        .iter()
        .map(|s| json!({ "hosts": [format!("{name}.test")], "secretName": s }))
        .collect();
    from(json!({
        "metadata": { "name": name, "namespace": ns, "resourceVersion": "1", "annotations": annotations },
        "spec": {
            "ingressClassName": class,
            "tls": tls,
            "rules": [{ "host": format!("{name}.test"), "http": { "paths": [
                { "path": "/", "pathType": "Prefix", "backend": { "service": { "name": "web", "port": { "number": 80 } } } }
            ] } }]
        }
    }))
}

fn secret(ns: &str, name: &str, ty: &str, version: &str) -> Secret {
    from(json!({
        "metadata": { "name": name, "namespace": ns, "resourceVersion": version },
        "type": ty,
        "data": { "tls.crt": "Y3J0", "tls.key": "a2V5", "auth": "dXNlcjpwYXNz" }
    }))
}

fn service(ns: &str, name: &str, version: &str) -> Service {
    from(json!({ "metadata": { "name": name, "namespace": ns, "resourceVersion": version } }))
}

/// Applies a watcher event after stripping its object, as the watch does.
fn apply<K: Strip + ::kube::Resource<DynamicType = ()> + Clone>(
    writer: &mut Writer<K>,
    event: Event<K>,
) {
    writer.apply_watcher_event(&event.modify(Strip::strip));
}

/// A store that has listed `objects`, and its writer.
fn listed<K: Strip + ::kube::Resource<DynamicType = ()> + Clone>(
    objects: Vec<K>,
) -> (Store<K>, Writer<K>) {
    let (store, mut writer) = reflector::store();
    relist(&mut writer, objects);
    (store, writer)
}

fn relist<K: Strip + ::kube::Resource<DynamicType = ()> + Clone>(
    writer: &mut Writer<K>,
    objects: Vec<K>,
) {
    apply(writer, Event::Init);
    for o in objects {
        apply(writer, Event::InitApply(o));
    }
    apply(writer, Event::InitDone);
}

fn names<K: ::kube::Resource<DynamicType = ()>>(list: &[mse_model::Sourced<K>]) -> Vec<String> {
    list.iter()
        .map(|s| {
            let m = s.object.meta();
            format!(
                "{}/{}",
                m.namespace.as_deref().unwrap_or(""),
                m.name.as_deref().unwrap_or("")
            )
        })
        .collect()
}

#[test]
fn a_snapshot_shares_the_stores_objects_sorted_and_without_file_sources() {
    let (shop, _w1) = listed(vec![
        ingress("shop", "b", "mse", &[], json!({})),
        ingress("shop", "a", "mse", &[], json!({})),
    ]);
    let (blog, _w2) = listed(vec![ingress("blog", "z", "mse", &[], json!({}))]);
    let (pods, _w3) = listed(vec![from::<Pod>(json!({
        "metadata": { "name": "web-1", "namespace": "shop", "labels": { "app": "web" } },
        "spec": { "containers": [{ "name": "web" }] },
        "status": { "podIP": "10.0.0.1" }
    }))]);
    let stores = Stores {
        ingresses: vec![shop.clone(), blog],
        pods: vec![pods],
        ..Stores::default()
    };
    let (snapshot, _) = assemble(&stores, &SecretCache::default());
    assert_eq!(names(&snapshot.ingresses), ["blog/z", "shop/a", "shop/b"]);
    assert!(snapshot.ingresses.iter().all(|s| s.source.is_none()));
    assert_eq!(snapshot.generation, 0, "the publisher numbers snapshots");
    // The very objects of the store, not copies.
    let a = shop
        .get(&reflector::ObjectRef::new("a").within("shop"))
        .unwrap();
    assert!(Arc::ptr_eq(&a, &snapshot.ingresses[1].object));
    // Pods come stripped to what service subsets need.
    assert!(snapshot.pods[0].object.spec.is_none());
    assert_eq!(snapshot.len(), 4);
}

#[test]
fn secrets_in_a_snapshot_are_the_tls_ones_and_those_read_whole() {
    let (secrets, _w) = listed(vec![
        secret("shop", "cert", "kubernetes.io/tls", "1"),
        secret("shop", "basic", "Opaque", "2"),
        secret("shop", "unrelated", "Opaque", "3"),
    ]);
    let stores = Stores {
        secrets: vec![secrets],
        ..Stores::default()
    };
    let mut cache = SecretCache::default();
    cache.insert(secret("shop", "basic", "Opaque", "2"));
    let (snapshot, _) = assemble(&stores, &cache);
    assert_eq!(names(&snapshot.secrets), ["shop/basic", "shop/cert"]);
    for s in &snapshot.secrets {
        assert!(
            s.object
                .data
                .as_ref()
                .is_some_and(|d| d.contains_key("tls.crt"))
        );
    }
}

#[test]
fn the_fingerprint_follows_object_versions_not_relists() {
    let (services, mut writer) = listed(vec![
        service("shop", "web", "1"),
        service("shop", "api", "2"),
    ]);
    let stores = Stores {
        services: vec![services],
        ..Stores::default()
    };
    let cache = SecretCache::default();
    let (_, first) = assemble(&stores, &cache);
    assert_eq!(assemble(&stores, &cache).1, first);
    // A relist after a broken watch finds the same objects: nothing to publish.
    relist(
        &mut writer,
        vec![service("shop", "api", "2"), service("shop", "web", "1")],
    );
    assert_eq!(assemble(&stores, &cache).1, first);
    // A new version is a change, and so is a deletion.
    apply(&mut writer, Event::Apply(service("shop", "web", "5")));
    let (_, changed) = assemble(&stores, &cache);
    assert_ne!(changed, first);
    apply(&mut writer, Event::Delete(service("shop", "api", "2")));
    assert_ne!(assemble(&stores, &cache).1, changed);
}

#[test]
fn an_ingress_references_its_tls_and_annotation_secrets_in_its_namespace() {
    let ing = ingress(
        "shop",
        "a",
        "mse",
        &["cert", "cert"],
        json!({
            "nginx.ingress.kubernetes.io/auth-type": "basic",
            "nginx.ingress.kubernetes.io/auth-secret": "basic",
            "nginx.ingress.kubernetes.io/auth-tls-secret": "other/ca",
            "higress.io/backend-protocol": "HTTPS",
            "higress.io/proxy-ssl-secret": "shop/upstream",
        }),
    );
    let key = ObjectKey::new(Kind::Ingress, "shop", "a");
    // The reference into another namespace is refused by the annotation rules: not read.
    assert_eq!(references(&key, &ing), ["basic", "cert", "upstream"]);
    // What the annotation rules ignore is not read either: proxy-ssl-secret applies to
    // HTTPS upstreams only.
    let mut plain = ing;
    let a = plain.metadata.annotations.as_mut().unwrap();
    a.remove("higress.io/backend-protocol");
    assert_eq!(references(&key, &plain), ["basic", "cert"]);
}

/// `references` parses only the annotations that have a key naming a Secret: every key
/// whose value is a Secret reference says so in its name.
#[test]
fn every_secret_reference_key_names_a_secret() {
    let refs: Vec<&str> = mse_annotations::KEYS
        .iter()
        .filter(|k| k.values == "[namespace/]name")
        .map(|k| k.name)
        .collect();
    assert_eq!(refs.len(), 3, "{refs:?}");
    assert!(refs.iter().all(|k| k.contains("secret")), "{refs:?}");
    let key = ObjectKey::new(Kind::Ingress, "shop", "a");
    let none = ingress(
        "shop",
        "a",
        "mse",
        &["cert"],
        json!({
            "nginx.ingress.kubernetes.io/auth-type": "basic",
            "nginx.ingress.kubernetes.io/proxy-body-size": "8m",
        }),
    );
    assert_eq!(references(&key, &none), ["cert"]);
}

#[test]
fn only_secrets_without_data_that_our_ingresses_reference_are_read_whole() {
    let annotations = json!({
        "nginx.ingress.kubernetes.io/auth-type": "basic",
        "nginx.ingress.kubernetes.io/auth-secret": "basic",
    });
    let (ingresses, _wi) = listed(vec![
        ingress(
            "shop",
            "ours",
            "mse",
            &["opaque-cert", "tls-cert", "absent"],
            annotations.clone(),
        ),
        ingress("shop", "theirs", "nginx", &["nginx-cert"], annotations),
    ]);
    let (secrets, _ws) = listed(vec![
        secret("shop", "opaque-cert", "Opaque", "10"),
        secret("shop", "tls-cert", "kubernetes.io/tls", "11"),
        secret("shop", "basic", "Opaque", "12"),
        secret("shop", "nginx-cert", "Opaque", "13"),
    ]);
    let stores = Stores {
        ingresses: vec![ingresses],
        secrets: vec![secrets],
        ..Stores::default()
    };
    let got: Vec<(String, Option<String>)> = wanted(&stores, &CompileOptions::default())
        .into_iter()
        .map(|((ns, name), version)| (format!("{ns}/{name}"), version))
        .collect();
    assert_eq!(
        got,
        [
            ("shop/basic".to_owned(), Some("12".to_owned())),
            ("shop/opaque-cert".to_owned(), Some("10".to_owned())),
        ]
    );
}

// === the publishing task ===
//
// These run on Tokio's paused clock: a sleep returns once every task is idle, so "nothing
// was published" is checked after the publisher has done all it would, and times are
// virtual, exact and independent of the machine.

const COALESCE: Duration = Duration::from_millis(100);

/// A client for a server that is never asked: no Secret is referenced in these tests.
fn offline_client() -> Client {
    Client::try_from(Config::new("http://127.0.0.1:9".parse().unwrap())).unwrap()
}

fn start(
    stores: Stores,
    progress: Progress,
) -> (
    watch::Receiver<Arc<Snapshot>>,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, rx) = watch::channel(Arc::new(Snapshot::default()));
    let (stop, stopped) = oneshot::channel();
    let publisher = Publisher {
        client: offline_client(),
        stores,
        progress,
        selection: CompileOptions::default(),
        coalesce: COALESCE,
        tx,
        pods: PodWatch::new(false, offline_client(), Vec::new()),
    };
    (rx, stop, tokio::spawn(publisher.run(stopped)))
}

async fn next(rx: &mut watch::Receiver<Arc<Snapshot>>) -> Arc<Snapshot> {
    tokio::time::timeout(Duration::from_secs(3600), rx.changed())
        .await
        .expect("a snapshot")
        .expect("the publisher is running");
    rx.borrow_and_update().clone()
}

/// Lets every task run until all are idle.
async fn settle() {
    tokio::time::sleep(Duration::from_secs(60)).await;
}

#[tokio::test(start_paused = true)]
async fn nothing_is_published_before_every_watch_has_listed() {
    let mut progress = Progress::default();
    let ingress_watch = progress.manual("Ingress");
    let service_watch = progress.manual("Service");
    let (ingresses, mut iw) = reflector::store();
    let (services, mut sw) = reflector::store();
    let stores = Stores {
        ingresses: vec![ingresses],
        services: vec![services],
        ..Stores::default()
    };
    let (mut rx, stop, task) = start(stores, progress);

    relist(&mut iw, vec![ingress("shop", "a", "mse", &[], json!({}))]);
    ingress_watch.listed();
    settle().await;
    assert_eq!(rx.borrow().generation, 0, "one watch has not listed yet");

    relist(&mut sw, vec![service("shop", "web", "1")]);
    service_watch.listed();
    let first = next(&mut rx).await;
    assert_eq!(first.generation, 1);
    assert_eq!((first.ingresses.len(), first.services.len()), (1, 1));
    drop(stop);
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_first_change_is_published_at_once_and_a_burst_after_it_together() {
    let mut progress = Progress::default();
    let w = progress.manual("Service");
    let (services, mut writer) = listed(vec![service("shop", "s0", "1")]);
    let stores = Stores {
        services: vec![services],
        ..Stores::default()
    };
    let (mut rx, stop, task) = start(stores, progress);
    w.listed();
    assert_eq!(next(&mut rx).await.generation, 1);
    settle().await;

    // After a quiet spell: published without waiting for the window.
    apply(&mut writer, Event::Apply(service("shop", "s1", "2")));
    w.changed();
    let changed_at = Instant::now();
    let second = next(&mut rx).await;
    assert_eq!((second.generation, second.services.len()), (2, 2));
    assert_eq!(Instant::now(), changed_at, "no wait for the first change");

    // Three more changes right after it: one snapshot, at the end of the window.
    for (i, v) in [(2, "3"), (3, "4"), (4, "5")] {
        apply(
            &mut writer,
            Event::Apply(service("shop", &format!("s{i}"), v)),
        );
        w.changed();
    }
    let third = next(&mut rx).await;
    assert_eq!((third.generation, third.services.len()), (3, 5));
    assert_eq!(Instant::now(), changed_at + COALESCE);
    settle().await;
    assert_eq!(rx.borrow().generation, 3, "the burst made one snapshot");

    // A relist that finds the same objects publishes nothing.
    let same = (0..5)
        .map(|i| service("shop", &format!("s{i}"), ["1", "2", "3", "4", "5"][i]))
        .collect();
    relist(&mut writer, same);
    w.changed();
    settle().await;
    assert_eq!(rx.borrow().generation, 3);

    drop(stop);
    task.await.unwrap();
}

#[test]
fn pods_are_wanted_only_while_a_served_ingress_asks_for_a_subset() {
    let subset = json!({ "mse.ingress.kubernetes.io/service-subset": "gray" });
    let stores = |ingresses: Vec<Ingress>| Stores {
        ingresses: vec![listed(ingresses).0],
        ..Stores::default()
    };
    let options = CompileOptions::default();
    let plain = stores(vec![ingress("shop", "a", "mse", &[], json!({}))]);
    assert!(!wants_pods(&plain, &options));
    let asks = stores(vec![
        ingress("shop", "a", "mse", &[], json!({})),
        ingress("shop", "b", "mse", &[], subset.clone()),
    ]);
    assert!(wants_pods(&asks, &options));
    // An Ingress of another class does not count.
    let other = stores(vec![ingress("shop", "b", "nginx", &[], subset)]);
    assert!(!wants_pods(&other, &options));
}
