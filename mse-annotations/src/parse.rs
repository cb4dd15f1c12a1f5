//! [`parse`]: the annotations of one Ingress in, a typed [`IngressPolicy`] and every
//! diagnostic out.

use std::collections::BTreeMap;

use mse_model::{Diagnostic, ObjectKey, SourceRef};
use serde::Serialize;

use crate::cx::Cx;
use crate::family;
use crate::family::{
    AccessControl, Auth, BackendPolicy, CanaryState, Cors, Fallback, HeaderControl, Limits,
    MatchRules, Mirror, ProxyRedirect, Redirect, Retry, Rewrite, Timeouts, TlsPolicy,
};

/// A value together with the diagnostics found while producing it.
#[derive(Clone, Debug, Default)]
pub struct Parsed<T> {
    /// The value; defaults stand in for everything that was invalid.
    pub value: T,
    /// Every problem found, in a stable order.
    pub diagnostics: Vec<Diagnostic>,
}

/// Gateway settings that change how annotations are read.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ParseOptions {
    /// Whether a Secret reference may name another namespace (`other/name`). Off by
    /// default: such a reference is an error and, for security keys, fails closed.
    pub allow_cross_namespace_secrets: bool,
}

impl ParseOptions {
    /// Sets [`ParseOptions::allow_cross_namespace_secrets`].
    #[must_use]
    pub fn with_cross_namespace_secrets(mut self, allow: bool) -> Self {
        self.allow_cross_namespace_secrets = allow;
        self
    }
}

/// A security annotation that could not be honoured: the Ingress's routes must answer 503
/// rather than be served without the protection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FailClosed {
    /// The annotation, with prefix.
    pub key: String,
    /// Why, in a few words.
    pub reason: String,
}

/// Everything the annotations of one Ingress ask for, typed. Each field holds the effective
/// setting: the value given, or the default where the key is absent or invalid.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct IngressPolicy {
    /// Whether the Ingress is a canary, and its rules.
    pub canary: CanaryState,
    /// CORS, when `enable-cors` is true.
    pub cors: Option<Cors>,
    /// Rewrites and regex paths.
    pub rewrite: Rewrite,
    /// Redirects.
    pub redirect: Redirect,
    /// Upstream protocol, upstream TLS, load balancing (Service scope).
    pub backend: BackendPolicy,
    /// Client-facing TLS and aliases (host scope).
    pub tls: TlsPolicy,
    /// IP allow and deny lists.
    pub access: AccessControl,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// Retries.
    pub retry: Retry,
    /// Rate, connection and body-size limits.
    pub limits: Limits,
    /// Fallback service and error pages.
    pub fallback: Fallback,
    /// Traffic mirroring.
    pub mirror: Option<Mirror>,
    /// Request and response header edits.
    pub headers: HeaderControl,
    /// Rewriting of upstream `Location` headers.
    pub proxy_redirect: Option<ProxyRedirect>,
    /// Extra match conditions.
    pub matching: MatchRules,
    /// Basic and external authentication.
    pub auth: Auth,
    /// Whether requests are written to the access log.
    pub access_log: bool,
    /// Security annotations that could not be honoured. When not empty, every route of the
    /// Ingress must answer 503.
    pub fail_closed: Vec<FailClosed>,
}

impl Default for IngressPolicy {
    fn default() -> Self {
        Self {
            canary: CanaryState::default(),
            cors: None,
            rewrite: Rewrite::default(),
            redirect: Redirect::default(),
            backend: BackendPolicy::default(),
            tls: TlsPolicy::default(),
            access: AccessControl::default(),
            timeouts: Timeouts::default(),
            retry: Retry::default(),
            limits: Limits::default(),
            fallback: Fallback::default(),
            mirror: None,
            headers: HeaderControl::default(),
            proxy_redirect: None,
            matching: MatchRules::default(),
            auth: Auth::default(),
            access_log: true,
            fail_closed: Vec::new(),
        }
    }
}

impl IngressPolicy {
    /// Whether a security annotation could not be honoured, so the Ingress's routes must
    /// answer 503.
    pub fn fails_closed(&self) -> bool {
        !self.fail_closed.is_empty()
    }

    /// Whether the Ingress must be left out entirely (`canary` with a value that is not a
    /// boolean).
    pub fn is_excluded(&self) -> bool {
        matches!(self.canary, CanaryState::Invalid)
    }
}

/// Parses the annotations of one Ingress with the default [`ParseOptions`].
///
/// Never fails and never stops at the first problem: every bad value becomes a diagnostic
/// naming the object, the file (when `source` is given), the key and the value, and the
/// typed policy holds the default instead (or records a [`FailClosed`] for security keys).
/// Unknown keys under our prefixes get a warning with the nearest known key; keys that
/// configure NGINX itself get a note, snippets an error. The same input always gives the
/// same output.
///
/// ```
/// use std::collections::BTreeMap;
/// use mse_annotations::{parse, CanaryState};
/// use mse_model::{Kind, ObjectKey};
///
/// let object = ObjectKey::new(Kind::Ingress, "shop", "web");
/// let mut a = BTreeMap::new();
/// a.insert("nginx.ingress.kubernetes.io/proxy-read-timeout".to_owned(), "ten".to_owned());
/// a.insert("nginx.ingress.kubernetes.io/canary".to_owned(), "yes".to_owned());
/// a.insert("nginx.ingress.kubernetes.io/rewrite-taget".to_owned(), "/".to_owned());
/// let parsed = parse(&object, None, &a);
///
/// assert_eq!(parsed.value.timeouts.read, None); // the gateway-wide value applies
/// assert!(matches!(parsed.value.canary, CanaryState::Invalid)); // left out
/// let text: Vec<String> = parsed.diagnostics.iter().map(|d| d.to_string()).collect();
/// assert!(text[0].starts_with("error: Ingress shop/web: nginx.ingress.kubernetes.io/canary:"));
/// assert!(text.iter().any(|t| t.contains("did you mean nginx.ingress.kubernetes.io/rewrite-target?")));
/// ```
pub fn parse(
    object: &ObjectKey,
    source: Option<&SourceRef>,
    annotations: &BTreeMap<String, String>,
) -> Parsed<IngressPolicy> {
    parse_with(object, source, annotations, &ParseOptions::default())
}

/// [`parse`] with explicit options.
pub fn parse_with(
    object: &ObjectKey,
    source: Option<&SourceRef>,
    annotations: &BTreeMap<String, String>,
    options: &ParseOptions,
) -> Parsed<IngressPolicy> {
    let mut cx = Cx::new(object, source, annotations, options);
    let mut p = IngressPolicy::default();
    family::canary::parse(&mut cx, &mut p);
    family::cors::parse(&mut cx, &mut p);
    family::rewrite::parse(&mut cx, &mut p);
    family::redirect::parse(&mut cx, &mut p);
    family::backend::parse(&mut cx, &mut p);
    family::tls::parse(&mut cx, &mut p);
    family::access::parse(&mut cx, &mut p);
    family::timeout::parse(&mut cx, &mut p);
    family::retry::parse(&mut cx, &mut p);
    family::limits::parse(&mut cx, &mut p);
    family::fallback::parse(&mut cx, &mut p);
    family::mirror::parse(&mut cx, &mut p);
    family::headers::parse(&mut cx, &mut p);
    family::matching::parse(&mut cx, &mut p);
    family::auth::parse(&mut cx, &mut p);
    p.access_log = cx
        .get("enable-access-log", crate::value::boolean)
        .unwrap_or(true);
    cx.finish();
    p.fail_closed = std::mem::take(&mut cx.fail_closed);
    Parsed {
        value: p,
        diagnostics: cx.diagnostics,
    }
}
