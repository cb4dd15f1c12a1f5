//! The header rules of one hop: what the gateway takes out of a message because it belongs
//! to one connection (RFC 9110 section 7.6.1), and the request's forwarding headers, which
//! [`crate::forwarded`] builds.

use std::rc::Rc;

use http::header::{CONNECTION, EXPECT, HOST, TE, TRAILER, TRANSFER_ENCODING, UPGRADE};
use http::{HeaderMap, HeaderName, HeaderValue};

use super::ConnCtx;
use super::head::Target;
use crate::forwarded::{ForwardHeaders, Trusted, forwarded_for};
use crate::http1::Present;

const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Removes hop-by-hop headers, sets `Host` when it came as the URI authority, and returns
/// the gateway's own forwarding headers for this request (with what a trusted proxy in
/// front said, when there is one).
pub(super) fn prepare_request_headers(
    headers: &mut HeaderMap,
    cx: &ConnCtx,
    target: &Target,
    present: Present,
    upgrade: bool,
    trusted: Option<Box<Trusted>>,
) -> ForwardHeaders {
    // The parser noted which of these the request has: most have none, and most of the
    // others only `Connection: close` or `keep-alive`.
    if upgrade || (present.hop_by_hop() && !present.only_connection()) {
        strip_hop_by_hop(headers, upgrade);
    } else if present.hop_by_hop() {
        headers.remove(CONNECTION);
    }
    let host = target.host.as_ref();
    match host {
        Some(h) if target.from_authority => {
            headers.insert(HOST, h.clone());
        }
        Some(_) => {}
        // HTTP/1.0 without Host: an empty Host is what RFC 9112 asks for.
        None => {
            headers.insert(HOST, HeaderValue::from_static(""));
        }
    }
    ForwardHeaders::new(
        Rc::clone(&cx.forward),
        present
            .forwarded_for()
            .then(|| forwarded_for(headers, cx.forward.peer_ip()))
            .flatten(),
        host.cloned(),
        trusted,
    )
}

/// The fixed hop-by-hop names, as bits of the set `strip_hop_by_hop` finds.
const HOP_BY_HOP: [HeaderName; 8] = [
    CONNECTION,
    TE,
    TRAILER,
    TRANSFER_ENCODING,
    UPGRADE,
    EXPECT,
    KEEP_ALIVE,
    PROXY_CONNECTION,
];
const CONNECTION_BIT: u8 = 1;
const UPGRADE_BIT: u8 = 1 << 4;

/// The bit of a hop-by-hop name in `HOP_BY_HOP`, if it is one. Names are lower case.
fn hop_bit(name: &HeaderName) -> u8 {
    match name.as_str() {
        "connection" => 1,
        "te" => 1 << 1,
        "trailer" => 1 << 2,
        "transfer-encoding" => 1 << 3,
        "upgrade" => 1 << 4,
        "expect" => 1 << 5,
        "keep-alive" => 1 << 6,
        "proxy-connection" => 1 << 7,
        _ => 0,
    }
}

/// Removes the headers that belong to one connection (RFC 9110 section 7.6.1): the ones
/// `Connection` names, and `Connection`, `Keep-Alive`, `Proxy-Connection`, `TE`, `Trailer`,
/// `Transfer-Encoding` and `Upgrade`. An upgrade keeps `Upgrade` and `Connection: upgrade`.
/// `Expect` goes too: the gateway answered `100-continue` itself when it started reading
/// the request body.
pub(super) fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    // One pass over the names finds which are present (most messages carry none, or only
    // `Connection`), so only those are looked up again to be removed.
    let mut present = headers.keys().fold(0u8, |bits, name| bits | hop_bit(name));
    if keep_upgrade {
        present &= !UPGRADE_BIT;
    }
    if present & CONNECTION_BIT != 0 {
        remove_connection_named(headers);
    }
    for (i, name) in HOP_BY_HOP.iter().enumerate() {
        if present & (1 << i) != 0 {
            headers.remove(name);
        }
    }
    if keep_upgrade {
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

/// Removes the headers the `Connection` header names (never `Host`).
fn remove_connection_named(headers: &mut HeaderMap) {
    let mut named: Vec<HeaderName> = Vec::new();
    for value in headers.get_all(CONNECTION) {
        let Ok(value) = value.to_str() else { continue };
        for token in value.split(',').map(str::trim) {
            if token.is_empty()
                || token.eq_ignore_ascii_case("close")
                || token.eq_ignore_ascii_case("keep-alive")
                || token.eq_ignore_ascii_case("upgrade")
            {
                continue;
            }
            if let Ok(name) = HeaderName::from_bytes(token.as_bytes())
                && name != HOST
            {
                named.push(name);
            }
        }
    }
    for name in named {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_named_headers_and_hop_by_hop_headers_are_removed() {
        let mut h = HeaderMap::new();
        h.insert(
            CONNECTION,
            HeaderValue::from_static("keep-alive, X-Secret, host"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert(HOST, HeaderValue::from_static("a.example"));
        h.insert(KEEP_ALIVE, HeaderValue::from_static("timeout=5"));
        h.insert(PROXY_CONNECTION, HeaderValue::from_static("keep-alive"));
        h.insert(TE, HeaderValue::from_static("trailers"));
        h.insert(TRAILER, HeaderValue::from_static("x-sum"));
        h.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        h.insert(UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(EXPECT, HeaderValue::from_static("100-continue"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h, false);
        let left: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["host", "x-kept"]);
    }

    #[test]
    fn hop_bits_follow_the_table() {
        for (i, name) in HOP_BY_HOP.iter().enumerate() {
            assert_eq!(hop_bit(name), 1 << i, "{name}");
        }
        assert_eq!(hop_bit(&HOST), 0);
    }

    #[test]
    fn upgrade_keeps_upgrade_and_connection_upgrade_only() {
        let mut h = HeaderMap::new();
        h.insert(CONNECTION, HeaderValue::from_static("Upgrade, keep-alive"));
        h.insert(UPGRADE, HeaderValue::from_static("websocket"));
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h[CONNECTION], "upgrade");
        assert_eq!(h[UPGRADE], "websocket");
        let mut plain = HeaderMap::new();
        plain.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut plain, false);
        assert_eq!(plain.len(), 1);
    }
}
