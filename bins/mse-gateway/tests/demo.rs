//! The demo does what its printed curl commands say.
#![expect(clippy::unwrap_used, reason = "test helpers fail the test loudly")]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use mse_gateway::demo::{self, DemoOptions};

async fn get(
    addr: SocketAddr,
    host: &str,
    path: &str,
) -> (u16, serde_json::Value, http::HeaderMap) {
    get_with(addr, host, path, ("x-demo", "1")).await
}

async fn get_with(
    addr: SocketAddr,
    host: &str,
    path: &str,
    (name, value): (&str, &str),
) -> (u16, serde_json::Value, http::HeaderMap) {
    let c: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let req = http::Request::get(format!("http://{addr}{path}"))
        .header("host", host)
        .header(name, value)
        .body(Empty::new())
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(10), c.request(req))
        .await
        .unwrap()
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
        headers,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_printed_commands_route_as_they_say() {
    let dir = tempfile::tempdir().unwrap();
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let opts = DemoOptions {
        http_addr: any,
        https_addr: any,
        admin_addr: any,
        access_log: false,
    };
    let d = demo::start(opts, dir.path()).await.unwrap();
    let text = demo::instructions(&d);
    let http = d.gateway.http_addr().unwrap();
    assert!(
        text.contains(&format!("http://{http}/api/orders/42")),
        "{text}"
    );

    let cases = [
        ("shop.demo.test", "/", "web", "/"),
        ("shop.demo.test", "/api/orders/42", "api", "/api/orders/42"),
        ("shop.demo.test", "/api/healthz", "web", "/api/healthz"),
        ("shop.demo.test", "/apis", "web", "/apis"),
        ("v2.docs.demo.test", "/guide", "docs", "/guide"),
        ("anything.else", "/", "web", "/"),
        ("shop.demo.test", "/old-api/orders", "api", "/api/orders"),
    ];
    for (host, path, service, seen_path) in cases {
        let (status, body, headers) = get(http, host, path).await;
        assert_eq!(status, 200, "{host}{path}");
        assert_eq!(body["service"], service, "{host}{path}");
        assert_eq!(body["path"], seen_path, "{host}{path}");
        if path.starts_with("/old-api") {
            assert_eq!(headers["x-served-by"], "mse-gateway");
        }
    }
    // The canary: by header always, by weight about one request in four.
    assert!(text.contains("x-canary: always"), "{text}");
    for _ in 0..10 {
        let (_, body, _) =
            get_with(http, "shop.demo.test", "/checkout", ("x-canary", "always")).await;
        assert_eq!(body["service"], "api-v2");
        let (_, body, _) =
            get_with(http, "shop.demo.test", "/checkout", ("x-canary", "never")).await;
        assert_eq!(body["service"], "api");
    }
    let mut v2 = 0;
    for _ in 0..400 {
        let (status, body, _) = get(http, "shop.demo.test", "/checkout").await;
        assert_eq!(status, 200);
        if body["service"] == "api-v2" {
            v2 += 1;
        }
    }
    // 25% of 400 is 100, with a standard deviation under 9.
    assert!((60..=140).contains(&v2), "api-v2 served {v2} of 400");
    let diagnostics = get(d.gateway.admin_addr(), "admin", "/debug/diagnostics")
        .await
        .1;
    let problems: Vec<_> = diagnostics
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["severity"] != "info")
        .collect();
    assert!(
        problems.is_empty(),
        "the demo manifests are clean: {problems:?}"
    );
    d.gateway.shutdown().await;
}
