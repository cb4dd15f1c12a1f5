//! Canary: `canary`, `canary-by-{header,cookie,query}[-value|-pattern]`, `canary-weight[-total]`.
//!
//! Within one canary Ingress the ingress-nginx order applies: header (or query), then
//! cookie, then weight; `always` forces the canary and `never` forbids it. Several canary
//! Ingresses may target one host and path (the router's job).

use mse_model::Diagnostic;
use regex::Regex;

use crate::IngressPolicy;
use crate::cx::Cx;
use crate::value::{self, ValueError};

/// Whether an Ingress is a canary.
#[derive(Clone, Debug, Default)]
pub enum CanaryState {
    /// `canary` is absent or false: a normal Ingress.
    #[default]
    NotCanary,
    /// `canary` is true.
    Canary(Box<Canary>),
    /// `canary` is set to something that is not a boolean (`"yes"`): the Ingress is left
    /// out, so that it can never take over its main Ingress's routes.
    Invalid,
}

impl CanaryState {
    /// The canary rules, when the Ingress is a valid canary.
    pub fn canary(&self) -> Option<&Canary> {
        match self {
            CanaryState::Canary(c) => Some(c),
            _ => None,
        }
    }
}

/// The rules of one canary Ingress.
#[derive(Clone, Debug)]
pub struct Canary {
    /// `canary-by-header` with its value or pattern.
    pub header: Option<CanaryRule>,
    /// `canary-by-query` with its value or pattern (MSE).
    pub query: Option<CanaryRule>,
    /// `canary-by-cookie` with `canary-by-cookie-value`.
    pub cookie: Option<CanaryRule>,
    /// `canary-weight`, at most `weight_total`.
    pub weight: u32,
    /// `canary-weight-total`.
    pub weight_total: u32,
}

/// One request attribute that can select the canary.
#[derive(Clone, Debug)]
pub struct CanaryRule {
    /// Header name (lower case), cookie name or query parameter name.
    pub name: String,
    /// What selects the canary.
    pub matcher: CanaryMatch,
}

/// How a canary rule's attribute is compared.
#[derive(Clone, Debug)]
pub enum CanaryMatch {
    /// `always` selects the canary, `never` forbids it, anything else falls through.
    AlwaysNever,
    /// This exact value selects the canary (compared literally); anything else falls
    /// through.
    Value(String),
    /// A value in which the regex matches selects the canary.
    Pattern(Regex),
}

pub(crate) fn parse(cx: &mut Cx<'_>, p: &mut IngressPolicy) {
    const RULE_KEYS: [&str; 10] = [
        "canary-by-header",
        "canary-by-header-value",
        "canary-by-header-pattern",
        "canary-by-cookie",
        "canary-by-cookie-value",
        "canary-by-query",
        "canary-by-query-value",
        "canary-by-query-pattern",
        "canary-weight",
        "canary-weight-total",
    ];
    let entries = cx.entries("canary");
    let mut state = None;
    for e in &entries {
        match value::boolean(e.value) {
            Ok(b) => {
                state.get_or_insert(b);
            }
            Err(_) => {
                cx.report(
                    Diagnostic::error(
                        "invalid-canary",
                        "canary must be \"true\" or \"false\"; this Ingress is left out so that it can never take over its main Ingress's routes",
                    ),
                    e.key,
                    Some(e.value),
                );
                state = Some(false);
                p.canary = CanaryState::Invalid;
            }
        }
    }
    if matches!(p.canary, CanaryState::Invalid) {
        // Read the rule keys so they are not reported as unknown; the Ingress is out.
        for k in RULE_KEYS {
            cx.has(k);
        }
        return;
    }
    if state != Some(true) {
        let why = if entries.is_empty() {
            "this Ingress is not a canary (set canary: \"true\")"
        } else {
            "canary is false on this Ingress"
        };
        for k in RULE_KEYS {
            cx.ignored(k, why);
        }
        return;
    }
    let header = rule(
        cx,
        "canary-by-header",
        value::header_name,
        "canary-by-header-value",
        "canary-by-header-pattern",
    );
    let query = rule(
        cx,
        "canary-by-query",
        value::query_name,
        "canary-by-query-value",
        "canary-by-query-pattern",
    );
    let cookie = {
        let name = cx.get("canary-by-cookie", value::cookie_name);
        let v = cx.get("canary-by-cookie-value", literal);
        match name {
            Some(name) => Some(CanaryRule {
                name,
                matcher: v.map_or(CanaryMatch::AlwaysNever, CanaryMatch::Value),
            }),
            None => {
                if v.is_some() {
                    cx.ignored("canary-by-cookie-value", "canary-by-cookie is not set");
                }
                None
            }
        }
    };
    let weight_total = cx
        .get("canary-weight-total", |v| value::uint(v, 1, 1_000_000))
        .unwrap_or(100);
    let mut weight = cx
        .get("canary-weight", |v| value::uint(v, 0, 1_000_000))
        .unwrap_or(0);
    if weight > weight_total {
        for e in cx.entries("canary-weight") {
            cx.report(
                Diagnostic::warning(
                    "invalid-value",
                    format!("canary-weight is more than canary-weight-total ({weight_total}); all requests go to the canary"),
                ),
                e.key,
                Some(e.value),
            );
        }
        weight = weight_total;
    }
    if header.is_none() && query.is_none() && cookie.is_none() && weight == 0 {
        let key = entries.first().map_or("canary", |e| e.key);
        cx.report(
            Diagnostic::warning(
                "canary-without-rule",
                "this canary has no canary-by-header, canary-by-cookie, canary-by-query or canary-weight: it gets no traffic",
            ),
            key,
            None,
        );
    }
    p.canary = CanaryState::Canary(Box::new(Canary {
        header,
        query,
        cookie,
        weight,
        weight_total,
    }));
}

/// Reads a header or query rule: name, then value (literal), else pattern.
fn rule(
    cx: &mut Cx<'_>,
    name_key: &str,
    name_parse: fn(&str) -> Result<String, ValueError>,
    value_key: &str,
    pattern_key: &str,
) -> Option<CanaryRule> {
    let name = cx.get(name_key, name_parse);
    let v = cx.get(value_key, literal);
    let pattern = cx.get(pattern_key, value::regex);
    let Some(name) = name else {
        if v.is_some() {
            cx.ignored(value_key, format!("{name_key} is not set"));
        }
        if pattern.is_some() {
            cx.ignored(pattern_key, format!("{name_key} is not set"));
        }
        return None;
    };
    let matcher = match (v, pattern) {
        (Some(v), pattern) => {
            if pattern.is_some() {
                cx.ignored(
                    pattern_key,
                    format!("{value_key} is set and takes precedence"),
                );
            }
            CanaryMatch::Value(v)
        }
        (None, Some(re)) => CanaryMatch::Pattern(re),
        (None, None) => CanaryMatch::AlwaysNever,
    };
    Some(CanaryRule { name, matcher })
}

/// A literal value: any text usable in a header.
fn literal(v: &str) -> Result<String, ValueError> {
    if v.is_empty() {
        return Err(ValueError::Empty);
    }
    value::header_value(v)
}
