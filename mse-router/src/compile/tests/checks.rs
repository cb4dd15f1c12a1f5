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

/// Every security annotation the parser accepts is enforced by a registered policy; the
/// `security-not-enforced` safety net is left for keys added before their policy. The
/// upstream TLS keys are enforced by the upstream protocol: an unusable CA closes the
/// routes, a usable one goes into the cluster.
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
    assert!(unenforced.is_empty(), "{unenforced:?}");
    let ca = rcgen::generate_simple_self_signed(vec!["ca.test".to_owned()]).unwrap();
    let ca_pem = ca.cert.pem().replace('\n', "\n      ");
    let upstream_tls = |name: &str, secret: &str| {
        ingress(name, "2024-01-01T00:00:00Z", &path_rule(&format!("{name}.test"), &[("/", "Prefix", "s1")]))
            .replace(
                "creationTimestamp",
                &format!("annotations: {{ nginx.ingress.kubernetes.io/backend-protocol: HTTPS, nginx.ingress.kubernetes.io/proxy-ssl-verify: \"on\", nginx.ingress.kubernetes.io/proxy-ssl-secret: {secret} }}, creationTimestamp"),
            )
    };
    let mut yaml = services();
    yaml += &ingress(
        "open",
        "2024-01-01T00:00:00Z",
        &path_rule("open.test", &[("/", "Prefix", "s1")]),
    );
    yaml += &upstream_tls("bad", "default/bad-ca");
    yaml += &upstream_tls("good", "good-ca");
    yaml += "\n---\napiVersion: v1\nkind: Secret\nmetadata: { name: bad-ca, namespace: default }\nstringData: { ca.crt: x }\n";
    yaml += &format!(
        "\n---\napiVersion: v1\nkind: Secret\nmetadata: {{ name: good-ca, namespace: default }}\nstringData:\n  ca.crt: |\n      {ca_pem}\n"
    );
    let t = table(&yaml);
    assert_eq!(who(&t, "open.test", "/"), Some(1));
    let m = t.lookup(&RequestHead::new("bad.test", "/")).unwrap();
    assert!(
        matches!(m.route.backend, crate::Backend::Unavailable { .. }),
        "{:?}",
        m.route.backend
    );
    let d: Vec<_> = t
        .diagnostics()
        .iter()
        .filter(|d| d.code == "invalid-secret")
        .map(ToString::to_string)
        .collect();
    assert_eq!(d.len(), 1, "{d:?}");
    assert!(d[0].contains("Ingress default/bad: nginx.ingress.kubernetes.io/proxy-ssl-secret: Secret default/bad-ca: ca.crt"), "{}", d[0]);
    assert!(d[0].contains("(value \"default/bad-ca\")"), "{}", d[0]);
    let m = t.lookup(&RequestHead::new("good.test", "/")).unwrap();
    let crate::Backend::Cluster(id) = m.route.backend else {
        panic!("{:?}", m.route.backend)
    };
    let p = t
        .cluster(id)
        .protocol
        .as_deref()
        .expect("an upstream protocol");
    let tls = p.tls.as_ref().expect("TLS");
    assert!(!p.http2 && tls.ca.is_some() && tls.client.is_none());
    assert!(
        !t.diagnostics()
            .iter()
            .any(|d| d.code == "security-not-enforced"),
        "{:?}",
        t.diagnostics()
    );
}

#[test]
fn valid_annotations_the_data_plane_applies_are_not_reported_as_not_applied() {
    let mut yaml = services();
    yaml += &ingress(
        "a",
        "2024-01-01T00:00:00Z",
        &path_rule("a.test", &[("/", "Prefix", "s1")]),
    )
    .replace(
        "creationTimestamp",
        "annotations: { nginx.ingress.kubernetes.io/rewrite-target: /$1, nginx.ingress.kubernetes.io/app-root: /app, nginx.ingress.kubernetes.io/proxy-send-timeout: \"5\", mse.ingress.kubernetes.io/warmup: \"30\", nginx.ingress.kubernetes.io/proxy-read-timeout: ten }, creationTimestamp",
    );
    let t = table(&yaml);
    let d: Vec<_> = t
        .diagnostics()
        .iter()
        .map(|d| (d.code, d.origin.key.as_deref().unwrap_or("")))
        .collect();
    // The bad value has its own diagnostic. Every valid key is applied by now, so none of
    // them is reported as not applied: the warning is left for keys with a
    // `backend-protocol` (below).
    assert!(
        !d.contains(&("not-applied", "nginx.ingress.kubernetes.io/rewrite-target")),
        "{d:?}"
    );
    assert!(
        !d.contains(&("not-applied", "mse.ingress.kubernetes.io/warmup")),
        "{d:?}"
    );
    assert!(!d.iter().any(|(code, _)| *code == "not-applied"), "{d:?}");
    assert!(
        !d.contains(&(
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

#[test]
fn mirrors_and_error_pages_are_reported_as_not_applied_with_a_backend_protocol() {
    let mut yaml = services();
    yaml += &ingress("g", "2024-01-01T00:00:00Z", &path_rule("g.test", &[("/", "Prefix", "s1")]))
        .replace(
            "creationTimestamp",
            "annotations: { nginx.ingress.kubernetes.io/backend-protocol: GRPC, nginx.ingress.kubernetes.io/proxy-next-upstream-tries: \"3\", nginx.ingress.kubernetes.io/custom-http-errors: \"503\", nginx.ingress.kubernetes.io/proxy-send-timeout: \"5\", mse.ingress.kubernetes.io/connection-policy-tcp-max-connection: \"10\" }, creationTimestamp",
        );
    let t = table(&yaml);
    assert_eq!(who(&t, "g.test", "/"), Some(1));
    let mut keys: Vec<_> = t
        .diagnostics()
        .iter()
        .filter(|d| d.code == "not-applied")
        .map(|d| d.origin.key.as_deref())
        .collect();
    // Retries apply to every upstream protocol.
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            Some("mse.ingress.kubernetes.io/connection-policy-tcp-max-connection"),
            Some("nginx.ingress.kubernetes.io/custom-http-errors"),
            Some("nginx.ingress.kubernetes.io/proxy-send-timeout"),
        ]
    );
}
