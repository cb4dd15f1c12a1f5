//! Wiring for the `mse-gateway` binary: the file source, the compile loop, the data plane
//! and the admin listener, started together and stopped together.
//!
//! The binary is a thin shell around [`start`]; tests start the same gateway in-process on
//! loopback ports.
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! let mut options = mse_gateway::Options::new(vec!["manifests/".into()]);
//! options.http_addr = Some("127.0.0.1:8080".parse()?);
//! let running = mse_gateway::start(options).await?;
//! println!("serving on {:?}", running.http_addr());
//! running.shutdown().await;
//! # Ok(()) }
//! ```

pub mod demo;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use mse_controller::{Compiled, FileSource, FileWatch, run_compile_loop};
use mse_proxy::admin::{self, AdminState};
use mse_proxy::{Gateway, GatewayHandle, Metrics, ProxyConfig, SharedTable};
use mse_router::global::GlobalFlags;
use mse_router::{CompileOptions, ObjectRef, ServiceRef};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How to run the gateway.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Options {
    /// Manifest files or directories, watched.
    pub manifests: Vec<PathBuf>,
    /// The class name served where no IngressClass object names it.
    pub ingress_class: String,
    /// Plain HTTP listener (`None`: none).
    pub http_addr: Option<SocketAddr>,
    /// TLS listener (`None`: none).
    pub https_addr: Option<SocketAddr>,
    /// Admin listener.
    pub admin_addr: SocketAddr,
    /// Data-plane worker threads.
    pub workers: usize,
    /// One log line per request (target `access`), unless the global configuration says
    /// otherwise (`disable-access-log`).
    pub access_log: bool,
    /// Data-plane timeouts and limits beyond the listeners.
    pub proxy: ProxyConfig,
    /// The gateway-wide default backend (`--default-backend-service`): the Service that
    /// answers requests no route matches. `None`: they get 404.
    pub default_backend: Option<ServiceRef>,
    /// The ConfigMap of ingress-nginx keys (`--configmap`): the gateway-wide
    /// configuration, with `higress-config` in its namespace (see `docs/configuration.md`).
    pub configmap: Option<ObjectRef>,
    /// The flags given explicitly that have a global-configuration equivalent: they beat
    /// the ConfigMaps. The values above are defaults that a ConfigMap overrides.
    pub flags: GlobalFlags,
}

impl Options {
    /// Defaults from the command-line contract, serving `manifests`.
    pub fn new(manifests: Vec<PathBuf>) -> Self {
        let proxy = ProxyConfig::default();
        Self {
            manifests,
            ingress_class: "mse".to_owned(),
            http_addr: proxy.http_addr,
            https_addr: proxy.https_addr,
            admin_addr: SocketAddr::from(([127, 0, 0, 1], 9901)),
            workers: proxy.workers,
            access_log: true,
            proxy,
            default_backend: None,
            configmap: None,
            flags: GlobalFlags::default(),
        }
    }
}

/// A running gateway. Dropping it stops nothing: call [`Running::shutdown`].
pub struct Running {
    gateway: GatewayHandle,
    table: SharedTable,
    admin_addr: SocketAddr,
    watch: FileWatch,
    compile: JoinHandle<()>,
    admin: JoinHandle<()>,
    generation: watch::Receiver<u64>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("http_addr", &self.gateway.http_addr())
            .field("https_addr", &self.gateway.https_addr())
            .field("admin_addr", &self.admin_addr)
            .finish_non_exhaustive()
    }
}

/// Starts the gateway: reads the manifests, compiles and publishes the first route table,
/// binds every listener, and returns once `/readyz` says ready.
pub async fn start(options: Options) -> anyhow::Result<Running> {
    anyhow::ensure!(
        !options.manifests.is_empty(),
        "no --manifests given: kube mode (watching an API server) is not part of this build; \
         pass --manifests PATH to serve Ingress manifests from files"
    );
    let metrics = Arc::new(Metrics::new());
    let table = SharedTable::new(metrics);
    let admin_state = AdminState::new(table.clone());

    let admin_listener = TcpListener::bind(options.admin_addr)
        .await
        .with_context(|| format!("binding the admin listener on {}", options.admin_addr))?;
    let admin_addr = admin_listener.local_addr()?;
    let admin = tokio::spawn(admin::serve(admin_listener, admin_state.clone()));

    let watch = FileSource::new(options.manifests.clone())
        .watch()
        .await
        .context("starting the manifest watcher")?;
    let (generation_tx, mut generation) = watch::channel(0u64);
    let compile_options = CompileOptions {
        ingress_class: options.ingress_class.clone(),
        default_backend: options.default_backend.clone(),
        configmap: options.configmap.clone(),
        flags: options.flags.clone(),
        ..CompileOptions::default()
    };
    let publish_table = table.clone();
    let publish_admin = admin_state.clone();
    let compile = tokio::spawn(run_compile_loop(
        watch.subscribe(),
        compile_options,
        move |compiled: Compiled| {
            publish_admin.set_extra_diagnostics(compiled.load_diagnostics.to_vec());
            publish_table.publish(Arc::clone(&compiled.table));
            generation_tx.send_replace(compiled.generation());
        },
    ));

    // The first table goes live before the listeners accept anything.
    tokio::time::timeout(Duration::from_secs(60), generation.wait_for(|g| *g > 0))
        .await
        .context("timed out compiling the first route table")?
        .context("the compile loop stopped before publishing a table")?;

    let mut proxy = options.proxy.clone();
    proxy.http_addr = options.http_addr;
    proxy.https_addr = options.https_addr;
    proxy.workers = options.workers;
    proxy.access_log = options.access_log;
    let gateway = Gateway::start(proxy, table.clone()).context("starting the data plane")?;
    admin_state.set_ready(true);
    tracing::info!(
        http = ?gateway.http_addr(),
        https = ?gateway.https_addr(),
        admin = %admin_addr,
        "gateway ready"
    );
    Ok(Running {
        gateway,
        table,
        admin_addr,
        watch,
        compile,
        admin,
        generation,
    })
}

impl Running {
    /// The bound plain HTTP address.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.gateway.http_addr()
    }

    /// The bound TLS address.
    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.gateway.https_addr()
    }

    /// The bound admin address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// The table being served.
    pub fn table(&self) -> &SharedTable {
        &self.table
    }

    /// Waits until a table compiled from a snapshot of at least `generation` is live.
    pub async fn wait_for_generation(&mut self, generation: u64) -> anyhow::Result<()> {
        self.generation
            .wait_for(|g| *g >= generation)
            .await
            .map(|_| ())
            .context("the compile loop stopped")
    }

    /// Stops accepting, lets in-flight requests finish (within the configured grace
    /// period), then stops the watcher and the admin listener.
    pub async fn shutdown(self) {
        self.gateway.shutdown().await;
        if let Err(e) = self.watch.stop().await {
            tracing::warn!(error = %e, "stopping the manifest watcher");
        }
        let _ = self.compile.await;
        self.admin.abort();
    }
}
