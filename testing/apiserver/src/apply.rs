//! Server-side apply (`application/apply-patch+yaml`), simplified.
//!
//! What it does as the real server does: an apply creates a missing object; the applied
//! fields are merged into the stored object; each manager's fields are recorded in
//! `metadata.managedFields` (`operation: Apply`, `fieldsV1` in the real format); a field the
//! manager applied before and omits now is removed unless another manager applied it too; a
//! field another applier owns with a different value is a 409 conflict unless `force=true`,
//! which takes it over.
//!
//! Where it is simpler: every list is atomic (replaced whole and owned as one field; the real
//! server merges lists with merge keys, such as containers by name, item by item), and
//! writes other than apply (PUT, merge and JSON patches) take no field ownership, so they
//! never conflict with an apply.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::meta;
use crate::ops::{self, Target, Write};
use crate::resources::{ResourceId, resource};
use crate::store::Store;

/// A path of map keys from the object's root.
type Path = Vec<String>;

/// Metadata fields the server owns; applying them takes no ownership.
const SERVER_META: &[&str] = &[
    "name",
    "namespace",
    "resourceVersion",
    "uid",
    "creationTimestamp",
    "generation",
    "managedFields",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
];

/// One entry of `metadata.managedFields`.
struct Entry {
    raw: Value,
    manager: String,
    subresource: String,
    apply: bool,
    fields: BTreeSet<Path>,
}

/// One apply request.
pub(crate) struct Apply<'a> {
    pub(crate) manager: &'a str,
    pub(crate) force: bool,
}

impl Apply<'_> {
    /// Applies the YAML or JSON `body` to the object named by the URL.
    pub(crate) fn run(
        &self,
        store: &mut Store,
        res: ResourceId,
        url_ns: Option<&str>,
        name: &str,
        body: &[u8],
        write: Write,
    ) -> Result<Value, ApiError> {
        let text = std::str::from_utf8(body)
            .map_err(|e| ApiError::BadRequest(format!("the apply patch is not UTF-8: {e}")))?;
        let mut applied: Value = serde_yaml_ng::from_str(text).map_err(|e| {
            ApiError::BadRequest(format!("the apply patch is not valid YAML or JSON: {e}"))
        })?;
        ops::check_type(res, &mut applied)?;
        ops::place(res, &mut applied, url_ns)?;
        let applied_name = meta::name(&applied);
        if applied_name.is_empty() {
            meta::metadata_mut(&mut applied).insert("name".into(), json!(name));
        } else if applied_name != name {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({applied_name}) does not match the name on the URL \
                 ({name})"
            )));
        }
        let key = ops::key(res, url_ns, name);
        let old = store.get(&key).cloned();
        if write.target == Target::Status && old.is_none() {
            return Err(ops::not_found(res, name));
        }
        let rv = meta::resource_version(&applied);
        if let Some(old) = &old
            && !rv.is_empty()
            && rv != meta::resource_version(old)
        {
            return Err(ApiError::Conflict {
                resource: resource(res).qualified_plural(),
                name: name.to_owned(),
                message: "the object has been modified; please apply your changes to the latest \
                          version and try again"
                    .into(),
            });
        }
        restrict(res, &mut applied, write.target);
        let subresource = if write.target == Target::Status {
            "status"
        } else {
            ""
        };
        let mut owned = BTreeSet::new();
        leaf_paths(&applied, &mut Vec::new(), &mut owned);
        let base = old.clone().unwrap_or_else(|| {
            json!({"apiVersion": applied["apiVersion"], "kind": applied["kind"],
                   "metadata": {"name": name, "namespace": applied["metadata"]["namespace"]}})
        });
        let mut entries = entries(&base);
        self.resolve_conflicts(
            res,
            name,
            &base,
            &applied,
            &owned,
            subresource,
            &mut entries,
        )?;
        let mine = |e: &Entry| e.apply && e.manager == self.manager && e.subresource == subresource;
        let before = entries.iter().find(|e| mine(e));
        let previous = before.map(|e| e.fields.clone()).unwrap_or_default();
        let previous_time = before
            .filter(|e| e.fields == owned)
            .and_then(|e| e.raw.get("time").cloned());
        entries.retain(|e| !mine(e));
        let mut result = base;
        for path in previous.difference(&owned) {
            if !entries
                .iter()
                .any(|e| e.fields.iter().any(|p| overlaps(p, path)))
            {
                remove_path(&mut result, path);
            }
        }
        merge(&mut result, &applied);
        let entry = |time: Value| {
            let mut entry = json!({
                "manager": self.manager, "operation": "Apply",
                "apiVersion": resource(res).api_version(), "time": time,
                "fieldsType": "FieldsV1", "fieldsV1": encode(&owned),
            });
            if !subresource.is_empty() {
                entry["subresource"] = json!(subresource);
            }
            entry
        };
        let mut managed: Vec<Value> = entries.into_iter().map(|e| e.raw).collect();
        managed.push(entry(previous_time.clone().unwrap_or_else(now)));
        meta::metadata_mut(&mut result).insert("managedFields".into(), json!(managed));
        let Some(old) = old else {
            return ops::create(
                store,
                res,
                url_ns,
                result,
                Write {
                    target: Target::Whole,
                    ..write
                },
            );
        };
        let mut new = ops::successor(res, &old, result, Target::Whole);
        if previous_time.is_some() && !same_but_version(&new, &old) {
            // the manager's fields are the same but their values changed: a new time
            if let Some(Value::Array(managed)) =
                meta::metadata_mut(&mut new).get_mut("managedFields")
                && let Some(last) = managed.last_mut()
            {
                last["time"] = now();
            }
        }
        ops::finish_update(store, res, &old, new, write.dry_run)
    }

    /// Finds the fields this apply changes that other appliers own: a 409 naming them, or
    /// with `force` the fields move to this manager.
    #[expect(clippy::too_many_arguments, reason = "one step of run, with its state")]
    fn resolve_conflicts(
        &self,
        res: ResourceId,
        name: &str,
        live: &Value,
        applied: &Value,
        owned: &BTreeSet<Path>,
        subresource: &str,
        entries: &mut [Entry],
    ) -> Result<(), ApiError> {
        let mut conflicts = Vec::new();
        for entry in entries
            .iter_mut()
            .filter(|e| e.apply && !(e.manager == self.manager && e.subresource == subresource))
        {
            let taken: Vec<Path> = entry
                .fields
                .iter()
                .filter(|theirs| {
                    owned.iter().any(|mine| {
                        overlaps(mine, theirs) && value_at(live, mine) != value_at(applied, mine)
                    })
                })
                .cloned()
                .collect();
            for path in taken {
                conflicts.push(format!(
                    "conflict with {:?}: .{}",
                    entry.manager,
                    path.join(".")
                ));
                if self.force {
                    entry.fields.remove(&path);
                    entry.raw["fieldsV1"] = encode(&entry.fields);
                }
            }
        }
        if conflicts.is_empty() || self.force {
            return Ok(());
        }
        Err(ApiError::Conflict {
            resource: resource(res).qualified_plural(),
            name: name.to_owned(),
            message: format!(
                "Apply failed with {} conflict{}: {}",
                conflicts.len(),
                if conflicts.len() == 1 { "" } else { "s" },
                conflicts.join(", ")
            ),
        })
    }
}

fn now() -> Value {
    json!(meta::now_rfc3339())
}

fn same_but_version(a: &Value, b: &Value) -> bool {
    let mut a = a.clone();
    meta::metadata_mut(&mut a).insert("resourceVersion".into(), json!(meta::resource_version(b)));
    &a == b
}

/// Drops what the target may not change: `status` on the main resource of a kind with a
/// status subresource; everything but `status` on `/status`.
fn restrict(res: ResourceId, applied: &mut Value, target: Target) {
    let Some(map) = applied.as_object_mut() else {
        return;
    };
    match target {
        Target::Main if resource(res).status => {
            map.remove("status");
        }
        Target::Status => {
            map.retain(|k, _| matches!(k.as_str(), "apiVersion" | "kind" | "metadata" | "status"));
            if let Some(Value::Object(meta)) = map.get_mut("metadata") {
                meta.retain(|k, _| SERVER_META.contains(&k.as_str()));
            }
        }
        Target::Main | Target::Whole => {}
    }
}

/// Whether one path is a prefix of the other (they name the same or nested fields).
fn overlaps(a: &[String], b: &[String]) -> bool {
    a.iter().zip(b).all(|(x, y)| x == y)
}

/// The paths of the fields an applied object sets: maps are descended, anything else
/// (scalars, lists, empty maps) is one field. Nulls set nothing.
fn leaf_paths(value: &Value, path: &mut Path, out: &mut BTreeSet<Path>) {
    match value {
        Value::Object(map) if !map.is_empty() || path.is_empty() => {
            for (key, child) in map {
                let server_owned = path.is_empty() && matches!(key.as_str(), "apiVersion" | "kind")
                    || path.len() == 1
                        && path[0] == "metadata"
                        && SERVER_META.contains(&key.as_str());
                if server_owned {
                    continue;
                }
                path.push(key.clone());
                leaf_paths(child, path, out);
                path.pop();
            }
        }
        Value::Null => {}
        _ => {
            out.insert(path.clone());
        }
    }
}

fn value_at<'a>(value: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, key| v.get(key))
}

/// Removes the field at `path`, then the maps left empty above it.
fn remove_path(value: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let Some(Value::Object(parent)) = parents.iter().try_fold(&mut *value, |v, k| v.get_mut(k))
    else {
        return;
    };
    parent.remove(last);
    if parent.is_empty() && !parents.is_empty() {
        remove_path(value, parents);
    }
}

/// Merges `applied` into `target`: maps key by key, anything else replaced; a null removes.
fn merge(target: &mut Value, applied: &Value) {
    match (target, applied) {
        (Value::Object(target), Value::Object(applied)) => {
            for (key, value) in applied {
                match value {
                    Value::Null => {
                        target.remove(key);
                    }
                    Value::Object(_) if target.get(key).is_some_and(Value::is_object) => {
                        if let Some(slot) = target.get_mut(key) {
                            merge(slot, value);
                        }
                    }
                    _ => {
                        target.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (target, applied) => *target = applied.clone(),
    }
}

/// A field set in the `FieldsV1` format: `{"f:spec": {"f:replicas": {}}}`.
fn encode(paths: &BTreeSet<Path>) -> Value {
    let mut root = Map::new();
    for path in paths {
        let mut node = &mut root;
        for key in path {
            let child = node
                .entry(format!("f:{key}"))
                .or_insert_with(|| Value::Object(Map::new()));
            if !child.is_object() {
                *child = Value::Object(Map::new());
            }
            let Value::Object(child) = child else {
                unreachable!("made an object above")
            };
            node = child;
        }
    }
    Value::Object(root)
}

/// The paths of a `FieldsV1` set. A node with keys other than `f:` ones (list items, `.`)
/// counts as one field: lists are atomic here.
fn decode(fields: &Value, path: &mut Path, out: &mut BTreeSet<Path>) {
    let Some(map) = fields.as_object() else {
        return;
    };
    let atomic = map.is_empty() || map.keys().any(|k| !k.starts_with("f:"));
    if atomic {
        if !path.is_empty() {
            out.insert(path.clone());
        }
        return;
    }
    for (key, child) in map {
        path.push(key.trim_start_matches("f:").to_owned());
        decode(child, path, out);
        path.pop();
    }
}

fn entries(object: &Value) -> Vec<Entry> {
    let raw = object
        .get("metadata")
        .and_then(|m| m.get("managedFields"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    raw.into_iter()
        .map(|raw| {
            let text = |k: &str| {
                raw.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            let mut fields = BTreeSet::new();
            if let Some(f) = raw.get("fieldsV1") {
                decode(f, &mut Vec::new(), &mut fields);
            }
            Entry {
                manager: text("manager"),
                subresource: text("subresource"),
                apply: text("operation") == "Apply",
                fields,
                raw,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(value: &Value) -> BTreeSet<Path> {
        let mut out = BTreeSet::new();
        leaf_paths(value, &mut Vec::new(), &mut out);
        out
    }

    fn p(text: &str) -> Path {
        text.split('.').map(str::to_owned).collect()
    }

    #[test]
    fn leaf_paths_skip_server_fields_and_stop_at_lists() {
        let applied = json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "a", "labels": {"app": "web"}},
            "spec": {"ports": [{"port": 80}], "selector": {}, "gone": null}});
        let got: Vec<Path> = paths(&applied).into_iter().collect();
        assert_eq!(
            got,
            [
                p("metadata.labels.app"),
                p("spec.ports"),
                p("spec.selector")
            ]
        );
    }

    #[test]
    fn field_sets_round_trip_through_fields_v1() {
        let set = paths(&json!({"metadata": {"labels": {"a": "1", "b": "2"}},
            "spec": {"replicas": 2, "template": {"spec": {"containers": []}}}}));
        let encoded = encode(&set);
        assert_eq!(encoded["f:spec"]["f:replicas"], json!({}));
        let mut decoded = BTreeSet::new();
        decode(&encoded, &mut Vec::new(), &mut decoded);
        assert_eq!(decoded, set);
    }

    #[test]
    fn list_item_keys_make_a_node_atomic() {
        let mut out = BTreeSet::new();
        decode(
            &json!({"f:spec": {"f:ports": {"k:{\"port\":80}": {".": {}}}}}),
            &mut Vec::new(),
            &mut out,
        );
        assert_eq!(out.into_iter().collect::<Vec<_>>(), [p("spec.ports")]);
    }

    #[test]
    fn removing_a_field_prunes_empty_parents() {
        let mut v = json!({"metadata": {"labels": {"a": "1"}, "name": "x"}, "spec": {"k": 1}});
        remove_path(&mut v, &p("metadata.labels.a"));
        assert_eq!(v, json!({"metadata": {"name": "x"}, "spec": {"k": 1}}));
        remove_path(&mut v, &p("spec.k.deeper"));
        assert_eq!(v["spec"]["k"], 1);
    }

    #[test]
    fn merge_replaces_lists_and_removes_nulls() {
        let mut v = json!({"spec": {"a": [1, 2], "b": {"c": 1, "d": 2}, "e": 1}});
        merge(
            &mut v,
            &json!({"spec": {"a": [3], "b": {"c": 5}, "e": null}}),
        );
        assert_eq!(v, json!({"spec": {"a": [3], "b": {"c": 5, "d": 2}}}));
    }
}
