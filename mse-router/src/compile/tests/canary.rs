//! Canary pairing, traffic split and fallback to the main route.

use super::*;

#[test]
fn canary_ingress_never_takes_over_the_main_route() {
    let mut yaml = services();
    yaml += &ingress(
        "main",
        "2024-02-01T00:00:00Z",
        &path_rule("a.test", &[("/", "Prefix", "s1")]),
    );
    let canary = ingress(
        "canary",
        "2024-01-01T00:00:00Z",
        &path_rule("a.test", &[("/", "Prefix", "s2")]),
    )
    .replace(
        "creationTimestamp",
        "annotations: { nginx.ingress.kubernetes.io/canary: \"true\" }, creationTimestamp",
    );
    yaml += &canary;
    let t = table(&yaml);
    assert_eq!(who(&t, "a.test", "/"), Some(1));
}

#[test]
fn canary_yes_is_an_error_and_never_takes_over_even_when_older() {
    let mut yaml = services();
    yaml += &ingress(
        "main",
        "2024-02-01T00:00:00Z",
        &path_rule("a.test", &[("/", "Prefix", "s1")]),
    );
    yaml += &with_annotations(
        ingress(
            "canary",
            "2024-01-01T00:00:00Z",
            &path_rule("a.test", &[("/", "Prefix", "s2")]),
        ),
        "nginx.ingress.kubernetes.io/canary: \"yes\"",
    );
    let t = table(&yaml);
    assert_eq!(who(&t, "a.test", "/"), Some(1));
    let d: Vec<_> = t
        .diagnostics()
        .iter()
        .map(|d| {
            (
                d.severity,
                d.code,
                d.origin.object.as_ref().map(|o| o.name.to_string()),
            )
        })
        .collect();
    assert_eq!(
        d,
        [(Severity::Error, "invalid-canary", Some("canary".to_owned()))]
    );
}

#[test]
fn canary_without_a_main_ingress_is_warned() {
    let mut yaml = services();
    yaml += &ingress(
        "main",
        "2024-01-01T00:00:00Z",
        &path_rule("a.test", &[("/", "Prefix", "s1")]),
    );
    yaml += &with_annotations(
        ingress(
            "paired",
            "2024-02-01T00:00:00Z",
            &path_rule("a.test", &[("/", "Prefix", "s2")]),
        ),
        "nginx.ingress.kubernetes.io/canary: \"true\", nginx.ingress.kubernetes.io/canary-weight: \"10\"",
    );
    yaml += &with_annotations(
        ingress(
            "lonely",
            "2024-02-01T00:00:00Z",
            &path_rule("a.test", &[("/api", "Prefix", "s2")]),
        ),
        "nginx.ingress.kubernetes.io/canary: \"true\", nginx.ingress.kubernetes.io/canary-weight: \"10\"",
    );
    let t = table(&yaml);
    let lonely: Vec<_> = t
        .diagnostics()
        .iter()
        .filter(|d| d.code == "canary-without-main")
        .collect();
    assert_eq!(lonely.len(), 1, "{:#?}", t.diagnostics());
    assert_eq!(
        lonely[0].origin.object.as_ref().unwrap().name.as_ref(),
        "lonely"
    );
    assert_eq!(
        lonely[0].origin.key.as_deref(),
        Some("spec.rules[0].http.paths[0]")
    );
    assert!(
        lonely[0]
            .message
            .contains("host a.test and path Prefix /api pair"),
        "{}",
        lonely[0]
    );
}

#[test]
fn two_header_canaries_and_two_weight_canaries_share_one_path() {
    let mut yaml = services();
    let root = |svc: &'static str| path_rule("a.test", &[("/", "Prefix", svc)]);
    yaml += &ingress("main", "2024-01-01T00:00:00Z", &root("s1"));
    yaml += &canary(
        "by-header",
        "2024-01-02T00:00:00Z",
        &root("s2"),
        "nginx.ingress.kubernetes.io/canary-by-header: x-canary",
    );
    yaml += &canary(
        "by-value",
        "2024-01-03T00:00:00Z",
        &root("s3"),
        "nginx.ingress.kubernetes.io/canary-by-header: x-version, nginx.ingress.kubernetes.io/canary-by-header-value: v3",
    );
    yaml += &canary(
        "w30",
        "2024-01-04T00:00:00Z",
        &root("s4"),
        "nginx.ingress.kubernetes.io/canary-weight: \"30\"",
    );
    // Another namespace pairs too: namespaces are not part of the route key.
    yaml += &canary(
        "w20",
        "2024-01-05T00:00:00Z",
        &root("s5"),
        "nginx.ingress.kubernetes.io/canary-weight: \"20\"",
    )
    .replace(
        "namespace: default, annotations",
        "namespace: other, annotations",
    )
    .replace("name: s5", "name: s5-other");
    yaml += &service("s5-other", 5).replace("namespace: default", "namespace: other");
    let t = table(&yaml);
    assert!(errors(&t).is_empty(), "{:?}", errors(&t));
    let req = |h: &'static http::HeaderMap| RequestHead::new("a.test", "/x").headers(h);
    let none = headers(&[]);
    // Header canaries win whatever the roll.
    for roll in [0, 400_000, 999_999] {
        assert_eq!(
            dest(&t, &req(headers(&[("x-canary", "always")])), roll),
            Some(2)
        );
        assert_eq!(
            dest(&t, &req(headers(&[("x-version", "v3")])), roll),
            Some(3)
        );
        assert_eq!(
            dest(
                &t,
                &req(headers(&[("x-canary", "always"), ("x-version", "v3")])),
                roll
            ),
            Some(2),
            "the older canary wins when both match"
        );
    }
    // A value other than always/never, or another value, falls through to the weights.
    let spread_of = |h| spread(&t, &req(h));
    let want: std::collections::BTreeMap<u8, u32> = [(1, 500), (4, 300), (5, 200)].into();
    assert_eq!(spread_of(none), want);
    assert_eq!(spread_of(headers(&[("x-canary", "maybe")])), want);
    assert_eq!(spread_of(headers(&[("x-version", "v4")])), want);
    // `never` forbids only that canary; the weights still split the rest.
    assert_eq!(spread_of(headers(&[("x-canary", "never")])), want);
    let json = t.to_json().to_string();
    assert!(json.contains("\"share\":300000"), "{json}");
}

#[test]
fn within_one_canary_header_then_cookie_then_weight_and_never_forbids() {
    let mut yaml = services();
    let root = |svc: &'static str| path_rule("a.test", &[("/", "Prefix", svc)]);
    yaml += &ingress("main", "2024-01-01T00:00:00Z", &root("s1"));
    yaml += &canary(
        "all",
        "2024-01-02T00:00:00Z",
        &root("s2"),
        "nginx.ingress.kubernetes.io/canary-by-header: x-canary, nginx.ingress.kubernetes.io/canary-by-cookie: beta, nginx.ingress.kubernetes.io/canary-weight: \"100\"",
    );
    yaml += &canary(
        "by-query",
        "2024-01-03T00:00:00Z",
        &root("s3"),
        "mse.ingress.kubernetes.io/canary-by-query: ver, mse.ingress.kubernetes.io/canary-by-query-pattern: \"^v[0-9]+-beta$\"",
    );
    let t = table(&yaml);
    let at = |h: &'static http::HeaderMap, q: Option<&'static str>| {
        dest(&t, &RequestHead::new("a.test", "/").headers(h).query(q), 0)
    };
    assert_eq!(at(headers(&[]), None), Some(2), "weight 100");
    assert_eq!(
        at(headers(&[("x-canary", "never")]), None),
        Some(1),
        "never forbids, weight included"
    );
    assert_eq!(at(headers(&[("cookie", "a=1; beta=never")]), None), Some(1));
    assert_eq!(
        at(
            headers(&[("x-canary", "other"), ("cookie", "beta=never")]),
            None
        ),
        Some(1),
        "the header falls through to the cookie"
    );
    assert_eq!(
        at(headers(&[("x-canary", "never")]), Some("ver=v2-beta")),
        Some(3),
        "a forbidden canary does not stop the next one"
    );
}

#[test]
fn canary_falls_back_to_main_without_ready_endpoints_and_inherits_the_main_policy() {
    let mut yaml = services();
    yaml += &service("empty", 9).replace("ready: true", "ready: false");
    yaml += &annotated(
        "main",
        "2024-01-01T00:00:00Z",
        &path_rule("a.test", &[("/app", "Prefix", "s1")]),
        "higress.io/rewrite-path: /v1, higress.io/request-header-control-add: \"x-from main\"",
    );
    yaml += &canary(
        "empty-canary",
        "2024-01-02T00:00:00Z",
        &path_rule("a.test", &[("/app", "Prefix", "empty")]),
        "nginx.ingress.kubernetes.io/canary-by-header: x-empty",
    );
    yaml += &canary(
        "live",
        "2024-01-03T00:00:00Z",
        &path_rule("a.test", &[("/app", "Prefix", "s2")]),
        "nginx.ingress.kubernetes.io/canary-by-header: x-live, higress.io/request-header-control-add: \"x-from canary\", nginx.ingress.kubernetes.io/rewrite-target: /ignored",
    );
    let t = table(&yaml);
    let req = RequestHead::new("a.test", "/app/x").headers(headers(&[("x-empty", "always")]));
    assert_eq!(
        dest(&t, &req, 0),
        Some(1),
        "no ready endpoint: the main route serves"
    );
    let req = RequestHead::new("a.test", "/app/x").headers(headers(&[("x-live", "always")]));
    let m = t.lookup(&req).unwrap();
    let d = m.route.destination(&req, 0);
    assert_eq!(d.canary.unwrap().ingress.name.as_ref(), "live");
    let p = d.policy.unwrap();
    assert_eq!(
        p.rewrite_path(&m.route.path, "/app/x").as_deref(),
        Some("/v1/x"),
        "rewrite from main"
    );
    let mut h = http::HeaderMap::new();
    p.edit_request(&mut h);
    assert_eq!(h["x-from"], "canary", "header control from the canary");
}

#[test]
fn a_canary_must_repeat_the_main_routes_match_conditions_and_regex() {
    let mut yaml = services();
    yaml += &annotated(
        "main",
        "2024-01-01T00:00:00Z",
        &path_rule("a.test", &[("/api/[0-9]+", "ImplementationSpecific", "s1")]),
        "nginx.ingress.kubernetes.io/use-regex: \"true\", higress.io/exact-match-header-abc: \"1\"",
    );
    yaml += &canary(
        "missing-condition",
        "2024-01-02T00:00:00Z",
        &path_rule("a.test", &[("/api/[0-9]+", "ImplementationSpecific", "s2")]),
        "nginx.ingress.kubernetes.io/use-regex: \"true\", nginx.ingress.kubernetes.io/canary-weight: \"100\"",
    );
    yaml += &canary(
        "same-key",
        "2024-01-03T00:00:00Z",
        &path_rule("a.test", &[("/api/[0-9]+", "ImplementationSpecific", "s3")]),
        "nginx.ingress.kubernetes.io/use-regex: \"true\", higress.io/exact-match-header-abc: \"1\", nginx.ingress.kubernetes.io/canary-weight: \"100\"",
    );
    let t = table(&yaml);
    let req = RequestHead::new("a.test", "/api/7").headers(headers(&[("abc", "1")]));
    assert_eq!(dest(&t, &req, 0), Some(3));
    let lonely: Vec<_> = t
        .diagnostics()
        .iter()
        .filter(|d| d.code == "canary-without-main")
        .map(|d| d.origin.object.as_ref().unwrap().name.to_string())
        .collect();
    assert_eq!(lonely, ["missing-condition"]);
}

#[test]
fn weights_beyond_the_total_are_scaled_down_and_closed_mains_take_no_canary() {
    let mut yaml = services();
    let root = |svc: &'static str| path_rule("a.test", &[("/", "Prefix", svc)]);
    yaml += &ingress("main", "2024-01-01T00:00:00Z", &root("s1"));
    yaml += &canary(
        "a",
        "2024-01-02T00:00:00Z",
        &root("s2"),
        "nginx.ingress.kubernetes.io/canary-weight: \"80\"",
    );
    yaml += &canary(
        "b",
        "2024-01-03T00:00:00Z",
        &root("s3"),
        "nginx.ingress.kubernetes.io/canary-weight: \"40\", nginx.ingress.kubernetes.io/canary-weight-total: \"50\"",
    );
    let closed = |svc: &'static str| path_rule("c.test", &[("/", "Prefix", svc)]);
    yaml += &annotated(
        "locked",
        "2024-01-01T00:00:00Z",
        &closed("s1"),
        "nginx.ingress.kubernetes.io/whitelist-source-range: bad",
    );
    yaml += &canary(
        "sneaky",
        "2024-01-02T00:00:00Z",
        &closed("s2"),
        "nginx.ingress.kubernetes.io/canary-weight: \"100\"",
    );
    let t = table(&yaml);
    // 80% and 80% of the traffic asked: each gets half.
    let want: std::collections::BTreeMap<u8, u32> = [(2, 500), (3, 500)].into();
    assert_eq!(spread(&t, &RequestHead::new("a.test", "/")), want);
    assert_eq!(
        dest(&t, &RequestHead::new("c.test", "/"), 0),
        None,
        "503, never the canary"
    );
    assert!(
        t.diagnostics()
            .iter()
            .any(|d| d.code == "canary-main-closed")
    );
}
