//! Ingress class selection.

use super::*;

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
