//! Basic authentication (`auth-type: basic`): the access-phase check of the
//! `Authorization: Basic` credentials against the users of the route's Secret.
//!
//! Hashes are checked with maintained crates: `bcrypt` for `$2a$`/`$2b$`/`$2x$`/`$2y$`,
//! and `sha1` for `{SHA}` and `{SSHA}`; results are compared in constant time (`subtle`).
//! MD5-crypt (`$apr1$`, `htpasswd -m`) has no maintained implementation, so its users
//! are refused with a warning when the table is compiled.
//!
//! bcrypt costs milliseconds by design, so each worker remembers the bcrypt credentials
//! it has accepted ([`AuthCache`]): a valid client pays the hash once per worker and
//! lifetime, not per request. The other hashes cost less than the cache's own keyed hash
//! and are checked on every request. An entry's key is an HMAC-SHA256, under a key drawn at random when
//! the process starts, of the Secret's name, the user's stored hash, the user and the
//! password, so that the cache holds no password, cannot be probed without the key, and
//! never matches again once the Secret changes the user's hash or drops the user (the
//! user is looked up in the current Secret first). Only accepted credentials are
//! remembered, at most [`CACHE_ENTRIES`] per worker for at most [`CACHE_LIFETIME`]
//! each. bcrypt itself runs on tokio's blocking threads, at most [`VERIFY_SLOTS`] at
//! once per worker, so that a client sending wrong passwords cannot stall the worker.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{HeaderMap, Response, StatusCode};
use mse_router::{BasicAuthPolicy, HashKind, StoredHash};
use subtle::ConstantTimeEq;

use crate::policy::remembered::{Key as CacheKey, Remembered, keyed};

/// Accepted credentials one worker remembers at most.
pub(crate) const CACHE_ENTRIES: usize = 4096;
/// How long an accepted credential is remembered.
pub(crate) const CACHE_LIFETIME: Duration = Duration::from_secs(300);
/// bcrypt checks one worker runs at once at most.
pub(crate) const VERIFY_SLOTS: usize = 2;

/// What the synchronous part of the check decided.
pub(crate) enum Check {
    /// The credentials are good (remembered, or a fast hash).
    Pass,
    /// Missing or wrong credentials: the 401 to answer.
    Deny(Box<Response<Bytes>>),
    /// A bcrypt hash that must be checked off the worker thread ([`verify_slow`]).
    Slow(Box<Pending>),
}

/// A bcrypt check to run, and what to remember if it passes.
pub(crate) struct Pending {
    hash: Box<str>,
    password: Vec<u8>,
    key: CacheKey,
    challenge: http::HeaderValue,
}

/// One worker's accepted credentials, and its bcrypt slots.
pub(crate) struct AuthCache {
    entries: Remembered<()>,
    slots: tokio::sync::Semaphore,
}

// === impl AuthCache ===

impl AuthCache {
    pub(crate) fn new() -> Self {
        Self {
            entries: Remembered::new(CACHE_ENTRIES),
            slots: tokio::sync::Semaphore::new(VERIFY_SLOTS),
        }
    }

    fn hit(&self, key: &CacheKey, now: Instant) -> bool {
        self.entries.get(key, now).is_some()
    }

    fn remember(&self, key: CacheKey, now: Instant) {
        self.entries.insert(key, (), now + CACHE_LIFETIME, now);
    }
}

/// The access-phase check: `Pass`, the 401, or a bcrypt check still to run.
pub(crate) fn check(policy: &BasicAuthPolicy, headers: &HeaderMap, cache: &AuthCache) -> Check {
    let deny = || Check::Deny(Box::new(unauthorized(&policy.challenge)));
    let Some((user, password)) = credentials(headers) else {
        return deny();
    };
    let Some(stored) = policy.user(&user) else {
        return deny();
    };
    // A fast hash costs less to check than the cache's keyed hash: only bcrypt is
    // remembered.
    if stored.kind != HashKind::Bcrypt {
        return if verify_fast(stored, &password) {
            Check::Pass
        } else {
            deny()
        };
    }
    let key = cache_key(&policy.secret, stored, &user, &password);
    if cache.hit(&key, Instant::now()) {
        return Check::Pass;
    }
    Check::Slow(Box::new(Pending {
        hash: stored.text.clone(),
        password,
        key,
        challenge: policy.challenge.clone(),
    }))
}

/// Runs a bcrypt check on a blocking thread, within the worker's slots; `None` when it
/// passed, else the 401.
pub(crate) async fn verify_slow(p: Box<Pending>, cache: &AuthCache) -> Option<Response<Bytes>> {
    let Pending {
        hash,
        password,
        key,
        challenge,
    } = *p;
    let ok = match cache.slots.acquire().await {
        Ok(_permit) => {
            tokio::task::spawn_blocking(move || bcrypt::verify(&password, &hash).unwrap_or(false))
                .await
                .unwrap_or(false)
        }
        Err(_) => false,
    };
    if ok {
        cache.remember(key, Instant::now());
        None
    } else {
        Some(unauthorized(&challenge))
    }
}

/// The 401 with the route's challenge.
fn unauthorized(challenge: &http::HeaderValue) -> Response<Bytes> {
    let mut r = Response::new(Bytes::from_static(b"401 Unauthorized\n"));
    *r.status_mut() = StatusCode::UNAUTHORIZED;
    r.headers_mut().insert(WWW_AUTHENTICATE, challenge.clone());
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain"),
    );
    r
}

/// User and password of `Authorization: Basic`; `None` when absent or malformed.
fn credentials(headers: &HeaderMap) -> Option<(String, Vec<u8>)> {
    let value = headers.get(AUTHORIZATION)?.as_bytes();
    let (scheme, rest) = value.split_at(value.iter().position(|b| *b == b' ')?);
    if !scheme.eq_ignore_ascii_case(b"basic") {
        return None;
    }
    let decoded = STANDARD.decode(rest.trim_ascii()).ok()?;
    let colon = decoded.iter().position(|b| *b == b':')?;
    let user = std::str::from_utf8(&decoded[..colon]).ok()?.to_owned();
    Some((user, decoded[colon + 1..].to_vec()))
}

/// The user of `Authorization: Basic` (`$remote_user`), unchecked.
pub(crate) fn user(headers: &HeaderMap) -> Option<String> {
    credentials(headers).map(|(u, _)| u)
}

/// The keyed hash a credential is remembered under.
fn cache_key(secret: &str, stored: &StoredHash, user: &str, password: &[u8]) -> CacheKey {
    keyed(&[
        secret.as_bytes(),
        stored.text.as_bytes(),
        user.as_bytes(),
        password,
    ])
}

/// The hashes cheap enough to check on the worker thread.
fn verify_fast(stored: &StoredHash, password: &[u8]) -> bool {
    let text = &*stored.text;
    match stored.kind {
        HashKind::Sha1 => text
            .strip_prefix("{SHA}")
            .and_then(|b64| STANDARD.decode(b64).ok())
            .is_some_and(|want| eq(&sha1(&[password]), &want)),
        HashKind::SaltedSha1 => text
            .strip_prefix("{SSHA}")
            .and_then(|b64| STANDARD.decode(b64).ok())
            .filter(|d| d.len() > 20)
            .is_some_and(|d| eq(&sha1(&[password, &d[20..]]), &d[..20])),
        HashKind::Plain => text
            .strip_prefix("{PLAIN}")
            .is_some_and(|p| eq(p.as_bytes(), password)),
        // bcrypt goes to `verify_slow`; a kind this build does not know never passes.
        _ => false,
    }
}

fn eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

fn sha1(parts: &[&[u8]]) -> [u8; 20] {
    use sha1::Digest;
    let mut h = sha1::Sha1::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_hashes_accept_the_password_and_nothing_else() {
        for (pw, text) in [
            ("s3cret pass", "{SHA}ohgYgF2kkgMlRbH1HlEDczlOc+M="),
            ("plain", "{PLAIN}plain"),
        ] {
            let stored = mse_router::parse_htpasswd(&format!("u:{text}"))
                .0
                .remove("u")
                .unwrap();
            assert!(verify_fast(&stored, pw.as_bytes()), "{text}");
            assert!(!verify_fast(&stored, b"wrong"), "{text}");
        }
    }

    #[test]
    fn remembered_credentials_expire() {
        let cache = AuthCache::new();
        let now = Instant::now();
        let key = [0xff; 16];
        cache.remember(key, now);
        assert!(cache.hit(&key, now));
        assert!(!cache.hit(&key, now + CACHE_LIFETIME));
    }

    #[test]
    fn credentials_are_read_from_basic_only() {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, "basic dTpwOnc=".parse().unwrap());
        assert_eq!(credentials(&h), Some(("u".to_owned(), b"p:w".to_vec())));
        h.insert(AUTHORIZATION, "Bearer dTpwOnc=".parse().unwrap());
        assert_eq!(credentials(&h), None);
    }
}
