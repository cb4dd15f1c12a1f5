//! Certificate selection from `spec.tls` and the Secrets it names.
#![expect(
    clippy::unwrap_used,
    reason = "helpers outside #[test] fns fail the test loudly"
)]

use mse_model::{Snapshot, load_manifests};
use mse_router::{CompileOptions, RouteTable, compile};

fn cert_secret(name: &str, hosts: &[&str]) -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(hosts.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>())
            .unwrap();
    let cert = params.self_signed(&key).unwrap();
    let b64 = |s: String| {
        use std::fmt::Write;
        // YAML block scalar: keep the PEM as stringData.
        let mut out = String::new();
        for line in s.lines() {
            writeln!(out, "    {line}").unwrap();
        }
        out
    };
    format!(
        "---\napiVersion: v1\nkind: Secret\nmetadata: {{ name: {name}, namespace: default }}\ntype: kubernetes.io/tls\nstringData:\n  tls.crt: |\n{}  tls.key: |\n{}",
        b64(cert.pem()),
        b64(key.serialize_pem())
    )
}

fn tls_ingress(name: &str, created: &str, tls: &str) -> String {
    format!(
        "---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{ name: {name}, namespace: default, creationTimestamp: \"{created}\" }}\nspec:\n  ingressClassName: mse\n  rules: [{{ host: tls.test }}]\n  tls:\n{tls}\n"
    )
}

fn compile_yaml(yaml: &str) -> RouteTable {
    let mut s = Snapshot::default();
    let l = load_manifests(yaml, Some("tls.yaml"));
    assert!(l.diagnostics.is_empty(), "{:?}", l.diagnostics);
    s.extend(l.objects);
    compile(&s, &CompileOptions::default())
}

fn secret_for(t: &RouteTable, sni: Option<&str>) -> Option<String> {
    t.certificate_for(sni)
        .map(|id| t.certificates()[id.0 as usize].secret.name.to_string())
}

#[test]
fn exact_then_wildcard_then_default_certificate() {
    let yaml = [
        cert_secret("shop", &["shop.example.com"]),
        cert_secret("wild", &["*.example.com"]),
        cert_secret("fallback", &["fallback.test"]),
        tls_ingress(
            "a",
            "2024-01-01T00:00:00Z",
            "  - { hosts: [shop.example.com], secretName: shop }\n  - { hosts: [\"*.example.com\"], secretName: wild }\n  - { secretName: fallback }",
        ),
    ]
    .concat();
    let t = compile_yaml(&yaml);
    assert!(t.diagnostics().is_empty(), "{:?}", t.diagnostics());
    assert_eq!(
        secret_for(&t, Some("shop.example.com")).as_deref(),
        Some("shop")
    );
    assert_eq!(
        secret_for(&t, Some("SHOP.example.com")).as_deref(),
        Some("shop")
    );
    assert_eq!(
        secret_for(&t, Some("api.example.com")).as_deref(),
        Some("wild")
    );
    assert_eq!(
        secret_for(&t, Some("a.b.example.com")).as_deref(),
        Some("fallback")
    );
    assert_eq!(secret_for(&t, None).as_deref(), Some("fallback"));
    assert_eq!(t.certificates().len(), 3);
}

#[test]
fn bad_and_missing_secrets_are_diagnosed_and_others_still_served() {
    let broken = "---\napiVersion: v1\nkind: Secret\nmetadata: { name: broken, namespace: default }\ntype: kubernetes.io/tls\nstringData:\n  tls.crt: \"-----BEGIN CERTIFICATE-----\\nnot base64\\n-----END CERTIFICATE-----\\n\"\n  tls.key: nope\n";
    let yaml = [
        cert_secret("good", &["good.test"]),
        broken.to_owned(),
        tls_ingress(
            "a",
            "2024-01-01T00:00:00Z",
            "  - { hosts: [good.test], secretName: good }\n  - { hosts: [broken.test], secretName: broken }\n  - { hosts: [missing.test], secretName: missing }",
        ),
    ]
    .concat();
    let t = compile_yaml(&yaml);
    let codes: Vec<_> = t.diagnostics().iter().map(|d| d.code).collect();
    assert_eq!(codes, ["invalid-tls-secret", "missing-secret"]);
    assert_eq!(
        t.diagnostics()[0].origin.key.as_deref(),
        Some("spec.tls[1].secretName")
    );
    assert_eq!(secret_for(&t, Some("good.test")).as_deref(), Some("good"));
    assert_eq!(secret_for(&t, Some("broken.test")), None);
}

#[test]
fn oldest_ingress_wins_a_tls_host() {
    let yaml = [
        cert_secret("one", &["a.test"]),
        cert_secret("two", &["a.test"]),
        tls_ingress(
            "newer",
            "2024-03-01T00:00:00Z",
            "  - { hosts: [a.test], secretName: two }",
        ),
        tls_ingress(
            "older",
            "2024-01-01T00:00:00Z",
            "  - { hosts: [a.test], secretName: one }",
        ),
    ]
    .concat();
    let t = compile_yaml(&yaml);
    assert_eq!(secret_for(&t, Some("a.test")).as_deref(), Some("one"));
    let d = &t.diagnostics()[0];
    assert_eq!(d.code, "duplicate-tls");
    assert!(d.message.contains("Ingress default/older"), "{d}");
}

#[test]
fn tls_host_not_covered_by_its_certificate_is_an_error() {
    let yaml = [
        cert_secret("shop", &["shop.example.com", "*.api.example.com"]),
        tls_ingress(
            "a",
            "2024-01-01T00:00:00Z",
            "  - { hosts: [shop.example.com, v1.api.example.com, \"*.api.example.com\", other.example.com, \"*.example.com\"], secretName: shop }",
        ),
    ]
    .concat();
    let t = compile_yaml(&yaml);
    let bad: Vec<_> = t
        .diagnostics()
        .iter()
        .map(|d| (d.code, d.value.clone().unwrap_or_default()))
        .collect();
    assert_eq!(
        bad,
        [
            ("tls-host-not-covered", "other.example.com".to_owned()),
            ("tls-host-not-covered", "*.example.com".to_owned()),
        ]
    );
    let d = &t.diagnostics()[0];
    assert!(
        d.message
            .contains("names shop.example.com, *.api.example.com"),
        "{d}"
    );
    assert_eq!(d.origin.key.as_deref(), Some("spec.tls[0].hosts"));
}
