//! Redirects: `ssl-redirect`, `force-ssl-redirect`, `permanent-redirect[-code]`,
//! `temporal-redirect`, `app-root`, `from-to-www-redirect`, `relative-redirects`.

use crate::IngressPolicy;
use crate::cx::Cx;
use crate::value::{self, UrlTemplate};

/// A fixed redirect answered for every request of the Ingress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedirectTarget {
    /// Where to.
    pub url: UrlTemplate,
    /// 301 to 308 for `permanent-redirect`, 302 for `temporal-redirect`.
    pub code: u16,
}

/// Redirect settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Redirect {
    /// `ssl-redirect`; `None` means the gateway-wide default: true when the host has TLS.
    pub ssl_redirect: Option<bool>,
    /// `force-ssl-redirect`; `None` means the gateway-wide default (false).
    pub force_ssl_redirect: Option<bool>,
    /// `temporal-redirect`, else `permanent-redirect`.
    pub target: Option<RedirectTarget>,
    /// `app-root`: where `/` redirects to (302).
    pub app_root: Option<String>,
    /// `from-to-www-redirect`.
    pub from_to_www: bool,
    /// `relative-redirects`: a target that is a path is sent as it is, instead of made
    /// absolute with the request's scheme and host.
    pub relative: bool,
}

impl Redirect {
    /// Whether plaintext requests are redirected to HTTPS, given whether the host has TLS,
    /// with the built-in defaults for what the annotations leave unset.
    pub fn redirects_to_https(&self, host_has_tls: bool) -> bool {
        self.force_ssl_redirect.unwrap_or(false) || self.ssl_redirect.unwrap_or(host_has_tls)
    }
}

pub(crate) fn parse(cx: &mut Cx<'_>, p: &mut IngressPolicy) {
    let r = &mut p.redirect;
    r.ssl_redirect = cx.get("ssl-redirect", value::boolean);
    r.force_ssl_redirect = cx.get("force-ssl-redirect", value::boolean);
    let permanent = cx.get("permanent-redirect", value::redirect_url);
    let code = cx.get("permanent-redirect-code", |v| value::status(v, 300, 308));
    let temporal = cx.get("temporal-redirect", value::redirect_url);
    r.target = match (temporal, permanent) {
        (Some(t), permanent) => {
            if permanent.is_some() {
                cx.ignored(
                    "permanent-redirect",
                    "temporal-redirect is set and takes precedence",
                );
            }
            if code.is_some() {
                cx.ignored(
                    "permanent-redirect-code",
                    "temporal-redirect always answers 302",
                );
            }
            Some(RedirectTarget { url: t, code: 302 })
        }
        (None, Some(p)) => Some(RedirectTarget {
            url: p,
            code: code.unwrap_or(301),
        }),
        (None, None) => {
            if code.is_some() {
                cx.ignored("permanent-redirect-code", "permanent-redirect is not set");
            }
            None
        }
    };
    r.app_root = cx.get("app-root", value::path);
    r.from_to_www = cx
        .get("from-to-www-redirect", value::boolean)
        .unwrap_or(false);
    r.relative = cx
        .get("relative-redirects", value::boolean)
        .unwrap_or(false);
}
