//! Registry entries: canary releases, CORS, rewrites and redirects.

use super::*;

/// Canary releases, CORS, rewrites and redirects.
#[rustfmt::skip]
pub(super) const ROUTING: &[KeySpec] = &[
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
];
