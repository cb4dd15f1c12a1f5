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
/// with their head lines written once. The address and port are kept as text inside the
/// lines; header values are made of them only where a request's header map needs them.
#[derive(Debug)]
pub(crate) struct ConnForward {
    /// `x-forwarded-for` (the client address alone), `x-real-ip`, `x-forwarded-proto` and
    /// `x-forwarded-port` lines.
    lines: Box<[u8]>,
    /// Where the lines after `x-forwarded-for` start.
    after_for: usize,
    /// Where the address and the port are in `lines`.
    ip: (usize, usize),
    port: (usize, usize),
    tls: bool,
}

impl ConnForward {
    /// For a client at `peer` on a listener at `port`, over TLS or not. Done once per
    /// connection, so written into a buffer on the stack and copied out once, without the
    /// formatting machinery: with a new connection per request, `to_string` of the address
    /// and port and the growth of the lines were a tenth of the gateway's work.
    pub(crate) fn for_peer(peer: IpAddr, tls: bool, port: u16) -> Self {
        // The longest lines: a 45-character IPv6 address twice, `https`, a 5-digit port.
        let mut buf = [0u8; 192];
        let mut w = Writer {
            buf: &mut buf,
            at: 0,
        };
        w.put(b"x-forwarded-for: ");
        let ip_start = w.at;
        w.ip(peer);
        let ip = (ip_start, w.at);
        w.put(b"\r\n");
        let after_for = w.at;
        w.put(b"x-real-ip: ");
        w.buf.copy_within(ip.0..ip.1, w.at);
        w.at += ip.1 - ip.0;
        w.put(b"\r\nx-forwarded-proto: ");
        w.put(if tls { b"https" } else { b"http" });
        w.put(b"\r\nx-forwarded-port: ");
        let port_start = w.at;
        w.decimal(port);
        let port = (port_start, w.at);
        w.put(b"\r\n");
        let len = w.at;
        Self {
            lines: Box::from(&buf[..len]),
            after_for,
            ip,
            port,
            tls,
        }
    }

    /// The client address, as written in `X-Real-IP`.
    pub(crate) fn peer_ip(&self) -> &[u8] {
        &self.lines[self.ip.0..self.ip.1]
    }

    fn value(&self, (from, to): (usize, usize)) -> HeaderValue {
        // Digits, dots and colons: always a valid value.
        HeaderValue::from_bytes(&self.lines[from..to]).unwrap_or(HeaderValue::from_static(""))
    }
}

/// Writes into a fixed buffer sized for the longest lines.
struct Writer<'a> {
    buf: &'a mut [u8; 192],
    at: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        self.buf[self.at..self.at + bytes.len()].copy_from_slice(bytes);
        self.at += bytes.len();
    }

    /// An address: IPv4 digit by digit, IPv6 by its `Display` (at most 45 characters).
    fn ip(&mut self, ip: IpAddr) {
        match ip {
            IpAddr::V4(v4) => {
                for (i, octet) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        self.put(b".");
                    }
                    self.decimal(u16::from(octet));
                }
            }
            IpAddr::V6(v6) => {
                let mut rest = &mut self.buf[self.at..];
                let before = rest.len();
                let _ = write!(rest, "{v6}");
                self.at += before - rest.len();
            }
        }
    }

    /// `n` in decimal.
    fn decimal(&mut self, n: u16) {
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
        self.put(&digits[i..]);
    }
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// `X-Forwarded-For` with the client address appended to what the client sent, as
/// ingress-nginx does; `None` when the client sent none (the address alone).
pub(crate) fn forwarded_for(headers: &HeaderMap, ip: &[u8]) -> Option<HeaderValue> {
    let mut prior = headers.get_all(X_FORWARDED_FOR).iter();
    let first = prior.next()?;
    let mut buf = BytesMut::with_capacity(first.len() + ip.len() + 16);
    buf.extend_from_slice(first.as_bytes());
    for v in prior {
        buf.extend_from_slice(b", ");
        buf.extend_from_slice(v.as_bytes());
    }
    buf.extend_from_slice(b", ");
    buf.extend_from_slice(ip);
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
        let ip = c.value(c.ip);
        let for_ = self.for_.unwrap_or_else(|| ip.clone());
        headers.insert(X_FORWARDED_FOR, for_);
        headers.insert(X_REAL_IP, ip);
        let proto = if c.tls { "https" } else { "http" };
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));
        match self.host {
            Some(h) => headers.insert(X_FORWARDED_HOST, h),
            None => headers.remove(X_FORWARDED_HOST),
        };
        headers.insert(X_FORWARDED_PORT, c.value(c.port));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_appends_the_client_to_every_prior_hop() {
        let ip = b"10.0.0.9";
        let mut h = HeaderMap::new();
        // The client address alone is written from the connection's lines.
        assert_eq!(forwarded_for(&h, ip), None);
        h.append(X_FORWARDED_FOR, HeaderValue::from_static("1.1.1.1"));
        h.append(
            X_FORWARDED_FOR,
            HeaderValue::from_static("2.2.2.2, 3.3.3.3"),
        );
        assert_eq!(
            forwarded_for(&h, ip).unwrap(),
            "1.1.1.1, 2.2.2.2, 3.3.3.3, 10.0.0.9"
        );
    }

    #[test]
    fn addresses_and_ports_are_written_as_display_writes_them() {
        let cases: [(IpAddr, u16, bool); 6] = [
            ("10.0.0.1".parse().unwrap(), 80, false),
            ("255.255.255.255".parse().unwrap(), 65535, true),
            ("0.0.0.0".parse().unwrap(), 0, false),
            ("::1".parse().unwrap(), 8443, true),
            ("::ffff:192.0.2.7".parse().unwrap(), 443, false),
            (
                "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"
                    .parse()
                    .unwrap(),
                65535,
                true,
            ),
        ];
        for (ip, port, tls) in cases {
            let f = ConnForward::for_peer(ip, tls, port);
            let (ip, port) = (ip.to_string(), port.to_string());
            assert_eq!(f.peer_ip(), ip.as_bytes());
            assert_eq!(f.value(f.port), port.as_str());
            let proto = if tls { "https" } else { "http" };
            let lines = format!(
                "x-forwarded-for: {ip}\r\nx-real-ip: {ip}\r\nx-forwarded-proto: {proto}\r\nx-forwarded-port: {port}\r\n"
            );
            assert_eq!(std::str::from_utf8(&f.lines).unwrap(), lines);
            assert_eq!(
                &f.lines[f.after_for..],
                &lines.as_bytes()[17 + ip.len() + 2..]
            );
            let mut map = HeaderMap::new();
            ForwardHeaders::new(std::rc::Rc::new(f), None, None).insert_into(&mut map);
            assert_eq!(map[X_REAL_IP], ip.as_str());
            assert_eq!(map[X_FORWARDED_FOR], ip.as_str());
            assert_eq!(map[X_FORWARDED_PROTO], proto);
            assert_eq!(map[X_FORWARDED_PORT], port.as_str());
        }
    }
}
