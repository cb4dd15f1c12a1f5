//! Message heads: request and response heads parsed off a connection's buffer, the
//! headers the framing and hop-by-hop rules care about, and response headers kept as
//! received.

use std::mem::MaybeUninit;

use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, EXPECT, UPGRADE};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri, Version};
use mse_router::HeaderOps;

use super::line;

/// The largest upstream response head accepted (nginx's `proxy_buffer_size` is 4-8 KiB and
/// answers 502 beyond it; ours is generous).
pub(crate) const MAX_RESPONSE_HEAD: usize = 64 * 1024;
/// Headers accepted at most in a head (hyper's default is 100).
const MAX_HEADERS: usize = 128;
/// Heads with up to this many headers (nearly all) need no allocation for their offsets.
const FEW_HEADERS: usize = 32;

/// How a message body is delimited (RFC 9112 section 6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    Empty,
    Length(u64),
    Chunked,
    Close,
}

/// A parsed response head and how its body is framed.
pub(crate) struct ResponseHead {
    pub(crate) status: StatusCode,
    /// The headers, unless they are kept as received (`raw`).
    pub(crate) headers: HeaderMap,
    pub(crate) raw: Option<RawHeaders>,
    pub(crate) framing: Framing,
    /// Whether the connection may carry another exchange after this one.
    pub(crate) keep_alive: bool,
}

/// Response headers kept as received: the head's bytes and where each line is. Most
/// answers are relayed with their headers unchanged, or with a few headers added or
/// replaced; parsing every header into a `HeaderMap` to write it out again costs more than
/// the rest of the response. The answer's own `HeaderMap` then holds only what the gateway
/// sets, and replaces the received headers of the same name.
///
/// Only heads whose framing needs no rewriting are kept this way: no `Transfer-Encoding`,
/// and a `Connection` header naming no other header.
pub(crate) struct RawHeaders {
    head: Bytes,
    /// Name offset and length, value offset and length.
    spans: Vec<(u32, u32, u32, u32)>,
    /// Bit `i`: line `i` is hop-by-hop.
    hop_by_hop: u64,
    has_date: bool,
    length: Option<u64>,
}

/// Parses a complete response head off the front of `buf`; `None` when more bytes are
/// needed.
pub(crate) fn parse_response(
    buf: &mut BytesMut,
    method: &Method,
) -> Result<Option<ResponseHead>, &'static str> {
    // The header slots are left uninitialised (6 KiB of stores per response otherwise);
    // the offsets of each name and value are kept so the head is frozen once and sliced.
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut spans = Spans::default();
    let (len, code, version) = {
        let mut res = httparse::Response::new(&mut []);
        let base = buf.as_ptr() as usize;
        let parsed = httparse::ParserConfig::default()
            .parse_response_with_uninit_headers(&mut res, buf, &mut slots);
        let len = match parsed {
            Ok(httparse::Status::Complete(len)) if len > MAX_RESPONSE_HEAD => {
                return Err("response head too large");
            }
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => {
                return Err("too many response headers");
            }
            Err(_) => return Err("malformed response head"),
        };
        spans.record(res.headers, base);
        (len, res.code.unwrap_or(0), res.version.unwrap_or(1))
    };
    let head = buf.split_to(len).freeze();
    let status = StatusCode::from_u16(code).map_err(|_| "invalid status code")?;
    let version = if version == 0 {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    response_head(head, spans.as_slice(), status, version, method).map(Some)
}

/// The parsed head of a response to `method`: its framing, and its headers, kept as
/// received where that is possible.
fn response_head(
    head: Bytes,
    spans: &[(u32, u32, u32, u32)],
    status: StatusCode,
    version: Version,
    method: &Method,
) -> Result<ResponseHead, &'static str> {
    let count = spans.len();
    let mut seen = Seen::default();
    let mut has_date = false;
    let mut hop_by_hop = 0u64;
    for (i, &(n, nl, v, vl)) in spans.iter().enumerate() {
        let (n, nl, v, vl) = (n as usize, nl as usize, v as usize, vl as usize);
        let kind = raw_kind(&head[n..n + nl]);
        has_date |= kind == Kind::Date;
        if kind.hop_by_hop() && i < 64 {
            hop_by_hop |= 1 << i;
        }
        seen.note(kind, &head[v..v + vl]);
    }
    let transfer_encoding = seen.transfer_encoding.is_some();
    let keep_raw = !transfer_encoding && !seen.other_tokens && count <= 64;
    let length = seen.length.ok().flatten();
    let (framing, mut keep_alive) = seen.response_framing(status, method, version)?;
    keep_alive &= framing != Framing::Close;
    if keep_raw {
        return Ok(ResponseHead {
            status,
            headers: HeaderMap::new(),
            raw: Some(RawHeaders {
                head,
                spans: spans.to_vec(),
                hop_by_hop,
                has_date,
                length,
            }),
            framing,
            keep_alive,
        });
    }
    // Room for the few headers a route's policy or CORS add to the answer, so that adding
    // them does not grow the map.
    let mut headers = HeaderMap::with_capacity(count + 4);
    for &(n, nl, v, vl) in spans {
        let (n, nl, v, vl) = (n as usize, nl as usize, v as usize, vl as usize);
        let name = header_name(&head[n..n + nl]).ok_or("invalid response header name")?;
        let value = HeaderValue::from_maybe_shared(head.slice(v..v + vl))
            .map_err(|_| "invalid response header value")?;
        headers.append(name, value);
    }
    // Transfer-Encoding overrides Content-Length (RFC 9112 section 6.3): a length that
    // does not describe the decoded body must not reach the client.
    if matches!(framing, Framing::Chunked | Framing::Close) && transfer_encoding {
        headers.remove(CONTENT_LENGTH);
    }
    Ok(ResponseHead {
        status,
        headers,
        raw: None,
        framing,
        keep_alive,
    })
}

/// A request head the server answers itself before closing: 400, or 431 for a head too
/// large.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refusal(pub(crate) StatusCode);

/// What a request head says besides the request itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RequestMeta {
    pub(crate) version: Version,
    /// Whether the client keeps the connection open after this request.
    pub(crate) keep_alive: bool,
    /// Whether it asks for a protocol upgrade (`Connection: upgrade` and `Upgrade`).
    pub(crate) upgrade: bool,
    pub(crate) body: Framing,
    /// `Expect: 100-continue` on an HTTP/1.1 request.
    pub(crate) expect_continue: bool,
}

/// Parses a complete request head off the front of `buf`, into a request whose body
/// `body` makes; `None` when more bytes are needed. A request target longer than
/// `max_target` is refused with 414, a head longer than `max_head` or with too many
/// headers with 431, a malformed one (a length that cannot be told for sure included) with
/// 400, and one whose body has a transfer coding besides `chunked` with 501.
pub(crate) fn parse_request<B>(
    buf: &mut BytesMut,
    max_head: usize,
    max_target: usize,
    body: impl FnOnce(Present) -> B,
) -> Result<Option<(Box<Request<B>>, RequestMeta)>, Refusal> {
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut spans = Spans::default();
    let (len, method, target, version) = {
        let mut req = httparse::Request::new(&mut []);
        let base = buf.as_ptr() as usize;
        let len = match httparse::ParserConfig::default()
            .parse_request_with_uninit_headers(&mut req, buf, &mut slots)
        {
            Ok(httparse::Status::Complete(len)) if len > max_head => return Err(TOO_LARGE),
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) if target_too_long(buf, max_target) => {
                return Err(URI_TOO_LONG);
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => return Err(TOO_LARGE),
            Err(_) => return Err(BAD),
        };
        spans.record(req.headers, base);
        let method = Method::from_bytes(req.method.unwrap_or("").as_bytes()).map_err(|_| BAD)?;
        let path = req.path.unwrap_or("");
        if path.len() > max_target {
            return Err(URI_TOO_LONG);
        }
        let target = (path.as_ptr() as usize - base, path.len());
        let version = match req.version {
            Some(0) => Version::HTTP_10,
            _ => Version::HTTP_11,
        };
        (len, method, target, version)
    };
    let spans = spans.as_slice();
    let head = buf.split_to(len).freeze();
    let uri = Uri::from_maybe_shared(head.slice(target.0..target.0 + target.1)).map_err(|_| BAD)?;
    let (headers, seen, expect_continue, present) = request_headers(&head, spans)?;
    let keep_alive = !seen.close && (version == Version::HTTP_11 || seen.keep_alive_token);
    let framing = request_framing(&seen, version)?;
    let upgrade =
        seen.upgrade_token && version == Version::HTTP_11 && headers.contains_key(UPGRADE);
    let mut req = Request::new(body(present));
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    *req.version_mut() = version;
    *req.headers_mut() = headers;
    let meta = RequestMeta {
        version,
        keep_alive,
        upgrade,
        body: framing,
        expect_continue: expect_continue && version == Version::HTTP_11,
    };
    Ok(Some((Box::new(req), meta)))
}

const BAD: Refusal = Refusal(StatusCode::BAD_REQUEST);
const TOO_LARGE: Refusal = Refusal(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
const URI_TOO_LONG: Refusal = Refusal(StatusCode::URI_TOO_LONG);
const NOT_IMPLEMENTED: Refusal = Refusal(StatusCode::NOT_IMPLEMENTED);

/// Whether the request line of a head still incomplete already has a target longer than
/// `max_target`: more than that many bytes after the method, with no end of the target
/// among them. Only looked at while a head is incomplete and longer than the limit.
fn target_too_long(buf: &[u8], max_target: usize) -> bool {
    if buf.len() <= max_target {
        return false;
    }
    let Some(start) = buf.iter().position(|b| *b == b' ') else {
        return false;
    };
    let target = &buf[start + 1..];
    target.len() > max_target
        && !target[..=max_target]
            .iter()
            .any(|b| matches!(b, b' ' | b'\r' | b'\n'))
}

/// The request's headers, what its framing depends on, whether it expects
/// `100 Continue`, and which headers the proxy looks up it has.
fn request_headers(
    head: &Bytes,
    spans: &[(u32, u32, u32, u32)],
) -> Result<(HeaderMap, Seen, bool, Present), Refusal> {
    let mut headers = HeaderMap::with_capacity(spans.len());
    let mut seen = Seen::default();
    let mut expect_continue = false;
    let mut present = Present::NONE;
    for &(n, nl, v, vl) in spans {
        let (n, nl, v, vl) = (n as usize, nl as usize, v as usize, vl as usize);
        let raw = &head[n..n + nl];
        let name = header_name(raw).ok_or(BAD)?;
        let value = HeaderValue::from_maybe_shared(head.slice(v..v + vl)).map_err(|_| BAD)?;
        let kind = if name == EXPECT {
            expect_continue = value.as_bytes().eq_ignore_ascii_case(b"100-continue");
            Kind::HopByHop
        } else {
            let kind = raw_kind(raw);
            let repeated = kind == Kind::ContentLength && seen.content_length;
            seen.note(kind, value.as_bytes());
            // Equal lengths on repeated lines go on as one (RFC 9110 section 8.6);
            // different ones refuse the request below.
            if repeated {
                continue;
            }
            kind
        };
        present.note(kind, raw);
        headers.append(name, value);
    }
    if seen.other_tokens {
        present.0 |= Present::MORE_HOP_BY_HOP;
    }
    Ok((headers, seen, expect_continue, present))
}

/// How the request's body is delimited (RFC 9112 section 6.3); a request whose length
/// cannot be told for sure is refused (400), as is one with a coding besides `chunked`
/// (501, RFC 9112 section 6.1). `Transfer-Encoding` must be one header line saying
/// `chunked` and nothing else: each other shape is one that some server in a chain reads
/// differently.
fn request_framing(seen: &Seen, version: Version) -> Result<Framing, Refusal> {
    if seen.transfer_encoding.is_some() {
        let te = seen.request_coding;
        let one_final_chunked = te.lines == 1 && te.chunked == 1 && te.chunked_last;
        if version == Version::HTTP_10 || seen.content_length || te.malformed || !one_final_chunked
        {
            return Err(BAD);
        }
        if te.others {
            return Err(NOT_IMPLEMENTED);
        }
        return Ok(Framing::Chunked);
    }
    // A list in one line (`5, 5`) is refused too, as hyper's server does.
    if seen.length_list {
        return Err(BAD);
    }
    match seen.length {
        Err(_) => Err(BAD),
        Ok(None | Some(0)) => Ok(Framing::Empty),
        Ok(Some(n)) => Ok(Framing::Length(n)),
    }
}

/// Which headers a request had that the proxy would otherwise look up in its header map:
/// noted while the head is parsed, so that the lookups of absent ones are skipped (each
/// costs a hash and a probe, per request).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Present(u8);

impl Present {
    /// Nothing noted.
    pub(crate) const NONE: Self = Self(0);
    /// Not known (HTTP/2): every lookup is made.
    pub(crate) const ALL: Self = Self(u8::MAX);
    const HOP_BY_HOP: u8 = 1;
    const UPGRADE: u8 = 1 << 1;
    const FORWARDED_FOR: u8 = 1 << 2;
    /// A hop-by-hop header other than `Connection`, or a `Connection` that names others.
    const MORE_HOP_BY_HOP: u8 = 1 << 3;
    const REQUEST_ID: u8 = 1 << 4;

    fn note(&mut self, kind: Kind, raw: &[u8]) {
        if kind.hop_by_hop() {
            self.0 |= Self::HOP_BY_HOP;
            if kind != Kind::Connection {
                self.0 |= Self::MORE_HOP_BY_HOP;
            }
            if raw.eq_ignore_ascii_case(b"upgrade") {
                self.0 |= Self::UPGRADE;
            }
        } else if raw.len() == 15 && raw.eq_ignore_ascii_case(b"x-forwarded-for") {
            self.0 |= Self::FORWARDED_FOR;
        } else if raw.len() == 12 && raw.eq_ignore_ascii_case(b"x-request-id") {
            self.0 |= Self::REQUEST_ID;
        }
    }

    /// Whether it may have a hop-by-hop header (`Expect` included).
    pub(crate) fn hop_by_hop(self) -> bool {
        self.0 & Self::HOP_BY_HOP != 0
    }

    /// Whether its only hop-by-hop header is `Connection` with nothing but `close`,
    /// `keep-alive` or `upgrade` in it: removing that one header is the whole pass.
    pub(crate) fn only_connection(self) -> bool {
        self.0 & (Self::HOP_BY_HOP | Self::MORE_HOP_BY_HOP) == Self::HOP_BY_HOP
    }

    /// The same, as if it had no hop-by-hop header: its `Connection` is left where it is
    /// (see [`Self::only_connection`]).
    pub(crate) fn connection_left(self) -> Self {
        Self(self.0 & !(Self::HOP_BY_HOP | Self::MORE_HOP_BY_HOP))
    }

    /// Whether it may have `Upgrade`.
    pub(crate) fn upgrade(self) -> bool {
        self.0 & Self::UPGRADE != 0
    }

    /// Whether it may have `X-Forwarded-For`.
    pub(crate) fn forwarded_for(self) -> bool {
        self.0 & Self::FORWARDED_FOR != 0
    }

    /// Whether it may have `X-Request-ID`.
    pub(crate) fn request_id(self) -> bool {
        self.0 & Self::REQUEST_ID != 0
    }
}

/// The headers the framing or the hop-by-hop rules care about, by name as received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Connection,
    TransferEncoding,
    ContentLength,
    Date,
    /// Another hop-by-hop header (RFC 9110 section 7.6.1), or `Expect`.
    HopByHop,
    Other,
}

impl Kind {
    fn hop_by_hop(self) -> bool {
        matches!(
            self,
            Kind::Connection | Kind::TransferEncoding | Kind::HopByHop
        )
    }
}

/// What kind of header `name` (any case) is.
pub(crate) fn raw_kind(name: &[u8]) -> Kind {
    let is = |s: &str| name.eq_ignore_ascii_case(s.as_bytes());
    match name.len() {
        2 if is("te") => Kind::HopByHop,
        4 if is("date") => Kind::Date,
        6 if is("expect") => Kind::HopByHop,
        7 if is("upgrade") || is("trailer") => Kind::HopByHop,
        10 if is("connection") => Kind::Connection,
        10 if is("keep-alive") => Kind::HopByHop,
        14 if is("content-length") => Kind::ContentLength,
        16 if is("proxy-connection") => Kind::HopByHop,
        17 if is("transfer-encoding") => Kind::TransferEncoding,
        _ => Kind::Other,
    }
}

/// Where each header of a parsed head is: name offset and length, value offset and
/// length, relative to the start of the head. Heads with up to [`FEW_HEADERS`] headers
/// (nearly all) need no allocation.
pub(crate) struct Spans {
    few: [(u32, u32, u32, u32); FEW_HEADERS],
    more: Vec<(u32, u32, u32, u32)>,
    count: usize,
}

impl Default for Spans {
    fn default() -> Self {
        Self {
            few: [(0, 0, 0, 0); FEW_HEADERS],
            more: Vec::new(),
            count: 0,
        }
    }
}

impl Spans {
    /// Records where `headers`, parsed from a buffer starting at address `base`, are.
    pub(crate) fn record(&mut self, headers: &[httparse::Header<'_>], base: usize) {
        let offset = |s: &[u8]| (s.as_ptr() as usize - base) as u32;
        self.count = headers.len();
        if self.count > FEW_HEADERS {
            self.more.reserve_exact(self.count);
        }
        for (i, h) in headers.iter().enumerate() {
            let span = (
                offset(h.name.as_bytes()),
                h.name.len() as u32,
                offset(h.value),
                h.value.len() as u32,
            );
            match self.few.get_mut(i) {
                Some(slot) if self.count <= FEW_HEADERS => *slot = span,
                _ => self.more.push(span),
            }
        }
    }

    pub(crate) fn as_slice(&self) -> &[(u32, u32, u32, u32)] {
        if self.count <= FEW_HEADERS {
            &self.few[..self.count]
        } else {
            &self.more
        }
    }
}

/// Names cached per worker by [`header_name`], and the longest name cached.
const NAME_CACHE: usize = 64;
const NAME_CACHE_MAX: usize = 32;

struct CachedName {
    len: u8,
    raw: [u8; NAME_CACHE_MAX],
    name: HeaderName,
}

thread_local! {
    static NAMES: std::cell::RefCell<[Option<CachedName>; NAME_CACHE]> =
        const { std::cell::RefCell::new([const { None }; NAME_CACHE]) };
}

/// A header name as received, parsed. Parsing (lower-casing, matching the standard names)
/// costs more than the rest of a header, and the peers of a worker send the same few
/// names, spelled the same way, on every message: so each worker keeps the last name
/// seen per slot, with its raw bytes, and a name seen before is only compared.
pub(crate) fn header_name(raw: &[u8]) -> Option<HeaderName> {
    let (Some(&first), Some(&last)) = (raw.first(), raw.last()) else {
        return None;
    };
    if raw.len() > NAME_CACHE_MAX {
        return HeaderName::from_bytes(raw).ok();
    }
    let slot = (raw.len() * 31 + usize::from(first) * 7 + usize::from(last)) % NAME_CACHE;
    NAMES.with_borrow_mut(|cache| {
        let entry = &mut cache[slot];
        if let Some(c) = entry
            && c.raw[..usize::from(c.len)] == *raw
        {
            return Some(c.name.clone());
        }
        let name = HeaderName::from_bytes(raw).ok()?;
        let mut copy = [0u8; NAME_CACHE_MAX];
        copy[..raw.len()].copy_from_slice(raw);
        *entry = Some(CachedName {
            len: raw.len() as u8,
            raw: copy,
            name: name.clone(),
        });
        Some(name)
    })
}

/// What the framing of a message depends on, gathered as its headers are read.
pub(crate) struct Seen {
    /// `Connection` tokens.
    pub(crate) close: bool,
    pub(crate) keep_alive_token: bool,
    pub(crate) upgrade_token: bool,
    /// Tokens naming other headers.
    pub(crate) other_tokens: bool,
    /// `Some(last coding is chunked)` when `Transfer-Encoding` is present.
    pub(crate) transfer_encoding: Option<bool>,
    /// The shape of `Transfer-Encoding`, as a request's framing needs it.
    pub(crate) request_coding: Codings,
    pub(crate) content_length: bool,
    /// A `Content-Length` line holds a list.
    pub(crate) length_list: bool,
    /// The one length all `Content-Length` values agree on, or why there is none.
    pub(crate) length: Result<Option<u64>, &'static str>,
}

/// What the `Transfer-Encoding` lines of a message list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Codings {
    /// Header lines.
    pub(crate) lines: u8,
    /// `chunked` codings.
    pub(crate) chunked: u8,
    /// Whether the last coding of the last line is `chunked`.
    pub(crate) chunked_last: bool,
    /// Whether there are codings besides `chunked`.
    pub(crate) others: bool,
    /// An empty element of the list.
    pub(crate) malformed: bool,
}

impl Codings {
    fn note(&mut self, value: &[u8]) {
        self.lines = self.lines.saturating_add(1);
        self.chunked_last = false;
        for t in value.split(|b| *b == b',').map(<[u8]>::trim_ascii) {
            let chunked = t.eq_ignore_ascii_case(b"chunked");
            self.malformed |= t.is_empty();
            self.chunked = self.chunked.saturating_add(u8::from(chunked));
            self.others |= !chunked && !t.is_empty();
            self.chunked_last = chunked;
        }
    }
}

impl Default for Seen {
    fn default() -> Self {
        Self {
            close: false,
            keep_alive_token: false,
            upgrade_token: false,
            other_tokens: false,
            transfer_encoding: None,
            request_coding: Codings::default(),
            content_length: false,
            length_list: false,
            length: Ok(None),
        }
    }
}

impl Seen {
    /// Notes one header of this kind.
    pub(crate) fn note(&mut self, kind: Kind, value: &[u8]) {
        match kind {
            Kind::Connection => {
                for t in value.split(|b| *b == b',').map(<[u8]>::trim_ascii) {
                    let close = t.eq_ignore_ascii_case(b"close");
                    let keep_alive = t.eq_ignore_ascii_case(b"keep-alive");
                    let upgrade = t.eq_ignore_ascii_case(b"upgrade");
                    self.close |= close;
                    self.keep_alive_token |= keep_alive;
                    self.upgrade_token |= upgrade;
                    self.other_tokens |= !(close || keep_alive || upgrade || t.is_empty());
                }
            }
            Kind::TransferEncoding => {
                let last = value
                    .split(|b| *b == b',')
                    .map(<[u8]>::trim_ascii)
                    .rfind(|t| !t.is_empty());
                let chunked = self.transfer_encoding.unwrap_or(false);
                self.transfer_encoding =
                    Some(last.map_or(chunked, |t| t.eq_ignore_ascii_case(b"chunked")));
                self.request_coding.note(value);
            }
            Kind::ContentLength => {
                self.content_length = true;
                self.length_list |= value.contains(&b',');
                for part in value.split(|b| *b == b',').map(<[u8]>::trim_ascii) {
                    let n = content_length(part);
                    self.length = match (self.length, n) {
                        (Err(e), _) => Err(e),
                        (_, None) => Err("invalid Content-Length"),
                        (Ok(Some(l)), Some(n)) if l != n => {
                            Err("conflicting Content-Length values")
                        }
                        (Ok(_), Some(n)) => Ok(Some(n)),
                    };
                }
            }
            Kind::Date | Kind::HopByHop | Kind::Other => {}
        }
    }

    /// How the body is delimited, and whether the connection may carry another exchange.
    pub(crate) fn response_framing(
        self,
        status: StatusCode,
        method: &Method,
        version: Version,
    ) -> Result<(Framing, bool), &'static str> {
        let keep_alive = !self.close && (version == Version::HTTP_11 || self.keep_alive_token);
        if *method == Method::HEAD
            || status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
        {
            return Ok((Framing::Empty, keep_alive));
        }
        if let Some(chunked) = self.transfer_encoding {
            // With Content-Length beside it the message is suspect: read it, never reuse.
            let keep = keep_alive && !self.content_length;
            return Ok(if chunked {
                (Framing::Chunked, keep)
            } else {
                (Framing::Close, false)
            });
        }
        Ok(match self.length? {
            Some(0) => (Framing::Empty, keep_alive),
            Some(n) => (Framing::Length(n), keep_alive),
            None => (Framing::Close, false),
        })
    }
}

/// One `Content-Length` value: digits only.
pub(crate) fn content_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

// === impl RawHeaders ===

impl RawHeaders {
    fn lines(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.spans.iter().map(|&(n, nl, v, vl)| {
            let (n, nl, v, vl) = (n as usize, nl as usize, v as usize, vl as usize);
            (&self.head[n..n + nl], &self.head[v..v + vl])
        })
    }

    /// The lines that are not hop-by-hop.
    fn end_to_end(&self) -> impl Iterator<Item = (usize, &[u8], &[u8])> {
        self.lines()
            .enumerate()
            .filter(|(i, _)| self.hop_by_hop & (1 << i) == 0)
            .map(|(i, (n, v))| (i, n, v))
    }

    /// Whether a header named `name` was received.
    pub(crate) fn contains(&self, name: &HeaderName) -> bool {
        let name = name.as_str().as_bytes();
        self.lines().any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    /// Whether a `Date` header was received.
    pub(crate) fn has_date(&self) -> bool {
        self.has_date
    }

    /// The `Content-Length` received.
    pub(crate) fn length(&self) -> Option<u64> {
        self.length
    }

    /// Writes the received header lines, but for hop-by-hop ones and those `replaced`
    /// has a header of the same name for.
    /// `edits`: headers they update are left out too (the caller writes the edits).
    pub(crate) fn write(&self, out: &mut Vec<u8>, replaced: &HeaderMap, edits: Option<&HeaderOps>) {
        let updated = |name: &[u8]| {
            edits.is_some_and(|e| {
                e.update
                    .iter()
                    .any(|(n, _)| n.as_str().as_bytes().eq_ignore_ascii_case(name))
            })
        };
        // Lines written as `name: value\r\n` are copied in runs, with one copy for
        // consecutive ones; others are written out again in that form.
        let head = &self.head[..];
        let mut run = 0..0;
        for (i, name, value) in self.end_to_end() {
            if (!replaced.is_empty()
                && replaced
                    .keys()
                    .any(|k| k.as_str().as_bytes().eq_ignore_ascii_case(name)))
                || updated(name)
            {
                continue;
            }
            let (n, nl, v, vl) = self.spans[i];
            let (n, nl, v, vl) = (n as usize, nl as usize, v as usize, vl as usize);
            let canonical = head.get(n + nl..v) == Some(b": ".as_slice())
                && head.get(v + vl..v + vl + 2) == Some(b"\r\n".as_slice());
            if canonical && run.end == n && !run.is_empty() {
                run.end = v + vl + 2;
                continue;
            }
            out.extend_from_slice(&head[run]);
            if canonical {
                run = n..v + vl + 2;
            } else {
                run = 0..0;
                line(out, name, value);
            }
        }
        out.extend_from_slice(&head[run]);
    }

    /// Moves the headers into `headers`, behind the ones already there (which replace
    /// received ones of the same name); hop-by-hop headers are left out.
    pub(crate) fn into_map(self, headers: &mut HeaderMap) {
        let replaced: Vec<HeaderName> = headers.keys().cloned().collect();
        headers.reserve(self.spans.len());
        for (i, raw, _) in self.end_to_end() {
            let (_, _, v, vl) = self.spans[i];
            let (v, vl) = (v as usize, vl as usize);
            // httparse has checked names and values; a name or value `http` would still
            // refuse is dropped rather than relayed.
            let (Some(name), Ok(value)) = (
                header_name(raw),
                HeaderValue::from_maybe_shared(self.head.slice(v..v + vl)),
            ) else {
                continue;
            };
            if !replaced.contains(&name) {
                headers.append(name, value);
            }
        }
    }
}
