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

/// An IngressClass of ours linking an MseIngressConfig, with `ingress.local` as given
/// (a YAML flow mapping, or nothing).
fn linked_class(local: &str) -> String {
    format!(
        r#"
---
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {{ name: ours }}
spec:
  controller: mse.alibabacloud.com/ingress
  parameters: {{ apiGroup: mse.alibabacloud.com, kind: MseIngressConfig, name: gw }}
---
apiVersion: mse.alibabacloud.com/v1alpha1
kind: MseIngressConfig
metadata: {{ name: gw }}
spec: {{ ingress: {{ local: {local} }} }}
"#
    )
}

fn classed(name: &str, ns: &str, class: Option<&str>) -> String {
    let class_line = class
        .map(|c| format!("  ingressClassName: {c}\n"))
        .unwrap_or_default();
    format!(
        "\n---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{ name: {name}, namespace: {ns} }}\nspec:\n{class_line}  rules: [{{ host: {name}.test, http: {{ paths: [{{ path: /, pathType: Prefix, backend: {{ service: {{ name: s1, port: {{ number: 80 }} }} }} }}] }} }}]\n"
    )
}

fn served(t: &RouteTable, name: &str) -> bool {
    t.routes().iter().any(|r| r.ingress.name.as_ref() == name)
}

#[test]
fn a_linked_config_limits_its_class_to_the_watch_namespace() {
    let ingresses = [
        classed("inside", "shop", Some("ours")),
        classed("outside", "default", Some("ours")),
        classed("fallback-class", "default", Some("mse")),
    ]
    .concat();
    let t = table(&format!(
        "{}{}{ingresses}",
        services(),
        linked_class("{ watchNamespace: shop }")
    ));
    assert!(served(&t, "inside"));
    assert!(!served(&t, "outside"));
    // The configured class name without an IngressClass object is not linked: served.
    assert!(served(&t, "fallback-class"));
    let note = t
        .diagnostics()
        .iter()
        .find(|d| d.code == "ingress-not-selected")
        .expect("a note on the Ingress left out");
    assert_eq!(
        note.origin.object.as_ref().unwrap().name.as_ref(),
        "outside"
    );
    assert!(note.message.contains("watches namespace shop"), "{note}");

    // An empty watchNamespace means every namespace.
    let t = table(&format!(
        "{}{}{ingresses}",
        services(),
        linked_class("{ watchNamespace: \"\" }")
    ));
    assert!(served(&t, "inside") && served(&t, "outside"));
}

#[test]
fn the_linked_class_wins_over_the_configs_ingress_class() {
    let ingresses = [
        classed("mine", "default", Some("ours")),
        classed("nginx-one", "default", Some("nginx")),
        classed("unclassed", "default", None),
        classed("other", "default", Some("traefik")),
    ]
    .concat();
    let with = |local: &str| table(&format!("{}{}{ingresses}", services(), linked_class(local)));

    // Unset: the linking class is served, nothing else.
    let t = with("{}");
    let got: Vec<bool> = ["mine", "nginx-one", "unclassed", "other"]
        .iter()
        .map(|n| served(&t, n))
        .collect();
    assert_eq!(got, [true, false, false, false]);

    // Another class name: ignored with a warning on the config.
    let t = with("{ ingressClass: traefik }");
    assert!(served(&t, "mine") && !served(&t, "other"));
    let warning = t
        .diagnostics()
        .iter()
        .find(|d| d.code == "overridden-ingress-class")
        .expect("the ignored ingressClass is reported");
    assert_eq!(
        warning.origin.key.as_deref(),
        Some("spec.ingress.local.ingressClass")
    );
    assert_eq!(warning.value.as_deref(), Some("traefik"));

    // nginx: nginx-class and unclassed Ingresses too.
    let t = with("{ ingressClass: nginx }");
    let got: Vec<bool> = ["mine", "nginx-one", "unclassed", "other"]
        .iter()
        .map(|n| served(&t, n))
        .collect();
    assert_eq!(got, [true, true, true, false]);

    // Empty: every Ingress, still within watchNamespace.
    let t = with("{ ingressClass: \"\" }");
    assert!(
        ["mine", "nginx-one", "unclassed", "other"]
            .iter()
            .all(|n| served(&t, n))
    );
    let t = with("{ ingressClass: \"\", watchNamespace: elsewhere }");
    assert!(
        ["mine", "nginx-one", "unclassed", "other"]
            .iter()
            .all(|n| !served(&t, n))
    );
}

#[test]
fn a_missing_linked_config_is_reported_and_the_class_served() {
    let class = r#"
---
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: { name: ours }
spec:
  controller: mse.alibabacloud.com/ingress
  parameters: { apiGroup: mse.alibabacloud.com, kind: MseIngressConfig, name: absent }
"#;
    let t = table(&format!(
        "{}{class}{}",
        services(),
        classed("mine", "default", Some("ours"))
    ));
    assert!(served(&t, "mine"));
    let d = t
        .diagnostics()
        .iter()
        .find(|d| d.code == "missing-mse-config")
        .expect("the dangling reference is reported");
    assert_eq!(d.origin.key.as_deref(), Some("spec.parameters"));
    assert_eq!(d.value.as_deref(), Some("absent"));
}
