//! The binary as a process: its command line, readiness, and SIGTERM.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail the test loudly"
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_mse-gateway");

#[test]
fn without_manifests_it_says_how_to_run_and_exits_2() {
    let out = Command::new(BIN)
        .args(["--http-addr", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--manifests"), "{err}");
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
    // Accepted: parsing goes on to the missing --manifests.
    let out = Command::new(BIN)
        .args(["--default-backend-service", "infra/errors:8080"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--manifests"), "{err}");
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

/// A gateway process serving `dir`, with its stderr lines on a channel.
struct Process {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    http: SocketAddr,
    admin: SocketAddr,
}

impl Process {
    /// Starts the binary on loopback with `extra` arguments; returns once it says it is
    /// ready.
    fn start(dir: &std::path::Path, extra: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .args(["--manifests", dir.to_str().unwrap()])
            .args([
                "--http-addr",
                "127.0.0.1:0",
                "--https-addr",
                "127.0.0.1:0",
                "--admin-addr",
                "127.0.0.1:0",
            ])
            .args(["--workers", "1", "--log-format", "text"])
            .args(extra)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .env_remove("MSE_ACCESS_LOG")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line.replace(|c: char| c.is_control(), ""));
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let (http, admin) = loop {
            let line = lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("no 'gateway ready' line");
            if line.contains("gateway ready") {
                break (
                    addr_after(&line, "http").unwrap(),
                    addr_after(&line, "admin").unwrap(),
                );
            }
        };
        Self {
            child,
            lines,
            http,
            admin,
        }
    }

    /// Sends SIGTERM and waits for the exit status; returns it with every line written
    /// since start-up.
    fn stop(mut self) -> (Option<i32>, Vec<String>) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = Vec::new();
        let code = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s.code();
            }
            assert!(
                Instant::now() < deadline,
                "the gateway did not exit after SIGTERM"
            );
            std::thread::yield_now();
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(50)) {
                seen.push(line);
            }
        };
        // The pipe ends with the process: whatever is left is read to its end.
        seen.extend(self.lines.iter());
        (code, seen)
    }
}

fn fetch(addr: SocketAddr, host: &str, path: &str) -> String {
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
}

#[test]
fn serves_then_drains_and_exits_0_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ing.yaml"),
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: { name: a, namespace: default }\nspec:\n  ingressClassName: mse\n  defaultBackend: { service: { name: nowhere, port: { number: 80 } } }\n",
    )
    .unwrap();
    let p = Process::start(dir.path(), &[]);
    assert!(fetch(p.admin, "admin", "/readyz").starts_with("HTTP/1.1 200"));
    // The Service does not exist: the route answers 503, the process keeps running.
    assert!(fetch(p.http, "x.test", "/").starts_with("HTTP/1.1 503"));
    assert_eq!(p.stop().0, Some(0));
}

#[test]
fn configmap_needs_a_namespace() {
    for bad in ["gateway", "ingress/", "Ingress/Gateway"] {
        let out = Command::new(BIN)
            .args(["--configmap", bad])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--configmap"), "{bad}: {err}");
    }
}

/// `disable-access-log: "true"` in the ConfigMap turns the access log off, unless
/// `--access-log` is given explicitly: a flag left at its default does not beat the
/// ConfigMap, an explicit one does.
#[test]
fn an_explicit_flag_beats_the_configmap_and_a_defaulted_one_does_not() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("gateway.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: gateway, namespace: ingress }\ndata: { disable-access-log: \"true\" }\n",
    )
    .unwrap();
    let logged = |extra: &[&str], path: &str| {
        let mut args = vec!["--configmap", "ingress/gateway"];
        args.extend_from_slice(extra);
        let p = Process::start(dir.path(), &args);
        assert!(fetch(p.http, "x.test", path).starts_with("HTTP/1.1 404"));
        let (code, lines) = p.stop();
        assert_eq!(code, Some(0));
        lines
            .iter()
            .any(|l| l.contains("access") && l.contains(path))
    };
    assert!(!logged(&[], "/defaulted-flag"));
    assert!(logged(&["--access-log", "true"], "/explicit-flag"));
}
