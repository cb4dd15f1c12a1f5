//! An echo backend: a small real HTTP server that answers every request with what it
//! received, as JSON. Used by the demo and by the end-to-end tests.
//!
//! The answer is `{service, method, path, query, host, version, headers, peer, body,
//! body_bytes}` with the header `x-echo-service: <service>`. Request headers steer it:
//!
//! | header | effect |
//! |---|---|
//! | `x-echo-delay-ms: N` | answer after N milliseconds |
//! | `x-echo-status: N` | answer with status N |
//! | `x-echo-body-bytes: N` | answer with N bytes of `x` instead of the JSON |
//! | `x-echo-chunks: N` | stream the JSON in N chunks, without `Content-Length` (chunked) |
//! | `x-echo-location: V` | answer with `Location: V` |
//! | `x-echo-refresh: V` | answer with `Refresh: V` |
//! | `x-echo-set-cookie: V` | answer with `Set-Cookie: V` |

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The response header naming the echo service that answered.
pub const SERVICE_HEADER: HeaderName = HeaderName::from_static("x-echo-service");

/// Options of an [`EchoServer`].
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct EchoOptions {
    /// Close a keep-alive connection that sends no new request for this long (without
    /// telling the client): lets tests exercise pooled connections the upstream closed.
    pub idle_timeout: Option<Duration>,
}

/// A running echo server; stops when dropped.
#[derive(Debug)]
pub struct EchoServer {
    addr: SocketAddr,
    state: Arc<EchoState>,
    task: JoinHandle<()>,
}

#[derive(Debug)]
struct EchoState {
    service: Arc<str>,
    requests: AtomicU64,
    connections: AtomicU64,
    closed: AtomicU64,
}

// === impl EchoServer ===

impl EchoServer {
    /// Binds `addr` (port 0 picks one) and serves HTTP/1.1 and h2c on the current tokio
    /// runtime, answering as `service`.
    pub async fn bind(addr: SocketAddr, service: &str) -> io::Result<Self> {
        Self::bind_with(addr, service, EchoOptions::default()).await
    }

    /// [`EchoServer::bind`] with options.
    pub async fn bind_with(
        addr: SocketAddr,
        service: &str,
        options: EchoOptions,
    ) -> io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(EchoState {
            service: Arc::from(service),
            requests: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            closed: AtomicU64::new(0),
        });
        let mut builder = auto::Builder::new(TokioExecutor::new());
        if let Some(idle) = options.idle_timeout {
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(idle);
        }
        let task = tokio::spawn(accept_loop(listener, builder, Arc::clone(&state)));
        Ok(Self { addr, state, task })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The service name it answers as.
    pub fn service(&self) -> &str {
        &self.state.service
    }

    /// Requests answered so far.
    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::Relaxed)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.state.connections.load(Ordering::Relaxed)
    }

    /// Connections that have ended so far, closed by either side.
    pub fn closed_connections(&self) -> u64 {
        self.state.closed.load(Ordering::Relaxed)
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    builder: auto::Builder<TokioExecutor>,
    state: Arc<EchoState>,
) {
    let builder = Arc::new(builder);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::debug!(error = %e, "echo accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        state.connections.fetch_add(1, Ordering::Relaxed);
        let state = Arc::clone(&state);
        let builder = Arc::clone(&builder);
        tokio::spawn(async move {
            let served = Arc::clone(&state);
            let service = service_fn(move |req| {
                let state = Arc::clone(&served);
                async move { Ok::<_, Infallible>(echo(&state, peer, req).await) }
            });
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
            state.closed.fetch_add(1, Ordering::Relaxed);
        });
    }
}

type EchoBody = UnsyncBoxBody<Bytes, Infallible>;

fn full(data: Bytes) -> EchoBody {
    Full::new(data).boxed_unsync()
}

async fn echo(state: &EchoState, peer: SocketAddr, req: Request<Incoming>) -> Response<EchoBody> {
    state.requests.fetch_add(1, Ordering::Relaxed);
    let number = |name: &str| -> Option<u64> {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok())
    };
    let delay = number("x-echo-delay-ms");
    let status = number("x-echo-status")
        .and_then(|s| u16::try_from(s).ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    let body_bytes = number("x-echo-body-bytes");
    let chunks = number("x-echo-chunks").map(|n| n.clamp(1, 1000) as usize);
    let location = req.headers().get("x-echo-location").cloned();
    let refresh = req.headers().get("x-echo-refresh").cloned();
    let cookie = req.headers().get("x-echo-set-cookie").cloned();

    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in req.headers() {
        let value = String::from_utf8_lossy(value.as_bytes());
        headers
            .entry(name.as_str().to_owned())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert_with(|| value.into_owned());
    }
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    if let Some(ms) = delay {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let mut response = match body_bytes {
        Some(n) => {
            let n = usize::try_from(n).unwrap_or(0);
            Response::new(full(Bytes::from(vec![b'x'; n])))
        }
        None => {
            let value = serde_json::json!({
                "service": &*state.service,
                "method": parts.method.as_str(),
                "path": parts.uri.path(),
                "query": parts.uri.query(),
                "host": parts.headers.get(http::header::HOST).and_then(|h| h.to_str().ok()),
                "version": format!("{:?}", parts.version),
                "headers": headers,
                "peer": peer.to_string(),
                "body": String::from_utf8_lossy(&body),
                "body_bytes": body.len(),
            });
            let json = Bytes::from(value.to_string());
            let body = match chunks {
                Some(n) => {
                    let size = json.len().div_ceil(n).max(1);
                    let pieces: Vec<Result<http_body::Frame<Bytes>, Infallible>> = (0..json.len())
                        .step_by(size)
                        .map(|i| {
                            Ok(http_body::Frame::data(
                                json.slice(i..(i + size).min(json.len())),
                            ))
                        })
                        .collect();
                    StreamBody::new(futures_util::stream::iter(pieces)).boxed_unsync()
                }
                None => full(json),
            };
            let mut r = Response::new(body);
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            r
        }
    };
    *response.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(&state.service) {
        response.headers_mut().insert(SERVICE_HEADER, v);
    }
    if let Some(v) = location {
        response.headers_mut().insert(http::header::LOCATION, v);
    }
    if let Some(v) = refresh {
        response
            .headers_mut()
            .insert(HeaderName::from_static("refresh"), v);
    }
    if let Some(v) = cookie {
        response.headers_mut().insert(http::header::SET_COOKIE, v);
    }
    response
}
