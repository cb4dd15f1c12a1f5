//! IP lists: each route's rules from its Ingress's lists and the host's, the gateway's
//! lists, and fail-closed values.

use std::net::IpAddr;

use super::*;
use crate::Refusal;

const OLD: &str = "2024-01-01T00:00:00Z";
const NEW: &str = "2024-02-01T00:00:00Z";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// What the route serving `host` + `path` says of a client at `client`.
fn check(t: &RouteTable, host: &str, path: &str, client: &str) -> Result<(), Refusal> {
    let m = t.lookup(&RequestHead::new(host, path)).unwrap();
    m.route
        .access
        .as_ref()
        .map_or(Ok(()), |a| a.check(ip(client)))
}

#[test]
fn route_lists_are_compiled_into_the_route_and_no_longer_close_it() {
    let mut yaml = services();
    yaml += &annotated(
        "guarded",
        OLD,
        &path_rule("a.test", &[("/", "Prefix", "s1")]),
        "nginx.ingress.kubernetes.io/whitelist-source-range: \"10.0.0.0/8, ::1\", \
         nginx.ingress.kubernetes.io/denylist-source-range: 10.9.0.0/16",
    );
    yaml += &ingress("open", OLD, &path_rule("b.test", &[("/", "Prefix", "s2")]));
    let t = table(&yaml);
    assert!(errors(&t).is_empty(), "{:?}", errors(&t));
    assert!(
        t.diagnostics()
            .iter()
            .all(|d| d.code != "security-not-enforced" && d.code != "not-applied"),
        "{:?}",
        t.diagnostics()
    );
    assert_eq!(who(&t, "a.test", "/"), Some(1));
    assert_eq!(check(&t, "a.test", "/", "10.1.1.1"), Ok(()));
    assert_eq!(check(&t, "a.test", "/", "::1"), Ok(()));
    assert_eq!(check(&t, "a.test", "/", "10.9.0.1"), Err(Refusal::Denied));
    assert_eq!(
        check(&t, "a.test", "/", "192.0.2.1"),
        Err(Refusal::NotAllowed)
    );
    // Another Ingress's routes are not touched.
    assert!(
        t.lookup(&RequestHead::new("b.test", "/"))
            .unwrap()
            .route
            .access
            .is_none()
    );
}

#[test]
fn host_lists_apply_to_every_route_of_the_host_unless_the_route_has_its_own() {
    let mut yaml = services();
    // The host's lists come from one Ingress and apply to another's routes too.
    yaml += &annotated(
        "site",
        OLD,
        &path_rule("a.test", &[("/", "Prefix", "s1")]),
        "mse.ingress.kubernetes.io/domain-whitelist-source-range: 10.0.0.0/8, \
         mse.ingress.kubernetes.io/domain-blacklist-source-range: 10.9.0.0/16",
    );
    yaml += &ingress(
        "api",
        OLD,
        &path_rule("a.test", &[("/api", "Prefix", "s2")]),
    );
    // A route allow list takes precedence over the host's allow list; the host's deny
    // list still applies.
    yaml += &annotated(
        "admin",
        NEW,
        &path_rule("a.test", &[("/admin", "Prefix", "s3")]),
        "nginx.ingress.kubernetes.io/whitelist-source-range: \"192.168.0.0/16, 10.9.0.0/16\"",
    );
    yaml += &ingress("other", OLD, &path_rule("b.test", &[("/", "Prefix", "s4")]));
    let t = table(&yaml);
    assert!(errors(&t).is_empty(), "{:?}", errors(&t));
    for path in ["/", "/api"] {
        assert_eq!(check(&t, "a.test", path, "10.1.1.1"), Ok(()), "{path}");
        assert_eq!(
            check(&t, "a.test", path, "192.168.1.1"),
            Err(Refusal::NotAllowed),
            "{path}"
        );
        assert_eq!(
            check(&t, "a.test", path, "10.9.1.1"),
            Err(Refusal::Denied),
            "{path}"
        );
    }
    assert_eq!(check(&t, "a.test", "/admin", "192.168.1.1"), Ok(()));
    assert_eq!(
        check(&t, "a.test", "/admin", "10.1.1.1"),
        Err(Refusal::NotAllowed)
    );
    assert_eq!(
        check(&t, "a.test", "/admin", "10.9.1.1"),
        Err(Refusal::Denied)
    );
    assert_eq!(check(&t, "b.test", "/", "192.168.1.1"), Ok(()));
}

#[test]
fn a_bad_list_closes_only_its_ingress() {
    let mut yaml = services();
    yaml += &annotated(
        "bad",
        OLD,
        &path_rule("a.test", &[("/", "Prefix", "s1")]),
        "nginx.ingress.kubernetes.io/whitelist-source-range: \"10.0.0.0/8, 10.0.0.300\"",
    );
    yaml += &ingress("good", OLD, &path_rule("b.test", &[("/", "Prefix", "s2")]));
    let t = table(&yaml);
    let m = t.lookup(&RequestHead::new("a.test", "/")).unwrap();
    assert!(
        matches!(&m.route.backend, crate::Backend::Unavailable { reason } if reason.contains("whitelist-source-range")),
        "{:?}",
        m.route.backend
    );
    let d = t
        .diagnostics()
        .iter()
        .find(|d| d.severity == Severity::Error)
        .unwrap();
    assert_eq!(
        d.origin.key.as_deref(),
        Some("nginx.ingress.kubernetes.io/whitelist-source-range")
    );
    assert_eq!(d.value.as_deref(), Some("10.0.0.0/8, 10.0.0.300"));
    assert!(d.message.contains("10.0.0.300"), "{}", d.message);
    assert_eq!(who(&t, "b.test", "/"), Some(2));
}

#[test]
fn the_gateway_lists_are_compiled_with_the_table() {
    let mut yaml = services();
    yaml += &ingress("a", OLD, &path_rule("a.test", &[("/", "Prefix", "s1")]));
    let opts = CompileOptions {
        flags: mse_annotations::global::GlobalFlags::default()
            .with("--deny-source-range", "192.0.2.0/24, 2001:db8::/32"),
        ..CompileOptions::default()
    };
    let t = table_with(&yaml, &opts);
    let g = t.access().unwrap();
    assert_eq!(g.check(ip("192.0.2.7")), Err(Refusal::Denied));
    assert_eq!(g.check(ip("2001:db8::1")), Err(Refusal::Denied));
    assert_eq!(g.check(ip("198.51.100.1")), Ok(()));
    assert!(table(&yaml).access().is_none());
}

#[test]
fn a_canary_is_guarded_by_its_main_routes_lists_not_its_own() {
    let mut yaml = services();
    yaml += &annotated(
        "main",
        OLD,
        &path_rule("a.test", &[("/", "Prefix", "s1")]),
        "nginx.ingress.kubernetes.io/whitelist-source-range: 10.0.0.0/8",
    );
    yaml += &canary(
        "canary",
        NEW,
        &path_rule("a.test", &[("/", "Prefix", "s2")]),
        "nginx.ingress.kubernetes.io/canary-weight: \"50\", \
         nginx.ingress.kubernetes.io/whitelist-source-range: 0.0.0.0/0",
    );
    let t = table(&yaml);
    assert_eq!(
        check(&t, "a.test", "/", "192.0.2.1"),
        Err(Refusal::NotAllowed)
    );
    let d = t
        .diagnostics()
        .iter()
        .find(|d| d.code == "canary-inherits")
        .unwrap();
    assert_eq!(
        d.origin.key.as_deref(),
        Some("nginx.ingress.kubernetes.io/whitelist-source-range")
    );
}
