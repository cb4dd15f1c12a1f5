//! TLS certificates from `kubernetes.io/tls` Secrets, and their selection by server name.

use std::sync::Arc;

use mse_model::ObjectKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

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
}

impl Clone for Certificate {
    fn clone(&self) -> Self {
        Self {
            id: self.id,
            secret: self.secret.clone(),
            hosts: self.hosts.clone(),
            chain: self.chain.clone(),
            key: Arc::clone(&self.key),
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

/// Server name -> certificate.
#[derive(Clone, Debug, Default)]
pub(crate) struct TlsTable {
    pub(crate) certs: Vec<Certificate>,
    pub(crate) exact: FastMap<Box<str>, CertId>,
    pub(crate) wildcard: FastMap<Box<str>, CertId>,
    pub(crate) default: Option<CertId>,
}

impl TlsTable {
    pub(crate) fn lookup(&self, server_name: Option<&str>) -> Option<CertId> {
        if let Some(name) = server_name {
            let name = normalize_host(name);
            if let Some(id) = self.exact.get(&*name) {
                return Some(*id);
            }
            if let Some(id) = wildcard_suffix(&name).and_then(|s| self.wildcard.get(s)) {
                return Some(*id);
            }
        }
        self.default
    }
}
