//! `backend-protocol` and upstream TLS (`proxy-ssl-*`): how the data plane talks to the
//! endpoints of a cluster. The same registration covers the other Service-scope keys the
//! compiler applies per cluster: `service-upstream` and `service-subset`/`subset-labels`
//! (which addresses a cluster has) and `warmup` (the slow start of its new endpoints). The keys are Service-scope, so the setting lives on the
//! cluster ([`crate::Cluster::protocol`]) rather than in the [`super::RoutePolicy`]: an
//! Ingress asking for another protocol than the Service port's default gets a cluster of
//! its own for that port. The compiler completes the TLS part with the Secret of
//! `proxy-ssl-secret`, read from the Ingress's own namespace; what it cannot read closes
//! the Ingress's routes (503) with an Error naming the key and value.
//!
//! Only configuration lives here (PEM bytes as validated by the compiler): the data plane
//! builds its TLS client from it once per distinct setting when a table is published.

use std::sync::Arc;

use mse_annotations::{CipherSuite, TlsVersion};
use serde::{Serialize, Serializer};

use super::Registration;

/// Upstream protocol and TLS: applied per cluster, so nothing is filled in from the
/// annotations alone.
pub(crate) const POLICY: Registration = Registration {
    name: "upstream-protocol",
    groups: &[],
    keys: &[
        "backend-protocol",
        "proxy-ssl-secret",
        "proxy-ssl-verify",
        "proxy-ssl-name",
        "proxy-ssl-server-name",
        "proxy-ssl-protocols",
        "proxy-ssl-ciphers",
        "service-upstream",
        "service-subset",
        "subset-labels",
        "warmup",
    ],
    build: super::compiled_elsewhere,
};

/// How the data plane speaks to a cluster's endpoints when not plain HTTP/1.1.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct UpstreamProtocol {
    /// HTTP/2 (with prior knowledge in cleartext, negotiated by ALPN over TLS); HTTP/1.1
    /// otherwise.
    pub http2: bool,
    /// TLS to the endpoints (`backend-protocol: HTTPS` or `GRPCS`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<UpstreamTls>,
}

/// The upstream TLS settings of a cluster.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct UpstreamTls {
    /// `proxy-ssl-verify: on`: the `ca.crt` of `proxy-ssl-secret` (PEM) that the upstream
    /// certificate must chain to. `None`: the certificate is not verified (the default,
    /// as in ingress-nginx and Higress).
    #[serde(rename = "verify", serialize_with = "present")]
    pub ca: Option<Arc<[u8]>>,
    /// `tls.crt` and `tls.key` of `proxy-ssl-secret` (PEM): the client certificate for
    /// upstream mTLS.
    #[serde(rename = "client_certificate", serialize_with = "present")]
    pub client: Option<(Arc<[u8]>, Arc<[u8]>)>,
    /// `proxy-ssl-name`: the name the certificate is verified against and sent as SNI.
    /// `None`: the Service's name (`name.namespace.svc`), or an ExternalName's host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<Box<str>>,
    /// `proxy-ssl-server-name: on`: SNI is sent.
    pub sni: bool,
    /// `proxy-ssl-protocols` (`None`: TLS 1.2 and 1.3).
    #[serde(skip)]
    pub versions: Option<Vec<TlsVersion>>,
    /// `proxy-ssl-ciphers` (`None`: the TLS library's defaults).
    #[serde(skip)]
    pub ciphers: Option<Vec<CipherSuite>>,
}

fn present<T, S: Serializer>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_bool(v.is_some())
}

// === impl UpstreamProtocol ===

impl UpstreamProtocol {
    /// Cleartext HTTP/2 with prior knowledge (h2c).
    pub fn h2c() -> Self {
        Self {
            http2: true,
            tls: None,
        }
    }

    /// The protocol Istio's port naming implies for a Service port without
    /// `backend-protocol`: HTTP/2 for names starting with `grpc` (but not `grpc-web`,
    /// which is HTTP/1.1) or `http2`.
    pub fn from_port_name(name: Option<&str>) -> Option<Self> {
        let named = name.is_some_and(|n| {
            let n = n.to_ascii_lowercase();
            (n.starts_with("grpc") && !n.starts_with("grpc-web")) || n.starts_with("http2")
        });
        named.then(Self::h2c)
    }

    /// The protocol a Service port's `appProtocol` names, for a port without
    /// `backend-protocol`: `Some(None)` for plain HTTP/1.1 (`http`, `kubernetes.io/ws`),
    /// `Some(Some(_))` for HTTP/2 in cleartext (`kubernetes.io/h2c`, `http2`, `grpc`) or
    /// TLS (`https`, `kubernetes.io/wss`, as `backend-protocol: HTTPS` without
    /// `proxy-ssl-*`: the certificate is not verified); `None` for any other value, which
    /// leaves the choice to the port's name. Compared without regard to case.
    pub fn from_app_protocol(app_protocol: &str) -> Option<Option<Self>> {
        let p = app_protocol.to_ascii_lowercase();
        Some(match p.as_str() {
            "http" | "kubernetes.io/ws" => None,
            "kubernetes.io/h2c" | "h2c" | "http2" | "grpc" => Some(Self::h2c()),
            "https" | "kubernetes.io/wss" => Some(Self {
                http2: false,
                tls: Some(UpstreamTls {
                    ca: None,
                    client: None,
                    name: None,
                    sni: false,
                    versions: None,
                    ciphers: None,
                }),
            }),
            _ => return None,
        })
    }
}
