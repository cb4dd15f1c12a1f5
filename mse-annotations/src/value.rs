//! Value grammars: context-free parsers from an annotation's text to a typed value.
//!
//! Each parser takes the value already trimmed and returns a [`ValueError`] that says what
//! was expected; the parse context adds the object, the key and what happens next.

use std::fmt;
use std::time::Duration;

use regex::Regex;
use serde::Serialize;

/// Why a value was not accepted. It carries no context: the caller knows the key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValueError {
    /// The value is empty after trimming.
    #[error("the value is empty")]
    Empty,
    /// The value does not have the expected form.
    #[error("expected {0}")]
    Expected(&'static str),
    /// A number outside its allowed range.
    #[error("must be between {min} and {max}")]
    OutOfRange {
        /// Smallest allowed value.
        min: i64,
        /// Largest allowed value.
        max: i64,
    },
    /// Anything else, said in words.
    #[error("{0}")]
    Invalid(String),
}

impl ValueError {
    fn invalid(message: impl Into<String>) -> Self {
        ValueError::Invalid(message.into())
    }
}

/// A Go-style boolean (`strconv.ParseBool`, what ingress-nginx and Higress accept):
/// `1 t T TRUE true True` and `0 f F FALSE false False`.
pub fn boolean(v: &str) -> Result<bool, ValueError> {
    crate::parse_bool(v).ok_or(ValueError::Expected("true or false"))
}

/// `on` or `off` (NGINX style, any case).
pub fn on_off(v: &str) -> Result<bool, ValueError> {
    if v.eq_ignore_ascii_case("on") {
        Ok(true)
    } else if v.eq_ignore_ascii_case("off") {
        Ok(false)
    } else {
        Err(ValueError::Expected("on or off"))
    }
}

/// An integer as Go's `Atoi` reads it (optional sign, decimal digits), within `min..=max`.
pub fn int(v: &str, min: i64, max: i64) -> Result<i64, ValueError> {
    let digits = v.strip_prefix(['+', '-']).unwrap_or(v);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ValueError::Expected("a whole number"));
    }
    let n: i64 = v.parse().map_err(|_| ValueError::OutOfRange { min, max })?;
    if n < min || n > max {
        return Err(ValueError::OutOfRange { min, max });
    }
    Ok(n)
}

/// A `u32` within `min..=max`.
pub fn uint(v: &str, min: u32, max: u32) -> Result<u32, ValueError> {
    let n = int(v, i64::from(min), i64::from(max))?;
    u32::try_from(n).map_err(|_| ValueError::OutOfRange {
        min: i64::from(min),
        max: i64::from(max),
    })
}

/// A duration: whole seconds (`60`), or a number with an NGINX unit (`500ms`, `60s`, `5m`,
/// `1h`), at most nine digits.
pub fn duration(v: &str) -> Result<Duration, ValueError> {
    const EXPECTED: ValueError =
        ValueError::Expected("seconds, e.g. 60, or a time such as 500ms, 60s, 5m, 1h");
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    if num.is_empty() || num.len() > 9 {
        return Err(EXPECTED);
    }
    let n: u64 = num.parse().map_err(|_| EXPECTED)?;
    let d = match unit {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        _ => return Err(EXPECTED),
    };
    Ok(d)
}

/// A size in bytes, NGINX style: digits with an optional `k`, `m` or `g` suffix (any
/// case). `0` is allowed (callers decide what it means).
pub fn size(v: &str) -> Result<u64, ValueError> {
    const EXPECTED: ValueError = ValueError::Expected("a size such as 1024, 8k, 10m or 1g");
    let (num, mult) = match v.as_bytes().last() {
        Some(b'k' | b'K') => (&v[..v.len() - 1], 1u64 << 10),
        Some(b'm' | b'M') => (&v[..v.len() - 1], 1 << 20),
        Some(b'g' | b'G') => (&v[..v.len() - 1], 1 << 30),
        _ => (v, 1),
    };
    if num.is_empty() || num.len() > 12 || !num.bytes().all(|b| b.is_ascii_digit()) {
        return Err(EXPECTED);
    }
    let n: u64 = num.parse().map_err(|_| EXPECTED)?;
    n.checked_mul(mult).ok_or(EXPECTED)
}

/// Splits a comma-separated list, trimming entries and dropping empty ones.
pub fn comma_list(v: &str) -> Vec<&str> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

/// Splits on commas, or on whitespace when there is no comma.
pub fn comma_or_space_list(v: &str) -> Vec<&str> {
    if v.contains(',') {
        comma_list(v)
    } else {
        v.split_whitespace().collect()
    }
}

/// Splits into lines, trimming them and dropping empty ones.
pub fn lines(v: &str) -> Vec<&str> {
    v.lines().map(str::trim).filter(|s| !s.is_empty()).collect()
}

/// Whether a byte may appear in an HTTP token (RFC 9110: header names, cookie names).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// An HTTP header name, returned in lower case.
pub fn header_name(v: &str) -> Result<String, ValueError> {
    if v.is_empty() {
        return Err(ValueError::Empty);
    }
    if !v.bytes().all(is_tchar) {
        return Err(ValueError::Expected(
            "an HTTP header name (letters, digits and !#$%&'*+-.^_`|~)",
        ));
    }
    Ok(v.to_ascii_lowercase())
}

/// A cookie name (an HTTP token).
pub fn cookie_name(v: &str) -> Result<String, ValueError> {
    if v.is_empty() {
        return Err(ValueError::Empty);
    }
    if !v.bytes().all(is_tchar) {
        return Err(ValueError::Expected("a cookie name (an HTTP token)"));
    }
    Ok(v.to_owned())
}

/// A URL query parameter name: no whitespace, `&`, `=` or `#`.
pub fn query_name(v: &str) -> Result<String, ValueError> {
    if v.is_empty() {
        return Err(ValueError::Empty);
    }
    if v.bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control() || b"&=#".contains(&b))
    {
        return Err(ValueError::Expected("a query parameter name"));
    }
    Ok(v.to_owned())
}

/// Text usable as an HTTP header value: no control characters except tab.
pub fn header_value(v: &str) -> Result<String, ValueError> {
    if v.chars().any(|c| c.is_control() && c != '\t') {
        return Err(ValueError::invalid(
            "header values cannot hold control characters or line breaks",
        ));
    }
    Ok(v.to_owned())
}

/// An HTTP method among the nine standard ones (any case), returned upper case.
pub fn method(v: &str) -> Result<http::Method, ValueError> {
    const METHODS: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
    ];
    let up = v.to_ascii_uppercase();
    if !METHODS.contains(&up.as_str()) {
        return Err(ValueError::Expected(
            "an HTTP method: GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE or PATCH",
        ));
    }
    http::Method::from_bytes(up.as_bytes()).map_err(|_| ValueError::Expected("an HTTP method"))
}

/// An HTTP status code within `min..=max`.
pub fn status(v: &str, min: u16, max: u16) -> Result<u16, ValueError> {
    let n = int(v, i64::from(min), i64::from(max))?;
    u16::try_from(n).map_err(|_| ValueError::OutOfRange {
        min: i64::from(min),
        max: i64::from(max),
    })
}

/// Largest compiled program accepted for a user regex, so that a hostile pattern cannot
/// make compiling slow or large. Matching is linear-time whatever the pattern.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// A regular expression in the `regex` crate's syntax (RE2-like, linear-time matching: no
/// look-around, no backreferences).
pub fn regex(v: &str) -> Result<Regex, ValueError> {
    if v.is_empty() {
        return Err(ValueError::Empty);
    }
    regex::RegexBuilder::new(v)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| {
            // The regex crate's messages span several lines; keep the summary line.
            let text = e.to_string();
            let last = text
                .lines()
                .map(str::trim)
                .rfind(|l| l.starts_with("error:"))
                .map(|l| l.trim_start_matches("error:").trim().to_owned())
                .unwrap_or_else(|| text.lines().next().unwrap_or("").to_owned());
            ValueError::invalid(format!(
                "not a valid regular expression (linear-time RE2 syntax: no look-around or backreferences): {last}"
            ))
        })
}

/// A URL path: starts with `/`, no whitespace or control characters.
pub fn path(v: &str) -> Result<String, ValueError> {
    if !v.starts_with('/') {
        return Err(ValueError::Expected("a path starting with '/'"));
    }
    if v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ValueError::invalid(
            "a path cannot contain spaces or control characters",
        ));
    }
    Ok(v.to_owned())
}

/// Whether `s` is a DNS-1123 label (what Kubernetes allows as a namespace or Service name).
fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Whether `s` is a DNS-1123 subdomain (what Kubernetes allows as a Secret name).
fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// A host name (lower-cased): DNS labels of letters, digits and `-`, at least one.
pub fn host_name(v: &str) -> Result<String, ValueError> {
    let h = v.trim_end_matches('.').to_ascii_lowercase();
    let ok = !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    if ok {
        Ok(h)
    } else {
        Err(ValueError::Expected("a host name such as api.example.com"))
    }
}

/// A host name or a `*.`-wildcard host (lower-cased).
pub fn host_pattern(v: &str) -> Result<String, ValueError> {
    match v.strip_prefix("*.") {
        Some(rest) => host_name(rest)
            .map(|h| format!("*.{h}"))
            .map_err(|_| ValueError::Expected("a host name or a wildcard such as *.example.com")),
        None => host_name(v),
    }
}

/// A host with an optional port (`api.example.com`, `api.example.com:8443`, an IP address).
pub fn authority(v: &str) -> Result<String, ValueError> {
    let ok = v
        .parse::<http::uri::Authority>()
        .is_ok_and(|a| a.as_str() == v && !v.contains('@') && !a.host().is_empty());
    if ok {
        Ok(v.to_ascii_lowercase())
    } else {
        Err(ValueError::Expected(
            "a host with an optional port, e.g. api.example.com:8080",
        ))
    }
}

/// A reference to a namespaced object: `name` or `namespace/name`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ObjectRef {
    /// The namespace, when the reference names one.
    pub namespace: Option<String>,
    /// The object's name.
    pub name: String,
}

impl ObjectRef {
    /// The namespace to read from: the reference's own, else `default_ns`.
    pub fn namespace_or<'a>(&'a self, default_ns: &'a str) -> &'a str {
        self.namespace.as_deref().unwrap_or(default_ns)
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{ns}/{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// A Secret reference, `[namespace/]name`.
pub fn secret_ref(v: &str) -> Result<ObjectRef, ValueError> {
    let (ns, name) = match v.split_once('/') {
        Some((ns, name)) => (Some(ns), name),
        None => (None, v),
    };
    if ns.is_some_and(|ns| !is_dns_label(ns)) || !is_dns_subdomain(name) {
        return Err(ValueError::Expected(
            "a Secret as name or namespace/name (lower-case DNS names)",
        ));
    }
    Ok(ObjectRef {
        namespace: ns.map(str::to_owned),
        name: name.to_owned(),
    })
}

impl std::str::FromStr for ObjectRef {
    type Err = ValueError;

    /// Parses `[namespace/]name` (lower-case DNS names), as [`config_map_ref`] does.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        config_map_ref(s)
    }
}

/// A ConfigMap reference, `[namespace/]name`.
pub fn config_map_ref(v: &str) -> Result<ObjectRef, ValueError> {
    let (ns, name) = match v.split_once('/') {
        Some((ns, name)) => (Some(ns), name),
        None => (None, v),
    };
    if ns.is_some_and(|ns| !is_dns_label(ns)) || !is_dns_subdomain(name) {
        return Err(ValueError::Expected(
            "a ConfigMap as name or namespace/name (lower-case DNS names)",
        ));
    }
    Ok(ObjectRef {
        namespace: ns.map(str::to_owned),
        name: name.to_owned(),
    })
}

/// A Service reference with an optional port: `[namespace/]name[:port]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct ServiceRef {
    /// Namespace and name.
    pub service: ObjectRef,
    /// The port number; `None` means the Service's first port.
    pub port: Option<u16>,
}

impl fmt::Display for ServiceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.service)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for ServiceRef {
    type Err = ValueError;

    /// Parses `[namespace/]name[:port]`, as [`service_ref`] does.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        service_ref(s)
    }
}

/// A Service reference `[namespace/]name[:port]`.
pub fn service_ref(v: &str) -> Result<ServiceRef, ValueError> {
    const EXPECTED: ValueError =
        ValueError::Expected("a Service as name, namespace/name or namespace/name:port");
    let (rest, port) = match v.rsplit_once(':') {
        Some((rest, port)) => {
            let p = int(port, 1, 65535).map_err(|_| EXPECTED)?;
            (rest, Some(u16::try_from(p).map_err(|_| EXPECTED)?))
        }
        None => (v, None),
    };
    let (ns, name) = match rest.split_once('/') {
        Some((ns, name)) => (Some(ns), name),
        None => (None, rest),
    };
    if ns.is_some_and(|ns| !is_dns_label(ns)) || !is_dns_label(name) {
        return Err(EXPECTED);
    }
    Ok(ServiceRef {
        service: ObjectRef {
            namespace: ns.map(str::to_owned),
            name: name.to_owned(),
        },
        port,
    })
}

/// A variable allowed inside a URL template, standing for part of the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum UrlVar {
    /// `$host`: the request's host.
    Host,
    /// `$scheme`: `http` or `https`.
    Scheme,
    /// `$request_uri`: path and query as received.
    RequestUri,
    /// `$escaped_request_uri`: the same, percent-encoded for use in a query parameter.
    EscapedRequestUri,
    /// `$uri`: the normalised path, without the query.
    Uri,
}

impl UrlVar {
    const ALL: [(&'static str, UrlVar, &'static str); 5] = [
        ("host", UrlVar::Host, "example.com"),
        ("scheme", UrlVar::Scheme, "https"),
        ("request_uri", UrlVar::RequestUri, "/p"),
        ("escaped_request_uri", UrlVar::EscapedRequestUri, "%2Fp"),
        ("uri", UrlVar::Uri, "/p"),
    ];

    /// The variable's name without `$`.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, v, _)| *v == self)
            .map_or("", |(n, _, _)| n)
    }
}

/// One piece of a [`UrlTemplate`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UrlPart {
    /// Text copied as is.
    Text(String),
    /// A request variable.
    Var(UrlVar),
}

/// An absolute `http`/`https` URL that may contain the request variables `$host`,
/// `$scheme`, `$request_uri`, `$escaped_request_uri` and `$uri` (also as `${name}`), as
/// ingress-nginx users write for redirects and external auth.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct UrlTemplate {
    /// The text as written.
    pub raw: String,
    /// The text split into literal pieces and variables.
    pub parts: Vec<UrlPart>,
}

impl UrlTemplate {
    /// Whether the URL has no variables.
    pub fn is_literal(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, UrlPart::Text(_)))
    }

    /// Whether it is a path on the request's own host rather than an absolute URL (see
    /// [`redirect_url`]).
    pub fn is_relative(&self) -> bool {
        self.raw.starts_with('/')
    }
}

impl fmt::Display for UrlTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// A redirect target: an absolute `http`/`https` URL as [`url`] takes, or a path on the
/// request's own host (`/new-location`, not `//host`), possibly with request variables.
pub fn redirect_url(v: &str) -> Result<UrlTemplate, ValueError> {
    if v.starts_with('/') && !v.starts_with("//") {
        // Checked as the absolute URL it becomes on some host.
        let checked = url(&format!("http://example.com{v}"))?;
        let parts = match checked.parts.split_first() {
            Some((UrlPart::Text(t), rest)) => {
                let mut parts = Vec::with_capacity(checked.parts.len());
                let path = &t["http://example.com".len()..];
                if !path.is_empty() {
                    parts.push(UrlPart::Text(path.to_owned()));
                }
                parts.extend_from_slice(rest);
                parts
            }
            _ => return Err(ValueError::Expected(REDIRECT_URL)),
        };
        return Ok(UrlTemplate {
            raw: v.to_owned(),
            parts,
        });
    }
    url(v).map_err(|e| match e {
        ValueError::Expected(_) => ValueError::Expected(REDIRECT_URL),
        other => other,
    })
}

const REDIRECT_URL: &str = "an absolute http:// or https:// URL, or a path starting with /";

/// An absolute `http`/`https` URL, possibly with request variables (see [`UrlTemplate`]).
pub fn url(v: &str) -> Result<UrlTemplate, ValueError> {
    if v.is_empty() {
        return Err(ValueError::Empty);
    }
    let mut parts = Vec::new();
    let mut sample = String::new();
    let mut text = String::new();
    let mut rest = v;
    while let Some(i) = rest.find('$') {
        text.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, len) = if let Some(b) = after.strip_prefix('{') {
            let end = b
                .find('}')
                .ok_or_else(|| ValueError::invalid("unterminated ${...} variable"))?;
            (&b[..end], end + 2)
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], end)
        };
        let Some((_, var, example)) = UrlVar::ALL.iter().find(|(n, _, _)| *n == name) else {
            return Err(ValueError::invalid(format!(
                "the NGINX variable ${name} is not supported; only $host, $scheme, $request_uri, $escaped_request_uri and $uri are"
            )));
        };
        sample.push_str(&text);
        sample.push_str(example);
        if !text.is_empty() {
            parts.push(UrlPart::Text(std::mem::take(&mut text)));
        }
        parts.push(UrlPart::Var(*var));
        rest = &after[len..];
    }
    text.push_str(rest);
    sample.push_str(&text);
    if !text.is_empty() {
        parts.push(UrlPart::Text(text));
    }
    let uri: http::Uri = sample
        .parse()
        .map_err(|_| ValueError::Expected("an absolute http:// or https:// URL"))?;
    let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
    if !scheme_ok || uri.authority().is_none_or(|a| a.host().is_empty()) {
        return Err(ValueError::Expected("an absolute http:// or https:// URL"));
    }
    Ok(UrlTemplate {
        raw: v.to_owned(),
        parts,
    })
}

/// A Kubernetes label key or value pair check: `[prefix/]name` with name characters
/// `A-Za-z0-9._-`, at most 63.
pub fn label_name(v: &str) -> Result<String, ValueError> {
    let name = v.rsplit_once('/').map_or(v, |(_, n)| n);
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(v.to_owned())
    } else {
        Err(ValueError::Expected("a Kubernetes label key"))
    }
}

/// A Kubernetes label value (possibly empty): `A-Za-z0-9._-`, at most 63.
pub fn label_value(v: &str) -> Result<String, ValueError> {
    let ok = v.len() <= 63
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(v.to_owned())
    } else {
        Err(ValueError::Expected("a Kubernetes label value"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_follow_go_atoi() {
        assert_eq!(int("+5", 0, 10), Ok(5));
        assert_eq!(int("-1", -5, 10), Ok(-1));
        assert_eq!(
            int("5s", 0, 10),
            Err(ValueError::Expected("a whole number"))
        );
        assert_eq!(
            int("11", 0, 10),
            Err(ValueError::OutOfRange { min: 0, max: 10 })
        );
        assert!(int("99999999999999999999", 0, 10).is_err());
    }

    #[test]
    fn durations_take_seconds_or_nginx_units() {
        assert_eq!(duration("60"), Ok(Duration::from_secs(60)));
        assert_eq!(duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(duration("ten").is_err());
        assert!(duration("1.5s").is_err());
        assert!(duration("2d").is_err());
        assert!(duration("1234567890").is_err());
    }

    #[test]
    fn sizes_take_nginx_suffixes() {
        assert_eq!(size("8m"), Ok(8 << 20));
        assert_eq!(size("8M"), Ok(8 << 20));
        assert_eq!(size("1k"), Ok(1024));
        assert_eq!(size("1g"), Ok(1 << 30));
        assert_eq!(size("0"), Ok(0));
        assert!(size("8mb").is_err());
        assert!(size("m").is_err());
    }

    #[test]
    fn urls_accept_request_variables_only_from_the_supported_set() {
        let t = url("https://$host/oauth2/start?rd=$escaped_request_uri").unwrap();
        assert_eq!(
            t.parts,
            [
                UrlPart::Text("https://".into()),
                UrlPart::Var(UrlVar::Host),
                UrlPart::Text("/oauth2/start?rd=".into()),
                UrlPart::Var(UrlVar::EscapedRequestUri),
            ]
        );
        assert!(url("https://new.example.com${request_uri}").is_ok());
        assert!(url("https://x.test/$remote_addr").is_err());
        assert!(url("/relative").is_err());
        assert!(url("ftp://x.test/").is_err());
        assert!(url("https://").is_err());
    }

    #[test]
    fn config_map_references_are_a_name_or_namespace_and_name() {
        let r = config_map_ref("shop/headers").unwrap();
        assert_eq!(
            (r.namespace.as_deref(), r.name.as_str()),
            (Some("shop"), "headers")
        );
        assert_eq!(config_map_ref("headers.v1").unwrap().namespace, None);
        for bad in ["", "shop/", "/headers", "Bad_Name", "a/b/c"] {
            assert!(config_map_ref(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn references_validate_kubernetes_names() {
        let s = service_ref("shop/mirror:8080").unwrap();
        assert_eq!(s.service.namespace.as_deref(), Some("shop"));
        assert_eq!(s.port, Some(8080));
        assert!(service_ref("Shop").is_err());
        assert!(service_ref("a/b/c").is_err());
        assert!(service_ref("a:0").is_err());
        assert_eq!(secret_ref("tls.example").unwrap().name, "tls.example");
        assert!(secret_ref("ns/").is_err());
    }

    #[test]
    fn regexes_are_linear_time_syntax() {
        assert!(regex("^/api/v[0-9]+").is_ok());
        let e = regex("(?=x)").unwrap_err();
        assert!(e.to_string().contains("look-around"), "{e}");
    }

    #[test]
    fn hosts_and_authorities() {
        assert_eq!(host_name("API.Example.com").unwrap(), "api.example.com");
        assert!(host_name("bad_host").is_err());
        assert_eq!(host_pattern("*.example.com").unwrap(), "*.example.com");
        assert!(host_pattern("*example.com").is_err());
        assert!(authority("svc.ns:8080").is_ok());
        assert!(authority("a b").is_err());
        assert!(authority("user@host").is_err());
    }
}
