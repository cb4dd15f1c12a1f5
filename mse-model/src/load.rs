//! Reading manifests: YAML or JSON text, many documents, into typed objects.
//!
//! Each document is parsed on its own, so one malformed document never stops the others.
//! Every problem becomes a [`Diagnostic`] that names the file, the line and, when it is
//! known, the object.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::ByteString;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::api::{
    ConfigMap, EndpointSlice, Endpoints, Ingress, IngressClass, Pod, Secret, Service,
};
use crate::crd::MseIngressConfig;
use crate::diag::Diagnostic;
use crate::object::{Kind, ObjectKey, SourceRef};

/// One object of a kind the gateway reads.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Object {
    /// An Ingress.
    Ingress(Box<Ingress>),
    /// An IngressClass.
    IngressClass(Box<IngressClass>),
    /// A Service.
    Service(Box<Service>),
    /// An EndpointSlice.
    EndpointSlice(Box<EndpointSlice>),
    /// Legacy Endpoints.
    Endpoints(Box<Endpoints>),
    /// A Secret (`stringData` already merged into `data`).
    Secret(Box<Secret>),
    /// A ConfigMap.
    ConfigMap(Box<ConfigMap>),
    /// An MseIngressConfig.
    MseIngressConfig(Box<MseIngressConfig>),
    /// A Pod (its labels and addresses select service subsets).
    Pod(Box<Pod>),
}

impl Object {
    /// The object's key.
    pub fn key(&self) -> ObjectKey {
        match self {
            Object::Ingress(o) => ObjectKey::of(Kind::Ingress, &o.metadata),
            Object::IngressClass(o) => ObjectKey::of(Kind::IngressClass, &o.metadata),
            Object::Service(o) => ObjectKey::of(Kind::Service, &o.metadata),
            Object::EndpointSlice(o) => ObjectKey::of(Kind::EndpointSlice, &o.metadata),
            Object::Endpoints(o) => ObjectKey::of(Kind::Endpoints, &o.metadata),
            Object::Secret(o) => ObjectKey::of(Kind::Secret, &o.metadata),
            Object::ConfigMap(o) => ObjectKey::of(Kind::ConfigMap, &o.metadata),
            Object::MseIngressConfig(o) => ObjectKey::of(Kind::MseIngressConfig, &o.metadata),
            Object::Pod(o) => ObjectKey::of(Kind::Pod, &o.metadata),
        }
    }
}

/// What [`load_manifests`] read: the objects, each with its file and line, and every
/// problem found.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The objects, in document order.
    pub objects: Vec<(Object, Option<SourceRef>)>,
    /// One entry per document that was skipped or could not be read.
    pub diagnostics: Vec<Diagnostic>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Header {
    #[serde(default)]
    api_version: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    metadata: Option<HeaderMeta>,
}

#[derive(Deserialize)]
struct HeaderMeta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
}

#[derive(Deserialize)]
struct List {
    #[serde(default)]
    items: Vec<serde_json::Value>,
}

/// Parses YAML or JSON text holding any number of documents (`---` separated, `kind: List`
/// included) into objects.
///
/// `file` names the input in diagnostics and in each object's [`SourceRef`]. Documents of a
/// kind the gateway does not read are skipped with an informational diagnostic; documents
/// that do not parse are skipped with an error naming the line. Namespaced objects without a
/// namespace get `default`.
pub fn load_manifests(text: &str, file: Option<&str>) -> Loaded {
    let file: Arc<str> = Arc::from(file.unwrap_or("<input>"));
    let mut out = Loaded::default();
    for (index, (start, doc)) in split_documents(text).into_iter().enumerate() {
        load_document(doc, &file, start, index + 1, &mut out);
    }
    out
}

/// The line an object of a document starting at line `start` points at: its first line of
/// content (blank and comment lines skipped).
pub(crate) fn content_line(doc: &str, start: u32) -> u32 {
    let skipped = doc
        .lines()
        .take_while(|l| {
            let t = l.trim();
            t.is_empty() || t.starts_with('#')
        })
        .count() as u32;
    start + skipped
}

fn load_document(doc: &str, file: &Arc<str>, start: u32, index: usize, out: &mut Loaded) {
    // Objects point at their document's first line of content; parse errors are counted
    // from the document's start, which is where the YAML parser counts from.
    let src = &SourceRef {
        file: file.clone(),
        line: content_line(doc, start),
    };
    let doc_start = &SourceRef {
        file: file.clone(),
        line: start,
    };
    // Block-style manifests name their kind in plain top-level lines: reading those saves a
    // second YAML parse of every document. Anything else goes through the YAML parser.
    let header: Header = match scan_header(doc) {
        Some(h) => h,
        None => match serde_yaml_ng::from_str::<Option<Header>>(doc) {
            Ok(Some(h)) => h,
            // A document holding only `null` (or comments) is not an object: skip silently.
            Ok(None) => return,
            Err(e) => {
                out.diagnostics.push(yaml_error(&e, doc_start, index, None));
                return;
            }
        },
    };
    let (Some(api_version), Some(kind)) = (header.api_version.clone(), header.kind.clone()) else {
        out.diagnostics.push(
            Diagnostic::error(
                "malformed-object",
                "document has no apiVersion or kind; it was skipped",
            )
            .source(Some(src.clone())),
        );
        return;
    };
    if kind == "List" {
        match serde_yaml_ng::from_str::<List>(doc) {
            Ok(list) => {
                for item in list.items {
                    load_value(item, src, out);
                }
            }
            Err(e) => out.diagnostics.push(yaml_error(&e, doc_start, index, None)),
        }
        return;
    }
    let Some(k) = known_kind(&api_version, &kind, src, out) else {
        return;
    };
    let parsed = match k {
        Kind::Ingress => typed::<Ingress>(doc).map(|o| Object::Ingress(Box::new(o))),
        Kind::IngressClass => typed::<IngressClass>(doc).map(|o| Object::IngressClass(Box::new(o))),
        Kind::Service => typed::<Service>(doc).map(|o| Object::Service(Box::new(o))),
        Kind::EndpointSlice => {
            typed::<EndpointSlice>(doc).map(|o| Object::EndpointSlice(Box::new(o)))
        }
        Kind::Endpoints => typed::<Endpoints>(doc).map(|o| Object::Endpoints(Box::new(o))),
        Kind::Secret => {
            typed::<Secret>(doc).map(|o| Object::Secret(Box::new(merge_string_data(o))))
        }
        Kind::ConfigMap => typed::<ConfigMap>(doc).map(|o| Object::ConfigMap(Box::new(o))),
        Kind::MseIngressConfig => {
            typed::<MseIngressConfig>(doc).map(|o| Object::MseIngressConfig(Box::new(o)))
        }
        Kind::Pod => typed::<Pod>(doc).map(|o| Object::Pod(Box::new(o))),
    };
    match parsed {
        Ok(obj) => accept(obj, src, out),
        Err(e) => {
            // The header was read from plain lines: tell a syntax error (no YAML at all)
            // from an object that does not fit its kind's schema.
            if let Err(syntax) = serde_yaml_ng::from_str::<serde_yaml_ng::Value>(doc) {
                out.diagnostics
                    .push(yaml_error(&syntax, doc_start, index, None));
                return;
            }
            let mut d = yaml_error(&e, doc_start, index, Some(k));
            // The scanned header has no metadata: read it now, on this rare path.
            let metadata = header.metadata.or_else(|| {
                serde_yaml_ng::from_str::<Option<Header>>(doc)
                    .ok()
                    .flatten()
                    .and_then(|h| h.metadata)
            });
            if let Some(m) = metadata.filter(|m| m.name.is_some()) {
                let meta = crate::api::ObjectMeta {
                    name: m.name,
                    namespace: m.namespace,
                    ..Default::default()
                };
                d = d.object(ObjectKey::of(k, &meta));
            }
            out.diagnostics.push(d);
        }
    }
}

/// `apiVersion` and `kind` from a document's top-level block-style lines (`kind: Ingress`
/// at column 0), or `None` when the document is written any other way (flow style, JSON,
/// anchors, tags, a key written twice), which the YAML parser then reads.
fn scan_header(doc: &str) -> Option<Header> {
    let mut api_version = None;
    let mut kind = None;
    for line in doc.lines() {
        let (slot, rest) = if let Some(rest) = line.strip_prefix("apiVersion:") {
            (&mut api_version, rest)
        } else if let Some(rest) = line.strip_prefix("kind:") {
            (&mut kind, rest)
        } else {
            continue;
        };
        if slot.is_some() {
            return None;
        }
        let value = match rest.find(" #") {
            Some(i) => &rest[..i],
            None => rest,
        }
        .trim();
        let value = match value.as_bytes() {
            [q @ (b'"' | b'\''), .., last] if last == q => &value[1..value.len() - 1],
            _ => value,
        };
        let plain = !value.is_empty()
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'/' | b'-' | b'_'));
        if !plain {
            return None;
        }
        *slot = Some(value.to_owned());
    }
    Some(Header {
        api_version: Some(api_version?),
        kind: Some(kind?),
        metadata: None,
    })
}

fn load_value(item: serde_json::Value, src: &SourceRef, out: &mut Loaded) {
    let api_version = item
        .get("apiVersion")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_owned();
    let kind_s = item
        .get("kind")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_owned();
    let Some(k) = known_kind(&api_version, &kind_s, src, out) else {
        return;
    };
    fn conv<T: DeserializeOwned>(v: serde_json::Value) -> Result<T, serde_json::Error> {
        serde_json::from_value(v)
    }
    let parsed = match k {
        Kind::Ingress => conv::<Ingress>(item).map(|o| Object::Ingress(Box::new(o))),
        Kind::IngressClass => conv::<IngressClass>(item).map(|o| Object::IngressClass(Box::new(o))),
        Kind::Service => conv::<Service>(item).map(|o| Object::Service(Box::new(o))),
        Kind::EndpointSlice => {
            conv::<EndpointSlice>(item).map(|o| Object::EndpointSlice(Box::new(o)))
        }
        Kind::Endpoints => conv::<Endpoints>(item).map(|o| Object::Endpoints(Box::new(o))),
        Kind::Secret => {
            conv::<Secret>(item).map(|o| Object::Secret(Box::new(merge_string_data(o))))
        }
        Kind::ConfigMap => conv::<ConfigMap>(item).map(|o| Object::ConfigMap(Box::new(o))),
        Kind::MseIngressConfig => {
            conv::<MseIngressConfig>(item).map(|o| Object::MseIngressConfig(Box::new(o)))
        }
        Kind::Pod => conv::<Pod>(item).map(|o| Object::Pod(Box::new(o))),
    };
    match parsed {
        Ok(obj) => accept(obj, src, out),
        Err(e) => out.diagnostics.push(
            Diagnostic::error(
                "malformed-object",
                format!("{kind_s} in List: {e}; it was skipped"),
            )
            .source(Some(src.clone())),
        ),
    }
}

fn accept(obj: Object, src: &SourceRef, out: &mut Loaded) {
    let key = obj.key();
    if key.name.is_empty() {
        out.diagnostics.push(
            Diagnostic::error(
                "malformed-object",
                format!("{} has no metadata.name; it was skipped", key.kind),
            )
            .source(Some(src.clone())),
        );
        return;
    }
    out.objects.push((obj, Some(src.clone())));
}

fn typed<T: DeserializeOwned>(doc: &str) -> Result<T, serde_yaml_ng::Error> {
    serde_yaml_ng::from_str(doc)
}

/// Maps `apiVersion` + `kind` to a kind the gateway reads. Anything else is skipped with a
/// note: manifests often bundle Deployments and the like next to Ingresses.
fn known_kind(api_version: &str, kind: &str, src: &SourceRef, out: &mut Loaded) -> Option<Kind> {
    let k = match (api_version, kind) {
        ("networking.k8s.io/v1", "Ingress") => Kind::Ingress,
        ("networking.k8s.io/v1", "IngressClass") => Kind::IngressClass,
        ("v1", "Service") => Kind::Service,
        ("discovery.k8s.io/v1", "EndpointSlice") => Kind::EndpointSlice,
        ("v1", "Endpoints") => Kind::Endpoints,
        ("v1", "Secret") => Kind::Secret,
        ("v1", "ConfigMap") => Kind::ConfigMap,
        ("mse.alibabacloud.com/v1alpha1", "MseIngressConfig") => Kind::MseIngressConfig,
        ("v1", "Pod") => Kind::Pod,
        (_, "Ingress" | "IngressClass")
            if api_version.starts_with("networking.k8s.io/")
                || api_version.starts_with("extensions/") =>
        {
            out.diagnostics.push(
                Diagnostic::error(
                    "unsupported-api-version",
                    format!("{kind} {api_version} is no longer served by Kubernetes; convert it to networking.k8s.io/v1"),
                )
                .source(Some(src.clone()))
                .value(api_version),
            );
            return None;
        }
        _ => {
            out.diagnostics.push(
                Diagnostic::info(
                    "unknown-kind",
                    format!("{api_version} {kind} is not read by the gateway; skipped"),
                )
                .source(Some(src.clone())),
            );
            return None;
        }
    };
    Some(k)
}

fn merge_string_data(mut s: Secret) -> Secret {
    if let Some(sd) = s.string_data.take() {
        let data = s.data.get_or_insert_with(BTreeMap::new);
        for (k, v) in sd {
            data.insert(k, ByteString(v.into_bytes()));
        }
    }
    s
}

/// `index` is the document's 1-based position in the file (documents holding only
/// comments are not counted).
fn yaml_error(
    e: &serde_yaml_ng::Error,
    src: &SourceRef,
    index: usize,
    kind: Option<Kind>,
) -> Diagnostic {
    let line = e
        .location()
        .map(|l| src.line + l.line().saturating_sub(1) as u32)
        .unwrap_or(src.line);
    let what = match kind {
        Some(k) => format!("{k} does not match its schema"),
        None => "malformed YAML".to_owned(),
    };
    let mut msg = e.to_string();
    // serde_yaml_ng appends "at line N column M" relative to the document; the diagnostic
    // carries the absolute line instead.
    if let Some(i) = msg.find(" at line ") {
        msg.truncate(i);
    }
    Diagnostic::error(
        "malformed-yaml",
        format!("{what} in document {index}: {msg}; the document was skipped"),
    )
    .source(Some(SourceRef {
        file: src.file.clone(),
        line,
    }))
}

/// Splits a YAML stream into documents, each with the 1-based line it starts on.
///
/// A line starting with `---` opens a new document (anything after the marker belongs to
/// it); a line `...` ends one. Documents that hold nothing but blank lines and comments are
/// dropped.
pub(crate) fn split_documents(text: &str) -> Vec<(u32, &str)> {
    let mut docs = Vec::new();
    let mut start_byte = 0usize;
    let mut start_line = 1u32;
    let mut offset = 0usize;
    fn push<'t>(docs: &mut Vec<(u32, &'t str)>, text: &'t str, from: usize, to: usize, line: u32) {
        let doc = &text[from..to];
        let has_content = doc.lines().any(|l| {
            let t = l.trim();
            !t.is_empty() && !t.starts_with('#')
        });
        if has_content {
            docs.push((line, doc));
        }
    }
    for (line_no, line) in (1u32..).zip(text.split_inclusive('\n')) {
        let bare = line.trim_end_matches(['\n', '\r']);
        let is_start = bare == "---" || bare.starts_with("--- ") || bare.starts_with("---\t");
        let is_end = bare == "...";
        if is_start || is_end {
            push(&mut docs, text, start_byte, offset, start_line);
            // Content after `--- ` on the same line belongs to the new document; keep it
            // by starting the document just after the marker.
            start_byte = if is_start {
                offset + 3
            } else {
                offset + line.len()
            };
            start_line = if is_start { line_no } else { line_no + 1 };
        }
        offset += line.len();
    }
    push(&mut docs, text, start_byte, text.len(), start_line);
    docs
}

#[cfg(test)]
mod tests;
