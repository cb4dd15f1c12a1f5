//! Guards the linter's budget (10,000 Ingresses in under 2 s): parsing one Ingress's
//! annotations must stay in the microseconds.

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use mse_annotations::parse;
use mse_model::{Kind, ObjectKey};

fn annotations() -> BTreeMap<String, String> {
    [
        ("kubernetes.io/ingress.class", "mse"),
        ("nginx.ingress.kubernetes.io/rewrite-target", "/$2"),
        ("nginx.ingress.kubernetes.io/use-regex", "true"),
        ("nginx.ingress.kubernetes.io/proxy-read-timeout", "3600"),
        ("nginx.ingress.kubernetes.io/proxy-body-size", "8m"),
        ("nginx.ingress.kubernetes.io/enable-cors", "true"),
        (
            "nginx.ingress.kubernetes.io/cors-allow-origin",
            "https://a.example.com, https://*.example.com",
        ),
        (
            "nginx.ingress.kubernetes.io/whitelist-source-range",
            "10.0.0.0/8, 192.168.0.0/16",
        ),
        ("nginx.ingress.kubernetes.io/limit-rps", "20"),
        (
            "nginx.ingress.kubernetes.io/configuration-snippet",
            "more_set_headers \"X: y\";",
        ),
        ("higress.io/exact-match-header-x-env", "staging"),
        ("nginx.ingress.kubernetes.io/ssl-redirects", "true"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

fn bench(c: &mut Criterion) {
    let object = ObjectKey::new(Kind::Ingress, "default", "shop");
    let typical = annotations();
    c.bench_function("parse/typical-12-keys", |b| {
        b.iter(|| parse(black_box(&object), None, black_box(&typical)))
    });
    let empty = BTreeMap::new();
    c.bench_function("parse/no-annotations", |b| {
        b.iter(|| parse(black_box(&object), None, black_box(&empty)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
