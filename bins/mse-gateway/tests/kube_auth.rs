//! Kube mode and basic authentication: the `auth-secret` Secret is read from the API
//! server, its users are enforced, and a changed password applies without a restart,
//! even for credentials the gateway had accepted before.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail the test loudly"
)]

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http_body_util::Empty;
use serde_json::{Value, json};

use support::kube::{cluster, ingress, ready_gateway, service};
use support::{HttpClient, backends, client, eventually};

/// An Opaque Secret with one htpasswd line under `auth`.
fn users(line: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": { "name": "users", "namespace": "shop" },
        "type": "Opaque", "data": { "auth": STANDARD.encode(line) }
    })
}

/// The status of `GET /` on `host` with these credentials.
async fn status(c: &HttpClient, addr: SocketAddr, user: &str, password: &str) -> u16 {
    let auth = format!("Basic {}", STANDARD.encode(format!("{user}:{password}")));
    let req = http::Request::get(format!("http://{addr}/"))
        .header("host", "admin.test")
        .header("authorization", auth)
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(10), c.request(req))
        .await
        .expect("request timed out")
        .expect("request failed");
    resp.status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_users_come_from_the_api_server_and_a_new_password_applies() {
    let k = cluster().await;
    let bs = backends(&["web"]).await;
    service(&k.api, "shop", "web", &[&bs[0]]);
    // Made with `htpasswd -nbB -C 4`: passwords "bc pass", then "hunter2".
    k.api.apply(users(
        "admin:$2y$04$0s4j91.KwrFMq3iLF7ScnePNhuLiURWA9JbEPchKZvjF0hAwNyOf6",
    ));
    let mut ing = ingress("shop", "admin", "admin.test", "web");
    ing["metadata"]["annotations"] = json!({
        "nginx.ingress.kubernetes.io/auth-type": "basic",
        "nginx.ingress.kubernetes.io/auth-secret": "users",
    });
    k.api.apply(ing);
    let c = client();
    let g = ready_gateway(&c, &k.kubeconfig, &[]).await;
    let http = g.http_addr().unwrap();
    assert_eq!(status(&c, http, "admin", "bc pass").await, 200);
    assert_eq!(status(&c, http, "admin", "bc pass").await, 200);
    assert_eq!(status(&c, http, "admin", "wrong").await, 401);

    k.api.apply(users(
        "admin:$2y$04$0dl83p4hr5SKMSrGkhZqGOCPylEiGv/Y5WjrEyZJnx/3pQnYWeGxq",
    ));
    eventually("the new password is accepted", || async {
        status(&c, http, "admin", "hunter2").await == 200
    })
    .await;
    assert_eq!(status(&c, http, "admin", "bc pass").await, 401);
    g.shutdown().await;
}
