//! Fallback resolution: `default-backend`, `custom-http-errors` and the gateway-wide
//! default backend.

use mse_annotations::value::service_ref;
use mse_model::Severity;

use crate::{CompileOptions, FallbackPolicy, RequestHead, RouteTable};

/// Service `name` in `ns` with ports 80 (`http`) and 9090 (`admin`), each with one
/// ready address.
fn service(ns: &str, name: &str) -> String {
    format!(
        r#"
---
apiVersion: v1
kind: Service
metadata: {{ name: {name}, namespace: {ns} }}
spec:
  ports: [{{ name: http, port: 80, targetPort: 8080 }}, {{ name: admin, port: 9090 }}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {name}-abc
  namespace: {ns}
  labels: {{ kubernetes.io/service-name: {name} }}
addressType: IPv4
ports: [{{ name: http, port: 8080 }}, {{ name: admin, port: 9090 }}]
endpoints:
- addresses: ["10.0.0.1"]
"#
    )
}

/// Ingress `name` in `default`: host `name.test`, `/` to Service `app`, with annotations
/// (names without prefix).
fn ingress(name: &str, annotations: &[(&str, &str)]) -> String {
    let list = annotations
        .iter()
        .map(|(k, v)| format!("nginx.ingress.kubernetes.io/{k}: \"{v}\""))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        r#"
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{ name: {name}, namespace: default, annotations: {{ {list} }} }}
spec:
  ingressClassName: mse
  rules:
  - host: {name}.test
    http:
      paths:
      - {{ path: /, pathType: Prefix, backend: {{ service: {{ name: app, port: {{ number: 80 }} }} }} }}
"#
    )
}

fn compile_with(yaml: &str, default_backend: Option<&str>) -> RouteTable {
    let opts = CompileOptions {
        default_backend: default_backend.map(|r| service_ref(r).unwrap()),
        ..CompileOptions::default()
    };
    crate::compile::tests::table_with(yaml, &opts)
}

/// The fallback of the route serving `host` `/`.
fn fallback_of(t: &RouteTable, host: &str) -> Option<FallbackPolicy> {
    let m = t.lookup(&RequestHead::new(host, "/")).unwrap();
    m.route.policy.as_ref().and_then(|p| p.fallback.clone())
}

/// `(service name, port)` of a cluster.
fn named(t: &RouteTable, id: crate::ClusterId) -> (String, u16) {
    let c = t.cluster(id);
    (c.service.name.to_string(), c.port)
}

/// `(code, key)` of the Warning and Error diagnostics, `not-applied` included.
fn problems(t: &RouteTable) -> Vec<(&'static str, String)> {
    t.diagnostics()
        .iter()
        .filter(|d| d.severity >= Severity::Warning)
        .map(|d| (d.code, d.origin.key.as_deref().unwrap_or("").to_owned()))
        .collect()
}

#[test]
fn default_backend_uses_the_first_port_unless_one_is_given() {
    let yaml = [
        service("default", "app"),
        service("default", "errors"),
        service("other", "pages"),
        ingress("first", &[("default-backend", "errors")]),
        ingress("given", &[("default-backend", "errors:9090")]),
        ingress("elsewhere", &[("default-backend", "other/pages")]),
    ]
    .concat();
    let t = compile_with(&yaml, None);
    assert_eq!(problems(&t), []);
    for (host, service, port) in [
        ("first.test", "errors", 80),
        ("given.test", "errors", 9090),
        ("elsewhere.test", "pages", 80),
    ] {
        let f = fallback_of(&t, host).unwrap();
        assert_eq!(named(&t, f.cluster.unwrap()), (service.to_owned(), port));
        assert!(f.codes.is_empty());
    }
    assert!(t.default_backend().is_none());
}

#[test]
fn custom_http_errors_go_to_default_backend_else_to_the_gateway_default() {
    let yaml = [
        service("default", "app"),
        service("default", "errors"),
        service("infra", "fallback"),
        ingress(
            "own",
            &[
                ("default-backend", "errors"),
                ("custom-http-errors", "503, 404,404"),
            ],
        ),
        ingress("global", &[("custom-http-errors", "500")]),
    ]
    .concat();
    let t = compile_with(&yaml, Some("infra/fallback:9090"));
    assert_eq!(problems(&t), []);
    let own = fallback_of(&t, "own.test").unwrap();
    assert_eq!(&*own.codes, [404, 503]);
    assert!(own.intercepts(404) && own.intercepts(503) && !own.intercepts(500));
    assert_eq!(named(&t, own.cluster.unwrap()), ("errors".to_owned(), 80));
    let global = fallback_of(&t, "global.test").unwrap();
    assert_eq!((global.cluster, &*global.codes), (None, &[500][..]));
    let gw = t.default_backend().unwrap();
    assert_eq!(
        (&*gw.service.namespace, &*gw.service.name, gw.port),
        ("infra", "fallback", 9090)
    );
    assert_eq!(t.to_json()["default_backend"], gw.id.0);
}

#[test]
fn custom_http_errors_without_any_fallback_service_are_ignored() {
    let yaml = [
        service("default", "app"),
        ingress("alone", &[("custom-http-errors", "503")]),
        ingress(
            "broken",
            &[
                ("default-backend", "errors:81"),
                ("custom-http-errors", "503"),
            ],
        ),
        service("default", "errors"),
    ]
    .concat();
    let t = compile_with(&yaml, None);
    let key = "nginx.ingress.kubernetes.io/custom-http-errors".to_owned();
    assert_eq!(
        problems(&t),
        [
            ("ignored-annotation", key.clone()),
            (
                "missing-service-port",
                "nginx.ingress.kubernetes.io/default-backend".to_owned()
            ),
            ("ignored-annotation", key),
        ]
    );
    assert_eq!(fallback_of(&t, "alone.test"), None);
    assert_eq!(fallback_of(&t, "broken.test"), None);
}

#[test]
fn a_missing_default_backend_service_is_reported_once() {
    let yaml = [
        service("default", "app"),
        ingress(
            "lost",
            &[
                ("default-backend", "nowhere"),
                ("custom-http-errors", "404"),
            ],
        ),
    ]
    .concat();
    // The gateway default still answers the error codes.
    let t = compile_with(&yaml, Some("default/app"));
    assert_eq!(
        problems(&t),
        [(
            "missing-service",
            "nginx.ingress.kubernetes.io/default-backend".to_owned()
        )]
    );
    let f = fallback_of(&t, "lost.test").unwrap();
    assert_eq!((f.cluster, &*f.codes), (None, &[404][..]));
}

#[test]
fn a_gateway_default_backend_that_cannot_resolve_is_an_error_and_unmatched_gets_404() {
    let yaml = service("default", "app");
    for (given, code) in [
        ("infra/missing", "missing-service"),
        ("default/app:81", "missing-service-port"),
        ("app", "invalid-default-backend"),
    ] {
        let t = compile_with(&yaml, Some(given));
        let d: Vec<_> = t
            .diagnostics()
            .iter()
            .map(|d| (d.severity, d.code))
            .collect();
        assert_eq!(d, [(Severity::Error, code)], "{given}");
        assert!(t.default_backend().is_none());
        assert!(t.lookup(&RequestHead::new("any.test", "/")).is_none());
    }
    let t = compile_with(&yaml, Some("default/app"));
    assert_eq!(t.default_backend().map(|c| c.port), Some(80));
    assert!(t.diagnostics().is_empty(), "{:?}", t.diagnostics());
}

#[test]
fn routes_closed_by_a_security_annotation_get_no_fallback() {
    let yaml = [
        service("default", "app"),
        service("default", "errors"),
        ingress(
            "locked",
            &[
                ("default-backend", "errors"),
                ("custom-http-errors", "503"),
                ("whitelist-source-range", "not-a-cidr"),
            ],
        ),
    ]
    .concat();
    let t = compile_with(&yaml, Some("default/errors"));
    // The route answers 503 itself: neither the Ingress's nor the gateway's default
    // backend may serve it in its place.
    assert_eq!(fallback_of(&t, "locked.test"), None);
    let m = t.lookup(&RequestHead::new("locked.test", "/")).unwrap();
    assert!(m.cluster.is_none());
}
