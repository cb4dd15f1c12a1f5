//! Writes a large, realistic manifest set for timing `mse-lint` (see BENCHMARKS.md):
//! `cargo run --release -p mse-lint --example gen_manifests -- DIR [INGRESSES] [--endpoints]`.
//!
//! One file per namespace, 100 Ingresses each (default 10,000 in all), each with its
//! Service, a mix of common annotations, every tenth a canary, and a few mistakes (typos,
//! bad values, snippets) so that the linter has something to say. With `--endpoints` each
//! Service also gets an EndpointSlice, as in the gateway's file mode (a repository's
//! manifests have none: Kubernetes creates them).

use std::fmt::Write as _;
use std::path::PathBuf;

const ANNOTATIONS: &[&[(&str, &str)]] = &[
    &[
        ("nginx.ingress.kubernetes.io/rewrite-target", "/$2"),
        ("nginx.ingress.kubernetes.io/use-regex", "\"true\""),
    ],
    &[
        ("nginx.ingress.kubernetes.io/proxy-read-timeout", "\"3600\""),
        ("nginx.ingress.kubernetes.io/proxy-body-size", "50m"),
    ],
    &[
        ("nginx.ingress.kubernetes.io/enable-cors", "\"true\""),
        (
            "nginx.ingress.kubernetes.io/cors-allow-origin",
            "\"https://a.example.com, https://*.example.com\"",
        ),
    ],
    &[(
        "nginx.ingress.kubernetes.io/whitelist-source-range",
        "\"10.0.0.0/8, 192.168.0.0/16\"",
    )],
    &[
        ("nginx.ingress.kubernetes.io/limit-rps", "\"20\""),
        ("nginx.ingress.kubernetes.io/ssl-redirect", "\"true\""),
    ],
    &[("nginx.ingress.kubernetes.io/ssl-redirects", "\"true\"")],
    &[("nginx.ingress.kubernetes.io/proxy-send-timeout", "ten")],
    &[(
        "nginx.ingress.kubernetes.io/configuration-snippet",
        "|\n      more_set_headers \"X-Frame-Options: DENY\";",
    )],
    &[
        ("higress.io/exact-match-header-x-env", "staging"),
        ("nginx.ingress.kubernetes.io/proxy-buffer-size", "16k"),
    ],
    &[],
];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let endpoints = args.iter().any(|a| a == "--endpoints");
    let mut positional = args.iter().filter(|a| !a.starts_with("--"));
    let Some(dir) = positional.next().map(PathBuf::from) else {
        eprintln!("usage: gen_manifests DIR [INGRESSES] [--endpoints]");
        std::process::exit(2);
    };
    let total: usize = positional
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("cannot create {}: {e}", dir.display());
        std::process::exit(2);
    }
    let per_file = 100;
    for file in 0..total.div_ceil(per_file) {
        let ns = format!("team-{file:03}");
        let mut out = String::new();
        for j in 0..per_file.min(total - file * per_file) {
            let i = file * per_file + j;
            let name = format!("app-{j:03}");
            let _ = write!(
                out,
                "---\napiVersion: v1\nkind: Service\nmetadata: {{ name: {name}, namespace: {ns} }}\nspec:\n  ports: [{{ name: http, port: 80, targetPort: 8080 }}]\n"
            );
            if endpoints {
                let _ = write!(
                    out,
                    "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: {name}-x1\n  namespace: {ns}\n  labels: {{ kubernetes.io/service-name: {name} }}\naddressType: IPv4\nports: [{{ name: http, port: 8080 }}]\nendpoints:\n- addresses: [\"10.{}.{}.10\"]\n  conditions: {{ ready: true }}\n",
                    file % 250,
                    j
                );
            }
            let canary = i % 10 == 9;
            let mut ann = String::new();
            if canary {
                ann.push_str("    nginx.ingress.kubernetes.io/canary: \"true\"\n    nginx.ingress.kubernetes.io/canary-weight: \"10\"\n");
            }
            for (k, v) in ANNOTATIONS[i % ANNOTATIONS.len()] {
                let _ = writeln!(ann, "    {k}: {v}");
            }
            let host = if canary {
                format!("app-{:03}.{ns}.example.com", j - 1)
            } else {
                format!("{name}.{ns}.example.com")
            };
            let _ = write!(
                out,
                "---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: {name}\n  namespace: {ns}\n  creationTimestamp: \"2024-01-01T00:00:00Z\"\n  annotations:\n{ann}    kubernetes.io/ingress.class: mse\nspec:\n  rules:\n  - host: {host}\n    http:\n      paths:\n      - {{ path: /, pathType: Prefix, backend: {{ service: {{ name: {name}, port: {{ number: 80 }} }} }} }}\n      - {{ path: /api, pathType: Prefix, backend: {{ service: {{ name: {name}, port: {{ name: http }} }} }} }}\n"
            );
        }
        let path = dir.join(format!("{ns}.yaml"));
        if let Err(e) = std::fs::write(&path, out) {
            eprintln!("cannot write {}: {e}", path.display());
            std::process::exit(2);
        }
    }
}
