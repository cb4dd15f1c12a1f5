//! [`ProxyConfig`]: listeners, workers, timeouts and limits of the data plane.
//!
//! The timeouts and limits that the gateway-wide configuration also has
//! ([`mse_router::global::GlobalConfig`]: `keep-alive`, `proxy-read-timeout`, ...) are the
//! data plane's defaults: a setting the route table's global configuration sets (from a
//! ConfigMap, an explicit flag or an `MseIngressConfig`) replaces them for the requests and
//! connections that start after the table is published. Their default values are the global
//! configuration's defaults.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mse_router::global::GlobalConfig;

use crate::error::ProxyError;
use crate::phases::Steps;

/// The smallest header limit the HTTP/1 parser accepts (its minimum read buffer).
const MIN_HEADER_SIZE: usize = 8 * 1024;

/// How the gateway listens and proxies. Build it from [`ProxyConfig::default`] and set
/// the fields you need.
///
/// ```
/// let mut config = mse_proxy::ProxyConfig::default();
/// config.http_addr = Some("127.0.0.1:0".parse().unwrap());
/// config.workers = 2;
/// config.access_log = false;
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ProxyConfig {
    /// The plain listener (HTTP/1.1 and h2c with prior knowledge). Port 0 picks a free
    /// port, the same for every worker; [`crate::GatewayHandle::http_addr`] tells which.
    pub http_addr: Option<SocketAddr>,
    /// The TLS listener (HTTP/1.1 and HTTP/2 by ALPN, certificate by SNI).
    pub https_addr: Option<SocketAddr>,
    /// Worker threads, each with its own single-threaded runtime, listening sockets
    /// (`SO_REUSEPORT`) and upstream connection pool. Default: the cores this process may
    /// run on.
    pub workers: usize,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// The largest request head accepted, in bytes (HTTP/1 request line and headers, or
    /// the HTTP/2 header list). Larger requests get 431. At least 8 KiB; default 32 KiB,
    /// like ingress-nginx's `large-client-header-buffers: 4 8k`.
    pub max_header_size: usize,
    /// The longest HTTP/1.1 request target accepted, in bytes; longer ones get 414. At
    /// most `max_header_size`; default 8 KiB, like nginx's request line limit of one
    /// `large-client-header-buffers` buffer.
    pub max_request_target: usize,
    /// Write one access log line per request (`disable-access-log`).
    pub access_log: bool,
    /// Where access log lines go (`--access-log-path`); default: standard output.
    pub access_log_sink: crate::AccessLogSink,
    /// Access log lines as JSON objects instead of ingress-nginx's `upstream` line, unless
    /// the global configuration's `log-format-upstream` gives a format.
    pub access_log_json: bool,
    /// Idle keep-alive connections kept per upstream address and worker (ingress-nginx's
    /// `upstream-keepalive-connections` is 320).
    pub upstream_max_idle: usize,
    /// Requests sent on one upstream connection before it is closed
    /// (`upstream-keepalive-requests`, 10000).
    pub upstream_keepalive_requests: u32,
    /// Requests served on one HTTP/1.1 client connection (`keep-alive-requests`, 1000); the
    /// last answer says `Connection: close`.
    pub keep_alive_requests: u32,
    /// Concurrent HTTP/2 streams per client connection.
    pub max_concurrent_streams: u32,
    /// Client connections open at once per worker (`max-worker-connections`, 16384); a
    /// connection accepted past the limit is closed at once. Zero: no limit.
    pub max_worker_connections: u32,
    /// Steps of the embedding application, run in the request phases of every request
    /// (see [`crate::phases`]). Default: none.
    pub steps: Steps,
    /// The certificate authorities that verify an `https` `auth-url`; `None` (the
    /// default): the platform's trust store.
    pub auth_url_roots: Option<crate::AuthUrlRoots>,
    /// The secret the affinity cookies (`affinity: cookie`) are keyed with. Give every
    /// replica the same one, so that each honours the cookies the others set. Default:
    /// drawn at random when the gateway starts.
    pub affinity_key: Option<AffinityKey>,
    /// How `rate-limit` and `concurrency-limit` use the Redis the global configuration
    /// names (`--redis-url`, `redis-url`).
    pub shared_limits: crate::SharedLimitConfig,
}

/// A secret of at least [`AffinityKey::MIN_LEN`] bytes that keys the affinity cookies:
/// a cookie holds an HMAC-based token of its endpoint, never the endpoint's address. Its
/// `Debug` does not show it.
#[derive(Clone)]
pub struct AffinityKey(Arc<[u8]>);

impl AffinityKey {
    /// The shortest secret accepted, in bytes.
    pub const MIN_LEN: usize = 16;

    /// The key `secret`; an error when it is shorter than [`Self::MIN_LEN`].
    pub fn new(secret: &[u8]) -> Result<Self, ProxyError> {
        if secret.len() < Self::MIN_LEN {
            return Err(ProxyError::Config {
                reason: format!(
                    "the affinity key must have at least {} bytes, got {}",
                    Self::MIN_LEN,
                    secret.len()
                ),
            });
        }
        Ok(Self(Arc::from(secret)))
    }

    /// The secret.
    pub(crate) fn secret(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for AffinityKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AffinityKey(..)")
    }
}

/// Timeouts of the data plane. Defaults follow nginx where it has an equivalent.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct Timeouts {
    /// Time a client has to send a whole request head, from its first byte (from the
    /// connection's start for the first request), and to finish the TLS handshake
    /// (`client-header-timeout`). Default 10 s.
    pub header_read: Duration,
    /// How long an idle HTTP/1.1 keep-alive connection waits for the first byte of its
    /// next request (`keep-alive`, 75 s). Zero: one request per connection.
    pub keep_alive: Duration,
    /// The longest wait between two reads of an HTTP/1.1 request body
    /// (`client-body-timeout`, 60 s). Past it the request gets 408.
    pub client_body: Duration,
    /// Time to connect to an upstream, DNS lookup included (`proxy_connect_timeout`,
    /// 5 s). Past it the client gets 504.
    pub upstream_connect: Duration,
    /// Time from sending a request to an upstream until its response head arrives
    /// (`proxy_read_timeout`, 60 s). Past it the client gets 504.
    pub upstream_response: Duration,
    /// The longest wait between two successful reads of a response body from an upstream
    /// (ingress-nginx's `proxy-read-timeout`, 60 s). Past it both connections close and
    /// the client sees the body cut short.
    pub upstream_read: Duration,
    /// The longest wait between two successful writes to an HTTP/1.1 client that is not
    /// taking the response (nginx's `send_timeout`, 60 s). Past it both connections close.
    pub client_write: Duration,
    /// How long an idle upstream keep-alive connection is kept
    /// (`upstream-keepalive-timeout`, 60 s).
    pub upstream_idle: Duration,
    /// How long a graceful shutdown lets in-flight requests and tunnels finish before
    /// the remaining connections are closed. Default 30 s.
    pub shutdown_grace: Duration,
}

// === impl ProxyConfig ===

impl Default for ProxyConfig {
    fn default() -> Self {
        let g = GlobalConfig::default();
        Self {
            http_addr: Some(SocketAddr::from(([0, 0, 0, 0], 80))),
            https_addr: Some(SocketAddr::from(([0, 0, 0, 0], 443))),
            workers: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            timeouts: Timeouts::default(),
            max_header_size: g.client.max_header_size as usize,
            max_request_target: g.client.max_request_target as usize,
            access_log: g.logging.access_log,
            access_log_sink: crate::AccessLogSink::stdout(),
            access_log_json: false,
            upstream_max_idle: g.upstream.keepalive_connections as usize,
            upstream_keepalive_requests: g.upstream.keepalive_requests,
            keep_alive_requests: g.client.keep_alive_requests,
            max_concurrent_streams: g.client.http2_max_concurrent_streams,
            max_worker_connections: g.client.max_worker_connections,
            steps: Steps::default(),
            auth_url_roots: None,
            affinity_key: None,
            shared_limits: crate::SharedLimitConfig::default(),
        }
    }
}

impl ProxyConfig {
    /// Checks the values that would otherwise fail later.
    pub fn validate(&self) -> Result<(), ProxyError> {
        let fail = |reason: String| Err(ProxyError::Config { reason });
        if self.workers == 0 {
            return fail("workers must be at least 1".to_owned());
        }
        if self.http_addr.is_none() && self.https_addr.is_none() {
            return fail("neither http_addr nor https_addr is set".to_owned());
        }
        if self.max_header_size < MIN_HEADER_SIZE || self.max_header_size > u32::MAX as usize {
            return fail(format!(
                "max_header_size must be between {MIN_HEADER_SIZE} and {} bytes, got {}",
                u32::MAX,
                self.max_header_size
            ));
        }
        if self.max_request_target == 0 || self.max_request_target > self.max_header_size {
            return fail(format!(
                "max_request_target must be between 1 and max_header_size ({}) bytes, got {}",
                self.max_header_size, self.max_request_target
            ));
        }
        if self.max_concurrent_streams == 0 {
            return fail("max_concurrent_streams must be at least 1".to_owned());
        }
        if self.keep_alive_requests == 0 || self.upstream_keepalive_requests == 0 {
            return fail(
                "keep_alive_requests and upstream_keepalive_requests must be at least 1".to_owned(),
            );
        }
        Ok(())
    }
}

// === impl Timeouts ===

impl Default for Timeouts {
    fn default() -> Self {
        let g = GlobalConfig::default();
        Self {
            header_read: g.client.header_timeout,
            keep_alive: g.client.keep_alive,
            client_body: g.client.body_timeout,
            upstream_connect: g.upstream.connect_timeout,
            upstream_response: g.upstream.read_timeout,
            upstream_read: g.upstream.read_timeout,
            client_write: Duration::from_secs(60),
            upstream_idle: g.upstream.keepalive_timeout,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_small_header_limits_are_not() {
        let mut c = ProxyConfig::default();
        assert!(c.validate().is_ok());
        c.max_header_size = 1024;
        assert!(matches!(c.validate(), Err(ProxyError::Config { .. })));
        c.max_header_size = 8192;
        c.workers = 0;
        assert!(c.validate().is_err());
        c.workers = 1;
        c.http_addr = None;
        c.https_addr = None;
        assert!(c.validate().is_err());
    }
}
