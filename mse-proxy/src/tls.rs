//! TLS termination: certificates chosen by SNI from the current route table, with a
//! self-signed fallback certificate made at startup (ingress-nginx's "fake certificate").

use std::sync::Arc;

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::error::ProxyError;
use crate::table::SharedTable;

/// The subject common name of the fallback certificate, presented when the table has no
/// certificate for the client's server name (or the client sent none).
pub const FALLBACK_CERT_CN: &str = "MSE Ingress Controller Fake Certificate";

/// The DNS name in the fallback certificate.
pub const FALLBACK_CERT_SAN: &str = "ingress.local";

/// Picks the certificate for each handshake from the table being served.
#[derive(Debug)]
pub(crate) struct SniResolver {
    table: SharedTable,
    fallback: Arc<CertifiedKey>,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let key = self.table.load().certified_key(hello.server_name());
        Some(key.unwrap_or_else(|| Arc::clone(&self.fallback)))
    }
}

/// Makes a new self-signed fallback certificate (ECDSA P-256, CN [`FALLBACK_CERT_CN`],
/// SAN [`FALLBACK_CERT_SAN`]).
pub fn fallback_certificate(provider: &CryptoProvider) -> Result<Arc<CertifiedKey>, ProxyError> {
    let tls = |what: &'static str| {
        move |e: rcgen::Error| ProxyError::Tls {
            what,
            source: Box::new(e),
        }
    };
    let key = KeyPair::generate().map_err(tls("generating the fallback key"))?;
    let mut params = CertificateParams::new(vec![FALLBACK_CERT_SAN.to_owned()])
        .map_err(tls("building the fallback certificate"))?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, FALLBACK_CERT_CN);
    dn.push(DnType::OrganizationName, "mse-ingress");
    params.distinguished_name = dn;
    let cert = params
        .self_signed(&key)
        .map_err(tls("signing the fallback certificate"))?;
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let certified =
        CertifiedKey::from_der(vec![cert.der().clone()], key_der, provider).map_err(|e| {
            ProxyError::Tls {
                what: "loading the fallback certificate",
                source: Box::new(e),
            }
        })?;
    Ok(Arc::new(certified))
}

/// The rustls configuration of the HTTPS listener: ALPN `h2` then `http/1.1`, session
/// tickets on, certificates from `table` by SNI.
pub(crate) fn server_config(table: &SharedTable) -> Result<Arc<ServerConfig>, ProxyError> {
    let provider = Arc::clone(table.provider());
    let fallback = fallback_certificate(&provider)?;
    let tls = |what: &'static str| {
        move |e: rustls::Error| ProxyError::Tls {
            what,
            source: Box::new(e),
        }
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls("choosing TLS versions"))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SniResolver {
            table: table.clone(),
            fallback,
        }));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config.ticketer =
        rustls::crypto::aws_lc_rs::Ticketer::new().map_err(tls("making the session ticketer"))?;
    Ok(Arc::new(config))
}
