//! The compile loop: snapshots in, route tables out, off the request path.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mse_model::{Diagnostic, Severity, Snapshot};
use mse_router::global::GlobalConfig;
use mse_router::{CompileCache, CompileOptions, RouteTable, compile_cached};
use tokio::sync::watch;
use tracing::field::display;

/// One compiled snapshot: the route table to serve, and every diagnostic that explains it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Compiled {
    /// The table; its generation is the snapshot's.
    pub table: Arc<RouteTable>,
    /// What the source found while reading the objects (bad YAML, unreadable files, kept
    /// or duplicate objects): [`Snapshot::diagnostics`]. The compile's own diagnostics are
    /// in the table.
    pub load_diagnostics: Arc<[Diagnostic]>,
    /// The snapshot the table was compiled from: what Ingress status and Events compare
    /// against (current status, object uids).
    pub snapshot: Arc<Snapshot>,
    /// How long compiling took.
    pub compile_time: Duration,
}

// === impl Compiled ===

impl Compiled {
    /// The generation of the snapshot the table was compiled from.
    pub fn generation(&self) -> u64 {
        self.table.generation()
    }

    /// Every diagnostic: the load diagnostics, then the compile diagnostics.
    pub fn diagnostics(&self) -> impl Iterator<Item = &Diagnostic> {
        self.load_diagnostics.iter().chain(self.table.diagnostics())
    }
}

/// Compiles every new snapshot from a source into a route table and hands it to `publish`,
/// until the source closes its channel.
///
/// This is the one path from any source (files or the Kubernetes API) to the data
/// plane. The receiver's current snapshot is compiled first, then each newer one. Compiling
/// runs on a blocking thread ([`tokio::task::spawn_blocking`]), never on the request path;
/// while it runs, newer snapshots replace each other on the channel, so after a burst only
/// the newest is compiled. A snapshot with generation 0 (a [`Snapshot::default`]
/// placeholder, before the source has read anything) is not compiled.
///
/// Each compile is given the global configuration of the one before it
/// ([`mse_router::compile_with`]): a bad value in the gateway's ConfigMap keeps its last good
/// value, with a diagnostic, for as long as the loop runs. It is also given the parsed
/// annotations the one before it kept ([`mse_router::compile_cached`]), so that the
/// Ingresses of an unchanged set of annotations are not parsed again.
///
/// `publish` runs on this task and should be quick (swapping an `ArcSwap`, say). Each
/// diagnostic is logged once when it first appears (warn for errors and warnings, info for
/// infos, with its code, object, key, file and line), and once more at info when it is
/// gone; each compile logs `route table compiled` with the generation, route count,
/// diagnostic count and compile time. If compiling panics (a bug), the panic is logged, the
/// previous table stays live and the loop waits for the next snapshot.
///
/// ```
/// # async fn demo(files: mse_controller::FileWatch) {
/// use std::sync::{Arc, Mutex};
/// use mse_router::{CompileOptions, RouteTable};
///
/// let live: Arc<Mutex<Arc<RouteTable>>> = Arc::default();
/// let store = Arc::clone(&live);
/// tokio::spawn(mse_controller::run_compile_loop(
///     files.subscribe(),
///     CompileOptions::default(),
///     move |compiled| {
///         if let Ok(mut live) = store.lock() {
///             *live = compiled.table;
///         }
///     },
/// ));
/// # }
/// ```
pub async fn run_compile_loop<F>(
    mut snapshots: watch::Receiver<Arc<Snapshot>>,
    options: CompileOptions,
    mut publish: F,
) where
    F: FnMut(Compiled) + Send,
{
    let options = Arc::new(options);
    let mut logged = DiagnosticLog::default();
    let mut in_force: Option<Arc<GlobalConfig>> = None;
    // The parsed annotations of the last compile, for the next (lost if one panics).
    let mut cache = CompileCache::new();
    loop {
        let snapshot = snapshots.borrow_and_update().clone();
        if snapshot.generation != 0 {
            let generation = snapshot.generation;
            let options = Arc::clone(&options);
            let previous = in_force.clone();
            let mut kept = std::mem::take(&mut cache);
            let compiled = tokio::task::spawn_blocking(move || {
                let started = Instant::now();
                let table = compile_cached(&snapshot, &options, previous.as_deref(), &mut kept);
                let compiled = Compiled {
                    table: Arc::new(table),
                    load_diagnostics: Arc::from(snapshot.diagnostics.as_slice()),
                    snapshot,
                    compile_time: started.elapsed(),
                };
                (compiled, kept)
            })
            .await;
            match compiled {
                Ok((compiled, kept)) => {
                    cache = kept;
                    in_force = Some(Arc::clone(compiled.table.global_shared()));
                    tracing::info!(
                        generation,
                        routes = compiled.table.routes().len(),
                        diagnostics = compiled.diagnostics().count(),
                        compile_time = ?compiled.compile_time,
                        "route table compiled"
                    );
                    // Served first: telling thousands of diagnostics apart takes a while.
                    publish(compiled.clone());
                    logged.update(&compiled);
                }
                Err(error) if error.is_panic() => {
                    tracing::error!(
                        generation,
                        %error,
                        "compiling the snapshot panicked; the previous route table stays live"
                    );
                }
                // The runtime is shutting down.
                Err(_) => return,
            }
        }
        if snapshots.changed().await.is_err() {
            tracing::debug!("snapshot source closed; compile loop stopped");
            return;
        }
    }
}

/// The diagnostics logged so far, so that each is logged once, not on every compile.
///
/// It holds the last [`Compiled`] itself rather than a copy of its diagnostics: that table
/// is the one being served, so keeping it costs nothing.
#[derive(Debug, Default)]
struct DiagnosticLog {
    current: Option<Compiled>,
}

// === impl DiagnosticLog ===

impl DiagnosticLog {
    /// Logs the diagnostics of `next` that are new since the last call, then those that
    /// are gone, each in the order given.
    fn update(&mut self, next: &Compiled) {
        let previous = self.current.take();
        let before: HashSet<&Diagnostic> =
            previous.iter().flat_map(Compiled::diagnostics).collect();
        for d in next.diagnostics().filter(|d| !before.contains(d)) {
            log(d, false);
        }
        let after: HashSet<&Diagnostic> = next.diagnostics().collect();
        for d in previous
            .iter()
            .flat_map(Compiled::diagnostics)
            .filter(|d| !after.contains(d))
        {
            log(d, true);
        }
        self.current = Some(next.clone());
    }
}

fn log(d: &Diagnostic, resolved: bool) {
    let object = d.origin.object.as_ref().map(display);
    let key = d.origin.key.as_deref();
    let file = d.origin.source.as_ref().map(|s| &*s.file);
    let line = d.origin.source.as_ref().map(|s| s.line);
    let value = d.value.as_deref();
    let message = &d.message;
    match (resolved, d.severity) {
        (true, _) => tracing::info!(
            code = d.code,
            severity = %d.severity,
            object,
            key,
            file,
            line,
            value,
            "resolved: {message}"
        ),
        (false, Severity::Info) => {
            tracing::info!(code = d.code, object, key, file, line, value, "{message}");
        }
        (false, Severity::Warning | Severity::Error) => tracing::warn!(
            code = d.code,
            severity = %d.severity,
            object,
            key,
            file,
            line,
            value,
            "{message}"
        ),
    }
}
