//! The Higress `higress-config` keys (paths in the YAML of its `higress` key), the
//! `MseIngressConfig` fields, and the command-line flags that have a global equivalent.
//! Higress defaults and ranges follow its `pkg/ingress/kube/configmap` code.

use super::grammar::{self as g, any};
use super::{GlobalGroup as G, GlobalKey, Layer, Reject, Setting as S, key, no_effect};
use crate::cidr::cidr_list;
use crate::value::{boolean, uint};

const HI: Layer = Layer::HigressConfig;
const MIC: Layer = Layer::MseIngressConfig;
const BOOL: &str = "true or false";
const ENVOY: &str = "tunes Envoy, which the gateway does not run; no effect";
const GZIP_TUNING: &str = "tunes Envoy's zlib stream; the gateway's gzip keeps its own window, memory and chunk sizes; no effect";
const GZIP_ETAG: &str = "answers with an ETag are compressed too, their ETag made weak; no effect";
const TRACE_TIMEOUT: &str =
    "spans are exported with a timeout of their own (10 s); the key has no effect";
const TOTAL_TIME: &str = "bounds every attempt of a request together until the upstream's response head (504 on expiry); the response body is bounded by proxy-read-timeout between reads";
const CLOUD: &str = "an Alibaba Cloud service setting; no effect outside it";

fn bool_key(v: &str) -> Result<bool, Reject> {
    Ok(boolean(v)?)
}

/// The `higress` YAML of `higress-config`.
#[rustfmt::skip]
pub(super) const HIGRESS: &[GlobalKey] = &[
    no_effect(HI, "addXRealIpHeader", G::Forwarding, "the gateway always sets X-Real-IP",
        |_, v| { bool_key(v)?; Ok(()) }),
    no_effect(HI, "disableXEnvoyHeaders", G::Forwarding, "the gateway adds no x-envoy-* headers",
        |_, v| { bool_key(v)?; Ok(()) }),
    key(HI, "downstream.idleTimeout", S::KeepAlive, G::Client, "whole seconds; 0: no keep-alive", "75",
        "How long an idle HTTP/1.1 client connection waits for its next request",
        |c, v| { c.client.keep_alive = g::whole_seconds(v)?; Ok(()) })
        .different("the same setting as keep-alive; it does not bound HTTP/2 streams, and the default is ingress-nginx's 75 s (Higress: 180 s)")
        .ex("180", "3m"),
    key(HI, "downstream.maxRequestHeadersKb", S::MaxHeaderSize, G::Client, "KiB, 8 to 8192", "32",
        "The largest request head; larger requests get 431",
        |c, v| { c.client.max_header_size = g::header_kib(v)?; Ok(()) })
        .different("the same setting as large-client-header-buffers; at least 8 KiB (Higress: 1), default 32 KiB (Higress: 60)")
        .ex("60", "4"),
    no_effect(HI, "downstream.connectionBufferLimits", G::Internals, ENVOY,
        |_, v| { uint(v, 0, u32::MAX)?; Ok(()) }),
    key(HI, "downstream.http2.maxConcurrentStreams", S::Http2MaxConcurrentStreams, G::Client, "1 to 2147483647", "128",
        "Concurrent streams on one HTTP/2 client connection",
        |c, v| { c.client.http2_max_concurrent_streams = uint(v, 1, i32::MAX as u32)?; Ok(()) })
        .different("the same setting as http2-max-concurrent-streams; default 128 (Higress: 100)")
        .ex("100", "0"),
    key(HI, "downstream.http2.initialStreamWindowSize", S::Http2StreamWindow, G::Client, "65535 to 2147483647", "the HTTP/2 server's",
        "Initial flow-control window of each HTTP/2 stream (new connections)",
        |c, v| { c.client.http2_stream_window = Some(uint(v, 65535, i32::MAX as u32)?); Ok(()) })
        .ex("65535", "1024"),
    key(HI, "downstream.http2.initialConnectionWindowSize", S::Http2ConnectionWindow, G::Client, "65535 to 2147483647", "the HTTP/2 server's",
        "Initial flow-control window of each HTTP/2 connection (new connections)",
        |c, v| { c.client.http2_connection_window = Some(uint(v, 65535, i32::MAX as u32)?); Ok(()) })
        .ex("1048576", "-5"),
    key(HI, "downstream.routeTimeout", S::RouteTimeout, G::Upstream, "whole seconds; 0: none", "0",
        "A whole request's time, where the route sets no timeout",
        |c, v| { let d = g::whole_seconds(v)?; c.upstream.route_timeout = (!d.is_zero()).then_some(d); Ok(()) })
        .different(TOTAL_TIME)
        .ex("30", "30s"),
    key(HI, "upstream.idleTimeout", S::UpstreamKeepaliveTimeout, G::Upstream, "whole seconds", "60",
        "How long an idle upstream connection is kept",
        |c, v| { c.upstream.keepalive_timeout = g::whole_seconds(v)?; Ok(()) })
        .different("the same setting as upstream-keepalive-timeout; default 60 s (Higress: 10 s)")
        .ex("10", "ten"),
    no_effect(HI, "upstream.connectionBufferLimits", G::Internals, ENVOY,
        |_, v| { uint(v, 0, u32::MAX)?; Ok(()) }),
    key(HI, "gzip.enable", S::UseGzip, G::Compression, BOOL, "false", "Compress answers with gzip",
        |c, v| { c.compression.gzip = bool_key(v)?; Ok(()) })
        .ex("true", "yes"),
    key(HI, "gzip.minContentLength", S::GzipMinLength, G::Compression, "bytes", "1024", "Smallest answer compressed",
        |c, v| { c.compression.gzip_min_length = uint(v, 0, u32::MAX)?.into(); Ok(()) })
        .ex("1024", "1k"),
    key(HI, "gzip.contentType", S::GzipTypes, G::Compression, "a list of MIME types", "text/html, application/json, ...", "MIME types compressed",
        |c, v| { c.compression.gzip_types = g::mime_types(v)?; Ok(()) })
        .ex("text/html, application/json", "html"),
    key(HI, "gzip.compressionLevel", S::GzipLevel, G::Compression, "BEST_SPEED, BEST_COMPRESSION, COMPRESSION_LEVEL_1 to _9", "BEST_COMPRESSION", "gzip compression level",
        |c, v| { c.compression.gzip_level = g::gzip_level_name(v)?; Ok(()) })
        .ex("BEST_SPEED", "FAST"),
    no_effect(HI, "gzip.disableOnEtagHeader", G::Compression, GZIP_ETAG, |_, v| { bool_key(v)?; Ok(()) }),
    no_effect(HI, "gzip.memoryLevel", G::Compression, GZIP_TUNING, |_, v| { uint(v, 1, 9)?; Ok(()) }),
    no_effect(HI, "gzip.windowBits", G::Compression, GZIP_TUNING, |_, v| { uint(v, 9, 15)?; Ok(()) }),
    no_effect(HI, "gzip.chunkSize", G::Compression, GZIP_TUNING, |_, v| { uint(v, 1, u32::MAX)?; Ok(()) }),
    no_effect(HI, "gzip.compressionStrategy", G::Compression, GZIP_TUNING, |_, v| {
        g::one_of(v, &["DEFAULT_STRATEGY", "FILTERED", "HUFFMAN_ONLY", "RLE", "FIXED"],
            "DEFAULT_STRATEGY, FILTERED, HUFFMAN_ONLY, RLE or FIXED")?;
        Ok(())
    }),
    key(HI, "tracing.enable", S::Tracing, G::Tracing, BOOL, "false", "Trace requests",
        |c, v| { c.tracing.enabled = bool_key(v)?; Ok(()) })
        .ex("true", "on"),
    key(HI, "tracing.sampling", S::TracingSampleRate, G::Tracing, "percent, 0 to 100", "100", "Share of requests traced",
        |c, v| { c.tracing.sample_rate = g::number(v, 0.0, 100.0)? / 100.0; Ok(()) })
        .ex("10", "200"),
    no_effect(HI, "tracing.timeout", G::Tracing, TRACE_TIMEOUT, |_, v| { g::millis(v)?; Ok(()) }),
    key(HI, "tracing.opentelemetry.service", S::TracingCollectorHost, G::Tracing, "a host name", "", "The OpenTelemetry collector",
        |c, v| { c.tracing.collector_host = Some(g::host(v)?); Ok(()) })
        .ex("otel.monitoring.svc", "no host"),
    key(HI, "tracing.opentelemetry.port", S::TracingCollectorPort, G::Tracing, "a port", "4317", "The OpenTelemetry collector's port",
        |c, v| { c.tracing.collector_port = g::port(v)?; Ok(()) })
        .ex("4317", "70000"),
    no_effect(HI, "tracing.skywalking", G::Tracing, "SkyWalking and Zipkin tracers are not available; use OpenTelemetry", any).section(),
    no_effect(HI, "tracing.zipkin", G::Tracing, "SkyWalking and Zipkin tracers are not available; use OpenTelemetry", any).section(),
    no_effect(HI, "mcpServer", G::Internals, "MCP servers are not supported yet; the section has no effect", any).section(),
];

/// The `MseIngressConfig` linked from the gateway's IngressClass.
#[rustfmt::skip]
pub(super) const MSE: &[GlobalKey] = &[
    key(MIC, "spec.global.ipAccessControl.whitelist", S::IpAllowList, G::Access, "list of addresses and CIDRs", "",
        "Only these clients are served; others get 403",
        |c, v| { c.access.allow = cidr_list(v)?; Ok(()) })
        .security()
        .ex("10.0.0.0/8", "10.0.0.0/33"),
    key(MIC, "spec.global.ipAccessControl.blacklist", S::IpDenyList, G::Access, "list of addresses and CIDRs", "",
        "These clients get 403",
        |c, v| { c.access.deny = cidr_list(v)?; Ok(()) })
        .security()
        .ex("192.0.2.0/24", "bogus"),
    no_effect(MIC, "spec.global.tls", G::Internals, "hardware acceleration of TLS is an Alibaba Cloud gateway setting; no effect", any).section(),
    key(MIC, "spec.monitor.tracing.openTelemetry.sampleRate", S::TracingSampleRate, G::Tracing, "percent, 0 to 100", "100",
        "Share of requests traced with OpenTelemetry",
        |c, v| { c.tracing.sample_rate = g::number(v, 0.0, 100.0)? / 100.0; Ok(()) })
        .ex("50", "101"),
    no_effect(MIC, "spec.monitor.tracing.xTrace", G::Tracing, CLOUD, any).section(),
    no_effect(MIC, "spec.monitor.logging", G::Logging, CLOUD, any).section(),
];

/// The command-line flags with a global equivalent, when given explicitly.
#[rustfmt::skip]
pub(super) const FLAGS: &[GlobalKey] = &[
    key(Layer::Flag, "--access-log", S::AccessLog, G::Logging, BOOL, "true",
        "Write the access log (also MSE_ACCESS_LOG); given explicitly, it beats disable-access-log",
        |c, v| { c.logging.access_log = bool_key(v)?; Ok(()) })
        .ex("false", "sometimes"),
    key(Layer::Flag, "--trusted-proxies", S::ProxyRealIpCidr, G::Forwarding, "comma list of addresses and CIDRs", "",
        "The proxies in front of the gateway: use-forwarded-headers with this proxy-real-ip-cidr. A client in the list is a proxy, and the client address is the right-most address of its X-Forwarded-For that is not in the list",
        |c, v| {
            c.forwarding.real_ip_cidr = cidr_list(v)?;
            c.forwarding.use_forwarded_headers = true;
            Ok(())
        })
        .ex("10.0.0.0/8, 192.168.0.0/16", "10.0.0.0/33"),
    key(Layer::Flag, "--proxy-protocol", S::UseProxyProtocol, G::Forwarding, BOOL, "false",
        "Every connection to the HTTP and HTTPS listeners opens with a PROXY protocol header (v1 or v2), as use-proxy-protocol",
        |c, v| { c.forwarding.use_proxy_protocol = bool_key(v)?; Ok(()) })
        .ex("true", "yes please"),
    key(Layer::Flag, "--allow-source-range", S::IpAllowList, G::Access, "comma list of addresses and CIDRs", "",
        "Gateway-wide allow list (file mode's spec.global.ipAccessControl.whitelist): only these clients are served; others get 403",
        |c, v| { c.access.allow = cidr_list(v)?; Ok(()) })
        .security()
        .ex("10.0.0.0/8, ::1", "10.0.0.0/33"),
    key(Layer::Flag, "--deny-source-range", S::IpDenyList, G::Access, "comma list of addresses and CIDRs", "",
        "Gateway-wide deny list (file mode's spec.global.ipAccessControl.blacklist): these clients get 403",
        |c, v| { c.access.deny = cidr_list(v)?; Ok(()) })
        .security()
        .ex("192.0.2.0/24", "bogus"),
    key(Layer::Flag, "--redis-url", S::RedisUrl, G::Limits, super::nginx::REDIS_URL, "",
        "The Redis that counts rate-limit and concurrency-limit for all replicas together, as the redis-url key",
        |c, v| { c.redis_url = Some(g::redis_url(v)?); Ok(()) })
        .ex("redis://127.0.0.1:6379", "127.0.0.1:6379"),
];
