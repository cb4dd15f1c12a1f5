//! Precedence and resolution rules, as a table of cases.

use mse_model::{Severity, Snapshot, load_manifests};

use crate::{CompileOptions, RequestHead, RouteTable, compile, normalize_path};

/// Builds a snapshot from YAML; every Service named in `svc(...)` gets a Service and an
/// EndpointSlice with one ready address whose last octet tells services apart.
fn table(yaml: &str) -> RouteTable {
    table_with(yaml, &CompileOptions::default())
}

/// Compiles `yaml` with `opts`, failing the test on any load error.
pub(crate) fn table_with(yaml: &str, opts: &CompileOptions) -> RouteTable {
    let loaded = load_manifests(yaml, Some("t.yaml"));
    assert!(
        loaded
            .diagnostics
            .iter()
            .all(|d| d.severity != Severity::Error),
        "{:?}",
        loaded.diagnostics
    );
    let mut s = Snapshot::default();
    s.extend(loaded.objects);
    compile(&s, opts)
}

pub(crate) fn service(name: &str, octet: u8) -> String {
    format!(
        r#"
---
apiVersion: v1
kind: Service
metadata: {{ name: {name}, namespace: default }}
spec:
  ports: [{{ name: http, port: 80, targetPort: 8080 }}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {name}-abc
  namespace: default
  labels: {{ kubernetes.io/service-name: {name} }}
addressType: IPv4
ports: [{{ name: http, port: 8080 }}]
endpoints:
- addresses: ["10.0.0.{octet}"]
  conditions: {{ ready: true }}
- addresses: ["10.0.1.{octet}"]
  conditions: {{ ready: false }}
"#
    )
}

fn ingress(name: &str, created: &str, rules: &str) -> String {
    format!(
        r#"
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{ name: {name}, namespace: default, creationTimestamp: "{created}" }}
spec:
  ingressClassName: mse
{rules}
"#
    )
}

/// Which service (by endpoint octet) answers `host` + `path`, or `None` for 404.
fn who(t: &RouteTable, host: &str, path: &str) -> Option<u8> {
    let path = normalize_path(path);
    let m = t.lookup(&RequestHead::new(host, &path))?;
    let c = m.cluster?;
    match &c.target {
        crate::ClusterTarget::Endpoints(a) => a.first().map(|a| match a.ip() {
            std::net::IpAddr::V4(v4) => v4.octets()[3],
            std::net::IpAddr::V6(_) => 0,
        }),
        crate::ClusterTarget::ExternalName { .. } => Some(0),
    }
}

fn services() -> String {
    (1..=9).map(|i| service(&format!("s{i}"), i)).collect()
}

fn path_rule(host: &str, entries: &[(&str, &str, &str)]) -> String {
    let mut s = String::from("  rules:\n");
    if host.is_empty() {
        s.push_str("  - http:\n      paths:\n");
    } else {
        s.push_str(&format!("  - host: \"{host}\"\n    http:\n      paths:\n"));
    }
    for (path, ty, svc) in entries {
        s.push_str(&format!(
            "      - {{ path: \"{path}\", pathType: {ty}, backend: {{ service: {{ name: {svc}, port: {{ number: 80 }} }} }} }}\n"
        ));
    }
    s
}

#[test]
fn precedence_table() {
    let mut yaml = services();
    yaml += &ingress(
        "a",
        "2024-01-01T00:00:00Z",
        &path_rule(
            "shop.example.com",
            &[
                ("/", "Prefix", "s1"),
                ("/api", "Prefix", "s2"),
                ("/api/v1", "Prefix", "s3"),
                ("/api", "Exact", "s4"),
            ],
        ),
    );
    yaml += &ingress(
        "b",
        "2024-01-02T00:00:00Z",
        &path_rule("*.example.com", &[("/", "Prefix", "s5")]),
    );
    yaml += &ingress(
        "c",
        "2024-01-03T00:00:00Z",
        &path_rule(
            "",
            &[
                ("/", "Prefix", "s6"),
                ("/static/", "ImplementationSpecific", "s7"),
            ],
        ),
    );
    let t = table(&yaml);
    let cases: &[(&str, &str, Option<u8>, &str)] = &[
        ("shop.example.com", "/", Some(1), "root prefix"),
        (
            "shop.example.com",
            "/api",
            Some(4),
            "exact beats prefix of the same path",
        ),
        (
            "shop.example.com",
            "/api/",
            Some(2),
            "exact does not match a trailing slash",
        ),
        ("shop.example.com", "/api/x", Some(2), "prefix by segment"),
        (
            "shop.example.com",
            "/apix",
            Some(1),
            "no partial segment match",
        ),
        (
            "shop.example.com",
            "/api/v1/orders",
            Some(3),
            "longest prefix wins",
        ),
        (
            "shop.example.com",
            "/api/v10",
            Some(2),
            "segment boundary on the longer prefix",
        ),
        (
            "SHOP.example.com:8080",
            "/api/v1",
            Some(3),
            "host case and port are ignored",
        ),
        (
            "shop.example.com",
            "/x/../api/v1",
            Some(3),
            "the path is normalised before matching",
        ),
        ("other.example.com", "/api", Some(5), "wildcard host"),
        (
            "a.b.example.com",
            "/",
            Some(6),
            "wildcard covers one label only",
        ),
        (
            "example.com",
            "/",
            Some(6),
            "wildcard does not cover the bare domain",
        ),
        (
            "unknown.test",
            "/static/app.js",
            Some(7),
            "ImplementationSpecific is a prefix",
        ),
        (
            "unknown.test",
            "/staticx",
            Some(6),
            "trailing slash on a prefix is ignored",
        ),
        ("", "/", Some(6), "no host header goes to the catch-all"),
    ];
    for (host, path, want, why) in cases {
        assert_eq!(who(&t, host, path), *want, "{why}: {host} {path}");
    }
    assert!(t.diagnostics().is_empty(), "{:?}", t.diagnostics());
}

#[test]
fn exact_host_does_not_fall_through_to_wildcard_or_catch_all() {
    let mut yaml = services();
    yaml += &ingress(
        "a",
        "2024-01-01T00:00:00Z",
        &path_rule("shop.example.com", &[("/api", "Prefix", "s1")]),
    );
    yaml += &ingress(
        "b",
        "2024-01-01T00:00:00Z",
        &path_rule("", &[("/", "Prefix", "s2")]),
    );
    let t = table(&yaml);
    assert_eq!(who(&t, "shop.example.com", "/api"), Some(1));
    assert_eq!(who(&t, "shop.example.com", "/other"), None);
    assert!(
        t.lookup(&RequestHead::new("shop.example.com", "/other"))
            .is_none()
    );
}

#[test]
fn oldest_ingress_wins_a_conflict_and_the_loser_names_the_winner() {
    let mut yaml = services();
    // Listed newest first: order in the input must not matter.
    yaml += &ingress(
        "new",
        "2024-05-01T00:00:00Z",
        &path_rule("a.test", &[("/x", "Prefix", "s2")]),
    );
    yaml += &ingress(
        "old",
        "2024-01-01T00:00:00Z",
        &path_rule("a.test", &[("/x/", "Prefix", "s1")]),
    );
    let t = table(&yaml);
    assert_eq!(who(&t, "a.test", "/x/y"), Some(1));
    let d: Vec<_> = t
        .diagnostics()
        .iter()
        .filter(|d| d.code == "duplicate-route")
        .collect();
    assert_eq!(d.len(), 1);
    assert_eq!(
        d[0].origin.object.as_ref().unwrap().to_string(),
        "Ingress default/new"
    );
    assert!(d[0].message.contains("Ingress default/old"), "{}", d[0]);
    assert!(d[0].to_string().starts_with("t.yaml:"), "{}", d[0]);
}

#[test]
fn same_age_conflict_is_broken_by_namespace_and_name() {
    let mut yaml = services();
    yaml += &ingress(
        "zeta",
        "2024-01-01T00:00:00Z",
        &path_rule("a.test", &[("/", "Prefix", "s2")]),
    );
    yaml += &ingress(
        "alpha",
        "2024-01-01T00:00:00Z",
        &path_rule("a.test", &[("/", "Prefix", "s1")]),
    );
    let t = table(&yaml);
    assert_eq!(who(&t, "a.test", "/"), Some(1));
}

#[test]
fn exact_and_prefix_of_one_path_do_not_conflict() {
    let mut yaml = services();
    yaml += &ingress(
        "a",
        "2024-01-01T00:00:00Z",
        &path_rule("a.test", &[("/x", "Prefix", "s1")]),
    );
    yaml += &ingress(
        "b",
        "2024-01-02T00:00:00Z",
        &path_rule("a.test", &[("/x", "Exact", "s2")]),
    );
    let t = table(&yaml);
    assert!(t.diagnostics().is_empty());
    assert_eq!(who(&t, "a.test", "/x"), Some(2));
    assert_eq!(who(&t, "a.test", "/x/1"), Some(1));
}

#[test]
fn default_backend_serves_what_no_rule_matches() {
    let mut yaml = services();
    yaml += &ingress(
        "a",
        "2024-01-01T00:00:00Z",
        &format!(
            "  defaultBackend: {{ service: {{ name: s9, port: {{ number: 80 }} }} }}\n{}",
            path_rule("a.test", &[("/api", "Prefix", "s1")])
        ),
    );
    let t = table(&yaml);
    assert_eq!(who(&t, "a.test", "/api"), Some(1));
    assert_eq!(who(&t, "a.test", "/else"), Some(9));
    assert_eq!(who(&t, "elsewhere.test", "/"), Some(9));
    let m = t.lookup(&RequestHead::new("a.test", "/else")).unwrap();
    assert!(m.route.default_backend);
    assert!(m.why().contains("default backend"), "{}", m.why());
}

#[test]
fn backend_by_port_name_and_target_port_resolution() {
    let yaml = r#"
apiVersion: v1
kind: Service
metadata: { name: web, namespace: default }
spec:
  ports:
  - { name: metrics, port: 9090, targetPort: 9091 }
  - { name: http, port: 80, targetPort: web }
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: web-1, namespace: default, labels: { kubernetes.io/service-name: web } }
addressType: IPv4
ports: [{ name: http, port: 3000 }, { name: metrics, port: 9091 }]
endpoints:
- addresses: ["10.1.0.1"]
- addresses: ["10.1.0.2"]
  conditions: { ready: true }
- addresses: ["10.1.0.3"]
  conditions: { ready: false }
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: { name: web, namespace: default }
spec:
  ingressClassName: mse
  rules:
  - http:
      paths:
      - { path: /, pathType: Prefix, backend: { service: { name: web, port: { name: http } } } }
"#;
    let t = table(yaml);
    assert!(t.diagnostics().is_empty(), "{:?}", t.diagnostics());
    let m = t.lookup(&RequestHead::new("x", "/")).unwrap();
    let c = m.cluster.unwrap();
    assert_eq!(c.port, 80);
    assert_eq!(
        c.target,
        crate::ClusterTarget::Endpoints(
            vec![
                "10.1.0.1:3000".parse().unwrap(),
                "10.1.0.2:3000".parse().unwrap()
            ]
            .into()
        )
    );
}

#[test]
fn legacy_endpoints_are_used_when_a_service_has_no_slice() {
    let yaml = r#"
apiVersion: v1
kind: Service
metadata: { name: old, namespace: default }
spec: { ports: [{ port: 80, targetPort: 8080 }] }
---
apiVersion: v1
kind: Endpoints
metadata: { name: old, namespace: default }
subsets:
- addresses: [{ ip: "127.0.0.1" }]
  notReadyAddresses: [{ ip: "127.0.0.2" }]
  ports: [{ port: 8080 }]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: { name: old, namespace: default }
spec:
  ingressClassName: mse
  defaultBackend: { service: { name: old, port: { number: 80 } } }
"#;
    let t = table(yaml);
    let c = t
        .lookup(&RequestHead::new("x", "/"))
        .unwrap()
        .cluster
        .unwrap();
    assert_eq!(
        c.target,
        crate::ClusterTarget::Endpoints(vec!["127.0.0.1:8080".parse().unwrap()].into())
    );
}

#[test]
fn missing_service_port_and_endpoints_are_diagnosed_and_answer_503_alone() {
    let mut yaml = services();
    yaml += r#"
---
apiVersion: v1
kind: Service
metadata: { name: empty, namespace: default }
spec: { ports: [{ port: 80 }] }
"#;
    yaml += &ingress(
        "a",
        "2024-01-01T00:00:00Z",
        &path_rule(
            "a.test",
            &[
                ("/ok", "Prefix", "s1"),
                ("/gone", "Prefix", "nope"),
                ("/empty", "Prefix", "empty"),
            ],
        ),
    );
    yaml += &ingress(
        "b",
        "2024-01-01T00:00:00Z",
        "  rules:\n  - host: a.test\n    http:\n      paths:\n      - { path: /port, pathType: Prefix, backend: { service: { name: s2, port: { number: 81 } } } }\n",
    );
    let t = table(&yaml);
    let codes: Vec<_> = t.diagnostics().iter().map(|d| d.code).collect();
    assert_eq!(
        codes,
        ["missing-service", "no-endpoints", "missing-service-port"]
    );
    let missing = &t.diagnostics()[0];
    assert_eq!(
        missing.origin.key.as_deref(),
        Some("spec.rules[0].http.paths[1].backend.service")
    );
    assert_eq!(missing.value.as_deref(), Some("nope"));
    assert_eq!(who(&t, "a.test", "/ok"), Some(1));
    let gone = t.lookup(&RequestHead::new("a.test", "/gone")).unwrap();
    assert!(matches!(
        gone.route.backend,
        crate::Backend::Unavailable { .. }
    ));
    let empty = t.lookup(&RequestHead::new("a.test", "/empty")).unwrap();
    assert_eq!(
        empty.cluster.unwrap().target,
        crate::ClusterTarget::Endpoints(Vec::new().into())
    );
}

#[test]
fn class_selection() {
    let base = services();
    let ing = |name: &str, class: &str| {
        let class_line = if class.is_empty() {
            String::new()
        } else {
            format!("  ingressClassName: {class}\n")
        };
        format!(
            "\n---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{ name: {name}, namespace: default }}\nspec:\n{class_line}{}",
            path_rule(&format!("{name}.test"), &[("/", "Prefix", "s1")])
        )
    };
    let classes = r#"
---
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: { name: ours, annotations: { ingressclass.kubernetes.io/is-default-class: "true" } }
spec: { controller: mse.alibabacloud.com/ingress }
---
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: { name: mse }
spec: { controller: k8s.io/ingress-nginx }
"#;
    let legacy = "\n---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: { name: legacy, namespace: default, annotations: { kubernetes.io/ingress.class: ours } }\nspec:\n  ingressClassName: nginx\n  rules: [{ host: legacy.test, http: { paths: [{ path: /, pathType: Prefix, backend: { service: { name: s1, port: { number: 80 } } } }] } }]\n";
    let yaml = format!(
        "{base}{classes}{}{}{}{}{legacy}",
        ing("a", "ours"),
        ing("b", ""),
        ing("c", "mse"),
        ing("d", "nginx")
    );
    let t = table(&yaml);
    assert_eq!(
        who(&t, "a.test", "/"),
        Some(1),
        "class names our IngressClass"
    );
    assert_eq!(
        who(&t, "b.test", "/"),
        Some(1),
        "no class, our class is default"
    );
    assert_eq!(
        who(&t, "c.test", "/"),
        None,
        "the configured name belongs to another controller here"
    );
    assert_eq!(who(&t, "d.test", "/"), None, "another class");
    assert_eq!(
        who(&t, "legacy.test", "/"),
        Some(1),
        "the legacy annotation wins over spec"
    );
    assert!(
        t.diagnostics()
            .iter()
            .any(|d| d.code == "conflicting-ingress-class")
    );

    // Without IngressClass objects the configured class name is accepted, and unclassed
    // Ingresses are not served (with a note saying why).
    let t = table(&format!("{base}{}{}", ing("a", "mse"), ing("b", "")));
    assert_eq!(who(&t, "a.test", "/"), Some(1));
    assert_eq!(who(&t, "b.test", "/"), None);
    assert!(
        t.diagnostics()
            .iter()
            .any(|d| d.code == "ingress-not-selected")
    );
}

#[test]
fn invalid_paths_hosts_and_path_types_are_left_out_alone() {
    let mut yaml = services();
    yaml += &ingress(
        "a",
        "2024-01-01T00:00:00Z",
        "  rules:\n  - host: bad_host.test\n    http: { paths: [{ path: /, pathType: Prefix, backend: { service: { name: s1, port: { number: 80 } } } }] }\n  - host: ok.test\n    http:\n      paths:\n      - { path: nope, pathType: Prefix, backend: { service: { name: s1, port: { number: 80 } } } }\n      - { path: /weird, pathType: Regex, backend: { service: { name: s1, port: { number: 80 } } } }\n      - { path: /fine, pathType: Prefix, backend: { service: { name: s2, port: { number: 80 } } } }\n",
    );
    let t = table(&yaml);
    let codes: Vec<_> = t.diagnostics().iter().map(|d| d.code).collect();
    assert_eq!(codes, ["invalid-host", "invalid-path", "invalid-path-type"]);
    assert_eq!(who(&t, "ok.test", "/fine"), Some(2));
}

#[test]
fn canary_ingress_never_takes_over_the_main_route() {
    let mut yaml = services();
    yaml += &ingress(
        "main",
        "2024-02-01T00:00:00Z",
        &path_rule("a.test", &[("/", "Prefix", "s1")]),
    );
    let canary = ingress(
        "canary",
        "2024-01-01T00:00:00Z",
        &path_rule("a.test", &[("/", "Prefix", "s2")]),
    )
    .replace(
        "creationTimestamp",
        "annotations: { nginx.ingress.kubernetes.io/canary: \"true\" }, creationTimestamp",
    );
    yaml += &canary;
    let t = table(&yaml);
    assert_eq!(who(&t, "a.test", "/"), Some(1));
}

fn with_annotations(ingress: String, annotations: &str) -> String {
    ingress.replace(
        "creationTimestamp",
        &format!("annotations: {{ {annotations} }}, creationTimestamp"),
    )
}

#[test]
fn canary_yes_is_an_error_and_never_takes_over_even_when_older() {
    let mut yaml = services();
    yaml += &ingress(
        "main",
        "2024-02-01T00:00:00Z",
        &path_rule("a.test", &[("/", "Prefix", "s1")]),
    );
    yaml += &with_annotations(
        ingress(
            "canary",
            "2024-01-01T00:00:00Z",
            &path_rule("a.test", &[("/", "Prefix", "s2")]),
        ),
        "nginx.ingress.kubernetes.io/canary: \"yes\"",
    );
    let t = table(&yaml);
    assert_eq!(who(&t, "a.test", "/"), Some(1));
    let d: Vec<_> = t
        .diagnostics()
        .iter()
        .map(|d| {
            (
                d.severity,
                d.code,
                d.origin.object.as_ref().map(|o| o.name.to_string()),
            )
        })
        .collect();
    assert_eq!(
        d,
        [(Severity::Error, "invalid-canary", Some("canary".to_owned()))]
    );
}

#[test]
fn canary_without_a_main_ingress_is_warned() {
    let mut yaml = services();
    yaml += &ingress(
        "main",
        "2024-01-01T00:00:00Z",
        &path_rule("a.test", &[("/", "Prefix", "s1")]),
    );
    yaml += &with_annotations(
        ingress(
            "paired",
            "2024-02-01T00:00:00Z",
            &path_rule("a.test", &[("/", "Prefix", "s2")]),
        ),
        "nginx.ingress.kubernetes.io/canary: \"true\", nginx.ingress.kubernetes.io/canary-weight: \"10\"",
    );
    yaml += &with_annotations(
        ingress(
            "lonely",
            "2024-02-01T00:00:00Z",
            &path_rule("a.test", &[("/api", "Prefix", "s2")]),
        ),
        "nginx.ingress.kubernetes.io/canary: \"true\", nginx.ingress.kubernetes.io/canary-weight: \"10\"",
    );
    let t = table(&yaml);
    let lonely: Vec<_> = t
        .diagnostics()
        .iter()
        .filter(|d| d.code == "canary-without-main")
        .collect();
    assert_eq!(lonely.len(), 1, "{:#?}", t.diagnostics());
    assert_eq!(
        lonely[0].origin.object.as_ref().unwrap().name.as_ref(),
        "lonely"
    );
    assert_eq!(
        lonely[0].origin.key.as_deref(),
        Some("spec.rules[0].http.paths[0]")
    );
    assert!(
        lonely[0]
            .message
            .contains("host a.test and path Prefix /api pair"),
        "{}",
        lonely[0]
    );
}

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
    yaml += "\n---\napiVersion: v1\nkind: Secret\nmetadata: { name: users, namespace: default }\nstringData: { auth: \"admin:$apr1$x$y\" }\n---\napiVersion: v1\nkind: Secret\nmetadata: { name: no-ca, namespace: default }\nstringData: { other: x }\n";
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
            // The Secret exists, so only the missing enforcement closes these routes.
            (
                Severity::Error,
                "security-not-enforced",
                "nginx.ingress.kubernetes.io/auth-type".to_owned()
            ),
            (
                Severity::Error,
                "security-not-enforced",
                "nginx.ingress.kubernetes.io/auth-secret".to_owned()
            ),
        ]
    );
    assert_eq!(who(&t, "ok.test", "/"), None);
    assert_eq!(who(&t, "missing.test", "/"), None);
    assert_eq!(who(&t, "mtls.test", "/"), None);
}

#[test]
fn valid_security_annotations_not_yet_enforced_fail_closed() {
    let mut yaml = services();
    yaml += &ingress(
        "open",
        "2024-01-01T00:00:00Z",
        &path_rule("open.test", &[("/", "Prefix", "s1")]),
    );
    yaml += &ingress("guarded", "2024-01-01T00:00:00Z", &path_rule("guarded.test", &[("/", "Prefix", "s1")]))
        .replace(
            "creationTimestamp",
            "annotations: { nginx.ingress.kubernetes.io/whitelist-source-range: \"10.0.0.0/8\" }, creationTimestamp",
        );
    let t = table(&yaml);
    assert_eq!(who(&t, "open.test", "/"), Some(1));
    let m = t.lookup(&RequestHead::new("guarded.test", "/")).unwrap();
    assert!(
        matches!(m.route.backend, crate::Backend::Unavailable { .. }),
        "{:?}",
        m.route.backend
    );
    let d = t
        .diagnostics()
        .iter()
        .find(|d| d.code == "security-not-enforced")
        .unwrap();
    assert_eq!(
        d.origin.key.as_deref(),
        Some("nginx.ingress.kubernetes.io/whitelist-source-range")
    );
    assert_eq!(d.severity, Severity::Error);
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
        "annotations: { nginx.ingress.kubernetes.io/rewrite-target: /$1, nginx.ingress.kubernetes.io/app-root: /app, higress.io/timeout: \"5\", nginx.ingress.kubernetes.io/proxy-read-timeout: ten }, creationTimestamp",
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
    assert!(d.contains(&("not-applied", "higress.io/timeout")), "{d:?}");
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

/// Which service (by endpoint octet) answers `req`.
fn who_req(t: &RouteTable, req: &RequestHead<'_>) -> Option<u8> {
    let m = t.lookup(req)?;
    match &m.cluster?.target {
        crate::ClusterTarget::Endpoints(a) => a.first().map(|a| match a.ip() {
            std::net::IpAddr::V4(v4) => v4.octets()[3],
            std::net::IpAddr::V6(_) => 0,
        }),
        crate::ClusterTarget::ExternalName { .. } => Some(0),
    }
}

fn annotated(name: &str, created: &str, rules: &str, annotations: &str) -> String {
    with_annotations(ingress(name, created, rules), annotations)
}

fn errors(t: &RouteTable) -> Vec<(&'static str, String)> {
    t.diagnostics()
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| (d.code, d.message.to_string()))
        .collect()
}

#[test]
fn match_conditions_take_part_in_route_identity_and_order() {
    let mut yaml = services();
    let api = path_rule("a.test", &[("/api", "Prefix", "s1")]);
    yaml += &ingress("plain", "2024-01-01T00:00:00Z", &api);
    yaml += &annotated(
        "by-header",
        "2024-01-02T00:00:00Z",
        &path_rule("a.test", &[("/api", "Prefix", "s2")]),
        "higress.io/exact-match-header-x-env: dev",
    );
    yaml += &annotated(
        "by-method",
        "2024-01-03T00:00:00Z",
        &path_rule("a.test", &[("/api", "Prefix", "s3")]),
        "higress.io/match-method: POST PUT",
    );
    yaml += &annotated(
        "by-query",
        "2024-01-04T00:00:00Z",
        &path_rule("a.test", &[("/api", "Prefix", "s4")]),
        "higress.io/prefix-match-query-v: \"2\"",
    );
    yaml += &annotated(
        "by-authority",
        "2024-01-05T00:00:00Z",
        &path_rule("a.test", &[("/api/v1", "Prefix", "s5")]),
        "higress.io/regex-match-pseudo-header-authority: \"a\\\\.test:8080\"",
    );
    // Same path and conditions as by-header: a duplicate, left out.
    yaml += &annotated(
        "dup",
        "2024-01-06T00:00:00Z",
        &path_rule("a.test", &[("/api", "Prefix", "s6")]),
        "nginx.ingress.kubernetes.io/exact-match-header-x-env: dev",
    );
    let t = table(&yaml);
    let mut h = http::HeaderMap::new();
    h.insert("x-env", "dev".parse().unwrap());
    let none = http::HeaderMap::new();
    let get = |path: &'static str, headers: &'static http::HeaderMap| {
        RequestHead::new("a.test", path).headers(headers)
    };
    let h: &'static http::HeaderMap = Box::leak(Box::new(h));
    let none: &'static http::HeaderMap = Box::leak(Box::new(none));
    assert_eq!(who_req(&t, &get("/api/x", none)), Some(1));
    assert_eq!(
        who_req(&t, &get("/api/x", h)),
        Some(2),
        "header condition first"
    );
    assert_eq!(who_req(&t, &get("/api", none).method("POST")), Some(3));
    assert_eq!(
        who_req(&t, &get("/api", h).method("PUT")),
        Some(3),
        "a method condition sorts before header conditions"
    );
    assert_eq!(
        who_req(&t, &get("/api", none).query(Some("a=1&v=23"))),
        Some(4)
    );
    assert_eq!(who_req(&t, &get("/api", none).query(Some("v=3"))), Some(1));
    // The longer path's condition fails: the shorter prefix serves.
    assert_eq!(who_req(&t, &get("/api/v1/x", none)), Some(1));
    let v1 = RequestHead::new("a.test:8080", "/api/v1/x");
    assert_eq!(who_req(&t, &v1), Some(5));
    let dups: Vec<_> = errors(&t)
        .into_iter()
        .filter(|(c, _)| *c == "duplicate-route")
        .collect();
    assert_eq!(dups.len(), 1, "{dups:?}");
    assert!(dups[0].1.contains("header x-env = dev"), "{dups:?}");
    assert!(dups[0].1.contains("default/by-header"), "{dups:?}");
}

#[test]
fn regex_paths_come_after_exact_and_prefix_but_before_the_catch_all() {
    let mut yaml = services();
    yaml += &ingress(
        "plain",
        "2024-01-01T00:00:00Z",
        &path_rule(
            "a.test",
            &[("/", "Prefix", "s1"), ("/user", "Prefix", "s2")],
        ),
    );
    yaml += &annotated(
        "regex",
        "2024-01-02T00:00:00Z",
        &path_rule(
            "a.test",
            &[
                ("/user/[0-9]+", "ImplementationSpecific", "s3"),
                ("/item/[0-9]+", "ImplementationSpecific", "s4"),
            ],
        ),
        "nginx.ingress.kubernetes.io/use-regex: \"true\"",
    );
    yaml += &annotated(
        "full",
        "2024-01-03T00:00:00Z",
        &path_rule("a.test", &[("/f/[0-9]+", "Prefix", "s5")]),
        "higress.io/full-path-regex: \"true\"",
    );
    let t = table(&yaml);
    assert_eq!(who(&t, "a.test", "/user/12"), Some(2), "Prefix beats regex");
    assert_eq!(who(&t, "a.test", "/item/12/x"), Some(4), "a prefix regex");
    assert_eq!(
        who(&t, "a.test", "/item/x"),
        Some(1),
        "the catch-all comes last"
    );
    assert_eq!(who(&t, "a.test", "/f/12"), Some(5));
    assert_eq!(
        who(&t, "a.test", "/f/12/x"),
        Some(1),
        "a full regex is anchored at the end"
    );
    assert!(errors(&t).is_empty(), "{:?}", errors(&t));
    let order: Vec<String> = t
        .routes_in_order()
        .iter()
        .map(|r| r.path.to_string())
        .collect();
    assert_eq!(
        order,
        [
            "Prefix /user",
            "Regex /user/[0-9]+",
            "Regex /item/[0-9]+",
            "FullRegex /f/[0-9]+",
            "Prefix /"
        ]
    );
}

#[test]
fn many_regex_routes_match_through_one_set_in_the_same_order() {
    let mut yaml = services();
    let paths: Vec<(String, &str, &str)> = (0..12)
        .map(|i| {
            (
                format!("/r{i}/[a-z]+"),
                "ImplementationSpecific",
                if i % 2 == 0 { "s1" } else { "s2" },
            )
        })
        .collect();
    let paths: Vec<(&str, &str, &str)> =
        paths.iter().map(|(p, t, s)| (p.as_str(), *t, *s)).collect();
    let mut rules = path_rule("a.test", &paths);
    rules += "      - { path: \"/r1/[a-z]+/deeper\", pathType: ImplementationSpecific, backend: { service: { name: s3, port: { number: 80 } } } }\n";
    yaml += &annotated(
        "many",
        "2024-01-01T00:00:00Z",
        &rules,
        "nginx.ingress.kubernetes.io/use-regex: \"true\"",
    );
    let t = table(&yaml);
    assert_eq!(who(&t, "a.test", "/r4/abc"), Some(1));
    assert_eq!(who(&t, "a.test", "/r5/abc"), Some(2));
    assert_eq!(
        who(&t, "a.test", "/r1/abc/deeper/x"),
        Some(3),
        "longer pattern first"
    );
    assert_eq!(who(&t, "a.test", "/r5/123"), None);
}

#[test]
fn ignore_path_case_folds_exact_and_prefix_paths() {
    let mut yaml = services();
    yaml += &annotated(
        "docs",
        "2024-01-01T00:00:00Z",
        &path_rule(
            "a.test",
            &[("/Docs", "Prefix", "s4"), ("/About", "Exact", "s5")],
        ),
        "higress.io/ignore-path-case: \"true\"",
    );
    yaml += &ingress(
        "exact-case",
        "2024-01-02T00:00:00Z",
        &path_rule("a.test", &[("/docs/api", "Prefix", "s6")]),
    );
    let t = table(&yaml);
    assert_eq!(who(&t, "a.test", "/DOCS/x"), Some(4));
    assert_eq!(who(&t, "a.test", "/docs"), Some(4));
    assert_eq!(who(&t, "a.test", "/about"), Some(5));
    assert_eq!(who(&t, "a.test", "/about/x"), None);
    assert_eq!(
        who(&t, "a.test", "/docs/api/v1"),
        Some(6),
        "the longer prefix wins"
    );
    assert_eq!(
        who(&t, "a.test", "/DOCS/API/v1"),
        Some(4),
        "only the docs Ingress folds case"
    );
}

#[test]
fn rewrite_target_capture_groups_come_from_the_path_regex() {
    let mut yaml = services();
    yaml += &annotated(
        "groups",
        "2024-01-01T00:00:00Z",
        &path_rule(
            "a.test",
            &[("/something(/|$)(.*)", "ImplementationSpecific", "s1")],
        ),
        "nginx.ingress.kubernetes.io/use-regex: \"true\", nginx.ingress.kubernetes.io/rewrite-target: /$2",
    );
    // Capture groups alone make the path a regex (Higress); no use-regex needed.
    yaml += &annotated(
        "implied",
        "2024-01-02T00:00:00Z",
        &path_rule("b.test", &[("/api/(v[0-9])/(.*)", "Prefix", "s2")]),
        "nginx.ingress.kubernetes.io/rewrite-target: /$2?from=$1",
    );
    let t = table(&yaml);
    let rewrite = |host: &str, path: &str| {
        let m = t.lookup(&RequestHead::new(host, path)).unwrap();
        m.route
            .policy
            .as_ref()
            .unwrap()
            .rewrite_path(&m.route.path, path)
    };
    assert_eq!(rewrite("a.test", "/something").as_deref(), Some("/"));
    assert_eq!(rewrite("a.test", "/something/").as_deref(), Some("/"));
    assert_eq!(
        rewrite("a.test", "/something/new/x").as_deref(),
        Some("/new/x")
    );
    assert_eq!(
        rewrite("b.test", "/api/v2/users").as_deref(),
        Some("/users?from=v2")
    );
    assert!(t.lookup(&RequestHead::new("b.test", "/api/x")).is_none());
}

#[test]
fn a_regex_path_that_does_not_compile_is_left_out_alone() {
    let mut yaml = services();
    yaml += &annotated(
        "bad",
        "2024-01-01T00:00:00Z",
        &path_rule(
            "a.test",
            &[
                ("/a/(unclosed", "ImplementationSpecific", "s1"),
                ("/b", "Prefix", "s2"),
            ],
        ),
        "nginx.ingress.kubernetes.io/use-regex: \"true\"",
    );
    let t = table(&yaml);
    let e = errors(&t);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].0, "invalid-path");
    assert!(e[0].1.contains("use-regex"), "{e:?}");
    assert_eq!(who(&t, "a.test", "/b/x"), Some(2));
}

#[test]
fn server_alias_serves_the_same_routes_on_more_hosts() {
    let mut yaml = services();
    yaml += &annotated(
        "shop",
        "2024-01-01T00:00:00Z",
        &path_rule("shop.test", &[("/cart", "Prefix", "s3")]),
        "nginx.ingress.kubernetes.io/server-alias: \"www.shop.test, *.shop.example\"",
    );
    let t = table(&yaml);
    assert_eq!(who(&t, "shop.test", "/cart"), Some(3));
    assert_eq!(who(&t, "www.shop.test", "/cart/1"), Some(3));
    assert_eq!(who(&t, "eu.shop.example", "/cart"), Some(3));
    assert_eq!(who(&t, "www.shop.test", "/other"), None);
    assert!(t.diagnostics().iter().all(|d| d.code != "not-applied"));
}

fn canary(name: &str, created: &str, rules: &str, annotations: &str) -> String {
    let a = if annotations.is_empty() {
        "nginx.ingress.kubernetes.io/canary: \"true\"".to_owned()
    } else {
        format!("nginx.ingress.kubernetes.io/canary: \"true\", {annotations}")
    };
    annotated(name, created, rules, &a)
}

/// The octet of the service a request goes to, canaries included.
fn dest(t: &RouteTable, req: &RequestHead<'_>, roll: u32) -> Option<u8> {
    let m = t.lookup(req)?;
    let d = m.route.destination(req, roll);
    let crate::Backend::Cluster(c) = d.backend else {
        return None;
    };
    match &t.cluster(*c).target {
        crate::ClusterTarget::Endpoints(a) => a.first().map(|a| match a.ip() {
            std::net::IpAddr::V4(v4) => v4.octets()[3],
            std::net::IpAddr::V6(_) => 0,
        }),
        crate::ClusterTarget::ExternalName { .. } => Some(0),
    }
}

/// How many of 1000 evenly spread rolls go to each service octet.
fn spread(t: &RouteTable, req: &RequestHead<'_>) -> std::collections::BTreeMap<u8, u32> {
    let mut out = std::collections::BTreeMap::new();
    for i in 0..1000u32 {
        let roll = i * (crate::WEIGHT_SCALE / 1000);
        *out.entry(dest(t, req, roll).unwrap_or(0)).or_insert(0) += 1;
    }
    out
}

fn headers(pairs: &[(&'static str, &'static str)]) -> &'static http::HeaderMap {
    let mut h = http::HeaderMap::new();
    for (k, v) in pairs {
        h.append(*k, v.parse().unwrap());
    }
    Box::leak(Box::new(h))
}

#[test]
fn two_header_canaries_and_two_weight_canaries_share_one_path() {
    let mut yaml = services();
    let root = |svc: &'static str| path_rule("a.test", &[("/", "Prefix", svc)]);
    yaml += &ingress("main", "2024-01-01T00:00:00Z", &root("s1"));
    yaml += &canary(
        "by-header",
        "2024-01-02T00:00:00Z",
        &root("s2"),
        "nginx.ingress.kubernetes.io/canary-by-header: x-canary",
    );
    yaml += &canary(
        "by-value",
        "2024-01-03T00:00:00Z",
        &root("s3"),
        "nginx.ingress.kubernetes.io/canary-by-header: x-version, nginx.ingress.kubernetes.io/canary-by-header-value: v3",
    );
    yaml += &canary(
        "w30",
        "2024-01-04T00:00:00Z",
        &root("s4"),
        "nginx.ingress.kubernetes.io/canary-weight: \"30\"",
    );
    // Another namespace pairs too: namespaces are not part of the route key.
    yaml += &canary(
        "w20",
        "2024-01-05T00:00:00Z",
        &root("s5"),
        "nginx.ingress.kubernetes.io/canary-weight: \"20\"",
    )
    .replace(
        "namespace: default, annotations",
        "namespace: other, annotations",
    )
    .replace("name: s5", "name: s5-other");
    yaml += &service("s5-other", 5).replace("namespace: default", "namespace: other");
    let t = table(&yaml);
    assert!(errors(&t).is_empty(), "{:?}", errors(&t));
    let req = |h: &'static http::HeaderMap| RequestHead::new("a.test", "/x").headers(h);
    let none = headers(&[]);
    // Header canaries win whatever the roll.
    for roll in [0, 400_000, 999_999] {
        assert_eq!(
            dest(&t, &req(headers(&[("x-canary", "always")])), roll),
            Some(2)
        );
        assert_eq!(
            dest(&t, &req(headers(&[("x-version", "v3")])), roll),
            Some(3)
        );
        assert_eq!(
            dest(
                &t,
                &req(headers(&[("x-canary", "always"), ("x-version", "v3")])),
                roll
            ),
            Some(2),
            "the older canary wins when both match"
        );
    }
    // A value other than always/never, or another value, falls through to the weights.
    let spread_of = |h| spread(&t, &req(h));
    let want: std::collections::BTreeMap<u8, u32> = [(1, 500), (4, 300), (5, 200)].into();
    assert_eq!(spread_of(none), want);
    assert_eq!(spread_of(headers(&[("x-canary", "maybe")])), want);
    assert_eq!(spread_of(headers(&[("x-version", "v4")])), want);
    // `never` forbids only that canary; the weights still split the rest.
    assert_eq!(spread_of(headers(&[("x-canary", "never")])), want);
    let json = t.to_json().to_string();
    assert!(json.contains("\"share\":300000"), "{json}");
}

#[test]
fn within_one_canary_header_then_cookie_then_weight_and_never_forbids() {
    let mut yaml = services();
    let root = |svc: &'static str| path_rule("a.test", &[("/", "Prefix", svc)]);
    yaml += &ingress("main", "2024-01-01T00:00:00Z", &root("s1"));
    yaml += &canary(
        "all",
        "2024-01-02T00:00:00Z",
        &root("s2"),
        "nginx.ingress.kubernetes.io/canary-by-header: x-canary, nginx.ingress.kubernetes.io/canary-by-cookie: beta, nginx.ingress.kubernetes.io/canary-weight: \"100\"",
    );
    yaml += &canary(
        "by-query",
        "2024-01-03T00:00:00Z",
        &root("s3"),
        "mse.ingress.kubernetes.io/canary-by-query: ver, mse.ingress.kubernetes.io/canary-by-query-pattern: \"^v[0-9]+-beta$\"",
    );
    let t = table(&yaml);
    let at = |h: &'static http::HeaderMap, q: Option<&'static str>| {
        dest(&t, &RequestHead::new("a.test", "/").headers(h).query(q), 0)
    };
    assert_eq!(at(headers(&[]), None), Some(2), "weight 100");
    assert_eq!(
        at(headers(&[("x-canary", "never")]), None),
        Some(1),
        "never forbids, weight included"
    );
    assert_eq!(at(headers(&[("cookie", "a=1; beta=never")]), None), Some(1));
    assert_eq!(
        at(
            headers(&[("x-canary", "other"), ("cookie", "beta=never")]),
            None
        ),
        Some(1),
        "the header falls through to the cookie"
    );
    assert_eq!(
        at(headers(&[("x-canary", "never")]), Some("ver=v2-beta")),
        Some(3),
        "a forbidden canary does not stop the next one"
    );
}

#[test]
fn canary_falls_back_to_main_without_ready_endpoints_and_inherits_the_main_policy() {
    let mut yaml = services();
    yaml += &service("empty", 9).replace("ready: true", "ready: false");
    yaml += &annotated(
        "main",
        "2024-01-01T00:00:00Z",
        &path_rule("a.test", &[("/app", "Prefix", "s1")]),
        "higress.io/rewrite-path: /v1, higress.io/request-header-control-add: \"x-from main\"",
    );
    yaml += &canary(
        "empty-canary",
        "2024-01-02T00:00:00Z",
        &path_rule("a.test", &[("/app", "Prefix", "empty")]),
        "nginx.ingress.kubernetes.io/canary-by-header: x-empty",
    );
    yaml += &canary(
        "live",
        "2024-01-03T00:00:00Z",
        &path_rule("a.test", &[("/app", "Prefix", "s2")]),
        "nginx.ingress.kubernetes.io/canary-by-header: x-live, higress.io/request-header-control-add: \"x-from canary\", nginx.ingress.kubernetes.io/rewrite-target: /ignored",
    );
    let t = table(&yaml);
    let req = RequestHead::new("a.test", "/app/x").headers(headers(&[("x-empty", "always")]));
    assert_eq!(
        dest(&t, &req, 0),
        Some(1),
        "no ready endpoint: the main route serves"
    );
    let req = RequestHead::new("a.test", "/app/x").headers(headers(&[("x-live", "always")]));
    let m = t.lookup(&req).unwrap();
    let d = m.route.destination(&req, 0);
    assert_eq!(d.canary.unwrap().ingress.name.as_ref(), "live");
    let p = d.policy.unwrap();
    assert_eq!(
        p.rewrite_path(&m.route.path, "/app/x").as_deref(),
        Some("/v1/x"),
        "rewrite from main"
    );
    let mut h = http::HeaderMap::new();
    p.edit_request(&mut h);
    assert_eq!(h["x-from"], "canary", "header control from the canary");
}

#[test]
fn a_canary_must_repeat_the_main_routes_match_conditions_and_regex() {
    let mut yaml = services();
    yaml += &annotated(
        "main",
        "2024-01-01T00:00:00Z",
        &path_rule("a.test", &[("/api/[0-9]+", "ImplementationSpecific", "s1")]),
        "nginx.ingress.kubernetes.io/use-regex: \"true\", higress.io/exact-match-header-abc: \"1\"",
    );
    yaml += &canary(
        "missing-condition",
        "2024-01-02T00:00:00Z",
        &path_rule("a.test", &[("/api/[0-9]+", "ImplementationSpecific", "s2")]),
        "nginx.ingress.kubernetes.io/use-regex: \"true\", nginx.ingress.kubernetes.io/canary-weight: \"100\"",
    );
    yaml += &canary(
        "same-key",
        "2024-01-03T00:00:00Z",
        &path_rule("a.test", &[("/api/[0-9]+", "ImplementationSpecific", "s3")]),
        "nginx.ingress.kubernetes.io/use-regex: \"true\", higress.io/exact-match-header-abc: \"1\", nginx.ingress.kubernetes.io/canary-weight: \"100\"",
    );
    let t = table(&yaml);
    let req = RequestHead::new("a.test", "/api/7").headers(headers(&[("abc", "1")]));
    assert_eq!(dest(&t, &req, 0), Some(3));
    let lonely: Vec<_> = t
        .diagnostics()
        .iter()
        .filter(|d| d.code == "canary-without-main")
        .map(|d| d.origin.object.as_ref().unwrap().name.to_string())
        .collect();
    assert_eq!(lonely, ["missing-condition"]);
}

#[test]
fn weights_beyond_the_total_are_scaled_down_and_closed_mains_take_no_canary() {
    let mut yaml = services();
    let root = |svc: &'static str| path_rule("a.test", &[("/", "Prefix", svc)]);
    yaml += &ingress("main", "2024-01-01T00:00:00Z", &root("s1"));
    yaml += &canary(
        "a",
        "2024-01-02T00:00:00Z",
        &root("s2"),
        "nginx.ingress.kubernetes.io/canary-weight: \"80\"",
    );
    yaml += &canary(
        "b",
        "2024-01-03T00:00:00Z",
        &root("s3"),
        "nginx.ingress.kubernetes.io/canary-weight: \"40\", nginx.ingress.kubernetes.io/canary-weight-total: \"50\"",
    );
    let closed = |svc: &'static str| path_rule("c.test", &[("/", "Prefix", svc)]);
    yaml += &annotated(
        "locked",
        "2024-01-01T00:00:00Z",
        &closed("s1"),
        "nginx.ingress.kubernetes.io/whitelist-source-range: bad",
    );
    yaml += &canary(
        "sneaky",
        "2024-01-02T00:00:00Z",
        &closed("s2"),
        "nginx.ingress.kubernetes.io/canary-weight: \"100\"",
    );
    let t = table(&yaml);
    // 80% and 80% of the traffic asked: each gets half.
    let want: std::collections::BTreeMap<u8, u32> = [(2, 500), (3, 500)].into();
    assert_eq!(spread(&t, &RequestHead::new("a.test", "/")), want);
    assert_eq!(
        dest(&t, &RequestHead::new("c.test", "/"), 0),
        None,
        "503, never the canary"
    );
    assert!(
        t.diagnostics()
            .iter()
            .any(|d| d.code == "canary-main-closed")
    );
}
