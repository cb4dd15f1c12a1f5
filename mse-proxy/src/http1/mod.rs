//! HTTP/1.1 on both sides of the gateway, on one codec.
//!
//! - [`head`]: request and response heads parsed off a connection's buffer, and the
//!   framing rules of RFC 9112 section 6.3 both sides follow.
//! - [`chunked`]: the chunked coding, decoded and encoded.
//! - [`body`]: one body reader for `Content-Length`, chunked and read-to-close framing,
//!   for request bodies in the server and response bodies in the client.
//! - [`client`]: the upstream exchange, driven inline by the request's task.
//! - [`server`]: the client connection loop, and [`respond`] writes its answers.

mod body;
mod chunked;
mod client;
mod head;
mod io;
mod respond;
mod server;
#[cfg(test)]
mod tests;

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;

pub(crate) use client::{Conn, ExchangeError, HeadExtras, UpstreamBody, encode_head, materialize};
pub(crate) use head::{Present, RawHeaders, ResponseHead};
pub(crate) use io::{Io, Prefixed};
pub(crate) use server::{CloseConnection, Ended, H1Body, Limits, PendingUpgrade, Stop, serve};

/// Reads what the socket has into `buf`; `Ok(0)` is end of stream.
///
/// Goes through `AsyncRead`, which on epoll treats a read that did not fill the buffer as
/// draining the socket: the next read waits for the next event instead of costing a
/// system call that would only say `EAGAIN`.
/// `chunk`: how much room to make when less than 1 KiB is left.
pub(crate) fn fill<R>(
    io: &mut R,
    buf: &mut BytesMut,
    chunk: usize,
    cx: &mut Context<'_>,
) -> Poll<std::io::Result<usize>>
where
    R: tokio::io::AsyncRead + Unpin + ?Sized,
{
    if buf.capacity() - buf.len() < 1024 {
        buf.reserve(chunk);
    }
    tokio_util::io::poll_read_buf(Pin::new(io), cx, buf)
}

/// Parses one HTTP/1.1 request head as the gateway's server does, for fuzzing and the
/// differential tests: the request and the length of its head, `Ok(None)` when `bytes`
/// hold no complete head yet, `Err` with the status the server refuses the head with (400
/// when it is malformed or its body length cannot be told for sure, 414 when its target is
/// longer than `max_target` bytes, 431 when it is longer than `max_head` bytes or has too
/// many headers, 501 for a transfer coding besides `chunked`). Bytes after the head are
/// left alone.
#[doc(hidden)]
pub fn parse_request_head(
    bytes: &[u8],
    max_head: usize,
    max_target: usize,
) -> Result<Option<(http::Request<()>, usize)>, http::StatusCode> {
    let mut buf = BytesMut::from(bytes);
    match head::parse_request(&mut buf, max_head, max_target, |_| ()) {
        Ok(parsed) => Ok(parsed.map(|(req, _)| (*req, bytes.len() - buf.len()))),
        Err(head::Refusal(status)) => Err(status),
    }
}

/// Decodes a chunked body as the gateway does, for fuzzing and the differential tests:
/// `input` is fed to the decoder in pieces of `split` bytes (at least one), as reads would
/// bring it. Returns the data, the trailers and how many bytes of `input` the body took;
/// `Ok(None)` when `input` ends before the body does; `Err` when the body is malformed (the
/// server answers 400 and closes).
#[doc(hidden)]
pub fn decode_chunked(input: &[u8], split: usize) -> DecodedChunked {
    let mut state = chunked::Chunk::Size;
    let mut buf = BytesMut::new();
    let mut data = Vec::new();
    let mut fed = 0;
    for piece in input.chunks(split.max(1)) {
        buf.extend_from_slice(piece);
        fed += piece.len();
        loop {
            match chunked::decode_chunk(&mut state, &mut buf)? {
                chunked::Step::Data(d) => data.extend_from_slice(&d),
                chunked::Step::NeedMore => break,
                chunked::Step::End(t) => return Ok(Some((data, t, fed - buf.len()))),
            }
        }
    }
    Ok(None)
}

/// What [`decode_chunked`] returns: the data, the trailers, the bytes the body took.
#[doc(hidden)]
pub type DecodedChunked = std::io::Result<Option<(Vec<u8>, Option<http::HeaderMap>, usize)>>;

/// Appends one header line.
pub(crate) fn line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}
