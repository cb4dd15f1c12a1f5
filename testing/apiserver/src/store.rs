//! The object store: every object by resource, namespace and name, one global
//! resourceVersion counter, the history of changes that watches resume from, and the open
//! watches that receive new changes.
//!
//! Everything here runs under one mutex held by the caller, so a write, its event and the
//! registration of a watch are atomic with respect to each other: a watch never misses or
//! duplicates a change.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::error::ApiError;
use crate::meta;
use crate::resources::{ResourceId, by_kind, resource};

/// Where an object lives: its resource type, namespace (empty for cluster-scoped objects)
/// and name.
pub(crate) type Key = (ResourceId, String, String);

/// Changes kept for watches to resume from; older ones are forgotten as by a compaction.
const MAX_HISTORY: usize = 100_000;

/// What a change did to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChangeKind {
    Added,
    Modified,
    Deleted,
}

/// One write, as watches see it.
#[derive(Debug)]
pub(crate) struct Change {
    /// The resourceVersion the write produced.
    pub(crate) rv: u64,
    pub(crate) res: ResourceId,
    pub(crate) kind: ChangeKind,
    /// The object after the write; for a deletion, the last state with the deletion's
    /// resourceVersion.
    pub(crate) object: Arc<Value>,
    /// The object before the write, when there was one.
    pub(crate) previous: Option<Arc<Value>>,
}

/// How deleting an owner treats its dependents (`DeleteOptions.propagationPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Propagation {
    /// Dependents are deleted after the owner (the default).
    Background,
    /// Dependents are deleted before the owner.
    Foreground,
    /// Dependents lose their owner reference and stay.
    Orphan,
}

/// The replay a new watch starts with, and the channel of later changes.
pub(crate) struct Subscription {
    /// Changes to send first: synthetic `ADDED` for the current state, or the retained history
    /// after the requested resourceVersion.
    pub(crate) initial: Vec<Arc<Change>>,
    /// The resourceVersion the watch has seen everything up to once `initial` is sent.
    pub(crate) start_rv: u64,
    /// Every later change, of any resource.
    pub(crate) changes: mpsc::UnboundedReceiver<Arc<Change>>,
}

/// Where a watch starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WatchFrom {
    /// The current state as synthetic `ADDED` events, then every change.
    Now,
    /// Every change after this resourceVersion.
    After(u64),
}

/// The objects, the counter, the history and the watches.
#[derive(Default)]
pub(crate) struct Store {
    objects: BTreeMap<Key, Value>,
    rv: u64,
    history: VecDeque<Arc<Change>>,
    /// Changes after this resourceVersion are all in `history`.
    floor: u64,
    /// Every open watch gets every change, so that its bookmarks can carry the global
    /// resourceVersion; each watch keeps the changes of its own resource.
    watchers: Vec<mpsc::UnboundedSender<Arc<Change>>>,
}

impl Store {
    /// A store holding the namespaces every cluster starts with.
    pub(crate) fn new() -> Self {
        let mut store = Self::default();
        if let Some(ns) = by_kind("v1", "Namespace") {
            for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
                let mut object = json!({
                    "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name},
                    "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"},
                });
                let meta = meta::metadata_mut(&mut object);
                meta.insert("uid".into(), json!(meta::new_uid()));
                meta.insert("creationTimestamp".into(), json!(meta::now_rfc3339()));
                meta.insert("generation".into(), json!(1));
                store.commit(ns, None, object);
            }
        }
        store
    }

    /// The current resourceVersion.
    pub(crate) fn resource_version(&self) -> u64 {
        self.rv
    }

    /// The key of `object` as a `res` object.
    pub(crate) fn key_of(res: ResourceId, object: &Value) -> Key {
        (
            res,
            meta::namespace(object).to_owned(),
            meta::name(object).to_owned(),
        )
    }

    /// The stored object at `key`.
    pub(crate) fn get(&self, key: &Key) -> Option<&Value> {
        self.objects.get(key)
    }

    /// Every object of `res`, in namespace then name order.
    pub(crate) fn objects_of(&self, res: ResourceId) -> impl Iterator<Item = (&Key, &Value)> {
        self.objects
            .range((res, String::new(), String::new())..)
            .take_while(move |(k, _)| k.0 == res)
    }

    /// The objects of `res` as they were at resourceVersion `rv`, rebuilt from the current
    /// state by undoing the retained history; `Gone` when that history was forgotten.
    pub(crate) fn snapshot_at(
        &self,
        res: ResourceId,
        rv: u64,
    ) -> Result<BTreeMap<Key, Value>, ApiError> {
        if rv < self.floor {
            return Err(ApiError::Gone(format!(
                "too old resource version: {rv} ({})",
                self.floor
            )));
        }
        let mut objects: BTreeMap<Key, Value> = self
            .objects_of(res)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for change in self.history.iter().rev().take_while(|c| c.rv > rv) {
            if change.res != res {
                continue;
            }
            let key = Self::key_of(res, &change.object);
            match (&change.kind, &change.previous) {
                (ChangeKind::Added, _) | (_, None) => {
                    objects.remove(&key);
                }
                (ChangeKind::Modified | ChangeKind::Deleted, Some(previous)) => {
                    objects.insert(key, Value::clone(previous));
                }
            }
        }
        Ok(objects)
    }

    /// Stores `object` (whose server-managed metadata the caller has set) as the successor of
    /// `previous`, with a new resourceVersion, and tells the watches. Writing an object equal
    /// to the stored one, apart from its resourceVersion, changes nothing and returns the
    /// stored object.
    pub(crate) fn commit(
        &mut self,
        res: ResourceId,
        previous: Option<&Value>,
        mut object: Value,
    ) -> Value {
        if let Some(previous) = previous {
            let mut same = object.clone();
            meta::metadata_mut(&mut same).insert(
                "resourceVersion".into(),
                json!(meta::resource_version(previous)),
            );
            if &same == previous {
                return previous.clone();
            }
        }
        self.rv += 1;
        meta::metadata_mut(&mut object)
            .insert("resourceVersion".into(), json!(self.rv.to_string()));
        let key = Self::key_of(res, &object);
        let kind = if previous.is_some() {
            ChangeKind::Modified
        } else {
            ChangeKind::Added
        };
        self.objects.insert(key, object.clone());
        self.record(Change {
            rv: self.rv,
            res,
            kind,
            object: Arc::new(object.clone()),
            previous: previous.cloned().map(Arc::new),
        });
        object
    }

    /// Deletes the object at `key`: an object with finalizers is only marked with a
    /// `deletionTimestamp` (its finalizers' owners remove it by clearing them); otherwise it is
    /// removed. Returns the marked or removed object.
    pub(crate) fn delete(&mut self, key: &Key, propagation: Propagation) -> Option<Value> {
        let current = self.objects.get(key)?.clone();
        if meta::has_finalizers(&current) {
            if meta::meta_str(&current, "deletionTimestamp").is_some() {
                return Some(current);
            }
            let mut marked = current.clone();
            let meta = meta::metadata_mut(&mut marked);
            meta.insert("deletionTimestamp".into(), json!(meta::now_rfc3339()));
            meta.insert("deletionGracePeriodSeconds".into(), json!(0));
            return Some(self.commit(key.0, Some(&current), marked));
        }
        Some(self.remove(key, propagation))
    }

    /// Removes a stored object for good, emits `DELETED`, then collects its dependents as
    /// the garbage collector of kube-controller-manager would (here at once, in the same
    /// write): objects whose `ownerReferences` name its uid are deleted too, or lose that
    /// reference when `propagation` is `Orphan`. Removing a Namespace removes everything in it.
    pub(crate) fn remove(&mut self, key: &Key, propagation: Propagation) -> Value {
        self.remove_as(key, None, propagation)
    }

    /// [`remove`](Self::remove), with `last` as the object's final state (an update that
    /// cleared the last finalizer of an object being deleted).
    pub(crate) fn remove_as(
        &mut self,
        key: &Key,
        last: Option<Value>,
        propagation: Propagation,
    ) -> Value {
        let uid = self
            .objects
            .get(key)
            .and_then(|o| meta::meta_str(o, "uid"))
            .unwrap_or_default()
            .to_owned();
        let dependents: Vec<Key> = if uid.is_empty() {
            Vec::new()
        } else {
            self.objects
                .iter()
                .filter(|(k, o)| *k != key && meta::owner_uids(o).contains(&uid.as_str()))
                .map(|(k, _)| k.clone())
                .collect()
        };
        if propagation == Propagation::Foreground {
            for dependent in &dependents {
                self.delete(dependent, propagation);
            }
        }
        let removed = self.remove_one(key, last);
        match propagation {
            Propagation::Background => {
                for dependent in &dependents {
                    self.delete(dependent, propagation);
                }
            }
            Propagation::Orphan => {
                for dependent in &dependents {
                    self.orphan(dependent, &uid);
                }
            }
            Propagation::Foreground => {}
        }
        if resource(key.0).kind == "Namespace" && resource(key.0).group.is_empty() {
            let inside: Vec<Key> = self
                .objects
                .keys()
                .filter(|k| resource(k.0).namespaced && k.1 == key.2)
                .cloned()
                .collect();
            for k in &inside {
                self.remove(k, Propagation::Background);
            }
        }
        removed
    }

    fn remove_one(&mut self, key: &Key, last: Option<Value>) -> Value {
        let Some(previous) = self.objects.remove(key) else {
            return Value::Null;
        };
        self.rv += 1;
        let mut object = last.unwrap_or_else(|| previous.clone());
        meta::metadata_mut(&mut object)
            .insert("resourceVersion".into(), json!(self.rv.to_string()));
        self.record(Change {
            rv: self.rv,
            res: key.0,
            kind: ChangeKind::Deleted,
            object: Arc::new(object.clone()),
            previous: Some(Arc::new(previous)),
        });
        object
    }

    fn orphan(&mut self, key: &Key, owner_uid: &str) {
        let Some(current) = self.objects.get(key).cloned() else {
            return;
        };
        let mut updated = current.clone();
        let meta = meta::metadata_mut(&mut updated);
        if let Some(Value::Array(refs)) = meta.get_mut("ownerReferences") {
            refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(owner_uid));
            if refs.is_empty() {
                meta.remove("ownerReferences");
            }
        }
        self.commit(key.0, Some(&current), updated);
    }

    fn record(&mut self, change: Change) {
        let change = Arc::new(change);
        self.watchers
            .retain(|tx| tx.send(Arc::clone(&change)).is_ok());
        self.history.push_back(change);
        while self.history.len() > MAX_HISTORY {
            if let Some(old) = self.history.pop_front() {
                self.floor = old.rv;
            }
        }
    }

    /// Opens a watch on `res` from `from`: `Gone` when `from` is older than the history.
    pub(crate) fn subscribe(
        &mut self,
        res: ResourceId,
        from: WatchFrom,
    ) -> Result<Subscription, ApiError> {
        let initial = match from {
            WatchFrom::Now => self
                .objects_of(res)
                .map(|(_, o)| {
                    Arc::new(Change {
                        rv: meta::resource_version(o).parse().unwrap_or(0),
                        res,
                        kind: ChangeKind::Added,
                        object: Arc::new(o.clone()),
                        previous: None,
                    })
                })
                .collect(),
            WatchFrom::After(rv) if rv < self.floor => {
                return Err(ApiError::Gone(format!(
                    "too old resource version: {rv} ({})",
                    self.floor
                )));
            }
            WatchFrom::After(rv) => self
                .history
                .iter()
                .filter(|c| c.rv > rv && c.res == res)
                .cloned()
                .collect(),
        };
        let start_rv = match from {
            WatchFrom::After(rv) => rv.max(self.rv),
            WatchFrom::Now => self.rv,
        };
        let (tx, changes) = mpsc::unbounded_channel();
        self.watchers.push(tx);
        Ok(Subscription {
            initial,
            start_rv,
            changes,
        })
    }

    /// Ends every open watch: their channels close, and their streams end.
    pub(crate) fn cut_watches(&mut self) {
        self.watchers.clear();
    }

    /// Forgets the history: a watch or a continued list from an older resourceVersion gets
    /// 410 Gone.
    pub(crate) fn compact(&mut self) {
        self.history.clear();
        self.floor = self.rv;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cm(name: &str, data: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}")},
            "data": {"k": data}})
    }

    fn configmaps() -> ResourceId {
        by_kind("v1", "ConfigMap").unwrap()
    }

    #[test]
    fn unchanged_writes_keep_the_resource_version() {
        let mut store = Store::new();
        let res = configmaps();
        let first = store.commit(res, None, cm("a", "1"));
        let rv = store.resource_version();
        let again = store.commit(res, Some(&first), cm("a", "1"));
        assert_eq!(again, first);
        assert_eq!(store.resource_version(), rv);
        let changed = store.commit(res, Some(&first), cm("a", "2"));
        assert_eq!(meta::resource_version(&changed), (rv + 1).to_string());
    }

    #[test]
    fn snapshots_undo_later_changes() {
        let mut store = Store::new();
        let res = configmaps();
        let a1 = store.commit(res, None, cm("a", "1"));
        let at = store.resource_version();
        store.commit(res, Some(&a1), cm("a", "2"));
        store.commit(res, None, cm("b", "1"));
        store.remove(&Store::key_of(res, &a1), Propagation::Background);
        let past = store.snapshot_at(res, at).unwrap();
        assert_eq!(past.values().cloned().collect::<Vec<_>>(), vec![a1]);
        store.compact();
        assert_eq!(store.snapshot_at(res, at).unwrap_err().code(), 410);
        assert!(store.snapshot_at(res, store.resource_version()).is_ok());
    }

    #[test]
    fn watches_resume_from_history_until_compacted() {
        let mut store = Store::new();
        let res = configmaps();
        let from = store.resource_version();
        store.commit(res, None, cm("a", "1"));
        let sub = store.subscribe(res, WatchFrom::After(from)).unwrap();
        assert_eq!(sub.initial.len(), 1);
        assert_eq!(sub.start_rv, store.resource_version());
        store.compact();
        let err = store.subscribe(res, WatchFrom::After(from)).err().unwrap();
        assert_eq!(err.code(), 410);
        assert!(
            store
                .subscribe(res, WatchFrom::After(store.resource_version()))
                .is_ok()
        );
    }

    #[test]
    fn deleting_an_owner_collects_dependents_in_chains() {
        let mut store = Store::new();
        let res = configmaps();
        let owner = store.commit(res, None, cm("owner", "1"));
        let mut child = cm("child", "1");
        child["metadata"]["ownerReferences"] = json!([{"uid": "uid-owner"}]);
        store.commit(res, None, child);
        let mut grandchild = cm("grandchild", "1");
        grandchild["metadata"]["ownerReferences"] = json!([{"uid": "uid-child"}]);
        store.commit(res, None, grandchild);
        store.commit(res, None, cm("other", "1"));
        store.delete(&Store::key_of(res, &owner), Propagation::Background);
        let left: Vec<&str> = store.objects_of(res).map(|(k, _)| k.2.as_str()).collect();
        assert_eq!(left, ["other"]);
    }

    #[test]
    fn orphaning_strips_the_owner_reference() {
        let mut store = Store::new();
        let res = configmaps();
        let owner = store.commit(res, None, cm("owner", "1"));
        let mut child = cm("child", "1");
        child["metadata"]["ownerReferences"] = json!([{"uid": "uid-owner"}]);
        let child = store.commit(res, None, child);
        store.delete(&Store::key_of(res, &owner), Propagation::Orphan);
        let kept = store.get(&Store::key_of(res, &child)).unwrap();
        assert!(kept["metadata"].get("ownerReferences").is_none());
    }

    #[test]
    fn finalizers_hold_a_deletion() {
        let mut store = Store::new();
        let res = configmaps();
        let mut held = cm("held", "1");
        held["metadata"]["finalizers"] = json!(["example.com/cleanup"]);
        let held = store.commit(res, None, held);
        let marked = store
            .delete(&Store::key_of(res, &held), Propagation::Background)
            .unwrap();
        assert!(meta::meta_str(&marked, "deletionTimestamp").is_some());
        assert!(store.get(&Store::key_of(res, &held)).is_some());
    }
}
