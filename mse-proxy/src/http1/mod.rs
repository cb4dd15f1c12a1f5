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
pub(crate) use server::{Ended, H1Body, Limits, PendingUpgrade, Stop, serve};

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

/// Parses one HTTP/1.1 request head as the gateway's server does, for fuzzing: `Ok(None)`
/// when `bytes` hold no complete head yet, `Err` with the status the server refuses the
/// head with (400 when it is malformed or its body length cannot be told for sure, 431
/// when it is longer than `max_head` bytes or has too many headers). Bytes after the head
/// are left alone.
#[doc(hidden)]
pub fn parse_request_head(
    bytes: &[u8],
    max_head: usize,
) -> Result<Option<http::Request<()>>, http::StatusCode> {
    let mut buf = BytesMut::from(bytes);
    match head::parse_request(&mut buf, max_head, |_| ()) {
        Ok(parsed) => Ok(parsed.map(|(req, _)| *req)),
        Err(head::Refusal(status)) => Err(status),
    }
}

/// Appends one header line.
pub(crate) fn line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}
