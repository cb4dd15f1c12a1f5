//! Arbitrary request heads against a fixed table: lookup never panics, and whatever it
//! returns really matches the request.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mse_router::{CompileOptions, RequestHead, RouteTable, compile, normalize_host, normalize_path};

const MANIFESTS: &str = r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: { name: a, namespace: default }
spec:
  ingressClassName: mse
  defaultBackend: { service: { name: s, port: { number: 80 } } }
  rules:
  - host: shop.example.com
    http:
      paths:
      - { path: /, pathType: Prefix, backend: { service: { name: s, port: { number: 80 } } } }
      - { path: /api, pathType: Prefix, backend: { service: { name: s, port: { number: 80 } } } }
      - { path: /api/v1/x, pathType: Exact, backend: { service: { name: s, port: { number: 80 } } } }
  - host: "*.example.com"
    http:
      paths:
      - { path: /static/, pathType: Prefix, backend: { service: { name: s, port: { number: 80 } } } }
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: regex
  namespace: default
  annotations:
    nginx.ingress.kubernetes.io/use-regex: "true"
    nginx.ingress.kubernetes.io/rewrite-target: /$2
    higress.io/match-method: GET POST
    higress.io/regex-match-header-x-env: "(dev|prod)[0-9]*"
    higress.io/prefix-match-query-v: "2"
    higress.io/ignore-path-case: "true"
spec:
  ingressClassName: mse
  rules:
  - host: shop.example.com
    http:
      paths:
      - { path: "/Item(/|$)(.*)", pathType: ImplementationSpecific, backend: { service: { name: s, port: { number: 80 } } } }
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: canary
  namespace: default
  annotations:
    nginx.ingress.kubernetes.io/canary: "true"
    nginx.ingress.kubernetes.io/canary-by-header: x-canary
    nginx.ingress.kubernetes.io/canary-by-cookie: beta
    nginx.ingress.kubernetes.io/canary-weight: "30"
spec:
  ingressClassName: mse
  rules:
  - host: shop.example.com
    http:
      paths:
      - { path: /api, pathType: Prefix, backend: { service: { name: s2, port: { number: 80 } } } }
"#;

fn table() -> &'static RouteTable {
    static T: OnceLock<RouteTable> = OnceLock::new();
    T.get_or_init(|| {
        let mut s = mse_model::Snapshot::default();
        s.extend(mse_model::load_manifests(MANIFESTS, None).objects);
        compile(&s, &CompileOptions::default())
    })
}

fuzz_target!(|input: (&str, &str, &str, &str, &str, u32)| {
    let (host, path, method, query, header, roll) = input;
    let path = normalize_path(path);
    let mut headers = http::HeaderMap::new();
    if let Ok(v) = http::HeaderValue::from_str(header) {
        for name in ["x-env", "x-canary", "cookie"] {
            headers.insert(name, v.clone());
        }
    }
    let head = RequestHead::new(host, &path)
        .method(method)
        .query(Some(query))
        .headers(&headers);
    if let Some(m) = table().lookup(&head) {
        assert!(m.route.host.matches(&normalize_host(host)) || m.route.default_backend);
        assert!(
            m.route.default_backend
                || m.route.path.matches(&path)
                || m.route.ignore_case
        );
        assert!(m.route.conditions.as_ref().is_none_or(|c| c.matches(&head)));
        let d = m.route.destination(&head, roll % mse_router::WEIGHT_SCALE);
        if let Some(p) = d.policy {
            let _ = p.rewrite_path(&m.route.path, &path);
        }
    }
});
