//! Match conditions beyond host and path (`match-method`, `*-match-header-*`,
//! `*-match-pseudo-header-*`, `*-match-query-*`), built once per Ingress, and the request
//! view they are checked against.

use std::fmt;

use http::{HeaderMap, HeaderName};
use mse_annotations::{MatchKind, MatchRules, ValueMatch};
use regex::Regex;

/// What [`crate::RouteTable::lookup`] needs from a request.
///
/// `path` must already be normalised with [`crate::normalize_path`] (the data plane does
/// this once and forwards the same path); `host` is the raw `Host` header or `:authority`.
/// Method, query and headers default to `GET`, none and none: set them when routes may
/// carry match conditions or canaries (the data plane always does).
#[derive(Clone, Copy, Debug)]
pub struct RequestHead<'a> {
    /// `Host` header or `:authority`, port and case allowed.
    pub host: &'a str,
    /// The normalised path, without the query.
    pub path: &'a str,
    /// The method, upper case as received.
    pub method: &'a str,
    /// The query string, without `?`.
    pub query: Option<&'a str>,
    /// The request headers.
    pub headers: Option<&'a HeaderMap>,
    /// Whether the request came over TLS (`:scheme` is `https`).
    pub tls: bool,
}

impl<'a> RequestHead<'a> {
    /// A `GET` request head from host and normalised path, without query or headers.
    pub fn new(host: &'a str, path: &'a str) -> Self {
        Self {
            host,
            path,
            method: "GET",
            query: None,
            headers: None,
            tls: false,
        }
    }

    /// With this method.
    pub fn method(mut self, method: &'a str) -> Self {
        self.method = method;
        self
    }

    /// With this query string (without `?`).
    pub fn query(mut self, query: Option<&'a str>) -> Self {
        self.query = query;
        self
    }

    /// With these headers.
    pub fn headers(mut self, headers: &'a HeaderMap) -> Self {
        self.headers = Some(headers);
        self
    }

    /// Over TLS or not.
    pub fn tls(mut self, tls: bool) -> Self {
        self.tls = tls;
        self
    }

    /// The values of header `name` (lower case).
    pub(crate) fn header_values<'n>(
        &self,
        name: &'n HeaderName,
    ) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
        let headers = self.headers;
        headers
            .into_iter()
            .flat_map(move |h| h.get_all(name).iter())
            .filter_map(|v| v.to_str().ok())
    }

    /// The first value of header `name`, when it is printable.
    pub(crate) fn header(&self, name: &HeaderName) -> Option<&'a str> {
        self.headers?.get(name)?.to_str().ok()
    }

    /// The first value of query parameter `name`, as written (not decoded). A parameter
    /// without `=` has the empty value.
    pub fn query_value(&self, name: &str) -> Option<&'a str> {
        self.query?.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == name).then_some(v)
        })
    }

    /// The value of cookie `name`, from every `Cookie` header.
    pub fn cookie(&self, name: &str) -> Option<&'a str> {
        self.header_values(&http::header::COOKIE)
            .flat_map(|v| v.split(';'))
            .find_map(|pair| {
                let (k, v) = pair.trim().split_once('=')?;
                (k.trim() == name).then(|| v.trim())
            })
    }
}

/// One compiled comparison: exact, prefix, or a regex anchored at both ends.
#[derive(Clone, Debug)]
pub(crate) enum Compare {
    Exact(Box<str>),
    Prefix(Box<str>),
    /// The regex, and its check without the regex engine when the pattern is one ASCII
    /// character class repeated (`[0-9]+`, `[a-z0-9.-]*`).
    Regex(Regex, Option<AsciiRun>),
}

/// A value pattern that is one ASCII character class repeated at least `min` times.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AsciiRun {
    /// Entry `b` set: byte `b` is in the class.
    set: Box<[bool; 256]>,
    min: u32,
}

impl AsciiRun {
    /// The run `pattern` is, when it is one.
    fn of(pattern: &str) -> Option<Self> {
        use regex_syntax::hir::{Class, HirKind};
        let hir = regex_syntax::Parser::new().parse(pattern).ok()?;
        let HirKind::Repetition(rep) = hir.kind() else {
            return None;
        };
        if rep.max.is_some() {
            return None;
        }
        let ranges: Vec<(u32, u32)> = match rep.sub.kind() {
            HirKind::Class(Class::Unicode(c)) => c
                .ranges()
                .iter()
                .map(|r| (u32::from(r.start()), u32::from(r.end())))
                .collect(),
            HirKind::Class(Class::Bytes(c)) => c
                .ranges()
                .iter()
                .map(|r| (u32::from(r.start()), u32::from(r.end())))
                .collect(),
            _ => return None,
        };
        let mut set = Box::new([false; 256]);
        for (start, end) in ranges {
            if end > 0x7f {
                return None;
            }
            for b in start..=end {
                set[b as usize] = true;
            }
        }
        Some(Self { set, min: rep.min })
    }

    fn matches(&self, v: &str) -> bool {
        v.len() >= self.min as usize && v.bytes().all(|b| self.set[usize::from(b)])
    }
}

impl Compare {
    fn of(kind: &MatchKind) -> Option<Self> {
        Some(match kind {
            MatchKind::Exact(v) => Compare::Exact(v.as_str().into()),
            MatchKind::Prefix(v) => Compare::Prefix(v.as_str().into()),
            MatchKind::Regex(re) => Compare::Regex(
                anchored(re.as_str(), false, true).ok()?,
                AsciiRun::of(re.as_str()),
            ),
        })
    }

    pub(crate) fn matches(&self, v: &str) -> bool {
        match self {
            Compare::Exact(want) => **want == *v,
            Compare::Prefix(want) => v.starts_with(&**want),
            Compare::Regex(_, Some(run)) => run.matches(v),
            Compare::Regex(re, None) => re.is_match(v),
        }
    }
}

impl fmt::Display for Compare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Compare::Exact(v) => write!(f, "= {v}"),
            Compare::Prefix(v) => write!(f, "^= {v}"),
            Compare::Regex(re, _) => write!(f, "~ {}", re.as_str()),
        }
    }
}

/// `^(?:pattern)` (with `$` when `full`), case-insensitive when asked, compiled with the
/// size bounds and error summary of [`mse_annotations::value::regex`].
pub(crate) fn anchored(pattern: &str, ignore_case: bool, full: bool) -> Result<Regex, String> {
    // Flags inline, so that the pattern text alone (in a `RegexSet`) means the same.
    let flags = if ignore_case { "(?i)" } else { "" };
    let end = if full { "$" } else { "" };
    mse_annotations::value::regex(&format!("{flags}^(?:{pattern}){end}")).map_err(|e| e.to_string())
}

/// The conditions of one Ingress's routes besides host and path. Shared by all of them.
#[derive(Clone, Debug)]
pub struct Conditions {
    methods: Box<[Box<str>]>,
    headers: Box<[(HeaderName, Compare)]>,
    pseudo: Box<[(Box<str>, Compare)]>,
    queries: Box<[(Box<str>, Compare)]>,
    /// A canonical text of every condition: two routes with the same host, path and key
    /// are the same route (conflicts, canary pairing).
    key: Box<str>,
}

impl Conditions {
    /// The conditions of `rules`, `None` when there are none.
    pub(crate) fn build(rules: &MatchRules) -> Option<Self> {
        if rules.is_empty() {
            return None;
        }
        let list = |v: &[ValueMatch]| -> Box<[(Box<str>, Compare)]> {
            v.iter()
                .filter_map(|m| Some((m.name.as_str().into(), Compare::of(&m.kind)?)))
                .collect()
        };
        let mut methods: Vec<Box<str>> = rules.methods.iter().map(|m| m.as_str().into()).collect();
        methods.sort();
        // Header names were validated by the parser; one that is not a header name could
        // never match anyway.
        let headers: Box<[(HeaderName, Compare)]> = rules
            .headers
            .iter()
            .filter_map(|m| {
                let name = HeaderName::from_bytes(m.name.as_bytes()).ok()?;
                Some((name, Compare::of(&m.kind)?))
            })
            .collect();
        let pseudo = list(&rules.pseudo_headers);
        let queries = list(&rules.queries);
        let mut parts: Vec<String> = Vec::new();
        if !methods.is_empty() {
            parts.push(format!("method in {}", methods.join("|")));
        }
        let mut kv: Vec<String> = Vec::new();
        for (n, c) in headers.iter() {
            kv.push(format!("header {n} {c}"));
        }
        for (what, l) in [("pseudo-header", &pseudo), ("query", &queries)] {
            for (n, c) in l.iter() {
                kv.push(format!("{what} {n} {c}"));
            }
        }
        kv.sort();
        parts.extend(kv);
        Some(Self {
            methods: methods.into(),
            headers,
            pseudo,
            queries,
            key: parts.join(", ").into(),
        })
    }

    /// The canonical text of the conditions, e.g. `method in GET|POST, header x-env = dev`.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Whether `req` meets every condition.
    pub fn matches(&self, req: &RequestHead<'_>) -> bool {
        if !self.methods.is_empty() && !self.methods.iter().any(|m| **m == *req.method) {
            return false;
        }
        for (name, cmp) in self.headers.iter() {
            // `host` is the request's host whether it came as `Host` or `:authority`.
            let ok = if name == http::header::HOST {
                cmp.matches(req.host)
            } else {
                req.header_values(name).any(|v| cmp.matches(v))
            };
            if !ok {
                return false;
            }
        }
        for (name, cmp) in self.queries.iter() {
            if !req.query_value(name).is_some_and(|v| cmp.matches(v)) {
                return false;
            }
        }
        for (name, cmp) in self.pseudo.iter() {
            let ok = match &**name {
                ":authority" => cmp.matches(req.host),
                ":method" => cmp.matches(req.method),
                ":scheme" => cmp.matches(if req.tls { "https" } else { "http" }),
                ":path" => match req.query {
                    Some(q) => cmp.matches(&format!("{}?{q}", req.path)),
                    None => cmp.matches(req.path),
                },
                _ => false,
            };
            if !ok {
                return false;
            }
        }
        true
    }

    /// The Higress order of routes that share a path: a method condition first (fewer
    /// methods first), then more header conditions, then more query conditions. Smaller
    /// sorts first.
    pub(crate) fn rank(
        c: Option<&Self>,
    ) -> (
        bool,
        usize,
        std::cmp::Reverse<usize>,
        std::cmp::Reverse<usize>,
    ) {
        match c {
            None => (true, 0, std::cmp::Reverse(0), std::cmp::Reverse(0)),
            Some(c) => (
                c.methods.is_empty(),
                c.methods.len(),
                std::cmp::Reverse(c.headers.len() + c.pseudo.len()),
                std::cmp::Reverse(c.queries.len()),
            ),
        }
    }
}

impl fmt::Display for Conditions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_cookie_values_are_found_by_name() {
        let mut h = HeaderMap::new();
        h.append("cookie", "a=1; canary=always".parse().unwrap());
        h.append("cookie", "b = 2".parse().unwrap());
        let req = RequestHead::new("a", "/")
            .query(Some("x=1&flag&y=a%20b"))
            .headers(&h);
        assert_eq!(req.query_value("x"), Some("1"));
        assert_eq!(req.query_value("flag"), Some(""));
        assert_eq!(req.query_value("y"), Some("a%20b"));
        assert_eq!(req.query_value("z"), None);
        assert_eq!(req.cookie("canary"), Some("always"));
        assert_eq!(req.cookie("b"), Some("2"));
        assert_eq!(req.cookie("c"), None);
    }

    #[test]
    fn regexes_are_anchored_at_both_ends_for_values() {
        let c = Compare::Regex(anchored("v[0-9]", false, true).unwrap(), None);
        assert!(c.matches("v1"));
        assert!(!c.matches("xv1"));
        assert!(!c.matches("v12"));
    }

    #[test]
    fn only_ascii_class_runs_skip_the_regex_engine() {
        for yes in [
            "[a-z0-9.:-]+",
            "[0-9]*",
            "[ab]{2,}",
            "(?-u:\\d)+",
            "(?i)[a-c]+",
        ] {
            assert!(AsciiRun::of(yes).is_some(), "{yes}");
        }
        // `\d`, a negated class and `(?i)[a-z]` (`K` folds to the Kelvin sign) reach
        // beyond ASCII.
        for no in [
            r"\d+",
            "[^a-y]+",
            "(?i)[a-z]+",
            "v[0-9]+",
            "[a-z]{1,3}",
            "[a-zé]+",
            "a+",
        ] {
            assert_eq!(AsciiRun::of(no), None, "{no}");
        }
    }

    const RUNS: [&str; 6] = [
        "[a-z0-9.:-]+",
        "[0-9]*",
        "[^a-y]+",
        "[ab]{2,}",
        "(?i)[a-c]+",
        "[\\n-]+",
    ];

    proptest::proptest! {
        #[test]
        fn class_runs_match_as_the_regex_does(pattern in 0..RUNS.len(), v in "[a-dzA-C0-9.:\\-\né]{0,6}") {
            let re = anchored(RUNS[pattern], false, true).unwrap();
            let fast = Compare::Regex(re.clone(), AsciiRun::of(RUNS[pattern]));
            proptest::prop_assert_eq!(fast.matches(&v), re.is_match(&v));
        }
    }
}
