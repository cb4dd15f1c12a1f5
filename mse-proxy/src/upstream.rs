//! Upstream connections: one keep-alive pool per worker.
//!
//! The pool lives on one worker thread (`Rc`/`RefCell`, no locks) and holds idle
//! [`Conn`]s of the inline HTTP/1.1 client in [`crate::http1`]. A connection goes back to the
//! pool when the response body it carried has been read to its end (see
//! [`crate::body::ProxyBody`]) and is taken last-in first-out, so the warmest one is
//! reused. A pooled connection the upstream closed is noticed at checkout (its socket
//! turned readable) and dropped. When a reused connection fails before the request head
//! could be written, or closes without a response to a body-less idempotent request, the
//! request is sent once more on a fresh connection: the upstream closing an idle
//! keep-alive connection just as it is reused is the usual cause.
//!
//! Upgrade requests (WebSocket) use hyper's client on a connection of their own, which
//! hands the socket over for the tunnel.
//!
//! Upstream protocols other than plain HTTP/1.1 (TLS, HTTP/2) have their own connections
//! in [`conns`], set up from [`Protocol`].

mod conns;
mod tls;

pub(crate) use conns::{send as send_protocol, send_upgrade as send_protocol_upgrade};
pub(crate) use tls::{ConfigCache, Protocol};

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::CONTENT_LENGTH;
use http::{HeaderMap, Method, Request, Response};
use http_body::Body;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::body::RequestBody;
use crate::error::ProxyError;
use crate::http1::{Conn, ExchangeError, HeadExtras, ResponseHead};
use crate::metrics::Metrics;
use crate::settings::{PoolSettings, Settings};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

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

/// How long one exchange may wait: the pool's settings, or a route's own timeouts.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Waits {
    pub(crate) connect: Duration,
    /// The wait for a response head.
    pub(crate) response: Duration,
    /// The longest wait between two reads of a response body.
    pub(crate) read: Duration,
    /// The longest wait for the upstream to take a write of the request.
    pub(crate) send: Duration,
    /// Every attempt together, until the response head: the route's `timeout`, else the
    /// gateway-wide `downstream.routeTimeout`.
    pub(crate) total: Option<Duration>,
    /// The route's `connection-policy-*`, for the connections it opens.
    pub(crate) limits: Option<mse_router::ConnectionLimits>,
    /// When the caller read the clock just before sending, if it did: the response timeout
    /// of an exchange on a pooled connection counts from then, without another reading.
    pub(crate) sent_at: Option<Instant>,
}

/// Head buffers a worker keeps for reuse: more than the requests it usually has in flight
/// upstream at once.
const SCRATCH_BUFFERS: usize = 256;

/// An upstream response head and the connection its body is read from, or (for an
/// upgrade) hyper's response and the connection that hands its socket over.
pub(crate) enum Sent {
    Plain {
        head: ResponseHead,
        conn: Box<Conn>,
        /// The request headers as sent, handed back rather than dropped: an error page
        /// request (`custom-http-errors`) carries them again.
        headers: HeaderMap,
    },
    Upgrade {
        response: Response<Incoming>,
        conn: SendRequest<RequestBody>,
    },
}

impl Sent {
    /// With the request headers as sent, handed back for an error page request. Set in
    /// place: the answer is large, and rebuilding it would copy it.
    pub(crate) fn with_headers(mut self, headers: HeaderMap) -> Self {
        if let Sent::Plain { headers: h, .. } = &mut self {
            *h = headers;
        }
        self
    }
}

struct Idle {
    conn: Box<Conn>,
    since: Instant,
}

/// A head buffer taken from the worker's free list, given back when dropped.
struct Scratch<'a>(Vec<u8>, &'a std::cell::RefCell<Vec<Vec<u8>>>);

impl<'a> Scratch<'a> {
    fn take(free: &'a std::cell::RefCell<Vec<Vec<u8>>>) -> Self {
        let mut buf = free
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(1024));
        buf.clear();
        Self(buf, free)
    }
}

impl Drop for Scratch<'_> {
    fn drop(&mut self) {
        let mut free = self.1.borrow_mut();
        if self.0.capacity() <= 16 * 1024 && free.len() < SCRATCH_BUFFERS {
            free.push(std::mem::take(&mut self.0));
        }
    }
}

/// A fast, non-keyed hash (rustc's Fx) for the pool's keys: they come from the route
/// table, not from clients, so there is nothing to defend against, and SipHash would cost
/// more than the rest of the lookup.
#[derive(Clone, Copy, Default)]
struct FxHasher(u64);

// === impl FxHasher ===

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl std::hash::Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(c);
            self.add(u64::from_le_bytes(word));
        }
        for b in chunks.remainder() {
            self.add(u64::from(*b));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }

    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type FxBuild = std::hash::BuildHasherDefault<FxHasher>;

/// One worker's upstream connections.
pub(crate) struct Pool {
    idle: std::cell::RefCell<HashMap<Upstream, VecDeque<Idle>, FxBuild>>,
    /// Where request heads are serialised, reused from request to request.
    scratch: std::cell::RefCell<Vec<Vec<u8>>>,
    upgrades: http1::Builder,
    /// Timeouts and limits, from the table the latest request was routed with.
    settings: Cell<PoolSettings>,
    /// The [`Settings::serial`] they came from.
    tuned: Cell<u64>,
    /// Connections of the other upstream protocols.
    conns: conns::Conns,
    /// The endpoints' outlier state, shared by every worker: attempts note their outcome.
    outliers: Arc<crate::policy::outlier::Outliers>,
}

// === impl Pool ===

impl Pool {
    pub(crate) fn new(
        settings: &Settings,
        outliers: Arc<crate::policy::outlier::Outliers>,
    ) -> Self {
        Self {
            idle: Default::default(),
            scratch: std::cell::RefCell::new(Vec::new()),
            upgrades: http1::Builder::new(),
            settings: Cell::new(settings.pool),
            tuned: Cell::new(settings.serial),
            conns: conns::Conns::default(),
            outliers,
        }
    }

    /// The endpoints' outlier state.
    pub(crate) fn outliers(&self) -> &crate::policy::outlier::Outliers {
        &self.outliers
    }

    /// Takes the pool settings of the table a request was just routed with: a new global
    /// configuration applies from the next request on. Nothing is copied while the table
    /// stays the same.
    #[inline]
    pub(crate) fn tune(&self, settings: &Settings) {
        if self.tuned.get() != settings.serial {
            self.tuned.set(settings.serial);
            self.settings.set(settings.pool);
        }
    }

    /// Sends `req` to `upstream` and waits for the response head within the response
    /// timeout. The request must already be in origin form with its headers prepared.
    /// `extras`: headers to write into the head besides the request's header map (see
    /// [`HeadExtras`]; never with `upgrade`).
    pub(crate) async fn send(
        &self,
        upstream: &Upstream,
        mut req: Box<Request<RequestBody>>,
        extras: Option<&HeadExtras<'_>>,
        upgrade: bool,
        metrics: &Metrics,
    ) -> Result<Sent, ProxyError> {
        // Rare paths are boxed: the future of every request is as large as its largest
        // state, and it is moved a few times per request.
        if upgrade {
            return Box::pin(self.send_upgrade(upstream, *req, metrics)).await;
        }
        let waits = self.waits(None);
        let sent = self
            .send_plain(upstream, &mut req, extras, metrics, waits)
            .await?;
        Ok(sent.with_headers(std::mem::take(req.headers_mut())))
    }

    /// The waits of an exchange: the route's `proxy-connect-timeout` and
    /// `proxy-read-timeout` where it sets them, the pool's settings otherwise.
    #[inline]
    pub(crate) fn waits(&self, route: Option<&mse_router::ExchangePolicy>) -> Waits {
        let s = self.settings.get();
        let read = route.and_then(|r| r.read);
        Waits {
            connect: route.and_then(|r| r.connect).unwrap_or(s.connect_timeout),
            response: read.unwrap_or(s.response_timeout),
            read: read.unwrap_or(s.read_timeout),
            send: route.and_then(|r| r.send).unwrap_or(s.send_timeout),
            total: route.and_then(|r| r.total).or(s.route_timeout),
            limits: route.and_then(|r| r.connections),
            sent_at: None,
        }
    }

    /// Whether every request has a time limit as a whole (`downstream.routeTimeout`).
    #[inline]
    pub(crate) fn has_route_timeout(&self) -> bool {
        self.settings.get().route_timeout.is_some()
    }

    /// [`Self::send`] for a request that asks for no upgrade, whatever its body type: the
    /// requests of most routes, the copies sent to a mirror, and requests whose body is
    /// also copied to one. The request's body is read; what `Sent` holds of the request is
    /// left empty.
    ///
    /// The head is serialised once, then written (with the body) on a pooled or new
    /// connection within the response timeout, and once more on a new connection when the
    /// pooled one turns out closed. All of it is one future: every future a request
    /// awaits is built and then moved whole into its caller's, so each level costs a copy.
    pub(crate) async fn send_plain<B>(
        &self,
        upstream: &Upstream,
        req: &mut Request<B>,
        extras: Option<&HeadExtras<'_>>,
        metrics: &Metrics,
        mut waits: Waits,
    ) -> Result<Sent, ProxyError>
    where
        B: Body<Data = Bytes> + Unpin,
        B::Error: Into<BoxError>,
    {
        let empty = req.body().is_end_stream();
        let chunked = !empty && !req.headers().contains_key(CONTENT_LENGTH);
        // A head buffer from the worker's free list: requests in flight at once each hold
        // one across the exchange, so one buffer alone would be taken most of the time.
        let mut head = Scratch::take(&self.scratch);
        let head = &mut head.0;
        let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
        crate::http1::encode_head(
            head,
            req.method(),
            target,
            req.headers(),
            extras,
            chunked,
            empty,
        );
        let method = req.method().clone();
        let body = req.body_mut();
        let mut pooled = self.checkout(upstream);
        loop {
            let (mut conn, sent_at) = match pooled.take() {
                Some(conn) => (conn, waits.sent_at.take()),
                None => (
                    Box::pin(self.connect(upstream, metrics, waits))
                        .await
                        .inspect_err(|e| self.outliers.errored(upstream, e))?,
                    None,
                ),
            };
            // One exchange within the response timeout, on the connection's own timer.
            let deadline = sent_at.unwrap_or_else(Instant::now) + waits.response;
            conn.set_read_timeout(waits.read);
            conn.send_timeout = waits.send;
            let mut timer = std::mem::take(&mut conn.timer);
            let result = {
                let mut exchange =
                    std::pin::pin!(conn.exchange(head, &mut *body, chunked, &method));
                std::future::poll_fn(|cx| match exchange.as_mut().poll(cx) {
                    Poll::Ready(result) => Poll::Ready(result.map_err(Failure::Exchange)),
                    Poll::Pending if timer.poll_expired(deadline, cx) => {
                        Poll::Ready(Err(Failure::Timeout))
                    }
                    Poll::Pending => Poll::Pending,
                })
                .await
            };
            conn.timer = timer;
            match result {
                Ok(head) => {
                    self.outliers.answered(upstream, head.status.as_u16());
                    return Ok(Sent::Plain {
                        head,
                        conn,
                        headers: HeaderMap::new(),
                    });
                }
                // Nothing of the request reached the upstream, or it closed a reused
                // connection without answering a request that may be repeated: once more
                // on a new one (a new connection is never reused, so this happens once).
                Err(Failure::Exchange(ExchangeError::WriteHead(e))) if conn.reused && empty => {
                    tracing::debug!(%upstream, error = %e, "reused connection failed; retrying on a new one");
                }
                Err(Failure::Exchange(ExchangeError::NoResponse(e)))
                    if conn.reused && empty && idempotent(&method) =>
                {
                    tracing::debug!(%upstream, error = %e, "reused connection closed; retrying on a new one");
                }
                Err(e) => {
                    if let Failure::Timeout | Failure::Exchange(ExchangeError::SendTimeout) = e {
                        metrics.timeout();
                    }
                    if !matches!(e, Failure::Exchange(ExchangeError::ClientBody(_))) {
                        self.outliers.failed(upstream);
                    }
                    return Err(e.into_proxy(upstream));
                }
            }
        }
    }

    /// An upgrade request, on a connection of its own driven by hyper's client.
    pub(crate) async fn send_upgrade(
        &self,
        upstream: &Upstream,
        req: Request<RequestBody>,
        metrics: &Metrics,
    ) -> Result<Sent, ProxyError> {
        let stream = self
            .open_timed(upstream, metrics, self.settings.get().connect_timeout)
            .await?;
        let (mut tx, conn) = self
            .upgrades
            .handshake::<_, RequestBody>(TokioIo::new(stream))
            .await
            .map_err(|e| ProxyError::Upstream {
                upstream: upstream.clone(),
                source: e.into(),
            })?;
        let name = upstream.clone();
        tokio::task::spawn_local(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(upstream = %name, error = %e, "upstream upgrade connection ended");
            }
        });
        match tokio::time::timeout(self.response_timeout(), tx.send_request(req)).await {
            Ok(Ok(response)) => Ok(Sent::Upgrade { response, conn: tx }),
            Ok(Err(e)) => Err(ProxyError::Upstream {
                upstream: upstream.clone(),
                source: e.into(),
            }),
            Err(_) => {
                metrics.timeout();
                Err(ProxyError::ResponseTimeout {
                    upstream: upstream.clone(),
                })
            }
        }
    }

    /// How long an upstream has to answer a request (the response timeout).
    pub(crate) fn response_timeout(&self) -> Duration {
        self.settings.get().response_timeout
    }

    /// Opens a new connection (resolving a DNS name first) within the connect timeout.
    async fn connect(
        &self,
        upstream: &Upstream,
        metrics: &Metrics,
        waits: Waits,
    ) -> Result<Box<Conn>, ProxyError> {
        // `connection-policy-*`: counted before it is opened; past a limit, 503 at once.
        let permit = match &waits.limits {
            Some(limits) => Some(self.outliers.permit(upstream, limits).map_err(|why| {
                ProxyError::BackendUnavailable {
                    reason: Arc::from(why),
                }
            })?),
            None => None,
        };
        let stream = self.open_timed(upstream, metrics, waits.connect).await?;
        // Boxed once per connection: requests move it around several times.
        let mut conn = Box::new(Conn::new(stream, upstream.clone(), waits.read));
        conn.permit = permit;
        Ok(conn)
    }

    async fn open_timed(
        &self,
        upstream: &Upstream,
        metrics: &Metrics,
        connect_timeout: Duration,
    ) -> Result<TcpStream, ProxyError> {
        match tokio::time::timeout(connect_timeout, open(upstream)).await {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(e)) => {
                metrics.connect_error();
                Err(e)
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

    /// The most recently pooled connection to `upstream` that is still open.
    fn checkout(&self, upstream: &Upstream) -> Option<Box<Conn>> {
        let mut idle = self.idle.borrow_mut();
        let list = idle.get_mut(upstream)?;
        while let Some(mut entry) = list.pop_back() {
            if entry.conn.is_usable() {
                return Some(entry.conn);
            }
        }
        None
    }

    /// Returns a connection whose exchange is complete; it is closed instead when it has
    /// carried its `upstream-keepalive-requests`.
    pub(crate) fn put(&self, conn: Box<Conn>) {
        self.put_at(conn, Instant::now());
    }

    /// [`Self::put`] with the time the exchange completed, read by the caller.
    pub(crate) fn put_at(&self, conn: Box<Conn>, now: Instant) {
        let s = self.settings.get();
        let own = conn.permit.as_ref().map_or(u32::MAX, |p| p.max_requests);
        if s.max_idle == 0 || conn.requests >= s.max_requests.min(own) {
            return;
        }
        let mut idle = self.idle.borrow_mut();
        let list = idle.entry(conn.upstream.clone()).or_default();
        if list.len() >= s.max_idle {
            list.pop_front();
        }
        list.push_back(Idle { conn, since: now });
    }

    /// Drops pooled connections that the upstream closed or that idled too long.
    pub(crate) fn sweep(&self) {
        self.conns.sweep();
        let timeout = self.settings.get().idle_timeout;
        self.idle.borrow_mut().retain(|_, list| {
            list.retain_mut(|i| i.since.elapsed() < timeout && i.conn.is_usable());
            !list.is_empty()
        });
    }
}

/// Methods RFC 9110 section 9.2.2 calls idempotent: safe to send twice.
pub(crate) fn idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

enum Failure {
    Exchange(ExchangeError),
    Timeout,
}

impl Failure {
    fn into_proxy(self, upstream: &Upstream) -> ProxyError {
        let upstream = upstream.clone();
        match self {
            Failure::Timeout => ProxyError::ResponseTimeout { upstream },
            Failure::Exchange(e) => match e {
                ExchangeError::WriteHead(e)
                | ExchangeError::Body(e)
                | ExchangeError::NoResponse(e)
                | ExchangeError::Read(e) => ProxyError::Upstream {
                    upstream,
                    source: e.into(),
                },
                ExchangeError::ClientBody(e) => client_body_failure(&e),
                // `proxy-send-timeout`: 504, as nginx answers it.
                ExchangeError::SendTimeout => ProxyError::ResponseTimeout { upstream },
                ExchangeError::BadResponse(reason) => ProxyError::BadResponse { upstream, reason },
            },
        }
    }
}

/// Why the client's request body could not be read: over its `proxy-body-size` (413), no
/// more data within `client-body-timeout` (408), or a broken body (400).
pub(crate) fn client_body_failure(e: &std::io::Error) -> ProxyError {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        if let Some(too_large) = err.downcast_ref::<crate::body::BodyTooLarge>() {
            return ProxyError::PayloadTooLarge {
                limit: too_large.limit,
            };
        }
        next = match err.downcast_ref::<std::io::Error>() {
            Some(io) if io.kind() == std::io::ErrorKind::TimedOut => {
                return ProxyError::RequestTimeout;
            }
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    tracing::debug!(error = %e, "the client's request body failed");
    ProxyError::BadRequest {
        reason: "the request body could not be read",
    }
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
