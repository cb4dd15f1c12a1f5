//! What one `MseIngressConfig` asks for, checked and with its defaults filled in.
//!
//! [`Plan::new`] is the only place that reads the spec: the object builders take a
//! [`Plan`], so a value is validated once and every object agrees on it.

use mse_model::{MseIngressConfig, MseIngressConfigSpec};

use super::OperatorOptions;
use super::error::InvalidSpec;

/// Replicas when `spec.common.instance.replicas` is unset.
pub const DEFAULT_REPLICAS: i32 = 3;

/// The most replicas `spec.common.instance.replicas` may ask for (MSE's limit).
pub const MAX_REPLICAS: i32 = 30;

/// The gateway name when `spec.name` is unset.
pub const DEFAULT_GATEWAY_NAME: &str = "mse-ingress";

/// Ingress class values of `spec.ingress.local.ingressClass` that select Ingresses by a
/// rule rather than naming a class (`""`: every Ingress; `nginx`: nginx-class and
/// unclassed). The operator cannot give either to one gateway's IngressClass.
const CLASS_RULES: [&str; 2] = ["", "nginx"];

/// The instance sizes MSE offers: CPU cores and memory (GiB) of one replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size {
    /// The `spec.common.instance.spec` value, for example `4c8g`.
    pub name: &'static str,
    /// CPU cores, also the gateway's worker threads.
    pub cpus: u32,
    /// Memory in GiB.
    pub memory_gib: u32,
}

/// Every size, smallest first; the default is `4c8g`.
pub const SIZES: [Size; 4] = [
    Size {
        name: "2c4g",
        cpus: 2,
        memory_gib: 4,
    },
    Size {
        name: "4c8g",
        cpus: 4,
        memory_gib: 8,
    },
    Size {
        name: "8c16g",
        cpus: 8,
        memory_gib: 16,
    },
    Size {
        name: "16c32g",
        cpus: 16,
        memory_gib: 32,
    },
];

const DEFAULT_SIZE: Size = SIZES[1];

/// One gateway, as the operator will build it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The `MseIngressConfig`'s name: also the name of the gateway's namespaced objects.
    pub name: String,
    /// `spec.name`, the gateway's display name (a label value on its objects).
    pub gateway_name: String,
    /// The namespace of the Deployment, Service, ServiceAccount, Role and PDB.
    pub namespace: String,
    /// The gateway container's image.
    pub image: String,
    /// Desired replicas.
    pub replicas: i32,
    /// CPU and memory of each replica.
    pub size: Size,
    /// The IngressClass this gateway serves, and the operator creates.
    pub ingress_class: String,
    /// `--namespace` for the gateway, when it watches one namespace only.
    pub watch_namespace: Option<String>,
    /// Settings in the spec that have no effect here, each with why.
    pub ignored: Vec<Ignored>,
}

/// A setting the spec has but this operator does not apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ignored {
    /// Its path in the object, for example `spec.common.pay`.
    pub field: &'static str,
    /// Why it has no effect.
    pub reason: String,
}

// === impl Plan ===

impl Plan {
    /// Checks `config`'s spec and fills in defaults. An error names the field and value.
    pub fn new(config: &MseIngressConfig, options: &OperatorOptions) -> Result<Plan, InvalidSpec> {
        let name = config.metadata.name.clone().unwrap_or_default();
        // The Service takes this name, and a Service name is a DNS-1035 label.
        check_dns_label(&name)
            .map_err(|reason| InvalidSpec::new("metadata.name", &name, reason))?;
        let spec = &config.spec;
        let instance = spec.common.as_ref().and_then(|c| c.instance.as_ref());
        let replicas = instance
            .and_then(|i| i.replicas)
            .unwrap_or(DEFAULT_REPLICAS);
        if !(0..=MAX_REPLICAS).contains(&replicas) {
            return Err(InvalidSpec::new(
                "spec.common.instance.replicas",
                &replicas.to_string(),
                format!("expected 0 to {MAX_REPLICAS}"),
            ));
        }
        let size = match instance.and_then(|i| i.spec.as_deref()) {
            None => DEFAULT_SIZE,
            Some(value) => parse_size(value)?,
        };
        let local = spec.ingress.as_ref().and_then(|i| i.local.as_ref());
        let class_value = local.and_then(|l| l.ingress_class.as_deref());
        let mut ignored = ignored_settings(spec);
        let ingress_class = match class_value {
            Some(class) if !CLASS_RULES.contains(&class) => {
                check_dns_subdomain(class).map_err(|reason| {
                    InvalidSpec::new("spec.ingress.local.ingressClass", class, reason)
                })?;
                class.to_owned()
            }
            rule => {
                if let Some(rule) = rule {
                    ignored.push(Ignored {
                        field: "spec.ingress.local.ingressClass",
                        reason: format!(
                            "{rule:?} selects Ingresses by a rule the operator cannot give one \
                             IngressClass; the gateway serves IngressClass {name:?}"
                        ),
                    });
                }
                name.clone()
            }
        };
        let watch_namespace = local
            .and_then(|l| l.watch_namespace.as_deref())
            .filter(|ns| !ns.is_empty())
            .map(str::to_owned);
        Ok(Plan {
            gateway_name: spec
                .name
                .clone()
                .unwrap_or_else(|| DEFAULT_GATEWAY_NAME.to_owned()),
            name,
            namespace: options.gateway_namespace.clone(),
            image: options.gateway_image.clone(),
            replicas,
            size,
            ingress_class,
            watch_namespace,
            ignored,
        })
    }

    /// `NAMESPACE/NAME` of the gateway's Service, for `--publish-service`.
    pub fn service_ref(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The name of the gateway's ClusterRole and ClusterRoleBinding.
    pub fn cluster_role_name(&self) -> String {
        format!("mse-ingress-gateway-{}", self.name)
    }

    /// Whether the gateway gets a PodDisruptionBudget (only with more than one replica: a
    /// budget for one replica would block node drains).
    pub fn wants_pdb(&self) -> bool {
        self.replicas > 1
    }
}

fn parse_size(value: &str) -> Result<Size, InvalidSpec> {
    SIZES
        .iter()
        .copied()
        .find(|s| s.name == value)
        .ok_or_else(|| {
            let names: Vec<&str> = SIZES.iter().map(|s| s.name).collect();
            InvalidSpec::new(
                "spec.common.instance.spec",
                value,
                format!("expected one of {}", names.join(", ")),
            )
        })
}

/// The cloud-only settings present in `spec`. They configure Alibaba Cloud resources
/// (billing, vSwitches, SLB, security groups, an existing MSE gateway, SLS), which a
/// gateway running in the cluster does not have.
fn ignored_settings(spec: &MseIngressConfigSpec) -> Vec<Ignored> {
    const CLOUD: &str = "configures Alibaba Cloud resources; no effect outside MSE";
    let common = spec.common.as_ref();
    let present = [
        ("spec.id", spec.id.is_some()),
        ("spec.override", spec.r#override.is_some()),
        ("spec.common.pay", common.is_some_and(|c| c.pay.is_some())),
        (
            "spec.common.network",
            common.is_some_and(|c| c.network.is_some()),
        ),
        (
            "spec.common.securityGroupType",
            common.is_some_and(|c| c.security_group_type.is_some()),
        ),
        (
            "spec.global.tls",
            spec.global.as_ref().is_some_and(|g| g.tls.is_some()),
        ),
        (
            "spec.monitor.logging",
            spec.monitor.as_ref().is_some_and(|m| m.logging.is_some()),
        ),
    ];
    present
        .into_iter()
        .filter(|(_, present)| *present)
        .map(|(field, _)| Ignored {
            field,
            reason: CLOUD.to_owned(),
        })
        .collect()
}

/// A DNS-1035 label: at most 63 lower-case letters, digits and `-`, starting with a letter
/// and ending with a letter or digit.
fn check_dns_label(name: &str) -> Result<(), String> {
    let starts = name.starts_with(|c: char| c.is_ascii_lowercase());
    let ends = name.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit());
    let chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if name.len() <= 63 && starts && ends && chars {
        Ok(())
    } else {
        Err(
            "the gateway's Service is named after it, so it must be a DNS-1035 label \
             (at most 63 characters: a-z, 0-9 and '-', starting with a letter)"
                .to_owned(),
        )
    }
}

/// A DNS-1123 subdomain: dot-separated DNS-1123 labels, at most 253 characters.
fn check_dns_subdomain(name: &str) -> Result<(), String> {
    let label_ok = |l: &str| {
        let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
        !l.is_empty()
            && l.len() <= 63
            && l.starts_with(alnum)
            && l.ends_with(alnum)
            && l.chars().all(|c| alnum(c) || c == '-')
    };
    if name.len() <= 253 && name.split('.').all(label_ok) {
        Ok(())
    } else {
        Err("an IngressClass name must be a DNS-1123 subdomain (a-z, 0-9, '-' and '.')".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mse_model::{CommonSpec, IngressLocalSpec, InstanceSpec, MseIngressSpec};

    fn config(name: &str, spec: MseIngressConfigSpec) -> MseIngressConfig {
        let mut c = MseIngressConfig {
            spec,
            ..Default::default()
        };
        c.metadata.name = Some(name.to_owned());
        c
    }

    fn instance(replicas: Option<i32>, size: Option<&str>) -> MseIngressConfigSpec {
        MseIngressConfigSpec {
            common: Some(CommonSpec {
                instance: Some(InstanceSpec {
                    replicas,
                    spec: size.map(str::to_owned),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn class(value: Option<&str>) -> MseIngressConfigSpec {
        MseIngressConfigSpec {
            ingress: Some(MseIngressSpec {
                local: Some(IngressLocalSpec {
                    ingress_class: value.map(str::to_owned),
                    watch_namespace: Some("shop".to_owned()),
                }),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn empty_spec_gets_the_documented_defaults() {
        let plan = Plan::new(
            &config("gw", Default::default()),
            &OperatorOptions::default(),
        )
        .unwrap();
        assert_eq!(plan.replicas, 3);
        assert_eq!(plan.size.name, "4c8g");
        assert_eq!(plan.gateway_name, "mse-ingress");
        assert_eq!(plan.namespace, "mse-ingress");
        assert_eq!(plan.ingress_class, "gw");
        assert_eq!(plan.watch_namespace, None);
        assert!(plan.ignored.is_empty());
        assert_eq!(plan.service_ref(), "mse-ingress/gw");
    }

    #[test]
    fn replicas_outside_zero_to_thirty_name_the_field_and_value() {
        for bad in [-1, 31] {
            let e = Plan::new(
                &config("gw", instance(Some(bad), None)),
                &Default::default(),
            )
            .unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("spec.common.instance.replicas: expected 0 to 30, got \"{bad}\"")
            );
        }
        for ok in [0, 30] {
            let plan = Plan::new(&config("gw", instance(Some(ok), None)), &Default::default());
            assert_eq!(plan.unwrap().replicas, ok);
        }
    }

    #[test]
    fn unknown_instance_size_lists_the_sizes() {
        let e = Plan::new(
            &config("gw", instance(None, Some("3c6g"))),
            &Default::default(),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "spec.common.instance.spec: expected one of 2c4g, 4c8g, 8c16g, 16c32g, got \"3c6g\""
        );
        let plan = Plan::new(
            &config("gw", instance(None, Some("16c32g"))),
            &Default::default(),
        );
        assert_eq!(
            plan.unwrap().size,
            Size {
                name: "16c32g",
                cpus: 16,
                memory_gib: 32
            }
        );
    }

    #[test]
    fn a_named_class_is_served_and_rules_fall_back_to_the_config_name() {
        let plan = Plan::new(&config("gw", class(Some("mse"))), &Default::default()).unwrap();
        assert_eq!(plan.ingress_class, "mse");
        assert_eq!(plan.watch_namespace.as_deref(), Some("shop"));
        assert!(plan.ignored.is_empty());
        for rule in ["", "nginx"] {
            let plan = Plan::new(&config("gw", class(Some(rule))), &Default::default()).unwrap();
            assert_eq!(plan.ingress_class, "gw");
            assert_eq!(plan.ignored[0].field, "spec.ingress.local.ingressClass");
        }
        let e = Plan::new(&config("gw", class(Some("Bad_Class"))), &Default::default());
        assert!(
            e.unwrap_err()
                .to_string()
                .starts_with("spec.ingress.local.ingressClass:")
        );
    }

    #[test]
    fn names_that_cannot_name_a_service_are_refused() {
        for bad in ["", "Gw", "1gw", "gw.example", &"g".repeat(64)] {
            let e = Plan::new(&config(bad, Default::default()), &Default::default());
            assert!(
                e.unwrap_err().to_string().starts_with("metadata.name:"),
                "{bad}"
            );
        }
    }

    #[test]
    fn cloud_only_settings_are_listed_not_refused() {
        let spec: MseIngressConfigSpec = serde_json::from_value(serde_json::json!({
            "id": "gw-123",
            "common": {
                "pay": { "payType": "POSTPAY" },
                "network": { "vSwitches": ["vsw-1"], "publicSLBSpec": "slb.s2.small" },
                "securityGroupType": "enterprise",
            },
            "monitor": { "logging": { "sls": { "reuseProject": "" } } },
        }))
        .unwrap();
        let plan = Plan::new(&config("gw", spec), &Default::default()).unwrap();
        let fields: Vec<&str> = plan.ignored.iter().map(|i| i.field).collect();
        assert_eq!(
            fields,
            [
                "spec.id",
                "spec.common.pay",
                "spec.common.network",
                "spec.common.securityGroupType",
                "spec.monitor.logging"
            ]
        );
    }
}
