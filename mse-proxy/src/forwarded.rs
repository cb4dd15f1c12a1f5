//! The forwarding headers the gateway sets on every proxied request, as ingress-nginx
//! does: `X-Forwarded-For`, `X-Real-IP`, `X-Forwarded-Proto`, `X-Forwarded-Host` and
//! `X-Forwarded-Port`. The client's own values of these headers are replaced, but for
//! `X-Forwarded-For`, to which the client's address is appended ([`forwarded_for`]).

use std::io::Write;
use std::net::IpAddr;
use std::rc::Rc;

use bytes::BytesMut;
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::http1::line;

/// The request headers the gateway sets itself: `X-Forwarded-For` (the client's list with
/// the client appended), `X-Real-IP`, `X-Forwarded-Proto`, `X-Forwarded-Host` and
/// `X-Forwarded-Port`. On the common path they are written straight into the request head
/// ([`encode_head`]), so the header map is neither probed nor grown for them; where the
/// map itself travels on (upgrades, mirror copies, error pages, header edits naming
/// them) they are inserted into it ([`ForwardHeaders::insert_into`]).
#[derive(Clone, Debug)]
pub(crate) struct ForwardHeaders {
    conn: Rc<ConnForward>,
    /// `X-Forwarded-For` when the client sent one: theirs with the client appended.
    /// `None`: the client address alone.
    for_: Option<HeaderValue>,
    /// `None`: a request without host; a client's `X-Forwarded-Host` is removed.
    host: Option<HeaderValue>,
}

/// The forwarding headers that are the same for every request of one client connection,
/// with their head lines written once.
#[derive(Debug)]
pub(crate) struct ConnForward {
    peer_ip: HeaderValue,
    proto: HeaderValue,
    port: HeaderValue,
    /// `x-forwarded-for` (the client address alone), `x-real-ip`, `x-forwarded-proto` and
    /// `x-forwarded-port` lines.
    lines: Box<[u8]>,
    /// Where the lines after `x-forwarded-for` start.
    after_for: usize,
}

impl ConnForward {
    /// For a client at `peer` on a listener at `port`, over TLS or not. Done once per
    /// connection, so without the formatting machinery: with a new connection per
    /// request, `to_string` of the address and port was a tenth of the gateway's work.
    pub(crate) fn for_peer(peer: IpAddr, tls: bool, port: u16) -> Self {
        let mut text = Vec::with_capacity(48);
        push_ip(&mut text, peer);
        let ip_end = text.len();
        push_decimal(&mut text, port);
        let value = |b: &[u8]| HeaderValue::from_bytes(b).unwrap_or(HeaderValue::from_static(""));
        Self::new(value(&text[..ip_end]), tls, value(&text[ip_end..]))
    }

    /// For a client at `peer_ip` on a listener at `port`, over TLS or not.
    pub(crate) fn new(peer_ip: HeaderValue, tls: bool, port: HeaderValue) -> Self {
        let proto = HeaderValue::from_static(if tls { "https" } else { "http" });
        // The four lines' names, separators and values, so that nothing grows.
        let mut lines = Vec::with_capacity(
            2 * peer_ip.len() + proto.len() + port.len() + LINE_NAMES_LEN + 4 * 4,
        );
        line(&mut lines, b"x-forwarded-for", peer_ip.as_bytes());
        let after_for = lines.len();
        line(&mut lines, b"x-real-ip", peer_ip.as_bytes());
        line(&mut lines, b"x-forwarded-proto", proto.as_bytes());
        line(&mut lines, b"x-forwarded-port", port.as_bytes());
        Self {
            peer_ip,
            proto,
            port,
            lines: lines.into(),
            after_for,
        }
    }

    /// The client address.
    pub(crate) fn peer_ip(&self) -> &HeaderValue {
        &self.peer_ip
    }
}

/// The lengths of `x-forwarded-for`, `x-real-ip`, `x-forwarded-proto` and
/// `x-forwarded-port`.
const LINE_NAMES_LEN: usize = 15 + 9 + 17 + 16;

/// Appends the text of an address: IPv4 written digit by digit, IPv6 by its `Display`.
fn push_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                push_decimal(out, u16::from(octet));
            }
        }
        IpAddr::V6(v6) => {
            let _ = write!(out, "{v6}");
        }
    }
}

/// Appends `n` in decimal.
fn push_decimal(out: &mut Vec<u8>, n: u16) {
    let mut digits = [0u8; 5];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        // A digit: always below 10.
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// `X-Forwarded-For` with the client address appended to what the client sent, as
/// ingress-nginx does; `None` when the client sent none (the address alone).
pub(crate) fn forwarded_for(headers: &HeaderMap, ip: &HeaderValue) -> Option<HeaderValue> {
    let mut prior = headers.get_all(X_FORWARDED_FOR).iter();
    let first = prior.next()?;
    let mut buf = BytesMut::with_capacity(first.len() + ip.len() + 16);
    buf.extend_from_slice(first.as_bytes());
    for v in prior {
        buf.extend_from_slice(b", ");
        buf.extend_from_slice(v.as_bytes());
    }
    buf.extend_from_slice(b", ");
    buf.extend_from_slice(ip.as_bytes());
    HeaderValue::from_maybe_shared(buf.freeze()).ok()
}

impl ForwardHeaders {
    /// Whether `name` is one of the headers this replaces.
    pub(crate) fn replaces(name: &HeaderName) -> bool {
        let n = name.as_str();
        n.as_bytes().first() == Some(&b'x')
            && matches!(
                n,
                "x-forwarded-for"
                    | "x-real-ip"
                    | "x-forwarded-proto"
                    | "x-forwarded-host"
                    | "x-forwarded-port"
            )
    }

    /// The headers of a request from the connection of `conn`: `for_` is the client's own
    /// `X-Forwarded-For` with the client appended, if it sent one.
    pub(crate) fn new(
        conn: Rc<ConnForward>,
        for_: Option<HeaderValue>,
        host: Option<HeaderValue>,
    ) -> Self {
        Self { conn, for_, host }
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        let c = &*self.conn;
        match &self.for_ {
            None => out.extend_from_slice(&c.lines),
            Some(v) => {
                line(out, b"x-forwarded-for", v.as_bytes());
                out.extend_from_slice(&c.lines[c.after_for..]);
            }
        }
        if let Some(h) = &self.host {
            line(out, b"x-forwarded-host", h.as_bytes());
        }
    }

    /// Puts these headers into `headers`, replacing the client's.
    pub(crate) fn insert_into(self, headers: &mut HeaderMap) {
        let c = &*self.conn;
        let for_ = self.for_.unwrap_or_else(|| c.peer_ip.clone());
        headers.insert(X_FORWARDED_FOR, for_);
        headers.insert(X_REAL_IP, c.peer_ip.clone());
        headers.insert(X_FORWARDED_PROTO, c.proto.clone());
        match self.host {
            Some(h) => headers.insert(X_FORWARDED_HOST, h),
            None => headers.remove(X_FORWARDED_HOST),
        };
        headers.insert(X_FORWARDED_PORT, c.port.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_appends_the_client_to_every_prior_hop() {
        let ip = HeaderValue::from_static("10.0.0.9");
        let mut h = HeaderMap::new();
        // The client address alone is written from the connection's lines.
        assert_eq!(forwarded_for(&h, &ip), None);
        h.append(X_FORWARDED_FOR, HeaderValue::from_static("1.1.1.1"));
        h.append(
            X_FORWARDED_FOR,
            HeaderValue::from_static("2.2.2.2, 3.3.3.3"),
        );
        assert_eq!(
            forwarded_for(&h, &ip).unwrap(),
            "1.1.1.1, 2.2.2.2, 3.3.3.3, 10.0.0.9"
        );
    }

    #[test]
    fn addresses_and_ports_are_written_as_display_writes_them() {
        let cases: [(IpAddr, u16); 5] = [
            ("10.0.0.1".parse().unwrap(), 80),
            ("255.255.255.255".parse().unwrap(), 65535),
            ("0.0.0.0".parse().unwrap(), 0),
            ("::1".parse().unwrap(), 8443),
            ("::ffff:192.0.2.7".parse().unwrap(), 443),
        ];
        for (ip, port) in cases {
            let f = ConnForward::for_peer(ip, false, port);
            assert_eq!(f.peer_ip(), ip.to_string().as_str());
            assert_eq!(f.port, port.to_string().as_str());
            let mut text = Vec::new();
            push_decimal(&mut text, port);
            assert_eq!(text, port.to_string().as_bytes());
        }
    }
}
