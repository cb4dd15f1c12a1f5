//! Clusters of a Service port that differ from the port's own by an Ingress's
//! Service-scope keys, and the port's default protocol:
//!
//! - `service-upstream`: the Service's cluster IP and port instead of its endpoints, as
//!   ingress-nginx does. A Service without a cluster IP (headless, or `None`) keeps its
//!   endpoints, with a warning.
//! - `service-subset` / `subset-labels` (MSE): only the endpoints whose Pod carries the
//!   subset's labels. An endpoint names its Pod (`targetRef`, else its address among the
//!   Pods of the namespace); an endpoint whose Pod is unknown has no labels. The subset
//!   `X` is the Pods labelled `opensergo.io/canary-X: X`; the base subset (empty or
//!   `base`) the Pods labelled `opensergo.io/canary: ""` or with no `opensergo.io/canary*`
//!   label; `subset-labels` replaces that convention by its own selector. When no Pod
//!   matches, every endpoint serves the subset (with a warning).
//! - `warmup` (MSE): carried on the cluster for the data plane's slow start.
//!
//! Each distinct setting gets one cluster per Service port, shared by every Ingress
//! asking for the same; an Ingress's `backend-protocol` then applies on top.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use mse_annotations::{IngressPolicy, LoadBalance, ServiceSubset};
use mse_model::api::Pod;
use mse_model::k8s_openapi::api::core::v1::ObjectReference;
use mse_model::{Diagnostic, ObjectKey, Snapshot};

use super::checks::annotation_key;
use super::{Compiler, Selected};
use crate::policy::UpstreamProtocol;
use crate::table::{Backend, Cluster, ClusterId, ClusterTarget};

/// The label prefix of MSE's subset convention.
const CANARY_LABEL: &str = "opensergo.io/canary";

/// What makes a cluster differ from its Service port's own: the key of the variant
/// clusters, beside the port's own cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(super) struct Variant {
    service_upstream: bool,
    subset: Option<(Option<String>, BTreeMap<String, String>)>,
    warmup: Option<Duration>,
}

/// The Pods of a snapshot, by namespace and name, and by namespace and address.
#[derive(Default)]
pub(super) struct Pods<'s> {
    by_name: std::collections::HashMap<(&'s str, &'s str), &'s Pod>,
    by_ip: std::collections::HashMap<(&'s str, &'s str), &'s Pod>,
}

// === impl Pods ===

impl<'s> Pods<'s> {
    pub(super) fn new(snapshot: &'s Snapshot) -> Self {
        let mut pods = Self::default();
        for p in &snapshot.pods {
            let pod = &*p.object;
            let ns = super::ns_of(&pod.metadata);
            if let Some(name) = pod.metadata.name.as_deref() {
                pods.by_name.entry((ns, name)).or_insert(pod);
            }
            let status = pod.status.as_ref();
            let ips = status.and_then(|s| s.pod_ip.as_deref()).into_iter().chain(
                status
                    .and_then(|s| s.pod_ips.as_deref())
                    .unwrap_or(&[])
                    .iter()
                    .map(|i| i.ip.as_str()),
            );
            for ip in ips {
                pods.by_ip.entry((ns, ip)).or_insert(pod);
            }
        }
        pods
    }

    /// The labels of the Pod an endpoint of namespace `ns` names; `None` when it names
    /// none the snapshot holds.
    fn labels(
        &self,
        ns: &str,
        ip: &str,
        target: Option<&ObjectReference>,
    ) -> Option<&'s BTreeMap<String, String>> {
        let by_ref = target
            .filter(|t| t.kind.as_deref().is_none_or(|k| k == "Pod"))
            .and_then(|t| {
                let pod_ns = t
                    .namespace
                    .as_deref()
                    .filter(|n| !n.is_empty())
                    .unwrap_or(ns);
                self.by_name.get(&(pod_ns, t.name.as_deref()?)).copied()
            });
        let pod = by_ref.or_else(|| self.by_ip.get(&(ns, ip)).copied())?;
        pod.metadata.labels.as_ref()
    }
}

/// Whether a Pod with `labels` belongs to `subset`.
fn in_subset(subset: &ServiceSubset, labels: Option<&BTreeMap<String, String>>) -> bool {
    let get = |k: &str| labels.and_then(|l| l.get(k)).map(String::as_str);
    if !subset.labels.is_empty() {
        return subset
            .labels
            .iter()
            .all(|(k, v)| get(k) == Some(v.as_str()));
    }
    match &subset.name {
        Some(name) => get(&format!("{CANARY_LABEL}-{name}")) == Some(name.as_str()),
        None => {
            get(CANARY_LABEL) == Some("")
                || !labels.is_some_and(|l| l.keys().any(|k| k.starts_with(CANARY_LABEL)))
        }
    }
}

fn describe(subset: &ServiceSubset) -> String {
    if !subset.labels.is_empty() {
        let labels: Vec<String> = subset
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        return format!("pods labelled {}", labels.join(","));
    }
    match &subset.name {
        Some(n) => format!("subset {n}"),
        None => "base subset".to_owned(),
    }
}

// === impl Compiler ===

impl<'s> Compiler<'s> {
    /// The protocol of a new cluster of `service` port `port`, from the port's
    /// `appProtocol`, else its name.
    pub(super) fn port_protocol(
        &self,
        service: &ObjectKey,
        port: u16,
        port_name: Option<&str>,
    ) -> Option<Arc<UpstreamProtocol>> {
        let app = self
            .services
            .get(&(&*service.namespace, &*service.name))
            .and_then(|s| s.spec.as_ref()?.ports.as_deref())
            .and_then(|ports| ports.iter().find(|p| p.port == i32::from(port)))
            .and_then(|p| p.app_protocol.as_deref());
        let protocol = match app.and_then(UpstreamProtocol::from_app_protocol) {
            Some(p) => p,
            None => UpstreamProtocol::from_port_name(port_name),
        };
        protocol.map(Arc::new)
    }

    /// `backend` with the Service-scope keys of `policy` that change its addresses
    /// (`service-upstream`, `service-subset`) or its balancing (`warmup`): a cluster of
    /// their own for the same Service port.
    pub(super) fn with_variant(
        &mut self,
        backend: Backend,
        sel: &Selected<'s>,
        policy: &IngressPolicy,
    ) -> Backend {
        let b = &policy.backend;
        let Backend::Cluster(base) = backend else {
            return backend;
        };
        let variant = Variant {
            service_upstream: b.service_upstream,
            subset: b
                .subset
                .as_ref()
                .map(|s| (s.name.clone(), s.labels.clone())),
            warmup: b.warmup,
        };
        if variant == Variant::default() {
            return backend;
        }
        let key = (base, variant);
        if let Some(id) = self.variant_clusters.get(&key) {
            return Backend::Cluster(*id);
        }
        let mut cluster = self.clusters[base.0 as usize].clone();
        if matches!(cluster.target, ClusterTarget::Endpoints(_)) {
            if b.service_upstream {
                self.point_at_cluster_ip(&mut cluster, sel);
            } else if let Some(subset) = &b.subset {
                self.narrow_to_subset(&mut cluster, subset, sel);
            }
        }
        cluster.warmup = b.warmup;
        let other_balance = b.affinity.is_some()
            || b.hash_by.is_some()
            || matches!(b.load_balance, LoadBalance::Random | LoadBalance::Ewma);
        if b.warmup.is_some() && other_balance {
            let key = annotation_key(sel, "warmup");
            self.diag(
                Diagnostic::info(
                    "warmup-ignored",
                    "warmup applies to round_robin and least_conn only; this Ingress balances otherwise, so new endpoints get their full share at once",
                ),
                sel,
                Some(&key),
            );
        }
        let id = ClusterId(self.clusters.len() as u32);
        cluster.id = id;
        self.clusters.push(cluster);
        self.variant_clusters.insert(key, id);
        Backend::Cluster(id)
    }

    /// `service-upstream`: the cluster IP and the Service port, when the Service has a
    /// cluster IP; its endpoints otherwise.
    fn point_at_cluster_ip(&mut self, cluster: &mut Cluster, sel: &Selected<'s>) {
        let svc = &cluster.service;
        let ip = self
            .services
            .get(&(&*svc.namespace, &*svc.name))
            .and_then(|s| s.spec.as_ref()?.cluster_ip.as_deref())
            .and_then(|ip| ip.parse::<std::net::IpAddr>().ok());
        match ip {
            Some(ip) => {
                let addr = std::net::SocketAddr::new(ip, cluster.port);
                cluster.target = ClusterTarget::Endpoints(Arc::from([addr]));
                cluster.selection = Some("service-upstream".into());
            }
            None => {
                let key = annotation_key(sel, "service-upstream");
                self.diag(
                    Diagnostic::warning(
                        "headless-service",
                        format!(
                            "{svc} has no cluster IP (headless), so service-upstream cannot apply; requests go to its endpoints"
                        ),
                    )
                    .value("true"),
                    sel,
                    Some(&key),
                );
            }
        }
    }

    /// `service-subset`: the endpoints whose Pod is in the subset, or all of them when
    /// none is.
    fn narrow_to_subset(
        &mut self,
        cluster: &mut Cluster,
        subset: &ServiceSubset,
        sel: &Selected<'s>,
    ) {
        let svc = cluster.service.clone();
        let ns: &str = &svc.namespace;
        let port = self
            .services
            .get(&(ns, &*svc.name))
            .and_then(|s| s.spec.as_ref()?.ports.as_deref())
            .and_then(|ports| ports.iter().find(|p| p.port == i32::from(cluster.port)));
        let target_port = port.and_then(|p| p.target_port.as_ref());
        let pods = &self.pods;
        let keep = |ip: &str, target: Option<&ObjectReference>| {
            in_subset(subset, pods.labels(ns, ip, target))
        };
        let addrs = self.endpoints_where(
            ns,
            &svc.name,
            cluster.port_name.as_deref(),
            target_port,
            cluster.port,
            &keep,
        );
        let what = describe(subset);
        if addrs.is_empty() {
            let all = matches!(&cluster.target, ClusterTarget::Endpoints(a) if !a.is_empty());
            if all {
                let key = annotation_key(sel, "service-subset");
                self.diag(
                    Diagnostic::warning(
                        "empty-subset",
                        format!(
                            "no ready endpoint of {svc} port {} is a pod of the {what}; every endpoint serves it",
                            cluster.port
                        ),
                    )
                    .value(subset.name.clone().unwrap_or_default()),
                    sel,
                    Some(&key),
                );
            }
            cluster.selection = Some(format!("{what} (no pod matches: every endpoint)").into());
            return;
        }
        cluster.target = ClusterTarget::Endpoints(addrs.into());
        cluster.selection = Some(what.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn subsets_follow_the_opensergo_labels() {
        let gray = ServiceSubset {
            name: Some("gray".into()),
            labels: BTreeMap::new(),
        };
        let base = ServiceSubset::default();
        let in_gray = labels(&[("opensergo.io/canary-gray", "gray"), ("app", "web")]);
        let other = labels(&[("opensergo.io/canary-blue", "blue")]);
        let marked_base = labels(&[("opensergo.io/canary", "")]);
        let plain = labels(&[("app", "web")]);
        assert!(in_subset(&gray, Some(&in_gray)));
        assert!(!in_subset(&gray, Some(&other)));
        assert!(!in_subset(&gray, Some(&plain)));
        assert!(!in_subset(&gray, None));
        assert!(in_subset(&base, Some(&plain)));
        assert!(in_subset(&base, Some(&marked_base)));
        assert!(in_subset(&base, None));
        assert!(!in_subset(&base, Some(&in_gray)));
        assert!(!in_subset(&base, Some(&other)));
    }

    #[test]
    fn subset_labels_replace_the_convention() {
        let s = ServiceSubset {
            name: Some("gray".into()),
            labels: labels(&[("version", "v2"), ("zone", "a")]),
        };
        assert!(in_subset(
            &s,
            Some(&labels(&[("version", "v2"), ("zone", "a"), ("x", "y")]))
        ));
        assert!(!in_subset(&s, Some(&labels(&[("version", "v2")]))));
        assert!(!in_subset(
            &s,
            Some(&labels(&[("opensergo.io/canary-gray", "gray")]))
        ));
    }
}
