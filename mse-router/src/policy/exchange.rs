//! [`ExchangePolicy`]: the timeouts and retries of the exchange phase (`timeout`,
//! `proxy-connect-timeout`, `proxy-read-timeout`, `proxy-send-timeout`, `proxy-next-upstream`,
//! `proxy-next-upstream-tries`, `proxy-next-upstream-timeout`). A route without any of
//! these keys has none: the gateway-wide timeouts apply, and only an attempt whose
//! connection did not open (nothing of the request went out) is tried again on another
//! endpoint, the data plane's default; `proxy-next-upstream: off` turns that off too.

use std::time::Duration;

use mse_annotations::{Group, IngressPolicy};

use super::{Refused, Registration, RoutePolicy};

/// The timeouts and retries, and the upstream connection limits (`connection-policy-*`).
pub(crate) const POLICY: Registration = Registration {
    name: "timeouts-and-retries",
    groups: &[Group::Retry],
    keys: &[
        "timeout",
        "proxy-connect-timeout",
        "proxy-read-timeout",
        "proxy-send-timeout",
        "connection-policy-tcp-max-connection",
        "connection-policy-tcp-max-connection-per-endpoint",
        "connection-policy-http-max-request-per-connection",
    ],
    build,
};

/// How long the exchange with the upstream may take, and when it is tried again.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExchangePolicy {
    /// `timeout`: every attempt together, until the response head; `None`: no limit.
    pub total: Option<Duration>,
    /// `proxy-connect-timeout`; `None`: the gateway-wide value.
    pub connect: Option<Duration>,
    /// `proxy-read-timeout`: the wait for a response head and between two reads of its
    /// body; `None`: the gateway-wide value.
    pub read: Option<Duration>,
    /// `proxy-send-timeout`: the longest wait for the upstream to take a write of the
    /// request (head or body); `None`: the gateway-wide value.
    pub send: Option<Duration>,
    /// `proxy-next-upstream*`; `None`: the default, where only an attempt whose
    /// connection did not open is tried on another endpoint.
    pub retry: Option<RetryPolicy>,
    /// `connection-policy-*`: how many upstream connections the Service gets, and how
    /// many requests each carries; `None`: no limits but the gateway-wide ones.
    pub connections: Option<ConnectionLimits>,
}

/// `connection-policy-*` of a Service (MSE): limits of the upstream connections that
/// the requests of routes with these keys open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// `connection-policy-tcp-max-connection`: connections open to all the endpoints
    /// together.
    pub max_connections: Option<u32>,
    /// `connection-policy-tcp-max-connection-per-endpoint`: connections open to each
    /// endpoint.
    pub max_per_endpoint: Option<u32>,
    /// `connection-policy-http-max-request-per-connection`: requests one connection
    /// carries before it is closed.
    pub max_requests: Option<u32>,
}

/// When and how often a request is sent again, to another endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// `error`: connecting failed, or the connection broke before a response head.
    pub on_error: bool,
    /// `timeout`: connecting or waiting for the response head timed out.
    pub on_timeout: bool,
    /// `invalid_header`: the upstream's answer was not HTTP.
    pub on_invalid_header: bool,
    /// `http_NNN`: the answer's status is one of these.
    pub on_status: Box<[u16]>,
    /// `non_idempotent`: POST, PATCH and other non-idempotent requests are retried too.
    pub non_idempotent: bool,
    /// Attempts at most, the first included; 0: one per endpoint.
    pub tries: u32,
    /// No new attempt starts this long after the first; `None`: no limit.
    pub timeout: Option<Duration>,
}

// === impl RetryPolicy ===

impl RetryPolicy {
    /// Whether an answer with `status` is tried again.
    pub fn retries_status(&self, status: u16) -> bool {
        self.on_status.contains(&status)
    }
}

fn build(p: &IngressPolicy, policy: &mut RoutePolicy, _refused: &mut Vec<Refused>) {
    let t = &p.timeouts;
    let retry = match (&p.retry.on, p.retry.set) {
        (Some(on), true) => Some(RetryPolicy {
            on_error: on.error,
            on_timeout: on.timeout,
            on_invalid_header: on.invalid_header,
            on_status: on.statuses.clone().into(),
            non_idempotent: on.non_idempotent,
            tries: p.retry.tries,
            timeout: p.retry.timeout,
        }),
        // `off`: never another endpoint, not even for a connection that did not open.
        (None, true) => Some(RetryPolicy {
            on_error: false,
            on_timeout: false,
            on_invalid_header: false,
            on_status: Box::new([]),
            non_idempotent: false,
            tries: 1,
            timeout: None,
        }),
        _ => None,
    };
    let c = &p.backend.connections;
    let connections = ConnectionLimits {
        max_connections: c.max_connections,
        max_per_endpoint: c.max_connections_per_endpoint,
        max_requests: c.max_requests_per_connection,
    };
    let exchange = ExchangePolicy {
        total: t.total,
        connect: t.connect,
        read: t.read,
        send: t.send,
        retry,
        connections: (connections != ConnectionLimits::default()).then_some(connections),
    };
    if exchange != ExchangePolicy::default() {
        policy.exchange = Some(Box::new(exchange));
    }
}
