//! The access log: one line per request, written when its response body ends.
//!
//! Three formats: ingress-nginx's default `upstream` line, a JSON object with the same
//! fields, or the global configuration's `log-format-upstream` (see
//! [`mse_router::global::LogVar`] for its variables). A line is formatted on the worker
//! into the worker's own buffer ([`crate::log_writer`]), which is written out whole when it
//! fills or on a timer: no channel hop and no system call per request.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use http::header::{AUTHORIZATION, HeaderName};
use http::{HeaderValue, Method, Uri, Version};
use mse_router::global::{LogPart, LogVar, parse_log_format};

use crate::log_writer::Clock;
use crate::stats::{SlotLabels, Tally};
use crate::upstream::Upstream;

/// An access log format, compiled once per table.
#[derive(Debug)]
pub(crate) struct LogFormat {
    kind: Kind,
    /// The request headers the format reads, in the order [`AccessRecord::headers`] keeps
    /// them.
    headers: Box<[HeaderName]>,
    /// Whether the format reads `$remote_user` (the `Authorization` header is then kept).
    user: bool,
    /// Whether it reads `$request_length` (the head's length is then added up).
    length: bool,
}

#[derive(Debug)]
enum Kind {
    /// An nginx-style line; `escape_json`: `log-format-escape-json`.
    Line {
        parts: Box<[Part]>,
        escape_json: bool,
    },
    /// One JSON object per line.
    Json,
}

#[derive(Debug)]
enum Part {
    Text(Box<str>),
    Var(LogVar),
    /// The request header at this index of [`LogFormat::headers`].
    Header(usize),
}

/// The fields of the JSON format, in order.
const JSON_FIELDS: [(&str, LogVar); 24] = [
    ("time", LogVar::TimeIso8601),
    ("remote_addr", LogVar::RemoteAddr),
    ("remote_user", LogVar::RemoteUser),
    ("request_id", LogVar::ReqId),
    ("method", LogVar::RequestMethod),
    ("host", LogVar::Host),
    ("uri", LogVar::RequestUri),
    ("protocol", LogVar::ServerProtocol),
    ("scheme", LogVar::Scheme),
    ("status", LogVar::Status),
    ("body_bytes_sent", LogVar::BodyBytesSent),
    ("request_length", LogVar::RequestLength),
    ("request_time", LogVar::RequestTime),
    ("upstream_name", LogVar::ProxyUpstreamName),
    (
        "upstream_alternative_name",
        LogVar::ProxyAlternativeUpstreamName,
    ),
    ("upstream_addr", LogVar::UpstreamAddr),
    ("upstream_response_length", LogVar::UpstreamResponseLength),
    ("upstream_response_time", LogVar::UpstreamResponseTime),
    ("upstream_status", LogVar::UpstreamStatus),
    ("namespace", LogVar::Namespace),
    ("ingress", LogVar::IngressName),
    ("service", LogVar::ServiceName),
    ("service_port", LogVar::ServicePort),
    ("path", LogVar::Uri),
];

/// The JSON format's request headers: referer and user agent.
const JSON_HEADERS: [(&str, usize); 2] = [("referer", 0), ("user_agent", 1)];

/// What the access log says about one request, filled in as the request progresses.
/// Boxed, and made only when the request is logged.
pub(crate) struct AccessRecord {
    pub(crate) format: Arc<LogFormat>,
    pub(crate) remote: SocketAddr,
    pub(crate) tls: bool,
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) version: Version,
    pub(crate) host: Option<HeaderValue>,
    /// The request headers the format reads.
    headers: Box<[Option<HeaderValue>]>,
    /// The `Authorization` header, for `$remote_user`.
    authorization: Option<HeaderValue>,
    /// Request line and header bytes (an HTTP/1.1 count), for `$request_length`.
    head_length: u64,
    pub(crate) request_id: Option<HeaderValue>,
    pub(crate) upstream: Option<Upstream>,
    pub(crate) upstream_status: Option<u16>,
    /// The route's Ingress says `enable-access-log: "false"`: nothing is written.
    pub(crate) off: bool,
}

// === impl LogFormat ===

impl LogFormat {
    /// ingress-nginx's default line.
    pub(crate) fn upstream_default() -> Self {
        Self::custom(mse_router::global::DEFAULT_LOG_FORMAT, false)
    }

    /// A `log-format-upstream`. The global configuration refused formats with variables
    /// the gateway does not know; were one to reach here, it gives the default line.
    pub(crate) fn custom(format: &str, escape_json: bool) -> Self {
        let parsed = parse_log_format(format)
            .or_else(|_| parse_log_format(mse_router::global::DEFAULT_LOG_FORMAT))
            .unwrap_or_default();
        let mut headers: Vec<HeaderName> = Vec::new();
        let mut parts = Vec::with_capacity(parsed.len());
        let (mut user, mut length) = (false, false);
        for p in parsed {
            parts.push(match p {
                LogPart::Text(t) => Part::Text(t.into()),
                LogPart::Var(LogVar::Header(h)) => {
                    let Ok(name) = HeaderName::from_bytes(h.to_ascii_lowercase().as_bytes()) else {
                        continue;
                    };
                    let i = match headers.iter().position(|n| *n == name) {
                        Some(i) => i,
                        None => {
                            headers.push(name);
                            headers.len() - 1
                        }
                    };
                    Part::Header(i)
                }
                LogPart::Var(v) => {
                    user |= v == LogVar::RemoteUser;
                    length |= v == LogVar::RequestLength;
                    Part::Var(v)
                }
            });
        }
        Self {
            kind: Kind::Line {
                parts: parts.into(),
                escape_json,
            },
            headers: headers.into(),
            user,
            length,
        }
    }

    /// The JSON format.
    pub(crate) fn json() -> Self {
        Self {
            kind: Kind::Json,
            headers: [http::header::REFERER, http::header::USER_AGENT].into(),
            user: true,
            length: true,
        }
    }
}

// === impl AccessRecord ===

impl AccessRecord {
    pub(crate) fn new<B>(
        format: &Arc<LogFormat>,
        remote: SocketAddr,
        tls: bool,
        req: &http::Request<B>,
    ) -> Box<Self> {
        let h = req.headers();
        let headers = format.headers.iter().map(|n| h.get(n).cloned()).collect();
        let authorization = if format.user {
            h.get(AUTHORIZATION).cloned()
        } else {
            None
        };
        let head_length = if format.length { head_length(req) } else { 0 };
        Box::new(Self {
            format: Arc::clone(format),
            remote,
            tls,
            method: req.method().clone(),
            uri: req.uri().clone(),
            version: req.version(),
            host: h.get(http::header::HOST).cloned(),
            headers,
            authorization,
            head_length,
            request_id: None,
            upstream: None,
            upstream_status: None,
            off: false,
        })
    }

    /// A record of a request that is not logged, for what its span reads of it (method,
    /// target, host, client, upstream): no line is written.
    pub(crate) fn unlogged<B>(remote: SocketAddr, tls: bool, req: &http::Request<B>) -> Box<Self> {
        static NONE: std::sync::OnceLock<Arc<LogFormat>> = std::sync::OnceLock::new();
        let format = NONE.get_or_init(|| {
            Arc::new(LogFormat {
                kind: Kind::Json,
                headers: Box::default(),
                user: false,
                length: false,
            })
        });
        let mut record = Self::new(format, remote, tls, req);
        record.off = true;
        record
    }

    /// Appends the line of this request to `out`.
    pub(crate) fn write(
        &self,
        t: &Tally,
        bytes: u64,
        labels: Option<&SlotLabels>,
        clock: &Clock,
        out: &mut Vec<u8>,
    ) {
        let line = Line {
            r: self,
            t,
            bytes,
            labels,
            clock,
        };
        let mut s = String::with_capacity(256);
        match &self.format.kind {
            Kind::Line { parts, escape_json } => {
                for p in parts.iter() {
                    match p {
                        Part::Text(text) => s.push_str(text),
                        Part::Var(v) => line.value(v, &mut s, *escape_json),
                        Part::Header(i) => line.header(*i, &mut s, *escape_json),
                    }
                }
            }
            Kind::Json => {
                s.push('{');
                for (i, (key, v)) in JSON_FIELDS.iter().enumerate() {
                    if i > 0 {
                        s.push(',');
                    }
                    let _ = write!(s, "\"{key}\":");
                    line.json(v, &mut s);
                }
                for (key, i) in JSON_HEADERS {
                    let _ = write!(s, ",\"{key}\":");
                    match self.headers.get(i).and_then(Option::as_ref) {
                        Some(v) => json_string(&mut s, &String::from_utf8_lossy(v.as_bytes())),
                        None => s.push_str("null"),
                    }
                }
                s.push('}');
            }
        }
        s.push('\n');
        out.extend_from_slice(s.as_bytes());
    }
}

/// The request line and headers' length as HTTP/1.1 writes them.
fn head_length<B>(req: &http::Request<B>) -> u64 {
    // `METHOD target HTTP/1.1\r\n`
    let line = req.method().as_str().len()
        + 1
        + req.uri().path_and_query().map_or(1, |p| p.as_str().len())
        + " HTTP/1.1\r\n".len();
    let headers: usize = req
        .headers()
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum();
    (line + headers + 2) as u64
}

/// One line being written.
struct Line<'a> {
    r: &'a AccessRecord,
    t: &'a Tally,
    bytes: u64,
    labels: Option<&'a SlotLabels>,
    clock: &'a Clock,
}

impl Line<'_> {
    /// Writes a variable's value: `-` when it has none.
    fn value(&self, v: &LogVar, s: &mut String, escape_json: bool) {
        let start = s.len();
        let raw = self.text(v, s);
        if !raw {
            s.truncate(start);
            s.push('-');
        } else if escape_json {
            let value = s.split_off(start);
            json_escape(s, &value);
        }
    }

    fn header(&self, i: usize, s: &mut String, escape_json: bool) {
        match self.r.headers.get(i).and_then(Option::as_ref) {
            Some(v) => {
                let text = String::from_utf8_lossy(v.as_bytes());
                if escape_json {
                    json_escape(s, &text);
                } else {
                    s.push_str(&text);
                }
            }
            None => s.push('-'),
        }
    }

    /// Writes a variable's value as JSON: numbers bare, text quoted, `null` for none.
    fn json(&self, v: &LogVar, s: &mut String) {
        let mut text = String::new();
        if !self.text(v, &mut text) {
            s.push_str("null");
            return;
        }
        let numeric = matches!(
            v,
            LogVar::Status
                | LogVar::BodyBytesSent
                | LogVar::RequestLength
                | LogVar::RequestTime
                | LogVar::UpstreamStatus
                | LogVar::UpstreamResponseTime
                | LogVar::UpstreamResponseLength
                | LogVar::ServicePort
        );
        if numeric {
            s.push_str(&text);
        } else {
            json_string(s, &text);
        }
    }

    /// Appends the value of `v` to `s`; `false` when it has none.
    fn text(&self, v: &LogVar, s: &mut String) -> bool {
        let (r, t, l) = (self.r, self.t, self.labels);
        let proxied = r.upstream_status.is_some();
        match v {
            LogVar::RemoteAddr => write!(s, "{}", r.remote.ip()).is_ok(),
            LogVar::RemotePort => write!(s, "{}", r.remote.port()).is_ok(),
            LogVar::RemoteUser => match basic_user(r.authorization.as_ref()) {
                Some(u) => {
                    s.push_str(&u);
                    true
                }
                None => false,
            },
            LogVar::TimeLocal => self.clock.local(s),
            LogVar::TimeIso8601 => self.clock.iso8601(s),
            LogVar::Msec => self.clock.msec(s),
            LogVar::Request => {
                let target = r.uri.path_and_query().map_or("/", |p| p.as_str());
                write!(s, "{} {target} {}", r.method, protocol(r.version)).is_ok()
            }
            LogVar::RequestMethod => {
                s.push_str(r.method.as_str());
                true
            }
            LogVar::RequestUri => {
                s.push_str(r.uri.path_and_query().map_or("/", |p| p.as_str()));
                true
            }
            LogVar::Uri => {
                s.push_str(r.uri.path());
                true
            }
            LogVar::Args => match r.uri.query() {
                Some(q) => {
                    s.push_str(q);
                    true
                }
                None => false,
            },
            LogVar::ServerProtocol => {
                s.push_str(protocol(r.version));
                true
            }
            LogVar::Scheme => {
                s.push_str(if r.tls { "https" } else { "http" });
                true
            }
            LogVar::Host => {
                let host = r
                    .host
                    .as_ref()
                    .and_then(|h| h.to_str().ok())
                    .or_else(|| r.uri.authority().map(|a| a.as_str()));
                match host {
                    Some(h) => {
                        s.push_str(h);
                        true
                    }
                    None => false,
                }
            }
            LogVar::Status => write!(s, "{}", t.status).is_ok(),
            LogVar::BodyBytesSent => write!(s, "{}", self.bytes).is_ok(),
            LogVar::RequestLength => write!(s, "{}", r.head_length + t.request_bytes).is_ok(),
            LogVar::RequestTime => write!(s, "{:.3}", t.duration().as_secs_f64()).is_ok(),
            LogVar::UpstreamAddr => match &r.upstream {
                Some(u) if proxied => write!(s, "{u}").is_ok(),
                _ => false,
            },
            LogVar::UpstreamStatus => match r.upstream_status {
                Some(st) => write!(s, "{st}").is_ok(),
                None => false,
            },
            LogVar::UpstreamResponseTime => match t.upstream_time() {
                Some(d) => write!(s, "{:.3}", d.as_secs_f64()).is_ok(),
                None => false,
            },
            LogVar::UpstreamResponseLength => proxied && write!(s, "{}", self.bytes).is_ok(),
            LogVar::ProxyUpstreamName => push_nonempty(s, l.map(|l| &*l.upstream)),
            // Empty, as in ingress-nginx, for a route's main backend.
            LogVar::ProxyAlternativeUpstreamName => match l {
                Some(l) if !l.upstream.is_empty() => {
                    s.push_str(&l.canary);
                    true
                }
                _ => false,
            },
            LogVar::ReqId => match &r.request_id {
                Some(id) => {
                    s.push_str(id.to_str().unwrap_or("-"));
                    true
                }
                None => false,
            },
            LogVar::Namespace => push_nonempty(s, l.map(|l| &*l.namespace)),
            LogVar::IngressName => push_nonempty(s, l.map(|l| &*l.ingress)),
            LogVar::ServiceName => push_nonempty(s, l.map(|l| &*l.service)),
            LogVar::ServicePort => match l.map(|l| l.service_port) {
                Some(p) if p != 0 => write!(s, "{p}").is_ok(),
                _ => false,
            },
            // Request headers are resolved to `Part::Header` when the format is compiled.
            _ => false,
        }
    }
}

fn push_nonempty(s: &mut String, v: Option<&str>) -> bool {
    match v {
        Some(v) if !v.is_empty() => {
            s.push_str(v);
            true
        }
        _ => false,
    }
}

fn protocol(v: Version) -> &'static str {
    match v {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

/// The user name of a basic `Authorization` header.
fn basic_user(h: Option<&HeaderValue>) -> Option<String> {
    use base64::Engine as _;
    let v = h?.as_bytes();
    let (scheme, rest) = v.split_at(v.iter().position(|b| *b == b' ')?);
    if !scheme.eq_ignore_ascii_case(b"basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim_ascii())
        .ok()?;
    let user = decoded.split(|b| *b == b':').next()?;
    let user = String::from_utf8_lossy(user);
    // Printable characters only: a line must never be split or forged by a user name.
    Some(
        user.chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect(),
    )
}

/// `log-format-escape-json`: the value escaped for a JSON string, without quotes.
fn json_escape(s: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(s, "\\u{:04x}", c as u32);
            }
            c => s.push(c),
        }
    }
}

fn json_string(s: &mut String, v: &str) {
    s.push('"');
    json_escape(s, v);
    s.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_users_are_read_and_never_break_a_line() {
        let h = HeaderValue::from_static("Basic dXNlcjpwYXNz");
        assert_eq!(basic_user(Some(&h)).as_deref(), Some("user"));
        let bad = HeaderValue::from_static("Bearer x");
        assert_eq!(basic_user(Some(&bad)), None);
        // "a\nb:c"
        let nl = HeaderValue::from_static("Basic YQpiOmM=");
        assert_eq!(basic_user(Some(&nl)).as_deref(), Some("a?b"));
    }

    #[test]
    fn json_escaping_covers_quotes_and_controls() {
        let mut s = String::new();
        json_string(&mut s, "a\"b\\c\u{1}");
        assert_eq!(s, "\"a\\\"b\\\\c\\u0001\"");
    }
}
