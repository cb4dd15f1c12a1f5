//! The chunked transfer coding (RFC 9112 section 7.1): one decoder for request and
//! response bodies, and the encoder both sides write chunks with.
//!
//! The decoder follows the grammar strictly, as a body two servers could delimit
//! differently is a way to smuggle a request past one of them: sizes are hex digits only,
//! every line ends in CRLF with no other CR, and trailer lines are never folded.

use std::io;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue};

/// The largest chunk-size or trailer line accepted.
const MAX_LINE: usize = 8 * 1024;

/// Where a chunked body decoder is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Chunk {
    Size,
    Data(u64),
    DataEnd,
    Trailers,
}

/// One step of the chunked decoder.
#[derive(Debug, PartialEq)]
pub(crate) enum Step {
    Data(Bytes),
    NeedMore,
    End(Option<HeaderMap>),
}

fn bad(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("invalid chunked body: {what}"),
    )
}

/// Decodes as much of a chunked body as `buf` holds.
pub(crate) fn decode_chunk(state: &mut Chunk, buf: &mut BytesMut) -> io::Result<Step> {
    loop {
        match *state {
            Chunk::Size => {
                let Some(line) = take_line(buf)? else {
                    return Ok(Step::NeedMore);
                };
                let size = chunk_size(&line)?;
                *state = if size == 0 {
                    Chunk::Trailers
                } else {
                    Chunk::Data(size)
                };
            }
            Chunk::Data(remaining) => {
                if buf.is_empty() {
                    return Ok(Step::NeedMore);
                }
                let n = buf
                    .len()
                    .min(usize::try_from(remaining).unwrap_or(usize::MAX));
                let left = remaining - n as u64;
                *state = if left == 0 {
                    Chunk::DataEnd
                } else {
                    Chunk::Data(left)
                };
                return Ok(Step::Data(buf.split_to(n).freeze()));
            }
            Chunk::DataEnd => {
                let Some(line) = take_line(buf)? else {
                    return Ok(Step::NeedMore);
                };
                if !line.is_empty() {
                    return Err(bad("data longer than its chunk size"));
                }
                *state = Chunk::Size;
            }
            Chunk::Trailers => return trailers(buf),
        }
    }
}

/// The size on a chunk-size line: `1*HEXDIG` (at most 16 digits, so it fits in 64 bits),
/// then nothing or the chunk extensions after a `;`. Whitespace, signs and prefixes are
/// refused; the extensions are ignored but may hold no control characters besides tabs.
fn chunk_size(line: &[u8]) -> io::Result<u64> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || digits > 16 {
        return Err(bad("chunk size"));
    }
    let (size, rest) = line.split_at(digits);
    if !(rest.is_empty() || rest[0] == b';') {
        return Err(bad("chunk size"));
    }
    if rest.iter().any(|&b| (b < b' ' && b != b'\t') || b == 0x7f) {
        return Err(bad("chunk extension"));
    }
    // At most 16 hex digits: no overflow.
    Ok(size.iter().fold(0, |n, &d| (n << 4) | hex_digit(d)))
}

fn hex_digit(d: u8) -> u64 {
    u64::from(match d {
        b'0'..=b'9' => d - b'0',
        b'a'..=b'f' => d - b'a' + 10,
        b'A'..=b'F' => d - b'A' + 10,
        _ => 0,
    })
}

/// The trailer section, consumed only once all of it is there.
fn trailers(buf: &mut BytesMut) -> io::Result<Step> {
    let mut trailers: Option<HeaderMap> = None;
    let Some(end) = find_trailer_end(buf)? else {
        if buf.len() > MAX_LINE * 4 {
            return Err(bad("trailer section too large"));
        }
        return Ok(Step::NeedMore);
    };
    let section = buf.split_to(end);
    for line in section[..end - 2].split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        // A line that starts with whitespace would fold onto the one before.
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            return Err(bad("trailer line"));
        };
        let name = HeaderName::from_bytes(&line[..colon]).map_err(|_| bad("trailer name"))?;
        let value = HeaderValue::from_bytes(line[colon + 1..].trim_ascii())
            .map_err(|_| bad("trailer value"))?;
        trailers
            .get_or_insert_with(HeaderMap::new)
            .append(name, value);
    }
    Ok(Step::End(trailers))
}

/// Takes one line, which must end in CRLF and hold no other CR, off the front of `buf`;
/// returns it without its CRLF.
fn take_line(buf: &mut BytesMut) -> io::Result<Option<BytesMut>> {
    match buf.iter().position(|b| *b == b'\n') {
        Some(i) => {
            let mut line = buf.split_to(i + 1);
            line.truncate(i);
            if line.last() != Some(&b'\r') {
                return Err(bad("line not ended by CRLF"));
            }
            line.truncate(i - 1);
            if line.contains(&b'\r') {
                return Err(bad("CR inside a line"));
            }
            Ok(Some(line))
        }
        None if buf.len() > MAX_LINE => Err(bad("line too long")),
        None => Ok(None),
    }
}

/// The length of the trailer section including the empty line that ends it; every line
/// must end in CRLF, hold no other CR, and not start with whitespace.
fn find_trailer_end(buf: &BytesMut) -> io::Result<Option<usize>> {
    let mut start = 0;
    while let Some(i) = buf[start..].iter().position(|b| *b == b'\n') {
        let line = &buf[start..start + i];
        let Some(line) = line.strip_suffix(b"\r") else {
            return Err(bad("line not ended by CRLF"));
        };
        if line.contains(&b'\r') {
            return Err(bad("CR inside a line"));
        }
        if line.is_empty() {
            return Ok(Some(start + i + 1));
        }
        if matches!(line[0], b' ' | b'\t') {
            return Err(bad("folded trailer line"));
        }
        start += i + 1;
    }
    Ok(None)
}

/// Appends the size line of a chunk of `len` bytes.
pub(crate) fn chunk_size_line(out: &mut Vec<u8>, len: usize) {
    use std::io::Write;
    let _ = write!(out, "{len:x}\r\n");
}

/// Appends `data` as one chunk; nothing when it is empty (an empty chunk would end the
/// body).
pub(crate) fn encode_chunk(out: &mut Vec<u8>, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    chunk_size_line(out, data.len());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Appends the last chunk of a chunked body with its trailer section: the trailers of the
/// body save the fields that frame or route a message, which never belong there. Used
/// for responses to clients and requests to upstreams alike.
pub(crate) fn last_chunk(out: &mut Vec<u8>, trailers: Option<&HeaderMap>) {
    out.extend_from_slice(b"0\r\n");
    for (name, value) in trailers.into_iter().flatten() {
        if !matches!(
            name.as_str(),
            "content-length" | "transfer-encoding" | "connection" | "host" | "te" | "trailer"
        ) {
            super::line(out, name.as_str().as_bytes(), value.as_bytes());
        }
    }
    out.extend_from_slice(b"\r\n");
}
