//! URL paths and query strings of the Kubernetes REST API.

use crate::error::ApiError;
use crate::resources::{ResourceId, by_plural, resource, serves_group_version};

/// What a URL path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// `/version`
    Version,
    /// `/healthz`, `/livez`, `/readyz`
    Health,
    /// `/api`
    ApiVersions,
    /// `/apis`
    GroupList,
    /// `/apis/GROUP`
    Group(String),
    /// `/api/v1`, `/apis/GROUP/VERSION`
    ResourceList { group: String, version: String },
    /// `.../[namespaces/NS/]PLURAL`
    Collection {
        res: ResourceId,
        ns: Option<String>,
        /// Under the legacy `/watch/` prefix.
        watch: bool,
    },
    /// `.../[namespaces/NS/]PLURAL/NAME[/status]`
    Object {
        res: ResourceId,
        ns: Option<String>,
        name: String,
        status: bool,
        watch: bool,
    },
}

fn unknown(path: &str) -> ApiError {
    ApiError::UnknownPath(path.to_owned())
}

/// Parses a request path.
pub(crate) fn parse(path: &str) -> Result<Route, ApiError> {
    let trimmed = path.strip_prefix('/').unwrap_or(path);
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    let segments: Vec<&str> = trimmed.split('/').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Err(unknown(path));
    }
    match segments.as_slice() {
        ["version"] => Ok(Route::Version),
        ["healthz" | "livez" | "readyz"] => Ok(Route::Health),
        ["api"] => Ok(Route::ApiVersions),
        ["apis"] => Ok(Route::GroupList),
        ["apis", group] => Ok(Route::Group((*group).to_owned())),
        ["api", version, rest @ ..] => resources(path, "", version, rest),
        ["apis", group, version, rest @ ..] => resources(path, group, version, rest),
        _ => Err(unknown(path)),
    }
}

fn resources(path: &str, group: &str, version: &str, rest: &[&str]) -> Result<Route, ApiError> {
    if !serves_group_version(group, version) {
        return Err(unknown(path));
    }
    let (watch, rest) = match rest {
        ["watch", rest @ ..] => (true, rest),
        _ => (false, rest),
    };
    let (ns, rest) = match rest {
        [] if !watch => {
            return Ok(Route::ResourceList {
                group: group.to_owned(),
                version: version.to_owned(),
            });
        }
        ["namespaces", _, "status" | "finalize"] => (None, rest),
        ["namespaces", ns, rest @ ..] if !rest.is_empty() => (Some((*ns).to_owned()), rest),
        _ => (None, rest),
    };
    let (plural, name, sub) = match rest {
        [plural] => (*plural, None, None),
        [plural, name] => (*plural, Some(*name), None),
        [plural, name, sub] => (*plural, Some(*name), Some(*sub)),
        _ => return Err(unknown(path)),
    };
    let res = by_plural(group, version, plural).ok_or_else(|| unknown(path))?;
    let r = resource(res);
    if ns.is_some() && !r.namespaced || ns.is_none() && r.namespaced && name.is_some() {
        return Err(unknown(path));
    }
    let status = match sub {
        None => false,
        Some("status") if r.status => true,
        Some(_) => return Err(unknown(path)),
    };
    Ok(match name {
        None => Route::Collection { res, ns, watch },
        Some(name) => Route::Object {
            res,
            ns,
            name: name.to_owned(),
            status,
            watch,
        },
    })
}

/// The decoded pairs of a query string.
#[derive(Debug, Clone, Default)]
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    pub(crate) fn parse(query: &str) -> Self {
        Self(
            query
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    (decode(k), decode(v))
                })
                .collect(),
        )
    }

    /// The first value of `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Whether `key` is `true` (or `1`).
    pub(crate) fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }
}

/// Percent-decoding with `+` as space, as `application/x-www-form-urlencoded` queries use;
/// a malformed escape is kept as written.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let hex = |b: u8| char::from(b).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| Some((hex(*bytes.get(i + 1)?)?, hex(*bytes.get(i + 2)?)?)))
            .flatten();
        match (bytes[i], escaped) {
            (_, Some((hi, lo))) => {
                out.push(u8::try_from(hi * 16 + lo).unwrap_or(b'?'));
                i += 3;
            }
            (b'+', None) => {
                out.push(b' ');
                i += 1;
            }
            (b, None) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::by_kind;

    #[test]
    fn namespaced_and_cluster_paths() {
        let ing = by_kind("networking.k8s.io/v1", "Ingress").unwrap();
        assert_eq!(
            parse("/apis/networking.k8s.io/v1/namespaces/shop/ingresses/web/status").unwrap(),
            Route::Object {
                res: ing,
                ns: Some("shop".into()),
                name: "web".into(),
                status: true,
                watch: false
            }
        );
        assert_eq!(
            parse("/apis/networking.k8s.io/v1/ingresses").unwrap(),
            Route::Collection {
                res: ing,
                ns: None,
                watch: false
            }
        );
        let ns = by_kind("v1", "Namespace").unwrap();
        assert_eq!(
            parse("/api/v1/namespaces/shop/status").unwrap(),
            Route::Object {
                res: ns,
                ns: None,
                name: "shop".into(),
                status: true,
                watch: false
            }
        );
        assert_eq!(
            parse("/api/v1/namespaces").unwrap(),
            Route::Collection {
                res: ns,
                ns: None,
                watch: false
            }
        );
        assert!(matches!(
            parse("/api/v1/watch/namespaces/a/services").unwrap(),
            Route::Collection { watch: true, .. }
        ));
    }

    #[test]
    fn unknown_paths_are_not_found() {
        for path in [
            "/",
            "/api/v2",
            "/apis/apps/v1/namespaces/a/widgets",
            "/api/v1/services/web",
            "/apis/networking.k8s.io/v1/namespaces/a/ingressclasses",
            "/api/v1/namespaces/a/configmaps/c/status",
            "/api/v1/namespaces/a/services/s/status/extra",
            "//api",
        ] {
            let err = parse(path).unwrap_err();
            assert_eq!(err.code(), 404, "{path}");
        }
    }

    #[test]
    fn queries_are_decoded() {
        let q = Query::parse("labelSelector=app%3Dweb%2Ctier+in+%28a%29&watch=true&bad=%zz");
        assert_eq!(q.get("labelSelector"), Some("app=web,tier in (a)"));
        assert!(q.flag("watch"));
        assert_eq!(q.get("bad"), Some("%zz"));
        assert_eq!(q.get("missing"), None);
    }
}
