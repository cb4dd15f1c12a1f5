//! TLS certificates from `kubernetes.io/tls` Secrets, the TLS policy of each host (client
//! certificates, versions, cipher suites), and their selection by server name.

use std::sync::Arc;

use mse_annotations::{CipherSuite, TlsVersion, VerifyClient};
use mse_model::ObjectKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};

use crate::host::{HostMatch, normalize_host, wildcard_suffix};
use crate::table::FastMap;

/// Index of a [`Certificate`] in [`crate::RouteTable::certificates`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct CertId(pub u32);

/// A certificate chain and private key read from one Secret, parsed but not yet loaded
/// into a TLS library (that is the data plane's job).
#[derive(Debug)]
pub struct Certificate {
    /// Its index.
    pub id: CertId,
    /// The Secret it came from.
    pub secret: ObjectKey,
    /// The host patterns it was assigned to by `spec.tls[].hosts`.
    pub hosts: Vec<HostMatch>,
    /// The chain, leaf first (`tls.crt`).
    pub chain: Vec<CertificateDer<'static>>,
    /// The private key (`tls.key`).
    pub key: Arc<PrivateKeyDer<'static>>,
    /// The validity period of the leaf, in seconds since the Unix epoch (`None`: it could
    /// not be read).
    pub validity: Option<(i64, i64)>,
}

/// Index of a [`HostTls`] in [`crate::RouteTable::tls_policies`]. The first,
/// [`TlsPolicyId::DEFAULT`], is the policy of hosts that set none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct TlsPolicyId(pub u32);

impl TlsPolicyId {
    /// The policy of hosts without TLS annotations.
    pub const DEFAULT: TlsPolicyId = TlsPolicyId(0);
}

/// What a TLS handshake for one server name is served with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SniEntry {
    /// The certificate; `None`: the data plane's fallback certificate.
    pub cert: Option<CertId>,
    /// The handshake policy.
    pub policy: TlsPolicyId,
}

/// The handshake policy of a host: versions, cipher suites and client certificates. Hosts
/// with equal policies share one, so the data plane builds one TLS configuration each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostTls {
    /// The lowest version offered (`tls-min-protocol-version`; TLS 1.2 at least).
    pub min_version: TlsVersion,
    /// The highest version offered (`tls-max-protocol-version`).
    pub max_version: TlsVersion,
    /// The cipher suites offered (`ssl-ciphers`); `None`: the TLS library's defaults. The
    /// TLS 1.2 and TLS 1.3 suites are restricted separately: a list naming only TLS 1.2
    /// suites leaves the TLS 1.3 ones at their defaults, as NGINX's `ssl_ciphers` does.
    pub ciphers: Option<Vec<CipherSuite>>,
    /// Client certificates (`auth-tls-*`); `None`: not asked for.
    pub client: Option<Arc<ClientAuth>>,
}

impl Default for HostTls {
    fn default() -> Self {
        Self {
            min_version: TlsVersion::V1_2,
            max_version: TlsVersion::V1_3,
            ciphers: None,
            client: None,
        }
    }
}

/// How a host verifies client certificates (`auth-tls-*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientAuth {
    /// The Secret of `auth-tls-secret`.
    pub secret: ObjectKey,
    /// The CA certificates (`ca.crt`).
    pub roots: Vec<CertificateDer<'static>>,
    /// The revocation lists (`ca.crl`), possibly none.
    pub crls: Vec<CertificateRevocationListDer<'static>>,
    /// `auth-tls-verify-client`.
    pub verify: VerifyClient,
    /// `auth-tls-verify-depth`: the most CA certificates above the client's own.
    pub depth: u8,
    /// `auth-tls-pass-certificate-to-upstream`.
    pub pass_certificate: bool,
    /// `auth-tls-error-page`.
    pub error_page: Option<Box<str>>,
    /// `auth-tls-match-cn`.
    pub match_cn: Option<SubjectPattern>,
}

/// `auth-tls-match-cn`: the regular expression a client certificate's subject must match
/// (unanchored, as NGINX's `!~`).
#[derive(Clone, Debug)]
pub struct SubjectPattern(regex::Regex);

impl SubjectPattern {
    /// Compiles the pattern.
    pub fn new(pattern: &str) -> Result<Self, regex::Error> {
        regex::Regex::new(pattern).map(Self)
    }

    /// Whether a subject (RFC 2253, as [`crate::x509::CertInfo::subject`]) matches.
    pub fn matches(&self, subject: &str) -> bool {
        self.0.is_match(subject)
    }
}

impl PartialEq for SubjectPattern {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

impl Eq for SubjectPattern {}

impl Clone for Certificate {
    fn clone(&self) -> Self {
        Self {
            id: self.id,
            secret: self.secret.clone(),
            hosts: self.hosts.clone(),
            chain: self.chain.clone(),
            key: Arc::clone(&self.key),
            validity: self.validity,
        }
    }
}

/// Parses `tls.crt` and `tls.key` PEM data. The error says what is wrong, for a diagnostic.
pub(crate) fn parse_key_pair(
    crt: &[u8],
    key: &[u8],
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(crt)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("tls.crt is not valid PEM: {e}"))?;
    if chain.is_empty() {
        return Err("tls.crt holds no CERTIFICATE block".to_owned());
    }
    let key = PrivateKeyDer::from_pem_slice(key)
        .map_err(|e| format!("tls.key holds no usable private key: {e}"))?;
    Ok((chain, key))
}

/// Server name -> certificate, and server name -> handshake policy.
#[derive(Clone, Debug)]
pub(crate) struct TlsTable {
    pub(crate) certs: Vec<Certificate>,
    pub(crate) exact: FastMap<Box<str>, CertId>,
    pub(crate) wildcard: FastMap<Box<str>, CertId>,
    pub(crate) default: Option<CertId>,
    /// Every distinct policy; the first is the default one.
    pub(crate) policies: Vec<HostTls>,
    /// Hosts whose policy is not the one a lookup of their name would otherwise find
    /// (empty when every host has the default policy).
    pub(crate) policy_exact: FastMap<Box<str>, TlsPolicyId>,
    pub(crate) policy_wildcard: FastMap<Box<str>, TlsPolicyId>,
    pub(crate) policy_default: TlsPolicyId,
    /// Whether some policy asks for client certificates.
    pub(crate) client_auth: bool,
}

impl Default for TlsTable {
    fn default() -> Self {
        Self {
            certs: Vec::new(),
            exact: FastMap::default(),
            wildcard: FastMap::default(),
            default: None,
            policies: vec![HostTls::default()],
            policy_exact: FastMap::default(),
            policy_wildcard: FastMap::default(),
            policy_default: TlsPolicyId::DEFAULT,
            client_auth: false,
        }
    }
}

impl TlsTable {
    pub(crate) fn lookup(&self, server_name: Option<&str>) -> Option<CertId> {
        lookup_in(server_name, &self.exact, &self.wildcard, self.default)
    }

    pub(crate) fn policy(&self, server_name: Option<&str>) -> TlsPolicyId {
        if self.policies.len() <= 1 {
            return TlsPolicyId::DEFAULT;
        }
        lookup_in(
            server_name,
            &self.policy_exact,
            &self.policy_wildcard,
            Some(self.policy_default),
        )
        .unwrap_or(TlsPolicyId::DEFAULT)
    }
}

/// Exact name, then its `*.` wildcard, then the default.
fn lookup_in<T: Copy>(
    server_name: Option<&str>,
    exact: &FastMap<Box<str>, T>,
    wildcard: &FastMap<Box<str>, T>,
    default: Option<T>,
) -> Option<T> {
    if let Some(name) = server_name {
        if exact.is_empty() && wildcard.is_empty() {
            return default;
        }
        let name = normalize_host(name);
        if let Some(id) = exact.get(&*name) {
            return Some(*id);
        }
        if let Some(id) = wildcard_suffix(&name).and_then(|s| wildcard.get(s)) {
            return Some(*id);
        }
    }
    default
}

// === impl TlsTable ===

impl TlsTable {
    /// The host TLS policies and which hosts have one other than the default, for
    /// `/debug/routes`.
    pub(crate) fn policies_json(&self) -> serde_json::Value {
        let policies: Vec<serde_json::Value> = self
            .policies
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let version = |v: TlsVersion| match v {
                    TlsVersion::V1_0 => "TLSv1.0",
                    TlsVersion::V1_1 => "TLSv1.1",
                    TlsVersion::V1_2 => "TLSv1.2",
                    TlsVersion::V1_3 => "TLSv1.3",
                };
                serde_json::json!({
                    "id": i,
                    "min_version": version(p.min_version),
                    "max_version": version(p.max_version),
                    "ciphers": p.ciphers.as_ref().map(|c| c.iter().map(|s| s.openssl_name()).collect::<Vec<_>>()),
                    "client_certificates": p.client.as_ref().map(|c| serde_json::json!({
                        "secret": c.secret.namespaced_name(),
                        "verify": c.verify.as_str(),
                        "depth": c.depth,
                        "cas": c.roots.len(),
                        "crls": c.crls.len(),
                        "pass_certificate": c.pass_certificate,
                        "error_page": c.error_page,
                        "match_cn": c.match_cn.as_ref().map(|m| m.0.as_str()),
                    })),
                })
            })
            .collect();
        let mut hosts = serde_json::Map::new();
        for (h, id) in &self.policy_exact {
            hosts.insert(h.to_string(), id.0.into());
        }
        for (s, id) in &self.policy_wildcard {
            hosts.insert(format!("*.{s}"), id.0.into());
        }
        if self.policy_default != TlsPolicyId::DEFAULT {
            hosts.insert("*".to_owned(), self.policy_default.0.into());
        }
        serde_json::json!({ "policies": policies, "hosts": hosts })
    }
}
