//! Watching a [`FileSource`]: file events, debounced, plus a polling safety net.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mse_model::Snapshot;
use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::{Notify, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use super::FileSource;
use super::discover::FileId;
use crate::error::ControllerError;

/// However busy the files are, a reload happens at most this long after the first event of
/// a burst, so an edit is visible within a second even while another file keeps changing.
const MAX_DELAY: Duration = Duration::from_millis(500);

/// How file events reach the watcher task: a wake-up, and whether the newest event
/// finished a change (a file closed after writing, renamed into place or removed) or may
/// be the middle of one (data written to a file still open, a file just created).
struct Wake {
    notify: Notify,
    settled: AtomicBool,
}

// === impl Wake ===

impl Wake {
    fn new() -> Self {
        Self {
            notify: Notify::new(),
            settled: AtomicBool::new(false),
        }
    }

    /// Called on the file watcher's thread, once per event, in order.
    fn event(&self, settled: bool) {
        self.settled.store(settled, Ordering::Release);
        self.notify.notify_one();
    }

    /// Whether the newest event finished a change.
    fn settled(&self) -> bool {
        self.settled.load(Ordering::Acquire)
    }
}

/// A running watch of a [`FileSource`]: the latest snapshot, and every new one as it is
/// built.
///
/// Made by [`FileSource::watch`]. The watcher runs until this is dropped or
/// [`stop`](Self::stop) is called; then receivers from [`subscribe`](Self::subscribe) see
/// the channel closed after the last snapshot.
#[derive(Debug)]
#[must_use = "the watcher stops when this is dropped"]
pub struct FileWatch {
    snapshots: watch::Receiver<Arc<Snapshot>>,
    /// Dropping it tells the task to stop.
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

/// What the watcher task owns, moved into blocking tasks for file I/O.
struct Worker {
    source: FileSource,
    /// `None` when file events are unavailable; polling still works.
    watcher: Option<RecommendedWatcher>,
    /// Directories being watched, with how, and which directory it was (a directory
    /// deleted and created again needs a new watch).
    watched: HashMap<PathBuf, (RecursiveMode, Option<FileId>)>,
    /// The last error watching each directory, so that it is logged once.
    failed: HashMap<PathBuf, String>,
}

#[derive(Clone, Copy, Debug)]
enum Step {
    /// File events settled: read everything.
    Reload,
    /// The poll timer fired: read everything only if the fingerprint changed.
    Poll,
}

// === impl FileSource ===

impl FileSource {
    /// Loads the files, then keeps watching them: every change is read into a new
    /// snapshot, published on the channel of the returned [`FileWatch`].
    ///
    /// The first snapshot is on the channel when this returns. Changes are found by file
    /// events (inotify on Linux) on each given directory, and on the directory holding
    /// each given file, so editors' rename-on-save and ConfigMap symlink swaps are seen.
    /// A change that follows a quiet spell is read at once when its event finishes it (a
    /// file closed after writing, a rename, a removal); the events that follow within the
    /// debounce time (100 ms by default), or a file still being written, cost one reload
    /// after the files have been quiet for that long, and at most 500 ms after the first
    /// of them. In case events are lost (a full event queue, a network file
    /// system), file sizes, times and inodes are also compared every poll interval (1 s by
    /// default). A new snapshot is published only when something read changed.
    ///
    /// If file events are unavailable (for example the inotify limits are reached), this
    /// logs a warning and relies on polling.
    ///
    /// # Errors
    ///
    /// [`ControllerError::Task`] if the initial load panicked or the runtime is shutting
    /// down.
    pub async fn watch(self) -> Result<FileWatch, ControllerError> {
        let wake = Arc::new(Wake::new());
        let poll_interval = self.poll_interval;
        let debounce = self.debounce;
        let events = Arc::clone(&wake);
        // Watches are set up before the first load: an edit made in between is then seen
        // as an event, and costs at most one more read.
        let (worker, first) = tokio::task::spawn_blocking(move || {
            let mut worker = Worker::new(self, events);
            worker.sync_watches();
            let first = worker.source.load();
            (worker, first)
        })
        .await
        .map_err(|source| ControllerError::Task {
            task: "initial manifest load",
            source,
        })?;
        tracing::info!(
            generation = first.generation,
            objects = first.len(),
            diagnostics = first.diagnostics.len(),
            "manifests loaded"
        );
        let (tx, snapshots) = watch::channel(first);
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(run(worker, tx, stopped, wake, debounce, poll_interval));
        Ok(FileWatch {
            snapshots,
            stop,
            task,
        })
    }
}

// === impl FileWatch ===

impl FileWatch {
    /// A receiver of the snapshots: its current value is the latest snapshot, and
    /// [`changed`](watch::Receiver::changed) resolves when a newer one is published. Only
    /// the newest is kept: a slow reader skips intermediate snapshots.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        let mut rx = self.snapshots.clone();
        rx.mark_unchanged();
        rx
    }

    /// The latest snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshots.borrow().clone()
    }

    /// Stops watching and waits until the watcher has finished (a reload in progress is
    /// completed first, and its snapshot published).
    ///
    /// # Errors
    ///
    /// [`ControllerError::Task`] if the watcher task had panicked.
    pub async fn stop(self) -> Result<(), ControllerError> {
        let FileWatch {
            snapshots,
            stop,
            task,
        } = self;
        drop(stop);
        drop(snapshots);
        task.await.map_err(|source| ControllerError::Task {
            task: "file watcher",
            source,
        })
    }
}

// === impl Worker ===

impl Worker {
    fn new(source: FileSource, wake: Arc<Wake>) -> Self {
        let handler = move |event: notify::Result<notify::Event>| match event {
            Ok(event) if is_change(event.kind) => wake.event(finishes_change(event.kind)),
            Ok(_) => {}
            Err(error) => {
                // Most likely a full event queue: the read that follows catches up.
                tracing::warn!(%error, "file watcher reported an error; reloading");
                wake.event(false);
            }
        };
        let watcher = match notify::recommended_watcher(handler) {
            Ok(w) => Some(w),
            Err(error) => {
                tracing::warn!(
                    %error,
                    poll_interval = ?source.poll_interval,
                    "file events are unavailable; changes are found by polling only"
                );
                None
            }
        };
        Self {
            source,
            watcher,
            watched: HashMap::new(),
            failed: HashMap::new(),
        }
    }

    fn step(&mut self, step: Step) -> Option<Arc<Snapshot>> {
        let snapshot = match step {
            Step::Reload => self.source.reload(),
            Step::Poll => self.source.poll(),
        };
        self.sync_watches();
        snapshot
    }

    /// Watches what the given paths need now: each directory recursively, and the
    /// directory holding each file (and, for a symlink, the one holding its target). A
    /// path that does not exist yet is watched once it appears (found by polling).
    fn sync_watches(&mut self) {
        let Some(watcher) = self.watcher.as_mut() else {
            return;
        };
        let mut wanted: BTreeMap<PathBuf, RecursiveMode> = BTreeMap::new();
        for root in &self.source.roots {
            if fs::metadata(root).is_ok_and(|m| m.is_dir()) {
                wanted.insert(root.clone(), RecursiveMode::Recursive);
                continue;
            }
            let mut dirs = vec![parent(root)];
            if let Ok(target) = fs::canonicalize(root) {
                dirs.push(parent(&target));
            }
            for dir in dirs {
                wanted.entry(dir).or_insert(RecursiveMode::NonRecursive);
            }
        }

        self.watched.retain(|path, _| {
            let keep = wanted.contains_key(path);
            if !keep {
                // The watch may be gone already (directory deleted): nothing to do then.
                let _ = watcher.unwatch(path);
            }
            keep
        });
        for (path, mode) in wanted {
            let id = match fs::metadata(&path) {
                Ok(m) if m.is_dir() => FileId::of(&m),
                _ => {
                    if self.watched.remove(&path).is_some() {
                        let _ = watcher.unwatch(&path);
                    }
                    continue;
                }
            };
            if self.watched.get(&path) == Some(&(mode, id)) {
                continue;
            }
            if self.watched.remove(&path).is_some() {
                let _ = watcher.unwatch(&path);
            }
            match watcher.watch(&path, mode) {
                Ok(()) => {
                    tracing::debug!(path = %path.display(), ?mode, "watching");
                    self.failed.remove(&path);
                    self.watched.insert(path, (mode, id));
                }
                Err(error) => {
                    let text = error.to_string();
                    if self.failed.get(&path) != Some(&text) {
                        tracing::warn!(
                            path = %path.display(),
                            %error,
                            "cannot watch directory; its changes are found by polling"
                        );
                        self.failed.insert(path, text);
                    }
                }
            }
        }
    }
}

/// Whether a file event may mean changed content. Opening and reading (our own reads
/// included) do not; closing a file written to does.
fn is_change(kind: EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

/// Whether an event marks a change as complete, so that reading at once sees the new
/// content whole: a file closed after writing, a rename (editors' and ConfigMaps' atomic
/// saves) or a removal. Data written to a file still open, or a file just created, may be
/// followed by more writes.
fn finishes_change(kind: EventKind) -> bool {
    matches!(
        kind,
        EventKind::Access(AccessKind::Close(AccessMode::Write))
            | EventKind::Modify(ModifyKind::Name(_))
            | EventKind::Remove(_)
    )
}

/// The directory holding `path` (`.` for a bare file name).
fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The watcher task: waits for events, debounces them, polls, and publishes.
async fn run(
    mut worker: Worker,
    tx: watch::Sender<Arc<Snapshot>>,
    mut stopped: oneshot::Receiver<()>,
    wake: Arc<Wake>,
    debounce: Duration,
    poll_interval: Duration,
) {
    let mut poll = tokio::time::interval_at(Instant::now() + poll_interval, poll_interval);
    poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
    // (first event of the burst, reload deadline)
    let mut pending: Option<(Instant, Instant)> = None;
    // When the last read started: events within the debounce time after it are coalesced.
    let mut last_reload: Option<Instant> = None;
    loop {
        let deadline = pending.map(|(_, d)| d);
        // Biased, in this order: a stop wins; a due reload wins over new events, so that
        // a steady stream of events cannot postpone it past `MAX_DELAY`.
        let step = tokio::select! {
            biased;
            _ = &mut stopped => break,
            () = sleep_until(deadline), if deadline.is_some() => Step::Reload,
            () = wake.notify.notified() => {
                let now = Instant::now();
                // The first finished change after a quiet spell is read at once; what
                // follows it within the debounce time, or a change still being
                // written, waits until the files have been quiet for that long.
                let quiet = last_reload.is_none_or(|at| now >= at + debounce);
                if quiet && wake.settled() {
                    Step::Reload
                } else {
                    let first = pending.map_or(now, |(first, _)| first);
                    pending = Some((first, (now + debounce).min(first + MAX_DELAY)));
                    continue;
                }
            }
            _ = poll.tick() => Step::Poll,
        };
        if matches!(step, Step::Reload) {
            // Events from now on start a new burst.
            pending = None;
            last_reload = Some(Instant::now());
        }
        let done = tokio::task::spawn_blocking(move || {
            let snapshot = worker.step(step);
            (worker, snapshot)
        })
        .await;
        let snapshot;
        (worker, snapshot) = match done {
            Ok(done) => done,
            Err(error) => {
                tracing::error!(%error, "reading manifests failed; the file watcher stopped");
                return;
            }
        };
        if let Some(snapshot) = snapshot {
            tracing::info!(
                generation = snapshot.generation,
                objects = snapshot.len(),
                diagnostics = snapshot.diagnostics.len(),
                ?step,
                "manifests changed"
            );
            tx.send_replace(snapshot);
        }
    }
    tracing::debug!("file watcher stopped");
}

async fn sleep_until(deadline: Option<Instant>) {
    if let Some(deadline) = deadline {
        tokio::time::sleep_until(deadline).await;
    }
}

#[cfg(test)]
mod tests {
    use notify::event::{CreateKind, ModifyKind, RenameMode};

    use super::*;

    #[test]
    fn reads_are_not_changes() {
        assert!(!is_change(EventKind::Access(AccessKind::Open(
            AccessMode::Any
        ))));
        assert!(!is_change(EventKind::Access(AccessKind::Close(
            AccessMode::Read
        ))));
        assert!(is_change(EventKind::Access(AccessKind::Close(
            AccessMode::Write
        ))));
        assert!(is_change(EventKind::Create(CreateKind::File)));
        assert!(is_change(EventKind::Modify(ModifyKind::Name(
            RenameMode::To
        ))));
        assert!(is_change(EventKind::Other));
    }

    #[test]
    fn a_closed_write_a_rename_and_a_removal_finish_a_change() {
        use notify::event::{DataChange, RemoveKind};
        assert!(finishes_change(EventKind::Access(AccessKind::Close(
            AccessMode::Write
        ))));
        assert!(finishes_change(EventKind::Modify(ModifyKind::Name(
            RenameMode::To
        ))));
        assert!(finishes_change(EventKind::Remove(RemoveKind::File)));
        assert!(!finishes_change(EventKind::Modify(ModifyKind::Data(
            DataChange::Content
        ))));
        assert!(!finishes_change(EventKind::Create(CreateKind::File)));
    }

    #[test]
    fn parent_of_a_bare_name_is_the_current_directory() {
        assert_eq!(parent(Path::new("shop.yaml")), PathBuf::from("."));
        assert_eq!(parent(Path::new("conf/shop.yaml")), PathBuf::from("conf"));
    }
}
