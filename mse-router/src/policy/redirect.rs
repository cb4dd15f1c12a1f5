//! Redirects: `permanent-redirect`, `temporal-redirect` (with `relative-redirects`),
//! `ssl-redirect`, `force-ssl-redirect` and `app-root`. `from-to-www-redirect` is a
//! route of its own ([`RoutePolicy::www_redirect`]), added once every rule is known.

use http::{HeaderValue, StatusCode};
use mse_annotations::global::TlsSettings;
use mse_annotations::{Group, IngressPolicy, UrlPart, UrlTemplate, UrlVar};

use super::{Refused, Registration, RoutePolicy};

/// The redirect annotations: decided before any upstream is chosen.
pub(crate) const POLICY: Registration = Registration {
    name: "redirect",
    groups: &[Group::Redirect],
    keys: &[],
    build,
};

/// A fixed redirect (`permanent-redirect`, `temporal-redirect`).
#[derive(Clone, Debug)]
pub struct Redirect {
    /// 300 to 308.
    pub code: StatusCode,
    /// Where to.
    pub location: Location,
}

/// The `Location` of a [`Redirect`].
#[derive(Clone, Debug)]
pub enum Location {
    /// A URL without variables, parsed once.
    Fixed(HeaderValue),
    /// A URL with request variables, filled in per request.
    Template(UrlTemplate),
}

/// What a request looks like to a redirect template.
#[derive(Clone, Copy, Debug)]
pub struct RedirectVars<'a> {
    /// `http` or `https`.
    pub scheme: &'a str,
    /// The request's host, without port.
    pub host: &'a str,
    /// The path and query as received.
    pub request_uri: &'a str,
    /// The normalised path.
    pub uri: &'a str,
}

fn build(p: &IngressPolicy, policy: &mut RoutePolicy, _refused: &mut Vec<Refused>) {
    policy.redirect = p.redirect.target.as_ref().map(|t| Redirect {
        code: StatusCode::from_u16(t.code).unwrap_or(StatusCode::MOVED_PERMANENTLY),
        location: location(&t.url, p.redirect.relative),
    });
    policy.ssl_redirect = p.redirect.ssl_redirect;
    policy.force_ssl_redirect = p.redirect.force_ssl_redirect;
    policy.app_root = p.redirect.app_root.as_deref().map(Box::from);
}

// === impl RoutePolicy ===

impl RoutePolicy {
    /// The policy of a `from-to-www-redirect` route: 308 to `host`, same scheme and
    /// request URI.
    pub(crate) fn www_redirect(host: &str) -> Self {
        let url = UrlTemplate {
            raw: format!("$scheme://{host}$request_uri"),
            parts: vec![
                UrlPart::Var(UrlVar::Scheme),
                UrlPart::Text(format!("://{host}")),
                UrlPart::Var(UrlVar::RequestUri),
            ],
        };
        Self {
            redirect: Some(Redirect {
                code: StatusCode::PERMANENT_REDIRECT,
                location: Location::Template(url),
            }),
            ..Self::default()
        }
    }

    /// Whether some request may be answered with `temporal-redirect`,
    /// `permanent-redirect` or `app-root`.
    pub fn may_redirect(&self) -> bool {
        self.redirect.is_some() || self.app_root.is_some()
    }

    /// Only `ssl-redirect` and `force-ssl-redirect` of `p`: what routes closed by a
    /// security annotation keep.
    pub(crate) fn ssl_only(p: &IngressPolicy) -> Option<Self> {
        let policy = Self {
            ssl_redirect: p.redirect.ssl_redirect,
            force_ssl_redirect: p.redirect.force_ssl_redirect,
            ..Self::default()
        };
        (!policy.is_empty()).then_some(policy)
    }

    /// Whether plaintext requests are redirected to HTTPS on a route whose host has a
    /// certificate (`host_has_tls`) or not: the annotations, else the gateway-wide
    /// `ssl-redirect` (on hosts with a certificate) and `force-ssl-redirect`.
    pub fn redirects_to_https(&self, host_has_tls: bool, defaults: &TlsSettings) -> bool {
        self.force_ssl_redirect
            .unwrap_or(defaults.force_ssl_redirect)
            || self
                .ssl_redirect
                .unwrap_or(defaults.ssl_redirect && host_has_tls)
    }

    /// The redirect that answers this request, if any: `temporal-redirect` or
    /// `permanent-redirect` first, then HTTPS for plaintext requests when
    /// `https_redirect` (the route's [`Route::https_redirect`]), then `app-root`.
    ///
    /// [`Route::https_redirect`]: crate::Route::https_redirect
    pub fn redirect_for(
        &self,
        tls: bool,
        https_redirect: bool,
        vars: &RedirectVars<'_>,
    ) -> Option<(StatusCode, HeaderValue)> {
        if let Some(r) = &self.redirect {
            let location = match &r.location {
                Location::Fixed(v) => v.clone(),
                Location::Template(t) => HeaderValue::from_str(&render(t, vars)).ok()?,
            };
            return Some((r.code, location));
        }
        if https_redirect && !tls {
            return to_https(vars);
        }
        if let Some(root) = &self.app_root
            && vars.uri == "/"
        {
            let url = format!("{}://{}{}", vars.scheme, vars.host, root);
            return Some((StatusCode::FOUND, HeaderValue::from_str(&url).ok()?));
        }
        None
    }
}

/// The 308 to the same URL over HTTPS (`ssl-redirect`).
pub(crate) fn to_https(vars: &RedirectVars<'_>) -> Option<(StatusCode, HeaderValue)> {
    let url = format!("https://{}{}", vars.host, vars.request_uri);
    Some((
        StatusCode::PERMANENT_REDIRECT,
        HeaderValue::from_str(&url).ok()?,
    ))
}

/// Where a fixed redirect points. A path target becomes `$scheme://$host` and the path,
/// as nginx's absolute redirects do, unless `relative-redirects` is set.
fn location(url: &UrlTemplate, relative_redirects: bool) -> Location {
    if url.is_relative() && !relative_redirects {
        let mut parts = vec![
            UrlPart::Var(UrlVar::Scheme),
            UrlPart::Text("://".to_owned()),
            UrlPart::Var(UrlVar::Host),
        ];
        parts.extend_from_slice(&url.parts);
        return Location::Template(UrlTemplate {
            raw: format!("$scheme://$host{}", url.raw),
            parts,
        });
    }
    if url.is_literal()
        && let Ok(v) = HeaderValue::from_str(&url.raw)
    {
        return Location::Fixed(v);
    }
    Location::Template(url.clone())
}

// === impl RedirectVars ===

impl RedirectVars<'_> {
    /// `t` with these variables filled in (`auth-url`, `auth-signin`).
    pub fn render(&self, t: &UrlTemplate) -> String {
        render(t, self)
    }
}

fn render(t: &UrlTemplate, vars: &RedirectVars<'_>) -> String {
    let mut out = String::with_capacity(t.raw.len() + vars.request_uri.len());
    for part in &t.parts {
        match part {
            UrlPart::Text(s) => out.push_str(s),
            UrlPart::Var(UrlVar::Host) => out.push_str(vars.host),
            UrlPart::Var(UrlVar::Scheme) => out.push_str(vars.scheme),
            UrlPart::Var(UrlVar::RequestUri) => out.push_str(vars.request_uri),
            UrlPart::Var(UrlVar::EscapedRequestUri) => escape_into(&mut out, vars.request_uri),
            UrlPart::Var(UrlVar::Uri) => out.push_str(vars.uri),
            // A variable this build does not know expands to nothing.
            UrlPart::Var(_) => {}
        }
    }
    out
}

/// Percent-encodes everything but unreserved characters (RFC 3986 section 2.3).
fn escape_into(out: &mut String, s: &str) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_request_uri_encodes_reserved_characters() {
        let mut s = String::new();
        escape_into(&mut s, "/a b?x=1&y");
        assert_eq!(s, "%2Fa%20b%3Fx%3D1%26y");
    }
}
