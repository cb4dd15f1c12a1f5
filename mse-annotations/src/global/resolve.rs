//! [`parse_global`]: the sources in, one [`GlobalConfig`] and every diagnostic out.

use std::cmp::Reverse;
use std::collections::BTreeMap;

use mse_model::{Diagnostic, MseIngressConfigSpec, ObjectKey, SourceRef};
use serde_json::Value;

use super::config::Origin;
use super::{
    GLOBAL_KEYS, GlobalConfig, GlobalKey, Layer, Reject, Setting, Status, global_key,
    suggest_global,
};
use crate::Parsed;

/// The name of Higress's global ConfigMap, read from the namespace of `--configmap`.
pub const HIGRESS_CONFIG: &str = "higress-config";
/// The data key of [`HIGRESS_CONFIG`] that holds its YAML.
pub const HIGRESS_KEY: &str = "higress";

/// One document of a source: the object (for diagnostics) and what it holds.
#[derive(Clone, Copy, Debug)]
pub struct Doc<'a, T> {
    /// The object.
    pub object: &'a ObjectKey,
    /// Where it was read from, in file mode.
    pub source: Option<&'a SourceRef>,
    /// Its data.
    pub data: T,
}

/// Every source of the global configuration, as found (see [`Layer`]).
#[derive(Clone, Copy, Debug)]
pub struct GlobalSources<'a> {
    /// The ConfigMap named by `--configmap`: its `data`.
    pub configmap: Option<Doc<'a, &'a BTreeMap<String, String>>>,
    /// The `higress` key of the `higress-config` ConfigMap: YAML text.
    pub higress: Option<Doc<'a, &'a str>>,
    /// The `MseIngressConfig` linked from the gateway's IngressClass: its `spec`.
    pub mse: Option<Doc<'a, &'a MseIngressConfigSpec>>,
    /// The flags given explicitly.
    pub flags: &'a GlobalFlags,
}

impl<'a> GlobalSources<'a> {
    /// No document, only `flags`.
    pub fn new(flags: &'a GlobalFlags) -> Self {
        Self {
            configmap: None,
            higress: None,
            mse: None,
            flags,
        }
    }
}

/// Command-line flags that were given explicitly and have a global equivalent (the
/// [`Layer::Flag`] keys of [`GLOBAL_KEYS`]), with their values as text. A flag left at its
/// default is not listed: the built-in default stands for it, and documents override it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GlobalFlags {
    given: Vec<(String, String)>,
}

impl GlobalFlags {
    /// Records that `flag` (`--access-log`) was given with `value`.
    pub fn set(&mut self, flag: impl Into<String>, value: impl Into<String>) {
        self.given.push((flag.into(), value.into()));
    }

    /// [`Self::set`], by value.
    #[must_use]
    pub fn with(mut self, flag: impl Into<String>, value: impl Into<String>) -> Self {
        self.set(flag, value);
        self
    }

    /// Whether no flag is recorded.
    pub fn is_empty(&self) -> bool {
        self.given.is_empty()
    }
}

/// One value found for a key.
struct Candidate<'a> {
    entry: &'static GlobalKey,
    /// The key as diagnostics show it.
    shown: String,
    value: String,
    object: Option<&'a ObjectKey>,
    source: Option<&'a SourceRef>,
    /// A value re-read from the previous configuration because its document could not be
    /// read this time: applied silently.
    kept: bool,
}

/// What a setting resolves to.
enum Winner {
    /// A value found this time.
    Found(usize),
    /// The previous configuration's value.
    Kept(Origin),
    /// The default.
    Default,
    /// An IP list with no valid value and no last good one: the gateway closes.
    Closed,
}

struct Resolver<'a> {
    candidates: Vec<Candidate<'a>>,
    /// Layers whose document could not be read: their previous values stay.
    unreadable: Vec<Layer>,
    diagnostics: Vec<Diagnostic>,
}

/// Reads every source into one [`GlobalConfig`] (see the [module docs](super)).
///
/// `previous` is the configuration in force (the previous route table's): a setting whose
/// winning value is bad keeps its value from there, and a `higress-config` whose YAML
/// cannot be read keeps every setting it had set. Without `previous` (the first compile),
/// a bad value falls back to the next layer's value, else the default. The IP lists are
/// the exception: with no valid value and no last good one the gateway answers 503 to
/// every request ([`super::AccessSettings::closed`]) rather than serving without them.
///
/// Never fails: every problem is a diagnostic naming the object, the key and the value.
pub fn parse_global(
    sources: &GlobalSources<'_>,
    previous: Option<&GlobalConfig>,
) -> Parsed<GlobalConfig> {
    let mut r = Resolver {
        candidates: Vec::new(),
        unreadable: Vec::new(),
        diagnostics: Vec::new(),
    };
    if let Some(cm) = &sources.configmap {
        let skip_higress = sources.higress.is_some_and(|h| h.object == cm.object);
        r.collect_configmap(cm, skip_higress);
    }
    if let Some(h) = &sources.higress {
        r.collect_higress(h);
    }
    if let Some(m) = &sources.mse {
        r.collect_mse(m);
    }
    for (flag, value) in &sources.flags.given {
        match global_key(Layer::Flag, flag) {
            Some(entry) => r.candidates.push(Candidate {
                entry,
                shown: flag.clone(),
                value: value.trim().to_owned(),
                object: None,
                source: None,
                kept: false,
            }),
            None => r.diagnostics.push(
                Diagnostic::warning(
                    "unknown-config-key",
                    "not a flag with a global-configuration equivalent; ignored",
                )
                .key(flag.as_str())
                .value(value.as_str()),
            ),
        }
    }
    if let Some(p) = previous {
        r.keep_unreadable(p);
    }
    r.resolve(previous)
}

// === impl Resolver ===

impl<'a> Resolver<'a> {
    fn collect_configmap(&mut self, cm: &Doc<'a, &'a BTreeMap<String, String>>, skip: bool) {
        for (k, v) in cm.data {
            if skip && k == HIGRESS_KEY {
                continue;
            }
            match global_key(Layer::ConfigMap, k) {
                Some(entry) => {
                    self.push(entry, k.clone(), v.trim().to_owned(), cm.object, cm.source)
                }
                None => self.unknown(Layer::ConfigMap, k, v, cm.object, cm.source),
            }
        }
    }

    fn collect_higress(&mut self, h: &Doc<'a, &'a str>) {
        match serde_yaml_ng::from_str::<Value>(h.data) {
            Ok(Value::Null) => {}
            Ok(tree @ Value::Object(_)) => {
                self.walk(Layer::HigressConfig, "", &tree, h.object, h.source)
            }
            Ok(_) => self.unreadable_doc(h, "is not a mapping of sections".to_owned()),
            Err(e) => self.unreadable_doc(h, format!("is not valid YAML: {e}")),
        }
    }

    fn unreadable_doc(&mut self, h: &Doc<'a, &'a str>, why: String) {
        self.unreadable.push(Layer::HigressConfig);
        self.diagnostics.push(
            Diagnostic::warning(
                "invalid-higress-config",
                format!("{why}; every setting it had set keeps its last good value"),
            )
            .object(h.object.clone())
            .source(h.source.cloned())
            .key(HIGRESS_KEY)
            .value(crate::cx::clip(h.data, 120)),
        );
    }

    fn collect_mse(&mut self, m: &Doc<'a, &'a MseIngressConfigSpec>) {
        for (path, part) in [
            ("spec.global", serde_json::to_value(&m.data.global)),
            ("spec.monitor", serde_json::to_value(&m.data.monitor)),
        ] {
            if let Ok(tree) = part {
                self.walk(Layer::MseIngressConfig, path, &tree, m.object, m.source);
            }
        }
    }

    /// Flattens a YAML or JSON tree into one candidate per registered key (a section
    /// takes its whole subtree), reporting paths the registry does not know.
    fn walk(
        &mut self,
        layer: Layer,
        path: &str,
        node: &Value,
        object: &'a ObjectKey,
        source: Option<&'a SourceRef>,
    ) {
        let entry = (!path.is_empty())
            .then(|| global_key(layer, path))
            .flatten();
        let shown = match layer {
            Layer::HigressConfig => format!("{HIGRESS_KEY}.{path}"),
            _ => path.to_owned(),
        };
        match (entry, node) {
            (_, Value::Null) => {}
            (_, Value::Array(items)) if items.is_empty() => {}
            (Some(e), _) if e.section => self.push(e, shown, node.to_string(), object, source),
            (Some(e), Value::Object(_)) => self.diagnostics.push(
                Diagnostic::warning(
                    "invalid-config-value",
                    format!("expected {}, found a mapping; the key is ignored", e.values),
                )
                .object(object.clone())
                .source(source.cloned())
                .key(shown)
                .value(node.to_string()),
            ),
            (Some(e), _) => self.push(e, shown, scalar_text(node), object, source),
            (None, Value::Object(map)) => {
                for (k, child) in map {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    self.walk(layer, &p, child, object, source);
                }
            }
            (None, _) => self.unknown(layer, &shown, &scalar_text(node), object, source),
        }
    }

    fn push(
        &mut self,
        entry: &'static GlobalKey,
        shown: String,
        value: String,
        object: &'a ObjectKey,
        source: Option<&'a SourceRef>,
    ) {
        self.candidates.push(Candidate {
            entry,
            shown,
            value,
            object: Some(object),
            source,
            kept: false,
        });
    }

    fn unknown(
        &mut self,
        layer: Layer,
        key: &str,
        value: &str,
        object: &ObjectKey,
        source: Option<&SourceRef>,
    ) {
        let lookup = match layer {
            Layer::HigressConfig => key.strip_prefix("higress.").unwrap_or(key),
            _ => key,
        };
        let d = match suggest_global(layer, lookup) {
            Some(s) => Diagnostic::warning(
                "unknown-config-key",
                format!("not a key this gateway reads; did you mean {s}?"),
            ),
            None if layer == Layer::ConfigMap => Diagnostic::info(
                "unknown-config-key",
                "not a key this gateway reads; it has no effect",
            ),
            None => Diagnostic::warning(
                "unknown-config-key",
                "not a key this gateway reads; it has no effect",
            ),
        };
        self.diagnostics.push(
            d.object(object.clone())
                .source(source.cloned())
                .key(key)
                .value(crate::cx::clip(value, 120)),
        );
    }

    /// The settings a document that could not be read had set, re-read from `previous`.
    fn keep_unreadable(&mut self, previous: &GlobalConfig) {
        for (_, origin) in previous.origins() {
            if !self.unreadable.contains(&origin.layer) {
                continue;
            }
            let Some(entry) = registry_entry(origin) else {
                continue;
            };
            self.candidates.push(Candidate {
                entry,
                shown: entry.display_key(),
                value: origin.value.clone(),
                object: None,
                source: None,
                kept: true,
            });
        }
    }

    fn resolve(mut self, previous: Option<&GlobalConfig>) -> Parsed<GlobalConfig> {
        let mut cfg = GlobalConfig::default();
        let candidates = std::mem::take(&mut self.candidates);
        let mut by_setting: BTreeMap<Setting, Vec<&Candidate<'_>>> = BTreeMap::new();
        for c in &candidates {
            match c.entry.setting {
                Some(s) => by_setting.entry(s).or_default().push(c),
                None => self.check_only(c),
            }
        }
        for (setting, mut list) in by_setting {
            // Strongest first; the order within a layer is the documents' own.
            list.sort_by_key(|c| Reverse(c.entry.layer));
            self.settle(setting, &list, &mut cfg, previous);
        }
        Parsed {
            value: cfg,
            diagnostics: self.diagnostics,
        }
    }

    /// A key that sets nothing: refused, no effect, or checked only.
    fn check_only(&mut self, c: &Candidate<'_>) {
        let result = (c.entry.set)(&mut GlobalConfig::default(), &c.value);
        let d = match (c.entry.status, result) {
            (Status::Refused(why), _) | (_, Err(Reject::Refused(why))) => {
                Diagnostic::error("refused-config-key", format!("refused: {why}"))
            }
            (_, Err(Reject::Invalid(e))) => {
                Diagnostic::warning("invalid-config-value", format!("{e}; the key is ignored"))
            }
            (Status::NoEffect(why), Ok(())) => Diagnostic::info("no-effect", why),
            (_, Ok(())) => return,
        };
        self.report(d, c);
    }

    /// Decides one setting from its values, strongest first, and reports each value that
    /// does not apply.
    fn settle(
        &mut self,
        setting: Setting,
        list: &[&Candidate<'_>],
        cfg: &mut GlobalConfig,
        previous: Option<&GlobalConfig>,
    ) {
        let mut scratch = GlobalConfig::default();
        let results: Vec<Result<(), Reject>> = list
            .iter()
            .map(|c| (c.entry.set)(&mut scratch, &c.value))
            .collect();
        let winner = match (results.first(), previous) {
            (Some(Ok(())), _) => Winner::Found(0),
            (_, Some(p)) => match p.origin(setting) {
                Some(o) => Winner::Kept(o.clone()),
                None if list[0].entry.security => Winner::Closed,
                None => Winner::Default,
            },
            (_, None) => match results.iter().position(Result::is_ok) {
                Some(i) => Winner::Found(i),
                None if list[0].entry.security => Winner::Closed,
                None => Winner::Default,
            },
        };
        let applies = self.apply(setting, &winner, list, cfg);
        for (i, (c, result)) in list.iter().zip(results).enumerate() {
            if c.kept {
                continue;
            }
            let d = match result {
                Ok(()) if matches!(winner, Winner::Found(w) if w == i) => match c.entry.status {
                    Status::NotApplied(why) => Diagnostic::warning(
                        "not-applied",
                        format!("valid, but this gateway build does not apply it yet: {why}"),
                    ),
                    _ => continue,
                },
                Ok(()) => {
                    Diagnostic::info("overridden-config-key", format!("overridden: {applies}"))
                }
                Err(Reject::Invalid(e)) => {
                    let d = format!("{e}; {applies}");
                    if matches!(winner, Winner::Closed) {
                        Diagnostic::error("invalid-config-value", d)
                    } else {
                        Diagnostic::warning("invalid-config-value", d)
                    }
                }
                Err(Reject::Refused(why)) => {
                    Diagnostic::error("refused-config-key", format!("refused: {why}"))
                }
            };
            self.report(d, c);
        }
    }

    /// Applies the winner to `cfg`; returns what applies, in words, for the diagnostics
    /// of the other values.
    fn apply(
        &mut self,
        setting: Setting,
        winner: &Winner,
        list: &[&Candidate<'_>],
        cfg: &mut GlobalConfig,
    ) -> String {
        match winner {
            Winner::Found(i) => {
                let c = list[*i];
                // Validated above: applying it again cannot fail.
                let _ = (c.entry.set)(cfg, &c.value);
                cfg.set_origin(
                    setting,
                    Origin {
                        layer: c.entry.layer,
                        key: c.entry.key,
                        value: c.value.clone(),
                        object: c.object.cloned(),
                    },
                );
                format!("{} applies", describe(c.entry, &c.shown, c.object))
            }
            Winner::Kept(o) => {
                let applied = registry_entry(o).is_some_and(|e| (e.set)(cfg, &o.value).is_ok());
                let from = registry_entry(o)
                    .map(|e| describe(e, &e.display_key(), o.object.as_ref()))
                    .unwrap_or_default();
                if applied {
                    cfg.set_origin(setting, o.clone());
                }
                format!("the last good value {:?} ({from}) stays", o.value)
            }
            Winner::Default => {
                let default = list[0].entry.default;
                if default.is_empty() {
                    "the setting stays unset".to_owned()
                } else {
                    format!("the default ({default}) applies")
                }
            }
            Winner::Closed => {
                cfg.access.closed = true;
                "with no valid list the gateway answers every request with 503 until it is fixed"
                    .to_owned()
            }
        }
    }

    fn report(&mut self, d: Diagnostic, c: &Candidate<'_>) {
        let mut d = d
            .source(c.source.cloned())
            .key(c.shown.as_str())
            .value(crate::cx::clip(&c.value, 120));
        if let Some(o) = c.object {
            d = d.object(o.clone());
        }
        self.diagnostics.push(d);
    }
}

/// The registry entry that set a previous value.
fn registry_entry(o: &Origin) -> Option<&'static GlobalKey> {
    GLOBAL_KEYS
        .iter()
        .find(|k| k.layer == o.layer && k.key == o.key)
}

/// `keep-alive of ConfigMap ns/name`, `the flag --access-log`.
fn describe(entry: &GlobalKey, shown: &str, object: Option<&ObjectKey>) -> String {
    match (entry.layer, object) {
        (Layer::Flag, _) => format!("the flag {shown}"),
        (_, Some(o)) => format!("{shown} of {o}"),
        (_, None) => format!("{shown} ({})", entry.layer),
    }
}

/// A YAML or JSON value as a key's text: strings as they are, lists joined with commas.
fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.trim().to_owned(),
        Value::Array(items) => items.iter().map(scalar_text).collect::<Vec<_>>().join(", "),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}
