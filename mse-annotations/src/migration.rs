//! The migration report: every annotation found across a set of Ingresses, classified by
//! how the gateway treats it, so that an ingress-nginx user knows before switching.

use std::collections::BTreeMap;
use std::fmt::{self, Write};

use serde::Serialize;

use crate::keys::{self, Support};
use crate::prefix::split_key;

/// How the gateway treats an annotation, seen from an ingress-nginx user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Class {
    /// Honoured as in ingress-nginx (or as documented, for extensions).
    Supported,
    /// Honoured, with different semantics.
    Different,
    /// Accepted and ignored (NGINX tuning, or a feature that is not available).
    NoEffect,
    /// Refused with an error (snippets).
    Refused,
    /// Not a known key.
    Unknown,
}

impl Class {
    /// Every class, in report order.
    pub const ALL: [Class; 5] = [
        Class::Supported,
        Class::Different,
        Class::NoEffect,
        Class::Refused,
        Class::Unknown,
    ];

    /// The label used in reports.
    pub fn label(self) -> &'static str {
        match self {
            Class::Supported => "supported",
            Class::Different => "supported, different semantics",
            Class::NoEffect => "accepted without effect",
            Class::Refused => "refused",
            Class::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// The class of a key name (without prefix) and a note on it.
pub fn classify(name: &str) -> (Class, &'static str) {
    match keys::spec(name).map(|k| k.support) {
        Some(Support::Supported) => (Class::Supported, ""),
        Some(Support::Different(n)) => (Class::Different, n),
        Some(Support::NoEffect(n) | Support::Unsupported(n)) => (Class::NoEffect, n),
        Some(Support::Refused(n)) => (Class::Refused, n),
        None => (Class::Unknown, ""),
    }
}

/// One annotation key (without prefix) and how often it was found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MigrationRow {
    /// The key without prefix.
    pub key: String,
    /// Its class.
    pub class: Class,
    /// Why, for the classes that are not plain "supported".
    #[serde(skip_serializing_if = "str::is_empty")]
    pub note: &'static str,
    /// In how many Ingresses it was found (under any prefix).
    pub ingresses: usize,
}

/// Counts of one class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ClassTotal {
    /// Distinct keys.
    pub keys: usize,
    /// Uses: Ingress and key pairs.
    pub uses: usize,
}

/// The migration report being built: add each Ingress's annotations, then read the rows.
#[derive(Clone, Debug, Default)]
pub struct Migration {
    rows: BTreeMap<String, MigrationRow>,
    ingresses: usize,
}

impl Migration {
    /// An empty report.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one Ingress's annotations. Keys outside the three prefixes are not counted.
    pub fn add(&mut self, annotations: &BTreeMap<String, String>) {
        self.ingresses += 1;
        let mut names: Vec<&str> = annotations
            .keys()
            .filter_map(|k| split_key(k).map(|(_, n)| n))
            .collect();
        names.sort_unstable();
        names.dedup();
        for name in names {
            let row = self.rows.entry(name.to_owned()).or_insert_with(|| {
                let (class, note) = classify(name);
                MigrationRow {
                    key: name.to_owned(),
                    class,
                    note,
                    ingresses: 0,
                }
            });
            row.ingresses += 1;
        }
    }

    /// How many Ingresses were added.
    pub fn ingress_count(&self) -> usize {
        self.ingresses
    }

    /// Every key found, by class then key.
    pub fn rows(&self) -> Vec<&MigrationRow> {
        let mut rows: Vec<&MigrationRow> = self.rows.values().collect();
        rows.sort_by(|a, b| a.class.cmp(&b.class).then_with(|| a.key.cmp(&b.key)));
        rows
    }

    /// Totals per class (every class present, zero included).
    pub fn totals(&self) -> BTreeMap<Class, ClassTotal> {
        let mut out: BTreeMap<Class, ClassTotal> = Class::ALL
            .iter()
            .map(|c| (*c, ClassTotal::default()))
            .collect();
        for r in self.rows.values() {
            let t = out.entry(r.class).or_default();
            t.keys += 1;
            t.uses += r.ingresses;
        }
        out
    }

    /// The report as a Markdown table (readable as plain text too), totals first.
    pub fn render_markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Migration report: {} annotation keys in {} Ingresses",
            self.rows.len(),
            self.ingresses
        );
        let _ = writeln!(out);
        let _ = writeln!(out, "| class | keys | uses |");
        let _ = writeln!(out, "|---|---:|---:|");
        for (c, t) in self.totals() {
            let _ = writeln!(out, "| {c} | {} | {} |", t.keys, t.uses);
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "| annotation | class | Ingresses | note |");
        let _ = writeln!(out, "|---|---|---:|---|");
        for r in self.rows() {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                r.key,
                r.class,
                r.ingresses,
                r.note.replace('|', "\\|")
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_classified_and_counted_once_per_ingress() {
        let mut m = Migration::new();
        let a: BTreeMap<String, String> = [
            ("nginx.ingress.kubernetes.io/rewrite-target", "/"),
            ("higress.io/rewrite-target", "/"),
            ("nginx.ingress.kubernetes.io/proxy-buffering", "on"),
            ("nginx.ingress.kubernetes.io/server-snippet", "x"),
            ("nginx.ingress.kubernetes.io/ssl-redirect", "true"),
            ("nginx.ingress.kubernetes.io/made-up", "1"),
            ("kubernetes.io/ingress.class", "mse"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        m.add(&a);
        m.add(&a);
        let rows: Vec<(&str, Class, usize)> = m
            .rows()
            .iter()
            .map(|r| (r.key.as_str(), r.class, r.ingresses))
            .collect();
        assert_eq!(
            rows,
            [
                ("ssl-redirect", Class::Supported, 2),
                ("rewrite-target", Class::Different, 2),
                ("proxy-buffering", Class::NoEffect, 2),
                ("server-snippet", Class::Refused, 2),
                ("made-up", Class::Unknown, 2),
            ]
        );
        assert_eq!(m.totals()[&Class::Refused], ClassTotal { keys: 1, uses: 2 });
        assert!(
            m.render_markdown()
                .contains("| server-snippet | refused | 2 |")
        );
    }
}
