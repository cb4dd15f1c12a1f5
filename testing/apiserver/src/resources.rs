//! The static table of resources the server knows, and the discovery documents built from it.

use serde_json::{Value, json};

/// How `metadata.name` of a kind is validated, as the real API server does per kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NameRule {
    /// DNS-1123 subdomain: lower-case alphanumerics, `-` and `.`, at most 253 characters.
    Subdomain,
    /// DNS-1123 label: lower-case alphanumerics and `-`, at most 63 characters.
    Label,
    /// DNS-1035 label: a DNS-1123 label that starts with a letter (Services).
    Dns1035,
    /// Any path segment: not `.` or `..`, no `/` or `%` (RBAC objects, such as `system:auth`).
    PathSegment,
}

/// One resource type served by the API server.
#[derive(Debug)]
pub(crate) struct ResourceType {
    /// API group; empty for the core group.
    pub(crate) group: &'static str,
    pub(crate) version: &'static str,
    pub(crate) kind: &'static str,
    pub(crate) plural: &'static str,
    pub(crate) namespaced: bool,
    /// Whether the type has a `/status` subresource (then writes to the main resource ignore
    /// `status`, and status writes change nothing else).
    pub(crate) status: bool,
    pub(crate) short_names: &'static [&'static str],
    pub(crate) names: NameRule,
}

impl ResourceType {
    /// `group/version`, or `version` for the core group.
    pub(crate) fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The resource's name as Kubernetes messages spell it: `ingresses.networking.k8s.io`.
    pub(crate) fn qualified_plural(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_owned()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// The kind as Kubernetes messages spell it: `Ingress.networking.k8s.io`.
    pub(crate) fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.to_owned()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }
}

const fn res(
    group: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    status: bool,
) -> ResourceType {
    ResourceType {
        group,
        version: "v1",
        kind,
        plural,
        namespaced,
        status,
        short_names: &[],
        names: NameRule::Subdomain,
    }
}

const fn short(mut r: ResourceType, short_names: &'static [&'static str]) -> ResourceType {
    r.short_names = short_names;
    r
}

const fn named(mut r: ResourceType, names: NameRule) -> ResourceType {
    r.names = names;
    r
}

const fn version(mut r: ResourceType, version: &'static str) -> ResourceType {
    r.version = version;
    r
}

const NET: &str = "networking.k8s.io";
const RBAC: &str = "rbac.authorization.k8s.io";

/// Every resource the server serves. The index into this table identifies a resource type
/// inside the store.
pub(crate) static RESOURCES: &[ResourceType] = &[
    short(
        named(
            res("", "Namespace", "namespaces", false, true),
            NameRule::Label,
        ),
        &["ns"],
    ),
    short(
        named(
            res("", "Service", "services", true, true),
            NameRule::Dns1035,
        ),
        &["svc"],
    ),
    short(res("", "Endpoints", "endpoints", true, false), &["ep"]),
    res("", "Secret", "secrets", true, false),
    short(res("", "ConfigMap", "configmaps", true, false), &["cm"]),
    short(res("", "Pod", "pods", true, true), &["po"]),
    short(
        res("", "ServiceAccount", "serviceaccounts", true, false),
        &["sa"],
    ),
    short(res("", "Event", "events", true, false), &["ev"]),
    short(res(NET, "Ingress", "ingresses", true, true), &["ing"]),
    res(NET, "IngressClass", "ingressclasses", false, false),
    res(
        "discovery.k8s.io",
        "EndpointSlice",
        "endpointslices",
        true,
        false,
    ),
    short(
        res("events.k8s.io", "Event", "events", true, false),
        &["ev"],
    ),
    res("coordination.k8s.io", "Lease", "leases", true, false),
    short(
        res("apps", "Deployment", "deployments", true, true),
        &["deploy"],
    ),
    short(
        res(
            "policy",
            "PodDisruptionBudget",
            "poddisruptionbudgets",
            true,
            true,
        ),
        &["pdb"],
    ),
    named(
        res(RBAC, "Role", "roles", true, false),
        NameRule::PathSegment,
    ),
    named(
        res(RBAC, "RoleBinding", "rolebindings", true, false),
        NameRule::PathSegment,
    ),
    named(
        res(RBAC, "ClusterRole", "clusterroles", false, false),
        NameRule::PathSegment,
    ),
    named(
        res(
            RBAC,
            "ClusterRoleBinding",
            "clusterrolebindings",
            false,
            false,
        ),
        NameRule::PathSegment,
    ),
    short(
        res(
            "apiextensions.k8s.io",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            false,
            true,
        ),
        &["crd", "crds"],
    ),
    version(
        res(
            "mse.alibabacloud.com",
            "MseIngressConfig",
            "mseingressconfigs",
            false,
            true,
        ),
        "v1alpha1",
    ),
];

/// Index of a resource type in [`RESOURCES`].
pub(crate) type ResourceId = usize;

/// The resource type at `id`.
pub(crate) fn resource(id: ResourceId) -> &'static ResourceType {
    &RESOURCES[id]
}

/// Finds a resource type by `apiVersion` and `kind`.
pub(crate) fn by_kind(api_version: &str, kind: &str) -> Option<ResourceId> {
    RESOURCES
        .iter()
        .position(|r| r.kind == kind && r.api_version() == api_version)
}

/// Finds a resource type by group, version and plural name.
pub(crate) fn by_plural(group: &str, version: &str, plural: &str) -> Option<ResourceId> {
    RESOURCES
        .iter()
        .position(|r| r.group == group && r.version == version && r.plural == plural)
}

/// Whether any resource lives in `group`/`version`.
pub(crate) fn serves_group_version(group: &str, version: &str) -> bool {
    RESOURCES
        .iter()
        .any(|r| r.group == group && r.version == version)
}

const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// `APIResourceList` for one group version (`/api/v1`, `/apis/G/V`).
pub(crate) fn api_resource_list(group: &str, version: &str) -> Value {
    let mut resources = Vec::new();
    for r in RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        resources.push(json!({
            "name": r.plural,
            "singularName": r.kind.to_ascii_lowercase(),
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": VERBS,
            "shortNames": r.short_names,
        }));
        if r.status {
            resources.push(json!({
                "name": format!("{}/status", r.plural),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
    }
    let group_version = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    })
}

/// `APIGroup` for one named group, or `None` when no resource lives in it.
pub(crate) fn api_group(group: &str) -> Option<Value> {
    let mut versions: Vec<&str> = RESOURCES
        .iter()
        .filter(|r| r.group == group)
        .map(|r| r.version)
        .collect();
    versions.dedup();
    let preferred = *versions.first()?;
    let entry = |v: &str| json!({"groupVersion": format!("{group}/{v}"), "version": v});
    Some(json!({
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": versions.iter().map(|v| entry(v)).collect::<Vec<_>>(),
        "preferredVersion": entry(preferred),
    }))
}

/// `APIGroupList` for `/apis`: every named group.
pub(crate) fn api_group_list() -> Value {
    let mut groups: Vec<&str> = Vec::new();
    for r in RESOURCES.iter().filter(|r| !r.group.is_empty()) {
        if !groups.contains(&r.group) {
            groups.push(r.group);
        }
    }
    let groups: Vec<Value> = groups.iter().filter_map(|g| api_group(g)).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `APIVersions` for `/api`: the core group's versions.
pub(crate) fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

/// The `/version` document.
pub(crate) fn version_info() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": "v1.33.0-mse-test-apiserver",
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": "",
        "compiler": "",
        "platform": "linux/amd64",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_plurals_are_unique_per_group_version() {
        for (i, a) in RESOURCES.iter().enumerate() {
            for b in &RESOURCES[i + 1..] {
                let same_gv = a.group == b.group && a.version == b.version;
                assert!(!(same_gv && a.kind == b.kind), "{}", a.kind);
                assert!(!(same_gv && a.plural == b.plural), "{}", a.plural);
            }
        }
    }

    #[test]
    fn both_event_kinds_resolve_by_api_version() {
        let core = by_kind("v1", "Event").unwrap();
        let events = by_kind("events.k8s.io/v1", "Event").unwrap();
        assert_ne!(core, events);
        assert_eq!(by_plural("events.k8s.io", "v1", "events"), Some(events));
        assert!(by_kind("mse.alibabacloud.com/v1alpha1", "MseIngressConfig").is_some());
    }

    #[test]
    fn discovery_lists_status_subresources() {
        let list = api_resource_list(NET, "v1");
        let names: Vec<&str> = list["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["ingresses", "ingresses/status", "ingressclasses"]);
        assert!(api_group("nope.example").is_none());
        assert_eq!(api_group_list()["groups"].as_array().unwrap().len(), 9);
    }
}
