//! Registry entries: access control, timeouts, retries, limits, fallback and mirroring.

use super::*;

/// Access control, timeouts, retries, limits, fallback and mirroring.
#[rustfmt::skip]
pub(super) const POLICY: &[KeySpec] = &[
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
        "Host-wide allow list: every route of the host (of any Ingress) serves only these clients, after the gateway lists; with several, a client must be in each. A route's own allow list takes precedence")
        .security()
        .ex("10.0.0.0/8", "everyone"),
    key("domain-blacklist-source-range", G::AccessControl, Host, Mse, CIDRS, "",
        "Host-wide deny list: every route of the host (of any Ingress) answers these clients 403, after the gateway lists. A route's own deny list takes precedence")
        .security()
        .ex("198.51.100.0/24", "198.51.100.0/99"),
    // --- Timeouts ---
    key("timeout", G::Timeout, Ingress, Higress, SECS, "none",
        "Total time for one request, upstream included; 0 means none")
        .different("bounds every attempt together until the upstream's response head (504 on expiry); the response body is bounded by proxy-read-timeout between reads")
        .ex("30", "30 seconds"),
    key("proxy-connect-timeout", G::Timeout, Ingress, Nginx, SECS, "5s",
        "Time to establish the upstream connection")
        .ex("10", "ten"),
    key("proxy-read-timeout", G::Timeout, Ingress, Nginx, SECS, "60s",
        "Longest wait between two reads from the upstream")
        .ex("3600", "1 hour"),
    key("proxy-send-timeout", G::Timeout, Ingress, Nginx, SECS, "60s",
        "Longest wait for the upstream to take a write of the request (head or body chunk); past it the connection is closed and the client gets 504 if no answer has started. The wait for the client's own body is not counted")
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
    key("proxy-body-size", G::Limits, Ingress, Nginx, "size (1024, 8k, 10m, 1g); 0: no limit", "the global proxy-body-size (1m)",
        "Largest request body; larger bodies get 413")
        .different("a body without Content-Length is counted as it streams: past the limit the upload is cut and the request gets 413 if no answer has started")
        .ex("8m", "8mb"),
    key("limit-rps", G::Limits, Ingress, Nginx, "integer >= 1", "",
        "Requests per second per client address, burst limit-rps x limit-burst-multiplier; excess requests get 503")
        .different("per gateway replica, as NGINX's zone is per instance; limit-req-status-code sets the status")
        .ex("10", "ten"),
    key("limit-rpm", G::Limits, Ingress, Nginx, "integer >= 1", "",
        "Requests per minute per client address; excess requests get 503")
        .different("per gateway replica, as NGINX's zone is per instance; limit-req-status-code sets the status")
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
        .different("shared through the Redis of redis-url / --redis-url (a GCRA bucket holding one second of requests, leased to replicas in batches of up to an eighth of the limit); without Redis, and while it cannot be reached, each replica enforces the whole limit on its own (a limit-per-replica warning)")
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
        .different("shared through the Redis of redis-url / --redis-url (slots held per replica, renewed every second); without Redis, and while it cannot be reached, each replica enforces the whole limit on its own (a limit-per-replica warning)")
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
];
