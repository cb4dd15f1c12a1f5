//! Path normalisation and path match kinds.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

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
    raw: Arc<str>,
    full: bool,
    ignore_case: bool,
    /// Shared by the clones (one per host the path is served on): one compiled program
    /// and one pool of match caches.
    regex: Arc<Regex>,
    /// The pattern's shape when it is a literal, optionally followed by `.*` or `(.*)`:
    /// the common `rewrite-target` paths (`/api/(.*)`), matched without the regex engine.
    literal: Option<Literal>,
}

/// A regex path that is `literal`, `literal.*` or `literal(.*)`.
#[derive(Clone, Debug)]
struct Literal {
    prefix: Arc<str>,
    /// What follows the literal: nothing, `.*`, or `(.*)` (capture group 1).
    tail: Tail,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tail {
    None,
    Any,
    Group,
}

/// The capture groups of a regex path's match, by index (0 is the whole match).
#[derive(Debug)]
pub struct Groups<'p>(GroupsInner<'p>);

#[derive(Debug)]
enum GroupsInner<'p> {
    Literal {
        whole: &'p str,
        rest: Option<&'p str>,
    },
    Regex(regex::Captures<'p>),
}

impl<'p> Groups<'p> {
    /// Group `i`, `None` when the group did not take part in the match or does not exist.
    pub fn get(&self, i: usize) -> Option<&'p str> {
        match &self.0 {
            GroupsInner::Literal { whole, rest } => match i {
                0 => Some(whole),
                1 => *rest,
                _ => None,
            },
            GroupsInner::Regex(c) => c.get(i).map(|m| m.as_str()),
        }
    }
}

impl RegexPath {
    /// Compiles `raw` as the path of a route: `^(?:raw)` and, when `full`, `$` at the end;
    /// case-insensitive when `ignore_case`. The error is the regex crate's summary.
    pub fn new(raw: &str, full: bool, ignore_case: bool) -> Result<Self, String> {
        let regex = crate::matching::anchored(raw, ignore_case, full)?;
        let literal = (!ignore_case).then(|| Literal::of(raw)).flatten();
        Ok(Self {
            raw: raw.into(),
            full,
            ignore_case,
            regex: Arc::new(regex),
            literal,
        })
    }

    /// Whether the path matches.
    pub fn is_match(&self, path: &str) -> bool {
        match self.literal_groups(path) {
            Some(found) => found.is_some(),
            None => self.regex.is_match(path),
        }
    }

    /// The capture groups of the path's match, `None` when it does not match.
    pub fn captures<'p>(&self, path: &'p str) -> Option<Groups<'p>> {
        match self.literal_groups(path) {
            Some(found) => found,
            None => self
                .regex
                .captures(path)
                .map(|c| Groups(GroupsInner::Regex(c))),
        }
    }

    /// The match by the literal shape: `None` when there is none or the path holds a line
    /// feed (which `.` does not match: the regex decides).
    fn literal_groups<'p>(&self, path: &'p str) -> Option<Option<Groups<'p>>> {
        let lit = self.literal.as_ref()?;
        if path.contains('\n') {
            return None;
        }
        let Some(rest) = path.strip_prefix(&*lit.prefix) else {
            return Some(None);
        };
        let whole = match lit.tail {
            Tail::None if self.full && !rest.is_empty() => return Some(None),
            Tail::None => &path[..lit.prefix.len()],
            Tail::Any | Tail::Group => path,
        };
        let rest = (lit.tail == Tail::Group).then_some(rest);
        Some(Some(Groups(GroupsInner::Literal { whole, rest })))
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

impl Literal {
    /// The shape of `raw` when it is one of the literal ones.
    fn of(raw: &str) -> Option<Self> {
        use regex_syntax::hir::{Dot, Hir, HirKind};
        let hir = regex_syntax::Parser::new().parse(raw).ok()?;
        let any = Hir::dot(Dot::AnyCharExceptLF);
        let is_any = |h: &Hir| match h.kind() {
            HirKind::Repetition(r) => r.min == 0 && r.max.is_none() && r.greedy && *r.sub == any,
            _ => false,
        };
        let literal = |h: &Hir| match h.kind() {
            HirKind::Literal(l) => std::str::from_utf8(&l.0).ok().map(Arc::<str>::from),
            _ => None,
        };
        let (prefix, tail) = match hir.kind() {
            HirKind::Literal(_) => (literal(&hir)?, Tail::None),
            HirKind::Concat(parts) => match parts.as_slice() {
                [l, t] if is_any(t) => (literal(l)?, Tail::Any),
                [l, t] => match t.kind() {
                    HirKind::Capture(c) if c.index == 1 && c.name.is_none() && is_any(&c.sub) => {
                        (literal(l)?, Tail::Group)
                    }
                    _ => return None,
                },
                _ => return None,
            },
            _ => return None,
        };
        Some(Self { prefix, tail })
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
            PathMatch::Regex(r) => r.is_match(path),
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
/// Borrows the input when it is already normal, which is the common case. The data plane
/// uses [`request_path`], which refuses some paths before normalising.
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
    normalize_slow(path).0
}

/// Why the gateway refuses a request path (with 400) instead of normalising it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidPath {
    /// A `\`, which some servers read as `/`.
    Backslash,
    /// `%2F` or `%5C`: an encoded `/` or `\`, which some servers decode before splitting
    /// the path into segments, others after.
    EncodedSeparator,
    /// A `.` or `..` segment with parameters (`..;`, `..;jsessionid=1`), which some
    /// servers resolve as `..` once the parameters are stripped.
    DotSegmentParameters,
}

impl InvalidPath {
    /// What is wrong, for logs and the refusal's reason.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Backslash => "a backslash in the request path",
            Self::EncodedSeparator => {
                "an encoded slash or backslash (%2F, %5C) in the request path"
            }
            Self::DotSegmentParameters => "a dot segment with parameters in the request path",
        }
    }
}

impl std::fmt::Display for InvalidPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for InvalidPath {}

/// A request path as the gateway matches and forwards it: [`normalize_path`], after
/// refusing paths whose meaning differs between servers, so that no upstream can read
/// them as a path the gateway did not match (see [`InvalidPath`]).
///
/// Costs nothing over [`normalize_path`] for a path that is already normal: the one pass
/// that finds it normal also finds that it has none of these.
///
/// ```
/// use mse_router::{InvalidPath, request_path};
/// assert_eq!(request_path("/a/./b").unwrap(), "/a/b");
/// assert_eq!(request_path("/a%2Fb"), Err(InvalidPath::EncodedSeparator));
/// assert_eq!(request_path("/app/..;/admin"), Err(InvalidPath::DotSegmentParameters));
/// assert_eq!(request_path("/a\\b"), Err(InvalidPath::Backslash));
/// ```
pub fn request_path(path: &str) -> Result<Cow<'_, str>, InvalidPath> {
    if is_normal(path) {
        return Ok(Cow::Borrowed(path));
    }
    check_separators(path)?;
    match normalize_slow(path) {
        (_, true) => Err(InvalidPath::DotSegmentParameters),
        (normal, false) => Ok(normal),
    }
}

/// Whether a segment (escapes of unreserved characters decoded, others upper-cased) is
/// `.` or `..` with parameters: `..;`, `.;x=1`, `..%3B`.
fn dot_with_parameters(seg: &str) -> bool {
    let rest = seg
        .strip_prefix("..")
        .or_else(|| seg.strip_prefix('.'))
        .unwrap_or(seg);
    rest.len() < seg.len() && (rest.starts_with(';') || rest.starts_with("%3B"))
}

/// [`request_path`] for a gateway that decodes separators instead of refusing them
/// (`mse-decode-path-separators`): a `\`, `%2F` and `%5C` (any case) each become `/`
/// first, so that the path is matched and forwarded as a server that decodes them would
/// read it. Dot segments with parameters are still refused.
///
/// ```
/// use mse_router::{InvalidPath, decoded_request_path};
/// assert_eq!(decoded_request_path("/app%2F..%2Fadmin").unwrap(), "/admin");
/// assert_eq!(decoded_request_path("/a\\b%5cc").unwrap(), "/a/b/c");
/// assert_eq!(decoded_request_path("/a/..;/b"), Err(InvalidPath::DotSegmentParameters));
/// ```
pub fn decoded_request_path(path: &str) -> Result<Cow<'_, str>, InvalidPath> {
    if check_separators(path).is_ok() {
        return request_path(path);
    }
    let b = path.as_bytes();
    let mut plain = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let escaped = |h: u8, l: u8| {
            b.get(i + 1) == Some(&h) && b.get(i + 2).map(u8::to_ascii_uppercase) == Some(l)
        };
        let separator = match b[i] {
            b'\\' => 1,
            b'%' if escaped(b'2', b'F') || escaped(b'5', b'C') => 3,
            _ => 0,
        };
        if separator == 0 {
            plain.push(b[i]);
            i += 1;
        } else {
            plain.push(b'/');
            i += separator;
        }
    }
    // Only ASCII bytes were replaced, by ASCII: the text is as valid as it was.
    let plain = String::from_utf8_lossy(&plain);
    Ok(Cow::Owned(request_path(&plain)?.into_owned()))
}

/// Refuses `\`, `%2F` and `%5C` (any case).
fn check_separators(path: &str) -> Result<(), InvalidPath> {
    let b = path.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'\\' => return Err(InvalidPath::Backslash),
            b'%' => {
                if let (Some(h), Some(l)) = (b.get(i + 1), b.get(i + 2))
                    && matches!((h, l.to_ascii_uppercase()), (b'2', b'F') | (b'5', b'C'))
                {
                    return Err(InvalidPath::EncodedSeparator);
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// The normalised path, and whether a segment was a dot segment with parameters.
fn normalize_slow(path: &str) -> (Cow<'_, str>, bool) {
    let decoded = decode_unreserved(path);
    let mut out = String::with_capacity(decoded.len() + 1);
    let mut dot_params = false;
    for seg in decoded.split('/') {
        dot_params |= dot_with_parameters(seg);
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
    (Cow::Owned(out), dot_params)
}

fn is_normal(path: &str) -> bool {
    let b = path.as_bytes();
    if b.first() != Some(&b'/') {
        return false;
    }
    let mut prev_slash = false;
    for (i, &c) in b.iter().enumerate() {
        match c {
            // Escapes, and backslashes (refused by `request_path`), take the slow path.
            b'%' | b'\\' => return false,
            b'/' => {
                if prev_slash {
                    return false;
                }
                prev_slash = true;
            }
            b'.' if prev_slash => {
                // "/." followed by end, '/' or ".": a dot segment; followed by ';' or
                // ".;", a dot segment with parameters.
                match b.get(i + 1) {
                    None | Some(b'/' | b';') => return false,
                    Some(b'.') if matches!(b.get(i + 2), None | Some(b'/' | b';')) => {
                        return false;
                    }
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
    fn request_paths_servers_read_differently_are_refused() {
        for (p, e) in [
            ("/a\\b", InvalidPath::Backslash),
            ("/a/%5c", InvalidPath::EncodedSeparator),
            ("/a%2Fb", InvalidPath::EncodedSeparator),
            ("/%2f", InvalidPath::EncodedSeparator),
            ("/app/..;/admin", InvalidPath::DotSegmentParameters),
            ("/app/.;x", InvalidPath::DotSegmentParameters),
            ("/app/%2e%2E;a=b/x", InvalidPath::DotSegmentParameters),
            ("/app/..%3b/x", InvalidPath::DotSegmentParameters),
            ("/a/..;", InvalidPath::DotSegmentParameters),
        ] {
            assert_eq!(request_path(p), Err(e), "{p}");
        }
        for (p, want) in [
            ("/a/b", "/a/b"),
            ("/a;v=1/../b", "/b"),
            ("/a/...;/b", "/a/...;/b"),
            ("/a/.x;/b", "/a/.x;/b"),
            ("/a%2", "/a%252"),
            ("/a%252F", "/a%252F"),
            ("/x/./y/../z", "/x/z"),
        ] {
            assert_eq!(request_path(p).as_deref(), Ok(want), "{p}");
        }
        assert!(matches!(request_path("/a/b;c"), Ok(Cow::Borrowed(_))));
    }

    #[test]
    fn decoded_separators_become_slashes_before_normalising() {
        for (p, want) in [
            ("/a%2Fb", "/a/b"),
            ("/a%2f%2F%2fb", "/a/b"),
            ("/a%5C..%5Cb", "/b"),
            ("/app\\..\\admin", "/admin"),
            ("/x/%2e%2e%2Fy", "/y"),
            ("/plain", "/plain"),
        ] {
            assert_eq!(decoded_request_path(p).as_deref(), Ok(want), "{p}");
        }
        assert_eq!(
            decoded_request_path("/a%2F..;%2Fb"),
            Err(InvalidPath::DotSegmentParameters)
        );
    }

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

    #[test]
    fn literal_shapes_are_recognised_and_others_left_to_the_regex() {
        let shape = |raw: &str| Literal::of(raw).map(|l| (l.prefix.to_string(), l.tail));
        assert_eq!(shape("/api/(.*)"), Some(("/api/".into(), Tail::Group)));
        assert_eq!(shape("/(.*)"), Some(("/".into(), Tail::Group)));
        assert_eq!(shape("/api.*"), Some(("/api".into(), Tail::Any)));
        assert_eq!(
            shape("/api.x/(.*)"),
            None,
            "`.` inside the literal is a class"
        );
        assert_eq!(shape("/api/.*"), Some(("/api/".into(), Tail::Any)));
        assert_eq!(shape("/api"), Some(("/api".into(), Tail::None)));
        assert_eq!(shape(r"/v1\.0/(.*)"), Some(("/v1.0/".into(), Tail::Group)));
        for other in [
            "/api(/|$)(.*)",
            "/(?s)(.*)",
            "/(?<rest>.*)",
            "/(.*?)",
            "/(.+)",
            "(?i)/a",
        ] {
            assert_eq!(shape(other), None, "{other}");
        }
        let ci = RegexPath::new("/api/(.*)", false, true).unwrap();
        assert!(ci.literal.is_none());
        assert!(ci.is_match("/API/x"));
    }

    /// Paths and patterns where the literal shape and the regex engine must agree.
    const SHAPED: [&str; 6] = ["/(.*)", "/a/(.*)", "/a/.*", "/a", "/a\\.b(.*)", "/é/(.*)"];

    proptest::proptest! {
        #[test]
        fn literal_shapes_match_and_capture_as_the_regex_does(
            pattern in 0..SHAPED.len(),
            full: bool,
            path in "(/|a|b|\\.|é|\n){0,8}",
        ) {
            let r = RegexPath::new(SHAPED[pattern], full, false).unwrap();
            proptest::prop_assert!(r.literal.is_some());
            let want = r.regex.captures(&path);
            let got = r.captures(&path);
            proptest::prop_assert_eq!(r.is_match(&path), want.is_some());
            proptest::prop_assert_eq!(got.is_some(), want.is_some());
            if let (Some(got), Some(want)) = (got, want) {
                for i in 0..3 {
                    proptest::prop_assert_eq!(got.get(i), want.get(i).map(|m| m.as_str()), "group {}", i);
                }
            }
        }

        #[test]
        fn normalising_is_idempotent(p in "[/a-z.%0-9A-F~]{0,40}") {
            let once = normalize_path(&p).into_owned();
            proptest::prop_assert_eq!(normalize_path(&once), once.as_str());
            proptest::prop_assert!(once.starts_with('/'));
            proptest::prop_assert!(!once.contains("//"));
        }

        #[test]
        fn accepted_request_paths_are_normal_and_free_of_separators(
            p in "[/a.;%25cCfF\\\\]{0,24}",
        ) {
            if let Ok(accepted) = request_path(&p) {
                proptest::prop_assert_eq!(&accepted, &normalize_path(&p));
                let upper = accepted.to_ascii_uppercase();
                proptest::prop_assert!(!upper.contains("%2F") && !upper.contains("%5C"));
                proptest::prop_assert!(!accepted.contains('\\'));
                proptest::prop_assert!(!accepted.split('/').any(dot_with_parameters));
            }
            if let Ok(decoded) = decoded_request_path(&p) {
                let again = request_path(&decoded);
                proptest::prop_assert_eq!(again.as_deref(), Ok(&*decoded));
            }
        }
    }
}
