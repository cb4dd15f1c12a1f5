//! TLS termination: certificates chosen by SNI from the route table being served, with a
//! self-signed fallback certificate (ingress-nginx's "fake certificate"), and each host's
//! TLS policy: versions, cipher suites and client certificates.
//!
//! When the table has one policy for every host (no TLS annotations), a handshake is
//! served as a plain rustls accept with that policy's configuration. Otherwise the
//! ClientHello is read first, its server name picks the host's policy, and the handshake
//! goes on with that policy's configuration (built when the table was published).
//!
//! A request whose `Host` has another certificate or policy than the server name the
//! connection was made for gets 421 Misdirected Request, so that a client cannot reach a
//! host that asks for client certificates over a connection made for one that does not.

mod client;
mod policy;

use std::io;
use std::sync::Arc;

use mse_router::RouteTable;
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::{Acceptor, ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::server::TlsStream;
use tokio_rustls::{LazyConfigAcceptor, TlsAcceptor};

use crate::error::ProxyError;
use crate::policy::redirect::host_without_port;
use crate::table::{ProxyTable, SharedTable};

pub(crate) use client::{Checked, ClientCert, ClientHeaders};
pub(crate) use policy::{PolicyKit, restrict_suites};

/// What a TLS connection was made with, for the checks of each of its requests.
#[derive(Debug)]
pub(crate) struct ConnTls {
    /// The server name the client sent.
    sni: Option<Box<str>>,
    /// The generation of the table the handshake used.
    generation: u64,
    /// The certificate presented (`None`: the fallback one).
    cert: Option<Arc<CertifiedKey>>,
    /// The policy the handshake used.
    kit: Arc<PolicyKit>,
    /// The client certificate's verification, when the policy asks for one.
    client: Option<ClientCert>,
}

/// Picks a certificate for each handshake from one published table.
#[derive(Debug)]
pub(crate) struct TableResolver {
    pub(crate) routes: Arc<RouteTable>,
    pub(crate) keys: Arc<[Option<Arc<CertifiedKey>>]>,
    pub(crate) fallback: Option<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for TableResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let key = self
            .routes
            .certificate_for(hello.server_name())
            .and_then(|id| self.keys.get(id.0 as usize)?.clone());
        key.or_else(|| self.fallback.clone())
    }
}

/// The TLS handshake of a new connection, with the policy of the host it names.
pub(crate) async fn accept<S: AsyncRead + AsyncWrite + Unpin>(
    table: &SharedTable,
    stream: S,
) -> io::Result<(TlsStream<S>, ConnTls)> {
    let current = table.current();
    let (stream, used) = if current.routes().tls_policies().len() == 1 {
        let (config, kit) = policy_of(&current, mse_router::TlsPolicyId::DEFAULT)?;
        (
            TlsAcceptor::from(config).accept(stream).await?,
            (current, kit),
        )
    } else {
        let start = LazyConfigAcceptor::new(Acceptor::default(), stream).await?;
        // The table may have changed while the ClientHello came in.
        let current = table.current();
        let id = current
            .routes()
            .tls_policy_for(start.client_hello().server_name());
        let (config, kit) = policy_of(&current, id)?;
        (start.into_stream(config).await?, (current, kit))
    };
    let (used, kit) = used;
    let conn = stream.get_ref().1;
    let sni: Option<Box<str>> = conn.server_name().map(Box::from);
    let client = kit
        .client
        .as_ref()
        .map(|c| c.verify(conn.peer_certificates()));
    let info = ConnTls {
        cert: used.certified_key(sni.as_deref()),
        sni,
        generation: used.generation(),
        kit,
        client,
    };
    Ok((stream, info))
}

fn policy_of(
    table: &ProxyTable,
    id: mse_router::TlsPolicyId,
) -> io::Result<(Arc<ServerConfig>, Arc<PolicyKit>)> {
    table
        .tls_policy(id)
        .ok_or_else(|| io::Error::other("the host's TLS policy could not be set up"))
}

/// What the TLS checks decide for one request.
pub(crate) enum HostCheck<'a> {
    /// It goes on, with these `ssl-client-*` headers upstream, if any. Boxed: most hosts
    /// ask for no certificate, and every request moves this answer.
    Pass(Option<Box<ClientHeaders>>),
    /// Its host has another certificate or TLS policy than the connection: 421.
    Misdirected,
    /// Client certificate required and missing or invalid: 400 with this text, or a
    /// redirect to the error page.
    Refuse {
        text: &'static str,
        error_page: Option<&'a str>,
    },
    /// The certificate's subject does not match `auth-tls-match-cn`: 403.
    Forbidden,
}

/// The TLS checks of a request to `host` on a connection made with `conn` (`None`:
/// plain HTTP).
pub(crate) fn check_request<'a>(
    conn: Option<&'a ConnTls>,
    table: &'a ProxyTable,
    host: &str,
) -> HostCheck<'a> {
    let Some(conn) = conn else {
        if !table.routes().has_client_auth() {
            return HostCheck::Pass(None);
        }
        let name = host_without_port(host);
        let id = table.routes().tls_policy_for(Some(name));
        return match table.tls_kit(id) {
            Some(kit) => match &kit.client {
                Some(c) => checked(c.check_request(None)),
                None => HostCheck::Pass(None),
            },
            // Not set up: the host is not served without its policy.
            None => HostCheck::Misdirected,
        };
    };
    let name = host_without_port(host);
    let same_name = conn
        .sni
        .as_deref()
        .is_some_and(|s| s.eq_ignore_ascii_case(name));
    if !same_name || conn.generation != table.generation() {
        let id = table.routes().tls_policy_for(Some(name));
        let same_policy = table
            .tls_kit(id)
            .is_some_and(|kit| Arc::ptr_eq(kit, &conn.kit) || kit.policy == conn.kit.policy);
        if !same_policy {
            return HostCheck::Misdirected;
        }
        // Without SNI, the certificate was never chosen for a name: only the policy
        // counts. Connection reuse across names needs the same certificate.
        if !same_name && conn.sni.is_some() {
            let cert = table.certified_key(Some(name));
            let same_cert = match (&cert, &conn.cert) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                (None, None) => true,
                _ => false,
            };
            if !same_cert {
                return HostCheck::Misdirected;
            }
        }
    }
    match &conn.kit.client {
        Some(c) => checked(c.check_request(conn.client.as_ref())),
        None => HostCheck::Pass(None),
    }
}

fn checked(c: Checked<'_>) -> HostCheck<'_> {
    match c {
        Checked::Pass(h) => HostCheck::Pass(Some(Box::new(h))),
        Checked::Refuse { text, error_page } => HostCheck::Refuse { text, error_page },
        Checked::Forbidden => HostCheck::Forbidden,
    }
}

/// The subject common name of the fallback certificate, presented when the table has no
/// certificate for the client's server name (or the client sent none).
pub const FALLBACK_CERT_CN: &str = "MSE Ingress Controller Fake Certificate";

/// The DNS name in the fallback certificate.
pub const FALLBACK_CERT_SAN: &str = "ingress.local";

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
