//! Kube mode helpers: an in-memory API server with a kubeconfig, the objects the tests
//! create in it, a gateway started against it, and TLS certificates.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mse_gateway::{Options, Running};
use mse_proxy::echo::EchoServer;
use mse_test_apiserver::ApiServer;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;

use super::{HttpClient, eventually, get};

/// An API server and a kubeconfig file for it.
pub(crate) struct Cluster {
    pub(crate) api: ApiServer,
    pub(crate) kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

/// A fresh API server. Idle watches get no bookmarks, so a watch's resourceVersion moves
/// only with the changes it is sent (the compaction test relies on that).
pub(crate) async fn cluster() -> Cluster {
    let api = ApiServer::builder()
        .bookmark_interval(Duration::from_secs(3600))
        .start()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    api.write_kubeconfig(&kubeconfig).unwrap();
    Cluster {
        api,
        kubeconfig,
        _dir: dir,
    }
}

/// Options for a gateway on loopback ports in kube mode.
pub(crate) fn options(kubeconfig: &Path, namespaces: &[&str]) -> Options {
    let mut o = Options::kube(
        Some(kubeconfig.to_path_buf()),
        namespaces.iter().map(|n| (*n).to_owned()).collect(),
    );
    o.http_addr = Some("127.0.0.1:0".parse().unwrap());
    o.https_addr = Some("127.0.0.1:0".parse().unwrap());
    o.admin_addr = "127.0.0.1:0".parse().unwrap();
    o.workers = 1;
    o.access_log = false;
    o
}

/// A gateway in kube mode, once `/readyz` says ready.
pub(crate) async fn ready_gateway(
    c: &HttpClient,
    kubeconfig: &Path,
    namespaces: &[&str],
) -> Running {
    let g = tokio::time::timeout(
        Duration::from_secs(30),
        mse_gateway::start(options(kubeconfig, namespaces)),
    )
    .await
    .expect("start timed out")
    .expect("start failed");
    let admin = g.admin_addr();
    eventually("/readyz answers 200", || async {
        get(c, admin, "admin", "/readyz").await.status == 200
    })
    .await;
    g
}

/// A Service named `name` whose port 80 (`http`) targets the named port `http`, and one
/// EndpointSlice per backend (each backend listens on its own port, so each is a slice
/// of its own, as the EndpointSlice controller groups endpoints by port).
pub(crate) fn service(api: &ApiServer, ns: &str, name: &str, backends: &[&EchoServer]) {
    api.apply(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": { "name": name, "namespace": ns },
        "spec": { "ports": [{ "name": "http", "port": 80, "targetPort": "http" }] }
    }));
    for (i, b) in backends.iter().enumerate() {
        api.apply(slice(ns, name, i, b.addr()));
    }
}

/// The `i`th EndpointSlice of Service `svc`: one ready endpoint at `addr`.
pub(crate) fn slice(ns: &str, svc: &str, i: usize, addr: SocketAddr) -> Value {
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {
            "name": format!("{svc}-{i}"), "namespace": ns,
            "labels": { "kubernetes.io/service-name": svc }
        },
        "addressType": "IPv4",
        "ports": [{ "name": "http", "port": addr.port() }],
        "endpoints": [{ "addresses": [addr.ip().to_string()], "conditions": { "ready": true } }]
    })
}

/// An Ingress of class `mse` routing `host` to Service `svc` port 80.
pub(crate) fn ingress(ns: &str, name: &str, host: &str, svc: &str) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": { "name": name, "namespace": ns },
        "spec": {
            "ingressClassName": "mse",
            "rules": [{ "host": host, "http": { "paths": [{
                "path": "/", "pathType": "Prefix",
                "backend": { "service": { "name": svc, "port": { "number": 80 } } }
            }] } }]
        }
    })
}

/// [`ingress`] with a TLS entry for its host using Secret `secret`.
pub(crate) fn tls_ingress(ns: &str, name: &str, host: &str, svc: &str, secret: &str) -> Value {
    let mut v = ingress(ns, name, host, svc);
    v["spec"]["tls"] = json!([{ "hosts": [host], "secretName": secret }]);
    v
}

/// A Secret of type `ty` holding a certificate and key as `tls.crt` and `tls.key`.
pub(crate) fn cert_secret(ns: &str, name: &str, ty: &str, leaf: &Leaf) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": { "name": name, "namespace": ns },
        "type": ty,
        "data": {
            "tls.crt": STANDARD.encode(&leaf.cert_pem),
            "tls.key": STANDARD.encode(&leaf.key_pem),
        }
    })
}

/// A CA whose leaf certificates the TLS client trusts.
pub(crate) struct TestCa {
    cert: CertificateDer<'static>,
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
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "mse kube test CA");
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Self {
            cert: cert.der().clone(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A fresh certificate for `host`.
    pub(crate) fn leaf(&self, host: &str) -> Leaf {
        let mut params = CertificateParams::new(vec![host.to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, host);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            der: cert.der().clone(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// The leaf certificate a TLS server at `addr` presents for `sni`, verified against
    /// this CA; `None` when the handshake fails (no certificate for that name yet).
    pub(crate) async fn served_leaf(
        &self,
        addr: SocketAddr,
        sni: &str,
    ) -> Option<CertificateDer<'static>> {
        let mut roots = RootCertStore::empty();
        roots.add(self.cert.clone()).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = TlsConnector::from(Arc::new(config));
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = ServerName::try_from(sni.to_owned()).unwrap();
        let tls = tokio::time::timeout(Duration::from_secs(10), connector.connect(name, tcp))
            .await
            .expect("TLS handshake timed out")
            .ok()?;
        let leaf = tls.get_ref().1.peer_certificates()?.first()?.clone();
        Some(leaf.into_owned())
    }
}

/// A TCP relay on loopback standing between the gateway and the API server: closed, it
/// accepts and drops every connection, as an unreachable server would fail them; open, it
/// relays them.
pub(crate) struct Gate {
    pub(crate) addr: SocketAddr,
    open: Arc<AtomicBool>,
    refused: Arc<AtomicUsize>,
}

impl Gate {
    /// A closed gate in front of `target`.
    pub(crate) async fn closed(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let open = Arc::new(AtomicBool::new(false));
        let refused = Arc::new(AtomicUsize::new(0));
        let (o, r) = (Arc::clone(&open), Arc::clone(&refused));
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !o.load(Ordering::SeqCst) {
                    r.fetch_add(1, Ordering::SeqCst);
                    drop(inbound);
                    continue;
                }
                tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Self {
            addr,
            open,
            refused,
        }
    }

    /// Connections dropped while closed.
    pub(crate) fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }

    pub(crate) fn open(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

/// The address in an API server URL `http://ADDR`.
pub(crate) fn addr_of(api: &ApiServer) -> SocketAddr {
    api.url().trim_start_matches("http://").parse().unwrap()
}
