//! End to end over loopback, with certificates made by rcgen: client certificates
//! (`auth-tls-*`), per-host TLS versions, 421 across hosts on one connection, and the
//! certificate expiry metric.
#![cfg(test)]

mod support;

use std::net::SocketAddr;

use http::StatusCode;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use rustls::version::{TLS12, TLS13};
use support::*;
use tokio_rustls::TlsConnector;

/// Host `name.example.com` with its own certificate from `server_ca`, routed to `backend`,
/// with these annotations.
fn tls_host(
    server_ca: &TestCa,
    name: &str,
    backend: SocketAddr,
    annotations: &[(&str, &str)],
) -> String {
    let host = format!("{name}.example.com");
    let leaf = server_ca.leaf(&[&host]);
    let mut y = tls_secret(&format!("{name}-tls"), &leaf.cert_pem, &leaf.key_pem);
    let ing = tls_ingress(
        name,
        &format!("{name}-tls"),
        &[&host],
        &format!("svc-{name}"),
    );
    y.push_str(&if annotations.is_empty() {
        ing
    } else {
        annotate(&ing, annotations)
    });
    y.push_str(&service(&format!("svc-{name}"), &[backend]));
    y
}

/// One request over a new TLS connection made with `client` to `sni`, for `host`.
async fn over_tls(
    client: &TlsConnector,
    gw: &mse_proxy::GatewayHandle,
    sni: &str,
    host: &str,
) -> Reply {
    let stream = tls(client, https_addr(gw), sni).await;
    let (mut tx, conn) = http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let req = http::Request::get("/who")
        .header("host", host)
        .header("ssl-client-verify", "SUCCESS")
        .header("ssl-client-subject-dn", "CN=forged")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    send1(&mut tx, req).await
}

fn body(r: &Reply) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

fn with_cert(leaf: &Leaf) -> TlsConnector {
    client_cert_client(Some((&[leaf], leaf)), &[&TLS13, &TLS12])
}

fn without_cert() -> TlsConnector {
    client_cert_client(None, &[&TLS13, &TLS12])
}

#[tokio::test]
async fn verify_on_requires_a_certificate_from_the_ca_and_passes_it_upstream() {
    let backend = echo("mtls").await;
    let (server_ca, client_ca) = (TestCa::new(), TestCa::new());
    // Not known to the gateway (and not even named like its CA).
    let other_ca = TestCa::new().intermediate("other CA");
    let mut yaml = ca_secret("client-ca", &client_ca.cert_pem, None);
    yaml.push_str(&tls_host(
        &server_ca,
        "mtls",
        backend.addr(),
        &[
            ("auth-tls-secret", "client-ca"),
            ("auth-tls-pass-certificate-to-upstream", "true"),
            ("ssl-redirect", "false"),
        ],
    ));
    let (gw, table) = gateway(&yaml);
    assert!(
        !table
            .routes()
            .diagnostics()
            .iter()
            .any(|d| d.code == "security-not-enforced"),
        "{:?}",
        table.routes().diagnostics()
    );
    let host = "mtls.example.com";

    let good = client_ca.client("alice");
    let r = over_tls(&with_cert(&good), &gw, host, host).await;
    assert_eq!(r.status, StatusCode::OK, "{}", body(&r));
    assert_eq!(
        r.echoed_header("ssl-client-verify").as_deref(),
        Some("SUCCESS")
    );
    assert_eq!(
        r.echoed_header("ssl-client-subject-dn").as_deref(),
        Some("CN=alice,O=mse tests")
    );
    assert_eq!(
        r.echoed_header("ssl-client-issuer-dn").as_deref(),
        Some("CN=mse test CA")
    );
    let escaped = r.echoed_header("ssl-client-cert").unwrap();
    assert!(
        escaped.starts_with("-----BEGIN%20CERTIFICATE-----%0A"),
        "{escaped}"
    );
    let pem = escaped
        .replace("%0A", "\n")
        .replace("%20", " ")
        .replace("%2B", "+")
        .replace("%2F", "/")
        .replace("%3D", "=");
    assert_eq!(pem, good.cert_pem.replace("\r\n", "\n"));

    // A resumed session keeps the certificate it was made with.
    let alice = with_cert(&good);
    drop(over_tls(&alice, &gw, host, host).await);
    let stream = tls(&alice, https_addr(&gw), host).await;
    assert_eq!(
        stream.get_ref().1.handshake_kind(),
        Some(rustls::HandshakeKind::Resumed)
    );
    let (mut tx, conn) = http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let r = send1(&mut tx, get_req(host, "/")).await;
    assert_eq!(
        r.echoed_header("ssl-client-verify").as_deref(),
        Some("SUCCESS")
    );
    assert_eq!(
        r.echoed_header("ssl-client-subject-dn").as_deref(),
        Some("CN=alice,O=mse tests")
    );

    // No certificate, or one from another CA: 400, as ingress-nginx answers.
    let r = over_tls(&without_cert(), &gw, host, host).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        body(&r).contains("No required SSL certificate was sent"),
        "{}",
        body(&r)
    );
    let stranger = other_ca.client("mallory");
    let r = over_tls(&with_cert(&stranger), &gw, host, host).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        body(&r).contains("The SSL certificate error"),
        "{}",
        body(&r)
    );
    // Plain HTTP cannot carry a certificate: refused too (without ssl-redirect, which
    // would send it to HTTPS first).
    let r = get(http_addr(&gw), host, "/who").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(backend.requests(), 3);
    gw.shutdown().await;
}

#[tokio::test]
async fn optional_verifies_a_certificate_only_when_one_is_sent() {
    let backend = echo("opt").await;
    let (server_ca, client_ca) = (TestCa::new(), TestCa::new());
    // Not known to the gateway (and not even named like its CA).
    let other_ca = TestCa::new().intermediate("other CA");
    let mut yaml = ca_secret("client-ca", &client_ca.cert_pem, None);
    yaml.push_str(&tls_host(
        &server_ca,
        "opt",
        backend.addr(),
        &[
            ("auth-tls-secret", "client-ca"),
            ("auth-tls-verify-client", "optional"),
        ],
    ));
    let (gw, _) = gateway(&yaml);
    let host = "opt.example.com";
    let r = over_tls(&without_cert(), &gw, host, host).await;
    assert_eq!(r.status, StatusCode::OK);
    // The client's own ssl-client-* headers never reach the upstream.
    assert_eq!(
        r.echoed_header("ssl-client-verify").as_deref(),
        Some("NONE")
    );
    assert_eq!(r.echoed_header("ssl-client-subject-dn"), None);
    let r = over_tls(&with_cert(&client_ca.client("bob")), &gw, host, host).await;
    assert_eq!(
        r.echoed_header("ssl-client-verify").as_deref(),
        Some("SUCCESS")
    );
    // Without pass-certificate-to-upstream the certificate itself is not sent.
    assert_eq!(r.echoed_header("ssl-client-cert"), None);
    let r = over_tls(&with_cert(&other_ca.client("eve")), &gw, host, host).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    gw.shutdown().await;
}

#[tokio::test]
async fn optional_no_ca_passes_any_certificate_with_its_verdict() {
    let backend = echo("noca").await;
    let (server_ca, client_ca) = (TestCa::new(), TestCa::new());
    // Not known to the gateway (and not even named like its CA).
    let other_ca = TestCa::new().intermediate("other CA");
    let mut yaml = ca_secret("client-ca", &client_ca.cert_pem, None);
    yaml.push_str(&tls_host(
        &server_ca,
        "noca",
        backend.addr(),
        &[
            ("auth-tls-secret", "client-ca"),
            ("auth-tls-verify-client", "optional_no_ca"),
        ],
    ));
    let (gw, _) = gateway(&yaml);
    let host = "noca.example.com";
    let r = over_tls(&with_cert(&other_ca.client("eve")), &gw, host, host).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.echoed_header("ssl-client-verify").as_deref(),
        Some("FAILED:unable to get local issuer certificate")
    );
    assert_eq!(
        r.echoed_header("ssl-client-subject-dn").as_deref(),
        Some("CN=eve,O=mse tests")
    );
    let r = over_tls(&without_cert(), &gw, host, host).await;
    assert_eq!(
        r.echoed_header("ssl-client-verify").as_deref(),
        Some("NONE")
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn off_does_not_ask_for_a_certificate() {
    let backend = echo("off").await;
    let (server_ca, client_ca) = (TestCa::new(), TestCa::new());
    let mut yaml = ca_secret("client-ca", &client_ca.cert_pem, None);
    yaml.push_str(&tls_host(
        &server_ca,
        "off",
        backend.addr(),
        &[
            ("auth-tls-secret", "client-ca"),
            ("auth-tls-verify-client", "off"),
        ],
    ));
    let (gw, _) = gateway(&yaml);
    let host = "off.example.com";
    // The client has a certificate but is never asked for it.
    let r = over_tls(&with_cert(&client_ca.client("carol")), &gw, host, host).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.echoed_header("ssl-client-verify").as_deref(),
        Some("NONE")
    );
    assert_eq!(r.echoed_header("ssl-client-subject-dn"), None);
    gw.shutdown().await;
}

#[tokio::test]
async fn error_page_redirects_a_client_without_a_valid_certificate() {
    let backend = echo("page").await;
    let (server_ca, client_ca) = (TestCa::new(), TestCa::new());
    let mut yaml = ca_secret("client-ca", &client_ca.cert_pem, None);
    yaml.push_str(&tls_host(
        &server_ca,
        "page",
        backend.addr(),
        &[
            ("auth-tls-secret", "client-ca"),
            (
                "auth-tls-error-page",
                "https://errors.example.com/cert.html",
            ),
        ],
    ));
    let (gw, _) = gateway(&yaml);
    let host = "page.example.com";
    let r = over_tls(&without_cert(), &gw, host, host).await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(
        r.headers["location"].to_str().unwrap(),
        "https://errors.example.com/cert.html"
    );
    assert_eq!(backend.requests(), 0);
    gw.shutdown().await;
}

#[tokio::test]
async fn verify_depth_limits_the_cas_above_the_client_certificate() {
    let backend = echo("depth").await;
    let (server_ca, root) = (TestCa::new(), TestCa::new());
    let intermediate = root.intermediate("mse test intermediate");
    let leaf = intermediate.client("dave");
    let chain = Leaf {
        der: intermediate.cert.clone(),
        cert_pem: intermediate.cert_pem.clone(),
        key_pem: String::new(),
    };
    let client = client_cert_client(Some((&[&leaf, &chain], &leaf)), &[&TLS13, &TLS12]);
    let mut yaml = ca_secret("root-ca", &root.cert_pem, None);
    yaml.push_str(&tls_host(
        &server_ca,
        "one",
        backend.addr(),
        &[("auth-tls-secret", "root-ca")],
    ));
    yaml.push_str(&tls_host(
        &server_ca,
        "two",
        backend.addr(),
        &[
            ("auth-tls-secret", "root-ca"),
            ("auth-tls-verify-depth", "2"),
        ],
    ));
    let (gw, _) = gateway(&yaml);
    // Depth 1 (the default): only certificates the CA signed itself.
    let r = over_tls(&client, &gw, "one.example.com", "one.example.com").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", body(&r));
    let r = over_tls(&client, &gw, "two.example.com", "two.example.com").await;
    assert_eq!(r.status, StatusCode::OK, "{}", body(&r));
    assert_eq!(
        r.echoed_header("ssl-client-issuer-dn").as_deref(),
        Some("CN=mse test intermediate")
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn a_revoked_client_certificate_is_refused() {
    let backend = echo("crl").await;
    let (server_ca, client_ca) = (TestCa::new(), TestCa::new());
    let revoked = client_ca.client_numbered("revoked", Some(4242));
    let fine = client_ca.client_numbered("fine", Some(4243));
    let crl = client_ca.crl(&[4242]);
    let mut yaml = ca_secret("client-ca", &client_ca.cert_pem, Some(&crl));
    yaml.push_str(&tls_host(
        &server_ca,
        "crl",
        backend.addr(),
        &[
            ("auth-tls-secret", "client-ca"),
            ("auth-tls-verify-client", "optional_no_ca"),
        ],
    ));
    let (gw, _) = gateway(&yaml);
    let host = "crl.example.com";
    let r = over_tls(&with_cert(&revoked), &gw, host, host).await;
    assert_eq!(
        r.echoed_header("ssl-client-verify").as_deref(),
        Some("FAILED:certificate revoked")
    );
    let r = over_tls(&with_cert(&fine), &gw, host, host).await;
    assert_eq!(
        r.echoed_header("ssl-client-verify").as_deref(),
        Some("SUCCESS")
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn a_crl_past_its_next_update_fails_verification() {
    let backend = echo("stale").await;
    let (server_ca, client_ca) = (TestCa::new(), TestCa::new());
    let crl = client_ca.crl_until(&[1], 2021);
    let mut yaml = ca_secret("client-ca", &client_ca.cert_pem, Some(&crl));
    yaml.push_str(&tls_host(
        &server_ca,
        "stale",
        backend.addr(),
        &[
            ("auth-tls-secret", "client-ca"),
            ("auth-tls-verify-client", "optional_no_ca"),
        ],
    ));
    let (gw, _) = gateway(&yaml);
    let host = "stale.example.com";
    let r = over_tls(&with_cert(&client_ca.client("gina")), &gw, host, host).await;
    assert_eq!(
        r.echoed_header("ssl-client-verify").as_deref(),
        Some("FAILED:CRL has expired")
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn min_and_max_versions_refuse_clients_limited_to_another_version() {
    let backend = echo("v").await;
    let server_ca = TestCa::new();
    let mut yaml = tls_host(
        &server_ca,
        "new",
        backend.addr(),
        &[("tls-min-protocol-version", "TLSv1.3")],
    );
    yaml.push_str(&tls_host(
        &server_ca,
        "old",
        backend.addr(),
        &[("tls-max-protocol-version", "TLSv1.2")],
    ));
    yaml.push_str(&tls_host(&server_ca, "any", backend.addr(), &[]));
    let (gw, _) = gateway(&yaml);
    let only12 = client_cert_client(None, &[&TLS12]);
    let only13 = client_cert_client(None, &[&TLS13]);
    let refused = |client: TlsConnector, sni: &'static str| {
        let addr = https_addr(&gw);
        async move {
            let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            let name = rustls::pki_types::ServerName::try_from(sni).unwrap();
            bounded("handshake", client.connect(name, tcp))
                .await
                .is_err()
        }
    };
    assert!(refused(only12.clone(), "new.example.com").await);
    assert!(refused(only13.clone(), "old.example.com").await);
    let s = tls(&only13, https_addr(&gw), "new.example.com").await;
    assert_eq!(
        s.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    let s = tls(&only12, https_addr(&gw), "old.example.com").await;
    assert_eq!(
        s.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    // A host without a policy of its own still takes both.
    for client in [&only12, &only13] {
        let r = over_tls(client, &gw, "any.example.com", "any.example.com").await;
        assert_eq!(r.status, StatusCode::OK);
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn a_host_with_another_certificate_or_policy_on_the_same_connection_gets_421() {
    let backend = echo("multi").await;
    let (server_ca, client_ca) = (TestCa::new(), TestCa::new());
    // One certificate covers a, b and c; a and c have no client certificates, b does.
    let leaf = server_ca.leaf(&["a.example.com", "b.example.com", "c.example.com"]);
    let mut yaml = tls_secret("shared-tls", &leaf.cert_pem, &leaf.key_pem);
    yaml.push_str(&ca_secret("client-ca", &client_ca.cert_pem, None));
    yaml.push_str(&tls_ingress(
        "ac",
        "shared-tls",
        &["a.example.com", "c.example.com"],
        "svc",
    ));
    yaml.push_str(&annotate(
        &tls_ingress("b", "shared-tls", &["b.example.com"], "svc"),
        &[("auth-tls-secret", "client-ca")],
    ));
    yaml.push_str(&tls_host(&server_ca, "d", backend.addr(), &[]));
    yaml.push_str(&service("svc", &[backend.addr()]));
    let (gw, _) = gateway(&yaml);
    let client = with_cert(&client_ca.client("frank"));
    let stream = tls(&client, https_addr(&gw), "a.example.com").await;
    let (mut tx, conn) = http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    // Same certificate and policy: reuse is fine.
    let r = send1(&mut tx, get_req("c.example.com", "/")).await;
    assert_eq!(r.status, StatusCode::OK);
    // Same certificate, other client-certificate policy: 421.
    let r = send1(&mut tx, get_req("b.example.com", "/")).await;
    assert_eq!(r.status, StatusCode::MISDIRECTED_REQUEST);
    // Same (default) policy, other certificate: 421.
    let r = send1(&mut tx, get_req("d.example.com", "/")).await;
    assert_eq!(r.status, StatusCode::MISDIRECTED_REQUEST);
    let r = send1(&mut tx, get_req("a.example.com", "/")).await;
    assert_eq!(r.status, StatusCode::OK);
    // Made for b, the connection serves b (with the certificate checked) but not a.
    let stream = tls(&client, https_addr(&gw), "b.example.com").await;
    let (mut tx, conn) = http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let r = send1(&mut tx, get_req("b.example.com", "/")).await;
    assert_eq!(
        r.echoed_header("ssl-client-verify").as_deref(),
        Some("SUCCESS")
    );
    let r = send1(&mut tx, get_req("a.example.com", "/")).await;
    assert_eq!(r.status, StatusCode::MISDIRECTED_REQUEST);
    gw.shutdown().await;
}

#[tokio::test]
async fn each_served_secret_reports_when_its_certificate_expires() {
    let backend = echo("exp").await;
    let server_ca = TestCa::new();
    let yaml = tls_host(&server_ca, "exp", backend.addr(), &[]);
    let (gw, table) = gateway(&yaml);
    let (_, not_after) = table.routes().certificates()[0].validity.unwrap();
    assert_eq!(
        table.metrics().ssl_expire_time("default", "exp-tls"),
        Some(not_after)
    );
    let text = table.metrics().encode();
    assert!(
        text.contains(&format!(
            "mse_ssl_expire_time_seconds{{namespace=\"default\",secret=\"exp-tls\"}} {not_after}"
        )),
        "{text}"
    );
    // A table without the Secret drops it.
    table.publish(compile_yaml(&routed_to(&[("exp", backend.addr())])));
    assert_eq!(table.metrics().ssl_expire_time("default", "exp-tls"), None);
    gw.shutdown().await;
}

#[tokio::test]
async fn the_global_ssl_protocols_apply_to_hosts_without_versions_of_their_own() {
    let backend = echo("g").await;
    let server_ca = TestCa::new();
    let mut yaml = gateway_config_map(&[
        ("ssl-protocols", "TLSv1.3"),
        ("ssl-ciphers", "TLS_AES_256_GCM_SHA384"),
    ]);
    yaml.push_str("---\n");
    yaml.push_str(&tls_host(&server_ca, "any", backend.addr(), &[]));
    yaml.push_str(&tls_host(
        &server_ca,
        "old",
        backend.addr(),
        &[("tls-max-protocol-version", "TLSv1.2")],
    ));
    let table = compile_yaml_with(&yaml, &configmap_options());
    let bad: Vec<_> = table
        .diagnostics()
        .iter()
        .filter(|d| d.severity != mse_model::Severity::Info)
        .collect();
    assert!(bad.is_empty(), "{bad:?}");
    let (gw, _) = gateway_serving(table, |_| {});
    let only12 = client_cert_client(None, &[&TLS12]);
    let only13 = client_cert_client(None, &[&TLS13]);
    let tcp = tokio::net::TcpStream::connect(https_addr(&gw))
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("any.example.com").unwrap();
    assert!(
        bounded("handshake", only12.connect(name, tcp))
            .await
            .is_err()
    );
    let s = tls(&only13, https_addr(&gw), "any.example.com").await;
    assert_eq!(
        s.get_ref().1.negotiated_cipher_suite().map(|c| c.suite()),
        Some(rustls::CipherSuite::TLS13_AES_256_GCM_SHA384)
    );
    // The host's own maximum wins over the global minimum.
    let s = tls(&only12, https_addr(&gw), "old.example.com").await;
    assert_eq!(
        s.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn an_open_connection_does_not_outlive_a_host_policy_change() {
    let backend = echo("live").await;
    let (server_ca, client_ca) = (TestCa::new(), TestCa::new());
    let open = tls_host(&server_ca, "live", backend.addr(), &[]);
    let (gw, table) = gateway(&open);
    let stream = tls(&without_cert(), https_addr(&gw), "live.example.com").await;
    let (mut tx, conn) = http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let host = "live.example.com";
    assert_eq!(
        send1(&mut tx, get_req(host, "/")).await.status,
        StatusCode::OK
    );
    // A new table with the same policy: the connection goes on.
    table.publish(compile_yaml(&open));
    assert_eq!(
        send1(&mut tx, get_req(host, "/")).await.status,
        StatusCode::OK
    );
    // The host now asks for client certificates: the connection made without one is
    // sent to make a new one.
    let mut guarded = ca_secret("client-ca", &client_ca.cert_pem, None);
    guarded.push_str(&tls_host(
        &server_ca,
        "live",
        backend.addr(),
        &[("auth-tls-secret", "client-ca")],
    ));
    table.publish(compile_yaml(&guarded));
    assert_eq!(
        send1(&mut tx, get_req(host, "/")).await.status,
        StatusCode::MISDIRECTED_REQUEST
    );
    let r = over_tls(&without_cert(), &gw, host, host).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    gw.shutdown().await;
}

#[tokio::test]
async fn match_cn_refuses_other_subjects_with_403() {
    let backend = echo("cn").await;
    let (server_ca, client_ca) = (TestCa::new(), TestCa::new());
    let mut yaml = ca_secret("client-ca", &client_ca.cert_pem, None);
    yaml.push_str(&tls_host(
        &server_ca,
        "cn",
        backend.addr(),
        &[
            ("auth-tls-secret", "client-ca"),
            ("auth-tls-verify-client", "optional"),
            ("auth-tls-match-cn", "CN=(alice|bob),"),
        ],
    ));
    let (gw, _) = gateway(&yaml);
    let host = "cn.example.com";
    let r = over_tls(&with_cert(&client_ca.client("bob")), &gw, host, host).await;
    assert_eq!(r.status, StatusCode::OK);
    for client in [with_cert(&client_ca.client("eve")), without_cert()] {
        let r = over_tls(&client, &gw, host, host).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert_eq!(body(&r), "client certificate unauthorized");
    }
    assert_eq!(backend.requests(), 1);
    gw.shutdown().await;
}
