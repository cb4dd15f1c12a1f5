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
"#;

fn table() -> &'static RouteTable {
    static T: OnceLock<RouteTable> = OnceLock::new();
    T.get_or_init(|| {
        let mut s = mse_model::Snapshot::default();
        s.extend(mse_model::load_manifests(MANIFESTS, None).objects);
        compile(&s, &CompileOptions::default())
    })
}

fuzz_target!(|input: (&str, &str)| {
    let (host, path) = input;
    let path = normalize_path(path);
    if let Some(m) = table().lookup(&RequestHead::new(host, &path)) {
        assert!(m.route.host.matches(&normalize_host(host)) || m.route.default_backend);
        assert!(m.route.default_backend || m.route.path.matches(&path));
    }
});
