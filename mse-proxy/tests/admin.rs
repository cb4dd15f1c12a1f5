//! The admin server's operator views over loopback: `/debug/routes` and
//! `/debug/diagnostics` filtered by host, namespace and severity, and `/debug/config`
//! with where each global setting came from.
#![cfg(test)]

mod support;

use std::net::SocketAddr;

use http::StatusCode;
use mse_proxy::admin::{self, AdminState};
use serde_json::Value;
use support::*;

/// `app` in `default` (`app.example.com`, one path to a missing Service) and `shop` in
/// `shop` (`*.shop.example.com`, its Service missing too), with the gateway's ConfigMap.
async fn admin_of(backend: SocketAddr) -> (mse_proxy::GatewayHandle, SocketAddr) {
    let shop = ingress(
        "shop",
        Some("*.shop.example.com"),
        &[("/", "Prefix", "svc-shop")],
    )
    .replace("namespace: default", "namespace: shop");
    let yaml = [
        ingress(
            "app",
            Some("app.example.com"),
            &[("/", "Prefix", "svc-a"), ("/missing", "Prefix", "nope")],
        ),
        service("svc-a", &[backend]),
        shop,
        gateway_config_map(&[("use-gzip", "true"), ("gzip-level", "5")]),
    ]
    .concat();
    let (gw, table) = gateway_serving(compile_yaml_with(&yaml, &configmap_options()), |_| {});
    let state = AdminState::new(table);
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(admin::serve(listener, state));
    (gw, addr)
}

async fn admin_json(addr: SocketAddr, path: &str) -> Value {
    let r = get(addr, "admin", path).await;
    assert_eq!(r.status, StatusCode::OK, "{path}: {:?}", r.body);
    r.json()
}

fn namespaces(items: &Value, field: &str) -> Vec<String> {
    items
        .as_array()
        .expect("an array")
        .iter()
        .map(|i| i[field]["namespace"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[tokio::test]
async fn routes_filter_by_host_and_namespace() {
    let a = echo("a").await;
    let (_gw, addr) = admin_of(a.addr()).await;
    let all = admin_json(addr, "/debug/routes").await;
    assert_eq!(all["routes"].as_array().map(Vec::len), Some(3), "{all}");

    let app = admin_json(addr, "/debug/routes?host=App.Example.com").await;
    assert_eq!(
        namespaces(&app["routes"], "ingress"),
        ["default", "default"]
    );
    let shop = admin_json(addr, "/debug/routes?host=www.shop.example.com").await;
    assert_eq!(namespaces(&shop["routes"], "ingress"), ["shop"]);
    let shop = admin_json(addr, "/debug/routes?namespace=shop").await;
    assert_eq!(namespaces(&shop["routes"], "ingress"), ["shop"]);
    let none = admin_json(addr, "/debug/routes?host=app.example.com&namespace=shop").await;
    assert_eq!(none["routes"], Value::Array(Vec::new()));
    // The rest of the table is there as without filters.
    assert_eq!(none["generation"], all["generation"]);
}

#[tokio::test]
async fn diagnostics_filter_by_host_namespace_and_severity() {
    let a = echo("a").await;
    let (_gw, addr) = admin_of(a.addr()).await;
    let all = admin_json(addr, "/debug/diagnostics").await;
    let count = |v: &Value| v.as_array().map_or(0, Vec::len);

    let shop = admin_json(addr, "/debug/diagnostics?namespace=shop").await;
    assert!(count(&shop) > 0, "{all}");
    assert!(
        namespaces(&shop, "object").iter().all(|n| n == "shop"),
        "{shop}"
    );
    let app = admin_json(addr, "/debug/diagnostics?host=app.example.com").await;
    assert!(count(&app) > 0, "{all}");
    assert!(
        app.as_array()
            .unwrap()
            .iter()
            .all(|d| d["object"]["name"] == "app"),
        "{app}"
    );
    assert!(count(&app) + count(&shop) <= count(&all));

    let mut last = count(&all);
    for s in ["info", "warning", "error"] {
        let d = admin_json(addr, &format!("/debug/diagnostics?severity={s}")).await;
        assert!(count(&d) <= last, "{s}");
        last = count(&d);
        let rank = |v: &str| ["info", "warning", "error"].iter().position(|x| *x == v);
        assert!(
            d.as_array()
                .unwrap()
                .iter()
                .all(|x| rank(x["severity"].as_str().unwrap()) >= rank(s)),
            "{s}: {d}"
        );
    }
    let warnings = admin_json(addr, "/debug/diagnostics?severity=warning").await;
    assert!(count(&warnings) > 0, "{all}");

    for bad in ["/debug/diagnostics?severity=fatal", "/debug/routes?hots=a"] {
        let r = get(addr, "admin", bad).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        let text = String::from_utf8_lossy(&r.body);
        assert!(text.contains("fatal") || text.contains("hots"), "{text}");
    }
}

#[tokio::test]
async fn config_shows_values_and_their_origins() {
    let a = echo("a").await;
    let (_gw, addr) = admin_of(a.addr()).await;
    let c = admin_json(addr, "/debug/config").await;
    assert_eq!(c["compression"]["gzip"], true, "{c}");
    assert_eq!(c["compression"]["gzip_level"], 5, "{c}");
    // At its default: no origin.
    assert_eq!(c["compression"]["brotli"], false, "{c}");
    let origin = &c["origins"]["use-gzip"];
    assert_eq!(origin["value"], "true", "{c}");
    assert!(
        origin["object"]
            .as_str()
            .unwrap_or("")
            .contains("ingress/gateway"),
        "{origin}"
    );
    assert!(c["origins"].get("enable-brotli").is_none(), "{c}");
}
