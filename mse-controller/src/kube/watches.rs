//! The watches: one per kind, or one per kind and namespace when namespaces are given,
//! each feeding a kube-runtime reflector store, and the progress of their first lists.
//!
//! A watch is a kube-runtime `watcher` with the default backoff: a failed list or watch is
//! retried after a growing pause (0.8 s up to 30 s); a broken watch resumes from the last
//! resourceVersion seen, and one whose version has expired (410 Gone) lists again. A
//! relist fills a fresh buffer that replaces the store in one step when it is complete, so
//! no snapshot ever sees half a relist, and no event is lost across the break.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::hash::Hash;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use ::kube::api::{Api, Resource};
use ::kube::runtime::WatchStreamExt;
use ::kube::runtime::reflector::{self, Store};
use ::kube::runtime::watcher::{self, Event};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use tokio::sync::Notify;
use tokio::task::JoinSet;

use super::strip::Strip;

/// Whether a failing watch keeps the source from being ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Need {
    /// Until it has listed once.
    Required,
    /// Not when its API is not served at all (404): a cluster without the CRD has no
    /// such objects. It keeps retrying, and its objects appear once the API does.
    UnlessAbsent,
}

/// One watch's name (for logs) and whether it has listed once.
#[derive(Debug)]
struct WatchState {
    name: String,
    listed: AtomicBool,
    /// The counts of its kind.
    counts: Arc<KindCounts>,
}

/// The watches started so far and their progress; every store change wakes
/// [`changed`](Self::changed).
#[derive(Debug, Default)]
pub(crate) struct Progress {
    states: Vec<Arc<WatchState>>,
    changed: Arc<Notify>,
    counts: WatchCounter,
}

/// What the watches of one kind did so far.
#[derive(Debug, Default)]
struct KindCounts {
    /// Watches of the kind (one per namespace watched, or one).
    watches: AtomicU64,
    /// Watch requests sent: each watch's first, then one per restart.
    starts: AtomicU64,
    /// Lists completed: each watch's first, then one per relist.
    lists: AtomicU64,
    /// Errors the watches met (failed lists and watches, expired versions).
    errors: AtomicU64,
}

/// The counts of the watches by kind, readable while they run
/// ([`KubeWatch::counter`](super::KubeWatch::counter)).
#[derive(Clone, Debug, Default)]
pub struct WatchCounter {
    /// By kind (`Ingress`), with the kind's plural resource name (`ingresses`).
    kinds: Arc<Mutex<BTreeMap<String, (String, Arc<KindCounts>)>>>,
}

/// What the watches of one kind did since they started, for the control-plane metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WatchCounts {
    /// The kind (`Ingress`, `Service`, ...).
    pub kind: String,
    /// Lists completed, the first of each watch included.
    pub lists: u64,
    /// Lists after a watch's first: its resourceVersion had expired (410 Gone).
    pub relists: u64,
    /// Watch requests after a watch's first: the stream broke or ended (an API server
    /// restarting, a timeout), or a relist finished.
    pub restarts: u64,
    /// Errors the watches met: failed lists or watches, expired resourceVersions.
    pub errors: u64,
}

// === impl Progress ===

impl Progress {
    /// Whether every watch has listed once (or is absent and allowed to be).
    pub(crate) fn all_listed(&self) -> bool {
        self.states.iter().all(|s| s.listed.load(Ordering::Acquire))
    }

    /// The watches that have not listed yet, by name.
    pub(crate) fn pending(&self) -> Vec<&str> {
        self.states
            .iter()
            .filter(|s| !s.listed.load(Ordering::Acquire))
            .map(|s| s.name.as_str())
            .collect()
    }

    /// How many watches there are.
    pub(crate) fn len(&self) -> usize {
        self.states.len()
    }

    /// Forgets the watches started after the first `len` (they were stopped).
    pub(crate) fn truncate(&mut self, len: usize) {
        self.states.truncate(len);
    }

    /// The counts of every watch, by kind.
    pub(crate) fn counter(&self) -> WatchCounter {
        self.counts.clone()
    }

    /// Resolves after a store changed or a watch listed for the first time (at once if that
    /// happened since the last call).
    pub(crate) async fn changed(&self) {
        self.changed.notified().await;
    }

    /// Starts a watch on `api` feeding a new store, and returns the store.
    pub(crate) fn spawn<K>(
        &mut self,
        tasks: &mut JoinSet<()>,
        api: Api<K>,
        name: String,
        need: Need,
    ) -> Store<K>
    where
        K: Resource + Strip + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
        K::DynamicType: Default + Eq + Hash + Clone + Send + Sync,
    {
        let (store, writer) = reflector::store();
        let dt = K::DynamicType::default();
        let counts = self.counts.kind(&K::kind(&dt), &K::plural(&dt));
        counts.watches.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(WatchState {
            name,
            listed: AtomicBool::new(false),
            counts,
        });
        self.states.push(Arc::clone(&state));
        let changed = Arc::clone(&self.changed);
        tasks.spawn(async move {
            let events = watcher(api)
                .modify(Strip::strip)
                .reflect(writer)
                .default_backoff();
            drive(events, &state, &changed, need).await;
        });
        store
    }
}

fn watcher<K>(api: Api<K>) -> impl futures_util::Stream<Item = watcher::Result<Event<K>>> + Send
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    watcher::watcher(api, watcher::Config::default())
}

/// Follows one watch's events (the store is already updated when they arrive): wakes
/// the assembler, records the first list, and logs errors once each.
async fn drive<K>(
    events: impl futures_util::Stream<Item = watcher::Result<Event<K>>>,
    state: &WatchState,
    changed: &Notify,
    need: Need,
) {
    let mut events = pin!(events);
    // The error the watch is failing with, so that a repeat is not logged again.
    let mut failing: Option<String> = None;
    while let Some(event) = events.next().await {
        let event = match event {
            Ok(event) => event,
            Err(error) => {
                state.counts.errors.fetch_add(1, Ordering::Relaxed);
                on_error(&error, state, changed, need, &mut failing);
                continue;
            }
        };
        if let Some(error) = failing.take() {
            tracing::info!(watch = %state.name, %error, "watch recovered");
        }
        match event {
            Event::Apply(_) | Event::Delete(_) => changed.notify_one(),
            Event::InitDone => {
                state.counts.lists.fetch_add(1, Ordering::Relaxed);
                if !state.listed.swap(true, Ordering::AcqRel) {
                    tracing::debug!(watch = %state.name, "listed");
                }
                changed.notify_one();
            }
            // A relist in progress: the store changes at InitDone, all at once.
            Event::Init | Event::InitApply(_) => {}
        }
    }
}

fn on_error(
    error: &watcher::Error,
    state: &WatchState,
    changed: &Notify,
    need: Need,
    failing: &mut Option<String>,
) {
    let text = error.to_string();
    let repeat = failing.as_deref() == Some(text.as_str());
    let code = status_code(error);
    if code == Some(410) {
        // The resourceVersion expired: the watcher lists again, nothing is lost.
        tracing::debug!(watch = %state.name, %error, "watch expired; listing again");
        return;
    }
    if code == Some(404) && need == Need::UnlessAbsent {
        if !state.listed.swap(true, Ordering::AcqRel) {
            changed.notify_one();
        }
        if !repeat {
            tracing::warn!(
                watch = %state.name,
                %error,
                "the API is not served (is the CustomResourceDefinition installed?); continuing without these objects and retrying"
            );
        }
    } else if !repeat {
        tracing::warn!(watch = %state.name, %error, "watch failed; retrying with backoff");
    } else {
        tracing::debug!(watch = %state.name, %error, "watch still failing");
    }
    *failing = Some(text);
}

// === impl WatchCounter ===

impl WatchCounter {
    /// The counts of `kind`, made on first use.
    fn kind(&self, kind: &str, plural: &str) -> Arc<KindCounts> {
        let mut kinds = self.kinds.lock().unwrap_or_else(PoisonError::into_inner);
        let (_, counts) = kinds
            .entry(kind.to_owned())
            .or_insert_with(|| (plural.to_owned(), Arc::default()));
        Arc::clone(counts)
    }

    /// Notes a request the watches' client sends: a watch request (`watch=true` or
    /// `watch=1` in the query) counts as a start of a watch of the kind its path names.
    pub(crate) fn request(&self, uri: &http::Uri) {
        let watch = uri
            .query()
            .is_some_and(|q| q.split('&').any(|p| p == "watch=true" || p == "watch=1"));
        if !watch {
            return;
        }
        let plural = uri.path().rsplit('/').next().unwrap_or("");
        let kinds = self.kinds.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, c)) = kinds.values().find(|(p, _)| p == plural) {
            c.starts.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The counts of every kind watched, by kind name.
    pub fn read(&self) -> Vec<WatchCounts> {
        let kinds = self.kinds.lock().unwrap_or_else(PoisonError::into_inner);
        kinds
            .iter()
            .map(|(kind, (_, c))| {
                let watches = c.watches.load(Ordering::Relaxed);
                let lists = c.lists.load(Ordering::Relaxed);
                WatchCounts {
                    kind: kind.clone(),
                    lists,
                    relists: lists.saturating_sub(watches),
                    restarts: c.starts.load(Ordering::Relaxed).saturating_sub(watches),
                    errors: c.errors.load(Ordering::Relaxed),
                }
            })
            .collect()
    }
}

/// The watches' client: `client`, with each watch request counted by `counter`.
pub(crate) fn counted(client: &::kube::Client, counter: WatchCounter) -> ::kube::Client {
    let namespace = client.default_namespace().to_owned();
    ::kube::Client::new(
        Counted {
            client: client.clone(),
            counter,
        },
        namespace,
    )
}

#[derive(Clone)]
struct Counted {
    client: ::kube::Client,
    counter: WatchCounter,
}

impl tower::Service<http::Request<::kube::client::Body>> for Counted {
    type Response = http::Response<::kube::client::Body>;
    type Error = ::kube::Error;
    type Future = futures_util::future::BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<::kube::client::Body>) -> Self::Future {
        self.counter.request(request.uri());
        let client = self.client.clone();
        Box::pin(async move { client.send(request).await })
    }
}

/// The HTTP status of an error the API server answered.
fn status_code(error: &watcher::Error) -> Option<u16> {
    match error {
        watcher::Error::InitialListFailed(::kube::Error::Api(s))
        | watcher::Error::WatchStartFailed(::kube::Error::Api(s))
        | watcher::Error::WatchFailed(::kube::Error::Api(s)) => Some(s.code),
        watcher::Error::WatchError(s) => Some(s.code),
        _ => None,
    }
}

/// A watch driven by hand, for tests of what is built from the stores.
#[cfg(test)]
pub(crate) struct ManualWatch {
    state: Arc<WatchState>,
    changed: Arc<Notify>,
}

#[cfg(test)]
impl Progress {
    /// Registers a watch that a test drives.
    pub(crate) fn manual(&mut self, name: &str) -> ManualWatch {
        let state = Arc::new(WatchState {
            name: name.to_owned(),
            listed: AtomicBool::new(false),
            counts: Arc::default(),
        });
        self.states.push(Arc::clone(&state));
        ManualWatch {
            state,
            changed: Arc::clone(&self.changed),
        }
    }
}

#[cfg(test)]
impl ManualWatch {
    /// As after the first `InitDone`.
    pub(crate) fn listed(&self) {
        self.state.listed.store(true, Ordering::Release);
        self.changed.notify_one();
    }

    /// As after an `Apply` or `Delete`.
    pub(crate) fn changed(&self) {
        self.changed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use ::kube::core::Status;

    use super::*;

    fn state() -> WatchState {
        WatchState {
            name: "MseIngressConfig".to_owned(),
            listed: AtomicBool::new(false),
            counts: Arc::default(),
        }
    }

    fn list_failed(code: u16) -> watcher::Error {
        let status = Status::failure(
            "the server could not find the requested resource",
            "NotFound",
        )
        .with_code(code);
        watcher::Error::InitialListFailed(::kube::Error::Api(Box::new(status)))
    }

    #[test]
    fn an_absent_optional_api_counts_as_listed_and_a_required_one_does_not() {
        let changed = Notify::new();
        let optional = state();
        let mut failing = None;
        on_error(
            &list_failed(404),
            &optional,
            &changed,
            Need::UnlessAbsent,
            &mut failing,
        );
        assert!(optional.listed.load(Ordering::Acquire));
        assert!(
            failing.is_some(),
            "the error is remembered, so a repeat is not logged"
        );

        let required = state();
        let mut failing = None;
        on_error(
            &list_failed(404),
            &required,
            &changed,
            Need::Required,
            &mut failing,
        );
        assert!(!required.listed.load(Ordering::Acquire));

        // Anything but 404 keeps even an optional watch pending: forbidden, unreachable.
        let forbidden = state();
        on_error(
            &list_failed(403),
            &forbidden,
            &changed,
            Need::UnlessAbsent,
            &mut None,
        );
        assert!(!forbidden.listed.load(Ordering::Acquire));
    }

    #[test]
    fn an_expired_watch_is_no_failure() {
        let expired = watcher::Error::WatchError(Box::new(
            Status::failure("too old resource version", "Expired").with_code(410),
        ));
        assert_eq!(status_code(&expired), Some(410));
        let mut failing = None;
        on_error(
            &expired,
            &state(),
            &Notify::new(),
            Need::Required,
            &mut failing,
        );
        assert!(
            failing.is_none(),
            "a relist follows; nothing to report as recovered"
        );
    }
}
