//! `custom-headers`: the ConfigMap's entries become response headers; a ConfigMap that
//! cannot be read, or that sets a header the global configuration does not allow, closes
//! the routes.

use super::*;

const KEY: &str = "nginx.ingress.kubernetes.io/custom-headers";

fn config_map(namespace: &str, name: &str, data: &str) -> String {
    format!(
        "\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{ name: {name}, namespace: {namespace} }}\ndata: {{ {data} }}\n"
    )
}

fn shop(annotations: &str) -> String {
    let mut yaml = services();
    yaml += &annotated(
        "shop",
        "2024-01-01T00:00:00Z",
        &path_rule("a.test", &[("/", "Prefix", "s1")]),
        annotations,
    );
    yaml
}

/// The gateway's ConfigMap, allowing `headers` (`global-allowed-response-headers`), and
/// the options that read it.
fn allowing(headers: &str) -> (String, CompileOptions) {
    let yaml = config_map(
        "ingress",
        "gateway",
        &format!("global-allowed-response-headers: \"{headers}\""),
    );
    let opts = CompileOptions {
        configmap: Some(mse_annotations::value::config_map_ref("ingress/gateway").unwrap()),
        ..CompileOptions::default()
    };
    (yaml, opts)
}

/// The response headers the route of `a.test` sets, as `name: value`.
fn set_headers(t: &RouteTable) -> Vec<String> {
    let m = t
        .lookup(&RequestHead::new("a.test", "/"))
        .expect("the route exists");
    let policy = m.route.policy.as_ref().expect("the route has a policy");
    policy
        .response_headers
        .update
        .iter()
        .map(|(n, v)| format!("{n}: {}", v.to_str().unwrap_or("?")))
        .collect()
}

fn closed_reason(t: &RouteTable) -> String {
    let m = t
        .lookup(&RequestHead::new("a.test", "/"))
        .expect("the route is kept");
    assert!(m.cluster.is_none());
    match &m.route.backend {
        crate::Backend::Unavailable { reason } => reason.to_string(),
        other => panic!("the route is not closed: {other:?}"),
    }
}

#[test]
fn the_entries_of_the_config_map_are_set_on_answers() {
    for reference in ["hdrs", "default/hdrs"] {
        let mut yaml = shop(&format!(
            "{KEY}: {reference}, nginx.ingress.kubernetes.io/response-header-control-update: \"X-Frame-Options SAMEORIGIN\""
        ));
        yaml += &config_map(
            "default",
            "hdrs",
            "X-Frame-Options: DENY, Strict-Transport-Security: \"max-age=31536000\"",
        );
        let (gateway, opts) = allowing("X-Frame-Options,Strict-Transport-Security");
        yaml += &gateway;
        let t = table_with(&yaml, &opts);
        assert_eq!(errors(&t), [], "{reference}");
        assert!(
            t.diagnostics().iter().all(|d| d.code != "not-applied"),
            "{:?}",
            t.diagnostics()
        );
        // In the order of the ConfigMap's keys, then the Ingress's own update, which is
        // applied last and so wins for the same header.
        assert_eq!(
            set_headers(&t),
            [
                "strict-transport-security: max-age=31536000",
                "x-frame-options: DENY",
                "x-frame-options: SAMEORIGIN",
            ],
            "{reference}"
        );
        let mut answer = http::HeaderMap::new();
        answer.insert("x-frame-options", "ALLOWALL".parse().unwrap());
        let m = t.lookup(&RequestHead::new("a.test", "/")).unwrap();
        m.route
            .policy
            .as_ref()
            .unwrap()
            .response_headers
            .apply(&mut answer);
        assert_eq!(answer["x-frame-options"], "SAMEORIGIN");
        assert_eq!(answer["strict-transport-security"], "max-age=31536000");
        assert_eq!(who(&t, "a.test", "/"), Some(1));
    }
}

#[test]
fn a_missing_config_map_makes_the_routes_answer_503() {
    let t = table(&shop(&format!("{KEY}: nope")));
    assert!(closed_reason(&t).contains("custom-headers ConfigMap default/nope"));
    let d = t
        .diagnostics()
        .iter()
        .find(|d| d.code == "missing-config-map")
        .expect("an error says why");
    assert_eq!(d.severity, Severity::Error);
    assert_eq!(d.origin.key.as_deref(), Some(KEY));
    assert_eq!(d.value.as_deref(), Some("nope"));
    assert_eq!(
        d.origin.object.as_ref().map(ToString::to_string).as_deref(),
        Some("Ingress default/shop")
    );
    assert!(
        d.message.contains("ConfigMap default/nope not found"),
        "{}",
        d.message
    );
    assert!(d.message.contains("503"), "{}", d.message);
}

#[test]
fn a_config_map_in_another_namespace_is_refused() {
    let mut yaml = shop(&format!("{KEY}: other/hdrs"));
    yaml += &config_map("other", "hdrs", "X-From-Other: yes");
    let t = table(&yaml);
    assert!(closed_reason(&t).contains("other/hdrs"));
    let d = t
        .diagnostics()
        .iter()
        .find(|d| d.code == "cross-namespace-config-map")
        .expect("an error says why");
    assert_eq!(d.severity, Severity::Error);
    assert_eq!(d.origin.key.as_deref(), Some(KEY));
    assert_eq!(d.value.as_deref(), Some("other/hdrs"));
    assert!(d.message.contains("own namespace"), "{}", d.message);
    assert!(d.message.contains("no setting"), "{}", d.message);
}

#[test]
fn invalid_entries_are_left_out_with_a_warning() {
    let mut yaml = shop(&format!("{KEY}: hdrs"));
    yaml += &config_map(
        "default",
        "hdrs",
        "X-Good: ok, Transfer-Encoding: chunked, \"bad name\": x, X-Bell: \"ring\\a\"",
    );
    let (gateway, opts) = allowing("X-Good");
    yaml += &gateway;
    let t = table_with(&yaml, &opts);
    assert_eq!(errors(&t), []);
    assert_eq!(set_headers(&t), ["x-good: ok"]);
    let mut warned: Vec<(String, Option<String>)> = t
        .diagnostics()
        .iter()
        .filter(|d| d.code == "invalid-custom-header")
        .map(|d| {
            assert_eq!(d.severity, Severity::Warning);
            assert_eq!(d.origin.key.as_deref(), Some(KEY));
            assert!(
                d.message.contains("ConfigMap default/hdrs"),
                "{}",
                d.message
            );
            (d.message.clone(), d.value.clone())
        })
        .collect();
    warned.sort();
    assert_eq!(warned.len(), 3, "{warned:?}");
    assert!(
        warned[0].0.contains("entry \"Transfer-Encoding\""),
        "{warned:?}"
    );
    assert!(warned[1].0.contains("entry \"X-Bell\""), "{warned:?}");
    assert!(warned[2].0.contains("entry \"bad name\""), "{warned:?}");
    assert_eq!(warned[2].1.as_deref(), Some("bad name: x"));
}

#[test]
fn a_canary_whose_config_map_is_missing_gets_no_traffic() {
    let mut yaml = services();
    yaml += &ingress(
        "main",
        "2024-01-01T00:00:00Z",
        &path_rule("a.test", &[("/", "Prefix", "s1")]),
    );
    yaml += &canary(
        "can",
        "2024-01-02T00:00:00Z",
        &path_rule("a.test", &[("/", "Prefix", "s2")]),
        &format!("nginx.ingress.kubernetes.io/canary-weight: \"100\", {KEY}: nope"),
    );
    let t = table(&yaml);
    let req = RequestHead::new("a.test", "/");
    assert_eq!(dest(&t, &req, 0), Some(1));
    assert!(
        t.diagnostics()
            .iter()
            .any(|d| d.code == "missing-config-map" && d.message.contains("gets no traffic"))
    );
}

#[test]
fn a_header_the_global_configuration_does_not_allow_closes_the_routes() {
    let headers = "X-Frame-Options: DENY, X-Robots-Tag: noindex";
    // ingress-nginx's default: no header is allowed.
    let mut yaml = shop(&format!("{KEY}: hdrs"));
    yaml += &config_map("default", "hdrs", headers);
    let t = table(&yaml);
    assert!(
        closed_reason(&t).contains("does not allow"),
        "{}",
        closed_reason(&t)
    );
    let d = t
        .diagnostics()
        .iter()
        .find(|d| d.code == "header-not-allowed")
        .expect("an error says why");
    assert_eq!(d.severity, Severity::Error);
    assert_eq!(d.origin.key.as_deref(), Some(KEY));
    assert!(
        d.message.contains("sets x-frame-options, x-robots-tag")
            && d.message.contains("which is empty")
            && d.message.contains("503"),
        "{}",
        d.message
    );
    // One header missing from the list is enough; names are compared without case.
    let (gateway, opts) = allowing("x-frame-options");
    let t = table_with(&format!("{yaml}{gateway}"), &opts);
    let d = t
        .diagnostics()
        .iter()
        .find(|d| d.code == "header-not-allowed")
        .expect("an error says why");
    assert!(
        d.message.contains("sets x-robots-tag")
            && d.message.contains("which lists x-frame-options"),
        "{}",
        d.message
    );
    assert!(closed_reason(&t).contains("custom-headers ConfigMap default/hdrs"));
    // Both listed: served.
    let (gateway, opts) = allowing("X-Frame-Options, X-ROBOTS-TAG");
    let t = table_with(&format!("{yaml}{gateway}"), &opts);
    assert_eq!(errors(&t), []);
    assert_eq!(who(&t, "a.test", "/"), Some(1));
    assert_eq!(
        set_headers(&t),
        ["x-frame-options: DENY", "x-robots-tag: noindex"]
    );
}
