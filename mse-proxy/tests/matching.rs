//! End to end over loopback: regex paths, `rewrite-target` capture groups,
//! `ignore-path-case`, match conditions and `server-alias` decide which backend serves a
//! request and what path it sees.
#![cfg(test)]

mod support;

use http::StatusCode;
use support::*;

#[tokio::test]
async fn regex_paths_and_capture_groups_rewrite_what_the_backend_sees() {
    let plain = echo("plain").await;
    let rx = echo("regex").await;
    let yaml = [
        ingress(
            "plain",
            Some("rx.example.com"),
            &[("/", "Prefix", "plain"), ("/user", "Prefix", "plain")],
        ),
        annotate(
            &ingress(
                "nginx-style",
                Some("rx.example.com"),
                &[("/something(/|$)(.*)", "ImplementationSpecific", "regex")],
            ),
            &[
                ("nginx.ingress.kubernetes.io/use-regex", "true"),
                ("nginx.ingress.kubernetes.io/rewrite-target", "/$2"),
            ],
        ),
        annotate(
            &ingress(
                "full",
                Some("rx.example.com"),
                &[("/item/[0-9]+", "Prefix", "regex")],
            ),
            &[("higress.io/full-path-regex", "true")],
        ),
        annotate(
            &ingress(
                "implied",
                Some("rx.example.com"),
                &[("/api/(v[0-9])/(.*)", "Prefix", "regex")],
            ),
            &[(
                "nginx.ingress.kubernetes.io/rewrite-target",
                "/$2?version=$1",
            )],
        ),
        service("plain", &[plain.addr()]),
        service("regex", &[rx.addr()]),
    ]
    .concat();
    let (gw, table) = gateway(&yaml);
    let addr = http_addr(&gw);
    for (path, service, seen) in [
        ("/something", "regex", "/"),
        ("/something/", "regex", "/"),
        ("/something/new/x", "regex", "/new/x"),
        ("/somethingelse", "plain", "/somethingelse"),
        ("/item/42", "regex", "/item/42"),
        ("/item/42/more", "plain", "/item/42/more"),
        ("/user/1", "plain", "/user/1"),
    ] {
        let r = get(addr, "rx.example.com", path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(r.service(), service, "{path}");
        assert_eq!(r.json()["path"], seen, "{path}");
    }
    // A group in the query of the target: the request's own query follows, nginx style.
    let r = get(addr, "rx.example.com", "/api/v2/users?id=7").await;
    assert_eq!(r.service(), "regex");
    assert_eq!(r.json()["path"], "/users");
    assert_eq!(r.json()["query"], "version=v2&id=7");
    let diags = table.routes();
    let bad: Vec<_> = diags
        .diagnostics()
        .iter()
        .filter(|d| d.code == "not-applied")
        .collect();
    assert!(bad.is_empty(), "{bad:?}");
    gw.shutdown().await;
}

#[tokio::test]
async fn match_conditions_and_ignore_path_case_pick_the_backend() {
    let main = echo("main").await;
    let dev = echo("dev").await;
    let post = echo("post").await;
    let yaml = [
        ingress("main", Some("m.example.com"), &[("/api", "Prefix", "main")]),
        annotate(
            &ingress("dev", Some("m.example.com"), &[("/api", "Prefix", "dev")]),
            &[
                ("higress.io/exact-match-header-x-env", "dev"),
                ("higress.io/prefix-match-query-tenant", "team-"),
            ],
        ),
        annotate(
            &ingress(
                "writes",
                Some("m.example.com"),
                &[("/api", "Prefix", "post")],
            ),
            &[("higress.io/match-method", "POST PUT")],
        ),
        annotate(
            &ingress("docs", Some("m.example.com"), &[("/Docs", "Prefix", "dev")]),
            &[("higress.io/ignore-path-case", "true")],
        ),
        service("main", &[main.addr()]),
        service("dev", &[dev.addr()]),
        service("post", &[post.addr()]),
    ]
    .concat();
    let (gw, _table) = gateway(&yaml);
    let addr = http_addr(&gw);
    let mut tx = h1(addr).await;
    let cases: [(&str, &str, &[(&str, &str)], &str); 7] = [
        ("GET", "/api/x", &[], "main"),
        ("GET", "/api/x?tenant=team-a", &[("x-env", "dev")], "dev"),
        ("GET", "/api/x?tenant=other", &[("x-env", "dev")], "main"),
        ("GET", "/api/x?tenant=team-a", &[("x-env", "prod")], "main"),
        ("POST", "/api/x", &[], "post"),
        ("PUT", "/api/x?tenant=team-a", &[("x-env", "dev")], "post"),
        ("GET", "/DOCS/Intro", &[], "dev"),
    ];
    for (method, uri, headers, want) in cases {
        let r = send1(&mut tx, request("m.example.com", method, uri, headers)).await;
        assert_eq!(r.status, StatusCode::OK, "{method} {uri} {headers:?}");
        assert_eq!(r.service(), want, "{method} {uri} {headers:?}");
        // The path is forwarded as received, case included.
        assert_eq!(r.json()["path"], uri.split('?').next().unwrap_or(uri));
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn server_alias_hosts_are_served_like_the_rule_host() {
    let shop = echo("shop").await;
    let yaml = [
        annotate(
            &ingress("shop", Some("shop.example.com"), &[("/", "Prefix", "shop")]),
            &[(
                "nginx.ingress.kubernetes.io/server-alias",
                "www.shop.example.com, *.shop.example.net",
            )],
        ),
        service("shop", &[shop.addr()]),
    ]
    .concat();
    let (gw, _table) = gateway(&yaml);
    let addr = http_addr(&gw);
    for host in [
        "shop.example.com",
        "www.shop.example.com",
        "eu.shop.example.net",
    ] {
        let r = get(addr, host, "/cart").await;
        assert_eq!(r.status, StatusCode::OK, "{host}");
        assert_eq!(r.json()["host"], host, "{host}");
    }
    assert_eq!(
        get(addr, "other.example.com", "/cart").await.status,
        StatusCode::NOT_FOUND
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn regex_and_prefix_header_query_and_pseudo_header_conditions() {
    let main = echo("main").await;
    let special = echo("special").await;
    let yaml = [
        ingress("main", Some("p.example.com"), &[("/", "Prefix", "main")]),
        annotate(
            &ingress(
                "special",
                Some("p.example.com"),
                &[("/", "Prefix", "special")],
            ),
            &[
                ("higress.io/regex-match-header-user-agent", "curl/[0-9.]+"),
                ("higress.io/prefix-match-header-x-team", "pay"),
                ("higress.io/regex-match-query-id", "[0-9]{3}"),
                ("higress.io/exact-match-pseudo-header-method", "GET"),
            ],
        ),
        service("main", &[main.addr()]),
        service("special", &[special.addr()]),
    ]
    .concat();
    let (gw, _table) = gateway(&yaml);
    let mut tx = h1(http_addr(&gw)).await;
    let all = [("user-agent", "curl/8.5.0"), ("x-team", "payments")];
    let cases: [(&str, &str, &[(&str, &str)], &str); 6] = [
        ("GET", "/x?id=123", &all, "special"),
        ("GET", "/x?id=1234", &all, "main"),
        (
            "GET",
            "/x?id=123",
            &[("user-agent", "Mozilla curl/8.5.0"), ("x-team", "payments")],
            "main",
        ),
        (
            "GET",
            "/x?id=123",
            &[("user-agent", "curl/8.5.0"), ("x-team", "ops")],
            "main",
        ),
        ("POST", "/x?id=123", &all, "main"),
        ("GET", "/x", &all, "main"),
    ];
    for (method, uri, headers, want) in cases {
        let r = send1(&mut tx, request("p.example.com", method, uri, headers)).await;
        assert_eq!(r.service(), want, "{method} {uri} {headers:?}");
    }
    gw.shutdown().await;
}
