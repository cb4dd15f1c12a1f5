//! Response compression (`use-gzip`, `enable-brotli` and their settings, or Higress's
//! `gzip` section): the coding is negotiated from the request's `Accept-Encoding` before
//! the request goes upstream, and the answer's body is compressed as it streams.
//!
//! As nginx's gzip and brotli filters (with ingress-nginx's `gzip_vary on` and
//! `gzip_proxied any`), an answer is compressed only when
//! - its status is 200, 403 or 404, and the request is not `HEAD`;
//! - it has no `Content-Encoding` and no `Cache-Control: no-transform`;
//! - its media type is one of the configured types (`text/html` always is; `*` matches
//!   all);
//! - its length, when known, is at least `gzip-min-length`.
//!
//! Such an answer gets `Vary: Accept-Encoding` whether or not the client accepts a coding,
//! so that caches keep the variants apart. A compressed one loses its `Content-Length`
//! (it is sent chunked) and `Accept-Ranges`, and its `ETag` is made weak. Brotli wins
//! over gzip when the client allows both with the same weight.
//!
//! The encoders come from `flate2` and `brotli`. The body is compressed frame by frame;
//! what the encoder holds is flushed whenever the upstream has nothing more to give at
//! once, so a slow stream (server-sent events, long polls) is not held back.

use std::io::Write;

use bytes::Bytes;
use http::header::{
    ACCEPT_ENCODING, ACCEPT_RANGES, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE,
    ETAG, VARY,
};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body::Body;
use mse_router::global::CompressionSettings;

/// The compression a gateway's global configuration asks for; none when both gzip and
/// brotli are off.
#[derive(Debug)]
pub(crate) struct Compression {
    gzip: Option<Coder>,
    brotli: Option<Coder>,
    /// Answers of a known length below it are sent as they are.
    min_length: u64,
}

#[derive(Debug)]
struct Coder {
    level: u32,
    types: Types,
}

/// Media types, lower case, without parameters.
#[derive(Debug)]
struct Types {
    list: Vec<String>,
    any: bool,
}

/// A content coding the gateway can apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Coding {
    Gzip,
    Brotli,
}

/// What a request negotiated, carried from its head to its answer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Negotiated {
    /// The client's preferred coding of those the gateway applies is gzip.
    gzip: bool,
    /// ... is brotli. Neither for `HEAD`, or when the client accepts neither.
    brotli: bool,
}

// === impl Compression ===

impl Compression {
    /// The compression `settings` ask for, `None` when they turn both codings off.
    pub(crate) fn of(settings: &CompressionSettings) -> Option<Self> {
        if !settings.gzip && !settings.brotli {
            return None;
        }
        let coder = |on: bool, level: u32, types: &[String]| {
            on.then(|| Coder {
                level,
                types: Types::new(types),
            })
        };
        Some(Self {
            gzip: coder(settings.gzip, settings.gzip_level, &settings.gzip_types),
            brotli: coder(
                settings.brotli,
                settings.brotli_level,
                &settings.brotli_types,
            ),
            min_length: settings.gzip_min_length,
        })
    }

    /// The codings `req` accepts of those this gateway applies.
    pub(crate) fn negotiate<B>(&self, req: &Request<B>) -> Negotiated {
        let none = Negotiated {
            gzip: false,
            brotli: false,
        };
        if req.method() == Method::HEAD {
            return none;
        }
        let mut q_gzip = 0;
        let mut q_br = 0;
        let mut q_any = None;
        for value in req.headers().get_all(ACCEPT_ENCODING) {
            let Ok(value) = value.to_str() else { continue };
            for item in value.split(',') {
                let mut parts = item.split(';');
                let coding = parts.next().unwrap_or("").trim();
                let q = parts
                    .find_map(|p| {
                        let (k, v) = p.split_once('=')?;
                        k.trim().eq_ignore_ascii_case("q").then(|| qvalue(v.trim()))
                    })
                    .unwrap_or(Some(1000));
                let Some(q) = q else { continue };
                if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
                    q_gzip = q_gzip.max(q);
                } else if coding.eq_ignore_ascii_case("br") {
                    q_br = q_br.max(q);
                } else if coding == "*" {
                    q_any = Some(q);
                }
            }
        }
        // `*` stands for the codings not named.
        if let Some(q) = q_any {
            if !mentions(req.headers(), "gzip") {
                q_gzip = q;
            }
            if !mentions(req.headers(), "br") {
                q_br = q;
            }
        }
        let q_gzip = if self.gzip.is_some() { q_gzip } else { 0 };
        let q_br = if self.brotli.is_some() { q_br } else { 0 };
        if q_br > 0 && q_br >= q_gzip {
            Negotiated {
                gzip: false,
                brotli: true,
            }
        } else if q_gzip > 0 {
            Negotiated {
                gzip: true,
                brotli: false,
            }
        } else {
            none
        }
    }

    /// Compresses `response` as `negotiated` allows, when the answer qualifies; marks it
    /// `Vary: Accept-Encoding` when it would qualify for a client that asked.
    pub(crate) fn apply(
        &self,
        negotiated: Negotiated,
        response: &mut Response<crate::body::ProxyBody>,
    ) {
        if !matches!(
            response.status(),
            StatusCode::OK | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND
        ) {
            return;
        }
        // Headers kept as received join the map: they are read and edited here.
        let mut headers = std::mem::take(response.headers_mut());
        response.body_mut().headers_into_map(&mut headers);
        let length = match headers.get(CONTENT_LENGTH) {
            Some(v) => v.to_str().ok().and_then(|v| v.trim().parse::<u64>().ok()),
            None => response.body().size_hint().exact(),
        };
        let qualifies = |c: &Coder| c.types.matches(&headers);
        let gzip = self.gzip.as_ref().is_some_and(qualifies);
        let brotli = self.brotli.as_ref().is_some_and(qualifies);
        let eligible = (gzip || brotli)
            && !headers.contains_key(CONTENT_ENCODING)
            && !no_transform(&headers)
            && length.is_none_or(|n| n >= self.min_length.max(1));
        if eligible {
            add_vary(&mut headers);
            let chosen = match (negotiated.brotli && brotli, negotiated.gzip && gzip) {
                (true, _) => self.brotli.as_ref().map(|c| (Coding::Brotli, c.level)),
                (false, true) => self.gzip.as_ref().map(|c| (Coding::Gzip, c.level)),
                _ => None,
            };
            if let Some((coding, level)) = chosen {
                headers.remove(CONTENT_LENGTH);
                // Ranges of the compressed bytes are not offered (as nginx).
                headers.remove(ACCEPT_RANGES);
                headers.insert(
                    CONTENT_ENCODING,
                    HeaderValue::from_static(match coding {
                        Coding::Gzip => "gzip",
                        Coding::Brotli => "br",
                    }),
                );
                weaken_etag(&mut headers);
                response.body_mut().compress(Encoder::new(coding, level));
            }
        }
        *response.headers_mut() = headers;
    }
}

/// An RFC 9110 weight as thousandths; `None` when malformed.
fn qvalue(v: &str) -> Option<u16> {
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut thousandths: u16 = 0;
    for (i, b) in frac.bytes().enumerate() {
        thousandths += u16::from(b - b'0') * [100, 10, 1][i];
    }
    match int {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// Whether `Accept-Encoding` names `coding` (with any weight).
fn mentions(headers: &HeaderMap, coding: &str) -> bool {
    headers.get_all(ACCEPT_ENCODING).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',').any(|item| {
                let c = item.split(';').next().unwrap_or("").trim();
                c.eq_ignore_ascii_case(coding)
                    || (coding == "gzip" && c.eq_ignore_ascii_case("x-gzip"))
            })
        })
    })
}

fn no_transform(headers: &HeaderMap) -> bool {
    headers.get_all(CACHE_CONTROL).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',')
                .any(|d| d.trim().eq_ignore_ascii_case("no-transform"))
        })
    })
}

/// Adds `Accept-Encoding` to `Vary`, unless it is there already (or `Vary: *`).
fn add_vary(headers: &mut HeaderMap) {
    let present = headers.get_all(VARY).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',').any(|f| {
                let f = f.trim();
                f == "*" || f.eq_ignore_ascii_case("accept-encoding")
            })
        })
    });
    if !present {
        headers.append(VARY, HeaderValue::from_static("Accept-Encoding"));
    }
}

/// A strong `ETag` names the bytes as the upstream sent them: the compressed answer's is
/// weak.
fn weaken_etag(headers: &mut HeaderMap) {
    if let Some(v) = headers.get(ETAG)
        && v.as_bytes().first() == Some(&b'"')
    {
        let mut weak = Vec::with_capacity(v.len() + 2);
        weak.extend_from_slice(b"W/");
        weak.extend_from_slice(v.as_bytes());
        if let Ok(weak) = HeaderValue::from_bytes(&weak) {
            headers.insert(ETAG, weak);
        }
    }
}

// === impl Types ===

impl Types {
    fn new(types: &[String]) -> Self {
        Self {
            any: types.iter().any(|t| t == "*" || t == "*/*"),
            list: types.to_vec(),
        }
    }

    /// Whether the answer's media type is one of these (`text/html` always is).
    fn matches(&self, headers: &HeaderMap) -> bool {
        let Some(v) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
            return false;
        };
        if self.any {
            return true;
        }
        let media = v.split(';').next().unwrap_or("").trim();
        media.eq_ignore_ascii_case("text/html")
            || self.list.iter().any(|t| t.eq_ignore_ascii_case(media))
    }
}

// === impl Encoder ===

/// A streaming encoder: input goes in frame by frame, the compressed bytes come out of
/// the `Vec` it writes into.
pub(crate) enum Encoder {
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    Brotli(Box<brotli::CompressorWriter<Vec<u8>>>),
    /// Finished.
    Done,
}

impl Encoder {
    fn new(coding: Coding, level: u32) -> Self {
        match coding {
            Coding::Gzip => Self::Gzip(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::new(level),
            )),
            // A 512 KiB window, as nginx's brotli module's default.
            Coding::Brotli => Self::Brotli(Box::new(brotli::CompressorWriter::new(
                Vec::new(),
                4096,
                level,
                19,
            ))),
        }
    }

    /// Takes `data` in; returns what is ready to send (often nothing).
    pub(crate) fn write(&mut self, data: &[u8]) -> std::io::Result<Bytes> {
        match self {
            Self::Gzip(e) => {
                e.write_all(data)?;
                Ok(Bytes::from(std::mem::take(e.get_mut())))
            }
            Self::Brotli(e) => {
                e.write_all(data)?;
                Ok(Bytes::from(std::mem::take(e.get_mut())))
            }
            Self::Done => Ok(Bytes::new()),
        }
    }

    /// Everything taken in so far, compressed, so that the client can decode it now.
    pub(crate) fn flush(&mut self) -> std::io::Result<Bytes> {
        match self {
            Self::Gzip(e) => {
                e.flush()?;
                Ok(Bytes::from(std::mem::take(e.get_mut())))
            }
            Self::Brotli(e) => {
                e.flush()?;
                Ok(Bytes::from(std::mem::take(e.get_mut())))
            }
            Self::Done => Ok(Bytes::new()),
        }
    }

    /// Ends the stream: the last compressed bytes.
    pub(crate) fn finish(&mut self) -> std::io::Result<Bytes> {
        match std::mem::replace(self, Self::Done) {
            Self::Gzip(e) => e.finish().map(Bytes::from),
            Self::Brotli(e) => Ok(Bytes::from(e.into_inner())),
            Self::Done => Ok(Bytes::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(gzip: bool, brotli: bool) -> CompressionSettings {
        let mut c = mse_router::global::GlobalConfig::default().compression;
        c.gzip = gzip;
        c.brotli = brotli;
        c
    }

    fn negotiated(c: &Compression, accept: &str) -> (bool, bool) {
        let req = Request::get("/")
            .header(ACCEPT_ENCODING, accept)
            .body(())
            .unwrap();
        let n = c.negotiate(&req);
        (n.gzip, n.brotli)
    }

    #[test]
    fn off_when_both_codings_are_off() {
        assert!(Compression::of(&settings(false, false)).is_none());
    }

    #[test]
    fn negotiates_by_weight_and_prefers_brotli() {
        let both = Compression::of(&settings(true, true)).unwrap();
        assert_eq!(negotiated(&both, "gzip, deflate, br"), (false, true));
        assert_eq!(negotiated(&both, "gzip;q=1, br;q=0.5"), (true, false));
        assert_eq!(negotiated(&both, "br;q=0, gzip"), (true, false));
        assert_eq!(negotiated(&both, "identity"), (false, false));
        assert_eq!(negotiated(&both, "*"), (false, true));
        assert_eq!(negotiated(&both, "br;q=0, *;q=0.3"), (true, false));
        assert_eq!(negotiated(&both, "x-gzip"), (true, false));
        assert_eq!(negotiated(&both, "gzip;q=2"), (false, false));
        let gzip = Compression::of(&settings(true, false)).unwrap();
        assert_eq!(negotiated(&gzip, "br, gzip;q=0.1"), (true, false));
        assert_eq!(negotiated(&gzip, "br"), (false, false));
        let head = Request::head("/")
            .header(ACCEPT_ENCODING, "gzip")
            .body(())
            .unwrap();
        let n = gzip.negotiate(&head);
        assert!(!n.gzip && !n.brotli);
    }

    #[test]
    fn weights() {
        assert_eq!(qvalue("1"), Some(1000));
        assert_eq!(qvalue("1.000"), Some(1000));
        assert_eq!(qvalue("0.5"), Some(500));
        assert_eq!(qvalue("0.05"), Some(50));
        assert_eq!(qvalue("0"), Some(0));
        assert_eq!(qvalue("1.5"), None);
        assert_eq!(qvalue("0.1234"), None);
        assert_eq!(qvalue("x"), None);
    }

    #[test]
    fn vary_and_etag() {
        let mut h = HeaderMap::new();
        h.insert(VARY, HeaderValue::from_static("Origin"));
        h.insert(ETAG, HeaderValue::from_static("\"abc\""));
        add_vary(&mut h);
        add_vary(&mut h);
        weaken_etag(&mut h);
        weaken_etag(&mut h);
        let vary: Vec<_> = h.get_all(VARY).iter().collect();
        assert_eq!(vary, ["Origin", "Accept-Encoding"]);
        assert_eq!(h[ETAG], "W/\"abc\"");
    }

    #[test]
    fn encoders_round_trip() {
        use std::io::Read;
        let input: Vec<u8> = (0..50_000u32)
            .flat_map(|i| (i % 97).to_le_bytes())
            .collect();
        for coding in [Coding::Gzip, Coding::Brotli] {
            let mut e = Encoder::new(coding, 5);
            let mut out = Vec::new();
            for chunk in input.chunks(7000) {
                out.extend_from_slice(&e.write(chunk).unwrap());
                out.extend_from_slice(&e.flush().unwrap());
            }
            out.extend_from_slice(&e.finish().unwrap());
            let mut back = Vec::new();
            match coding {
                Coding::Gzip => flate2::read::GzDecoder::new(&out[..])
                    .read_to_end(&mut back)
                    .unwrap(),
                Coding::Brotli => brotli::Decompressor::new(&out[..], 4096)
                    .read_to_end(&mut back)
                    .unwrap(),
            };
            assert_eq!(back, input, "{coding:?}");
            assert!(out.len() < input.len() / 4, "{coding:?}: {}", out.len());
        }
    }
}
