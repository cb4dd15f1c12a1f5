use super::*;
use crate::AnnotationLines;

const INGRESS: &str = r#"apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: shop
spec:
  rules:
  - host: shop.example.com
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: shop
            port:
              number: 80
"#;

#[test]
fn single_document_without_marker_loads_with_default_namespace() {
    let l = load_manifests(INGRESS, Some("a.yaml"));
    assert!(l.diagnostics.is_empty(), "{:?}", l.diagnostics);
    assert_eq!(l.objects.len(), 1);
    let (obj, src) = &l.objects[0];
    assert_eq!(obj.key().to_string(), "Ingress default/shop");
    assert_eq!(src.as_ref().unwrap().to_string(), "a.yaml:1");
}

#[test]
fn malformed_document_is_reported_with_its_line_and_others_still_load() {
    let text = format!(
        "{INGRESS}---\napiVersion: v1\nkind: Service\nmetadata:\n  name: bad\n  labels: [unclosed\n---\n{}",
        INGRESS.replace("name: shop\n", "name: other\n")
    );
    let l = load_manifests(&text, Some("m.yaml"));
    assert_eq!(l.objects.len(), 2, "{:?}", l.diagnostics);
    assert_eq!(l.diagnostics.len(), 1);
    let d = l.diagnostics[0].to_string();
    // The unclosed flow sequence is on line 23 of the file.
    assert!(
        d.starts_with("m.yaml:23: error: malformed YAML in document 2:"),
        "{d}"
    );
    assert_eq!(l.diagnostics[0].severity, crate::Severity::Error);
    // The third document starts after the second marker.
    assert_eq!(l.objects[1].1.as_ref().unwrap().line, 24);
}

#[test]
fn schema_mismatch_names_the_object_and_line() {
    let text = "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: shop\nspec:\n  ports: 80\n";
    let l = load_manifests(text, Some("s.yaml"));
    assert!(l.objects.is_empty());
    let d = &l.diagnostics[0];
    assert_eq!(
        d.origin.object.as_ref().unwrap().to_string(),
        "Service shop/web"
    );
    assert_eq!(d.origin.source.as_ref().unwrap().line, 8, "{d}");
}

#[test]
fn unknown_kind_is_an_informational_note() {
    let text = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n";
    let l = load_manifests(text, None);
    assert!(l.objects.is_empty());
    assert_eq!(l.diagnostics[0].severity, crate::Severity::Info);
    assert_eq!(l.diagnostics[0].code, "unknown-kind");
}

#[test]
fn json_documents_and_lists_load() {
    let text = r#"--- {"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Service","metadata":{"name":"a","namespace":"n"}},{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}]}
--- {"apiVersion":"v1","kind":"Secret","metadata":{"name":"s"},"type":"kubernetes.io/tls","stringData":{"tls.crt":"x"}}
"#;
    let l = load_manifests(text, Some("j.json"));
    assert!(l.diagnostics.is_empty(), "{:?}", l.diagnostics);
    assert_eq!(l.objects.len(), 3);
    match &l.objects[2].0 {
        Object::Secret(s) => {
            assert_eq!(s.data.as_ref().unwrap()["tls.crt"].0, b"x");
            assert_eq!(l.objects[2].1.as_ref().unwrap().line, 2);
        }
        other => panic!("expected a Secret, got {other:?}"),
    }
}

#[test]
fn old_ingress_api_version_is_an_error() {
    let text = INGRESS.replace("networking.k8s.io/v1", "networking.k8s.io/v1beta1");
    let l = load_manifests(&text, None);
    assert!(l.objects.is_empty());
    assert_eq!(l.diagnostics[0].code, "unsupported-api-version");
}

#[test]
fn comments_and_empty_documents_are_ignored() {
    let text = format!("# header\n---\n---\n# only a comment\n---\n{INGRESS}...\n");
    let l = load_manifests(&text, Some("c.yaml"));
    assert!(l.diagnostics.is_empty(), "{:?}", l.diagnostics);
    assert_eq!(l.objects.len(), 1);
    assert_eq!(l.objects[0].1.as_ref().unwrap().line, 6);
}

fn object_lines(text: &str) -> Vec<u32> {
    load_manifests(text, Some("a.yaml"))
        .objects
        .iter()
        .map(|(_, s)| s.as_ref().unwrap().line)
        .collect()
}

#[test]
fn annotation_lines_point_at_each_block_style_key() {
    let text = r#"# leading comment
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: a
  labels:
    annotations: not-this-one
  annotations:
    nginx.ingress.kubernetes.io/use-regex: "true"
    "higress.io/timeout": '5'
    'mse.ingress.kubernetes.io/x': |
      first line
      fake.key: inside a block scalar

    kubectl.kubernetes.io/last-applied-configuration: '{"metadata":{"annotations":{"z":"1"}}}'
spec: {}
---

apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  annotations:
    b: "2"
  name: b
"#;
    let lines = AnnotationLines::scan(text);
    let objects = object_lines(text);
    assert_eq!(objects, [3, 20]);
    let found: Vec<(&str, u32)> = lines.keys(3).collect();
    assert_eq!(
        found,
        [
            ("higress.io/timeout", 11),
            ("kubectl.kubernetes.io/last-applied-configuration", 16),
            ("mse.ingress.kubernetes.io/x", 12),
            ("nginx.ingress.kubernetes.io/use-regex", 10),
        ]
    );
    assert_eq!(lines.line(20, "b"), Some(24));
    assert_eq!(lines.line(20, "fake.key"), None);
    assert_eq!(lines.line(3, "z"), None);
}

#[test]
fn annotation_lines_in_flow_style_and_json_documents() {
    let flow = "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: { name: f, annotations: { a/b: \"1\",\n  \"c/d\": 'x, y', e: z } }\n";
    let lines = AnnotationLines::scan(flow);
    assert_eq!(object_lines(flow), [1]);
    assert_eq!(lines.line(1, "a/b"), Some(3));
    assert_eq!(lines.line(1, "c/d"), Some(4));
    assert_eq!(lines.line(1, "e"), Some(4));

    let block_flow =
        "apiVersion: v1\nkind: Ingress\nmetadata:\n  name: g\n  annotations: {k1: v,\n    k2: w}\n";
    let lines = AnnotationLines::scan(block_flow);
    assert_eq!(lines.line(1, "k1"), Some(5));
    assert_eq!(lines.line(1, "k2"), Some(6));

    let json = "{\n  \"apiVersion\": \"networking.k8s.io/v1\",\n  \"kind\": \"Ingress\",\n  \"metadata\": {\n    \"name\": \"j\",\n    \"annotations\": {\n      \"x/y\": \"a:b\",\n      \"x/z\": \"\\\"q\\\"\"\n    }\n  }\n}\n";
    assert_eq!(object_lines(json), [1]);
    let lines = AnnotationLines::scan(json);
    assert_eq!(lines.line(1, "x/y"), Some(7));
    assert_eq!(lines.line(1, "x/z"), Some(8));
}

proptest::proptest! {
    #[test]
    fn loading_never_panics(text in "\\PC{0,400}") {
        let _ = load_manifests(&text, None);
    }

    #[test]
    fn scanning_annotation_lines_never_panics(text in "[ a-z:{}\\[\\],'\"#\\n-]{0,300}") {
        let _ = AnnotationLines::scan(&text);
    }
}

#[test]
fn header_scan_reads_plain_lines_and_defers_everything_else_to_the_parser() {
    let h = scan_header("apiVersion: \"v1\" # core\nkind: 'Service'\nmetadata: {}\n").unwrap();
    assert_eq!(
        (h.api_version.as_deref(), h.kind.as_deref()),
        (Some("v1"), Some("Service"))
    );
    // Flow style, a key written twice, anchors or odd values: the YAML parser decides.
    assert!(scan_header("{apiVersion: v1, kind: Service}").is_none());
    assert!(scan_header("apiVersion: v1\nkind: Service\nkind: Secret\n").is_none());
    assert!(scan_header("apiVersion: v1\nkind: &k Service\n").is_none());
    assert!(scan_header("apiVersion: v1\n  kind: Service\n").is_none());
}

#[test]
fn a_kind_written_twice_is_reported_by_the_parser() {
    let l = load_manifests(
        "apiVersion: v1\nkind: Service\nkind: Secret\nmetadata: {name: a}\n",
        None,
    );
    assert!(l.objects.is_empty());
    assert_eq!(l.diagnostics[0].code, "malformed-yaml");
}
