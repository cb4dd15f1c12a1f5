//! Client certificates (`auth-tls-*`): asked for in the handshake, verified once it is
//! done, and enforced per request as ingress-nginx does.
//!
//! The handshake never fails for want of a valid client certificate: like NGINX, the
//! gateway completes it and answers each request with 400 (or the `auth-tls-error-page`
//! redirect) when verification is required and failed. That keeps `optional_no_ca`, the
//! error page and the `ssl-client-verify` header possible. The handshake does check that
//! the client holds the key of the certificate it sent (its signature), so a certificate
//! copied from elsewhere is not accepted.

use std::sync::Arc;

use http::HeaderValue;
use mse_router::{ClientAuth, VerifyClient};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use webpki::{
    CertRevocationList, EndEntityCert, ExpirationPolicy, KeyUsage, OwnedCertRevocationList,
    RevocationCheckDepth, RevocationOptionsBuilder, UnknownStatusPolicy,
};

/// A host's client-certificate settings made ready for handshakes and verification.
#[derive(Debug)]
pub(crate) struct ClientKit {
    pub(crate) auth: Arc<ClientAuth>,
    roots: Vec<TrustAnchor<'static>>,
    crls: Vec<CertRevocationList<'static>>,
    algorithms: WebPkiSupportedAlgorithms,
    /// What the handshake is configured with.
    pub(crate) verifier: Arc<dyn ClientCertVerifier>,
}

/// Asks for a certificate, names the CAs, checks the handshake signature, and leaves the
/// chain to [`ClientKit::verify`].
#[derive(Debug)]
struct DeferredVerifier {
    offer: bool,
    hints: Vec<DistinguishedName>,
    algorithms: WebPkiSupportedAlgorithms,
}

/// The outcome of verifying a connection's client certificate, and what goes upstream.
#[derive(Debug)]
pub(crate) struct ClientCert {
    pub(crate) verify: Verify,
    /// Whether the subject matches `auth-tls-match-cn` (true without one).
    subject_allowed: bool,
    /// `ssl-client-subject-dn`, `ssl-client-issuer-dn`, `ssl-client-cert` values.
    subject: Option<HeaderValue>,
    issuer: Option<HeaderValue>,
    escaped: Option<HeaderValue>,
}

/// `$ssl_client_verify`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Verify {
    /// The certificate chains to the CA within the depth, and is not revoked.
    Success,
    /// No certificate was sent.
    None,
    /// A certificate was sent and did not verify; the reason as OpenSSL words it.
    Failed(&'static str),
}

/// What a request gets from the client-certificate check.
pub(crate) enum Checked<'a> {
    /// It goes on, with these headers upstream.
    Pass(ClientHeaders),
    /// It is refused: 400 with this text, or the error page.
    Refuse {
        text: &'static str,
        error_page: Option<&'a str>,
    },
    /// The certificate's subject does not match `auth-tls-match-cn`: 403.
    Forbidden,
}

/// The `ssl-client-*` headers of one request.
#[derive(Debug, Default)]
pub(crate) struct ClientHeaders {
    pub(crate) verify: Option<HeaderValue>,
    pub(crate) subject: Option<HeaderValue>,
    pub(crate) issuer: Option<HeaderValue>,
    pub(crate) cert: Option<HeaderValue>,
}

// === impl ClientKit ===

impl ClientKit {
    /// Loads the CA certificates and CRLs; `Err` names what rustls or webpki refused.
    pub(crate) fn new(auth: Arc<ClientAuth>, provider: &CryptoProvider) -> Result<Self, String> {
        let mut store = RootCertStore::empty();
        for (i, der) in auth.roots.iter().enumerate() {
            store
                .add(der.clone())
                .map_err(|e| format!("CA certificate {} in ca.crt: {e}", i + 1))?;
        }
        let crls = auth
            .crls
            .iter()
            .map(|der| OwnedCertRevocationList::from_der(der).map(CertRevocationList::from))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("ca.crl: {e:?}"))?;
        let algorithms = provider.signature_verification_algorithms;
        let verifier = Arc::new(DeferredVerifier {
            offer: auth.verify != VerifyClient::Off,
            hints: store.subjects(),
            algorithms,
        });
        Ok(Self {
            roots: store.roots,
            crls,
            algorithms,
            verifier,
            auth,
        })
    }

    /// Verifies the chain a client sent (`None`: it sent none) and prepares the headers.
    pub(crate) fn verify(&self, chain: Option<&[CertificateDer<'static>]>) -> ClientCert {
        let Some((leaf, intermediates)) = chain.and_then(<[_]>::split_first) else {
            return ClientCert {
                verify: Verify::None,
                subject_allowed: self.subject_allowed(""),
                subject: None,
                issuer: None,
                escaped: None,
            };
        };
        let verify = match self.check(leaf, intermediates) {
            Ok(()) => Verify::Success,
            Err(e) => Verify::Failed(openssl_reason(&e)),
        };
        let info = mse_router::x509::cert_info(leaf);
        let value = |s: &str| HeaderValue::from_str(s).ok();
        ClientCert {
            verify,
            subject_allowed: self.subject_allowed(info.as_ref().map_or("", |i| &i.subject)),
            subject: info.as_ref().and_then(|i| value(&i.subject)),
            issuer: info.as_ref().and_then(|i| value(&i.issuer)),
            escaped: self
                .auth
                .pass_certificate
                .then(|| value(&escaped_pem(leaf)))
                .flatten(),
        }
    }

    fn subject_allowed(&self, subject: &str) -> bool {
        self.auth
            .match_cn
            .as_ref()
            .is_none_or(|m| m.matches(subject))
    }

    fn check(
        &self,
        leaf: &CertificateDer<'static>,
        intermediates: &[CertificateDer<'static>],
    ) -> Result<(), webpki::Error> {
        let ee = EndEntityCert::try_from(leaf)?;
        let crl_refs: Vec<&CertRevocationList<'_>> = self.crls.iter().collect();
        let revocation = RevocationOptionsBuilder::new(&crl_refs).ok().map(|b| {
            // The client certificate is checked against the CRLs of `ca.crl` (a CRL past
            // its nextUpdate fails it, as in OpenSSL); CAs above it are not looked up.
            b.with_depth(RevocationCheckDepth::EndEntity)
                .with_status_policy(UnknownStatusPolicy::Allow)
                .with_expiration_policy(ExpirationPolicy::Enforce)
                .build()
        });
        // `auth-tls-verify-depth` counts the CA certificates above the client's own, the
        // trust anchor included, as OpenSSL's verify depth does.
        let depth = usize::from(self.auth.depth);
        let within_depth = |path: &webpki::VerifiedPath<'_>| {
            if path.intermediate_certificates().count() < depth {
                Ok(())
            } else {
                Err(webpki::Error::MaximumPathDepthExceeded)
            }
        };
        ee.verify_for_usage(
            self.algorithms.all,
            &self.roots,
            intermediates,
            UnixTime::now(),
            KeyUsage::client_auth(),
            revocation,
            Some(&within_depth),
        )
        .map(|_| ())
    }

    /// What a request on a connection with this outcome gets. `cert`: the connection's
    /// outcome, `None` for plain HTTP (no certificate can have been sent).
    pub(crate) fn check_request<'a>(&'a self, cert: Option<&ClientCert>) -> Checked<'a> {
        let verify = cert.map_or(&Verify::None, |c| &c.verify);
        let refused = match (self.auth.verify, verify) {
            (VerifyClient::On, Verify::None) => Some("No required SSL certificate was sent"),
            (VerifyClient::On | VerifyClient::Optional, Verify::Failed(_)) => {
                Some("The SSL certificate error")
            }
            _ => None,
        };
        if let Some(text) = refused {
            return Checked::Refuse {
                text,
                error_page: self.auth.error_page.as_deref(),
            };
        }
        // `auth-tls-match-cn`: checked after verification, as NGINX's location does.
        let subject_allowed = match cert {
            Some(c) => c.subject_allowed,
            None => self.subject_allowed(""),
        };
        if !subject_allowed {
            return Checked::Forbidden;
        }
        let verify_value = match verify {
            Verify::Success => HeaderValue::from_static("SUCCESS"),
            Verify::None => HeaderValue::from_static("NONE"),
            Verify::Failed(reason) => HeaderValue::from_str(&format!("FAILED:{reason}"))
                .unwrap_or(HeaderValue::from_static("FAILED")),
        };
        Checked::Pass(ClientHeaders {
            verify: Some(verify_value),
            subject: cert.and_then(|c| c.subject.clone()),
            issuer: cert.and_then(|c| c.issuer.clone()),
            cert: cert.and_then(|c| c.escaped.clone()),
        })
    }
}

// === impl DeferredVerifier ===

impl ClientCertVerifier for DeferredVerifier {
    fn offer_client_auth(&self) -> bool {
        self.offer
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // The chain is verified once the handshake is done (`ClientKit::verify`), so that
        // a failure answers requests with 400 instead of a handshake alert.
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

// === impl ClientHeaders ===

impl ClientHeaders {
    /// Sets the headers on the upstream request, replacing any the client sent, and
    /// removing those without a value (no header may be forged by the client).
    pub(crate) fn apply(self, headers: &mut http::HeaderMap) {
        let pairs = [
            ("ssl-client-verify", self.verify),
            ("ssl-client-subject-dn", self.subject),
            ("ssl-client-issuer-dn", self.issuer),
            ("ssl-client-cert", self.cert),
        ];
        for (name, value) in pairs {
            match value {
                Some(v) => {
                    headers.insert(name, v);
                }
                None => {
                    headers.remove(name);
                }
            }
        }
    }
}

/// OpenSSL's words for a verification error, as `$ssl_client_verify` shows them.
fn openssl_reason(e: &webpki::Error) -> &'static str {
    match e {
        webpki::Error::UnknownIssuer => "unable to get local issuer certificate",
        webpki::Error::CertExpired { .. } => "certificate has expired",
        webpki::Error::CertNotValidYet { .. } => "certificate is not yet valid",
        webpki::Error::CertRevoked => "certificate revoked",
        webpki::Error::CrlExpired { .. } => "CRL has expired",
        webpki::Error::MaximumPathDepthExceeded => "certificate chain too long",
        webpki::Error::InvalidSignatureForPublicKey => "certificate signature failure",
        webpki::Error::RequiredEkuNotFoundContext(_) => "unsupported certificate purpose",
        _ => "certificate verify error",
    }
}

/// The leaf as PEM, percent-encoded as NGINX's `$ssl_client_escaped_cert`.
fn escaped_pem(der: &CertificateDer<'_>) -> String {
    use base64::Engine as _;
    use std::fmt::Write as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    let mut pem = String::with_capacity(b64.len() + 80);
    pem.push_str("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    let mut out = String::with_capacity(pem.len() * 2);
    for b in pem.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_escaped_certificate_is_percent_encoded_pem() {
        let der = CertificateDer::from(vec![0xfb; 50]);
        let e = escaped_pem(&der);
        assert!(e.starts_with("-----BEGIN%20CERTIFICATE-----%0A"), "{e}");
        assert!(e.ends_with("%0A-----END%20CERTIFICATE-----%0A"), "{e}");
        assert!(e.contains("%2B%2F"), "{e}");
    }
}
