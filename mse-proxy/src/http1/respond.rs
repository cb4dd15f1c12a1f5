//! Writing a response to an HTTP/1.1 client: the head, and the body in the framing the
//! answer calls for.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::SystemTime;

use futures_util::FutureExt;
use http::header::{CONTENT_LENGTH, DATE};
use http::response::Parts;
use http::{HeaderMap, Response, StatusCode, Version};
use http_body::Body;
use http_body_util::BodyExt;

use super::chunked::{chunk_size_line, encode_chunk, last_chunk};
use super::head::{RawHeaders, content_length};
use super::io::Io;
use super::line;
use super::server::{Meta, Shared};
use crate::body::ProxyBody;

/// Response body bytes gathered behind the head for one write, at most.
const COALESCE: usize = 64 * 1024;

/// Writes all of `data`, then flushes (a TLS stream sends its records); fails when the
/// client takes nothing for longer than the write timeout.
pub(super) async fn write_all(shared: &Shared, data: &[u8]) -> io::Result<()> {
    let mut at = 0;
    poll_fn(|task| {
        let mut c = shared.borrow_mut();
        let c = &mut *c;
        let before = at;
        let polled = poll_write_all(&mut *c.io, data, &mut at, task);
        if polled.is_ready() || at != before {
            c.write.progress();
        }
        if polled.is_pending() && c.write.poll_expired(task) {
            return Poll::Ready(Err(io::ErrorKind::TimedOut.into()));
        }
        polled
    })
    .await
}

/// Writes what of `data[*at..]` the socket takes, then flushes.
fn poll_write_all(
    io: &mut dyn Io,
    data: &[u8],
    at: &mut usize,
    task: &mut Context<'_>,
) -> Poll<io::Result<()>> {
    while *at < data.len() {
        match ready!(Pin::new(&mut *io).poll_write(task, &data[*at..])) {
            Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
            Ok(n) => *at += n,
            Err(e) => return Poll::Ready(Err(e)),
        }
    }
    Pin::new(io).poll_flush(task)
}

/// How a response body goes out.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Out {
    None,
    Length(u64),
    Chunked,
    Close,
}

/// Writes `response`; returns whether the connection may carry another request.
pub(super) async fn respond(
    shared: &Shared,
    out: &mut Vec<u8>,
    response: Response<ProxyBody>,
    meta: &Meta,
) -> bool {
    let (mut parts, body) = response.into_parts();
    let declared = declared_length(&mut parts.headers, &body);
    let (framing, keep_alive) = out_framing(&parts, &body, declared, meta);
    write_head(
        out,
        &parts,
        &body,
        framing,
        declared.is_none(),
        keep_alive,
        meta,
    );
    if framing == Out::None {
        drop(body);
        return write_all(shared, out).await.is_ok() && keep_alive;
    }
    send_body(shared, out, Some(body), framing).await && keep_alive
}

/// The answer's `Content-Length`, from its headers or those kept as received; an invalid
/// one is removed.
fn declared_length(headers: &mut HeaderMap, body: &ProxyBody) -> Option<u64> {
    match headers
        .get(CONTENT_LENGTH)
        .map(|v| content_length(v.as_bytes()))
    {
        Some(Some(n)) => Some(n),
        Some(None) => {
            headers.remove(CONTENT_LENGTH);
            None
        }
        None => body.raw_headers().and_then(RawHeaders::length),
    }
}

/// How the body goes out, and whether the connection may go on after it.
fn out_framing(parts: &Parts, body: &ProxyBody, declared: Option<u64>, meta: &Meta) -> (Out, bool) {
    let status = parts.status;
    let no_body = meta.head
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    if no_body {
        (Out::None, meta.keep_alive)
    } else if let Some(n) = declared {
        (Out::Length(n), meta.keep_alive)
    } else if let Some(n) = body.size_hint().exact() {
        (Out::Length(n), meta.keep_alive)
    } else if meta.version == Version::HTTP_11 {
        (Out::Chunked, meta.keep_alive)
    } else {
        (Out::Close, false)
    }
}

/// Starts `out` afresh with the response head. `add_length`: the length is not among the
/// headers.
fn write_head(
    out: &mut Vec<u8>,
    parts: &Parts,
    body: &ProxyBody,
    framing: Out,
    add_length: bool,
    keep_alive: bool,
    meta: &Meta,
) {
    status_line(out, parts.status);
    let raw = body.raw_headers();
    let edits = body.deferred_edits();
    if let Some(raw) = raw {
        raw.write(out, &parts.headers, edits);
    }
    for (name, value) in &parts.headers {
        if edits.is_some_and(|e| e.update.iter().any(|(n, _)| n == name)) {
            continue;
        }
        line(out, name.as_str().as_bytes(), value.as_bytes());
    }
    if let Some(e) = edits {
        for (name, value) in e.update.iter().chain(&e.add) {
            line(out, name.as_str().as_bytes(), value.as_bytes());
        }
    }
    if !parts.headers.contains_key(DATE) && !raw.is_some_and(RawHeaders::has_date) {
        date(out);
    }
    match framing {
        Out::Length(n) if add_length => {
            let mut digits = [0u8; 20];
            line(out, b"content-length", decimal(n, &mut digits));
        }
        Out::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        _ => {}
    }
    if !keep_alive {
        out.extend_from_slice(b"connection: close\r\n");
    } else if meta.version == Version::HTTP_10 {
        out.extend_from_slice(b"connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Writes the head in `out` and the body; returns whether all of the body went out, as
/// long as it said it was.
///
/// The body comes as `Some`, so that it is not moved once more into an `Option`: dropped
/// as soon as it ends, before the last write, the request is over (in-flight gauge,
/// upstream connection back to the pool) by the time the client has it all.
async fn send_body(
    shared: &Shared,
    out: &mut Vec<u8>,
    mut body: Option<ProxyBody>,
    framing: Out,
) -> bool {
    let mut left = match framing {
        Out::Length(n) => n,
        _ => u64::MAX,
    };
    // Trailers (gRPC's status, a checksum) go out after the last chunk; without chunked
    // framing there is nowhere to put them.
    let mut trailers = None;
    // The head and whatever of the body is ready now go out in one write.
    let mut failed = coalesce(out, &mut body, framing, &mut left, &mut trailers);
    if write_all(shared, out).await.is_err() {
        return false;
    }
    while !failed && let Some(b) = body.as_mut() {
        match b.frame().await {
            Some(Ok(frame)) => {
                let data = match frame.into_data() {
                    Ok(data) => data,
                    Err(frame) => {
                        trailers = frame.into_trailers().ok();
                        continue;
                    }
                };
                out.clear();
                match write_data(shared, out, &data, framing, &mut left).await {
                    Ok(whole) => failed |= !whole,
                    Err(_) => return false,
                }
            }
            None => {
                body = None;
                if framing == Out::Chunked {
                    out.clear();
                    last_chunk(out, trailers.as_ref());
                    if write_all(shared, out).await.is_err() {
                        return false;
                    }
                }
            }
            Some(Err(_)) => failed = true,
        }
    }
    // A body cut short, or longer than its length: the client must see the connection
    // end rather than a complete message.
    body.is_none() && !failed && !matches!(framing, Out::Length(_) if left != 0)
}

/// Appends to `out` what of the body is ready now, up to [`COALESCE`] bytes; drops the
/// body when it ended. Returns whether it failed or outran its length.
fn coalesce(
    out: &mut Vec<u8>,
    body: &mut Option<ProxyBody>,
    framing: Out,
    left: &mut u64,
    trailers: &mut Option<HeaderMap>,
) -> bool {
    let mut failed = false;
    while out.len() < COALESCE
        && let Some(b) = body.as_mut()
    {
        match b.frame().now_or_never() {
            Some(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) => failed |= !encode(out, &data, framing, left),
                Err(frame) => *trailers = frame.into_trailers().ok(),
            },
            Some(None) => {
                *body = None;
                if framing == Out::Chunked {
                    last_chunk(out, trailers.as_ref());
                }
            }
            Some(Some(Err(_))) => return true,
            None => break,
        }
    }
    failed
}

/// Writes one data frame in the response's framing (`out` is scratch space); `Ok(false)`
/// when it was longer than the declared length (the excess is dropped).
async fn write_data(
    shared: &Shared,
    out: &mut Vec<u8>,
    data: &[u8],
    framing: Out,
    left: &mut u64,
) -> io::Result<bool> {
    match framing {
        // Large chunks are written in place rather than copied behind their size line.
        Out::Chunked if data.len() > 4096 => {
            chunk_size_line(out, data.len());
            write_all(shared, out).await?;
            write_all(shared, data).await?;
            write_all(shared, b"\r\n").await?;
            Ok(true)
        }
        Out::Chunked => {
            encode_chunk(out, data);
            write_all(shared, out).await.map(|()| true)
        }
        _ => {
            let n = (data.len() as u64).min(*left) as usize;
            *left -= n as u64;
            write_all(shared, &data[..n])
                .await
                .map(|()| n == data.len())
        }
    }
}

/// Appends one data frame in the response's framing; false when it is longer than the
/// declared length (the excess is dropped).
fn encode(out: &mut Vec<u8>, data: &[u8], framing: Out, left: &mut u64) -> bool {
    match framing {
        Out::Chunked => {
            encode_chunk(out, data);
            true
        }
        Out::None => true,
        Out::Length(_) | Out::Close => {
            let n = (data.len() as u64).min(*left) as usize;
            *left -= n as u64;
            out.extend_from_slice(&data[..n]);
            n == data.len()
        }
    }
}

/// The decimal digits of `n`, written at the end of `buf`.
fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[at..];
        }
    }
}

/// Starts `out` afresh with the status line.
pub(super) fn status_line(out: &mut Vec<u8>, status: StatusCode) {
    out.clear();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Appends a `Date` header, formatted at most once a second per worker.
pub(super) fn date(out: &mut Vec<u8>) {
    thread_local! {
        static DATE: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let now = SystemTime::now();
    let secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    DATE.with_borrow_mut(|(at, text)| {
        if *at != secs {
            *at = secs;
            *text = httpdate::fmt_http_date(now);
        }
        line(out, b"date", text.as_bytes());
    });
}
