//! Registry entries: the upstream: protocol and TLS, load balancing, the Service, client TLS and host aliases.

use super::*;

/// The upstream: protocol and TLS, load balancing, the Service, client TLS and host aliases.
#[rustfmt::skip]
pub(super) const UPSTREAM: &[KeySpec] = &[
    // --- Backend ---
    key("backend-protocol", G::Backend, Service, Nginx, "HTTP, HTTPS, GRPC, GRPCS, HTTP2 or H2C (any case)", "HTTP (HTTP/2 for Service ports named grpc* or http2*)",
        "Protocol spoken to the upstream: HTTPS is HTTP/1.1 over TLS, GRPCS HTTP/2 over TLS (ALPN h2), GRPC, HTTP2 and H2C cleartext HTTP/2 with prior knowledge, one connection per endpoint carrying many streams; trailers and grpc-timeout deadlines are relayed. Without the annotation, Service ports named grpc* or http2* (Istio's port naming) get cleartext HTTP/2. AJP and FCGI are not available (HTTP applies)")
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
    key("proxy-ssl-protocols", G::Backend, Service, Nginx, "TLS versions, space-separated (TLSv1.2 TLSv1.3)", "TLSv1.2 TLSv1.3",
        "TLS versions offered to the upstream; TLS 1.0 and 1.1 are not available")
        .ex("TLSv1.3", "SSLv3"),
    key("proxy-ssl-ciphers", G::Backend, Service, Nginx, "OpenSSL suite names, colon-separated", "the TLS library's defaults",
        "Cipher suites offered to the upstream (a list of TLS 1.2 suites leaves the TLS 1.3 ones as they are)")
        .ex("ECDHE-RSA-AES128-GCM-SHA256", "HIGH:!aNULL"),
    key("service-upstream", G::Backend, Service, Nginx, BOOL, "false",
        "Proxies to the Service's cluster IP instead of its endpoints")
        .ex("true", "yes"),
    // --- Load balancing ---
    key("load-balance", G::LoadBalancing, Service, Nginx, "round_robin, least_conn (alias least_request), random or ewma", "round_robin",
        "Load-balancing algorithm for the Service's endpoints: least_conn picks the fewest requests in flight from this gateway replica, random the less loaded of two endpoints drawn at random, ewma the one of two drawn at random with the lower peak EWMA of response times (decaying over 10 s) times its requests in flight")
        .ex("least_conn", "fastest"),
    key("upstream-hash-by", G::LoadBalancing, Service, Nginx,
        "$remote_addr, $request_uri, $host, $http_<name>, $arg_<name>, $cookie_<name>, or several together", "",
        "Consistent hashing (a ring of 160 points per endpoint) on that part of the request, so that adding or removing one of N endpoints moves about 1/N of the keys; a missing header, parameter or cookie hashes as empty. Several variables (such as $host$request_uri) hash together; text between them does not change which requests go together. Wins over load-balance")
        .ex("$http_x_user_id", "remote_addr"),
    key("upstream-hash-by-subset", G::LoadBalancing, Service, Nginx, BOOL, "false",
        "With upstream-hash-by: the endpoints, in address order, form subsets of upstream-hash-by-subset-size; the key picks a subset on the consistent-hash ring and each request one of its endpoints at random")
        .ex("true", "yes"),
    key("upstream-hash-by-subset-size", G::LoadBalancing, Service, Nginx, "integer 1 to 1024", "3",
        "Endpoints per subset of upstream-hash-by-subset")
        .ex("3", "0"),
    key("affinity", G::LoadBalancing, Service, Nginx, "cookie", "",
        "Session affinity by a cookie the gateway sets on the first answer, holding a keyed hash of the endpoint (never its address); later requests with it go to that endpoint while it is ready, else get a new one. Wins over upstream-hash-by and load-balance")
        .ex("cookie", "ip"),
    key("affinity-mode", G::LoadBalancing, Service, Nginx, "balanced or persistent", "balanced",
        "balanced re-spreads sessions when endpoints are added; persistent never moves them")
        .different("in both modes a session stays on its endpoint while that endpoint is ready; balanced does not move sessions to endpoints added later")
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
        "Expires of the affinity cookie, this long after it is set (beside Max-Age when both are set)")
        .ex("3600", "tomorrow"),
    key("session-cookie-domain", G::LoadBalancing, Service, Nginx, "host name", "",
        "Domain attribute of the affinity cookie")
        .ex("example.com", "bad domain!"),
    key("session-cookie-secure", G::LoadBalancing, Service, Nginx, BOOL, "false",
        "Secure attribute on the affinity cookie for every request; HTTPS requests get it anyway")
        .ex("true", "yes"),
    key("session-cookie-samesite", G::LoadBalancing, Service, Nginx, "None, Lax or Strict", "",
        "SameSite attribute of the affinity cookie")
        .ex("Lax", "Sometimes"),
    key("session-cookie-conditional-samesite-none", G::LoadBalancing, Service, Nginx, BOOL, "false",
        "With session-cookie-samesite None: leaves SameSite=None out for browsers known to reject it (Chrome 51 to 66, iOS 12, Safari on macOS 10.14)")
        .ex("true", "yes"),
    key("session-cookie-change-on-failure", G::LoadBalancing, Service, Nginx, BOOL, "false",
        "true: when the client's endpoint failed (the request went to another endpoint on a retry, or the endpoint is ejected by outlier detection) the affinity cookie is pointed at the endpoint that answered; false: the cookie keeps naming the failed endpoint")
        .ex("true", "yes"),
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
        "Most upstream connections to the Service, all endpoints together, idle ones included; a request that needs one more gets 503 at once (envoy's circuit-breaker overflow, without its queue of pending requests). HTTP/1.1 cleartext upstreams; counted over the connections this Ingress's requests open")
        .ex("1000", "0"),
    key("connection-policy-tcp-max-connection-per-endpoint", G::Service, Service, Mse, "integer >= 1", "",
        "Most upstream connections to each endpoint, idle ones included; a request that needs one more gets 503 at once. HTTP/1.1 cleartext upstreams")
        .ex("100", "-1"),
    key("connection-policy-http-max-request-per-connection", G::Service, Service, Mse, "integer >= 1", "",
        "Most requests sent over one upstream connection before it is closed")
        .ex("1000", "lots"),
    // --- Client TLS and aliases ---
    key("auth-tls-secret", G::Tls, Host, Nginx, "[namespace/]name", "",
        "Secret whose ca.crt (and optional ca.crl) verifies client certificates (mTLS) for the host; a client without a valid certificate gets 400 (or the auth-tls-error-page redirect), and a request whose Host has another client-certificate policy than the TLS server name gets 421")
        .security()
        .ex("client-ca", "ca/"),
    key("auth-tls-verify-client", G::Tls, Host, Nginx, "on, off, optional or optional_no_ca", "on",
        "on: a certificate that verifies is required; optional: verified when sent; optional_no_ca: asked for and passed on unverified; off: not asked for")
        .security()
        .ex("optional", "maybe"),
    key("auth-tls-verify-depth", G::Tls, Host, Nginx, "integer 1-16", "1",
        "Most CA certificates allowed above the client certificate in its chain")
        .security()
        .ex("2", "0"),
    key("auth-tls-pass-certificate-to-upstream", G::Tls, Host, Nginx, BOOL, "false",
        "Send the client certificate upstream, URL-escaped PEM, in ssl-client-cert (ssl-client-verify, ssl-client-subject-dn and ssl-client-issuer-dn are always sent with auth-tls-secret)")
        .ex("true", "yes"),
    key("auth-tls-match-cn", G::Tls, Host, Nginx, "regular expression starting with CN=", "",
        "The client certificate's subject (RFC 2253, as ssl-client-subject-dn) must match it, else 403; a request without a certificate gets 403 too")
        .security()
        .ex("CN=(alice|bob)", "alice"),
    key("auth-tls-error-page", G::Tls, Host, Nginx, "absolute http(s) URL", "",
        "Where a client without a valid certificate is redirected (302) instead of getting 400")
        .ex("https://example.com/cert-error.html", "/relative"),
    key("ssl-ciphers", G::Tls, Host, Nginx, "colon-separated OpenSSL cipher names", "the global ssl-ciphers, else the TLS library's defaults",
        "Cipher suites offered for the host; only the ECDHE AES-GCM and CHACHA20-POLY1305 suites (and TLS 1.3 suite names) exist in the gateway's TLS library, other names are dropped")
        .ex("ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384", "RC4-MD5"),
    key("ssl-cipher", G::Tls, Host, Higress, "as ssl-ciphers", "as ssl-ciphers",
        "Higress spelling of ssl-ciphers; ssl-ciphers wins when both are set")
        .ex("ECDHE-ECDSA-AES128-GCM-SHA256", "DES-CBC3-SHA"),
    key("tls-min-protocol-version", G::Tls, Host, Higress, "TLSv1.0, TLSv1.1, TLSv1.2 or TLSv1.3", "lowest of the global ssl-protocols: TLSv1.2",
        "Lowest TLS version accepted for the host; TLS 1.0 and 1.1 are not available, so the floor is TLS 1.2")
        .ex("TLSv1.3", "TLSv2"),
    key("tls-max-protocol-version", G::Tls, Host, Higress, "TLSv1.0, TLSv1.1, TLSv1.2 or TLSv1.3", "highest of the global ssl-protocols: TLSv1.3",
        "Highest TLS version accepted for the host")
        .ex("TLSv1.2", "1.3"),
    key("server-alias", G::Tls, Host, Nginx, "comma list of host names or `*.` wildcards", "",
        "More host names served exactly like this Ingress's hosts (same TLS, routes and policies)")
        .ex("www.example.com, *.shop.example.com", "bad_host"),
];
