//! Helpers for the binary's tests: running the real operator against the in-memory API
//! server, bounded waits, and reading requests as RBAC checks them.
#![allow(
    dead_code,
    reason = "each test binary uses a different subset of the helpers"
)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mse_model::k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};
use mse_test_apiserver::{ApiServer, RequestRecord};
use serde_json::Value;

/// Every wait is bounded by this: far longer than anything takes on any machine, so only a
/// bug gets near it.
pub(crate) const BOUND: Duration = Duration::from_secs(30);

/// The field manager of the test's own writes, which tells them from the operator's.
pub(crate) const TEST_MANAGER: &str = "e2e-test";

/// Polls `check` until it gives a value; fails the test naming `what` after [`BOUND`].
pub(crate) async fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + BOUND;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The `mse-controller` binary, running against one API server. Killed when dropped; its
/// log is printed when the test fails.
pub(crate) struct Operator {
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Operator {
    /// Starts `mse-controller --kubeconfig K ARGS...` against `server`.
    pub(crate) fn start(server: &ApiServer, args: &[&str]) -> Operator {
        let dir = tempfile::tempdir().unwrap();
        server
            .write_kubeconfig(&dir.path().join("kubeconfig"))
            .unwrap();
        let log = std::fs::File::create(dir.path().join("operator.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_mse-controller"))
            .arg("--kubeconfig")
            .arg(dir.path().join("kubeconfig"))
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Operator {
            child: Some(child),
            dir,
        }
    }

    /// A client of the same API server, for the test's own writes.
    pub(crate) async fn client(&self) -> kube::Client {
        let path = self.dir.path().join("kubeconfig");
        mse_controller::operator::connect(Some(&path))
            .await
            .unwrap()
    }

    /// The operator's log so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("operator.log")).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for a clean exit; answers the whole log.
    pub(crate) async fn stop(mut self) -> String {
        let mut child = self.child.take().unwrap();
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + BOUND;
        let exit = loop {
            if let Some(exit) = child.try_wait().unwrap() {
                break exit;
            }
            assert!(
                Instant::now() < deadline,
                "no exit after SIGTERM:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(exit.success(), "exit {exit}:\n{}", self.log());
        self.log()
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- mse-controller log ---\n{}", self.log());
        }
    }
}

/// The requests the operator made (the test's own carry [`TEST_MANAGER`]).
pub(crate) fn operator_requests(server: &ApiServer) -> Vec<RequestRecord> {
    let ours = format!("fieldManager={TEST_MANAGER}");
    server
        .requests()
        .into_iter()
        .filter(|r| !r.query.contains(&ours))
        .collect()
}

/// What RBAC checks for `request`: (API group, resource[/subresource], verb).
pub(crate) fn rbac_needs(request: &RequestRecord) -> Vec<(String, String, String)> {
    mse_controller::operator::rbac::request_needs(
        &request.method,
        &request.path,
        &request.query,
        request.content_type.as_deref(),
    )
}

/// The directory of the shipped manifests.
pub(crate) fn deploy_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

/// Every YAML document under `deploy/`, with the file it came from, in path order.
pub(crate) fn documents() -> Vec<(PathBuf, Value)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&deploy_dir(), &mut files);
    files.sort();
    let mut docs = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            let value: Value = serde::Deserialize::deserialize(doc)
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            if !value.is_null() {
                docs.push((file.clone(), value));
            }
        }
    }
    docs
}

/// The rules of the operator's ClusterRole in `deploy/`.
pub(crate) fn shipped_operator_rules() -> Vec<PolicyRule> {
    let docs = documents();
    let role = docs
        .iter()
        .find(|(_, d)| {
            d["kind"] == "ClusterRole" && d["metadata"]["name"] == "mse-ingress-operator"
        })
        .expect("deploy/ ships the operator's ClusterRole");
    let role: ClusterRole = serde_json::from_value(role.1.clone()).unwrap();
    role.rules.unwrap_or_default()
}
