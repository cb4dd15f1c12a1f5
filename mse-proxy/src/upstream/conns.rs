//! Connections of the upstream protocols other than plain HTTP/1.1, driven by hyper's
//! client: HTTP/1.1 over TLS with keep-alive, and HTTP/2 (cleartext with prior knowledge,
//! or over TLS) with one shared connection per endpoint and worker that carries every
//! request to it as a stream, replaced when it closes (a GOAWAY, an error, the peer
//! closing it).
//!
//! Like the inline client's pool, these live on one worker thread without locks. The
//! requests and answers are hyper's, so trailers pass both ways frame by frame (gRPC's
//! `grpc-status` among them).

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::OnceCell;

use super::tls::Protocol;
use super::{Pool, Upstream, Waits};
use crate::body::RequestBody;
use crate::error::ProxyError;
use crate::metrics::Metrics;

/// The most idle HTTP/1.1-over-TLS connections kept per endpoint and protocol.
const MAX_IDLE_H1: usize = 64;

/// The connections of one worker, by endpoint and protocol.
#[derive(Default)]
pub(crate) struct Conns {
    map: RefCell<HashMap<(Upstream, usize), Entry>>,
}

/// The connections to one endpoint with one protocol; the protocol is held so that its
/// address, part of the key, stays its own.
struct Entry {
    _protocol: Arc<Protocol>,
    senders: Senders,
}

enum Senders {
    /// Keep-alive connections, in use or idle.
    H1(Vec<http1::SendRequest<RequestBody>>),
    /// The shared connection, or the one being opened: requests that come while it is
    /// wait for it rather than open one each.
    H2(Rc<H2Cell>),
}

type H2Cell = OnceCell<http2::SendRequest<RequestBody>>;

/// Spawns hyper's HTTP/2 stream tasks on the worker's own thread: request bodies are not
/// `Send`.
#[derive(Clone, Copy)]
struct LocalExec;

impl<F> hyper::rt::Executor<F> for LocalExec
where
    F: Future + 'static,
{
    fn execute(&self, fut: F) {
        tokio::task::spawn_local(fut);
    }
}

// === impl Conns ===

impl Conns {
    /// An idle HTTP/1.1 connection to the endpoint of `key`, if one is open.
    fn checkout_h1(&self, key: &(Upstream, usize)) -> Option<http1::SendRequest<RequestBody>> {
        let mut map = self.map.borrow_mut();
        let Senders::H1(list) = &mut map.get_mut(key)?.senders else {
            return None;
        };
        list.retain(|tx| !tx.is_closed());
        let i = list.iter().rposition(http1::SendRequest::is_ready)?;
        Some(list.swap_remove(i))
    }

    /// Keeps an HTTP/1.1 connection for later requests: it becomes ready again once the
    /// response it carries has been read.
    fn keep_h1(
        &self,
        key: (Upstream, usize),
        protocol: &Arc<Protocol>,
        tx: http1::SendRequest<RequestBody>,
    ) {
        let mut map = self.map.borrow_mut();
        let entry = map.entry(key).or_insert_with(|| Entry {
            _protocol: Arc::clone(protocol),
            senders: Senders::H1(Vec::new()),
        });
        if let Senders::H1(list) = &mut entry.senders
            && list.len() < MAX_IDLE_H1
        {
            list.push(tx);
        }
    }

    /// The HTTP/2 connection to the endpoint of `key`: open, being opened, or to open
    /// (a new cell, in place of one whose connection closed or of `stale`).
    fn h2_cell(
        &self,
        key: &(Upstream, usize),
        protocol: &Arc<Protocol>,
        stale: Option<&Rc<H2Cell>>,
    ) -> Rc<H2Cell> {
        let mut map = self.map.borrow_mut();
        if let Some(Entry {
            senders: Senders::H2(cell),
            ..
        }) = map.get(key)
        {
            let closed = cell.get().is_some_and(http2::SendRequest::is_closed);
            if !closed && !stale.is_some_and(|s| Rc::ptr_eq(s, cell)) {
                return Rc::clone(cell);
            }
        }
        let cell = Rc::new(H2Cell::new());
        map.insert(
            key.clone(),
            Entry {
                _protocol: Arc::clone(protocol),
                senders: Senders::H2(Rc::clone(&cell)),
            },
        );
        cell
    }

    /// Drops the connections that closed.
    pub(crate) fn sweep(&self) {
        self.map.borrow_mut().retain(|_, e| match &mut e.senders {
            Senders::H2(cell) => cell.get().is_none_or(|tx| !tx.is_closed()),
            Senders::H1(list) => {
                list.retain(|tx| !tx.is_closed());
                !list.is_empty()
            }
        });
    }
}

/// Sends `req` (headers ready, in origin form) to `upstream` with `protocol` and waits for
/// the response head within `waits.response`, or `deadline` when sooner (`grpc-timeout`).
/// The outcome counts for the endpoint's outlier detection.
pub(crate) async fn send(
    pool: &Pool,
    protocol: &Arc<Protocol>,
    upstream: &Upstream,
    req: Request<RequestBody>,
    waits: Waits,
    metrics: &Metrics,
) -> Result<Response<Incoming>, ProxyError> {
    let sent = send_once(pool, protocol, upstream, req, waits, metrics).await;
    match &sent {
        Ok(response) => pool.outliers.answered(upstream, response.status().as_u16()),
        Err(e) => pool.outliers.errored(upstream, e),
    }
    sent
}

async fn send_once(
    pool: &Pool,
    protocol: &Arc<Protocol>,
    upstream: &Upstream,
    req: Request<RequestBody>,
    waits: Waits,
    metrics: &Metrics,
) -> Result<Response<Incoming>, ProxyError> {
    let key = (upstream.clone(), Arc::as_ptr(protocol) as usize);
    let mut req = req;
    // The HTTP/2 connection of the first attempt, when it turned out closed.
    let mut stale = None;
    // A connection already open first; when it turns out closed before the request could
    // go out, once more on a new one.
    for attempt in 0..2 {
        let (sent, reused) = if protocol.http2 {
            let cell = pool.conns.h2_cell(&key, protocol, stale.as_ref());
            let reused = cell.initialized();
            let tx = cell
                .get_or_try_init(|| async {
                    let io = open(pool, protocol, upstream, waits, metrics).await?;
                    match io {
                        Io::Tls(s) => handshake_h2(s, upstream).await,
                        Io::Plain(s) => handshake_h2(s, upstream).await,
                    }
                })
                .await?;
            let mut tx = tx.clone();
            stale = Some(cell);
            let sent = timed(waits.response, metrics, upstream, tx.try_send_request(req)).await?;
            (sent, reused)
        } else {
            let pooled = if attempt == 0 {
                pool.conns.checkout_h1(&key)
            } else {
                None
            };
            let (mut tx, reused) = match pooled {
                Some(tx) => (tx, true),
                _ => {
                    let io = open(pool, protocol, upstream, waits, metrics).await?;
                    let tx = match io {
                        Io::Tls(s) => handshake_h1(s, false, upstream).await?,
                        Io::Plain(s) => handshake_h1(s, false, upstream).await?,
                    };
                    (tx, false)
                }
            };
            let sent = timed(waits.response, metrics, upstream, tx.try_send_request(req)).await?;
            pool.conns.keep_h1(key.clone(), protocol, tx);
            (sent, reused)
        };
        match sent {
            Ok(response) => return Ok(response),
            Err(mut e) => match e.take_message() {
                Some(unsent) if reused => {
                    tracing::debug!(%upstream, error = %e.error(), "upstream connection closed; retrying on a new one");
                    req = unsent;
                }
                _ => {
                    return Err(ProxyError::Upstream {
                        upstream: upstream.clone(),
                        source: e.into_error().into(),
                    });
                }
            },
        }
    }
    Err(ProxyError::Upstream {
        upstream: upstream.clone(),
        source: "the upstream closed a new connection before the request was sent".into(),
    })
}

/// An upgrade request (WebSocket) over HTTP/1.1 with TLS: a connection of its own that
/// hands its socket over for the tunnel.
pub(crate) async fn send_upgrade(
    pool: &Pool,
    protocol: &Arc<Protocol>,
    upstream: &Upstream,
    req: Request<RequestBody>,
    waits: Waits,
    metrics: &Metrics,
) -> Result<(Response<Incoming>, http1::SendRequest<RequestBody>), ProxyError> {
    let io = open(pool, protocol, upstream, waits, metrics).await?;
    let mut tx = match io {
        Io::Tls(s) => handshake_h1(s, true, upstream).await?,
        Io::Plain(s) => handshake_h1(s, true, upstream).await?,
    };
    let response = timed(waits.response, metrics, upstream, tx.send_request(req))
        .await?
        .map_err(|e| ProxyError::Upstream {
            upstream: upstream.clone(),
            source: e.into(),
        })?;
    Ok((response, tx))
}

async fn timed<T>(
    wait: Duration,
    metrics: &Metrics,
    upstream: &Upstream,
    fut: impl Future<Output = T>,
) -> Result<T, ProxyError> {
    match tokio::time::timeout(wait, fut).await {
        Ok(out) => Ok(out),
        Err(_) => {
            metrics.timeout();
            Err(ProxyError::ResponseTimeout {
                upstream: upstream.clone(),
            })
        }
    }
}

enum Io {
    Plain(tokio::net::TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>),
}

/// A new connection: TCP, then TLS when the protocol has it, within the connect timeout.
async fn open(
    pool: &Pool,
    protocol: &Protocol,
    upstream: &Upstream,
    waits: Waits,
    metrics: &Metrics,
) -> Result<Io, ProxyError> {
    let tls = match &protocol.tls {
        None => None,
        Some(Ok(t)) => Some(t),
        Some(Err(reason)) => {
            return Err(ProxyError::BackendUnavailable {
                reason: format!("upstream TLS cannot be set up: {reason} (fail closed)").into(),
            });
        }
    };
    let started = tokio::time::Instant::now();
    let stream = pool.open_timed(upstream, metrics, waits.connect).await?;
    let Some(tls) = tls else {
        return Ok(Io::Plain(stream));
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::clone(&tls.config));
    let left = waits.connect.saturating_sub(started.elapsed());
    match tokio::time::timeout(left, connector.connect(tls.name.clone(), stream)).await {
        Ok(Ok(s)) => Ok(Io::Tls(Box::new(s))),
        Ok(Err(e)) => {
            metrics.connect_error();
            Err(ProxyError::Connect {
                upstream: upstream.clone(),
                source: e,
            })
        }
        Err(_) => {
            metrics.connect_error();
            metrics.timeout();
            Err(ProxyError::ConnectTimeout {
                upstream: upstream.clone(),
            })
        }
    }
}

async fn handshake_h1<S>(
    io: S,
    upgrades: bool,
    upstream: &Upstream,
) -> Result<http1::SendRequest<RequestBody>, ProxyError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (tx, conn) = http1::Builder::new()
        .handshake::<_, RequestBody>(TokioIo::new(io))
        .await
        .map_err(|e| ProxyError::Upstream {
            upstream: upstream.clone(),
            source: e.into(),
        })?;
    let name = upstream.clone();
    if upgrades {
        tokio::task::spawn_local(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(upstream = %name, error = %e, "upstream connection ended");
            }
        });
    } else {
        tokio::task::spawn_local(async move {
            if let Err(e) = conn.await {
                tracing::debug!(upstream = %name, error = %e, "upstream connection ended");
            }
        });
    }
    Ok(tx)
}

async fn handshake_h2<S>(
    io: S,
    upstream: &Upstream,
) -> Result<http2::SendRequest<RequestBody>, ProxyError>
where
    S: AsyncRead + AsyncWrite + Unpin + 'static,
{
    let (tx, conn) = http2::Builder::new(LocalExec)
        .handshake::<_, RequestBody>(TokioIo::new(io))
        .await
        .map_err(|e| ProxyError::Upstream {
            upstream: upstream.clone(),
            source: e.into(),
        })?;
    let name = upstream.clone();
    tokio::task::spawn_local(async move {
        if let Err(e) = conn.await {
            tracing::debug!(upstream = %name, error = %e, "upstream HTTP/2 connection ended");
        }
    });
    Ok(tx)
}
