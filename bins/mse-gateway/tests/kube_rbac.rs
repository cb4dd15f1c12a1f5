//! The permissions the gateway is given are enough: a gateway in kube mode does
//! everything it does (watches, a Secret read on demand, its ConfigMap, the leader
//! Lease, Ingress status from its Service, Events), and every request it made is granted
//! by the Roles the operator gives it.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail the test loudly"
)]

mod support;

use mse_controller::operator::rbac::{
    GATEWAY_CLUSTER_RULES, GATEWAY_NAMESPACE_RULES, granted, policy_rules, request_needs,
};
use mse_controller::status::PublishAddress;
use serde_json::json;

use support::kube::{TestCa, cert_secret, cluster, ingress, options, service, tls_ingress};
use support::{backends, client, eventually, get};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_the_gateway_makes_is_granted_by_its_roles() {
    let k = cluster().await;
    let api = &k.api;
    let bs = backends(&["web"]).await;
    service(api, "shop", "web", &[&bs[0]]);
    // A certificate in a Secret that is not of the TLS type is read on demand.
    let ca = TestCa::new();
    api.apply(cert_secret(
        "shop",
        "cert",
        "Opaque",
        &ca.leaf("secure.test"),
    ));
    api.apply(tls_ingress("shop", "secure", "secure.test", "web", "cert"));
    // A bad annotation becomes an Event.
    let mut bad = ingress("shop", "bad", "bad.test", "web");
    bad["metadata"]["annotations"] =
        json!({ "nginx.ingress.kubernetes.io/proxy-body-size": "lots" });
    api.apply(bad);
    // The gateway's own Service gives the status address.
    api.apply(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": { "name": "gateway", "namespace": "ingress" },
        "spec": { "type": "LoadBalancer", "ports": [{ "port": 80 }] },
        "status": { "loadBalancer": { "ingress": [{ "ip": "203.0.113.7" }] } }
    }));

    let mut o = options(&k.kubeconfig, &["shop"]);
    o.configmap = Some("ingress/gateway".parse().unwrap());
    o.writes.publish = Some(PublishAddress::parse_service("ingress/gateway").unwrap());
    o.writes.lease.namespace = "ingress".into();
    let g = mse_gateway::start(o).await.unwrap();
    let c = client();
    let admin = g.admin_addr();
    eventually("/readyz answers 200", || async {
        get(&c, admin, "admin", "/readyz").await.status == 200
    })
    .await;
    eventually("status is written from the gateway's Service", || async {
        api.get("networking.k8s.io/v1", "Ingress", Some("shop"), "secure")
            .is_some_and(|i| {
                i["status"]["loadBalancer"]["ingress"] == json!([{ "ip": "203.0.113.7" }])
            })
    })
    .await;
    eventually("the bad annotation is an Event", || async {
        api.list("events.k8s.io/v1", "Event")
            .iter()
            .any(|e| e["regarding"]["name"] == "bad")
    })
    .await;
    g.shutdown().await;

    let cluster_rules = policy_rules(GATEWAY_CLUSTER_RULES);
    let namespace_rules = policy_rules(GATEWAY_NAMESPACE_RULES);
    let requests = api.requests();
    let mut kinds = std::collections::BTreeSet::new();
    for r in &requests {
        let in_own_namespace = r.path.contains("/namespaces/ingress/");
        for (group, resource, verb) in
            request_needs(&r.method, &r.path, &r.query, r.content_type.as_deref())
        {
            let ok = granted(&cluster_rules, &group, &resource, &verb)
                || (in_own_namespace && granted(&namespace_rules, &group, &resource, &verb));
            assert!(
                ok,
                "{} {}?{} needs {verb} on {group}/{resource}, which the gateway's Roles do not grant",
                r.method, r.path, r.query
            );
            kinds.insert(format!("{verb} {group}/{resource}"));
        }
    }
    // The test did exercise the writes, not only the reads.
    for needed in [
        "get /secrets",
        "patch networking.k8s.io/ingresses/status",
        "create events.k8s.io/events",
        "create coordination.k8s.io/leases",
        "update coordination.k8s.io/leases",
        "watch /configmaps",
    ] {
        assert!(
            kinds.contains(needed),
            "no request needed {needed}: {kinds:?}"
        );
    }
}
