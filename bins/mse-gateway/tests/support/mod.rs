//! Helpers shared by the gateway's end-to-end tests: a real HTTP client, echo backends on
//! loopback, and bounded waits.
#![allow(
    dead_code,
    reason = "each test binary uses a different subset of the helpers"
)]

pub(crate) mod kube;

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use mse_gateway::Running;
use mse_proxy::echo::EchoServer;

pub(crate) type HttpClient = Client<HttpConnector, Empty<Bytes>>;

/// How long a test waits for something that must happen (an edit served, a table
/// published). Far longer than it takes on any machine: only a bug gets near it.
pub(crate) const PATIENCE: Duration = Duration::from_secs(30);

pub(crate) fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) service: Option<String>,
    pub(crate) body: String,
}

pub(crate) async fn get(c: &HttpClient, addr: SocketAddr, host: &str, path: &str) -> Reply {
    let req = http::Request::get(format!("http://{addr}{path}"))
        .header("host", host)
        .body(Empty::new())
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(10), c.request(req))
        .await
        .expect("request timed out")
        .expect("request failed");
    let status = resp.status().as_u16();
    let service = resp
        .headers()
        .get("x-echo-service")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        service,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

pub(crate) async fn admin_json(c: &HttpClient, g: &Running, path: &str) -> serde_json::Value {
    let r = get(c, g.admin_addr(), "admin", path).await;
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    serde_json::from_str(&r.body).unwrap()
}

pub(crate) async fn backends(names: &[&str]) -> Vec<EchoServer> {
    let mut v = Vec::new();
    for n in names {
        v.push(
            EchoServer::bind("127.0.0.1:0".parse().unwrap(), n)
                .await
                .unwrap(),
        );
    }
    v
}

/// Polls `check` until it returns true, at most [`PATIENCE`] in all; fails the test with
/// `what` otherwise.
pub(crate) async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + PATIENCE;
    while !check().await {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
