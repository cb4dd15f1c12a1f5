//! Canary Ingresses: paired with main routes once every main Ingress is in place.

use std::collections::BTreeMap;
use std::sync::Arc;

use mse_annotations::Group;
use mse_model::Diagnostic;

use super::routes::path_match;
use super::{Compiler, Selected};
use crate::canary::{Canaries, CanaryVersion};
use crate::host::HostMatch;
use crate::matching::Conditions;
use crate::path::PathMatch;
use crate::policy::{HeaderOps, RoutePolicy};
use crate::table::{Backend, ClusterTarget, RouteId};

impl<'s> Compiler<'s> {
    /// Pairs each canary Ingress's paths with the main route of the same route key (host,
    /// path type, path, `ignore-path-case` and match conditions; namespaces may differ), in
    /// age order. A canary path without a main route gets a warning: it would get no
    /// traffic. The canary's backend is resolved like any other; the policy is the main
    /// route's with the canary's own header control, as Higress does.
    pub(super) fn apply_canaries(&mut self) {
        let mut by_route: BTreeMap<RouteId, Vec<CanaryVersion>> = BTreeMap::new();
        for pc in std::mem::take(&mut self.canaries) {
            let sel = &pc.sel;
            let Some(canary) = pc.policy.canary.canary() else {
                continue;
            };
            let (own, refused) = RoutePolicy::build(&pc.policy);
            self.report_refused(sel, refused);
            self.note_inherited(sel);
            let conditions = Conditions::build(&pc.policy.matching);
            let cond_key = conditions.as_ref().map(Conditions::key);
            let ignore_case = pc.policy.matching.ignore_path_case;
            let spec = sel.ingress.spec.as_ref();
            let rules = spec.and_then(|s| s.rules.as_deref()).unwrap_or(&[]);
            if rules.is_empty() {
                self.diag(
                    Diagnostic::warning(
                        "canary-without-main",
                        "this canary has no rules to pair with a main Ingress (its defaultBackend is not used), so it gets no traffic",
                    ),
                    sel,
                    None,
                );
            }
            for (ri, rule) in rules.iter().enumerate() {
                let Ok(host) = HostMatch::parse(rule.host.as_deref().unwrap_or("")) else {
                    continue;
                };
                for (pi, p) in rule.http.iter().flat_map(|h| h.paths.iter()).enumerate() {
                    let field = format!("spec.rules[{ri}].http.paths[{pi}]");
                    // Paths the main routes left out (with a diagnostic) pair with nothing.
                    let Ok(path) = path_match(&pc.policy, p.path.as_deref(), &p.path_type) else {
                        continue;
                    };
                    let ci = ignore_case && !matches!(path, PathMatch::Regex(_));
                    let main = self.find_route(&host, &path, ci, cond_key);
                    let Some(main) = main else {
                        let key = match cond_key {
                            Some(k) => format!("host {host}, path {path} and conditions {k}"),
                            None => format!("host {host} and path {path}"),
                        };
                        self.diag(
                            Diagnostic::warning(
                                "canary-without-main",
                                format!(
                                    "this canary's {key} pair with no main Ingress (no non-canary Ingress serves them), so it gets no traffic"
                                ),
                            ),
                            sel,
                            Some(&field),
                        );
                        continue;
                    };
                    let main_route = &self.routes[main.0 as usize];
                    if self.closed.contains(&main_route.ingress) {
                        let d = Diagnostic::warning(
                            "canary-main-closed",
                            format!(
                                "the main {} answers 503 (a security annotation fails closed), so this canary gets no traffic either",
                                main_route.ingress
                            ),
                        );
                        self.diag(d, sel, Some(&field));
                        continue;
                    }
                    let policy = canary_policy(main_route.policy.as_deref(), own.as_ref());
                    let backend =
                        self.resolve_backend(&p.backend, sel, &format!("{field}.backend"));
                    let ready = match &backend {
                        Backend::Cluster(c) => match &self.clusters[c.0 as usize].target {
                            ClusterTarget::Endpoints(a) => !a.is_empty(),
                            ClusterTarget::ExternalName { .. } => true,
                        },
                        Backend::Unavailable { .. } => false,
                    };
                    by_route.entry(main).or_default().push(CanaryVersion::new(
                        sel.key.clone(),
                        field.into(),
                        backend,
                        ready,
                        policy,
                        canary,
                    ));
                }
            }
        }
        for (id, versions) in by_route {
            self.routes[id.0 as usize].canary = Some(Box::new(Canaries::new(versions)));
        }
    }

    /// A note for each route-level annotation of a canary Ingress that the canary takes
    /// from its main route instead (Higress and ingress-nginx alike).
    pub(super) fn note_inherited(&mut self, sel: &Selected<'s>) {
        const INHERITED: &[Group] = &[
            Group::Rewrite,
            Group::Redirect,
            Group::Cors,
            Group::Fallback,
            Group::Mirror,
        ];
        let Some(annotations) = sel.ingress.metadata.annotations.as_ref() else {
            return;
        };
        for key in annotations.keys() {
            let Some((_, name)) = mse_annotations::split_key(key) else {
                continue;
            };
            // These decide the route key the canary pairs by, so they do count.
            if matches!(name, "use-regex" | "full-path-regex") {
                continue;
            }
            if mse_annotations::spec(name).is_some_and(|s| INHERITED.contains(&s.group)) {
                self.diag(
                    Diagnostic::info(
                        "canary-inherits",
                        "a canary takes this from its main route; the value here is not used",
                    )
                    .value(annotations[key].clone()),
                    sel,
                    Some(key),
                );
            }
        }
    }
}

/// The main route's policy with the canary's own header control (Higress).
fn canary_policy(
    main: Option<&RoutePolicy>,
    own: Option<&RoutePolicy>,
) -> Option<Arc<RoutePolicy>> {
    let mut p = main.cloned().unwrap_or_default();
    match own {
        Some(own) => {
            p.request_headers = own.request_headers.clone();
            p.response_headers = own.response_headers.clone();
        }
        None => {
            p.request_headers = HeaderOps::default();
            p.response_headers = HeaderOps::default();
        }
    }
    (!p.is_empty()).then(|| Arc::new(p))
}
