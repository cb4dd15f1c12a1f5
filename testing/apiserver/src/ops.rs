//! The write operations, with the API server's rules for server-managed metadata,
//! optimistic concurrency, subresources and generations. HTTP handlers and the direct store
//! access of [`ApiServer`](crate::ApiServer) both go through here.

use serde_json::{Value, json};

use crate::error::ApiError;
use crate::meta;
use crate::resources::{ResourceId, resource};
use crate::store::{Key, Propagation, Store};
use crate::validate::validate;

/// Which part of an object a write may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// A write to the resource itself over HTTP: for kinds with a status subresource,
    /// `status` is kept as stored (and dropped on create), as the real server does.
    Main,
    /// A write to `/status`: only `status` changes.
    Status,
    /// A direct write from a test: everything as written.
    Whole,
}

/// A write that may be a dry run (`dryRun=All`): checked in full, never stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Write {
    pub(crate) target: Target,
    pub(crate) dry_run: bool,
}

impl Write {
    pub(crate) fn new(target: Target) -> Self {
        Self {
            target,
            dry_run: false,
        }
    }
}

/// Checks that `object` is a JSON object of `res`'s `apiVersion` and `kind`, filling them
/// when missing.
pub(crate) fn check_type(res: ResourceId, object: &mut Value) -> Result<(), ApiError> {
    let r = resource(res);
    let Some(map) = object.as_object_mut() else {
        return Err(ApiError::BadRequest(format!(
            "the request body must be a {} object, got {}",
            r.kind,
            type_name(object)
        )));
    };
    let expected = r.api_version();
    for (field, want) in [("apiVersion", expected.as_str()), ("kind", r.kind)] {
        match map.get(field) {
            None | Some(Value::Null) => {
                map.insert(field.into(), json!(want));
            }
            Some(Value::String(got)) if got == want => {}
            Some(got) => {
                return Err(ApiError::BadRequest(format!(
                    "the {field} of the object ({got}) does not match the {field} of the URL \
                     ({want:?})"
                )));
            }
        }
    }
    Ok(())
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Puts `object` in the namespace of the URL (or `default` when there is none); a
/// cluster-scoped object loses any namespace.
pub(crate) fn place(
    res: ResourceId,
    object: &mut Value,
    url_ns: Option<&str>,
) -> Result<(), ApiError> {
    let namespaced = resource(res).namespaced;
    let meta = meta::metadata_mut(object);
    if !namespaced {
        meta.remove("namespace");
        return Ok(());
    }
    let want = url_ns.unwrap_or("default");
    match meta.get("namespace").and_then(Value::as_str) {
        None | Some("") => {
            meta.insert("namespace".into(), json!(want));
            Ok(())
        }
        Some(ns) if url_ns.is_none() || ns == want => Ok(()),
        Some(ns) => Err(ApiError::BadRequest(format!(
            "the namespace of the provided object ({ns}) does not match the namespace sent on \
             the request ({want})"
        ))),
    }
}

/// Checks (or fills) the object's name against the name in the URL.
fn check_name(object: &mut Value, url_name: &str) -> Result<(), ApiError> {
    let meta = meta::metadata_mut(object);
    match meta.get("name").and_then(Value::as_str) {
        None | Some("") => {
            meta.insert("name".into(), json!(url_name));
            Ok(())
        }
        Some(name) if name == url_name => Ok(()),
        Some(name) => Err(ApiError::BadRequest(format!(
            "the name of the object ({name}) does not match the name on the URL ({url_name})"
        ))),
    }
}

/// The key of an object of `res` named in a URL.
pub(crate) fn key(res: ResourceId, ns: Option<&str>, name: &str) -> Key {
    let ns = if resource(res).namespaced {
        ns.unwrap_or("default")
    } else {
        ""
    };
    (res, ns.to_owned(), name.to_owned())
}

pub(crate) fn not_found(res: ResourceId, name: &str) -> ApiError {
    ApiError::NotFound {
        resource: resource(res).qualified_plural(),
        name: name.to_owned(),
    }
}

fn conflict(res: ResourceId, name: &str) -> ApiError {
    ApiError::Conflict {
        resource: resource(res).qualified_plural(),
        name: name.to_owned(),
        message: "the object has been modified; please apply your changes to the latest \
                  version and try again"
            .into(),
    }
}

/// Creates an object of `res` (POST, or a direct create).
pub(crate) fn create(
    store: &mut Store,
    res: ResourceId,
    url_ns: Option<&str>,
    mut object: Value,
    write: Write,
) -> Result<Value, ApiError> {
    check_type(res, &mut object)?;
    place(res, &mut object, url_ns)?;
    if write.target == Target::Main
        && resource(res).status
        && let Some(map) = object.as_object_mut()
    {
        map.remove("status");
    }
    let meta = meta::metadata_mut(&mut object);
    let generate = meta
        .get("generateName")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let named = meta
        .get("name")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    if !named && !generate.is_empty() {
        meta.insert(
            "name".into(),
            json!(format!("{generate}{}", meta::name_suffix())),
        );
    }
    for field in [
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
    ] {
        meta.remove(field);
    }
    meta.insert("uid".into(), json!(meta::new_uid()));
    meta.insert("creationTimestamp".into(), json!(meta::now_rfc3339()));
    meta.insert("generation".into(), json!(1));
    validate(resource(res), &object)?;
    let key = Store::key_of(res, &object);
    if store.get(&key).is_some() {
        return Err(ApiError::AlreadyExists {
            resource: resource(res).qualified_plural(),
            name: key.2,
        });
    }
    if write.dry_run {
        return Ok(object);
    }
    Ok(store.commit(res, None, object))
}

/// The parts of an object a generation counts: everything but `metadata` and `status`
/// (keyed in order, so the comparison holds whatever order the JSON maps keep).
fn spec_part(object: &Value) -> std::collections::BTreeMap<&String, &Value> {
    object
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "metadata" | "status"))
                .collect()
        })
        .unwrap_or_default()
}

/// `new` made the successor of the stored `old`: server-managed metadata kept, `status` or
/// everything else kept as the target demands, `generation` bumped when the spec changed.
pub(crate) fn successor(res: ResourceId, old: &Value, mut new: Value, target: Target) -> Value {
    match target {
        Target::Status => {
            let status = new.get("status").cloned();
            new = old.clone();
            set_status(&mut new, status);
        }
        Target::Main if resource(res).status => set_status(&mut new, old.get("status").cloned()),
        Target::Main | Target::Whole => {}
    }
    let old_meta = old.get("metadata").and_then(Value::as_object);
    let keep_managed = new
        .get("metadata")
        .is_none_or(|m| m.get("managedFields").is_none());
    let meta = meta::metadata_mut(&mut new);
    meta.remove("selfLink");
    let mut server_fields = vec![
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
    ];
    if keep_managed {
        server_fields.push("managedFields");
    }
    for field in server_fields {
        match old_meta.and_then(|m| m.get(field)) {
            Some(value) => meta.insert(field.into(), value.clone()),
            None => meta.remove(field),
        };
    }
    if spec_part(&new) != spec_part(old) {
        let generation = old
            .get("metadata")
            .and_then(|m| m.get("generation"))
            .and_then(Value::as_i64)
            .unwrap_or(0);
        meta::metadata_mut(&mut new).insert("generation".into(), json!(generation + 1));
    }
    new
}

fn set_status(object: &mut Value, status: Option<Value>) {
    if let Some(map) = object.as_object_mut() {
        match status {
            Some(status) => map.insert("status".into(), status),
            None => map.remove("status"),
        };
    }
}

/// Validates and stores `new` as the successor of `old` (already prepared by
/// [`successor`]). Clearing the last finalizer of an object being deleted removes it.
pub(crate) fn finish_update(
    store: &mut Store,
    res: ResourceId,
    old: &Value,
    new: Value,
    dry_run: bool,
) -> Result<Value, ApiError> {
    validate(resource(res), &new)?;
    if dry_run {
        return Ok(new);
    }
    let key = Store::key_of(res, &new);
    if meta::meta_str(&new, "deletionTimestamp").is_some() && !meta::has_finalizers(&new) {
        return Ok(store.remove_as(&key, Some(new), Propagation::Background));
    }
    Ok(store.commit(res, Some(old), new))
}

/// Replaces an object (PUT): a `metadata.resourceVersion` in the body must be the stored one.
pub(crate) fn replace(
    store: &mut Store,
    res: ResourceId,
    url_ns: Option<&str>,
    name: &str,
    mut object: Value,
    write: Write,
) -> Result<Value, ApiError> {
    check_type(res, &mut object)?;
    place(res, &mut object, url_ns)?;
    check_name(&mut object, name)?;
    let key = key(res, url_ns, name);
    let old = store
        .get(&key)
        .cloned()
        .ok_or_else(|| not_found(res, name))?;
    let rv = meta::resource_version(&object);
    if rv.is_empty() && resource(res).kind == "Lease" {
        return Err(ApiError::Invalid {
            kind: resource(res).qualified_kind(),
            name: name.to_owned(),
            message: "metadata.resourceVersion: Invalid value: 0x0: must be specified for an \
                      update"
                .into(),
        });
    }
    if !rv.is_empty() && rv != meta::resource_version(&old) {
        return Err(conflict(res, name));
    }
    let new = successor(res, &old, object, write.target);
    finish_update(store, res, &old, new, write.dry_run)
}

/// The patch formats of PATCH requests, by content type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PatchFormat {
    /// `application/merge-patch+json` (RFC 7386).
    Merge,
    /// `application/json-patch+json` (RFC 6902).
    Json,
    /// `application/strategic-merge-patch+json`, applied as a merge patch: lists are replaced
    /// whole instead of merged by their merge keys, and `$patch` directives are not read.
    Strategic,
    /// `application/apply-patch+yaml`: server-side apply.
    Apply { manager: String, force: bool },
}

/// Patches an object with a merge or JSON patch.
pub(crate) fn patch(
    store: &mut Store,
    res: ResourceId,
    url_ns: Option<&str>,
    name: &str,
    format: &PatchFormat,
    body: &[u8],
    write: Write,
) -> Result<Value, ApiError> {
    if let PatchFormat::Apply { manager, force } = format {
        let apply = crate::apply::Apply {
            manager,
            force: *force,
        };
        return apply.run(store, res, url_ns, name, body, write);
    }
    let patch: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the patch is not valid JSON: {e}")))?;
    let key = key(res, url_ns, name);
    let old = store
        .get(&key)
        .cloned()
        .ok_or_else(|| not_found(res, name))?;
    let mut patched = old.clone();
    match format {
        PatchFormat::Json => {
            let ops: json_patch::Patch = serde_json::from_value(patch).map_err(|e| {
                ApiError::BadRequest(format!("the patch is not a JSON patch (RFC 6902): {e}"))
            })?;
            json_patch::patch(&mut patched, &ops).map_err(|e| ApiError::Invalid {
                kind: resource(res).qualified_kind(),
                name: name.to_owned(),
                message: format!("the JSON patch could not be applied: {e}"),
            })?;
        }
        _ => {
            if !patch.is_object() {
                return Err(ApiError::BadRequest(format!(
                    "a merge patch must be a JSON object, got {}",
                    type_name(&patch)
                )));
            }
            json_patch::merge(&mut patched, &patch);
        }
    }
    check_type(res, &mut patched)?;
    if Store::key_of(res, &patched) != key {
        return Err(ApiError::Invalid {
            kind: resource(res).qualified_kind(),
            name: name.to_owned(),
            message: "metadata.name, metadata.namespace: field is immutable".into(),
        });
    }
    let rv = meta::resource_version(&patched);
    if !rv.is_empty() && rv != meta::resource_version(&old) {
        return Err(conflict(res, name));
    }
    let new = successor(res, &old, patched, write.target);
    finish_update(store, res, &old, new, write.dry_run)
}

/// `DeleteOptions` of a delete request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeleteOptions {
    pub(crate) propagation: Propagation,
    pub(crate) precondition_rv: Option<String>,
    pub(crate) precondition_uid: Option<String>,
    pub(crate) dry_run: bool,
}

impl Default for DeleteOptions {
    fn default() -> Self {
        Self {
            propagation: Propagation::Background,
            precondition_rv: None,
            precondition_uid: None,
            dry_run: false,
        }
    }
}

/// Deletes an object: returns the removed object, or the object marked for deletion when
/// finalizers hold it.
pub(crate) fn delete(
    store: &mut Store,
    res: ResourceId,
    url_ns: Option<&str>,
    name: &str,
    options: &DeleteOptions,
) -> Result<Value, ApiError> {
    let key = key(res, url_ns, name);
    let current = store.get(&key).ok_or_else(|| not_found(res, name))?;
    let rv_ok = options
        .precondition_rv
        .as_deref()
        .is_none_or(|rv| rv == meta::resource_version(current));
    let uid_ok = options
        .precondition_uid
        .as_deref()
        .is_none_or(|uid| Some(uid) == meta::meta_str(current, "uid"));
    if !rv_ok || !uid_ok {
        return Err(ApiError::Conflict {
            resource: resource(res).qualified_plural(),
            name: name.to_owned(),
            message: "the precondition of the delete (uid or resourceVersion) does not match \
                      the object"
                .into(),
        });
    }
    if options.dry_run {
        return Ok(current.clone());
    }
    store
        .delete(&key, options.propagation)
        .ok_or_else(|| not_found(res, name))
}

/// Creates or replaces a whole object from a test, ignoring resourceVersions.
pub(crate) fn upsert(
    store: &mut Store,
    res: ResourceId,
    mut object: Value,
) -> Result<Value, ApiError> {
    check_type(res, &mut object)?;
    place(res, &mut object, None)?;
    let key = Store::key_of(res, &object);
    match store.get(&key).cloned() {
        None => create(store, res, None, object, Write::new(Target::Whole)),
        Some(old) => {
            let new = successor(res, &old, object, Target::Whole);
            finish_update(store, res, &old, new, false)
        }
    }
}
