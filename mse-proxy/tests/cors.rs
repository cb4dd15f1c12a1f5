//! End to end over loopback: `enable-cors` and the `cors-*` annotations. Preflights from
//! allowed origins are answered by the gateway without reaching the backend; other
//! requests from allowed origins get the CORS headers on the backend's answer; anything
//! else is left alone.
#![cfg(test)]

mod support;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use mse_router::RouteTable;
use support::*;

/// An Ingress for `host` routed to Service `svc`, with these annotations (names without
/// prefix).
fn cors_ingress(name: &str, host: &str, svc: &str, annotations: &[(&str, &str)]) -> String {
    annotate(
        &ingress(name, Some(host), &[("/", "Prefix", svc)]),
        annotations,
    )
}

/// A preflight: `OPTIONS` with `Origin` and `Access-Control-Request-Method`.
fn preflight_req(host: &str, origin: &str) -> Request<Full<Bytes>> {
    Request::options("/things")
        .header("host", host)
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "x-token")
        .body(Full::new(Bytes::new()))
        .expect("request")
}

/// A GET with `Origin` (when given).
fn get_from(host: &str, origin: Option<&str>) -> Request<Full<Bytes>> {
    let mut b = Request::get("/things").header("host", host);
    if let Some(o) = origin {
        b = b.header("origin", o);
    }
    b.body(Full::new(Bytes::new())).expect("request")
}

fn header<'r>(r: &'r Reply, name: &str) -> Option<&'r str> {
    r.headers.get(name).and_then(|v| v.to_str().ok())
}

const CORS_HEADERS: [&str; 6] = [
    "access-control-allow-origin",
    "access-control-allow-credentials",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-expose-headers",
    "access-control-max-age",
];

/// Asserts that `r` carries no CORS header at all.
fn assert_no_cors(r: &Reply, what: &str) {
    for h in CORS_HEADERS {
        assert!(r.headers.get(h).is_none(), "{what}: unexpected {h}");
    }
}

fn not_applied(table: &RouteTable) -> Vec<String> {
    table
        .diagnostics()
        .iter()
        .filter(|d| d.code == "not-applied")
        .filter_map(|d| d.origin.key.as_deref().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn preflight_is_answered_by_the_gateway_and_simple_requests_reach_the_backend() {
    let backend = echo("api").await;
    let yaml = [
        cors_ingress(
            "exact",
            "exact.example.com",
            "api",
            &[
                ("enable-cors", "true"),
                ("cors-allow-origin", "https://app.example.com:8443"),
                ("cors-allow-methods", "GET, POST"),
                ("cors-allow-headers", "X-Token, Content-Type"),
                ("cors-expose-headers", "X-Total, X-Page"),
                ("cors-max-age", "600"),
            ],
        ),
        service("api", &[backend.addr()]),
    ]
    .concat();
    let (gw, table) = gateway(&yaml);
    let addr = http_addr(&gw);
    let mut tx = h1(addr).await;

    let r = send1(
        &mut tx,
        preflight_req("exact.example.com", "https://app.example.com:8443"),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(r.body.is_empty());
    assert_eq!(
        header(&r, "access-control-allow-origin"),
        Some("https://app.example.com:8443")
    );
    assert_eq!(
        header(&r, "access-control-allow-methods"),
        Some("GET, POST")
    );
    assert_eq!(
        header(&r, "access-control-allow-headers"),
        Some("x-token, content-type")
    );
    assert_eq!(header(&r, "access-control-max-age"), Some("600"));
    assert_eq!(header(&r, "access-control-allow-credentials"), Some("true"));
    assert_eq!(header(&r, "vary"), Some("Origin"));
    assert_eq!(r.service(), "", "answered by the gateway");
    assert_eq!(
        backend.requests(),
        0,
        "the preflight never reaches the backend"
    );

    let r = send1(
        &mut tx,
        get_from("exact.example.com", Some("https://app.example.com:8443")),
    )
    .await;
    assert_eq!((r.status, r.service()), (StatusCode::OK, "api"));
    assert_eq!(backend.requests(), 1);
    assert_eq!(
        header(&r, "access-control-allow-origin"),
        Some("https://app.example.com:8443")
    );
    assert_eq!(header(&r, "access-control-allow-credentials"), Some("true"));
    assert_eq!(
        header(&r, "access-control-expose-headers"),
        Some("x-total, x-page")
    );
    assert_eq!(header(&r, "vary"), Some("Origin"));
    // The preflight-only headers are not repeated on actual answers.
    assert!(r.headers.get("access-control-allow-methods").is_none());
    assert!(r.headers.get("access-control-max-age").is_none());
    // The backend saw the Origin header untouched.
    assert_eq!(
        r.echoed_header("origin").as_deref(),
        Some("https://app.example.com:8443")
    );

    // The port is part of the origin.
    for origin in [
        "https://app.example.com",
        "https://app.example.com:9443",
        "http://app.example.com:8443",
    ] {
        let r = send1(&mut tx, get_from("exact.example.com", Some(origin))).await;
        assert_eq!((r.status, r.service()), (StatusCode::OK, "api"), "{origin}");
        assert_no_cors(&r, origin);
    }

    // No Origin: no CORS headers.
    let r = send1(&mut tx, get_from("exact.example.com", None)).await;
    assert_no_cors(&r, "no origin");

    // A preflight from an origin that is not allowed goes to the backend, as in
    // ingress-nginx, and gets no CORS headers.
    let before = backend.requests();
    let r = send1(
        &mut tx,
        preflight_req("exact.example.com", "https://evil.example.com"),
    )
    .await;
    assert_eq!((r.status, r.service()), (StatusCode::OK, "api"));
    assert_eq!(r.json()["method"], "OPTIONS");
    assert_eq!(backend.requests(), before + 1);
    assert_no_cors(&r, "disallowed preflight");

    let left = not_applied(&table.routes());
    assert!(left.iter().all(|k| !k.contains("cors")), "{left:?}");
    gw.shutdown().await;
}

#[tokio::test]
async fn origins_match_lists_and_one_label_wildcards() {
    let backend = echo("api").await;
    let yaml = [
        cors_ingress(
            "wild",
            "wild.example.com",
            "api",
            &[
                ("enable-cors", "true"),
                (
                    "cors-allow-origin",
                    "https://*.example.com, http://*.example.net:8080",
                ),
            ],
        ),
        cors_ingress(
            "list",
            "list.example.com",
            "api",
            &[
                ("enable-cors", "true"),
                (
                    "cors-allow-origin",
                    "https://a.example.com, http://b.example.org:8080",
                ),
            ],
        ),
        service("api", &[backend.addr()]),
    ]
    .concat();
    let (gw, _table) = gateway(&yaml);
    let mut tx = h1(http_addr(&gw)).await;

    let cases = [
        ("wild.example.com", "https://shop.example.com", true),
        ("wild.example.com", "https://Shop-2.EXAMPLE.com", true),
        ("wild.example.com", "https://example.com", false),
        ("wild.example.com", "https://a.b.example.com", false),
        ("wild.example.com", "http://shop.example.com", false),
        ("wild.example.com", "https://shop.example.org", false),
        ("wild.example.com", "https://shopexample.com", false),
        ("wild.example.com", "https://shop.example.com:8443", false),
        ("wild.example.com", "http://dev.example.net:8080", true),
        ("wild.example.com", "http://dev.example.net", false),
        ("list.example.com", "https://a.example.com", true),
        ("list.example.com", "http://b.example.org:8080", true),
        ("list.example.com", "http://b.example.org", false),
        ("list.example.com", "https://c.example.com", false),
    ];
    for (host, origin, allowed) in cases {
        let r = send1(&mut tx, get_from(host, Some(origin))).await;
        assert_eq!((r.status, r.service()), (StatusCode::OK, "api"), "{origin}");
        if allowed {
            assert_eq!(
                header(&r, "access-control-allow-origin"),
                Some(origin),
                "{host} {origin}: echoed as sent"
            );
            assert_eq!(header(&r, "vary"), Some("Origin"), "{origin}");
        } else {
            assert_no_cors(&r, origin);
        }
        let p = send1(&mut tx, preflight_req(host, origin)).await;
        if allowed {
            assert_eq!(p.status, StatusCode::NO_CONTENT, "{origin}");
        } else {
            assert_eq!((p.status, p.service()), (StatusCode::OK, "api"), "{origin}");
        }
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn star_defaults_and_credentials_off() {
    let backend = echo("api").await;
    let yaml = [
        // Every default: any origin, default methods, headers and max-age, credentials.
        cors_ingress(
            "defaults",
            "d.example.com",
            "api",
            &[("enable-cors", "true")],
        ),
        cors_ingress(
            "star",
            "star.example.com",
            "api",
            &[
                ("enable-cors", "true"),
                ("cors-allow-origin", "https://a.example.com, *"),
                ("cors-allow-credentials", "false"),
                ("cors-allow-methods", "GET, *"),
            ],
        ),
        // CORS keys without enable-cors do nothing.
        cors_ingress(
            "off",
            "off.example.com",
            "api",
            &[("cors-allow-origin", "https://a.example.com")],
        ),
        service("api", &[backend.addr()]),
    ]
    .concat();
    let (gw, _table) = gateway(&yaml);
    let mut tx = h1(http_addr(&gw)).await;

    let r = send1(&mut tx, preflight_req("d.example.com", "https://x.test")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(header(&r, "access-control-allow-origin"), Some("*"));
    assert!(
        r.headers.get("vary").is_none(),
        "`*` does not vary by origin"
    );
    assert_eq!(
        header(&r, "access-control-allow-methods"),
        Some("GET, PUT, POST, DELETE, PATCH, OPTIONS")
    );
    assert_eq!(
        header(&r, "access-control-allow-headers"),
        Some(
            "dnt, x-customheader, keep-alive, user-agent, x-requested-with, if-modified-since, cache-control, content-type, authorization"
        )
    );
    assert_eq!(header(&r, "access-control-max-age"), Some("1728000"));
    assert_eq!(header(&r, "access-control-allow-credentials"), Some("true"));
    assert!(r.headers.get("access-control-expose-headers").is_none());

    let r = send1(&mut tx, get_from("d.example.com", Some("https://x.test"))).await;
    assert_eq!((r.status, r.service()), (StatusCode::OK, "api"));
    assert_eq!(header(&r, "access-control-allow-origin"), Some("*"));
    // With `*`, as in ingress-nginx, an answer gets the headers without `Origin` too.
    let r = send1(&mut tx, get_from("d.example.com", None)).await;
    assert_eq!((r.status, r.service()), (StatusCode::OK, "api"));
    assert_eq!(header(&r, "access-control-allow-origin"), Some("*"));
    assert_eq!(header(&r, "access-control-allow-credentials"), Some("true"));
    assert!(r.headers.get("vary").is_none());

    let r = send1(&mut tx, preflight_req("star.example.com", "https://y.test")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(header(&r, "access-control-allow-origin"), Some("*"));
    assert_eq!(header(&r, "access-control-allow-methods"), Some("*"));
    assert!(r.headers.get("access-control-allow-credentials").is_none());
    let r = send1(
        &mut tx,
        get_from("star.example.com", Some("https://y.test")),
    )
    .await;
    assert_eq!(header(&r, "access-control-allow-origin"), Some("*"));
    assert!(r.headers.get("access-control-allow-credentials").is_none());

    let r = send1(
        &mut tx,
        preflight_req("off.example.com", "https://a.example.com"),
    )
    .await;
    assert_eq!((r.status, r.service()), (StatusCode::OK, "api"));
    assert_no_cors(&r, "enable-cors not set");
    gw.shutdown().await;
}

#[tokio::test]
async fn canary_routes_inherit_the_main_ingress_cors() {
    let main = echo("main").await;
    let canary = echo("canary").await;
    let allow = [
        ("enable-cors", "true"),
        ("cors-allow-origin", "https://app.example.com"),
    ];
    let yaml = [
        cors_ingress("main", "c.example.com", "main", &allow),
        // Every request goes to the canary, which has no CORS annotations of its own.
        cors_ingress(
            "canary",
            "c.example.com",
            "canary",
            &[("canary", "true"), ("canary-weight", "100")],
        ),
        service("main", &[main.addr()]),
        service("canary", &[canary.addr()]),
    ]
    .concat();
    let (gw, _table) = gateway(&yaml);
    let mut tx = h1(http_addr(&gw)).await;
    let r = send1(
        &mut tx,
        get_from("c.example.com", Some("https://app.example.com")),
    )
    .await;
    assert_eq!((r.status, r.service()), (StatusCode::OK, "canary"));
    assert_eq!(
        header(&r, "access-control-allow-origin"),
        Some("https://app.example.com")
    );
    let r = send1(
        &mut tx,
        preflight_req("c.example.com", "https://app.example.com"),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!((main.requests(), canary.requests()), (0, 1));
    gw.shutdown().await;
}
