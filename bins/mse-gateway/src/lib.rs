//! Wiring for the `mse-gateway` binary: a source (watched manifest files, or the
//! Kubernetes API), the compile loop, the data plane and the admin listener, started
//! together and stopped together.
//!
//! The binary is a thin shell around [`start`]; tests start the same gateway in-process on
//! loopback ports.
//!
//! - **File mode** ([`Source::Files`]): the first table is compiled before any listener
//!   accepts, and [`start`] returns ready.
//! - **Kube mode** ([`Source::Kube`]): the listeners bind at once and [`start`] returns;
//!   `/readyz` answers 503 until every watch has listed once and the first table is live,
//!   then 200. An API server that cannot be reached keeps it not ready while the watches
//!   retry with backoff; the process does not exit. Every replica serves traffic; the one
//!   holding the leader election Lease also writes Ingress status and Events
//!   ([`WriteOptions`], [`Running::leadership`]).
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
mod writers;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use mse_controller::{
    Compiled, FileSource, FileWatch, KubeOptions, KubeSource, KubeWatch, run_compile_loop,
};
use mse_model::Snapshot;
use mse_proxy::admin::{self, AdminState};
use mse_proxy::{Gateway, GatewayHandle, Metrics, ProxyConfig, SharedTable};
use mse_router::global::GlobalFlags;
use mse_router::{CompileOptions, ObjectRef, ServiceRef};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use writers::WriteOptions;
use writers::Writers;

/// Where the gateway reads its objects from.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Source {
    /// Manifest files or directories, watched (`--manifests`).
    Files(Vec<PathBuf>),
    /// A Kubernetes API server.
    Kube {
        /// The kubeconfig file (`--kubeconfig`); `None`: `$KUBECONFIG` or
        /// `~/.kube/config`, else the in-cluster service account.
        kubeconfig: Option<PathBuf>,
        /// The namespaces to watch (`--namespace`); empty: every namespace.
        namespaces: Vec<String>,
    },
}

/// How to run the gateway.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Options {
    /// Where the objects come from.
    pub source: Source,
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
    /// One access log line per request (see `--access-log-path`), unless the global configuration says
    /// otherwise (`disable-access-log`).
    pub access_log: bool,
    /// Data-plane timeouts and limits beyond the listeners.
    pub proxy: ProxyConfig,
    /// The gateway-wide default backend (`--default-backend-service`): the Service that
    /// answers requests no route matches. `None`: they get 404.
    pub default_backend: Option<ServiceRef>,
    /// Kube mode: Ingress status, Events and the leader election that guards them.
    pub writes: WriteOptions,
    /// The ConfigMap of ingress-nginx keys (`--configmap`): the gateway-wide
    /// configuration, with `higress-config` in its namespace (see `docs/configuration.md`).
    pub configmap: Option<ObjectRef>,
    /// The flags given explicitly that have a global-configuration equivalent: they beat
    /// the ConfigMaps. The values above are defaults that a ConfigMap overrides.
    pub flags: GlobalFlags,
}

impl Options {
    /// Defaults from the command-line contract, serving `manifests` (file mode).
    pub fn new(manifests: Vec<PathBuf>) -> Self {
        Self::with_source(Source::Files(manifests))
    }

    /// Defaults from the command-line contract, serving what a Kubernetes API server has
    /// (kube mode).
    pub fn kube(kubeconfig: Option<PathBuf>, namespaces: Vec<String>) -> Self {
        Self::with_source(Source::Kube {
            kubeconfig,
            namespaces,
        })
    }

    /// Defaults from the command-line contract, serving `source`.
    pub fn with_source(source: Source) -> Self {
        let proxy = ProxyConfig::default();
        Self {
            source,
            ingress_class: "mse".to_owned(),
            http_addr: proxy.http_addr,
            https_addr: proxy.https_addr,
            admin_addr: SocketAddr::from(([127, 0, 0, 1], 9901)),
            workers: proxy.workers,
            access_log: true,
            proxy,
            default_backend: None,
            writes: WriteOptions::default(),
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
    source: SourceWatch,
    compile: JoinHandle<()>,
    admin: JoinHandle<()>,
    /// Sets `/readyz` once the first table is live (kube mode).
    ready: Option<JoinHandle<()>>,
    compiled: watch::Receiver<Option<Compiled>>,
    /// Kube mode: the election and the writers.
    writers: Option<Writers>,
}

/// The running source.
enum SourceWatch {
    Files(FileWatch),
    Kube(KubeWatch),
}

impl SourceWatch {
    fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        match self {
            SourceWatch::Files(w) => w.subscribe(),
            SourceWatch::Kube(w) => w.subscribe(),
        }
    }

    async fn stop(self) {
        let stopped = match self {
            SourceWatch::Files(w) => w.stop().await,
            SourceWatch::Kube(w) => w.stop().await,
        };
        if let Err(e) = stopped {
            tracing::warn!(error = %e, "stopping the source");
        }
    }
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

/// Starts the gateway.
///
/// File mode: reads the manifests, compiles and publishes the first route table, binds
/// every listener, and returns once `/readyz` says ready. Kube mode: binds every listener
/// and returns at once; `/readyz` turns ready when the first table from the API server is
/// live.
///
/// # Errors
///
/// A listener cannot be bound, the kubeconfig cannot be read or the leader election
/// timings cannot work (kube mode), or the first table takes over a minute (file mode).
pub async fn start(options: Options) -> anyhow::Result<Running> {
    if matches!(options.source, Source::Kube { .. }) {
        options
            .writes
            .lease
            .validate()
            .context("leader election settings")?;
    }
    let metrics = Arc::new(Metrics::new());
    let table = SharedTable::new(metrics);
    let admin_state = AdminState::new(table.clone());

    let admin_listener = TcpListener::bind(options.admin_addr)
        .await
        .with_context(|| format!("binding the admin listener on {}", options.admin_addr))?;
    let admin_addr = admin_listener.local_addr()?;
    let admin = tokio::spawn(admin::serve(admin_listener, admin_state.clone()));

    let source = match start_source(&options).await {
        Ok(source) => source,
        Err(e) => {
            admin.abort();
            return Err(e);
        }
    };
    if let SourceWatch::Kube(w) = &source {
        // The watch counts join the control-plane metrics, read at each scrape.
        let counter = w.counter();
        table.metrics().watch_counts(move || {
            counter
                .read()
                .iter()
                .map(|c| {
                    mse_proxy::WatchReport::new(&c.kind, c.lists, c.relists, c.restarts, c.errors)
                })
                .collect()
        });
    }
    let (compile, compiled) = spawn_compile_loop(&options, &source, &table, &admin_state);
    if let SourceWatch::Files(_) = source {
        // The first table goes live before the listeners accept anything.
        let mut first = compiled.clone();
        tokio::time::timeout(Duration::from_secs(60), first.wait_for(Option::is_some))
            .await
            .context("timed out compiling the first route table")?
            .context("the compile loop stopped before publishing a table")?;
    }

    let mut proxy = options.proxy.clone();
    proxy.http_addr = options.http_addr;
    proxy.https_addr = options.https_addr;
    proxy.workers = options.workers;
    proxy.access_log = options.access_log;
    let gateway = Gateway::start(proxy, table.clone()).context("starting the data plane")?;
    let listening = Listening {
        http: gateway.http_addr(),
        https: gateway.https_addr(),
        admin: admin_addr,
    };
    let ready = match source {
        SourceWatch::Files(_) => {
            listening.ready(&admin_state);
            None
        }
        SourceWatch::Kube(_) => {
            Some(listening.ready_after_first_table(admin_state, compiled.clone()))
        }
    };
    let writers = match &source {
        SourceWatch::Kube(w) => Some(Writers::start(w, compiled.clone(), &options.writes)?),
        SourceWatch::Files(_) => None,
    };
    Ok(Running {
        gateway,
        table,
        admin_addr,
        source,
        compile,
        admin,
        ready,
        compiled,
        writers,
    })
}

/// Runs the compile loop on the source's snapshots: each table goes live, its load
/// diagnostics to the admin listener, and the whole [`Compiled`] to the returned channel.
fn spawn_compile_loop(
    options: &Options,
    source: &SourceWatch,
    table: &SharedTable,
    admin_state: &AdminState,
) -> (JoinHandle<()>, watch::Receiver<Option<Compiled>>) {
    let (compiled_tx, compiled) = watch::channel(None::<Compiled>);
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
        source.subscribe(),
        compile_options,
        move |compiled: Compiled| {
            publish_admin.set_extra_diagnostics(compiled.load_diagnostics.to_vec());
            publish_table.publish(Arc::clone(&compiled.table));
            publish_table.metrics().compiled(&compile_report(&compiled));
            compiled_tx.send_replace(Some(compiled));
        },
    ));
    (compile, compiled)
}

/// What the control-plane metrics say of a compile.
fn compile_report(compiled: &Compiled) -> mse_proxy::CompileReport {
    let s = &compiled.snapshot;
    let mut report = mse_proxy::CompileReport::default();
    report.duration = compiled.compile_time;
    report.routes = compiled.table.routes().len();
    report.objects = vec![
        ("Ingress", s.ingresses.len()),
        ("IngressClass", s.ingress_classes.len()),
        ("Service", s.services.len()),
        ("EndpointSlice", s.endpoint_slices.len()),
        ("Endpoints", s.endpoints.len()),
        ("Secret", s.secrets.len()),
        ("ConfigMap", s.config_maps.len()),
        ("MseIngressConfig", s.mse_configs.len()),
    ];
    report.diagnostics = compiled
        .diagnostics()
        .map(|d| (severity_label(d.severity), d.code))
        .collect();
    report
}

fn severity_label(s: mse_model::Severity) -> &'static str {
    match s {
        mse_model::Severity::Info => "info",
        mse_model::Severity::Warning => "warning",
        _ => "error",
    }
}

/// The bound addresses, for the log lines that announce them.
#[derive(Clone, Copy)]
struct Listening {
    http: Option<SocketAddr>,
    https: Option<SocketAddr>,
    admin: SocketAddr,
}

impl Listening {
    /// Marks the gateway ready and says so.
    fn ready(self, admin_state: &AdminState) {
        admin_state.set_ready(true);
        tracing::info!(http = ?self.http, https = ?self.https, admin = %self.admin, "gateway ready");
    }

    /// Says the listeners are up, and marks the gateway ready once a first table is live.
    fn ready_after_first_table(
        self,
        admin_state: AdminState,
        mut compiled: watch::Receiver<Option<Compiled>>,
    ) -> JoinHandle<()> {
        tracing::info!(
            http = ?self.http,
            https = ?self.https,
            admin = %self.admin,
            "listening; not ready until every watch has listed and the first table is live"
        );
        tokio::spawn(async move {
            if compiled.wait_for(Option::is_some).await.is_ok() {
                self.ready(&admin_state);
            }
        })
    }
}

async fn start_source(options: &Options) -> anyhow::Result<SourceWatch> {
    match &options.source {
        Source::Files(paths) => {
            anyhow::ensure!(
                !paths.is_empty(),
                "file mode needs at least one manifest path"
            );
            let watch = FileSource::new(paths.clone())
                .watch()
                .await
                .context("starting the manifest watcher")?;
            Ok(SourceWatch::Files(watch))
        }
        Source::Kube {
            kubeconfig,
            namespaces,
        } => {
            let client = KubeSource::connect(kubeconfig.as_deref()).await?;
            let mut kube = KubeOptions::default();
            kube.namespaces = namespaces.clone();
            // The gateway's ConfigMap is read even from a namespace not otherwise watched.
            kube.config_map_namespaces = options
                .configmap
                .iter()
                .filter_map(|c| c.namespace.clone())
                .collect();
            kube.ingress_class = options.ingress_class.clone();
            Ok(SourceWatch::Kube(KubeSource::new(client, kube).watch()))
        }
    }
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
        self.compiled
            .wait_for(|c| c.as_ref().is_some_and(|c| c.generation() >= generation))
            .await
            .map(|_| ())
            .context("the compile loop stopped")
    }

    /// Every table as it goes live (`None` before the first), with its diagnostics: what
    /// the Ingress status writer and Events follow.
    pub fn compiled(&self) -> watch::Receiver<Option<Compiled>> {
        self.compiled.clone()
    }

    /// The Kubernetes source in kube mode (its client included), `None` in file mode.
    pub fn kube(&self) -> Option<&KubeWatch> {
        match &self.source {
            SourceWatch::Kube(w) => Some(w),
            SourceWatch::Files(_) => None,
        }
    }

    /// Kube mode: `true` while this replica holds the leader election Lease and writes
    /// Ingress status and Events. `None` in file mode.
    pub fn leadership(&self) -> Option<watch::Receiver<bool>> {
        self.writers.as_ref().map(Writers::leadership)
    }

    /// Gives up leadership (kube mode: the Lease is released, so another replica takes
    /// over at once), stops accepting, lets in-flight requests finish (within the
    /// configured grace period), then stops the source and the admin listener.
    pub async fn shutdown(self) {
        if let Some(writers) = self.writers {
            writers.stop().await;
        }
        self.gateway.shutdown().await;
        if let Some(ready) = self.ready {
            ready.abort();
        }
        self.source.stop().await;
        let _ = self.compile.await;
        self.admin.abort();
    }
}
