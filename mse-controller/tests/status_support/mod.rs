//! Helpers for the tests of what the gateway writes to the API server: a kube-rs client
//! reaching the in-memory API server through its kubeconfig, fixtures, snapshots read back
//! from the server, a gate that holds chosen requests, and polling with a deadline.
#![cfg(test)]
#![allow(
    dead_code,
    reason = "each test binary uses a different subset of the helpers"
)]

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, ListParams};
use kube::client::ClientBuilder;
use kube::config::{KubeConfigOptions, Kubeconfig};
use mse_model::{Snapshot, Sourced};
use mse_test_apiserver::{ApiServer, RequestRecord};
use serde_json::{Value, json};
use tokio::sync::{Notify, oneshot};

/// Every wait is bounded by this: far longer than anything takes on a loaded machine.
pub(crate) const DEADLINE: Duration = Duration::from_secs(30);

async fn config(server: &ApiServer) -> kube::Config {
    let kubeconfig = Kubeconfig::from_yaml(&server.kubeconfig()).expect("kubeconfig parses");
    kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig is usable")
}

/// A kube-rs client reaching `server` through its kubeconfig, as the gateway would.
pub(crate) async fn client(server: &ApiServer) -> kube::Client {
    kube::Client::try_from(config(server).await).expect("client builds")
}

/// A client whose requests pass `gate` (see [`Gate`]).
pub(crate) async fn gated_client(server: &ApiServer, gate: &Gate) -> kube::Client {
    ClientBuilder::try_from(config(server).await)
        .expect("client builds")
        .with_layer(gate)
        .build()
}

/// Polls `condition` until it holds; fails the test with `what` after [`DEADLINE`].
pub(crate) async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Awaits `future`, failing the test with `what` after [`DEADLINE`].
pub(crate) async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// An Ingress of class `class` in `default`, serving `host`.
pub(crate) fn ingress(name: &str, class: &str, host: &str) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": { "name": name, "namespace": "default" },
        "spec": {
            "ingressClassName": class,
            "rules": [{ "host": host, "http": { "paths": [{
                "path": "/", "pathType": "Prefix",
                "backend": { "service": { "name": "web", "port": { "number": 80 } } }
            }] } }]
        }
    })
}

/// A snapshot holding every Ingress the server has now, read through the API.
pub(crate) async fn snapshot(client: &kube::Client, generation: u64) -> Snapshot {
    let api: Api<Ingress> = Api::all(client.clone());
    let list = api
        .list(&ListParams::default())
        .await
        .expect("list Ingresses");
    Snapshot {
        generation,
        ingresses: list.items.into_iter().map(Sourced::new).collect(),
        ..Snapshot::default()
    }
}

/// `status.loadBalancer.ingress` of an Ingress as the server stores it (`Null` when unset).
pub(crate) fn lb_status(server: &ApiServer, name: &str) -> Value {
    let ing = server
        .get("networking.k8s.io/v1", "Ingress", Some("default"), name)
        .expect("the Ingress exists");
    ing.pointer("/status/loadBalancer/ingress")
        .cloned()
        .unwrap_or(Value::Null)
}

/// The requests after the first `from` that are writes (not GET).
pub(crate) fn writes_since(server: &ApiServer, from: usize) -> Vec<RequestRecord> {
    server
        .requests()
        .into_iter()
        .skip(from)
        .filter(|r| r.method != "GET")
        .collect()
}

/// A tower layer that holds the next request matching a rule until the test opens it.
///
/// [`Gate::arm`] sets the rule; the matching request waits (after [`Gate::held`] returns)
/// until the returned sender is used or dropped. Nothing else is held.
#[derive(Clone, Default)]
pub(crate) struct Gate {
    armed: Arc<Mutex<Option<Armed>>>,
    held: Arc<Notify>,
}

struct Armed {
    method: http::Method,
    path_contains: String,
    release: oneshot::Receiver<()>,
}

impl Gate {
    /// Holds the next `method` request whose path contains `path_contains`; it goes on when
    /// the returned sender is used or dropped.
    pub(crate) fn arm(&self, method: http::Method, path_contains: &str) -> oneshot::Sender<()> {
        let (tx, rx) = oneshot::channel();
        *self.armed.lock().unwrap() = Some(Armed {
            method,
            path_contains: path_contains.to_owned(),
            release: rx,
        });
        tx
    }

    /// Waits until a request is being held.
    pub(crate) async fn held(&self) {
        self.held.notified().await;
    }
}

impl<S> tower::Layer<S> for Gate {
    type Service = Gated<S>;
    fn layer(&self, inner: S) -> Gated<S> {
        Gated {
            inner,
            gate: self.clone(),
        }
    }
}

/// The service [`Gate`] wraps.
pub(crate) struct Gated<S> {
    inner: S,
    gate: Gate,
}

impl<S, B> tower::Service<http::Request<B>> for Gated<S>
where
    S: tower::Service<http::Request<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let hold = {
            let mut armed = self.gate.armed.lock().unwrap();
            let matches = armed.as_ref().is_some_and(|a| {
                *req.method() == a.method && req.uri().path().contains(&a.path_contains)
            });
            if matches { armed.take() } else { None }
        };
        let held = Arc::clone(&self.gate.held);
        // The client's futures send nothing until polled, so holding this one holds the
        // request.
        let response = self.inner.call(req);
        Box::pin(async move {
            if let Some(armed) = hold {
                held.notify_one();
                let _ = armed.release.await;
            }
            response.await
        })
    }
}
