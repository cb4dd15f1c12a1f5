//! CORS: `enable-cors` and the `cors-*` keys.

use std::time::Duration;

use crate::IngressPolicy;
use crate::cx::Cx;
use crate::value::{self, ValueError};

/// Either everything (`*`) or a list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Allow<T> {
    /// `*`.
    Any,
    /// These only.
    Only(Vec<T>),
}

/// One allowed origin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OriginPattern {
    /// `scheme://host[:port]`, lower case.
    Exact(String),
    /// `scheme://*.suffix`: any subdomain of `suffix` with that scheme.
    Subdomains {
        /// `http` or `https`.
        scheme: String,
        /// The domain after `*.`, lower case, with `:port` when one is written.
        suffix: String,
    },
}

/// CORS settings, present when `enable-cors` is true.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cors {
    /// `cors-allow-origin`.
    pub allow_origin: Allow<OriginPattern>,
    /// `cors-allow-methods`.
    pub allow_methods: Allow<http::Method>,
    /// `cors-allow-headers` (lower case).
    pub allow_headers: Allow<String>,
    /// `cors-expose-headers` (lower case).
    pub expose_headers: Allow<String>,
    /// `cors-allow-credentials`.
    pub allow_credentials: bool,
    /// `cors-max-age`.
    pub max_age: Duration,
}

const DEFAULT_METHODS: [&str; 6] = ["GET", "PUT", "POST", "DELETE", "PATCH", "OPTIONS"];
const DEFAULT_HEADERS: [&str; 9] = [
    "dnt",
    "x-customheader",
    "keep-alive",
    "user-agent",
    "x-requested-with",
    "if-modified-since",
    "cache-control",
    "content-type",
    "authorization",
];

pub(crate) fn parse(cx: &mut Cx<'_>, p: &mut IngressPolicy) {
    const KEYS: [&str; 6] = [
        "cors-allow-origin",
        "cors-allow-methods",
        "cors-allow-headers",
        "cors-expose-headers",
        "cors-allow-credentials",
        "cors-max-age",
    ];
    if !cx.get("enable-cors", value::boolean).unwrap_or(false) {
        for k in KEYS {
            cx.ignored(k, "enable-cors is not \"true\"");
        }
        return;
    }
    let allow_origin =
        any_or(cx.get_list("cors-allow-origin", value::comma_list, origin)).unwrap_or(Allow::Any);
    let allow_methods = any_or(cx.get_list("cors-allow-methods", value::comma_list, |v| {
        star_or(v, value::method)
    }))
    .unwrap_or_else(|| {
        Allow::Only(
            DEFAULT_METHODS
                .iter()
                .filter_map(|m| value::method(m).ok())
                .collect(),
        )
    });
    let allow_headers = any_or(cx.get_list("cors-allow-headers", value::comma_list, |v| {
        star_or(v, value::header_name)
    }))
    .unwrap_or_else(|| Allow::Only(DEFAULT_HEADERS.iter().map(|h| (*h).to_owned()).collect()));
    let expose_headers = any_or(cx.get_list("cors-expose-headers", value::comma_list, |v| {
        star_or(v, value::header_name)
    }))
    .unwrap_or(Allow::Only(Vec::new()));
    let allow_credentials = cx
        .get("cors-allow-credentials", value::boolean)
        .unwrap_or(true);
    let max_age = cx
        .get("cors-max-age", value::duration)
        .unwrap_or(Duration::from_secs(1_728_000));
    p.cors = Some(Cors {
        allow_origin,
        allow_methods,
        allow_headers,
        expose_headers,
        allow_credentials,
        max_age,
    });
}

/// A list entry: `*` (as `None`) or a parsed item.
fn star_or<T>(v: &str, f: impl Fn(&str) -> Result<T, ValueError>) -> Result<Option<T>, ValueError> {
    if v == "*" { Ok(None) } else { f(v).map(Some) }
}

/// A `*` anywhere makes the list "any".
fn any_or<T>(list: Option<Vec<Option<T>>>) -> Option<Allow<T>> {
    let list = list?;
    if list.iter().any(Option::is_none) {
        Some(Allow::Any)
    } else {
        Some(Allow::Only(list.into_iter().flatten().collect()))
    }
}

fn origin(v: &str) -> Result<Option<OriginPattern>, ValueError> {
    if v == "*" {
        return Ok(None);
    }
    let Some((scheme, rest)) = v.split_once("://") else {
        return Err(ValueError::Expected(
            "`*` or an origin with a scheme, such as https://a.example.com or https://*.example.com",
        ));
    };
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(ValueError::Expected("an http:// or https:// origin"));
    }
    if let Some(rest) = rest.strip_prefix("*.") {
        // `https://*.example.com:8443`: the port, when written, must match too.
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) => (host, Some(value::int(port, 1, 65535)?)),
            None => (rest, None),
        };
        let mut suffix = value::host_name(host)?;
        if let Some(port) = port {
            suffix = format!("{suffix}:{port}");
        }
        return Ok(Some(OriginPattern::Subdomains { scheme, suffix }));
    }
    value::authority(rest)?;
    Ok(Some(OriginPattern::Exact(format!(
        "{scheme}://{}",
        rest.to_ascii_lowercase()
    ))))
}
