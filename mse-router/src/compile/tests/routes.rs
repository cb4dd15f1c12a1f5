//! Route precedence, conflicts, paths and match conditions.

use super::*;

#[test]
fn precedence_table() {
    let mut yaml = services();
    yaml += &ingress(
        "a",
        "2024-01-01T00:00:00Z",
        &path_rule(
            "shop.example.com",
            &[
                ("/", "Prefix", "s1"),
                ("/api", "Prefix", "s2"),
                ("/api/v1", "Prefix", "s3"),
                ("/api", "Exact", "s4"),
            ],
        ),
    );
    yaml += &ingress(
        "b",
        "2024-01-02T00:00:00Z",
        &path_rule("*.example.com", &[("/", "Prefix", "s5")]),
    );
    yaml += &ingress(
        "c",
        "2024-01-03T00:00:00Z",
        &path_rule(
            "",
            &[
                ("/", "Prefix", "s6"),
                ("/static/", "ImplementationSpecific", "s7"),
            ],
        ),
    );
    let t = table(&yaml);
    let cases: &[(&str, &str, Option<u8>, &str)] = &[
        ("shop.example.com", "/", Some(1), "root prefix"),
        (
            "shop.example.com",
            "/api",
            Some(4),
            "exact beats prefix of the same path",
        ),
        (
            "shop.example.com",
            "/api/",
            Some(2),
            "exact does not match a trailing slash",
        ),
        ("shop.example.com", "/api/x", Some(2), "prefix by segment"),
        (
            "shop.example.com",
            "/apix",
            Some(1),
            "no partial segment match",
        ),
        (
            "shop.example.com",
            "/api/v1/orders",
            Some(3),
            "longest prefix wins",
        ),
        (
            "shop.example.com",
            "/api/v10",
            Some(2),
            "segment boundary on the longer prefix",
        ),
        (
            "SHOP.example.com:8080",
            "/api/v1",
            Some(3),
            "host case and port are ignored",
        ),
        (
            "shop.example.com",
            "/x/../api/v1",
            Some(3),
            "the path is normalised before matching",
        ),
        ("other.example.com", "/api", Some(5), "wildcard host"),
        (
            "a.b.example.com",
            "/",
            Some(6),
            "wildcard covers one label only",
        ),
        (
            "example.com",
            "/",
            Some(6),
            "wildcard does not cover the bare domain",
        ),
        (
            "unknown.test",
            "/static/app.js",
            Some(7),
            "ImplementationSpecific is a prefix",
        ),
        (
            "unknown.test",
            "/staticx",
            Some(6),
            "trailing slash on a prefix is ignored",
        ),
        ("", "/", Some(6), "no host header goes to the catch-all"),
    ];
    for (host, path, want, why) in cases {
        assert_eq!(who(&t, host, path), *want, "{why}: {host} {path}");
    }
    assert!(t.diagnostics().is_empty(), "{:?}", t.diagnostics());
}

#[test]
fn exact_host_does_not_fall_through_to_wildcard_or_catch_all() {
    let mut yaml = services();
    yaml += &ingress(
        "a",
        "2024-01-01T00:00:00Z",
        &path_rule("shop.example.com", &[("/api", "Prefix", "s1")]),
    );
    yaml += &ingress(
        "b",
        "2024-01-01T00:00:00Z",
        &path_rule("", &[("/", "Prefix", "s2")]),
    );
    let t = table(&yaml);
    assert_eq!(who(&t, "shop.example.com", "/api"), Some(1));
    assert_eq!(who(&t, "shop.example.com", "/other"), None);
    assert!(
        t.lookup(&RequestHead::new("shop.example.com", "/other"))
            .is_none()
    );
}

#[test]
fn oldest_ingress_wins_a_conflict_and_the_loser_names_the_winner() {
    let mut yaml = services();
    // Listed newest first: order in the input must not matter.
    yaml += &ingress(
        "new",
        "2024-05-01T00:00:00Z",
        &path_rule("a.test", &[("/x", "Prefix", "s2")]),
    );
    yaml += &ingress(
        "old",
        "2024-01-01T00:00:00Z",
        &path_rule("a.test", &[("/x/", "Prefix", "s1")]),
    );
    let t = table(&yaml);
    assert_eq!(who(&t, "a.test", "/x/y"), Some(1));
    let d: Vec<_> = t
        .diagnostics()
        .iter()
        .filter(|d| d.code == "duplicate-route")
        .collect();
    assert_eq!(d.len(), 1);
    assert_eq!(
        d[0].origin.object.as_ref().unwrap().to_string(),
        "Ingress default/new"
    );
    assert!(d[0].message.contains("Ingress default/old"), "{}", d[0]);
    assert!(d[0].to_string().starts_with("t.yaml:"), "{}", d[0]);
}

#[test]
fn same_age_conflict_is_broken_by_namespace_and_name() {
    let mut yaml = services();
    yaml += &ingress(
        "zeta",
        "2024-01-01T00:00:00Z",
        &path_rule("a.test", &[("/", "Prefix", "s2")]),
    );
    yaml += &ingress(
        "alpha",
        "2024-01-01T00:00:00Z",
        &path_rule("a.test", &[("/", "Prefix", "s1")]),
    );
    let t = table(&yaml);
    assert_eq!(who(&t, "a.test", "/"), Some(1));
}

#[test]
fn exact_and_prefix_of_one_path_do_not_conflict() {
    let mut yaml = services();
    yaml += &ingress(
        "a",
        "2024-01-01T00:00:00Z",
        &path_rule("a.test", &[("/x", "Prefix", "s1")]),
    );
    yaml += &ingress(
        "b",
        "2024-01-02T00:00:00Z",
        &path_rule("a.test", &[("/x", "Exact", "s2")]),
    );
    let t = table(&yaml);
    assert!(t.diagnostics().is_empty());
    assert_eq!(who(&t, "a.test", "/x"), Some(2));
    assert_eq!(who(&t, "a.test", "/x/1"), Some(1));
}

#[test]
fn default_backend_serves_what_no_rule_matches() {
    let mut yaml = services();
    yaml += &ingress(
        "a",
        "2024-01-01T00:00:00Z",
        &format!(
            "  defaultBackend: {{ service: {{ name: s9, port: {{ number: 80 }} }} }}\n{}",
            path_rule("a.test", &[("/api", "Prefix", "s1")])
        ),
    );
    let t = table(&yaml);
    assert_eq!(who(&t, "a.test", "/api"), Some(1));
    assert_eq!(who(&t, "a.test", "/else"), Some(9));
    assert_eq!(who(&t, "elsewhere.test", "/"), Some(9));
    let m = t.lookup(&RequestHead::new("a.test", "/else")).unwrap();
    assert!(m.route.default_backend);
    assert!(m.why().contains("default backend"), "{}", m.why());
}

#[test]
fn invalid_paths_hosts_and_path_types_are_left_out_alone() {
    let mut yaml = services();
    yaml += &ingress(
        "a",
        "2024-01-01T00:00:00Z",
        "  rules:\n  - host: bad_host.test\n    http: { paths: [{ path: /, pathType: Prefix, backend: { service: { name: s1, port: { number: 80 } } } }] }\n  - host: ok.test\n    http:\n      paths:\n      - { path: nope, pathType: Prefix, backend: { service: { name: s1, port: { number: 80 } } } }\n      - { path: /weird, pathType: Regex, backend: { service: { name: s1, port: { number: 80 } } } }\n      - { path: /fine, pathType: Prefix, backend: { service: { name: s2, port: { number: 80 } } } }\n",
    );
    let t = table(&yaml);
    let codes: Vec<_> = t.diagnostics().iter().map(|d| d.code).collect();
    assert_eq!(codes, ["invalid-host", "invalid-path", "invalid-path-type"]);
    assert_eq!(who(&t, "ok.test", "/fine"), Some(2));
}

#[test]
fn match_conditions_take_part_in_route_identity_and_order() {
    let mut yaml = services();
    let api = path_rule("a.test", &[("/api", "Prefix", "s1")]);
    yaml += &ingress("plain", "2024-01-01T00:00:00Z", &api);
    yaml += &annotated(
        "by-header",
        "2024-01-02T00:00:00Z",
        &path_rule("a.test", &[("/api", "Prefix", "s2")]),
        "higress.io/exact-match-header-x-env: dev",
    );
    yaml += &annotated(
        "by-method",
        "2024-01-03T00:00:00Z",
        &path_rule("a.test", &[("/api", "Prefix", "s3")]),
        "higress.io/match-method: POST PUT",
    );
    yaml += &annotated(
        "by-query",
        "2024-01-04T00:00:00Z",
        &path_rule("a.test", &[("/api", "Prefix", "s4")]),
        "higress.io/prefix-match-query-v: \"2\"",
    );
    yaml += &annotated(
        "by-authority",
        "2024-01-05T00:00:00Z",
        &path_rule("a.test", &[("/api/v1", "Prefix", "s5")]),
        "higress.io/regex-match-pseudo-header-authority: \"a\\\\.test:8080\"",
    );
    // Same path and conditions as by-header: a duplicate, left out.
    yaml += &annotated(
        "dup",
        "2024-01-06T00:00:00Z",
        &path_rule("a.test", &[("/api", "Prefix", "s6")]),
        "nginx.ingress.kubernetes.io/exact-match-header-x-env: dev",
    );
    let t = table(&yaml);
    let mut h = http::HeaderMap::new();
    h.insert("x-env", "dev".parse().unwrap());
    let none = http::HeaderMap::new();
    let get = |path: &'static str, headers: &'static http::HeaderMap| {
        RequestHead::new("a.test", path).headers(headers)
    };
    let h: &'static http::HeaderMap = Box::leak(Box::new(h));
    let none: &'static http::HeaderMap = Box::leak(Box::new(none));
    assert_eq!(who_req(&t, &get("/api/x", none)), Some(1));
    assert_eq!(
        who_req(&t, &get("/api/x", h)),
        Some(2),
        "header condition first"
    );
    assert_eq!(who_req(&t, &get("/api", none).method("POST")), Some(3));
    assert_eq!(
        who_req(&t, &get("/api", h).method("PUT")),
        Some(3),
        "a method condition sorts before header conditions"
    );
    assert_eq!(
        who_req(&t, &get("/api", none).query(Some("a=1&v=23"))),
        Some(4)
    );
    assert_eq!(who_req(&t, &get("/api", none).query(Some("v=3"))), Some(1));
    // The longer path's condition fails: the shorter prefix serves.
    assert_eq!(who_req(&t, &get("/api/v1/x", none)), Some(1));
    let v1 = RequestHead::new("a.test:8080", "/api/v1/x");
    assert_eq!(who_req(&t, &v1), Some(5));
    let dups: Vec<_> = errors(&t)
        .into_iter()
        .filter(|(c, _)| *c == "duplicate-route")
        .collect();
    assert_eq!(dups.len(), 1, "{dups:?}");
    assert!(dups[0].1.contains("header x-env = dev"), "{dups:?}");
    assert!(dups[0].1.contains("default/by-header"), "{dups:?}");
}

#[test]
fn regex_paths_come_after_exact_and_prefix_but_before_the_catch_all() {
    let mut yaml = services();
    yaml += &ingress(
        "plain",
        "2024-01-01T00:00:00Z",
        &path_rule(
            "a.test",
            &[("/", "Prefix", "s1"), ("/user", "Prefix", "s2")],
        ),
    );
    yaml += &annotated(
        "regex",
        "2024-01-02T00:00:00Z",
        &path_rule(
            "a.test",
            &[
                ("/user/[0-9]+", "ImplementationSpecific", "s3"),
                ("/item/[0-9]+", "ImplementationSpecific", "s4"),
            ],
        ),
        "nginx.ingress.kubernetes.io/use-regex: \"true\"",
    );
    yaml += &annotated(
        "full",
        "2024-01-03T00:00:00Z",
        &path_rule("a.test", &[("/f/[0-9]+", "Prefix", "s5")]),
        "higress.io/full-path-regex: \"true\"",
    );
    let t = table(&yaml);
    assert_eq!(who(&t, "a.test", "/user/12"), Some(2), "Prefix beats regex");
    assert_eq!(who(&t, "a.test", "/item/12/x"), Some(4), "a prefix regex");
    assert_eq!(
        who(&t, "a.test", "/item/x"),
        Some(1),
        "the catch-all comes last"
    );
    assert_eq!(who(&t, "a.test", "/f/12"), Some(5));
    assert_eq!(
        who(&t, "a.test", "/f/12/x"),
        Some(1),
        "a full regex is anchored at the end"
    );
    assert!(errors(&t).is_empty(), "{:?}", errors(&t));
    let order: Vec<String> = t
        .routes_in_order()
        .iter()
        .map(|r| r.path.to_string())
        .collect();
    assert_eq!(
        order,
        [
            "Prefix /user",
            "Regex /user/[0-9]+",
            "Regex /item/[0-9]+",
            "FullRegex /f/[0-9]+",
            "Prefix /"
        ]
    );
}

#[test]
fn many_regex_routes_match_through_one_set_in_the_same_order() {
    let mut yaml = services();
    let paths: Vec<(String, &str, &str)> = (0..12)
        .map(|i| {
            (
                format!("/r{i}/[a-z]+"),
                "ImplementationSpecific",
                if i % 2 == 0 { "s1" } else { "s2" },
            )
        })
        .collect();
    let paths: Vec<(&str, &str, &str)> =
        paths.iter().map(|(p, t, s)| (p.as_str(), *t, *s)).collect();
    let mut rules = path_rule("a.test", &paths);
    rules += "      - { path: \"/r1/[a-z]+/deeper\", pathType: ImplementationSpecific, backend: { service: { name: s3, port: { number: 80 } } } }\n";
    yaml += &annotated(
        "many",
        "2024-01-01T00:00:00Z",
        &rules,
        "nginx.ingress.kubernetes.io/use-regex: \"true\"",
    );
    let t = table(&yaml);
    assert_eq!(who(&t, "a.test", "/r4/abc"), Some(1));
    assert_eq!(who(&t, "a.test", "/r5/abc"), Some(2));
    assert_eq!(
        who(&t, "a.test", "/r1/abc/deeper/x"),
        Some(3),
        "longer pattern first"
    );
    assert_eq!(who(&t, "a.test", "/r5/123"), None);
}

#[test]
fn ignore_path_case_folds_exact_and_prefix_paths() {
    let mut yaml = services();
    yaml += &annotated(
        "docs",
        "2024-01-01T00:00:00Z",
        &path_rule(
            "a.test",
            &[("/Docs", "Prefix", "s4"), ("/About", "Exact", "s5")],
        ),
        "higress.io/ignore-path-case: \"true\"",
    );
    yaml += &ingress(
        "exact-case",
        "2024-01-02T00:00:00Z",
        &path_rule("a.test", &[("/docs/api", "Prefix", "s6")]),
    );
    let t = table(&yaml);
    assert_eq!(who(&t, "a.test", "/DOCS/x"), Some(4));
    assert_eq!(who(&t, "a.test", "/docs"), Some(4));
    assert_eq!(who(&t, "a.test", "/about"), Some(5));
    assert_eq!(who(&t, "a.test", "/about/x"), None);
    assert_eq!(
        who(&t, "a.test", "/docs/api/v1"),
        Some(6),
        "the longer prefix wins"
    );
    assert_eq!(
        who(&t, "a.test", "/DOCS/API/v1"),
        Some(4),
        "only the docs Ingress folds case"
    );
}

#[test]
fn rewrite_target_capture_groups_come_from_the_path_regex() {
    let mut yaml = services();
    yaml += &annotated(
        "groups",
        "2024-01-01T00:00:00Z",
        &path_rule(
            "a.test",
            &[("/something(/|$)(.*)", "ImplementationSpecific", "s1")],
        ),
        "nginx.ingress.kubernetes.io/use-regex: \"true\", nginx.ingress.kubernetes.io/rewrite-target: /$2",
    );
    // Capture groups alone make the path a regex (Higress); no use-regex needed.
    yaml += &annotated(
        "implied",
        "2024-01-02T00:00:00Z",
        &path_rule("b.test", &[("/api/(v[0-9])/(.*)", "Prefix", "s2")]),
        "nginx.ingress.kubernetes.io/rewrite-target: /$2?from=$1",
    );
    let t = table(&yaml);
    let rewrite = |host: &str, path: &str| {
        let m = t.lookup(&RequestHead::new(host, path)).unwrap();
        m.route
            .policy
            .as_ref()
            .unwrap()
            .rewrite_path(&m.route.path, path)
    };
    assert_eq!(rewrite("a.test", "/something").as_deref(), Some("/"));
    assert_eq!(rewrite("a.test", "/something/").as_deref(), Some("/"));
    assert_eq!(
        rewrite("a.test", "/something/new/x").as_deref(),
        Some("/new/x")
    );
    assert_eq!(
        rewrite("b.test", "/api/v2/users").as_deref(),
        Some("/users?from=v2")
    );
    assert!(t.lookup(&RequestHead::new("b.test", "/api/x")).is_none());
}

#[test]
fn a_regex_path_that_does_not_compile_is_left_out_alone() {
    let mut yaml = services();
    yaml += &annotated(
        "bad",
        "2024-01-01T00:00:00Z",
        &path_rule(
            "a.test",
            &[
                ("/a/(unclosed", "ImplementationSpecific", "s1"),
                ("/b", "Prefix", "s2"),
            ],
        ),
        "nginx.ingress.kubernetes.io/use-regex: \"true\"",
    );
    let t = table(&yaml);
    let e = errors(&t);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].0, "invalid-path");
    assert!(e[0].1.contains("use-regex"), "{e:?}");
    assert_eq!(who(&t, "a.test", "/b/x"), Some(2));
}

#[test]
fn server_alias_serves_the_same_routes_on_more_hosts() {
    let mut yaml = services();
    yaml += &annotated(
        "shop",
        "2024-01-01T00:00:00Z",
        &path_rule("shop.test", &[("/cart", "Prefix", "s3")]),
        "nginx.ingress.kubernetes.io/server-alias: \"www.shop.test, *.shop.example\"",
    );
    let t = table(&yaml);
    assert_eq!(who(&t, "shop.test", "/cart"), Some(3));
    assert_eq!(who(&t, "www.shop.test", "/cart/1"), Some(3));
    assert_eq!(who(&t, "eu.shop.example", "/cart"), Some(3));
    assert_eq!(who(&t, "www.shop.test", "/other"), None);
    assert!(t.diagnostics().iter().all(|d| d.code != "not-applied"));
}

#[test]
fn the_table_lists_every_selected_ingress_even_one_without_routes() {
    let mut yaml = services();
    yaml += &ingress(
        "newer",
        "2024-02-01T00:00:00Z",
        &path_rule("a.test", &[("/", "Prefix", "s1")]),
    );
    // Its only path is a duplicate of an older one: it serves nothing, but it is ours.
    yaml += &ingress(
        "older",
        "2024-01-01T00:00:00Z",
        &path_rule("a.test", &[("/", "Prefix", "s2")]),
    );
    yaml += &ingress(
        "other",
        "2024-01-01T00:00:00Z",
        &path_rule("b.test", &[("/", "Prefix", "s1")]),
    )
    .replace("ingressClassName: mse", "ingressClassName: nginx");
    let t = table(&yaml);
    let names: Vec<String> = t.ingresses().iter().map(|k| k.namespaced_name()).collect();
    assert_eq!(names, ["default/older", "default/newer"]);
    assert_eq!(t.to_json()["ingresses"][1], "default/newer");
    assert_eq!(who(&t, "a.test", "/"), Some(2));
}
