//! Path normalisation and path match kinds.

use std::borrow::Cow;
use std::fmt;

use regex::Regex;
use serde::{Serialize, Serializer};

/// How a route matches the request path. Paths are stored normalised.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PathMatch {
    /// `pathType: Exact`: the whole path, byte for byte (case-sensitive).
    Exact(Box<str>),
    /// `pathType: Prefix` (and `ImplementationSpecific`): by path segment. Stored without a
    /// trailing slash, so `/` is stored as the empty string.
    Prefix(Box<str>),
    /// A regex path (`use-regex`, `full-path-regex`, or a `rewrite-target` that needs
    /// one): anchored at the start, and at the end too for `full-path-regex`.
    Regex(RegexPath),
}

/// A compiled regex path. Compared, ordered and hashed by its text and flags.
#[derive(Clone, Debug)]
pub struct RegexPath {
    raw: Box<str>,
    full: bool,
    ignore_case: bool,
    regex: Regex,
}

impl RegexPath {
    /// Compiles `raw` as the path of a route: `^(?:raw)` and, when `full`, `$` at the end;
    /// case-insensitive when `ignore_case`. The error is the regex crate's summary.
    pub fn new(raw: &str, full: bool, ignore_case: bool) -> Result<Self, String> {
        let regex = crate::matching::anchored(raw, ignore_case, full)?;
        Ok(Self {
            raw: raw.into(),
            full,
            ignore_case,
            regex,
        })
    }

    /// The pattern as written in the Ingress.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// Whether the whole path must match (`full-path-regex`), not just its start.
    pub fn full(&self) -> bool {
        self.full
    }

    /// The compiled regex, anchors and flags included.
    pub fn regex(&self) -> &Regex {
        &self.regex
    }

    fn key(&self) -> (&str, bool, bool) {
        (&self.raw, self.full, self.ignore_case)
    }
}

impl PartialEq for RegexPath {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for RegexPath {}

impl std::hash::Hash for RegexPath {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}

impl PartialOrd for RegexPath {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for RegexPath {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

impl PathMatch {
    /// Whether this matches `path` (already normalised by [`normalize_path`]).
    pub fn matches(&self, path: &str) -> bool {
        match self {
            PathMatch::Exact(p) => **p == *path,
            PathMatch::Prefix(p) => {
                path.starts_with(&**p) && matches!(path.as_bytes().get(p.len()), None | Some(b'/'))
            }
            PathMatch::Regex(r) => r.regex.is_match(path),
        }
    }

    /// The path as written after normalisation (`/` for the root prefix).
    pub fn path(&self) -> &str {
        match self {
            PathMatch::Exact(p) => p,
            PathMatch::Prefix(p) if p.is_empty() => "/",
            PathMatch::Prefix(p) => p,
            PathMatch::Regex(r) => &r.raw,
        }
    }
}

impl fmt::Display for PathMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathMatch::Exact(_) => write!(f, "Exact {}", self.path()),
            PathMatch::Prefix(_) => write!(f, "Prefix {}", self.path()),
            PathMatch::Regex(r) if r.full => write!(f, "FullRegex {}", r.raw),
            PathMatch::Regex(r) => write!(f, "Regex {}", r.raw),
        }
    }
}

impl Serialize for PathMatch {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Normalises a request path (without the query) the one way the gateway matches and
/// forwards it:
///
/// - percent-encoded unreserved characters (`A-Z a-z 0-9 - . _ ~`) are decoded, and the hex
///   digits of every other escape are upper-cased (RFC 3986 section 6.2.2);
/// - runs of `/` become one;
/// - `.` and `..` segments are removed (RFC 3986 section 5.2.4; `..` never climbs above
///   the root);
/// - an empty path becomes `/`, and a missing leading `/` is added.
///
/// Borrows the input when it is already normal, which is the common case.
///
/// ```
/// use mse_router::normalize_path;
/// assert_eq!(normalize_path("/a/%7Euser/./b/../c//d"), "/a/~user/c/d");
/// assert_eq!(normalize_path("/%2e%2E/etc"), "/etc");
/// assert_eq!(normalize_path("/a%2fb"), "/a%2Fb");
/// ```
pub fn normalize_path(path: &str) -> Cow<'_, str> {
    if is_normal(path) {
        return Cow::Borrowed(path);
    }
    let decoded = decode_unreserved(path);
    let mut out = String::with_capacity(decoded.len() + 1);
    for seg in decoded.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if let Some(i) = out.rfind('/') {
                    out.truncate(i);
                }
            }
            s => {
                out.push('/');
                out.push_str(s);
            }
        }
    }
    // A trailing slash, or a trailing dot segment, leaves the path ending in a directory.
    let ends_in_dir = decoded.ends_with('/')
        || decoded.ends_with("/.")
        || decoded.ends_with("/..")
        || decoded == "."
        || decoded == "..";
    if out.is_empty() || ends_in_dir {
        out.push('/');
    }
    Cow::Owned(out)
}

fn is_normal(path: &str) -> bool {
    let b = path.as_bytes();
    if b.first() != Some(&b'/') {
        return false;
    }
    let mut prev_slash = false;
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'%' => return false,
            b'/' => {
                if prev_slash {
                    return false;
                }
                prev_slash = true;
            }
            b'.' if prev_slash => {
                // "/." followed by end, '/' or ".": a dot segment.
                match b.get(i + 1) {
                    None | Some(b'/') => return false,
                    Some(b'.') if matches!(b.get(i + 2), None | Some(b'/')) => return false,
                    _ => prev_slash = false,
                }
            }
            _ => prev_slash = false,
        }
    }
    true
}

fn decode_unreserved(path: &str) -> Cow<'_, str> {
    if !path.contains('%') {
        return Cow::Borrowed(path);
    }
    let b = path.as_bytes();
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            let c = h << 4 | l;
            if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') {
                out.push(c as char);
            } else {
                out.push('%');
                out.push(b[i + 1].to_ascii_uppercase() as char);
                out.push(b[i + 2].to_ascii_uppercase() as char);
            }
            i += 3;
            continue;
        }
        if b[i] == b'%' {
            // A '%' that starts no escape is itself escaped, so that decoding can never
            // produce a new escape ("%%30a" must not turn into "%0a").
            out.push_str("%25");
            i += 1;
            continue;
        }
        // Multi-byte UTF-8 is copied whole.
        let ch_len = utf8_len(b[i]);
        out.push_str(&path[i..(i + ch_len).min(b.len())]);
        i += ch_len;
    }
    Cow::Owned(out)
}

fn utf8_len(first: u8) -> usize {
    match first {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_paths_are_borrowed() {
        for p in ["/", "/a", "/a/b/", "/a.b/c..d/.e", "/..a"] {
            assert!(matches!(normalize_path(p), Cow::Borrowed(_)), "{p}");
        }
    }

    #[test]
    fn dot_segments_slashes_and_escapes() {
        let cases = [
            ("", "/"),
            ("a/b", "/a/b"),
            ("//a///b", "/a/b"),
            ("/a/./b", "/a/b"),
            ("/a/b/..", "/a/"),
            ("/a/b/../", "/a/"),
            ("/../../x", "/x"),
            ("/a/.", "/a/"),
            ("/%41%62c", "/Abc"),
            ("/a%2Fb", "/a%2Fb"),
            ("/a%2fb", "/a%2Fb"),
            ("/%2e%2e/secret", "/secret"),
            ("/a/%2E/b", "/a/b"),
            ("/%zz", "/%25zz"),
            ("/%", "/%25"),
            ("/%4", "/%254"),
            ("/%%30a", "/%250a"),
            ("/é/../ü", "/ü"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize_path(input), want, "input {input:?}");
        }
    }

    #[test]
    fn prefix_matches_by_segment() {
        let p = PathMatch::Prefix("/foo".into());
        assert!(p.matches("/foo"));
        assert!(p.matches("/foo/"));
        assert!(p.matches("/foo/bar"));
        assert!(!p.matches("/foobar"));
        let root = PathMatch::Prefix("".into());
        assert!(root.matches("/"));
        assert!(root.matches("/anything"));
    }

    proptest::proptest! {
        #[test]
        fn normalising_is_idempotent(p in "[/a-z.%0-9A-F~]{0,40}") {
            let once = normalize_path(&p).into_owned();
            proptest::prop_assert_eq!(normalize_path(&once), once.as_str());
            proptest::prop_assert!(once.starts_with('/'));
            proptest::prop_assert!(!once.contains("//"));
        }
    }
}
