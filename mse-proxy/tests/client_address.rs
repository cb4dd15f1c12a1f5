//! The client address and the IP lists, end to end over loopback: route, host and gateway
//! lists refusing and admitting real clients (IPv4, and IPv6 where `::1` exists), a
//! trusted proxy's X-Forwarded-For, and PROXY protocol v1 and v2 headers written by hand
//! on raw sockets, before plain HTTP and before TLS.
#![cfg(test)]

mod http1_client;
mod support;

use std::net::SocketAddr;
use std::sync::Arc;

use mse_router::RouteTable;
use mse_router::global::GlobalFlags;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use http1_client::*;
use support::*;

/// `a.example.com` routed to `backend` with `annotations`, compiled with the gateway's
/// ConfigMap holding `data` and the `flags`.
fn table_of(
    backend: SocketAddr,
    annotations: &[(&str, &str)],
    data: &[(&str, &str)],
    flags: GlobalFlags,
) -> Arc<RouteTable> {
    let yaml = format!(
        "{}{}",
        annotate(&routed_to(&[("a", backend)]), annotations),
        gateway_config_map(data)
    );
    let mut opts = configmap_options();
    opts.flags = flags;
    let t = compile_yaml_with(&yaml, &opts);
    let problems: Vec<_> = t
        .diagnostics()
        .iter()
        .filter(|d| d.severity >= mse_model::Severity::Warning && d.code != "no-endpoints")
        .collect();
    assert!(problems.is_empty(), "{problems:#?}");
    t
}

fn table(backend: SocketAddr, annotations: &[(&str, &str)]) -> Arc<RouteTable> {
    table_of(backend, annotations, &[], GlobalFlags::default())
}

async fn status(addr: SocketAddr, req: &str) -> u16 {
    Client::connect(addr).await.ask(req).await.status
}

#[tokio::test]
async fn route_lists_admit_and_refuse_loopback_clients() {
    let a = echo("a").await;
    let (gw, shared) = gateway_serving(table(a.addr(), &[]), |_| {});
    let addr = http_addr(&gw);
    let cases: [(&[(&str, &str)], u16); 6] = [
        (&[("whitelist-source-range", "10.0.0.0/8")], 403),
        (&[("whitelist-source-range", "10.0.0.0/8, 127.0.0.1")], 200),
        (&[("allowlist-source-range", "127.0.0.0/8")], 200),
        (&[("denylist-source-range", "127.0.0.0/8")], 403),
        (
            &[(
                "mse.ingress.kubernetes.io/blacklist-source-range",
                "127.0.0.1",
            )],
            403,
        ),
        (
            &[
                ("whitelist-source-range", "127.0.0.0/8"),
                ("denylist-source-range", "127.0.0.1"),
            ],
            403,
        ),
    ];
    for (annotations, want) in cases {
        shared.publish(table(a.addr(), annotations));
        assert_eq!(status(addr, &get_a("/")).await, want, "{annotations:?}");
    }
    // A bad entry closes the route: 503, never open.
    let bad = compile_yaml_with(
        &annotate(
            &routed_to(&[("a", a.addr())]),
            &[("whitelist-source-range", "127.0.0.1, 10.0.0.0/33")],
        ),
        &configmap_options(),
    );
    shared.publish(bad);
    assert_eq!(status(addr, &get_a("/")).await, 503);
    assert_eq!(a.requests(), 2);
    gw.shutdown().await;
}

#[tokio::test]
async fn lists_apply_to_ipv6_clients_on_the_ipv6_loopback() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback here: the IPv6 case is not run");
        return;
    }
    let a = echo("a").await;
    let (gw, shared) =
        gateway_serving(table(a.addr(), &[("whitelist-source-range", "::1")]), |c| {
            c.http_addr = Some("[::1]:0".parse().unwrap());
        });
    let addr = http_addr(&gw);
    let r = Client::connect(addr).await.ask(get_a("/")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["headers"]["x-real-ip"], "::1");
    shared.publish(table(
        a.addr(),
        &[("whitelist-source-range", "127.0.0.1, 2001:db8::/32")],
    ));
    assert_eq!(status(addr, &get_a("/")).await, 403);
    shared.publish(table(a.addr(), &[("denylist-source-range", "::/0")]));
    assert_eq!(status(addr, &get_a("/")).await, 403);
    gw.shutdown().await;
}

#[tokio::test]
async fn host_lists_of_one_ingress_guard_every_route_of_the_host() {
    let a = echo("a").await;
    let b = echo("b").await;
    let yaml = |list: &str| {
        let guarded = annotate(
            &ingress("a", Some("a.example.com"), &[("/", "Prefix", "svc-a")]),
            &[(
                "mse.ingress.kubernetes.io/domain-whitelist-source-range",
                list,
            )],
        );
        let other = ingress("b", Some("a.example.com"), &[("/b", "Prefix", "svc-b")]);
        format!(
            "{guarded}{other}{}{}",
            service("svc-a", &[a.addr()]),
            service("svc-b", &[b.addr()])
        )
    };
    let (gw, shared) = gateway(&yaml("10.0.0.0/8"));
    let addr = http_addr(&gw);
    assert_eq!(status(addr, &get_a("/")).await, 403);
    assert_eq!(status(addr, &get_a("/b")).await, 403);
    shared.publish(compile_yaml(&yaml("127.0.0.0/8")));
    assert_eq!(status(addr, &get_a("/")).await, 200);
    assert_eq!(status(addr, &get_a("/b")).await, 200);
    gw.shutdown().await;
}

#[tokio::test]
async fn the_gateway_deny_list_comes_first() {
    let a = echo("a").await;
    let deny = GlobalFlags::default().with("--deny-source-range", "127.0.0.1");
    let (gw, shared) = gateway_serving(
        table_of(
            a.addr(),
            &[("whitelist-source-range", "127.0.0.1")],
            &[],
            deny,
        ),
        |_| {},
    );
    let addr = http_addr(&gw);
    assert_eq!(status(addr, &get_a("/")).await, 403);
    let allow = GlobalFlags::default().with("--allow-source-range", "10.0.0.0/8");
    shared.publish(table_of(a.addr(), &[], &[], allow));
    assert_eq!(status(addr, &get_a("/")).await, 403);
    let allow = GlobalFlags::default().with("--allow-source-range", "10.0.0.0/8, 127.0.0.1");
    shared.publish(table_of(a.addr(), &[], &[], allow));
    assert_eq!(status(addr, &get_a("/")).await, 200);
    gw.shutdown().await;
}

fn from_proxy(xff: &str) -> String {
    format!("GET / HTTP/1.1\r\nHost: a.example.com\r\nX-Forwarded-For: {xff}\r\n\r\n")
}

#[tokio::test]
async fn a_trusted_proxys_forwarded_for_names_the_client_the_lists_check() {
    let a = echo("a").await;
    let trusted = || GlobalFlags::default().with("--trusted-proxies", "127.0.0.1, 10.0.0.0/8");
    let allow = [("whitelist-source-range", "203.0.113.0/24")];
    let (gw, shared) = gateway_serving(table_of(a.addr(), &allow, &[], trusted()), |_| {});
    let addr = http_addr(&gw);
    // The right-most address that is not a trusted proxy is the client.
    let r = Client::connect(addr)
        .await
        .ask(from_proxy("198.51.100.1, 203.0.113.7, 10.1.1.1"))
        .await;
    assert_eq!(r.status, 200);
    let h = &r.json()["headers"];
    assert_eq!(h["x-real-ip"], "203.0.113.7");
    assert_eq!(
        h["x-forwarded-for"],
        "198.51.100.1, 203.0.113.7, 10.1.1.1, 127.0.0.1"
    );
    // A client the proxy names outside the list is refused, whatever is further left.
    assert_eq!(
        status(addr, &from_proxy("203.0.113.7, 198.51.100.1")).await,
        403
    );
    // Without the header the proxy itself is the client: refused too.
    assert_eq!(status(addr, &get_a("/")).await, 403);
    // Not trusted: the forwarded list is not believed, the peer is checked.
    shared.publish(table_of(a.addr(), &allow, &[], GlobalFlags::default()));
    assert_eq!(status(addr, &from_proxy("203.0.113.7")).await, 403);
    gw.shutdown().await;
}

/// A PROXY protocol v2 header for TCP from `src` to `dst`, written byte by byte as the
/// specification lays it out.
fn v2_header(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.push(0x21); // version 2, PROXY
    let mut addrs = Vec::new();
    let family = match (src, dst) {
        (SocketAddr::V4(s), SocketAddr::V4(d)) => {
            addrs.extend_from_slice(&s.ip().octets());
            addrs.extend_from_slice(&d.ip().octets());
            0x11 // TCP over IPv4
        }
        (SocketAddr::V6(s), SocketAddr::V6(d)) => {
            addrs.extend_from_slice(&s.ip().octets());
            addrs.extend_from_slice(&d.ip().octets());
            0x21 // TCP over IPv6
        }
        _ => panic!("mixed families"),
    };
    addrs.extend_from_slice(&src.port().to_be_bytes());
    addrs.extend_from_slice(&dst.port().to_be_bytes());
    h.push(family);
    h.extend_from_slice(&(addrs.len() as u16).to_be_bytes());
    h.extend_from_slice(&addrs);
    h
}

fn proxy_protocol_table(backend: SocketAddr, annotations: &[(&str, &str)]) -> Arc<RouteTable> {
    table_of(
        backend,
        annotations,
        &[],
        GlobalFlags::default().with("--proxy-protocol", "true"),
    )
}

#[tokio::test]
async fn proxy_protocol_v1_and_v2_name_the_client_on_the_http_listener() {
    let a = echo("a").await;
    let allow = [("whitelist-source-range", "203.0.113.0/24, 2001:db8::/32")];
    let (gw, _shared) = gateway_serving(proxy_protocol_table(a.addr(), &allow), |_| {});
    let addr = http_addr(&gw);
    let v1 = |src: &str| format!("PROXY TCP4 {src} 127.0.0.1 40000 80\r\n{}", get_a("/"));
    // v1, allowed; the header and the request in one write.
    let r = Client::connect(addr).await.ask(v1("203.0.113.7")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["headers"]["x-real-ip"], "203.0.113.7");
    assert_eq!(r.json()["headers"]["x-forwarded-for"], "203.0.113.7");
    // v1, refused: the header's address is what the list checks.
    assert_eq!(status(addr, &v1("198.51.100.1")).await, 403);
    // v1 over IPv6 addresses.
    let r = Client::connect(addr)
        .await
        .ask(format!(
            "PROXY TCP6 2001:db8::9 ::1 40000 80\r\n{}",
            get_a("/")
        ))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["headers"]["x-real-ip"], "2001:db8::9");
    // v2, IPv4 and IPv6, the header in a write of its own.
    for (src, dst, want) in [
        ("203.0.113.9:1234", "127.0.0.1:80", 200),
        ("198.51.100.9:1234", "127.0.0.1:80", 403),
        ("[2001:db8::5]:1234", "[::1]:80", 200),
    ] {
        let src: SocketAddr = src.parse().unwrap();
        let mut c = Client::connect(addr).await;
        c.send(v2_header(src, dst.parse().unwrap())).await;
        let r = c.ask(get_a("/")).await;
        assert_eq!(r.status, want, "{src}");
        if want == 200 {
            assert_eq!(r.json()["headers"]["x-real-ip"], src.ip().to_string());
        }
        // Keep-alive: the next request on the connection has the same client.
        if want == 200 {
            assert_eq!(c.ask(get_a("/again")).await.status, 200);
        }
    }
    assert_eq!(a.requests(), 6);
    gw.shutdown().await;
}

#[tokio::test]
async fn without_a_valid_proxy_header_the_connection_is_closed() {
    let a = echo("a").await;
    let (gw, _shared) = gateway_serving(proxy_protocol_table(a.addr(), &[]), |_| {});
    let addr = http_addr(&gw);
    for opening in [
        get_a("/"),
        format!("PROXY TCP4 999.0.0.1 127.0.0.1 1 80\r\n{}", get_a("/")),
        format!("PROXY SCTP 10.0.0.1 127.0.0.1 1 80\r\n{}", get_a("/")),
    ] {
        let mut c = Client::connect(addr).await;
        c.send(&opening).await;
        assert!(c.closes().await, "{opening:?}");
    }
    // A header that never completes is closed at the header timeout (given explicitly,
    // so the test does not wait for the default).
    let yaml_timeout = table_of(
        a.addr(),
        &[],
        &[("client-header-timeout", "1")],
        GlobalFlags::default().with("--proxy-protocol", "true"),
    );
    let (gw2, _s) = gateway_serving(yaml_timeout, |_| {});
    let mut c = Client::connect(http_addr(&gw2)).await;
    c.send("PROXY TCP4 203.0.113.1 ").await;
    assert!(c.closes().await);
    assert_eq!(a.requests(), 0);
    gw.shutdown().await;
    gw2.shutdown().await;
}

#[tokio::test]
async fn the_proxy_header_comes_before_tls_on_the_https_listener() {
    let a = echo("a").await;
    let ca = TestCa::new();
    let leaf = ca.leaf(&["a.example.com"]);
    let yaml = format!(
        "{}{}{}",
        annotate(
            &routed_to(&[("a", a.addr())]),
            &[
                ("whitelist-source-range", "203.0.113.0/24"),
                ("ssl-redirect", "false")
            ]
        ),
        tls_secret("a-cert", &leaf.cert_pem, &leaf.key_pem),
        tls_ingress("a-tls", "a-cert", &["a.example.com"], "svc-a"),
    );
    let mut opts = configmap_options();
    opts.flags = GlobalFlags::default().with("--proxy-protocol", "true");
    let (gw, _shared) = gateway_serving(compile_yaml_with(&yaml, &opts), |_| {});
    let connector = trusting_client(&[b"http/1.1"]);
    for (src, want) in [("203.0.113.20:5000", "200"), ("198.51.100.20:5000", "403")] {
        let mut tcp = TcpStream::connect(https_addr(&gw)).await.unwrap();
        let src: SocketAddr = src.parse().unwrap();
        tcp.write_all(&v2_header(src, https_addr(&gw)))
            .await
            .unwrap();
        let name = rustls::pki_types::ServerName::try_from("a.example.com").unwrap();
        let mut s = tokio::time::timeout(WAIT, connector.connect(name, tcp))
            .await
            .expect("handshake in time")
            .expect("handshake");
        s.write_all(b"GET / HTTP/1.1\r\nHost: a.example.com\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut out = Vec::new();
        let _ = tokio::time::timeout(WAIT, s.read_to_end(&mut out))
            .await
            .expect("answer in time");
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with(&format!("HTTP/1.1 {want}")), "{text}");
        if want == "200" {
            assert!(text.contains("\"x-real-ip\":\"203.0.113.20\""), "{text}");
            assert!(text.contains("\"x-forwarded-proto\":\"https\""), "{text}");
        }
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn a_proxy_protocol_client_behind_a_trusted_proxy_is_named_by_its_list() {
    let a = echo("a").await;
    let flags = GlobalFlags::default()
        .with("--proxy-protocol", "true")
        .with("--trusted-proxies", "10.0.0.0/8");
    let allow = [("whitelist-source-range", "203.0.113.0/24")];
    let (gw, _shared) = gateway_serving(table_of(a.addr(), &allow, &[], flags), |_| {});
    let addr = http_addr(&gw);
    // The load balancer says the connection came from 10.0.0.5, a trusted proxy, which
    // names the client in X-Forwarded-For.
    let req = format!(
        "PROXY TCP4 10.0.0.5 127.0.0.1 40000 80\r\n{}",
        from_proxy("203.0.113.50")
    );
    let r = Client::connect(addr).await.ask(req).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["headers"]["x-real-ip"], "203.0.113.50");
    assert_eq!(
        r.json()["headers"]["x-forwarded-for"],
        "203.0.113.50, 10.0.0.5"
    );
    // The same header from a client the load balancer names directly is not believed.
    let req = format!(
        "PROXY TCP4 198.51.100.5 127.0.0.1 40000 80\r\n{}",
        from_proxy("203.0.113.50")
    );
    assert_eq!(status(addr, &req).await, 403);
    gw.shutdown().await;
}
