//! One rustls [`ServerConfig`] per distinct host TLS policy ([`HostTls`]), built when a
//! table is published, never per handshake.
//!
//! What is costly or stateful about a policy (its crypto provider with the chosen cipher
//! suites, its client-certificate verifier, its session ticket key and session cache) lives
//! in a [`PolicyKit`] that the next table reuses while the policy is unchanged. Each policy
//! has its own ticket key and cache, so a session made under one policy can never be
//! resumed under another (a host without client certificates cannot hand out tickets
//! that skip them on a host that asks for them).

use std::sync::Arc;

use mse_router::{CipherSuite, HostTls, TlsVersion};
use rustls::crypto::CryptoProvider;
use rustls::server::{ProducesTickets, ResolvesServerCert, ServerSessionMemoryCache};
use rustls::{ServerConfig, SupportedProtocolVersion};

use super::client::ClientKit;

/// The session cache of each policy, as rustls's default.
const SESSION_CACHE: usize = 256;

/// What a policy's handshakes share from table to table.
#[derive(Debug)]
pub(crate) struct PolicyKit {
    /// The policy it was made for.
    pub(crate) policy: HostTls,
    provider: Arc<CryptoProvider>,
    versions: Vec<&'static SupportedProtocolVersion>,
    ticketer: Arc<dyn ProducesTickets>,
    sessions: Arc<ServerSessionMemoryCache>,
    /// Client certificates, when the policy asks for them.
    pub(crate) client: Option<ClientKit>,
}

// === impl PolicyKit ===

impl PolicyKit {
    /// Makes the kit of `policy`; `Err` says what cannot be set up (its hosts then refuse
    /// handshakes rather than be served without the policy).
    pub(crate) fn new(policy: &HostTls, base: &CryptoProvider) -> Result<Self, String> {
        let mut provider = base.clone();
        if let Some(ciphers) = &policy.ciphers {
            restrict_suites(&mut provider, ciphers);
        }
        let versions: Vec<&'static SupportedProtocolVersion> = [
            (TlsVersion::V1_3, &rustls::version::TLS13),
            (TlsVersion::V1_2, &rustls::version::TLS12),
        ]
        .into_iter()
        .filter(|(v, _)| *v >= policy.min_version && *v <= policy.max_version)
        .map(|(_, p)| p)
        .collect();
        let client = policy
            .client
            .as_ref()
            .map(|c| ClientKit::new(Arc::clone(c), &provider))
            .transpose()?;
        let ticketer = rustls::crypto::aws_lc_rs::Ticketer::new()
            .map_err(|e| format!("session tickets: {e}"))?;
        Ok(Self {
            policy: policy.clone(),
            provider: Arc::new(provider),
            versions,
            ticketer,
            sessions: ServerSessionMemoryCache::new(SESSION_CACHE),
            client,
        })
    }

    /// The rustls configuration of this policy, with certificates from `resolver`.
    pub(crate) fn server_config(
        &self,
        resolver: Arc<dyn ResolvesServerCert>,
    ) -> Result<Arc<ServerConfig>, rustls::Error> {
        let builder = ServerConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_protocol_versions(&self.versions)?;
        let builder = match &self.client {
            Some(c) => builder.with_client_cert_verifier(Arc::clone(&c.verifier)),
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_cert_resolver(resolver);
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        config.ticketer = Arc::clone(&self.ticketer);
        config.session_storage = self.sessions.clone();
        Ok(Arc::new(config))
    }
}

/// Keeps only the listed suites of each TLS version the list names: a list of TLS 1.2
/// suites leaves the TLS 1.3 ones as they are, as NGINX's `ssl_ciphers` does.
pub(crate) fn restrict_suites(provider: &mut CryptoProvider, ciphers: &[CipherSuite]) {
    let wanted: Vec<rustls::CipherSuite> = ciphers.iter().map(|c| rustls_suite(*c)).collect();
    let names_tls13 = ciphers.iter().any(|c| is_tls13(*c));
    let names_tls12 = ciphers.iter().any(|c| !is_tls13(*c));
    provider.cipher_suites.retain(|s| {
        let tls13 = s.tls13().is_some();
        let restricted = if tls13 { names_tls13 } else { names_tls12 };
        !restricted || wanted.contains(&s.suite())
    });
}

fn is_tls13(c: CipherSuite) -> bool {
    matches!(
        c,
        CipherSuite::Tls13Aes128GcmSha256
            | CipherSuite::Tls13Aes256GcmSha384
            | CipherSuite::Tls13Chacha20Poly1305Sha256
    )
}

fn rustls_suite(c: CipherSuite) -> rustls::CipherSuite {
    use rustls::CipherSuite as R;
    match c {
        CipherSuite::Tls13Aes128GcmSha256 => R::TLS13_AES_128_GCM_SHA256,
        CipherSuite::Tls13Aes256GcmSha384 => R::TLS13_AES_256_GCM_SHA384,
        CipherSuite::Tls13Chacha20Poly1305Sha256 => R::TLS13_CHACHA20_POLY1305_SHA256,
        CipherSuite::EcdheEcdsaAes128GcmSha256 => R::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        CipherSuite::EcdheEcdsaAes256GcmSha384 => R::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        CipherSuite::EcdheEcdsaChacha20Poly1305 => R::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        CipherSuite::EcdheRsaAes128GcmSha256 => R::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        CipherSuite::EcdheRsaAes256GcmSha384 => R::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        CipherSuite::EcdheRsaChacha20Poly1305 => R::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        // A suite added to the annotation's list before it is mapped here is offered by
        // no host: the list then keeps only the others.
        _ => R::Unknown(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tls12_list_leaves_the_tls13_suites() {
        let mut p = rustls::crypto::aws_lc_rs::default_provider();
        let all13 = p
            .cipher_suites
            .iter()
            .filter(|s| s.tls13().is_some())
            .count();
        restrict_suites(&mut p, &[CipherSuite::EcdheRsaAes128GcmSha256]);
        let names: Vec<rustls::CipherSuite> = p.cipher_suites.iter().map(|s| s.suite()).collect();
        assert!(names.contains(&rustls::CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256));
        assert_eq!(names.len(), all13 + 1, "{names:?}");
    }

    #[test]
    fn versions_follow_min_and_max() {
        let base = rustls::crypto::aws_lc_rs::default_provider();
        let policy = HostTls {
            min_version: TlsVersion::V1_3,
            ..HostTls::default()
        };
        let kit = PolicyKit::new(&policy, &base).unwrap();
        assert_eq!(kit.versions.len(), 1);
        assert_eq!(kit.versions[0].version, rustls::ProtocolVersion::TLSv1_3);
    }
}
