//! `log-format-upstream`: an nginx `log_format` string, read into literal text and the
//! variables the gateway knows. A variable it does not know is refused with its name, so
//! that a format is never applied with holes the operator did not ask for.

/// One variable of an access log format, with the meaning ingress-nginx gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogVar {
    /// `$remote_addr`: the client address (the trusted proxy's client when one is trusted).
    RemoteAddr,
    /// `$remote_port`: the port of the client connection.
    RemotePort,
    /// `$remote_user`: the user name of a basic `Authorization` header.
    RemoteUser,
    /// `$time_local`: `07/Dec/2026:20:01:06 +0000`.
    TimeLocal,
    /// `$time_iso8601`: `2026-12-07T20:01:06+00:00`.
    TimeIso8601,
    /// `$msec`: seconds since the Unix epoch, with milliseconds.
    Msec,
    /// `$request`: `GET /path?query HTTP/1.1`.
    Request,
    /// `$request_method`.
    RequestMethod,
    /// `$request_uri`: the path and query as received.
    RequestUri,
    /// `$uri`: the path as received, without the query.
    Uri,
    /// `$args` and `$query_string`: the query, without `?`.
    Args,
    /// `$server_protocol`: `HTTP/1.1`, `HTTP/2.0`.
    ServerProtocol,
    /// `$scheme`: `http` or `https`.
    Scheme,
    /// `$host`: the request's host.
    Host,
    /// `$status`: the status sent to the client.
    Status,
    /// `$body_bytes_sent`: response body bytes sent to the client.
    BodyBytesSent,
    /// `$request_length`: the request's length (request line, headers and body).
    RequestLength,
    /// `$request_time`: seconds from the request head to the end of the response, with
    /// milliseconds.
    RequestTime,
    /// `$upstream_addr`: the upstream address (the last one tried).
    UpstreamAddr,
    /// `$upstream_status`: the upstream's status.
    UpstreamStatus,
    /// `$upstream_response_time`: seconds until the upstream's response head.
    UpstreamResponseTime,
    /// `$upstream_response_length`: body bytes relayed from the upstream.
    UpstreamResponseLength,
    /// `$proxy_upstream_name`: `namespace-service-port` of the backend.
    ProxyUpstreamName,
    /// `$proxy_alternative_upstream_name`: the same for the canary that served it.
    ProxyAlternativeUpstreamName,
    /// `$req_id`: the request id (`X-Request-ID`).
    ReqId,
    /// `$namespace`: the matched Ingress's namespace.
    Namespace,
    /// `$ingress_name`: the matched Ingress's name.
    IngressName,
    /// `$service_name`: the backend Service's name.
    ServiceName,
    /// `$service_port`: the backend Service's port.
    ServicePort,
    /// `$http_<name>`: a request header, `_` standing for `-` (lower case).
    Header(String),
}

/// One piece of a format: text written as is, or a variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogPart {
    /// Literal text.
    Text(String),
    /// A variable's value (`-` when it has none).
    Var(LogVar),
}

/// The variables of [`parse_log_format`] besides `$http_<name>`, as written.
pub const LOG_VARIABLES: &[&str] = &[
    "remote_addr",
    "remote_port",
    "remote_user",
    "time_local",
    "time_iso8601",
    "msec",
    "request",
    "request_method",
    "request_uri",
    "uri",
    "args",
    "query_string",
    "server_protocol",
    "scheme",
    "host",
    "status",
    "body_bytes_sent",
    "request_length",
    "request_time",
    "upstream_addr",
    "upstream_status",
    "upstream_response_time",
    "upstream_response_length",
    "proxy_upstream_name",
    "proxy_alternative_upstream_name",
    "req_id",
    "namespace",
    "ingress_name",
    "service_name",
    "service_port",
];

/// ingress-nginx's default `log-format-upstream`.
pub const DEFAULT_LOG_FORMAT: &str = "$remote_addr - $remote_user [$time_local] \"$request\" \
$status $body_bytes_sent \"$http_referer\" \"$http_user_agent\" $request_length $request_time \
[$proxy_upstream_name] [$proxy_alternative_upstream_name] $upstream_addr \
$upstream_response_length $upstream_response_time $upstream_status $req_id";

fn var(name: &str) -> Option<LogVar> {
    Some(match name {
        "remote_addr" => LogVar::RemoteAddr,
        "remote_port" => LogVar::RemotePort,
        "remote_user" => LogVar::RemoteUser,
        "time_local" => LogVar::TimeLocal,
        "time_iso8601" => LogVar::TimeIso8601,
        "msec" => LogVar::Msec,
        "request" => LogVar::Request,
        "request_method" => LogVar::RequestMethod,
        "request_uri" => LogVar::RequestUri,
        "uri" => LogVar::Uri,
        "args" | "query_string" => LogVar::Args,
        "server_protocol" => LogVar::ServerProtocol,
        "scheme" => LogVar::Scheme,
        "host" => LogVar::Host,
        "status" => LogVar::Status,
        "body_bytes_sent" => LogVar::BodyBytesSent,
        "request_length" => LogVar::RequestLength,
        "request_time" => LogVar::RequestTime,
        "upstream_addr" => LogVar::UpstreamAddr,
        "upstream_status" => LogVar::UpstreamStatus,
        "upstream_response_time" => LogVar::UpstreamResponseTime,
        "upstream_response_length" => LogVar::UpstreamResponseLength,
        "proxy_upstream_name" => LogVar::ProxyUpstreamName,
        "proxy_alternative_upstream_name" => LogVar::ProxyAlternativeUpstreamName,
        "req_id" => LogVar::ReqId,
        "namespace" => LogVar::Namespace,
        "ingress_name" => LogVar::IngressName,
        "service_name" => LogVar::ServiceName,
        "service_port" => LogVar::ServicePort,
        _ => {
            let header = name.strip_prefix("http_").filter(|h| !h.is_empty())?;
            LogVar::Header(header.replace('_', "-"))
        }
    })
}

/// Reads an nginx log format: `$name` and `${name}` are variables (names of letters,
/// digits and `_`), everything else is text. A variable the gateway does not know is an
/// error naming it.
pub fn parse_log_format(format: &str) -> Result<Vec<LogPart>, String> {
    let mut parts = Vec::new();
    let mut text = String::new();
    let mut rest = format;
    while let Some(at) = rest.find('$') {
        text.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, next) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) => (&braced[..end], &braced[end + 1..]),
                None => return Err("a `${` without its closing `}`".to_owned()),
            }
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        if name.is_empty() {
            // A lone `$` is text, as nginx writes it.
            text.push('$');
            rest = next;
            continue;
        }
        let Some(v) = var(name) else {
            return Err(format!(
                "unknown variable ${name} (known: ${}, $http_<header>)",
                LOG_VARIABLES.join(", $")
            ));
        };
        if !text.is_empty() {
            parts.push(LogPart::Text(std::mem::take(&mut text)));
        }
        parts.push(LogPart::Var(v));
        rest = next;
    }
    text.push_str(rest);
    if !text.is_empty() {
        parts.push(LogPart::Text(text));
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_format_reads_with_known_variables_only() {
        let parts = parse_log_format(DEFAULT_LOG_FORMAT).unwrap();
        assert_eq!(parts[0], LogPart::Var(LogVar::RemoteAddr));
        assert_eq!(parts[1], LogPart::Text(" - ".into()));
        assert!(parts.contains(&LogPart::Var(LogVar::Header("user-agent".into()))));
        assert_eq!(parts.last(), Some(&LogPart::Var(LogVar::ReqId)));
    }

    #[test]
    fn braces_and_lone_dollars_are_read_as_nginx_does() {
        let parts = parse_log_format("${status}ms $ x").unwrap();
        assert_eq!(
            parts,
            vec![LogPart::Var(LogVar::Status), LogPart::Text("ms $ x".into())]
        );
    }

    #[test]
    fn an_unknown_variable_is_named() {
        let e = parse_log_format("$remote_addr $geoip_country").unwrap_err();
        assert!(e.starts_with("unknown variable $geoip_country"), "{e}");
        assert!(parse_log_format("${status").is_err());
    }
}
