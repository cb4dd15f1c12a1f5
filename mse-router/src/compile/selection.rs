//! Class selection and age order: which Ingresses this gateway serves, oldest first.

use std::cmp::Ordering;

use mse_annotations::{INGRESS_CLASS, IS_DEFAULT_CLASS};
use mse_model::api::Ingress;
use mse_model::{Diagnostic, Kind, ObjectKey, Snapshot, SourceRef};

use super::{CompileOptions, Compiler, Selected};

/// The Ingresses [`compile`](super::compile) would serve (class selection), oldest first.
pub(crate) fn selected_ingresses(snapshot: &Snapshot, opts: &CompileOptions) -> Vec<ObjectKey> {
    let mut cx = Compiler::new(snapshot);
    cx.select_ingresses(snapshot, opts)
        .into_iter()
        .map(|s| s.key)
        .collect()
}

/// The classes this gateway serves.
struct OurClasses<'s> {
    names: Vec<&'s str>,
    /// One of our IngressClasses is marked default: Ingresses without a class are ours.
    default: bool,
}

impl<'s> OurClasses<'s> {
    fn of(snapshot: &'s Snapshot, opts: &'s CompileOptions) -> Self {
        let mut names: Vec<&str> = Vec::new();
        let mut others: Vec<&str> = Vec::new();
        let mut default = false;
        for c in &snapshot.ingress_classes {
            let name = c.object.metadata.name.as_deref().unwrap_or("");
            let controller = c.object.spec.as_ref().and_then(|s| s.controller.as_deref());
            if controller == Some(opts.controller.as_str()) {
                names.push(name);
                let is_default = c
                    .object
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(IS_DEFAULT_CLASS))
                    .is_some_and(|v| v.trim() == "true");
                default |= is_default;
            } else {
                others.push(name);
            }
        }
        if !names.contains(&opts.ingress_class.as_str())
            && !others.contains(&opts.ingress_class.as_str())
        {
            names.push(opts.ingress_class.as_str());
        }
        Self { names, default }
    }
}

// === impl Compiler ===

impl<'s> Compiler<'s> {
    /// Class selection, then age order.
    pub(super) fn select_ingresses(
        &mut self,
        snapshot: &'s Snapshot,
        opts: &CompileOptions,
    ) -> Vec<Selected<'s>> {
        let ours = OurClasses::of(snapshot, opts);
        let mut selected = Vec::new();
        for s in &snapshot.ingresses {
            let ing = &*s.object;
            let key = ObjectKey::of(Kind::Ingress, &ing.metadata);
            let class = self.class_of(ing, &key, s.source.as_ref());
            let is_ours = match class {
                Some(c) => ours.names.contains(&c),
                None => ours.default,
            };
            if !is_ours {
                if class.is_none() {
                    self.diagnostics.push(
                        Diagnostic::info(
                            "ingress-not-selected",
                            format!(
                                "no ingress class and no IngressClass for {} is marked default; set spec.ingressClassName: {} to have this gateway serve it",
                                opts.controller, opts.ingress_class
                            ),
                        )
                        .object(key)
                        .source(s.source.clone()),
                    );
                }
                continue;
            }
            selected.push(Selected {
                key,
                source: s.source.as_ref(),
                ingress: ing,
            });
        }
        selected.sort_by(|a, b| age_order(a, b));
        selected
    }

    /// The class of an Ingress: the legacy annotation, else `spec.ingressClassName`. A
    /// warning when both are set and disagree.
    fn class_of(
        &mut self,
        ing: &'s Ingress,
        key: &ObjectKey,
        source: Option<&SourceRef>,
    ) -> Option<&'s str> {
        let annotated = ing
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(INGRESS_CLASS))
            .map(|v| v.trim())
            .filter(|v| !v.is_empty());
        let spec_class = ing
            .spec
            .as_ref()
            .and_then(|s| s.ingress_class_name.as_deref());
        if let (Some(a), Some(c)) = (annotated, spec_class)
            && a != c
        {
            self.diagnostics.push(
                Diagnostic::warning(
                    "conflicting-ingress-class",
                    format!(
                        "the {INGRESS_CLASS} annotation ({a:?}) and spec.ingressClassName ({c:?}) disagree; the annotation wins, as in ingress-nginx"
                    ),
                )
                .object(key.clone())
                .source(source.cloned())
                .key(INGRESS_CLASS),
            );
        }
        annotated.or(spec_class)
    }
}

/// Oldest first; objects without a creation time count as newest; then namespace/name.
fn age_order(a: &Selected<'_>, b: &Selected<'_>) -> Ordering {
    let ta = a.ingress.metadata.creation_timestamp.as_ref().map(|t| t.0);
    let tb = b.ingress.metadata.creation_timestamp.as_ref().map(|t| t.0);
    match (ta, tb) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
    .then_with(|| a.key.namespace.cmp(&b.key.namespace))
    .then_with(|| a.key.name.cmp(&b.key.name))
}
