//! Certificate rotation in file mode: a Secret changed in the watched directory is served
//! to new handshakes; an expired certificate is served too, with a diagnostic and its
//! expiry in the metrics.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail the test loudly"
)]

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use mse_gateway::{Options, Running};
use rcgen::{CertificateParams, KeyPair};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use support::{PATIENCE, admin_json, backends, client, eventually, get};

/// A self-signed certificate for `rotate.test`, valid in `[from, to]` (years), and its
/// Secret `rotate-tls`.
fn secret(from: i32, to: i32) -> (CertificateDer<'static>, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["rotate.test".to_owned()]).unwrap();
    params.not_before = rcgen::date_time_ymd(from, 1, 1);
    params.not_after = rcgen::date_time_ymd(to, 1, 1);
    let cert = params.self_signed(&key).unwrap();
    let indent = |pem: String| {
        pem.lines()
            .map(|l| format!("    {l}\n"))
            .collect::<String>()
    };
    let yaml = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{ name: rotate-tls, namespace: e2e }}\ntype: kubernetes.io/tls\nstringData:\n  tls.crt: |\n{}  tls.key: |\n{}",
        indent(cert.pem()),
        indent(key.serialize_pem())
    );
    (cert.der().clone(), yaml)
}

fn write_atomic(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp~");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// The leaf a new TLS handshake for `rotate.test` gets.
async fn served_leaf(addr: SocketAddr) -> CertificateDer<'static> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
        .with_no_client_auth();
    let tcp = tokio::time::timeout(PATIENCE, TcpStream::connect(addr))
        .await
        .unwrap()
        .unwrap();
    let name = ServerName::try_from("rotate.test").unwrap();
    let stream = tokio::time::timeout(
        PATIENCE,
        TlsConnector::from(Arc::new(config)).connect(name, tcp),
    )
    .await
    .unwrap()
    .unwrap();
    stream.get_ref().1.peer_certificates().unwrap()[0].clone()
}

async fn start(dir: &Path) -> Running {
    let mut o = Options::new(vec![dir.to_path_buf()]);
    o.http_addr = Some("127.0.0.1:0".parse().unwrap());
    o.https_addr = Some("127.0.0.1:0".parse().unwrap());
    o.admin_addr = "127.0.0.1:0".parse().unwrap();
    o.workers = 2;
    o.access_log = false;
    tokio::time::timeout(Duration::from_secs(30), mse_gateway::start(o))
        .await
        .expect("start timed out")
        .expect("start failed")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_secret_is_served_to_new_handshakes_and_an_expired_one_is_reported() {
    let b = backends(&["web"]).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let a = b[0].addr();
    std::fs::write(
        d.join("app.yaml"),
        format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{ name: web, namespace: e2e }}\nspec: {{ ports: [{{ name: http, port: 80, targetPort: {p} }}] }}\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{ name: web-1, namespace: e2e, labels: {{ kubernetes.io/service-name: web }} }}\naddressType: IPv4\nports: [{{ name: http, port: {p} }}]\nendpoints: [{{ addresses: [\"{ip}\"] }}]\n---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{ name: app, namespace: e2e }}\nspec:\n  ingressClassName: mse\n  tls: [{{ hosts: [rotate.test], secretName: rotate-tls }}]\n  rules: [{{ host: rotate.test, http: {{ paths: [{{ path: /, pathType: Prefix, backend: {{ service: {{ name: web, port: {{ number: 80 }} }} }} }}] }} }}]\n",
            p = a.port(),
            ip = a.ip()
        ),
    )
    .unwrap();
    let secret_file = d.join("secret.yaml");
    let (first, yaml) = secret(2020, 2090);
    std::fs::write(&secret_file, yaml).unwrap();
    let g = start(d).await;
    let https = g.https_addr().unwrap();
    assert_eq!(served_leaf(https).await, first);

    // Rotation: the new certificate is served to new handshakes.
    let (second, yaml) = secret(2021, 2091);
    write_atomic(&secret_file, &yaml);
    eventually("the rotated certificate is served", || async {
        served_leaf(https).await == second
    })
    .await;

    // An expired certificate is served as NGINX does, with a warning and its expiry.
    let (expired, yaml) = secret(2001, 2002);
    write_atomic(&secret_file, &yaml);
    eventually("the expired certificate is served", || async {
        served_leaf(https).await == expired
    })
    .await;
    let c = client();
    let diags = admin_json(&c, &g, "/debug/diagnostics").await;
    let expiry = diags
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["code"] == "certificate-expired")
        .unwrap_or_else(|| panic!("no certificate-expired diagnostic: {diags}"));
    assert_eq!(expiry["severity"], "warning", "{expiry}");
    let metrics = get(&c, g.admin_addr(), "admin", "/metrics").await.body;
    // 2002-01-01T00:00:00Z
    assert!(
        metrics.contains(
            "mse_ssl_expire_time_seconds{namespace=\"e2e\",secret=\"rotate-tls\"} 1009843200"
        ),
        "{metrics}"
    );
    g.shutdown().await;
}

#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
