//! Helpers shared by the file-mode tests: manifests, files written as editors save them, what
//! a snapshot holds, and bounded waits for the watcher.
// Each test binary uses a different subset of these helpers, so an `expect` would be
// unfulfilled in some of them.
#![allow(
    dead_code,
    reason = "each test binary uses a different subset of the helpers"
)]

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use mse_model::{Diagnostic, Snapshot};
use tokio::sync::watch;

/// Every wait in these tests is bounded by this: far longer than it takes on any machine, so
/// that only a bug gets near it.
pub(crate) const BOUND: Duration = Duration::from_secs(30);

pub(crate) fn ingress(name: &str, host: &str) -> String {
    format!(
        r#"apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{ name: {name}, namespace: default }}
spec:
  ingressClassName: mse
  rules:
  - host: {host}
    http:
      paths:
      - {{ path: /, pathType: Prefix, backend: {{ service: {{ name: web, port: {{ number: 80 }} }} }} }}
"#
    )
}

pub(crate) fn service(name: &str) -> String {
    format!("apiVersion: v1\nkind: Service\nmetadata: {{ name: {name}, namespace: default }}\n")
}

pub(crate) fn write(path: impl AsRef<Path>, text: &str) {
    let path = path.as_ref();
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).unwrap();
    }
    fs::write(path, text).unwrap();
}

/// Writes a file the way editors save: a hidden temporary file renamed over the target.
pub(crate) fn save_by_rename(path: &Path, text: &str) {
    let name = path.file_name().unwrap().to_str().unwrap();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    fs::write(&tmp, text).unwrap();
    fs::rename(&tmp, path).unwrap();
}

pub(crate) fn ingress_names(snapshot: &Snapshot) -> Vec<String> {
    let mut names: Vec<String> = snapshot
        .ingresses
        .iter()
        .map(|i| i.object.metadata.name.clone().unwrap())
        .collect();
    names.sort();
    names
}

pub(crate) fn hosts(snapshot: &Snapshot) -> Vec<String> {
    let mut hosts: Vec<String> = snapshot
        .ingresses
        .iter()
        .flat_map(|i| i.object.spec.as_ref().unwrap().rules.clone().unwrap())
        .map(|r| r.host.unwrap())
        .collect();
    hosts.sort();
    hosts
}

/// `file:line` of every Ingress, in snapshot order.
pub(crate) fn ingress_sources(snapshot: &Snapshot) -> Vec<String> {
    snapshot
        .ingresses
        .iter()
        .map(|i| i.source.as_ref().unwrap().to_string())
        .collect()
}

pub(crate) fn with_code<'s>(snapshot: &'s Snapshot, code: &str) -> Vec<&'s Diagnostic> {
    snapshot
        .diagnostics
        .iter()
        .filter(|d| d.code == code)
        .collect()
}

pub(crate) fn name_of(path: &Path) -> String {
    path.display().to_string()
}

/// Waits, at most `within` in all, for a snapshot that satisfies `done`.
pub(crate) async fn wait_until(
    rx: &mut watch::Receiver<Arc<Snapshot>>,
    within: Duration,
    done: impl Fn(&Snapshot) -> bool,
) -> Arc<Snapshot> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let snapshot = rx.borrow_and_update().clone();
        if done(&snapshot) {
            return snapshot;
        }
        tokio::time::timeout_at(deadline, rx.changed())
            .await
            .expect("no matching snapshot in time")
            .expect("the watcher stopped");
    }
}
