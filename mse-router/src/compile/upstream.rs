//! Completing `backend-protocol` and `proxy-ssl-*` of an Ingress into an
//! [`UpstreamProtocol`] with the PEM data of `proxy-ssl-secret`, and giving its backends
//! clusters that carry it.

use std::sync::Arc;

use mse_annotations::{BackendProtocol, IngressPolicy};
use mse_model::Diagnostic;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use super::checks::annotation_key;
use super::{Compiler, Selected};
use crate::policy::{UpstreamProtocol, UpstreamTls};
use crate::table::{Backend, Cluster, ClusterId};

// === impl Compiler ===

impl<'s> Compiler<'s> {
    /// The upstream protocol an Ingress asks for; `Ok(None)`: plain HTTP/1.1 (or what the
    /// Service port's name implies). `Err` holds the annotation key that cannot be
    /// honoured (reported here): its routes fail closed.
    pub(super) fn upstream_protocol(
        &mut self,
        sel: &Selected<'s>,
        policy: &IngressPolicy,
    ) -> Result<Option<Arc<UpstreamProtocol>>, String> {
        let b = &policy.backend;
        let http2 = matches!(
            b.protocol,
            BackendProtocol::Http2 | BackendProtocol::Grpc | BackendProtocol::Grpcs
        );
        if b.protocol != BackendProtocol::Http {
            self.note_http1_only(sel);
        }
        if !b.protocol.is_tls() {
            return Ok(http2.then(|| Arc::new(UpstreamProtocol::h2c())));
        }
        let t = &b.tls;
        let mut tls = UpstreamTls {
            ca: None,
            client: None,
            name: t.name.as_deref().map(Into::into),
            sni: t.send_sni,
            versions: t.protocols.clone(),
            ciphers: t.ciphers.clone(),
        };
        if let Some(r) = &t.secret {
            let ns = r.namespace_or(&sel.key.namespace).to_owned();
            let key = annotation_key(sel, "proxy-ssl-secret");
            let fail = |this: &mut Self, code: &'static str, what: String| {
                this.diag(
                    Diagnostic::error(
                        code,
                        format!("{what}; security annotations fail closed: the routes of this Ingress answer 503 until it is fixed"),
                    )
                    .value(r.to_string()),
                    sel,
                    Some(&key),
                );
                Err(key.clone())
            };
            let Some(secret) = self.secrets.get(&(ns.as_str(), r.name.as_str())).copied() else {
                return fail(
                    self,
                    "missing-secret",
                    format!("Secret {ns}/{} not found", r.name),
                );
            };
            let data = secret.data.as_ref();
            let get = |k: &str| data.and_then(|d| d.get(k)).map(|v| v.0.as_slice());
            if t.verify {
                let Some(ca) = get("ca.crt") else {
                    return fail(
                        self,
                        "invalid-secret",
                        format!(
                            "Secret {ns}/{} has no ca.crt key (proxy-ssl-verify is on)",
                            r.name
                        ),
                    );
                };
                let roots: Result<Vec<CertificateDer<'static>>, _> =
                    CertificateDer::pem_slice_iter(ca).collect();
                let problem = match roots {
                    Err(e) => Some(format!("ca.crt is not valid PEM: {e}")),
                    Ok(r) if r.is_empty() => Some("ca.crt holds no CERTIFICATE block".to_owned()),
                    Ok(_) => None,
                };
                if let Some(p) = problem {
                    return fail(
                        self,
                        "invalid-secret",
                        format!("Secret {ns}/{}: {p}", r.name),
                    );
                }
                tls.ca = Some(Arc::from(ca));
            }
            match (get("tls.crt"), get("tls.key")) {
                (Some(crt), Some(k)) => {
                    if let Err(p) = crate::tls::parse_key_pair(crt, k) {
                        return fail(
                            self,
                            "invalid-secret",
                            format!("Secret {ns}/{}: {p}", r.name),
                        );
                    }
                    tls.client = Some((Arc::from(crt), Arc::from(k)));
                }
                (None, None) => {}
                _ => {
                    return fail(
                        self,
                        "invalid-secret",
                        format!(
                            "Secret {ns}/{} has only one of tls.crt and tls.key, so no client certificate can be sent",
                            r.name
                        ),
                    );
                }
            }
        } else if t.verify {
            // The parser reported it and closed the routes already.
            return Ok(None);
        }
        Ok(Some(Arc::new(UpstreamProtocol {
            http2,
            tls: Some(tls),
        })))
    }

    /// A warning for each annotation of an Ingress with a `backend-protocol` that the
    /// data plane applies only on plain HTTP/1.1 upstreams: the mirror copy,
    /// `custom-http-errors` pages, `proxy-send-timeout` and the connection limits.
    fn note_http1_only(&mut self, sel: &Selected<'s>) {
        let Some(annotations) = sel.ingress.metadata.annotations.as_ref() else {
            return;
        };
        for key in annotations.keys() {
            let Some((_, name)) = mse_annotations::split_key(key) else {
                continue;
            };
            let http1_only = name.starts_with("mirror-")
                || name.starts_with("connection-policy-")
                || name == "proxy-send-timeout"
                || name == "custom-http-errors";
            if http1_only {
                self.diag(
                    Diagnostic::warning(
                        "not-applied",
                        "not applied with this backend-protocol: mirroring, custom-http-errors pages, proxy-send-timeout and connection-policy-* apply only to plain HTTP/1.1 upstreams for now",
                    ),
                    sel,
                    Some(key),
                );
            }
        }
    }

    /// `backend` with `protocol`: the same Service port and endpoints, in a cluster of
    /// its own for that protocol (shared by every Ingress asking for the same).
    pub(super) fn with_protocol(
        &mut self,
        backend: Backend,
        protocol: Option<&Arc<UpstreamProtocol>>,
    ) -> Backend {
        let (Backend::Cluster(base), Some(protocol)) = (&backend, protocol) else {
            return backend;
        };
        let key = (*base, Arc::clone(protocol));
        if let Some(id) = self.protocol_clusters.get(&key) {
            return Backend::Cluster(*id);
        }
        let id = ClusterId(self.clusters.len() as u32);
        let cluster = Cluster {
            id,
            protocol: Some(Arc::clone(protocol)),
            ..self.clusters[base.0 as usize].clone()
        };
        self.clusters.push(cluster);
        self.protocol_clusters.insert(key, id);
        Backend::Cluster(id)
    }
}
