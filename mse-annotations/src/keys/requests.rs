//! Registry entries: header control, request matching, authentication and the server's own keys.

use super::*;

/// Header control, request matching, authentication and the server's own keys.
#[rustfmt::skip]
pub(super) const REQUESTS: &[KeySpec] = &[
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
        "Secret with the users: htpasswd lines under `auth`, or one key per user; bcrypt, {SHA}, {SSHA} and {PLAIN} hashes are checked, users with other hashes (MD5-crypt `$apr1$`, DES crypt, SHA-crypt: no maintained library implements them) are refused with a warning; missing credentials or a wrong password get 401 with WWW-Authenticate")
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
        "External authentication: each request is first sent, without its body, to this http or https URL (a `name.namespace.svc` host goes to that Service's endpoints); 2xx lets it through, 401/403 are returned to the client, any other status gives 500, and a service that is down or silent for 5 s gives 503. An https URL's certificate is verified against the platform's trust store (nginx does not verify by default)")
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
        "Where a 401 from auth-url redirects the client (302); `rd=$scheme://$host$escaped_request_uri` is added unless the URL has that parameter (its name: auth-signin-redirect-param)")
        .ex("https://$host/oauth2/start?rd=$escaped_request_uri", "/oauth2/start"),
    key("auth-signin-redirect-param", G::Auth, Ingress, Nginx, "query parameter name", "rd",
        "Name of the parameter of auth-signin that says where to come back to")
        .ex("return_to", "a b"),
    key("auth-always-set-cookie", G::Auth, Ingress, Nginx, "true or false", "false",
        "Set-Cookie of a 2xx auth-url answer goes to the client with the upstream's answer when that is 2xx or 3xx; true: with any answer, the gateway's 401 and 403 included")
        .ex("true", "sometimes"),
    key("auth-request-redirect", G::Auth, Ingress, Nginx, "header value", "",
        "Value of the X-Auth-Request-Redirect header sent to auth-url (default: the request URI)")
        .ex("https://app.example.com/", "bad\u{7f}"),
    key("auth-cache-key", G::Auth, Ingress, Nginx, "text with NGINX variables ($remote_user, $http_*, $cookie_*, $arg_*, $host, ...)", "",
        "Remembers auth-url answers under this key (per Ingress), for auth-cache-duration; without it every request asks")
        .ex("$remote_user$http_authorization", "$upstream_addr"),
    key("auth-cache-duration", G::Auth, Ingress, Nginx, "[status ...|any] duration, ...", "200 202 401 5m",
        "Which auth-url answers are remembered and how long, as proxy_cache_valid; needs auth-cache-key")
        .ex("200 202 10m, 401 1m", "200 soon"),
    // --- Server ---
    key("enable-access-log", G::Server, Ingress, Nginx, BOOL, "true",
        "Whether requests to this Ingress are written to the access log")
        .ex("false", "off"),
];
