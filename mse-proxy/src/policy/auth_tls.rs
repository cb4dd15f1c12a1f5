//! The subrequest of an `https` `auth-url`: TLS (rustls, the server verified against the
//! platform's trust store or [`crate::ProxyConfig::auth_url_roots`], by the URL's host
//! name), then HTTP/1.1 by hyper's client on a connection of its own. Unlike the plain
//! subrequests, these connections are not pooled.

use std::cell::OnceCell;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::upstream::Upstream;

/// The certificate authorities that verify `https` `auth-url` services
/// ([`crate::ProxyConfig::auth_url_roots`]).
pub type AuthUrlRoots = Arc<RootCertStore>;

/// One worker's TLS client for `https` `auth-url`s, made on first use.
pub(crate) struct AuthTls {
    roots: Option<Arc<RootCertStore>>,
    connector: OnceCell<Result<TlsConnector, String>>,
}

// === impl AuthTls ===

impl AuthTls {
    pub(crate) fn new(roots: Option<Arc<RootCertStore>>) -> Self {
        Self {
            roots,
            connector: OnceCell::new(),
        }
    }

    fn connector(&self, provider: &Arc<CryptoProvider>) -> Result<&TlsConnector, String> {
        self.connector
            .get_or_init(|| build(self.roots.clone(), provider))
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// The certificate authorities of a PEM bundle, for [`crate::ProxyConfig::auth_url_roots`];
/// an error names what is wrong when it holds no usable certificate.
pub fn roots_from_pem(pem: &[u8]) -> Result<AuthUrlRoots, String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut store = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| format!("not a PEM certificate bundle: {e}"))?;
        store
            .add(cert)
            .map_err(|e| format!("unusable certificate: {e}"))?;
    }
    if store.is_empty() {
        return Err("no certificate in the PEM bundle".to_owned());
    }
    Ok(Arc::new(store))
}

fn build(
    roots: Option<Arc<RootCertStore>>,
    provider: &Arc<CryptoProvider>,
) -> Result<TlsConnector, String> {
    let roots = match roots {
        Some(r) => r,
        None => {
            let mut store = RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            store.add_parsable_certificates(found.certs);
            if store.is_empty() {
                return Err("the platform trusts no certificate authority".to_owned());
            }
            Arc::new(store)
        }
    };
    let mut config = ClientConfig::builder_with_provider(Arc::clone(provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsConnector::from(Arc::new(config)))
}

/// Sends `sub` over TLS to `upstream`, verifying the certificate for `host`; the answer's
/// status and headers, its body read (up to `max_body`) and dropped.
pub(crate) async fn exchange(
    tls: &AuthTls,
    provider: &Arc<CryptoProvider>,
    upstream: &Upstream,
    host: &str,
    sub: Request<Empty<Bytes>>,
    max_body: usize,
) -> Result<(StatusCode, HeaderMap), String> {
    let connector = tls.connector(provider)?;
    let name = ServerName::try_from(host.to_owned()).map_err(|e| e.to_string())?;
    let tcp = match upstream {
        Upstream::Addr(a) => TcpStream::connect(*a).await,
        Upstream::Name { host, port } => TcpStream::connect((&**host, *port)).await,
    }
    .map_err(|e| format!("cannot connect to {upstream}: {e}"))?;
    let stream = connector
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS with {upstream}: {e}"))?;
    let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::task::spawn_local(async move {
        let _ = conn.await;
    });
    let response = tx.send_request(sub).await.map_err(|e| e.to_string())?;
    let (parts, mut body) = response.into_parts();
    let mut read = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| e.to_string())?;
        read += frame.data_ref().map_or(0, Bytes::len);
        if read > max_body {
            break;
        }
    }
    Ok((parts.status, parts.headers))
}
