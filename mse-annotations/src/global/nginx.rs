//! The ingress-nginx ConfigMap keys (the ConfigMap named by `--configmap`). Names,
//! grammars and defaults follow ingress-nginx's ConfigMap reference; where the gateway's
//! default differs, the row says so.

use super::grammar::{self as g, any};
use super::{
    GlobalGroup as G, GlobalKey, Layer, Reject, Setting as S, checked, key, no_effect, refused,
};
use crate::cidr::cidr_list;
use crate::value::{boolean, size, status, uint};

const CM: Layer = Layer::ConfigMap;
const BOOL: &str = "true or false";
const SECS: &str = "seconds (60) or a time (500ms, 60s, 5m)";
const SNIPPET: &str = "snippets inject raw NGINX configuration; the gateway runs no NGINX and never executes configuration supplied this way";
pub(super) const REDIS_URL: &str = "redis://[user:password@]host[:port][/db]";
const NGINX_ONLY: &str = "tunes NGINX itself, which the gateway does not run; no effect";

fn bool_key(v: &str) -> Result<bool, Reject> {
    Ok(boolean(v)?)
}

/// Every ingress-nginx key the gateway knows, by group.
#[rustfmt::skip]
pub(super) const NGINX: &[GlobalKey] = &[
    // --- Client connections ---
    key(CM, "client-header-timeout", S::ClientHeaderTimeout, G::Client, SECS, "10s",
        "Time a client has to send a whole request head, and to finish the TLS handshake",
        |c, v| { c.client.header_timeout = g::positive_duration(v)?; Ok(()) })
        .different("10 s by default (ingress-nginx: 60 s), so that slow clients cannot hold connections; applies to HTTP/1.1 heads and TLS handshakes")
        .ex("30", "ten"),
    key(CM, "client-body-timeout", S::ClientBodyTimeout, G::Client, SECS, "60s",
        "Longest wait between two reads of an HTTP/1.1 request body; past it the request gets 408",
        |c, v| { c.client.body_timeout = g::positive_duration(v)?; Ok(()) })
        .ex("30s", "0"),
    key(CM, "keep-alive", S::KeepAlive, G::Client, "seconds (75) or a time; 0: no keep-alive", "75s",
        "How long an idle HTTP/1.1 client connection waits for its next request; 0 closes every connection after one request",
        |c, v| { c.client.keep_alive = crate::value::duration(v)?; Ok(()) })
        .ex("30", "-1"),
    key(CM, "keep-alive-requests", S::KeepAliveRequests, G::Client, "a whole number, at least 1", "1000",
        "Requests served on one HTTP/1.1 client connection; the last answer says Connection: close",
        |c, v| { c.client.keep_alive_requests = uint(v, 1, u32::MAX)?; Ok(()) })
        .ex("100", "0"),
    key(CM, "large-client-header-buffers", S::MaxHeaderSize, G::Client, "number and size (4 8k)", "4 8k",
        "The largest request head (request line and headers, or the HTTP/2 header list) is number x size bytes; larger requests get 431. An HTTP/1.1 request target longer than one buffer gets 414",
        |c, v| { (c.client.max_header_size, c.client.max_request_target) = g::header_buffers(v)?; Ok(()) })
        .different("one limit for the whole head, between 8 KiB and 8 MiB; of its lines only the request target is limited to one buffer (nginx: every line)")
        .ex("4 16k", "4"),
    key(CM, "proxy-body-size", S::MaxBodySize, G::Client, "size (1024, 8k, 10m, 1g); 0: no limit", "1m",
        "Largest request body where the route sets no proxy-body-size annotation; larger bodies get 413",
        |c, v| { c.client.max_body_size = g::body_size(v)?; Ok(()) })
        .different("a body without Content-Length is counted as it streams: past the limit the upload is cut and the request gets 413 if no answer has started")
        .ex("8m", "ten"),
    key(CM, "max-worker-connections", S::MaxWorkerConnections, G::Client, "a whole number; 0: no limit", "16384",
        "Client connections open at once per worker; a connection accepted past the limit is closed at once",
        |c, v| { c.client.max_worker_connections = uint(v, 0, u32::MAX)?; Ok(()) })
        .different("counts client connections per worker thread (nginx: all connections of a worker process, upstream ones included); 0 means no limit (ingress-nginx: derived from max-worker-open-files)")
        .ex("4096", "many"),
    key(CM, "mse-decode-path-separators", S::DecodePathSeparators, G::Client, BOOL, "false",
        "The gateway's own key: true turns a backslash, %2F or %5C in a request path into / before the path is matched and forwarded; false refuses such paths with 400",
        |c, v| { c.client.decode_path_separators = bool_key(v)?; Ok(()) })
        .ex("true", "yes please"),
    key(CM, "http2-max-concurrent-streams", S::Http2MaxConcurrentStreams, G::Client, "a whole number, 1 to 2147483647", "128",
        "Concurrent streams on one HTTP/2 client connection (new connections)",
        |c, v| { c.client.http2_max_concurrent_streams = uint(v, 1, i32::MAX as u32)?; Ok(()) })
        .ex("256", "0"),
    // --- Upstream connections ---
    key(CM, "proxy-connect-timeout", S::ProxyConnectTimeout, G::Upstream, SECS, "5s",
        "Time to connect to an upstream (DNS lookup included); past it the client gets 504",
        |c, v| { c.upstream.connect_timeout = g::positive_duration(v)?; Ok(()) })
        .ex("10", "soon"),
    key(CM, "proxy-read-timeout", S::ProxyReadTimeout, G::Upstream, SECS, "60s",
        "Time an upstream has to answer (504 past it), and the longest wait between two reads of its response body",
        |c, v| { c.upstream.read_timeout = g::positive_duration(v)?; Ok(()) })
        .ex("120", "2x"),
    key(CM, "proxy-send-timeout", S::ProxySendTimeout, G::Upstream, SECS, "60s",
        "Longest wait for an upstream to take a write of a request (head or body chunk) where the route sets no proxy-send-timeout; past it the connection is closed and the client gets 504 if no answer has started. The wait for the client's own body is not counted",
        |c, v| { c.upstream.send_timeout = g::positive_duration(v)?; Ok(()) })
        .ex("120", "2x"),
    key(CM, "upstream-keepalive-connections", S::UpstreamKeepaliveConnections, G::Upstream, "a whole number; 0: no idle connections", "320",
        "Idle keep-alive connections kept per upstream address and worker",
        |c, v| { c.upstream.keepalive_connections = uint(v, 0, u32::MAX)?; Ok(()) })
        .different("counted per endpoint address and worker thread (nginx: per upstream group and worker process)")
        .ex("64", "many"),
    key(CM, "upstream-keepalive-timeout", S::UpstreamKeepaliveTimeout, G::Upstream, SECS, "60s",
        "How long an idle upstream connection is kept",
        |c, v| { c.upstream.keepalive_timeout = g::positive_duration(v)?; Ok(()) })
        .ex("30", "0"),
    key(CM, "upstream-keepalive-requests", S::UpstreamKeepaliveRequests, G::Upstream, "a whole number, at least 1", "10000",
        "Requests sent on one upstream connection before it is closed",
        |c, v| { c.upstream.keepalive_requests = uint(v, 1, u32::MAX)?; Ok(()) })
        .ex("100", "0"),
    key(CM, "upstream-keepalive-time", S::UpstreamKeepaliveTime, G::Upstream, SECS, "1h",
        "The longest life of an upstream connection",
        |c, v| { c.upstream.keepalive_time = g::positive_duration(v)?; Ok(()) })
        .not_applied("upstream connections are closed by idle time (upstream-keepalive-timeout) and request count (upstream-keepalive-requests) only")
        .ex("30m", "0"),
    key(CM, "mse-outlier-consecutive-errors", S::OutlierConsecutiveErrors, G::Upstream, "a whole number; 0: off", "5",
        "The gateway's own key: passive outlier detection on every Service. An endpoint that fails this many requests in a row (connection refused, reset or timed out, or a 5xx answer) is ejected: no request goes to it until its ejection ends. Never more than half of a Service's endpoints are ejected at once",
        |c, v| { c.upstream.outlier_consecutive_errors = uint(v, 0, u32::MAX)?; Ok(()) })
        .ex("10", "-1"),
    key(CM, "mse-outlier-base-ejection-time", S::OutlierBaseEjectionTime, G::Upstream, SECS, "30s",
        "The gateway's own key: how long an endpoint's first ejection lasts; the n-th ejection in a row lasts n times as long, up to mse-outlier-max-ejection-time. An endpoint that stays in for that long starts again from one",
        |c, v| { c.upstream.outlier_base_ejection_time = g::positive_duration(v)?; Ok(()) })
        .ex("10s", "0"),
    key(CM, "mse-outlier-max-ejection-time", S::OutlierMaxEjectionTime, G::Upstream, SECS, "300s",
        "The gateway's own key: the longest ejection of an endpoint",
        |c, v| { c.upstream.outlier_max_ejection_time = g::positive_duration(v)?; Ok(()) })
        .ex("10m", "never"),
    // --- Forwarding ---
    key(CM, "use-forwarded-headers", S::UseForwardedHeaders, G::Forwarding, BOOL, "false",
        "Trust the forwarding headers of clients in proxy-real-ip-cidr (a load balancer in front): their X-Forwarded-Proto, -Host and -Port are passed on, the client their forwarded-for-header list names is the client address (of the IP lists, X-Real-IP and the access log), and X-Forwarded-Proto: https counts as HTTPS for redirects and HSTS",
        |c, v| { c.forwarding.use_forwarded_headers = bool_key(v)?; Ok(()) })
        .different("only clients in proxy-real-ip-cidr are trusted (ingress-nginx passes X-Forwarded-Proto, -Host and -Port from any client; with the default 0.0.0.0/0 that is every IPv4 client); the Host sent upstream stays the request's; X-Forwarded-For keeps the client's list with the peer appended")
        .ex("true", "yes"),
    key(CM, "proxy-real-ip-cidr", S::ProxyRealIpCidr, G::Forwarding, "comma list of addresses and CIDRs", "0.0.0.0/0",
        "The proxies trusted with use-forwarded-headers; from the right of the forwarded-for-header list, the first address not in these is the client (nginx's real_ip_recursive)",
        |c, v| { c.forwarding.real_ip_cidr = cidr_list(v)?; Ok(()) })
        .ex("10.0.0.0/8, 192.168.0.0/16", "10.0.0.0/33"),
    key(CM, "forwarded-for-header", S::ForwardedForHeader, G::Forwarding, "a header name", "X-Forwarded-For",
        "The header a trusted proxy lists client addresses in",
        |c, v| { c.forwarding.forwarded_for_header = crate::value::header_name(v)?; Ok(()) })
        .ex("X-Original-Forwarded-For", "X Forwarded"),
    key(CM, "use-proxy-protocol", S::UseProxyProtocol, G::Forwarding, BOOL, "false",
        "Every connection to the HTTP and HTTPS listeners opens with a PROXY protocol header (v1 or v2), sent by the load balancer in front: its source address is the client's. A connection without a valid header within client-header-timeout is closed",
        |c, v| { c.forwarding.use_proxy_protocol = bool_key(v)?; Ok(()) })
        .ex("true", "on"),
    no_effect(CM, "compute-full-forwarded-for", G::Forwarding,
        "the gateway always appends the client address to the X-Forwarded-For it received, as compute-full-forwarded-for: true does",
        |_, v| { bool_key(v)?; Ok(()) }),
    no_effect(CM, "enable-real-ip", G::Forwarding, "the client address comes from forwarded-for-header only with use-forwarded-headers, which also trusts the other forwarding headers of proxy-real-ip-cidr", |_, v| { bool_key(v)?; Ok(()) }),
    // --- TLS ---
    key(CM, "ssl-redirect", S::SslRedirect, G::Tls, BOOL, "true",
        "Plain HTTP requests to a host with a certificate of its own get a redirect to HTTPS, unless the Ingress sets ssl-redirect",
        |c, v| { c.tls.ssl_redirect = bool_key(v)?; Ok(()) })
        .ex("false", "maybe"),
    key(CM, "force-ssl-redirect", S::ForceSslRedirect, G::Tls, BOOL, "false",
        "Plain HTTP requests get a redirect to HTTPS whether or not the host has a certificate, unless the Ingress sets force-ssl-redirect",
        |c, v| { c.tls.force_ssl_redirect = bool_key(v)?; Ok(()) })
        .ex("true", "always"),
    key(CM, "http-redirect-code", S::HttpRedirectCode, G::Tls, "301, 302, 307 or 308", "308",
        "Status of the redirects to HTTPS",
        |c, v| { c.tls.redirect_code = g::redirect_code(v)?; Ok(()) })
        .not_applied("redirects to HTTPS answer 308")
        .ex("301", "200"),
    key(CM, "hsts", S::Hsts, G::Tls, BOOL, "true",
        "Send Strict-Transport-Security on HTTPS answers of hosts with a certificate of their own",
        |c, v| { c.tls.hsts = bool_key(v)?; Ok(()) })
        .ex("false", "on"),
    key(CM, "hsts-max-age", S::HstsMaxAge, G::Tls, "seconds", "15724800",
        "max-age of Strict-Transport-Security",
        |c, v| { c.tls.hsts_max_age = uint(v, 0, u32::MAX)?.into(); Ok(()) })
        .ex("31536000", "1y"),
    key(CM, "hsts-include-subdomains", S::HstsIncludeSubdomains, G::Tls, BOOL, "true",
        "Add includeSubDomains to Strict-Transport-Security",
        |c, v| { c.tls.hsts_include_subdomains = bool_key(v)?; Ok(()) })
        .ex("false", "no"),
    key(CM, "hsts-preload", S::HstsPreload, G::Tls, BOOL, "false",
        "Add preload to Strict-Transport-Security",
        |c, v| { c.tls.hsts_preload = bool_key(v)?; Ok(()) })
        .ex("true", "y"),
    key(CM, "ssl-protocols", S::SslProtocols, G::Tls, "TLS versions, space-separated (TLSv1.2 TLSv1.3)", "TLSv1.2 TLSv1.3",
        "TLS versions offered to clients on hosts without tls-min/max-protocol-version",
        |c, v| { c.tls.protocols = g::tls_versions(v)?; Ok(()) })
        .ex("TLSv1.3", "TLSv1.1"),
    key(CM, "ssl-ciphers", S::SslCiphers, G::Tls, "cipher names separated by colons", "",
        "Cipher suites offered on hosts without an ssl-ciphers annotation; TLS 1.2 names restrict the TLS 1.2 suites and TLS 1.3 names the TLS 1.3 ones, as in ssl-ciphers; a name the TLS library does not offer makes the value invalid",
        |c, v| { c.tls.ciphers = Some(g::cipher_list(v)?); Ok(()) })
        .ex("ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-GCM-SHA256", "AES;x"),
    // --- Response headers ---
    key(CM, "global-allowed-response-headers", S::AllowedResponseHeaders, G::Headers, "comma list of header names", "",
        "The headers a custom-headers annotation may set; an Ingress whose custom-headers ConfigMap names another header answers 503, as in ingress-nginx",
        |c, v| { c.allowed_response_headers = g::header_names(v)?; Ok(()) })
        .different("header names are compared without regard to case")
        .ex("X-Frame-Options,Strict-Transport-Security", "X Frame"),
    no_effect(CM, "add-headers", G::Headers, "headers for every answer are not applied by this build yet; use the custom-headers or response-header-control annotations", any),
    no_effect(CM, "proxy-set-headers", G::Headers, "headers for every upstream request are not applied by this build yet; use the request-header-control annotations", any),
    no_effect(CM, "hide-headers", G::Headers, "removing upstream headers gateway-wide is not applied by this build yet; use response-header-control-remove", any),
    // --- Limits ---
    key(CM, "limit-req-status-code", S::LimitReqStatusCode, G::Limits, "an HTTP status, 400 to 599", "503",
        "Status of requests over a rate limit",
        |c, v| { c.limit_req_status_code = status(v, 400, 599)?; Ok(()) })
        .ex("429", "99"),
    key(CM, "limit-conn-status-code", S::LimitConnStatusCode, G::Limits, "an HTTP status, 400 to 599", "503",
        "Status of requests over a connection limit",
        |c, v| { c.limit_conn_status_code = status(v, 400, 599)?; Ok(()) })
        .ex("429", "600"),
    key(CM, "redis-url", S::RedisUrl, G::Limits, REDIS_URL, "",
        "The Redis that counts rate-limit and concurrency-limit for all replicas together (the gateway's own key); unset, or while Redis cannot be reached, each replica enforces them on its own",
        |c, v| { c.redis_url = Some(g::redis_url(v)?); Ok(()) })
        .ex("redis://redis.ingress:6379/0", "http://redis:6379"),
    // --- Compression ---
    key(CM, "use-gzip", S::UseGzip, G::Compression, BOOL, "false", "Compress answers with gzip",
        |c, v| { c.compression.gzip = bool_key(v)?; Ok(()) })
        .ex("true", "gzip"),
    key(CM, "gzip-level", S::GzipLevel, G::Compression, "1 to 9", "1", "gzip compression level",
        |c, v| { c.compression.gzip_level = uint(v, 1, 9)?; Ok(()) })
        .ex("5", "10"),
    key(CM, "gzip-min-length", S::GzipMinLength, G::Compression, "a size in bytes", "256", "Smallest answer compressed",
        |c, v| { c.compression.gzip_min_length = size(v)?; Ok(()) })
        .ex("1024", "small"),
    key(CM, "gzip-types", S::GzipTypes, G::Compression, "MIME types, space-separated", "text/css, application/json, ... (as ingress-nginx)", "MIME types compressed",
        |c, v| { c.compression.gzip_types = g::mime_types(v)?; Ok(()) })
        .ex("text/html application/json", "html"),
    key(CM, "enable-brotli", S::EnableBrotli, G::Compression, BOOL, "false", "Compress answers with Brotli",
        |c, v| { c.compression.brotli = bool_key(v)?; Ok(()) })
        .ex("true", "br"),
    key(CM, "brotli-level", S::BrotliLevel, G::Compression, "1 to 11", "4", "Brotli compression level",
        |c, v| { c.compression.brotli_level = uint(v, 1, 11)?; Ok(()) })
        .ex("6", "12"),
    key(CM, "brotli-types", S::BrotliTypes, G::Compression, "MIME types, space-separated", "as gzip-types", "MIME types compressed with Brotli",
        |c, v| { c.compression.brotli_types = g::mime_types(v)?; Ok(()) })
        .ex("text/html", "html"),
    // --- Logging ---
    key(CM, "disable-access-log", S::AccessLog, G::Logging, BOOL, "false",
        "Turn the access log off for every request (of the connections accepted after the change)",
        |c, v| { c.logging.access_log = !bool_key(v)?; Ok(()) })
        .ex("true", "off"),
    key(CM, "log-format-upstream", S::LogFormatUpstream, G::Logging, "an nginx log format ($remote_addr ...)", "",
        "Format of access log lines",
        |c, v| {
            let v = g::text(v)?;
            super::log_format::parse_log_format(&v).map_err(crate::ValueError::Invalid)?;
            c.logging.format_upstream = Some(v);
            Ok(())
        })
        .ex("$remote_addr $status", "$remote_addr $geoip_country"),
    key(CM, "log-format-escape-json", S::LogFormatEscapeJson, G::Logging, BOOL, "false",
        "Escape variables of log-format-upstream for JSON",
        |c, v| { c.logging.escape_json = bool_key(v)?; Ok(()) })
        .ex("true", "json"),
    no_effect(CM, "access-log-path", G::Logging, "the access log goes where the gateway's --access-log-path says (standard output by default)", any),
    // --- Tracing ---
    key(CM, "generate-request-id", S::GenerateRequestId, G::Logging, BOOL, "true",
        "Give requests without a valid X-Request-ID one (sent upstream and logged); a client's valid one is kept either way",
        |c, v| { c.logging.generate_request_id = bool_key(v)?; Ok(()) })
        .ex("false", "no"),
    // --- Tracing ---
    key(CM, "enable-opentelemetry", S::Tracing, G::Tracing, BOOL, "false",
        "Trace requests with OpenTelemetry: one server span per request, exported over OTLP/gRPC (on the connections accepted after the change)",
        |c, v| { c.tracing.enabled = bool_key(v)?; Ok(()) })
        .ex("true", "otel"),
    key(CM, "opentelemetry-trust-incoming-span", S::TracingTrustIncomingSpan, G::Tracing, BOOL, "true",
        "Continue the trace of a client's traceparent (and follow its sampling decision); false starts a new trace",
        |c, v| { c.tracing.trust_incoming_span = bool_key(v)?; Ok(()) })
        .ex("false", "maybe"),
    key(CM, "otlp-collector-host", S::TracingCollectorHost, G::Tracing, "a host name or IP address", "", "The OTLP collector (no spans are sent without one)",
        |c, v| { c.tracing.collector_host = Some(g::host(v)?); Ok(()) })
        .ex("otel-collector.monitoring", "no host"),
    key(CM, "otlp-collector-port", S::TracingCollectorPort, G::Tracing, "a port", "4317", "The OTLP collector's gRPC port",
        |c, v| { c.tracing.collector_port = g::port(v)?; Ok(()) })
        .ex("4317", "0"),
    key(CM, "otel-sampler-ratio", S::TracingSampleRate, G::Tracing, "0 to 1", "0.01", "Share of new traces sampled (a trusted parent's decision is followed)",
        |c, v| { c.tracing.sample_rate = g::number(v, 0.0, 1.0)?; Ok(()) })
        .ex("0.5", "2"),
    key(CM, "otel-service-name", S::TracingServiceName, G::Tracing, "text", "mse-gateway", "Service name of the spans",
        |c, v| { c.tracing.service_name = g::text(v)?; Ok(()) })
        .ex("edge", ""),
    // --- Injected configuration ---
    checked(CM, "allow-snippet-annotations", G::Security, BOOL, "false",
        "*-snippet annotations are never executed: true is refused with an error",
        |_, v| if bool_key(v)? { Err(Reject::Refused(SNIPPET)) } else { Ok(()) })
        .different("always false: snippet annotations are refused whatever this says")
        .ex("false", "maybe"),
    refused(CM, "main-snippet", SNIPPET),
    refused(CM, "http-snippet", SNIPPET),
    refused(CM, "server-snippet", SNIPPET),
    refused(CM, "location-snippet", SNIPPET),
    refused(CM, "stream-snippet", SNIPPET),
    no_effect(CM, "annotation-value-word-blocklist", G::Security, "annotation values are typed and never reach a configuration file, so there are no words to block", any),
    no_effect(CM, "annotations-risk-level", G::Security, "annotations are typed and snippets are always refused", any),
    // --- NGINX internals ---
    no_effect(CM, "worker-processes", G::Internals, "the gateway runs one worker thread per core (--workers)", any),
    no_effect(CM, "worker-shutdown-timeout", G::Internals, "the gateway drains connections for its shutdown grace (30 s)", any),
    no_effect(CM, "max-worker-open-files", G::Internals, NGINX_ONLY, any),
    no_effect(CM, "reuse-port", G::Internals, "the gateway always listens with SO_REUSEPORT", any),
    no_effect(CM, "enable-multi-accept", G::Internals, NGINX_ONLY, any),
    no_effect(CM, "client-header-buffer-size", G::Internals, NGINX_ONLY, any),
    no_effect(CM, "client-body-buffer-size", G::Internals, NGINX_ONLY, any),
    no_effect(CM, "proxy-buffering", G::Internals, "answers are streamed; buffering is internal to the gateway", any),
    no_effect(CM, "proxy-buffer-size", G::Internals, NGINX_ONLY, any),
    no_effect(CM, "proxy-buffers-number", G::Internals, NGINX_ONLY, any),
    no_effect(CM, "proxy-request-buffering", G::Internals, "request bodies are streamed; buffering is internal to the gateway", any),
    no_effect(CM, "ssl-buffer-size", G::Internals, NGINX_ONLY, any),
    no_effect(CM, "server-tokens", G::Internals, "the gateway never names itself in a Server header", any),
    no_effect(CM, "map-hash-bucket-size", G::Internals, NGINX_ONLY, any),
    no_effect(CM, "server-name-hash-bucket-size", G::Internals, NGINX_ONLY, any),
    no_effect(CM, "server-name-hash-max-size", G::Internals, NGINX_ONLY, any),
    no_effect(CM, "proxy-headers-hash-bucket-size", G::Internals, NGINX_ONLY, any),
    no_effect(CM, "proxy-headers-hash-max-size", G::Internals, NGINX_ONLY, any),
    no_effect(CM, "variables-hash-bucket-size", G::Internals, NGINX_ONLY, any),
    no_effect(CM, "variables-hash-max-size", G::Internals, NGINX_ONLY, any),
    no_effect(CM, "error-log-level", G::Internals, "the gateway's log level is set with RUST_LOG", any),
    no_effect(CM, "lua-shared-dicts", G::Internals, NGINX_ONLY, any),
    no_effect(CM, "plugins", G::Internals, NGINX_ONLY, any),
];
