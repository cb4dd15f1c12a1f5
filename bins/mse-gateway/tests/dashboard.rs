//! The Grafana dashboard in `deploy/grafana` charts what the gateway exports: every metric
//! name its queries use is in a scrape of a running gateway after real requests.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail the test loudly"
)]

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use mse_gateway::Options;
use support::kube::TestCa;
use support::{backends, client, eventually, get};

/// Every `mse_...` name in the dashboard's queries (panels and template variables).
fn dashboard_metrics() -> BTreeSet<String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/grafana/mse-ingress-dashboard.json"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut queries = Vec::new();
    for panel in json["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            queries.push(target["expr"].as_str().unwrap().to_owned());
        }
    }
    for var in json["templating"]["list"].as_array().unwrap() {
        if let Some(q) = var["query"]["query"].as_str() {
            queries.push(q.to_owned());
        }
    }
    let mut names = BTreeSet::new();
    for q in &queries {
        let mut rest = q.as_str();
        while let Some(at) = rest.find("mse_") {
            let tail = &rest[at..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            names.insert(tail[..end].to_owned());
            rest = &tail[end..];
        }
    }
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_dashboard_queries_is_exported() {
    let names = dashboard_metrics();
    assert!(names.len() > 15, "{names:?}");
    // An annotation the gateway does not know gives a diagnostic to count.
    let bs = backends(&["web"]).await;
    let web = bs[0].addr();
    let ca = TestCa::new();
    let leaf = ca.leaf("web.example.com");
    let indent = |pem: &str| {
        pem.lines()
            .map(|l| format!("    {l}\n"))
            .collect::<String>()
    };
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{ name: web, namespace: dash }}\nspec: {{ ports: [{{ name: http, port: 80, targetPort: {p} }}] }}\n---\n\
apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{ name: web-1, namespace: dash, labels: {{ kubernetes.io/service-name: web }} }}\naddressType: IPv4\nports: [{{ name: http, port: {p} }}]\nendpoints: [{{ addresses: [\"{ip}\"] }}]\n---\n\
apiVersion: v1\nkind: Secret\nmetadata: {{ name: web-tls, namespace: dash }}\ntype: kubernetes.io/tls\nstringData:\n  tls.crt: |\n{crt}  tls.key: |\n{key}---\n\
apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{ name: web, namespace: dash, annotations: {{ nginx.ingress.kubernetes.io/ssl-redirect: \"false\", nginx.ingress.kubernetes.io/no-such-key: \"x\" }} }}\nspec:\n  ingressClassName: mse\n  tls: [{{ hosts: [web.example.com], secretName: web-tls }}]\n  rules:\n  - host: web.example.com\n    http:\n      paths:\n      - {{ path: /, pathType: Prefix, backend: {{ service: {{ name: web, port: {{ number: 80 }} }} }} }}\n---\n\
apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{ name: web-canary, namespace: dash, annotations: {{ nginx.ingress.kubernetes.io/canary: \"true\", nginx.ingress.kubernetes.io/canary-by-header: x-canary }} }}\nspec:\n  ingressClassName: mse\n  rules:\n  - host: web.example.com\n    http:\n      paths:\n      - {{ path: /, pathType: Prefix, backend: {{ service: {{ name: web, port: {{ number: 80 }} }} }} }}\n",
        p = web.port(),
        ip = web.ip(),
        crt = indent(&leaf.cert_pem),
        key = indent(&leaf.key_pem),
    );
    std::fs::write(dir.path().join("dash.yaml"), yaml).unwrap();
    let mut o = Options::new(vec![dir.path().to_path_buf()]);
    o.http_addr = Some("127.0.0.1:0".parse().unwrap());
    o.https_addr = Some("127.0.0.1:0".parse().unwrap());
    o.admin_addr = "127.0.0.1:0".parse().unwrap();
    o.workers = 2;
    o.access_log = false;
    let g = tokio::time::timeout(Duration::from_secs(30), mse_gateway::start(o))
        .await
        .expect("start timed out")
        .expect("start failed");
    let c = client();
    let http = g.http_addr().unwrap();
    for _ in 0..3 {
        let r = get(&c, http, "web.example.com", "/page").await;
        assert_eq!(r.status, 200);
    }
    let scrape = || async {
        get(&client(), g.admin_addr(), "admin", "/metrics")
            .await
            .body
    };
    eventually("every dashboard metric in a scrape", || async {
        let text = scrape().await;
        names.iter().all(|n| exported(&text, n))
    })
    .await;
    let text = scrape().await;
    let missing: Vec<_> = names.iter().filter(|n| !exported(&text, n)).collect();
    assert!(missing.is_empty(), "{missing:?} not in\n{text}");
    g.shutdown().await;
}

/// Whether `name` has a sample in the scrape.
fn exported(text: &str, name: &str) -> bool {
    text.lines().any(|l| {
        l.strip_prefix(name)
            .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
    })
}
