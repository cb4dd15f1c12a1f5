//! The binary as a process: its command line, readiness, and SIGTERM.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    clippy::expect_used,
    reason = "test helpers fail the test loudly"
)]

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
fn an_affinity_key_file_must_be_readable_and_long_enough() {
    let dir = tempfile::tempdir().unwrap();
    let short = dir.path().join("short");
    std::fs::write(&short, "tooshort\n").unwrap();
    let missing = dir.path().join("missing");
    for (file, says) in [(&short, "at least 16 bytes"), (&missing, "missing")] {
        let out = Command::new(BIN)
            .args(["--manifests", dir.path().to_str().unwrap()])
            .args(["--affinity-key-file", file.to_str().unwrap()])
            .args(["--http-addr", "127.0.0.1:0", "--https-addr", "127.0.0.1:0"])
            .args(["--admin-addr", "127.0.0.1:0"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("--affinity-key-file") && err.contains(says),
            "{err}"
        );
    }
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

/// A running binary: its stderr lines, and the addresses of its "gateway ready" line.
struct Child {
    process: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    http: SocketAddr,
    admin: SocketAddr,
}

/// A gateway process serving `dir`, with its stderr lines on a channel.
struct Process {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    http: SocketAddr,
    admin: SocketAddr,
}

impl Drop for Child {
    /// A test that fails half way does not leave the gateway running.
    fn drop(&mut self) {
        if self.process.try_wait().ok().flatten().is_none() {
            let _ = self.process.kill();
            let _ = self.process.wait();
        }
    }
}

/// Starts the binary with `args` on loopback ports and waits for its "gateway ready" line.
fn spawn_ready(args: &[&str]) -> Child {
    let mut process = Command::new(BIN)
        .args(args)
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
    let stderr = process.stderr.take().unwrap();
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let Ok(line) = lines.recv_timeout(deadline.saturating_duration_since(Instant::now()))
        else {
            let _ = process.kill();
            let _ = process.wait();
            panic!("no 'gateway ready' line");
        };
        let plain = line.replace(|c: char| c.is_control(), "");
        if plain.contains("gateway ready") {
            return Child {
                process,
                lines,
                http: addr_after(&plain, "http").unwrap(),
                admin: addr_after(&plain, "admin").unwrap(),
            };
        }
    }
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
            // The access log beside the gateway's own lines, for the tests that read it.
            .args(["--access-log-path", "/dev/stderr"])
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

/// One HTTP/1.1 request; the whole response as text.
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

/// Sends SIGTERM and returns the exit code.
fn terminate(mut child: Child) -> Option<i32> {
    let status = Command::new("kill")
        .args(["-TERM", &child.process.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(s) = child.process.try_wait().unwrap() {
            return s.code();
        }
        assert!(
            Instant::now() < deadline,
            "the gateway did not exit after SIGTERM"
        );
        std::thread::yield_now();
        let _ = child.lines.recv_timeout(Duration::from_millis(50));
    }
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
fn in_kube_mode_it_serves_what_the_api_server_has() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let api = rt.block_on(mse_test_apiserver::ApiServer::start()).unwrap();
    let echo = rt
        .block_on(mse_proxy::echo::EchoServer::bind(
            "127.0.0.1:0".parse().unwrap(),
            "web",
        ))
        .unwrap();
    let port = echo.addr().port();
    for ns in ["shop", "blog"] {
        api.apply_yaml(&format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{ name: web, namespace: {ns} }}\nspec: {{ ports: [{{ name: http, port: 80, targetPort: {port} }}] }}\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{ name: web-1, namespace: {ns}, labels: {{ kubernetes.io/service-name: web }} }}\naddressType: IPv4\nports: [{{ name: http, port: {port} }}]\nendpoints: [{{ addresses: [127.0.0.1] }}]\n---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{ name: web, namespace: {ns} }}\nspec:\n  ingressClassName: mse\n  rules: [{{ host: {ns}.test, http: {{ paths: [{{ path: /, pathType: Prefix, backend: {{ service: {{ name: web, port: {{ number: 80 }} }} }} }}] }} }}]\n"
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    api.write_kubeconfig(&kubeconfig).unwrap();

    let child = spawn_ready(&[
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--namespace",
        "shop",
    ]);
    assert!(fetch(child.admin, "admin", "/readyz").starts_with("HTTP/1.1 200"));
    let shop = fetch(child.http, "shop.test", "/");
    assert!(shop.starts_with("HTTP/1.1 200"), "{shop}");
    assert!(
        shop.to_ascii_lowercase().contains("x-echo-service: web"),
        "{shop}"
    );
    // Only --namespace shop is watched.
    assert!(fetch(child.http, "blog.test", "/").starts_with("HTTP/1.1 404"));
    assert_eq!(terminate(child), Some(0));
    drop(echo);
    drop(api);
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

#[test]
fn auth_url_ca_must_be_a_readable_pem_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let missing = dir.path().join("missing.pem");
    for (bad, says) in [(&empty, "no certificate"), (&missing, "cannot read")] {
        let out = Command::new(BIN)
            .arg("--auth-url-ca")
            .arg(bad)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", bad.display());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--auth-url-ca") && err.contains(says), "{err}");
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
        let request = format!("\"GET {path} HTTP/1.1\" 404 ");
        lines.iter().any(|l| l.contains(&request))
    };
    assert!(!logged(&[], "/defaulted-flag"));
    assert!(logged(&["--access-log", "true"], "/explicit-flag"));
}

/// The client-address and IP-list flags reach the running gateway: `--deny-source-range`
/// refuses loopback, and with `--proxy-protocol` a connection without a header is closed
/// while one with a header is logged under the address the header names.
#[test]
fn client_address_flags_apply_to_the_running_gateway() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ing.yaml"),
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: { name: a, namespace: default }\nspec:\n  ingressClassName: mse\n  defaultBackend: { service: { name: nowhere, port: { number: 80 } } }\n",
    )
    .unwrap();
    let p = Process::start(dir.path(), &["--deny-source-range", "127.0.0.1,::1"]);
    assert!(fetch(p.http, "x.test", "/").starts_with("HTTP/1.1 403"));
    assert_eq!(p.stop().0, Some(0));

    let p = Process::start(dir.path(), &["--proxy-protocol"]);
    assert_eq!(fetch(p.http, "x.test", "/no-header"), "");
    let mut s = TcpStream::connect(p.http).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "PROXY TCP4 203.0.113.7 127.0.0.1 40000 80\r\nGET /with-header HTTP/1.1\r\nHost: x.test\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 503"), "{out}");
    let (code, lines) = p.stop();
    assert_eq!(code, Some(0));
    assert!(
        lines
            .iter()
            .any(|l| l.contains("/with-header") && l.contains("203.0.113.7")),
        "{lines:#?}"
    );
}

/// A plain upstream on loopback answering `200 ok` to every request, one per connection.
fn ok_upstream() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut s in listener.incoming().map_while(Result::ok) {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 1024];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
    });
    addr
}

/// The affinity cookie of a response, as `name=value`.
fn affinity_cookie(response: &str) -> Option<String> {
    response
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: INGRESSCOOKIE="))
        .and_then(|v| v.split(';').next())
        .map(|v| format!("INGRESSCOOKIE={v}"))
}

#[test]
fn replicas_given_one_affinity_key_file_honour_each_others_cookies() {
    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().join("manifests");
    std::fs::create_dir(&manifests).unwrap();
    let mut yaml = "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: { name: a, namespace: default, annotations: { nginx.ingress.kubernetes.io/affinity: cookie } }\nspec:\n  ingressClassName: mse\n  defaultBackend: { service: { name: web, port: { number: 80 } } }\n---\napiVersion: v1\nkind: Service\nmetadata: { name: web, namespace: default }\nspec:\n  ports: [{ name: http, port: 80, targetPort: http }]\n".to_owned();
    for (i, addr) in [ok_upstream(), ok_upstream()].iter().enumerate() {
        yaml.push_str(&format!(
            "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{ name: web-{i}, namespace: default, labels: {{ kubernetes.io/service-name: web }} }}\naddressType: IPv4\nports: [{{ name: http, port: {} }}]\nendpoints: [{{ addresses: [\"127.0.0.1\"], conditions: {{ ready: true }} }}]\n",
            addr.port()
        ));
    }
    std::fs::write(manifests.join("web.yaml"), yaml).unwrap();
    let key = dir.path().join("key");
    std::fs::write(&key, "a secret shared by the replicas\n").unwrap();
    let key_flag = ["--affinity-key-file", key.to_str().unwrap()];
    let a = Process::start(&manifests, &key_flag);
    let b = Process::start(&manifests, &key_flag);
    let other = Process::start(&manifests, &[]);
    // Replica b applies affinity: a client without a cookie gets one.
    assert!(affinity_cookie(&fetch(b.http, "x.test", "/")).is_some());
    for _ in 0..4 {
        let first = fetch(a.http, "x.test", "/");
        assert!(first.starts_with("HTTP/1.1 200"), "{first}");
        let cookie = affinity_cookie(&first).expect("an affinity cookie");
        let ask = |p: &Process| {
            let mut s = TcpStream::connect(p.http).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            write!(
                s,
                "GET / HTTP/1.1\r\nHost: x.test\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
            )
            .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            out
        };
        // The replica with the same key knows the endpoint: no new session.
        let same = ask(&b);
        assert!(same.starts_with("HTTP/1.1 200"), "{same}");
        assert_eq!(affinity_cookie(&same), None, "{same}");
        // One with its own random key does not.
        assert!(affinity_cookie(&ask(&other)).is_some());
    }
    for p in [a, b, other] {
        assert_eq!(p.stop().0, Some(0));
    }
}
