//! The request head phase: the host a request names, its target in origin form, and the
//! header shapes an HTTP/1.1 upstream needs.

use http::header::{CONNECTION, COOKIE, HOST, UPGRADE};
use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderValue, Method, Request, Uri, Version};

use crate::error::ProxyError;

/// The host a request names, read once per request.
pub(super) struct Target {
    /// The URI authority, else the `Host` header; `None` for HTTP/1.0 without either.
    pub(super) host: Option<HeaderValue>,
    /// Whether `host` came from the URI authority, so `Host` must be set from it.
    pub(super) from_authority: bool,
}

// === impl Target ===

impl Target {
    /// Reads the host of a request, refusing `CONNECT` and malformed hosts.
    pub(super) fn read<B>(req: &Request<B>) -> Result<Self, ProxyError> {
        if req.method() == Method::CONNECT {
            return Err(ProxyError::MethodNotAllowed);
        }
        let (host, from_authority) = request_host(req)?;
        Ok(Self {
            host,
            from_authority,
        })
    }

    /// The host as text; empty when the request has none.
    pub(super) fn host_str(&self) -> Result<&str, ProxyError> {
        match &self.host {
            Some(h) => h
                .to_str()
                .map_err(|_| bad("the host is not printable ASCII")),
            None => Ok(""),
        }
    }
}

fn bad(reason: &'static str) -> ProxyError {
    ProxyError::BadRequest { reason }
}

/// The request's host: the URI authority (HTTP/2 `:authority`, or an HTTP/1.1
/// absolute-form target, which wins over `Host` per RFC 9112 section 3.2.2), else the one
/// `Host` header. The flag says it came from the authority. Either must be one valid
/// authority without userinfo, and a `Host` header beside an authority must be valid too
/// (RFC 9112 section 3.2: one `Host`, with a valid value, or 400).
fn request_host<B>(req: &Request<B>) -> Result<(Option<HeaderValue>, bool), ProxyError> {
    let mut hosts = req.headers().get_all(HOST).iter();
    let header = match (hosts.next(), hosts.next()) {
        (Some(_), Some(_)) => return Err(bad("more than one Host header")),
        (Some(h), None) if !valid_host(h.as_bytes()) => {
            return Err(bad("the Host header is not a valid host"));
        }
        (h, _) => h,
    };
    if let Some(authority) = req.uri().authority() {
        let s = authority.as_str();
        if !valid_host(s.as_bytes()) {
            return Err(bad("the authority is not a valid host"));
        }
        let v = HeaderValue::from_str(s).map_err(|_| bad("the authority is not a valid host"))?;
        return Ok((Some(v), true));
    }
    match header {
        Some(h) => Ok((Some(h.clone()), false)),
        None if req.version() == Version::HTTP_11 => {
            Err(bad("an HTTP/1.1 request must have a Host header"))
        }
        None => Ok((None, false)),
    }
}

/// The bytes a host name may hold: letters, digits, `-`, `.`, `_` and `~`.
const NAME_BYTE: [bool; 256] = {
    let mut t = [false; 256];
    let mut b: u8 = 0;
    loop {
        t[b as usize] = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
        if b == u8::MAX {
            break t;
        }
        b += 1;
    }
};

/// Whether `host` is one authority without userinfo (RFC 3986 section 3.2): a name or
/// IPv4 address of letters, digits, `-`, `.`, `_` and `~`, or an IP literal in brackets;
/// then, optionally, `:` and a port of one to five digits. Spaces, `/`, `\`, `,`, `@` and
/// every other delimiter are refused: each lets some server in a chain read another host
/// than the one the gateway routed by.
fn valid_host(host: &[u8]) -> bool {
    let port = if let Some(literal) = host.strip_prefix(b"[") {
        let Some(end) = literal.iter().position(|b| *b == b']') else {
            return false;
        };
        let ip = &literal[..end];
        if ip.is_empty()
            || !ip
                .iter()
                .all(|b| b.is_ascii_hexdigit() || matches!(b, b':' | b'.'))
        {
            return false;
        }
        &literal[end + 1..]
    } else {
        // One pass with a table: the name ends at the first byte a name may not hold,
        // which must then be the port's `:` or the end.
        let end = host
            .iter()
            .position(|b| !NAME_BYTE[usize::from(*b)])
            .unwrap_or(host.len());
        if end == 0 {
            return false;
        }
        &host[end..]
    };
    match port {
        [] => true,
        [b':', digits @ ..] => {
            (1..=5).contains(&digits.len()) && digits.iter().all(u8::is_ascii_digit)
        }
        _ => false,
    }
}

/// Rewrites the target to origin form (`/path?query`), with the normalised path when it
/// differs from the one received.
pub(super) fn set_origin_form(uri: &mut Uri, new_path: Option<String>) -> Result<(), ProxyError> {
    match new_path {
        Some(mut path) => {
            if let Some(q) = uri.query() {
                // A rewrite that adds a query keeps the request's after it, as nginx does.
                path.push(if path.contains('?') { '&' } else { '?' });
                path.push_str(q);
            }
            *uri = Uri::try_from(path).map_err(|_| bad("the path is not a valid URI path"))?;
        }
        None if uri.scheme().is_some() || uri.authority().is_some() => {
            let pq = uri
                .path_and_query()
                .cloned()
                .unwrap_or_else(|| PathAndQuery::from_static("/"));
            *uri = Uri::from(pq);
        }
        None => {}
    }
    Ok(())
}

/// Whether an HTTP/1.1 request asks to switch protocols (WebSocket and others).
pub(super) fn wants_upgrade<B>(req: &Request<B>) -> bool {
    req.version() == Version::HTTP_11
        && req.headers().contains_key(UPGRADE)
        && connection_has(req.headers(), "upgrade")
}

fn connection_has(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// HTTP/2 clients may split `Cookie` into several fields; an HTTP/1.1 upstream gets them
/// as one, joined by `; ` (RFC 9113 section 8.2.3).
pub(super) fn join_cookies(headers: &mut HeaderMap) {
    let mut values = headers.get_all(COOKIE).iter();
    let (Some(_), Some(_)) = (values.next(), values.next()) else {
        return;
    };
    let joined = headers
        .get_all(COOKIE)
        .iter()
        .map(HeaderValue::as_bytes)
        .collect::<Vec<_>>()
        .join(&b"; "[..]);
    if let Ok(value) = HeaderValue::from_bytes(&joined) {
        headers.insert(COOKIE, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_one_authority_without_userinfo() {
        for ok in [
            "a.example.com",
            "a.example.com:8080",
            "A-1_b~c.",
            "10.0.0.1:80",
            "[::1]",
            "[2001:db8::1]:443",
        ] {
            assert!(valid_host(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "", ":80", "a b", "a/b", "a\\b", "a,b", "u@a", "a:", "a:123456", "a:8o", "a:80:80",
            "[::1", "[]", "[::1]x", "[::g]", "a?b", "a#b", "a%41",
        ] {
            assert!(!valid_host(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn split_cookies_are_joined_for_http11() {
        let mut h = HeaderMap::new();
        h.append(COOKIE, HeaderValue::from_static("a=1"));
        h.append(COOKIE, HeaderValue::from_static("b=2"));
        join_cookies(&mut h);
        assert_eq!(h.get_all(COOKIE).iter().collect::<Vec<_>>(), ["a=1; b=2"]);
    }

    #[test]
    fn targets_become_origin_form_with_the_normalised_path_and_the_query_kept() {
        let mut uri: Uri = "https://a.example/x/../y?q=1".parse().unwrap();
        set_origin_form(&mut uri, Some("/y".to_owned())).unwrap();
        assert_eq!(uri, "/y?q=1");
        let mut uri: Uri = "http://a.example/z?k".parse().unwrap();
        set_origin_form(&mut uri, None).unwrap();
        assert_eq!(uri.to_string(), "/z?k");
        let mut uri: Uri = "/same".parse().unwrap();
        set_origin_form(&mut uri, None).unwrap();
        assert_eq!(uri, "/same");
    }

    #[test]
    fn upgrade_needs_http11_upgrade_and_the_connection_token() {
        let req = |v: Version, conn: &'static str| {
            Request::builder()
                .version(v)
                .header(UPGRADE, "websocket")
                .header(CONNECTION, conn)
                .body(())
                .unwrap()
        };
        assert!(wants_upgrade(&req(Version::HTTP_11, "keep-alive, Upgrade")));
        assert!(!wants_upgrade(&req(Version::HTTP_11, "keep-alive")));
        assert!(!wants_upgrade(&req(Version::HTTP_10, "upgrade")));
    }
}
