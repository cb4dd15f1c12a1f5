//! Helpers shared by the end-to-end tests: route tables from YAML, gateways on loopback,
//! real HTTP/1.1, HTTP/2 and TLS clients, and certificates made with rcgen.
#![cfg(test)]
// Each test binary uses a different subset of these helpers, so an `expect` would be
// unfulfilled in some of them.
#![allow(
    dead_code,
    reason = "each test binary uses a different subset of the helpers"
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use mse_model::{Severity, Snapshot, load_manifests};
use mse_proxy::echo::EchoServer;
use mse_proxy::{Gateway, GatewayHandle, Metrics, ProxyConfig, SharedTable};
use mse_router::{CompileOptions, RouteTable, compile};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// The bound on every network step of a test.
pub(crate) const STEP: Duration = Duration::from_secs(10);

/// Logs to the test output when `RUST_LOG` is set.
pub(crate) fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// Runs `fut` within [`STEP`] (times a factor), failing the test past it.
pub(crate) async fn bounded<F: Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(STEP * 3, fut).await {
        Ok(v) => v,
        Err(_) => panic!("{what} took longer than {:?}", STEP * 3),
    }
}

// === route tables ===

static GENERATION: AtomicU64 = AtomicU64::new(1);

/// Compiles manifests into a route table, failing the test on any load error.
pub(crate) fn compile_yaml(yaml: &str) -> Arc<RouteTable> {
    compile_yaml_with(yaml, &CompileOptions::default())
}

/// The options of a gateway whose global configuration is the ConfigMap
/// `ingress/gateway` (see [`gateway_config_map`]).
pub(crate) fn configmap_options() -> CompileOptions {
    CompileOptions {
        configmap: Some("ingress/gateway".parse().expect("a ConfigMap reference")),
        ..CompileOptions::default()
    }
}

/// The ConfigMap `ingress/gateway` with these ingress-nginx keys.
pub(crate) fn gateway_config_map(data: &[(&str, &str)]) -> String {
    let mut y = "---\napiVersion: v1\nkind: ConfigMap\nmetadata: { name: gateway, namespace: ingress }\ndata:\n".to_owned();
    for (k, v) in data {
        y.push_str(&format!("  {k}: {v:?}\n"));
    }
    y
}

/// [`compile_yaml`] with `opts`.
pub(crate) fn compile_yaml_with(yaml: &str, opts: &CompileOptions) -> Arc<RouteTable> {
    let loaded = load_manifests(yaml, Some("test.yaml"));
    let errors: Vec<_> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .collect();
    assert!(errors.is_empty(), "manifests do not load: {errors:#?}");
    let mut snapshot = Snapshot {
        generation: GENERATION.fetch_add(1, Ordering::Relaxed),
        ..Default::default()
    };
    snapshot.extend(loaded.objects);
    Arc::new(compile(&snapshot, opts))
}

/// One path of an Ingress rule: path, pathType, Service name (port 80).
pub(crate) type PathRule<'a> = (&'a str, &'a str, &'a str);

/// An Ingress of class `mse` in `default` with one rule.
pub(crate) fn ingress(name: &str, host: Option<&str>, paths: &[PathRule<'_>]) -> String {
    let mut y = format!(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{ name: {name}, namespace: default }}\nspec:\n  ingressClassName: mse\n  rules:\n  - "
    );
    if let Some(h) = host {
        y.push_str(&format!("host: \"{h}\"\n    "));
    }
    y.push_str("http:\n      paths:\n");
    for (path, kind, svc) in paths {
        y.push_str(&format!(
            "      - {{ path: \"{path}\", pathType: {kind}, backend: {{ service: {{ name: {svc}, port: {{ number: 80 }} }} }} }}\n"
        ));
    }
    y.push_str("---\n");
    y
}

/// For each `(name, backend)`: an Ingress `name` routing `{name}.example.com` to Service
/// `svc-{name}`, whose one endpoint is `backend`.
pub(crate) fn routed_to(backends: &[(&str, SocketAddr)]) -> String {
    let mut y = String::new();
    for (name, addr) in backends {
        let host = format!("{name}.example.com");
        let svc = format!("svc-{name}");
        y.push_str(&ingress(name, Some(&host), &[("/", "Prefix", &svc)]));
        y.push_str(&service(&svc, &[*addr]));
    }
    y
}

/// Adds `annotations` to the first `metadata` of `yaml`. A key without `/` is a name under
/// `nginx.ingress.kubernetes.io/`.
pub(crate) fn annotate(yaml: &str, annotations: &[(&str, &str)]) -> String {
    let list = annotations
        .iter()
        .map(|(k, v)| {
            let v = serde_json::to_string(v).expect("string");
            if k.contains('/') {
                format!("\"{k}\": {v}")
            } else {
                format!("\"nginx.ingress.kubernetes.io/{k}\": {v}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    yaml.replacen(
        "namespace: default }",
        &format!("namespace: default, annotations: {{ {list} }} }}"),
        1,
    )
}

/// Service `name` in `default` (port 80, named `http`) with one EndpointSlice per address,
/// all ready.
pub(crate) fn service(name: &str, endpoints: &[SocketAddr]) -> String {
    let mut y = format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{ name: {name}, namespace: default }}\nspec:\n  ports: [{{ name: http, port: 80, targetPort: http }}]\n---\n"
    );
    for (i, addr) in endpoints.iter().enumerate() {
        y.push_str(&format!(
            "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{ name: {name}-{i}, namespace: default, labels: {{ kubernetes.io/service-name: {name} }} }}\naddressType: IPv4\nports: [{{ name: http, port: {port} }}]\nendpoints: [{{ addresses: [\"{ip}\"], conditions: {{ ready: true }} }}]\n---\n",
            port = addr.port(),
            ip = addr.ip(),
        ));
    }
    y
}

/// An ExternalName Service `name` in `default` whose port 80 goes to `host:port`.
pub(crate) fn external_service(name: &str, host: &str, port: u16) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{ name: {name}, namespace: default }}\nspec:\n  type: ExternalName\n  externalName: {host}\n  ports: [{{ name: http, port: 80, targetPort: {port} }}]\n---\n"
    )
}

/// A `kubernetes.io/tls` Secret in `default`.
pub(crate) fn tls_secret(name: &str, cert_pem: &str, key_pem: &str) -> String {
    let indent = |pem: &str| {
        pem.lines()
            .map(|l| format!("    {l}\n"))
            .collect::<String>()
    };
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{ name: {name}, namespace: default }}\ntype: kubernetes.io/tls\nstringData:\n  tls.crt: |\n{}  tls.key: |\n{}---\n",
        indent(cert_pem),
        indent(key_pem)
    )
}

/// An Ingress with a `spec.tls` entry: `hosts` get `secret`, each routed to `svc`.
pub(crate) fn tls_ingress(name: &str, secret: &str, hosts: &[&str], svc: &str) -> String {
    let list = hosts
        .iter()
        .map(|h| format!("\"{h}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let mut y = format!(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{ name: {name}, namespace: default }}\nspec:\n  ingressClassName: mse\n  tls: [{{ hosts: [{list}], secretName: {secret} }}]\n  rules:\n"
    );
    for h in hosts {
        y.push_str(&format!(
            "  - host: \"{h}\"\n    http:\n      paths:\n      - {{ path: /, pathType: Prefix, backend: {{ service: {{ name: {svc}, port: {{ number: 80 }} }} }} }}\n"
        ));
    }
    y.push_str("---\n");
    y
}

// === gateways ===

/// A gateway config on loopback with free ports, two workers, short upstream timeouts and
/// no limit of requests per connection.
pub(crate) fn loopback_config() -> ProxyConfig {
    let mut config = ProxyConfig::default();
    config.http_addr = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    config.https_addr = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    config.workers = 2;
    config.timeouts.upstream_connect = Duration::from_secs(2);
    config.timeouts.upstream_response = Duration::from_secs(5);
    config.timeouts.shutdown_grace = Duration::from_secs(5);
    // Tests send thousands of requests on one connection (the default is 1000).
    config.keep_alive_requests = u32::MAX;
    // Access log lines are dropped unless a test reads them (see `MemoryLog`).
    config.access_log_sink = mse_proxy::AccessLogSink::writer(std::io::sink());
    config
}

/// An access log kept in memory, for the tests that read it.
#[derive(Clone, Default)]
pub(crate) struct MemoryLog(Arc<std::sync::Mutex<Vec<u8>>>);

impl MemoryLog {
    /// A sink writing into this log.
    pub(crate) fn sink(&self) -> mse_proxy::AccessLogSink {
        mse_proxy::AccessLogSink::writer(self.clone())
    }

    /// The lines written so far.
    pub(crate) fn lines(&self) -> Vec<String> {
        let bytes = self.0.lock().expect("log lock").clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The lines that contain `marker`.
    pub(crate) fn lines_with(&self, marker: &str) -> Vec<String> {
        self.lines()
            .into_iter()
            .filter(|l| l.contains(marker))
            .collect()
    }
}

impl std::io::Write for MemoryLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log lock").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A new shared table serving `table`.
pub(crate) fn shared(table: Arc<RouteTable>) -> SharedTable {
    let shared = SharedTable::new(Arc::new(Metrics::new()));
    shared.publish(table);
    shared
}

/// Starts a gateway serving `yaml`.
pub(crate) fn gateway(yaml: &str) -> (GatewayHandle, SharedTable) {
    gateway_with(yaml, |_| {})
}

/// Starts a gateway serving `yaml`, with the config adjusted by `tweak`.
pub(crate) fn gateway_with(
    yaml: &str,
    tweak: impl FnOnce(&mut ProxyConfig),
) -> (GatewayHandle, SharedTable) {
    gateway_serving(compile_yaml(yaml), tweak)
}

/// Starts a gateway serving `table`, with the config adjusted by `tweak`.
pub(crate) fn gateway_serving(
    table: Arc<RouteTable>,
    tweak: impl FnOnce(&mut ProxyConfig),
) -> (GatewayHandle, SharedTable) {
    init_tracing();
    let table = shared(table);
    let mut config = loopback_config();
    tweak(&mut config);
    let handle = Gateway::start(config, table.clone()).expect("gateway starts");
    (handle, table)
}

pub(crate) fn http_addr(g: &GatewayHandle) -> SocketAddr {
    g.http_addr().expect("plain listener")
}

pub(crate) fn https_addr(g: &GatewayHandle) -> SocketAddr {
    g.https_addr().expect("TLS listener")
}

// === clients ===

/// A response read whole.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Reply {
    /// The body as JSON (the echo backend's answer).
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The `x-echo-service` header: which backend answered.
    pub(crate) fn service(&self) -> &str {
        self.headers
            .get("x-echo-service")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// A request header as the echo backend saw it.
    pub(crate) fn echoed_header(&self, name: &str) -> Option<String> {
        self.json()["headers"][name].as_str().map(str::to_owned)
    }
}

async fn read_whole<B>(resp: Response<B>) -> Reply
where
    B: hyper::body::Body,
    B::Error: std::fmt::Debug,
{
    let (parts, body) = resp.into_parts();
    let body = bounded("reading a body", body.collect())
        .await
        .expect("body")
        .to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// An HTTP/1.1 connection to `addr`.
pub(crate) async fn h1(addr: SocketAddr) -> http1::SendRequest<Full<Bytes>> {
    let stream = bounded("connecting", TcpStream::connect(addr))
        .await
        .expect("connect");
    let (tx, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    tx
}

/// An HTTP/2 connection with prior knowledge (h2c) to `addr`.
pub(crate) async fn h2c(addr: SocketAddr) -> http2::SendRequest<Full<Bytes>> {
    let stream = bounded("connecting", TcpStream::connect(addr))
        .await
        .expect("connect");
    let (tx, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .expect("h2 handshake");
    tokio::spawn(conn);
    tx
}

/// Sends one request on an HTTP/1.1 connection and reads the whole response.
pub(crate) async fn send1(
    tx: &mut http1::SendRequest<Full<Bytes>>,
    req: Request<Full<Bytes>>,
) -> Reply {
    bounded("waiting for the connection", tx.ready())
        .await
        .expect("connection ready");
    let resp = bounded("sending a request", tx.send_request(req))
        .await
        .expect("response");
    read_whole(resp).await
}

/// Sends one request on an HTTP/2 connection and reads the whole response.
pub(crate) async fn send2(
    tx: &mut http2::SendRequest<Full<Bytes>>,
    req: Request<Full<Bytes>>,
) -> Reply {
    bounded("waiting for the connection", tx.ready())
        .await
        .expect("connection ready");
    let resp = bounded("sending a request", tx.send_request(req))
        .await
        .expect("response");
    read_whole(resp).await
}

/// A GET request for `host` and `path` (origin form, `Host` header).
pub(crate) fn get_req(host: &str, path: &str) -> Request<Full<Bytes>> {
    Request::get(path)
        .header("host", host)
        .body(Full::new(Bytes::new()))
        .expect("request")
}

/// A request without body for `host` with `method`, `uri` and extra headers.
pub(crate) fn request(
    host: &str,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
) -> Request<Full<Bytes>> {
    let mut b = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", host);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Full::new(Bytes::new())).expect("request")
}

/// GET `path` from `host` over a new HTTP/1.1 connection.
pub(crate) async fn get(addr: SocketAddr, host: &str, path: &str) -> Reply {
    let mut tx = h1(addr).await;
    send1(&mut tx, get_req(host, path)).await
}

/// Writes `bytes` on a new connection and reads until the gateway closes it or a whole
/// response head and body arrived; returns what was read.
pub(crate) async fn raw(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut stream = bounded("connecting", TcpStream::connect(addr))
        .await
        .expect("connect");
    // The gateway may answer and close before everything is written (431): that is fine.
    let _ = stream.write_all(bytes).await;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(STEP * 3, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => {
                out.extend_from_slice(&buf[..n]);
                if complete_response(&out) {
                    break;
                }
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn complete_response(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    let len = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().to_owned())
        })
        .and_then(|v| v.parse::<usize>().ok());
    len.is_some_and(|n| body.len() >= n)
}

// === authentication ===

/// A Secret in `default` with `data` as stringData (`key: value` pairs, block scalars).
pub(crate) fn secret(name: &str, data: &[(&str, &str)]) -> String {
    let mut y = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{ name: {name}, namespace: default }}\nstringData:\n"
    );
    for (k, v) in data {
        y.push_str(&format!("  {k}: |-\n"));
        for line in v.lines() {
            y.push_str(&format!("    {line}\n"));
        }
    }
    y.push_str("---\n");
    y
}

/// An `Authorization: Basic` value.
pub(crate) fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    let pair = format!("{user}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// `GET /` from `host` over a new HTTP/1.1 connection, with this `Authorization`.
pub(crate) async fn get_as(addr: SocketAddr, host: &str, auth: Option<&str>) -> Reply {
    let headers: Vec<(&str, &str)> = auth.map(|a| ("authorization", a)).into_iter().collect();
    let mut tx = h1(addr).await;
    send1(&mut tx, request(host, "GET", "/", &headers)).await
}

// === TLS ===

/// A test certificate authority.
pub(crate) struct TestCa {
    pub(crate) cert: CertificateDer<'static>,
    pub(crate) cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A leaf certificate and its key.
pub(crate) struct Leaf {
    pub(crate) der: CertificateDer<'static>,
    pub(crate) cert_pem: String,
    pub(crate) key_pem: String,
}

impl TestCa {
    pub(crate) fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "mse test CA");
        let key = KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("CA certificate");
        Self {
            cert: cert.der().clone(),
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A CA below this one.
    pub(crate) fn intermediate(&self, cn: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, cn);
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("intermediate");
        Self {
            cert: cert.der().clone(),
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A client certificate with subject `CN=<cn>,O=mse tests`, signed by this CA.
    pub(crate) fn client(&self, cn: &str) -> Leaf {
        self.client_numbered(cn, None)
    }

    /// A revocation list of this CA naming these serial numbers, PEM.
    pub(crate) fn crl(&self, revoked: &[u64]) -> String {
        self.crl_until(revoked, 2090)
    }

    /// [`TestCa::crl`] whose next update is due on 1 January of `year`.
    pub(crate) fn crl_until(&self, revoked: &[u64], year: i32) -> String {
        let params = rcgen::CertificateRevocationListParams {
            this_update: rcgen::date_time_ymd(2020, 1, 1),
            next_update: rcgen::date_time_ymd(year, 1, 1),
            crl_number: rcgen::SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|n| rcgen::RevokedCertParams {
                    serial_number: rcgen::SerialNumber::from(*n),
                    revocation_time: rcgen::date_time_ymd(2021, 1, 1),
                    reason_code: Some(rcgen::RevocationReason::KeyCompromise),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        };
        params
            .signed_by(&self.issuer)
            .expect("CRL")
            .pem()
            .expect("PEM")
    }

    /// [`TestCa::client`] with this serial number.
    pub(crate) fn client_numbered(&self, cn: &str, serial: Option<u64>) -> Leaf {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.serial_number = serial.map(rcgen::SerialNumber::from);
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::OrganizationName, "mse tests");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate().expect("key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("client certificate");
        Leaf {
            der: cert.der().clone(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// A certificate for `hosts` (first one as CN), signed by this CA.
    pub(crate) fn leaf(&self, hosts: &[&str]) -> Leaf {
        let names: Vec<String> = hosts.iter().map(|h| (*h).to_owned()).collect();
        let mut params = CertificateParams::new(names).expect("params");
        params.distinguished_name.push(DnType::CommonName, hosts[0]);
        let key = KeyPair::generate().expect("key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("leaf certificate");
        Leaf {
            der: cert.der().clone(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A TLS client that verifies the server against `ca`.
pub(crate) fn verifying_client(ca: &CertificateDer<'static>, alpn: &[&[u8]]) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    roots.add(ca.clone()).expect("CA is usable");
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    TlsConnector::from(Arc::new(config))
}

/// A TLS client that accepts any server certificate, offers `versions` only, and sends
/// `chain` (leaf first, with the leaf's key) when asked for a client certificate.
pub(crate) fn client_cert_client(
    chain: Option<(&[&Leaf], &Leaf)>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> TlsConnector {
    use rustls::pki_types::PrivateKeyDer;
    use rustls::pki_types::pem::PemObject;
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(versions)
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)));
    let mut config = match chain {
        Some((certs, key)) => builder
            .with_client_auth_cert(
                certs.iter().map(|l| l.der.clone()).collect(),
                PrivateKeyDer::from_pem_slice(key.key_pem.as_bytes()).expect("key"),
            )
            .expect("client certificate"),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    TlsConnector::from(Arc::new(config))
}

/// A Secret in `default` with `ca.crt` (and `ca.crl` when given).
pub(crate) fn ca_secret(name: &str, ca_pem: &str, crl_pem: Option<&str>) -> String {
    let indent = |pem: &str| {
        pem.lines()
            .map(|l| format!("    {l}\n"))
            .collect::<String>()
    };
    let mut y = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{ name: {name}, namespace: default }}\nstringData:\n  ca.crt: |\n{}",
        indent(ca_pem)
    );
    if let Some(crl) = crl_pem {
        y.push_str(&format!("  ca.crl: |\n{}", indent(crl)));
    }
    y.push_str("---\n");
    y
}

/// A TLS client that accepts any certificate (to look at the fallback one).
pub(crate) fn trusting_client(alpn: &[&[u8]]) -> TlsConnector {
    let provider = provider();
    let mut config = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    TlsConnector::from(Arc::new(config))
}

/// Connects with TLS, sending `sni` as server name.
pub(crate) async fn tls(
    connector: &TlsConnector,
    addr: SocketAddr,
    sni: &str,
) -> TlsStream<TcpStream> {
    let stream = bounded("connecting", TcpStream::connect(addr))
        .await
        .expect("connect");
    let name = ServerName::try_from(sni.to_owned()).expect("server name");
    bounded("TLS handshake", connector.connect(name, stream))
        .await
        .expect("TLS handshake")
}

/// The leaf certificate the server presented.
pub(crate) fn peer_leaf(stream: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    stream
        .get_ref()
        .1
        .peer_certificates()
        .expect("server certificates")[0]
        .clone()
        .into_owned()
}

/// Whether a DER certificate holds `text` (a subject or SAN value) verbatim.
pub(crate) fn der_contains(der: &[u8], text: &str) -> bool {
    der.windows(text.len()).any(|w| w == text.as_bytes())
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

/// An echo backend on a free loopback port, reporting itself as `name`.
pub(crate) async fn echo(name: &str) -> EchoServer {
    EchoServer::bind(SocketAddr::from(([127, 0, 0, 1], 0)), name)
        .await
        .expect("echo binds")
}
