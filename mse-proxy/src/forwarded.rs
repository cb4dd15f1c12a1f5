//! The forwarding headers the gateway sets on every proxied request, as ingress-nginx
//! does: `X-Forwarded-For`, `X-Real-IP`, `X-Forwarded-Proto`, `X-Forwarded-Host` and
//! `X-Forwarded-Port`. The client's own values of these headers are replaced, but for
//! `X-Forwarded-For`, to which the client's address is appended ([`forwarded_for`]).
//!
//! With `use-forwarded-headers` ([`TrustedProxies`]), a client in `proxy-real-ip-cidr` is a
//! proxy in front of the gateway: its `X-Forwarded-Proto`, `-Host` and `-Port` are kept,
//! and `X-Real-IP` is the address nginx's `real_ip_recursive` finds in its
//! `forwarded-for-header` list ([`Trusted`]).

use std::cell::RefCell;
use std::io::Write;
use std::net::IpAddr;
use std::rc::Rc;

use mse_router::IpSet;
use mse_router::global::GlobalConfig;

use bytes::BytesMut;
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::http1::line;
use crate::log_writer::RequestId;

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
    /// What a trusted proxy in front said, replacing the connection's own values.
    trusted: Option<Box<Trusted>>,
    /// The `X-Request-ID` the gateway made for a request without a valid one, when it is
    /// not in the header map yet.
    request_id: Option<RequestId>,
}

/// `use-forwarded-headers` of a table: the proxies whose forwarding headers are believed.
#[derive(Clone, Debug)]
pub(crate) struct TrustedProxies {
    /// `proxy-real-ip-cidr` (or `--trusted-proxies`), compiled.
    proxies: IpSet,
    /// `forwarded-for-header`.
    header: HeaderName,
}

/// The forwarding headers a trusted proxy sent, for one request.
#[derive(Clone, Debug, Default)]
pub(crate) struct Trusted {
    /// The client address found in the proxy's list, when it is not the proxy's own.
    pub(crate) real_ip: Option<IpAddr>,
    /// `X-Forwarded-Proto`.
    pub(crate) proto: Option<HeaderValue>,
    /// `X-Forwarded-Port`.
    pub(crate) port: Option<HeaderValue>,
    /// `X-Forwarded-Host`.
    pub(crate) host: Option<HeaderValue>,
}

/// The forwarding headers that are the same for every request of one client connection,
/// with their head lines written once. The address and port are kept as text inside the
/// lines; header values are made of them only where a request's header map needs them.
#[derive(Debug)]
pub(crate) struct ConnForward {
    /// `x-forwarded-for` (the client address alone), `x-real-ip`, `x-forwarded-proto` and
    /// `x-forwarded-port` lines, in the first `len` bytes: held inline, so that a new
    /// connection allocates nothing for them besides its context.
    lines: [u8; LINES_MAX],
    len: usize,
    /// Where the lines after `x-forwarded-for` start.
    after_for: usize,
    /// Where the address and the port are in `lines`.
    ip: (usize, usize),
    port: (usize, usize),
    tls: bool,
}

impl ConnForward {
    /// For a client at `peer` on a listener at `port`, over TLS or not. Done once per
    /// connection, so written into a fixed buffer without the formatting machinery: with
    /// a new connection per request, `to_string` of the address and port and the growth
    /// of the lines were a tenth of the gateway's work.
    pub(crate) fn for_peer(peer: IpAddr, tls: bool, port: u16) -> Self {
        let mut buf = [0u8; LINES_MAX];
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
            lines: buf,
            len,
            after_for,
            ip,
            port,
            tls,
        }
    }

    /// The lines, as written into a request head.
    fn lines(&self) -> &[u8] {
        &self.lines[..self.len]
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

/// The forwarding lines of the last client connection a worker accepted. Connections from
/// the same address, listener and scheme (a load balancer in front, a client that opens a
/// connection per request) share them rather than writing them again.
#[derive(Default)]
pub(crate) struct LastForward(RefCell<Option<(IpAddr, bool, u16, Rc<ConnForward>)>>);

impl LastForward {
    /// [`ConnForward::for_peer`], shared with the last connection when it is the same.
    pub(crate) fn get(&self, peer: IpAddr, tls: bool, port: u16) -> Rc<ConnForward> {
        let mut last = self.0.borrow_mut();
        if let Some((ip, t, p, lines)) = &*last
            && (*ip, *t, *p) == (peer, tls, port)
        {
            return Rc::clone(lines);
        }
        let lines = Rc::new(ConnForward::for_peer(peer, tls, port));
        *last = Some((peer, tls, port, Rc::clone(&lines)));
        lines
    }
}

/// The longest lines: a 45-character IPv6 address twice, `https`, a 5-digit port.
const LINES_MAX: usize = 192;

/// Writes into a fixed buffer sized for the longest lines.
struct Writer<'a> {
    buf: &'a mut [u8; LINES_MAX],
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
pub(crate) const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

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
    /// `X-Forwarded-For` with the client appended, if it sent one; `trusted`, what a
    /// trusted proxy in front said.
    pub(crate) fn new(
        conn: Rc<ConnForward>,
        for_: Option<HeaderValue>,
        host: Option<HeaderValue>,
        trusted: Option<Box<Trusted>>,
    ) -> Self {
        Self {
            conn,
            for_,
            host,
            trusted,
            request_id: None,
        }
    }

    /// With the `X-Request-ID` the gateway made for the request (`None`: the client's, or
    /// one already in the header map, goes as it is).
    #[inline]
    pub(crate) fn with_request_id(mut self, id: Option<RequestId>) -> Self {
        self.request_id = id;
        self
    }

    #[inline]
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        let c = &*self.conn;
        if let Some(id) = self.request_id {
            line(out, b"x-request-id", &id.hex());
        }
        if let Some(t) = &self.trusted {
            return self.encode_trusted(t, out);
        }
        match &self.for_ {
            None => out.extend_from_slice(c.lines()),
            Some(v) => {
                line(out, b"x-forwarded-for", v.as_bytes());
                out.extend_from_slice(&c.lines()[c.after_for..]);
            }
        }
        if let Some(h) = &self.host {
            line(out, b"x-forwarded-host", h.as_bytes());
        }
    }

    /// Rare: what a trusted proxy said, written header by header. Out of line, so that the
    /// common case stays small enough to inline where heads are encoded.
    #[cold]
    #[inline(never)]
    fn encode_trusted(&self, t: &Trusted, out: &mut Vec<u8>) {
        for (name, value) in self.values(t).iter().flatten() {
            line(out, name.as_str().as_bytes(), value.as_bytes());
        }
    }

    /// Puts these headers into `headers`, replacing the client's.
    pub(crate) fn insert_into(self, headers: &mut HeaderMap) {
        if let Some(id) = self.request_id {
            headers.insert(X_REQUEST_ID, id.value());
        }
        let default = Trusted::default();
        let t = self.trusted.as_deref().unwrap_or(&default);
        let [for_, real_ip, proto, port, host] = self.values(t);
        for (name, value) in [for_, real_ip, proto, port].into_iter().flatten() {
            headers.insert(name, value);
        }
        match host {
            Some((name, h)) => headers.insert(name, h),
            None => headers.remove(X_FORWARDED_HOST),
        };
    }

    /// Every header, in the order they are written; `X-Forwarded-Host` may be missing.
    fn values(&self, t: &Trusted) -> [Option<(HeaderName, HeaderValue)>; 5] {
        let c = &*self.conn;
        let peer = c.value(c.ip);
        let real_ip = t
            .real_ip
            .and_then(|ip| HeaderValue::from_str(&ip.to_string()).ok())
            .unwrap_or_else(|| peer.clone());
        let for_ = self.for_.clone().unwrap_or(peer);
        let proto = t
            .proto
            .clone()
            .unwrap_or(HeaderValue::from_static(if c.tls {
                "https"
            } else {
                "http"
            }));
        let port = t.port.clone().unwrap_or_else(|| c.value(c.port));
        let host = t.host.clone().or_else(|| self.host.clone());
        [
            Some((X_FORWARDED_FOR, for_)),
            Some((X_REAL_IP, real_ip)),
            Some((X_FORWARDED_PROTO, proto)),
            Some((X_FORWARDED_PORT, port)),
            host.map(|h| (X_FORWARDED_HOST, h)),
        ]
    }
}

// === impl TrustedProxies ===

impl TrustedProxies {
    /// The trusted proxies of `global`, when `use-forwarded-headers` is on.
    pub(crate) fn of(global: &GlobalConfig) -> Option<Self> {
        let f = &global.forwarding;
        if !f.use_forwarded_headers {
            return None;
        }
        Some(Self {
            header: HeaderName::from_bytes(f.forwarded_for_header.as_bytes())
                .unwrap_or(X_FORWARDED_FOR),
            proxies: IpSet::new(&f.real_ip_cidr),
        })
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.proxies.contains(ip)
    }

    /// What `peer` says in `headers`, when it is a trusted proxy.
    pub(crate) fn read(&self, peer: IpAddr, headers: &HeaderMap) -> Option<Box<Trusted>> {
        if !self.trusts(peer) {
            return None;
        }
        // nginx's `real_ip_recursive on`: from the right, the first address that is not a
        // trusted proxy; the leftmost when all are.
        let mut real_ip = None;
        for value in headers.get_all(&self.header).iter().rev() {
            let Ok(list) = value.to_str() else { break };
            let mut stop = false;
            for item in list.rsplit(',').map(str::trim).filter(|i| !i.is_empty()) {
                let Ok(ip) = item.parse::<IpAddr>() else {
                    stop = true;
                    break;
                };
                real_ip = Some(ip);
                if !self.trusts(ip) {
                    stop = true;
                    break;
                }
            }
            if stop {
                break;
            }
        }
        let token = |name: HeaderName| {
            headers
                .get(name)
                .filter(|v| !v.is_empty() && v.to_str().is_ok_and(|s| !s.contains(',')))
                .cloned()
        };
        Some(Box::new(Trusted {
            real_ip: real_ip.filter(|ip| *ip != peer),
            proto: token(X_FORWARDED_PROTO),
            port: token(X_FORWARDED_PORT),
            host: token(X_FORWARDED_HOST),
        }))
    }
}

impl Trusted {
    /// Whether the proxy in front says the client's request came over TLS.
    pub(crate) fn says_https(&self) -> bool {
        self.proto
            .as_ref()
            .is_some_and(|p| p.as_bytes().eq_ignore_ascii_case(b"https"))
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
            assert_eq!(std::str::from_utf8(f.lines()).unwrap(), lines);
            assert_eq!(
                &f.lines()[f.after_for..],
                &lines.as_bytes()[17 + ip.len() + 2..]
            );
            let mut map = HeaderMap::new();
            ForwardHeaders::new(std::rc::Rc::new(f), None, None, None).insert_into(&mut map);
            assert_eq!(map[X_REAL_IP], ip.as_str());
            assert_eq!(map[X_FORWARDED_FOR], ip.as_str());
            assert_eq!(map[X_FORWARDED_PROTO], proto);
            assert_eq!(map[X_FORWARDED_PORT], port.as_str());
        }
    }

    #[test]
    fn connections_from_the_same_client_share_their_lines() {
        let last = LastForward::default();
        let ip: IpAddr = "10.0.0.7".parse().unwrap();
        let a = last.get(ip, false, 80);
        let b = last.get(ip, false, 80);
        assert!(Rc::ptr_eq(&a, &b));
        let other = last.get("10.0.0.8".parse().unwrap(), false, 80);
        assert_eq!(other.peer_ip(), b"10.0.0.8");
        let tls = last.get(ip, true, 80);
        assert!(!Rc::ptr_eq(&a, &tls));
        assert!(
            std::str::from_utf8(tls.lines())
                .unwrap()
                .contains("x-forwarded-proto: https\r\n")
        );
        let port = last.get(ip, true, 8443);
        assert!(
            std::str::from_utf8(port.lines())
                .unwrap()
                .contains("x-forwarded-port: 8443\r\n")
        );
        assert_eq!(a.lines(), b.lines());
    }

    fn trusting(cidrs: &str, header: &str) -> TrustedProxies {
        let mut g = GlobalConfig::default();
        g.forwarding.use_forwarded_headers = true;
        g.forwarding.real_ip_cidr = cidrs
            .split(',')
            .map(|c| c.trim().parse().unwrap())
            .collect();
        g.forwarding.forwarded_for_header = header.to_owned();
        TrustedProxies::of(&g).unwrap()
    }

    #[test]
    fn the_real_ip_is_the_rightmost_address_that_is_not_a_trusted_proxy() {
        let t = trusting("10.0.0.0/8, 127.0.0.1", "x-forwarded-for");
        let peer: IpAddr = "127.0.0.1".parse().unwrap();
        let mut h = HeaderMap::new();
        h.append(
            X_FORWARDED_FOR,
            HeaderValue::from_static("198.51.100.1, 203.0.113.7"),
        );
        h.append(
            X_FORWARDED_FOR,
            HeaderValue::from_static("10.1.1.1 , 10.2.2.2"),
        );
        h.insert(X_FORWARDED_PROTO, HeaderValue::from_static("https"));
        let got = t.read(peer, &h).unwrap();
        assert_eq!(got.real_ip, Some("203.0.113.7".parse().unwrap()));
        assert!(got.says_https());
        // Every address trusted: the leftmost.
        let mut h = HeaderMap::new();
        h.insert(
            X_FORWARDED_FOR,
            HeaderValue::from_static("10.9.9.9, 10.1.1.1"),
        );
        assert_eq!(
            t.read(peer, &h).unwrap().real_ip,
            Some("10.9.9.9".parse().unwrap())
        );
        // A peer that is not a trusted proxy is believed in nothing.
        assert!(t.read("192.0.2.1".parse().unwrap(), &h).is_none());
        // No list, or a broken entry before any untrusted address: the peer itself.
        assert_eq!(t.read(peer, &HeaderMap::new()).unwrap().real_ip, None);
        let mut h = HeaderMap::new();
        h.insert(
            X_FORWARDED_FOR,
            HeaderValue::from_static("garbage, 10.1.1.1"),
        );
        assert_eq!(
            t.read(peer, &h).unwrap().real_ip,
            Some("10.1.1.1".parse().unwrap())
        );
        // Another header, when configured.
        let t = trusting("127.0.0.1", "x-original-forwarded-for");
        let mut h = HeaderMap::new();
        h.insert(X_FORWARDED_FOR, HeaderValue::from_static("198.51.100.1"));
        h.insert(
            "x-original-forwarded-for",
            HeaderValue::from_static("203.0.113.9"),
        );
        assert_eq!(
            t.read(peer, &h).unwrap().real_ip,
            Some("203.0.113.9".parse().unwrap())
        );
    }

    #[test]
    fn a_trusted_proxys_headers_replace_the_connections_own() {
        let conn = std::rc::Rc::new(ConnForward::for_peer(
            "127.0.0.1".parse().unwrap(),
            false,
            80,
        ));
        let trusted = Trusted {
            real_ip: Some("203.0.113.7".parse().unwrap()),
            proto: Some(HeaderValue::from_static("https")),
            port: Some(HeaderValue::from_static("443")),
            host: Some(HeaderValue::from_static("shop.example.com")),
        };
        let f = ForwardHeaders::new(
            conn,
            Some(HeaderValue::from_static("203.0.113.7, 127.0.0.1")),
            Some(HeaderValue::from_static("internal.test")),
            Some(Box::new(trusted)),
        );
        let mut out = Vec::new();
        f.encode(&mut out);
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            "x-forwarded-for: 203.0.113.7, 127.0.0.1\r\nx-real-ip: 203.0.113.7\r\nx-forwarded-proto: https\r\nx-forwarded-port: 443\r\nx-forwarded-host: shop.example.com\r\n"
        );
        let mut map = HeaderMap::new();
        f.insert_into(&mut map);
        assert_eq!(map[X_REAL_IP], "203.0.113.7");
        assert_eq!(map[X_FORWARDED_HOST], "shop.example.com");
        assert_eq!(map[X_FORWARDED_PORT], "443");
    }
}
