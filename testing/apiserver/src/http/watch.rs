//! Watch streams: newline-delimited JSON events over a chunked response.
//!
//! A watch replays what its start asks for (the current state as `ADDED`, or the retained
//! changes after a resourceVersion), then forwards each new change that passes its namespace
//! and selectors. An object that starts or stops matching a selector is sent as `ADDED` or
//! `DELETED`, as the real watch cache does. Bookmarks carry the resourceVersion the stream
//! has seen everything up to. The stream ends cleanly after `timeoutSeconds`, and with an
//! I/O error (the connection is cut, as by a restarting server) when the watch is cut.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::{Instant, Interval, MissedTickBehavior, Sleep};

use crate::error::ApiError;
use crate::resources::{ResourceId, resource};
use crate::selector::Selector;
use crate::store::{Change, ChangeKind, Store, WatchFrom};

use super::list::partial;

/// A watch request.
pub(crate) struct WatchRequest {
    pub(crate) res: ResourceId,
    pub(crate) ns: Option<String>,
    pub(crate) selector: Selector,
    pub(crate) from: WatchFrom,
    pub(crate) bookmarks: bool,
    /// A streaming list: the current state, then a bookmark marking its end.
    pub(crate) send_initial_events: bool,
    pub(crate) timeout: Duration,
    pub(crate) partial: bool,
}

/// Which changes a watch sends, and in which form.
struct Filter {
    res: ResourceId,
    ns: Option<String>,
    selector: Selector,
    partial: bool,
}

impl Filter {
    fn line(&self, kind: &str, object: &Value) -> Bytes {
        let object = if self.partial {
            partial(object)
        } else {
            object.clone()
        };
        let mut line = json!({"type": kind, "object": object}).to_string();
        line.push('\n');
        Bytes::from(line)
    }

    /// The event a change becomes for this watch, if any.
    fn event(&self, change: &Change) -> Option<Bytes> {
        if change.res != self.res {
            return None;
        }
        let in_ns = |o: &Value| {
            self.ns
                .as_deref()
                .is_none_or(|ns| crate::meta::namespace(o) == ns)
        };
        if !in_ns(&change.object) {
            return None;
        }
        let now = self.selector.matches(&change.object);
        let before = change
            .previous
            .as_deref()
            .is_some_and(|p| self.selector.matches(p));
        let kind = match change.kind {
            ChangeKind::Added if now => "ADDED",
            ChangeKind::Modified if before && now => "MODIFIED",
            ChangeKind::Modified if now => "ADDED",
            ChangeKind::Modified if before => "DELETED",
            ChangeKind::Deleted if before => "DELETED",
            _ => return None,
        };
        Some(self.line(kind, &change.object))
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let r = resource(self.res);
        let mut metadata = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let (kind, api_version) = if self.partial {
            (
                "PartialObjectMetadata".to_owned(),
                "meta.k8s.io/v1".to_owned(),
            )
        } else {
            (r.kind.to_owned(), r.api_version())
        };
        let object = json!({"kind": kind, "apiVersion": api_version, "metadata": metadata});
        let mut line = json!({"type": "BOOKMARK", "object": object}).to_string();
        line.push('\n');
        Bytes::from(line)
    }
}

/// The state of one open watch stream.
struct WatchStream {
    pending: VecDeque<Bytes>,
    changes: Option<mpsc::UnboundedReceiver<Arc<Change>>>,
    filter: Filter,
    /// Everything up to this resourceVersion has been seen.
    progress: u64,
    bookmarks: bool,
    deadline: Pin<Box<Sleep>>,
    ticker: Interval,
    done: bool,
}

impl WatchStream {
    async fn next(mut self) -> Option<(io::Result<Bytes>, Self)> {
        loop {
            if let Some(line) = self.pending.pop_front() {
                return Some((Ok(line), self));
            }
            if self.done {
                return None;
            }
            let changes = self.changes.as_mut()?;
            tokio::select! {
                biased;
                change = changes.recv() => {
                    let Some(change) = change else {
                        self.done = true;
                        let cut = io::Error::new(io::ErrorKind::ConnectionReset, "watch cut");
                        return Some((Err(cut), self));
                    };
                    self.progress = self.progress.max(change.rv);
                    if let Some(line) = self.filter.event(&change) {
                        self.pending.push_back(line);
                    }
                }
                () = &mut self.deadline => {
                    if self.bookmarks {
                        self.pending.push_back(self.filter.bookmark(self.progress, false));
                    }
                    self.done = true;
                }
                _ = self.ticker.tick(), if self.bookmarks => {
                    self.pending.push_back(self.filter.bookmark(self.progress, false));
                }
            }
        }
    }
}

/// Opens a watch: the stream of its lines. An expired start answers one `ERROR` event with
/// a 410 `Status`, then ends, as the real server does.
pub(crate) fn open(
    store: &mut Store,
    req: WatchRequest,
    bookmark_interval: Duration,
) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
    let filter = Filter {
        res: req.res,
        ns: req.ns,
        selector: req.selector,
        partial: req.partial,
    };
    let from = if req.send_initial_events {
        WatchFrom::Now
    } else {
        req.from
    };
    let mut pending = VecDeque::new();
    let (changes, progress) = match store.subscribe(req.res, from) {
        Ok(sub) => {
            pending.extend(sub.initial.iter().filter_map(|c| filter.event(c)));
            if req.send_initial_events {
                pending.push_back(filter.bookmark(sub.start_rv, true));
            }
            (Some(sub.changes), sub.start_rv)
        }
        Err(err) => {
            let line = json!({"type": "ERROR", "object": err.status()}).to_string() + "\n";
            pending.push_back(Bytes::from(line));
            (None, 0)
        }
    };
    let mut ticker =
        tokio::time::interval_at(Instant::now() + bookmark_interval, bookmark_interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let stream = WatchStream {
        pending,
        changes,
        filter,
        progress,
        bookmarks: req.bookmarks,
        deadline: Box::pin(tokio::time::sleep(req.timeout)),
        ticker,
        done: false,
    };
    futures_util::stream::unfold(stream, WatchStream::next)
}

/// Checks the parameters of a streaming list as the real server does.
pub(crate) fn check_streaming(
    send_initial_events: bool,
    bookmarks: bool,
    version_match: Option<&str>,
) -> Result<(), ApiError> {
    if !send_initial_events {
        return Ok(());
    }
    if version_match != Some("NotOlderThan") {
        return Err(ApiError::Invalid {
            kind: "ListOptions.meta.k8s.io".into(),
            name: String::new(),
            message: "resourceVersionMatch: Forbidden: sendInitialEvents requires setting \
                      resourceVersionMatch to NotOlderThan"
                .into(),
        });
    }
    if !bookmarks {
        return Err(ApiError::Invalid {
            kind: "ListOptions.meta.k8s.io".into(),
            name: String::new(),
            message: "allowWatchBookmarks: Forbidden: sendInitialEvents requires \
                      allowWatchBookmarks=true"
                .into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::by_kind;

    fn filter(selector: &str) -> Filter {
        Filter {
            res: by_kind("v1", "ConfigMap").unwrap(),
            ns: Some("a".into()),
            selector: Selector::parse(Some(selector), None).unwrap(),
            partial: false,
        }
    }

    fn change(kind: ChangeKind, previous: Option<&str>, now: &str) -> Change {
        let cm = |app: &str| json!({"metadata": {"name": "c", "namespace": "a", "labels": {"app": app}}});
        Change {
            rv: 7,
            res: by_kind("v1", "ConfigMap").unwrap(),
            kind,
            object: Arc::new(cm(now)),
            previous: previous.map(|p| Arc::new(cm(p))),
        }
    }

    fn event_type(line: Option<Bytes>) -> Option<String> {
        let value: Value = serde_json::from_slice(&line?).ok()?;
        Some(value["type"].as_str()?.to_owned())
    }

    #[test]
    fn selector_transitions_become_added_and_deleted() {
        let f = filter("app=web");
        let t = |c: Change| event_type(f.event(&c));
        assert_eq!(
            t(change(ChangeKind::Added, None, "web")).as_deref(),
            Some("ADDED")
        );
        assert_eq!(t(change(ChangeKind::Added, None, "api")), None);
        assert_eq!(
            t(change(ChangeKind::Modified, Some("web"), "web")).as_deref(),
            Some("MODIFIED")
        );
        assert_eq!(
            t(change(ChangeKind::Modified, Some("api"), "web")).as_deref(),
            Some("ADDED")
        );
        assert_eq!(
            t(change(ChangeKind::Modified, Some("web"), "api")).as_deref(),
            Some("DELETED")
        );
        assert_eq!(t(change(ChangeKind::Modified, Some("api"), "db")), None);
        assert_eq!(
            t(change(ChangeKind::Deleted, Some("web"), "web")).as_deref(),
            Some("DELETED")
        );
    }

    #[test]
    fn bookmarks_mark_the_end_of_initial_events() {
        let line = filter("").bookmark(12, true);
        let value: Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(value["object"]["metadata"]["resourceVersion"], "12");
        assert_eq!(
            value["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
            "true"
        );
        assert_eq!(value["object"]["kind"], "ConfigMap");
    }

    #[test]
    fn streaming_lists_need_not_older_than_and_bookmarks() {
        assert!(check_streaming(false, false, None).is_ok());
        assert!(check_streaming(true, true, Some("NotOlderThan")).is_ok());
        assert_eq!(check_streaming(true, true, None).unwrap_err().code(), 422);
        assert_eq!(
            check_streaming(true, false, Some("NotOlderThan"))
                .unwrap_err()
                .code(),
            422
        );
    }
}
