//! Diagnostics about what an Ingress names or asks for: missing Secrets and Services,
//! header edits that cannot apply, security annotations no policy enforces.

use mse_annotations::{
    AuthSecretType, IngressPolicy, Mirror, MirrorTarget, ObjectRef, ServiceRef, Support,
};
use mse_model::Diagnostic;

use super::{Compiler, Selected};
use crate::policy;

/// The key an annotation is given under on this Ingress (any prefix), or its name with
/// the first prefix when it is not there.
pub(super) fn annotation_key(sel: &Selected<'_>, name: &str) -> String {
    sel.ingress
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| mse_annotations::lookup(a, name))
        .map_or_else(
            || format!("{}{name}", mse_annotations::PREFIXES[0]),
            |f| f.key.to_owned(),
        )
}

// === impl Compiler ===

impl<'s> Compiler<'s> {
    /// Checks the Secrets and Services that annotations name. A missing or incomplete
    /// Secret of a security annotation is an error, and its key is returned so that the
    /// Ingress fails closed; a missing fallback or mirror Service is a warning.
    pub(super) fn check_references(
        &mut self,
        sel: &Selected<'s>,
        policy: &IngressPolicy,
    ) -> Vec<String> {
        let failed = self.check_secrets(sel, policy);
        self.check_services(sel, policy);
        failed
    }

    /// The Secrets of security annotations; returns the keys whose Secret is missing or
    /// incomplete.
    fn check_secrets(&mut self, sel: &Selected<'s>, policy: &IngressPolicy) -> Vec<String> {
        let mut secrets: Vec<(&str, &ObjectRef, Option<&str>)> = Vec::new();
        if let Some(b) = &policy.auth.basic {
            let data = (b.secret_type == AuthSecretType::AuthFile).then_some("auth");
            secrets.push(("auth-secret", &b.secret, data));
        }
        if let Some(ca) = &policy.tls.client_ca {
            secrets.push(("auth-tls-secret", ca, Some("ca.crt")));
        }
        let mut failed = Vec::new();
        for (name, r, data_key) in secrets {
            let ns = r.namespace_or(&sel.key.namespace).to_owned();
            let found = self.secrets.get(&(ns.as_str(), r.name.as_str())).copied();
            let problem = match found {
                None => Some((
                    "missing-secret",
                    format!("Secret {ns}/{} not found", r.name),
                )),
                Some(secret) => data_key
                    .filter(|k| !secret.data.as_ref().is_some_and(|d| d.contains_key(*k)))
                    .map(|k| {
                        (
                            "invalid-secret",
                            format!("Secret {ns}/{} has no {k} key", r.name),
                        )
                    }),
            };
            if let Some((code, what)) = problem {
                let key = annotation_key(sel, name);
                self.diag(
                    Diagnostic::error(
                        code,
                        format!("{what}; security annotations fail closed: the routes of this Ingress answer 503 until it is fixed"),
                    )
                    .value(r.to_string()),
                    sel,
                    Some(&key),
                );
                failed.push(key);
            }
        }
        failed
    }

    /// The Services of `default-backend` and `mirror-target-service`: a warning when one
    /// is missing.
    fn check_services(&mut self, sel: &Selected<'s>, policy: &IngressPolicy) {
        let mut services: Vec<(&str, &ServiceRef)> = Vec::new();
        if let Some(fb) = &policy.fallback.default_backend {
            services.push(("default-backend", fb));
        }
        if let Some(Mirror {
            target: MirrorTarget::Service(m),
            ..
        }) = &policy.mirror
        {
            services.push(("mirror-target-service", m));
        }
        for (name, r) in services {
            let ns = r.service.namespace_or(&sel.key.namespace).to_owned();
            if !self
                .services
                .contains_key(&(ns.as_str(), r.service.name.as_str()))
            {
                let key = annotation_key(sel, name);
                self.diag(
                    Diagnostic::warning(
                        "missing-service",
                        format!(
                            "Service {ns}/{} not found; {name} has no effect until it exists",
                            r.service.name
                        ),
                    )
                    .value(r.to_string()),
                    sel,
                    Some(&key),
                );
            }
        }
    }

    /// `rate-limit` and `concurrency-limit` without a Redis to share them (no `redis-url`):
    /// each replica enforces them on its own, which a warning per key says.
    pub(super) fn per_replica_limits(
        &mut self,
        sel: &Selected<'s>,
        built: Option<&policy::RoutePolicy>,
    ) {
        if self.global.redis_url.is_some() {
            return;
        }
        let Some(shared) = built.and_then(|p| p.shared_limits.as_deref()) else {
            return;
        };
        for (name, limit) in shared.keys() {
            let key = annotation_key(sel, name);
            let what = if name == "rate-limit" {
                "requests per second"
            } else {
                "requests in flight"
            };
            self.diag(
                Diagnostic::warning(
                    "limit-per-replica",
                    format!(
                        "no Redis is configured (--redis-url or the redis-url global key): enforced per replica, each gateway replica admits up to {limit} {what} on its own"
                    ),
                )
                .value(limit.to_string()),
                sel,
                Some(&key),
            );
        }
    }

    /// A warning for each header edit that cannot apply.
    pub(super) fn report_refused(&mut self, sel: &Selected<'s>, refused: Vec<policy::Refused>) {
        for (name, why) in refused {
            let key = sel
                .ingress
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| mse_annotations::lookup(a, name))
                .map(|f| f.key.to_owned());
            self.diag(
                Diagnostic::warning("ignored-annotation", why),
                sel,
                key.as_deref(),
            );
        }
    }

    /// Security annotations that parse but that no registered policy enforces (see
    /// [`crate::policy::POLICIES`]; a registry test keeps the list, empty today). Serving
    /// such routes would serve them open, so they fail closed like an invalid value
    /// would: 503, with an Error naming the annotation. (`proxy-ssl-secret` is read by
    /// the upstream protocol's own compile step.)
    pub(super) fn unenforced_security(
        &mut self,
        sel: &Selected<'s>,
        policy: &IngressPolicy,
    ) -> Vec<String> {
        let Some(annotations) = sel.ingress.metadata.annotations.as_ref() else {
            return Vec::new();
        };
        let mut keys = Vec::new();
        for key in annotations.keys() {
            let Some(spec) =
                mse_annotations::split_key(key).and_then(|(_, n)| mse_annotations::spec(n))
            else {
                continue;
            };
            let parsed = matches!(spec.support, Support::Supported | Support::Different(_));
            if !parsed
                || !spec.security
                || policy::applies(spec).is_some()
                || policy.fail_closed.iter().any(|f| f.key == *key)
            {
                continue;
            }
            self.diag(
                Diagnostic::error(
                    "security-not-enforced",
                    "this gateway build parses but does not enforce this security annotation; \
                     the Ingress's routes answer 503 instead of being served without it",
                ),
                sel,
                Some(key),
            );
            keys.push(key.clone());
        }
        keys
    }
}
