//! The gateway's own address, as Ingress status publishes it: fixed
//! (`--publish-status-address`) or read from a Service (`--publish-service`), watched.

use std::net::IpAddr;
use std::sync::Arc;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::IngressLoadBalancerIngress;
use kube::Client;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::ControllerError;

/// The addresses Ingress status carries, in a stable order (IPs and host names as given or
/// as the Service has them, without duplicates).
pub type Addresses = Arc<[IngressLoadBalancerIngress]>;

/// Where the gateway's address comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublishAddress {
    /// Fixed IPs or host names (`--publish-status-address ADDR[,ADDR]`).
    Fixed(Vec<String>),
    /// The address of a Service (`--publish-service NS/NAME`): its load balancer's, or
    /// without one its external IPs or cluster IP, as ingress-nginx publishes it.
    Service {
        /// The Service's namespace.
        namespace: String,
        /// The Service's name.
        name: String,
    },
}

// === impl PublishAddress ===

impl PublishAddress {
    /// Parses `--publish-status-address`: comma-separated IPs or DNS names.
    pub fn parse_fixed(value: &str) -> Result<Self, ControllerError> {
        let invalid = |reason: String| ControllerError::InvalidSetting {
            setting: "--publish-status-address",
            value: value.to_owned(),
            reason,
        };
        let mut out = Vec::new();
        for part in value.split(',').map(str::trim) {
            if part.is_empty() {
                return Err(invalid("an address is empty".to_owned()));
            }
            if part.parse::<IpAddr>().is_err() && !is_dns_name(part) {
                return Err(invalid(format!(
                    "{part:?} is neither an IP address nor a DNS name"
                )));
            }
            if !out.iter().any(|a| a == part) {
                out.push(part.to_owned());
            }
        }
        Ok(Self::Fixed(out))
    }

    /// Parses `--publish-service`: `namespace/name`.
    pub fn parse_service(value: &str) -> Result<Self, ControllerError> {
        match value.split_once('/') {
            Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
                Ok(Self::Service {
                    namespace: ns.to_owned(),
                    name: name.to_owned(),
                })
            }
            _ => Err(ControllerError::InvalidSetting {
                setting: "--publish-service",
                value: value.to_owned(),
                reason: "expected namespace/name".to_owned(),
            }),
        }
    }

    /// Starts following the addresses. A fixed list is known at once; a Service's
    /// addresses are `None` until it has been read, and again while it does not exist (so
    /// that a missing Service leaves Ingress status alone rather than clearing it).
    pub fn watch(self, client: Client) -> AddressWatch {
        match self {
            PublishAddress::Fixed(list) => {
                let addresses = list.iter().map(|a| to_status(a)).collect();
                let (tx, rx) = watch::channel(Some(addresses));
                AddressWatch {
                    rx,
                    _fixed: Some(tx),
                    task: None,
                }
            }
            PublishAddress::Service { namespace, name } => {
                let (tx, rx) = watch::channel(None);
                let task = tokio::spawn(follow_service(client, namespace, name, tx));
                AddressWatch {
                    rx,
                    _fixed: None,
                    task: Some(task),
                }
            }
        }
    }
}

/// The gateway's addresses as they change. Dropping it stops following the Service.
#[derive(Debug)]
pub struct AddressWatch {
    rx: watch::Receiver<Option<Addresses>>,
    /// Keeps a fixed list's channel open.
    _fixed: Option<watch::Sender<Option<Addresses>>>,
    task: Option<JoinHandle<()>>,
}

// === impl AddressWatch ===

impl AddressWatch {
    /// The addresses, `None` while unknown.
    pub fn subscribe(&self) -> watch::Receiver<Option<Addresses>> {
        self.rx.clone()
    }
}

impl Drop for AddressWatch {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// What a Service publishes as the address of the Ingresses it fronts, following
/// ingress-nginx: a LoadBalancer's ingress points (IP, else host name) and its external
/// IPs; a NodePort's external IPs, else its cluster IP; a ClusterIP Service's cluster IP
/// (none when headless) and external IPs; an ExternalName's name. Sorted, without
/// duplicates.
pub fn service_addresses(service: &Service) -> Addresses {
    let spec = service.spec.clone().unwrap_or_default();
    let external: Vec<String> = spec.external_ips.unwrap_or_default();
    let cluster_ip = spec.cluster_ip.filter(|ip| !ip.is_empty() && ip != "None");
    let mut out: Vec<String> = match spec.type_.as_deref() {
        Some("ExternalName") => spec.external_name.into_iter().collect(),
        Some("LoadBalancer") => {
            let lb = service
                .status
                .as_ref()
                .and_then(|s| s.load_balancer.as_ref())
                .and_then(|lb| lb.ingress.as_ref());
            let points = lb.into_iter().flatten().filter_map(|p| {
                p.ip.clone()
                    .filter(|ip| !ip.is_empty())
                    .or_else(|| p.hostname.clone().filter(|h| !h.is_empty()))
            });
            points.chain(external).collect()
        }
        Some("NodePort") if !external.is_empty() => external,
        Some("NodePort") => cluster_ip.into_iter().collect(),
        _ => cluster_ip.into_iter().chain(external).collect(),
    };
    out.sort();
    out.dedup();
    out.iter().map(|a| to_status(a)).collect()
}

/// One status entry: an IP goes in `ip`, anything else in `hostname`.
fn to_status(address: &str) -> IngressLoadBalancerIngress {
    if address.parse::<IpAddr>().is_ok() {
        IngressLoadBalancerIngress {
            ip: Some(address.to_owned()),
            ..IngressLoadBalancerIngress::default()
        }
    } else {
        IngressLoadBalancerIngress {
            hostname: Some(address.to_owned()),
            ..IngressLoadBalancerIngress::default()
        }
    }
}

fn is_dns_name(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// Watches one Service (retrying with backoff through API server outages) and publishes
/// its addresses whenever they change.
async fn follow_service(
    client: Client,
    namespace: String,
    name: String,
    tx: watch::Sender<Option<Addresses>>,
) {
    let api: Api<Service> = Api::namespaced(client, &namespace);
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let events = watcher::watcher(api, config).default_backoff();
    let mut events = std::pin::pin!(events);
    // The Service as the last complete listing and the events since say.
    let mut current: Option<Service> = None;
    let mut relisting: Option<Option<Service>> = None;
    let is_it = |s: &Service| s.metadata.name.as_deref() == Some(name.as_str());
    while let Some(event) = events.next().await {
        match event {
            Ok(Event::Init) => relisting = Some(None),
            Ok(Event::InitApply(s)) if is_it(&s) => relisting = Some(Some(s)),
            Ok(Event::InitDone) => current = relisting.take().flatten(),
            Ok(Event::Apply(s)) if is_it(&s) => current = Some(s),
            Ok(Event::Delete(s)) if is_it(&s) => current = None,
            Ok(_) => continue,
            Err(e) => {
                tracing::warn!(
                    service = %format_args!("{namespace}/{name}"),
                    error = %super::chain(&e),
                    "watching the publish Service failed; retrying"
                );
                continue;
            }
        }
        if relisting.is_some() {
            continue;
        }
        let next = current.as_ref().map(service_addresses);
        if next.is_none() {
            tracing::warn!(
                service = %format_args!("{namespace}/{name}"),
                "the publish Service does not exist; Ingress status is left as it is"
            );
        }
        tx.send_if_modified(|was| {
            let changed = *was != next;
            if changed {
                *was = next;
            }
            changed
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(json: serde_json::Value) -> Service {
        serde_json::from_value(json).unwrap()
    }

    fn texts(a: &Addresses) -> Vec<String> {
        a.iter()
            .map(|p| p.ip.clone().or_else(|| p.hostname.clone()).unwrap())
            .collect()
    }

    #[test]
    fn a_load_balancer_publishes_its_points_and_external_ips() {
        let s = service(serde_json::json!({
            "metadata": { "name": "gw", "namespace": "ingress" },
            "spec": { "type": "LoadBalancer", "clusterIP": "10.0.0.5", "externalIPs": ["192.0.2.9"] },
            "status": { "loadBalancer": { "ingress": [ { "hostname": "lb.example.com" }, { "ip": "203.0.113.7" } ] } }
        }));
        let a = service_addresses(&s);
        assert_eq!(texts(&a), ["192.0.2.9", "203.0.113.7", "lb.example.com"]);
        assert_eq!(a[2].hostname.as_deref(), Some("lb.example.com"));
        assert_eq!(a[2].ip, None);
    }

    #[test]
    fn without_a_load_balancer_the_cluster_or_external_ips_are_published() {
        let cluster = service(
            serde_json::json!({ "spec": { "type": "ClusterIP", "clusterIP": "10.0.0.5" } }),
        );
        assert_eq!(texts(&service_addresses(&cluster)), ["10.0.0.5"]);
        let headless = service(serde_json::json!({ "spec": { "clusterIP": "None" } }));
        assert!(service_addresses(&headless).is_empty());
        let node_port = service(serde_json::json!({
            "spec": { "type": "NodePort", "clusterIP": "10.0.0.5", "externalIPs": ["192.0.2.1"] }
        }));
        assert_eq!(texts(&service_addresses(&node_port)), ["192.0.2.1"]);
        let pending = service(
            serde_json::json!({ "spec": { "type": "LoadBalancer", "clusterIP": "10.0.0.5" } }),
        );
        assert!(service_addresses(&pending).is_empty());
        let external = service(
            serde_json::json!({ "spec": { "type": "ExternalName", "externalName": "gw.example.net" } }),
        );
        assert_eq!(texts(&service_addresses(&external)), ["gw.example.net"]);
    }

    #[test]
    fn flags_parse_or_name_the_bad_value() {
        assert_eq!(
            PublishAddress::parse_fixed("203.0.113.7, lb.example.com,203.0.113.7").unwrap(),
            PublishAddress::Fixed(vec!["203.0.113.7".into(), "lb.example.com".into()])
        );
        let e = PublishAddress::parse_fixed("1.2.3.4,bad_name")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--publish-status-address") && e.contains("bad_name"),
            "{e}"
        );
        assert!(PublishAddress::parse_fixed("1.2.3.4,").is_err());
        assert_eq!(
            PublishAddress::parse_service("ingress/gw").unwrap(),
            PublishAddress::Service {
                namespace: "ingress".into(),
                name: "gw".into()
            }
        );
        for bad in ["gw", "/gw", "ns/", "a/b/c"] {
            let e = PublishAddress::parse_service(bad).unwrap_err().to_string();
            assert!(e.contains("--publish-service") && e.contains(bad), "{e}");
        }
    }
}
