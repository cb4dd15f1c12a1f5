//! [`GlobalConfig`]: the typed result, with where each setting came from.

use std::collections::BTreeMap;
use std::time::Duration;

use mse_model::ObjectKey;
use serde::{Serialize, Serializer};

use super::{GLOBAL_KEYS, Layer, Setting};
use crate::cidr::Cidr;

/// The gateway-wide configuration, every setting resolved (see the [module
/// docs](super)). Defaults follow ingress-nginx unless a field says otherwise.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct GlobalConfig {
    /// Client connections.
    pub client: ClientSettings,
    /// Upstream connections.
    pub upstream: UpstreamSettings,
    /// Client address and forwarding headers.
    pub forwarding: ForwardingSettings,
    /// HTTPS redirects, HSTS and TLS.
    pub tls: TlsSettings,
    /// Gateway-wide IP lists.
    pub access: AccessSettings,
    /// `global-allowed-response-headers`: the response headers `custom-headers` may set,
    /// lower case. Empty (the default): none, as in ingress-nginx.
    pub allowed_response_headers: Vec<String>,
    /// `limit-req-status-code`: the status of requests over a rate limit (503).
    pub limit_req_status_code: u16,
    /// `limit-conn-status-code`: the status of requests over a connection limit (503).
    pub limit_conn_status_code: u16,
    /// `redis-url` (`--redis-url`): the Redis that counts the limits shared by the
    /// replicas (`rate-limit`, `concurrency-limit`); `None` (the default): each replica
    /// enforces them on its own. Its password, if any, is not serialised.
    #[serde(serialize_with = "redacted_url")]
    pub redis_url: Option<String>,
    /// Response compression.
    pub compression: CompressionSettings,
    /// Access log.
    pub logging: LogSettings,
    /// Tracing.
    pub tracing: TracingSettings,
    /// Where each setting that is not at its default came from.
    #[serde(skip)]
    origins: BTreeMap<Setting, Origin>,
}

/// Where a setting's value came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Origin {
    /// The layer.
    pub layer: Layer,
    /// The registry key that set it (see [`super::GlobalKey::key`]).
    pub key: &'static str,
    /// The value as written.
    pub value: String,
    /// The object it was read from (none for a flag).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<ObjectKey>,
}

/// Client connections.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClientSettings {
    /// `client-header-timeout`: time to receive a whole request head, and to finish the
    /// TLS handshake. 10 s (ingress-nginx: 60 s).
    #[serde(serialize_with = "secs")]
    pub header_timeout: Duration,
    /// `client-body-timeout`: the longest wait between two reads of a request body (60 s).
    #[serde(serialize_with = "secs")]
    pub body_timeout: Duration,
    /// `keep-alive`: how long an idle client connection waits for its next request (75 s);
    /// zero: one request per connection.
    #[serde(serialize_with = "secs")]
    pub keep_alive: Duration,
    /// `keep-alive-requests`: requests served on one client connection (1000).
    pub keep_alive_requests: u32,
    /// `large-client-header-buffers` (number × size): the largest request head in bytes
    /// (`4 8k`: 32 KiB).
    pub max_header_size: u32,
    /// `large-client-header-buffers` (the size of one buffer): the longest request target
    /// in bytes (`4 8k`: 8 KiB); longer ones get 414, as nginx answers a request line
    /// longer than one buffer.
    pub max_request_target: u32,
    /// `proxy-body-size`: the largest request body in bytes where a route sets none (1m);
    /// `None`: no limit.
    pub max_body_size: Option<u64>,
    /// `max-worker-connections`: client connections open at once per worker thread
    /// (16384); zero: no limit.
    pub max_worker_connections: u32,
    /// `mse-decode-path-separators`: a backslash, `%2F` or `%5C` in a request path becomes `/`
    /// before the path is matched and forwarded; `false` (the default): such paths get
    /// 400.
    pub decode_path_separators: bool,
    /// `http2-max-concurrent-streams`: streams per HTTP/2 connection (128).
    pub http2_max_concurrent_streams: u32,
    /// `downstream.http2.initialStreamWindowSize`; `None`: the HTTP/2 server's own.
    pub http2_stream_window: Option<u32>,
    /// `downstream.http2.initialConnectionWindowSize`; `None`: the HTTP/2 server's own.
    pub http2_connection_window: Option<u32>,
}

/// Upstream connections.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UpstreamSettings {
    /// `proxy-connect-timeout` (5 s).
    #[serde(serialize_with = "secs")]
    pub connect_timeout: Duration,
    /// `proxy-read-timeout`: the wait for a response head, and between two reads of a
    /// response body (60 s).
    #[serde(serialize_with = "secs")]
    pub read_timeout: Duration,
    /// `proxy-send-timeout` (60 s).
    #[serde(serialize_with = "secs")]
    pub send_timeout: Duration,
    /// Higress `downstream.routeTimeout`: a whole request's time; `None`: no limit.
    #[serde(serialize_with = "opt_secs")]
    pub route_timeout: Option<Duration>,
    /// `upstream-keepalive-connections`: idle connections kept per upstream address and
    /// worker (320); zero: none.
    pub keepalive_connections: u32,
    /// `upstream-keepalive-timeout`: how long an idle upstream connection is kept (60 s).
    #[serde(serialize_with = "secs")]
    pub keepalive_timeout: Duration,
    /// `upstream-keepalive-requests`: requests sent on one upstream connection (10000).
    pub keepalive_requests: u32,
    /// `upstream-keepalive-time`: the longest life of an upstream connection (1 h).
    #[serde(serialize_with = "secs")]
    pub keepalive_time: Duration,
    /// `mse-outlier-consecutive-errors`: connect failures or 5xx answers in a row after
    /// which an endpoint is ejected (5); zero turns outlier detection off.
    pub outlier_consecutive_errors: u32,
    /// `mse-outlier-base-ejection-time`: the first ejection's length; the n-th in a row
    /// lasts n times as long (30 s).
    #[serde(serialize_with = "secs")]
    pub outlier_base_ejection_time: Duration,
    /// `mse-outlier-max-ejection-time`: the longest ejection (300 s).
    #[serde(serialize_with = "secs")]
    pub outlier_max_ejection_time: Duration,
}

/// Client address and forwarding headers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ForwardingSettings {
    /// `use-forwarded-headers` (false).
    pub use_forwarded_headers: bool,
    /// `proxy-real-ip-cidr`: the proxies trusted to report the client address (`0.0.0.0/0`).
    pub real_ip_cidr: Vec<Cidr>,
    /// `forwarded-for-header`, lower case (`x-forwarded-for`).
    pub forwarded_for_header: String,
    /// `use-proxy-protocol` (false).
    pub use_proxy_protocol: bool,
}

/// HTTPS redirects, HSTS and TLS.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TlsSettings {
    /// `ssl-redirect`: what an Ingress without the annotation gets on a host with a
    /// certificate (true).
    pub ssl_redirect: bool,
    /// `force-ssl-redirect`: what an Ingress without the annotation gets (false).
    pub force_ssl_redirect: bool,
    /// `http-redirect-code`: the status of HTTPS redirects (308).
    pub redirect_code: u16,
    /// `hsts`: `Strict-Transport-Security` on HTTPS answers of hosts with a certificate
    /// (true).
    pub hsts: bool,
    /// `hsts-max-age` in seconds (15724800).
    pub hsts_max_age: u64,
    /// `hsts-include-subdomains` (true).
    pub hsts_include_subdomains: bool,
    /// `hsts-preload` (false).
    pub hsts_preload: bool,
    /// `ssl-protocols` (`TLSv1.2 TLSv1.3`).
    pub protocols: Vec<String>,
    /// `ssl-ciphers`; `None`: the TLS library's own choice.
    pub ciphers: Option<String>,
}

impl TlsSettings {
    /// The `Strict-Transport-Security` value these settings send, when `hsts` is on.
    pub fn hsts_header(&self) -> Option<String> {
        if !self.hsts {
            return None;
        }
        let mut v = format!("max-age={}", self.hsts_max_age);
        if self.hsts_include_subdomains {
            v.push_str("; includeSubDomains");
        }
        if self.hsts_preload {
            v.push_str("; preload");
        }
        Some(v)
    }
}

/// Gateway-wide IP lists (MseIngressConfig `spec.global.ipAccessControl`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AccessSettings {
    /// Only these clients are served, when not empty.
    pub allow: Vec<Cidr>,
    /// These clients are refused.
    pub deny: Vec<Cidr>,
    /// A list was invalid and had no last good value: every request is refused (503) until
    /// it is fixed, rather than served without the list.
    pub closed: bool,
}

impl AccessSettings {
    /// Whether a client at `ip` may be served (`closed` aside).
    pub fn allows(&self, ip: std::net::IpAddr) -> bool {
        (self.allow.is_empty() || self.allow.iter().any(|c| c.contains(ip)))
            && !self.deny.iter().any(|c| c.contains(ip))
    }

    /// Whether the lists restrict anyone.
    pub fn is_restricted(&self) -> bool {
        self.closed || !self.allow.is_empty() || !self.deny.is_empty()
    }
}

/// Response compression.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CompressionSettings {
    /// `use-gzip` (false).
    pub gzip: bool,
    /// `gzip-level`, 1 to 9 (1).
    pub gzip_level: u32,
    /// `gzip-min-length` in bytes (256).
    pub gzip_min_length: u64,
    /// `gzip-types`: MIME types compressed.
    pub gzip_types: Vec<String>,
    /// `enable-brotli` (false).
    pub brotli: bool,
    /// `brotli-level`, 1 to 11 (4).
    pub brotli_level: u32,
    /// `brotli-types`: MIME types compressed.
    pub brotli_types: Vec<String>,
}

/// Access log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LogSettings {
    /// Whether requests are logged: `disable-access-log` inverted, `--access-log` (true).
    pub access_log: bool,
    /// `log-format-upstream`; `None`: the gateway's structured line.
    pub format_upstream: Option<String>,
    /// `log-format-escape-json` (false).
    pub escape_json: bool,
    /// `generate-request-id` (true): requests without a valid `X-Request-ID` get one.
    pub generate_request_id: bool,
}

/// A URL with its password, if any, replaced by `***`.
fn redacted_url<S: Serializer>(url: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match url {
        None => s.serialize_none(),
        Some(u) => s.serialize_some(&redact_url(u)),
    }
}

/// `scheme://user:***@host...` for `scheme://user:password@host...`; other URLs as they are.
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let user = rest[..at].split_once(':').map_or(&rest[..at], |(u, _)| u);
            format!("{scheme}://{user}:***{}", &rest[at..])
        }
        None => url.to_owned(),
    }
}

/// Tracing.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TracingSettings {
    /// `enable-opentelemetry`, Higress `tracing.enable` (false).
    pub enabled: bool,
    /// `otlp-collector-host`.
    pub collector_host: Option<String>,
    /// `otlp-collector-port` (4317).
    pub collector_port: u16,
    /// The share of requests traced, 0 to 1 (`otel-sampler-ratio`, 0.01).
    pub sample_rate: f64,
    /// `otel-service-name` (`mse-gateway`).
    pub service_name: String,
    /// `opentelemetry-trust-incoming-span` (true): a client's `traceparent` is the parent
    /// of the gateway's span, and its sampling decision is followed.
    pub trust_incoming_span: bool,
}

/// The MIME types ingress-nginx compresses by default.
const COMPRESSED: &[&str] = &[
    "application/atom+xml",
    "application/javascript",
    "application/x-javascript",
    "application/json",
    "application/rss+xml",
    "application/vnd.ms-fontobject",
    "application/x-font-ttf",
    "application/x-web-app-manifest+json",
    "application/xhtml+xml",
    "application/xml",
    "font/opentype",
    "image/svg+xml",
    "image/x-icon",
    "text/css",
    "text/javascript",
    "text/plain",
    "text/x-component",
];

// === impl GlobalConfig ===

impl Default for GlobalConfig {
    fn default() -> Self {
        let types: Vec<String> = COMPRESSED.iter().map(|t| (*t).to_owned()).collect();
        Self {
            client: ClientSettings {
                header_timeout: Duration::from_secs(10),
                body_timeout: Duration::from_secs(60),
                keep_alive: Duration::from_secs(75),
                keep_alive_requests: 1000,
                max_header_size: 32 * 1024,
                max_request_target: 8 * 1024,
                max_body_size: Some(1 << 20),
                max_worker_connections: 16384,
                decode_path_separators: false,
                http2_max_concurrent_streams: 128,
                http2_stream_window: None,
                http2_connection_window: None,
            },
            upstream: UpstreamSettings {
                connect_timeout: Duration::from_secs(5),
                read_timeout: Duration::from_secs(60),
                send_timeout: Duration::from_secs(60),
                route_timeout: None,
                keepalive_connections: 320,
                keepalive_timeout: Duration::from_secs(60),
                keepalive_requests: 10_000,
                keepalive_time: Duration::from_secs(3600),
                outlier_consecutive_errors: 5,
                outlier_base_ejection_time: Duration::from_secs(30),
                outlier_max_ejection_time: Duration::from_secs(300),
            },
            forwarding: ForwardingSettings {
                use_forwarded_headers: false,
                real_ip_cidr: vec![Cidr::V4_ANY],
                forwarded_for_header: "x-forwarded-for".to_owned(),
                use_proxy_protocol: false,
            },
            tls: TlsSettings {
                ssl_redirect: true,
                force_ssl_redirect: false,
                redirect_code: 308,
                hsts: true,
                hsts_max_age: 15_724_800,
                hsts_include_subdomains: true,
                hsts_preload: false,
                protocols: vec!["TLSv1.2".to_owned(), "TLSv1.3".to_owned()],
                ciphers: None,
            },
            access: AccessSettings::default(),
            allowed_response_headers: Vec::new(),
            limit_req_status_code: 503,
            limit_conn_status_code: 503,
            redis_url: None,
            compression: CompressionSettings {
                gzip: false,
                gzip_level: 1,
                gzip_min_length: 256,
                gzip_types: types.clone(),
                brotli: false,
                brotli_level: 4,
                brotli_types: types,
            },
            logging: LogSettings {
                access_log: true,
                format_upstream: None,
                escape_json: false,
                generate_request_id: true,
            },
            tracing: TracingSettings {
                enabled: false,
                collector_host: None,
                collector_port: 4317,
                sample_rate: 0.01,
                service_name: "mse-gateway".to_owned(),
                trust_incoming_span: true,
            },
            origins: BTreeMap::new(),
        }
    }
}

impl GlobalConfig {
    /// Where `setting` came from; `None` when it is at its default.
    pub fn origin(&self, setting: Setting) -> Option<&Origin> {
        self.origins.get(&setting)
    }

    /// Whether some layer set `setting` (otherwise it is at its default).
    pub fn is_set(&self, setting: Setting) -> bool {
        self.origins.contains_key(&setting)
    }

    /// Every setting that is not at its default, with where it came from.
    pub fn origins(&self) -> impl Iterator<Item = (Setting, &Origin)> {
        self.origins.iter().map(|(s, o)| (*s, o))
    }

    pub(super) fn set_origin(&mut self, setting: Setting, origin: Origin) {
        self.origins.insert(setting, origin);
    }

    /// The configuration as JSON, for `/debug/routes`: the typed settings, and for each
    /// setting that is not at its default, its layer, key, value and object.
    pub fn to_json(&self) -> serde_json::Value {
        let origins: BTreeMap<String, serde_json::Value> = self
            .origins
            .iter()
            .map(|(s, o)| {
                let key = GLOBAL_KEYS
                    .iter()
                    .find(|k| k.layer == o.layer && k.key == o.key)
                    .map_or_else(|| o.key.to_owned(), |k| k.display_key());
                let mut v = serde_json::json!({ "layer": o.layer, "key": key, "value": o.value });
                if let Some(obj) = &o.object {
                    v["object"] = serde_json::Value::String(obj.to_string());
                }
                (setting_name(*s), v)
            })
            .collect();
        let mut json = serde_json::to_value(self).unwrap_or_default();
        json["origins"] = serde_json::to_value(origins).unwrap_or_default();
        json
    }
}

/// The kebab-case name of a setting, as serialised.
fn setting_name(s: Setting) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn secs<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

fn opt_secs<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_f64(d.as_secs_f64()),
        None => s.serialize_none(),
    }
}
