//! Header edits: `request-header-control-*`, `response-header-control-*`, and the
//! `proxy-redirect-from/-to` rewrite of upstream `Location` headers.

use crate::IngressPolicy;
use crate::cx::Cx;
use crate::value::{self, ValueError};

/// Edits applied to one direction's headers, in the order remove, update, add.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeaderEdits {
    /// Headers appended (name lower case, value).
    pub add: Vec<(String, String)>,
    /// Headers set, replacing existing values.
    pub update: Vec<(String, String)>,
    /// Headers removed (lower case).
    pub remove: Vec<String>,
}

impl HeaderEdits {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.update.is_empty() && self.remove.is_empty()
    }
}

/// Request and response header edits.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeaderControl {
    /// Edits of the request sent upstream.
    pub request: HeaderEdits,
    /// Edits of the response sent to the client.
    pub response: HeaderEdits,
    /// `connection-proxy-header`: the `Connection` header sent upstream.
    pub connection: Option<String>,
}

/// `proxy-redirect-from` and `proxy-redirect-to`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProxyRedirect {
    /// `off`: upstream `Location` headers are passed unchanged.
    Off,
    /// `default`: the upstream's own URL is replaced by the request's.
    Default,
    /// Replace this prefix by that text.
    Replace {
        /// Prefix to look for.
        from: String,
        /// Replacement.
        to: String,
    },
}

pub(crate) fn parse(cx: &mut Cx<'_>, p: &mut IngressPolicy) {
    p.headers.connection = cx.get("connection-proxy-header", |v| {
        if v.trim().is_empty() {
            Err(ValueError::Empty)
        } else {
            value::header_value(v.trim())
        }
    });
    for (dir, edits) in [
        ("request", &mut p.headers.request),
        ("response", &mut p.headers.response),
    ] {
        edits.add = cx
            .get_list(&format!("{dir}-header-control-add"), value::lines, pair)
            .unwrap_or_default();
        edits.update = cx
            .get_list(&format!("{dir}-header-control-update"), value::lines, pair)
            .unwrap_or_default();
        edits.remove = cx
            .get_list(
                &format!("{dir}-header-control-remove"),
                value::comma_list,
                value::header_name,
            )
            .unwrap_or_default();
    }
    let text = |v: &str| {
        if v.is_empty() {
            Err(ValueError::Empty)
        } else {
            value::header_value(v)
        }
    };
    let from = cx.get("proxy-redirect-from", text);
    let to = cx.get("proxy-redirect-to", text);
    p.proxy_redirect = match (from.as_deref(), to) {
        (Some("off"), to) => {
            if to.is_some() {
                cx.ignored("proxy-redirect-to", "proxy-redirect-from is off");
            }
            Some(ProxyRedirect::Off)
        }
        (Some("default"), to) => {
            if to.is_some() {
                cx.ignored("proxy-redirect-to", "proxy-redirect-from is default");
            }
            Some(ProxyRedirect::Default)
        }
        (Some(f), Some(t)) => Some(ProxyRedirect::Replace {
            from: f.to_owned(),
            to: t,
        }),
        (Some(_), None) => {
            cx.ignored("proxy-redirect-from", "proxy-redirect-to is not set");
            None
        }
        (None, Some(_)) => {
            cx.ignored("proxy-redirect-to", "proxy-redirect-from is not set");
            None
        }
        (None, None) => None,
    };
}

/// `Name Value`: the name up to the first whitespace, the rest (quotes stripped) the value.
fn pair(line: &str) -> Result<(String, String), ValueError> {
    let Some((name, v)) = line.split_once(char::is_whitespace) else {
        return Err(ValueError::Expected(
            "`Name Value` (a header name, a space, then the value)",
        ));
    };
    let v = v.trim();
    let v = v
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .or_else(|| v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')))
        .unwrap_or(v);
    Ok((value::header_name(name)?, value::header_value(v)?))
}
