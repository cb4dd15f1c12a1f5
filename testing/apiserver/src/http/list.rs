//! List requests: selectors, consistent pagination with `limit`/`continue`, and the
//! `PartialObjectMetadata` form of objects.

use serde_json::{Value, json};

use crate::error::ApiError;
use crate::resources::{ResourceId, resource};
use crate::selector::Selector;
use crate::store::{Key, Store};

/// A list request.
pub(crate) struct ListRequest {
    pub(crate) res: ResourceId,
    pub(crate) ns: Option<String>,
    pub(crate) selector: Selector,
    pub(crate) limit: Option<usize>,
    pub(crate) continue_token: Option<String>,
    /// `resourceVersion` with `resourceVersionMatch=Exact`: list the state at that version.
    pub(crate) exact_rv: Option<u64>,
    /// Answer `PartialObjectMetadataList` (the `Accept` header asked for it).
    pub(crate) partial: bool,
}

/// Where a continued list resumes: every page shows the state at the first page's
/// resourceVersion, after the last key of the previous page.
struct Continue {
    rv: u64,
    after: (String, String),
}

impl Continue {
    fn encode(&self) -> String {
        format!("{}/{}/{}", self.rv, self.after.0, self.after.1)
    }

    fn decode(token: &str) -> Result<Self, ApiError> {
        let mut parts = token.splitn(3, '/');
        let rv = parts.next().and_then(|rv| rv.parse().ok());
        match (rv, parts.next(), parts.next()) {
            (Some(rv), Some(ns), Some(name)) => Ok(Self {
                rv,
                after: (ns.to_owned(), name.to_owned()),
            }),
            _ => Err(ApiError::BadRequest(format!(
                "continue key is not valid: {token:?}"
            ))),
        }
    }
}

/// Answers a list request.
pub(crate) fn list(store: &Store, req: &ListRequest) -> Result<Value, ApiError> {
    let cont = req
        .continue_token
        .as_deref()
        .map(Continue::decode)
        .transpose()?;
    let rv = cont
        .as_ref()
        .map(|c| c.rv)
        .or(req.exact_rv)
        .unwrap_or_else(|| store.resource_version());
    let snapshot = store.snapshot_at(req.res, rv).map_err(|_| {
        ApiError::Gone(format!(
            "The provided continue parameter is too old to display a consistent list result \
             (resourceVersion {rv}). You can start a new list without the continue parameter."
        ))
    })?;
    let mut matching = snapshot.iter().filter(|((_, ns, name), object)| {
        req.ns.as_deref().is_none_or(|want| want == ns)
            && cont
                .as_ref()
                .is_none_or(|c| (ns, name) > (&c.after.0, &c.after.1))
            && req.selector.matches(object)
    });
    let limit = req.limit.filter(|l| *l > 0).unwrap_or(usize::MAX);
    let page: Vec<(&Key, &Value)> = matching.by_ref().take(limit).collect();
    let remaining = matching.count();
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if remaining > 0
        && let Some(((_, ns, name), _)) = page.last()
    {
        let token = Continue {
            rv,
            after: (ns.clone(), name.clone()),
        };
        metadata["continue"] = json!(token.encode());
        metadata["remainingItemCount"] = json!(remaining);
    }
    let items: Vec<Value> = page
        .into_iter()
        .map(|(_, o)| if req.partial { partial(o) } else { o.clone() })
        .collect();
    Ok(list_of(req.res, req.partial, metadata, items))
}

/// A list object of `res`.
pub(crate) fn list_of(res: ResourceId, partial: bool, metadata: Value, items: Vec<Value>) -> Value {
    let r = resource(res);
    let (kind, api_version) = if partial {
        (
            "PartialObjectMetadataList".to_owned(),
            "meta.k8s.io/v1".to_owned(),
        )
    } else {
        (format!("{}List", r.kind), r.api_version())
    };
    json!({"kind": kind, "apiVersion": api_version, "metadata": metadata, "items": items})
}

/// An object as `PartialObjectMetadata`: its metadata only.
pub(crate) fn partial(object: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": object.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

/// Whether an `Accept` header asks for `PartialObjectMetadata` (kube-rs's metadata API).
pub(crate) fn wants_partial(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.contains("as=PartialObjectMetadata"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{self, Target, Write};
    use crate::resources::by_kind;

    fn store_with(names: &[&str]) -> (Store, ResourceId) {
        let mut store = Store::new();
        let res = by_kind("v1", "ConfigMap").unwrap();
        for name in names {
            let object = json!({"metadata": {"name": name, "namespace": "a",
                "labels": {"n": name}}});
            ops::create(&mut store, res, Some("a"), object, Write::new(Target::Main)).unwrap();
        }
        (store, res)
    }

    fn request(res: ResourceId, limit: usize, token: Option<&Value>) -> ListRequest {
        ListRequest {
            res,
            ns: Some("a".into()),
            selector: Selector::default(),
            limit: Some(limit),
            continue_token: token.and_then(Value::as_str).map(str::to_owned),
            exact_rv: None,
            partial: false,
        }
    }

    fn names(list: &Value) -> Vec<&str> {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn pages_show_one_consistent_state() {
        let (mut store, res) = store_with(&["a", "b", "c"]);
        let first = list(&store, &request(res, 2, None)).unwrap();
        assert_eq!(first["kind"], "ConfigMapList");
        assert_eq!(names(&first), ["a", "b"]);
        assert_eq!(first["metadata"]["remainingItemCount"], 1);
        // a write between pages: the second page still shows the first page's state
        let d = json!({"metadata": {"name": "d", "namespace": "a"}});
        ops::create(&mut store, res, Some("a"), d, Write::new(Target::Main)).unwrap();
        let second = list(
            &store,
            &request(res, 2, Some(&first["metadata"]["continue"])),
        )
        .unwrap();
        assert_eq!(names(&second), ["c"]);
        assert!(second["metadata"].get("continue").is_none());
        assert_eq!(
            second["metadata"]["resourceVersion"],
            first["metadata"]["resourceVersion"]
        );
        store.compact();
        let err = list(
            &store,
            &request(res, 2, Some(&first["metadata"]["continue"])),
        )
        .unwrap_err();
        assert_eq!(err.code(), 410);
    }

    #[test]
    fn bad_continue_tokens_are_bad_requests() {
        let (store, res) = store_with(&["a"]);
        let token = json!("nonsense");
        assert_eq!(
            list(&store, &request(res, 1, Some(&token)))
                .unwrap_err()
                .code(),
            400
        );
    }

    #[test]
    fn partial_lists_hold_metadata_only() {
        let (store, res) = store_with(&["a"]);
        let mut req = request(res, 0, None);
        req.partial = true;
        let got = list(&store, &req).unwrap();
        assert_eq!(got["kind"], "PartialObjectMetadataList");
        assert_eq!(got["items"][0]["kind"], "PartialObjectMetadata");
        assert!(got["items"][0].get("data").is_none());
        assert!(wants_partial(Some(
            "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
        )));
    }
}
