//! One Ingress in order: its annotations, whether its routes fail closed, its rules and
//! default backend, the redirects it asks for, and its TLS entries.

use std::sync::Arc;

use mse_annotations::IngressPolicy;
use mse_model::k8s_openapi::api::networking::v1::{IngressRule, IngressSpec};
use mse_model::{Diagnostic, Severity};

use super::custom_headers::{CustomHeaders, with_custom_headers};
use super::parsed::Parsed;
use super::routes::path_match;
use super::{Compiler, PendingCanary, RouteAttrs, Selected};
use crate::host::HostMatch;
use crate::matching::Conditions;
use crate::path::PathMatch;
use crate::policy::RoutePolicy;
use crate::table::Backend;

/// What every route of one (non-canary) Ingress shares.
struct IngressRoutes<'p> {
    policy: &'p IngressPolicy,
    route_policy: Option<Arc<RoutePolicy>>,
    conditions: Option<Arc<Conditions>>,
    /// Why the routes answer 503 instead (a security annotation fails closed).
    closed: Option<Arc<str>>,
    /// `server-alias` hosts: each route is repeated on them.
    aliases: Vec<HostMatch>,
    /// `backend-protocol` and `proxy-ssl-*`, when not plain HTTP/1.1.
    upstream: Option<Arc<crate::policy::UpstreamProtocol>>,
}

impl IngressRoutes<'_> {
    /// The backend a route gets: `resolved`, unless the Ingress fails closed.
    fn backend(&self, resolved: Backend) -> Backend {
        match &self.closed {
            Some(reason) => Backend::Unavailable {
                reason: reason.clone(),
            },
            None => resolved,
        }
    }
}

// === impl Compiler ===

impl<'s> Compiler<'s> {
    pub(super) fn add_ingress(&mut self, sel: &Selected<'s>) {
        // Annotations first: their diagnostics are reported whatever happens next.
        let (policy, parsed) = self.ingress_policy(sel);
        if policy.is_excluded() {
            // `canary` is not a boolean: the parser's error says the Ingress is left out.
            return;
        }
        let Some(spec) = sel.ingress.spec.as_ref() else {
            self.diag(
                Diagnostic::error("empty-ingress", "Ingress has no spec; nothing to route"),
                sel,
                None,
            );
            return;
        };
        if policy.canary.canary().is_some() {
            // Paired with main routes once every main Ingress is in place.
            self.canaries.push(PendingCanary {
                sel: sel.clone(),
                policy,
            });
            return;
        }
        let custom = self.custom_headers(
            sel,
            &policy,
            "the routes of this Ingress answer 503 until it is fixed (fail closed)",
        );
        // The host TLS policy first: a client-certificate conflict with an older Ingress
        // closes this one's routes.
        let mut tls_failed = Vec::new();
        let client = self.client_auth(sel, &policy).unwrap_or_else(|key| {
            tls_failed.push(key);
            None
        });
        tls_failed.extend(self.add_host_tls(sel, &policy, client));
        let upstream = self.upstream_protocol(sel, &policy).unwrap_or_else(|key| {
            tls_failed.push(key);
            None
        });
        let closed = self.closure(sel, &policy, custom.as_ref().err(), tls_failed);
        let shared = IngressRoutes {
            route_policy: self.route_policy(
                sel,
                &policy,
                parsed.as_deref(),
                closed.is_some(),
                custom.unwrap_or_default(),
            ),
            conditions: Conditions::build(&policy.matching).map(Arc::new),
            closed,
            aliases: policy
                .tls
                .aliases
                .iter()
                .filter_map(|a| HostMatch::parse(a).ok())
                .filter(|h| *h != HostMatch::Any)
                .collect(),
            upstream,
            policy: &policy,
        };
        let rules = spec.rules.as_deref().unwrap_or(&[]);
        if rules.is_empty() && spec.default_backend.is_none() {
            self.diag(
                Diagnostic::error(
                    "empty-ingress",
                    "Ingress has neither rules nor spec.defaultBackend; nothing to route",
                ),
                sel,
                None,
            );
        }
        let mut hosts = self.add_rules(sel, rules, &shared);
        for a in &shared.aliases {
            if !hosts.contains(a) {
                hosts.push(a.clone());
            }
        }
        self.add_default_backend(sel, spec, &hosts, &shared);
        self.queue_host_redirects(sel, &hosts, &shared);
        self.add_tls(sel, &shared.aliases);
    }

    /// The parsed annotations of an Ingress, their diagnostics reported, and a
    /// `not-applied` warning for each valid one the data plane does not apply. An
    /// Ingress with the same annotations as one parsed before (in this compile or, through
    /// the cache, an earlier one) shares its result, which is returned too when kept.
    fn ingress_policy(&mut self, sel: &Selected<'s>) -> (Arc<IngressPolicy>, Option<Arc<Parsed>>) {
        let Some(a) = sel.ingress.metadata.annotations.as_ref() else {
            return (Arc::default(), None);
        };
        if let Some(hit) = self.parsed.get(&sel.key.namespace, a) {
            self.diagnostics.extend(hit.diagnostics.iter().map(|d| {
                d.clone()
                    .object(sel.key.clone())
                    .source(sel.source.cloned())
            }));
            return (Arc::clone(&hit.policy), Some(hit));
        }
        let start = self.diagnostics.len();
        let parsed = mse_annotations::parse(&sel.key, sel.source, a);
        // Keys whose value was rejected already say what happens instead.
        let reported: Vec<Arc<str>> = parsed
            .diagnostics
            .iter()
            .filter(|d| d.severity >= Severity::Warning)
            .filter_map(|d| d.origin.key.clone())
            .collect();
        self.diagnostics.extend(parsed.diagnostics);
        self.not_applied(sel, a, &reported);
        let policy = Arc::new(parsed.value);
        let kept = self.parsed.insert(
            &sel.key.namespace,
            a,
            Arc::clone(&policy),
            &self.diagnostics[start..],
        );
        (policy, kept)
    }

    /// Why the routes of this Ingress answer 503, if a security annotation cannot be
    /// honoured (bad value, missing Secret, not enforced yet) or the `custom-headers`
    /// ConfigMap cannot be read (`custom`): they are never served without them; the
    /// diagnostics say why.
    fn closure(
        &mut self,
        sel: &Selected<'s>,
        policy: &IngressPolicy,
        custom: Option<&String>,
        tls_failed: Vec<String>,
    ) -> Option<Arc<str>> {
        let mut failed: Vec<String> = policy.fail_closed.iter().map(|f| f.key.clone()).collect();
        failed.extend(tls_failed);
        failed.extend(self.check_references(sel, policy));
        if failed.is_empty() {
            // Only when nothing else already closes the routes: one reason is enough.
            failed.extend(self.unenforced_security(sel, policy));
        }
        let mut reasons = Vec::new();
        if !failed.is_empty() {
            reasons.push(format!(
                "security annotation {} cannot be honoured",
                failed.join(", ")
            ));
        }
        reasons.extend(custom.cloned());
        if reasons.is_empty() {
            return None;
        }
        self.closed.insert(sel.key.clone());
        Some(format!("{} (fail closed)", reasons.join("; ")).into())
    }

    /// The routes of `spec.rules`; returns the hosts of the rules, in order.
    fn add_rules(
        &mut self,
        sel: &Selected<'s>,
        rules: &[IngressRule],
        shared: &IngressRoutes<'_>,
    ) -> Vec<HostMatch> {
        let mut rule_hosts: Vec<HostMatch> = Vec::new();
        for (ri, rule) in rules.iter().enumerate() {
            let field = format!("spec.rules[{ri}].host");
            let host = match HostMatch::parse(rule.host.as_deref().unwrap_or("")) {
                Ok(h) => h,
                Err(e) => {
                    self.diag(
                        Diagnostic::error("invalid-host", format!("{e}; this rule is left out"))
                            .value(rule.host.clone().unwrap_or_default()),
                        sel,
                        Some(&field),
                    );
                    continue;
                }
            };
            if !rule_hosts.contains(&host) {
                rule_hosts.push(host.clone());
            }
            // A host-only rule is legal (it can carry TLS); routes come from the default
            // backend, if any.
            if let Some(http) = rule.http.as_ref() {
                for (pi, p) in http.paths.iter().enumerate() {
                    let field = format!("spec.rules[{ri}].http.paths[{pi}]");
                    self.add_path(sel, &host, p, field, shared);
                }
            }
        }
        rule_hosts
    }

    /// The route of one `paths[]` entry, on its rule's host and on each alias host.
    fn add_path(
        &mut self,
        sel: &Selected<'s>,
        host: &HostMatch,
        p: &mse_model::k8s_openapi::api::networking::v1::HTTPIngressPath,
        field: String,
        shared: &IngressRoutes<'_>,
    ) {
        let path = match path_match(
            shared.policy,
            p.path.as_deref(),
            &p.path_type,
            &mut self.regexes,
        ) {
            Ok(path) => path,
            Err(e) => {
                let (d, suffix) = *e;
                self.diag(d, sel, Some(&format!("{field}{suffix}")));
                return;
            }
        };
        let resolved = self.resolve_backend(&p.backend, sel, &format!("{field}.backend"));
        let resolved = self.with_variant(resolved, sel, shared.policy);
        let resolved = self.with_protocol(resolved, shared.upstream.as_ref());
        let backend = shared.backend(resolved);
        // `server-alias`: the same route on each alias host.
        let hosts = std::iter::once(host).chain(shared.aliases.iter().filter(|a| *a != host));
        for h in hosts {
            let attrs = RouteAttrs {
                ignore_case: shared.policy.matching.ignore_path_case,
                conditions: shared.conditions.clone(),
                ..RouteAttrs::new(backend.clone(), shared.route_policy.clone())
            };
            self.insert_route(
                sel,
                h.clone(),
                path.clone(),
                false,
                field.as_str().into(),
                attrs,
            );
        }
    }

    /// `spec.defaultBackend` serves requests no rule of this Ingress matched: on the
    /// any-host pattern, and on each of this Ingress's own hosts.
    fn add_default_backend(
        &mut self,
        sel: &Selected<'s>,
        spec: &IngressSpec,
        rule_hosts: &[HostMatch],
        shared: &IngressRoutes<'_>,
    ) {
        let Some(db) = spec.default_backend.as_ref() else {
            return;
        };
        let field = "spec.defaultBackend";
        let resolved = self.resolve_backend(db, sel, field);
        let resolved = self.with_variant(resolved, sel, shared.policy);
        let resolved = self.with_protocol(resolved, shared.upstream.as_ref());
        let backend = shared.backend(resolved);
        let mut hosts = vec![HostMatch::Any];
        hosts.extend(rule_hosts.iter().filter(|h| **h != HostMatch::Any).cloned());
        for h in hosts {
            self.insert_route(
                sel,
                h,
                PathMatch::Prefix("".into()),
                true,
                field.into(),
                RouteAttrs::new(backend.clone(), shared.route_policy.clone()),
            );
        }
    }

    /// `app-root` and `from-to-www-redirect` wait until every rule is known (see
    /// [`Self::add_host_redirects`]).
    fn queue_host_redirects(
        &mut self,
        sel: &Selected<'s>,
        rule_hosts: &[HostMatch],
        shared: &IngressRoutes<'_>,
    ) {
        if let Some(p) = shared
            .route_policy
            .as_ref()
            .filter(|p| p.app_root.is_some())
        {
            for h in rule_hosts {
                self.app_roots
                    .push((sel.key.clone(), h.clone(), Arc::clone(p)));
            }
        }
        if !shared.policy.redirect.from_to_www || shared.closed.is_some() {
            return;
        }
        for h in rule_hosts {
            let HostMatch::Exact(name) = h else { continue };
            let other = match name.strip_prefix("www.") {
                Some(bare) => bare.to_owned(),
                None => format!("www.{name}"),
            };
            if let Ok(other @ HostMatch::Exact(_)) = HostMatch::parse(&other) {
                self.www.push((sel.key.clone(), other, name.clone()));
            }
        }
    }

    /// The redirects, header edits and rewrites of an Ingress, built once for all of its
    /// routes, with the `custom-headers` entries. Routes closed by a security annotation
    /// get none: they answer 503 whatever else is asked. Header edits that cannot apply
    /// get a warning.
    fn route_policy(
        &mut self,
        sel: &Selected<'s>,
        policy: &IngressPolicy,
        parsed: Option<&Parsed>,
        closed: bool,
        custom: CustomHeaders,
    ) -> Option<Arc<RoutePolicy>> {
        if closed {
            return RoutePolicy::ssl_only(policy).map(Arc::new);
        }
        // Without custom headers, fallback, mirror and auth, the policy is built from the
        // annotations alone (the steps below leave it as it is): the Ingresses that share
        // the parsed annotations share it too. What the checks say is said per Ingress.
        let standalone = custom.is_empty()
            && policy.fallback.default_backend.is_none()
            && policy.fallback.custom_http_errors.is_empty()
            && policy.mirror.is_none()
            && policy.auth.basic.is_none()
            && policy.auth.external.is_none();
        if standalone && let Some(parsed) = parsed {
            let (built, refused) = parsed.route.get_or_init(|| {
                let (built, refused) = RoutePolicy::build(policy);
                (built.map(Arc::new), refused)
            });
            self.report_refused(sel, refused.clone());
            self.per_replica_limits(sel, built.as_deref());
            return built.clone();
        }
        let (built, refused) = RoutePolicy::build(policy);
        let built = with_custom_headers(built, custom);
        let built = self.with_fallback(sel, policy, built);
        let built = self.with_mirror(sel, policy, built);
        let built = self.with_auth(sel, policy, built);
        self.report_refused(sel, refused);
        self.per_replica_limits(sel, built.as_ref());
        built.map(Arc::new)
    }
}
