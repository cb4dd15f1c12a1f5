//! The parse context: the annotations of one Ingress by key name, which of them have been
//! read, and the diagnostics found so far.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Display;

use mse_model::{Diagnostic, ObjectKey, Severity, SourceRef};

use crate::keys::{self, Support};
use crate::parse::{FailClosed, ParseOptions};
use crate::value::ValueError;
use crate::{PREFIXES, RESERVED_PREFIXES, UNREAD_PREFIXES};

/// One annotation under one of our prefixes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry<'a> {
    /// The full key.
    pub(crate) key: &'a str,
    /// The value, trimmed.
    pub(crate) value: &'a str,
}

/// The result of reading a security key.
pub(crate) enum Secure<T> {
    /// No prefix carries the key.
    Absent,
    /// The first valid value.
    Valid(T),
    /// Present, but no value is valid: the Ingress fails closed (already recorded).
    Invalid,
}

/// The parse context of one Ingress.
pub(crate) struct Cx<'a> {
    object: &'a ObjectKey,
    source: Option<&'a SourceRef>,
    /// Key name (prefix removed) -> its entries in prefix precedence order.
    entries: BTreeMap<&'a str, Vec<Entry<'a>>>,
    /// Keys outside our prefixes that still deserve a word (reserved, unread prefixes).
    foreign: Vec<(&'a str, &'a str)>,
    /// Names read by some family.
    consumed: BTreeSet<&'a str>,
    pub(crate) options: &'a ParseOptions,
    pub(crate) diagnostics: Vec<Diagnostic>,
    pub(crate) fail_closed: Vec<FailClosed>,
}

impl<'a> Cx<'a> {
    pub(crate) fn new(
        object: &'a ObjectKey,
        source: Option<&'a SourceRef>,
        annotations: &'a BTreeMap<String, String>,
        options: &'a ParseOptions,
    ) -> Self {
        let mut entries: BTreeMap<&str, Vec<(usize, Entry<'_>)>> = BTreeMap::new();
        let mut foreign = Vec::new();
        for (k, v) in annotations {
            let found = PREFIXES
                .iter()
                .enumerate()
                .find_map(|(i, p)| k.strip_prefix(p).map(|name| (i, name)));
            match found {
                Some((i, name)) => entries.entry(name).or_default().push((
                    i,
                    Entry {
                        key: k,
                        value: v.trim(),
                    },
                )),
                None => {
                    if RESERVED_PREFIXES
                        .iter()
                        .chain(UNREAD_PREFIXES.iter())
                        .any(|p| k.starts_with(p))
                    {
                        foreign.push((k.as_str(), v.as_str()));
                    }
                }
            }
        }
        let entries = entries
            .into_iter()
            .map(|(name, mut list)| {
                list.sort_by_key(|(i, _)| *i);
                (name, list.into_iter().map(|(_, e)| e).collect())
            })
            .collect();
        Self {
            object,
            source,
            entries,
            foreign,
            consumed: BTreeSet::new(),
            options,
            diagnostics: Vec::new(),
            fail_closed: Vec::new(),
        }
    }

    /// The Ingress's namespace.
    pub(crate) fn namespace(&self) -> &str {
        &self.object.namespace
    }

    /// The entries for `name` (marking it read), highest precedence first.
    pub(crate) fn entries(&mut self, name: &str) -> Vec<Entry<'a>> {
        match self.entries.get_key_value(name) {
            Some((k, list)) => {
                self.consumed.insert(k);
                list.clone()
            }
            None => Vec::new(),
        }
    }

    /// Whether any prefix carries `name`; marks it read.
    pub(crate) fn has(&mut self, name: &str) -> bool {
        !self.entries(name).is_empty()
    }

    /// The names (prefix removed) that start with `prefix` and continue, in order; marks
    /// them read.
    pub(crate) fn family(&mut self, prefix: &str) -> Vec<&'a str> {
        let names: Vec<&'a str> = self
            .entries
            .range::<str, _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .map(|(k, _)| *k)
            .take_while(|k| k.starts_with(prefix))
            .filter(|k| k.len() > prefix.len())
            .collect();
        self.consumed.extend(names.iter().copied());
        names
    }

    /// Adds the object and file to a diagnostic about `key` and records it.
    pub(crate) fn report(&mut self, d: Diagnostic, key: &str, value: Option<&str>) {
        let mut d = d
            .object(self.object.clone())
            .source(self.source.cloned())
            .key(key);
        if let Some(v) = value {
            d = d.value(v);
        }
        self.diagnostics.push(d);
    }

    /// Warns on every entry of `name` that it was ignored, and why.
    pub(crate) fn ignored(&mut self, name: &str, why: impl Display) {
        for e in self.entries(name) {
            self.report(
                Diagnostic::warning("ignored-annotation", format!("has no effect: {why}")),
                e.key,
                Some(e.value),
            );
        }
    }

    /// Warns about one dropped entry of a list value.
    pub(crate) fn dropped(&mut self, e: Entry<'a>, item: &str, err: &ValueError) {
        self.report(
            Diagnostic::warning(
                "ignored-entry",
                format!("entry {item:?} is dropped: {err}; the other entries apply"),
            ),
            e.key,
            Some(e.value),
        );
    }

    /// Whether a key under any prefix of `name` already made the Ingress fail closed.
    pub(crate) fn has_failed(&self, name: &str) -> bool {
        self.entries.get(name).is_some_and(|list| {
            list.iter()
                .any(|e| self.fail_closed.iter().any(|f| f.key == e.key))
        })
    }

    /// Records that a security key makes the Ingress fail closed.
    pub(crate) fn fail(&mut self, key: &str, reason: impl Into<String>) {
        self.fail_closed.push(FailClosed {
            key: key.to_owned(),
            reason: reason.into(),
        });
    }

    /// Reads a key that is not security-relevant: the first valid value in prefix order.
    /// Every invalid value is a warning naming what applies instead (another prefix's
    /// value, else the default); a valid value under a lower prefix that differs from the
    /// winner is a warning too.
    pub(crate) fn get<T>(
        &mut self,
        name: &str,
        parse: impl Fn(&str) -> Result<T, ValueError>,
    ) -> Option<T> {
        let entries = self.entries(name);
        if entries.is_empty() {
            return None;
        }
        let results: Vec<Result<T, ValueError>> = entries.iter().map(|e| parse(e.value)).collect();
        let winner = results.iter().position(Result::is_ok);
        let fallback = match winner {
            Some(w) => format!("the value of {} applies", entries[w].key),
            None => default_text(name),
        };
        self.settle(&entries, &results, winner, Severity::Warning, &fallback);
        let w = winner?;
        results.into_iter().nth(w).and_then(Result::ok)
    }

    /// Reads a security key: like [`Cx::get`], but when no value is valid the Ingress fails
    /// closed with an error.
    pub(crate) fn get_secure<T>(
        &mut self,
        name: &str,
        parse: impl Fn(&str) -> Result<T, ValueError>,
    ) -> Secure<T> {
        let entries = self.entries(name);
        if entries.is_empty() {
            return Secure::Absent;
        }
        let results: Vec<Result<T, ValueError>> = entries.iter().map(|e| parse(e.value)).collect();
        let winner = results.iter().position(Result::is_ok);
        match winner {
            Some(w) => {
                let fallback = format!("the value of {} applies", entries[w].key);
                self.settle(&entries, &results, winner, Severity::Warning, &fallback);
                match results.into_iter().nth(w) {
                    Some(Ok(v)) => Secure::Valid(v),
                    _ => Secure::Invalid,
                }
            }
            None => {
                self.settle(&entries, &results, None, Severity::Error, FAIL_CLOSED);
                self.fail(
                    entries[0].key,
                    format!("{} has an invalid value", entries[0].key),
                );
                Secure::Invalid
            }
        }
    }

    /// Reads a list value (entries split by `split`): the first value with at least one
    /// valid entry wins; invalid entries of a value that is used are dropped with a warning
    /// each, and a value without any valid entry is invalid as a whole.
    pub(crate) fn get_list<T>(
        &mut self,
        name: &str,
        split: fn(&str) -> Vec<&str>,
        item: impl Fn(&str) -> Result<T, ValueError>,
    ) -> Option<Vec<T>> {
        let entries = self.entries(name);
        if entries.is_empty() {
            return None;
        }
        let mut parsed: Vec<(Vec<T>, Vec<(&'a str, ValueError)>)> = Vec::new();
        for e in &entries {
            let mut good = Vec::new();
            let mut bad = Vec::new();
            for p in split(e.value) {
                match item(p) {
                    Ok(v) => good.push(v),
                    Err(err) => bad.push((p, err)),
                }
            }
            parsed.push((good, bad));
        }
        let winner = parsed.iter().position(|(good, _)| !good.is_empty());
        let fallback = match winner {
            Some(w) => format!("the value of {} applies", entries[w].key),
            None => default_text(name),
        };
        for (i, (e, (good, bad))) in entries.iter().zip(&parsed).enumerate() {
            if good.is_empty() {
                let why = match bad.as_slice() {
                    [] => ValueError::Empty.to_string(),
                    [(_, err)] => err.to_string(),
                    [(p, err), ..] => format!("no entry is valid ({p:?}: {err})"),
                };
                self.report(
                    Diagnostic::warning("invalid-value", format!("{why}; {fallback}")),
                    e.key,
                    Some(e.value),
                );
                continue;
            }
            for (p, err) in bad {
                self.dropped(*e, p, err);
            }
            self.shadowed(&entries, i, winner);
        }
        let w = winner?;
        parsed.into_iter().nth(w).map(|(good, _)| good)
    }

    /// Reports invalid values and shadowed valid ones for one key.
    fn settle<T>(
        &mut self,
        entries: &[Entry<'a>],
        results: &[Result<T, ValueError>],
        winner: Option<usize>,
        severity: Severity,
        fallback: &str,
    ) {
        for (i, (e, r)) in entries.iter().zip(results).enumerate() {
            match r {
                Err(err) => self.report(
                    Diagnostic::new(severity, "invalid-value", format!("{err}; {fallback}")),
                    e.key,
                    Some(e.value),
                ),
                Ok(_) => self.shadowed(entries, i, winner),
            }
        }
    }

    /// A valid value at `entries[i]` that loses to the one at `winner` (a prefix of higher
    /// precedence) is reported, unless both say the same.
    fn shadowed(&mut self, entries: &[Entry<'a>], i: usize, winner: Option<usize>) {
        if let Some(w) = winner
            && i > w
            && entries[w].value != entries[i].value
        {
            let wk = entries[w].key;
            self.report(
                Diagnostic::warning(
                    "shadowed-annotation",
                    format!("also set under {wk}, which takes precedence; this value is not used"),
                ),
                entries[i].key,
                Some(entries[i].value),
            );
        }
    }

    /// Reports every key nobody read: registry keys by their support status, the rest as
    /// unknown with a suggestion; then the keys of reserved and unread prefixes; and an
    /// informational note for each supported key whose semantics differ from
    /// ingress-nginx.
    pub(crate) fn finish(&mut self) {
        let names: Vec<&'a str> = self.entries.keys().copied().collect();
        for name in names {
            let entries = self.entries.get(name).cloned().unwrap_or_default();
            let Some(first) = entries.first().copied() else {
                continue;
            };
            let spec = keys::spec(name);
            if self.consumed.contains(name) {
                // One note per key, unless the key already has a diagnostic of its own.
                let mentioned = self.diagnostics.iter().any(|d| {
                    d.origin
                        .key
                        .as_deref()
                        .is_some_and(|k| entries.iter().any(|e| e.key == k))
                });
                if !mentioned
                    && let Some(k) = spec
                    && let Support::Different(note) = k.support
                {
                    self.report(
                        Diagnostic::info(
                            "different-semantics",
                            format!("supported, but unlike ingress-nginx: {note}"),
                        ),
                        first.key,
                        None,
                    );
                }
                continue;
            }
            for e in entries {
                let d = match spec.map(|k| (k.support, k.security)) {
                    Some((Support::NoEffect(why), _)) => {
                        Diagnostic::info("no-effect", format!("accepted without effect: {why}"))
                    }
                    Some((Support::Unsupported(why), true)) => {
                        self.fail(e.key, format!("{} is not supported", e.key));
                        Diagnostic::error("unsupported-annotation", format!("not supported: {why}"))
                    }
                    Some((Support::Unsupported(why), false)) => Diagnostic::warning(
                        "unsupported-annotation",
                        format!("not supported: {why}"),
                    ),
                    Some((Support::Refused(why), _)) => {
                        Diagnostic::error("refused-annotation", format!("refused: {why}"))
                    }
                    // A supported key no family read: a registry/family mismatch, caught by
                    // tests; say something useful rather than nothing.
                    Some((Support::Supported | Support::Different(_), _)) => Diagnostic::warning(
                        "unsupported-annotation",
                        "recognised but not read by this version; it has no effect",
                    ),
                    None => {
                        let hint = match keys::suggest(name) {
                            Some(s) => {
                                let prefix = &e.key[..e.key.len() - name.len()];
                                format!("; did you mean {prefix}{s}?")
                            }
                            None => "; see docs/annotations.md for the supported keys".to_owned(),
                        };
                        Diagnostic::warning(
                            "unknown-annotation",
                            format!("unknown annotation, ignored{hint}"),
                        )
                    }
                };
                let value = (!e.value.is_empty()).then_some(e.value);
                // Snippet bodies can be long: keep the diagnostic readable.
                let value = value.map(|v| clip(v, 80));
                self.report(d, e.key, value.as_deref());
            }
        }
        for (k, v) in std::mem::take(&mut self.foreign) {
            let d = if RESERVED_PREFIXES.iter().any(|p| k.starts_with(p)) {
                Diagnostic::warning(
                    "reserved-annotation",
                    "internal.* annotations are set by the gateway itself; this one is ignored",
                )
            } else {
                let name = k.split_once('/').map_or(k, |(_, n)| n);
                Diagnostic::warning(
                    "unread-prefix",
                    format!(
                        "annotations under this prefix are not read; write it as higress.io/{name} or nginx.ingress.kubernetes.io/{name}"
                    ),
                )
            };
            self.report(d, k, Some(&clip(v, 80)));
        }
    }
}

const FAIL_CLOSED: &str =
    "security annotations fail closed: the routes of this Ingress answer 503 until it is fixed";

/// What applies when a key has no valid value.
fn default_text(name: &str) -> String {
    match keys::spec(name).map(|k| k.default) {
        Some(d) if !d.is_empty() => format!("the default ({d}) applies"),
        _ => "the annotation is ignored".to_owned(),
    }
}

/// At most `max` characters, with `...` when cut.
pub(crate) fn clip(v: &str, max: usize) -> String {
    match v.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &v[..i]),
        None => v.to_owned(),
    }
}
