//! Guards the router's cost per request and per configuration change: lookup must stay
//! a few hash probes whatever the table size, and compiling 10k Ingresses must stay well
//! under the one-second reload budget.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use mse_model::{Snapshot, load_manifests};
use mse_router::{CompileOptions, RequestHead, compile, normalize_path};

/// `n` Ingresses shaped like real clusters: one host each with two or three paths, every
/// tenth a wildcard host, plus a catch-all, all backed by one Service with endpoints.
fn snapshot(n: usize) -> Snapshot {
    let mut y = String::from(
        r#"apiVersion: v1
kind: Service
metadata: { name: backend, namespace: bench }
spec: { ports: [{ name: http, port: 80, targetPort: 8080 }] }
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: backend-1, namespace: bench, labels: { kubernetes.io/service-name: backend } }
addressType: IPv4
ports: [{ name: http, port: 8080 }]
endpoints: [{ addresses: ["10.0.0.1", "10.0.0.2", "10.0.0.3"] }]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: { name: catch-all, namespace: bench }
spec:
  ingressClassName: mse
  rules: [{ http: { paths: [{ path: /, pathType: Prefix, backend: { service: { name: backend, port: { number: 80 } } } }] } }]
"#,
    );
    for i in 0..n {
        let host = if i % 10 == 9 {
            format!("*.tenant-{i}.example.com")
        } else {
            format!("svc-{i}.example.com")
        };
        y.push_str(&format!(
            r#"---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{ name: ing-{i}, namespace: bench }}
spec:
  ingressClassName: mse
  rules:
  - host: "{host}"
    http:
      paths:
      - {{ path: /api/v{v}, pathType: Prefix, backend: {{ service: {{ name: backend, port: {{ number: 80 }} }} }} }}
      - {{ path: /static, pathType: Prefix, backend: {{ service: {{ name: backend, port: {{ number: 80 }} }} }} }}
      - {{ path: /healthz, pathType: Exact, backend: {{ service: {{ name: backend, port: {{ number: 80 }} }} }} }}
"#,
            v = i % 5
        ));
    }
    let mut s = Snapshot::default();
    s.extend(load_manifests(&y, Some("bench.yaml")).objects);
    s
}

fn lookup(c: &mut Criterion) {
    let mut g = c.benchmark_group("lookup");
    for n in [10usize, 1_000, 10_000] {
        let t = compile(&snapshot(n), &CompileOptions::default());
        assert!(t.diagnostics().is_empty());
        let exact_host = format!("svc-{}.example.com", n / 2 - n / 2 % 10);
        let wild_host = format!("a.tenant-{}.example.com", n - 1);
        let cases = [
            (
                "exact-host-prefix",
                exact_host.clone(),
                "/api/v0/orders/42/items",
            ),
            ("exact-host-exact-path", exact_host.clone(), "/healthz"),
            ("wildcard-host", wild_host, "/static/app.js"),
            ("catch-all", "unknown.example.org".to_owned(), "/index.html"),
            (
                "host-with-port-and-case",
                format!("SVC-{}.Example.com:443", n / 2 - n / 2 % 10),
                "/static",
            ),
        ];
        for (name, host, path) in cases {
            assert!(t.lookup(&RequestHead::new(&host, path)).is_some(), "{name}");
            g.bench_with_input(
                BenchmarkId::new(name, n),
                &(host, path),
                |b, (host, path)| {
                    b.iter(|| {
                        let p = normalize_path(black_box(path));
                        black_box(
                            t.lookup(&RequestHead::new(black_box(host), &p))
                                .map(|m| m.route.id),
                        )
                    })
                },
            );
        }
    }
    g.finish();
}

fn compile_bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("compile");
    g.sample_size(10);
    for n in [10usize, 1_000, 10_000] {
        let s = snapshot(n);
        g.bench_with_input(BenchmarkId::from_parameter(n), &s, |b, s| {
            b.iter(|| black_box(compile(s, &CompileOptions::default()).routes().len()))
        });
    }
    g.finish();
}

criterion_group!(benches, lookup, compile_bench);
criterion_main!(benches);
