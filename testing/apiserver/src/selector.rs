//! Label and field selectors of list and watch requests.

use serde_json::Value;

use crate::error::ApiError;
use crate::meta;

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

/// A field a field selector may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Name,
    Namespace,
}

/// The label and field selectors of a request; an object matches when it meets all of both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Selector {
    labels: Vec<Requirement>,
    fields: Vec<(Field, bool, String)>,
}

impl Selector {
    /// Parses `labelSelector` and `fieldSelector` query values.
    pub(crate) fn parse(labels: Option<&str>, fields: Option<&str>) -> Result<Self, ApiError> {
        Ok(Self {
            labels: labels.map(parse_labels).transpose()?.unwrap_or_default(),
            fields: fields.map(parse_fields).transpose()?.unwrap_or_default(),
        })
    }

    /// Whether the object meets every requirement.
    pub(crate) fn matches(&self, object: &Value) -> bool {
        let labels = meta::string_map(object, "labels");
        let label = |key: &str| labels.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
        let labels_match = self.labels.iter().all(|req| match req {
            Requirement::Equals(k, v) => label(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => label(k) != Some(v.as_str()),
            Requirement::In(k, vs) => label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            Requirement::NotIn(k, vs) => label(k).is_none_or(|l| vs.iter().all(|v| v != l)),
            Requirement::Exists(k) => label(k).is_some(),
            Requirement::DoesNotExist(k) => label(k).is_none(),
        });
        labels_match
            && self.fields.iter().all(|(field, equal, value)| {
                let actual = match field {
                    Field::Name => meta::name(object),
                    Field::Namespace => meta::namespace(object),
                };
                (actual == value) == *equal
            })
    }
}

/// Splits at commas outside parentheses.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0_i32;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn bad_label_selector(selector: &str, why: &str) -> ApiError {
    ApiError::BadRequest(format!(
        "unable to parse requirement of labelSelector {selector:?}: {why}"
    ))
}

fn parse_labels(selector: &str) -> Result<Vec<Requirement>, ApiError> {
    if selector.trim().is_empty() {
        return Ok(Vec::new());
    }
    split_top_level(selector)
        .into_iter()
        .map(|part| {
            parse_requirement(part.trim()).map_err(|why| bad_label_selector(selector, &why))
        })
        .collect()
}

fn parse_requirement(part: &str) -> Result<Requirement, String> {
    if part.is_empty() {
        return Err("empty requirement".into());
    }
    if let Some(key) = part.strip_prefix('!') {
        return Ok(Requirement::DoesNotExist(label_key(key.trim())?));
    }
    if let Some((key, value)) = part.split_once("!=") {
        return Ok(Requirement::NotEquals(label_key(key)?, label_value(value)?));
    }
    if let Some((key, value)) = part.split_once("==").or_else(|| part.split_once('=')) {
        return Ok(Requirement::Equals(label_key(key)?, label_value(value)?));
    }
    let mut words = part.splitn(2, char::is_whitespace);
    let key = label_key(words.next().unwrap_or_default())?;
    let Some(rest) = words.next().map(str::trim) else {
        return Ok(Requirement::Exists(key));
    };
    let (op, set) = rest
        .split_once(char::is_whitespace)
        .map_or((rest, ""), |(op, set)| (op, set.trim()));
    let (op, set) = match (op.split_once('('), op) {
        // `key in(a,b)` without a space before the parenthesis
        (Some((op, inner)), _) => (op, format!("({inner}{set}")),
        (None, op) => (op, set.to_owned()),
    };
    let values = value_set(&set)?;
    match op {
        "in" => Ok(Requirement::In(key, values)),
        "notin" => Ok(Requirement::NotIn(key, values)),
        other => Err(format!("unknown operator {other:?}")),
    }
}

fn value_set(set: &str) -> Result<Vec<String>, String> {
    let inner = set
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| format!("expected a parenthesised value list, got {set:?}"))?;
    inner.split(',').map(label_value).collect()
}

fn label_key(key: &str) -> Result<String, String> {
    let key = key.trim();
    let valid = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    if valid {
        Ok(key.to_owned())
    } else {
        Err(format!("invalid label key {key:?}"))
    }
}

fn label_value(value: &str) -> Result<String, String> {
    let value = value.trim();
    let valid = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(value.to_owned())
    } else {
        Err(format!("invalid label value {value:?}"))
    }
}

fn parse_fields(selector: &str) -> Result<Vec<(Field, bool, String)>, ApiError> {
    if selector.trim().is_empty() {
        return Ok(Vec::new());
    }
    selector
        .split(',')
        .map(|part| {
            let (key, equal, value) = if let Some((k, v)) = part.split_once("!=") {
                (k, false, v)
            } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                (k, true, v)
            } else {
                return Err(ApiError::BadRequest(format!(
                    "invalid field selector {selector:?}: {part:?} is not key=value or key!=value"
                )));
            };
            let field = match key.trim() {
                "metadata.name" => Field::Name,
                "metadata.namespace" => Field::Namespace,
                other => {
                    return Err(ApiError::BadRequest(format!(
                        "field label not supported: {other}"
                    )));
                }
            };
            Ok((field, equal, value.trim().to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(labels: Value) -> Value {
        json!({"metadata": {"name": "web", "namespace": "shop", "labels": labels}})
    }

    fn sel(labels: &str) -> Selector {
        Selector::parse(Some(labels), None).unwrap()
    }

    #[test]
    fn equality_and_inequality() {
        let o = obj(json!({"app": "web", "tier": "front"}));
        assert!(sel("app=web").matches(&o));
        assert!(sel("app==web,tier=front").matches(&o));
        assert!(!sel("app=api").matches(&o));
        assert!(sel("app!=api").matches(&o));
        assert!(sel("missing!=x").matches(&o));
        assert!(!sel("app!=web").matches(&o));
    }

    #[test]
    fn set_based_requirements() {
        let o = obj(json!({"app": "web", "example.com/tier": "front"}));
        assert!(sel("app in (web, api)").matches(&o));
        assert!(sel("app in(web)").matches(&o));
        assert!(!sel("app notin (web,api)").matches(&o));
        assert!(sel("missing notin (a)").matches(&o));
        assert!(!sel("missing in (a)").matches(&o));
        assert!(sel("example.com/tier").matches(&o));
        assert!(sel("!missing").matches(&o));
        assert!(!sel("!app").matches(&o));
        assert!(sel("app in (web,api),example.com/tier,!missing").matches(&o));
        assert!(sel("").matches(&o));
    }

    #[test]
    fn bad_label_selectors_are_bad_requests() {
        for bad in [
            "app in web",
            "app~web",
            "app in (a",
            "a b c",
            "app=we b",
            ",",
        ] {
            let err = Selector::parse(Some(bad), None).unwrap_err();
            assert_eq!(err.code(), 400, "{bad}");
            assert!(err.to_string().contains("labelSelector"), "{err}");
        }
    }

    #[test]
    fn field_selectors_on_name_and_namespace() {
        let o = obj(json!({}));
        let fields = |f: &str| Selector::parse(None, Some(f)).unwrap();
        assert!(fields("metadata.name=web").matches(&o));
        assert!(fields("metadata.name==web,metadata.namespace=shop").matches(&o));
        assert!(!fields("metadata.name!=web").matches(&o));
        assert!(fields("metadata.namespace!=other").matches(&o));
        let err = Selector::parse(None, Some("spec.nodeName=a")).unwrap_err();
        assert_eq!(err.to_string(), "field label not supported: spec.nodeName");
        assert_eq!(Selector::parse(None, Some("name")).unwrap_err().code(), 400);
    }
}
