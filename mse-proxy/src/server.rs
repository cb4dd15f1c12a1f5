//! The listeners: thread-per-core workers, each with a single-threaded runtime and its own
//! `SO_REUSEPORT` sockets, serving HTTP/1.1, h2c and TLS (HTTP/1.1 or HTTP/2 by ALPN).
//! HTTP/1.1 is served by the gateway's own server ([`crate::http1`]), HTTP/2 by
//! hyper's.

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http2;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::LocalSet;

use crate::body::RequestBody;
use crate::config::ProxyConfig;
use crate::error::ProxyError;
use crate::http1::{self, Ended, Limits, Prefixed};
use crate::log::LogFormat;
use crate::policy::compress::Compression;
use crate::proxy::{self, ConnCtx, Worker};
use crate::proxy_protocol;
use crate::settings::H2Settings;
use crate::table::SharedTable;
use crate::upstream::Pool;

/// Starts the data plane. See [`Gateway::start`].
#[derive(Debug)]
#[non_exhaustive]
pub struct Gateway;

/// A running gateway: its bound addresses, and its shutdown.
///
/// Dropping the handle starts a graceful shutdown without waiting for it.
#[derive(Debug)]
pub struct GatewayHandle {
    http_addr: Option<SocketAddr>,
    https_addr: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    exited: Vec<oneshot::Receiver<()>>,
}

/// Runs tasks on the worker's own thread: nothing the proxy spawns needs to be `Send`.
#[derive(Clone, Copy, Debug)]
struct LocalExec;

impl<F> hyper::rt::Executor<F> for LocalExec
where
    F: Future + 'static,
{
    fn execute(&self, fut: F) {
        tokio::task::spawn_local(fut);
    }
}

/// One worker's listeners and connection settings.
struct Listeners {
    http: Option<(std::net::TcpListener, u16)>,
    https: Option<(std::net::TcpListener, u16)>,
}

/// What every connection of a worker is served with. Its limits and timeouts come from
/// the table being served when it is accepted ([`crate::settings::Settings`]).
struct Servers {
    /// HTTP/2: after the preface on either port, or after ALPN `h2`; each connection's
    /// limits are set on a copy.
    h2: http2::Builder<LocalExec>,
    /// Whether the TLS listener is served.
    tls: bool,
}

// === impl Gateway ===

impl Gateway {
    /// Binds the listeners and starts `config.workers` worker threads serving `table`.
    ///
    /// Every listener is bound before this returns, so connections can be made at once to
    /// [`GatewayHandle::http_addr`] and [`GatewayHandle::https_addr`].
    pub fn start(config: ProxyConfig, table: SharedTable) -> Result<GatewayHandle, ProxyError> {
        config.validate()?;
        table.set_defaults(&config);
        let tls = config.https_addr.is_some();
        let http = config
            .http_addr
            .map(|a| bind_group(a, config.workers))
            .transpose()?;
        let https = config
            .https_addr
            .map(|a| bind_group(a, config.workers))
            .transpose()?;
        let http_addr = http.as_ref().map(|(addr, _)| *addr);
        let https_addr = https.as_ref().map(|(addr, _)| *addr);
        let mut http = http.map(|(_, l)| l.into_iter());
        let mut https = https.map(|(_, l)| l.into_iter());

        let (shutdown, _) = watch::channel(false);
        let mut handle = GatewayHandle {
            http_addr,
            https_addr,
            shutdown,
            exited: Vec::new(),
        };
        let config = Arc::new(config);
        for index in 0..config.workers {
            let listeners = Listeners {
                http: http
                    .as_mut()
                    .and_then(Iterator::next)
                    .zip(http_addr.map(|a| a.port())),
                https: https
                    .as_mut()
                    .and_then(Iterator::next)
                    .zip(https_addr.map(|a| a.port())),
            };
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|source| ProxyError::Worker { index, source })?;
            let (exited_tx, exited_rx) = oneshot::channel();
            let shutdown = handle.shutdown.subscribe();
            let (config, table) = (Arc::clone(&config), table.clone());
            std::thread::Builder::new()
                .name(format!("mse-worker-{index}"))
                .spawn(move || {
                    // Dropped last, once the runtime and every socket are gone.
                    let _exited = exited_tx;
                    let local = LocalSet::new();
                    local.block_on(
                        &runtime,
                        run_worker(config, table, tls, listeners, shutdown),
                    );
                    drop(local);
                    drop(runtime);
                })
                .map_err(|source| ProxyError::Worker { index, source })?;
            handle.exited.push(exited_rx);
        }
        tracing::info!(
            ?http_addr,
            ?https_addr,
            workers = config.workers,
            "gateway started"
        );
        Ok(handle)
    }
}

// === impl GatewayHandle ===

impl GatewayHandle {
    /// The address of the plain listener, with the port actually bound.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// The address of the TLS listener, with the port actually bound.
    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.https_addr
    }

    /// Starts a graceful shutdown and returns at once: the listeners close, idle
    /// connections close, in-flight requests and upgraded connections get
    /// [`crate::Timeouts::shutdown_grace`] to finish.
    pub fn begin_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// Waits until every worker has stopped (after a shutdown began, or a worker died).
    pub async fn wait(&mut self) {
        for exited in self.exited.drain(..) {
            let _ = exited.await;
        }
    }

    /// Shuts down gracefully and waits until every worker has stopped.
    pub async fn shutdown(mut self) {
        self.begin_shutdown();
        self.wait().await;
    }
}

impl Drop for GatewayHandle {
    fn drop(&mut self) {
        self.begin_shutdown();
    }
}

/// Binds `workers` listening sockets to one address with `SO_REUSEPORT`, so the kernel
/// spreads connections over the workers. Port 0 is resolved by the first bind.
fn bind_group(
    addr: SocketAddr,
    workers: usize,
) -> Result<(SocketAddr, Vec<std::net::TcpListener>), ProxyError> {
    let first = bind_one(addr)?;
    let bound = first
        .local_addr()
        .map_err(|source| ProxyError::Bind { addr, source })?;
    let mut all = vec![first];
    for _ in 1..workers {
        all.push(bind_one(bound)?);
    }
    Ok((bound, all))
}

fn bind_one(addr: SocketAddr) -> Result<std::net::TcpListener, ProxyError> {
    let bind = || -> io::Result<std::net::TcpListener> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        socket.set_tcp_nodelay(true)?;
        socket.set_nonblocking(true)?;
        socket.bind(&addr.into())?;
        socket.listen(4096)?;
        Ok(socket.into())
    };
    bind().map_err(|source| ProxyError::Bind { addr, source })
}

// === worker ===

async fn run_worker(
    config: Arc<ProxyConfig>,
    table: SharedTable,
    tls: bool,
    listeners: Listeners,
    mut shutdown: watch::Receiver<bool>,
) {
    let t = config.timeouts;
    let (live, _) = watch::channel(());
    let pool = Pool::new(table.load().settings(), Arc::clone(table.outliers()));
    let worker = Rc::new(Worker {
        metrics: Arc::clone(table.metrics()),
        table,
        pool,
        steps: config.steps.clone(),
        live,
        stop: http1::Stop::default(),
        auth_cache: crate::policy::basic_auth::AuthCache::new(),
        auth_tls: crate::policy::auth_tls::AuthTls::new(config.auth_url_roots.clone()),
        budget: crate::policy::retry::Budget::default(),
        auth_answers: crate::policy::remembered::Remembered::new(
            crate::policy::external_auth::ANSWERS,
        ),
        open: Cell::new(0),
        full: Cell::new(false),
        stats: crate::stats::WorkerStats::default(),
        log: crate::log_writer::LogBuffer::new(config.access_log_sink.clone()),
        ids: crate::log_writer::RequestIds::new(),
        last_forward: crate::forwarded::LastForward::default(),
    });
    // Scrapes ask the worker for a copy of its counters; access log lines are written
    // out at least once a second.
    let books = {
        let worker = Rc::clone(&worker);
        let mut asks = worker.metrics.add_worker();
        tokio::task::spawn_local(async move {
            let mut tick = tokio::time::interval(crate::log_writer::FLUSH_EVERY);
            loop {
                tokio::select! {
                    ask = asks.recv() => match ask {
                        Some(reply) => {
                            let _ = reply.send(worker.stats.snapshot());
                        }
                        None => std::future::pending().await,
                    },
                    _ = tick.tick() => worker.log.flush(),
                }
            }
        })
    };
    let servers = Rc::new(servers(tls));
    let to_tokio = |l: Option<(std::net::TcpListener, u16)>| match l {
        Some((l, port)) => match TcpListener::from_std(l) {
            Ok(l) => Some((l, port)),
            Err(e) => {
                tracing::error!(error = %e, "cannot register a listener with the runtime");
                None
            }
        },
        None => None,
    };
    let http = to_tokio(listeners.http);
    let https = to_tokio(listeners.https);

    let sweeper = {
        let worker = Rc::clone(&worker);
        tokio::task::spawn_local(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tick.tick().await;
                worker.pool.sweep();
            }
        })
    };

    let graceful = GracefulShutdown::new();
    loop {
        tokio::select! {
            biased;
            _ = shutdown.wait_for(|stop| *stop) => break,
            accepted = accept(http.as_ref()) => {
                if let Some((stream, peer, port)) = accepted {
                    serve_plain(&worker, &servers, &graceful, stream, peer, port);
                }
            }
            accepted = accept(https.as_ref()) => {
                if let Some((stream, peer, port)) = accepted {
                    serve_tls(&worker, &servers, &graceful, stream, peer, port);
                }
            }
        }
    }
    // Stop accepting first, then drain.
    drop(http);
    drop(https);
    sweeper.abort();
    worker.stop.stop();
    let drained = tokio::time::timeout(t.shutdown_grace, async {
        graceful.shutdown().await;
        worker.live.closed().await;
    })
    .await;
    if drained.is_err() {
        tracing::warn!(grace = ?t.shutdown_grace, "shutdown grace period over; closing the remaining connections");
    }
    books.abort();
    worker.log.flush();
}

fn servers(tls: bool) -> Servers {
    let mut h2 = http2::Builder::new(LocalExec);
    h2.timer(TokioTimer::new()).enable_connect_protocol();
    Servers { h2, tls }
}

/// The settings a connection accepted now is served with.
struct Accepted {
    h1: Limits,
    h2: H2Settings,
    /// The access log format, `None` when the log is off.
    access_log: Option<Arc<LogFormat>>,
    /// Response compression, `None` when it is off.
    compression: Option<Arc<Compression>>,
    /// `generate-request-id`.
    generate_ids: bool,
    /// Tracing, `None` when it is off.
    tracing: Option<Arc<crate::otel::Tracer>>,
    /// `use-proxy-protocol`: the connection opens with a PROXY protocol header.
    proxy_protocol: bool,
    max_connections: usize,
}

/// One client connection counted against the worker's `max-worker-connections` for as
/// long as its task lives.
struct ConnSlot(Rc<Worker>);

impl ConnSlot {
    /// A slot for a connection just accepted, unless the worker has as many open as it
    /// may: the connection is then closed at once (as nginx does when it has no free
    /// connection).
    fn take(worker: &Rc<Worker>, max: usize) -> Option<Self> {
        let open = worker.open.get();
        if open >= max {
            if !worker.full.replace(true) {
                tracing::warn!(
                    limit = max,
                    "max-worker-connections reached; closing new connections until some end"
                );
            }
            return None;
        }
        worker.full.set(false);
        worker.open.set(open + 1);
        Some(Self(Rc::clone(worker)))
    }
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        self.0.open.set(self.0.open.get().saturating_sub(1));
    }
}

impl Accepted {
    fn now(worker: &Worker) -> Self {
        let table = worker.table.load();
        let s = table.settings();
        Self {
            h1: s.conn,
            h2: s.h2,
            access_log: s.access_log.then(|| Arc::clone(&s.log_format)),
            compression: s.compression.clone(),
            generate_ids: s.generate_request_id,
            tracing: s.tracing.clone(),
            proxy_protocol: s.proxy_protocol,
            max_connections: s.max_connections,
        }
    }
}

/// Accepts one connection; never resolves when there is no listener. Accept errors
/// (out of file descriptors, aborted handshakes) are logged and paced, never fatal.
async fn accept(listener: Option<&(TcpListener, u16)>) -> Option<(TcpStream, SocketAddr, u16)> {
    let Some((listener, port)) = listener else {
        return std::future::pending().await;
    };
    match listener.accept().await {
        // No TCP_NODELAY here: the listening socket has it, and Linux gives it to every
        // socket the listener accepts, so setting it again is one system call per
        // connection for nothing (a test below checks the inheritance).
        Ok((stream, peer)) => Some((stream, peer, *port)),
        Err(e) => {
            tracing::warn!(error = %e, "accept failed");
            if !matches!(
                e.kind(),
                io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::Interrupted
            ) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            None
        }
    }
}

fn serve_plain(
    worker: &Rc<Worker>,
    servers: &Rc<Servers>,
    graceful: &GracefulShutdown,
    stream: TcpStream,
    peer: SocketAddr,
    port: u16,
) {
    let accepted = Accepted::now(worker);
    let Some(slot) = ConnSlot::take(worker, accepted.max_connections) else {
        return;
    };
    worker.metrics.connection_accepted();
    let worker = Rc::clone(worker);
    let servers = Rc::clone(servers);
    let watcher = graceful.watcher();
    if accepted.proxy_protocol {
        tokio::task::spawn_local(Box::pin(async move {
            let _slot = slot;
            let Some((io, peer)) = proxy_header(stream, peer, &accepted).await else {
                return;
            };
            let cx = Rc::new(
                ConnCtx::new(worker, peer, false, port, accepted.access_log.clone())
                    .with_compression(accepted.compression.clone())
                    .with_ids(accepted.generate_ids, accepted.tracing.clone()),
            );
            serve_h1(cx, &servers, &accepted, watcher, Box::new(io)).await;
        }));
        return;
    }
    let cx = Rc::new(
        ConnCtx::new(worker, peer, false, port, accepted.access_log.clone())
            .with_compression(accepted.compression.clone())
            .with_ids(accepted.generate_ids, accepted.tracing.clone()),
    );
    // The connection's future (every state of a request's handling) is several KiB: a
    // task holding it inline copies it whole as tokio stores and moves it, about 2,000
    // instructions per connection. Boxed once here, the task only holds a pointer.
    tokio::task::spawn_local(async move {
        Box::pin(serve_h1(cx, &servers, &accepted, watcher, Box::new(stream))).await;
        drop(slot);
    });
}

/// With `use-proxy-protocol`: the connection's PROXY protocol header, read within the
/// client header timeout. Returns the socket (with what was read after the header in
/// front) and the client address the header names (the socket's peer for a `LOCAL` or
/// `UNKNOWN` header); `None` closes the connection.
async fn proxy_header(
    mut stream: TcpStream,
    peer: SocketAddr,
    accepted: &Accepted,
) -> Option<(Prefixed, SocketAddr)> {
    match proxy_protocol::read_header(&mut stream, accepted.h1.header_read).await {
        Ok(h) => Some((
            Prefixed::with_prefix(h.rest, Box::new(stream)),
            h.source.unwrap_or(peer),
        )),
        Err(e) => {
            tracing::debug!(%peer, error = %e, "connection closed: no valid PROXY protocol header");
            None
        }
    }
}

fn serve_tls(
    worker: &Rc<Worker>,
    servers: &Rc<Servers>,
    graceful: &GracefulShutdown,
    stream: TcpStream,
    peer: SocketAddr,
    port: u16,
) {
    if !servers.tls {
        return;
    }
    let accepted = Accepted::now(worker);
    let Some(slot) = ConnSlot::take(worker, accepted.max_connections) else {
        return;
    };
    worker.metrics.connection_accepted();
    let worker = Rc::clone(worker);
    let servers = Rc::clone(servers);
    let watcher = graceful.watcher();
    // Boxed for the same reason as the plain connection's future.
    tokio::task::spawn_local(Box::pin(async move {
        let _slot = slot;
        let tls = TlsConn {
            worker,
            servers,
            accepted,
            watcher,
            port,
        };
        if tls.accepted.proxy_protocol {
            // The PROXY protocol header comes before the TLS handshake.
            if let Some((io, peer)) = proxy_header(stream, peer, &tls.accepted).await {
                tls.serve(io, peer).await;
            }
        } else {
            tls.serve(stream, peer).await;
        }
    }));
}

/// What a TLS connection is served with, until its handshake is done.
struct TlsConn {
    worker: Rc<Worker>,
    servers: Rc<Servers>,
    accepted: Accepted,
    watcher: Watcher,
    port: u16,
}

impl TlsConn {
    /// The handshake within the client header timeout, then HTTP/2 (ALPN `h2`) or
    /// HTTP/1.1 for a client at `peer`.
    async fn serve<S: http1::Io + 'static>(self, stream: S, peer: SocketAddr) {
        let Self {
            worker,
            servers,
            accepted,
            watcher,
            port,
        } = self;
        let handshake = accepted.h1.header_read;
        let accept = crate::tls::accept(&worker.table, stream);
        let (stream, conn_tls) = match tokio::time::timeout(handshake, accept).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                worker.metrics.tls_handshake_error();
                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                worker.metrics.tls_handshake_error();
                tracing::debug!(%peer, "TLS handshake timed out");
                return;
            }
        };
        let cx = Rc::new(
            ConnCtx::new(worker, peer, true, port, accepted.access_log.clone())
                .with_tls(conn_tls)
                .with_compression(accepted.compression.clone())
                .with_ids(accepted.generate_ids, accepted.tracing.clone()),
        );
        if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
            // Boxed, as in `serve_h1`.
            let h2 = serve_h2(
                cx,
                &servers,
                &accepted,
                watcher,
                Prefixed::new(Box::new(stream)),
            );
            Box::pin(h2).await;
        } else {
            serve_h1(cx, &servers, &accepted, watcher, Box::new(stream)).await;
        }
    }
}

/// HTTP/1.1 on a client connection, or HTTP/2 if it opens with the preface.
async fn serve_h1(
    cx: Rc<ConnCtx>,
    servers: &Servers,
    accepted: &Accepted,
    watcher: Watcher,
    io: Box<dyn http1::Io>,
) {
    // The watcher is held to the end: graceful shutdown waits for it.
    match http1::serve(Rc::clone(&cx), io, accepted.h1).await {
        Ended::Closed => drop(watcher),
        // Boxed: HTTP/2's connection state is large, and every connection's future would
        // carry its room, copied as the future is boxed at accept.
        Ended::H2(io) => Box::pin(serve_h2(cx, servers, accepted, watcher, io)).await,
    }
}

async fn serve_h2(
    cx: Rc<ConnCtx>,
    servers: &Servers,
    accepted: &Accepted,
    watcher: Watcher,
    io: Prefixed,
) {
    let peer = cx.peer;
    let service = service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
        // WebSocket over HTTP/2 (rare): proxied as an HTTP/1.1 upgrade.
        let connect = crate::websocket_h2::accept(&mut req).map(|c| (c, Rc::clone(&cx)));
        let answer = proxy::handle(Rc::clone(&cx), Box::new(req.map(RequestBody::H2)));
        async move {
            // hyper writes the header map only: headers kept as received go into it.
            let Ok(mut response) = answer.await;
            if let Some((connect, cx)) = connect {
                connect.answer(&mut response, &cx.worker.live, cx.peer);
            }
            let mut headers = std::mem::take(response.headers_mut());
            response.body_mut().headers_into_map(&mut headers);
            *response.headers_mut() = headers;
            Ok::<_, std::convert::Infallible>(response)
        }
    });
    let s = accepted.h2;
    let mut h2 = servers.h2.clone();
    h2.max_header_list_size(s.max_header_list)
        .max_concurrent_streams(s.max_streams);
    if let Some(w) = s.stream_window {
        h2.initial_stream_window_size(w);
    }
    if let Some(w) = s.connection_window {
        h2.initial_connection_window_size(w);
    }
    let conn = h2.serve_connection(TokioIo::new(io), service);
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(%peer, error = %e, "client connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepted_connections_inherit_nodelay_from_the_listener() -> io::Result<()> {
        let std_listener = bind_one(SocketAddr::from(([127, 0, 0, 1], 0)))
            .map_err(|e| io::Error::other(e.to_string()))?;
        let listener = TcpListener::from_std(std_listener)?;
        let client = TcpStream::connect(listener.local_addr()?).await?;
        let (accepted, _) = listener.accept().await?;
        assert!(
            accepted.nodelay()?,
            "the accepted socket must have TCP_NODELAY"
        );
        drop(client);
        Ok(())
    }
}
