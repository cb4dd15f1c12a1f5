//! [`AuthPolicy`]: basic authentication (`auth-type`, `auth-secret`, `auth-secret-type`,
//! `auth-realm`) and external authentication (`auth-url`, `auth-method`,
//! `auth-response-headers`, `auth-signin`).
//!
//! The compiler completes it once the Secrets and Services are known
//! (`compile/auth.rs`): the users of the basic-auth Secret are read here, at compile time,
//! into a map of user name to [`StoredHash`]; checking a password against a hash is the
//! data plane's job.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use http::{HeaderName, HeaderValue, Method};
use mse_annotations::UrlTemplate;
pub use mse_annotations::{CacheKey, CacheValid, KeyPart, KeyVar};

use super::{Registration, compiled_elsewhere};
use crate::table::ClusterTarget;

/// The authentication annotations. The compiler fills [`RoutePolicy::auth`] (it needs
/// the Secret and the Services).
///
/// [`RoutePolicy::auth`]: super::RoutePolicy::auth
pub(crate) const POLICY: Registration = Registration {
    name: "auth",
    groups: &[],
    keys: &[
        "auth-type",
        "auth-secret",
        "auth-secret-type",
        "auth-realm",
        "auth-url",
        "auth-method",
        "auth-response-headers",
        "auth-signin",
        "auth-signin-redirect-param",
        "auth-request-redirect",
        "auth-always-set-cookie",
        "auth-cache-key",
        "auth-cache-duration",
    ],
    build: compiled_elsewhere,
};

/// How long the data plane waits for the external authentication service's answer head;
/// past it the request fails closed (503).
pub const EXTERNAL_AUTH_TIMEOUT: Duration = Duration::from_secs(5);

/// Authentication of an Ingress's routes: every kind set must pass.
#[derive(Clone, Debug, Default)]
pub struct AuthPolicy {
    /// Basic authentication.
    pub basic: Option<BasicAuthPolicy>,
    /// External authentication.
    pub external: Option<ExternalAuthPolicy>,
}

/// HTTP basic authentication against the users of one Secret.
#[derive(Clone, Debug)]
pub struct BasicAuthPolicy {
    /// The `WWW-Authenticate` value of a 401: `Basic realm="<auth-realm>"`.
    pub challenge: HeaderValue,
    /// The Secret the users come from, `namespace/name`, for logs.
    pub secret: Box<str>,
    users: HashMap<Box<str>, StoredHash>,
}

/// A password hash as stored for one user, its kind recognised at compile time.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredHash {
    /// The scheme.
    pub kind: HashKind,
    /// The hash as written in the Secret (with its `$2y$`, `{SHA}` prefix).
    pub text: Box<str>,
}

impl fmt::Debug for StoredHash {
    /// Leaves the hash out: route dumps and logs never show it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredHash")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// The htpasswd hash schemes the gateway checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HashKind {
    /// bcrypt (`$2a$`, `$2b$`, `$2x$`, `$2y$`; `htpasswd -B`).
    Bcrypt,
    /// `{SHA}` and the base64 of the password's SHA-1 (`htpasswd -s`).
    Sha1,
    /// `{SSHA}`: salted SHA-1, as nginx reads it.
    SaltedSha1,
    /// `{PLAIN}` and the password itself, as nginx reads it.
    Plain,
}

/// External authentication: a subrequest to `url` decides, as ingress-nginx's
/// `auth-url` does.
#[derive(Clone, Debug)]
pub struct ExternalAuthPolicy {
    /// `auth-url`, possibly with request variables.
    pub url: UrlTemplate,
    /// Where to connect when the URL's host names a Service the table knows: its
    /// endpoints (or ExternalName). `None`: the URL's host by DNS.
    pub target: Option<ClusterTarget>,
    /// `auth-method`.
    pub method: Method,
    /// `auth-response-headers`: copied from the answer into the upstream request.
    pub response_headers: Box<[HeaderName]>,
    /// `auth-signin`: where a 401 redirects (with `rd`).
    pub signin: Option<UrlTemplate>,
    /// How long to wait for the answer head.
    pub timeout: Duration,
    /// `auth-request-redirect`: the `X-Auth-Request-Redirect` value; `None`: the request
    /// URI.
    pub request_redirect: Option<HeaderValue>,
    /// `auth-always-set-cookie`: the answer's `Set-Cookie` goes to the client whatever the
    /// status of the client's answer (else with 2xx and 3xx only, as nginx's `add_header`).
    pub always_set_cookie: bool,
    /// `auth-cache-key` and `auth-cache-duration`: which answers are remembered.
    pub cache: Option<AnswerCache>,
}

/// How the answers of an external authentication service are remembered.
#[derive(Clone, Debug)]
pub struct AnswerCache {
    /// The key, filled in per request.
    pub key: CacheKey,
    /// Which statuses are remembered, and how long.
    pub valid: Vec<CacheValid>,
    /// The keyspace: the Ingress (`Ingress namespace/name`), so that two Ingresses never share
    /// an answer, as each ingress-nginx location has its own.
    pub scope: Box<str>,
}

// === impl AnswerCache ===

impl AnswerCache {
    /// How long an answer with `status` is remembered; `None`: not at all.
    pub fn ttl(&self, status: u16) -> Option<Duration> {
        self.valid
            .iter()
            .find(|v| v.statuses.is_empty() || v.statuses.contains(&status))
            .map(|v| v.ttl)
    }
}

// === impl HashKind ===

impl HashKind {
    /// The scheme of a stored hash, or why it is not one the gateway checks.
    pub fn of(hash: &str) -> Result<Self, &'static str> {
        if let Some(rest) = ["$2a$", "$2b$", "$2x$", "$2y$"]
            .iter()
            .find_map(|p| hash.strip_prefix(p))
        {
            // `NN$` cost, then 53 characters of salt and hash.
            return if rest.len() == 56 && rest.as_bytes()[2] == b'$' {
                Ok(Self::Bcrypt)
            } else {
                Err("a malformed bcrypt hash")
            };
        }
        if hash.starts_with("$apr1$") || hash.starts_with("$1$") {
            return Err(
                "an MD5-crypt hash ($apr1$, $1$, `htpasswd -m`), which no maintained library checks; \
                 make the user again with bcrypt (`htpasswd -B`)",
            );
        }
        if let Some(b64) = hash.strip_prefix("{SHA}") {
            return if b64.len() == 28 {
                Ok(Self::Sha1)
            } else {
                Err("a malformed {SHA} hash")
            };
        }
        if let Some(b64) = hash.strip_prefix("{SSHA}") {
            return if b64.len() >= 28 {
                Ok(Self::SaltedSha1)
            } else {
                Err("a malformed {SSHA} hash")
            };
        }
        if hash.starts_with("{PLAIN}") {
            return Ok(Self::Plain);
        }
        if hash.starts_with("$5$") || hash.starts_with("$6$") {
            return Err("a SHA-crypt hash ($5$, $6$), which this gateway does not check");
        }
        Err(
            "not a hash this gateway checks (bcrypt, {SHA}, {SSHA}, {PLAIN}); DES crypt is not available",
        )
    }
}

// === impl BasicAuthPolicy ===

impl BasicAuthPolicy {
    /// A policy with `users`; `realm` goes into the challenge (it holds no `"`, which the
    /// annotation parser refuses).
    pub fn new(realm: &str, secret: &str, users: HashMap<Box<str>, StoredHash>) -> Self {
        let challenge = HeaderValue::from_str(&format!("Basic realm=\"{realm}\""))
            .unwrap_or_else(|_| HeaderValue::from_static("Basic realm=\"\""));
        Self {
            challenge,
            secret: secret.into(),
            users,
        }
    }

    /// The stored hash of `user`.
    pub fn user(&self, user: &str) -> Option<&StoredHash> {
        self.users.get(user)
    }

    /// How many users there are.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether there are no users (every request is refused).
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

/// The users of an htpasswd text (`user:hash` lines; blank lines and `#` comments are
/// skipped), and a message for each line that cannot be used. The first line of a user
/// wins, as in nginx.
pub fn parse_htpasswd(text: &str) -> (HashMap<Box<str>, StoredHash>, Vec<String>) {
    let mut users = HashMap::new();
    let mut problems = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((user, hash)) = line.split_once(':') else {
            problems.push(format!("line {}: expected user:hash", i + 1));
            continue;
        };
        match stored(user, hash) {
            Ok(h) => {
                users.entry(user.into()).or_insert(h);
            }
            Err(why) => problems.push(format!("line {} (user {user:?}): {why}", i + 1)),
        }
    }
    (users, problems)
}

/// One user and hash, checked.
pub(crate) fn stored(user: &str, hash: &str) -> Result<StoredHash, &'static str> {
    if user.is_empty() {
        return Err("empty user name");
    }
    let hash = hash.trim();
    Ok(StoredHash {
        kind: HashKind::of(hash)?,
        text: hash.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn htpasswd_lines_are_classified() {
        let text = "\
# users
alice:$2y$05$0123456789012345678901uKo3lI3f5cZrXx1p5p1b6eQ8y5yJ8q2
bob:$apr1$lZL6V/ci$eIMz/iKDkbtys/uU7LEK00
carol:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=
dave:xxj31ZMTZzkVA
erin
";
        let (users, problems) = parse_htpasswd(text);
        assert_eq!(users["alice"].kind, HashKind::Bcrypt);
        assert!(!users.contains_key("bob"));
        assert_eq!(users["carol"].kind, HashKind::Sha1);
        assert!(!users.contains_key("dave"));
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("bob"), "{problems:?}");
        assert!(problems[0].contains("htpasswd -B"), "{problems:?}");
        assert!(problems[1].contains("dave"), "{problems:?}");
        assert!(problems[2].contains("line 6"), "{problems:?}");
    }

    #[test]
    fn stored_hash_debug_hides_the_hash() {
        let h = stored("u", "{PLAIN}secret").unwrap();
        assert!(!format!("{h:?}").contains("secret"));
    }
}
