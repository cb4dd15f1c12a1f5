//! The gateway end to end, as users run it: manifests in a watched directory, real
//! listeners on loopback, echo backends, a real HTTP client.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail the test loudly"
)]

mod support;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mse_gateway::{Options, Running};
use mse_proxy::echo::EchoServer;

use support::{PATIENCE, admin_json, backends, client, get};

/// A Service plus an EndpointSlice pointing at an echo backend.
/// Echo backends with those names, and a fresh manifest directory holding their Services.
async fn backends_in_dir(names: &[&str]) -> (Vec<EchoServer>, tempfile::TempDir) {
    let bs = backends(names).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("services.yaml"),
        bs.iter().map(service_yaml).collect::<String>(),
    )
    .unwrap();
    (bs, dir)
}

fn service_yaml(b: &EchoServer) -> String {
    let a = b.addr();
    format!(
        "---\napiVersion: v1\nkind: Service\nmetadata: {{ name: {n}, namespace: e2e }}\nspec: {{ ports: [{{ name: http, port: 80, targetPort: {p} }}] }}\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{ name: {n}-1, namespace: e2e, labels: {{ kubernetes.io/service-name: {n} }} }}\naddressType: IPv4\nports: [{{ name: http, port: {p} }}]\nendpoints: [{{ addresses: [\"{ip}\"] }}]\n",
        n = b.service(),
        p = a.port(),
        ip = a.ip()
    )
}

fn ingress_yaml(name: &str, host: &str, paths: &[(&str, &str, &str)]) -> String {
    let mut y = format!(
        "---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{ name: {name}, namespace: e2e }}\nspec:\n  ingressClassName: mse\n  rules:\n  - host: {host}\n    http:\n      paths:\n"
    );
    for (path, ty, svc) in paths {
        y.push_str(&format!(
            "      - {{ path: \"{path}\", pathType: {ty}, backend: {{ service: {{ name: {svc}, port: {{ number: 80 }} }} }} }}\n"
        ));
    }
    y
}

async fn start(dir: &Path) -> Running {
    let mut o = Options::new(vec![dir.to_path_buf()]);
    o.http_addr = Some("127.0.0.1:0".parse().unwrap());
    o.https_addr = Some("127.0.0.1:0".parse().unwrap());
    o.admin_addr = "127.0.0.1:0".parse().unwrap();
    o.workers = 2;
    o.access_log = false;
    tokio::time::timeout(Duration::from_secs(30), mse_gateway::start(o))
        .await
        .expect("start timed out")
        .expect("start failed")
}

/// Writes a file the way editors do: a temporary file renamed over the old one.
fn write_atomic(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp~");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_by_host_and_path_and_bad_input_costs_only_itself() {
    let (_backends, dir) = backends_in_dir(&["web", "api"]).await;
    let d = dir.path();
    std::fs::write(
        d.join("shop.yaml"),
        ingress_yaml(
            "shop",
            "shop.test",
            &[
                ("/", "Prefix", "web"),
                ("/api", "Prefix", "api"),
                ("/gone", "Prefix", "missing"),
            ],
        ),
    )
    .unwrap();
    // Three kinds of bad input next to the good Ingress.
    std::fs::write(
        d.join("broken.yaml"),
        "apiVersion: v1\nkind: Service\nmetadata: [oops\n",
    )
    .unwrap();
    std::fs::write(
        d.join("tls.yaml"),
        "apiVersion: v1\nkind: Secret\nmetadata: { name: bad-cert, namespace: e2e }\ntype: kubernetes.io/tls\nstringData: { tls.crt: nonsense, tls.key: nonsense }\n---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: { name: secure, namespace: e2e }\nspec:\n  ingressClassName: mse\n  tls: [{ hosts: [secure.test], secretName: bad-cert }]\n  rules: [{ host: secure.test, http: { paths: [{ path: /, pathType: Prefix, backend: { service: { name: web, port: { number: 80 } } } }] } }]\n",
    )
    .unwrap();
    // A bad annotation value on line 6: the diagnostic points at that line.
    std::fs::write(
        d.join("annotated.yaml"),
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: slow\n  namespace: e2e\n  annotations: { nginx.ingress.kubernetes.io/proxy-read-timeout: ten }\nspec:\n  ingressClassName: mse\n  rules: [{ host: slow.test, http: { paths: [{ path: /, pathType: Prefix, backend: { service: { name: web, port: { number: 80 } } } }] } }]\n",
    )
    .unwrap();
    let g = start(d).await;
    let c = client();
    let http = g.http_addr().unwrap();

    let r = get(&c, http, "shop.test", "/api/v1/orders").await;
    assert_eq!((r.status, r.service.as_deref()), (200, Some("api")));
    let seen: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(seen["path"], "/api/v1/orders");
    assert_eq!(seen["host"], "shop.test");
    assert_eq!(seen["headers"]["x-forwarded-proto"], "http");
    assert_eq!(
        (get(&c, http, "SHOP.test:80", "/apix")
            .await
            .service
            .as_deref()),
        Some("web")
    );
    assert_eq!(get(&c, http, "shop.test", "/gone/x").await.status, 503);
    assert_eq!(get(&c, http, "nobody.test", "/").await.status, 404);
    // The Ingress with the broken certificate still routes (over plain HTTP here).
    assert_eq!(
        get(&c, http, "secure.test", "/").await.service.as_deref(),
        Some("web")
    );

    assert_eq!(
        get(&c, g.admin_addr(), "admin", "/readyz").await.status,
        200
    );
    assert_eq!(
        get(&c, g.admin_addr(), "admin", "/healthz").await.status,
        200
    );
    let diags = admin_json(&c, &g, "/debug/diagnostics").await;
    let codes: Vec<&str> = diags
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["code"].as_str().unwrap())
        .collect();
    for want in ["malformed-yaml", "missing-service", "invalid-tls-secret"] {
        assert!(codes.contains(&want), "{want} missing from {codes:?}");
    }
    let missing = diags
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["code"] == "missing-service")
        .unwrap();
    assert_eq!(missing["object"]["name"], "shop");
    assert_eq!(
        missing["key"],
        "spec.rules[0].http.paths[2].backend.service"
    );
    assert!(
        missing["source"]["file"]
            .as_str()
            .unwrap()
            .ends_with("shop.yaml"),
        "{missing}"
    );
    // The same diagnostic mse-lint gives, at the annotation's own line; the route is
    // still served with the default timeout.
    let bad = diags
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["object"]["name"] == "slow")
        .unwrap();
    assert_eq!(bad["key"], "nginx.ingress.kubernetes.io/proxy-read-timeout");
    assert_eq!(bad["value"], "ten");
    assert_eq!(bad["source"]["line"], 6, "{bad}");
    assert_eq!(
        get(&c, http, "slow.test", "/").await.service.as_deref(),
        Some("web")
    );
    let routes = admin_json(&c, &g, "/debug/routes").await;
    assert_eq!(routes["routes"].as_array().unwrap().len(), 5);
    let metrics = get(&c, g.admin_addr(), "admin", "/metrics").await;
    assert!(metrics.body.contains("# TYPE"), "{}", metrics.body);
    g.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_is_served_and_a_broken_edit_keeps_the_last_good() {
    let (_backends, dir) = backends_in_dir(&["v1", "v2"]).await;
    let d = dir.path();
    let app = d.join("app.yaml");
    std::fs::write(
        &app,
        ingress_yaml("app", "app.test", &[("/", "Prefix", "v1")]),
    )
    .unwrap();
    let g = start(d).await;
    let c = client();
    let http = g.http_addr().unwrap();
    assert_eq!(
        get(&c, http, "app.test", "/").await.service.as_deref(),
        Some("v1")
    );

    write_atomic(
        &app,
        &ingress_yaml("app", "app.test", &[("/", "Prefix", "v2")]),
    );
    let deadline = Instant::now() + PATIENCE;
    loop {
        if get(&c, http, "app.test", "/").await.service.as_deref() == Some("v2") {
            break;
        }
        assert!(Instant::now() < deadline, "the edit was never served");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // A half-written file: the last good Ingress keeps serving, and the problem is reported.
    // Written in one step, so that the watcher never reads an empty file in between.
    let gen_before = g.table().routes().generation();
    write_atomic(
        &app,
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: app, namespace: e2e\nspec: [",
    );
    let deadline = Instant::now() + PATIENCE;
    while g.table().routes().generation() == gen_before {
        assert!(
            Instant::now() < deadline,
            "the broken edit was never compiled"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        get(&c, http, "app.test", "/").await.service.as_deref(),
        Some("v2")
    );
    let diags = admin_json(&c, &g, "/debug/diagnostics").await;
    let codes: Vec<&str> = diags
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["code"].as_str().unwrap())
        .collect();
    assert!(
        codes.contains(&"malformed-yaml") && codes.contains(&"kept-last-good"),
        "{codes:?}"
    );
    g.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_never_fail_through_100_manifest_changes() {
    let (_backends, dir) = backends_in_dir(&["blue", "green", "other"]).await;
    let d = dir.path();
    let app = d.join("app.yaml");
    let version = |i: usize| {
        // The live route flips between two healthy backends; another Ingress in the same
        // file changes its paths every time, so every edit is a real change.
        let colour = if i.is_multiple_of(2) { "blue" } else { "green" };
        format!(
            "{}{}",
            ingress_yaml("app", "app.test", &[("/", "Prefix", colour)]),
            ingress_yaml(
                "churn",
                "churn.test",
                &[(&format!("/v{i}"), "Prefix", "other")]
            )
        )
    };
    std::fs::write(&app, version(0)).unwrap();
    let g = start(d).await;
    let http = g.http_addr().unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    // Requests answered so far, failed or not.
    let done = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for keep_alive in [true, true, false] {
        let (stop, done) = (stop.clone(), done.clone());
        clients.push(tokio::spawn(async move {
            let pooled = client();
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let c = if keep_alive { pooled.clone() } else { client() };
                let r = get(&c, http, "app.test", "/live").await;
                match (r.status, r.service.as_deref()) {
                    (200, Some("blue" | "green")) => {}
                    other => failures.push(format!("{other:?}: {}", r.body)),
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
            failures
        }));
    }
    // However fast the edits come compared with the watcher's debounce, and however many
    // tables they make, requests are answered between every two of them.
    for i in 1..=100 {
        write_atomic(&app, &version(i));
        let before = done.load(Ordering::Relaxed);
        let deadline = Instant::now() + PATIENCE;
        while done.load(Ordering::Relaxed) == before {
            assert!(
                Instant::now() < deadline,
                "no request was answered after edit {i}"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    // The last version goes live, then the clients stop.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let c = client();
        let churn = get(&c, http, "churn.test", "/v100").await;
        let live = get(&c, http, "app.test", "/live").await;
        if (churn.status, live.service.as_deref()) == (200, Some("blue")) {
            break;
        }
        assert!(Instant::now() < deadline, "the last edit was never served");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        let failures = c.await.unwrap();
        assert!(
            failures.is_empty(),
            "{} failed requests, first: {:?}",
            failures.len(),
            failures.first()
        );
    }
    assert!(done.load(Ordering::Relaxed) >= 100);
    g.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_backend_service_answers_unmatched_requests() {
    let bs = backends(&["web", "fallback"]).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let yaml = bs.iter().map(service_yaml).collect::<String>()
        + &ingress_yaml("shop", "shop.test", &[("/web", "Prefix", "web")]);
    std::fs::write(d.join("all.yaml"), yaml).unwrap();
    let mut o = Options::new(vec![d.to_path_buf()]);
    o.http_addr = Some("127.0.0.1:0".parse().unwrap());
    o.https_addr = None;
    o.admin_addr = "127.0.0.1:0".parse().unwrap();
    o.workers = 1;
    o.access_log = false;
    o.default_backend = Some("e2e/fallback".parse().unwrap());
    let g = tokio::time::timeout(Duration::from_secs(30), mse_gateway::start(o))
        .await
        .expect("start timed out")
        .expect("start failed");
    let c = client();
    let http = g.http_addr().unwrap();
    let r = get(&c, http, "shop.test", "/web/x").await;
    assert_eq!(r.service.as_deref(), Some("web"));
    for (host, path) in [("nobody.test", "/"), ("shop.test", "/elsewhere")] {
        let r = get(&c, http, host, path).await;
        assert_eq!((r.status, r.service.as_deref()), (200, Some("fallback")));
    }
    let routes = admin_json(&c, &g, "/debug/routes").await;
    let id = routes["default_backend"].as_u64().unwrap() as usize;
    assert_eq!(routes["clusters"][id]["service"]["name"], "fallback");
    g.shutdown().await;
}
