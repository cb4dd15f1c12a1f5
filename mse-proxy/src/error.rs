//! [`ProxyError`]: every way starting the gateway or proxying one request can fail.

use std::error::Error as StdError;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use http::StatusCode;
use mse_model::ObjectKey;

use crate::upstream::Upstream;

/// Why the gateway could not start, or why one request could not be proxied.
///
/// Request errors map to the status the client gets with [`ProxyError::status`], and to who
/// is at fault with [`ProxyError::blame`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// The configuration is unusable.
    #[error("invalid proxy configuration: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },
    /// A listener socket could not be created or bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// A worker thread or its runtime could not be started.
    #[error("cannot start worker {index}")]
    Worker {
        /// The worker's index.
        index: usize,
        /// The error from the OS or tokio.
        #[source]
        source: std::io::Error,
    },
    /// TLS could not be set up (the fallback certificate or the rustls configuration).
    #[error("cannot set up TLS: {what}")]
    Tls {
        /// Which step failed.
        what: &'static str,
        /// The underlying error.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// The request is malformed (no `Host` on HTTP/1.1, two `Host` headers, a bad path).
    #[error("bad request: {reason}")]
    BadRequest {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The method is not proxied (`CONNECT`).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The client's address is refused by the gateway-wide IP lists.
    #[error("client address {ip} is not allowed")]
    Forbidden {
        /// The client's address.
        ip: std::net::IpAddr,
    },
    /// The request body is larger than the route's `proxy-body-size`.
    #[error("request body larger than {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The client stopped sending the request body (`client-body-timeout`).
    #[error("the client sent no more of the request body in time")]
    RequestTimeout,
    /// The request's host has another certificate or TLS policy than the server name the
    /// TLS connection was made for: the client must open a new connection for it.
    #[error("the request's host is not served on this TLS connection")]
    Misdirected,
    /// No route matches the request's host and path.
    #[error("no route matches the request")]
    NoRoute,
    /// The route's backend could not be resolved when the table was compiled.
    #[error("backend unavailable: {reason}")]
    BackendUnavailable {
        /// Why, as the route table says.
        reason: Arc<str>,
    },
    /// The route's Service port has no ready endpoint.
    #[error("{service} port {port} has no ready endpoint")]
    NoEndpoints {
        /// The Service.
        service: ObjectKey,
        /// The Service port.
        port: u16,
    },
    /// The DNS name of an ExternalName Service did not resolve.
    #[error("cannot resolve upstream {upstream}")]
    Resolve {
        /// The upstream name and port.
        upstream: Upstream,
        /// The resolver's error.
        #[source]
        source: std::io::Error,
    },
    /// The upstream refused or reset the connection attempt.
    #[error("cannot connect to upstream {upstream}")]
    Connect {
        /// The upstream.
        upstream: Upstream,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// Connecting to the upstream took longer than the connect timeout.
    #[error("connecting to upstream {upstream} timed out")]
    ConnectTimeout {
        /// The upstream.
        upstream: Upstream,
    },
    /// The upstream sent no response head within the response timeout.
    #[error("upstream {upstream} sent no response in time")]
    ResponseTimeout {
        /// The upstream.
        upstream: Upstream,
    },
    /// The upstream connection failed while the request was sent or the response head
    /// read (reset, closed early).
    #[error("upstream {upstream} failed")]
    Upstream {
        /// The upstream.
        upstream: Upstream,
        /// The I/O or protocol error.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// The external authentication service (`auth-url`) could not be asked: down, slow,
    /// or not reachable from here. The request fails closed.
    #[error("external authentication unavailable: {reason}")]
    AuthUnavailable {
        /// Why.
        reason: String,
    },
    /// The external authentication service answered neither 2xx, 401 nor 403; as in
    /// ingress-nginx, the request fails with 500.
    #[error("external authentication answered {status}")]
    AuthAnswer {
        /// Its status.
        status: StatusCode,
    },
    /// The upstream sent a response the gateway cannot relay.
    #[error("upstream {upstream} sent an unusable response: {reason}")]
    BadResponse {
        /// The upstream.
        upstream: Upstream,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// Who caused a request to fail, for logs and metrics (after pingora's error source).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Blame {
    /// The client sent something wrong or asked for something that does not exist.
    Client,
    /// The upstream failed or is missing.
    Upstream,
    /// The gateway itself (configuration, resources).
    Internal,
}

// === impl ProxyError ===

impl ProxyError {
    /// The status the client gets for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ProxyError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ProxyError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ProxyError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ProxyError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ProxyError::NoRoute => StatusCode::NOT_FOUND,
            ProxyError::Misdirected => StatusCode::MISDIRECTED_REQUEST,
            ProxyError::BackendUnavailable { .. }
            | ProxyError::NoEndpoints { .. }
            | ProxyError::AuthUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::AuthAnswer { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            ProxyError::Resolve { .. }
            | ProxyError::Connect { .. }
            | ProxyError::Upstream { .. }
            | ProxyError::BadResponse { .. } => StatusCode::BAD_GATEWAY,
            // nginx answers 504 when proxy_connect_timeout or proxy_read_timeout expires.
            ProxyError::ConnectTimeout { .. } | ProxyError::ResponseTimeout { .. } => {
                StatusCode::GATEWAY_TIMEOUT
            }
            ProxyError::Config { .. }
            | ProxyError::Bind { .. }
            | ProxyError::Worker { .. }
            | ProxyError::Tls { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Who is at fault.
    pub fn blame(&self) -> Blame {
        match self {
            ProxyError::BadRequest { .. }
            | ProxyError::MethodNotAllowed
            | ProxyError::NoRoute
            | ProxyError::Misdirected
            | ProxyError::Forbidden { .. }
            | ProxyError::PayloadTooLarge { .. }
            | ProxyError::RequestTimeout => Blame::Client,
            ProxyError::BackendUnavailable { .. }
            | ProxyError::NoEndpoints { .. }
            | ProxyError::Resolve { .. }
            | ProxyError::Connect { .. }
            | ProxyError::ConnectTimeout { .. }
            | ProxyError::ResponseTimeout { .. }
            | ProxyError::Upstream { .. }
            | ProxyError::BadResponse { .. }
            | ProxyError::AuthUnavailable { .. }
            | ProxyError::AuthAnswer { .. } => Blame::Upstream,
            ProxyError::Config { .. }
            | ProxyError::Bind { .. }
            | ProxyError::Worker { .. }
            | ProxyError::Tls { .. } => Blame::Internal,
        }
    }

    /// The upstream involved, when there is one.
    pub fn upstream(&self) -> Option<&Upstream> {
        match self {
            ProxyError::Resolve { upstream, .. }
            | ProxyError::Connect { upstream, .. }
            | ProxyError::ConnectTimeout { upstream }
            | ProxyError::ResponseTimeout { upstream }
            | ProxyError::Upstream { upstream, .. }
            | ProxyError::BadResponse { upstream, .. } => Some(upstream),
            _ => None,
        }
    }
}

/// Displays an error and each of its sources, `: `-separated, for one log line.
pub struct Chain<'a>(pub &'a (dyn StdError + 'static));

// === impl Chain ===

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut next = self.0.source();
        while let Some(e) = next {
            write!(f, ": {e}")?;
            next = e.source();
        }
        Ok(())
    }
}

impl fmt::Debug for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_nginx() {
        let up = Upstream::Addr(SocketAddr::from(([127, 0, 0, 1], 1)));
        assert_eq!(ProxyError::NoRoute.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            ProxyError::BackendUnavailable { reason: "x".into() }.status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let e = ProxyError::Connect {
            upstream: up.clone(),
            source: refused,
        };
        assert_eq!(e.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(e.blame(), Blame::Upstream);
        assert_eq!(
            ProxyError::ResponseTimeout {
                upstream: up.clone()
            }
            .status(),
            StatusCode::GATEWAY_TIMEOUT
        );
        assert_eq!(
            ProxyError::ConnectTimeout { upstream: up }.status(),
            StatusCode::GATEWAY_TIMEOUT
        );
        assert_eq!(
            ProxyError::BadRequest { reason: "x" }.blame(),
            Blame::Client
        );
    }

    #[test]
    fn chain_prints_every_source_once() {
        let up = Upstream::Addr(SocketAddr::from(([127, 0, 0, 1], 9)));
        let e = ProxyError::Connect {
            upstream: up,
            source: std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused"),
        };
        assert_eq!(
            Chain(&e).to_string(),
            "cannot connect to upstream 127.0.0.1:9: refused"
        );
    }
}
