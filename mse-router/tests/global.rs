//! The global configuration a table is compiled with: which documents of the snapshot are
//! read, their precedence, the previous configuration standing in for bad values, and the
//! route defaults it sets.
#![expect(
    clippy::unwrap_used,
    reason = "helpers outside #[test] fns fail the test loudly"
)]

use std::time::Duration;

use mse_annotations::value::config_map_ref;
use mse_model::{Severity, Snapshot, load_manifests};
use mse_router::global::{GlobalFlags, Layer, Setting};
use mse_router::{CompileOptions, RequestHead, RouteTable, compile, compile_with};

const SERVICE: &str = "
---
apiVersion: v1
kind: Service
metadata: { name: web, namespace: shop }
spec: { ports: [{ port: 80 }] }
";

fn ingress(host: &str, annotations: &str, tls: bool) -> String {
    let tls = if tls {
        format!("  tls: [{{ hosts: [{host}], secretName: cert }}]\n")
    } else {
        String::new()
    };
    format!(
        "---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{ name: {host}, namespace: shop, annotations: {{ {annotations} }} }}\nspec:\n  ingressClassName: mse\n{tls}  rules:\n  - host: {host}\n    http: {{ paths: [{{ path: /, pathType: Prefix, backend: {{ service: {{ name: web, port: {{ number: 80 }} }} }} }}] }}\n"
    )
}

fn cert(hosts: &[&str]) -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let names: Vec<String> = hosts.iter().map(|h| (*h).to_owned()).collect();
    let cert = rcgen::CertificateParams::new(names)
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let indent = |s: String| s.lines().map(|l| format!("    {l}\n")).collect::<String>();
    format!(
        "---\napiVersion: v1\nkind: Secret\nmetadata: {{ name: cert, namespace: shop }}\ntype: kubernetes.io/tls\nstringData:\n  tls.crt: |\n{}  tls.key: |\n{}",
        indent(cert.pem()),
        indent(key.serialize_pem())
    )
}

fn config_map(ns: &str, name: &str, data: &str) -> String {
    format!(
        "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{ name: {name}, namespace: {ns} }}\ndata:\n{data}\n"
    )
}

fn linked_class(name: &str, controller: &str, config: &str) -> String {
    format!(
        "---\napiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {{ name: {name} }}\nspec:\n  controller: {controller}\n  parameters: {{ apiGroup: mse.alibabacloud.com, kind: MseIngressConfig, name: {config} }}\n"
    )
}

fn mse_config(name: &str, global: &str) -> String {
    format!(
        "---\napiVersion: mse.alibabacloud.com/v1alpha1\nkind: MseIngressConfig\nmetadata: {{ name: {name} }}\nspec:\n{global}\n"
    )
}

fn snapshot(yaml: &str) -> Snapshot {
    let loaded = load_manifests(yaml, Some("g.yaml"));
    assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
    let mut s = Snapshot::default();
    s.extend(loaded.objects);
    s
}

fn opts() -> CompileOptions {
    CompileOptions {
        configmap: Some(config_map_ref("ingress/gateway").unwrap()),
        ..CompileOptions::default()
    }
}

fn codes(t: &RouteTable) -> Vec<(&'static str, Option<String>)> {
    t.diagnostics()
        .iter()
        .filter(|d| d.code != "missing-service" && d.code != "no-endpoints")
        .map(|d| (d.code, d.origin.key.as_deref().map(str::to_owned)))
        .collect()
}

#[test]
fn the_named_configmap_higress_config_and_the_linked_mse_config_are_read() {
    let yaml = [
        config_map(
            "ingress",
            "gateway",
            "  keep-alive-requests: \"2\"\n  keep-alive: \"30\"\n  client-header-timeout: \"20\"",
        ),
        config_map(
            "ingress",
            "higress-config",
            "  higress: |\n    downstream:\n      idleTimeout: 40\n",
        ),
        // Another namespace's ConfigMaps are not read.
        config_map(
            "other",
            "higress-config",
            "  higress: \"upstream: { idleTimeout: 1 }\"",
        ),
        linked_class("mse", mse_model::CONTROLLER_NAME, "edge"),
        mse_config(
            "edge",
            "  global:\n    ipAccessControl: { blacklist: [192.0.2.0/24] }",
        ),
        SERVICE.to_owned(),
        ingress("a.test", "", false),
    ]
    .concat();
    let t = compile(&snapshot(&yaml), &opts());
    let g = t.global();
    assert_eq!(g.client.keep_alive_requests, 2);
    assert_eq!(g.client.header_timeout, Duration::from_secs(20));
    assert_eq!(g.client.keep_alive, Duration::from_secs(40));
    assert_eq!(g.upstream.keepalive_timeout, Duration::from_secs(60));
    assert_eq!(g.access.deny.len(), 1);
    let layer = |s| g.origin(s).map(|o| o.layer);
    assert_eq!(layer(Setting::KeepAliveRequests), Some(Layer::ConfigMap));
    assert_eq!(layer(Setting::KeepAlive), Some(Layer::HigressConfig));
    assert_eq!(layer(Setting::IpDenyList), Some(Layer::MseIngressConfig));
    assert_eq!(
        codes(&t),
        [("overridden-config-key", Some("keep-alive".to_owned()))]
    );
    // The table shows where each setting came from.
    let json = t.to_json();
    assert_eq!(json["global"]["client"]["keep_alive_requests"], 2);
    assert_eq!(
        json["global"]["origins"]["keep-alive"]["key"],
        "higress.downstream.idleTimeout"
    );
    assert_eq!(
        json["global"]["origins"]["keep-alive"]["object"],
        "ConfigMap ingress/higress-config"
    );
}

#[test]
fn only_the_config_our_ingress_class_links_is_read() {
    let configs = [
        mse_config(
            "ours",
            "  global:\n    ipAccessControl: { whitelist: [10.0.0.0/8] }",
        ),
        mse_config(
            "theirs",
            "  global:\n    ipAccessControl: { whitelist: [172.16.0.0/12] }",
        ),
        mse_config(
            "other",
            "  global:\n    ipAccessControl: { whitelist: [192.168.0.0/16] }",
        ),
    ]
    .concat();
    let allowed = |yaml: &str, o: &CompileOptions| {
        let t = compile(&snapshot(yaml), o);
        t.global()
            .access
            .allow
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    };
    // Another controller's class links nothing for us.
    let yaml = format!(
        "{configs}{}{}",
        linked_class("nginx", "k8s.io/ingress-nginx", "theirs"),
        linked_class("mse", mse_model::CONTROLLER_NAME, "ours")
    );
    assert_eq!(allowed(&yaml, &CompileOptions::default()), ["10.0.0.0/8"]);
    // Of two classes of ours, the one --ingress-class names.
    let yaml = format!(
        "{yaml}{}",
        linked_class("edge", mse_model::CONTROLLER_NAME, "other")
    );
    assert_eq!(allowed(&yaml, &CompileOptions::default()), ["10.0.0.0/8"]);
    let edge = CompileOptions {
        ingress_class: "edge".to_owned(),
        ..CompileOptions::default()
    };
    assert_eq!(allowed(&yaml, &edge), ["192.168.0.0/16"]);
    // No linked config: no list.
    assert!(allowed(&configs, &CompileOptions::default()).is_empty());
}

#[test]
fn a_missing_configmap_is_a_warning_and_explicit_flags_still_apply() {
    let o = CompileOptions {
        flags: GlobalFlags::default().with("--access-log", "false"),
        ..opts()
    };
    let t = compile(&snapshot(SERVICE), &o);
    let d = &t.diagnostics()[0];
    assert_eq!(d.code, "missing-config-map");
    assert_eq!(d.severity, Severity::Warning);
    assert_eq!(
        d.origin.object.as_ref().unwrap().to_string(),
        "ConfigMap ingress/gateway"
    );
    assert!(!t.global().logging.access_log);
    assert_eq!(
        t.global().origin(Setting::AccessLog).unwrap().layer,
        Layer::Flag
    );
}

#[test]
fn a_bad_value_keeps_the_previous_tables_value() {
    let first = [
        config_map("ingress", "gateway", "  keep-alive-requests: \"2\""),
        SERVICE.to_owned(),
    ]
    .concat();
    let t1 = compile(&snapshot(&first), &opts());
    assert_eq!(t1.global().client.keep_alive_requests, 2);
    let edited = [
        config_map(
            "ingress",
            "gateway",
            "  keep-alive-requests: \"many\"\n  proxy-body-size: \"2k\"",
        ),
        SERVICE.to_owned(),
    ]
    .concat();
    let t2 = compile_with(&snapshot(&edited), &opts(), Some(t1.global()));
    assert_eq!(t2.global().client.keep_alive_requests, 2);
    assert_eq!(t2.global().client.max_body_size, Some(2048));
    let d = t2
        .diagnostics()
        .iter()
        .find(|d| d.code == "invalid-config-value")
        .unwrap();
    assert_eq!(
        d.to_string(),
        "g.yaml:2: warning: ConfigMap ingress/gateway: keep-alive-requests: expected a whole number; the last good value \"2\" (keep-alive-requests of ConfigMap ingress/gateway) stays (value \"many\") [invalid-config-value]"
    );
    // Without the previous configuration (a restart), the default applies.
    let t3 = compile(&snapshot(&edited), &opts());
    assert_eq!(t3.global().client.keep_alive_requests, 1000);
}

#[test]
fn ssl_redirect_and_force_ssl_redirect_are_the_defaults_of_every_route() {
    let redirects = |cm: &str, annotations: &str| {
        let yaml = [
            cert(&["tls.test"]),
            config_map("ingress", "gateway", cm),
            SERVICE.to_owned(),
            ingress("tls.test", annotations, true),
            ingress("plain.test", annotations, false),
        ]
        .concat();
        let t = compile(&snapshot(&yaml), &opts());
        let r = |host: &str| {
            let m = t.lookup(&RequestHead::new(host, "/")).unwrap();
            (m.route.https_redirect, m.route.own_certificate)
        };
        (r("tls.test"), r("plain.test"))
    };
    // ingress-nginx's defaults: hosts with a certificate redirect.
    assert_eq!(
        redirects("  hsts: \"true\"", ""),
        ((true, true), (false, false))
    );
    assert_eq!(
        redirects("  ssl-redirect: \"false\"", ""),
        ((false, true), (false, false))
    );
    // The annotation wins over the global default.
    assert_eq!(
        redirects(
            "  ssl-redirect: \"false\"",
            "nginx.ingress.kubernetes.io/ssl-redirect: \"true\""
        ),
        ((true, true), (true, false))
    );
    assert_eq!(
        redirects("  force-ssl-redirect: \"true\"", ""),
        ((true, true), (true, false))
    );
    assert_eq!(
        redirects(
            "  force-ssl-redirect: \"true\"",
            "nginx.ingress.kubernetes.io/force-ssl-redirect: \"false\", nginx.ingress.kubernetes.io/ssl-redirect: \"false\""
        ),
        ((false, true), (false, false))
    );
}
