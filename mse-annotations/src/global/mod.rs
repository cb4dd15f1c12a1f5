//! The gateway-wide configuration: one typed [`GlobalConfig`] read from layered sources.
//!
//! Users of ingress-nginx configure a gateway with a ConfigMap of string keys, Higress users
//! with the `higress-config` ConfigMap (key `higress`, YAML), MSE users with the
//! `MseIngressConfig` their IngressClass links. The gateway reads all of them, weakest
//! first ([`Layer`]):
//!
//! 1. the built-in defaults ([`GlobalConfig::default`]);
//! 2. the ConfigMap named by `--configmap` (ingress-nginx keys);
//! 3. the `higress-config` ConfigMap in the same namespace (key `higress`);
//! 4. command-line flags given explicitly (a flag left at its default is not a layer: it
//!    is the built-in default, which every document overrides);
//! 5. the `MseIngressConfig` linked from the gateway's IngressClass, for the keys it has.
//!
//! One registry, [`GLOBAL_KEYS`], lists every key of every source with the [`Setting`] it
//! sets, its grammar, default, status and one line of documentation; the parser
//! ([`parse_global`]) and the reference (`docs/configuration.md`,
//! [`configuration_reference`]) both come from it, as the annotation registry gives the
//! support matrix.
//!
//! A bad value is a diagnostic naming the object, the key and the value; that setting keeps
//! its last good value (the previous configuration, handed to [`parse_global`]), and every
//! other setting applies. Keys the data plane does not apply yet are parsed and validated,
//! and reported as `not-applied` when set.
//!
//! ```
//! use std::collections::BTreeMap;
//! use mse_annotations::global::{parse_global, Doc, GlobalFlags, GlobalSources, Layer, Setting};
//! use mse_model::{Kind, ObjectKey};
//!
//! let object = ObjectKey::new(Kind::ConfigMap, "ingress", "gateway");
//! let data = BTreeMap::from([
//!     ("keep-alive-requests".to_owned(), "2".to_owned()),
//!     ("proxy-body-size".to_owned(), "ten".to_owned()),
//! ]);
//! let flags = GlobalFlags::default();
//! let sources = GlobalSources {
//!     configmap: Some(Doc { object: &object, source: None, data: &data }),
//!     ..GlobalSources::new(&flags)
//! };
//! let parsed = parse_global(&sources, None);
//! assert_eq!(parsed.value.client.keep_alive_requests, 2);
//! assert_eq!(parsed.value.origin(Setting::KeepAliveRequests).map(|o| o.layer), Some(Layer::ConfigMap));
//! // The bad value is reported with object, key and value; the default stays.
//! assert_eq!(parsed.value.client.max_body_size, Some(1 << 20));
//! assert_eq!(
//!     parsed.diagnostics[0].to_string(),
//!     "warning: ConfigMap ingress/gateway: proxy-body-size: expected a size such as 1024, 8k, 10m or 1g; the default (1m) applies (value \"ten\") [invalid-config-value]"
//! );
//! ```

mod config;
mod grammar;
mod higress;
mod log_format;
mod nginx;
mod reference;
mod resolve;

use std::fmt;

use serde::Serialize;

pub use config::{
    AccessSettings, ClientSettings, CompressionSettings, ForwardingSettings, GlobalConfig,
    LogSettings, Origin, TlsSettings, TracingSettings, UpstreamSettings,
};
pub use log_format::{DEFAULT_LOG_FORMAT, LOG_VARIABLES, LogPart, LogVar, parse_log_format};
pub use reference::configuration_reference;
pub use resolve::{Doc, GlobalFlags, GlobalSources, HIGRESS_CONFIG, HIGRESS_KEY, parse_global};

/// Where a value comes from, weakest first: a stronger layer wins for the settings it has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layer {
    /// The built-in default (for data-plane settings: the data plane's own configuration).
    Default,
    /// The ConfigMap named by `--configmap`, ingress-nginx keys.
    ConfigMap,
    /// The `higress` key of the `higress-config` ConfigMap.
    HigressConfig,
    /// A command-line flag given explicitly.
    Flag,
    /// The `MseIngressConfig` linked from the gateway's IngressClass.
    MseIngressConfig,
}

impl Layer {
    /// Every layer that carries keys, in the order of the reference.
    pub const SOURCES: [Layer; 4] = [
        Layer::ConfigMap,
        Layer::HigressConfig,
        Layer::MseIngressConfig,
        Layer::Flag,
    ];

    /// How the reference and diagnostics name it.
    pub fn title(self) -> &'static str {
        match self {
            Layer::Default => "default",
            Layer::ConfigMap => "ConfigMap (--configmap)",
            Layer::HigressConfig => "higress-config",
            Layer::Flag => "flag",
            Layer::MseIngressConfig => "MseIngressConfig",
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.title())
    }
}

/// What the gateway does with a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case", tag = "status", content = "note")]
pub enum Status {
    /// Parsed and applied as documented (as ingress-nginx does for its keys).
    Applied,
    /// Parsed and applied, with the difference described.
    Different(&'static str),
    /// Parsed and validated, not applied by this build yet: a `not-applied` warning when set.
    NotApplied(&'static str),
    /// Accepted without meaning here (it tunes NGINX, Envoy or a cloud service): a note.
    NoEffect(&'static str),
    /// Refused with an error when set: it would inject configuration.
    Refused(&'static str),
}

impl Status {
    /// Whether the data plane acts on the key.
    pub fn is_applied(self) -> bool {
        matches!(self, Status::Applied | Status::Different(_))
    }
}

/// The sections of the reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GlobalGroup {
    /// Client connections: timeouts, keep-alive, header and body sizes, HTTP/2.
    Client,
    /// Upstream connections: timeouts and the keep-alive pool.
    Upstream,
    /// Client address and forwarding headers.
    Forwarding,
    /// HTTPS redirects, HSTS and TLS versions.
    Tls,
    /// Gateway-wide IP allow and deny lists.
    Access,
    /// Response headers.
    Headers,
    /// Rate and connection limits.
    Limits,
    /// Response compression.
    Compression,
    /// Access log.
    Logging,
    /// Tracing.
    Tracing,
    /// Configuration that would be injected into NGINX.
    Security,
    /// Keys that tune NGINX, Envoy or a cloud service.
    Internals,
}

impl GlobalGroup {
    /// Every group, in the order of the reference.
    pub const ALL: [GlobalGroup; 12] = [
        GlobalGroup::Client,
        GlobalGroup::Upstream,
        GlobalGroup::Forwarding,
        GlobalGroup::Tls,
        GlobalGroup::Access,
        GlobalGroup::Headers,
        GlobalGroup::Limits,
        GlobalGroup::Compression,
        GlobalGroup::Logging,
        GlobalGroup::Tracing,
        GlobalGroup::Security,
        GlobalGroup::Internals,
    ];

    /// A heading for the group.
    pub fn title(self) -> &'static str {
        match self {
            GlobalGroup::Client => "Client connections",
            GlobalGroup::Upstream => "Upstream connections",
            GlobalGroup::Forwarding => "Client address and forwarding headers",
            GlobalGroup::Tls => "HTTPS redirects, HSTS and TLS",
            GlobalGroup::Access => "IP access control",
            GlobalGroup::Headers => "Response headers",
            GlobalGroup::Limits => "Limits",
            GlobalGroup::Compression => "Compression",
            GlobalGroup::Logging => "Access log",
            GlobalGroup::Tracing => "Tracing",
            GlobalGroup::Security => "Injected configuration",
            GlobalGroup::Internals => "NGINX, Envoy and cloud internals",
        }
    }
}

/// One typed setting of [`GlobalConfig`]; several keys (of different sources) may set it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Setting {
    /// [`ClientSettings::header_timeout`].
    ClientHeaderTimeout,
    /// [`ClientSettings::body_timeout`].
    ClientBodyTimeout,
    /// [`ClientSettings::keep_alive`].
    KeepAlive,
    /// [`ClientSettings::keep_alive_requests`].
    KeepAliveRequests,
    /// [`ClientSettings::max_header_size`] and [`ClientSettings::max_request_target`].
    MaxHeaderSize,
    /// [`ClientSettings::max_body_size`].
    MaxBodySize,
    /// [`ClientSettings::http2_max_concurrent_streams`].
    Http2MaxConcurrentStreams,
    /// [`ClientSettings::max_worker_connections`].
    MaxWorkerConnections,
    /// [`ClientSettings::decode_path_separators`].
    DecodePathSeparators,
    /// [`ClientSettings::http2_stream_window`].
    Http2StreamWindow,
    /// [`ClientSettings::http2_connection_window`].
    Http2ConnectionWindow,
    /// [`UpstreamSettings::connect_timeout`].
    ProxyConnectTimeout,
    /// [`UpstreamSettings::read_timeout`].
    ProxyReadTimeout,
    /// [`UpstreamSettings::send_timeout`].
    ProxySendTimeout,
    /// [`UpstreamSettings::route_timeout`].
    RouteTimeout,
    /// [`UpstreamSettings::keepalive_connections`].
    UpstreamKeepaliveConnections,
    /// [`UpstreamSettings::keepalive_timeout`].
    UpstreamKeepaliveTimeout,
    /// [`UpstreamSettings::keepalive_requests`].
    UpstreamKeepaliveRequests,
    /// [`UpstreamSettings::keepalive_time`].
    UpstreamKeepaliveTime,
    /// [`UpstreamSettings::outlier_consecutive_errors`].
    OutlierConsecutiveErrors,
    /// [`UpstreamSettings::outlier_base_ejection_time`].
    OutlierBaseEjectionTime,
    /// [`UpstreamSettings::outlier_max_ejection_time`].
    OutlierMaxEjectionTime,
    /// [`ForwardingSettings::use_forwarded_headers`].
    UseForwardedHeaders,
    /// [`ForwardingSettings::real_ip_cidr`].
    ProxyRealIpCidr,
    /// [`ForwardingSettings::forwarded_for_header`].
    ForwardedForHeader,
    /// [`ForwardingSettings::use_proxy_protocol`].
    UseProxyProtocol,
    /// [`TlsSettings::ssl_redirect`].
    SslRedirect,
    /// [`TlsSettings::force_ssl_redirect`].
    ForceSslRedirect,
    /// [`TlsSettings::redirect_code`].
    HttpRedirectCode,
    /// [`TlsSettings::hsts`].
    Hsts,
    /// [`TlsSettings::hsts_max_age`].
    HstsMaxAge,
    /// [`TlsSettings::hsts_include_subdomains`].
    HstsIncludeSubdomains,
    /// [`TlsSettings::hsts_preload`].
    HstsPreload,
    /// [`TlsSettings::protocols`].
    SslProtocols,
    /// [`TlsSettings::ciphers`].
    SslCiphers,
    /// [`AccessSettings::allow`].
    IpAllowList,
    /// [`AccessSettings::deny`].
    IpDenyList,
    /// [`GlobalConfig::allowed_response_headers`].
    AllowedResponseHeaders,
    /// [`GlobalConfig::limit_req_status_code`].
    LimitReqStatusCode,
    /// [`GlobalConfig::limit_conn_status_code`].
    LimitConnStatusCode,
    /// [`GlobalConfig::redis_url`].
    RedisUrl,
    /// [`CompressionSettings::gzip`].
    UseGzip,
    /// [`CompressionSettings::gzip_level`].
    GzipLevel,
    /// [`CompressionSettings::gzip_min_length`].
    GzipMinLength,
    /// [`CompressionSettings::gzip_types`].
    GzipTypes,
    /// [`CompressionSettings::brotli`].
    EnableBrotli,
    /// [`CompressionSettings::brotli_level`].
    BrotliLevel,
    /// [`CompressionSettings::brotli_types`].
    BrotliTypes,
    /// [`LogSettings::access_log`].
    AccessLog,
    /// [`LogSettings::format_upstream`].
    LogFormatUpstream,
    /// [`LogSettings::escape_json`].
    LogFormatEscapeJson,
    /// [`LogSettings::generate_request_id`].
    GenerateRequestId,
    /// [`TracingSettings::enabled`].
    Tracing,
    /// [`TracingSettings::collector_host`].
    TracingCollectorHost,
    /// [`TracingSettings::collector_port`].
    TracingCollectorPort,
    /// [`TracingSettings::sample_rate`].
    TracingSampleRate,
    /// [`TracingSettings::service_name`].
    TracingServiceName,
    /// [`TracingSettings::trust_incoming_span`].
    TracingTrustIncomingSpan,
}

/// What a key's value may be rejected for, besides a bad value.
#[derive(Debug)]
pub(crate) enum Reject {
    /// The value does not follow the grammar.
    Invalid(crate::ValueError),
    /// The value is valid, and refused: it would enable injected configuration.
    Refused(&'static str),
}

impl From<crate::ValueError> for Reject {
    fn from(e: crate::ValueError) -> Self {
        Reject::Invalid(e)
    }
}

/// Reads a value into its setting of a [`GlobalConfig`]; changes nothing on error.
pub(crate) type Setter = fn(&mut GlobalConfig, &str) -> Result<(), Reject>;

/// One key of one source.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct GlobalKey {
    /// The source that carries it.
    pub layer: Layer,
    /// The key: a ConfigMap data key, a path in the `higress` YAML
    /// (`downstream.idleTimeout`), a path in the MseIngressConfig (`spec.global.tls`), or a
    /// flag (`--access-log`).
    pub key: &'static str,
    /// The setting it sets; `None` for keys that set nothing (no effect, refused).
    pub setting: Option<Setting>,
    /// The section of the reference.
    pub group: GlobalGroup,
    /// The value grammar, in words.
    pub values: &'static str,
    /// The default, in words.
    pub default: &'static str,
    /// What the gateway does with it.
    pub status: Status,
    /// Whether a bad value with no last good one closes the gateway (every request 503)
    /// rather than falling back to the default: the IP lists.
    pub security: bool,
    /// Whether the key stands for a whole subtree (`mcpServer`, `spec.monitor.logging`).
    pub section: bool,
    /// One line of documentation.
    pub doc: &'static str,
    #[serde(skip)]
    pub(crate) set: Setter,
    /// A valid example value (tests).
    #[serde(skip)]
    pub valid: &'static str,
    /// An invalid example value; empty when every value is accepted (tests).
    #[serde(skip)]
    pub invalid: &'static str,
}

// === impl GlobalKey ===

impl GlobalKey {
    /// The key as the reference and diagnostics show it: `keep-alive`,
    /// `higress.downstream.idleTimeout`, `spec.global.tls`, `--access-log`.
    pub fn display_key(&self) -> String {
        match self.layer {
            Layer::HigressConfig => format!("{HIGRESS_KEY}.{}", self.key),
            _ => self.key.to_owned(),
        }
    }

    /// Whether `path` is this key, or lies under it when it is a section.
    pub(crate) fn matches(&self, path: &str) -> bool {
        path == self.key
            || (self.section
                && path
                    .strip_prefix(self.key)
                    .is_some_and(|rest| rest.starts_with('.')))
    }

    const fn different(mut self, note: &'static str) -> Self {
        self.status = Status::Different(note);
        self
    }
    const fn not_applied(mut self, why: &'static str) -> Self {
        self.status = Status::NotApplied(why);
        self
    }
    const fn security(mut self) -> Self {
        self.security = true;
        self
    }
    const fn section(mut self) -> Self {
        self.section = true;
        self
    }
    const fn ex(mut self, valid: &'static str, invalid: &'static str) -> Self {
        self.valid = valid;
        self.invalid = invalid;
        self
    }
}

/// A key that sets `setting`, applied as documented.
#[expect(
    clippy::too_many_arguments,
    reason = "one registry row, every column named"
)]
const fn key(
    layer: Layer,
    key: &'static str,
    setting: Setting,
    group: GlobalGroup,
    values: &'static str,
    default: &'static str,
    doc: &'static str,
    set: Setter,
) -> GlobalKey {
    GlobalKey {
        layer,
        key,
        setting: Some(setting),
        group,
        values,
        default,
        status: Status::Applied,
        security: false,
        section: false,
        doc,
        set,
        valid: "",
        invalid: "",
    }
}

/// A key that sets no setting, whose value `set` still checks (and may refuse).
const fn checked(
    layer: Layer,
    key: &'static str,
    group: GlobalGroup,
    values: &'static str,
    default: &'static str,
    doc: &'static str,
    set: Setter,
) -> GlobalKey {
    let mut k = no_effect(layer, key, group, doc, set);
    k.values = values;
    k.default = default;
    k.status = Status::Applied;
    k
}

/// A key without meaning here; its value is still checked against `set`.
const fn no_effect(
    layer: Layer,
    key: &'static str,
    group: GlobalGroup,
    why: &'static str,
    set: Setter,
) -> GlobalKey {
    GlobalKey {
        layer,
        key,
        setting: None,
        group,
        values: "",
        default: "",
        status: Status::NoEffect(why),
        security: false,
        section: false,
        doc: why,
        set,
        valid: "",
        invalid: "",
    }
}

/// A key refused whatever its value.
const fn refused(layer: Layer, key: &'static str, why: &'static str) -> GlobalKey {
    GlobalKey {
        layer,
        key,
        setting: None,
        group: GlobalGroup::Security,
        values: "",
        default: "",
        status: Status::Refused(why),
        security: false,
        section: false,
        doc: why,
        set: grammar::any,
        valid: "",
        invalid: "",
    }
}

/// The registry's parts, in the order of the reference.
const PARTS: &[&[GlobalKey]] = &[nginx::NGINX, higress::HIGRESS, higress::MSE, higress::FLAGS];

const COUNT: usize = crate::registry::total_len(PARTS);

/// Every key of every source the gateway reads for its global configuration.
pub static GLOBAL_KEYS: &[GlobalKey] =
    &crate::registry::concat::<GlobalKey, COUNT>(PARTS, refused(Layer::Flag, "", ""));

/// The registry entry for `key` of `layer` (a section covers the paths under it).
pub fn global_key(layer: Layer, key: &str) -> Option<&'static GlobalKey> {
    GLOBAL_KEYS
        .iter()
        .find(|k| k.layer == layer && k.matches(key))
}

/// The known key of `layer` closest to an unknown one, for "did you mean ...?".
pub(crate) fn suggest_global(layer: Layer, key: &str) -> Option<&'static str> {
    let lower = key.to_ascii_lowercase();
    GLOBAL_KEYS
        .iter()
        .filter(|k| k.layer == layer)
        .map(|k| (edit_distance(&lower, &k.key.to_ascii_lowercase()), k.key))
        .filter(|(d, k)| *d <= (k.len() / 4).clamp(1, 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance; keys are short.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests;
