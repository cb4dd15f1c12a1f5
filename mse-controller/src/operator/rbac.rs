//! The permissions the gateway is given and the ones the operator itself needs.
//!
//! Both lists are data, so tests can hold them against the ClusterRole shipped in
//! `deploy/`: a verb the code starts to use without the Role granting it fails a test
//! rather than a cluster.

use k8s_openapi::api::rbac::v1::PolicyRule;

/// One grant: verbs on resources of one API group (`""` is the core group).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Permission {
    /// The API group.
    pub group: &'static str,
    /// Resources, with `/subresource` where one is meant.
    pub resources: &'static [&'static str],
    /// Verbs.
    pub verbs: &'static [&'static str],
}

const READ: &[&str] = &["get", "list", "watch"];

/// What every gateway may do cluster-wide (its ClusterRole): read what it routes, write
/// Ingress status, and record Events. `get` on services also serves `--publish-service`.
pub const GATEWAY_CLUSTER_RULES: &[Permission] = &[
    Permission {
        group: "",
        resources: &["services", "secrets", "configmaps", "pods"],
        verbs: READ,
    },
    Permission {
        group: "discovery.k8s.io",
        resources: &["endpointslices"],
        verbs: READ,
    },
    Permission {
        group: "networking.k8s.io",
        resources: &["ingresses", "ingressclasses"],
        verbs: READ,
    },
    Permission {
        group: "networking.k8s.io",
        resources: &["ingresses/status"],
        verbs: &["update", "patch"],
    },
    Permission {
        group: mse_model::MSE_API_GROUP,
        resources: &["mseingressconfigs"],
        verbs: READ,
    },
    Permission {
        group: "events.k8s.io",
        resources: &["events"],
        verbs: &["create", "patch"],
    },
];

/// What a gateway may do in its own namespace (its Role): hold the leader Lease.
pub const GATEWAY_NAMESPACE_RULES: &[Permission] = &[Permission {
    group: "coordination.k8s.io",
    resources: &["leases"],
    verbs: &["get", "create", "update"],
}];

/// Every request the operator's own code makes, by resource. `create` comes with `patch`
/// because a server-side apply that creates an object is authorised as a create too.
pub const OPERATOR_CALLS: &[Permission] = &[
    Permission {
        group: mse_model::MSE_API_GROUP,
        resources: &["mseingressconfigs"],
        verbs: &["list", "watch"],
    },
    Permission {
        group: mse_model::MSE_API_GROUP,
        resources: &["mseingressconfigs/status"],
        verbs: &["patch"],
    },
    // Owner references with blockOwnerDeletion need this where the
    // OwnerReferencesPermissionEnforcement admission plugin is on.
    Permission {
        group: mse_model::MSE_API_GROUP,
        resources: &["mseingressconfigs/finalizers"],
        verbs: &["update"],
    },
    Permission {
        group: "apps",
        resources: &["deployments"],
        verbs: &["list", "watch", "create", "patch"],
    },
    Permission {
        group: "",
        resources: &["services"],
        verbs: &["list", "watch", "create", "patch"],
    },
    Permission {
        group: "",
        resources: &["serviceaccounts"],
        verbs: &["create", "patch"],
    },
    Permission {
        group: "policy",
        resources: &["poddisruptionbudgets"],
        verbs: &["create", "patch", "delete"],
    },
    Permission {
        group: "rbac.authorization.k8s.io",
        resources: &[
            "clusterroles",
            "clusterrolebindings",
            "roles",
            "rolebindings",
        ],
        verbs: &["create", "patch"],
    },
    Permission {
        group: "networking.k8s.io",
        resources: &["ingressclasses"],
        verbs: &["get", "list", "create", "patch", "delete"],
    },
];

/// Everything the operator must be granted: its own calls, plus every permission it
/// grants the gateway (Kubernetes lets a subject create a Role only with permissions it
/// holds itself, unless it may `escalate`, which is far broader).
pub fn operator_permissions() -> impl Iterator<Item = Permission> {
    OPERATOR_CALLS
        .iter()
        .chain(GATEWAY_CLUSTER_RULES)
        .chain(GATEWAY_NAMESPACE_RULES)
        .copied()
}

/// Whether `rules` grant `verb` on `resource` in `group` (honouring `*`; rules limited
/// to resource names do not count, since the operator's calls are not).
pub fn granted(rules: &[PolicyRule], group: &str, resource: &str, verb: &str) -> bool {
    let has = |list: &Option<Vec<String>>, want: &str| {
        list.as_ref()
            .is_some_and(|l| l.iter().any(|v| v == want || v == "*"))
    };
    rules.iter().any(|r| {
        r.resource_names.as_ref().is_none_or(Vec::is_empty)
            && has(&r.api_groups, group)
            && has(&r.resources, resource)
            && r.verbs.iter().any(|v| v == verb || v == "*")
    })
}

/// What RBAC checks for one request to the API server: (API group,
/// resource[/subresource], verb) for each verb it needs. A server-side apply may create
/// the object, so it needs `create` as well as `patch`. Paths that name no resource
/// (discovery, say) need nothing.
pub fn request_needs(
    method: &str,
    path: &str,
    query: &str,
    content_type: Option<&str>,
) -> Vec<(String, String, String)> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (group, rest) = match segments.as_slice() {
        ["api", _version, rest @ ..] => ("", rest),
        ["apis", group, _version, rest @ ..] => (*group, rest),
        _ => return Vec::new(),
    };
    let rest = match rest {
        ["namespaces", _ns, rest @ ..] if !rest.is_empty() => rest,
        rest => rest,
    };
    let (resource, named) = match rest {
        [resource] => ((*resource).to_owned(), false),
        [resource, _name] => ((*resource).to_owned(), true),
        [resource, _name, sub] => (format!("{resource}/{sub}"), true),
        _ => return Vec::new(),
    };
    let watch = query
        .split('&')
        .any(|p| p == "watch=true" || p == "watch=1");
    let verbs: &[&str] = match (method, named) {
        ("GET", true) => &["get"],
        ("GET", false) if watch => &["watch"],
        ("GET", false) => &["list"],
        ("POST", _) => &["create"],
        ("PUT", _) => &["update"],
        ("PATCH", _) if content_type == Some("application/apply-patch+yaml") => {
            &["patch", "create"]
        }
        ("PATCH", _) => &["patch"],
        ("DELETE", true) => &["delete"],
        ("DELETE", false) => &["deletecollection"],
        _ => return Vec::new(),
    };
    verbs
        .iter()
        .map(|v| (group.to_owned(), resource.clone(), (*v).to_owned()))
        .collect()
}

/// `permissions` as RBAC rules.
pub fn policy_rules(permissions: &[Permission]) -> Vec<PolicyRule> {
    permissions
        .iter()
        .map(|p| PolicyRule {
            api_groups: Some(vec![p.group.to_owned()]),
            resources: Some(p.resources.iter().map(|&r| r.to_owned()).collect()),
            verbs: p.verbs.iter().map(|&v| v.to_owned()).collect(),
            ..Default::default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn granted_reads_groups_resources_verbs_and_wildcards() {
        let rules = policy_rules(GATEWAY_CLUSTER_RULES);
        assert!(granted(&rules, "networking.k8s.io", "ingresses", "watch"));
        assert!(granted(
            &rules,
            "networking.k8s.io",
            "ingresses/status",
            "patch"
        ));
        assert!(!granted(&rules, "networking.k8s.io", "ingresses", "patch"));
        assert!(!granted(&rules, "", "ingresses", "get"));
        assert!(!granted(&rules, "", "secrets", "delete"));
        let star = vec![PolicyRule {
            api_groups: Some(vec!["apps".into()]),
            resources: Some(vec!["*".into()]),
            verbs: vec!["*".into()],
            ..Default::default()
        }];
        assert!(granted(&star, "apps", "deployments", "patch"));
        let named = vec![PolicyRule {
            resource_names: Some(vec!["one".into()]),
            ..star[0].clone()
        }];
        assert!(!granted(&named, "apps", "deployments", "patch"));
    }

    #[test]
    fn the_gateway_may_not_write_what_it_only_routes() {
        let rules = policy_rules(GATEWAY_CLUSTER_RULES);
        for resource in ["services", "secrets", "configmaps", "pods", "ingresses"] {
            for verb in ["create", "update", "delete"] {
                let group = if resource == "ingresses" {
                    "networking.k8s.io"
                } else {
                    ""
                };
                assert!(!granted(&rules, group, resource, verb), "{verb} {resource}");
            }
        }
    }
}
