//! The `not-applied` warning for a valid annotation that no registered policy applies
//! (see [`crate::policy::POLICIES`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use mse_annotations::Support;
use mse_model::Diagnostic;

use super::{Compiler, Selected};
use crate::policy;

// === impl Compiler ===

impl<'s> Compiler<'s> {
    /// Says so for every valid annotation whose feature the data plane does not apply yet,
    /// so that nobody mistakes "parsed" for "in effect". Security keys are not listed here:
    /// they close the routes instead (see [`Self::unenforced_security`]).
    pub(super) fn not_applied(
        &mut self,
        sel: &Selected<'s>,
        annotations: &BTreeMap<String, String>,
        reported: &[Arc<str>],
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
                || policy::applies(spec).is_some()
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
