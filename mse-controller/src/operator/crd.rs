//! The `MseIngressConfig` CustomResourceDefinition, built from the Rust type.
//!
//! The schema comes from `schemars` with the settings and transforms `kube-derive` uses
//! (OpenAPI v3, subschemas inlined, no `$schema`, then kube-core's rewrites to a
//! structural schema), so the API server stores and validates exactly what
//! `mse_model::MseIngressConfig` reads.

use k8s_openapi::Resource;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceColumnDefinition, CustomResourceDefinition, CustomResourceDefinitionNames,
    CustomResourceDefinitionSpec, CustomResourceDefinitionVersion, CustomResourceSubresourceStatus,
    CustomResourceSubresources, CustomResourceValidation, JSONSchemaProps,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube_core::schema::{OptionalEnum, OptionalIntOrString, StructuralSchemaRewriter};
use mse_model::MseIngressConfig;
use schemars::generate::SchemaSettings;
use schemars::transform::AddNullable;

use super::error::OperatorError;

/// The first lines of [`crd_yaml`]: says where the file comes from.
const HEADER: &str = "\
# The MseIngressConfig CustomResourceDefinition, generated from the Rust type.
# Regenerate: cargo run -p mse-controller-bin -- --print-crd > deploy/crd.yaml
";

/// The CustomResourceDefinition of [`MseIngressConfig`]: cluster-scoped, one served and
/// stored version, a `status` subresource and printer columns for phase and replicas.
pub fn crd() -> CustomResourceDefinition {
    let plural = MseIngressConfig::URL_PATH_SEGMENT;
    let group = MseIngressConfig::GROUP;
    CustomResourceDefinition {
        metadata: ObjectMeta {
            name: Some(format!("{plural}.{group}")),
            ..Default::default()
        },
        spec: CustomResourceDefinitionSpec {
            group: group.to_owned(),
            names: CustomResourceDefinitionNames {
                kind: MseIngressConfig::KIND.to_owned(),
                list_kind: Some("MseIngressConfigList".to_owned()),
                plural: plural.to_owned(),
                singular: Some(MseIngressConfig::KIND.to_lowercase()),
                ..Default::default()
            },
            scope: "Cluster".to_owned(),
            versions: vec![CustomResourceDefinitionVersion {
                name: MseIngressConfig::VERSION.to_owned(),
                served: true,
                storage: true,
                schema: Some(CustomResourceValidation {
                    open_api_v3_schema: Some(schema()),
                }),
                subresources: Some(CustomResourceSubresources {
                    status: Some(CustomResourceSubresourceStatus(serde_json::json!({}))),
                    scale: None,
                }),
                additional_printer_columns: Some(printer_columns()),
                ..Default::default()
            }],
            ..Default::default()
        },
        status: None,
    }
}

/// [`crd`] as YAML, with a header saying how to regenerate `deploy/crd.yaml`.
pub fn crd_yaml() -> Result<String, OperatorError> {
    let body =
        serde_yaml_ng::to_string(&crd()).map_err(|source| OperatorError::Render { source })?;
    Ok(format!("{HEADER}{body}"))
}

fn schema() -> JSONSchemaProps {
    let generator = SchemaSettings::openapi3()
        .with(|s| {
            // The API server takes neither `$ref`s nor a `$schema` key.
            s.inline_subschemas = true;
            s.meta_schema = None;
        })
        .with_transform(AddNullable::default())
        .with_transform(StructuralSchemaRewriter)
        .with_transform(OptionalEnum)
        .with_transform(OptionalIntOrString)
        .into_generator();
    let root = generator.into_root_schema_for::<MseIngressConfig>();
    // Both sides are plain JSON Schema data; a failure here is a bug in the types,
    // caught by the tests that compare the result with deploy/crd.yaml.
    serde_json::to_value(root)
        .and_then(serde_json::from_value)
        .unwrap_or_default()
}

fn printer_columns() -> Vec<CustomResourceColumnDefinition> {
    let column = |name: &str, type_: &str, json_path: &str, description: &str| {
        CustomResourceColumnDefinition {
            name: name.to_owned(),
            type_: type_.to_owned(),
            json_path: json_path.to_owned(),
            description: Some(description.to_owned()),
            ..Default::default()
        }
    };
    vec![
        column(
            "Phase",
            "string",
            ".status.phase",
            "Pending, Running, Listening or Failed",
        ),
        column(
            "Replicas",
            "integer",
            ".status.replicas",
            "Desired gateway replicas",
        ),
        column(
            "Ready",
            "integer",
            ".status.readyReplicas",
            "Gateway replicas that are ready",
        ),
        column(
            "Address",
            "string",
            ".status.address",
            "The load balancer's address",
        ),
        column(
            "Age",
            "date",
            ".metadata.creationTimestamp",
            "Time since creation",
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrArray;

    fn props(s: &JSONSchemaProps, path: &[&str]) -> JSONSchemaProps {
        path.iter()
            .fold(s.clone(), |s, key| s.properties.unwrap()[*key].clone())
    }

    #[test]
    fn schema_is_structural_and_describes_spec_and_status() {
        let crd = crd();
        assert_eq!(
            crd.metadata.name.as_deref(),
            Some("mseingressconfigs.mse.alibabacloud.com")
        );
        assert_eq!(crd.spec.scope, "Cluster");
        let version = &crd.spec.versions[0];
        let root = version.schema.clone().unwrap().open_api_v3_schema.unwrap();
        assert_eq!(root.type_.as_deref(), Some("object"));
        let replicas = props(&root, &["spec", "common", "instance", "replicas"]);
        assert_eq!(replicas.type_.as_deref(), Some("integer"));
        // Raw JSON fields keep what they are given.
        let pay = props(&root, &["spec", "common", "pay"]);
        assert_eq!(pay.x_kubernetes_preserve_unknown_fields, Some(true));
        assert_eq!(pay.type_.as_deref(), Some("object"));
        let phase = props(&root, &["status", "phase"]);
        assert_eq!(phase.type_.as_deref(), Some("string"));
        let phases: Vec<String> = phase
            .enum_
            .unwrap()
            .iter()
            .map(|v| v.0.to_string())
            .collect();
        assert_eq!(
            phases,
            ["\"Pending\"", "\"Running\"", "\"Listening\"", "\"Failed\""]
        );
        let condition = props(&root, &["status", "conditions"]).items.unwrap();
        let condition = match condition {
            JSONSchemaPropsOrArray::Schema(s) => *s,
            other => panic!("conditions items: {other:?}"),
        };
        assert_eq!(
            condition.required.clone().unwrap(),
            ["message", "reason", "status", "type"]
        );
        let time = props(&condition, &["lastTransitionTime"]);
        assert_eq!(time.format.as_deref(), Some("date-time"));
        // No leftovers a structural schema forbids.
        let text = serde_json::to_string(&root).unwrap();
        for banned in ["$ref", "$schema", "anyOf", "oneOf", "definitions", "$defs"] {
            assert!(!text.contains(banned), "{banned} in {text}");
        }
        assert!(version.subresources.as_ref().unwrap().status.is_some());
    }

    #[test]
    fn yaml_starts_with_how_to_regenerate() {
        let yaml = crd_yaml().unwrap();
        assert!(yaml.starts_with("# The MseIngressConfig"));
        assert!(yaml.contains("kind: CustomResourceDefinition"));
    }
}
