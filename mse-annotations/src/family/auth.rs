//! Authentication: basic auth (`auth-type`, `auth-secret`, `auth-secret-type`,
//! `auth-realm`) and external auth (`auth-url`, `auth-method`, `auth-response-headers`,
//! `auth-signin`). Security keys: whatever cannot be honoured fails closed.

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
        for k in ["auth-method", "auth-response-headers", "auth-signin"] {
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
            });
        }
        Secure::Absent | Secure::Invalid => {}
    }
}
