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

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("    {l}\n")).collect()
}

fn ca_secret(name: &str) -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap();
    format!(
        "---\napiVersion: v1\nkind: Secret\nmetadata: {{ name: {name}, namespace: default }}\nstringData:\n  ca.crt: |\n{}",
        indent(&cert.pem())
    )
}

fn annotated(name: &str, created: &str, host: &str, annotations: &str) -> String {
    format!(
        "---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: {name}\n  namespace: default\n  creationTimestamp: \"{created}\"\n  annotations: {{ {annotations} }}\nspec:\n  ingressClassName: mse\n  rules: [{{ host: \"{host}\", http: {{ paths: [{{ path: /, pathType: Prefix, backend: {{ service: {{ name: s, port: {{ number: 80 }} }} }} }}] }} }}]\n"
    )
}

#[test]
fn hosts_get_their_own_tls_policy_and_others_the_default() {
    let yaml = [
        ca_secret("ca"),
        annotated(
            "wild",
            "2024-01-01T00:00:00Z",
            "*.example.com",
            "nginx.ingress.kubernetes.io/auth-tls-secret: ca, nginx.ingress.kubernetes.io/auth-tls-verify-client: optional",
        ),
        annotated(
            "plain",
            "2024-01-01T00:00:00Z",
            "plain.example.com",
            "a: b",
        ),
        annotated(
            "v13",
            "2024-01-01T00:00:00Z",
            "new.test",
            "nginx.ingress.kubernetes.io/tls-min-protocol-version: TLSv1.3",
        ),
    ]
    .concat();
    let t = compile_yaml(&yaml);
    let errors: Vec<_> = t
        .diagnostics()
        .iter()
        .filter(|d| d.severity == mse_model::Severity::Error && d.code != "missing-service")
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(t.tls_policies().len(), 3);
    let wild = t.tls_policy(t.tls_for(Some("api.example.com")).policy);
    let client = wild.client.as_ref().unwrap();
    assert_eq!(client.verify, mse_router::VerifyClient::Optional);
    assert_eq!(client.secret.name.as_ref(), "ca");
    assert_eq!(client.roots.len(), 1);
    // A host with routes of its own does not take the wildcard's policy.
    assert_eq!(
        t.tls_for(Some("plain.example.com")).policy,
        mse_router::TlsPolicyId::DEFAULT
    );
    let v13 = t.tls_policy(t.tls_for(Some("new.test")).policy);
    assert_eq!(v13.min_version, mse_router::TlsVersion::V1_3);
    assert!(v13.client.is_none());
    assert_eq!(t.tls_for(None).policy, mse_router::TlsPolicyId::DEFAULT);
    assert!(t.has_client_auth());
    // `/debug/routes` shows the policies and the hosts that have one.
    let json = t.to_json();
    let wild_id = &json["tls"]["hosts"]["*.example.com"];
    let policy = &json["tls"]["policies"][wild_id.as_u64().unwrap() as usize];
    assert_eq!(
        policy["client_certificates"]["verify"], "optional",
        "{json}"
    );
    assert_eq!(policy["client_certificates"]["secret"], "default/ca");
    assert_eq!(json["tls"]["hosts"]["plain.example.com"], 0);
    assert_eq!(json["tls"]["policies"][0]["min_version"], "TLSv1.2");
}

#[test]
fn other_client_certificate_settings_on_a_host_close_the_newer_ingress() {
    let yaml = [
        ca_secret("ca"),
        ca_secret("other-ca"),
        annotated(
            "older",
            "2024-01-01T00:00:00Z",
            "a.test",
            "nginx.ingress.kubernetes.io/auth-tls-secret: ca",
        ),
        annotated(
            "newer",
            "2024-02-01T00:00:00Z",
            "a.test",
            "nginx.ingress.kubernetes.io/auth-tls-secret: other-ca",
        ),
    ]
    .concat();
    let t = compile_yaml(&yaml);
    let d: Vec<_> = t
        .diagnostics()
        .iter()
        .filter(|d| d.code == "tls-policy-conflict")
        .collect();
    assert_eq!(d.len(), 1, "{:?}", t.diagnostics());
    assert_eq!(d[0].origin.object.as_ref().unwrap().name.as_ref(), "newer");
    assert!(d[0].message.contains("Ingress default/older"), "{}", d[0]);
    let policy = t.tls_policy(t.tls_for(Some("a.test")).policy);
    assert_eq!(policy.client.as_ref().unwrap().secret.name.as_ref(), "ca");
    assert!(
        !t.diagnostics()
            .iter()
            .any(|d| d.code == "security-not-enforced"),
        "{:?}",
        t.diagnostics()
    );
}

#[test]
fn a_ca_secret_that_is_not_pem_fails_closed() {
    let yaml = [
        "---\napiVersion: v1\nkind: Secret\nmetadata: { name: ca, namespace: default }\nstringData:\n  ca.crt: nothing here\n".to_owned(),
        annotated(
            "a",
            "2024-01-01T00:00:00Z",
            "a.test",
            "nginx.ingress.kubernetes.io/auth-tls-secret: ca",
        ),
    ]
    .concat();
    let t = compile_yaml(&yaml);
    let d = t
        .diagnostics()
        .iter()
        .find(|d| d.code == "invalid-secret")
        .unwrap();
    assert!(d.message.contains("ca.crt holds no CERTIFICATE"), "{d}");
    assert!(!t.has_client_auth());
    let route = &t.routes()[0];
    assert!(
        matches!(route.backend, mse_router::Backend::Unavailable { .. }),
        "{route:?}"
    );
}

#[test]
fn an_expired_certificate_is_served_with_a_warning() {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["old.test".to_owned()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2001, 1, 1);
    params.not_after = rcgen::date_time_ymd(2002, 1, 1);
    let cert = params.self_signed(&key).unwrap();
    let secret = format!(
        "---\napiVersion: v1\nkind: Secret\nmetadata: {{ name: old, namespace: default }}\ntype: kubernetes.io/tls\nstringData:\n  tls.crt: |\n{}  tls.key: |\n{}",
        indent(&cert.pem()),
        indent(&key.serialize_pem())
    );
    let yaml = [
        secret,
        tls_ingress(
            "a",
            "2024-01-01T00:00:00Z",
            "  - { hosts: [tls.test], secretName: old }",
        ),
    ]
    .concat();
    let t = compile_yaml(&yaml);
    let d = t
        .diagnostics()
        .iter()
        .find(|d| d.code == "certificate-expired")
        .unwrap();
    assert_eq!(d.severity, mse_model::Severity::Warning);
    assert!(
        d.message
            .contains("Secret default/old expired at 2002-01-01T00:00:00Z"),
        "{d}"
    );
    assert_eq!(secret_for(&t, Some("tls.test")).as_deref(), Some("old"));
    assert_eq!(
        t.certificates()[0].validity,
        Some((978_307_200, 1_009_843_200))
    );
}
