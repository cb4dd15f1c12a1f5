//! End to end over loopback: redirect, header-control, custom-headers and rewrite
//! annotations take effect in the data plane. Each test asserts what the client got and
//! what the backend saw.
#![cfg(test)]

mod support;

use http::StatusCode;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use mse_router::RouteTable;
use support::*;

/// An Ingress of one rule with annotations.
fn annotated(
    name: &str,
    host: &str,
    paths: &[PathRule<'_>],
    annotations: &[(&str, &str)],
) -> String {
    annotate(&ingress(name, Some(host), paths), annotations)
}

/// The diagnostics of `table` with this code, as `key` strings.
fn keys_with_code(table: &RouteTable, code: &str) -> Vec<String> {
    table
        .diagnostics()
        .iter()
        .filter(|d| d.code == code)
        .filter_map(|d| d.origin.key.as_deref().map(str::to_owned))
        .collect()
}

fn location(r: &Reply) -> Option<&str> {
    r.headers.get("location").and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn permanent_and_temporal_redirects_answer_without_an_upstream() {
    // The Services do not exist: a redirect needs no backend.
    let yaml = [
        annotated(
            "perm",
            "perm.example.com",
            &[("/", "Prefix", "nowhere")],
            &[("permanent-redirect", "https://new.example.com$request_uri")],
        ),
        annotated(
            "code",
            "code.example.com",
            &[("/", "Prefix", "nowhere")],
            &[
                ("permanent-redirect", "https://fixed.example.com/moved"),
                ("permanent-redirect-code", "308"),
            ],
        ),
        annotated(
            "temp",
            "temp.example.com",
            &[("/", "Prefix", "nowhere")],
            &[
                ("permanent-redirect", "https://perm.example.com/"),
                (
                    "temporal-redirect",
                    "https://$host/maintenance?from=$escaped_request_uri",
                ),
            ],
        ),
    ]
    .concat();
    let (gw, table) = gateway(&yaml);
    let addr = http_addr(&gw);

    let r = get(addr, "perm.example.com", "/a/b?q=1").await;
    assert_eq!(r.status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(location(&r), Some("https://new.example.com/a/b?q=1"));

    let r = get(addr, "code.example.com", "/x").await;
    assert_eq!(r.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(location(&r), Some("https://fixed.example.com/moved"));

    let r = get(addr, "Temp.Example.com:8080", "/p?a=1").await;
    assert_eq!(r.status, StatusCode::FOUND, "temporal wins over permanent");
    assert_eq!(
        location(&r),
        Some("https://temp.example.com/maintenance?from=%2Fp%3Fa%3D1")
    );
    assert!(r.body.is_empty());

    let not_applied = keys_with_code(&table.routes(), "not-applied");
    assert!(
        not_applied.iter().all(|k| !k.contains("redirect")),
        "{not_applied:?}"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn relative_redirect_targets_are_made_absolute_unless_asked_not_to() {
    let yaml = [
        annotated(
            "moved",
            "moved.example.com",
            &[("/", "Prefix", "nowhere")],
            &[("permanent-redirect", "/new-location")],
        ),
        annotated(
            "vars",
            "vars.example.com",
            &[("/", "Prefix", "nowhere")],
            &[("temporal-redirect", "/v2$request_uri")],
        ),
        annotated(
            "relative",
            "relative.example.com",
            &[("/", "Prefix", "nowhere")],
            &[
                ("permanent-redirect", "/new-location"),
                ("permanent-redirect-code", "308"),
                ("relative-redirects", "true"),
            ],
        ),
    ]
    .concat();
    let (gw, table) = gateway(&yaml);
    let addr = http_addr(&gw);

    let r = get(addr, "Moved.Example.com:8080", "/old?x=1").await;
    assert_eq!(r.status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(location(&r), Some("http://moved.example.com/new-location"));

    let r = get(addr, "vars.example.com", "/a?b=2").await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(location(&r), Some("http://vars.example.com/v2/a?b=2"));

    let r = get(addr, "relative.example.com", "/old").await;
    assert_eq!(r.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(location(&r), Some("/new-location"));

    let diags: Vec<_> = table
        .routes()
        .diagnostics()
        .iter()
        .map(|d| d.code)
        .collect();
    assert!(
        !diags.contains(&"invalid-value") && !diags.contains(&"not-applied"),
        "{diags:?}"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn ssl_redirects_send_plaintext_requests_to_https_only() {
    let backend = echo("secure").await;
    let ca = TestCa::new();
    let leaf = ca.leaf(&["s.example.com", "off.example.com"]);
    let yaml = [
        tls_secret("s-cert", &leaf.cert_pem, &leaf.key_pem),
        // A host with a certificate: ssl-redirect defaults to true, as in ingress-nginx.
        tls_ingress("s", "s-cert", &["s.example.com"], "secure"),
        // The same, turned off.
        annotate(
            &tls_ingress("off", "s-cert", &["off.example.com"], "secure"),
            &[("ssl-redirect", "false")],
        ),
        // No certificate here (TLS ends in front of the gateway): only when forced.
        annotated(
            "force",
            "force.example.com",
            &[("/", "Prefix", "secure")],
            &[("force-ssl-redirect", "true")],
        ),
        annotated(
            "on",
            "on.example.com",
            &[("/", "Prefix", "secure")],
            &[("ssl-redirect", "true")],
        ),
        ingress(
            "plain",
            Some("plain.example.com"),
            &[("/", "Prefix", "secure")],
        ),
        service("secure", &[backend.addr()]),
    ]
    .concat();
    let (gw, table) = gateway(&yaml);
    let addr = http_addr(&gw);

    let r = get(addr, "s.example.com:8080", "/x/../y?z=1").await;
    assert_eq!(r.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        location(&r),
        Some("https://s.example.com/x/../y?z=1"),
        "the request URI as received, the port dropped"
    );
    for host in ["force.example.com", "on.example.com"] {
        let r = get(addr, host, "/").await;
        assert_eq!(r.status, StatusCode::PERMANENT_REDIRECT, "{host}");
        assert_eq!(location(&r), Some(&*format!("https://{host}/")));
    }
    for host in ["off.example.com", "plain.example.com"] {
        let r = get(addr, host, "/").await;
        assert_eq!(
            (r.status, r.service()),
            (StatusCode::OK, "secure"),
            "{host}"
        );
    }
    let redirecting: Vec<_> = table
        .routes()
        .routes()
        .iter()
        .filter(|r| r.https_redirect)
        .map(|r| r.ingress.name.to_string())
        .collect();
    assert_eq!(redirecting, ["force", "on", "s"]);

    // Over TLS the same route is served.
    let client = verifying_client(&ca.cert, &[b"http/1.1"]);
    let stream = tls(&client, https_addr(&gw), "s.example.com").await;
    let (mut tx, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let r = send1(&mut tx, get_req("s.example.com", "/y")).await;
    assert_eq!((r.status, r.service()), (StatusCode::OK, "secure"));
    gw.shutdown().await;
}

#[tokio::test]
async fn app_root_redirects_only_the_root() {
    let backend = echo("app").await;
    let yaml = [
        annotated(
            "app",
            "app.example.com",
            &[("/", "Prefix", "app")],
            &[("app-root", "/dashboard")],
        ),
        service("app", &[backend.addr()]),
    ]
    .concat();
    let (gw, _) = gateway(&yaml);
    let addr = http_addr(&gw);
    let r = get(addr, "app.example.com", "/").await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(location(&r), Some("http://app.example.com/dashboard"));
    let r = get(addr, "app.example.com", "/dashboard").await;
    assert_eq!((r.status, r.service()), (StatusCode::OK, "app"));
    assert_eq!(r.json()["path"], "/dashboard");
    gw.shutdown().await;
}

#[tokio::test]
async fn header_control_edits_request_and_response_headers() {
    let backend = echo("h").await;
    let yaml = [
        annotated(
            "h",
            "h.example.com",
            &[("/", "Prefix", "h")],
            &[
                (
                    "request-header-control-add",
                    "X-Add gateway\nX-Quoted \"a b\"",
                ),
                ("request-header-control-update", "X-Update new"),
                ("request-header-control-remove", "X-Remove, Content-Length"),
                ("response-header-control-add", "X-Resp one"),
                ("response-header-control-update", "Content-Type text/x-test"),
                ("response-header-control-remove", "X-Echo-Service"),
            ],
        ),
        service("h", &[backend.addr()]),
    ]
    .concat();
    let (gw, table) = gateway(&yaml);
    let addr = http_addr(&gw);
    let mut tx = h1(addr).await;
    let mut req = get_req("h.example.com", "/x");
    for (name, value) in [
        ("x-add", "client"),
        ("x-update", "old"),
        ("x-remove", "gone"),
        ("x-kept", "yes"),
    ] {
        req.headers_mut()
            .insert(name, value.parse().expect("header value"));
    }
    let r = send1(&mut tx, req).await;
    assert_eq!(r.status, StatusCode::OK);
    let seen = &r.json()["headers"];
    assert_eq!(seen["x-add"], "client, gateway", "add appends");
    assert_eq!(seen["x-quoted"], "a b", "quotes are stripped");
    assert_eq!(seen["x-update"], "new", "update replaces");
    assert!(seen.get("x-remove").is_none(), "remove deletes: {seen}");
    assert_eq!(seen["x-kept"], "yes");
    assert_eq!(r.headers["x-resp"], "one");
    assert_eq!(r.headers["content-type"], "text/x-test");
    assert!(!r.headers.contains_key("x-echo-service"));

    // Framing headers are refused at compile time, with a warning on the key.
    let ignored = keys_with_code(&table.routes(), "ignored-annotation");
    assert_eq!(
        ignored,
        ["nginx.ingress.kubernetes.io/request-header-control-remove"]
    );
    let not_applied = keys_with_code(&table.routes(), "not-applied");
    assert!(not_applied.is_empty(), "{not_applied:?}");
    gw.shutdown().await;
}

#[tokio::test]
async fn connection_proxy_header_sets_the_upstream_connection_header() {
    let closing = echo("closing").await;
    let pooled = echo("pooled").await;
    let yaml = [
        annotated(
            "closing",
            "closing.example.com",
            &[("/", "Prefix", "closing")],
            &[("connection-proxy-header", "close")],
        ),
        annotated(
            "pooled",
            "pooled.example.com",
            &[("/", "Prefix", "pooled")],
            &[("connection-proxy-header", "keep-alive")],
        ),
        service("closing", &[closing.addr()]),
        service("pooled", &[pooled.addr()]),
    ]
    .concat();
    let (gw, table) = gateway(&yaml);
    let mut tx = h1(http_addr(&gw)).await;
    for _ in 0..3 {
        let r = send1(&mut tx, get_req("closing.example.com", "/")).await;
        assert_eq!((r.status, r.service()), (StatusCode::OK, "closing"));
        assert_eq!(r.json()["headers"]["connection"], "close");
        let r = send1(&mut tx, get_req("pooled.example.com", "/")).await;
        assert_eq!((r.status, r.service()), (StatusCode::OK, "pooled"));
        assert_eq!(r.json()["headers"]["connection"], "keep-alive");
    }
    // `close` costs a connection per request; `keep-alive` keeps one.
    assert_eq!(closing.connections(), 3);
    assert_eq!(pooled.connections(), 1);
    let not_applied = keys_with_code(&table.routes(), "not-applied");
    assert!(not_applied.is_empty(), "{not_applied:?}");
    gw.shutdown().await;
}

#[tokio::test]
async fn response_header_updates_replace_received_headers_and_adds_keep_them() {
    // No removal and no location rewrite: the upstream's headers are relayed as received,
    // with the edits written beside them.
    let backend = echo("r").await;
    let yaml = [
        annotated(
            "r",
            "r.example.com",
            &[("/", "Prefix", "r")],
            &[
                (
                    "response-header-control-add",
                    "X-Resp one\nX-Echo-Service extra",
                ),
                ("response-header-control-update", "Content-Type text/x-test"),
            ],
        ),
        service("r", &[backend.addr()]),
    ]
    .concat();
    let (gw, _) = gateway(&yaml);
    let values = |r: &Reply, name: &str| {
        r.headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let mut tx = h1(http_addr(&gw)).await;
    for _ in 0..2 {
        let r = send1(&mut tx, get_req("r.example.com", "/x")).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(
            values(&r, "content-type"),
            ["text/x-test"],
            "update replaces"
        );
        assert_eq!(values(&r, "x-resp"), ["one"]);
        assert_eq!(
            values(&r, "x-echo-service"),
            ["r", "extra"],
            "add keeps the received one"
        );
        assert_eq!(values(&r, "date").len(), 1);
        assert_eq!(r.json()["path"], "/x");
    }
    // HTTP/2 clients get the same headers.
    let mut tx = h2c(http_addr(&gw)).await;
    let req = http::Request::get("http://r.example.com/x")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let r = send2(&mut tx, req).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(values(&r, "content-type"), ["text/x-test"]);
    assert_eq!(values(&r, "x-resp"), ["one"]);
    assert_eq!(values(&r, "x-echo-service"), ["r", "extra"]);
    gw.shutdown().await;
}

#[tokio::test]
async fn custom_headers_set_the_config_map_entries_and_a_missing_one_closes_the_routes() {
    let backend = echo("c").await;
    let config_map = "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: site-headers, namespace: default }\ndata:\n  X-Frame-Options: DENY\n  X-Echo-Service: from-config-map\n---\n";
    let yaml = [
        annotated(
            "c",
            "c.example.com",
            &[("/", "Prefix", "c")],
            &[("custom-headers", "default/site-headers")],
        ),
        annotated(
            "m",
            "m.example.com",
            &[("/", "Prefix", "c")],
            &[("custom-headers", "absent")],
        ),
        service("c", &[backend.addr()]),
        config_map.to_owned(),
        // ingress-nginx allows no header to custom-headers unless the gateway lists it.
        gateway_config_map(&[(
            "global-allowed-response-headers",
            "X-Frame-Options,X-Echo-Service",
        )]),
    ]
    .concat();
    let (gw, table) = gateway_serving(compile_yaml_with(&yaml, &configmap_options()), |_| {});
    assert_eq!(
        keys_with_code(&table.routes(), "missing-config-map"),
        ["nginx.ingress.kubernetes.io/custom-headers"]
    );
    let values = |r: &Reply, name: &str| {
        r.headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let mut tx = h1(http_addr(&gw)).await;
    for _ in 0..2 {
        let r = send1(&mut tx, get_req("c.example.com", "/x")).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(values(&r, "x-frame-options"), ["DENY"]);
        // Set, as nginx's more_set_headers does: the upstream's own value is replaced.
        assert_eq!(values(&r, "x-echo-service"), ["from-config-map"]);
        assert_eq!(r.json()["path"], "/x");
    }
    let r = send1(&mut tx, get_req("m.example.com", "/x")).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers.get("x-frame-options").is_none());
    gw.shutdown().await;
}

#[tokio::test]
async fn rewrites_change_the_path_and_host_sent_upstream() {
    let backend = echo("rw").await;
    let yaml = [
        annotated(
            "path",
            "rw.example.com",
            &[("/api", "Prefix", "rw")],
            &[
                ("rewrite-path", "/v2"),
                ("upstream-vhost", "internal.svc"),
                ("x-forwarded-prefix", "/api"),
            ],
        ),
        annotated(
            "strip",
            "rw.example.com",
            &[("/strip", "Prefix", "rw"), ("/old", "Exact", "rw")],
            &[("rewrite-target", "/")],
        ),
        annotated(
            "groups",
            "rw.example.com",
            &[("/groups", "Prefix", "rw")],
            &[("rewrite-target", "/$1")],
        ),
        service("rw", &[backend.addr()]),
    ]
    .concat();
    let (gw, table) = gateway(&yaml);
    let addr = http_addr(&gw);

    let r = get(addr, "rw.example.com", "/api/users?id=7").await;
    assert_eq!(r.status, StatusCode::OK);
    let seen = r.json();
    assert_eq!(seen["path"], "/v2/users");
    assert_eq!(seen["query"], "id=7");
    assert_eq!(seen["host"], "internal.svc");
    assert_eq!(seen["headers"]["x-forwarded-host"], "rw.example.com");
    assert_eq!(seen["headers"]["x-forwarded-prefix"], "/api");

    let r = get(addr, "rw.example.com", "/api").await;
    assert_eq!(r.json()["path"], "/v2");

    for (path, want) in [("/strip/a/b", "/a/b"), ("/strip", "/"), ("/old", "/")] {
        let r = get(addr, "rw.example.com", path).await;
        assert_eq!(r.json()["path"], want, "{path}");
        assert_eq!(r.json()["host"], "rw.example.com", "{path}");
        assert!(r.json()["headers"].get("x-forwarded-prefix").is_none());
    }

    // `$1` makes the path the regex `^/groups`, which has no group 1: the whole path is
    // replaced by `/`, as nginx does.
    let r = get(addr, "rw.example.com", "/groups/x").await;
    assert_eq!(r.json()["path"], "/");
    let not_applied = keys_with_code(&table.routes(), "not-applied");
    assert!(not_applied.is_empty(), "{not_applied:?}");
    gw.shutdown().await;
}

#[tokio::test]
async fn proxy_redirect_rewrites_upstream_locations() {
    let backend = echo("pr").await;
    let yaml = [
        annotated(
            "replace",
            "pr.example.com",
            &[("/replace", "Prefix", "pr")],
            &[
                ("proxy-redirect-from", "http://internal.svc/"),
                ("proxy-redirect-to", "https://pr.example.com/"),
            ],
        ),
        annotated(
            "default",
            "pr.example.com",
            &[("/default", "Prefix", "pr")],
            &[("proxy-redirect-from", "default")],
        ),
        annotated(
            "off",
            "pr.example.com",
            &[("/off", "Prefix", "pr")],
            &[("proxy-redirect-from", "off")],
        ),
        service("pr", &[backend.addr()]),
    ]
    .concat();
    let (gw, table) = gateway(&yaml);
    let addr = http_addr(&gw);
    let ask = |path: &str, location: &str, refresh: Option<&str>| {
        let mut req = get_req("pr.example.com", path);
        req.headers_mut()
            .insert("x-echo-location", location.parse().expect("value"));
        if let Some(r) = refresh {
            req.headers_mut()
                .insert("x-echo-refresh", r.parse().expect("value"));
        }
        req
    };

    let mut tx = h1(addr).await;
    let r = send1(
        &mut tx,
        ask(
            "/replace",
            "http://internal.svc/login?x=1",
            Some("5; URL=http://internal.svc/a"),
        ),
    )
    .await;
    assert_eq!(location(&r), Some("https://pr.example.com/login?x=1"));
    assert_eq!(r.headers["refresh"], "5; URL=https://pr.example.com/a");
    let r = send1(&mut tx, ask("/replace", "http://elsewhere/x", None)).await;
    assert_eq!(
        location(&r),
        Some("http://elsewhere/x"),
        "other URLs are kept"
    );

    let own = format!("http://{}/next", backend.addr());
    let r = send1(&mut tx, ask("/default", &own, None)).await;
    assert_eq!(location(&r), Some("http://pr.example.com/next"));

    let r = send1(&mut tx, ask("/off", &own, None)).await;
    assert_eq!(location(&r), Some(&*own));

    let not_applied = keys_with_code(&table.routes(), "not-applied");
    assert!(not_applied.is_empty(), "{not_applied:?}");
    gw.shutdown().await;
}

#[tokio::test]
async fn from_to_www_redirects_the_host_the_rules_do_not_define() {
    let backend = echo("www").await;
    let yaml = [
        annotated(
            "bare",
            "bare.example.com",
            &[("/", "Prefix", "www")],
            &[("from-to-www-redirect", "true")],
        ),
        annotated(
            "www",
            "www.pre.example.com",
            &[("/", "Prefix", "www")],
            &[("from-to-www-redirect", "true")],
        ),
        // Both names defined: nothing to redirect.
        annotated(
            "both",
            "both.example.com",
            &[("/", "Prefix", "www")],
            &[("from-to-www-redirect", "true")],
        ),
        ingress(
            "both-www",
            Some("www.both.example.com"),
            &[("/", "Prefix", "www")],
        ),
        service("www", &[backend.addr()]),
    ]
    .concat();
    let (gw, table) = gateway(&yaml);
    let addr = http_addr(&gw);

    let r = get(addr, "www.bare.example.com:8080", "/a?b=1").await;
    assert_eq!(r.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(location(&r), Some("http://bare.example.com/a?b=1"));
    let r = get(addr, "pre.example.com", "/").await;
    assert_eq!(r.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(location(&r), Some("http://www.pre.example.com/"));
    for host in [
        "bare.example.com",
        "www.pre.example.com",
        "both.example.com",
        "www.both.example.com",
    ] {
        let r = get(addr, host, "/x").await;
        assert_eq!((r.status, r.service()), (StatusCode::OK, "www"), "{host}");
    }
    let not_applied = keys_with_code(&table.routes(), "not-applied");
    assert!(not_applied.is_empty(), "{not_applied:?}");
    gw.shutdown().await;
}

#[tokio::test]
async fn app_root_covers_the_host_even_without_a_root_path() {
    let (dash, site) = (echo("dash").await, echo("site").await);
    let yaml = [
        annotated(
            "dash",
            "root.example.com",
            &[("/dashboard", "Prefix", "dash")],
            &[("app-root", "/dashboard")],
        ),
        ingress("site", Some("root.example.com"), &[("/", "Prefix", "site")]),
        service("dash", &[dash.addr()]),
        service("site", &[site.addr()]),
    ]
    .concat();
    let (gw, _) = gateway(&yaml);
    let addr = http_addr(&gw);
    let r = get(addr, "root.example.com", "/").await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(location(&r), Some("http://root.example.com/dashboard"));
    let r = get(addr, "root.example.com", "/dashboard/x").await;
    assert_eq!((r.status, r.service()), (StatusCode::OK, "dash"));
    let r = get(addr, "root.example.com", "/other").await;
    assert_eq!((r.status, r.service()), (StatusCode::OK, "site"));
    gw.shutdown().await;
}

#[tokio::test]
async fn header_edits_apply_over_the_gateways_forwarding_headers() {
    let backend = echo("fwd").await;
    let yaml = [
        annotated(
            "named",
            "named.example.com",
            &[("/", "Prefix", "fwd")],
            &[
                ("request-header-control-update", "X-Real-IP 192.0.2.1"),
                ("request-header-control-remove", "X-Forwarded-Port"),
            ],
        ),
        annotated(
            "other",
            "other.example.com",
            &[("/", "Prefix", "fwd")],
            &[
                ("request-header-control-update", "X-Tenant t1"),
                ("request-header-control-remove", "X-Drop"),
                ("upstream-vhost", "inside.svc"),
            ],
        ),
        service("fwd", &[backend.addr()]),
    ]
    .concat();
    let (gw, _table) = gateway(&yaml);
    let addr = http_addr(&gw);
    let mut tx = h1(addr).await;
    let mut req = get_req("named.example.com", "/");
    req.headers_mut()
        .insert("x-real-ip", http::HeaderValue::from_static("6.6.6.6"));
    let seen = send1(&mut tx, req).await.json();
    assert_eq!(seen["headers"]["x-real-ip"], "192.0.2.1");
    assert!(seen["headers"].get("x-forwarded-port").is_none());
    assert_eq!(seen["headers"]["x-forwarded-for"], "127.0.0.1");

    // Edits written straight into the upstream head: the client's copies are replaced or
    // dropped, and the gateway's forwarding headers are there once.
    let mut req = get_req("other.example.com", "/");
    for (k, v) in [
        ("x-tenant", "spoofed"),
        ("x-drop", "1"),
        ("x-real-ip", "6.6.6.6"),
    ] {
        req.headers_mut()
            .insert(k, http::HeaderValue::from_static(v));
    }
    let seen = send1(&mut tx, req).await.json();
    assert_eq!(seen["host"], "inside.svc");
    assert_eq!(seen["headers"]["x-tenant"], "t1");
    assert!(seen["headers"].get("x-drop").is_none());
    assert_eq!(seen["headers"]["x-real-ip"], "127.0.0.1");
    assert_eq!(seen["headers"]["x-forwarded-host"], "other.example.com");
    gw.shutdown().await;
}
