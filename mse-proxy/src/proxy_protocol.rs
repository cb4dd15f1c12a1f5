//! The PROXY protocol (HAProxy's, versions 1 and 2) on the HTTP and HTTPS listeners, with
//! `use-proxy-protocol` (`--proxy-protocol`): a load balancer in front opens every
//! connection with a header naming the client, before any HTTP or TLS byte. The header is
//! parsed by the `ppp` crate.
//!
//! The header must arrive whole within the client header timeout. A connection that sends
//! something else, a broken header or nothing is closed: with the protocol on, a client
//! that could reach the gateway directly must not pick its own address by leaving the
//! header out. A `LOCAL` header (v2) or `UNKNOWN` one (v1), which load balancers send for
//! their own health checks, keeps the socket's peer address.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use ppp::{HeaderResult, PartialResult, v1, v2};
use tokio::io::{AsyncRead, AsyncReadExt};

/// The largest header accepted: a v2 header's 16 bytes, the addresses and a few TLVs.
/// (The v1 text header is at most 107 bytes.)
const MAX_HEADER: usize = 4096;

/// Why a connection's PROXY protocol header was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HeaderError {
    /// No whole header within the time allowed.
    #[error("no PROXY protocol header within {0:?}")]
    Timeout(Duration),
    /// The connection closed before a whole header arrived.
    #[error("the connection closed before a whole PROXY protocol header arrived")]
    Closed,
    /// What arrived is not a valid header.
    #[error("not a valid PROXY protocol header: {0}")]
    Invalid(String),
    /// Reading failed.
    #[error("reading the PROXY protocol header failed")]
    Io(#[source] io::Error),
}

/// What a valid header says.
#[derive(Debug)]
pub(crate) struct ProxyHeader {
    /// The client's address; `None` for `LOCAL` and `UNKNOWN` headers (the load balancer
    /// speaking for itself), or a non-IP source (a UNIX socket).
    pub(crate) source: Option<SocketAddr>,
    /// The bytes read after the header: the start of the HTTP or TLS stream.
    pub(crate) rest: Bytes,
}

/// Reads the PROXY protocol header that opens `io`, within `timeout`.
pub(crate) async fn read_header<S: AsyncRead + Unpin>(
    io: &mut S,
    timeout: Duration,
) -> Result<ProxyHeader, HeaderError> {
    tokio::time::timeout(timeout, read(io))
        .await
        .unwrap_or(Err(HeaderError::Timeout(timeout)))
}

async fn read<S: AsyncRead + Unpin>(io: &mut S) -> Result<ProxyHeader, HeaderError> {
    let mut buf = BytesMut::with_capacity(512);
    loop {
        if io.read_buf(&mut buf).await.map_err(HeaderError::Io)? == 0 {
            return Err(HeaderError::Closed);
        }
        if let Some((source, len)) = parse(&buf)? {
            let rest = buf.split_off(len).freeze();
            return Ok(ProxyHeader { source, rest });
        }
        if buf.len() >= MAX_HEADER {
            return Err(HeaderError::Invalid(format!(
                "longer than {MAX_HEADER} bytes"
            )));
        }
    }
}

/// The source address of a whole header at the start of `input`, and the header's
/// length; `None` while the header is incomplete.
fn parse(input: &[u8]) -> Result<Option<(Option<SocketAddr>, usize)>, HeaderError> {
    let header = HeaderResult::parse(input);
    if header.is_incomplete() {
        return Ok(None);
    }
    match header {
        HeaderResult::V1(Ok(h)) => {
            let source = match h.addresses {
                v1::Addresses::Tcp4(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
                v1::Addresses::Tcp6(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
                v1::Addresses::Unknown => None,
            };
            Ok(Some((source, h.header.len())))
        }
        HeaderResult::V2(Ok(h)) => {
            let source = match (h.command, h.addresses) {
                (v2::Command::Local, _) => None,
                (_, v2::Addresses::IPv4(a)) => {
                    Some(SocketAddr::from((a.source_address, a.source_port)))
                }
                (_, v2::Addresses::IPv6(a)) => {
                    Some(SocketAddr::from((a.source_address, a.source_port)))
                }
                (_, v2::Addresses::Unix(_) | v2::Addresses::Unspecified) => None,
            };
            Ok(Some((source, h.len())))
        }
        HeaderResult::V1(Err(e)) => Err(HeaderError::Invalid(format!("v1: {e}"))),
        HeaderResult::V2(Err(e)) => Err(HeaderError::Invalid(format!("v2: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2(source: SocketAddr, dest: SocketAddr) -> Vec<u8> {
        v2::Builder::with_addresses(
            v2::Version::Two | v2::Command::Proxy,
            v2::Protocol::Stream,
            (source, dest),
        )
        .build()
        .unwrap()
    }

    #[tokio::test]
    async fn a_header_in_pieces_gives_the_source_and_the_bytes_after_it() {
        let mut input = v2(
            "[2001:db8::7]:4000".parse().unwrap(),
            "[::1]:443".parse().unwrap(),
        );
        input.extend_from_slice(b"GET / HTTP/1.1\r\n");
        let (mut client, mut server) = tokio::io::duplex(64);
        let writer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            for piece in input.chunks(5) {
                client.write_all(piece).await.unwrap();
                client.flush().await.unwrap();
                tokio::task::yield_now().await;
            }
            client
        });
        let h = read_header(&mut server, Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(h.source, Some("[2001:db8::7]:4000".parse().unwrap()));
        let _client = writer.await.unwrap();
        let mut rest = h.rest.to_vec();
        let mut more = vec![0; 64];
        while rest.len() < 16 {
            let n = server.read(&mut more).await.unwrap();
            rest.extend_from_slice(&more[..n]);
        }
        assert_eq!(rest, b"GET / HTTP/1.1\r\n");
    }

    #[test]
    fn v1_local_unknown_and_garbage() {
        let h = b"PROXY TCP4 198.51.100.7 10.0.0.1 5000 80\r\nGET";
        assert_eq!(
            parse(h).unwrap(),
            Some((Some("198.51.100.7:5000".parse().unwrap()), h.len() - 3))
        );
        let h = b"PROXY TCP6 2001:db8::1 ::1 5000 443\r\n";
        assert_eq!(
            parse(h).unwrap(),
            Some((Some("[2001:db8::1]:5000".parse().unwrap()), h.len()))
        );
        assert_eq!(parse(b"PROXY UNKNOWN\r\n").unwrap(), Some((None, 15)));
        assert_eq!(parse(b"PROXY TCP4 198.51").unwrap(), None);
        let local = v2::Builder::with_addresses(
            v2::Version::Two | v2::Command::Local,
            v2::Protocol::Unspecified,
            v2::Addresses::Unspecified,
        )
        .build()
        .unwrap();
        assert_eq!(parse(&local).unwrap(), Some((None, 16)));
        assert!(parse(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").is_err());
        assert!(parse(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03").is_err());
        assert!(parse(b"PROXY TCP4 999.1.1.1 10.0.0.1 1 2\r\n").is_err());
    }
}
