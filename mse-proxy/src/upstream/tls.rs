//! Upstream protocols other than plain HTTP/1.1 (`backend-protocol`, `proxy-ssl-*`, Istio
//! port naming), made ready for connections when a table is published: one rustls
//! [`ClientConfig`] per distinct TLS setting, never per connection or request.

use std::sync::Arc;

use mse_router::{Cluster, ClusterTarget, TlsVersion, UpstreamProtocol, UpstreamTls};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

/// How one cluster's endpoints are spoken to, ready for connections.
#[derive(Debug)]
pub(crate) struct Protocol {
    /// What the route table asked for.
    pub(crate) source: Arc<UpstreamProtocol>,
    /// The cluster's Service name, whose default TLS name depends on it.
    service: Box<str>,
    /// HTTP/2; HTTP/1.1 otherwise.
    pub(crate) http2: bool,
    /// TLS, when asked for; `Err` says why it cannot be set up (requests then get 503
    /// rather than go out without it).
    pub(crate) tls: Option<Result<TlsTarget, Arc<str>>>,
}

/// A TLS client configuration and the name it connects with.
#[derive(Debug)]
pub(crate) struct TlsTarget {
    pub(crate) config: Arc<ClientConfig>,
    pub(crate) name: ServerName<'static>,
}

/// The client configurations made so far for one table, by setting (the name apart, which
/// is given per connection).
#[derive(Default)]
pub(crate) struct ConfigCache {
    configs: Vec<(bool, UpstreamTls, Arc<ClientConfig>)>,
}

// === impl Protocol ===

impl Protocol {
    /// The protocol of `cluster`; `previous`: the protocols of the table before, reused
    /// while unchanged so that their pooled connections stay in use.
    pub(crate) fn build(
        source: &Arc<UpstreamProtocol>,
        cluster: &Cluster,
        provider: &Arc<CryptoProvider>,
        previous: &[Arc<Protocol>],
        cache: &mut ConfigCache,
    ) -> Arc<Self> {
        let service = service_name(cluster);
        if let Some(p) = previous
            .iter()
            .find(|p| p.source == *source && p.service == service)
        {
            return Arc::clone(p);
        }
        let tls = source.tls.as_ref().map(|t| {
            let name = t.name.as_deref().unwrap_or(&service);
            let name = ServerName::try_from(name.to_owned())
                .map_err(|e| Arc::<str>::from(format!("the upstream TLS name {name:?}: {e}")))?;
            let config = cache.config(source.http2, t, provider)?;
            Ok(TlsTarget { config, name })
        });
        if let Some(Err(e)) = &tls {
            tracing::error!(service = %cluster.service, error = %e, "upstream TLS cannot be set up; requests to this Service answer 503");
        }
        Arc::new(Self {
            source: Arc::clone(source),
            service,
            http2: source.http2,
            tls,
        })
    }
}

/// The name an upstream certificate is checked against without `proxy-ssl-name`: an
/// ExternalName's host, else the Service's in-cluster name.
fn service_name(cluster: &Cluster) -> Box<str> {
    match &cluster.target {
        ClusterTarget::ExternalName { host, .. } => host.clone(),
        ClusterTarget::Endpoints(_) => {
            format!("{}.{}.svc", cluster.service.name, cluster.service.namespace).into()
        }
    }
}

// === impl ConfigCache ===

impl ConfigCache {
    fn config(
        &mut self,
        http2: bool,
        tls: &UpstreamTls,
        provider: &Arc<CryptoProvider>,
    ) -> Result<Arc<ClientConfig>, Arc<str>> {
        let same = |(h, t, _): &&(bool, UpstreamTls, Arc<ClientConfig>)| {
            *h == http2
                && t.ca == tls.ca
                && t.client == tls.client
                && t.sni == tls.sni
                && t.versions == tls.versions
                && t.ciphers == tls.ciphers
        };
        if let Some((_, _, c)) = self.configs.iter().find(same) {
            return Ok(Arc::clone(c));
        }
        let config = Arc::new(client_config(http2, tls, provider).map_err(Arc::<str>::from)?);
        self.configs.push((http2, tls.clone(), Arc::clone(&config)));
        Ok(config)
    }
}

/// The rustls client configuration of one setting.
fn client_config(
    http2: bool,
    tls: &UpstreamTls,
    base: &Arc<CryptoProvider>,
) -> Result<ClientConfig, String> {
    let mut provider = CryptoProvider::clone(base);
    if let Some(ciphers) = &tls.ciphers {
        crate::tls::restrict_suites(&mut provider, ciphers);
    }
    let provider = Arc::new(provider);
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = [
        (TlsVersion::V1_3, &rustls::version::TLS13),
        (TlsVersion::V1_2, &rustls::version::TLS12),
    ]
    .into_iter()
    .filter(|(v, _)| tls.versions.as_ref().is_none_or(|vs| vs.contains(v)))
    .map(|(_, p)| p)
    .collect();
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions)
        .map_err(|e| format!("proxy-ssl-protocols and proxy-ssl-ciphers: {e}"))?;
    let verifier: Arc<dyn ServerCertVerifier> = match &tls.ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(ca) {
                let cert = cert.map_err(|e| format!("ca.crt: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("ca.crt holds an unusable certificate: {e}"))?;
            }
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
                .build()
                .map_err(|e| format!("ca.crt: {e}"))?
        }
        None => Arc::new(Unverified(Arc::clone(&provider))),
    };
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match &tls.client {
        Some((crt, key)) => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(crt)
                .collect::<Result<_, _>>()
                .map_err(|e| format!("tls.crt: {e}"))?;
            let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| format!("tls.key: {e}"))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("the client certificate: {e}"))?
        }
        None => builder.with_no_client_auth(),
    };
    config.enable_sni = tls.sni;
    config.alpn_protocols = if http2 {
        vec![b"h2".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(config)
}

/// `proxy-ssl-verify: off` (the default, as in ingress-nginx): any certificate is
/// accepted, though the handshake's signatures are still checked.
#[derive(Debug)]
struct Unverified(Arc<CryptoProvider>);

impl ServerCertVerifier for Unverified {
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
