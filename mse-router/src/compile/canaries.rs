//! Canary Ingresses: paired with main routes once every main Ingress is in place.

use std::collections::BTreeMap;
use std::sync::Arc;

use mse_annotations::{Canary, Group, IngressPolicy};
use mse_model::Diagnostic;
use mse_model::k8s_openapi::api::networking::v1::HTTPIngressPath;

use super::custom_headers::with_custom_headers;
use super::routes::path_match;
use super::{Compiler, PendingCanary, Selected};
use crate::canary::{Canaries, CanaryVersion};
use crate::host::HostMatch;
use crate::matching::Conditions;
use crate::path::PathMatch;
use crate::policy::{HeaderOps, RoutePolicy};
use crate::table::{Backend, ClusterTarget, RouteId};

/// What every path of one canary Ingress shares.
struct CanaryShared<'p> {
    policy: &'p IngressPolicy,
    /// The canary's own route policy (its header control is what it keeps).
    own: Option<RoutePolicy>,
    cond_key: Option<&'p str>,
    canary: &'p Canary,
    /// The canary's own `backend-protocol` and `proxy-ssl-*` (Service-scope: they apply
    /// to its own Service).
    upstream: Option<Arc<crate::policy::UpstreamProtocol>>,
}

// === impl Compiler ===

impl<'s> Compiler<'s> {
    /// Pairs each canary Ingress's paths with the main route of the same route key (host,
    /// path type, path, `ignore-path-case` and match conditions; namespaces may differ), in
    /// age order. A canary path without a main route gets a warning: it would get no
    /// traffic. The canary's backend is resolved like any other; the policy is the main
    /// route's with the canary's own header control, as Higress does.
    pub(super) fn apply_canaries(&mut self) {
        let mut by_route: BTreeMap<RouteId, Vec<CanaryVersion>> = BTreeMap::new();
        for pc in std::mem::take(&mut self.canaries) {
            self.pair_canary(&pc, &mut by_route);
        }
        for (id, versions) in by_route {
            self.routes[id.0 as usize].canary = Some(Box::new(Canaries::new(versions)));
        }
    }

    /// The versions one canary Ingress adds to main routes.
    fn pair_canary(
        &mut self,
        pc: &PendingCanary<'s>,
        by_route: &mut BTreeMap<RouteId, Vec<CanaryVersion>>,
    ) {
        let sel = &pc.sel;
        let Some(canary) = pc.policy.canary.canary() else {
            return;
        };
        // A canary whose custom-headers cannot be read is not paired: its requests stay
        // on the main routes rather than be answered without the headers.
        let Ok(custom) = self.custom_headers(
            sel,
            &pc.policy,
            "this canary is not paired and gets no traffic until it is fixed",
        ) else {
            return;
        };
        // A canary whose upstream TLS cannot be set up is not paired either: its requests
        // stay on the main routes rather than reach its Service without it.
        let Ok(upstream) = self.upstream_protocol(sel, &pc.policy) else {
            return;
        };
        let (own, refused) = RoutePolicy::build(&pc.policy);
        let own = with_custom_headers(own, custom);
        self.report_refused(sel, refused);
        self.note_inherited(sel);
        let conditions = Conditions::build(&pc.policy.matching);
        let shared = CanaryShared {
            policy: &pc.policy,
            own,
            cond_key: conditions.as_ref().map(Conditions::key),
            canary,
            upstream,
        };
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
                if let Some((main, version)) = self.pair_path(sel, &host, p, field, &shared) {
                    by_route.entry(main).or_default().push(version);
                }
            }
        }
    }

    /// One canary path: the main route it pairs with and the version it adds there, or a
    /// warning saying why it gets no traffic.
    fn pair_path(
        &mut self,
        sel: &Selected<'s>,
        host: &HostMatch,
        p: &HTTPIngressPath,
        field: String,
        shared: &CanaryShared<'_>,
    ) -> Option<(RouteId, CanaryVersion)> {
        // Paths the main routes left out (with a diagnostic) pair with nothing.
        let path = path_match(
            shared.policy,
            p.path.as_deref(),
            &p.path_type,
            &mut self.regexes,
        )
        .ok()?;
        let ci = shared.policy.matching.ignore_path_case && !matches!(path, PathMatch::Regex(_));
        let Some(main) = self.find_route(host, &path, ci, shared.cond_key) else {
            let key = match shared.cond_key {
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
            return None;
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
            return None;
        }
        let policy = canary_policy(main_route.policy.as_deref(), shared.own.as_ref());
        let backend = self.resolve_backend(&p.backend, sel, &format!("{field}.backend"));
        let backend = self.with_variant(backend, sel, shared.policy);
        let backend = self.with_protocol(backend, shared.upstream.as_ref());
        let ready = match &backend {
            Backend::Cluster(c) => match &self.clusters[c.0 as usize].target {
                ClusterTarget::Endpoints(a) => !a.is_empty(),
                ClusterTarget::ExternalName { .. } => true,
            },
            Backend::Unavailable { .. } => false,
        };
        let version = CanaryVersion::new(
            sel.key.clone(),
            field.into(),
            backend,
            ready,
            policy,
            shared.canary,
        );
        Some((main, version))
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
            // The access phase checks the main route's IP lists before the canary is
            // chosen: they guard the canary's traffic too.
            Group::AccessControl,
            Group::Auth,
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

/// The main route's policy with the canary's own header control (Higress) and its own
/// load balancing, which is Service-scope and applies to the canary's Service.
fn canary_policy(
    main: Option<&RoutePolicy>,
    own: Option<&RoutePolicy>,
) -> Option<Arc<RoutePolicy>> {
    let mut p = main.cloned().unwrap_or_default();
    match own {
        Some(own) => {
            p.request_headers = own.request_headers.clone();
            p.response_headers = own.response_headers.clone();
            p.balance = own.balance.clone();
        }
        None => {
            p.request_headers = HeaderOps::default();
            p.response_headers = HeaderOps::default();
            p.balance = None;
        }
    }
    (!p.is_empty()).then(|| Arc::new(p))
}
