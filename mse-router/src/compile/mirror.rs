//! Resolving `mirror-target-service` and `mirror-target-fqdn` into a [`MirrorPolicy`].

use std::sync::Arc;

use mse_annotations::{IngressPolicy, Mirror, MirrorTarget, ServiceRef};
use mse_model::api::Service;
use mse_model::{Diagnostic, Kind, ObjectKey};

use super::{Compiler, Selected, external_port};
use crate::policy::{MirrorPolicy, RoutePolicy};
use crate::table::ClusterTarget;

// === impl Compiler ===

impl<'s> Compiler<'s> {
    /// Adds the mirror of an Ingress to the policy of its routes (so canary routes that
    /// copy the policy mirror too).
    pub(super) fn with_mirror(
        &mut self,
        sel: &Selected<'s>,
        policy: &IngressPolicy,
        built: Option<RoutePolicy>,
    ) -> Option<RoutePolicy> {
        let Some(mirror) = policy
            .mirror
            .as_ref()
            .and_then(|m| self.mirror_policy(sel, m))
        else {
            return built;
        };
        let mut built = built.unwrap_or_default();
        built.mirror = Some(Arc::new(mirror));
        Some(built)
    }

    /// The mirror of an Ingress, or `None` when its target cannot be resolved. A missing
    /// Service was reported already (see `check_references`); a missing port is reported
    /// here. A Service without ready endpoints still mirrors once one is ready: the table
    /// is compiled again when endpoints change.
    fn mirror_policy(&mut self, sel: &Selected<'s>, mirror: &Mirror) -> Option<MirrorPolicy> {
        let (target, name) = match &mirror.target {
            MirrorTarget::Fqdn { host, port } => (
                ClusterTarget::ExternalName {
                    host: host.as_str().into(),
                    port: *port,
                },
                format!("{host}:{port}"),
            ),
            MirrorTarget::Service(r) => self.mirror_service(sel, r)?,
        };
        Some(MirrorPolicy {
            target,
            percentage: mirror.percentage.min(100),
            name: Arc::from(name),
        })
    }

    fn mirror_service(
        &mut self,
        sel: &Selected<'s>,
        r: &ServiceRef,
    ) -> Option<(ClusterTarget, String)> {
        let ns = r.service.namespace_or(&sel.key.namespace).to_owned();
        let name = r.service.name.as_str();
        let svc: &Service = self.services.get(&(ns.as_str(), name)).copied()?;
        let spec = svc.spec.as_ref();
        let ports = spec.and_then(|s| s.ports.as_deref()).unwrap_or(&[]);
        let port = match r.port {
            Some(n) => ports.iter().find(|p| p.port == i32::from(n)),
            None => ports.first(),
        };
        let svc_key = ObjectKey::new(Kind::Service, ns.as_str(), name);
        let external = spec
            .filter(|s| s.type_.as_deref() == Some("ExternalName"))
            .and_then(|s| s.external_name.as_deref())
            .filter(|h| !h.is_empty());
        if let Some(host) = external {
            // An ExternalName Service needs no port entry when the annotation gives one.
            let number = r
                .port
                .or_else(|| port.and_then(|p| u16::try_from(p.port).ok()));
            let target_port = external_port(port).or(number);
            if let Some(target_port) = target_port {
                let target = ClusterTarget::ExternalName {
                    host: host.into(),
                    port: target_port,
                };
                return Some((target, format!("{ns}/{name}:{target_port}")));
            }
        }
        let Some(port) = port else {
            let key = self.annotation_key(sel, "mirror-target-service");
            self.diag(
                Diagnostic::warning(
                    "missing-service-port",
                    format!(
                        "{svc_key} has no port {}; requests are not mirrored",
                        r.port
                            .map_or_else(|| "at all".to_owned(), |p| p.to_string())
                    ),
                )
                .value(r.to_string()),
                sel,
                key.as_deref(),
            );
            return None;
        };
        let number = u16::try_from(port.port).ok()?;
        let port_name = port.name.as_deref().filter(|n| !n.is_empty());
        let addrs = self.endpoints_for(&ns, name, port_name, port.target_port.as_ref(), number);
        // Registered as a cluster so that `/debug/routes` lists the mirror's endpoints.
        let addrs: Arc<[_]> = addrs.into();
        let id = self.cluster(svc_key, number, port_name, || {
            ClusterTarget::Endpoints(Arc::clone(&addrs))
        });
        let target = self.clusters[id.0 as usize].target.clone();
        Some((target, format!("{ns}/{name}:{number}")))
    }

    /// The annotation key under which `name` was written on the Ingress, if it was.
    fn annotation_key(&self, sel: &Selected<'s>, name: &str) -> Option<String> {
        sel.ingress
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| mse_annotations::lookup(a, name))
            .map(|f| f.key.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use mse_model::{Snapshot, load_manifests};

    use crate::{CompileOptions, RequestHead, RouteTable, compile};

    const SERVICES: &str = r#"
apiVersion: v1
kind: Service
metadata: { name: shadow, namespace: tools }
spec:
  ports: [{ name: http, port: 80, targetPort: 8080 }, { name: admin, port: 81, targetPort: 9090 }]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: shadow-1, namespace: tools, labels: { kubernetes.io/service-name: shadow } }
addressType: IPv4
ports: [{ name: http, port: 8080 }, { name: admin, port: 9090 }]
endpoints: [{ addresses: ["10.0.0.7"], conditions: { ready: true } }]
"#;

    fn table(mirror: &str) -> RouteTable {
        let yaml = format!(
            r#"{SERVICES}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: shop
  namespace: default
  annotations: {{ nginx.ingress.kubernetes.io/mirror-target-service: "{mirror}", nginx.ingress.kubernetes.io/mirror-percentage: "30" }}
spec:
  ingressClassName: mse
  rules:
  - host: shop.example.com
    http:
      paths:
      - {{ path: /, pathType: Prefix, backend: {{ service: {{ name: web, port: {{ number: 80 }} }} }} }}
"#
        );
        let mut s = Snapshot::default();
        s.extend(load_manifests(&yaml, Some("t.yaml")).objects);
        compile(&s, &CompileOptions::default())
    }

    fn mirror_of(t: &RouteTable) -> Option<(String, u8, String)> {
        let m = t.lookup(&RequestHead::new("shop.example.com", "/"))?;
        let mirror = m.route.policy.as_ref()?.mirror.as_ref()?;
        Some((
            serde_json::to_string(&mirror.target).ok()?,
            mirror.percentage,
            mirror.name.to_string(),
        ))
    }

    #[test]
    fn the_first_port_is_used_unless_one_is_named() {
        let t = table("tools/shadow");
        let (target, pct, name) = mirror_of(&t).expect("a mirror");
        assert_eq!(target, r#"{"endpoints":["10.0.0.7:8080"]}"#);
        assert_eq!((pct, name.as_str()), (30, "tools/shadow:80"));
        let t = table("tools/shadow:81");
        let (target, _, name) = mirror_of(&t).expect("a mirror");
        assert_eq!(target, r#"{"endpoints":["10.0.0.7:9090"]}"#);
        assert_eq!(name, "tools/shadow:81");
    }

    #[test]
    fn a_missing_service_or_port_mirrors_nothing_and_says_why() {
        for (mirror, code) in [
            ("tools/shadow:82", "missing-service-port"),
            ("shadow", "missing-service"),
        ] {
            let t = table(mirror);
            assert!(mirror_of(&t).is_none(), "{mirror}");
            assert!(
                t.diagnostics().iter().any(|d| d.code == code
                    && d.origin
                        .key
                        .as_deref()
                        .is_some_and(|k| k.ends_with("mirror-target-service"))),
                "{mirror}: {:?}",
                t.diagnostics()
            );
        }
    }
}
