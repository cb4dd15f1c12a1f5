//! Backends: Service port -> target port -> ready addresses (EndpointSlices, else legacy
//! Endpoints), and one cluster per Service port.

use std::net::{IpAddr, SocketAddr};

use mse_model::api::EndpointSlice;
use mse_model::k8s_openapi::api::core::v1::{EndpointSubset, ObjectReference, ServicePort};
use mse_model::k8s_openapi::api::networking::v1::{IngressBackend, ServiceBackendPort};
use mse_model::k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use mse_model::{Diagnostic, Kind, ObjectKey};

use super::{Compiler, Selected};

/// An ExternalName Service as a backend names it.
struct ExternalBackend<'a> {
    svc_key: ObjectKey,
    /// `spec.externalName`.
    host: Option<&'a str>,
    want: Option<&'a ServiceBackendPort>,
    /// The Service port the backend named, if the Service lists it.
    port: Option<&'a ServicePort>,
}
use crate::table::{Backend, Cluster, ClusterId, ClusterTarget};

/// Which endpoints to keep, given an endpoint's address and the object it names.
pub(super) type Keep<'a> = dyn Fn(&str, Option<&ObjectReference>) -> bool + 'a;

/// `Backend::Unavailable` with this reason: requests answer 503.
fn unavailable(reason: String) -> Backend {
    Backend::Unavailable {
        reason: reason.into(),
    }
}

/// The Service port a backend asks for, by number or by name.
fn find_port<'a>(
    ports: &'a [ServicePort],
    want: Option<&ServiceBackendPort>,
) -> Option<&'a ServicePort> {
    match want {
        Some(p) if p.number.is_some() => ports.iter().find(|sp| Some(sp.port) == p.number),
        Some(p) if p.name.is_some() => ports
            .iter()
            .find(|sp| sp.name.is_some() && sp.name == p.name),
        _ => None,
    }
}

// === impl Compiler ===

impl<'s> Compiler<'s> {
    pub(super) fn resolve_backend(
        &mut self,
        b: &IngressBackend,
        sel: &Selected<'s>,
        field: &str,
    ) -> Backend {
        let ns: &str = &sel.key.namespace;
        let Some(svc_ref) = b.service.as_ref() else {
            return self.no_service(b, sel, field);
        };
        let svc_field = format!("{field}.service");
        let svc_key = ObjectKey::new(Kind::Service, ns, svc_ref.name.as_str());
        let Some(svc) = self.services.get(&(ns, svc_ref.name.as_str())).copied() else {
            let reason = format!("{svc_key} not found");
            self.diag(
                Diagnostic::error(
                    "missing-service",
                    format!("{reason}; requests to this path answer 503"),
                )
                .value(svc_ref.name.clone()),
                sel,
                Some(&svc_field),
            );
            return unavailable(reason);
        };
        let spec = svc.spec.as_ref();
        let ports = spec.and_then(|s| s.ports.as_deref()).unwrap_or(&[]);
        let want = svc_ref.port.as_ref();
        let port = find_port(ports, want);
        if spec.and_then(|s| s.type_.as_deref()) == Some("ExternalName") {
            let external = ExternalBackend {
                svc_key,
                host: spec.and_then(|s| s.external_name.as_deref()),
                want,
                port,
            };
            return self.resolve_external(external, sel, &svc_field);
        }
        let Some(port) = port else {
            return self.missing_port(&svc_key, want, sel, &svc_field);
        };
        let Ok(number) = u16::try_from(port.port) else {
            return unavailable(format!("{svc_key} port {} is out of range", port.port));
        };
        let port_name = port.name.as_deref().filter(|n| !n.is_empty());
        // Endpoints are resolved, and their absence reported, once per Service port.
        if let Some(id) = self.cluster_ids.get(&(svc_key.clone(), number)) {
            return Backend::Cluster(*id);
        }
        let addrs = self.endpoints_for(
            ns,
            &svc_ref.name,
            port_name,
            port.target_port.as_ref(),
            number,
        );
        if addrs.is_empty() {
            self.diag(
                Diagnostic::warning(
                    "no-endpoints",
                    format!("{svc_key} port {number} has no ready endpoints; requests answer 503 until one is ready"),
                ),
                sel,
                Some(&svc_field),
            );
        }
        let target = ClusterTarget::Endpoints(addrs.into());
        Backend::Cluster(self.cluster(svc_key, number, port_name, || target))
    }

    /// A backend without a Service: a resource backend (not supported) or nothing.
    fn no_service(&mut self, b: &IngressBackend, sel: &Selected<'s>, field: &str) -> Backend {
        if let Some(r) = b.resource.as_ref() {
            let reason = format!(
                "resource backend {}/{} is not supported; requests answer 503",
                r.kind, r.name
            );
            self.diag(
                Diagnostic::error("unsupported-backend", reason.clone()),
                sel,
                Some(&format!("{field}.resource")),
            );
            return unavailable(reason);
        }
        let reason = "backend names no service".to_owned();
        self.diag(
            Diagnostic::error("invalid-backend", format!("{reason}; requests answer 503")),
            sel,
            Some(field),
        );
        unavailable(reason)
    }

    /// An ExternalName Service: one cluster for its host, on the port the backend gives.
    fn resolve_external(
        &mut self,
        external: ExternalBackend<'_>,
        sel: &Selected<'s>,
        svc_field: &str,
    ) -> Backend {
        let ExternalBackend {
            svc_key,
            host,
            want,
            port,
        } = external;
        let Some(host) = host.filter(|h| !h.is_empty()) else {
            let reason = format!("{svc_key} is of type ExternalName but has no spec.externalName");
            self.diag(
                Diagnostic::error("invalid-service", format!("{reason}; requests answer 503")),
                sel,
                Some(svc_field),
            );
            return unavailable(reason);
        };
        let number = want.and_then(|p| p.number).or(port.map(|p| p.port));
        let Some(number) = number.and_then(|n| u16::try_from(n).ok()) else {
            let reason =
                format!("{svc_key} is of type ExternalName; the backend must give a port number");
            self.diag(
                Diagnostic::error(
                    "missing-service-port",
                    format!("{reason}; requests answer 503"),
                ),
                sel,
                Some(svc_field),
            );
            return unavailable(reason);
        };
        let target_port = external_port(port).unwrap_or(number);
        let target = ClusterTarget::ExternalName {
            host: host.into(),
            port: target_port,
        };
        Backend::Cluster(self.cluster(svc_key, number, None, || target))
    }

    /// The Service has no port the backend asks for (or the backend gives none).
    fn missing_port(
        &mut self,
        svc_key: &ObjectKey,
        want: Option<&ServiceBackendPort>,
        sel: &Selected<'s>,
        svc_field: &str,
    ) -> Backend {
        let wanted = match want {
            Some(p) => p
                .number
                .map(|n| n.to_string())
                .or(p.name.clone())
                .unwrap_or_default(),
            None => String::new(),
        };
        let reason = if wanted.is_empty() {
            "backend gives no service port".to_owned()
        } else {
            format!("{svc_key} has no port {wanted}")
        };
        self.diag(
            Diagnostic::error(
                "missing-service-port",
                format!("{reason}; requests to this path answer 503"),
            )
            .value(wanted),
            sel,
            Some(&format!("{svc_field}.port")),
        );
        unavailable(reason)
    }

    pub(super) fn cluster(
        &mut self,
        service: ObjectKey,
        port: u16,
        port_name: Option<&str>,
        target: impl FnOnce() -> ClusterTarget,
    ) -> ClusterId {
        if let Some(id) = self.cluster_ids.get(&(service.clone(), port)) {
            return *id;
        }
        let id = ClusterId(self.clusters.len() as u32);
        self.clusters.push(Cluster {
            id,
            service: service.clone(),
            port,
            port_name: port_name.map(Into::into),
            target: target(),
            protocol: self.port_protocol(&service, port, port_name),
            selection: None,
            warmup: None,
        });
        self.cluster_ids.insert((service, port), id);
        id
    }

    /// Ready addresses for one Service port: EndpointSlices first (their ports are named
    /// after the Service port), legacy Endpoints when the Service has no slice.
    pub(super) fn endpoints_for(
        &self,
        ns: &str,
        svc: &str,
        port_name: Option<&str>,
        target_port: Option<&IntOrString>,
        service_port: u16,
    ) -> Vec<SocketAddr> {
        self.endpoints_where(ns, svc, port_name, target_port, service_port, &|_, _| true)
    }

    /// [`Self::endpoints_for`], keeping only the endpoints `keep` accepts (given the
    /// address and the object the endpoint names, normally its Pod).
    pub(super) fn endpoints_where(
        &self,
        ns: &str,
        svc: &str,
        port_name: Option<&str>,
        target_port: Option<&IntOrString>,
        service_port: u16,
        keep: &Keep<'_>,
    ) -> Vec<SocketAddr> {
        let numeric_target = match target_port {
            Some(IntOrString::Int(t)) => u16::try_from(*t).ok(),
            Some(IntOrString::String(s)) => s.parse::<u16>().ok(),
            None => Some(service_port),
        };
        let mut out = Vec::new();
        if let Some(slices) = self.slices.get(&(ns, svc)) {
            for slice in slices {
                slice_addresses(slice, port_name, numeric_target, keep, &mut out);
            }
        } else if let Some(eps) = self.endpoints.get(&(ns, svc)) {
            for subset in eps.subsets.as_deref().unwrap_or(&[]) {
                subset_addresses(subset, port_name, numeric_target, keep, &mut out);
            }
        }
        out.sort();
        out.dedup();
        out
    }
}

/// The numeric `targetPort` of an ExternalName Service's port: the port to connect to on
/// the external host (a named target port means nothing there).
pub(crate) fn external_port(port: Option<&ServicePort>) -> Option<u16> {
    port.and_then(|p| match &p.target_port {
        Some(IntOrString::Int(t)) => u16::try_from(*t).ok(),
        _ => None,
    })
}

/// The ready addresses of one EndpointSlice, on the port named after the Service port
/// (the numeric target port when the slice lists no ports).
fn slice_addresses(
    slice: &EndpointSlice,
    port_name: Option<&str>,
    numeric_target: Option<u16>,
    keep: &Keep<'_>,
    out: &mut Vec<SocketAddr>,
) {
    if slice.address_type == "FQDN" {
        return;
    }
    let ports = slice.ports.as_deref().unwrap_or(&[]);
    let port = ports
        .iter()
        .find(|p| p.name.as_deref().filter(|n| !n.is_empty()) == port_name)
        .and_then(|p| p.port)
        .and_then(|p| u16::try_from(p).ok())
        .or(if ports.is_empty() {
            numeric_target
        } else {
            None
        });
    let Some(port) = port else { return };
    for ep in &slice.endpoints {
        let ready = ep.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
        if !ready {
            continue;
        }
        for a in &ep.addresses {
            if !keep(a, ep.target_ref.as_ref()) {
                continue;
            }
            if let Ok(ip) = a.parse::<IpAddr>() {
                out.push(SocketAddr::new(ip, port));
            }
        }
    }
}

/// The addresses of one legacy Endpoints subset, chosen like [`slice_addresses`].
fn subset_addresses(
    subset: &EndpointSubset,
    port_name: Option<&str>,
    numeric_target: Option<u16>,
    keep: &Keep<'_>,
    out: &mut Vec<SocketAddr>,
) {
    let ports = subset.ports.as_deref().unwrap_or(&[]);
    let port = ports
        .iter()
        .find(|p| p.name.as_deref().filter(|n| !n.is_empty()) == port_name)
        .and_then(|p| u16::try_from(p.port).ok())
        .or(if ports.is_empty() {
            numeric_target
        } else {
            None
        });
    let Some(port) = port else { return };
    for a in subset.addresses.as_deref().unwrap_or(&[]) {
        if !keep(&a.ip, a.target_ref.as_ref()) {
            continue;
        }
        if let Ok(ip) = a.ip.parse::<IpAddr>() {
            out.push(SocketAddr::new(ip, port));
        }
    }
}
