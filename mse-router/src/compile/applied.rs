//! The annotation groups the data plane applies, and the `not-applied` warning for a valid
//! annotation outside them.

use std::collections::BTreeMap;
use std::sync::Arc;

use mse_annotations::{Group, IngressPolicy, Support};
use mse_model::Diagnostic;

use super::{Compiler, Selected};
use crate::policy;

/// Annotation groups the data plane applies. Each feature joins this list when its layer
/// lands.
const APPLIED: &[Group] = &[
    Group::Cors,
    Group::Fallback,
    Group::Headers,
    Group::Matching,
    Group::Mirror,
    Group::Redirect,
    Group::Rewrite,
];

// === impl Compiler ===

impl<'s> Compiler<'s> {
    /// Says so for every valid annotation whose feature the data plane does not apply yet,
    /// so that nobody mistakes "parsed" for "in effect". Security keys are not listed here:
    /// they close the routes instead (see [`Self::unenforced_security`]); canary keys have
    /// their own diagnostic.
    pub(super) fn not_applied(
        &mut self,
        sel: &Selected<'s>,
        annotations: &BTreeMap<String, String>,
        reported: &[Arc<str>],
        policy: &IngressPolicy,
    ) {
        for key in annotations.keys() {
            let Some((_, name)) = mse_annotations::split_key(key) else {
                continue;
            };
            let Some(spec) = mse_annotations::spec(name) else {
                continue;
            };
            let parsed = matches!(spec.support, Support::Supported | Support::Different(_));
            if !parsed
                || spec.security
                || spec.group == Group::Canary
                || APPLIED.contains(&spec.group)
                || policy::applied(name, policy)
                || reported.iter().any(|r| **r == **key)
            {
                continue;
            }
            self.diag(
                Diagnostic::warning(
                    "not-applied",
                    "valid, but this gateway build does not apply it yet: requests are served as if it were absent",
                )
                .value(annotations[key].clone()),
                sel,
                Some(key),
            );
        }
    }
}
