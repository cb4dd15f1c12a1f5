//! Annotation diagnostics, references and security annotations that fail closed.

use super::*;

#[test]
fn annotation_diagnostics_are_in_the_table() {
    let mut yaml = services();
    yaml += &with_annotations(
        ingress(
            "a",
            "2024-01-01T00:00:00Z",
            &path_rule("a.test", &[("/", "Prefix", "s1")]),
        ),
        "nginx.ingress.kubernetes.io/proxy-read-timeout: ten, nginx.ingress.kubernetes.io/server-snippet: x",
    );
    let t = table(&yaml);
    let codes: Vec<_> = t.diagnostics().iter().map(|d| d.code).collect();
    assert_eq!(codes, ["invalid-value", "refused-annotation"]);
    assert_eq!(who(&t, "a.test", "/"), Some(1));
}

#[test]
fn a_bad_security_annotation_makes_the_routes_answer_503() {
    let mut yaml = services();
    yaml += &with_annotations(
        ingress(
            "locked",
            "2024-01-01T00:00:00Z",
            &path_rule("a.test", &[("/", "Prefix", "s1")]),
        ),
        "nginx.ingress.kubernetes.io/whitelist-source-range: \"10.0.0.0/33\"",
    );
    yaml += &ingress(
        "open",
        "2024-01-01T00:00:00Z",
        &path_rule("b.test", &[("/", "Prefix", "s2")]),
    );
    let t = table(&yaml);
    let m = t
        .lookup(&RequestHead::new("a.test", "/"))
        .expect("the route is kept");
    assert!(m.cluster.is_none());
    assert!(
        matches!(&m.route.backend, crate::Backend::Unavailable { reason } if reason.contains("whitelist-source-range"))
    );
    assert_eq!(who(&t, "b.test", "/"), Some(2));
}

#[test]
fn secrets_named_by_security_annotations_must_exist_or_the_routes_answer_503() {
    let mut yaml = services();
    yaml += "\n---\napiVersion: v1\nkind: Secret\nmetadata: { name: users, namespace: default }\nstringData: { auth: \"admin:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\" }\n---\napiVersion: v1\nkind: Secret\nmetadata: { name: no-ca, namespace: default }\nstringData: { other: x }\n";
    yaml += &with_annotations(
        ingress(
            "ok",
            "2024-01-01T00:00:00Z",
            &path_rule("ok.test", &[("/", "Prefix", "s1")]),
        ),
        "nginx.ingress.kubernetes.io/auth-type: basic, nginx.ingress.kubernetes.io/auth-secret: users",
    );
    yaml += &with_annotations(
        ingress(
            "missing",
            "2024-01-01T00:00:00Z",
            &path_rule("missing.test", &[("/", "Prefix", "s1")]),
        ),
        "nginx.ingress.kubernetes.io/auth-type: basic, higress.io/auth-secret: nobody",
    );
    yaml += &with_annotations(
        ingress(
            "mtls",
            "2024-01-01T00:00:00Z",
            &path_rule("mtls.test", &[("/", "Prefix", "s1")]),
        ),
        "nginx.ingress.kubernetes.io/auth-tls-secret: no-ca, nginx.ingress.kubernetes.io/default-backend: nowhere",
    );
    let t = table(&yaml);
    let d: Vec<_> = t
        .diagnostics()
        .iter()
        .filter(|d| d.severity != Severity::Info && d.code != "not-applied")
        .map(|d| {
            (
                d.severity,
                d.code,
                d.origin.key.as_deref().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        d,
        [
            (
                Severity::Error,
                "missing-secret",
                "higress.io/auth-secret".to_owned()
            ),
            (
                Severity::Error,
                "invalid-secret",
                "nginx.ingress.kubernetes.io/auth-tls-secret".to_owned()
            ),
            (
                Severity::Warning,
                "missing-service",
                "nginx.ingress.kubernetes.io/default-backend".to_owned()
            ),
        ]
    );
    // The Secret exists and basic auth is enforced: the route is served, with its users.
    assert_eq!(who(&t, "ok.test", "/"), Some(1));
    let m = t.lookup(&RequestHead::new("ok.test", "/")).unwrap();
    let auth = m
        .route
        .policy
        .as_ref()
        .and_then(|p| p.auth.as_ref())
        .unwrap();
    let basic = auth.basic.as_ref().unwrap();
    assert_eq!(
        basic.user("admin").map(|h| h.kind),
        Some(crate::HashKind::Sha1)
    );
    assert_eq!(who(&t, "missing.test", "/"), None);
    assert_eq!(who(&t, "mtls.test", "/"), None);
}

/// Every security annotation the parser accepts is enforced by a registered policy, but
/// for the upstream TLS keys (the data plane does not speak TLS to upstreams yet): those
/// are left to the `security-not-enforced` safety net, which closes their routes.
#[test]
fn every_accepted_security_annotation_is_enforced_or_closes_its_routes() {
    let unenforced: Vec<&str> = mse_annotations::KEYS
        .iter()
        .filter(|k| k.security)
        .filter(|k| {
            matches!(
                k.support,
                mse_annotations::Support::Supported | mse_annotations::Support::Different(_)
            )
        })
        .filter(|k| crate::policy::applies(k).is_none())
        .map(|k| k.name)
        .collect();
    assert_eq!(unenforced, ["proxy-ssl-secret", "proxy-ssl-verify"]);
    let mut yaml = services();
    yaml += &ingress(
        "open",
        "2024-01-01T00:00:00Z",
        &path_rule("open.test", &[("/", "Prefix", "s1")]),
    );
    yaml += &ingress("tls", "2024-01-01T00:00:00Z", &path_rule("tls.test", &[("/", "Prefix", "s1")]))
        .replace(
            "creationTimestamp",
            "annotations: { nginx.ingress.kubernetes.io/backend-protocol: HTTPS, nginx.ingress.kubernetes.io/proxy-ssl-verify: \"on\", nginx.ingress.kubernetes.io/proxy-ssl-secret: default/upstream-ca }, creationTimestamp",
        );
    yaml += "\n---\napiVersion: v1\nkind: Secret\nmetadata: { name: upstream-ca, namespace: default }\nstringData: { ca.crt: x }\n";
    let t = table(&yaml);
    assert_eq!(who(&t, "open.test", "/"), Some(1));
    let m = t.lookup(&RequestHead::new("tls.test", "/")).unwrap();
    assert!(
        matches!(m.route.backend, crate::Backend::Unavailable { .. }),
        "{:?}",
        m.route.backend
    );
    let keys: Vec<_> = t
        .diagnostics()
        .iter()
        .filter(|d| d.code == "security-not-enforced")
        .map(|d| d.origin.key.as_deref())
        .collect();
    assert_eq!(
        keys,
        [
            Some("nginx.ingress.kubernetes.io/proxy-ssl-secret"),
            Some("nginx.ingress.kubernetes.io/proxy-ssl-verify")
        ]
    );
}

#[test]
fn valid_annotations_the_data_plane_does_not_apply_yet_are_reported() {
    let mut yaml = services();
    yaml += &ingress(
        "a",
        "2024-01-01T00:00:00Z",
        &path_rule("a.test", &[("/", "Prefix", "s1")]),
    )
    .replace(
        "creationTimestamp",
        "annotations: { nginx.ingress.kubernetes.io/rewrite-target: /$1, nginx.ingress.kubernetes.io/app-root: /app, nginx.ingress.kubernetes.io/proxy-send-timeout: \"5\", nginx.ingress.kubernetes.io/proxy-read-timeout: ten }, creationTimestamp",
    );
    let t = table(&yaml);
    let d: Vec<_> = t
        .diagnostics()
        .iter()
        .map(|d| (d.code, d.origin.key.as_deref().unwrap_or("")))
        .collect();
    // The bad value has its own diagnostic; the valid timeout is reported as not applied,
    // the applied app-root and rewrite-target are not.
    assert!(
        !d.contains(&("not-applied", "nginx.ingress.kubernetes.io/rewrite-target")),
        "{d:?}"
    );
    assert!(
        d.contains(&(
            "not-applied",
            "nginx.ingress.kubernetes.io/proxy-send-timeout"
        )),
        "{d:?}"
    );
    assert!(
        !d.contains(&("not-applied", "nginx.ingress.kubernetes.io/app-root")),
        "{d:?}"
    );
    assert!(
        !d.contains(&(
            "not-applied",
            "nginx.ingress.kubernetes.io/proxy-read-timeout"
        )),
        "{d:?}"
    );
    // The route itself is served (`/` itself is app-root's redirect).
    assert_eq!(who(&t, "a.test", "/x"), Some(1));
}
