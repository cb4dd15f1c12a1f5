//! Linting: everything the gateway would say about a set of manifests, before deploying
//! them, in the three output formats of `mse-lint`.
//!
//! [`lint`] compiles the snapshot exactly as the gateway does, so the linter and the
//! gateway's logs and `/debug/diagnostics` show the same diagnostics: per-annotation
//! problems (from [`mse_annotations::parse`]) and cross-object ones (conflicting host and
//! path and who wins, missing Service, port or Secret, a canary with no main Ingress, a TLS
//! host its certificate does not cover). The linter adds two things the gateway cannot
//! know: the line of each annotation (from [`AnnotationLines`] of the file text), and a
//! migration report ([`mse_annotations::Migration`]).
//!
//! This module does no I/O: the caller reads the files.
//!
//! ```
//! use std::collections::BTreeMap;
//! use mse_model::{load_manifests, AnnotationLines, Snapshot};
//! use mse_router::CompileOptions;
//! use mse_router::lint::{lint, Format, RenderOptions};
//!
//! let yaml = "apiVersion: networking.k8s.io/v1
//! kind: Ingress
//! metadata:
//!   name: web
//!   annotations:
//!     nginx.ingress.kubernetes.io/ssl-redirects: \"true\"
//! spec:
//!   ingressClassName: mse
//!   defaultBackend: { service: { name: web, port: { number: 80 } } }
//! ";
//! let mut snapshot = Snapshot::default();
//! snapshot.extend(load_manifests(yaml, Some("web.yaml")).objects);
//! let lines = BTreeMap::from([("web.yaml".into(), AnnotationLines::scan(yaml))]);
//! let report = lint(&snapshot, &CompileOptions::default(), &lines);
//!
//! let text = report.render(&RenderOptions::new(Format::Human));
//! let lines: Vec<&str> = text.lines().collect();
//! // The missing Service is an error at the object; the typo is at its own line.
//! assert!(lines[0].starts_with("web.yaml:1: error: Ingress default/web: spec.defaultBackend.service:"));
//! assert_eq!(lines[1], "web.yaml:6: warning: Ingress default/web: nginx.ingress.kubernetes.io/ssl-redirects: unknown annotation, ignored; did you mean nginx.ingress.kubernetes.io/ssl-redirect? (value \"true\") [unknown-annotation]");
//! assert_eq!(report.exit_code(false), 1);
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::str::FromStr;
use std::sync::Arc;

use mse_annotations::{Class, ClassTotal, Migration, MigrationRow};
use mse_model::{AnnotationLines, Diagnostic, Kind, ObjectKey, Severity, Snapshot};
use serde::Serialize;

use crate::compile::{CompileOptions, compile, selected_ingresses};

/// The output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `file:line: severity: Kind ns/name: key: message [code]`, one per line, then totals.
    Human,
    /// One JSON document (schema `mse-lint/v1`, documented in `docs/lint.md`).
    Json,
    /// GitHub Actions workflow commands (`::error file=...,line=...::...`).
    Github,
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "human" => Ok(Format::Human),
            "json" => Ok(Format::Json),
            "github" => Ok(Format::Github),
            other => Err(format!(
                "unknown format {other:?}: use human, json or github"
            )),
        }
    }
}

/// How to render a [`LintReport`].
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct RenderOptions {
    /// The format.
    pub format: Format,
    /// Whether to add the migration report.
    pub summary: bool,
    /// Diagnostics below this severity are not shown (they still count).
    pub min_severity: Severity,
}

impl RenderOptions {
    /// Every diagnostic, no migration report.
    pub fn new(format: Format) -> Self {
        Self {
            format,
            summary: false,
            min_severity: Severity::Info,
        }
    }

    /// Adds (or not) the migration report.
    #[must_use]
    pub fn with_summary(mut self, summary: bool) -> Self {
        self.summary = summary;
        self
    }

    /// Hides diagnostics below `severity`.
    #[must_use]
    pub fn with_min_severity(mut self, severity: Severity) -> Self {
        self.min_severity = severity;
        self
    }
}

/// What linting found.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct LintReport {
    /// Every diagnostic, ordered by file and line (those without a file last), each at the
    /// line of its annotation when it is about one.
    pub diagnostics: Vec<Diagnostic>,
    /// Ingresses in the input.
    pub ingresses: usize,
    /// Ingresses this gateway would serve (selected by class), and so linted in full.
    pub linted: usize,
    /// Every annotation of every Ingress in the input, classified.
    pub migration: Migration,
}

/// Lints a snapshot: compiles it as the gateway would and collects every diagnostic.
///
/// One difference from the gateway: when the input holds no EndpointSlice and no
/// Endpoints (manifests from a repository, where Kubernetes has not created them yet),
/// `no-endpoints` warnings are left out, since they say nothing about the manifests.
///
/// `lines` maps each file name (as in [`mse_model::SourceRef::file`]) to the annotation
/// lines of its text; diagnostics about an annotation are moved to that annotation's line.
/// Files missing from the map keep the object's line.
pub fn lint(
    snapshot: &Snapshot,
    options: &CompileOptions,
    lines: &BTreeMap<Arc<str>, AnnotationLines>,
) -> LintReport {
    let table = compile(snapshot, options);
    // Manifests from a repository have no EndpointSlices (Kubernetes creates them): then
    // "no ready endpoints" says nothing about the manifests and is left out.
    let static_manifests = snapshot.endpoint_slices.is_empty() && snapshot.endpoints.is_empty();
    let mut diagnostics: Vec<Diagnostic> = snapshot
        .diagnostics
        .iter()
        .chain(table.diagnostics())
        .filter(|d| !(static_manifests && d.code == "no-endpoints"))
        .cloned()
        .collect();
    let selected: BTreeSet<ObjectKey> = selected_ingresses(snapshot, options).into_iter().collect();
    let mut other_classes: BTreeMap<String, usize> = BTreeMap::new();
    let mut migration = Migration::new();
    for s in &snapshot.ingresses {
        let meta = &s.object.metadata;
        if let Some(a) = meta.annotations.as_ref() {
            migration.add(a);
        }
        if !selected.contains(&ObjectKey::of(Kind::Ingress, meta)) {
            let class = meta
                .annotations
                .as_ref()
                .and_then(|a| a.get(mse_annotations::INGRESS_CLASS))
                .map(|c| c.trim().to_owned())
                .or_else(|| {
                    s.object
                        .spec
                        .as_ref()
                        .and_then(|sp| sp.ingress_class_name.clone())
                });
            if let Some(c) = class {
                *other_classes.entry(c).or_default() += 1;
            }
        }
    }
    if !other_classes.is_empty() {
        let n: usize = other_classes.values().sum();
        let list: Vec<String> = other_classes
            .iter()
            .map(|(c, n)| format!("{c}: {n}"))
            .collect();
        let first = other_classes.keys().next().map_or("", String::as_str);
        diagnostics.push(Diagnostic::warning(
            "ingresses-not-selected",
            format!(
                "{n} of {} Ingresses name another ingress class ({}) and were not linted in full; run with --ingress-class {first} to lint them as this gateway would serve that class",
                snapshot.ingresses.len(),
                list.join(", ")
            ),
        ));
    }
    locate_annotations(&mut diagnostics, lines);
    diagnostics.sort_by(|a, b| {
        let ka = a.origin.source.as_ref().map(|s| (&s.file, s.line));
        let kb = b.origin.source.as_ref().map(|s| (&s.file, s.line));
        match (ka, kb) {
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        }
    });
    LintReport {
        diagnostics,
        ingresses: snapshot.ingresses.len(),
        linted: selected.len(),
        migration,
    }
}

/// Diagnostics about a field whose line the scan does not know, placed at an annotation
/// that says the same thing instead of at the object's first line: a canary path that
/// pairs with nothing is there because of the `canary` annotation.
const AT_ANNOTATION: &[(&str, &str)] = &[
    ("canary-without-main", "canary"),
    ("canary-main-closed", "canary"),
];

/// Moves each diagnostic about an annotation to the annotation's own line, when the scan
/// of its file found it; diagnostics that concern an annotation without naming it (a
/// canary without its main Ingress) go to that annotation's line.
pub fn locate_annotations(
    diagnostics: &mut [Diagnostic],
    lines: &BTreeMap<Arc<str>, AnnotationLines>,
) {
    for d in diagnostics {
        let Some(src) = d.origin.source.as_mut() else {
            continue;
        };
        let Some(file_lines) = lines.get(&src.file) else {
            continue;
        };
        let own = d
            .origin
            .key
            .as_deref()
            .and_then(|key| file_lines.line(src.line, key));
        let line = own.or_else(|| {
            let (_, name) = AT_ANNOTATION.iter().find(|(code, _)| *code == d.code)?;
            annotation_line(file_lines, src.line, name)
        });
        if let Some(line) = line {
            src.line = line;
        }
    }
}

/// The line of annotation `name` (under any prefix) of the object at `object_line`.
fn annotation_line(lines: &AnnotationLines, object_line: u32, name: &str) -> Option<u32> {
    lines
        .keys(object_line)
        .find(|(key, _)| mse_annotations::split_key(key).is_some_and(|(_, n)| n == name))
        .map(|(_, line)| line)
}

// === impl LintReport ===

impl LintReport {
    /// How many diagnostics have this severity.
    pub fn count(&self, severity: Severity) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == severity)
            .count()
    }

    /// The process exit code: 1 when there is an error (or, with `strict`, a warning),
    /// else 0.
    pub fn exit_code(&self, strict: bool) -> u8 {
        let errors = self.count(Severity::Error) > 0;
        let warnings = self.count(Severity::Warning) > 0;
        u8::from(errors || (strict && warnings))
    }

    /// Renders the report.
    pub fn render(&self, options: &RenderOptions) -> String {
        let shown = self
            .diagnostics
            .iter()
            .filter(|d| d.severity >= options.min_severity);
        match options.format {
            Format::Human => self.human(shown, options.summary),
            Format::Json => self.json(shown, options.summary),
            Format::Github => self.github(shown, options.summary),
        }
    }

    fn totals_line(&self) -> String {
        let plural =
            |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        format!(
            "{} linted ({} in the input): {}, {}, {}",
            plural(self.linted, "Ingress", "Ingresses"),
            self.ingresses,
            plural(self.count(Severity::Error), "error", "errors"),
            plural(self.count(Severity::Warning), "warning", "warnings"),
            plural(self.count(Severity::Info), "note", "notes"),
        )
    }

    fn human<'d>(&self, shown: impl Iterator<Item = &'d Diagnostic>, summary: bool) -> String {
        let mut out = String::new();
        for d in shown {
            let _ = writeln!(out, "{d}");
        }
        if !out.is_empty() {
            out.push('\n');
        }
        let _ = writeln!(out, "{}", self.totals_line());
        if summary {
            let _ = writeln!(out);
            out.push_str(&self.migration.render_markdown());
        }
        out
    }

    fn github<'d>(&self, shown: impl Iterator<Item = &'d Diagnostic>, summary: bool) -> String {
        let mut out = String::new();
        for d in shown {
            let level = match d.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
                Severity::Info => "notice",
            };
            let mut props = Vec::new();
            if let Some(s) = &d.origin.source {
                props.push(format!("file={}", escape_property(&s.file)));
                props.push(format!("line={}", s.line));
            }
            props.push(format!(
                "title={}",
                escape_property(&format!("mse-lint {}", d.code))
            ));
            let mut msg = String::new();
            if let Some(o) = &d.origin.object {
                let _ = write!(msg, "{o}: ");
            }
            if let Some(k) = &d.origin.key {
                let _ = write!(msg, "{k}: ");
            }
            msg.push_str(&d.message);
            if let Some(v) = &d.value {
                let _ = write!(msg, " (value {v:?})");
            }
            let _ = writeln!(out, "::{level} {}::{}", props.join(","), escape_data(&msg));
        }
        let _ = writeln!(out, "{}", self.totals_line());
        if summary {
            let _ = writeln!(out);
            out.push_str(&self.migration.render_markdown());
        }
        out
    }

    fn json<'d>(&self, shown: impl Iterator<Item = &'d Diagnostic>, summary: bool) -> String {
        #[derive(Serialize)]
        struct Counts {
            error: usize,
            warning: usize,
            info: usize,
        }
        #[derive(Serialize)]
        struct Ingresses {
            input: usize,
            linted: usize,
        }
        #[derive(Serialize)]
        struct JsonDiagnostic<'a> {
            severity: Severity,
            code: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            file: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            line: Option<u32>,
            #[serde(skip_serializing_if = "Option::is_none")]
            kind: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            namespace: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            name: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            key: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            value: Option<&'a str>,
            message: &'a str,
        }
        #[derive(Serialize)]
        struct JsonMigration<'a> {
            ingresses: usize,
            totals: BTreeMap<Class, ClassTotal>,
            annotations: Vec<&'a MigrationRow>,
        }
        #[derive(Serialize)]
        struct Doc<'a> {
            schema: &'static str,
            counts: Counts,
            ingresses: Ingresses,
            diagnostics: Vec<JsonDiagnostic<'a>>,
            #[serde(skip_serializing_if = "Option::is_none")]
            migration: Option<JsonMigration<'a>>,
        }
        let doc = Doc {
            schema: "mse-lint/v1",
            counts: Counts {
                error: self.count(Severity::Error),
                warning: self.count(Severity::Warning),
                info: self.count(Severity::Info),
            },
            ingresses: Ingresses {
                input: self.ingresses,
                linted: self.linted,
            },
            diagnostics: shown
                .map(|d| JsonDiagnostic {
                    severity: d.severity,
                    code: d.code,
                    file: d.origin.source.as_ref().map(|s| &*s.file),
                    line: d.origin.source.as_ref().map(|s| s.line),
                    kind: d.origin.object.as_ref().map(|o| o.kind.as_str()),
                    namespace: d
                        .origin
                        .object
                        .as_ref()
                        .map(|o| &*o.namespace)
                        .filter(|n| !n.is_empty()),
                    name: d.origin.object.as_ref().map(|o| &*o.name),
                    key: d.origin.key.as_deref(),
                    value: d.value.as_deref(),
                    message: &d.message,
                })
                .collect(),
            migration: summary.then(|| JsonMigration {
                ingresses: self.migration.ingress_count(),
                totals: self.migration.totals(),
                annotations: self.migration.rows(),
            }),
        };
        let mut text = serde_json::to_string_pretty(&doc).unwrap_or_else(|e| {
            format!(
                "{{\"schema\":\"mse-lint/v1\",\"error\":{:?}}}",
                e.to_string()
            )
        });
        text.push('\n');
        text
    }
}

/// Escapes the message of a workflow command.
fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a property value of a workflow command.
fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflow_command_values_are_escaped() {
        assert_eq!(escape_data("50%\nnext"), "50%25%0Anext");
        assert_eq!(escape_property("a:b,c"), "a%3Ab%2Cc");
    }

    #[test]
    fn a_canary_without_a_main_ingress_is_placed_at_its_canary_annotation() {
        let yaml = "apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: search-canary
  annotations:
    nginx.ingress.kubernetes.io/canary-weight: \"20\"
    nginx.ingress.kubernetes.io/canary: \"true\"
spec:
  ingressClassName: mse
  rules:
  - host: shop.example.com
    http:
      paths:
      - { path: /search, pathType: Prefix, backend: { service: { name: v2, port: { number: 80 } } } }
";
        let mut snapshot = Snapshot::default();
        snapshot.extend(mse_model::load_manifests(yaml, Some("c.yaml")).objects);
        let lines = BTreeMap::from([("c.yaml".into(), AnnotationLines::scan(yaml))]);
        let report = lint(&snapshot, &CompileOptions::default(), &lines);
        let d = report
            .diagnostics
            .iter()
            .find(|d| d.code == "canary-without-main")
            .expect("the canary is reported");
        assert_eq!(d.origin.source.as_ref().map(|s| s.line), Some(7));
        // The key still names the path that pairs with nothing.
        assert_eq!(d.origin.key.as_deref(), Some("spec.rules[0].http.paths[0]"));
    }

    #[test]
    fn formats_parse_from_their_names() {
        assert_eq!("github".parse::<Format>(), Ok(Format::Github));
        assert!("xml".parse::<Format>().is_err());
    }
}
