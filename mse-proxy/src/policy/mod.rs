//! The request-time half of the gateway's own policies, one module each. Their
//! configuration is compiled once per route by `mse-router` (its `policy` modules, joined
//! into [`mse_router::RoutePolicy`]); the phase functions in `proxy` call these modules in
//! phase order (see [`crate::phases`]):
//!
//! | module | phases |
//! |---|---|
//! | [`basic_auth`] | access (`auth-type: basic`; bcrypt waits on a blocking thread) |
//! | [`external_auth`] | access (`auth-url`: a subrequest; waits), with [`auth_tls`] for `https` |
//! | [`limit`] | access (`route-limit-*`, `limit-*`: buckets and counts shared by the workers) |
//! | [`shared_limit`] | access (`rate-limit`, `concurrency-limit`: shared by the replicas through Redis; waits at most a bound) |
//! | [`cors`] | decision (preflight answer), response (headers on other answers) |
//! | [`redirect`] | decision (`permanent-redirect`, `temporal-redirect`, HTTPS, `app-root`) |
//! | [`headers`] | exchange (request edits, written into the upstream head), response (edits, `proxy-redirect-*`) |
//! | [`balance`] | upstream selection (`load-balance`, `upstream-hash-by`, cookie affinity), response (the affinity cookie) |
//! | [`fallback`] | upstream selection (default backends), response (`custom-http-errors` pages) |
//! | [`mirror`] | exchange (a sampled copy of the request) |
//! | [`retry`] | exchange (the route's timeouts, retries on another endpoint) |
//! | [`warmup`] | upstream selection (`warmup`: slow start for round robin and `least_conn`) |
//! | [`outlier`] | upstream selection (ejected endpoints skipped), exchange (failures counted) |
//! | [`compress`] | request head (`Accept-Encoding`), response (gzip, brotli) |
//!
//! Canary choice and rewrites are decided by the router itself
//! ([`mse_router::Route::destination`], [`mse_router::RoutePolicy::rewrite_path`]).

pub(crate) mod auth_tls;
pub(crate) mod balance;
pub(crate) mod basic_auth;
pub(crate) mod compress;
pub(crate) mod cors;
pub(crate) mod external_auth;
pub(crate) mod fallback;
pub(crate) mod headers;
pub(crate) mod limit;
pub(crate) mod load;
pub(crate) mod mirror;
pub(crate) mod outlier;
pub(crate) mod redirect;
pub(crate) mod remembered;
pub(crate) mod retry;
pub(crate) mod shared_limit;
pub(crate) mod warmup;
