//! The chunked transfer coding (RFC 9112 section 7.1): one decoder for request and
//! response bodies, and the encoder both sides write chunks with.

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

/// The size on a chunk-size line, extensions ignored.
fn chunk_size(line: &[u8]) -> io::Result<u64> {
    let digits = line.split(|b| *b == b';').next().unwrap_or(&[]);
    let digits = digits.trim_ascii();
    if digits.is_empty() || digits.len() > 16 {
        return Err(bad("chunk size"));
    }
    std::str::from_utf8(digits)
        .ok()
        .and_then(|s| u64::from_str_radix(s, 16).ok())
        .ok_or_else(|| bad("chunk size"))
}

/// The trailer section, consumed only once all of it is there.
fn trailers(buf: &mut BytesMut) -> io::Result<Step> {
    let mut trailers: Option<HeaderMap> = None;
    let Some(end) = find_trailer_end(buf) else {
        if buf.len() > MAX_LINE * 4 {
            return Err(bad("trailer section too large"));
        }
        return Ok(Step::NeedMore);
    };
    let section = buf.split_to(end);
    for line in section[..].split(|b| *b == b'\n') {
        let line = line.trim_ascii();
        if line.is_empty() {
            continue;
        }
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

/// Takes one line (without its CRLF or LF) off the front of `buf`.
fn take_line(buf: &mut BytesMut) -> io::Result<Option<BytesMut>> {
    match buf.iter().position(|b| *b == b'\n') {
        Some(i) => {
            let mut line = buf.split_to(i + 1);
            line.truncate(i);
            if line.last() == Some(&b'\r') {
                line.truncate(i - 1);
            }
            Ok(Some(line))
        }
        None if buf.len() > MAX_LINE => Err(bad("line too long")),
        None => Ok(None),
    }
}

/// The length of the trailer section including the empty line that ends it.
fn find_trailer_end(buf: &BytesMut) -> Option<usize> {
    let mut start = 0;
    while let Some(i) = buf[start..].iter().position(|b| *b == b'\n') {
        let line = &buf[start..start + i];
        if line.is_empty() || line == b"\r" {
            return Some(start + i + 1);
        }
        start += i + 1;
    }
    None
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
