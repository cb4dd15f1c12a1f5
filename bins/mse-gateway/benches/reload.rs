//! Manifest edits to served routes, in file mode on loopback: how many route tables a
//! stream of edits publishes, and how long an edit takes to be served.
//!
//! ```sh
//! cargo bench -p mse-gateway --bench reload
//! ```
//!
//! A plain program (no harness) that prints its figures. It starts the gateway in-process on
//! loopback ports with echo backends, edits one manifest file (written to a temporary file
//! and renamed over it, as editors do), and asks the gateway's HTTP listener which edit it
//! serves. Everything is bounded: a fixed number of edits, and a deadline on each wait.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use mse_controller::FileSource;
use mse_gateway::{Options, Running};
use mse_proxy::echo::EchoServer;

/// Edits in each fast loop.
const FAST_EDITS: usize = 200;
/// Edits whose apply-to-served latency is measured.
const LATENCY_EDITS: usize = 30;
/// The quiet time before each measured edit: beyond the watcher's debounce and its cap, so
/// that each edit starts a burst of its own.
const QUIET: Duration = Duration::from_millis(700);
/// How often the client asks whether an edit is served.
const PROBE_EVERY: Duration = Duration::from_millis(1);
/// The longest any wait may take before the run is abandoned.
const DEADLINE: Duration = Duration::from_secs(30);

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let backends = [
        EchoServer::bind(SocketAddr::from(([127, 0, 0, 1], 0)), "live").await?,
        EchoServer::bind(SocketAddr::from(([127, 0, 0, 1], 0)), "churn").await?,
    ];
    let dir = tempfile::tempdir()?;
    std::fs::write(
        dir.path().join("services.yaml"),
        backends.iter().map(service_yaml).collect::<String>(),
    )?;
    let app = dir.path().join("app.yaml");
    std::fs::write(&app, version("v0"))?;

    let mut options = Options::new(vec![dir.path().to_path_buf()]);
    options.http_addr = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    options.https_addr = None;
    options.admin_addr = SocketAddr::from(([127, 0, 0, 1], 0));
    options.workers = 1;
    options.access_log = false;
    let gateway = tokio::time::timeout(DEADLINE, mse_gateway::start(options))
        .await
        .context("starting the gateway timed out")??;
    let http = gateway.http_addr().context("no HTTP listener")?;
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    served(&client, http, "v0").await?;

    println!(
        "watcher: a finished change after a quiet spell is read at once; what follows is \
         debounced {:?} after the last event, at most 500ms after the first of them; poll \
         every {:?}",
        FileSource::DEFAULT_DEBOUNCE,
        FileSource::DEFAULT_POLL_INTERVAL
    );
    let mut round = 0;
    for pause in [
        Duration::ZERO,
        Duration::from_millis(10),
        Duration::from_millis(50),
    ] {
        round += 1;
        fast_loop(&gateway, &client, http, &app, round, pause).await?;
    }
    latency(&client, http, &app).await?;
    gateway.shutdown().await;
    Ok(())
}

/// `FAST_EDITS` edits `pause` apart; then waits for the last one to be served.
async fn fast_loop(
    gateway: &Running,
    client: &HttpClient,
    http: SocketAddr,
    app: &Path,
    round: usize,
    pause: Duration,
) -> anyhow::Result<()> {
    tokio::time::sleep(QUIET).await;
    let metrics = gateway.table().metrics();
    let publishes_before = metrics.table_publishes();
    let generation_before = gateway.table().routes().generation();
    let started = Instant::now();
    let mut last = String::new();
    for i in 1..=FAST_EDITS {
        last = format!("r{round}e{i}");
        write_atomic(app, &version(&last))?;
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
    let edited = started.elapsed();
    served(client, http, &last).await?;
    let took = started.elapsed();
    let publishes = metrics.table_publishes() - publishes_before;
    let generations = gateway.table().routes().generation() - generation_before;
    println!(
        "{FAST_EDITS} edits {pause:?} apart, written in {edited:.2?}, last served after {took:.2?}: \
         {publishes} tables published ({:.3} per edit, {:.1} per second), {generations} snapshots",
        publishes as f64 / FAST_EDITS as f64,
        publishes as f64 / took.as_secs_f64(),
    );
    Ok(())
}

/// `LATENCY_EDITS` edits, each after a quiet time: from writing the file to the first
/// request served by the new route.
async fn latency(client: &HttpClient, http: SocketAddr, app: &Path) -> anyhow::Result<()> {
    let mut took = Vec::with_capacity(LATENCY_EDITS);
    for i in 1..=LATENCY_EDITS {
        tokio::time::sleep(QUIET).await;
        let path = format!("l{i}");
        let started = Instant::now();
        write_atomic(app, &version(&path))?;
        served(client, http, &path).await?;
        took.push(started.elapsed());
    }
    took.sort();
    let at = |q: f64| took[((took.len() - 1) as f64 * q).round() as usize];
    println!(
        "apply to served, {LATENCY_EDITS} edits {QUIET:?} apart (probed every {PROBE_EVERY:?}): \
         median {:.1?}, p90 {:.1?}, max {:.1?}, min {:.1?}",
        at(0.5),
        at(0.9),
        at(1.0),
        at(0.0),
    );
    Ok(())
}

/// Waits until `/{path}` on `churn.test` is served by the churn backend.
async fn served(client: &HttpClient, http: SocketAddr, path: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if status(client, http, &format!("/{path}")).await? == 200 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("/{path} was not served within {DEADLINE:?}");
        }
        tokio::time::sleep(PROBE_EVERY).await;
    }
}

async fn status(client: &HttpClient, http: SocketAddr, path: &str) -> anyhow::Result<u16> {
    let request = http::Request::get(format!("http://{http}{path}"))
        .header("host", "churn.test")
        .body(Empty::new())?;
    let response = tokio::time::timeout(DEADLINE, client.request(request))
        .await
        .context("request timed out")??;
    let status = response.status().as_u16();
    response.into_body().collect().await?;
    ensure!(matches!(status, 200 | 404), "unexpected status {status}");
    Ok(status)
}

/// Writes a file the way editors do: a temporary file renamed over the old one.
fn write_atomic(path: &Path, text: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp~");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// The edited manifest: a steady Ingress, and one whose only path changes with every edit.
fn version(path: &str) -> String {
    format!(
        "{}{}",
        ingress_yaml("app", "app.test", "/", "live"),
        ingress_yaml("churn", "churn.test", &format!("/{path}"), "churn"),
    )
}

fn ingress_yaml(name: &str, host: &str, path: &str, svc: &str) -> String {
    format!(
        "---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{ name: {name}, namespace: bench }}\nspec:\n  ingressClassName: mse\n  rules:\n  - host: {host}\n    http:\n      paths:\n      - {{ path: \"{path}\", pathType: Exact, backend: {{ service: {{ name: {svc}, port: {{ number: 80 }} }} }} }}\n"
    )
}

fn service_yaml(b: &EchoServer) -> String {
    let a = b.addr();
    format!(
        "---\napiVersion: v1\nkind: Service\nmetadata: {{ name: {n}, namespace: bench }}\nspec: {{ ports: [{{ name: http, port: 80, targetPort: {p} }}] }}\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{ name: {n}-1, namespace: bench, labels: {{ kubernetes.io/service-name: {n} }} }}\naddressType: IPv4\nports: [{{ name: http, port: {p} }}]\nendpoints: [{{ addresses: [\"{ip}\"] }}]\n",
        n = b.service(),
        p = a.port(),
        ip = a.ip()
    )
}
