//! The registry: every annotation key the gateway knows, with its grammar, default, scope,
//! origin, support status and one line of documentation.
//!
//! This table is the single source for the parser's defaults and diagnostics, for
//! `docs/annotations.md` ([`crate::support_matrix`]) and for the migration report
//! ([`crate::Migration`]). Keys are listed without prefix; every key is read under all three
//! [`crate::PREFIXES`].

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

use serde::Serialize;

/// Which feature a key belongs to (the sections of the support matrix).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Group {
    /// Canary releases.
    Canary,
    /// Cross-origin resource sharing.
    Cors,
    /// Path rewriting and regex paths.
    Rewrite,
    /// Redirects.
    Redirect,
    /// Upstream protocol and upstream TLS.
    Backend,
    /// Load balancing and session affinity.
    LoadBalancing,
    /// Service subsets, warm-up and connection pools.
    Service,
    /// Client-facing TLS.
    Tls,
    /// IP allow and deny lists.
    AccessControl,
    /// Timeouts.
    Timeout,
    /// Retries.
    Retry,
    /// Rate, connection and body-size limits.
    Limits,
    /// Fallback service and error pages.
    Fallback,
    /// Traffic mirroring.
    Mirror,
    /// Request and response header edits.
    Headers,
    /// Extra match conditions.
    Matching,
    /// Basic and external authentication.
    Auth,
    /// Host aliases and logging.
    Server,
    /// Keys that tune or extend NGINX itself.
    Nginx,
    /// Registry-backed destinations and MCP servers (later).
    Later,
}

impl Group {
    /// Every group, in the order of the support matrix.
    pub const ALL: [Group; 20] = [
        Group::Canary,
        Group::Cors,
        Group::Rewrite,
        Group::Redirect,
        Group::Backend,
        Group::LoadBalancing,
        Group::Service,
        Group::Tls,
        Group::AccessControl,
        Group::Timeout,
        Group::Retry,
        Group::Limits,
        Group::Fallback,
        Group::Mirror,
        Group::Headers,
        Group::Matching,
        Group::Auth,
        Group::Server,
        Group::Nginx,
        Group::Later,
    ];

    /// A heading for the group.
    pub fn title(self) -> &'static str {
        match self {
            Group::Canary => "Canary",
            Group::Cors => "CORS",
            Group::Rewrite => "Rewrite and regex paths",
            Group::Redirect => "Redirects",
            Group::Backend => "Upstream protocol and TLS",
            Group::LoadBalancing => "Load balancing and session affinity",
            Group::Service => "Service subsets and connection pools",
            Group::Tls => "Client TLS and host aliases",
            Group::AccessControl => "IP access control",
            Group::Timeout => "Timeouts",
            Group::Retry => "Retries",
            Group::Limits => "Limits",
            Group::Fallback => "Fallback and error pages",
            Group::Mirror => "Mirroring",
            Group::Headers => "Header edits",
            Group::Matching => "Match conditions",
            Group::Auth => "Authentication",
            Group::Server => "Logging",
            Group::Nginx => "NGINX internals",
            Group::Later => "Not yet supported",
        }
    }
}

/// What a key's setting applies to (Part B §0 of the specification).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// This Ingress's routes.
    Ingress,
    /// Every route of the host, whichever Ingress defines it (the oldest Ingress setting it
    /// wins).
    Host,
    /// The Service port, wherever it is used (the oldest Ingress setting it wins).
    Service,
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scope::Ingress => "Ingress",
            Scope::Host => "host",
            Scope::Service => "Service",
        })
    }
}

/// Where a key comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Compat {
    /// An ingress-nginx key.
    Nginx,
    /// A Higress extension.
    Higress,
    /// An MSE extension.
    Mse,
}

impl fmt::Display for Compat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compat::Nginx => "NGINX",
            Compat::Higress => "Higress ext.",
            Compat::Mse => "MSE ext.",
        })
    }
}

/// How the gateway treats a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case", tag = "status", content = "note")]
pub enum Support {
    /// Parsed and honoured as documented (as in ingress-nginx for NGINX keys).
    Supported,
    /// Parsed and honoured, with semantics that differ from ingress-nginx as described.
    Different(&'static str),
    /// Accepted and ignored: it tunes NGINX itself, which the gateway does not run. An
    /// informational note.
    NoEffect(&'static str),
    /// Accepted and ignored with a warning: the feature is not available (yet). Security
    /// keys among these fail closed.
    Unsupported(&'static str),
    /// Refused with an error: the key injects NGINX configuration.
    Refused(&'static str),
}

/// How a key name is matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pattern {
    /// The key exactly.
    Fixed,
    /// A dynamic family: the name followed by a non-empty suffix (`exact-match-header-X`).
    Prefix,
    /// Any key ending with the name (`*-snippet`).
    Suffix,
}

/// One entry of the registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct KeySpec {
    /// The key without prefix; for a family, the fixed part.
    pub name: &'static str,
    /// How `name` is matched.
    pub pattern: Pattern,
    /// The feature it belongs to.
    pub group: Group,
    /// What the setting applies to.
    pub scope: Scope,
    /// ingress-nginx key or extension.
    pub compat: Compat,
    /// The value grammar, in words.
    pub values: &'static str,
    /// The default, in words; empty when unset means "off" or "none".
    pub default: &'static str,
    /// How the gateway treats it.
    pub support: Support,
    /// Whether a bad value fails closed (the Ingress's routes answer 503) instead of falling
    /// back to the default.
    pub security: bool,
    /// One line of documentation.
    pub doc: &'static str,
    /// A valid example value (tests and docs).
    #[serde(skip)]
    pub valid: &'static str,
    /// An invalid example value, empty when every value is accepted (tests).
    #[serde(skip)]
    pub invalid: &'static str,
}

impl KeySpec {
    /// The key as shown to users: `exact-match-header-<name>`, `*-snippet`, or the name.
    pub fn display_name(&self) -> String {
        match self.pattern {
            Pattern::Fixed => self.name.to_owned(),
            Pattern::Prefix => format!("{}<name>", self.name),
            Pattern::Suffix => format!("*{}", self.name),
        }
    }

    /// Whether `name` (without prefix) is this key or a member of this family.
    pub fn matches(&self, name: &str) -> bool {
        match self.pattern {
            Pattern::Fixed => name == self.name,
            Pattern::Prefix => name.len() > self.name.len() && name.starts_with(self.name),
            Pattern::Suffix => name.len() > self.name.len() && name.ends_with(self.name),
        }
    }

    /// Whether the gateway honours the key (possibly with different semantics).
    pub fn is_supported(&self) -> bool {
        matches!(self.support, Support::Supported | Support::Different(_))
    }

    const fn security(mut self) -> Self {
        self.security = true;
        self
    }
    const fn different(mut self, note: &'static str) -> Self {
        self.support = Support::Different(note);
        self
    }
    const fn family(mut self) -> Self {
        self.pattern = Pattern::Prefix;
        self
    }
    const fn ex(mut self, valid: &'static str, invalid: &'static str) -> Self {
        self.valid = valid;
        self.invalid = invalid;
        self
    }
}

const fn key(
    name: &'static str,
    group: Group,
    scope: Scope,
    compat: Compat,
    values: &'static str,
    default: &'static str,
    doc: &'static str,
) -> KeySpec {
    KeySpec {
        name,
        pattern: Pattern::Fixed,
        group,
        scope,
        compat,
        values,
        default,
        support: Support::Supported,
        security: false,
        doc,
        valid: "",
        invalid: "",
    }
}

/// An NGINX key that has no meaning here (informational note).
const fn nginx_only(name: &'static str, why: &'static str) -> KeySpec {
    let mut k = key(
        name,
        Group::Nginx,
        Scope::Ingress,
        Compat::Nginx,
        "",
        "",
        why,
    );
    k.support = Support::NoEffect(why);
    k
}

/// A key whose feature is not available; a warning (an error that fails closed for
/// security keys).
const fn unsupported(
    name: &'static str,
    group: Group,
    compat: Compat,
    hint: &'static str,
) -> KeySpec {
    let mut k = key(name, group, Scope::Ingress, compat, "", "", hint);
    k.support = Support::Unsupported(hint);
    k
}

const fn refused(name: &'static str, why: &'static str) -> KeySpec {
    let mut k = key(
        name,
        Group::Nginx,
        Scope::Ingress,
        Compat::Nginx,
        "",
        "",
        why,
    );
    k.support = Support::Refused(why);
    k
}

use Compat::{Higress, Mse, Nginx};
use Group as G;
use Scope::{Host, Ingress, Service};

const BOOL: &str = "true or false";
const SECS: &str = "seconds (60) or a time (500ms, 60s, 5m, 1h)";
const CIDRS: &str = "comma list of IP addresses and CIDRs";
const SNIPPET: &str = "snippets inject raw NGINX configuration; mse-ingress runs no NGINX and never executes configuration supplied in an Ingress (in a shared gateway that is a privilege escalation, see CVE-2021-25742); use the typed annotations instead";
const LATER: &str = "not supported yet (registry-backed destinations, Dubbo transcoding and MCP servers come later); the key has no effect";
const CACHE: &str = "buffering and caching are internal to the gateway; the key has no effect";
const TRACING: &str = "metrics and tracing are configured gateway-wide; the key has no effect";

/// Every key the gateway knows, grouped as in the support matrix.
pub static KEYS: &[KeySpec] = &[
    // --- Canary ---
    key("canary", G::Canary, Ingress, Nginx, BOOL, "false",
        "Marks the Ingress as a canary of the main Ingress with the same host and path; a value that is not a boolean is an error and the Ingress is left out")
        .ex("true", "yes"),
    key("canary-by-header", G::Canary, Ingress, Nginx, "header name", "",
        "Requests whose header is `always` go to the canary and `never` never do; other values fall through to the cookie, then the weight")
        .ex("X-Canary", "bad header"),
    key("canary-by-header-value", G::Canary, Ingress, Nginx, "text", "",
        "Header value that selects the canary instead of `always`, compared literally (never as a regex)")
        .ex("v2", "v2\u{7}"),
    key("canary-by-header-pattern", G::Canary, Ingress, Nginx, "regex", "",
        "Regex that selects the canary when it matches anywhere in the header value; ignored when canary-by-header-value is set")
        .different("linear-time RE2 syntax (no look-around or backreferences) instead of PCRE")
        .ex("^v[23]$", "(?=v2)"),
    key("canary-by-cookie", G::Canary, Ingress, Nginx, "cookie name", "",
        "Requests whose cookie is `always` go to the canary and `never` never do")
        .ex("canary", "bad cookie"),
    key("canary-by-cookie-value", G::Canary, Ingress, Mse, "text", "",
        "Cookie value that selects the canary instead of `always`, compared literally")
        .ex("beta", "beta\u{7}"),
    key("canary-by-query", G::Canary, Ingress, Mse, "query parameter name", "",
        "Like canary-by-header, on a URL query parameter")
        .ex("canary", "a=b"),
    key("canary-by-query-value", G::Canary, Ingress, Mse, "text", "",
        "Query value that selects the canary instead of `always`, compared literally")
        .ex("beta", "beta\u{7}"),
    key("canary-by-query-pattern", G::Canary, Ingress, Mse, "regex", "",
        "Regex on the query parameter's value; ignored when canary-by-query-value is set")
        .ex("^beta", "(?=x)"),
    key("canary-weight", G::Canary, Ingress, Nginx, "integer 0 to canary-weight-total", "0",
        "Share of the remaining requests sent to the canary, out of canary-weight-total")
        .ex("10", "ten"),
    key("canary-weight-total", G::Canary, Ingress, Nginx, "integer >= 1", "100",
        "Denominator of canary-weight")
        .ex("1000", "0"),
    // --- CORS ---
    key("enable-cors", G::Cors, Ingress, Nginx, BOOL, "false",
        "Answers CORS preflights and adds CORS headers; the other cors-* keys need it")
        .ex("true", "on"),
    key("cors-allow-origin", G::Cors, Ingress, Nginx,
        "comma list of `*`, origins (`https://a.example.com:8443`) and `https://*.example.com`", "*",
        "Origins allowed; an entry without a scheme is dropped")
        .ex("https://a.example.com, https://*.example.com", "example.com"),
    key("cors-allow-methods", G::Cors, Ingress, Nginx, "comma list of HTTP methods, or `*`",
        "GET, PUT, POST, DELETE, PATCH, OPTIONS", "Methods allowed in cross-origin requests")
        .ex("GET, POST", "FETCH"),
    key("cors-allow-headers", G::Cors, Ingress, Nginx, "comma list of header names, or `*`",
        "DNT, X-CustomHeader, Keep-Alive, User-Agent, X-Requested-With, If-Modified-Since, Cache-Control, Content-Type, Authorization",
        "Request headers allowed in cross-origin requests")
        .ex("X-Token, Content-Type", "bad header"),
    key("cors-expose-headers", G::Cors, Ingress, Nginx, "comma list of header names, or `*`", "",
        "Response headers the browser may expose to scripts")
        .ex("X-Request-Id", "bad header"),
    key("cors-allow-credentials", G::Cors, Ingress, Nginx, BOOL, "true",
        "Whether cross-origin requests may carry credentials")
        .ex("false", "nope"),
    key("cors-max-age", G::Cors, Ingress, Nginx, SECS, "1728000",
        "How long browsers may cache a preflight answer")
        .ex("600", "ten minutes"),
    // --- Rewrite ---
    key("rewrite-target", G::Rewrite, Ingress, Nginx, "path, may use $1 to $9 from regex paths", "",
        "Replaces the matched path before proxying")
        .different("capture groups come from this Ingress's own regex paths (RE2 syntax, case-sensitive); other Ingresses of the host are unaffected")
        .ex("/$2", "/$request_uri"),
    key("use-regex", G::Rewrite, Ingress, Nginx, BOOL, "false",
        "Treats this Ingress's paths as regexes")
        .different("only this Ingress's paths become regexes (ingress-nginx: every path of the host); RE2 syntax, case-sensitive unless ignore-path-case; Exact and Prefix paths are still tried first")
        .ex("true", "yes"),
    key("full-path-regex", G::Rewrite, Ingress, Higress, BOOL, "false",
        "Treats paths as regexes that must match the whole path; wins over use-regex")
        .ex("true", "maybe"),
    key("rewrite-path", G::Rewrite, Ingress, Higress, "path", "",
        "Plain rewrite without regex: the matched prefix (or the exact path) is replaced; wins over rewrite-target")
        .ex("/v2", "v2"),
    key("upstream-vhost", G::Rewrite, Ingress, Nginx, "host[:port]", "",
        "Host header sent to the upstream")
        .ex("internal.example.com", "bad host!"),
    key("x-forwarded-prefix", G::Rewrite, Ingress, Nginx, "text", "",
        "Adds an X-Forwarded-Prefix request header with this value")
        .ex("/shop", "/shop\u{7}"),
    // --- Redirect ---
    key("ssl-redirect", G::Redirect, Ingress, Nginx, BOOL, "true when the host has TLS, else false",
        "Redirects plaintext requests to HTTPS with 308")
        .ex("false", "no"),
    key("force-ssl-redirect", G::Redirect, Ingress, Nginx, BOOL, "false",
        "Redirects plaintext requests to HTTPS with 308, even when the host has no TLS here (TLS terminated in front)")
        .ex("true", "always"),
    key("permanent-redirect", G::Redirect, Ingress, Nginx, "absolute http(s) URL, or a path on the same host; $host, $scheme, $request_uri, $escaped_request_uri, $uri allowed", "",
        "Answers every request with a redirect to this URL, code from permanent-redirect-code")
        .ex("https://new.example.com$request_uri", "new.example.com"),
    key("permanent-redirect-code", G::Redirect, Ingress, Nginx, "300 to 308", "301",
        "Status code of permanent-redirect")
        .ex("308", "200"),
    key("temporal-redirect", G::Redirect, Ingress, Nginx, "absolute http(s) URL or a path, as permanent-redirect", "",
        "Answers every request with a 302 redirect to this URL; wins over permanent-redirect")
        .ex("/maintenance", "ftp://status.example.com/"),
    key("app-root", G::Redirect, Ingress, Nginx, "path", "",
        "Requests for `/` are redirected (302) to this path")
        .ex("/app", "app"),
    key("relative-redirects", G::Redirect, Ingress, Nginx, BOOL, "false",
        "A permanent-redirect or temporal-redirect target that is a path is sent as it is; otherwise it is made absolute with the request's scheme and host")
        .ex("true", "yes"),
    key("from-to-www-redirect", G::Redirect, Ingress, Nginx, BOOL, "false",
        "Redirects `www.` + host to host, or host to `www.` + host, whichever the rules do not define")
        .ex("true", "y"),
    // --- Backend ---
    key("backend-protocol", G::Backend, Service, Nginx, "HTTP, HTTPS, GRPC, GRPCS or HTTP2 (any case)", "HTTP",
        "Protocol spoken to the upstream; HTTPS and GRPCS use TLS, GRPC and HTTP2 (a Higress extension) use cleartext HTTP/2; AJP and FCGI are not available (HTTP applies)")
        .ex("GRPC", "FTP"),
    key("proxy-ssl-secret", G::Backend, Service, Nginx, "[namespace/]name", "",
        "Secret with the client certificate (tls.crt, tls.key) for upstream mTLS and the CA (ca.crt) for proxy-ssl-verify")
        .security()
        .ex("upstream-mtls", "Bad_Name"),
    key("proxy-ssl-verify", G::Backend, Service, Nginx, "on or off", "off",
        "Verifies the upstream certificate against proxy-ssl-secret's ca.crt")
        .security()
        .ex("on", "yes"),
    key("proxy-ssl-name", G::Backend, Service, Nginx, "host name", "the Service's host name",
        "Name the upstream certificate is verified against and, with proxy-ssl-server-name, sent as SNI")
        .ex("backend.internal", "bad name!"),
    key("proxy-ssl-server-name", G::Backend, Service, Nginx, "on or off", "off",
        "Sends SNI (proxy-ssl-name) to the upstream")
        .ex("on", "enabled"),
    key("service-upstream", G::Backend, Service, Nginx, BOOL, "false",
        "Proxies to the Service's cluster IP instead of its endpoints")
        .ex("true", "yes"),
    // --- Load balancing ---
    key("load-balance", G::LoadBalancing, Service, Nginx, "round_robin, least_conn (alias least_request) or random", "round_robin",
        "Load-balancing algorithm for the Service's endpoints; ewma is not available (round_robin applies)")
        .ex("least_conn", "fastest"),
    key("upstream-hash-by", G::LoadBalancing, Service, Nginx,
        "one of $remote_addr, $request_uri, $host, $http_<name>, $arg_<name>, $cookie_<name>", "",
        "Consistent hashing on that part of the request; wins over load-balance. One variable only: combinations such as $host$request_uri are not available")
        .ex("$http_x_user_id", "remote_addr"),
    key("affinity", G::LoadBalancing, Service, Nginx, "cookie", "",
        "Session affinity by a cookie the gateway sets; wins over upstream-hash-by and load-balance")
        .ex("cookie", "ip"),
    key("affinity-mode", G::LoadBalancing, Service, Nginx, "balanced or persistent", "balanced",
        "balanced re-spreads sessions when endpoints are added; persistent never moves them")
        .ex("persistent", "sticky"),
    key("affinity-canary-behavior", G::LoadBalancing, Service, Nginx, "sticky or legacy", "sticky",
        "sticky keeps clients served by a canary on the canary; legacy ignores affinity for canaries")
        .ex("legacy", "never"),
    key("session-cookie-name", G::LoadBalancing, Service, Nginx, "cookie name", "INGRESSCOOKIE",
        "Name of the affinity cookie")
        .ex("route", "bad cookie"),
    key("session-cookie-path", G::LoadBalancing, Service, Nginx, "path", "/",
        "Path attribute of the affinity cookie")
        .ex("/shop", "shop"),
    key("session-cookie-max-age", G::LoadBalancing, Service, Nginx, SECS, "",
        "Max-Age of the affinity cookie; without it (and without session-cookie-expires) the cookie lasts for the browser session")
        .ex("3600", "an hour"),
    key("session-cookie-expires", G::LoadBalancing, Service, Nginx, SECS, "",
        "Lifetime of the affinity cookie, used when session-cookie-max-age is not set")
        .ex("3600", "tomorrow"),
    // --- Service ---
    key("service-subset", G::Service, Service, Mse, "subset name; empty or `base` for the base pods", "",
        "Routes to the pods labelled `opensergo.io/canary-<subset>: <subset>` (base: pods without such a label); all pods when none match")
        .ex("v2", "Bad Subset"),
    key("subset-labels", G::Service, Service, Mse, "`key value` pairs, one per line", "",
        "Label selector for service-subset instead of the opensergo.io labels")
        .ex("version v2", "=bad"),
    key("warmup", G::Service, Service, Mse, SECS, "",
        "Slow start: new endpoints get a growing share of traffic over this time (round_robin and least_conn only)")
        .ex("30", "soon"),
    key("connection-policy-tcp-max-connection", G::Service, Service, Mse, "integer >= 1", "",
        "Most upstream connections to the Service, all endpoints together")
        .ex("1000", "0"),
    key("connection-policy-tcp-max-connection-per-endpoint", G::Service, Service, Mse, "integer >= 1", "",
        "Most upstream connections to each endpoint")
        .ex("100", "-1"),
    key("connection-policy-http-max-request-per-connection", G::Service, Service, Mse, "integer >= 1", "",
        "Most requests sent over one upstream connection before it is closed")
        .ex("1000", "lots"),
    // --- Client TLS and aliases ---
    key("auth-tls-secret", G::Tls, Host, Nginx, "[namespace/]name", "",
        "Secret whose ca.crt verifies client certificates (mTLS) for the host")
        .security()
        .different("client certificates are always required and verified: auth-tls-verify-client is not read")
        .ex("client-ca", "ca/"),
    key("ssl-ciphers", G::Tls, Host, Nginx, "colon-separated OpenSSL cipher names", "the TLS library's defaults",
        "Cipher suites offered for the host; only the ECDHE AES-GCM and CHACHA20-POLY1305 suites (and TLS 1.3 suite names) exist in the gateway's TLS library, other names are dropped")
        .ex("ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384", "RC4-MD5"),
    key("ssl-cipher", G::Tls, Host, Higress, "as ssl-ciphers", "the TLS library's defaults",
        "Higress spelling of ssl-ciphers; ssl-ciphers wins when both are set")
        .ex("ECDHE-ECDSA-AES128-GCM-SHA256", "DES-CBC3-SHA"),
    key("tls-min-protocol-version", G::Tls, Host, Higress, "TLSv1.0, TLSv1.1, TLSv1.2 or TLSv1.3", "TLSv1.2",
        "Lowest TLS version accepted for the host; TLS 1.0 and 1.1 are not available, so the floor is TLS 1.2")
        .ex("TLSv1.3", "TLSv2"),
    key("tls-max-protocol-version", G::Tls, Host, Higress, "TLSv1.0, TLSv1.1, TLSv1.2 or TLSv1.3", "TLSv1.3",
        "Highest TLS version accepted for the host")
        .ex("TLSv1.2", "1.3"),
    key("server-alias", G::Tls, Host, Nginx, "comma list of host names or `*.` wildcards", "",
        "More host names served exactly like this Ingress's hosts (same TLS, routes and policies)")
        .ex("www.example.com, *.shop.example.com", "bad_host"),
    // --- Access control ---
    key("whitelist-source-range", G::AccessControl, Ingress, Nginx, CIDRS, "",
        "Only clients from these addresses are served; others get 403")
        .security()
        .ex("10.0.0.0/8, 192.168.1.1", "10.0.0.0/33"),
    key("allowlist-source-range", G::AccessControl, Ingress, Nginx, CIDRS, "",
        "Newer ingress-nginx name of whitelist-source-range; wins when both are set")
        .security()
        .ex("10.0.0.0/8", "10.0.0.256"),
    key("denylist-source-range", G::AccessControl, Ingress, Nginx, CIDRS, "",
        "Clients from these addresses get 403")
        .security()
        .ex("203.0.113.0/24", "203.0.113.0/24, nope"),
    key("blacklist-source-range", G::AccessControl, Ingress, Mse, CIDRS, "",
        "MSE name of denylist-source-range; denylist-source-range wins when both are set")
        .security()
        .ex("203.0.113.7", "203.0.113"),
    key("domain-whitelist-source-range", G::AccessControl, Host, Mse, CIDRS, "",
        "Host-wide allow list; route-level lists take precedence")
        .security()
        .ex("10.0.0.0/8", "everyone"),
    key("domain-blacklist-source-range", G::AccessControl, Host, Mse, CIDRS, "",
        "Host-wide deny list; route-level lists take precedence")
        .security()
        .ex("198.51.100.0/24", "198.51.100.0/99"),
    // --- Timeouts ---
    key("timeout", G::Timeout, Ingress, Higress, SECS, "none",
        "Total time for one request, upstream included; 0 means none")
        .ex("30", "30 seconds"),
    key("proxy-connect-timeout", G::Timeout, Ingress, Nginx, SECS, "5s",
        "Time to establish the upstream connection")
        .ex("10", "ten"),
    key("proxy-read-timeout", G::Timeout, Ingress, Nginx, SECS, "60s",
        "Longest wait between two reads from the upstream")
        .ex("3600", "1 hour"),
    key("proxy-send-timeout", G::Timeout, Ingress, Nginx, SECS, "60s",
        "Longest wait between two writes to the upstream")
        .ex("120s", "2 min"),
    // --- Retry ---
    key("proxy-next-upstream", G::Retry, Ingress, Nginx,
        "error, timeout, invalid_header, http_500, http_502, http_503, http_504, http_403, http_404, http_429, non_idempotent or off (comma or space separated)",
        "error timeout", "When a request is retried on another endpoint")
        .ex("error timeout http_502", "sometimes"),
    key("proxy-next-upstream-tries", G::Retry, Ingress, Nginx, "integer >= 0 (0: no limit but the endpoints)", "3",
        "Most attempts, the first included")
        .ex("2", "twice"),
    key("proxy-next-upstream-timeout", G::Retry, Ingress, Nginx, "seconds (0: no limit)", "0",
        "Time budget for all attempts together")
        .ex("10", "soon"),
    // --- Limits ---
    key("proxy-body-size", G::Limits, Ingress, Nginx, "size (1024, 8k, 10m, 1g); 0: no limit", "1m",
        "Largest request body; larger bodies get 413")
        .ex("8m", "8mb"),
    key("limit-rps", G::Limits, Ingress, Nginx, "integer >= 1", "",
        "Requests per second per client address, burst limit-rps x limit-burst-multiplier; excess requests get 503")
        .ex("10", "ten"),
    key("limit-rpm", G::Limits, Ingress, Nginx, "integer >= 1", "",
        "Requests per minute per client address; excess requests get 503")
        .ex("600", "0"),
    key("limit-connections", G::Limits, Ingress, Nginx, "integer >= 1", "",
        "Concurrent connections per client address; excess requests get 503")
        .ex("20", "-5"),
    key("limit-burst-multiplier", G::Limits, Ingress, Nginx, "integer >= 1", "5",
        "Burst size of limit-rps and limit-rpm, as a multiple of the rate")
        .ex("3", "0"),
    key("limit-whitelist", G::Limits, Ingress, Nginx, CIDRS, "",
        "Client addresses exempt from limit-rps, limit-rpm and limit-connections")
        .ex("10.0.0.0/8", "10.0.0.0/8, intranet"),
    key("limit-allowlist", G::Limits, Ingress, Nginx, CIDRS, "",
        "Newer ingress-nginx name of limit-whitelist; wins when both are set")
        .ex("10.0.0.0/8", "intranet"),
    key("route-limit-rps", G::Limits, Ingress, Higress, "integer >= 1", "",
        "Requests per second for the route, per gateway replica; excess requests get 429")
        .ex("100", "fast"),
    key("route-limit-rpm", G::Limits, Ingress, Higress, "integer >= 1", "",
        "Requests per minute for the route, per gateway replica; wins over route-limit-rps")
        .ex("6000", "0"),
    key("route-limit-burst-multiplier", G::Limits, Ingress, Higress, "integer >= 1", "5",
        "Bucket size of route-limit-rps/-rpm, as a multiple of the rate")
        .ex("2", "0"),
    key("rate-limit", G::Limits, Ingress, Mse, "integer >= 1 (requests per second)", "",
        "Requests per second for the route across all gateway replicas")
        .ex("500", "500rps"),
    key("rate-limit-fallback-custom-response-code", G::Limits, Ingress, Mse, "100 to 599", "429",
        "Status code for requests over rate-limit")
        .ex("503", "99"),
    key("rate-limit-fallback-custom-response-body-type", G::Limits, Ingress, Mse, "text or json", "text",
        "Content type of the rate-limit response body")
        .ex("json", "xml"),
    key("rate-limit-fallback-custom-response-body", G::Limits, Ingress, Mse, "text", "sentinel rate limited",
        "Body of the rate-limit response")
        .ex("slow down", ""),
    key("rate-limit-fallback-redirect-url", G::Limits, Ingress, Mse, "absolute http(s) URL", "",
        "Redirect (302) for requests over rate-limit instead of a response; the custom response code wins when both are set")
        .ex("https://busy.example.com/", "busy.html"),
    key("concurrency-limit", G::Limits, Ingress, Mse, "integer >= 1", "",
        "Requests in flight for the route across all gateway replicas")
        .ex("100", "many"),
    key("concurrency-limit-fallback-custom-response-code", G::Limits, Ingress, Mse, "100 to 599", "429",
        "Status code for requests over concurrency-limit")
        .ex("503", "600"),
    key("concurrency-limit-fallback-custom-response-body-type", G::Limits, Ingress, Mse, "text or json", "text",
        "Content type of the concurrency-limit response body")
        .ex("text", "html"),
    key("concurrency-limit-fallback-custom-response-body", G::Limits, Ingress, Mse, "text", "sentinel rate limited",
        "Body of the concurrency-limit response")
        .ex("busy", ""),
    key("concurrency-limit-fallback-redirect-url", G::Limits, Ingress, Mse, "absolute http(s) URL", "",
        "Redirect (302) for requests over concurrency-limit; the custom response code wins when both are set")
        .ex("https://busy.example.com/", "ftp://busy"),
    // --- Fallback ---
    key("default-backend", G::Fallback, Ingress, Nginx, "[namespace/]name[:port]", "",
        "Service used when the route's Service is missing or has no ready endpoint (path and Host unchanged), and for custom-http-errors")
        .ex("fallback", "Fallback!"),
    key("custom-http-errors", G::Fallback, Ingress, Nginx, "comma list of status codes 400 to 599", "",
        "Upstream answers with these codes are replaced by the answer of default-backend, else of the gateway-wide default backend")
        .different("the request is re-sent once as GET `/` without body (ingress-nginx keeps the method), with X-Code, X-Format, X-Original-URI and the other ingress-nginx headers")
        .ex("404, 503", "oops"),
    // --- Mirror ---
    key("mirror-target-service", G::Mirror, Ingress, Higress, "[namespace/]name[:port]", "",
        "Copies requests to this Service; its answers are discarded")
        .ex("shadow:8080", "shadow:http"),
    key("mirror-percentage", G::Mirror, Ingress, Higress, "0 to 100", "100",
        "Share of requests mirrored")
        .ex("10", "half"),
    key("mirror-target-fqdn", G::Mirror, Ingress, Higress, "host name", "",
        "Copies requests to this host instead; wins over mirror-target-service")
        .ex("shadow.example.com", "shadow_host"),
    key("mirror-target-fqdn-port", G::Mirror, Ingress, Higress, "1 to 65535", "80",
        "Port of mirror-target-fqdn")
        .ex("8080", "0"),
    // --- Headers ---
    key("request-header-control-add", G::Headers, Ingress, Higress, "one `Name Value` per line; either may be quoted", "",
        "Request headers added (existing values kept)")
        .ex("'X-Env' \"staging; eu\"", "'X-Env staging"),
    key("request-header-control-update", G::Headers, Ingress, Higress, "one `Name Value` per line; either may be quoted", "",
        "Request headers set, replacing existing values")
        .ex("X-Env \"prod eu\"", "bad:name value"),
    key("request-header-control-remove", G::Headers, Ingress, Higress, "comma list of header names", "",
        "Request headers removed")
        .ex("X-Debug, X-Internal", "bad header"),
    key("response-header-control-add", G::Headers, Ingress, Higress, "one `Name Value` per line; either may be quoted", "",
        "Response headers added (existing values kept)")
        .ex("X-Frame-Options DENY", "NoValue"),
    key("response-header-control-update", G::Headers, Ingress, Higress, "one `Name Value` per line; either may be quoted", "",
        "Response headers set, replacing existing values")
        .ex("Cache-Control no-store", "(bad) x"),
    key("response-header-control-remove", G::Headers, Ingress, Higress, "comma list of header names", "",
        "Response headers removed")
        .ex("Server", "bad header"),
    key("connection-proxy-header", G::Headers, Ingress, Nginx, "a Connection header value", "",
        "The `Connection` header sent upstream; `close` makes each upstream connection carry one request. Upgrade requests keep `Connection: upgrade`")
        .ex("keep-alive", "bad\u{7}"),
    key("proxy-redirect-from", G::Headers, Ingress, Nginx, "text, or `default` / `off`", "",
        "Location and Refresh headers of upstream answers starting with this text get it replaced by proxy-redirect-to")
        .ex("http://internal.svc/", "bad\u{7}"),
    key("proxy-redirect-to", G::Headers, Ingress, Nginx, "text", "",
        "Replacement for proxy-redirect-from")
        .ex("https://shop.example.com/", "bad\u{7}"),
    key("custom-headers", G::Headers, Ingress, Nginx, "ConfigMap as name or namespace/name", "",
        "Every entry of this ConfigMap's data is set as a response header, replacing the upstream's")
        .different("the ConfigMap must be in the Ingress's own namespace: a reference to another namespace is refused, since the gateway has no setting to allow it yet; while the ConfigMap is missing or refused the routes of the Ingress answer 503")
        .ex("shop-headers", "Bad_Name"),
    // --- Matching ---
    key("ignore-path-case", G::Matching, Ingress, Higress, BOOL, "false",
        "Matches this Ingress's paths case-insensitively")
        .ex("true", "insensitive"),
    key("match-method", G::Matching, Ingress, Higress, "space-separated HTTP methods", "",
        "Routes match only these methods")
        .ex("GET POST", "FETCH"),
    key("exact-match-header-", G::Matching, Ingress, Higress, "text", "",
        "Routes match only when header <name> equals the value")
        .family()
        .ex("v2", "v2\u{7}"),
    key("prefix-match-header-", G::Matching, Ingress, Higress, "text", "",
        "Routes match only when header <name> starts with the value")
        .family()
        .ex("v2", "v2\u{7}"),
    key("regex-match-header-", G::Matching, Ingress, Higress, "regex", "",
        "Routes match only when header <name> matches the regex (whole value)")
        .family()
        .ex("^v[0-9]+$", "(?=v)"),
    key("exact-match-pseudo-header-", G::Matching, Ingress, Higress, "text", "",
        "Routes match only when pseudo-header :<name> (authority, method, path, scheme) equals the value")
        .family()
        .ex("GET", "GET\u{7}"),
    key("prefix-match-pseudo-header-", G::Matching, Ingress, Higress, "text", "",
        "Routes match only when pseudo-header :<name> starts with the value")
        .family()
        .ex("api.", "api\u{7}"),
    key("regex-match-pseudo-header-", G::Matching, Ingress, Higress, "regex", "",
        "Routes match only when pseudo-header :<name> matches the regex")
        .family()
        .ex("^api\\.", "["),
    key("exact-match-query-", G::Matching, Ingress, Higress, "text", "",
        "Routes match only when query parameter <name> equals the value")
        .family()
        .ex("1", "1\u{7}"),
    key("prefix-match-query-", G::Matching, Ingress, Higress, "text", "",
        "Routes match only when query parameter <name> starts with the value")
        .family()
        .ex("v", "v\u{7}"),
    key("regex-match-query-", G::Matching, Ingress, Higress, "regex", "",
        "Routes match only when query parameter <name> matches the regex")
        .family()
        .ex("^[0-9]+$", "(?<=x)"),
    // --- Auth ---
    key("auth-type", G::Auth, Ingress, Nginx, "basic", "",
        "Turns on HTTP basic authentication with the users in auth-secret; digest is not available (an Ingress asking for it answers 503)")
        .security()
        .ex("basic", "digest"),
    key("auth-secret", G::Auth, Ingress, Nginx, "[namespace/]name", "",
        "Secret with the users: htpasswd lines (bcrypt, SHA1, apr1/MD5) under `auth`, or one key per user")
        .security()
        .ex("basic-auth", "Basic_Auth"),
    key("auth-secret-type", G::Auth, Ingress, Nginx, "auth-file or auth-map", "auth-file",
        "auth-file: htpasswd text under the key `auth`; auth-map: one key per user, its value the hash")
        .security()
        .ex("auth-map", "htpasswd"),
    key("auth-realm", G::Auth, Ingress, Nginx, "text without `\"`", "",
        "Realm shown by browsers when asking for credentials")
        .ex("Staff only", "say \"hi\""),
    key("auth-url", G::Auth, Ingress, Nginx, "absolute http(s) URL, request variables allowed", "",
        "External authentication: each request is first sent to this URL; 2xx lets it through, 401/403 are returned to the client")
        .security()
        .ex("https://auth.example.com/oauth2/auth", "auth-service"),
    key("auth-method", G::Auth, Ingress, Nginx, "HTTP method", "GET",
        "Method of the request to auth-url")
        .security()
        .ex("POST", "FETCH"),
    key("auth-response-headers", G::Auth, Ingress, Nginx, "comma list of header names", "",
        "Headers of the auth-url answer copied into the request sent upstream")
        .ex("X-Auth-User, X-Auth-Email", "bad header"),
    key("auth-signin", G::Auth, Ingress, Nginx, "absolute http(s) URL, request variables allowed", "",
        "Where a 401 from auth-url redirects the client")
        .ex("https://$host/oauth2/start?rd=$escaped_request_uri", "/oauth2/start"),
    // --- Server ---
    key("enable-access-log", G::Server, Ingress, Nginx, BOOL, "true",
        "Whether requests to this Ingress are written to the access log")
        .ex("false", "off"),
    // --- NGINX internals: accepted, no effect (info) ---
    nginx_only("proxy-buffering", CACHE),
    nginx_only("proxy-buffers-number", CACHE),
    nginx_only("proxy-buffer-size", CACHE),
    nginx_only("proxy-max-temp-file-size", CACHE),
    nginx_only("proxy-request-buffering", "request bodies are streamed to the upstream; the key has no effect"),
    nginx_only("client-body-buffer-size", "request bodies are streamed to the upstream; the key has no effect"),
    nginx_only("proxy-http-version", "the upstream protocol follows backend-protocol (HTTP/1.1 or HTTP/2); the key has no effect"),
    nginx_only("enable-rewrite-log", "rewrites show in the route table (/debug/routes); the key has no effect"),
    nginx_only("ssl-prefer-server-ciphers", "the server's cipher order is always preferred; the key has no effect"),
    nginx_only("http2-push-preload", "HTTP/2 server push is obsolete and not offered; the key has no effect"),
    nginx_only("preserve-trailing-slash", "HTTPS redirects always keep the path as received; the key has no effect"),
    nginx_only("enable-global-auth", "there is no global external authentication; the key has no effect"),
    nginx_only("enable-opentelemetry", TRACING),
    nginx_only("opentelemetry-trust-incoming-span", TRACING),
    nginx_only("opentelemetry-operation-name", TRACING),
    nginx_only("enable-opentracing", TRACING),
    nginx_only("opentracing-trust-incoming-span", TRACING),
    nginx_only("enable-influxdb", TRACING),
    nginx_only("influxdb-measurement", TRACING),
    nginx_only("influxdb-port", TRACING),
    nginx_only("influxdb-host", TRACING),
    nginx_only("influxdb-server-name", TRACING),
    // --- NGINX keys not available: accepted, no effect (warning) ---
    unsupported("auth-tls-verify-client", G::Tls, Nginx, "client certificates are always required when auth-tls-secret is set; optional verification is not available"),
    unsupported("auth-tls-verify-depth", G::Tls, Nginx, "the chain depth is not limited separately; the key has no effect"),
    unsupported("auth-tls-error-page", G::Tls, Nginx, "a client without a valid certificate fails the TLS handshake; there is no error page"),
    unsupported("auth-tls-pass-certificate-to-upstream", G::Tls, Nginx, "the client certificate is not forwarded upstream (no ssl-client-cert header)"),
    KeySpec { security: true, ..unsupported("auth-tls-match-cn", G::Tls, Nginx, "matching the client certificate's CN is not available; so that the restriction is never silently dropped, the Ingress's routes answer 503") },
    unsupported("auth-cache-key", G::Auth, Nginx, "auth-url answers are not cached; the key has no effect"),
    unsupported("auth-cache-duration", G::Auth, Nginx, "auth-url answers are not cached; the key has no effect"),
    unsupported("auth-proxy-set-headers", G::Auth, Nginx, "extra headers for the auth-url request are not available"),
    unsupported("auth-keepalive", G::Auth, Nginx, "connections to auth-url are pooled by the gateway; the key has no effect"),
    unsupported("auth-keepalive-share-vars", G::Auth, Nginx, "connections to auth-url are pooled by the gateway; the key has no effect"),
    unsupported("auth-keepalive-requests", G::Auth, Nginx, "connections to auth-url are pooled by the gateway; the key has no effect"),
    unsupported("auth-keepalive-timeout", G::Auth, Nginx, "connections to auth-url are pooled by the gateway; the key has no effect"),
    unsupported("auth-request-redirect", G::Auth, Nginx, "the X-Auth-Request-Redirect header is not set; the key has no effect"),
    unsupported("auth-always-set-cookie", G::Auth, Nginx, "Set-Cookie from auth-url is passed on 2xx answers only"),
    unsupported("auth-signin-redirect-param", G::Auth, Nginx, "the redirect parameter is not added; write it into auth-signin with $escaped_request_uri"),
    unsupported("satisfy", G::Auth, Nginx, "authentication and IP lists must all pass (as `satisfy: all`); `any` is not available"),
    unsupported("global-rate-limit", G::Limits, Nginx, "removed from ingress-nginx; use rate-limit"),
    unsupported("global-rate-limit-window", G::Limits, Nginx, "removed from ingress-nginx; use rate-limit"),
    unsupported("global-rate-limit-key", G::Limits, Nginx, "removed from ingress-nginx; use rate-limit"),
    unsupported("global-rate-limit-ignored-cidrs", G::Limits, Nginx, "removed from ingress-nginx; use rate-limit"),
    unsupported("limit-rate", G::Limits, Nginx, "response bandwidth limits are not available"),
    unsupported("limit-rate-after", G::Limits, Nginx, "response bandwidth limits are not available"),
    unsupported("proxy-cookie-domain", G::Headers, Nginx, "Set-Cookie rewriting is not available"),
    unsupported("proxy-cookie-path", G::Headers, Nginx, "Set-Cookie rewriting is not available"),
    unsupported("proxy-ssl-ciphers", G::Backend, Nginx, "upstream TLS uses the TLS library's default suites"),
    unsupported("proxy-ssl-protocols", G::Backend, Nginx, "upstream TLS uses TLS 1.2 and 1.3"),
    unsupported("proxy-ssl-verify-depth", G::Backend, Nginx, "the chain depth is not limited separately"),
    unsupported("temporal-redirect-code", G::Redirect, Nginx, "temporal-redirect always answers 302"),
    unsupported("ssl-passthrough", G::Tls, Nginx, "TLS passthrough is not available: TLS is terminated at the gateway and the upstream gets plaintext unless backend-protocol is HTTPS"),
    unsupported("session-cookie-samesite", G::LoadBalancing, Nginx, "the affinity cookie is sent without a SameSite attribute"),
    unsupported("session-cookie-conditional-samesite-none", G::LoadBalancing, Nginx, "the affinity cookie is sent without a SameSite attribute"),
    unsupported("session-cookie-secure", G::LoadBalancing, Nginx, "the affinity cookie gets the Secure attribute on HTTPS requests only"),
    unsupported("session-cookie-domain", G::LoadBalancing, Nginx, "the affinity cookie is sent without a Domain attribute"),
    unsupported("session-cookie-change-on-failure", G::LoadBalancing, Nginx, "a failed endpoint keeps its cookie; the key has no effect"),
    unsupported("upstream-hash-by-subset", G::LoadBalancing, Nginx, "subset hashing is not available; upstream-hash-by hashes over all endpoints"),
    unsupported("upstream-hash-by-subset-size", G::LoadBalancing, Nginx, "subset hashing is not available"),
    unsupported("mirror-target", G::Mirror, Nginx, "use mirror-target-service or mirror-target-fqdn"),
    unsupported("mirror-request-body", G::Mirror, Nginx, "mirrored requests always carry the body"),
    unsupported("mirror-host", G::Mirror, Nginx, "the mirrored request keeps the original Host"),
    unsupported("disable-proxy-intercept-errors", G::Fallback, Nginx, "custom-http-errors are intercepted whenever set"),
    unsupported("enable-modsecurity", G::Nginx, Nginx, "there is no ModSecurity web application firewall: requests are NOT inspected"),
    unsupported("enable-owasp-core-rules", G::Nginx, Nginx, "there is no ModSecurity web application firewall: requests are NOT inspected"),
    unsupported("modsecurity-transaction-id", G::Nginx, Nginx, "there is no ModSecurity web application firewall"),
    unsupported("lua-resty-waf", G::Nginx, Nginx, "there is no Lua web application firewall: requests are NOT inspected"),
    unsupported("lua-resty-waf-debug", G::Nginx, Nginx, "there is no Lua web application firewall"),
    unsupported("lua-resty-waf-ignore-rulesets", G::Nginx, Nginx, "there is no Lua web application firewall"),
    unsupported("lua-resty-waf-score-threshold", G::Nginx, Nginx, "there is no Lua web application firewall"),
    unsupported("lua-resty-waf-allow-unknown-content-types", G::Nginx, Nginx, "there is no Lua web application firewall"),
    unsupported("lua-resty-waf-process-multipart-body", G::Nginx, Nginx, "there is no Lua web application firewall"),
    // --- Refused (error) ---
    refused("configuration-snippet", SNIPPET),
    refused("server-snippet", SNIPPET),
    refused("stream-snippet", SNIPPET),
    refused("auth-snippet", SNIPPET),
    refused("modsecurity-snippet", SNIPPET),
    refused("lua-resty-waf-extra-rules", "extra WAF rules are Lua code for NGINX; mse-ingress never executes code supplied in an Ingress"),
    KeySpec { pattern: Pattern::Suffix, ..refused("-snippet", SNIPPET) },
    // --- Later (warning) ---
    unsupported("destination", G::Later, Higress, LATER),
    unsupported("rpc-destination-name", G::Later, Higress, LATER),
    unsupported("mcp-server", G::Later, Higress, LATER),
    unsupported("mcp-server-match-rule-domains", G::Later, Higress, LATER),
    unsupported("mcp-server-match-rule-type", G::Later, Higress, LATER),
    unsupported("mcp-server-match-rule-value", G::Later, Higress, LATER),
    unsupported("mcp-server-upstream-type", G::Later, Higress, LATER),
    unsupported("mcp-server-enable-path-rewrite", G::Later, Higress, LATER),
    unsupported("mcp-server-path-rewrite-prefix", G::Later, Higress, LATER),
    unsupported("mcp-sse-stateful-param-name", G::Later, Higress, LATER),
];

/// The fixed keys by name, built once.
fn fixed() -> &'static HashMap<&'static str, &'static KeySpec> {
    static FIXED: OnceLock<HashMap<&'static str, &'static KeySpec>> = OnceLock::new();
    FIXED.get_or_init(|| {
        KEYS.iter()
            .filter(|k| k.pattern == Pattern::Fixed)
            .map(|k| (k.name, k))
            .collect()
    })
}

/// The registry entry for a key name (without prefix): an exact key first, then a
/// dynamic family, then a suffix family (`*-snippet`).
pub fn spec(name: &str) -> Option<&'static KeySpec> {
    fixed().get(name).copied().or_else(|| {
        KEYS.iter()
            .filter(|k| k.pattern != Pattern::Fixed)
            .filter(|k| k.matches(name))
            .min_by_key(|k| k.pattern == Pattern::Suffix)
    })
}

/// The known key closest to an unknown one, for "did you mean ...?": within a small edit
/// distance (case ignored), or the only key that contains every word of it, in order.
pub fn suggest(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    let budget = (lower.len() / 4).clamp(1, 3);
    let mut best: Option<(usize, &'static str)> = None;
    let mut rows = Rows::default();
    for k in KEYS.iter().filter(|k| k.pattern == Pattern::Fixed) {
        let limit = best.map_or(budget, |(d, _)| d - 1);
        if k.name.len().abs_diff(lower.len()) > limit {
            continue;
        }
        if let Some(d) = rows.distance(lower.as_bytes(), k.name.as_bytes(), limit) {
            best = Some((d, k.name));
            if d <= 1 {
                break;
            }
        }
    }
    if let Some((_, n)) = best {
        return Some(n);
    }
    // `canary-header` -> `canary-by-header`: a known key that holds every word, in order.
    let words: Vec<&str> = lower.split('-').filter(|w| !w.is_empty()).collect();
    if words.len() >= 2 {
        let mut hits = KEYS.iter().filter(|k| {
            k.pattern == Pattern::Fixed && k.is_supported() && {
                let mut rest = k.name;
                words.iter().all(|w| match rest.find(w) {
                    Some(i) => {
                        rest = &rest[i + w.len()..];
                        true
                    }
                    None => false,
                })
            }
        });
        if let (Some(only), None) = (hits.next(), hits.next()) {
            return Some(only.name);
        }
    }
    None
}

/// Reusable rows for [`Rows::distance`].
#[derive(Default)]
struct Rows {
    prev2: Vec<usize>,
    prev: Vec<usize>,
    cur: Vec<usize>,
}

impl Rows {
    /// Optimal-string-alignment distance (Levenshtein plus adjacent transpositions), if it
    /// is at most `limit`; gives up as soon as a whole row exceeds it.
    fn distance(&mut self, a: &[u8], b: &[u8], limit: usize) -> Option<usize> {
        let n = b.len() + 1;
        for v in [&mut self.prev2, &mut self.prev, &mut self.cur] {
            v.clear();
            v.resize(n, 0);
        }
        for (j, x) in self.prev.iter_mut().enumerate() {
            *x = j;
        }
        for i in 1..=a.len() {
            self.cur[0] = i;
            let mut row_min = i;
            for j in 1..=b.len() {
                let cost = usize::from(a[i - 1] != b[j - 1]);
                let mut v = (self.prev[j] + 1)
                    .min(self.cur[j - 1] + 1)
                    .min(self.prev[j - 1] + cost);
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                    v = v.min(self.prev2[j - 2] + 1);
                }
                self.cur[j] = v;
                row_min = row_min.min(v);
            }
            if row_min > limit {
                return None;
            }
            std::mem::swap(&mut self.prev2, &mut self.prev);
            std::mem::swap(&mut self.prev, &mut self.cur);
        }
        Some(self.prev[b.len()]).filter(|d| *d <= limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_listed_once() {
        let mut seen = std::collections::BTreeSet::new();
        for k in KEYS {
            assert!(seen.insert((k.name, k.pattern as u8)), "{} twice", k.name);
        }
    }

    #[test]
    fn every_supported_key_documents_a_valid_example() {
        for k in KEYS.iter().filter(|k| k.is_supported()) {
            assert!(!k.valid.is_empty(), "{} has no valid example", k.name);
            assert!(!k.doc.is_empty() && !k.values.is_empty(), "{}", k.name);
        }
    }

    #[test]
    fn families_and_snippets_are_found_by_pattern() {
        assert_eq!(
            spec("exact-match-header-x-user").map(|k| k.name),
            Some("exact-match-header-")
        );
        assert_eq!(spec("exact-match-header-"), None);
        assert_eq!(spec("my-own-snippet").map(|k| k.name), Some("-snippet"));
        assert_eq!(
            spec("server-snippet").map(|k| k.name),
            Some("server-snippet")
        );
        assert_eq!(spec("nope"), None);
    }

    #[test]
    fn near_misses_get_a_suggestion() {
        assert_eq!(suggest("ssl-redirects"), Some("ssl-redirect"));
        assert_eq!(suggest("rewrite-taget"), Some("rewrite-target"));
        assert_eq!(suggest("Use-Regex"), Some("use-regex"));
        assert_eq!(suggest("canary-header"), Some("canary-by-header"));
        assert_eq!(suggest("proxy-body-szie"), Some("proxy-body-size"));
        assert_eq!(suggest("completely-unrelated-thing"), None);
    }
}
