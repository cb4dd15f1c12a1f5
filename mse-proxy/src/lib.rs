//! The data plane of the mse-ingress gateway.
//!
//! `mse-proxy` serves what [`mse_router`] compiled: it sits below `mse-controller` (which
//! compiles tables and calls [`SharedTable::publish`]) and above the router and model
//! crates, and does socket I/O only: it never talks to Kubernetes.
//!
//! - [`SharedTable`] holds the [`mse_router::RouteTable`] being served and swaps a new one
//!   in atomically; requests already running finish on the table they started with.
//! - [`Gateway::start`] binds the listeners and runs one worker thread per core, each with a
//!   single-threaded tokio runtime, its own `SO_REUSEPORT` sockets and its own upstream
//!   connection pool. The plain port serves HTTP/1.1 and h2c; the TLS port picks the
//!   certificate by SNI from the table (or a self-signed fallback) and serves HTTP/1.1 or
//!   HTTP/2 by ALPN. HTTP/1.1 clients are served by the gateway's own server loop (one task
//!   per connection parses each head, proxies it and writes the answer), HTTP/2 clients by
//!   hyper's server. Requests are forwarded over pooled HTTP/1.1 keep-alive connections by a
//!   lean client driven inline by each request's task (no per-request hand-off to a
//!   connection task); WebSocket and other upgrades are tunnelled through hyper's client.
//! - [`Metrics`] (with per-route request metrics kept by each worker and added up when
//!   scraped) and the access log (ingress-nginx's `upstream` line, JSON or
//!   `log-format-upstream`, buffered per worker and written to an [`AccessLogSink`]) say
//!   what happened;
//!   [`admin::serve`] exposes health, readiness, metrics, routes and diagnostics.
//! - [`echo::EchoServer`] is a real backend for demos and tests.
//! - Per-Ingress annotations act in the request path: redirects, header edits, rewrites,
//!   CORS (preflights from allowed origins are answered with 204, other answers get the
//!   CORS headers) and mirroring (a sampled copy of each request goes to the mirror in a
//!   task of its own, and its answer is dropped), and the local rate and connection
//!   limits (`route-limit-*` per route, `limit-*` per client address; per replica, with
//!   one limiter per route shared by the workers).
//!
//! - The route table's global configuration ([`mse_router::RouteTable::global`]) sets the
//!   timeouts and limits of connections accepted and requests routed after it is published
//!   (keep-alive, header and body timeouts and sizes, the upstream pool, the access log,
//!   HSTS, the gateway-wide IP lists); what it leaves at its default comes from
//!   [`ProxyConfig`]. Connection limits and the access log switch are taken when a
//!   connection is accepted: an open keep-alive connection keeps them, as nginx keeps an
//!   open connection on the configuration it started with.
//!
//! Status codes the gateway answers itself: 404 no route (unless a gateway-wide default
//! backend is set), 503 backend unavailable or no ready endpoint (unless `default-backend`
//! serves the route), 502 upstream connection failure, 504 upstream connect or response
//! timeout, 431 request head too large, 414 request target too long, 413 request body over
//! `proxy-body-size`, 429 (`route-limit-*`) and 503 (`limit-*`, or the global
//! `limit-req-status-code`/`limit-conn-status-code`) for requests over a local limit,
//! 408 request body stalled past `client-body-timeout`, 403 client refused by the
//! gateway-wide IP lists, 400 malformed request (an HTTP/1.1 request without `Host`,
//! an invalid host, a path with a backslash, `%2F`, `%5C` or `..;`, ambiguous framing
//! included), 501 a transfer coding besides `chunked`, 405 for `CONNECT`.
//!
//! ```no_run
//! use std::sync::Arc;
//! use mse_model::{load_manifests, Snapshot};
//! use mse_proxy::{Gateway, Metrics, ProxyConfig, SharedTable};
//! use mse_router::{compile, CompileOptions};
//!
//! # async fn run() -> Result<(), mse_proxy::ProxyError> {
//! let yaml = std::fs::read_to_string("routes.yaml").unwrap_or_default();
//! let mut snapshot = Snapshot::default();
//! snapshot.extend(load_manifests(&yaml, Some("routes.yaml")).objects);
//!
//! let table = SharedTable::new(Arc::new(Metrics::new()));
//! table.publish(Arc::new(compile(&snapshot, &CompileOptions::default())));
//!
//! let mut config = ProxyConfig::default();
//! config.http_addr = Some("127.0.0.1:8080".parse().unwrap());
//! config.https_addr = None;
//! let gateway = Gateway::start(config, table)?;
//! println!("listening on {:?}", gateway.http_addr());
//! gateway.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod body;
mod config;
mod error;
mod forwarded;
mod http1;
mod log;
mod log_writer;
mod metrics;
mod otel;
mod policy;
mod proxy;
mod proxy_protocol;
mod server;
mod settings;
mod stats;
mod table;
mod timer;
mod tls;
mod upstream;
mod websocket_h2;

pub mod admin;
pub mod echo;
pub mod phases;

pub use config::{AffinityKey, ProxyConfig, Timeouts};
pub use error::{Blame, Chain, ProxyError};
#[doc(hidden)]
pub use http1::{DecodedChunked, decode_chunked, parse_request_head};
pub use log_writer::AccessLogSink;
pub use metrics::{CompileReport, Metrics, WatchReport};
pub use policy::auth_tls::{AuthUrlRoots, roots_from_pem};
#[doc(hidden)]
pub use policy::shared_limit::BenchLimiter;
pub use policy::shared_limit::SharedLimitConfig;
pub use server::{Gateway, GatewayHandle};
pub use table::{ProxyTable, SharedTable};
pub use tls::{FALLBACK_CERT_CN, FALLBACK_CERT_SAN, fallback_certificate};
pub use upstream::Upstream;
