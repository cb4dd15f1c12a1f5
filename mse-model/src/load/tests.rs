use super::*;

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
    assert!(d.starts_with("m.yaml:23: error: malformed YAML"), "{d}");
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

proptest::proptest! {
    #[test]
    fn loading_never_panics(text in "\\PC{0,400}") {
        let _ = load_manifests(&text, None);
    }
}
