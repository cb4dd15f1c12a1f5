//! The `status` the operator writes: phase, replicas, address and conditions (pure).
//!
//! Phases follow MSE: `Pending` until a replica is ready, `Running` while the load
//! balancer has no address, `Listening` with both, `Failed` when the spec cannot be
//! applied. Conditions say the same in Kubernetes' usual shape, one per concern:
//! - `Reconciled`: the gateway's objects were applied as the spec asks (reasons
//!   `Applied`, `InvalidSpec`, `ApplyFailed`);
//! - `Available`: at least one replica is ready (`ReplicasReady`, `NoReplicaReady`,
//!   `ScaledToZero`);
//! - `LoadBalancerReady`: the Service has an address (`AddressAssigned`,
//!   `AddressPending`);
//! - `SettingsIgnored`: spec fields that have no effect here, listed (`NoEffect`), or
//!   none (`AllApplied`).

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use mse_model::{MseIngressConfigStatus, Phase, StatusCondition};

use super::plan::Plan;

/// What the operator saw of the gateway after applying it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    /// Ready replicas the Deployment reports.
    pub ready_replicas: i32,
    /// The Service's first load-balancer address (IP, else host name).
    pub address: Option<String>,
}

// === impl Observed ===

impl Observed {
    /// Reads ready replicas and the load-balancer address from the applied objects.
    pub fn from_objects(deployment: &Deployment, service: &Service) -> Observed {
        let ready_replicas = deployment
            .status
            .as_ref()
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0);
        let address = service
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref())
            .into_iter()
            .flatten()
            .find_map(|i| i.ip.clone().or_else(|| i.hostname.clone()))
            .filter(|a| !a.is_empty());
        Observed {
            ready_replicas,
            address,
        }
    }
}

/// The status of a gateway whose objects were applied.
pub fn applied(
    plan: &Plan,
    observed: &Observed,
    generation: Option<i64>,
) -> MseIngressConfigStatus {
    let ready = observed.ready_replicas;
    let phase = match (ready > 0, &observed.address) {
        (true, Some(_)) => Phase::Listening,
        (true, None) => Phase::Running,
        (false, _) => Phase::Pending,
    };
    let available = if ready > 0 {
        condition(
            "Available",
            true,
            "ReplicasReady",
            format!("{ready}/{} replicas ready", plan.replicas),
        )
    } else if plan.replicas == 0 {
        condition(
            "Available",
            false,
            "ScaledToZero",
            "spec.common.instance.replicas is 0".to_owned(),
        )
    } else {
        condition(
            "Available",
            false,
            "NoReplicaReady",
            format!("0/{} replicas ready", plan.replicas),
        )
    };
    let service = plan.service_ref();
    let lb = match &observed.address {
        Some(a) => condition(
            "LoadBalancerReady",
            true,
            "AddressAssigned",
            format!("Service {service} has address {a}"),
        ),
        None => condition(
            "LoadBalancerReady",
            false,
            "AddressPending",
            format!("Service {service} has no load-balancer address yet"),
        ),
    };
    let objects = format!("gateway objects applied in namespace {}", plan.namespace);
    MseIngressConfigStatus {
        phase: Some(phase),
        message: None,
        observed_generation: generation,
        replicas: Some(plan.replicas),
        ready_replicas: Some(ready),
        address: observed.address.clone(),
        conditions: with_generation(
            vec![
                condition("Reconciled", true, "Applied", objects),
                available,
                lb,
                settings_ignored(plan),
            ],
            generation,
        ),
    }
}

/// The status of a gateway that could not be built or applied: `Failed` with `message`.
/// `reason` is `InvalidSpec` or `ApplyFailed`. What was last seen of the replicas and the
/// address stays, since the objects from an earlier spec may still be running.
pub fn failed(
    previous: Option<&MseIngressConfigStatus>,
    reason: &str,
    message: String,
    generation: Option<i64>,
) -> MseIngressConfigStatus {
    let mut conditions: Vec<StatusCondition> = previous
        .map(|p| {
            p.conditions
                .iter()
                .filter(|c| c.type_ != "Reconciled")
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    conditions.insert(0, condition("Reconciled", false, reason, message.clone()));
    MseIngressConfigStatus {
        phase: Some(Phase::Failed),
        message: Some(message),
        observed_generation: generation,
        conditions: with_generation(conditions, generation),
        ..previous.cloned().unwrap_or_default()
    }
}

fn settings_ignored(plan: &Plan) -> StatusCondition {
    if plan.ignored.is_empty() {
        return condition(
            "SettingsIgnored",
            false,
            "AllApplied",
            "every setting in the spec applies".to_owned(),
        );
    }
    let list: Vec<String> = plan
        .ignored
        .iter()
        .map(|i| format!("{}: {}", i.field, i.reason))
        .collect();
    condition("SettingsIgnored", true, "NoEffect", list.join("; "))
}

fn condition(type_: &str, status: bool, reason: &str, message: String) -> StatusCondition {
    StatusCondition {
        type_: type_.to_owned(),
        status: if status { "True" } else { "False" }.to_owned(),
        reason: reason.to_owned(),
        message,
        last_transition_time: None,
        observed_generation: None,
    }
}

fn with_generation(
    mut conditions: Vec<StatusCondition>,
    generation: Option<i64>,
) -> Vec<StatusCondition> {
    for c in &mut conditions {
        c.observed_generation = generation;
    }
    conditions
}

/// Stamps transition times: a condition whose status is what `previous` had keeps its
/// time; a new or changed one gets `now`. Keeping times stable makes an unchanged status
/// compare equal, so it is not written again.
pub fn stamp(
    next: &mut MseIngressConfigStatus,
    previous: Option<&MseIngressConfigStatus>,
    now: &Time,
) {
    for c in &mut next.conditions {
        let before = previous
            .into_iter()
            .flat_map(|p| &p.conditions)
            .find(|p| p.type_ == c.type_ && p.status == c.status);
        c.last_transition_time = Some(
            before
                .and_then(|p| p.last_transition_time.clone())
                .unwrap_or_else(|| now.clone()),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::OperatorOptions;
    use k8s_openapi::api::apps::v1::DeploymentStatus;
    use k8s_openapi::api::core::v1::{LoadBalancerIngress, LoadBalancerStatus, ServiceStatus};
    use mse_model::MseIngressConfig;

    fn plan(spec: serde_json::Value) -> Plan {
        let mut c = MseIngressConfig {
            spec: serde_json::from_value(spec).unwrap(),
            ..Default::default()
        };
        c.metadata.name = Some("gw".to_owned());
        Plan::new(&c, &OperatorOptions::default()).unwrap()
    }

    fn find<'a>(s: &'a MseIngressConfigStatus, type_: &str) -> &'a StatusCondition {
        s.conditions.iter().find(|c| c.type_ == type_).unwrap()
    }

    #[test]
    fn phase_walks_pending_running_listening() {
        let p = plan(serde_json::json!({}));
        let pending = applied(&p, &Observed::default(), Some(2));
        assert_eq!(pending.phase, Some(Phase::Pending));
        assert_eq!(pending.observed_generation, Some(2));
        assert_eq!(find(&pending, "Available").reason, "NoReplicaReady");
        assert_eq!(find(&pending, "Reconciled").status, "True");
        assert!(
            pending
                .conditions
                .iter()
                .all(|c| c.observed_generation == Some(2))
        );

        let running = applied(
            &p,
            &Observed {
                ready_replicas: 2,
                address: None,
            },
            Some(2),
        );
        assert_eq!(running.phase, Some(Phase::Running));
        assert_eq!(find(&running, "Available").message, "2/3 replicas ready");
        assert_eq!(find(&running, "LoadBalancerReady").status, "False");

        let observed = Observed {
            ready_replicas: 3,
            address: Some("203.0.113.7".to_owned()),
        };
        let listening = applied(&p, &observed, Some(2));
        assert_eq!(listening.phase, Some(Phase::Listening));
        assert_eq!(listening.address.as_deref(), Some("203.0.113.7"));
        assert_eq!(listening.ready_replicas, Some(3));
        assert_eq!(listening.replicas, Some(3));
        assert_eq!(
            find(&listening, "LoadBalancerReady").reason,
            "AddressAssigned"
        );
    }

    #[test]
    fn an_address_without_ready_replicas_is_still_pending() {
        let p = plan(serde_json::json!({ "common": { "instance": { "replicas": 0 } } }));
        let observed = Observed {
            ready_replicas: 0,
            address: Some("lb.example".to_owned()),
        };
        let s = applied(&p, &observed, None);
        assert_eq!(s.phase, Some(Phase::Pending));
        assert_eq!(find(&s, "Available").reason, "ScaledToZero");
    }

    #[test]
    fn observed_reads_ip_or_host_name() {
        let deployment = Deployment {
            status: Some(DeploymentStatus {
                ready_replicas: Some(1),
                ..Default::default()
            }),
            ..Default::default()
        };
        let service = |ingress: LoadBalancerIngress| Service {
            status: Some(ServiceStatus {
                load_balancer: Some(LoadBalancerStatus {
                    ingress: Some(vec![ingress]),
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let by_name = service(LoadBalancerIngress {
            hostname: Some("lb.example".into()),
            ..Default::default()
        });
        assert_eq!(
            Observed::from_objects(&deployment, &by_name),
            Observed {
                ready_replicas: 1,
                address: Some("lb.example".to_owned())
            }
        );
        let by_ip = service(LoadBalancerIngress {
            ip: Some("192.0.2.1".into()),
            ..Default::default()
        });
        assert_eq!(
            Observed::from_objects(&Deployment::default(), &by_ip)
                .address
                .as_deref(),
            Some("192.0.2.1")
        );
        assert_eq!(
            Observed::from_objects(&Deployment::default(), &Service::default()),
            Observed::default()
        );
    }

    #[test]
    fn failed_keeps_what_was_seen_and_says_why() {
        let p = plan(serde_json::json!({}));
        let before = applied(
            &p,
            &Observed {
                ready_replicas: 3,
                address: Some("a".into()),
            },
            Some(1),
        );
        let s = failed(
            Some(&before),
            "InvalidSpec",
            "spec.x: bad".to_owned(),
            Some(2),
        );
        assert_eq!(s.phase, Some(Phase::Failed));
        assert_eq!(s.message.as_deref(), Some("spec.x: bad"));
        assert_eq!(s.observed_generation, Some(2));
        assert_eq!(s.ready_replicas, Some(3));
        let reconciled = find(&s, "Reconciled");
        assert_eq!(
            (reconciled.status.as_str(), reconciled.reason.as_str()),
            ("False", "InvalidSpec")
        );
        assert_eq!(
            s.conditions
                .iter()
                .filter(|c| c.type_ == "Reconciled")
                .count(),
            1
        );
        assert!(
            s.conditions
                .iter()
                .all(|c| c.observed_generation == Some(2))
        );
        let fresh = failed(None, "ApplyFailed", "boom".to_owned(), None);
        assert_eq!(fresh.conditions.len(), 1);
    }

    #[test]
    fn ignored_settings_are_one_condition() {
        let p = plan(serde_json::json!({ "common": { "pay": { "payType": "POSTPAY" } } }));
        let s = applied(&p, &Observed::default(), None);
        let c = find(&s, "SettingsIgnored");
        assert_eq!((c.status.as_str(), c.reason.as_str()), ("True", "NoEffect"));
        assert!(c.message.starts_with("spec.common.pay: "), "{}", c.message);
    }

    #[test]
    fn stamp_keeps_times_of_unchanged_conditions() {
        let p = plan(serde_json::json!({}));
        let t0 = Time(k8s_openapi::jiff::Timestamp::from_second(1_000).unwrap());
        let t1 = Time(k8s_openapi::jiff::Timestamp::from_second(2_000).unwrap());
        let mut first = applied(&p, &Observed::default(), Some(1));
        stamp(&mut first, None, &t0);
        assert!(
            first
                .conditions
                .iter()
                .all(|c| c.last_transition_time == Some(t0.clone()))
        );

        let mut same = applied(&p, &Observed::default(), Some(1));
        stamp(&mut same, Some(&first), &t1);
        assert_eq!(same, first);

        let mut running = applied(
            &p,
            &Observed {
                ready_replicas: 1,
                address: None,
            },
            Some(1),
        );
        stamp(&mut running, Some(&first), &t1);
        assert_eq!(find(&running, "Available").last_transition_time, Some(t1));
        assert_eq!(find(&running, "Reconciled").last_transition_time, Some(t0));
    }
}
