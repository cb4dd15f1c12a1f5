//! Paths into routes: the route key (host, path, conditions), first definition wins, and
//! the lookup maps of each virtual host.

use std::collections::HashMap;

use mse_annotations::IngressPolicy;
use mse_model::Diagnostic;

use super::{Compiler, HostOrder, RouteAttrs, Selected};
use crate::host::HostMatch;
use crate::matching::Conditions;
use crate::path::{PathMatch, RegexPath, normalize_path};
use crate::table::{Candidates, FastMap, Route, RouteId};

/// The regex paths of one compile, by pattern, `full-path-regex` and `ignore-path-case`:
/// every route with the same regex path shares one compiled regex and its match caches.
pub(super) type RegexCache = HashMap<(Box<str>, bool, bool), Result<RegexPath, String>>;

/// What makes two routes the same, for the duplicate error.
struct RouteKey<'a> {
    host: &'a HostMatch,
    path: &'a PathMatch,
    default_backend: bool,
    cond_key: Option<&'a str>,
}

// === impl Compiler ===

impl<'s> Compiler<'s> {
    /// Adds a route unless an older one has the same key (or, for a default backend, the
    /// same host): the first definition wins, and the later one gets an error naming it.
    pub(super) fn insert_route(
        &mut self,
        sel: &Selected<'s>,
        host: HostMatch,
        path: PathMatch,
        default_backend: bool,
        field: Box<str>,
        attrs: RouteAttrs,
    ) {
        let id = RouteId(self.routes.len() as u32);
        let RouteAttrs {
            backend,
            policy,
            ignore_case,
            conditions,
        } = attrs;
        // Regex paths carry the case flag in the regex.
        let ignore_case = ignore_case && matches!(path, PathMatch::Exact(_) | PathMatch::Prefix(_));
        let cond_key: Option<Box<str>> = conditions.as_deref().map(|c| c.key().into());
        let existing = if default_backend {
            self.vhosts
                .get(&HostOrder::of(&host))
                .and_then(|vh| vh.fallback)
        } else {
            self.find_route(&host, &path, ignore_case, cond_key.as_deref())
        };
        if let Some(winner) = existing {
            let key = RouteKey {
                host: &host,
                path: &path,
                default_backend,
                cond_key: cond_key.as_deref(),
            };
            self.report_duplicate(sel, winner, &key, &field);
            return;
        }
        self.routes.push(Route {
            id,
            host,
            path,
            ignore_case,
            conditions,
            default_backend,
            ingress: sel.key.clone(),
            field,
            source: sel.source.cloned(),
            backend,
            policy,
            canary: None,
            // Resolved in `finish`, once every certificate is known.
            https_redirect: false,
            own_certificate: false,
            // Resolved in `resolve_access`, once every host's lists are known.
            access: None,
        });
        self.index_route(id);
    }

    /// The error for a route whose key an older route already has.
    fn report_duplicate(
        &mut self,
        sel: &Selected<'s>,
        winner: RouteId,
        key: &RouteKey<'_>,
        field: &str,
    ) {
        let RouteKey {
            host,
            path,
            default_backend,
            cond_key,
        } = key;
        let w = &self.routes[winner.0 as usize];
        let (code, what) = if *default_backend {
            (
                "duplicate-default-backend",
                format!("the default backend for host {host}"),
            )
        } else if let Some(k) = cond_key {
            (
                "duplicate-route",
                format!("host {host}, path {path} and conditions {k}"),
            )
        } else {
            ("duplicate-route", format!("host {host} and path {path}"))
        };
        let by = if w.ingress == sel.key {
            format!("earlier in this Ingress at {}", w.field)
        } else {
            format!("by the older {} at {}", w.ingress, w.field)
        };
        let d = Diagnostic::error(
            code,
            format!("{what} is already defined {by}; this one is left out"),
        );
        self.diag(d, sel, Some(field));
    }

    /// Puts a new route in its virtual host's lookup map for its kind of path.
    fn index_route(&mut self, id: RouteId) {
        let routes = &self.routes;
        let route = &routes[id.0 as usize];
        let vh = self.vhosts.entry(HostOrder::of(&route.host)).or_default();
        let add = |map: &mut FastMap<Box<str>, Candidates>, key: &str| {
            let merged = match map.remove(key) {
                None => Candidates::One(id),
                Some(c) => {
                    let mut ids = c.ids().to_vec();
                    ids.push(id);
                    // Ids grow with age, so equal ranks keep the older route first.
                    ids.sort_by_key(|i| {
                        let r = &routes[i.0 as usize];
                        (Conditions::rank(r.conditions.as_deref()), *i)
                    });
                    Candidates::Many(ids.into())
                }
            };
            map.insert(key.into(), merged);
        };
        match (&route.path, route.default_backend, route.ignore_case) {
            (_, true, _) => vh.fallback = Some(id),
            (PathMatch::Exact(p), false, false) => add(&mut vh.exact, p),
            (PathMatch::Prefix(p), false, false) => add(&mut vh.prefix, p),
            (PathMatch::Exact(p), false, true) => add(&mut vh.exact_ci, &p.to_ascii_lowercase()),
            (PathMatch::Prefix(p), false, true) => {
                add(&mut vh.prefix_ci, &p.to_ascii_lowercase());
            }
            (PathMatch::Regex(_), false, _) => vh.regex.push(id),
        }
    }

    /// The main route with exactly this host, path and conditions, if any.
    pub(super) fn find_route(
        &self,
        host: &HostMatch,
        path: &PathMatch,
        ignore_case: bool,
        cond_key: Option<&str>,
    ) -> Option<RouteId> {
        let vh = self.vhosts.get(&HostOrder::of(host))?;
        let ids: &[RouteId] = match (path, ignore_case) {
            (PathMatch::Exact(p), false) => vh.exact.get(p).map_or(&[], |c| c.ids()),
            (PathMatch::Prefix(p), false) => vh.prefix.get(p).map_or(&[], |c| c.ids()),
            (PathMatch::Exact(p), true) => vh
                .exact_ci
                .get(p.to_ascii_lowercase().as_str())
                .map_or(&[], |c| c.ids()),
            (PathMatch::Prefix(p), true) => vh
                .prefix_ci
                .get(p.to_ascii_lowercase().as_str())
                .map_or(&[], |c| c.ids()),
            (PathMatch::Regex(_), _) => &vh.regex,
        };
        ids.iter().copied().find(|id| {
            let r = &self.routes[id.0 as usize];
            r.path == *path && r.conditions.as_deref().map(Conditions::key) == cond_key
        })
    }
}

/// Characters that make a path a regex when `rewrite-target` is set (Higress).
const REGEX_CHARS: &[char] = &[
    '\\', '.', '+', '*', '?', '(', ')', '|', '[', ']', '{', '}', '^', '$',
];

/// The regex a Prefix or ImplementationSpecific path becomes, if it becomes one:
/// `full-path-regex` (whole path), `use-regex`, or `rewrite-target` with capture groups or
/// on a path with regex characters (the start of the path), as Higress does. `None`:
/// the path stays a Prefix.
fn regex_path(
    policy: &IngressPolicy,
    raw: &str,
    path_type: &str,
    regexes: &mut RegexCache,
) -> Option<Result<RegexPath, String>> {
    if path_type == "Exact" {
        return None;
    }
    let r = &policy.rewrite;
    let by_target = r.path.is_none()
        && r.target
            .as_ref()
            .is_some_and(|t| t.uses_groups() || raw.contains(REGEX_CHARS));
    if !(r.full_path_regex || r.use_regex || by_target) {
        return None;
    }
    let key = (
        raw.into(),
        r.full_path_regex,
        policy.matching.ignore_path_case,
    );
    let compiled = regexes
        .entry(key)
        .or_insert_with_key(|(raw, full, ignore_case)| RegexPath::new(raw, *full, *ignore_case));
    Some(compiled.clone())
}

/// An Exact or Prefix path (normalised; a Prefix without its trailing slash).
fn plain_path(raw: &str, path_type: &str) -> PathMatch {
    let normal = normalize_path(raw);
    if path_type == "Exact" {
        PathMatch::Exact(normal.into())
    } else {
        PathMatch::Prefix(normal.trim_end_matches('/').into())
    }
}

/// The path of one `paths[]` entry as routes key it: Exact, Prefix, or the regex the
/// Ingress's annotations make of it. An invalid entry is an Error diagnostic, with the
/// suffix of the field it is about (`""`, `.path`, `.pathType`); the entry is left out.
pub(super) fn path_match(
    policy: &IngressPolicy,
    raw: Option<&str>,
    path_type: &str,
    regexes: &mut RegexCache,
) -> Result<PathMatch, Box<(Diagnostic, &'static str)>> {
    let raw = raw.filter(|p| !p.is_empty()).unwrap_or("/");
    if !raw.starts_with('/') {
        let d = Diagnostic::error(
            "invalid-path",
            "path must start with '/'; this path is left out",
        );
        return Err(Box::new((d.value(raw), "")));
    }
    if !matches!(
        path_type,
        "Exact" | "Prefix" | "ImplementationSpecific" | ""
    ) {
        let d = Diagnostic::error(
            "invalid-path-type",
            "pathType must be Exact, Prefix or ImplementationSpecific; this path is left out",
        );
        return Err(Box::new((d.value(path_type), ".pathType")));
    }
    match regex_path(policy, raw, path_type, regexes) {
        None => Ok(plain_path(raw, path_type)),
        Some(Ok(r)) => Ok(PathMatch::Regex(r)),
        Some(Err(e)) => {
            let d = Diagnostic::error(
                "invalid-path",
                format!(
                    "the path is a regex here ({}) and does not compile: {e}; this path is left out",
                    regex_reason(policy)
                ),
            );
            Err(Box::new((d.value(raw), ".path")))
        }
    }
}

/// Which annotation made a path a regex, for diagnostics.
fn regex_reason(policy: &IngressPolicy) -> &'static str {
    let r = &policy.rewrite;
    if r.full_path_regex {
        "full-path-regex"
    } else if r.use_regex {
        "use-regex"
    } else {
        "rewrite-target"
    }
}
