//! The publishing task: waits for every first list, then turns store changes into
//! snapshots, coalescing bursts.

use std::sync::Arc;
use std::time::Duration;

use ::kube::Client;
use mse_model::Snapshot;
use mse_router::CompileOptions;
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use super::assemble::{Fingerprint, assemble};
use super::pods::PodWatch;
use super::secrets::{SecretCache, wanted};
use super::stores::Stores;
use super::watches::Progress;

/// While some watch has not listed, the ones still missing are logged this often.
const PENDING_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The first and the longest pause before reading a referenced Secret again after a failure.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// What the publishing task owns.
pub(crate) struct Publisher {
    pub(crate) client: Client,
    pub(crate) stores: Stores,
    pub(crate) progress: Progress,
    /// Class selection, to know which Ingresses' Secrets to read.
    pub(crate) selection: CompileOptions,
    /// Changes within this long after a snapshot are published together, this long after it.
    pub(crate) coalesce: Duration,
    pub(crate) tx: watch::Sender<Arc<Snapshot>>,
    /// Pods, watched while needed.
    pub(crate) pods: PodWatch,
}

/// Why [`Publisher::wait`] returned.
enum Woken {
    Stop,
    Go,
}

// === impl Publisher ===

impl Publisher {
    /// Runs until `stop` fires or is dropped.
    pub(crate) async fn run(mut self, mut stop: oneshot::Receiver<()>) {
        if !self.wait_for_lists(&mut stop).await {
            return;
        }
        tracing::info!(
            watches = self.progress.len(),
            "every watch has listed; publishing the first snapshot"
        );
        let mut state = State::default();
        loop {
            let failed = tokio::select! {
                biased;
                _ = &mut stop => return,
                failed = self.publish(&mut state) => failed,
            };
            let retry = if failed {
                let pause = state.retry;
                state.retry = (pause * 2).min(RETRY_MAX);
                Some(Instant::now() + pause)
            } else {
                state.retry = RETRY_FIRST;
                None
            };
            // The next change (or the retry of a Secret that could not be read) ...
            let woken = tokio::select! {
                biased;
                _ = &mut stop => Woken::Stop,
                () = self.progress.changed() => Woken::Go,
                () = sleep_until(retry), if retry.is_some() => Woken::Go,
            };
            // ... and what follows it within the window after the last snapshot.
            let due = state.published.map(|at| at + self.coalesce);
            let woken = match (woken, due) {
                (Woken::Go, Some(due)) if due > Instant::now() => tokio::select! {
                    biased;
                    _ = &mut stop => Woken::Stop,
                    () = tokio::time::sleep_until(due) => Woken::Go,
                },
                (woken, _) => woken,
            };
            if let Woken::Stop = woken {
                return;
            }
        }
    }

    /// Waits until every watch has listed once. False when stopped first.
    async fn wait_for_lists(&self, stop: &mut oneshot::Receiver<()>) -> bool {
        let mut log_at = Instant::now() + PENDING_LOG_INTERVAL;
        while !self.progress.all_listed() {
            tokio::select! {
                biased;
                _ = &mut *stop => return false,
                () = self.progress.changed() => {}
                () = tokio::time::sleep_until(log_at) => {
                    tracing::info!(
                        pending = ?self.progress.pending(),
                        "not ready: waiting for the first list of these watches"
                    );
                    log_at = Instant::now() + PENDING_LOG_INTERVAL;
                }
            }
        }
        true
    }

    /// Reads the referenced Secrets that changed, assembles a snapshot and publishes it if
    /// any object changed. True when a Secret could not be read.
    async fn publish(&mut self, state: &mut State) -> bool {
        self.pods
            .update(&mut self.stores, &mut self.progress, &self.selection);
        let wanted = wanted(&self.stores, &self.selection);
        let refreshed = state.cache.refresh(&self.client, &wanted).await;
        let (mut snapshot, fingerprint) = assemble(&self.stores, &state.cache);
        if state.last != Some(fingerprint) {
            state.generation += 1;
            snapshot.generation = state.generation;
            tracing::info!(
                generation = state.generation,
                objects = snapshot.len(),
                secrets_read = refreshed.fetched,
                "cluster objects changed"
            );
            self.tx.send_replace(Arc::new(snapshot));
            state.last = Some(fingerprint);
            state.published = Some(Instant::now());
        }
        refreshed.failed > 0
    }
}

/// What the task remembers between snapshots.
struct State {
    cache: SecretCache,
    generation: u64,
    last: Option<Fingerprint>,
    published: Option<Instant>,
    retry: Duration,
}

impl Default for State {
    fn default() -> Self {
        Self {
            cache: SecretCache::default(),
            generation: 0,
            last: None,
            published: None,
            retry: RETRY_FIRST,
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    if let Some(deadline) = deadline {
        tokio::time::sleep_until(deadline).await;
    }
}
