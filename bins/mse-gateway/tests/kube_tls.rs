//! Kube mode and Secrets: certificates served from the API server and rotated there, and
//! Secrets of other types read only when an Ingress references them.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail the test loudly"
)]

mod support;

use mse_test_apiserver::ApiServer;
use serde_json::json;

use support::kube::{TestCa, cert_secret, cluster, ready_gateway, service, tls_ingress};
use support::{backends, client, eventually};

const TLS: &str = "kubernetes.io/tls";

/// The GET requests for one Secret by name (reads of it alone, not lists or watches).
fn secret_gets(api: &ApiServer, name: &str) -> usize {
    api.requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with(&format!("/secrets/{name}")))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_tls_secret_serves_the_new_certificate() {
    let k = cluster().await;
    let bs = backends(&["web"]).await;
    service(&k.api, "shop", "web", &[&bs[0]]);
    let ca = TestCa::new();
    let first = ca.leaf("secure.test");
    k.api.apply(cert_secret("shop", "cert", TLS, &first));
    k.api
        .apply(tls_ingress("shop", "secure", "secure.test", "web", "cert"));
    let c = client();
    let g = ready_gateway(&c, &k.kubeconfig, &[]).await;
    let https = g.https_addr().unwrap();
    assert_eq!(
        ca.served_leaf(https, "secure.test").await,
        Some(first.der.clone())
    );

    let second = ca.leaf("secure.test");
    k.api.apply(cert_secret("shop", "cert", TLS, &second));
    eventually("the rotated certificate is served", || async {
        ca.served_leaf(https, "secure.test").await == Some(second.der.clone())
    })
    .await;
    // A TLS Secret comes whole with the watch: never read on its own.
    assert_eq!(secret_gets(&k.api, "cert"), 0);
    g.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_secrets_are_read_only_while_an_ingress_references_them() {
    let k = cluster().await;
    let bs = backends(&["web"]).await;
    service(&k.api, "shop", "web", &[&bs[0]]);
    let ca = TestCa::new();
    // A certificate in a Secret that is not typed kubernetes.io/tls, and a Secret no
    // Ingress uses.
    let first = ca.leaf("opaque.test");
    k.api
        .apply(cert_secret("shop", "opaque-cert", "Opaque", &first));
    k.api.apply(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": { "name": "db-password", "namespace": "shop" },
        "type": "Opaque", "data": { "password": "aHVudGVyMg==" }
    }));
    k.api.apply(tls_ingress(
        "shop",
        "opaque",
        "opaque.test",
        "web",
        "opaque-cert",
    ));
    let c = client();
    let g = ready_gateway(&c, &k.kubeconfig, &[]).await;
    let https = g.https_addr().unwrap();
    assert_eq!(
        ca.served_leaf(https, "opaque.test").await,
        Some(first.der.clone()),
        "the referenced Secret was read whole before the gateway became ready"
    );
    assert_eq!(secret_gets(&k.api, "opaque-cert"), 1);

    // A new version of it is read again and served.
    let second = ca.leaf("opaque.test");
    k.api
        .apply(cert_secret("shop", "opaque-cert", "Opaque", &second));
    eventually("the rotated certificate is served", || async {
        ca.served_leaf(https, "opaque.test").await == Some(second.der.clone())
    })
    .await;
    assert_eq!(secret_gets(&k.api, "opaque-cert"), 2);

    // The Secret nothing references is never read.
    assert_eq!(secret_gets(&k.api, "db-password"), 0);
    g.shutdown().await;
}
