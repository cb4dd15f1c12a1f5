//! The gateway with a large configuration: time to ready, resident memory, and how long one
//! more Ingress takes from being created to being served, in file mode and in kube mode.
//!
//! ```sh
//! cargo build --release -p mse-lint --example gen_manifests
//! target/release/examples/gen_manifests /tmp/set 10000 --endpoints
//! cargo bench -p mse-gateway --bench scale -- file /tmp/set      # [EDITS], default 30
//! cargo bench -p mse-gateway --bench scale -- kube /tmp/set
//! ```
//!
//! A plain program (no harness) that prints its figures. It runs the release binary
//! (`mse-gateway`, or the one `MSE_GATEWAY_BIN` names) as a child process on loopback
//! ports, with one data-plane worker and no access log, so that its memory is its own:
//! - **file**: the set's files are copied to a temporary directory, with one more file
//!   holding a Service and EndpointSlice for an echo backend this program serves; the
//!   gateway watches that directory (`--manifests`).
//! - **kube**: an in-memory API server in this process is given every object of the set
//!   and the backend's; the gateway watches it through a kubeconfig.
//!
//! It reports the time from starting the process to `/readyz` answering 200, `VmRSS` and
//! `VmHWM` of the gateway 5 s after ready, then creates `EDITS` more Ingresses one at a
//! time (a new file, written to a temporary name and renamed; or a create on the API
//! server), each after a quiet spell, and asks for each new host every millisecond until the
//! echo backend answers: create-to-served latency, with its distribution, and the memory
//! again after the last one. Everything is bounded by a deadline.
//!
//! `in-process DIR SECONDS` starts the same gateway inside this process (file mode, the
//! system allocator) and holds it for `SECONDS` before exiting without tearing it down: a
//! heap profiler run on this program then reports what the running gateway holds as
//! memory still allocated at exit.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use mse_proxy::echo::EchoServer;
use mse_test_apiserver::ApiServer;
use serde_json::json;

/// The namespace of the backend and of the Ingresses this program creates.
const NS: &str = "bench-extra";
/// The name of the echo backend and of its Service.
const ECHO: &str = "echo";
/// The quiet time before each measured creation: beyond the file watcher's debounce and
/// cap, and the kube source's coalescing window.
const QUIET: Duration = Duration::from_millis(700);
/// How often the client asks whether a new Ingress is served.
const PROBE_EVERY: Duration = Duration::from_millis(1);
/// How long the gateway settles after ready before its memory is read.
const SETTLE: Duration = Duration::from_secs(5);
/// The longest any wait may take before the run is abandoned.
const DEADLINE: Duration = Duration::from_secs(120);

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let usage = "usage: scale file|kube DIR [EDITS] | scale in-process DIR SECONDS";
    let (Some(mode), Some(dir)) = (args.first(), args.get(1)) else {
        bail!("{usage}");
    };
    let number = args.get(2).map(|n| n.parse::<u64>()).transpose()?;
    let dir = PathBuf::from(dir);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    match mode.as_str() {
        "file" | "kube" => {
            let edits = usize::try_from(number.unwrap_or(30))?;
            runtime.block_on(run(mode == "kube", &dir, edits))
        }
        "in-process" => runtime.block_on(in_process(&dir, number.unwrap_or(10))),
        _ => bail!("{usage}"),
    }
}

async fn run(kube: bool, set: &Path, edits: usize) -> anyhow::Result<()> {
    let echo = EchoServer::bind(SocketAddr::from(([127, 0, 0, 1], 0)), ECHO).await?;
    let files = manifest_files(set)?;
    let work = tempfile::tempdir()?;
    let mut args: Vec<String> = Vec::new();
    let api = if kube {
        let api = ApiServer::start().await?;
        let started = Instant::now();
        let mut objects = 0;
        for f in &files {
            objects += api
                .try_apply_yaml(&std::fs::read_to_string(f)?)
                .with_context(|| format!("applying {}", f.display()))?
                .len();
        }
        api.try_apply_yaml(&backend_yaml(&echo))?;
        println!(
            "API server holds {objects} objects of the set (given in {:.1?})",
            started.elapsed()
        );
        let kubeconfig = work.path().join("kubeconfig");
        api.write_kubeconfig(&kubeconfig)?;
        args.extend(["--kubeconfig".into(), kubeconfig.display().to_string()]);
        Some(api)
    } else {
        let dir = work.path().join("manifests");
        std::fs::create_dir(&dir)?;
        for f in &files {
            let name = f.file_name().context("a file without a name")?;
            std::fs::copy(f, dir.join(name))?;
        }
        std::fs::write(dir.join("zz-bench-backend.yaml"), backend_yaml(&echo))?;
        args.extend(["--manifests".into(), dir.display().to_string()]);
        None
    };
    let mut gateway = Gateway::spawn(&args, &work.path().join("gateway.log"))?;
    let outcome = measure(&mut gateway, api.as_ref(), work.path(), edits).await;
    gateway.stop();
    outcome
}

async fn measure(
    gateway: &mut Gateway,
    api: Option<&ApiServer>,
    work: &Path,
    edits: usize,
) -> anyhow::Result<()> {
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let ready = gateway.wait_ready(&client).await?;
    println!("ready after {ready:.2?} (process start to /readyz 200)");
    tokio::time::sleep(SETTLE).await;
    println!("after ready + {SETTLE:?}: {}", gateway.memory()?);

    let mut took = Vec::with_capacity(edits);
    for i in 1..=edits {
        tokio::time::sleep(QUIET).await;
        let host = format!("extra-{i}.bench.test");
        let started = Instant::now();
        match api {
            Some(api) => {
                api.create(ingress_json(i, &host))?;
            }
            None => {
                let dir = work.join("manifests");
                let tmp = dir.join(format!(".extra-{i}.yaml.tmp"));
                std::fs::write(&tmp, ingress_yaml(i, &host))?;
                std::fs::rename(&tmp, dir.join(format!("zz-extra-{i}.yaml")))?;
            }
        }
        served(&client, gateway.http, &host).await?;
        took.push(started.elapsed());
    }
    if !took.is_empty() {
        took.sort();
        let at = |q: f64| took[((took.len() - 1) as f64 * q).round() as usize];
        println!(
            "create to served, {edits} Ingresses {QUIET:?} apart (probed every {PROBE_EVERY:?}): \
             min {:.1?}, median {:.1?}, p90 {:.1?}, p99 {:.1?}, max {:.1?}",
            at(0.0),
            at(0.5),
            at(0.9),
            at(0.99),
            at(1.0),
        );
        tokio::time::sleep(SETTLE).await;
        println!("after the last one + {SETTLE:?}: {}", gateway.memory()?);
    }
    Ok(())
}

/// The gateway, a child process on loopback ports.
struct Gateway {
    child: Child,
    http: SocketAddr,
    admin: SocketAddr,
    started: Instant,
}

impl Gateway {
    fn spawn(source: &[String], log: &Path) -> anyhow::Result<Self> {
        let (http, admin, https) = (free_port()?, free_port()?, free_port()?);
        let log = std::fs::File::create(log)?;
        let started = Instant::now();
        // Another build of the gateway may be measured the same way.
        let binary = std::env::var_os("MSE_GATEWAY_BIN")
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_mse-gateway").into());
        let child = Command::new(binary)
            .args(source)
            .args(["--http-addr", &http.to_string()])
            .args(["--https-addr", &https.to_string()])
            .args(["--admin-addr", &admin.to_string()])
            .args(["--workers", "1", "--access-log", "false"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting mse-gateway")?;
        Ok(Self {
            child,
            http,
            admin,
            started,
        })
    }

    /// Waits for `/readyz` to answer 200; the time since the process was started.
    async fn wait_ready(&mut self, client: &HttpClient) -> anyhow::Result<Duration> {
        let deadline = self.started + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("mse-gateway exited before it was ready: {status}");
            }
            if let Ok((200, _)) = answer(client, self.admin, "admin", "/readyz").await {
                return Ok(self.started.elapsed());
            }
            ensure!(Instant::now() < deadline, "not ready within {DEADLINE:?}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// `VmRSS` and `VmHWM` as the kernel reports them.
    fn memory(&self) -> anyhow::Result<String> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let field = |name: &str| -> String {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_owned())
                .unwrap_or_else(|| "?".to_owned())
        };
        Ok(format!(
            "VmRSS {}, VmHWM {}, RssAnon {}",
            field("VmRSS:"),
            field("VmHWM:"),
            field("RssAnon:")
        ))
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback address with a port free right now.
fn free_port() -> anyhow::Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// Waits until `host` is served by the echo backend (until then another route of the set,
/// or none, answers).
async fn served(client: &HttpClient, http: SocketAddr, host: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if answer(client, http, host, "/").await? == (200, Some(ECHO.to_owned())) {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "{host} was not served within {DEADLINE:?}"
        );
        tokio::time::sleep(PROBE_EVERY).await;
    }
}

/// The status of a request, and which echo backend answered it.
async fn answer(
    client: &HttpClient,
    addr: SocketAddr,
    host: &str,
    path: &str,
) -> anyhow::Result<(u16, Option<String>)> {
    let request = http::Request::get(format!("http://{addr}{path}"))
        .header("host", host)
        .body(Empty::new())?;
    let response = tokio::time::timeout(Duration::from_secs(10), client.request(request))
        .await
        .context("request timed out")??;
    let status = response.status().as_u16();
    let echo = response
        .headers()
        .get("x-echo-service")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    response.into_body().collect().await?;
    Ok((status, echo))
}

/// The set's manifest files, sorted.
fn manifest_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.retain(|p| {
        p.extension()
            .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
    });
    files.sort();
    ensure!(!files.is_empty(), "no manifest files in {}", dir.display());
    Ok(files)
}

fn backend_yaml(b: &EchoServer) -> String {
    let a = b.addr();
    format!(
        "---\napiVersion: v1\nkind: Service\nmetadata: {{ name: echo, namespace: {NS} }}\nspec: {{ ports: [{{ name: http, port: 80, targetPort: {p} }}] }}\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{ name: echo-1, namespace: {NS}, labels: {{ kubernetes.io/service-name: echo }} }}\naddressType: IPv4\nports: [{{ name: http, port: {p} }}]\nendpoints: [{{ addresses: [\"{ip}\"], conditions: {{ ready: true }} }}]\n",
        p = a.port(),
        ip = a.ip()
    )
}

fn ingress_json(i: usize, host: &str) -> serde_json::Value {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": { "name": format!("extra-{i}"), "namespace": NS },
        "spec": {
            "ingressClassName": "mse",
            "rules": [{ "host": host, "http": { "paths": [{
                "path": "/", "pathType": "Prefix",
                "backend": { "service": { "name": "echo", "port": { "number": 80 } } }
            }]}}]
        }
    })
}

fn ingress_yaml(i: usize, host: &str) -> String {
    // JSON is YAML.
    format!("{}\n", ingress_json(i, host))
}

/// The gateway inside this process, for heap profilers (see the module docs).
async fn in_process(dir: &Path, seconds: u64) -> anyhow::Result<()> {
    let mut options = mse_gateway::Options::new(vec![dir.to_path_buf()]);
    options.http_addr = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    options.https_addr = None;
    options.admin_addr = SocketAddr::from(([127, 0, 0, 1], 0));
    options.workers = 1;
    options.access_log = false;
    let started = Instant::now();
    let running = mse_gateway::start(options).await?;
    println!("ready after {:.2?}", started.elapsed());
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let status = std::fs::read_to_string("/proc/self/status")?;
    for line in status
        .lines()
        .filter(|l| l.starts_with("Vm") && l.contains("kB"))
    {
        println!("{line}");
    }
    // Exit with the gateway still running: what it holds shows as still allocated.
    std::mem::forget(running);
    std::process::exit(0);
}
