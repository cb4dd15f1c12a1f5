//! Guards the IP lists' cost per request: a route with a 1,000-entry allow list must cost
//! less than 100 ns more than one without (a binary search over merged ranges, not a scan).
#![expect(
    clippy::unwrap_used,
    reason = "the bench's inputs are fixed and valid; a failure should stop it"
)]

use std::hint::black_box;
use std::net::IpAddr;

use criterion::{Criterion, criterion_group, criterion_main};
use mse_model::{Snapshot, load_manifests};
use mse_router::{Cidr, CompileOptions, RequestHead, RouteTable, compile};

/// `n` networks spread over the address space: /24s and single addresses, IPv4, or IPv6
/// /48s and single addresses.
fn networks(n: usize, v6: bool) -> Vec<String> {
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    (0..n)
        .map(|i| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let r = seed;
            match (v6, i % 2) {
                (false, 0) => format!(
                    "{}.{}.{}.0/24",
                    11 + r % 200,
                    (r >> 8) % 256,
                    (r >> 16) % 256
                ),
                (false, _) => format!(
                    "{}.{}.{}.{}",
                    11 + r % 200,
                    (r >> 8) % 256,
                    (r >> 16) % 256,
                    (r >> 24) % 256
                ),
                (true, 0) => format!("2001:db8:{:x}::/48", r % 0xffff),
                (true, _) => format!("2001:db8:{:x}::{:x}", r % 0xffff, (r >> 16) % 0xffff),
            }
        })
        .collect()
}

/// Two Ingresses: `open.example.com` without lists, `guarded.example.com` whose allow
/// list is `list` plus 10.0.0.0/8 and 2001:db8:ffff::/48 (where the admitted clients are).
fn table(list: &[String]) -> RouteTable {
    let ingress = |name: &str, annotations: &str| {
        format!(
            "---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{ name: {name}, namespace: bench{annotations} }}\nspec:\n  ingressClassName: mse\n  rules: [{{ host: {name}.example.com, http: {{ paths: [{{ path: /, pathType: Prefix, backend: {{ service: {{ name: backend, port: {{ number: 80 }} }} }} }}] }} }}]\n"
        )
    };
    let allow = format!(
        ", annotations: {{ nginx.ingress.kubernetes.io/whitelist-source-range: \"{}, 10.0.0.0/8, 2001:db8:ffff::/48\" }}",
        list.join(", ")
    );
    let y = format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{ name: backend, namespace: bench }}\nspec: {{ ports: [{{ name: http, port: 80 }}] }}\n{}{}",
        ingress("open", ""),
        ingress("guarded", &allow)
    );
    let mut s = Snapshot::default();
    s.extend(load_manifests(&y, None).objects);
    let t = compile(&s, &CompileOptions::default());
    assert!(
        t.diagnostics()
            .iter()
            .all(|d| d.severity < mse_model::Severity::Error),
        "{:?}",
        t.diagnostics()
    );
    t
}

/// Lookup, then the route's lists for `client`: what the access phase does per request.
fn admitted(t: &RouteTable, head: &RequestHead<'_>, client: IpAddr) -> bool {
    t.lookup(head).is_some_and(|m| {
        m.route
            .access
            .as_ref()
            .is_none_or(|a| a.check(client).is_ok())
    })
}

fn ip_lists(c: &mut Criterion) {
    let v4 = table(&networks(1000, false));
    let v6 = table(&networks(1000, true));
    let open = RequestHead::new("open.example.com", "/orders/42");
    let guarded = RequestHead::new("guarded.example.com", "/orders/42");
    let inside: IpAddr = "10.1.2.3".parse().unwrap();
    let outside: IpAddr = "9.9.9.9".parse().unwrap();
    let inside6: IpAddr = "2001:db8:ffff::7".parse().unwrap();
    assert!(admitted(&v4, &open, outside));
    assert!(admitted(&v4, &guarded, inside));
    assert!(!admitted(&v4, &guarded, outside));
    assert!(admitted(&v6, &guarded, inside6));

    let mut g = c.benchmark_group("ip-lists");
    let cases: [(&str, &RouteTable, &RequestHead<'_>, IpAddr); 4] = [
        ("no-list", &v4, &open, inside),
        ("1000-v4-admitted", &v4, &guarded, inside),
        ("1000-v4-refused", &v4, &guarded, outside),
        ("1000-v6-admitted", &v6, &guarded, inside6),
    ];
    for (name, t, head, client) in cases {
        g.bench_function(name, |b| {
            b.iter(|| admitted(t, black_box(head), black_box(client)))
        });
    }
    // The compiled list alone, and for contrast the same 1,000 networks tested one by
    // one, as before compiling.
    let rules = v4
        .lookup(&guarded)
        .and_then(|m| m.route.access.clone())
        .unwrap();
    g.bench_function("1000-v4-check-only", |b| {
        b.iter(|| rules.check(black_box(outside)))
    });
    let list: Vec<Cidr> = networks(1000, false)
        .iter()
        .map(|n| n.parse().unwrap())
        .collect();
    g.bench_function("1000-v4-linear-scan-only", |b| {
        b.iter(|| list.iter().any(|n| n.contains(black_box(outside))))
    });
    g.finish();
}

criterion_group!(benches, ip_lists);
criterion_main!(benches);
