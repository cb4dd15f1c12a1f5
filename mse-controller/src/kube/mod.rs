//! Kubernetes mode: the API server's objects, watched into snapshots ([`KubeSource`]).
//!
//! The parts: `watches` (one kube-runtime watcher per kind and namespace, feeding a
//! reflector store), `strip` (what is dropped before storing: `mse_model::slim`, as every
//! source does, plus this source's rules for Secret data and Pods), `secrets` (the referenced
//! Secrets read whole), `assemble` (stores to snapshot, pure) and `publish` (the task that
//! waits for the first lists, then publishes changes).

mod assemble;
mod pods;
mod publish;
mod secrets;
mod stores;
mod strip;
#[cfg(test)]
mod tests;
mod watches;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ::kube::config::{KubeConfigOptions, Kubeconfig};
use ::kube::{Client, Config};
use mse_model::Snapshot;
use mse_router::CompileOptions;
use tokio::sync::{oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};

use self::pods::PodWatch;
use self::publish::Publisher;
use self::stores::Stores;
use self::watches::Progress;
pub use self::watches::{WatchCounter, WatchCounts};
use crate::error::ControllerError;

/// What a [`KubeSource`] watches.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct KubeOptions {
    /// The namespaces of the namespaced kinds (`--namespace`, repeatable); empty: every
    /// namespace.
    pub namespaces: Vec<String>,
    /// Namespaces whose ConfigMaps are watched even when [`namespaces`](Self::namespaces)
    /// leaves them out: the namespace of the gateway's `--configmap` (and of
    /// `higress-config` beside it).
    pub config_map_namespaces: Vec<String>,
    /// The class this gateway serves where no IngressClass object names it
    /// (`--ingress-class`). Used to decide which Ingresses' Secrets to read; it should be
    /// the compile loop's [`CompileOptions::ingress_class`].
    pub ingress_class: String,
    /// Watch Pods (labels and addresses only) from the start and always. Without it they
    /// are watched only while some Ingress this gateway serves asks for a service subset.
    pub pods: bool,
    /// How long after a snapshot further changes are gathered into the next one.
    pub coalesce: Duration,
}

impl Default for KubeOptions {
    fn default() -> Self {
        Self {
            namespaces: Vec::new(),
            config_map_namespaces: Vec::new(),
            ingress_class: CompileOptions::default().ingress_class,
            pods: false,
            coalesce: KubeSource::DEFAULT_COALESCE,
        }
    }
}

/// Reads the gateway's objects from a Kubernetes API server into [`Snapshot`]s.
///
/// Built from a [`kube::Client`](::kube::Client) (see [`KubeSource::connect`]) and
/// [`KubeOptions`]; [`watch`](Self::watch) starts it. It watches the kinds the gateway reads
/// (IngressClass, Ingress, Service, EndpointSlice, Secret, ConfigMap, MseIngressConfig, and
/// Pods while an Ingress it serves asks for a service subset, or always when asked) with kube-runtime watchers feeding reflector stores, and publishes a
/// snapshot of the stores whenever they change, on the same kind of channel as
/// [`FileWatch`](crate::FileWatch), for [`run_compile_loop`](crate::run_compile_loop).
///
/// - **Scope.** Namespaced kinds are watched in each namespace given (one watch per kind
///   and namespace), or cluster-wide when none is; IngressClass and MseIngressConfig are
///   cluster-scoped. A cluster without the MseIngressConfig CRD counts as having none.
///   Which of the Ingresses seen are served is the compiler's class selection (an
///   MseIngressConfig linked from our IngressClass included).
/// - **Ready.** Nothing is published until every watch has listed once: the first snapshot
///   is a whole one. [`KubeWatch::ready`] resolves then.
/// - **Changes.** The first change after a quiet spell is published at once; changes that
///   follow within [`KubeOptions::coalesce`] of a snapshot are published together at the
///   end of that window, so a burst (a rollout, a relist) costs one compile. A relist that
///   finds nothing new publishes nothing. Generations increase by one per snapshot.
/// - **Failures.** A failed list or watch is retried with kube-runtime's default backoff
///   (0.8 s, doubling, up to 30 s); a broken watch resumes from the last resourceVersion
///   and an expired one (410 Gone) lists again, so no change is lost. A relist replaces a
///   store in one step once complete. While the API server is away the last snapshot stays
///   current.
/// - **Memory.** What the compiler never reads is dropped before it is stored: managed
///   fields, the `kubectl.kubernetes.io/last-applied-configuration` copy, Service and
///   MseIngressConfig status, everything of a Pod but its labels and addresses.
/// - **Secrets.** Keeping every Secret of a cluster in memory would hold the credentials of
///   every application. A Secret keeps its data only when typed `kubernetes.io/tls`; one of
///   another type is read whole, with a GET, only while an Ingress this gateway serves
///   references it in its own namespace (`spec.tls[].secretName`, `auth-secret`,
///   `auth-tls-secret`, `proxy-ssl-secret`, as the annotation rules read them), read again
///   when the watch shows a new resourceVersion, and forgotten when no longer referenced.
///   A snapshot waits for these reads; one that fails is retried with a growing pause, and
///   the version read last stays in use meanwhile.
///
/// Objects read from the API server carry no file [`SourceRef`](mse_model::SourceRef):
/// diagnostics name them by kind, namespace and name.
///
/// ```no_run
/// use mse_controller::{KubeOptions, KubeSource};
///
/// # async fn run() -> Result<(), mse_controller::ControllerError> {
/// // In the cluster's service account, or from $KUBECONFIG.
/// let client = KubeSource::connect(None).await?;
/// let mut options = KubeOptions::default();
/// options.namespaces = vec!["shop".to_owned()];
/// let source = KubeSource::new(client, options).watch();
///
/// // Nothing is published before every watch has listed once.
/// source.ready().await?;
/// let snapshot = source.snapshot();
/// println!("generation {}: {} objects", snapshot.generation, snapshot.len());
/// source.stop().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct KubeSource {
    client: Client,
    options: KubeOptions,
}

impl std::fmt::Debug for KubeSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeSource")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// A running [`KubeSource`]: the latest snapshot, every new one as it is built, whether
/// the first one is in, and the client it uses.
///
/// Made by [`KubeSource::watch`]. The watches run until this is dropped or
/// [`stop`](Self::stop) is called.
#[must_use = "the watches stop when this is dropped"]
pub struct KubeWatch {
    client: Client,
    snapshots: watch::Receiver<Arc<Snapshot>>,
    /// Dropping it stops the publishing task.
    stop: oneshot::Sender<()>,
    publisher: JoinHandle<()>,
    watches: JoinSet<()>,
    counter: WatchCounter,
}

impl std::fmt::Debug for KubeWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeWatch")
            .field("generation", &self.snapshots.borrow().generation)
            .field("watches", &self.watches.len())
            .finish_non_exhaustive()
    }
}

// === impl KubeSource ===

impl KubeSource {
    /// The default of [`KubeOptions::coalesce`].
    pub const DEFAULT_COALESCE: Duration = Duration::from_millis(100);

    /// A source reading through `client`. Nothing is read until [`watch`](Self::watch).
    pub fn new(client: Client, options: KubeOptions) -> Self {
        Self { client, options }
    }

    /// A client for the API server: from the kubeconfig file at `kubeconfig` (its current
    /// context), else inferred (`$KUBECONFIG` or `~/.kube/config`, then the in-cluster
    /// service account).
    ///
    /// This reads files only; the server is first contacted by the watches, so a server
    /// that cannot be reached yet is no error here.
    ///
    /// # Errors
    ///
    /// [`ControllerError::Kubeconfig`] if the file cannot be read or used, or nothing can
    /// be inferred.
    pub async fn connect(kubeconfig: Option<&Path>) -> Result<Client, ControllerError> {
        let error =
            |source: Box<dyn std::error::Error + Send + Sync>| ControllerError::Kubeconfig {
                path: kubeconfig.map(Path::to_path_buf),
                source,
            };
        let config = match kubeconfig {
            Some(path) => {
                let file = Kubeconfig::read_from(path).map_err(|e| error(e.into()))?;
                Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
                    .await
                    .map_err(|e| error(e.into()))?
            }
            None => Config::infer().await.map_err(|e| error(e.into()))?,
        };
        Client::try_from(config).map_err(|e| error(e.into()))
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Starts every watch and the task that publishes snapshots, and returns at once.
    ///
    /// The channel holds an empty generation-0 snapshot until every watch has listed
    /// once ([`KubeWatch::ready`]); [`crate::run_compile_loop`] skips that placeholder.
    /// Must be called within a Tokio runtime.
    pub fn watch(self) -> KubeWatch {
        let Self { client, options } = self;
        let mut namespaces = options.namespaces.clone();
        namespaces.sort();
        namespaces.dedup();
        let mut progress = Progress::default();
        let counter = progress.counter();
        let mut watches = JoinSet::new();
        let stores = Stores::start(
            &watches::counted(&client, counter.clone()),
            &namespaces,
            &options.config_map_namespaces,
            options.pods,
            &mut progress,
            &mut watches,
        );
        tracing::info!(
            watches = progress.len(),
            namespaces = ?namespaces,
            pods = options.pods,
            "watching the API server"
        );
        let (tx, snapshots) = watch::channel(Arc::new(Snapshot::default()));
        let (stop, stopped) = oneshot::channel();
        let publisher = Publisher {
            client: client.clone(),
            stores,
            progress,
            selection: CompileOptions {
                ingress_class: options.ingress_class,
                ..CompileOptions::default()
            },
            coalesce: options.coalesce,
            tx,
            pods: PodWatch::new(options.pods, client.clone(), namespaces),
        };
        let publisher = tokio::spawn(publisher.run(stopped));
        KubeWatch {
            client,
            snapshots,
            stop,
            publisher,
            watches,
            counter,
        }
    }
}

// === impl KubeWatch ===

impl KubeWatch {
    /// A receiver of the snapshots: its current value is the latest (generation 0 before
    /// the first), and [`changed`](watch::Receiver::changed) resolves when a newer one is
    /// published. Only the newest is kept: a slow reader skips intermediate snapshots.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        let mut rx = self.snapshots.clone();
        rx.mark_unchanged();
        rx
    }

    /// The latest snapshot (generation 0 before the first).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshots.borrow().clone()
    }

    /// Whether the first snapshot, built after every watch listed once, is published.
    pub fn is_ready(&self) -> bool {
        self.snapshots.borrow().generation > 0
    }

    /// Resolves once the first snapshot is published (at once if it is). This may take
    /// forever: while the API server cannot be reached, the watches keep retrying.
    ///
    /// # Errors
    ///
    /// [`ControllerError::Stopped`] if the publishing task ended first (it panicked).
    pub async fn ready(&self) -> Result<(), ControllerError> {
        let mut rx = self.snapshots.clone();
        rx.wait_for(|s| s.generation > 0)
            .await
            .map(|_| ())
            .map_err(|_| ControllerError::Stopped {
                task: "Kubernetes snapshot publisher",
            })
    }

    /// The client the watches use, for writers that belong with them (Ingress status,
    /// Events, leader election).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// What the watches did so far (lists, relists, restarts, errors by kind), readable
    /// while they run: for the control-plane metrics.
    pub fn counter(&self) -> WatchCounter {
        self.counter.clone()
    }

    /// Stops every watch and the publishing task, and waits until they have finished.
    ///
    /// # Errors
    ///
    /// [`ControllerError::Task`] if the publishing task had panicked.
    pub async fn stop(self) -> Result<(), ControllerError> {
        let KubeWatch {
            stop,
            publisher,
            mut watches,
            snapshots,
            client,
            counter: _,
        } = self;
        drop((stop, snapshots, client));
        watches.shutdown().await;
        publisher.await.map_err(|source| ControllerError::Task {
            task: "Kubernetes snapshot publisher",
            source,
        })
    }
}
