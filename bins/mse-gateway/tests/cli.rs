//! The binary as a process: its command line, readiness, and SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_mse-gateway");

/// A command for the binary in kube mode with no Kubernetes configuration anywhere:
/// `$KUBECONFIG` names a missing file, `$HOME` has no `.kube`, and no service account.
fn without_kube_config(home: &std::path::Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env("KUBECONFIG", home.join("absent-kubeconfig"))
        .env("HOME", home)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT");
    cmd
}

#[test]
fn without_manifests_it_runs_in_kube_mode_and_says_when_there_is_no_cluster_config() {
    let home = tempfile::tempdir().unwrap();
    let out = without_kube_config(home.path())
        .args(["--http-addr", "127.0.0.1:0", "--https-addr", "127.0.0.1:0"])
        .args(["--admin-addr", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no Kubernetes configuration found"), "{err}");

    // A kubeconfig named on the command line that cannot be read is named in the error.
    let missing = home.path().join("nope.yaml");
    let out = Command::new(BIN)
        .args(["--kubeconfig", missing.to_str().unwrap()])
        .args(["--http-addr", "127.0.0.1:0", "--https-addr", "127.0.0.1:0"])
        .args(["--admin-addr", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot use the kubeconfig") && err.contains("nope.yaml"),
        "{err}"
    );
}

#[test]
fn bad_flags_are_usage_errors() {
    let out = Command::new(BIN)
        .args(["--http-addr", "not-an-address"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn default_backend_service_needs_a_namespace() {
    // Accepted: the command line parses, and the run stops later, for want of a cluster.
    let home = tempfile::tempdir().unwrap();
    let out = without_kube_config(home.path())
        .args(["--default-backend-service", "infra/errors:8080"])
        .args(["--http-addr", "127.0.0.1:0", "--https-addr", "127.0.0.1:0"])
        .args(["--admin-addr", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("--default-backend-service"), "{err}");
    for bad in ["errors", "infra/", "infra/errors:http"] {
        let out = Command::new(BIN)
            .args(["--default-backend-service", bad])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--default-backend-service"), "{bad}: {err}");
    }
}

/// Finds `key=Some(ADDR)` or `key=ADDR` in a log line.
fn addr_after(line: &str, key: &str) -> Option<SocketAddr> {
    let rest = &line[line.find(&format!("{key}="))? + key.len() + 1..];
    let rest = rest.strip_prefix("Some(").unwrap_or(rest);
    let end = rest
        .find(|c: char| c == ')' || c.is_whitespace())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

#[test]
fn serves_then_drains_and_exits_0_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ing.yaml"),
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: { name: a, namespace: default }\nspec:\n  ingressClassName: mse\n  defaultBackend: { service: { name: nowhere, port: { number: 80 } } }\n",
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(["--manifests", dir.path().to_str().unwrap()])
        .args([
            "--http-addr",
            "127.0.0.1:0",
            "--https-addr",
            "127.0.0.1:0",
            "--admin-addr",
            "127.0.0.1:0",
        ])
        .args(["--workers", "1", "--log-format", "text"])
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let (http, admin) = loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("no 'gateway ready' line");
        let plain = line.replace(|c: char| c.is_control(), "");
        if plain.contains("gateway ready") {
            break (
                addr_after(&plain, "http").unwrap(),
                addr_after(&plain, "admin").unwrap(),
            );
        }
    };
    let fetch = |addr: SocketAddr, host: &str, path: &str| {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    assert!(fetch(admin, "admin", "/readyz").starts_with("HTTP/1.1 200"));
    // The Service does not exist: the route answers 503, the process keeps running.
    assert!(fetch(http, "x.test", "/").starts_with("HTTP/1.1 503"));

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s.code();
        }
        assert!(
            Instant::now() < deadline,
            "the gateway did not exit after SIGTERM"
        );
        std::thread::yield_now();
        let _ = rx.recv_timeout(Duration::from_millis(50));
    };
    assert_eq!(code, Some(0));
}
