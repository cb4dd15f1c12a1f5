//! Building one snapshot from the files of a load: duplicates, and the last good objects of
//! files that are broken right now.
//!
//! Pure: it sees what each file produced now and at its last good load, never the disk.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use mse_model::api::{ConfigMap, EndpointSlice, Endpoints, Ingress, IngressClass, Secret, Service};
use mse_model::{Diagnostic, MseIngressConfig, Object, ObjectKey, Snapshot, SourceRef, Sourced};

/// One object read from a file, shared between consecutive snapshots.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    key: ObjectKey,
    source: Option<SourceRef>,
    item: Item,
}

/// The object itself, behind an `Arc` so that an unchanged file costs no copy.
#[derive(Clone, Debug)]
enum Item {
    Ingress(Arc<Ingress>),
    IngressClass(Arc<IngressClass>),
    Service(Arc<Service>),
    EndpointSlice(Arc<EndpointSlice>),
    Endpoints(Arc<Endpoints>),
    Secret(Arc<Secret>),
    ConfigMap(Arc<ConfigMap>),
    MseIngressConfig(Arc<MseIngressConfig>),
    /// A kind added to the model after this was written: copied into each snapshot.
    Other(Object),
}

/// What one file contributes to a load.
#[derive(Debug)]
pub(crate) struct FileInput<'a> {
    /// The file's name, as in diagnostics.
    pub(crate) name: &'a str,
    /// The objects read from it now, in document order.
    pub(crate) entries: &'a [Entry],
    /// Problems reading or parsing it now.
    pub(crate) diagnostics: &'a [Diagnostic],
    /// Whether it is broken now (unreadable, or a malformed document): then `last_good`
    /// fills in for what it no longer defines.
    pub(crate) broken: bool,
    /// The objects of its last load that was not broken.
    pub(crate) last_good: Option<&'a [Entry]>,
    /// Where its annotation keys are now.
    pub(crate) lines: &'a mse_model::AnnotationLines,
}

// === impl Entry ===

impl Entry {
    /// Wraps an object as returned by [`mse_model::load_manifests`], reduced to what the
    /// gateway reads ([`Object::slim`]).
    pub(crate) fn new(mut object: Object, source: Option<SourceRef>) -> Self {
        object.slim();
        let key = object.key();
        let item = match object {
            Object::Ingress(o) => Item::Ingress(Arc::from(o)),
            Object::IngressClass(o) => Item::IngressClass(Arc::from(o)),
            Object::Service(o) => Item::Service(Arc::from(o)),
            Object::EndpointSlice(o) => Item::EndpointSlice(Arc::from(o)),
            Object::Endpoints(o) => Item::Endpoints(Arc::from(o)),
            Object::Secret(o) => Item::Secret(Arc::from(o)),
            Object::ConfigMap(o) => Item::ConfigMap(Arc::from(o)),
            Object::MseIngressConfig(o) => Item::MseIngressConfig(Arc::from(o)),
            other => Item::Other(other),
        };
        Self { key, source, item }
    }

    /// Makes the entries of one file share one copy of each namespace name in their keys:
    /// the objects of a file are mostly in one namespace.
    pub(crate) fn share_namespaces(entries: &mut [Entry]) {
        let mut seen: HashSet<Arc<str>> = HashSet::new();
        for e in entries {
            match seen.get(&e.key.namespace) {
                Some(ns) => e.key.namespace = Arc::clone(ns),
                None => {
                    seen.insert(Arc::clone(&e.key.namespace));
                }
            }
        }
    }

    fn push_into(&self, snapshot: &mut Snapshot) {
        fn sourced<T>(object: &Arc<T>, source: &Option<SourceRef>) -> Sourced<T> {
            Sourced {
                object: Arc::clone(object),
                source: source.clone(),
            }
        }
        let s = &self.source;
        match &self.item {
            Item::Ingress(o) => snapshot.ingresses.push(sourced(o, s)),
            Item::IngressClass(o) => snapshot.ingress_classes.push(sourced(o, s)),
            Item::Service(o) => snapshot.services.push(sourced(o, s)),
            Item::EndpointSlice(o) => snapshot.endpoint_slices.push(sourced(o, s)),
            Item::Endpoints(o) => snapshot.endpoints.push(sourced(o, s)),
            Item::Secret(o) => snapshot.secrets.push(sourced(o, s)),
            Item::ConfigMap(o) => snapshot.config_maps.push(sourced(o, s)),
            Item::MseIngressConfig(o) => snapshot.mse_configs.push(sourced(o, s)),
            Item::Other(o) => snapshot.push(o.clone(), s.clone()),
        }
    }

    fn place(&self, file: &str) -> String {
        match &self.source {
            Some(s) => s.to_string(),
            None => file.to_owned(),
        }
    }
}

/// Builds the snapshot of one load.
///
/// Objects are taken file by file in load order, each file in document order; the first
/// definition of a key wins and later ones get a `duplicate-object` warning. Then, for each
/// broken file, the objects of its last good load that nothing defines now are added back
/// with a `kept-last-good` warning: a half-written edit must not take routes down, but an
/// object that moved to another file is taken from there.
///
/// Diagnostics are in load order: `listing` first (paths that could not be read), then per
/// file its own diagnostics, its duplicates and its kept objects.
pub(crate) fn assemble(
    generation: u64,
    listing: &[Diagnostic],
    files: &[FileInput<'_>],
) -> Snapshot {
    let mut snapshot = Snapshot {
        generation,
        ..Snapshot::default()
    };
    let mut per_file: Vec<Vec<Diagnostic>> = files.iter().map(|f| f.diagnostics.to_vec()).collect();
    // Where each key was first defined.
    let mut first: HashMap<&ObjectKey, String> = HashMap::new();

    for file in files {
        // Objects kept from a broken file's last good load no longer match its text: their
        // diagnostics keep the object's line.
        if !file.broken && !file.lines.is_empty() {
            snapshot
                .annotation_lines
                .insert(Arc::from(file.name), file.lines.clone());
        }
    }
    for (file, diags) in files.iter().zip(&mut per_file) {
        for entry in file.entries {
            if let Some(place) = first.get(&entry.key) {
                diags.push(
                    Diagnostic::warning(
                        "duplicate-object",
                        format!(
                            "also defined at {place}; this definition is ignored (the first in \
                             path and line order is used)"
                        ),
                    )
                    .object(entry.key.clone())
                    .source(entry.source.clone()),
                );
            } else {
                first.insert(&entry.key, entry.place(file.name));
                entry.push_into(&mut snapshot);
            }
        }
    }

    for (file, diags) in files.iter().zip(&mut per_file) {
        let Some(last_good) = file.last_good.filter(|_| file.broken) else {
            continue;
        };
        for entry in last_good {
            if first.contains_key(&entry.key) {
                continue;
            }
            first.insert(&entry.key, entry.place(file.name));
            entry.push_into(&mut snapshot);
            diags.push(
                Diagnostic::warning(
                    "kept-last-good",
                    format!(
                        "{} has errors now and no longer yields this object; its last good \
                         version is kept until the file is fixed or removed",
                        file.name
                    ),
                )
                .object(entry.key.clone())
                .source(entry.source.clone()),
            );
        }
    }

    snapshot.diagnostics = listing.to_vec();
    snapshot.diagnostics.extend(per_file.into_iter().flatten());
    snapshot
}
