//! Resolving fallback Services: `default-backend` and `custom-http-errors` of each Ingress,
//! and the gateway-wide default backend of [`CompileOptions::default_backend`].

use mse_annotations::{IngressPolicy, ServiceRef};
use mse_model::{Diagnostic, Kind, ObjectKey};

use super::{CompileOptions, Compiler, Selected, external_port};
use crate::policy::{FallbackPolicy, RoutePolicy};
use crate::table::{ClusterId, ClusterTarget};

/// Why a fallback Service could not be used: a diagnostic code and a message.
type Unresolved = (&'static str, String);

// === impl Compiler ===

impl<'s> Compiler<'s> {
    /// Resolves the gateway-wide default backend once, before any Ingress: a missing
    /// Service or port is an error diagnostic, and unmatched requests then get 404.
    pub(super) fn add_gateway_default(&mut self, opts: &CompileOptions) {
        let Some(r) = &opts.default_backend else {
            return;
        };
        let Some(ns) = r.service.namespace.as_deref() else {
            self.diagnostics.push(Diagnostic::error(
                "invalid-default-backend",
                format!(
                    "the gateway-wide default backend {r} names no namespace; unmatched requests get 404"
                ),
            ));
            return;
        };
        let ns = ns.to_owned();
        match self.service_cluster(&ns, r) {
            Ok(id) => {
                if self.has_no_endpoints(id) {
                    let c = &self.clusters[id.0 as usize];
                    let d = Diagnostic::warning(
                        "no-endpoints",
                        format!(
                            "{} port {} (the gateway-wide default backend) has no ready endpoints; unmatched requests answer 503 until one is ready",
                            c.service, c.port
                        ),
                    )
                    .object(c.service.clone());
                    self.diagnostics.push(d);
                }
                self.gateway_default = Some(id);
            }
            Err((code, why)) => {
                let d = Diagnostic::error(
                    code,
                    format!("{why} (the gateway-wide default backend); unmatched requests get 404"),
                )
                .object(ObjectKey::new(
                    Kind::Service,
                    ns.as_str(),
                    r.service.name.as_str(),
                ))
                .value(r.to_string());
                self.diagnostics.push(d);
            }
        }
    }

    /// Adds the fallback of an Ingress to the policy of its routes. A `default-backend`
    /// whose Service is missing was reported by `check_references`; a missing port is
    /// reported here. `custom-http-errors` with no Service to answer them is ignored with
    /// a warning.
    pub(super) fn with_fallback(
        &mut self,
        sel: &Selected<'s>,
        policy: &IngressPolicy,
        built: Option<RoutePolicy>,
    ) -> Option<RoutePolicy> {
        let f = &policy.fallback;
        let key_of = |name: &str| {
            sel.ingress
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| mse_annotations::lookup(a, name))
                .map(|f| f.key.to_owned())
        };
        let cluster = match &f.default_backend {
            None => None,
            Some(r) => {
                let ns = r.service.namespace_or(&sel.key.namespace).to_owned();
                match self.service_cluster(&ns, r) {
                    Ok(id) => Some(id),
                    Err(("missing-service", _)) => None,
                    Err((code, why)) => {
                        let key = key_of("default-backend");
                        self.diag(
                            Diagnostic::warning(
                                code,
                                format!("{why}; default-backend has no effect until it exists"),
                            )
                            .value(r.to_string()),
                            sel,
                            key.as_deref(),
                        );
                        None
                    }
                }
            }
        };
        let mut codes: Box<[u16]> = f.custom_http_errors.clone().into();
        if !codes.is_empty() && cluster.is_none() && self.gateway_default.is_none() {
            let key = key_of("custom-http-errors");
            let why = if f.default_backend.is_some() {
                "default-backend cannot be used and the gateway has no default backend (--default-backend-service), so no Service answers these errors; upstream answers are relayed as they are"
            } else {
                "neither default-backend on this Ingress nor a gateway-wide default backend (--default-backend-service) is set, so no Service answers these errors; upstream answers are relayed as they are"
            };
            self.diag(
                Diagnostic::warning("ignored-annotation", why),
                sel,
                key.as_deref(),
            );
            codes = Box::default();
        }
        let fallback = FallbackPolicy { cluster, codes };
        if fallback.is_empty() {
            return built;
        }
        let mut out = built.unwrap_or_default();
        out.fallback = Some(fallback);
        Some(out)
    }

    /// The cluster of a Service port named by a fallback reference: the given port
    /// number, else the Service's first port (as ingress-nginx and Higress do).
    fn service_cluster(&mut self, ns: &str, r: &ServiceRef) -> Result<ClusterId, Unresolved> {
        let name = r.service.name.as_str();
        let key = ObjectKey::new(Kind::Service, ns, name);
        let Some(svc) = self.services.get(&(ns, name)).copied() else {
            return Err(("missing-service", format!("{key} not found")));
        };
        let spec = svc.spec.as_ref();
        let ports = spec.and_then(|s| s.ports.as_deref()).unwrap_or(&[]);
        let port = match r.port {
            Some(n) => ports.iter().find(|p| p.port == i32::from(n)),
            None => ports.first(),
        };
        if spec.and_then(|s| s.type_.as_deref()) == Some("ExternalName") {
            let Some(host) = spec
                .and_then(|s| s.external_name.as_deref())
                .filter(|h| !h.is_empty())
            else {
                return Err((
                    "invalid-service",
                    format!("{key} is of type ExternalName but has no spec.externalName"),
                ));
            };
            let Some(number) = r
                .port
                .or_else(|| port.and_then(|p| u16::try_from(p.port).ok()))
            else {
                return Err((
                    "missing-service-port",
                    format!("{key} is of type ExternalName and no port is given"),
                ));
            };
            let target_port = external_port(port).unwrap_or(number);
            let target = ClusterTarget::ExternalName {
                host: host.into(),
                port: target_port,
            };
            return Ok(self.cluster(key, number, None, || target));
        }
        let Some(port) = port else {
            let what = r
                .port
                .map_or_else(|| "no ports".to_owned(), |p| format!("no port {p}"));
            return Err(("missing-service-port", format!("{key} has {what}")));
        };
        let Ok(number) = u16::try_from(port.port) else {
            return Err((
                "missing-service-port",
                format!("{key} port {} is out of range", port.port),
            ));
        };
        if let Some(id) = self.cluster_ids.get(&(key.clone(), number)) {
            return Ok(*id);
        }
        let port_name = port.name.as_deref().filter(|n| !n.is_empty());
        let addrs = self.endpoints_for(ns, name, port_name, port.target_port.as_ref(), number);
        let target = ClusterTarget::Endpoints(addrs.into());
        Ok(self.cluster(key, number, port_name, || target))
    }

    fn has_no_endpoints(&self, id: ClusterId) -> bool {
        matches!(&self.clusters[id.0 as usize].target, ClusterTarget::Endpoints(a) if a.is_empty())
    }
}

#[cfg(test)]
mod tests;
