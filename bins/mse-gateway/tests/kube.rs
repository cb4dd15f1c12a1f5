//! The gateway in kube mode, end to end: an in-memory API server on loopback reached
//! through a kubeconfig by the real kube-rs client, echo backends, a real HTTP client.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail the test loudly"
)]

mod support;

use std::collections::BTreeSet;
use std::time::Instant;

use mse_test_apiserver::ApiServer;
use serde_json::json;

use support::kube::{Gate, addr_of, cluster, ingress, options, ready_gateway, service, slice};
use support::{HttpClient, PATIENCE, backends, client, eventually, get};

/// The service that answers `host` on the gateway's HTTP listener, or the status when
/// no backend did.
async fn who(c: &HttpClient, g: &mse_gateway::Running, host: &str) -> Result<String, u16> {
    let r = get(c, g.http_addr().unwrap(), host, "/").await;
    r.service.ok_or(r.status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingress_created_changed_and_deleted_through_the_api_is_served_changed_and_gone() {
    let k = cluster().await;
    let bs = backends(&["v1", "v2"]).await;
    service(&k.api, "shop", "v1", &[&bs[0]]);
    service(&k.api, "shop", "v2", &[&bs[1]]);
    let c = client();
    let g = ready_gateway(&c, &k.kubeconfig, &[]).await;
    assert_eq!(who(&c, &g, "app.test").await, Err(404));

    k.api
        .create(ingress("shop", "app", "app.test", "v1"))
        .unwrap();
    eventually("the new Ingress is served", || async {
        who(&c, &g, "app.test").await.as_deref() == Ok("v1")
    })
    .await;

    k.api.apply(ingress("shop", "app", "app.test", "v2"));
    eventually("the changed Ingress is served", || async {
        who(&c, &g, "app.test").await.as_deref() == Ok("v2")
    })
    .await;

    k.api
        .delete("networking.k8s.io/v1", "Ingress", Some("shop"), "app")
        .unwrap();
    eventually("the deleted Ingress is gone", || async {
        who(&c, &g, "app.test").await == Err(404)
    })
    .await;

    // Diagnostics name API objects by kind, namespace and name, without a file.
    k.api
        .apply(ingress("shop", "broken", "broken.test", "missing"));
    eventually("the missing Service is reported", || async {
        let d = support::admin_json(&c, &g, "/debug/diagnostics").await;
        d.as_array().unwrap().iter().any(|d| {
            d["code"] == "missing-service"
                && d["object"]["name"] == "broken"
                && d["object"]["namespace"] == "shop"
                && d.get("source").is_none()
        })
    })
    .await;
    g.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_scaled_from_one_endpoint_to_three_spreads_traffic_across_all() {
    let k = cluster().await;
    let bs = backends(&["web-a", "web-b", "web-c"]).await;
    service(&k.api, "shop", "web", &[&bs[0]]);
    k.api.apply(ingress("shop", "web", "web.test", "web"));
    let c = client();
    let g = ready_gateway(&c, &k.kubeconfig, &[]).await;
    for _ in 0..10 {
        assert_eq!(who(&c, &g, "web.test").await.as_deref(), Ok("web-a"));
    }

    // Two more pods: their endpoints join the Service.
    k.api.apply(slice("shop", "web", 1, bs[1].addr()));
    k.api.apply(slice("shop", "web", 2, bs[2].addr()));
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + PATIENCE;
    while seen.len() < 3 {
        assert!(Instant::now() < deadline, "only {seen:?} answered");
        if let Ok(s) = who(&c, &g, "web.test").await {
            seen.insert(s);
        }
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        ["web-a", "web-b", "web-c"]
    );
    g.shutdown().await;
}

/// The LIST requests (not watches) the gateway made for Ingresses.
fn ingress_lists(api: &ApiServer) -> usize {
    api.requests()
        .iter()
        .filter(|r| {
            r.method == "GET" && r.path.ends_with("/ingresses") && !r.query.contains("watch=")
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_watches_and_expired_versions_lose_no_change() {
    let k = cluster().await;
    let bs = backends(&["v1", "v2"]).await;
    service(&k.api, "shop", "v1", &[&bs[0]]);
    service(&k.api, "shop", "v2", &[&bs[1]]);
    k.api.apply(ingress("shop", "app", "app.test", "v1"));
    k.api.apply(ingress("shop", "old", "old.test", "v1"));
    let c = client();
    let g = ready_gateway(&c, &k.kubeconfig, &[]).await;
    assert_eq!(who(&c, &g, "app.test").await.as_deref(), Ok("v1"));

    // Every watch is cut, as by a restarting API server; a change right after it arrives
    // when the watches resume.
    k.api.cut_watches();
    k.api.apply(ingress("shop", "app", "app.test", "v2"));
    eventually("the change after the cut is served", || async {
        who(&c, &g, "app.test").await.as_deref() == Ok("v2")
    })
    .await;

    // Now the history is forgotten before the watches are cut: resuming answers 410 Gone
    // and the gateway must list again. (The ConfigMap write puts the compaction point past
    // every version the Ingress watch has seen.)
    let lists = ingress_lists(&k.api);
    k.api.apply(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": { "name": "bump", "namespace": "shop" }, "data": { "n": "1" }
    }));
    k.api.compact();
    k.api.cut_watches();
    k.api.apply(ingress("shop", "app", "app.test", "v1"));
    k.api
        .delete("networking.k8s.io/v1", "Ingress", Some("shop"), "old")
        .unwrap();
    eventually(
        "the change and the deletion after the compaction are served",
        || async {
            who(&c, &g, "app.test").await.as_deref() == Ok("v1")
                && who(&c, &g, "old.test").await == Err(404)
        },
    )
    .await;
    assert!(
        ingress_lists(&k.api) > lists,
        "the expired watch was followed by a new list"
    );
    // The control-plane metrics count the restarts and the relist.
    let metrics = get(&c, g.admin_addr(), "admin", "/metrics").await.body;
    let value = |series: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {series} in:\n{metrics}"))
    };
    assert!(value("mse_ingress_watch_restarts_total{kind=\"Ingress\"} ") >= 2);
    assert!(value("mse_ingress_watch_relists_total{kind=\"Ingress\"} ") >= 1);
    assert!(value("mse_ingress_watch_errors_total{kind=\"Ingress\"} ") >= 1);
    assert!(value("mse_ingress_watch_lists_total{kind=\"Service\"} ") >= 1);
    g.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_503_until_the_api_server_is_reached_and_every_watch_listed() {
    let k = cluster().await;
    let bs = backends(&["web"]).await;
    service(&k.api, "shop", "web", &[&bs[0]]);
    k.api.apply(ingress("shop", "web", "web.test", "web"));

    // The kubeconfig points at a gate that drops every connection for now.
    let gate = Gate::closed(addr_of(&k.api)).await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let text = k
        .api
        .kubeconfig()
        .replace(&k.api.url(), &format!("http://{}", gate.addr));
    std::fs::write(&kubeconfig, text).unwrap();

    let c = client();
    let g = mse_gateway::start(options(&kubeconfig, &[])).await.unwrap();
    // The listeners are up, but nothing is ready while the server cannot be reached.
    eventually("the gateway tries to reach the server", || async {
        gate.refused() >= 3
    })
    .await;
    assert_eq!(
        get(&c, g.admin_addr(), "admin", "/readyz").await.status,
        503
    );
    assert_eq!(
        get(&c, g.admin_addr(), "admin", "/healthz").await.status,
        200
    );
    assert_eq!(who(&c, &g, "web.test").await, Err(404));

    gate.open();
    eventually("/readyz turns 200 once every watch has listed", || async {
        get(&c, g.admin_addr(), "admin", "/readyz").await.status == 200
    })
    .await;
    // Ready means the first table is live: the Ingress is served at once.
    assert_eq!(who(&c, &g, "web.test").await.as_deref(), Ok("web"));
    g.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_scoping_ignores_other_namespaces() {
    let k = cluster().await;
    let bs = backends(&["shop-web", "blog-web"]).await;
    service(&k.api, "shop", "web", &[&bs[0]]);
    service(&k.api, "blog", "web", &[&bs[1]]);
    k.api.apply(ingress("shop", "web", "shop.test", "web"));
    k.api.apply(ingress("blog", "web", "blog.test", "web"));
    let c = client();
    let g = ready_gateway(&c, &k.kubeconfig, &["shop"]).await;
    assert_eq!(who(&c, &g, "shop.test").await.as_deref(), Ok("shop-web"));
    assert_eq!(who(&c, &g, "blog.test").await, Err(404));

    // Later changes too: a new Ingress in the other namespace stays unserved.
    k.api
        .apply(ingress("blog", "more", "more-blog.test", "web"));
    k.api
        .apply(ingress("shop", "more", "more-shop.test", "web"));
    eventually(
        "the new Ingress of the watched namespace is served",
        || async { who(&c, &g, "more-shop.test").await.as_deref() == Ok("shop-web") },
    )
    .await;
    assert_eq!(who(&c, &g, "more-blog.test").await, Err(404));

    // Namespaced kinds were only ever read in the watched namespace.
    for r in k.api.requests() {
        let namespaced = [
            "ingresses",
            "services",
            "endpointslices",
            "secrets",
            "configmaps",
        ]
        .iter()
        .any(|p| r.path.ends_with(&format!("/{p}")));
        if namespaced {
            assert!(
                r.path.contains("/namespaces/shop/"),
                "{} {}",
                r.method,
                r.path
            );
        }
    }
    g.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mse_ingress_config_linked_from_our_class_narrows_its_namespaces() {
    let k = cluster().await;
    let bs = backends(&["shop-web", "blog-web"]).await;
    service(&k.api, "shop", "web", &[&bs[0]]);
    service(&k.api, "blog", "web", &[&bs[1]]);
    k.api.apply(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
        "metadata": { "name": "gw" },
        "spec": {
            "controller": "mse.alibabacloud.com/ingress",
            "parameters": { "apiGroup": "mse.alibabacloud.com", "kind": "MseIngressConfig", "name": "gw" }
        }
    }));
    let config = |ns: &str| {
        json!({
            "apiVersion": "mse.alibabacloud.com/v1alpha1", "kind": "MseIngressConfig",
            "metadata": { "name": "gw" },
            "spec": { "ingress": { "local": { "watchNamespace": ns } } }
        })
    };
    k.api.apply(config("shop"));
    for ns in ["shop", "blog"] {
        let mut ing = ingress(ns, "web", &format!("{ns}.test"), "web");
        ing["spec"]["ingressClassName"] = json!("gw");
        k.api.apply(ing);
    }
    let c = client();
    let g = ready_gateway(&c, &k.kubeconfig, &[]).await;
    assert_eq!(who(&c, &g, "shop.test").await.as_deref(), Ok("shop-web"));
    assert_eq!(who(&c, &g, "blog.test").await, Err(404));

    // Editing the config moves the gateway to the other namespace.
    k.api.apply(config("blog"));
    eventually("the edited watchNamespace applies", || async {
        who(&c, &g, "blog.test").await.as_deref() == Ok("blog-web")
            && who(&c, &g, "shop.test").await == Err(404)
    })
    .await;
    g.shutdown().await;
}

/// The `events.k8s.io/v1` Events that concern Ingress `ns/name` with reason `reason`.
fn events_about(api: &ApiServer, ns: &str, name: &str, reason: &str) -> Vec<serde_json::Value> {
    api.list("events.k8s.io/v1", "Event")
        .into_iter()
        .filter(|e| {
            e["regarding"]["kind"] == "Ingress"
                && e["regarding"]["namespace"] == ns
                && e["regarding"]["name"] == name
                && e["reason"] == reason
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_annotation_produces_one_event_however_often_the_table_is_compiled() {
    let k = cluster().await;
    let bs = backends(&["v1"]).await;
    service(&k.api, "shop", "v1", &[&bs[0]]);
    let c = client();
    let g = ready_gateway(&c, &k.kubeconfig, &[]).await;

    let mut bad = ingress("shop", "app", "app.test", "v1");
    bad["metadata"]["annotations"] =
        json!({ "nginx.ingress.kubernetes.io/proxy-body-size": "lots" });
    k.api.create(bad).unwrap();
    eventually("an Event reports the bad value", || async {
        events_about(&k.api, "shop", "app", "invalid-value")
            .iter()
            .any(|e| {
                e["type"] == "Warning"
                    && e["note"]
                        .as_str()
                        .is_some_and(|n| n.contains("proxy-body-size"))
            })
    })
    .await;

    // Five more compiles, each served before the next, with the bad Ingress unchanged.
    for i in 0..5 {
        let host = format!("other{i}.test");
        k.api
            .create(ingress("shop", &format!("other{i}"), &host, "v1"))
            .unwrap();
        eventually("the new Ingress is served", || async {
            who(&c, &g, &host).await.as_deref() == Ok("v1")
        })
        .await;
    }
    // The Ingress that is still bad has one Event, not one per compile.
    assert_eq!(
        events_about(&k.api, "shop", "app", "invalid-value").len(),
        1
    );
    g.shutdown().await;
}

/// The status code of a `POST /` with a `len`-byte body to `host` on `addr`.
async fn post_status(addr: std::net::SocketAddr, host: &str, len: usize) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n{}",
        "x".repeat(len)
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    let head = String::from_utf8_lossy(&out);
    head.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_configmap_is_read_from_its_own_namespace_when_only_others_are_watched() {
    let k = cluster().await;
    let bs = backends(&["v1"]).await;
    service(&k.api, "shop", "v1", &[&bs[0]]);
    k.api
        .create(ingress("shop", "app", "app.test", "v1"))
        .unwrap();
    let c = client();
    let mut o = options(&k.kubeconfig, &["shop"]);
    o.configmap = Some("ingress/gateway".parse().unwrap());
    let g = mse_gateway::start(o).await.unwrap();
    let http = g.http_addr().unwrap();
    eventually("the Ingress is served", || async {
        who(&c, &g, "app.test").await.as_deref() == Ok("v1")
    })
    .await;
    // ingress-nginx's default body limit, 1m, holds until the ConfigMap says otherwise.
    assert_eq!(post_status(http, "app.test", 100).await, 200);

    k.api
        .create(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": { "name": "gateway", "namespace": "ingress" },
            "data": { "proxy-body-size": "10" }
        }))
        .unwrap();
    eventually("the ConfigMap's body limit applies", || async {
        post_status(http, "app.test", 100).await == 413
    })
    .await;
    assert_eq!(post_status(http, "app.test", 10).await, 200);
    g.shutdown().await;
}

/// The requests the gateway made for Pods (lists and watches).
fn pod_requests(api: &ApiServer) -> usize {
    api.requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/pods"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_are_watched_once_an_ingress_asks_for_a_service_subset_which_then_follows_their_labels()
 {
    let k = cluster().await;
    let bs = backends(&["base", "gray"]).await;
    k.api.apply(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": { "name": "web", "namespace": "shop" },
        "spec": { "ports": [{ "name": "http", "port": 80, "targetPort": "http" }] }
    }));
    // Both pods are on loopback: the endpoints name their pods by targetRef.
    for (i, (pod, b)) in [("web-base", &bs[0]), ("web-gray", &bs[1])]
        .into_iter()
        .enumerate()
    {
        let mut s = slice("shop", "web", i, b.addr());
        s["endpoints"][0]["targetRef"] = json!({ "kind": "Pod", "namespace": "shop", "name": pod });
        k.api.apply(s);
    }
    let pod = |name: &str, labels: serde_json::Value| {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": { "name": name, "namespace": "shop", "labels": labels },
            "spec": { "containers": [{ "name": "app", "image": "example/app" }] },
            "status": { "podIP": "127.0.0.1" }
        })
    };
    k.api.apply(pod("web-base", json!({ "app": "web" })));
    k.api.apply(pod(
        "web-gray",
        json!({ "app": "web", "opensergo.io/canary-gray": "gray" }),
    ));
    k.api.apply(ingress("shop", "web", "web.test", "web"));
    let c = client();
    let g = ready_gateway(&c, &k.kubeconfig, &[]).await;
    assert!(who(&c, &g, "web.test").await.is_ok());
    // No Ingress asks for a subset: Pods are not read at all.
    assert_eq!(pod_requests(&k.api), 0);

    let mut gray = ingress("shop", "gray", "gray.test", "web");
    gray["metadata"]["annotations"] = json!({ "mse.ingress.kubernetes.io/service-subset": "gray" });
    k.api.apply(gray);
    eventually("the gray subset is served by the gray pod only", || async {
        let mut answers = Vec::new();
        for _ in 0..6 {
            answers.push(who(&c, &g, "gray.test").await);
        }
        answers.iter().all(|a| a.as_deref() == Ok("gray"))
    })
    .await;
    assert!(pod_requests(&k.api) > 0);

    // The label moves to the other pod: the subset follows it.
    k.api.apply(pod("web-gray", json!({ "app": "web" })));
    k.api.apply(pod(
        "web-base",
        json!({ "app": "web", "opensergo.io/canary-gray": "gray" }),
    ));
    eventually("the subset follows the label", || async {
        let mut answers = Vec::new();
        for _ in 0..6 {
            answers.push(who(&c, &g, "gray.test").await);
        }
        answers.iter().all(|a| a.as_deref() == Ok("base"))
    })
    .await;
    g.shutdown().await;
}
