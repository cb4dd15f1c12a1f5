//! [`AnnotationLines`]: where each annotation key of a manifest file is, by line.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::load::{content_line, split_documents};
#[cfg(doc)]
use crate::{SourceRef, load_manifests};

/// Where each `metadata.annotations` key of each document is, by line.
///
/// [`load_manifests`] gives every object the line its document starts on
/// ([`SourceRef::line`]); a diagnostic about one annotation is more useful pointing at the
/// annotation itself. This is found by a light scan of the same text, without a second YAML
/// parse: in a block-style document the keys of the top-level `metadata:` mapping's
/// `annotations:` mapping, and in a flow-style (`annotations: { ... }`) or JSON document the
/// keys of the first such mapping. Anything the scan does not understand simply has no
/// line; callers then keep the document's line.
///
/// ```
/// use mse_model::{AnnotationLines, load_manifests};
///
/// let yaml = "# shop\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: shop\n  annotations:\n    nginx.ingress.kubernetes.io/use-regex: \"true\"\n";
/// let loaded = load_manifests(yaml, Some("shop.yaml"));
/// let object_line = loaded.objects[0].1.as_ref().map(|s| s.line).unwrap_or(0);
/// let lines = AnnotationLines::scan(yaml);
/// assert_eq!(lines.line(object_line, "nginx.ingress.kubernetes.io/use-regex"), Some(7));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AnnotationLines {
    /// Per document with annotations, by object line (as in [`SourceRef::line`]): each
    /// key with its 1-based line, sorted by key. Shared: a snapshot's copy costs nothing,
    /// and each key's text is held once per file.
    docs: Arc<[DocumentLines]>,
}

#[derive(Debug, PartialEq, Eq)]
struct DocumentLines {
    object_line: u32,
    keys: Box<[(Arc<str>, u32)]>,
}

impl AnnotationLines {
    /// Scans manifest text: the same text, in full, that was given to [`load_manifests`].
    pub fn scan(text: &str) -> Self {
        let mut interned: BTreeMap<String, Arc<str>> = BTreeMap::new();
        let mut docs: Vec<DocumentLines> = Vec::new();
        for (start, doc) in split_documents(text) {
            // A document's text starts on its `---` line, after the marker.
            let keys = scan_document(doc, start);
            if keys.is_empty() {
                continue;
            }
            let keys = keys
                .into_iter()
                .map(|(k, line)| {
                    let k = interned
                        .entry(k)
                        .or_insert_with_key(|k| Arc::from(k.as_str()));
                    (Arc::clone(k), line)
                })
                .collect();
            docs.push(DocumentLines {
                object_line: content_line(doc, start),
                keys,
            });
        }
        // Documents come in line order; two cannot share an object line.
        docs.sort_by_key(|d| d.object_line);
        docs.dedup_by_key(|d| d.object_line);
        Self {
            docs: Arc::from(docs),
        }
    }

    /// Whether the scan found no annotation at all.
    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    /// The line of annotation `key` of the object whose [`SourceRef::line`] is
    /// `object_line`, if the scan found it.
    pub fn line(&self, object_line: u32, key: &str) -> Option<u32> {
        let keys = self.document(object_line)?;
        let i = keys.binary_search_by(|(k, _)| (**k).cmp(key)).ok()?;
        Some(keys[i].1)
    }

    /// Every annotation key found for the object at `object_line`, with its line, in key
    /// order.
    pub fn keys(&self, object_line: u32) -> impl Iterator<Item = (&str, u32)> {
        self.document(object_line)
            .unwrap_or(&[])
            .iter()
            .map(|(k, l)| (&**k, *l))
    }

    fn document(&self, object_line: u32) -> Option<&[(Arc<str>, u32)]> {
        let i = self
            .docs
            .binary_search_by_key(&object_line, |d| d.object_line)
            .ok()?;
        Some(&self.docs[i].keys)
    }
}

/// Annotation key -> line for one document whose text begins on line `start`.
fn scan_document(doc: &str, start: u32) -> BTreeMap<String, u32> {
    let mut out = BTreeMap::new();
    let first = doc.trim_start();
    if first.starts_with('{') || first.starts_with('[') {
        // JSON (or a flow-style document): the first `"annotations": {` mapping.
        if let Some(at) = find_json_annotations(doc) {
            scan_flow_mapping(doc, at, start, &mut out);
        }
        return out;
    }
    // Block style: `metadata:` at column 0, then its `annotations:` child.
    let lines: Vec<(u32, &str)> = (start..).zip(doc.split('\n')).collect();
    let mut i = 0;
    let mut offset = 0usize;
    let mut offsets = Vec::with_capacity(lines.len());
    for (_, l) in &lines {
        offsets.push(offset);
        offset += l.len() + 1;
    }
    while i < lines.len() {
        let (_, l) = lines[i];
        if indent(l) == 0
            && let Some((k, rest)) = block_key(l)
            && k == "metadata"
        {
            if rest.starts_with('{') {
                // `metadata: { ..., annotations: { ... } }`
                let base = offsets[i] + (l.len() - rest.len());
                if let Some(at) = find_flow_annotations(&doc[base..]) {
                    scan_flow_mapping(doc, base + at, start, &mut out);
                }
                return out;
            }
            return scan_metadata_block(doc, &lines, &offsets, i + 1, start, out);
        }
        i += 1;
    }
    out
}

fn scan_metadata_block(
    doc: &str,
    lines: &[(u32, &str)],
    offsets: &[usize],
    from: usize,
    start: u32,
    mut out: BTreeMap<String, u32>,
) -> BTreeMap<String, u32> {
    let mut child: Option<usize> = None;
    let mut i = from;
    while i < lines.len() {
        let (_, l) = lines[i];
        i += 1;
        if is_blank(l) {
            continue;
        }
        let ind = indent(l);
        if ind == 0 {
            break;
        }
        let child_indent = *child.get_or_insert(ind);
        if ind != child_indent {
            continue;
        }
        let Some((k, rest)) = block_key(l) else {
            continue;
        };
        if k != "annotations" {
            continue;
        }
        if rest.starts_with('{') {
            let base = offsets[i - 1] + (l.len() - rest.len());
            scan_flow_mapping(doc, base, start, &mut out);
            return out;
        }
        // Block mapping: keys at the first deeper indent.
        let mut key_indent: Option<usize> = None;
        while i < lines.len() {
            let (line_no, l) = lines[i];
            i += 1;
            if is_blank(l) {
                continue;
            }
            let ind = indent(l);
            if ind <= child_indent {
                return out;
            }
            let ki = *key_indent.get_or_insert(ind);
            if ind != ki {
                continue;
            }
            if let Some((k, _)) = block_key(l) {
                out.entry(k).or_insert(line_no);
            }
        }
        return out;
    }
    out
}

fn is_blank(l: &str) -> bool {
    let t = l.trim();
    t.is_empty() || t.starts_with('#')
}

fn indent(l: &str) -> usize {
    l.len() - l.trim_start_matches(' ').len()
}

/// The key of a block mapping line (`key: value`, `"key": value`, `'key': value`) and the
/// rest of the line after the colon, trimmed.
fn block_key(l: &str) -> Option<(String, &str)> {
    let t = l.trim_start_matches(' ');
    let (key, after) = if let Some(q) = t.strip_prefix('"') {
        let (k, n) = double_quoted(q)?;
        (k, &q[n..])
    } else if let Some(q) = t.strip_prefix('\'') {
        let (k, n) = single_quoted(q)?;
        (k, &q[n..])
    } else {
        let end = t
            .char_indices()
            .find(|&(i, c)| {
                c == ':'
                    && t[i + 1..]
                        .chars()
                        .next()
                        .is_none_or(|n| n == ' ' || n == '\t' || n == '\r')
            })
            .map(|(i, _)| i)?;
        (t[..end].trim_end().to_owned(), &t[end..])
    };
    let rest = after.trim_start().strip_prefix(':')?;
    let rest = rest.trim();
    if key.is_empty() || key.starts_with(['-', '?', '#']) {
        return None;
    }
    Some((key, rest))
}

/// A double-quoted scalar's content (simple escapes), and how many bytes it took including
/// the closing quote.
fn double_quoted(s: &str) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, i + 1)),
            '\\' => {
                let (_, e) = chars.next()?;
                out.push(match e {
                    'n' => '\n',
                    't' => '\t',
                    other => other,
                });
            }
            '\n' => return None,
            c => out.push(c),
        }
    }
    None
}

/// A single-quoted scalar's content (`''` is a quote), and how many bytes it took including
/// the closing quote.
fn single_quoted(s: &str) -> Option<(String, usize)> {
    let mut out = String::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\'' if b.get(i + 1) == Some(&b'\'') => {
                out.push('\'');
                i += 2;
            }
            b'\'' => return Some((out, i + 1)),
            b'\n' => return None,
            _ => {
                let c = s[i..].chars().next()?;
                out.push(c);
                i += c.len_utf8();
            }
        }
    }
    None
}

/// Byte offset of the `{` of the first `"annotations": {` in JSON text.
fn find_json_annotations(doc: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = doc[from..].find("\"annotations\"") {
        let after = from + i + "\"annotations\"".len();
        let rest = doc[after..].trim_start();
        if let Some(r) = rest.strip_prefix(':') {
            let r2 = r.trim_start();
            if r2.starts_with('{') {
                return Some(doc.len() - r2.len());
            }
        }
        from = after;
    }
    None
}

/// Byte offset, within `s`, of the `{` of an `annotations: {` in flow-style text.
fn find_flow_annotations(s: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = s[from..].find("annotations") {
        let at = from + i;
        let before_ok = s[..at]
            .chars()
            .next_back()
            .is_none_or(|c| matches!(c, '{' | ',' | ' ' | '\n' | '\t' | '"' | '\''));
        let mut after = &s[at + "annotations".len()..];
        after = after.strip_prefix(['"', '\'']).unwrap_or(after);
        if before_ok && let Some(r) = after.trim_start().strip_prefix(':') {
            let r = r.trim_start();
            if r.starts_with('{') {
                return Some(s.len() - r.len());
            }
        }
        from = at + 1;
    }
    None
}

/// Records the keys of the flow mapping (or JSON object) whose `{` is at byte `at` of
/// `doc`, a document whose first line is `start`.
fn scan_flow_mapping(doc: &str, at: usize, start: u32, out: &mut BTreeMap<String, u32>) {
    let line_of = |pos: usize| -> u32 {
        let n = doc[..pos].bytes().filter(|b| *b == b'\n').count();
        start.saturating_add(u32::try_from(n).unwrap_or(u32::MAX))
    };
    let s = &doc[at..];
    let mut i = 1; // past '{'
    let b = s.as_bytes();
    let mut expect_key = true;
    let mut depth = 0usize;
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'}' | b']' if depth == 0 => return,
            b'{' | b'[' => {
                depth += 1;
                i += 1;
            }
            b'}' | b']' => {
                depth -= 1;
                i += 1;
            }
            b',' => {
                if depth == 0 {
                    expect_key = true;
                }
                i += 1;
            }
            b':' => {
                if depth == 0 {
                    expect_key = false;
                }
                i += 1;
            }
            b'"' | b'\'' => {
                let body = &s[i + 1..];
                let parsed = if c == b'"' {
                    double_quoted(body)
                } else {
                    single_quoted(body)
                };
                let Some((text, n)) = parsed else { return };
                if expect_key && depth == 0 {
                    out.entry(text).or_insert_with(|| line_of(at + i));
                }
                i += 1 + n;
            }
            _ => {
                // A plain scalar: up to `: `, `,` or a closing bracket.
                let begin = i;
                while i < b.len() {
                    let d = b[i];
                    if matches!(d, b',' | b'}' | b']' | b'\n')
                        || (d == b':' && b.get(i + 1).is_none_or(|n| n.is_ascii_whitespace()))
                    {
                        break;
                    }
                    i += 1;
                }
                if expect_key && depth == 0 {
                    let text = s[begin..i].trim();
                    if !text.is_empty() {
                        out.entry(text.to_owned())
                            .or_insert_with(|| line_of(at + begin));
                    }
                }
                if i == begin {
                    i += 1;
                }
            }
        }
    }
}
