//! The watch counts of Kubernetes mode against an API server: lists, restarts after cut
//! watches, relists and errors after an expired resourceVersion, by kind.
#![cfg(test)]

use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use mse_controller::{KubeOptions, KubeSource, WatchCounter, WatchCounts};
use mse_test_apiserver::ApiServer;
use serde_json::json;

const DEADLINE: Duration = Duration::from_secs(30);

async fn client(server: &ApiServer) -> kube::Client {
    let kubeconfig = Kubeconfig::from_yaml(&server.kubeconfig()).expect("kubeconfig parses");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig is usable");
    kube::Client::try_from(config).expect("client builds")
}

fn of(counter: &WatchCounter, kind: &str) -> WatchCounts {
    counter
        .read()
        .into_iter()
        .find(|c| c.kind == kind)
        .unwrap_or_else(|| panic!("no counts for {kind}: {:?}", counter.read()))
}

/// Polls until `condition` holds of `kind`'s counts; fails the test after [`DEADLINE`].
async fn until(
    counter: &WatchCounter,
    kind: &str,
    what: &str,
    condition: impl Fn(&WatchCounts) -> bool,
) -> WatchCounts {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let c = of(counter, kind);
        if condition(&c) {
            return c;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: {kind} still at {c:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn ingress(name: &str, host: &str) -> serde_json::Value {
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"rules": [{"host": host}]},
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_counts_follow_lists_restarts_relists_and_errors() {
    let server = ApiServer::start().await.unwrap();
    server.apply(ingress("a", "a.test"));
    let source = KubeSource::new(client(&server).await, KubeOptions::default()).watch();
    tokio::time::timeout(DEADLINE, source.ready())
        .await
        .expect("ready in time")
        .expect("ready");
    let counter = source.counter();
    // Every kind listed once; the first watch of each is no restart.
    for kind in [
        "Ingress",
        "IngressClass",
        "Service",
        "EndpointSlice",
        "Secret",
        "ConfigMap",
    ] {
        let c = of(&counter, kind);
        assert_eq!(
            (c.lists, c.relists, c.restarts, c.errors),
            (1, 0, 0, 0),
            "{kind}"
        );
    }
    // Wait until the Ingress watch is open, so that the cut below breaks it.
    let watching = |s: &ApiServer| {
        s.requests()
            .iter()
            .any(|r| r.path.ends_with("/ingresses") && r.query.contains("watch="))
    };
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !watching(&server) {
        assert!(tokio::time::Instant::now() < deadline, "no Ingress watch");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Cut watches resume from their resourceVersion: a restart, no list.
    server.cut_watches();
    let c = until(&counter, "Ingress", "a restart after the cut", |c| {
        c.restarts >= 1
    })
    .await;
    assert_eq!((c.lists, c.relists), (1, 0), "{c:?}");

    // An expired resourceVersion: the resumed watch gets 410, the watch lists again.
    // (The ConfigMap write puts the compaction point past every version the Ingress
    // watch has seen.)
    server.apply(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": { "name": "bump", "namespace": "shop" }, "data": { "n": "1" }
    }));
    server.compact();
    server.cut_watches();
    let c = until(&counter, "Ingress", "a relist after the expiry", |c| {
        c.relists >= 1
    })
    .await;
    assert_eq!(c.lists, 1 + c.relists);
    assert!(c.errors >= 1, "the 410 is counted: {c:?}");
    assert!(c.restarts >= 2, "{c:?}");
    source.stop().await.unwrap();
}
