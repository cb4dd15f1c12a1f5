//! Extra match conditions: `ignore-path-case`, `match-method`, and the dynamic families
//! `{exact,prefix,regex}-match-{header,pseudo-header,query}-<name>`.

use regex::Regex;

use crate::IngressPolicy;
use crate::cx::Cx;
use crate::value::{self, ValueError};

/// How a value is compared.
#[derive(Clone, Debug)]
pub enum MatchKind {
    /// Equal to.
    Exact(String),
    /// Starts with.
    Prefix(String),
    /// The regex matches the whole value.
    Regex(Regex),
}

/// One condition on a header, pseudo-header or query parameter.
#[derive(Clone, Debug)]
pub struct ValueMatch {
    /// Header name (lower case), pseudo-header with its colon (`:authority`), or query
    /// parameter name.
    pub name: String,
    /// The comparison.
    pub kind: MatchKind,
}

/// Conditions a request must meet, besides host and path, for the Ingress's routes.
#[derive(Clone, Debug, Default)]
pub struct MatchRules {
    /// `ignore-path-case`.
    pub ignore_path_case: bool,
    /// `match-method`; empty means any method.
    pub methods: Vec<http::Method>,
    /// `*-match-header-<name>`.
    pub headers: Vec<ValueMatch>,
    /// `*-match-pseudo-header-<name>`.
    pub pseudo_headers: Vec<ValueMatch>,
    /// `*-match-query-<name>`.
    pub queries: Vec<ValueMatch>,
}

impl MatchRules {
    /// Whether there are conditions beyond host and path.
    pub fn is_empty(&self) -> bool {
        self.methods.is_empty()
            && self.headers.is_empty()
            && self.pseudo_headers.is_empty()
            && self.queries.is_empty()
    }
}

pub(crate) fn parse(cx: &mut Cx<'_>, p: &mut IngressPolicy) {
    let m = &mut p.matching;
    m.ignore_path_case = cx.get("ignore-path-case", value::boolean).unwrap_or(false);
    let mut methods = cx
        .get_list(
            "match-method",
            |v| v.split_whitespace().collect(),
            value::method,
        )
        .unwrap_or_default();
    let mut seen = Vec::new();
    methods.retain(|x| {
        let new = !seen.contains(x);
        seen.push(x.clone());
        new
    });
    m.methods = methods;
    m.headers = family(cx, "match-header-", value::header_name);
    m.pseudo_headers = family(cx, "match-pseudo-header-", |n| match n {
        "authority" | "method" | "path" | "scheme" => Ok(format!(":{n}")),
        _ => Err(ValueError::Expected(
            "a request pseudo-header: authority, method, path or scheme",
        )),
    });
    m.queries = family(cx, "match-query-", value::query_name);
}

/// Reads the three kinds of one family; the key's suffix is the name.
fn family(
    cx: &mut Cx<'_>,
    base: &str,
    name: impl Fn(&str) -> Result<String, ValueError>,
) -> Vec<ValueMatch> {
    let mut out = Vec::new();
    for kind in ["exact", "prefix", "regex"] {
        let prefix = format!("{kind}-{base}");
        for key in cx.family(&prefix) {
            let suffix = &key[prefix.len()..];
            let parsed = match name(suffix) {
                Ok(n) => n,
                Err(e) => {
                    let e = ValueError::Invalid(format!("the name in the key: {e}"));
                    // Report through get() so every prefix's entry is named.
                    cx.get(key, |_| Err::<(), _>(e.clone()));
                    continue;
                }
            };
            let kind = match kind {
                "exact" => cx.get(key, text).map(MatchKind::Exact),
                "prefix" => cx.get(key, text).map(MatchKind::Prefix),
                _ => cx.get(key, value::regex).map(MatchKind::Regex),
            };
            if let Some(kind) = kind {
                out.push(ValueMatch { name: parsed, kind });
            }
        }
    }
    out
}

fn text(v: &str) -> Result<String, ValueError> {
    if v.is_empty() {
        return Err(ValueError::Empty);
    }
    value::header_value(v)
}
