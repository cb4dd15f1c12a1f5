//! Serves routes from a YAML file on loopback, with no Kubernetes.
//!
//! ```text
//! cargo run -p mse-proxy --example static_gateway -- [--http ADDR] [--https ADDR] [--admin ADDR]
//!     [--workers N] [--no-access-log] [FILE]
//! ```
//!
//! `FILE` holds ordinary Kubernetes manifests (Ingresses of class `mse`, Services,
//! EndpointSlices, TLS Secrets). Without it, two echo backends start on loopback and a
//! built-in manifest routes `demo.localhost/` to one and `demo.localhost/api` to the other.
//! Defaults: HTTP on 127.0.0.1:8080, HTTPS on 127.0.0.1:8443, admin on 127.0.0.1:9901.
//! Ctrl-C shuts down gracefully.

use std::net::SocketAddr;
use std::sync::Arc;

use mse_model::{Snapshot, load_manifests};
use mse_proxy::admin::{self, AdminState};
use mse_proxy::echo::EchoServer;
use mse_proxy::{Gateway, Metrics, ProxyConfig, SharedTable};
use mse_router::{CompileOptions, compile};

// The allocator a gateway binary should use: glibc's malloc costs about a tenth of the
// user-space time per proxied request.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "usage: static_gateway [--http ADDR] [--https ADDR] [--admin ADDR] [--workers N] [--no-access-log] [FILE]";

struct Args {
    http: SocketAddr,
    https: SocketAddr,
    admin: SocketAddr,
    workers: Option<usize>,
    access_log: bool,
    file: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        http: SocketAddr::from(([127, 0, 0, 1], 8080)),
        https: SocketAddr::from(([127, 0, 0, 1], 8443)),
        admin: SocketAddr::from(([127, 0, 0, 1], 9901)),
        workers: None,
        access_log: true,
        file: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut addr = |name: &str| -> Result<SocketAddr, String> {
            let v = it.next().ok_or(format!("{name} needs an address"))?;
            v.parse().map_err(|e| format!("{name} {v}: {e}"))
        };
        match arg.as_str() {
            "--http" => args.http = addr("--http")?,
            "--https" => args.https = addr("--https")?,
            "--admin" => args.admin = addr("--admin")?,
            "--workers" => {
                let v = it.next().ok_or("--workers needs a number")?;
                args.workers = Some(v.parse().map_err(|e| format!("--workers {v}: {e}"))?);
            }
            "--no-access-log" => args.access_log = false,
            "-h" | "--help" => return Err(USAGE.to_owned()),
            flag if flag.starts_with('-') => return Err(format!("unknown flag {flag}\n{USAGE}")),
            file => args.file = Some(file.to_owned()),
        }
    }
    Ok(args)
}

fn demo_manifests(web: SocketAddr, api: SocketAddr) -> String {
    let service = |name: &str, addr: SocketAddr| {
        format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{ name: {name}, namespace: default }}\nspec:\n  ports: [{{ name: http, port: 80, targetPort: http }}]\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{ name: {name}-1, namespace: default, labels: {{ kubernetes.io/service-name: {name} }} }}\naddressType: IPv4\nports: [{{ name: http, port: {} }}]\nendpoints: [{{ addresses: [\"{}\"] }}]\n---\n",
            addr.port(),
            addr.ip()
        )
    };
    format!(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{ name: demo, namespace: default }}\nspec:\n  ingressClassName: mse\n  rules:\n  - host: demo.localhost\n    http:\n      paths:\n      - {{ path: /api, pathType: Prefix, backend: {{ service: {{ name: api, port: {{ number: 80 }} }} }} }}\n      - {{ path: /, pathType: Prefix, backend: {{ service: {{ name: web, port: {{ number: 80 }} }} }} }}\n---\n{}{}",
        service("web", web),
        service("api", api)
    )
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = parse_args()?;

    // Keep the demo backends alive for as long as the gateway runs.
    let mut backends = Vec::new();
    let (name, yaml) = match &args.file {
        Some(file) => (file.clone(), std::fs::read_to_string(file)?),
        None => {
            let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
            let web = EchoServer::bind(loopback, "web").await?;
            let api = EchoServer::bind(loopback, "api").await?;
            let yaml = demo_manifests(web.addr(), api.addr());
            backends.extend([web, api]);
            ("<demo>".to_owned(), yaml)
        }
    };

    let loaded = load_manifests(&yaml, Some(&name));
    let mut snapshot = Snapshot {
        generation: 1,
        ..Default::default()
    };
    snapshot.extend(loaded.objects);
    let table = compile(&snapshot, &CompileOptions::default());
    for d in loaded.diagnostics.iter().chain(table.diagnostics()) {
        eprintln!("{d}");
    }

    let shared = SharedTable::new(Arc::new(Metrics::new()));
    shared.publish(Arc::new(table));
    let admin_state = AdminState::new(shared.clone());
    admin_state.set_extra_diagnostics(loaded.diagnostics);

    let mut config = ProxyConfig::default();
    config.http_addr = Some(args.http);
    config.https_addr = Some(args.https);
    config.access_log = args.access_log;
    if let Some(n) = args.workers {
        config.workers = n;
    }
    let gateway = Gateway::start(config, shared)?;
    let admin_listener = tokio::net::TcpListener::bind(args.admin).await?;
    let admin_addr = admin_listener.local_addr()?;
    let admin_task = tokio::spawn(admin::serve(admin_listener, admin_state.clone()));
    admin_state.set_ready(true);

    if let Some(http) = gateway.http_addr() {
        println!(
            "HTTP   http://{http}  (try: curl -H 'Host: demo.localhost' http://{http}/api/hello)"
        );
    }
    if let Some(https) = gateway.https_addr() {
        println!(
            "HTTPS  https://{https}  (try: curl -k --resolve demo.localhost:{0}:{1} https://demo.localhost:{0}/)",
            https.port(),
            https.ip()
        );
    }
    println!("admin  http://{admin_addr}/debug/routes  /metrics  /readyz");

    tokio::signal::ctrl_c().await?;
    println!("shutting down");
    admin_state.set_ready(false);
    gateway.shutdown().await;
    admin_task.abort();
    drop(backends);
    Ok(())
}
