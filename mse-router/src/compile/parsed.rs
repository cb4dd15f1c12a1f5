//! Parsed annotations shared by the Ingresses that carry the same ones, within one compile
//! and from one compile to the next.
//!
//! Parsing an Ingress's annotations (with the `not-applied` check that follows it) is the
//! larger part of compiling an annotated Ingress, and its result depends on nothing but
//! the annotations themselves, plus the Ingress's namespace when a Secret reference is
//! among them (a reference to another namespace is refused): the Ingress's name and file
//! only label the diagnostics. Ingresses made from one template carry the same
//! annotations, so each distinct set is parsed once and its result shared; the
//! diagnostics are kept without object and file and labelled again for each Ingress.
//!
//! What is kept is one entry per distinct set, not one per Ingress: thousands of
//! Ingresses with a few dozen distinct sets cost a few dozen entries. [`CompileCache`]
//! carries the entries of one compile to the next, only those the compile used, and at
//! most its limit ([`CompileCache::DEFAULT_LIMIT`] unless given) of them, the most used
//! first.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Arc, OnceLock};

use mse_annotations::IngressPolicy;
use mse_model::Diagnostic;

use crate::policy::{Refused, RoutePolicy};
use crate::table::FastMap;

/// What [`super::compile_cached`] keeps from one compile for the next: the parsed
/// annotations of each distinct set of annotations the compile met.
///
/// A cache may be given any snapshots and options, in any order: reusing it never changes
/// the table, only the time compiling takes.
#[derive(Debug)]
pub struct CompileCache {
    /// By the hash of the namespace (when it matters) and the annotations.
    buckets: FastMap<u64, Vec<Slot>>,
    /// The most entries held at once.
    limit: usize,
    len: usize,
}

impl Default for CompileCache {
    fn default() -> Self {
        Self::with_limit(Self::DEFAULT_LIMIT)
    }
}

#[derive(Debug)]
struct Slot {
    entry: Arc<Parsed>,
    /// How many Ingresses of the current compile used it.
    users: u32,
}

/// One set of annotations, parsed.
#[derive(Debug)]
pub(super) struct Parsed {
    /// The namespace of the Ingresses it was parsed for, when the result depends on it.
    namespace: Option<Arc<str>>,
    annotations: BTreeMap<String, String>,
    pub(super) policy: Arc<IngressPolicy>,
    /// What parsing and the `not-applied` check said, without object and file.
    pub(super) diagnostics: Box<[Diagnostic]>,
    /// The route policy built from `policy` alone, with the keys it refused: shared by
    /// the Ingresses whose route policy needs no other object (see
    /// `Compiler::route_policy`), built by the first of them.
    pub(super) route: OnceLock<(Option<Arc<RoutePolicy>>, Vec<Refused>)>,
}

// === impl CompileCache ===

impl CompileCache {
    /// The most distinct sets of annotations a cache holds unless told otherwise: each
    /// takes a few kilobytes.
    pub const DEFAULT_LIMIT: usize = 1024;

    /// An empty cache: the first compile with it parses every distinct set once.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty cache that holds at most `limit` distinct sets of annotations at once
    /// (past it, a compile parses the sets it has no room for on every Ingress that
    /// carries them). With 0, nothing is shared: every Ingress is parsed.
    pub fn with_limit(limit: usize) -> Self {
        Self {
            buckets: FastMap::default(),
            limit,
            len: 0,
        }
    }

    /// The number of distinct sets of annotations kept.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Marks every entry unused: the start of a compile.
    pub(super) fn begin(&mut self) {
        for slot in self.buckets.values_mut().flatten() {
            slot.users = 0;
        }
    }

    /// The parsed form of `annotations` on an Ingress in `namespace`, if kept; counts the
    /// use.
    pub(super) fn get(
        &mut self,
        namespace: &Arc<str>,
        annotations: &BTreeMap<String, String>,
    ) -> Option<Arc<Parsed>> {
        let ns = reads_namespace(annotations).then_some(namespace);
        let slot = self
            .buckets
            .get_mut(&hash(ns, annotations))?
            .iter_mut()
            .find(|s| s.entry.namespace.as_ref() == ns && s.entry.annotations == *annotations)?;
        slot.users += 1;
        Some(Arc::clone(&slot.entry))
    }

    /// Keeps what parsing `annotations` on an Ingress in `namespace` gave (diagnostics
    /// with object and file, which are taken off), if there is room, and returns it.
    pub(super) fn insert(
        &mut self,
        namespace: &Arc<str>,
        annotations: &BTreeMap<String, String>,
        policy: Arc<IngressPolicy>,
        diagnostics: &[Diagnostic],
    ) -> Option<Arc<Parsed>> {
        if self.len >= self.limit {
            return None;
        }
        let ns = reads_namespace(annotations).then_some(namespace);
        let entry = Arc::new(Parsed {
            namespace: ns.cloned(),
            annotations: annotations.clone(),
            policy,
            diagnostics: diagnostics
                .iter()
                .map(|d| {
                    let mut d = d.clone();
                    d.origin.object = None;
                    d.origin.source = None;
                    d
                })
                .collect(),
            route: OnceLock::new(),
        });
        self.buckets
            .entry(hash(ns, annotations))
            .or_default()
            .push(Slot {
                entry: Arc::clone(&entry),
                users: 1,
            });
        self.len += 1;
        Some(entry)
    }

    /// Drops what the compile did not use: the end of a compile. (What it inserted is
    /// within the limit already.)
    pub(super) fn end(&mut self) {
        for slots in self.buckets.values_mut() {
            slots.retain(|s| s.users > 0);
        }
        self.buckets.retain(|_, slots| !slots.is_empty());
        self.len = self.buckets.values().map(Vec::len).sum();
        self.buckets.shrink_to_fit();
    }
}

/// Whether parsing these annotations reads the Ingress's namespace: only a Secret
/// reference does (`[namespace/]name` values: one in another namespace is refused). Any
/// key naming a Secret counts, known or not, so that a new key of that kind is covered.
fn reads_namespace(annotations: &BTreeMap<String, String>) -> bool {
    annotations.keys().any(|k| {
        k.contains("secret")
            || mse_annotations::split_key(k)
                .and_then(|(_, name)| mse_annotations::spec(name))
                .is_some_and(|spec| spec.values.contains("namespace/"))
    })
}

fn hash(namespace: Option<&Arc<str>>, annotations: &BTreeMap<String, String>) -> u64 {
    let mut h = foldhash::fast::FixedState::with_seed(0).build_hasher();
    namespace.map(|n| &**n).hash(&mut h);
    annotations.hash(&mut h);
    h.finish()
}
