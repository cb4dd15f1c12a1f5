//! Service port and endpoint resolution.

use super::*;

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
