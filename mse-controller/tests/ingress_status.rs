//! Ingress status against the in-memory API server, through the real kube-rs client.
#![cfg(test)]

mod status_support;

use std::sync::Arc;

use mse_controller::status::{IngressStatusWriter, PublishAddress};
use mse_controller::{Compiled, run_compile_loop};
use mse_model::Snapshot;
use mse_router::{CompileOptions, compile};
use mse_test_apiserver::ApiServer;
use serde_json::{Value, json};
use status_support::{client, eventually, ingress, lb_status, snapshot, within, writes_since};
use tokio::sync::watch;

/// Two Ingresses of ours, one of another controller that has its own address.
fn fixtures(server: &ApiServer) {
    server.apply(ingress("shop", "mse", "shop.example.com"));
    server.apply(ingress("blog", "mse", "blog.example.com"));
    let mut other = ingress("legacy", "nginx", "legacy.example.com");
    other["status"] = json!({ "loadBalancer": { "ingress": [{ "ip": "198.51.100.1" }] } });
    server.apply(other);
}

fn fixed(addresses: &str) -> mse_controller::status::Addresses {
    let PublishAddress::Fixed(list) = PublishAddress::parse_fixed(addresses).unwrap() else {
        unreachable!()
    };
    list.iter()
        .map(|a| {
            let key = if a.parse::<std::net::IpAddr>().is_ok() {
                "ip"
            } else {
                "hostname"
            };
            serde_json::from_value(json!({ key: a })).unwrap()
        })
        .collect()
}

fn ours(s: &Snapshot) -> Vec<mse_model::ObjectKey> {
    compile(s, &CompileOptions::default()).ingresses().to_vec()
}

#[tokio::test]
async fn our_ingresses_get_the_address_once_and_others_are_untouched() {
    let server = ApiServer::start().await.unwrap();
    fixtures(&server);
    let client = client(&server).await;
    let mut writer = IngressStatusWriter::new(client.clone());
    let addresses = fixed("203.0.113.7,lb.example.com");

    let before = server.requests().len();
    let s1 = snapshot(&client, 1).await;
    let report = writer.sync(&ours(&s1), &s1.ingresses, &addresses).await;
    assert_eq!((report.updated, report.cleared, report.failed), (2, 0, 0));
    let expected = json!([{ "ip": "203.0.113.7" }, { "hostname": "lb.example.com" }]);
    assert_eq!(lb_status(&server, "shop"), expected);
    assert_eq!(lb_status(&server, "blog"), expected);
    assert_eq!(
        lb_status(&server, "legacy"),
        json!([{ "ip": "198.51.100.1" }])
    );

    // The wire contract: a merge patch of the status subresource, nothing else.
    let writes = writes_since(&server, before);
    assert_eq!(writes.len(), 2, "{writes:?}");
    let mut paths: Vec<&str> = writes.iter().map(|r| r.path.as_str()).collect();
    paths.sort_unstable();
    assert_eq!(
        paths,
        [
            "/apis/networking.k8s.io/v1/namespaces/default/ingresses/blog/status",
            "/apis/networking.k8s.io/v1/namespaces/default/ingresses/shop/status",
        ]
    );
    for w in &writes {
        assert_eq!(w.method, "PATCH");
        assert_eq!(
            w.content_type.as_deref(),
            Some("application/merge-patch+json")
        );
        let query: Vec<&str> = w.query.split('&').filter(|p| !p.is_empty()).collect();
        assert_eq!(query, ["fieldManager=mse-gateway"]);
        let body: Value = serde_json::from_str(&w.body).unwrap();
        assert_eq!(
            body,
            json!({ "status": { "loadBalancer": { "ingress": expected } } })
        );
    }

    // Nothing changed: no request at all, whether the input shows our writes already or
    // not yet.
    let before = server.requests().len();
    let report = writer.sync(&ours(&s1), &s1.ingresses, &addresses).await;
    assert_eq!((report.updated, report.cleared), (0, 0));
    assert_eq!(
        server.requests().len(),
        before,
        "{:?}",
        &server.requests()[before..]
    );
    let s2 = snapshot(&client, 2).await;
    let before = server.requests().len();
    let report = writer.sync(&ours(&s2), &s2.ingresses, &addresses).await;
    assert_eq!((report.updated, report.cleared), (0, 0));
    assert_eq!(server.requests().len(), before);

    // A writer with no memory (a new leader) also writes nothing when status is right.
    let mut fresh = IngressStatusWriter::new(client.clone());
    fresh.sync(&ours(&s2), &s2.ingresses, &addresses).await;
    assert_eq!(server.requests().len(), before);
}

#[tokio::test]
async fn an_ingress_moved_out_of_our_class_is_cleared() {
    let server = ApiServer::start().await.unwrap();
    fixtures(&server);
    let client = client(&server).await;
    let mut writer = IngressStatusWriter::new(client.clone());
    let addresses = fixed("203.0.113.7");
    let s = snapshot(&client, 1).await;
    writer.sync(&ours(&s), &s.ingresses, &addresses).await;
    assert_eq!(lb_status(&server, "blog"), json!([{ "ip": "203.0.113.7" }]));

    // blog moves to another class, keeping the status we wrote.
    let mut moved = server
        .get("networking.k8s.io/v1", "Ingress", Some("default"), "blog")
        .unwrap();
    moved["spec"]["ingressClassName"] = json!("nginx");
    server.apply(moved);
    let before = server.requests().len();
    let s = snapshot(&client, 2).await;
    let report = writer.sync(&ours(&s), &s.ingresses, &addresses).await;
    assert_eq!((report.updated, report.cleared), (0, 1));
    assert_eq!(lb_status(&server, "blog"), Value::Null);
    assert_eq!(lb_status(&server, "shop"), json!([{ "ip": "203.0.113.7" }]));
    assert_eq!(
        lb_status(&server, "legacy"),
        json!([{ "ip": "198.51.100.1" }])
    );
    let writes = writes_since(&server, before);
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert!(writes[0].path.ends_with("/ingresses/blog/status"));
    let body: Value = serde_json::from_str(&writes[0].body).unwrap();
    assert_eq!(
        body,
        json!({ "status": { "loadBalancer": { "ingress": null } } })
    );

    // An Ingress that moved to a controller which has already written its own address is
    // not touched.
    let mut taken = server
        .get("networking.k8s.io/v1", "Ingress", Some("default"), "blog")
        .unwrap();
    taken["spec"]["ingressClassName"] = json!("mse");
    server.apply(taken);
    let s = snapshot(&client, 3).await;
    writer.sync(&ours(&s), &s.ingresses, &addresses).await;
    assert_eq!(lb_status(&server, "blog"), json!([{ "ip": "203.0.113.7" }]));
    let mut taken = server
        .get("networking.k8s.io/v1", "Ingress", Some("default"), "blog")
        .unwrap();
    taken["spec"]["ingressClassName"] = json!("nginx");
    taken["status"] = json!({ "loadBalancer": { "ingress": [{ "ip": "198.51.100.2" }] } });
    server.apply(taken);
    let s = snapshot(&client, 4).await;
    let after_list = server.requests().len();
    let report = writer.sync(&ours(&s), &s.ingresses, &addresses).await;
    assert_eq!((report.updated, report.cleared), (0, 0));
    assert_eq!(server.requests().len(), after_list);
    assert_eq!(
        lb_status(&server, "blog"),
        json!([{ "ip": "198.51.100.2" }])
    );

    // A new leader with no memory of that write still clears an Ingress that left our
    // class carrying exactly our address, and leaves one with another address alone.
    let mut moved = server
        .get("networking.k8s.io/v1", "Ingress", Some("default"), "shop")
        .unwrap();
    moved["spec"]["ingressClassName"] = json!("nginx");
    server.apply(moved);
    let s = snapshot(&client, 5).await;
    let mut fresh = IngressStatusWriter::new(client.clone());
    let report = fresh.sync(&ours(&s), &s.ingresses, &addresses).await;
    assert_eq!((report.updated, report.cleared), (0, 1));
    assert_eq!(lb_status(&server, "shop"), Value::Null);
    assert_eq!(
        lb_status(&server, "legacy"),
        json!([{ "ip": "198.51.100.1" }])
    );
}

fn load_balancer(ip: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": { "name": "mse-gateway", "namespace": "ingress" },
        "spec": { "type": "LoadBalancer", "clusterIP": "10.96.0.10",
                  "ports": [{ "name": "http", "port": 80 }] },
        "status": { "loadBalancer": { "ingress": [{ "ip": ip }] } }
    })
}

/// The compile loop over a snapshot channel, publishing into a `watch` as the gateway does.
fn compile_into_watch(
    snapshots: watch::Receiver<Arc<Snapshot>>,
) -> watch::Receiver<Option<Compiled>> {
    let (tx, rx) = watch::channel(None);
    tokio::spawn(run_compile_loop(
        snapshots,
        CompileOptions::default(),
        move |c| {
            tx.send_replace(Some(c));
        },
    ));
    rx
}

#[tokio::test]
async fn a_change_of_the_publish_service_address_reaches_every_ingress() {
    let server = ApiServer::start().await.unwrap();
    fixtures(&server);
    server.apply(load_balancer("203.0.113.7"));
    let client = client(&server).await;
    let (snapshot_tx, snapshots) = watch::channel(Arc::new(snapshot(&client, 1).await));
    let compiled = compile_into_watch(snapshots);
    let addresses = PublishAddress::parse_service("ingress/mse-gateway")
        .unwrap()
        .watch(client.clone());
    let (_leader_tx, leader) = watch::channel(true);
    let writer = tokio::spawn(IngressStatusWriter::new(client.clone()).run(
        compiled,
        addresses.subscribe(),
        leader,
    ));

    let first = json!([{ "ip": "203.0.113.7" }]);
    eventually("the first address", || {
        lb_status(&server, "shop") == first && lb_status(&server, "blog") == first
    })
    .await;

    server.apply(load_balancer("203.0.113.99"));
    let second = json!([{ "ip": "203.0.113.99" }]);
    eventually("the new address", || {
        lb_status(&server, "shop") == second && lb_status(&server, "blog") == second
    })
    .await;
    assert_eq!(
        lb_status(&server, "legacy"),
        json!([{ "ip": "198.51.100.1" }])
    );

    // The Service gone: the address is unknown, and status stays as it is.
    server.delete("v1", "Service", Some("ingress"), "mse-gateway");
    let mut unknown = addresses.subscribe();
    within(
        "the address to be unknown",
        unknown.wait_for(Option::is_none),
    )
    .await
    .unwrap();
    // A new compile with the address unknown; the writer has seen it once it stops (the
    // compile loop and then the writer end when their input closes, after its last value).
    snapshot_tx.send_replace(Arc::new(snapshot(&client, 2).await));
    drop(snapshot_tx);
    within("the writer to stop", writer).await.unwrap();
    assert_eq!(lb_status(&server, "shop"), second);
    assert_eq!(lb_status(&server, "blog"), second);
}

#[tokio::test]
async fn a_replica_that_does_not_lead_writes_nothing() {
    let server = ApiServer::start().await.unwrap();
    fixtures(&server);
    let client = client(&server).await;
    let (_snapshot_tx, snapshots) = watch::channel(Arc::new(snapshot(&client, 1).await));
    let mut compiled = compile_into_watch(snapshots);
    within("the first compile", compiled.wait_for(Option::is_some))
        .await
        .unwrap();
    let addresses = PublishAddress::parse_fixed("203.0.113.7")
        .unwrap()
        .watch(client.clone());

    // Every input is there before the writer starts, so its first look sees them all; it
    // stops when leadership's channel closes.
    let (leader_tx, leader) = watch::channel(false);
    let before = server.requests().len();
    let writer = tokio::spawn(IngressStatusWriter::new(client.clone()).run(
        compiled.clone(),
        addresses.subscribe(),
        leader,
    ));
    drop(leader_tx);
    within("the writer to stop", writer).await.unwrap();
    assert!(writes_since(&server, before).is_empty());
    assert_eq!(lb_status(&server, "shop"), Value::Null);

    // The same inputs, leading: it writes.
    let (leader_tx, leader) = watch::channel(false);
    let writer = tokio::spawn(IngressStatusWriter::new(client.clone()).run(
        compiled,
        addresses.subscribe(),
        leader,
    ));
    leader_tx.send_replace(true);
    eventually("the leader's write", || {
        lb_status(&server, "shop") == json!([{ "ip": "203.0.113.7" }])
    })
    .await;
    drop(leader_tx);
    within("the writer to stop", writer).await.unwrap();
}
