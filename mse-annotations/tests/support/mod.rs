//! Shared helpers for the integration tests.

use std::collections::BTreeMap;

use mse_annotations::{IngressPolicy, Parsed, parse};
use mse_model::{Diagnostic, Kind, ObjectKey, Severity};

/// The object every test parses for.
pub(crate) fn object() -> ObjectKey {
    ObjectKey::new(Kind::Ingress, "shop", "web")
}

/// A map from `(key, value)` pairs; keys without `/` get the nginx prefix.
pub(crate) fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| {
            let k = if k.contains('/') {
                (*k).to_owned()
            } else {
                format!("nginx.ingress.kubernetes.io/{k}")
            };
            (k, (*v).to_owned())
        })
        .collect()
}

/// Parses `pairs` (see [`map`]).
pub(crate) fn run(pairs: &[(&str, &str)]) -> Parsed<IngressPolicy> {
    parse(&object(), None, &map(pairs))
}

/// The diagnostics as `(severity, code, key)` triples.
pub(crate) fn codes(d: &[Diagnostic]) -> Vec<(Severity, &'static str, String)> {
    d.iter()
        .map(|d| {
            (
                d.severity,
                d.code,
                d.origin.key.as_deref().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// Whether no diagnostic is a warning or an error.
pub(crate) fn clean(p: &Parsed<IngressPolicy>) -> bool {
    p.diagnostics.iter().all(|d| d.severity == Severity::Info)
}
