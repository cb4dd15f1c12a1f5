//! Rewrites: `rewrite-path`, `rewrite-target` (a prefix replacement, or a template over
//! the path regex's capture groups), `upstream-vhost` and `x-forwarded-prefix`.

use http::{HeaderName, HeaderValue};
use mse_annotations::{Group, IngressPolicy, RewritePart, RewriteTarget};

use super::{Refused, Registration, RoutePolicy};
use crate::path::{Groups, PathMatch};

/// The rewrite annotations: applied to the request sent upstream.
pub(crate) const POLICY: Registration = Registration {
    name: "rewrite",
    groups: &[Group::Rewrite],
    keys: &[],
    build,
};

pub(super) const X_FORWARDED_PREFIX: HeaderName = HeaderName::from_static("x-forwarded-prefix");

fn build(p: &IngressPolicy, policy: &mut RoutePolicy, _refused: &mut Vec<Refused>) {
    policy.rewrite = rewrite_of(p).map(Box::from);
    policy.rewrite_template = p
        .rewrite
        .target
        .clone()
        .filter(|_| p.rewrite.path.is_none());
    policy.upstream_vhost = p
        .rewrite
        .upstream_vhost
        .as_deref()
        .and_then(|v| HeaderValue::from_str(v).ok());
    policy.forwarded_prefix = p
        .rewrite
        .x_forwarded_prefix
        .as_deref()
        .and_then(|v| HeaderValue::from_str(v).ok());
}

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

// === impl RoutePolicy ===

impl RoutePolicy {
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
}
