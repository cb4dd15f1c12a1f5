//! [`Settings`]: what the data plane applies of a route table's global configuration,
//! derived once when the table is published, so that the request path reads plain fields
//! of the table it already holds.
//!
//! A setting the global configuration leaves at its default takes the data plane's own
//! value ([`ProxyConfig`]); one that a ConfigMap, an explicit flag or an `MseIngressConfig`
//! sets replaces it. Connection settings (timeouts, limits of HTTP/1.1 and HTTP/2, whether
//! the access log is on, response compression, and whether connections open with a PROXY protocol header) are read when a connection is accepted: like nginx after
//! a reload, an open connection keeps serving its requests with the settings it started
//! with. Request settings (body size, HSTS, IP lists, upstream timeouts and pool) are read
//! when a request is routed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::HeaderValue;
use mse_router::global::{GlobalConfig, Setting};

use crate::config::{ProxyConfig, Timeouts};
use crate::forwarded::TrustedProxies;
use crate::http1::Limits;
use crate::log::LogFormat;
use crate::policy::compress::Compression;

/// The data plane's own values of the settings the global configuration also has.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Defaults {
    timeouts: Timeouts,
    max_header_size: usize,
    max_request_target: usize,
    access_log: bool,
    access_log_json: bool,
    upstream_max_idle: usize,
    upstream_keepalive_requests: u32,
    keep_alive_requests: u32,
    max_concurrent_streams: u32,
    max_worker_connections: u32,
}

/// HTTP/2 settings of a new connection.
#[derive(Clone, Copy, Debug)]
pub(crate) struct H2Settings {
    pub(crate) max_header_list: u32,
    pub(crate) max_streams: u32,
    pub(crate) stream_window: Option<u32>,
    pub(crate) connection_window: Option<u32>,
}

/// How a worker's upstream pool connects, waits and keeps connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PoolSettings {
    /// Idle connections kept per upstream address.
    pub(crate) max_idle: usize,
    /// How long an idle connection is kept.
    pub(crate) idle_timeout: Duration,
    /// Requests sent on one connection before it is closed.
    pub(crate) max_requests: u32,
    pub(crate) connect_timeout: Duration,
    /// The wait for a response head.
    pub(crate) response_timeout: Duration,
    /// The longest wait between two reads of a response body.
    pub(crate) read_timeout: Duration,
    /// `proxy-send-timeout`: the longest wait for the upstream to take a write.
    pub(crate) send_timeout: Duration,
    /// Higress `downstream.routeTimeout`: every attempt of a request together, until the
    /// response head, where the route sets no `timeout`; `None`: no limit.
    pub(crate) route_timeout: Option<Duration>,
}

/// What one published table asks of the data plane.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    /// Different for every derived [`Settings`]: a worker's pool takes a table's pool
    /// settings only when they are not the ones it already has.
    pub(crate) serial: u64,
    /// HTTP/1.1 client connections.
    pub(crate) conn: Limits,
    /// HTTP/2 client connections.
    pub(crate) h2: H2Settings,
    /// Client connections open at once per worker; past it new ones are closed.
    pub(crate) max_connections: usize,
    /// `mse-decode-path-separators`: a request path's backslashes, `%2F` and `%5C` become `/`
    /// instead of refusing the request.
    pub(crate) decode_path_separators: bool,
    /// The upstream pool.
    pub(crate) pool: PoolSettings,
    /// Whether requests are logged (on the connections accepted while the table is
    /// served).
    pub(crate) access_log: bool,
    /// The access log's format: `log-format-upstream`, else JSON or ingress-nginx's
    /// default line as the data plane says.
    pub(crate) log_format: Arc<LogFormat>,
    /// The body limit of routes without `proxy-body-size`, and of unmatched requests.
    pub(crate) max_body: Option<u64>,
    /// `Strict-Transport-Security` for HTTPS answers of hosts with a certificate.
    /// Shared: requests carry it as a pointer, not a 40-byte value.
    pub(crate) hsts: Option<Arc<HeaderValue>>,
    /// A gateway-wide IP list was invalid with no last good value: every request gets
    /// 503. (The lists themselves are compiled into the route table.)
    pub(crate) access_closed: bool,
    /// `use-proxy-protocol` (`--proxy-protocol`): connections accepted while the table is
    /// served open with a PROXY protocol header.
    pub(crate) proxy_protocol: bool,
    /// `use-forwarded-headers`: the proxies in front whose forwarding headers are kept.
    pub(crate) forwarding: Option<Arc<TrustedProxies>>,
    /// `limit-req-status-code`: the status of requests over `limit-rps` or `limit-rpm`.
    pub(crate) limit_req_status: u16,
    /// `limit-conn-status-code`: the status of requests over `limit-connections`.
    pub(crate) limit_conn_status: u16,
    /// `use-gzip`, `enable-brotli` and their settings (on the connections accepted while
    /// the table is served); `None` when both are off.
    pub(crate) compression: Option<Arc<Compression>>,
    /// `generate-request-id`: requests without a valid `X-Request-ID` get one.
    pub(crate) generate_request_id: bool,
    /// `enable-opentelemetry` with a collector (on the connections accepted while the
    /// table is served); set when the table is built, as it needs the gateway's exporters.
    pub(crate) tracing: Option<Arc<crate::otel::Tracer>>,
}

// === impl Defaults ===

impl From<&ProxyConfig> for Defaults {
    fn from(c: &ProxyConfig) -> Self {
        Self {
            timeouts: c.timeouts,
            max_header_size: c.max_header_size,
            max_request_target: c.max_request_target,
            access_log: c.access_log,
            access_log_json: c.access_log_json,
            upstream_max_idle: c.upstream_max_idle,
            upstream_keepalive_requests: c.upstream_keepalive_requests,
            keep_alive_requests: c.keep_alive_requests,
            max_concurrent_streams: c.max_concurrent_streams,
            max_worker_connections: c.max_worker_connections,
        }
    }
}

impl Default for Defaults {
    fn default() -> Self {
        Self::from(&ProxyConfig::default())
    }
}

// === impl Settings ===

impl Settings {
    /// The settings of `global`, with `defaults` for what it leaves at its default.
    pub(crate) fn derive(global: &GlobalConfig, defaults: &Defaults) -> Self {
        let set = |s: Setting| global.is_set(s);
        let pick = |s: Setting, from_global: Duration, own: Duration| {
            if set(s) { from_global } else { own }
        };
        let t = &defaults.timeouts;
        let c = &global.client;
        let u = &global.upstream;
        let (max_head, max_target) = if set(Setting::MaxHeaderSize) {
            (c.max_header_size as usize, c.max_request_target as usize)
        } else {
            (defaults.max_header_size, defaults.max_request_target)
        };
        let read = pick(Setting::ProxyReadTimeout, u.read_timeout, t.upstream_read);
        let conn = Limits {
            max_head,
            max_target,
            header_read: pick(
                Setting::ClientHeaderTimeout,
                c.header_timeout,
                t.header_read,
            ),
            keep_alive: pick(Setting::KeepAlive, c.keep_alive, t.keep_alive),
            max_requests: if set(Setting::KeepAliveRequests) {
                c.keep_alive_requests
            } else {
                defaults.keep_alive_requests
            },
            client_write: t.client_write,
            body_read: pick(Setting::ClientBodyTimeout, c.body_timeout, t.client_body),
        };
        let h2 = H2Settings {
            max_header_list: u32::try_from(max_head).unwrap_or(u32::MAX),
            max_streams: if set(Setting::Http2MaxConcurrentStreams) {
                c.http2_max_concurrent_streams
            } else {
                defaults.max_concurrent_streams
            },
            stream_window: c.http2_stream_window,
            connection_window: c.http2_connection_window,
        };
        let pool = PoolSettings {
            max_idle: if set(Setting::UpstreamKeepaliveConnections) {
                u.keepalive_connections as usize
            } else {
                defaults.upstream_max_idle
            },
            idle_timeout: pick(
                Setting::UpstreamKeepaliveTimeout,
                u.keepalive_timeout,
                t.upstream_idle,
            ),
            max_requests: if set(Setting::UpstreamKeepaliveRequests) {
                u.keepalive_requests
            } else {
                defaults.upstream_keepalive_requests
            },
            connect_timeout: pick(
                Setting::ProxyConnectTimeout,
                u.connect_timeout,
                t.upstream_connect,
            ),
            response_timeout: if set(Setting::ProxyReadTimeout) {
                u.read_timeout
            } else {
                t.upstream_response
            },
            read_timeout: read,
            send_timeout: u.send_timeout,
            route_timeout: u.route_timeout,
        };
        let max_connections = match set(Setting::MaxWorkerConnections) {
            true => c.max_worker_connections,
            false => defaults.max_worker_connections,
        };
        let max_connections = match max_connections {
            0 => usize::MAX,
            n => n as usize,
        };
        static SERIAL: AtomicU64 = AtomicU64::new(0);
        Self {
            serial: SERIAL.fetch_add(1, Ordering::Relaxed),
            conn,
            h2,
            max_connections,
            decode_path_separators: c.decode_path_separators,
            pool,
            access_log: if set(Setting::AccessLog) {
                global.logging.access_log
            } else {
                defaults.access_log
            },
            log_format: Arc::new(match &global.logging.format_upstream {
                Some(f) => LogFormat::custom(f, global.logging.escape_json),
                None if defaults.access_log_json => LogFormat::json(),
                None => LogFormat::upstream_default(),
            }),
            max_body: c.max_body_size,
            hsts: global
                .tls
                .hsts_header()
                .and_then(|v| HeaderValue::from_str(&v).ok())
                .map(Arc::new),
            access_closed: global.access.closed,
            proxy_protocol: global.forwarding.use_proxy_protocol,
            forwarding: TrustedProxies::of(global).map(Arc::new),
            limit_req_status: global.limit_req_status_code,
            limit_conn_status: global.limit_conn_status_code,
            compression: Compression::of(&global.compression).map(Arc::new),
            generate_request_id: global.logging.generate_request_id,
            tracing: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use mse_model::{Kind, ObjectKey};
    use mse_router::global::{Doc, GlobalFlags, GlobalSources, parse_global};

    use super::*;

    fn global(pairs: &[(&str, &str)]) -> GlobalConfig {
        let object = ObjectKey::new(Kind::ConfigMap, "ingress", "gateway");
        let data: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let flags = GlobalFlags::default();
        let parsed = parse_global(
            &GlobalSources {
                configmap: Some(Doc {
                    object: &object,
                    source: None,
                    data: &data,
                }),
                ..GlobalSources::new(&flags)
            },
            None,
        );
        assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
        parsed.value
    }

    #[test]
    fn settings_the_global_configuration_leaves_alone_keep_the_data_planes_values() {
        let mut config = ProxyConfig::default();
        config.timeouts.header_read = Duration::from_secs(3);
        config.timeouts.upstream_response = Duration::from_secs(7);
        config.keep_alive_requests = 5;
        config.max_request_target = 4096;
        config.max_worker_connections = 7;
        let d = Defaults::from(&config);
        let s = Settings::derive(&GlobalConfig::default(), &d);
        assert_eq!(s.conn.header_read, Duration::from_secs(3));
        assert_eq!(s.pool.response_timeout, Duration::from_secs(7));
        assert_eq!(s.conn.max_requests, 5);
        assert_eq!(s.conn.max_target, 4096);
        assert_eq!(s.max_connections, 7);
        assert!(s.access_log);
        // ingress-nginx's defaults for what only the global configuration has.
        assert_eq!(s.max_body, Some(1 << 20));
        assert_eq!(
            s.hsts.as_ref().map(|v| v.to_str().unwrap()),
            Some("max-age=15724800; includeSubDomains")
        );
        assert!(!s.access_closed);
        assert!(!s.proxy_protocol);
    }

    #[test]
    fn settings_the_global_configuration_sets_replace_the_data_planes_values() {
        let mut config = ProxyConfig::default();
        config.timeouts.header_read = Duration::from_secs(3);
        let g = global(&[
            ("client-header-timeout", "20"),
            ("keep-alive-requests", "2"),
            ("proxy-read-timeout", "9"),
            ("large-client-header-buffers", "2 8k"),
            ("upstream-keepalive-connections", "0"),
            ("disable-access-log", "true"),
            ("proxy-body-size", "0"),
            ("hsts", "false"),
            ("use-proxy-protocol", "true"),
            ("max-worker-connections", "0"),
        ]);
        let s = Settings::derive(&g, &Defaults::from(&config));
        assert_eq!(s.conn.header_read, Duration::from_secs(20));
        assert_eq!(s.conn.max_requests, 2);
        assert_eq!(s.conn.max_head, 16 * 1024);
        assert_eq!(s.conn.max_target, 8 * 1024);
        assert_eq!(s.max_connections, usize::MAX);
        assert_eq!(s.h2.max_header_list, 16 * 1024);
        assert_eq!(s.pool.response_timeout, Duration::from_secs(9));
        assert_eq!(s.pool.read_timeout, Duration::from_secs(9));
        assert_eq!(s.pool.max_idle, 0);
        assert!(!s.access_log);
        assert_eq!(s.max_body, None);
        assert!(s.hsts.is_none());
        assert!(s.proxy_protocol);
    }
}
