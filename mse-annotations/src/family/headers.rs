//! Header edits: `request-header-control-*`, `response-header-control-*`,
//! `custom-headers`, and the `proxy-redirect-from/-to` rewrite of upstream `Location`
//! headers.

use crate::IngressPolicy;
use crate::cx::Cx;
use crate::value::{self, ObjectRef, ValueError};

/// Edits applied to one direction's headers, in the order remove, update, add.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeaderEdits {
    /// Headers appended (name lower case, value).
    pub add: Vec<(String, String)>,
    /// Headers set, replacing existing values.
    pub update: Vec<(String, String)>,
    /// Headers removed (lower case).
    pub remove: Vec<String>,
}

impl HeaderEdits {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.update.is_empty() && self.remove.is_empty()
    }
}

/// Request and response header edits.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeaderControl {
    /// Edits of the request sent upstream.
    pub request: HeaderEdits,
    /// Edits of the response sent to the client.
    pub response: HeaderEdits,
    /// `connection-proxy-header`: the `Connection` header sent upstream.
    pub connection: Option<String>,
    /// `custom-headers`: the ConfigMap whose entries are set as response headers. The
    /// reference is kept as written; the router reads the ConfigMap and refuses one in
    /// another namespace than the Ingress's.
    pub custom_headers: Option<ObjectRef>,
}

/// `proxy-redirect-from` and `proxy-redirect-to`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProxyRedirect {
    /// `off`: upstream `Location` headers are passed unchanged.
    Off,
    /// `default`: the upstream's own URL is replaced by the request's.
    Default,
    /// Replace this prefix by that text.
    Replace {
        /// Prefix to look for.
        from: String,
        /// Replacement.
        to: String,
    },
}

pub(crate) fn parse(cx: &mut Cx<'_>, p: &mut IngressPolicy) {
    p.headers.connection = cx.get("connection-proxy-header", |v| {
        if v.trim().is_empty() {
            Err(ValueError::Empty)
        } else {
            value::header_value(v.trim())
        }
    });
    p.headers.custom_headers = cx.get("custom-headers", |v| value::config_map_ref(v.trim()));
    for (dir, edits) in [
        ("request", &mut p.headers.request),
        ("response", &mut p.headers.response),
    ] {
        edits.add = cx
            .get_list(&format!("{dir}-header-control-add"), value::lines, pair)
            .unwrap_or_default();
        edits.update = cx
            .get_list(&format!("{dir}-header-control-update"), value::lines, pair)
            .unwrap_or_default();
        edits.remove = cx
            .get_list(
                &format!("{dir}-header-control-remove"),
                value::comma_list,
                value::header_name,
            )
            .unwrap_or_default();
    }
    let text = |v: &str| {
        if v.is_empty() {
            Err(ValueError::Empty)
        } else {
            value::header_value(v)
        }
    };
    let from = cx.get("proxy-redirect-from", text);
    let to = cx.get("proxy-redirect-to", text);
    p.proxy_redirect = match (from.as_deref(), to) {
        (Some("off"), to) => {
            if to.is_some() {
                cx.ignored("proxy-redirect-to", "proxy-redirect-from is off");
            }
            Some(ProxyRedirect::Off)
        }
        (Some("default"), to) => {
            if to.is_some() {
                cx.ignored("proxy-redirect-to", "proxy-redirect-from is default");
            }
            Some(ProxyRedirect::Default)
        }
        (Some(f), Some(t)) => Some(ProxyRedirect::Replace {
            from: f.to_owned(),
            to: t,
        }),
        (Some(_), None) => {
            cx.ignored("proxy-redirect-from", "proxy-redirect-to is not set");
            None
        }
        (None, Some(_)) => {
            cx.ignored("proxy-redirect-to", "proxy-redirect-from is not set");
            None
        }
        (None, None) => None,
    };
}

/// One `Name Value` line, split as Higress splits it: the name is everything up to the
/// first run of whitespace, the value the rest, each trimmed; then one pair of matching
/// quotes (`"` or `'`) around either is removed, so a quoted value keeps its inner spaces
/// and semicolons (`'x-test2' "higress; test=false"`). A value with an unmatched quote is
/// kept as written, as Higress keeps it; a name with one is an error, since no header
/// name holds a quote at its end and a space inside quotes would have split the line.
fn pair(line: &str) -> Result<(String, String), ValueError> {
    let Some((raw_name, raw_value)) = line.split_once(char::is_whitespace) else {
        return Err(ValueError::Expected(
            "`Name Value` (a header name, a space, then the value)",
        ));
    };
    let name = match unquote(raw_name) {
        Some(inner) => inner,
        None if raw_name.starts_with(['"', '\'']) => {
            return Err(ValueError::Expected(
                "a header name with its closing quote before the first space (header names hold no spaces)",
            ));
        }
        None => raw_name,
    };
    if name.is_empty() {
        return Err(ValueError::Expected("a header name inside the quotes"));
    }
    let value = raw_value.trim();
    let value = unquote(value).unwrap_or(value);
    Ok((value::header_name(name)?, value::header_value(value)?))
}

/// The text inside one pair of matching quotes (`"..."` or `'...'`), if `s` is quoted.
fn unquote(s: &str) -> Option<&str> {
    ['"', '\'']
        .into_iter()
        .find_map(|q| s.strip_prefix(q).and_then(|rest| rest.strip_suffix(q)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &str) -> (String, String) {
        match pair(line) {
            Ok(p) => p,
            Err(e) => panic!("{line:?}: {e}"),
        }
    }

    fn pairs(value: &str) -> Vec<Result<(String, String), ValueError>> {
        value::lines(value).into_iter().map(pair).collect()
    }

    #[test]
    fn an_unquoted_name_and_value() {
        assert_eq!(ok("X-Env staging"), ("x-env".into(), "staging".into()));
        // The value is the rest of the line, inner spaces included.
        assert_eq!(ok("X-Env  prod  eu "), ("x-env".into(), "prod  eu".into()));
    }

    #[test]
    fn a_single_quoted_name_and_a_double_quoted_value_keep_spaces_and_semicolons() {
        assert_eq!(
            ok("'x-test2' \"higress; test=false\""),
            ("x-test2".into(), "higress; test=false".into())
        );
    }

    #[test]
    fn a_double_quoted_name_and_a_single_quoted_value() {
        assert_eq!(ok("\"X-Test\" 'a b;c'"), ("x-test".into(), "a b;c".into()));
        assert_eq!(ok("\"X-Test\" plain"), ("x-test".into(), "plain".into()));
        assert_eq!(
            ok("X-Test \"  padded  \""),
            ("x-test".into(), "  padded  ".into())
        );
    }

    #[test]
    fn an_empty_quoted_value_is_an_empty_header() {
        assert_eq!(ok("x-empty \"\""), ("x-empty".into(), String::new()));
    }

    #[test]
    fn a_value_with_an_unmatched_quote_is_kept_as_written() {
        assert_eq!(ok("x-a \"half"), ("x-a".into(), "\"half".into()));
        assert_eq!(ok("x-a 'mixed\""), ("x-a".into(), "'mixed\"".into()));
    }

    #[test]
    fn one_header_per_line() {
        let got = pairs("'x-a' \"1; 2\"\n\n  x-b two words  \r\n\"x-c\" '3'\n");
        let got: Vec<(String, String)> = got.into_iter().map(|r| r.unwrap_or_default()).collect();
        assert_eq!(
            got,
            [
                ("x-a".to_owned(), "1; 2".to_owned()),
                ("x-b".to_owned(), "two words".to_owned()),
                ("x-c".to_owned(), "3".to_owned()),
            ]
        );
    }

    #[test]
    fn malformed_lines_say_what_is_wrong() {
        let err = |line: &str| match pair(line) {
            Ok(p) => panic!("{line:?} parsed as {p:?}"),
            Err(e) => e.to_string(),
        };
        assert!(err("X-Only-Name").contains("`Name Value`"));
        assert!(err("'x-test2 value").contains("closing quote"));
        assert!(err("'x test' value").contains("closing quote"));
        assert!(err("'x-a\" value").contains("closing quote"));
        assert!(err("'' value").contains("header name inside the quotes"));
        assert!(err("'bad:name' value").contains("HTTP header name"));
    }
}
