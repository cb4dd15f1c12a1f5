//! Rewrites and regex paths: `rewrite-target`, `use-regex`, `full-path-regex`,
//! `rewrite-path`, `upstream-vhost`, `x-forwarded-prefix`.

use mse_model::Diagnostic;

use crate::IngressPolicy;
use crate::cx::Cx;
use crate::value::{self, ValueError};

/// One piece of a [`RewriteTarget`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RewritePart {
    /// Text copied as is.
    Text(String),
    /// A capture group of the matched regex path (`$1` is 1).
    Group(u8),
}

/// `rewrite-target`: a path template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RewriteTarget {
    /// The text as written.
    pub raw: String,
    /// Text and capture groups.
    pub parts: Vec<RewritePart>,
}

impl RewriteTarget {
    /// Whether the template uses capture groups (so the path must be a regex).
    pub fn uses_groups(&self) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, RewritePart::Group(_)))
    }
}

/// Rewrite settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rewrite {
    /// `rewrite-target` (ignored when `rewrite-path` is set).
    pub target: Option<RewriteTarget>,
    /// `rewrite-path`: a plain replacement for the matched prefix or exact path.
    pub path: Option<String>,
    /// `use-regex`.
    pub use_regex: bool,
    /// `full-path-regex` (wins over `use-regex`).
    pub full_path_regex: bool,
    /// `upstream-vhost`: the Host sent upstream.
    pub upstream_vhost: Option<String>,
    /// `x-forwarded-prefix`: the value of an added `X-Forwarded-Prefix` header.
    pub x_forwarded_prefix: Option<String>,
}

pub(crate) fn parse(cx: &mut Cx<'_>, p: &mut IngressPolicy) {
    let r = &mut p.rewrite;
    r.target = cx.get("rewrite-target", target);
    r.path = cx.get("rewrite-path", value::path);
    if r.path.is_some() && r.target.is_some() {
        cx.ignored("rewrite-target", "rewrite-path is set and takes precedence");
        r.target = None;
    }
    r.use_regex = cx.get("use-regex", value::boolean).unwrap_or(false);
    r.full_path_regex = cx.get("full-path-regex", value::boolean).unwrap_or(false);
    if r.full_path_regex && r.use_regex {
        for e in cx.entries("use-regex") {
            cx.report(
                Diagnostic::info(
                    "ignored-annotation",
                    "full-path-regex is set and takes precedence: paths must match in full",
                ),
                e.key,
                Some(e.value),
            );
        }
    }
    r.upstream_vhost = cx.get("upstream-vhost", value::authority);
    r.x_forwarded_prefix = cx.get("x-forwarded-prefix", |v| {
        if v.is_empty() {
            Err(ValueError::Empty)
        } else {
            value::header_value(v)
        }
    });
}

fn target(v: &str) -> Result<RewriteTarget, ValueError> {
    if v.is_empty() {
        return Err(ValueError::Empty);
    }
    if v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ValueError::Invalid(
            "a rewrite target cannot contain spaces or control characters".to_owned(),
        ));
    }
    let mut parts = Vec::new();
    let mut text = String::new();
    let mut chars = v.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '$' {
            text.push(c);
            continue;
        }
        match chars.peek().and_then(|d| d.to_digit(10)) {
            Some(d) => {
                chars.next();
                if !text.is_empty() {
                    parts.push(RewritePart::Text(std::mem::take(&mut text)));
                }
                parts.push(RewritePart::Group(d as u8));
            }
            None => {
                let var: String = chars
                    .clone()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '{')
                    .collect();
                return Err(ValueError::Invalid(format!(
                    "only capture groups $1 to $9 can be used; the NGINX variable ${var} is not supported"
                )));
            }
        }
    }
    if !text.is_empty() {
        parts.push(RewritePart::Text(text));
    }
    if !v.starts_with('/') && !v.starts_with('$') {
        return Err(ValueError::Expected(
            "a path starting with '/' (or with a capture group)",
        ));
    }
    Ok(RewriteTarget {
        raw: v.to_owned(),
        parts,
    })
}
