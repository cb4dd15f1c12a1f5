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

/// The per-request work of a route's annotation policy in the data plane: the redirect
/// check, the path rewrite and the header edits, on a copy of typical request headers
/// (the copy is in every case, so the difference between cases is the policy's cost).
fn policy(c: &mut Criterion) {
    let yaml = r#"apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: { name: plain, namespace: bench }
spec:
  ingressClassName: mse
  rules: [{ host: plain.example.com, http: { paths: [{ path: /api, pathType: Prefix, backend: { service: { name: backend, port: { number: 80 } } } }] } }]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: edited
  namespace: bench
  annotations:
    nginx.ingress.kubernetes.io/rewrite-path: /v2
    nginx.ingress.kubernetes.io/upstream-vhost: internal.svc
    higress.io/request-header-control-add: "X-Env prod"
    higress.io/request-header-control-update: "X-Tenant bench"
    higress.io/request-header-control-remove: "X-Debug"
    higress.io/response-header-control-add: "X-Frame-Options DENY"
spec:
  ingressClassName: mse
  rules: [{ host: edited.example.com, http: { paths: [{ path: /api, pathType: Prefix, backend: { service: { name: backend, port: { number: 80 } } } }] } }]
"#;
    let mut s = Snapshot::default();
    s.extend(load_manifests(yaml, None).objects);
    let t = compile(&s, &CompileOptions::default());
    let mut headers = http::HeaderMap::new();
    for (k, v) in [
        ("host", "edited.example.com"),
        ("user-agent", "bench/1.0"),
        ("accept", "*/*"),
        ("x-debug", "1"),
        ("x-forwarded-for", "10.0.0.9"),
    ] {
        headers.insert(k, http::HeaderValue::from_static(v));
    }
    let mut g = c.benchmark_group("policy");
    for host in ["plain.example.com", "edited.example.com"] {
        let Some(m) = t.lookup(&RequestHead::new(host, "/api/orders/42")) else {
            continue;
        };
        let route = m.route;
        let name = if route.policy.is_some() {
            "headers-and-rewrite"
        } else {
            "none"
        };
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut h = black_box(&headers).clone();
                let path = black_box("/api/orders/42");
                let redirect = route.may_redirect(false);
                let mut rewritten = None;
                if let Some(p) = &route.policy {
                    rewritten = p.rewrite_path(&route.path, path);
                    p.edit_request(&mut h);
                    p.response_headers.apply(&mut h);
                }
                black_box((redirect, rewritten, h))
            })
        });
    }
    g.finish();
}

/// Lookup plus the destination choice and path rewrite for routes that carry the routing
/// annotations: a regex path with a capture-group rewrite, match conditions, and a path
/// with two header canaries and two weight canaries; a plain Prefix route for comparison.
fn routing(c: &mut Criterion) {
    let ing = |name: &str, host: &str, path: &str, ty: &str, svc: &str, annotations: &str| {
        format!(
            "---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{ name: {name}, namespace: bench, annotations: {{ {annotations} }} }}\nspec:\n  ingressClassName: mse\n  rules: [{{ host: {host}, http: {{ paths: [{{ path: \"{path}\", pathType: {ty}, backend: {{ service: {{ name: {svc}, port: {{ number: 80 }} }} }} }}] }} }}]\n"
        )
    };
    let n = "nginx.ingress.kubernetes.io/";
    let mut y = String::new();
    for svc in ["backend", "v2", "v3", "v4", "v5"] {
        y.push_str(&format!("---\napiVersion: v1\nkind: Service\nmetadata: {{ name: {svc}, namespace: bench }}\nspec: {{ ports: [{{ name: http, port: 80, targetPort: 8080 }}] }}\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{ name: {svc}-1, namespace: bench, labels: {{ kubernetes.io/service-name: {svc} }} }}\naddressType: IPv4\nports: [{{ name: http, port: 8080 }}]\nendpoints: [{{ addresses: [\"10.0.0.1\"] }}]\n"));
    }
    y += &ing(
        "plain",
        "plain.example.com",
        "/api",
        "Prefix",
        "backend",
        "",
    );
    y += &ing(
        "regex",
        "regex.example.com",
        "/api/(v[0-9]+)/(.*)",
        "ImplementationSpecific",
        "backend",
        &format!("{n}use-regex: \"true\", {n}rewrite-target: /$2"),
    );
    y += &ing(
        "cond",
        "cond.example.com",
        "/api",
        "Prefix",
        "backend",
        "higress.io/match-method: GET, higress.io/exact-match-header-x-env: prod",
    );
    y += &ing(
        "cond-other",
        "cond.example.com",
        "/api",
        "Prefix",
        "v2",
        "higress.io/match-method: POST",
    );
    y += &ing(
        "main",
        "canary.example.com",
        "/api",
        "Prefix",
        "backend",
        "",
    );
    y += &ing(
        "c1",
        "canary.example.com",
        "/api",
        "Prefix",
        "v2",
        &format!("{n}canary: \"true\", {n}canary-by-header: x-c1"),
    );
    y += &ing(
        "c2",
        "canary.example.com",
        "/api",
        "Prefix",
        "v3",
        &format!("{n}canary: \"true\", {n}canary-by-header: x-c2, {n}canary-by-header-value: on"),
    );
    y += &ing(
        "c3",
        "canary.example.com",
        "/api",
        "Prefix",
        "v4",
        &format!("{n}canary: \"true\", {n}canary-weight: \"10\""),
    );
    y += &ing(
        "c4",
        "canary.example.com",
        "/api",
        "Prefix",
        "v5",
        &format!("{n}canary: \"true\", {n}canary-weight: \"20\""),
    );
    let mut s = Snapshot::default();
    s.extend(load_manifests(&y, None).objects);
    let t = compile(&s, &CompileOptions::default());
    assert!(
        t.diagnostics()
            .iter()
            .all(|d| d.severity < mse_model::Severity::Warning),
        "{:?}",
        t.diagnostics()
    );
    let mut headers = http::HeaderMap::new();
    for (k, v) in [
        ("user-agent", "bench/1.0"),
        ("accept", "*/*"),
        ("x-env", "prod"),
    ] {
        headers.insert(k, http::HeaderValue::from_static(v));
    }
    let mut g = c.benchmark_group("routing");
    for (name, host) in [
        ("plain-prefix", "plain.example.com"),
        ("regex-rewrite", "regex.example.com"),
        ("conditions", "cond.example.com"),
        ("four-canaries", "canary.example.com"),
    ] {
        let path = "/api/v1/orders/42";
        let head = RequestHead::new(host, path)
            .query(Some("a=1"))
            .headers(&headers);
        assert!(t.lookup(&head).is_some(), "{name}");
        let mut roll = 0u32;
        g.bench_function(name, |b| {
            b.iter(|| {
                roll = (roll + 7919) % mse_router::WEIGHT_SCALE;
                let m = t.lookup(black_box(&head)).map(|m| {
                    let d = m.route.destination(&head, roll);
                    let rewritten = d.policy.and_then(|p| p.rewrite_path(&m.route.path, path));
                    (d.backend, rewritten)
                });
                black_box(m)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, lookup, compile_bench, policy, routing);
criterion_main!(benches);
