//! The registry: every annotation key the gateway knows, with its grammar, default, scope,
//! origin, support status and one line of documentation.
//!
//! This table is the single source for the parser's defaults and diagnostics, for
//! `docs/annotations.md` ([`crate::support_matrix`]) and for the migration report
//! ([`crate::Migration`]). Keys are listed without prefix; every key is read under all three
//! [`crate::PREFIXES`].
//!
//! The table is kept per family in the submodules and joined, in order, into [`KEYS`].

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

use serde::Serialize;

mod nginx;
mod policy;
mod requests;
mod routing;
mod upstream;
/// Which feature a key belongs to (the sections of the support matrix).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Group {
    /// Canary releases.
    Canary,
    /// Cross-origin resource sharing.
    Cors,
    /// Path rewriting and regex paths.
    Rewrite,
    /// Redirects.
    Redirect,
    /// Upstream protocol and upstream TLS.
    Backend,
    /// Load balancing and session affinity.
    LoadBalancing,
    /// Service subsets, warm-up and connection pools.
    Service,
    /// Client-facing TLS.
    Tls,
    /// IP allow and deny lists.
    AccessControl,
    /// Timeouts.
    Timeout,
    /// Retries.
    Retry,
    /// Rate, connection and body-size limits.
    Limits,
    /// Fallback service and error pages.
    Fallback,
    /// Traffic mirroring.
    Mirror,
    /// Request and response header edits.
    Headers,
    /// Extra match conditions.
    Matching,
    /// Basic and external authentication.
    Auth,
    /// Host aliases and logging.
    Server,
    /// Keys that tune or extend NGINX itself.
    Nginx,
    /// Registry-backed destinations and MCP servers (later).
    Later,
}

impl Group {
    /// Every group, in the order of the support matrix.
    pub const ALL: [Group; 20] = [
        Group::Canary,
        Group::Cors,
        Group::Rewrite,
        Group::Redirect,
        Group::Backend,
        Group::LoadBalancing,
        Group::Service,
        Group::Tls,
        Group::AccessControl,
        Group::Timeout,
        Group::Retry,
        Group::Limits,
        Group::Fallback,
        Group::Mirror,
        Group::Headers,
        Group::Matching,
        Group::Auth,
        Group::Server,
        Group::Nginx,
        Group::Later,
    ];

    /// A heading for the group.
    pub fn title(self) -> &'static str {
        match self {
            Group::Canary => "Canary",
            Group::Cors => "CORS",
            Group::Rewrite => "Rewrite and regex paths",
            Group::Redirect => "Redirects",
            Group::Backend => "Upstream protocol and TLS",
            Group::LoadBalancing => "Load balancing and session affinity",
            Group::Service => "Service subsets and connection pools",
            Group::Tls => "Client TLS and host aliases",
            Group::AccessControl => "IP access control",
            Group::Timeout => "Timeouts",
            Group::Retry => "Retries",
            Group::Limits => "Limits",
            Group::Fallback => "Fallback and error pages",
            Group::Mirror => "Mirroring",
            Group::Headers => "Header edits",
            Group::Matching => "Match conditions",
            Group::Auth => "Authentication",
            Group::Server => "Logging",
            Group::Nginx => "NGINX internals",
            Group::Later => "Not yet supported",
        }
    }
}

/// What a key's setting applies to (Part B §0 of the specification).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// This Ingress's routes.
    Ingress,
    /// Every route of the host, whichever Ingress defines it (the oldest Ingress setting it
    /// wins).
    Host,
    /// The Service port, wherever it is used (the oldest Ingress setting it wins).
    Service,
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scope::Ingress => "Ingress",
            Scope::Host => "host",
            Scope::Service => "Service",
        })
    }
}

/// Where a key comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Compat {
    /// An ingress-nginx key.
    Nginx,
    /// A Higress extension.
    Higress,
    /// An MSE extension.
    Mse,
}

impl fmt::Display for Compat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compat::Nginx => "NGINX",
            Compat::Higress => "Higress ext.",
            Compat::Mse => "MSE ext.",
        })
    }
}

/// How the gateway treats a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case", tag = "status", content = "note")]
pub enum Support {
    /// Parsed and honoured as documented (as in ingress-nginx for NGINX keys).
    Supported,
    /// Parsed and honoured, with semantics that differ from ingress-nginx as described.
    Different(&'static str),
    /// Accepted and ignored: it tunes NGINX itself, which the gateway does not run. An
    /// informational note.
    NoEffect(&'static str),
    /// Accepted and ignored with a warning: the feature is not available (yet). Security
    /// keys among these fail closed.
    Unsupported(&'static str),
    /// Refused with an error: the key injects NGINX configuration.
    Refused(&'static str),
}

/// How a key name is matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pattern {
    /// The key exactly.
    Fixed,
    /// A dynamic family: the name followed by a non-empty suffix (`exact-match-header-X`).
    Prefix,
    /// Any key ending with the name (`*-snippet`).
    Suffix,
}

/// One entry of the registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct KeySpec {
    /// The key without prefix; for a family, the fixed part.
    pub name: &'static str,
    /// How `name` is matched.
    pub pattern: Pattern,
    /// The feature it belongs to.
    pub group: Group,
    /// What the setting applies to.
    pub scope: Scope,
    /// ingress-nginx key or extension.
    pub compat: Compat,
    /// The value grammar, in words.
    pub values: &'static str,
    /// The default, in words; empty when unset means "off" or "none".
    pub default: &'static str,
    /// How the gateway treats it.
    pub support: Support,
    /// Whether a bad value fails closed (the Ingress's routes answer 503) instead of falling
    /// back to the default.
    pub security: bool,
    /// One line of documentation.
    pub doc: &'static str,
    /// A valid example value (tests and docs).
    #[serde(skip)]
    pub valid: &'static str,
    /// An invalid example value, empty when every value is accepted (tests).
    #[serde(skip)]
    pub invalid: &'static str,
}

impl KeySpec {
    /// The key as shown to users: `exact-match-header-<name>`, `*-snippet`, or the name.
    pub fn display_name(&self) -> String {
        match self.pattern {
            Pattern::Fixed => self.name.to_owned(),
            Pattern::Prefix => format!("{}<name>", self.name),
            Pattern::Suffix => format!("*{}", self.name),
        }
    }

    /// Whether `name` (without prefix) is this key or a member of this family.
    pub fn matches(&self, name: &str) -> bool {
        match self.pattern {
            Pattern::Fixed => name == self.name,
            Pattern::Prefix => name.len() > self.name.len() && name.starts_with(self.name),
            Pattern::Suffix => name.len() > self.name.len() && name.ends_with(self.name),
        }
    }

    /// Whether the gateway honours the key (possibly with different semantics).
    pub fn is_supported(&self) -> bool {
        matches!(self.support, Support::Supported | Support::Different(_))
    }

    const fn security(mut self) -> Self {
        self.security = true;
        self
    }
    const fn different(mut self, note: &'static str) -> Self {
        self.support = Support::Different(note);
        self
    }
    const fn family(mut self) -> Self {
        self.pattern = Pattern::Prefix;
        self
    }
    const fn ex(mut self, valid: &'static str, invalid: &'static str) -> Self {
        self.valid = valid;
        self.invalid = invalid;
        self
    }
}

const fn key(
    name: &'static str,
    group: Group,
    scope: Scope,
    compat: Compat,
    values: &'static str,
    default: &'static str,
    doc: &'static str,
) -> KeySpec {
    KeySpec {
        name,
        pattern: Pattern::Fixed,
        group,
        scope,
        compat,
        values,
        default,
        support: Support::Supported,
        security: false,
        doc,
        valid: "",
        invalid: "",
    }
}

/// An NGINX key that has no meaning here (informational note).
const fn nginx_only(name: &'static str, why: &'static str) -> KeySpec {
    nginx_key(name, why, Support::NoEffect(why))
}

/// An NGINX-only key with this support status.
const fn nginx_key(name: &'static str, why: &'static str, support: Support) -> KeySpec {
    let mut k = key(
        name,
        Group::Nginx,
        Scope::Ingress,
        Compat::Nginx,
        "",
        "",
        why,
    );
    k.support = support;
    k
}

/// A key whose feature is not available; a warning (an error that fails closed for
/// security keys).
const fn unsupported(
    name: &'static str,
    group: Group,
    compat: Compat,
    hint: &'static str,
) -> KeySpec {
    let mut k = key(name, group, Scope::Ingress, compat, "", "", hint);
    k.support = Support::Unsupported(hint);
    k
}

const fn refused(name: &'static str, why: &'static str) -> KeySpec {
    nginx_key(name, why, Support::Refused(why))
}

use Compat::{Higress, Mse, Nginx};
use Group as G;
use Scope::{Host, Ingress, Service};

const BOOL: &str = "true or false";
const SECS: &str = "seconds (60) or a time (500ms, 60s, 5m, 1h)";
const CIDRS: &str = "comma list of IP addresses and CIDRs";
const SNIPPET: &str = "snippets inject raw NGINX configuration; mse-ingress runs no NGINX and never executes configuration supplied in an Ingress (in a shared gateway that is a privilege escalation, see CVE-2021-25742); use the typed annotations instead";
const LATER: &str = "not supported yet (registry-backed destinations, Dubbo transcoding and MCP servers come later); the key has no effect";
const CACHE: &str = "buffering and caching are internal to the gateway; the key has no effect";
const TRACING: &str = "metrics and tracing are configured gateway-wide; the key has no effect";

/// The registry's families, in the order of the support matrix.
const FAMILIES: &[&[KeySpec]] = &[
    routing::ROUTING,
    upstream::UPSTREAM,
    policy::POLICY,
    requests::REQUESTS,
    nginx::NGINX,
];

/// How many keys the families hold together.
const COUNT: usize = crate::registry::total_len(FAMILIES);

/// Every key the gateway knows, grouped as in the support matrix.
pub static KEYS: &[KeySpec] =
    &crate::registry::concat::<KeySpec, COUNT>(FAMILIES, nginx_only("", ""));

/// The fixed keys by name, built once.
fn fixed() -> &'static HashMap<&'static str, &'static KeySpec> {
    static FIXED: OnceLock<HashMap<&'static str, &'static KeySpec>> = OnceLock::new();
    FIXED.get_or_init(|| {
        KEYS.iter()
            .filter(|k| k.pattern == Pattern::Fixed)
            .map(|k| (k.name, k))
            .collect()
    })
}

/// The registry entry for a key name (without prefix): an exact key first, then a
/// dynamic family, then a suffix family (`*-snippet`).
pub fn spec(name: &str) -> Option<&'static KeySpec> {
    fixed().get(name).copied().or_else(|| {
        KEYS.iter()
            .filter(|k| k.pattern != Pattern::Fixed)
            .filter(|k| k.matches(name))
            .min_by_key(|k| k.pattern == Pattern::Suffix)
    })
}

/// The known key closest to an unknown one, for "did you mean ...?": within a small edit
/// distance (case ignored), or the only key that contains every word of it, in order.
pub fn suggest(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    let budget = (lower.len() / 4).clamp(1, 3);
    let mut best: Option<(usize, &'static str)> = None;
    let mut rows = Rows::default();
    for k in KEYS.iter().filter(|k| k.pattern == Pattern::Fixed) {
        let limit = best.map_or(budget, |(d, _)| d - 1);
        if k.name.len().abs_diff(lower.len()) > limit {
            continue;
        }
        if let Some(d) = rows.distance(lower.as_bytes(), k.name.as_bytes(), limit) {
            best = Some((d, k.name));
            if d <= 1 {
                break;
            }
        }
    }
    if let Some((_, n)) = best {
        return Some(n);
    }
    // `canary-header` -> `canary-by-header`: a known key that holds every word, in order.
    let words: Vec<&str> = lower.split('-').filter(|w| !w.is_empty()).collect();
    if words.len() >= 2 {
        let mut hits = KEYS.iter().filter(|k| {
            k.pattern == Pattern::Fixed && k.is_supported() && {
                let mut rest = k.name;
                words.iter().all(|w| match rest.find(w) {
                    Some(i) => {
                        rest = &rest[i + w.len()..];
                        true
                    }
                    None => false,
                })
            }
        });
        if let (Some(only), None) = (hits.next(), hits.next()) {
            return Some(only.name);
        }
    }
    None
}

/// Reusable rows for [`Rows::distance`].
#[derive(Default)]
struct Rows {
    prev2: Vec<usize>,
    prev: Vec<usize>,
    cur: Vec<usize>,
}

impl Rows {
    /// Optimal-string-alignment distance (Levenshtein plus adjacent transpositions), if it
    /// is at most `limit`; gives up as soon as a whole row exceeds it.
    fn distance(&mut self, a: &[u8], b: &[u8], limit: usize) -> Option<usize> {
        let n = b.len() + 1;
        for v in [&mut self.prev2, &mut self.prev, &mut self.cur] {
            v.clear();
            v.resize(n, 0);
        }
        for (j, x) in self.prev.iter_mut().enumerate() {
            *x = j;
        }
        for i in 1..=a.len() {
            self.cur[0] = i;
            let mut row_min = i;
            for j in 1..=b.len() {
                let cost = usize::from(a[i - 1] != b[j - 1]);
                let mut v = (self.prev[j] + 1)
                    .min(self.cur[j - 1] + 1)
                    .min(self.prev[j - 1] + cost);
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                    v = v.min(self.prev2[j - 2] + 1);
                }
                self.cur[j] = v;
                row_min = row_min.min(v);
            }
            if row_min > limit {
                return None;
            }
            std::mem::swap(&mut self.prev2, &mut self.prev);
            std::mem::swap(&mut self.prev, &mut self.cur);
        }
        Some(self.prev[b.len()]).filter(|d| *d <= limit)
    }
}

#[cfg(test)]
mod tests;
