//! One reader for HTTP/1.1 message bodies, whichever side they come from: request bodies
//! in the server and response bodies in the client are both read off a connection's
//! buffer as they are polled, so bytes that arrived with the head cost no extra read.

use std::io;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use http_body::{Frame, SizeHint};
use tokio::io::AsyncRead;

use super::chunked::{Chunk, Step, decode_chunk};
use super::fill;
use super::head::Framing;

/// Where a message body is: how much of it is still to come, by its framing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyReader {
    /// Read to its end (or there is none).
    Done,
    /// This many bytes are left.
    Length(u64),
    Chunked(Chunk),
    /// Until the peer closes the connection.
    Close,
    /// Reading it failed: the connection cannot carry another message.
    Broken,
}

/// A frame the buffer already holds, or the end of the body.
type Ready = Option<io::Result<Frame<Bytes>>>;

impl BodyReader {
    /// A body framed as its head says.
    pub(crate) fn new(framing: Framing) -> Self {
        match framing {
            Framing::Empty => Self::Done,
            Framing::Length(n) => Self::Length(n),
            Framing::Chunked => Self::Chunked(Chunk::Size),
            Framing::Close => Self::Close,
        }
    }

    /// The next frame of the body: from `buf` when it holds one, else read off `io`
    /// (`chunk`: see [`fill`]).
    pub(crate) fn poll_frame<R>(
        &mut self,
        io: &mut R,
        buf: &mut BytesMut,
        chunk: usize,
        cx: &mut Context<'_>,
    ) -> Poll<Ready>
    where
        R: AsyncRead + Unpin + ?Sized,
    {
        loop {
            if let Some(ready) = self.buffered(buf) {
                return Poll::Ready(ready);
            }
            match ready!(fill(io, buf, chunk, cx)) {
                Ok(0) if *self == Self::Close => {
                    *self = Self::Done;
                    return Poll::Ready(None);
                }
                Ok(0) => {
                    *self = Self::Broken;
                    return Poll::Ready(Some(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the connection closed in the middle of the body",
                    ))));
                }
                Ok(_) => {}
                Err(e) => {
                    *self = Self::Broken;
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
    }

    /// What `buf` holds of the body; `None` when a read is needed.
    fn buffered(&mut self, buf: &mut BytesMut) -> Option<Ready> {
        match self {
            Self::Done => Some(None),
            Self::Broken => Some(Some(Err(io::Error::other("the body failed")))),
            Self::Length(left) => {
                if buf.is_empty() {
                    return None;
                }
                let n = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                *left -= n as u64;
                if *left == 0 {
                    *self = Self::Done;
                }
                Some(Some(Ok(Frame::data(buf.split_to(n).freeze()))))
            }
            Self::Close => {
                let n = buf.len();
                (n > 0).then(|| Some(Ok(Frame::data(buf.split_to(n).freeze()))))
            }
            Self::Chunked(chunk) => match decode_chunk(chunk, buf) {
                Ok(Step::Data(data)) => Some(Some(Ok(Frame::data(data)))),
                Ok(Step::End(trailers)) => {
                    *self = Self::Done;
                    Some(trailers.map(|t| Ok(Frame::trailers(t))))
                }
                Ok(Step::NeedMore) => None,
                Err(e) => {
                    *self = Self::Broken;
                    Some(Some(Err(e)))
                }
            },
        }
    }

    /// Whether the body was read to its end.
    pub(crate) fn is_done(&self) -> bool {
        *self == Self::Done
    }

    /// What is known of the length still to come.
    pub(crate) fn size_hint(&self) -> SizeHint {
        match *self {
            Self::Done => SizeHint::with_exact(0),
            Self::Length(n) => SizeHint::with_exact(n),
            _ => SizeHint::default(),
        }
    }
}
