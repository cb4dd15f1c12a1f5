//! Completing the authentication of an Ingress into an [`AuthPolicy`]: the users of the
//! basic-auth Secret, and where the external authentication service is.

use std::collections::HashMap;
use std::sync::Arc;

use mse_annotations::{
    AuthSecretType, BasicAuth, ExternalAuth, IngressPolicy, UrlPart, UrlTemplate, UrlVar,
};
use mse_model::Diagnostic;
use mse_model::api::Secret;

use super::checks::annotation_key;
use super::{Compiler, Selected};
use crate::policy::{
    AnswerCache, AuthPolicy, BasicAuthPolicy, EXTERNAL_AUTH_TIMEOUT, ExternalAuthPolicy,
    RoutePolicy, StoredHash, parse_htpasswd, stored,
};
use crate::table::ClusterTarget;

// === impl Compiler ===

impl<'s> Compiler<'s> {
    /// Adds the authentication of an Ingress to the policy of its routes. A missing
    /// Secret was reported by `check_references` and closed the routes already, so it is
    /// not looked at again here.
    pub(super) fn with_auth(
        &mut self,
        sel: &Selected<'s>,
        policy: &IngressPolicy,
        built: Option<RoutePolicy>,
    ) -> Option<RoutePolicy> {
        let basic = policy.auth.basic.as_ref().and_then(|b| self.basic(sel, b));
        let external = policy.auth.external.as_ref().map(|e| self.external(sel, e));
        if basic.is_none() && external.is_none() {
            return built;
        }
        let mut built = built.unwrap_or_default();
        built.auth = Some(Arc::new(AuthPolicy { basic, external }));
        Some(built)
    }

    /// The users of the basic-auth Secret. Lines that cannot be used get a warning and
    /// their users are refused; a Secret without a usable user refuses every request.
    fn basic(&mut self, sel: &Selected<'s>, b: &BasicAuth) -> Option<BasicAuthPolicy> {
        let ns = b.secret.namespace_or(&sel.key.namespace);
        let secret: &Secret = self.secrets.get(&(ns, b.secret.name.as_str())).copied()?;
        let name = format!("{ns}/{}", b.secret.name);
        let (users, problems) = match b.secret_type {
            AuthSecretType::AuthFile => {
                let text = secret_text(secret, "auth").unwrap_or_default();
                parse_htpasswd(&text)
            }
            AuthSecretType::AuthMap => auth_map(secret),
        };
        let key = annotation_key(sel, "auth-secret");
        if !problems.is_empty() {
            self.diag(
                Diagnostic::warning(
                    "invalid-auth-user",
                    format!(
                        "Secret {name}: {}; these users are refused",
                        problems.join("; ")
                    ),
                )
                .value(b.secret.to_string()),
                sel,
                Some(&key),
            );
        }
        if users.is_empty() {
            self.diag(
                Diagnostic::warning(
                    "no-auth-users",
                    format!("Secret {name} has no usable user: every request is refused (401)"),
                )
                .value(b.secret.to_string()),
                sel,
                Some(&key),
            );
        }
        Some(BasicAuthPolicy::new(&b.realm, &name, users))
    }

    /// The external authentication service: a Service of the table when the URL's host
    /// names one (`name.namespace[.svc[.cluster.local]]`), else the host by DNS.
    fn external(&mut self, sel: &Selected<'s>, e: &ExternalAuth) -> ExternalAuthPolicy {
        let target = service_host(&e.url.raw).and_then(|(ns, name, port)| {
            let svc = self.services.get(&(ns, name)).copied()?;
            let spec = svc.spec.as_ref()?;
            if spec.type_.as_deref() == Some("ExternalName") {
                let host = spec.external_name.as_deref().filter(|h| !h.is_empty())?;
                return Some(ClusterTarget::ExternalName {
                    host: host.into(),
                    port,
                });
            }
            let ports = spec.ports.as_deref().unwrap_or(&[]);
            let Some(p) = ports.iter().find(|p| p.port == i32::from(port)) else {
                let key = annotation_key(sel, "auth-url");
                self.diag(
                    Diagnostic::warning(
                        "missing-service-port",
                        format!(
                            "Service {ns}/{name} has no port {port}; the auth-url host is resolved by DNS"
                        ),
                    )
                    .value(e.url.raw.clone()),
                    sel,
                    Some(&key),
                );
                return None;
            };
            let port_name = p.name.as_deref().filter(|n| !n.is_empty());
            let addrs = self.endpoints_for(ns, name, port_name, p.target_port.as_ref(), port);
            Some(ClusterTarget::Endpoints(addrs.into()))
        });
        ExternalAuthPolicy {
            url: e.url.clone(),
            target,
            method: e.method.clone(),
            response_headers: e
                .response_headers
                .iter()
                .filter_map(|h| http::HeaderName::from_bytes(h.as_bytes()).ok())
                .collect(),
            signin: e.signin.as_ref().map(|s| with_rd(s, &e.signin_param)),
            timeout: EXTERNAL_AUTH_TIMEOUT,
            request_redirect: e
                .request_redirect
                .as_deref()
                .and_then(|v| http::HeaderValue::from_str(v).ok()),
            always_set_cookie: e.always_set_cookie,
            cache: e.cache_key.clone().map(|key| AnswerCache {
                key,
                valid: e.cache_duration.clone(),
                scope: sel.key.to_string().into(),
            }),
        }
    }
}

/// `auth-signin` with the parameter ingress-nginx adds when the URL has none (`rd`, or
/// `auth-signin-redirect-param`): where the client comes back to,
/// `$scheme://$host$escaped_request_uri`.
fn with_rd(t: &UrlTemplate, param: &str) -> UrlTemplate {
    let query = t.raw.split_once('?').map(|(_, q)| q);
    let has = |q: &str| {
        q.split('&')
            .any(|kv| kv.split_once('=').map_or(kv, |(k, _)| k) == param)
    };
    if query.is_some_and(has) {
        return t.clone();
    }
    let sep = if query.is_some() { '&' } else { '?' };
    let mut parts = t.parts.clone();
    parts.extend([
        UrlPart::Text(format!("{sep}{param}=")),
        UrlPart::Var(UrlVar::Scheme),
        UrlPart::Text("://".to_owned()),
        UrlPart::Var(UrlVar::Host),
        UrlPart::Var(UrlVar::EscapedRequestUri),
    ]);
    UrlTemplate {
        raw: format!("{}{sep}{param}=$scheme://$host$escaped_request_uri", t.raw),
        parts,
    }
}

/// A data key of a Secret as text.
fn secret_text(secret: &Secret, key: &str) -> Option<String> {
    let data = secret.data.as_ref()?.get(key)?;
    Some(String::from_utf8_lossy(&data.0).into_owned())
}

/// `auth-map`: one data key per user, its value the hash.
fn auth_map(secret: &Secret) -> (HashMap<Box<str>, StoredHash>, Vec<String>) {
    let mut users = HashMap::new();
    let mut problems = Vec::new();
    for (user, value) in secret.data.iter().flatten() {
        let hash = String::from_utf8_lossy(&value.0);
        match stored(user, &hash) {
            Ok(h) => {
                users.insert(user.as_str().into(), h);
            }
            Err(why) => problems.push(format!("user {user:?}: {why}")),
        }
    }
    (users, problems)
}

/// The Service an in-cluster URL names: `(namespace, name, port)` for
/// `http(s)://name.namespace[.svc[.cluster.local]][:port]/...`; the port defaults to the
/// scheme's.
fn service_host(url: &str) -> Option<(&str, &str, u16)> {
    let (rest, default_port) = match url.strip_prefix("http://") {
        Some(r) => (r, 80),
        None => (url.strip_prefix("https://")?, 443),
    };
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.contains(['$', '@', '[']) {
        return None;
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().ok()?),
        None => (authority, default_port),
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    let host = host.strip_suffix(".cluster.local").unwrap_or(host);
    let host = host.strip_suffix(".svc").unwrap_or(host);
    match host.split('.').collect::<Vec<_>>()[..] {
        [name, ns] if !name.is_empty() && !ns.is_empty() => Some((ns, name, port)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::service_host;

    #[test]
    fn service_urls_name_namespace_name_and_port() {
        assert_eq!(
            service_host("http://auth.tools.svc.cluster.local:8080/check"),
            Some(("tools", "auth", 8080))
        );
        assert_eq!(
            service_host("https://auth.tools.svc/x"),
            Some(("tools", "auth", 443))
        );
        assert_eq!(
            service_host("http://auth.tools"),
            Some(("tools", "auth", 80))
        );
        assert_eq!(service_host("http://auth/x"), None);
        assert_eq!(service_host("http://auth.example.com/x"), None);
        assert_eq!(service_host("http://$host/x"), None);
    }
}
