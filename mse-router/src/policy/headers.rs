//! Header edits: `request-header-control-*`, `response-header-control-*`,
//! `connection-proxy-header`, and the `proxy-redirect-from`/`-to` rewrite of `Location`
//! and `Refresh` in upstream answers. Header names and values are parsed here, so the
//! request path only copies them.

use http::{HeaderMap, HeaderName, HeaderValue};
use mse_annotations::{Group, HeaderEdits, IngressPolicy, ProxyRedirect};

use super::{Refused, Registration, RoutePolicy};

/// The header annotations: applied to the request sent upstream and to the answer.
/// `custom-headers` names a ConfigMap, so the compiler adds its entries to
/// [`RoutePolicy::response_headers`] (`compile/custom_headers.rs`).
pub(crate) const POLICY: Registration = Registration {
    name: "headers",
    groups: &[Group::Headers],
    keys: &[],
    build,
};

/// Header edits of one direction, applied in the order remove, update, add.
#[derive(Clone, Debug, Default)]
pub struct HeaderOps {
    /// Removed.
    pub remove: Vec<HeaderName>,
    /// Set, replacing any value.
    pub update: Vec<(HeaderName, HeaderValue)>,
    /// Appended.
    pub add: Vec<(HeaderName, HeaderValue)>,
}

/// `proxy-redirect-from` and `proxy-redirect-to`, other than `off`.
#[derive(Clone, Debug)]
pub enum LocationRewrite {
    /// `default`: the upstream's own URL (`http://` and the address the gateway connected
    /// to) is replaced by the request's scheme and host.
    Upstream,
    /// A URL starting with `from` gets it replaced by `to`.
    Prefix {
        /// Prefix to look for.
        from: Box<str>,
        /// Replacement.
        to: Box<str>,
    },
}

/// Headers that frame the message or belong to one connection: editing them would break
/// the exchange, so header-control leaves them alone.
const PROTECTED: &[&str] = &[
    "connection",
    "content-length",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

const REFRESH: HeaderName = HeaderName::from_static("refresh");

fn build(p: &IngressPolicy, policy: &mut RoutePolicy, refused: &mut Vec<Refused>) {
    policy.request_headers = HeaderOps::build(&p.headers.request, "request", true, refused);
    policy.response_headers = HeaderOps::build(&p.headers.response, "response", false, refused);
    policy.connection = p
        .headers
        .connection
        .as_deref()
        .and_then(|v| HeaderValue::from_str(v).ok());
    policy.location_rewrite = match &p.proxy_redirect {
        None | Some(ProxyRedirect::Off) => None,
        Some(ProxyRedirect::Default) => Some(LocationRewrite::Upstream),
        Some(ProxyRedirect::Replace { from, to }) => Some(LocationRewrite::Prefix {
            from: from.as_str().into(),
            to: to.as_str().into(),
        }),
    };
}

/// Why header `name` (lower case) is left alone by header edits, if it is.
pub(crate) fn protected_header(name: &str) -> Option<String> {
    PROTECTED.contains(&name).then(|| {
        format!("header {name} frames the message or belongs to the connection; it is left alone")
    })
}

// === impl RoutePolicy ===

impl RoutePolicy {
    /// Rewrites `Location` and the URL of `Refresh` in an upstream answer by
    /// `proxy-redirect-from`/`-to`. `upstream` is the address the gateway connected to and
    /// `base` the request's `scheme://host`; both are used only for `default`.
    pub fn rewrite_locations(&self, headers: &mut HeaderMap, upstream: &str, base: &str) {
        let Some(rw) = &self.location_rewrite else {
            return;
        };
        let upstream_url;
        let (from, to) = match rw {
            LocationRewrite::Upstream => {
                upstream_url = format!("http://{upstream}");
                (upstream_url.as_str(), base)
            }
            LocationRewrite::Prefix { from, to } => (&**from, &**to),
        };
        if let Some(v) = headers.get_mut(http::header::LOCATION)
            && let Some(new) = v
                .to_str()
                .ok()
                .and_then(|s| s.strip_prefix(from))
                .and_then(|rest| HeaderValue::from_str(&format!("{to}{rest}")).ok())
        {
            *v = new;
        }
        if let Some(v) = headers.get_mut(REFRESH)
            && let Some(new) = v.to_str().ok().and_then(|s| {
                let i = s.to_ascii_lowercase().find("url=")? + 4;
                let rest = s[i..].strip_prefix(from)?;
                HeaderValue::from_str(&format!("{}{to}{rest}", &s[..i])).ok()
            })
        {
            *v = new;
        }
    }
}

// === impl HeaderOps ===

impl HeaderOps {
    fn build(
        edits: &HeaderEdits,
        dir: &'static str,
        request: bool,
        refused: &mut Vec<Refused>,
    ) -> Self {
        let key = |op: &'static str| -> &'static str {
            match (dir, op) {
                ("request", "add") => "request-header-control-add",
                ("request", "update") => "request-header-control-update",
                ("request", _) => "request-header-control-remove",
                (_, "add") => "response-header-control-add",
                (_, "update") => "response-header-control-update",
                _ => "response-header-control-remove",
            }
        };
        let mut check = |op: &'static str, name: &str| -> Option<HeaderName> {
            if request && name == "host" {
                let why = format!("header {name} is left alone; use upstream-vhost to change it");
                refused.push((key(op), why));
                return None;
            }
            if let Some(why) = protected_header(name) {
                refused.push((key(op), why));
                return None;
            }
            match HeaderName::from_bytes(name.as_bytes()) {
                Ok(n) => Some(n),
                Err(_) => {
                    refused.push((key(op), format!("{name} is not a valid header name")));
                    None
                }
            }
        };
        let mut pairs =
            |op: &'static str, list: &[(String, String)]| -> Vec<(HeaderName, HeaderValue)> {
                list.iter()
                    .filter_map(|(n, v)| {
                        let name = check(op, n)?;
                        match HeaderValue::from_str(v) {
                            Ok(v) => Some((name, v)),
                            Err(_) => None,
                        }
                    })
                    .collect()
            };
        let add = pairs("add", &edits.add);
        let update = pairs("update", &edits.update);
        let remove = edits
            .remove
            .iter()
            .filter_map(|n| check("remove", n))
            .collect();
        Self {
            remove,
            update,
            add,
        }
    }

    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.remove.is_empty() && self.update.is_empty() && self.add.is_empty()
    }

    /// Every header name these edits touch.
    pub fn names(&self) -> impl Iterator<Item = &HeaderName> {
        self.remove
            .iter()
            .chain(self.update.iter().map(|(n, _)| n))
            .chain(self.add.iter().map(|(n, _)| n))
    }

    pub(super) fn shrink(&mut self) {
        self.remove.shrink_to_fit();
        self.update.shrink_to_fit();
        self.add.shrink_to_fit();
    }

    /// Removes, then sets, then appends.
    pub fn apply(&self, headers: &mut HeaderMap) {
        for name in &self.remove {
            headers.remove(name);
        }
        for (name, value) in &self.update {
            headers.insert(name.clone(), value.clone());
        }
        for (name, value) in &self.add {
            headers.append(name.clone(), value.clone());
        }
    }
}
