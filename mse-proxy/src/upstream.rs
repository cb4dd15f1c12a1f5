//! Upstream connections: one keep-alive pool per worker over hyper's HTTP/1 client.
//!
//! The pool lives on one worker thread (`Rc`/`RefCell`, no locks). A connection goes back
//! to the pool when the response body it carried has ended (see
//! [`crate::body::ProxyBody`]), and is taken last-in first-out so the warmest connection is
//! reused. A pooled connection the upstream closed is noticed at checkout and dropped; a
//! request that hyper could not even start sending on a pooled connection is retried once
//! on a fresh one.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::error::ProxyError;
use crate::metrics::Metrics;

/// Where one request is sent: an endpoint address, or the DNS name of an ExternalName
/// Service (resolved when a new connection is opened).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Upstream {
    /// An endpoint address.
    Addr(SocketAddr),
    /// A DNS name and port.
    Name {
        /// The DNS name.
        host: Arc<str>,
        /// The port.
        port: u16,
    },
}

impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Upstream::Addr(a) => write!(f, "{a}"),
            Upstream::Name { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

/// An upstream response, and the connection that carried it: returned to the pool once
/// the body ends, or kept alive until an upgrade completes.
pub(crate) struct Sent {
    pub(crate) response: Response<Incoming>,
    pub(crate) conn: SendRequest<Incoming>,
}

struct Idle {
    tx: SendRequest<Incoming>,
    since: Instant,
}

/// One worker's upstream connections.
pub(crate) struct Pool {
    idle: std::cell::RefCell<HashMap<Upstream, VecDeque<Idle>>>,
    builder: http1::Builder,
    max_idle: usize,
    idle_timeout: Duration,
    connect_timeout: Duration,
    response_timeout: Duration,
}

// === impl Pool ===

impl Pool {
    pub(crate) fn new(
        max_idle: usize,
        idle_timeout: Duration,
        connect_timeout: Duration,
        response_timeout: Duration,
    ) -> Self {
        let builder = http1::Builder::new();
        Self {
            idle: Default::default(),
            builder,
            max_idle,
            idle_timeout,
            connect_timeout,
            response_timeout,
        }
    }

    /// Sends `req` to `upstream` and waits for the response head, within the response
    /// timeout. An upgrade request always gets a connection of its own, which is never
    /// pooled.
    pub(crate) async fn send(
        &self,
        upstream: &Upstream,
        mut req: Request<Incoming>,
        upgrade: bool,
        metrics: &Metrics,
    ) -> Result<Sent, ProxyError> {
        if !upgrade && let Some(mut tx) = self.checkout(upstream) {
            match self.exchange(&mut tx, req, upstream, metrics).await {
                Ok(response) => return Ok(Sent { response, conn: tx }),
                // The connection closed before hyper started writing: nothing reached the
                // upstream, so a fresh connection may carry the request.
                Err(Retry::Unsent(r)) => {
                    tracing::debug!(%upstream, "pooled connection closed; retrying on a new one");
                    req = *r;
                }
                Err(Retry::Failed(e)) => return Err(e),
            }
        }
        let mut tx = self.connect(upstream, upgrade, metrics).await?;
        match self.exchange(&mut tx, req, upstream, metrics).await {
            Ok(response) => Ok(Sent { response, conn: tx }),
            Err(Retry::Unsent(_)) => Err(ProxyError::Connect {
                upstream: upstream.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    "connection closed before the request was sent",
                ),
            }),
            Err(Retry::Failed(e)) => Err(e),
        }
    }

    async fn exchange(
        &self,
        tx: &mut SendRequest<Incoming>,
        req: Request<Incoming>,
        upstream: &Upstream,
        metrics: &Metrics,
    ) -> Result<Response<Incoming>, Retry> {
        match tokio::time::timeout(self.response_timeout, tx.try_send_request(req)).await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(mut e)) => match e.take_message() {
                Some(req) => Err(Retry::Unsent(Box::new(req))),
                None => Err(Retry::Failed(ProxyError::Upstream {
                    upstream: upstream.clone(),
                    source: e.into_error(),
                })),
            },
            Err(_) => {
                metrics.timeout();
                Err(Retry::Failed(ProxyError::ResponseTimeout {
                    upstream: upstream.clone(),
                }))
            }
        }
    }

    /// Opens a new connection (resolving a DNS name first) within the connect timeout.
    async fn connect(
        &self,
        upstream: &Upstream,
        upgrade: bool,
        metrics: &Metrics,
    ) -> Result<SendRequest<Incoming>, ProxyError> {
        let stream = match tokio::time::timeout(self.connect_timeout, open(upstream)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                metrics.connect_error();
                return Err(e);
            }
            Err(_) => {
                metrics.connect_error();
                metrics.timeout();
                return Err(ProxyError::ConnectTimeout {
                    upstream: upstream.clone(),
                });
            }
        };
        let (tx, conn) = self
            .builder
            .handshake::<_, Incoming>(TokioIo::new(stream))
            .await
            .map_err(|e| ProxyError::Upstream {
                upstream: upstream.clone(),
                source: e,
            })?;
        let name = upstream.clone();
        tokio::task::spawn_local(async move {
            let done = if upgrade {
                conn.with_upgrades().await
            } else {
                conn.await
            };
            if let Err(e) = done {
                tracing::debug!(upstream = %name, error = %e, "upstream connection ended");
            }
        });
        Ok(tx)
    }

    /// The most recently pooled connection to `upstream` that is ready for a request.
    fn checkout(&self, upstream: &Upstream) -> Option<SendRequest<Incoming>> {
        let mut idle = self.idle.borrow_mut();
        let list = idle.get_mut(upstream)?;
        for _ in 0..list.len() {
            let Some(mut entry) = list.pop_back() else {
                break;
            };
            if entry.tx.is_ready() {
                return Some(entry.tx);
            }
            if entry.tx.is_closed() || entry.since.elapsed() >= self.idle_timeout {
                continue;
            }
            // Still finishing its previous exchange (hyper had not yet polled the
            // connection since the body ended): ask once without waiting.
            let ready = entry.tx.ready().now_or_never();
            match ready {
                Some(Ok(())) => return Some(entry.tx),
                Some(Err(_)) => {}
                None => list.push_front(entry),
            }
        }
        None
    }

    /// Returns a connection whose exchange is complete.
    pub(crate) fn put(&self, upstream: Upstream, tx: SendRequest<Incoming>) {
        if tx.is_closed() || self.max_idle == 0 {
            return;
        }
        let mut idle = self.idle.borrow_mut();
        let list = idle.entry(upstream).or_default();
        if list.len() >= self.max_idle {
            list.retain(|i| !i.tx.is_closed());
            if list.len() >= self.max_idle {
                list.pop_front();
            }
        }
        list.push_back(Idle {
            tx,
            since: Instant::now(),
        });
    }

    /// Drops pooled connections that are closed or idle for too long.
    pub(crate) fn sweep(&self) {
        let timeout = self.idle_timeout;
        self.idle.borrow_mut().retain(|_, list| {
            list.retain(|i| !i.tx.is_closed() && i.since.elapsed() < timeout);
            !list.is_empty()
        });
    }
}

enum Retry {
    /// The request never left: it may be sent on another connection.
    Unsent(Box<Request<Incoming>>),
    Failed(ProxyError),
}

/// Connects to an address, or to each address of a name in turn.
async fn open(upstream: &Upstream) -> Result<TcpStream, ProxyError> {
    let connect_err = |source| ProxyError::Connect {
        upstream: upstream.clone(),
        source,
    };
    let stream = match upstream {
        Upstream::Addr(addr) => TcpStream::connect(addr).await.map_err(connect_err)?,
        Upstream::Name { host, port } => {
            let addrs = tokio::net::lookup_host((&**host, *port))
                .await
                .map_err(|source| ProxyError::Resolve {
                    upstream: upstream.clone(),
                    source,
                })?;
            let mut last = None;
            let mut found = None;
            for addr in addrs {
                match TcpStream::connect(addr).await {
                    Ok(s) => {
                        found = Some(s);
                        break;
                    }
                    Err(e) => last = Some(e),
                }
            }
            match (found, last) {
                (Some(s), _) => s,
                (None, Some(e)) => return Err(connect_err(e)),
                (None, None) => {
                    return Err(ProxyError::Resolve {
                        upstream: upstream.clone(),
                        source: std::io::Error::new(
                            std::io::ErrorKind::NotFound,
                            "the name has no address",
                        ),
                    });
                }
            }
        }
    };
    // Requests are small and latency matters more than packet count.
    let _ = stream.set_nodelay(true);
    Ok(stream)
}
