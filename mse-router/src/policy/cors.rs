//! [`CorsPolicy`]: `enable-cors` and the `cors-*` annotations, compiled once per Ingress
//! into a matcher for `Origin` and header values rendered ahead of time, so that a request
//! costs one comparison per allowed origin and a few header copies.
//!
//! Behaviour follows ingress-nginx's CORS template:
//! - An origin matches an entry when scheme, host and port are equal, compared without
//!   regard to ASCII case. `scheme://*.domain` matches exactly one more DNS label in front
//!   of `domain` (ingress-nginx turns `*` into `[A-Za-z0-9-]+`), with the same scheme and
//!   the same port (`https://*.example.com:8443`), or none when the entry has none. Unlike ingress-nginx, whose regex is anchored only at its end, the whole
//!   origin must match.
//! - `*` in the list allows every origin and `Access-Control-Allow-Origin: *` is sent;
//!   otherwise the request's own origin is echoed, with `Vary: Origin`.
//! - A preflight from an allowed origin is answered by the gateway with 204 and
//!   `Access-Control-Allow-Methods`, `-Allow-Headers` and `-Max-Age`.
//!
//! - With `*`, every answer gets the CORS headers, whether or not the request has an
//!   `Origin` (as ingress-nginx adds them to every response); with a list, only answers to
//!   requests whose `Origin` is on it.
//!
//! Where this differs from ingress-nginx, on purpose: a preflight is an `OPTIONS` request with both `Origin` and
//! `Access-Control-Request-Method` (ingress-nginx answers any `OPTIONS` with 204); and
//! answers to actual requests carry only the headers the Fetch standard reads from them
//! (`-Allow-Origin`, `-Allow-Credentials`, `-Expose-Headers`), not the preflight ones.

use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, VARY,
};
use std::sync::Arc;

use http::{HeaderMap, HeaderValue};
use mse_annotations::{Allow, Cors, Group, IngressPolicy, OriginPattern};

use super::{Refused, Registration, RoutePolicy};

/// `enable-cors` and the `cors-*` keys: preflights are answered before any upstream is
/// chosen, and answers get the CORS headers.
pub(crate) const POLICY: Registration = Registration {
    name: "cors",
    groups: &[Group::Cors],
    keys: &[],
    build,
};

fn build(p: &IngressPolicy, policy: &mut RoutePolicy, _refused: &mut Vec<Refused>) {
    policy.cors = p.cors.as_ref().map(|c| Arc::new(CorsPolicy::build(c)));
}

/// The CORS behaviour of one Ingress, ready for the request path.
#[derive(Clone, Debug)]
pub struct CorsPolicy {
    origins: Origins,
    /// `Access-Control-Allow-Methods`.
    allow_methods: HeaderValue,
    /// `Access-Control-Allow-Headers`.
    allow_headers: HeaderValue,
    /// `Access-Control-Expose-Headers`, when the list is not empty.
    expose_headers: Option<HeaderValue>,
    /// `Access-Control-Max-Age`, in seconds.
    max_age: HeaderValue,
    /// Whether `Access-Control-Allow-Credentials: true` is sent.
    allow_credentials: bool,
}

/// Which origins are allowed.
#[derive(Clone, Debug)]
enum Origins {
    /// `*`: any origin, answered with `*`.
    Any,
    /// These only; the request's origin is echoed.
    Only(Box<[OriginRule]>),
}

/// One allowed origin, lower case.
#[derive(Clone, Debug)]
enum OriginRule {
    /// `scheme://host[:port]`.
    Exact(Box<str>),
    /// `scheme://` followed by one label and `.suffix`: `prefix` is `scheme://` and
    /// `suffix` is `.domain`.
    OneLabel { prefix: Box<str>, suffix: Box<str> },
}

/// How an allowed origin is answered (see [`CorsPolicy::allow`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AllowedOrigin {
    /// Every origin is allowed: `Access-Control-Allow-Origin: *`.
    Any,
    /// This origin, echoed as the client sent it, with `Vary: Origin`.
    Echo(HeaderValue),
}

// === impl CorsPolicy ===

impl CorsPolicy {
    /// Compiles parsed CORS annotations.
    pub fn build(c: &Cors) -> Self {
        let origins = match &c.allow_origin {
            Allow::Any => Origins::Any,
            Allow::Only(list) => Origins::Only(list.iter().map(OriginRule::of).collect()),
        };
        let allow_methods = match &c.allow_methods {
            Allow::Any => "*".to_owned(),
            Allow::Only(list) => join(list.iter().map(http::Method::as_str)),
        };
        let allow_headers = match &c.allow_headers {
            Allow::Any => "*".to_owned(),
            Allow::Only(list) => join(list.iter().map(String::as_str)),
        };
        let expose_headers = match &c.expose_headers {
            Allow::Any => Some("*".to_owned()),
            Allow::Only(list) if list.is_empty() => None,
            Allow::Only(list) => Some(join(list.iter().map(String::as_str))),
        };
        Self {
            origins,
            allow_methods: value(&allow_methods),
            allow_headers: value(&allow_headers),
            expose_headers: expose_headers.as_deref().map(value),
            max_age: HeaderValue::from(c.max_age.as_secs()),
            allow_credentials: c.allow_credentials,
        }
    }

    /// Whether a request with this `Origin` gets CORS headers, and which
    /// `Access-Control-Allow-Origin`.
    pub fn allow(&self, origin: &HeaderValue) -> Option<AllowedOrigin> {
        match &self.origins {
            Origins::Any => Some(AllowedOrigin::Any),
            Origins::Only(rules) => {
                let o = origin.to_str().ok()?;
                rules
                    .iter()
                    .any(|r| r.matches(o))
                    .then(|| AllowedOrigin::Echo(origin.clone()))
            }
        }
    }

    /// Whether a request without `Origin` gets CORS headers: only when every origin is
    /// allowed, and then with `Access-Control-Allow-Origin: *`.
    pub fn allow_without_origin(&self) -> Option<AllowedOrigin> {
        matches!(self.origins, Origins::Any).then_some(AllowedOrigin::Any)
    }

    /// Adds the headers of an answer to an actual (not preflight) request from an allowed
    /// origin: `Access-Control-Allow-Origin`, `-Allow-Credentials` and `-Expose-Headers`
    /// replace what the upstream sent; `Origin` is added to `Vary` when the origin is
    /// echoed.
    pub fn apply_response(&self, allowed: &AllowedOrigin, headers: &mut HeaderMap) {
        self.common(allowed, headers);
    }

    /// The headers of the gateway's own 204 answer to a preflight from an allowed origin:
    /// those of [`Self::apply_response`] plus `Access-Control-Allow-Methods`,
    /// `-Allow-Headers` and `-Max-Age`.
    pub fn apply_preflight(&self, allowed: &AllowedOrigin, headers: &mut HeaderMap) {
        self.common(allowed, headers);
        headers.insert(ACCESS_CONTROL_ALLOW_METHODS, self.allow_methods.clone());
        headers.insert(ACCESS_CONTROL_ALLOW_HEADERS, self.allow_headers.clone());
        headers.insert(ACCESS_CONTROL_MAX_AGE, self.max_age.clone());
    }

    fn common(&self, allowed: &AllowedOrigin, headers: &mut HeaderMap) {
        match allowed {
            AllowedOrigin::Any => {
                headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
            }
            AllowedOrigin::Echo(origin) => {
                headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
                add_vary_origin(headers);
            }
        }
        if self.allow_credentials {
            headers.insert(
                ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        } else {
            headers.remove(ACCESS_CONTROL_ALLOW_CREDENTIALS);
        }
        if let Some(expose) = &self.expose_headers {
            headers.insert(ACCESS_CONTROL_EXPOSE_HEADERS, expose.clone());
        }
    }
}

/// Appends `Origin` to `Vary` unless it is there already (or `Vary: *`).
fn add_vary_origin(headers: &mut HeaderMap) {
    let present = headers
        .get_all(VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|t| t == "*" || t.eq_ignore_ascii_case("origin"));
    if !present {
        headers.append(VARY, HeaderValue::from_static("Origin"));
    }
}

fn join<'a>(items: impl Iterator<Item = &'a str>) -> String {
    items.collect::<Vec<_>>().join(", ")
}

/// Methods, header names and numbers are always valid header values; an empty value is
/// the harmless fallback.
fn value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

// === impl OriginRule ===

impl OriginRule {
    fn of(p: &OriginPattern) -> Self {
        match p {
            OriginPattern::Exact(o) => OriginRule::Exact(o.to_ascii_lowercase().into()),
            OriginPattern::Subdomains { scheme, suffix } => OriginRule::OneLabel {
                prefix: format!("{}://", scheme.to_ascii_lowercase()).into(),
                suffix: format!(".{}", suffix.to_ascii_lowercase()).into(),
            },
        }
    }

    fn matches(&self, origin: &str) -> bool {
        match self {
            OriginRule::Exact(o) => origin.eq_ignore_ascii_case(o),
            OriginRule::OneLabel { prefix, suffix } => {
                let (Some(head), Some(tail)) = (
                    origin.get(..prefix.len()),
                    origin
                        .len()
                        .checked_sub(suffix.len())
                        .and_then(|i| origin.get(i..)),
                ) else {
                    return false;
                };
                if !head.eq_ignore_ascii_case(prefix) || !tail.eq_ignore_ascii_case(suffix) {
                    return false;
                }
                let label = origin
                    .get(prefix.len()..origin.len() - suffix.len())
                    .unwrap_or("");
                !label.is_empty()
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn policy(origins: &[OriginPattern]) -> CorsPolicy {
        CorsPolicy::build(&Cors {
            allow_origin: Allow::Only(origins.to_vec()),
            allow_methods: Allow::Only(vec![http::Method::GET, http::Method::POST]),
            allow_headers: Allow::Only(vec!["content-type".into(), "x-a".into()]),
            expose_headers: Allow::Only(Vec::new()),
            allow_credentials: true,
            max_age: Duration::from_secs(600),
        })
    }

    fn allowed(p: &CorsPolicy, origin: &'static str) -> bool {
        p.allow(&HeaderValue::from_static(origin)).is_some()
    }

    #[test]
    fn exact_origins_match_scheme_host_and_port() {
        let p = policy(&[OriginPattern::Exact("https://a.example.com:8443".into())]);
        assert!(allowed(&p, "https://a.example.com:8443"));
        assert!(allowed(&p, "HTTPS://A.Example.com:8443"));
        assert!(!allowed(&p, "https://a.example.com"));
        assert!(!allowed(&p, "http://a.example.com:8443"));
        assert!(!allowed(&p, "https://a.example.com:84430"));
        assert!(!allowed(&p, "https://evil.com/https://a.example.com:8443"));
    }

    #[test]
    fn wildcard_origins_match_one_label() {
        let p = policy(&[OriginPattern::Subdomains {
            scheme: "https".into(),
            suffix: "example.com".into(),
        }]);
        assert!(allowed(&p, "https://a.example.com"));
        assert!(allowed(&p, "https://a-1.Example.COM"));
        assert!(!allowed(&p, "https://example.com"));
        assert!(!allowed(&p, "https://.example.com"));
        assert!(!allowed(&p, "https://a.b.example.com"));
        assert!(!allowed(&p, "http://a.example.com"));
        assert!(!allowed(&p, "https://a.example.com:8443"));
        assert!(!allowed(&p, "https://aexample.com"));
        assert!(!allowed(&p, "https://a.example.org"));
        let p = policy(&[OriginPattern::Subdomains {
            scheme: "https".into(),
            suffix: "example.com:8443".into(),
        }]);
        assert!(allowed(&p, "https://a.example.com:8443"));
        assert!(!allowed(&p, "https://a.example.com"));
        assert!(!allowed(&p, "https://a.example.com:9443"));
    }

    #[test]
    fn values_are_rendered_once() {
        let p = policy(&[OriginPattern::Exact("https://a.example.com".into())]);
        let mut h = HeaderMap::new();
        h.insert(VARY, HeaderValue::from_static("Accept-Encoding"));
        let a = p.allow(&HeaderValue::from_static("https://a.example.com"));
        p.apply_preflight(&a.unwrap(), &mut h);
        assert_eq!(h[ACCESS_CONTROL_ALLOW_ORIGIN], "https://a.example.com");
        assert_eq!(h[ACCESS_CONTROL_ALLOW_METHODS], "GET, POST");
        assert_eq!(h[ACCESS_CONTROL_ALLOW_HEADERS], "content-type, x-a");
        assert_eq!(h[ACCESS_CONTROL_MAX_AGE], "600");
        assert_eq!(h[ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
        assert!(!h.contains_key(ACCESS_CONTROL_EXPOSE_HEADERS));
        let vary: Vec<_> = h.get_all(VARY).iter().collect();
        assert_eq!(vary, ["Accept-Encoding", "Origin"]);
        // Applying twice does not add `Origin` twice.
        let a = p.allow(&HeaderValue::from_static("https://a.example.com"));
        p.apply_response(&a.unwrap(), &mut h);
        assert_eq!(h.get_all(VARY).iter().count(), 2);
    }
}
