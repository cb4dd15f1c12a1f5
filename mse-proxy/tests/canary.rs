//! End to end over loopback: several canary Ingresses on one path at once. Header
//! canaries win by request, weight canaries split the rest (measured over many requests
//! with a tolerance), a canary without ready endpoints leaves traffic on the main
//! Service, and canaries inherit the main route's policy but keep their own header
//! control.
#![cfg(test)]

mod support;

use std::collections::BTreeMap;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use mse_proxy::GatewayHandle;
use support::*;

/// A canary Ingress: `ingress(...)` with `canary: "true"` and `annotations` (names
/// without prefix).
fn canary(name: &str, host: &str, paths: &[PathRule<'_>], annotations: &[(&str, &str)]) -> String {
    annotate(
        &ingress(name, Some(host), paths),
        &[&[("canary", "true")], annotations].concat(),
    )
}

/// A gateway on `yaml`, which must compile without warnings.
fn clean_gateway(yaml: &str) -> GatewayHandle {
    let (gw, table) = gateway(yaml);
    let diagnostics = table.routes().diagnostics().to_vec();
    assert!(
        diagnostics
            .iter()
            .all(|d| d.severity < mse_model::Severity::Warning),
        "{diagnostics:?}"
    );
    gw
}

fn with_headers(host: &str, path: &str, headers: &[(&str, &str)]) -> Request<Full<Bytes>> {
    request(host, "GET", path, headers)
}

#[tokio::test]
async fn two_header_canaries_and_two_weight_canaries_on_one_path() {
    let names = ["main", "h1", "h2", "w30", "w20"];
    let mut backends = Vec::new();
    for n in names {
        backends.push(echo(n).await);
    }
    let host = "c.example.com";
    let root = |svc| [("/", "Prefix", svc)];
    let mut yaml = vec![
        ingress("main", Some(host), &root("main")),
        canary("h1", host, &root("h1"), &[("canary-by-header", "x-canary")]),
        canary(
            "h2",
            host,
            &root("h2"),
            &[
                ("canary-by-header", "x-version"),
                ("canary-by-header-value", "v2"),
            ],
        ),
        canary("w30", host, &root("w30"), &[("canary-weight", "30")]),
        canary("w20", host, &root("w20"), &[("canary-weight", "20")]),
    ];
    for (n, b) in names.iter().zip(&backends) {
        yaml.push(service(n, &[b.addr()]));
    }
    let gw = clean_gateway(&yaml.concat());
    let addr = http_addr(&gw);
    let mut tx = h1(addr).await;

    // Header canaries, whatever the weights say.
    for _ in 0..20 {
        let r = send1(&mut tx, with_headers(host, "/a", &[("x-canary", "always")])).await;
        assert_eq!(r.service(), "h1");
        let r = send1(&mut tx, with_headers(host, "/a", &[("x-version", "v2")])).await;
        assert_eq!(r.service(), "h2");
        let r = send1(
            &mut tx,
            with_headers(host, "/a", &[("x-canary", "always"), ("x-version", "v2")]),
        )
        .await;
        assert_eq!(r.service(), "h1", "the older canary wins");
    }

    // Everything else is split 50/30/20 by weight; `never` and other values fall through.
    let n = 2000;
    let mut counts: BTreeMap<String, u32> = BTreeMap::new();
    for i in 0..n {
        let headers: &[(&str, &str)] = match i % 3 {
            0 => &[],
            1 => &[("x-canary", "never")],
            _ => &[("x-version", "v9")],
        };
        let r = send1(&mut tx, with_headers(host, "/a", headers)).await;
        assert_eq!(r.status, StatusCode::OK);
        *counts.entry(r.service().to_owned()).or_default() += 1;
    }
    let share = |s: &str| f64::from(counts.get(s).copied().unwrap_or(0)) / f64::from(n);
    // Four standard deviations of a binomial share at n = 2000 is at most 4.5 points.
    for (svc, want) in [("main", 0.5), ("w30", 0.3), ("w20", 0.2)] {
        assert!((share(svc) - want).abs() < 0.045, "{svc}: {counts:?}");
    }
    assert_eq!(share("h1") + share("h2"), 0.0, "{counts:?}");
    gw.shutdown().await;
}

#[tokio::test]
async fn a_canary_without_ready_endpoints_leaves_traffic_on_main() {
    let main = echo("main").await;
    let host = "f.example.com";
    let yaml = [
        ingress("main", Some(host), &[("/", "Prefix", "main")]),
        canary(
            "empty",
            host,
            &[("/", "Prefix", "empty")],
            &[("canary-weight", "100")],
        ),
        service("main", &[main.addr()]),
        service("empty", &[]),
    ]
    .concat();
    let (gw, _table) = gateway(&yaml);
    let addr = http_addr(&gw);
    let mut tx = h1(addr).await;
    for _ in 0..20 {
        let r = send1(&mut tx, get_req(host, "/x")).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.service(), "main");
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn canaries_inherit_the_main_policy_with_their_own_header_control() {
    let main = echo("main").await;
    let beta = echo("beta").await;
    let host = "i.example.com";
    let yaml = [
        annotate(
            &ingress("main", Some(host), &[("/app", "Prefix", "main")]),
            &[
                ("rewrite-target", "/v1"),
                ("request-header-control-add", "x-route main"),
            ],
        ),
        canary(
            "beta",
            host,
            &[("/app", "Prefix", "beta")],
            &[
                ("canary-by-cookie", "beta"),
                ("request-header-control-add", "x-route beta"),
                // Route-level keys of a canary are the main route's: this one is unused.
                ("rewrite-target", "/elsewhere"),
            ],
        ),
        service("main", &[main.addr()]),
        service("beta", &[beta.addr()]),
    ]
    .concat();
    let (gw, _table) = gateway(&yaml);
    let addr = http_addr(&gw);
    let r = get(addr, host, "/app/page").await;
    assert_eq!(r.service(), "main");
    assert_eq!(r.json()["path"], "/v1/page");
    assert_eq!(r.echoed_header("x-route").as_deref(), Some("main"));
    let mut tx = h1(addr).await;
    let r = send1(
        &mut tx,
        with_headers(host, "/app/page", &[("cookie", "a=1; beta=always")]),
    )
    .await;
    assert_eq!(r.service(), "beta");
    assert_eq!(r.json()["path"], "/v1/page", "the main route's rewrite");
    assert_eq!(r.echoed_header("x-route").as_deref(), Some("beta"));
    let r = send1(
        &mut tx,
        with_headers(host, "/app/page", &[("cookie", "beta=never")]),
    )
    .await;
    assert_eq!(r.service(), "main");
    gw.shutdown().await;
}

#[tokio::test]
async fn pattern_query_cookie_value_and_weight_total_canaries() {
    let names = ["main", "pattern", "query", "cookie", "thirds"];
    let mut backends = Vec::new();
    for n in names {
        backends.push(echo(n).await);
    }
    let host = "k.example.com";
    let root = |svc| [("/", "Prefix", svc)];
    let mut yaml = vec![
        ingress("main", Some(host), &root("main")),
        canary(
            "pattern",
            host,
            &root("pattern"),
            &[
                ("canary-by-header", "x-user"),
                ("canary-by-header-pattern", "^(alice|bob)@"),
            ],
        ),
        canary(
            "query",
            host,
            &root("query"),
            &[
                ("canary-by-query", "ring"),
                ("canary-by-query-value", "beta"),
            ],
        )
        .replace(
            "nginx.ingress.kubernetes.io/canary-by-query",
            "mse.ingress.kubernetes.io/canary-by-query",
        ),
        canary(
            "cookie",
            host,
            &root("cookie"),
            &[
                ("canary-by-cookie", "tier"),
                ("canary-by-cookie-value", "gold"),
            ],
        )
        .replace(
            "nginx.ingress.kubernetes.io/canary-by-cookie-value",
            "mse.ingress.kubernetes.io/canary-by-cookie-value",
        ),
        // One part in three, out of a total of 3.
        canary(
            "thirds",
            host,
            &root("thirds"),
            &[("canary-weight", "1"), ("canary-weight-total", "3")],
        ),
    ];
    for (n, b) in names.iter().zip(&backends) {
        yaml.push(service(n, &[b.addr()]));
    }
    let gw = clean_gateway(&yaml.concat());
    let mut tx = h1(http_addr(&gw)).await;
    let cases: [(&str, &[(&str, &str)], &str); 5] = [
        ("/", &[("x-user", "alice@example.com")], "pattern"),
        ("/?ring=beta&x=1", &[], "query"),
        ("/", &[("cookie", "a=1; tier=gold")], "cookie"),
        ("/?ring=beta", &[("x-user", "bob@example.com")], "pattern"),
        (
            "/?ring=alpha",
            &[("x-user", "carol@example.com"), ("cookie", "tier=gold")],
            "cookie",
        ),
    ];
    for (path, headers, want) in cases {
        let r = send1(&mut tx, with_headers(host, path, headers)).await;
        assert_eq!(r.service(), want, "{path} {headers:?}");
    }
    let n = 1500;
    let mut thirds = 0;
    for _ in 0..n {
        let r = send1(
            &mut tx,
            with_headers(host, "/", &[("cookie", "tier=silver")]),
        )
        .await;
        match r.service() {
            "thirds" => thirds += 1,
            "main" => {}
            other => panic!("unexpected {other}"),
        }
    }
    // A third of 1500 is 500 with a standard deviation of 18.3 (binomial). The window is
    // five standard deviations either side: a fair roll falls outside it about once in
    // 1.7 million runs, while a wrong share (a quarter or a half) never falls inside.
    assert!(
        (409..=591).contains(&thirds),
        "thirds served {thirds} of {n}"
    );
    gw.shutdown().await;
}
