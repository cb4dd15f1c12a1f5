//! Precedence and resolution rules, as a table of cases.

use mse_model::{Severity, Snapshot, load_manifests};

use crate::{CompileOptions, RequestHead, RouteTable, compile, normalize_path};

/// Builds a snapshot from YAML; every Service named in `svc(...)` gets a Service and an
/// EndpointSlice with one ready address whose last octet tells services apart.
fn table(yaml: &str) -> RouteTable {
    table_with(yaml, &CompileOptions::default())
}

/// Compiles `yaml` with `opts`, failing the test on any load error.
pub(crate) fn table_with(yaml: &str, opts: &CompileOptions) -> RouteTable {
    let loaded = load_manifests(yaml, Some("t.yaml"));
    assert!(
        loaded
            .diagnostics
            .iter()
            .all(|d| d.severity != Severity::Error),
        "{:?}",
        loaded.diagnostics
    );
    let mut s = Snapshot::default();
    s.extend(loaded.objects);
    compile(&s, opts)
}

pub(crate) fn service(name: &str, octet: u8) -> String {
    format!(
        r#"
---
apiVersion: v1
kind: Service
metadata: {{ name: {name}, namespace: default }}
spec:
  ports: [{{ name: http, port: 80, targetPort: 8080 }}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {name}-abc
  namespace: default
  labels: {{ kubernetes.io/service-name: {name} }}
addressType: IPv4
ports: [{{ name: http, port: 8080 }}]
endpoints:
- addresses: ["10.0.0.{octet}"]
  conditions: {{ ready: true }}
- addresses: ["10.0.1.{octet}"]
  conditions: {{ ready: false }}
"#
    )
}

fn ingress(name: &str, created: &str, rules: &str) -> String {
    format!(
        r#"
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{ name: {name}, namespace: default, creationTimestamp: "{created}" }}
spec:
  ingressClassName: mse
{rules}
"#
    )
}

/// Which service (by endpoint octet) answers `host` + `path`, or `None` for 404.
fn who(t: &RouteTable, host: &str, path: &str) -> Option<u8> {
    let path = normalize_path(path);
    let m = t.lookup(&RequestHead::new(host, &path))?;
    let c = m.cluster?;
    match &c.target {
        crate::ClusterTarget::Endpoints(a) => a.first().map(|a| match a.ip() {
            std::net::IpAddr::V4(v4) => v4.octets()[3],
            std::net::IpAddr::V6(_) => 0,
        }),
        crate::ClusterTarget::ExternalName { .. } => Some(0),
    }
}

fn services() -> String {
    (1..=9).map(|i| service(&format!("s{i}"), i)).collect()
}

fn path_rule(host: &str, entries: &[(&str, &str, &str)]) -> String {
    let mut s = String::from("  rules:\n");
    if host.is_empty() {
        s.push_str("  - http:\n      paths:\n");
    } else {
        s.push_str(&format!("  - host: \"{host}\"\n    http:\n      paths:\n"));
    }
    for (path, ty, svc) in entries {
        s.push_str(&format!(
            "      - {{ path: \"{path}\", pathType: {ty}, backend: {{ service: {{ name: {svc}, port: {{ number: 80 }} }} }} }}\n"
        ));
    }
    s
}

fn with_annotations(ingress: String, annotations: &str) -> String {
    ingress.replace(
        "creationTimestamp",
        &format!("annotations: {{ {annotations} }}, creationTimestamp"),
    )
}

/// Which service (by endpoint octet) answers `req`.
fn who_req(t: &RouteTable, req: &RequestHead<'_>) -> Option<u8> {
    let m = t.lookup(req)?;
    match &m.cluster?.target {
        crate::ClusterTarget::Endpoints(a) => a.first().map(|a| match a.ip() {
            std::net::IpAddr::V4(v4) => v4.octets()[3],
            std::net::IpAddr::V6(_) => 0,
        }),
        crate::ClusterTarget::ExternalName { .. } => Some(0),
    }
}

fn annotated(name: &str, created: &str, rules: &str, annotations: &str) -> String {
    with_annotations(ingress(name, created, rules), annotations)
}

fn errors(t: &RouteTable) -> Vec<(&'static str, String)> {
    t.diagnostics()
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| (d.code, d.message.to_string()))
        .collect()
}

fn canary(name: &str, created: &str, rules: &str, annotations: &str) -> String {
    let a = if annotations.is_empty() {
        "nginx.ingress.kubernetes.io/canary: \"true\"".to_owned()
    } else {
        format!("nginx.ingress.kubernetes.io/canary: \"true\", {annotations}")
    };
    annotated(name, created, rules, &a)
}

/// The octet of the service a request goes to, canaries included.
fn dest(t: &RouteTable, req: &RequestHead<'_>, roll: u32) -> Option<u8> {
    let m = t.lookup(req)?;
    let d = m.route.destination(req, roll);
    let crate::Backend::Cluster(c) = d.backend else {
        return None;
    };
    match &t.cluster(*c).target {
        crate::ClusterTarget::Endpoints(a) => a.first().map(|a| match a.ip() {
            std::net::IpAddr::V4(v4) => v4.octets()[3],
            std::net::IpAddr::V6(_) => 0,
        }),
        crate::ClusterTarget::ExternalName { .. } => Some(0),
    }
}

/// How many of 1000 evenly spread rolls go to each service octet.
fn spread(t: &RouteTable, req: &RequestHead<'_>) -> std::collections::BTreeMap<u8, u32> {
    let mut out = std::collections::BTreeMap::new();
    for i in 0..1000u32 {
        let roll = i * (crate::WEIGHT_SCALE / 1000);
        *out.entry(dest(t, req, roll).unwrap_or(0)).or_insert(0) += 1;
    }
    out
}

fn headers(pairs: &[(&'static str, &'static str)]) -> &'static http::HeaderMap {
    let mut h = http::HeaderMap::new();
    for (k, v) in pairs {
        h.append(*k, v.parse().unwrap());
    }
    Box::leak(Box::new(h))
}

mod access;
mod backends;
mod canary;
mod checks;
mod custom_headers;
mod routes;
mod selection;
