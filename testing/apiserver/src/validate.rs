//! The part of the real API server's validation that clients of this server are likely to
//! trip over: object names, label and annotation syntax, and the required fields of
//! `events.k8s.io/v1` Events and Leases. Everything else is accepted as written.

use serde_json::Value;

use crate::error::ApiError;
use crate::meta;
use crate::resources::{NameRule, ResourceType};

/// Checks an object about to be stored; the error names the field and the value.
pub(crate) fn validate(res: &ResourceType, object: &Value) -> Result<(), ApiError> {
    let mut problems = Vec::new();
    let name = meta::name(object);
    if let Some(why) = name_problem(res.names, name) {
        problems.push(format!("metadata.name: Invalid value: {name:?}: {why}"));
    }
    for (key, value) in meta::string_map(object, "labels") {
        if let Some(why) = qualified_name_problem(key) {
            problems.push(format!("metadata.labels: Invalid value: {key:?}: {why}"));
        }
        if let Some(why) = label_value_problem(value) {
            problems.push(format!("metadata.labels: Invalid value: {value:?}: {why}"));
        }
    }
    for (key, _) in meta::string_map(object, "annotations") {
        if let Some(why) = qualified_name_problem(&key.to_ascii_lowercase()) {
            problems.push(format!(
                "metadata.annotations: Invalid value: {key:?}: {why}"
            ));
        }
    }
    for field in ["labels", "annotations"] {
        if let Some(map) = object.get("metadata").and_then(|m| m.get(field))
            && let Some(bad) = map
                .as_object()
                .map_or(Some(map), |m| m.values().find(|v| !v.is_string()))
        {
            problems.push(format!(
                "metadata.{field}: Invalid value: {bad}: must be a map of strings"
            ));
        }
    }
    match (res.group, res.kind) {
        ("events.k8s.io", "Event") => event_problems(object, &mut problems),
        ("coordination.k8s.io", "Lease") => lease_problems(object, &mut problems),
        _ => {}
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Invalid {
            kind: res.qualified_kind(),
            name: name.to_owned(),
            message: problems.join(", "),
        })
    }
}

fn is_label_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
}

/// Why `name` breaks the kind's naming rule, if it does.
pub(crate) fn name_problem(rule: NameRule, name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("name or generateName is required");
    }
    match rule {
        NameRule::PathSegment => {
            if name == "." || name == ".." || name.contains(['/', '%']) {
                return Some("may not be '.' or '..' and may not contain '/' or '%'");
            }
            None
        }
        NameRule::Subdomain => {
            let ok = name.len() <= 253 && name.split('.').all(dns_label_ok);
            (!ok).then_some(
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric \
                 characters, '-' or '.', and must start and end with an alphanumeric character",
            )
        }
        NameRule::Label => (!dns_label_ok(name)).then_some(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or \
             '-', must start and end with an alphanumeric character, and be at most 63 characters",
        ),
        NameRule::Dns1035 => {
            let ok = dns_label_ok(name) && name.starts_with(|c: char| c.is_ascii_lowercase());
            (!ok).then_some(
                "a DNS-1035 label must consist of lower case alphanumeric characters or '-', \
                 start with an alphabetic character, and end with an alphanumeric character",
            )
        }
    }
}

fn dns_label_ok(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && label.chars().all(is_label_char)
        && !label.starts_with('-')
        && !label.ends_with('-')
}

/// Why a label or annotation key (`[prefix/]name`) is not a qualified name, if it is not.
fn qualified_name_problem(key: &str) -> Option<&'static str> {
    let (prefix, name) = key.rsplit_once('/').unwrap_or(("", key));
    if key.matches('/').count() > 1 || (key.contains('/') && prefix.is_empty()) {
        return Some("a qualified name has at most one '/', after a DNS subdomain prefix");
    }
    if !prefix.is_empty() && name_problem(NameRule::Subdomain, prefix).is_some() {
        return Some("the prefix must be a DNS subdomain");
    }
    if name.is_empty() || name.len() > 63 || !label_value_chars(name) {
        return Some(
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start \
             and end with an alphanumeric character, at most 63 characters",
        );
    }
    None
}

fn label_value_chars(value: &str) -> bool {
    value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && value.starts_with(|c: char| c.is_ascii_alphanumeric())
        && value.ends_with(|c: char| c.is_ascii_alphanumeric())
}

fn label_value_problem(value: &str) -> Option<&'static str> {
    if value.is_empty() || (value.len() <= 63 && label_value_chars(value)) {
        None
    } else {
        Some(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', \
             '_' or '.', and must start and end with an alphanumeric character, at most 63 \
             characters",
        )
    }
}

fn non_empty_str<'a>(object: &'a Value, field: &str) -> Option<&'a str> {
    object
        .get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// The required fields of an `events.k8s.io/v1` Event, as `ValidateEventCreate` checks them.
fn event_problems(object: &Value, problems: &mut Vec<String>) {
    for field in [
        "eventTime",
        "reportingController",
        "reportingInstance",
        "action",
        "reason",
    ] {
        if non_empty_str(object, field).is_none() {
            problems.push(format!("{field}: Required value"));
        }
    }
    for field in ["action", "reason"] {
        if non_empty_str(object, field).is_some_and(|v| v.len() > 128) {
            problems.push(format!("{field}: Too long: may not be more than 128 bytes"));
        }
    }
    match object.get("type").and_then(Value::as_str) {
        Some("Normal" | "Warning") => {}
        other => problems.push(format!(
            "type: Unsupported value: {:?}: supported values: \"Normal\", \"Warning\"",
            other.unwrap_or_default()
        )),
    }
    if non_empty_str(object, "note").is_some_and(|n| n.len() > 1024) {
        problems.push("note: Too long: may not be more than 1024 bytes".into());
    }
    if let Some(series) = object.get("series").filter(|s| !s.is_null()) {
        if series.get("count").and_then(Value::as_i64).unwrap_or(0) < 2 {
            problems.push("series.count: Invalid value: should be at least 2".into());
        }
        if non_empty_str(series, "lastObservedTime").is_none() {
            problems.push("series.lastObservedTime: Required value".into());
        }
    }
}

/// Lease fields that must be positive when set.
fn lease_problems(object: &Value, problems: &mut Vec<String>) {
    let spec = object.get("spec");
    for field in ["leaseDurationSeconds", "leaseTransitions"] {
        let Some(value) = spec.and_then(|s| s.get(field)).filter(|v| !v.is_null()) else {
            continue;
        };
        let min = i64::from(field == "leaseDurationSeconds");
        if value.as_i64().is_none_or(|v| v < min) {
            problems.push(format!(
                "spec.{field}: Invalid value: {value}: must be at least {min}"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{RESOURCES, by_kind};
    use serde_json::json;

    fn check(api_version: &str, kind: &str, object: Value) -> Result<(), ApiError> {
        validate(&RESOURCES[by_kind(api_version, kind).unwrap()], &object)
    }

    #[test]
    fn names_follow_the_kind_rule() {
        assert_eq!(name_problem(NameRule::Subdomain, "a.b-c"), None);
        assert!(name_problem(NameRule::Subdomain, "A").is_some());
        assert!(name_problem(NameRule::Subdomain, "a..b").is_some());
        assert!(name_problem(NameRule::Label, "a.b").is_some());
        assert!(name_problem(NameRule::Dns1035, "1abc").is_some());
        assert_eq!(name_problem(NameRule::PathSegment, "system:auth"), None);
        assert!(name_problem(NameRule::PathSegment, "a/b").is_some());
        assert!(name_problem(NameRule::Subdomain, "").is_some());
    }

    #[test]
    fn bad_labels_name_the_key_or_value() {
        let err = check(
            "v1",
            "ConfigMap",
            json!({"metadata": {"name": "c", "labels": {"a/b/c": "x", "ok": "bad value"}}}),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("ConfigMap \"c\" is invalid: "), "{text}");
        assert!(text.contains("\"a/b/c\""), "{text}");
        assert!(text.contains("\"bad value\""), "{text}");
        assert!(
            check(
                "v1",
                "ConfigMap",
                json!({"metadata": {"name": "c", "labels": {"example.com/app": "web", "e": ""},
                    "annotations": {"nginx.ingress.kubernetes.io/rewrite-target": "/$1"}}})
            )
            .is_ok()
        );
        let err = check(
            "v1",
            "ConfigMap",
            json!({"metadata": {"name": "c", "annotations": {"a": 1}}}),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("must be a map of strings"),
            "{err}"
        );
    }

    #[test]
    fn events_need_their_reporting_fields() {
        let err = check(
            "events.k8s.io/v1",
            "Event",
            json!({"metadata": {"name": "e"}, "type": "Info"}),
        )
        .unwrap_err();
        let text = err.to_string();
        for field in [
            "eventTime",
            "reportingController",
            "reportingInstance",
            "action",
            "reason",
        ] {
            assert!(text.contains(&format!("{field}: Required value")), "{text}");
        }
        assert!(text.contains("type: Unsupported value: \"Info\""), "{text}");
        let good = json!({"metadata": {"name": "e"}, "eventTime": "2026-01-01T00:00:00.000000Z",
            "reportingController": "mse.io/gateway", "reportingInstance": "gw-1",
            "action": "Compile", "reason": "InvalidValue", "type": "Warning"});
        assert!(check("events.k8s.io/v1", "Event", good).is_ok());
    }

    #[test]
    fn lease_duration_must_be_positive() {
        let lease =
            |d: Value| json!({"metadata": {"name": "l"}, "spec": {"leaseDurationSeconds": d}});
        assert!(check("coordination.k8s.io/v1", "Lease", lease(json!(15))).is_ok());
        assert!(check("coordination.k8s.io/v1", "Lease", lease(json!(0))).is_err());
        assert!(check("coordination.k8s.io/v1", "Lease", lease(json!("x"))).is_err());
    }
}
