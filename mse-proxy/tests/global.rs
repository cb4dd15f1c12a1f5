//! The global configuration applied by a running gateway: each setting the route table's
//! global configuration sets changes what clients get, and a newly published table changes
//! it again for new connections and requests, without a restart.
#![cfg(test)]

mod http1_client;
mod support;

use std::time::Duration;

use http::StatusCode;
use http_body_util::Full;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use mse_proxy::SharedTable;
use mse_router::RouteTable;
use std::sync::Arc;

use http1_client::*;
use support::*;

/// `a.example.com` routed to `backend`, with the gateway's ConfigMap holding `data`, and
/// `extra` manifests.
fn table(backend: std::net::SocketAddr, data: &[(&str, &str)], extra: &str) -> Arc<RouteTable> {
    let yaml = format!(
        "{}{}{extra}",
        routed_to(&[("a", backend)]),
        gateway_config_map(data)
    );
    compile_yaml_with(&yaml, &configmap_options())
}

/// Publishes a new table, checking that what it was compiled from had no problem.
fn publish(shared: &SharedTable, table: Arc<RouteTable>) {
    let problems: Vec<_> = table
        .diagnostics()
        .iter()
        .filter(|d| d.severity >= mse_model::Severity::Warning && d.code != "no-endpoints")
        .collect();
    assert!(problems.is_empty(), "{problems:#?}");
    shared.publish(table);
}

fn post_a(path: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: a.example.com\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn chunked_a(path: &str, chunks: &[&str]) -> String {
    let mut out = format!(
        "POST {path} HTTP/1.1\r\nHost: a.example.com\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    for c in chunks {
        out.push_str(&format!("{:x}\r\n{c}\r\n", c.len()));
    }
    out.push_str("0\r\n\r\n");
    out
}

#[tokio::test]
async fn keep_alive_requests_closes_the_connection_and_a_new_table_changes_it() {
    let a = echo("a").await;
    let (gw, shared) =
        gateway_serving(table(a.addr(), &[("keep-alive-requests", "2")], ""), |_| {});
    let mut c = Client::connect(http_addr(&gw)).await;
    let first = c.ask(get_a("/1")).await;
    assert_eq!(first.status, 200);
    assert!(!first.connection_has("close"), "{:?}", first.headers);
    let second = c.ask(get_a("/2")).await;
    assert_eq!(second.status, 200);
    assert!(second.connection_has("close"), "{:?}", second.headers);
    assert!(
        c.closes().await,
        "the connection stays open after its last request"
    );

    // Edited: three requests per connection, for connections accepted from now on.
    publish(
        &shared,
        table(a.addr(), &[("keep-alive-requests", "3")], ""),
    );
    let mut c = Client::connect(http_addr(&gw)).await;
    for i in 0..2 {
        let r = c.ask(get_a(&format!("/again/{i}"))).await;
        assert!(!r.connection_has("close"), "request {i}: {:?}", r.headers);
    }
    assert!(c.ask(get_a("/again/2")).await.connection_has("close"));
    assert!(c.closes().await);
    // keep-alive 0: one request per connection.
    publish(&shared, table(a.addr(), &[("keep-alive", "0")], ""));
    let mut c = Client::connect(http_addr(&gw)).await;
    assert!(c.ask(get_a("/once")).await.connection_has("close"));
    assert!(c.closes().await);
    gw.shutdown().await;
}

#[tokio::test]
async fn an_idle_connection_closes_after_the_tables_keep_alive() {
    let a = echo("a").await;
    // The data plane's own keep-alive is an hour: the table's replaces it.
    let (gw, _shared) = gateway_serving(table(a.addr(), &[("keep-alive", "200ms")], ""), |c| {
        c.timeouts.keep_alive = Duration::from_secs(3600);
    });
    let mut c = Client::connect(http_addr(&gw)).await;
    assert_eq!(c.ask(get_a("/x")).await.status, 200);
    assert!(c.closes().await, "the idle connection is still open");
    assert_eq!(a.requests(), 1);
    gw.shutdown().await;
}

#[tokio::test]
async fn the_body_limit_answers_413_by_length_and_while_streaming() {
    let a = echo("a").await;
    let small = "x".repeat(512);
    let large = "y".repeat(2048);
    let (gw, shared) = gateway_serving(table(a.addr(), &[("proxy-body-size", "1k")], ""), |_| {});
    let addr = http_addr(&gw);
    // Declared too large: refused before anything goes upstream.
    let r = Client::connect(addr)
        .await
        .ask(post_a("/big", &large))
        .await;
    assert_eq!(r.status, 413);
    assert_eq!(a.requests(), 0);
    let r = Client::connect(addr)
        .await
        .ask(post_a("/small", &small))
        .await;
    assert_eq!(
        (r.status, r.json()["body_bytes"].as_u64()),
        (200, Some(512))
    );
    // Chunked: counted as it streams, cut past the limit.
    let r = Client::connect(addr)
        .await
        .ask(chunked_a("/chunks", &[&small, &small, &small]))
        .await;
    assert_eq!(r.status, 413);
    let r = Client::connect(addr)
        .await
        .ask(chunked_a("/chunks", &[&small, "tail"]))
        .await;
    assert_eq!(
        (r.status, r.json()["body_bytes"].as_u64()),
        (200, Some(516))
    );

    // The route's own annotation wins over the gateway-wide value.
    let own = annotate(&routed_to(&[("a", a.addr())]), &[("proxy-body-size", "4k")]);
    let yaml = format!("{own}{}", gateway_config_map(&[("proxy-body-size", "1k")]));
    publish(&shared, compile_yaml_with(&yaml, &configmap_options()));
    let r = Client::connect(addr)
        .await
        .ask(post_a("/own", &large))
        .await;
    assert_eq!(r.status, 200);
    // No limit.
    publish(&shared, table(a.addr(), &[("proxy-body-size", "0")], ""));
    let huge = "z".repeat(3 << 20);
    let r = Client::connect(addr)
        .await
        .ask(post_a("/huge", &huge))
        .await;
    assert_eq!(
        (r.status, r.json()["body_bytes"].as_u64()),
        (200, Some(3 << 20))
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn the_largest_head_comes_from_large_client_header_buffers() {
    let a = echo("a").await;
    let (gw, shared) = gateway_serving(
        table(a.addr(), &[("large-client-header-buffers", "1 8k")], ""),
        |_| {},
    );
    let big = format!(
        "GET /h HTTP/1.1\r\nHost: a.example.com\r\nX-Big: {}\r\n\r\n",
        "b".repeat(12 * 1024)
    );
    let r = Client::connect(http_addr(&gw)).await.ask(&big).await;
    assert_eq!(r.status, 431);
    publish(
        &shared,
        table(a.addr(), &[("large-client-header-buffers", "4 8k")], ""),
    );
    let r = Client::connect(http_addr(&gw)).await.ask(&big).await;
    assert_eq!(r.status, 200);
    gw.shutdown().await;
}

#[tokio::test]
async fn a_stalled_request_body_gets_408_after_client_body_timeout() {
    let a = echo("a").await;
    let (gw, _shared) = gateway_serving(
        table(a.addr(), &[("client-body-timeout", "300ms")], ""),
        |_| {},
    );
    let mut c = Client::connect(http_addr(&gw)).await;
    // Ten bytes promised, three sent, then nothing.
    c.send("POST /slow HTTP/1.1\r\nHost: a.example.com\r\nContent-Length: 10\r\n\r\nabc")
        .await;
    let r = c.response().await;
    assert_eq!(r.status, 408);
    assert!(c.closes().await);
    gw.shutdown().await;
}

#[tokio::test]
async fn the_mse_configs_ip_lists_refuse_clients() {
    let a = echo("a").await;
    let linked = |lists: &str| {
        format!(
            "---\napiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {{ name: mse }}\nspec:\n  controller: mse.alibabacloud.com/ingress\n  parameters: {{ apiGroup: mse.alibabacloud.com, kind: MseIngressConfig, name: edge }}\n---\napiVersion: mse.alibabacloud.com/v1alpha1\nkind: MseIngressConfig\nmetadata: {{ name: edge }}\nspec:\n  global:\n    ipAccessControl: {lists}\n"
        )
    };
    let (gw, shared) = gateway_serving(
        table(a.addr(), &[], &linked("{ blacklist: [127.0.0.0/8] }")),
        |_| {},
    );
    let addr = http_addr(&gw);
    assert_eq!(
        Client::connect(addr).await.ask(get_a("/")).await.status,
        403
    );
    publish(
        &shared,
        table(a.addr(), &[], &linked("{ whitelist: [10.0.0.0/8] }")),
    );
    assert_eq!(
        Client::connect(addr).await.ask(get_a("/")).await.status,
        403
    );
    publish(
        &shared,
        table(
            a.addr(),
            &[],
            &linked("{ whitelist: [127.0.0.1, 10.0.0.0/8] }"),
        ),
    );
    assert_eq!(
        Client::connect(addr).await.ask(get_a("/")).await.status,
        200
    );
    assert_eq!(a.requests(), 1);
    // A bad list at start-up fails closed.
    let bad = table(a.addr(), &[], &linked("{ whitelist: [10.0.0.0/33] }"));
    assert!(bad.global().access.closed);
    shared.publish(bad);
    assert_eq!(
        Client::connect(addr).await.ask(get_a("/")).await.status,
        503
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn upstream_keepalive_requests_and_connections_bound_the_pool() {
    let a = echo("a").await;
    let (gw, shared) = gateway_serving(
        table(a.addr(), &[("upstream-keepalive-requests", "2")], ""),
        |c| c.workers = 1,
    );
    let mut c = Client::connect(http_addr(&gw)).await;
    for i in 0..6 {
        assert_eq!(c.ask(get_a(&format!("/{i}"))).await.status, 200);
    }
    // Two requests per upstream connection.
    assert_eq!((a.requests(), a.connections()), (6, 3));
    // No idle connections kept: one connection per request.
    publish(
        &shared,
        table(a.addr(), &[("upstream-keepalive-connections", "0")], ""),
    );
    for i in 0..3 {
        assert_eq!(c.ask(get_a(&format!("/n/{i}"))).await.status, 200);
    }
    assert_eq!((a.requests(), a.connections()), (9, 6));
    gw.shutdown().await;
}

#[tokio::test]
async fn hsts_is_sent_on_https_answers_of_hosts_with_a_certificate() {
    let a = echo("a").await;
    let ca = TestCa::new();
    let leaf = ca.leaf(&["s.example.com"]);
    let sites = [
        tls_secret("s-cert", &leaf.cert_pem, &leaf.key_pem),
        tls_ingress("s", "s-cert", &["s.example.com"], "a"),
        service("a", &[a.addr()]),
    ]
    .concat();
    let compiled = |data: &[(&str, &str)]| {
        compile_yaml_with(
            &format!("{sites}{}", gateway_config_map(data)),
            &configmap_options(),
        )
    };
    let (gw, shared) = gateway_serving(compiled(&[]), |_| {});
    let ask = |gw: &mse_proxy::GatewayHandle| {
        let addr = https_addr(gw);
        let client = verifying_client(&ca.cert, &[b"http/1.1"]);
        async move {
            let stream = tls(&client, addr, "s.example.com").await;
            let (mut tx, conn) = http1::handshake::<_, Full<bytes::Bytes>>(TokioIo::new(stream))
                .await
                .expect("handshake");
            tokio::spawn(conn);
            send1(&mut tx, get_req("s.example.com", "/")).await
        }
    };
    let r = ask(&gw).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.headers["strict-transport-security"],
        "max-age=15724800; includeSubDomains"
    );
    // Plain HTTP never carries it (and is redirected: the host has a certificate).
    let plain = get(http_addr(&gw), "s.example.com", "/").await;
    assert_eq!(plain.status, StatusCode::PERMANENT_REDIRECT);
    assert!(plain.headers.get("strict-transport-security").is_none());

    publish(
        &shared,
        compiled(&[
            ("hsts-max-age", "60"),
            ("hsts-include-subdomains", "false"),
            ("hsts-preload", "true"),
        ]),
    );
    let r = ask(&gw).await;
    assert_eq!(
        r.headers["strict-transport-security"],
        "max-age=60; preload"
    );
    publish(&shared, compiled(&[("hsts", "false")]));
    let r = ask(&gw).await;
    assert!(r.headers.get("strict-transport-security").is_none());
    gw.shutdown().await;
}

#[tokio::test]
async fn use_forwarded_headers_trusts_the_proxies_in_proxy_real_ip_cidr() {
    let a = echo("a").await;
    let ca = TestCa::new();
    let leaf = ca.leaf(&["a.example.com"]);
    // a.example.com has a certificate: plain HTTP is redirected, unless a trusted proxy
    // in front says the client used HTTPS.
    let tls = [
        "---\n".to_owned(),
        tls_secret("a-cert", &leaf.cert_pem, &leaf.key_pem),
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: { name: a-tls, namespace: default }\nspec:\n  ingressClassName: mse\n  tls: [{ hosts: [a.example.com], secretName: a-cert }]\n  rules: [{ host: a.example.com }]\n".to_owned(),
    ]
    .concat();
    let (gw, shared) = gateway_serving(
        table(
            a.addr(),
            &[
                ("use-forwarded-headers", "true"),
                ("proxy-real-ip-cidr", "127.0.0.0/8, 10.0.0.0/8"),
            ],
            &tls,
        ),
        |_| {},
    );
    let from_proxy = "GET /fwd HTTP/1.1\r\nHost: a.example.com\r\nX-Forwarded-For: 203.0.113.7, 10.1.1.1\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Port: 443\r\nX-Forwarded-Host: shop.example.com\r\n\r\n";
    let r = Client::connect(http_addr(&gw)).await.ask(from_proxy).await;
    assert_eq!(r.status, 200);
    let h = &r.json()["headers"];
    assert_eq!(h["x-real-ip"], "203.0.113.7");
    assert_eq!(h["x-forwarded-for"], "203.0.113.7, 10.1.1.1, 127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "https");
    assert_eq!(h["x-forwarded-port"], "443");
    assert_eq!(h["x-forwarded-host"], "shop.example.com");
    assert_eq!(h["host"], "a.example.com");
    // Without X-Forwarded-Proto the request is plain HTTP: redirected.
    let r = Client::connect(http_addr(&gw))
        .await
        .ask(get_a("/plain"))
        .await;
    assert_eq!(r.status, 308);

    // The gateway's peer is not in proxy-real-ip-cidr: nothing it says is believed.
    publish(
        &shared,
        table(
            a.addr(),
            &[
                ("use-forwarded-headers", "true"),
                ("proxy-real-ip-cidr", "10.0.0.0/8"),
                ("ssl-redirect", "false"),
            ],
            &tls,
        ),
    );
    let r = Client::connect(http_addr(&gw)).await.ask(from_proxy).await;
    let h = &r.json()["headers"];
    assert_eq!(h["x-real-ip"], "127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["x-forwarded-host"], "a.example.com");
    // Off (the default): the same.
    publish(&shared, table(a.addr(), &[("ssl-redirect", "false")], &tls));
    let r = Client::connect(http_addr(&gw)).await.ask(from_proxy).await;
    let h = &r.json()["headers"];
    assert_eq!(h["x-real-ip"], "127.0.0.1");
    assert_eq!(h["x-forwarded-port"], http_addr(&gw).port().to_string());
    gw.shutdown().await;
}
