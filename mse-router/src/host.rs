//! Host matching: exact names, one-label `*.` wildcards and "any host".

use std::borrow::Cow;
use std::fmt;

use serde::{Serialize, Serializer};

/// Which hosts a rule applies to, as written in an Ingress rule (`host`).
///
/// Per the Ingress specification a wildcard covers exactly one DNS label:
/// `*.example.com` matches `a.example.com`, not `example.com` nor `a.b.example.com`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HostMatch {
    /// One host name, lower case, without a port.
    Exact(Box<str>),
    /// `*.<suffix>`: the suffix is stored without the leading `*.`.
    Wildcard(Box<str>),
    /// No host in the rule: any host.
    Any,
}

impl HostMatch {
    /// Parses an Ingress rule's `host` (already validated as a DNS name or `*.` wildcard).
    /// An empty host means [`HostMatch::Any`].
    pub fn parse(host: &str) -> Result<HostMatch, String> {
        let h = host.trim().to_ascii_lowercase();
        if h.is_empty() {
            return Ok(HostMatch::Any);
        }
        let (wild, name) = match h.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, h.as_str()),
        };
        let valid = !name.is_empty()
            && name.len() <= 253
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
        if !valid {
            return Err(format!(
                "{host:?} is not a DNS name or a `*.` wildcard of one (the Ingress specification allows no port, IP address or other wildcard)"
            ));
        }
        Ok(if wild {
            HostMatch::Wildcard(name.into())
        } else {
            HostMatch::Exact(name.into())
        })
    }

    /// Whether this host pattern matches `host` (already normalised by [`normalize_host`]).
    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostMatch::Exact(h) => **h == *host,
            HostMatch::Wildcard(suffix) => wildcard_suffix(host) == Some(suffix),
            HostMatch::Any => true,
        }
    }
}

/// The part of `host` a one-label wildcard is keyed by: everything after the first label.
pub(crate) fn wildcard_suffix(host: &str) -> Option<&str> {
    let (first, rest) = host.split_once('.')?;
    (!first.is_empty() && !rest.is_empty()).then_some(rest)
}

impl fmt::Display for HostMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostMatch::Exact(h) => f.write_str(h),
            HostMatch::Wildcard(s) => write!(f, "*.{s}"),
            HostMatch::Any => f.write_str("*"),
        }
    }
}

impl Serialize for HostMatch {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Normalises a request's host (the `Host` header or `:authority`) for matching: the port
/// and a trailing dot are removed and ASCII letters are lower-cased. IPv6 literals keep
/// their brackets. Borrows when nothing changes.
pub fn normalize_host(host: &str) -> Cow<'_, str> {
    let mut h = host;
    if h.starts_with('[') {
        // [v6]:port -> [v6]
        if let Some(end) = h.find(']') {
            h = &h[..=end];
        }
    } else if let Some(colon) = h.bytes().rposition(|b| b == b':')
        && h.as_bytes()[colon + 1..].iter().all(u8::is_ascii_digit)
    {
        h = &h[..colon];
    }
    let h = h.strip_suffix('.').unwrap_or(h);
    if h.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(h.to_ascii_lowercase())
    } else {
        Cow::Borrowed(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_normalisation_drops_port_case_and_trailing_dot() {
        assert_eq!(normalize_host("Shop.Example.COM:8443"), "shop.example.com");
        assert_eq!(normalize_host("shop.example.com."), "shop.example.com");
        assert_eq!(normalize_host("[::1]:80"), "[::1]");
        assert!(matches!(normalize_host("a.b"), Cow::Borrowed(_)));
    }

    #[test]
    fn wildcard_covers_exactly_one_label() {
        let w = HostMatch::parse("*.example.com").unwrap();
        assert!(w.matches("a.example.com"));
        assert!(!w.matches("example.com"));
        assert!(!w.matches("a.b.example.com"));
        assert!(!w.matches(".example.com"));
    }

    #[test]
    fn invalid_hosts_are_rejected() {
        for bad in [
            "a_b.com",
            "foo.*.com",
            "*",
            "a..b",
            "-a.com",
            "host:80",
            "*.*.a",
        ] {
            assert!(HostMatch::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(HostMatch::parse("").unwrap(), HostMatch::Any);
        assert_eq!(
            HostMatch::parse("A.com").unwrap(),
            HostMatch::Exact("a.com".into())
        );
    }
}
