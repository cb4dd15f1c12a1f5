//! `custom-headers`: the ConfigMap it names, read from the snapshot, becomes response
//! headers set on the Ingress's answers. As in ingress-nginx, every header must be listed
//! in the gateway-wide `global-allowed-response-headers` (empty by default): otherwise the
//! Ingress's routes answer 503.

use http::{HeaderName, HeaderValue};
use mse_annotations::IngressPolicy;
use mse_model::Diagnostic;

use super::checks::annotation_key;
use super::{Compiler, Selected};
use crate::policy::{RoutePolicy, protected_header};

/// The headers of a resolved `custom-headers` ConfigMap, in the order of its keys.
pub(super) type CustomHeaders = Vec<(HeaderName, HeaderValue)>;

// === impl Compiler ===

impl<'s> Compiler<'s> {
    /// The response headers `custom-headers` sets (none without the key), or why they
    /// cannot be set: the ConfigMap is missing, in another namespace than the Ingress's,
    /// or sets a header `global-allowed-response-headers` does not list. That is an error
    /// naming the ConfigMap, `consequence` saying what happens to the Ingress's traffic
    /// meanwhile. An entry that is no valid header is left out with a warning.
    pub(super) fn custom_headers(
        &mut self,
        sel: &Selected<'s>,
        policy: &IngressPolicy,
        consequence: &str,
    ) -> Result<CustomHeaders, String> {
        let Some(r) = &policy.headers.custom_headers else {
            return Ok(Vec::new());
        };
        let key = annotation_key(sel, "custom-headers");
        let own: &str = &sel.key.namespace;
        let ns = r.namespace_or(own);
        let problem = if ns != own {
            Some((
                "cross-namespace-config-map",
                format!(
                    "ConfigMap {ns}/{} is in another namespace than the Ingress ({own}); custom-headers reads ConfigMaps only from the Ingress's own namespace, and this gateway has no setting to allow others",
                    r.name
                ),
            ))
        } else if !self.config_maps.contains_key(&(ns, r.name.as_str())) {
            Some((
                "missing-config-map",
                format!("ConfigMap {ns}/{} not found", r.name),
            ))
        } else {
            None
        };
        if let Some((code, what)) = problem {
            self.diag(
                Diagnostic::error(code, format!("{what}; {consequence}")).value(r.to_string()),
                sel,
                Some(&key),
            );
            return Err(format!(
                "custom-headers ConfigMap {ns}/{} cannot be read",
                r.name
            ));
        }
        let data = self
            .config_maps
            .get(&(ns, r.name.as_str()))
            .and_then(|cm| cm.data.as_ref());
        let mut headers = Vec::new();
        let mut invalid = Vec::new();
        for (name, value) in data.into_iter().flatten() {
            let lower = name.to_ascii_lowercase();
            let why = if let Some(why) = protected_header(&lower) {
                why
            } else {
                match (
                    HeaderName::from_bytes(name.as_bytes()),
                    HeaderValue::from_str(value),
                ) {
                    (Ok(n), Ok(v)) => {
                        headers.push((n, v));
                        continue;
                    }
                    (Err(_), _) => format!("{name:?} is not a valid header name"),
                    (_, Err(_)) => format!("the value of {name} is not a valid header value"),
                }
            };
            invalid.push((name, value, why));
        }
        let allowed = &self.global.allowed_response_headers;
        let refused: Vec<&str> = headers
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| !allowed.iter().any(|a| a == n))
            .collect();
        if !refused.is_empty() {
            let list = if allowed.is_empty() {
                "which is empty".to_owned()
            } else {
                format!("which lists {}", allowed.join(", "))
            };
            self.diag(
                Diagnostic::error(
                    "header-not-allowed",
                    format!(
                        "ConfigMap {ns}/{} sets {} that global-allowed-response-headers of the global configuration does not allow ({list}); {consequence}",
                        r.name,
                        refused.join(", "),
                    ),
                )
                .value(r.to_string()),
                sel,
                Some(&key),
            );
            return Err(format!(
                "custom-headers ConfigMap {ns}/{} sets a header the global configuration does not allow",
                r.name
            ));
        }
        for (name, value, why) in invalid {
            self.diag(
                Diagnostic::warning(
                    "invalid-custom-header",
                    format!(
                        "entry {name:?} of ConfigMap {ns}/{}: {why}; this header is left out",
                        r.name
                    ),
                )
                .value(format!("{name}: {value}")),
                sel,
                Some(&key),
            );
        }
        Ok(headers)
    }
}

/// `built` with `headers` set on its answers. They go before `response-header-control-
/// update`, so that the Ingress's own edit of the same header wins.
pub(super) fn with_custom_headers(
    built: Option<RoutePolicy>,
    headers: CustomHeaders,
) -> Option<RoutePolicy> {
    if headers.is_empty() {
        return built;
    }
    let mut built = built.unwrap_or_default();
    let update = &mut built.response_headers.update;
    let mut merged = headers;
    merged.append(update);
    merged.shrink_to_fit();
    *update = merged;
    Some(built)
}
