//! [`RoutePolicy`]: what the data plane does to a route's requests besides forwarding them
//! (redirects, header edits, rewrites), built once per Ingress from its annotations and
//! shared by all of its routes. Header names and values are parsed here, so the request
//! path only copies them.

use std::sync::{Arc, OnceLock};

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use mse_annotations::{
    HeaderEdits, IngressPolicy, ProxyRedirect, RewritePart, RewriteTarget, UrlPart, UrlTemplate,
    UrlVar,
};

use crate::cors::CorsPolicy;
use crate::fallback::FallbackPolicy;
use crate::mirror::MirrorPolicy;
use crate::path::{Groups, PathMatch};

/// The annotations of one Ingress that act on its requests, ready for the data plane.
#[derive(Clone, Debug, Default)]
pub struct RoutePolicy {
    /// `temporal-redirect` or `permanent-redirect`: every request is answered with it.
    pub redirect: Option<Redirect>,
    /// `ssl-redirect` as written; `None` means the default: true when the host has a
    /// certificate. The router resolves it per route into [`Route::https_redirect`].
    ///
    /// [`Route::https_redirect`]: crate::Route::https_redirect
    pub ssl_redirect: Option<bool>,
    /// `force-ssl-redirect`.
    pub force_ssl_redirect: bool,
    /// `app-root`: a request for exactly `/` gets a 302 to this path.
    pub app_root: Option<Box<str>>,
    /// `request-header-control-*`.
    pub request_headers: HeaderOps,
    /// `response-header-control-*`.
    pub response_headers: HeaderOps,
    /// `rewrite-path`, or a `rewrite-target` without capture groups on a path that is not
    /// a regex: replaces the matched prefix (or exact path, or the part a regex matched).
    pub rewrite: Option<Box<str>>,
    /// `rewrite-target` on regex paths: the whole path is replaced by the template, with
    /// `$n` taken from the path regex's capture groups.
    pub rewrite_template: Option<RewriteTarget>,
    /// `upstream-vhost`: the `Host` sent upstream.
    pub upstream_vhost: Option<HeaderValue>,
    /// `x-forwarded-prefix`: the value of the `X-Forwarded-Prefix` sent upstream.
    pub forwarded_prefix: Option<HeaderValue>,
    /// `connection-proxy-header`: the `Connection` header sent upstream.
    pub connection: Option<HeaderValue>,
    /// `proxy-redirect-from` and `-to`: how `Location` and `Refresh` of upstream answers
    /// are rewritten.
    pub location_rewrite: Option<LocationRewrite>,
    /// `enable-cors` and the `cors-*` keys.
    pub cors: Option<Arc<CorsPolicy>>,
    /// `mirror-target-*` and `mirror-percentage`, resolved by the compiler (it needs the
    /// Services), so building from annotations alone leaves it `None`.
    pub mirror: Option<Arc<MirrorPolicy>>,
    /// `default-backend` and `custom-http-errors`, resolved by the compiler once the
    /// Services are known (see [`FallbackPolicy`]).
    pub fallback: Option<FallbackPolicy>,
    /// Derived from the fields above on first use, once the policy is shared.
    head_plan: PlanCell,
}

/// What a data plane writing HTTP/1.1 request heads itself needs of a policy's request
/// header edits, derived once per policy ([`RoutePolicy::request_head_plan`]).
#[derive(Debug)]
pub struct RequestHeadPlan {
    /// `name: value\r\n` for every header [`RoutePolicy::edit_request`] sets or adds, in
    /// order.
    pub lines: Box<[u8]>,
    /// The request's own headers it takes out first (see
    /// [`RoutePolicy::replaces_request_header`]).
    pub replaced: Box<[HeaderName]>,
    /// Every header name the `request-header-control-*` edits name.
    pub edited: Box<[HeaderName]>,
}

/// A lazily derived [`RequestHeadPlan`]; a clone starts empty, since its fields may be
/// changed before it is used.
#[derive(Debug, Default)]
struct PlanCell(OnceLock<RequestHeadPlan>);

impl Clone for PlanCell {
    fn clone(&self) -> Self {
        Self::default()
    }
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

/// A header edit annotation that was refused: its key (without prefix) and why.
pub(crate) type Refused = (&'static str, String);

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

// === impl RoutePolicy ===

impl RoutePolicy {
    /// The policy of an Ingress, or `None` when none of its annotations act on requests.
    /// Header edits that cannot apply are returned with the reason.
    pub(crate) fn build(p: &IngressPolicy) -> (Option<Self>, Vec<Refused>) {
        let mut refused = Vec::new();
        let redirect = p.redirect.target.as_ref().map(|t| Redirect {
            code: StatusCode::from_u16(t.code).unwrap_or(StatusCode::MOVED_PERMANENTLY),
            location: location(&t.url, p.redirect.relative),
        });
        let mut policy = Self {
            redirect,
            ssl_redirect: p.redirect.ssl_redirect,
            force_ssl_redirect: p.redirect.force_ssl_redirect,
            app_root: p.redirect.app_root.as_deref().map(Box::from),
            request_headers: HeaderOps::build(&p.headers.request, "request", true, &mut refused),
            response_headers: HeaderOps::build(
                &p.headers.response,
                "response",
                false,
                &mut refused,
            ),
            rewrite: rewrite_of(p).map(Box::from),
            rewrite_template: p
                .rewrite
                .target
                .clone()
                .filter(|_| p.rewrite.path.is_none()),
            upstream_vhost: p
                .rewrite
                .upstream_vhost
                .as_deref()
                .and_then(|v| HeaderValue::from_str(v).ok()),
            forwarded_prefix: p
                .rewrite
                .x_forwarded_prefix
                .as_deref()
                .and_then(|v| HeaderValue::from_str(v).ok()),
            connection: p
                .headers
                .connection
                .as_deref()
                .and_then(|v| HeaderValue::from_str(v).ok()),
            location_rewrite: match &p.proxy_redirect {
                None | Some(ProxyRedirect::Off) => None,
                Some(ProxyRedirect::Default) => Some(LocationRewrite::Upstream),
                Some(ProxyRedirect::Replace { from, to }) => Some(LocationRewrite::Prefix {
                    from: from.as_str().into(),
                    to: to.as_str().into(),
                }),
            },
            cors: p.cors.as_ref().map(|c| Arc::new(CorsPolicy::build(c))),
            mirror: None,
            fallback: None,
            head_plan: PlanCell::default(),
        };
        if policy.is_empty() {
            return (None, refused);
        }
        policy.request_headers.shrink();
        policy.response_headers.shrink();
        (Some(policy), refused)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.redirect.is_none()
            && self.ssl_redirect.is_none()
            && !self.force_ssl_redirect
            && self.app_root.is_none()
            && self.request_headers.is_empty()
            && self.response_headers.is_empty()
            && self.rewrite.is_none()
            && self.rewrite_template.is_none()
            && self.upstream_vhost.is_none()
            && self.forwarded_prefix.is_none()
            && self.connection.is_none()
            && self.location_rewrite.is_none()
            && self.cors.is_none()
            && self.mirror.is_none()
    }

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
    /// certificate (`host_has_tls`) or not.
    pub fn redirects_to_https(&self, host_has_tls: bool) -> bool {
        self.force_ssl_redirect || self.ssl_redirect.unwrap_or(host_has_tls)
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

    /// The path to forward instead of `path` (normalised, matched by `matched`), if the
    /// policy rewrites it into another one. A prefix route replaces the matched prefix and
    /// keeps the rest; an exact route replaces the whole path. A rewrite that gives the
    /// same path returns `None`, without building it.
    pub fn rewrite_path(&self, matched: &PathMatch, path: &str) -> Option<String> {
        match (matched, &self.rewrite_template) {
            (PathMatch::Regex(r), Some(t)) => {
                let groups = r.captures(path);
                if expands_to(t, groups.as_ref(), path) {
                    return None;
                }
                return Some(expand(t, groups.as_ref()));
            }
            // Capture groups on an Exact path have nothing to capture.
            (PathMatch::Exact(_), Some(t)) if self.rewrite.is_none() => {
                return Some(expand(t, None));
            }
            _ => {}
        }
        let to = self.rewrite.as_deref()?;
        let rest = match matched {
            PathMatch::Exact(_) => "",
            PathMatch::Prefix(p) => path.get(p.len()..).unwrap_or(""),
            PathMatch::Regex(r) => r
                .captures(path)
                .and_then(|g| g.get(0))
                .map_or("", |m| &path[m.len()..]),
        };
        let rest = match (to.ends_with('/'), rest.strip_prefix('/')) {
            (true, Some(r)) => r,
            _ => rest,
        };
        if path.len() == to.len() + rest.len() && path.starts_with(to) && path.ends_with(rest) {
            return None;
        }
        let mut out = String::with_capacity(to.len() + rest.len());
        out.push_str(to);
        out.push_str(rest);
        Some(out)
    }

    /// How many headers [`Self::edit_request`] may add at most: room to reserve at once.
    pub fn request_headers_added(&self) -> usize {
        usize::from(self.upstream_vhost.is_some())
            + usize::from(self.forwarded_prefix.is_some())
            + usize::from(self.connection.is_some())
            + self.request_headers.update.len()
            + self.request_headers.add.len()
    }

    /// The request headers [`Self::edit_request`] takes out before adding its own:
    /// `Host` for `upstream-vhost`, `X-Forwarded-Prefix`, `Connection` for
    /// `connection-proxy-header`, and the removed and updated names of
    /// `request-header-control-*`.
    fn replaced_request_headers(&self) -> impl Iterator<Item = &HeaderName> {
        static HOST: HeaderName = http::header::HOST;
        static PREFIX: HeaderName = X_FORWARDED_PREFIX;
        static CONNECTION: HeaderName = http::header::CONNECTION;
        let host = self.upstream_vhost.as_ref().map(|_| &HOST);
        let prefix = self.forwarded_prefix.as_ref().map(|_| &PREFIX);
        let connection = self.connection.as_ref().map(|_| &CONNECTION);
        host.into_iter()
            .chain(prefix)
            .chain(connection)
            .chain(&self.request_headers.remove)
            .chain(self.request_headers.update.iter().map(|(n, _)| n))
    }

    /// Whether [`Self::edit_request`] removes or replaces the request's header `name`.
    pub fn replaces_request_header(&self, name: &HeaderName) -> bool {
        self.request_head_plan().replaced.contains(name)
    }

    /// The request header edits as a data plane writing HTTP/1.1 heads needs them, derived
    /// on the first call. Change no field of a policy after this is called.
    pub fn request_head_plan(&self) -> &RequestHeadPlan {
        self.head_plan.0.get_or_init(|| {
            let mut lines = Vec::new();
            self.for_each_request_header(|name, value| {
                for part in [name.as_str().as_bytes(), b": ", value.as_bytes(), b"\r\n"] {
                    lines.extend_from_slice(part);
                }
            });
            RequestHeadPlan {
                lines: lines.into(),
                replaced: self.replaced_request_headers().cloned().collect(),
                edited: self.request_headers.names().cloned().collect(),
            }
        })
    }

    /// Every header [`Self::edit_request`] sets or adds, in order: for a data plane that
    /// writes them straight into the upstream request, leaving out the request's own
    /// headers for which [`Self::replaces_request_header`] is true.
    pub fn for_each_request_header(&self, mut f: impl FnMut(&HeaderName, &HeaderValue)) {
        if let Some(host) = &self.upstream_vhost {
            f(&http::header::HOST, host);
        }
        if let Some(prefix) = &self.forwarded_prefix {
            f(&X_FORWARDED_PREFIX, prefix);
        }
        if let Some(connection) = &self.connection {
            f(&http::header::CONNECTION, connection);
        }
        for (n, v) in &self.request_headers.update {
            f(n, v);
        }
        for (n, v) in &self.request_headers.add {
            f(n, v);
        }
    }

    /// Applies `upstream-vhost`, `x-forwarded-prefix` and the request header edits to the
    /// headers sent upstream: the same two steps a data plane writing the head itself
    /// takes ([`Self::replaces_request_header`], [`Self::for_each_request_header`]).
    pub fn edit_request(&self, headers: &mut HeaderMap) {
        for name in self.replaced_request_headers() {
            headers.remove(name);
        }
        self.for_each_request_header(|name, value| {
            headers.append(name.clone(), value.clone());
        });
    }
}

/// The pieces of `rewrite-target` in order: its text, and for `$n` capture group n of the
/// path regex (empty when the group did not take part in the match).
fn pieces<'a>(
    t: &'a RewriteTarget,
    caps: Option<&'a Groups<'a>>,
) -> impl Iterator<Item = &'a str> + Clone {
    t.parts.iter().map(move |part| match part {
        RewritePart::Text(s) => s.as_str(),
        RewritePart::Group(n) => caps.and_then(|c| c.get(usize::from(*n))).unwrap_or(""),
    })
}

/// Whether [`expand`] gives `path`, found without building it.
fn expands_to(t: &RewriteTarget, caps: Option<&Groups<'_>>, path: &str) -> bool {
    let slash_first = pieces(t, caps)
        .find(|p| !p.is_empty())
        .is_some_and(|p| p.starts_with('/'));
    let mut rest = if slash_first {
        path
    } else {
        match path.strip_prefix('/') {
            Some(r) => r,
            None => return false,
        }
    };
    for piece in pieces(t, caps) {
        match rest.strip_prefix(piece) {
            Some(r) => rest = r,
            None => return false,
        }
    }
    rest.is_empty()
}

/// The path `rewrite-target` gives: its [`pieces`], with a leading `/` when they have none.
fn expand(t: &RewriteTarget, caps: Option<&Groups<'_>>) -> String {
    let mut out = String::with_capacity(t.raw.len() + 16);
    out.extend(pieces(t, caps));
    if !out.starts_with('/') {
        out.insert(0, '/');
    }
    out
}

/// The 308 to the same URL over HTTPS (`ssl-redirect`).
pub(crate) fn to_https(vars: &RedirectVars<'_>) -> Option<(StatusCode, HeaderValue)> {
    let url = format!("https://{}{}", vars.host, vars.request_uri);
    Some((
        StatusCode::PERMANENT_REDIRECT,
        HeaderValue::from_str(&url).ok()?,
    ))
}

const X_FORWARDED_PREFIX: HeaderName = HeaderName::from_static("x-forwarded-prefix");
const REFRESH: HeaderName = HeaderName::from_static("refresh");

/// `rewrite-path`, else a `rewrite-target` that needs no regex.
fn rewrite_of(p: &IngressPolicy) -> Option<&str> {
    let r = &p.rewrite;
    if let Some(path) = &r.path {
        return Some(path);
    }
    r.target
        .as_ref()
        .filter(|t| !t.uses_groups())
        .map(|t| t.raw.as_str())
}

/// Whether the data plane applies annotation `name` (without prefix), for the groups it
/// applies only in part (whole groups are listed in the compiler's `APPLIED`).
pub(crate) fn applied(name: &str, _p: &IngressPolicy) -> bool {
    matches!(name, "server-alias")
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
            if PROTECTED.contains(&name) || (request && name == "host") {
                let why = if name == "host" {
                    format!("header {name} is left alone; use upstream-vhost to change it")
                } else {
                    format!(
                        "header {name} frames the message or belongs to the connection; it is left alone"
                    )
                };
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

    fn shrink(&mut self) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(rewrite: &str) -> RoutePolicy {
        RoutePolicy {
            rewrite: Some(rewrite.into()),
            ..RoutePolicy::default()
        }
    }

    #[test]
    fn prefix_rewrites_keep_the_rest_and_exact_rewrites_replace_all() {
        let prefix = PathMatch::Prefix("/foo".into());
        let root = PathMatch::Prefix("".into());
        let exact = PathMatch::Exact("/foo".into());
        let cases = [
            ("/v2", &prefix, "/foo/x", "/v2/x"),
            ("/v2", &prefix, "/foo", "/v2"),
            ("/", &prefix, "/foo/x", "/x"),
            ("/", &prefix, "/foo", "/"),
            ("/v2/", &prefix, "/foo/x", "/v2/x"),
            ("/v2", &root, "/x", "/v2/x"),
            ("/v2", &exact, "/foo", "/v2"),
        ];
        for (to, m, path, want) in cases {
            assert_eq!(
                policy(to).rewrite_path(m, path).as_deref(),
                Some(want),
                "{to} {m} {path}"
            );
        }
    }

    #[test]
    fn rewrites_to_the_same_path_give_none() {
        let root = PathMatch::Prefix("".into());
        assert_eq!(policy("/").rewrite_path(&root, "/a/b"), None);
        let v2 = PathMatch::Prefix("/v2".into());
        assert_eq!(policy("/v2").rewrite_path(&v2, "/v2/x"), None);
        assert_eq!(
            policy("/v2").rewrite_path(&root, "/v2").as_deref(),
            Some("/v2/v2")
        );
        let regex = |raw: &str| PathMatch::Regex(crate::RegexPath::new(raw, false, false).unwrap());
        // The template as the annotation parser reads `rewrite-target`.
        let template = |raw: &str| {
            let key = mse_model::ObjectKey::new(mse_model::Kind::Ingress, "ns", "app");
            let annotations = [(
                "nginx.ingress.kubernetes.io/rewrite-target".to_owned(),
                raw.to_owned(),
            )]
            .into();
            let parsed = mse_annotations::parse(&key, None, &annotations);
            RoutePolicy {
                rewrite_template: parsed.value.rewrite.target,
                ..RoutePolicy::default()
            }
        };
        for (t, m, path, want) in [
            ("/$1", "/(.*)", "/a/b", None),
            ("$1", "/(.*)", "/a/b", None),
            ("$1x", "/(.*)", "/a", Some("/ax")),
            ("/$1", "/x/(.*)", "/x/a", Some("/a")),
            ("/x/$1", "/x/(.*)", "/x/a", None),
            ("/$1$2", "/(a)(b)?", "/a", None),
            ("/$2$1", "/(a)(b)?", "/ab", Some("/ba")),
            ("$2/$1", "/(a)/(b)", "/a/b", Some("/b/a")),
        ] {
            let got = template(t).rewrite_path(&regex(m), path);
            assert_eq!(got.as_deref(), want, "{t} {m} {path}");
        }
    }

    #[test]
    fn escaped_request_uri_encodes_reserved_characters() {
        let mut s = String::new();
        escape_into(&mut s, "/a b?x=1&y");
        assert_eq!(s, "%2Fa%20b%3Fx%3D1%26y");
    }
}
