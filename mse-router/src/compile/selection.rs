//! Class selection and age order: which Ingresses this gateway serves, oldest first.
//!
//! An IngressClass of ours may link an `MseIngressConfig` through `spec.parameters`
//! (apiGroup `mse.alibabacloud.com`). Its `spec.ingress.local` then applies to the
//! Ingresses selected through that class:
//! - `watchNamespace`: when set and not empty, only Ingresses of that namespace.
//! - `ingressClass`: the linking IngressClass wins, so its Ingresses are served whatever
//!   this says (MSE's "unset watches nothing" does not apply to a linked config). `""`
//!   adds every Ingress whatever its class, and `nginx` adds Ingresses of class `nginx` and
//!   those without a class (both within `watchNamespace`); another class name is ignored
//!   with an `overridden-ingress-class` warning.

use std::cmp::Ordering;

use mse_annotations::{INGRESS_CLASS, IS_DEFAULT_CLASS};
use mse_model::api::{Ingress, IngressClass};
use mse_model::{Diagnostic, Kind, MSE_API_GROUP, ObjectKey, Snapshot, SourceRef, Sourced};

use super::{CompileOptions, Compiler, Selected};

/// The Ingresses [`compile`](super::compile) would serve (class selection, including an
/// `MseIngressConfig` linked from our IngressClass), oldest first.
///
/// The result depends only on the snapshot's Ingresses, IngressClasses and
/// MseIngressConfigs, so a source can ask this of a snapshot holding just those, before it
/// fetches what the selected Ingresses reference.
pub fn selected_ingresses(snapshot: &Snapshot, opts: &CompileOptions) -> Vec<ObjectKey> {
    let mut cx = Compiler::new(snapshot, super::CompileCache::new());
    cx.select_ingresses(snapshot, opts)
        .into_iter()
        .map(|s| s.key)
        .collect()
}

/// The classes this gateway serves.
struct OurClasses<'s> {
    names: Vec<&'s str>,
    /// Our IngressClasses marked default: Ingresses without a class are ours.
    defaults: Vec<&'s str>,
    /// The `MseIngressConfig` each of our IngressClasses links through `spec.parameters`.
    links: Vec<Link<'s>>,
}

/// An `MseIngressConfig` linked from one of our IngressClasses, and what its
/// `spec.ingress.local` says.
struct Link<'s> {
    /// The linking IngressClass.
    class: &'s str,
    /// The config's name.
    config: &'s str,
    /// `watchNamespace`: only Ingresses of this namespace, when set and not empty.
    namespace: Option<&'s str>,
    /// What `ingressClass` adds to the linking class.
    extra: Extra,
}

/// What a linked config's `spec.ingress.local.ingressClass` adds to the linking class.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Extra {
    /// Unset, or the linking class's own name: nothing.
    None,
    /// `""`: every Ingress, whatever its class.
    All,
    /// `nginx`: Ingresses of class `nginx` and those without a class.
    NginxAndUnclassed,
}

/// How a class or the absence of one admits Ingresses: from every namespace, or from the
/// `watchNamespace` of the config its IngressClass links.
#[derive(Clone, Copy)]
enum Scope<'s> {
    Everywhere,
    Linked(&'s Link<'s>),
}

impl<'s> OurClasses<'s> {
    fn of(snapshot: &'s Snapshot, opts: &'s CompileOptions, diags: &mut Vec<Diagnostic>) -> Self {
        let mut names: Vec<&str> = Vec::new();
        let mut others: Vec<&str> = Vec::new();
        let mut defaults = Vec::new();
        let mut links = Vec::new();
        for c in &snapshot.ingress_classes {
            let name = c.object.metadata.name.as_deref().unwrap_or("");
            let spec = c.object.spec.as_ref();
            if spec.and_then(|s| s.controller.as_deref()) != Some(opts.controller.as_str()) {
                others.push(name);
                continue;
            }
            names.push(name);
            let is_default = c
                .object
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(IS_DEFAULT_CLASS))
                .is_some_and(|v| v.trim() == "true");
            if is_default {
                defaults.push(name);
            }
            if let Some(link) = Link::of(snapshot, c, name, diags) {
                links.push(link);
            }
        }
        if !names.contains(&opts.ingress_class.as_str())
            && !others.contains(&opts.ingress_class.as_str())
        {
            names.push(opts.ingress_class.as_str());
        }
        Self {
            names,
            defaults,
            links,
        }
    }

    /// How the class an Ingress names (or the absence of one) admits it; empty when the
    /// class is not ours.
    fn scopes(&'s self, class: Option<&str>) -> Vec<Scope<'s>> {
        let direct: Vec<&str> = match class {
            Some(c) => self.names.iter().copied().filter(|n| *n == c).collect(),
            None => self.defaults.clone(),
        };
        let mut scopes: Vec<Scope<'s>> = direct
            .iter()
            .map(|c| match self.links.iter().find(|l| l.class == *c) {
                Some(link) => Scope::Linked(link),
                None => Scope::Everywhere,
            })
            .collect();
        for link in &self.links {
            let widened = match link.extra {
                Extra::None => false,
                Extra::All => true,
                Extra::NginxAndUnclassed => matches!(class, None | Some("nginx")),
            };
            if widened {
                scopes.push(Scope::Linked(link));
            }
        }
        scopes
    }
}

impl<'s> Link<'s> {
    /// The config an IngressClass of ours links, with a diagnostic when the reference
    /// cannot be followed.
    fn of(
        snapshot: &'s Snapshot,
        class: &'s Sourced<IngressClass>,
        name: &'s str,
        diags: &mut Vec<Diagnostic>,
    ) -> Option<Self> {
        let params = class.object.spec.as_ref()?.parameters.as_ref()?;
        let key = ObjectKey::of(Kind::IngressClass, &class.object.metadata);
        let at = |d: Diagnostic| {
            d.object(key.clone())
                .source(class.source.clone())
                .key("spec.parameters")
        };
        let group = params.api_group.as_deref().unwrap_or("");
        if group != MSE_API_GROUP || params.kind != "MseIngressConfig" {
            diags.push(at(Diagnostic::info(
                "unsupported-class-parameters",
                format!(
                    "spec.parameters names {} of group {group:?}; only an MseIngressConfig ({MSE_API_GROUP}) configures this gateway, so it is not read",
                    params.kind
                ),
            )
            .value(params.name.clone())));
            return None;
        }
        let found = snapshot
            .mse_configs
            .iter()
            .find(|c| c.object.metadata.name.as_deref() == Some(params.name.as_str()));
        let Some(config) = found else {
            diags.push(at(Diagnostic::warning(
                "missing-mse-config",
                format!(
                    "MseIngressConfig {} not found; the Ingresses of IngressClass {name} are served from every namespace",
                    params.name
                ),
            )
            .value(params.name.clone())));
            return None;
        };
        let local = config
            .object
            .spec
            .ingress
            .as_ref()
            .and_then(|i| i.local.as_ref());
        let namespace = local
            .and_then(|l| l.watch_namespace.as_deref())
            .map(str::trim)
            .filter(|ns| !ns.is_empty());
        let extra = match local
            .and_then(|l| l.ingress_class.as_deref())
            .map(str::trim)
        {
            None => Extra::None,
            Some("") => Extra::All,
            Some(c) if c == name => Extra::None,
            Some("nginx") => Extra::NginxAndUnclassed,
            Some(other) => {
                let config_key = ObjectKey::of(Kind::MseIngressConfig, &config.object.metadata);
                diags.push(
                    Diagnostic::warning(
                        "overridden-ingress-class",
                        format!(
                            "IngressClass {name} links this config through spec.parameters, and the linking IngressClass wins: Ingresses of class {other:?} are not served for it"
                        ),
                    )
                    .object(config_key)
                    .source(config.source.clone())
                    .key("spec.ingress.local.ingressClass")
                    .value(other),
                );
                Extra::None
            }
        };
        Some(Self {
            class: name,
            config: config.object.metadata.name.as_deref().unwrap_or(""),
            namespace,
            extra,
        })
    }
}

impl Scope<'_> {
    fn admits(self, namespace: &str) -> bool {
        match self {
            Scope::Everywhere => true,
            Scope::Linked(link) => link.namespace.is_none_or(|ns| ns == namespace),
        }
    }
}

// === impl Compiler ===

impl<'s> Compiler<'s> {
    /// Class selection, then age order.
    pub(super) fn select_ingresses(
        &mut self,
        snapshot: &'s Snapshot,
        opts: &CompileOptions,
    ) -> Vec<Selected<'s>> {
        let ours = OurClasses::of(snapshot, opts, &mut self.diagnostics);
        let mut selected = Vec::new();
        for s in &snapshot.ingresses {
            let ing = &*s.object;
            let key = ObjectKey::of(Kind::Ingress, &ing.metadata);
            let class = self.class_of(ing, &key, s.source.as_ref());
            let scopes = ours.scopes(class);
            if scopes.iter().any(|scope| scope.admits(&key.namespace)) {
                selected.push(Selected {
                    key,
                    source: s.source.as_ref(),
                    ingress: ing,
                });
                continue;
            }
            let why = match scopes.first() {
                Some(Scope::Linked(link)) => format!(
                    "MseIngressConfig {} (linked from IngressClass {}) watches namespace {} only",
                    link.config,
                    link.class,
                    link.namespace.unwrap_or("")
                ),
                _ if class.is_none() => format!(
                    "no ingress class and no IngressClass for {} is marked default; set spec.ingressClassName: {} to have this gateway serve it",
                    opts.controller, opts.ingress_class
                ),
                // Another controller's class: not ours to mention.
                _ => continue,
            };
            self.diagnostics.push(
                Diagnostic::info("ingress-not-selected", why)
                    .object(key)
                    .source(s.source.clone()),
            );
        }
        selected.sort_by(|a, b| age_order(a, b));
        selected
    }

    /// The class of an Ingress: the legacy annotation, else `spec.ingressClassName`. A
    /// warning when both are set and disagree.
    fn class_of(
        &mut self,
        ing: &'s Ingress,
        key: &ObjectKey,
        source: Option<&SourceRef>,
    ) -> Option<&'s str> {
        let annotated = ing
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(INGRESS_CLASS))
            .map(|v| v.trim())
            .filter(|v| !v.is_empty());
        let spec_class = ing
            .spec
            .as_ref()
            .and_then(|s| s.ingress_class_name.as_deref());
        if let (Some(a), Some(c)) = (annotated, spec_class)
            && a != c
        {
            self.diagnostics.push(
                Diagnostic::warning(
                    "conflicting-ingress-class",
                    format!(
                        "the {INGRESS_CLASS} annotation ({a:?}) and spec.ingressClassName ({c:?}) disagree; the annotation wins, as in ingress-nginx"
                    ),
                )
                .object(key.clone())
                .source(source.cloned())
                .key(INGRESS_CLASS),
            );
        }
        annotated.or(spec_class)
    }
}

/// Oldest first; objects without a creation time count as newest; then namespace/name.
fn age_order(a: &Selected<'_>, b: &Selected<'_>) -> Ordering {
    let ta = a.ingress.metadata.creation_timestamp.as_ref().map(|t| t.0);
    let tb = b.ingress.metadata.creation_timestamp.as_ref().map(|t| t.0);
    match (ta, tb) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
    .then_with(|| a.key.namespace.cmp(&b.key.namespace))
    .then_with(|| a.key.name.cmp(&b.key.name))
}
