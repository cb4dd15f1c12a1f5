//! Helpers shared by the integration tests: a kube-rs client configured from the server's
//! kubeconfig, and polling with a deadline.
#![cfg(test)]
#![allow(dead_code, reason = "each test file uses a part")]

use std::future::Future;
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use mse_test_apiserver::ApiServer;

/// How long a condition may take before the test fails; generous for loaded machines.
pub(crate) const DEADLINE: Duration = Duration::from_secs(30);

/// A kube-rs client reaching `server` through its kubeconfig, as a binary would.
pub(crate) async fn client(server: &ApiServer) -> kube::Client {
    let kubeconfig = Kubeconfig::from_yaml(&server.kubeconfig()).expect("kubeconfig parses");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig is usable");
    kube::Client::try_from(config).expect("client builds")
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

/// The code of a kube-rs API error, or a test failure naming what was expected.
pub(crate) fn api_code<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> (u16, String) {
    match result {
        Err(kube::Error::Api(status)) => (status.code, status.reason.clone()),
        other => panic!("expected an API error, got {other:?}"),
    }
}
