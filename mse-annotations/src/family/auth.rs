//! Authentication: basic auth (`auth-type`, `auth-secret`, `auth-secret-type`,
//! `auth-realm`) and external auth (`auth-url`, `auth-method`, `auth-response-headers`,
//! `auth-signin`). Security keys: whatever cannot be honoured fails closed.

use std::time::Duration;

use mse_model::Diagnostic;

use crate::IngressPolicy;
use crate::cx::{Cx, Secure};
use crate::family::secret;
use crate::value::{self, ObjectRef, UrlTemplate, ValueError};

/// How the users are stored in the basic-auth Secret.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AuthSecretType {
    /// htpasswd lines under the data key `auth`.
    #[default]
    AuthFile,
    /// One data key per user, the value its password hash.
    AuthMap,
}

/// HTTP basic authentication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BasicAuth {
    /// The Secret with the users.
    pub secret: ObjectRef,
    /// Its layout.
    pub secret_type: AuthSecretType,
    /// The realm shown by browsers.
    pub realm: String,
}

/// External authentication: a sub-request decides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExternalAuth {
    /// `auth-url`.
    pub url: UrlTemplate,
    /// `auth-method`.
    pub method: http::Method,
    /// `auth-response-headers` (lower case).
    pub response_headers: Vec<String>,
    /// `auth-signin`: where a 401 redirects.
    pub signin: Option<UrlTemplate>,
    /// `auth-signin-redirect-param`: the parameter of `signin` that says where to come
    /// back to (default `rd`).
    pub signin_param: String,
    /// `auth-request-redirect`: the `X-Auth-Request-Redirect` value; `None`: the request
    /// URI.
    pub request_redirect: Option<String>,
    /// `auth-always-set-cookie`: the answer's `Set-Cookie` goes to the client whatever
    /// the status of the client's answer.
    pub always_set_cookie: bool,
    /// `auth-cache-key`: answers are remembered under this key, when set.
    pub cache_key: Option<CacheKey>,
    /// `auth-cache-duration`: which answers are remembered, and how long.
    pub cache_duration: Vec<CacheValid>,
}

/// `auth-cache-key`: text with NGINX variables, filled in per request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheKey {
    /// As written.
    pub raw: String,
    /// Literal pieces and variables.
    pub parts: Vec<KeyPart>,
}

/// One piece of a [`CacheKey`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyPart {
    /// Copied as is.
    Text(String),
    /// A request variable.
    Var(KeyVar),
}

/// The request variables an `auth-cache-key` may use.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyVar {
    /// `$remote_user`: the user of `Authorization: Basic`.
    RemoteUser,
    /// `$remote_addr`: the client address.
    RemoteAddr,
    /// `$host` (and `$http_host`): the request's host.
    Host,
    /// `$request_uri`: path and query as received.
    RequestUri,
    /// `$uri`: the normalised path.
    Uri,
    /// `$scheme`.
    Scheme,
    /// `$request_method`.
    Method,
    /// `$http_<name>`: a request header (`_` read as `-`, as NGINX does).
    Header(String),
    /// `$cookie_<name>`.
    Cookie(String),
    /// `$arg_<name>`: a query parameter.
    Arg(String),
}

/// One `auth-cache-duration` entry: answers with these statuses are remembered this long.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheValid {
    /// The statuses; empty means any (`any`).
    pub statuses: Vec<u16>,
    /// How long.
    pub ttl: Duration,
}

/// ingress-nginx's default `auth-cache-duration`: `200 202 401 5m`.
pub(crate) fn default_cache_duration() -> Vec<CacheValid> {
    vec![CacheValid {
        statuses: vec![200, 202, 401],
        ttl: Duration::from_secs(300),
    }]
}

/// Authentication of the Ingress's routes; both kinds may be set, and both must pass.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Auth {
    /// Basic auth.
    pub basic: Option<BasicAuth>,
    /// External auth.
    pub external: Option<ExternalAuth>,
}

pub(crate) fn parse(cx: &mut Cx<'_>, p: &mut IngressPolicy) {
    basic(cx, p);
    external(cx, p);
}

fn basic(cx: &mut Cx<'_>, p: &mut IngressPolicy) {
    let ty = cx.get_secure("auth-type", |v| match v.to_ascii_lowercase().as_str() {
        "basic" => Ok(()),
        "digest" => Err(ValueError::Invalid(
            "digest authentication is not available".to_owned(),
        )),
        _ => Err(ValueError::Expected("basic")),
    });
    let secret_ref = secret(cx, "auth-secret", true);
    if matches!((&ty, &secret_ref), (Secure::Absent, Secure::Absent)) {
        cx.ignored("auth-secret-type", "auth-type is not set");
        cx.ignored("auth-realm", "auth-type is not set");
        return;
    }
    let secret_type = cx.get_secure("auth-secret-type", |v| match v {
        "auth-file" => Ok(AuthSecretType::AuthFile),
        "auth-map" => Ok(AuthSecretType::AuthMap),
        _ => Err(ValueError::Expected("auth-file or auth-map")),
    });
    let realm = cx
        .get("auth-realm", |v| {
            if v.contains('"') || v.chars().any(char::is_control) {
                Err(ValueError::Invalid(
                    "a realm cannot contain `\"` or control characters".to_owned(),
                ))
            } else {
                Ok(v.to_owned())
            }
        })
        .unwrap_or_default();
    match (ty, secret_ref) {
        (Secure::Valid(()), Secure::Valid(secret)) => {
            let secret_type = match secret_type {
                Secure::Valid(t) => t,
                Secure::Absent => AuthSecretType::AuthFile,
                // Already failed closed.
                Secure::Invalid => return,
            };
            p.auth.basic = Some(BasicAuth {
                secret,
                secret_type,
                realm,
            });
        }
        (Secure::Valid(()), Secure::Absent) => {
            if let Some(e) = cx.entries("auth-type").first().copied() {
                cx.report(
                    Diagnostic::error(
                        "incomplete-auth",
                        "auth-type is basic but auth-secret is not set; security annotations fail closed: the routes of this Ingress answer 503 until it is fixed",
                    ),
                    e.key,
                    Some(e.value),
                );
                cx.fail(e.key, "auth-type without auth-secret");
            }
        }
        (Secure::Absent, Secure::Valid(_)) => {
            if let Some(e) = cx.entries("auth-secret").first().copied() {
                cx.report(
                    Diagnostic::error(
                        "incomplete-auth",
                        "auth-secret is set but auth-type is not (ingress-nginx would serve these routes without authentication); security annotations fail closed: the routes of this Ingress answer 503 until auth-type: basic is added",
                    ),
                    e.key,
                    Some(e.value),
                );
                cx.fail(e.key, "auth-secret without auth-type");
            }
        }
        // Both absent was handled above; an invalid key already failed closed.
        _ => {}
    }
}

fn external(cx: &mut Cx<'_>, p: &mut IngressPolicy) {
    let url = cx.get_secure("auth-url", value::url);
    if matches!(url, Secure::Absent) {
        let why = "auth-url is not set";
        for k in [
            "auth-method",
            "auth-response-headers",
            "auth-signin",
            "auth-signin-redirect-param",
            "auth-request-redirect",
            "auth-always-set-cookie",
            "auth-cache-key",
            "auth-cache-duration",
        ] {
            cx.ignored(k, why);
        }
        return;
    }
    let method = cx.get_secure("auth-method", value::method);
    let response_headers = cx
        .get_list(
            "auth-response-headers",
            value::comma_list,
            value::header_name,
        )
        .unwrap_or_default();
    let signin = cx.get("auth-signin", value::url);
    let signin_param = cx
        .get("auth-signin-redirect-param", param_name)
        .unwrap_or_else(|| "rd".to_owned());
    let request_redirect = cx.get("auth-request-redirect", value::header_value);
    let always_set_cookie = cx
        .get("auth-always-set-cookie", value::boolean)
        .unwrap_or(false);
    let cache_key = cx.get("auth-cache-key", cache_key);
    let duration = cx.get("auth-cache-duration", cache_duration);
    let cache_duration = match (&cache_key, duration) {
        (Some(_), d) => d.unwrap_or_else(default_cache_duration),
        (None, Some(_)) => {
            cx.ignored("auth-cache-duration", "auth-cache-key is not set");
            Vec::new()
        }
        (None, None) => Vec::new(),
    };
    match url {
        Secure::Valid(url) => {
            let method = match method {
                Secure::Valid(m) => m,
                Secure::Absent => http::Method::GET,
                Secure::Invalid => return,
            };
            p.auth.external = Some(ExternalAuth {
                url,
                method,
                response_headers,
                signin,
                signin_param,
                request_redirect,
                always_set_cookie,
                cache_key,
                cache_duration,
            });
        }
        Secure::Absent | Secure::Invalid => {}
    }
}

/// A query parameter name: letters, digits, `-`, `_`, `.`.
fn param_name(v: &str) -> Result<String, ValueError> {
    if v.is_empty() {
        return Err(ValueError::Empty);
    }
    if v.chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        Ok(v.to_owned())
    } else {
        Err(ValueError::Expected(
            "a query parameter name (letters, digits, -, _, .)",
        ))
    }
}

/// `auth-cache-key`: text and `$name` or `${name}` variables of [`KeyVar`].
pub(crate) fn cache_key(v: &str) -> Result<CacheKey, ValueError> {
    if v.trim().is_empty() {
        return Err(ValueError::Empty);
    }
    let mut parts = Vec::new();
    let mut text = String::new();
    let mut rest = v;
    while let Some(i) = rest.find('$') {
        text.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, next) = match after.strip_prefix('{') {
            Some(b) => {
                let end = b
                    .find('}')
                    .ok_or_else(|| ValueError::Invalid("a `${` without its `}`".to_owned()))?;
                (&b[..end], &b[end + 1..])
            }
            None => {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                (&after[..end], &after[end..])
            }
        };
        if !text.is_empty() {
            parts.push(KeyPart::Text(std::mem::take(&mut text)));
        }
        parts.push(KeyPart::Var(key_var(name)?));
        rest = next;
    }
    text.push_str(rest);
    if !text.is_empty() {
        parts.push(KeyPart::Text(text));
    }
    Ok(CacheKey {
        raw: v.to_owned(),
        parts,
    })
}

fn key_var(name: &str) -> Result<KeyVar, ValueError> {
    let named = |prefix: &str| {
        name.strip_prefix(prefix)
            .filter(|n| !n.is_empty())
            .map(str::to_ascii_lowercase)
    };
    Ok(match name {
        "remote_user" => KeyVar::RemoteUser,
        "remote_addr" => KeyVar::RemoteAddr,
        "host" | "http_host" => KeyVar::Host,
        "request_uri" => KeyVar::RequestUri,
        "uri" => KeyVar::Uri,
        "scheme" => KeyVar::Scheme,
        "request_method" => KeyVar::Method,
        _ => {
            if let Some(h) = named("http_") {
                KeyVar::Header(h.replace('_', "-"))
            } else if let Some(c) = named("cookie_") {
                KeyVar::Cookie(c)
            } else if let Some(a) = named("arg_") {
                KeyVar::Arg(a)
            } else {
                return Err(ValueError::Invalid(format!(
                    "unknown variable ${name} (remote_user, remote_addr, host, request_uri, uri, scheme, request_method, http_*, cookie_*, arg_*)"
                )));
            }
        }
    })
}

/// `auth-cache-duration`: comma-separated `[code ...|any] duration` entries, as NGINX's
/// `proxy_cache_valid` (no code: 200, 301 and 302).
pub(crate) fn cache_duration(v: &str) -> Result<Vec<CacheValid>, ValueError> {
    let mut out = Vec::new();
    for entry in v.split(',').map(str::trim) {
        let words: Vec<&str> = entry.split_whitespace().collect();
        let Some((ttl, codes)) = words.split_last() else {
            return Err(ValueError::Expected("[status ...|any] duration, ..."));
        };
        let ttl = value::duration(ttl)?;
        let mut statuses = Vec::new();
        let mut any = false;
        for c in codes {
            match (*c, c.parse::<u16>()) {
                ("any", _) => any = true,
                (_, Ok(n)) if (100..600).contains(&n) => statuses.push(n),
                _ => {
                    return Err(ValueError::Invalid(format!(
                        "{c:?} is not a status code or `any`"
                    )));
                }
            }
        }
        if any {
            statuses.clear();
        } else if codes.is_empty() {
            statuses = vec![200, 301, 302];
        }
        out.push(CacheValid { statuses, ttl });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_keys_know_nginx_variables() {
        let k = cache_key("$remote_user${http_x_api_key}:$cookie_session").unwrap();
        assert_eq!(
            k.parts,
            [
                KeyPart::Var(KeyVar::RemoteUser),
                KeyPart::Var(KeyVar::Header("x-api-key".to_owned())),
                KeyPart::Text(":".to_owned()),
                KeyPart::Var(KeyVar::Cookie("session".to_owned())),
            ]
        );
        assert!(cache_key("$nope").is_err());
        assert!(cache_key("${http_x").is_err());
    }

    #[test]
    fn cache_durations_read_like_proxy_cache_valid() {
        let d = cache_duration("200 202 10m, 401 5m, any 1m, 30s").unwrap();
        assert_eq!(
            d[0],
            CacheValid {
                statuses: vec![200, 202],
                ttl: Duration::from_secs(600)
            }
        );
        assert_eq!(d[1].statuses, [401]);
        assert!(d[2].statuses.is_empty());
        assert_eq!(d[3].statuses, [200, 301, 302]);
        assert!(cache_duration("200 soon").is_err());
        assert!(cache_duration("999 5m").is_err());
    }
}
