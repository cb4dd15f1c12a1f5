//! End to end over loopback: `service-upstream` (the Service's cluster IP instead of its
//! endpoints), `service-subset` / `subset-labels` (the endpoints of the pods a label
//! selector picks, from Pods in the manifests) and `warmup` (the slow start of endpoints
//! that join later).
#![cfg(test)]

mod support;

use std::collections::BTreeSet;
use std::net::SocketAddr;

use http::StatusCode;
use mse_model::Severity;
use support::*;

/// The services that answered `n` requests for `host`.
async fn served_by(gw: &mse_proxy::GatewayHandle, host: &str, n: usize) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut tx = h1(http_addr(gw)).await;
    for _ in 0..n {
        let r = send1(&mut tx, get_req(host, "/")).await;
        assert_eq!(r.status, StatusCode::OK, "{host}: {r:?}");
        seen.insert(r.service().to_owned());
    }
    seen
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

/// Service `web` whose port 80 has `cluster_ip` (none when `None`) and one endpoint,
/// `endpoint`, on port `port` of the Service.
fn web_service(cluster_ip: Option<&str>, port: u16, endpoint: SocketAddr) -> String {
    let ip = cluster_ip.map_or(String::new(), |ip| format!("  clusterIP: {ip}\n"));
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{ name: web, namespace: default }}\nspec:\n{ip}  ports: [{{ name: http, port: {port}, targetPort: http }}]\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{ name: web-1, namespace: default, labels: {{ kubernetes.io/service-name: web }} }}\naddressType: IPv4\nports: [{{ name: http, port: {ep_port} }}]\nendpoints: [{{ addresses: [\"{ep_ip}\"], conditions: {{ ready: true }} }}]\n---\n",
        ep_port = endpoint.port(),
        ep_ip = endpoint.ip(),
    )
}

/// An Ingress `name` routing `{name}.example.com` to Service `web` port `port`.
fn web_ingress(name: &str, port: u16, annotations: &[(&str, &str)]) -> String {
    let y = format!(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{ name: {name}, namespace: default }}\nspec:\n  ingressClassName: mse\n  rules:\n  - host: {name}.example.com\n    http:\n      paths:\n      - {{ path: /, pathType: Prefix, backend: {{ service: {{ name: web, port: {{ number: {port} }} }} }} }}\n---\n"
    );
    annotate(&y, annotations)
}

#[tokio::test]
async fn service_upstream_goes_to_the_cluster_ip_and_service_port() {
    // The "cluster IP" is a loopback address whose Service port is where `vip` listens;
    // the endpoint is another server.
    let (vip, pod) = (echo("vip").await, echo("pod").await);
    let port = vip.addr().port();
    let mut yaml = web_service(Some("127.0.0.1"), port, pod.addr());
    yaml.push_str(&web_ingress("direct", port, &[]));
    yaml.push_str(&web_ingress(
        "upstream",
        port,
        &[("service-upstream", "true")],
    ));
    let table = compile_yaml(&yaml);
    assert!(
        table
            .diagnostics()
            .iter()
            .all(|d| d.severity < Severity::Warning),
        "{:#?}",
        table.diagnostics()
    );
    let (gw, _) = gateway(&yaml);
    assert_eq!(
        served_by(&gw, "upstream.example.com", 3).await,
        set(&["vip"])
    );
    assert_eq!(served_by(&gw, "direct.example.com", 3).await, set(&["pod"]));
    gw.shutdown().await;
}

#[tokio::test]
async fn service_upstream_on_a_headless_service_keeps_the_endpoints_with_a_warning() {
    let pod = echo("pod").await;
    for cluster_ip in [None, Some("None")] {
        let mut yaml = web_service(cluster_ip, 80, pod.addr());
        yaml.push_str(&web_ingress(
            "upstream",
            80,
            &[("service-upstream", "true")],
        ));
        let table = compile_yaml(&yaml);
        let d = table
            .diagnostics()
            .iter()
            .find(|d| d.code == "headless-service")
            .expect("a headless-service warning");
        assert_eq!(d.severity, Severity::Warning);
        assert_eq!(
            d.origin.key.as_deref(),
            Some("nginx.ingress.kubernetes.io/service-upstream")
        );
        assert!(d.message.contains("Service default/web"), "{}", d.message);
        let (gw, _) = gateway(&yaml);
        assert_eq!(
            served_by(&gw, "upstream.example.com", 2).await,
            set(&["pod"])
        );
        gw.shutdown().await;
    }
}

/// Pod `name` with `labels` (`key: value` pairs in flow style) and the loopback address.
fn pod(name: &str, labels: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{ name: {name}, namespace: default, labels: {{ {labels} }} }}\nspec:\n  containers: [{{ name: app, image: example/app }}]\nstatus: {{ phase: Running, podIP: 127.0.0.1, podIPs: [{{ ip: 127.0.0.1 }}] }}\n---\n"
    )
}

#[tokio::test]
async fn service_subsets_pick_endpoints_by_pod_labels() {
    let (base, gray, v2) = (echo("base").await, echo("gray").await, echo("v2").await);
    // Every pod listens on loopback, so endpoints name their pods by targetRef.
    let mut yaml = String::new();
    yaml.push_str(&pod("web-base", "app: web"));
    yaml.push_str(&pod("web-gray", "app: web, opensergo.io/canary-gray: gray"));
    yaml.push_str(&pod("web-v2", "app: web, version: v2"));
    yaml.push_str(
        "apiVersion: v1\nkind: Service\nmetadata: { name: web, namespace: default }\nspec:\n  ports: [{ name: http, port: 80, targetPort: http }]\n---\n",
    );
    for (name, addr) in [
        ("web-base", base.addr()),
        ("web-gray", gray.addr()),
        ("web-v2", v2.addr()),
    ] {
        yaml.push_str(&format!(
            "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{ name: {name}, namespace: default, labels: {{ kubernetes.io/service-name: web }} }}\naddressType: IPv4\nports: [{{ name: http, port: {port} }}]\nendpoints: [{{ addresses: [\"127.0.0.1\"], conditions: {{ ready: true }}, targetRef: {{ kind: Pod, namespace: default, name: {name} }} }}]\n---\n",
            port = addr.port()
        ));
    }
    yaml.push_str(&web_ingress("all", 80, &[]));
    yaml.push_str(&web_ingress("gray", 80, &[("service-subset", "gray")]));
    // The base subset: pods without an opensergo.io/canary* label (web-v2 has none).
    yaml.push_str(&web_ingress(
        "base",
        80,
        &[("mse.ingress.kubernetes.io/service-subset", "base")],
    ));
    yaml.push_str(&web_ingress(
        "v2",
        80,
        &[("service-subset", "v2"), ("subset-labels", "version v2")],
    ));
    yaml.push_str(&web_ingress("blue", 80, &[("service-subset", "blue")]));

    let table = compile_yaml(&yaml);
    let warnings: Vec<_> = table
        .diagnostics()
        .iter()
        .filter(|d| d.severity >= Severity::Warning)
        .collect();
    // Only the subset no pod is in is reported.
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert_eq!(warnings[0].code, "empty-subset");
    assert!(
        warnings[0].message.contains("subset blue"),
        "{}",
        warnings[0].message
    );

    let (gw, _) = gateway(&yaml);
    assert_eq!(served_by(&gw, "gray.example.com", 4).await, set(&["gray"]));
    assert_eq!(
        served_by(&gw, "base.example.com", 6).await,
        set(&["base", "v2"])
    );
    assert_eq!(served_by(&gw, "v2.example.com", 4).await, set(&["v2"]));
    // No pod in the subset: every endpoint serves it, as without the annotation.
    let every = set(&["base", "gray", "v2"]);
    assert_eq!(served_by(&gw, "blue.example.com", 9).await, every);
    assert_eq!(served_by(&gw, "all.example.com", 9).await, every);
    gw.shutdown().await;
}

#[tokio::test]
async fn endpoints_without_a_target_ref_are_matched_to_pods_by_address() {
    // Two pods on two loopback addresses; the endpoints carry no targetRef.
    let gray = echo_on("127.0.0.2", 0, "gray").await;
    let base = echo_on("127.0.0.3", gray.addr().port(), "base").await;
    let mut yaml = String::new();
    for (name, ip, labels) in [
        ("web-gray", "127.0.0.2", "opensergo.io/canary-gray: gray"),
        ("web-base", "127.0.0.3", "app: web"),
    ] {
        yaml.push_str(&format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{ name: {name}, namespace: default, labels: {{ {labels} }} }}\nstatus: {{ podIP: {ip} }}\n---\n"
        ));
    }
    yaml.push_str(&format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{ name: web, namespace: default }}\nspec:\n  ports: [{{ name: http, port: 80, targetPort: http }}]\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{ name: web-1, namespace: default, labels: {{ kubernetes.io/service-name: web }} }}\naddressType: IPv4\nports: [{{ name: http, port: {port} }}]\nendpoints:\n- {{ addresses: [\"127.0.0.2\"] }}\n- {{ addresses: [\"127.0.0.3\"] }}\n---\n",
        port = gray.addr().port()
    ));
    yaml.push_str(&web_ingress("gray", 80, &[("service-subset", "gray")]));
    let (gw, _) = gateway(&yaml);
    assert_eq!(served_by(&gw, "gray.example.com", 4).await, set(&["gray"]));
    assert_eq!(base.requests(), 0);
    gw.shutdown().await;
}

/// An echo backend on `ip` (a loopback address) and `port` (0: any free one).
async fn echo_on(ip: &str, port: u16, name: &str) -> mse_proxy::echo::EchoServer {
    let addr: SocketAddr = format!("{ip}:{port}").parse().unwrap();
    mse_proxy::echo::EchoServer::bind(addr, name)
        .await
        .expect("echo binds")
}

/// Service `web` (port 80) with one EndpointSlice holding `endpoints`.
fn web_with(endpoints: &[SocketAddr]) -> String {
    let mut y = "apiVersion: v1\nkind: Service\nmetadata: { name: web, namespace: default }\nspec:\n  ports: [{ name: http, port: 80, targetPort: http }]\n---\n".to_owned();
    for (i, a) in endpoints.iter().enumerate() {
        y.push_str(&format!(
            "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{ name: web-{i}, namespace: default, labels: {{ kubernetes.io/service-name: web }} }}\naddressType: IPv4\nports: [{{ name: http, port: {port} }}]\nendpoints: [{{ addresses: [\"{ip}\"] }}]\n---\n",
            port = a.port(),
            ip = a.ip()
        ));
    }
    y
}

/// How many of `n` requests for `host` the backend `to` got.
async fn share_of(
    gw: &mse_proxy::GatewayHandle,
    host: &str,
    to: &mse_proxy::echo::EchoServer,
    n: usize,
) -> usize {
    let before = to.requests();
    let mut tx = h1(http_addr(gw)).await;
    for _ in 0..n {
        let r = send1(&mut tx, get_req(host, "/")).await;
        assert_eq!(r.status, StatusCode::OK, "{host}: {r:?}");
    }
    usize::try_from(to.requests() - before).unwrap()
}

#[tokio::test]
async fn warmup_gives_an_endpoint_that_joins_a_small_share_at_first() {
    let (old, new) = (echo("old").await, echo("new").await);
    let ingresses = |warmup: bool| {
        let w: &[(&str, &str)] = if warmup {
            &[("mse.ingress.kubernetes.io/warmup", "1h")]
        } else {
            &[]
        };
        let least: Vec<(&str, &str)> = w
            .iter()
            .copied()
            .chain([("load-balance", "least_conn")])
            .collect();
        web_ingress("rr", 80, w) + &web_ingress("least", 80, &least)
    };
    // The gateway starts with `old` only: it is warm.
    let (gw, shared) = gateway(&(web_with(&[old.addr()]) + &ingresses(true)));
    assert_eq!(share_of(&gw, "rr.example.com", &old, 4).await, 4);
    // `new` joins: with a warm-up of an hour it starts at a tenth of a warm endpoint's
    // weight (about 9 % of the requests), under round robin and least_conn alike.
    let both = web_with(&[old.addr(), new.addr()]);
    shared.publish(compile_yaml(&(both.clone() + &ingresses(true))));
    let n = 600;
    for host in ["rr.example.com", "least.example.com"] {
        let got = share_of(&gw, host, &new, n).await;
        assert!(got > 0 && got < n / 4, "{host}: {got} of {n}");
    }
    // A later table keeps its join time: still warming.
    shared.publish(compile_yaml(&(both.clone() + &ingresses(true))));
    let got = share_of(&gw, "rr.example.com", &new, n).await;
    assert!(got > 0 && got < n / 4, "after a republish: {got} of {n}");
    // Without warmup it gets its full share at once.
    shared.publish(compile_yaml(&(both + &ingresses(false))));
    let got = share_of(&gw, "rr.example.com", &new, n).await;
    assert!(got >= n * 2 / 5, "without warmup: {got} of {n}");
    gw.shutdown().await;
}
