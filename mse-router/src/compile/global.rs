//! The gateway-wide configuration: which documents of the snapshot are its sources, read
//! by [`mse_annotations::global::parse_global`].
//!
//! - the ConfigMap [`CompileOptions::configmap`] names (ingress-nginx keys);
//! - `higress-config` in the same namespace (its `higress` key);
//! - the `MseIngressConfig` that our IngressClass links through `spec.parameters`: the one
//!   of the class named by [`CompileOptions::ingress_class`], else of a default class, else
//!   of the first of our classes by name;
//! - the flags given explicitly ([`CompileOptions::flags`]).

use mse_annotations::global::{
    Doc, GlobalConfig, GlobalSources, HIGRESS_CONFIG, HIGRESS_KEY, parse_global,
};
use mse_annotations::{IS_DEFAULT_CLASS, ObjectRef};
use mse_model::api::IngressClass;
use mse_model::{
    Diagnostic, Kind, MSE_API_GROUP, MseIngressConfig, ObjectKey, Snapshot, SourceRef, Sourced,
};

use super::{CompileOptions, Compiler};

/// A ConfigMap of the snapshot, with its key and file.
struct Found<'s, T> {
    key: ObjectKey,
    source: Option<&'s SourceRef>,
    object: &'s T,
}

// === impl Compiler ===

impl<'s> Compiler<'s> {
    /// Reads the global configuration from its sources; `previous` is the configuration
    /// in force, whose values stand in for bad ones.
    pub(super) fn global_config(
        &mut self,
        snapshot: &'s Snapshot,
        opts: &CompileOptions,
        previous: Option<&GlobalConfig>,
    ) -> GlobalConfig {
        let configmap = opts
            .configmap
            .as_ref()
            .and_then(|r| self.named_config_map(snapshot, r));
        let higress = opts.configmap.as_ref().and_then(|r| {
            let ns = r.namespace_or("default");
            self.config_map(snapshot, ns, HIGRESS_CONFIG)
        });
        let higress_yaml = higress
            .as_ref()
            .and_then(|h| h.object.data.as_ref()?.get(HIGRESS_KEY).map(|y| (h, y)));
        let mse = linked_mse_config(snapshot, opts);
        let mse_key = mse.map(|m| ObjectKey::of(Kind::MseIngressConfig, &m.object.metadata));
        let empty = Default::default();
        let sources = GlobalSources {
            configmap: configmap.as_ref().map(|c| Doc {
                object: &c.key,
                source: c.source,
                data: c.object.data.as_ref().unwrap_or(&empty),
            }),
            higress: higress_yaml.map(|(h, yaml)| Doc {
                object: &h.key,
                source: h.source,
                data: yaml.as_str(),
            }),
            mse: mse.zip(mse_key.as_ref()).map(|(m, key)| Doc {
                object: key,
                source: m.source.as_ref(),
                data: &m.object.spec,
            }),
            flags: &opts.flags,
        };
        let parsed = parse_global(&sources, previous);
        self.diagnostics.extend(parsed.diagnostics);
        parsed.value
    }

    /// The ConfigMap `--configmap` names; a warning when it is missing.
    fn named_config_map(
        &mut self,
        snapshot: &'s Snapshot,
        r: &ObjectRef,
    ) -> Option<Found<'s, mse_model::api::ConfigMap>> {
        let ns = r.namespace_or("default");
        let found = self.config_map(snapshot, ns, &r.name);
        if found.is_none() {
            self.diagnostics.push(
                Diagnostic::warning(
                    "missing-config-map",
                    "ConfigMap not found: the global configuration comes from the other sources and the defaults until it exists",
                )
                .object(ObjectKey::new(Kind::ConfigMap, ns, r.name.as_str()))
                .key("--configmap"),
            );
        }
        found
    }

    /// A ConfigMap by namespace and name (the one the index kept, when there are two).
    fn config_map(
        &self,
        snapshot: &'s Snapshot,
        ns: &str,
        name: &str,
    ) -> Option<Found<'s, mse_model::api::ConfigMap>> {
        let object = *self.config_maps.get(&(ns, name))?;
        let source = snapshot
            .config_maps
            .iter()
            .find(|s| std::ptr::eq(&*s.object, object))
            .and_then(|s| s.source.as_ref());
        Some(Found {
            key: ObjectKey::new(Kind::ConfigMap, ns, name),
            source,
            object,
        })
    }
}

/// The `MseIngressConfig` our IngressClass links, if there is one and it exists. A link
/// that cannot be followed is reported by class selection, not here.
fn linked_mse_config<'s>(
    snapshot: &'s Snapshot,
    opts: &CompileOptions,
) -> Option<&'s Sourced<MseIngressConfig>> {
    let mut ours: Vec<&Sourced<IngressClass>> = snapshot
        .ingress_classes
        .iter()
        .filter(|c| {
            c.object.spec.as_ref().and_then(|s| s.controller.as_deref())
                == Some(opts.controller.as_str())
        })
        .filter(|c| linked_name(&c.object).is_some())
        .collect();
    let name = |c: &Sourced<IngressClass>| c.object.metadata.name.clone().unwrap_or_default();
    let is_default = |c: &Sourced<IngressClass>| {
        c.object
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(IS_DEFAULT_CLASS))
            .is_some_and(|v| v.trim() == "true")
    };
    // The class named by --ingress-class first, then default classes, then by name.
    ours.sort_by_key(|c| (name(c) != opts.ingress_class, !is_default(c), name(c)));
    let wanted = linked_name(&ours.first()?.object)?;
    snapshot
        .mse_configs
        .iter()
        .find(|m| m.object.metadata.name.as_deref() == Some(wanted))
}

/// The name of the `MseIngressConfig` an IngressClass's `spec.parameters` names.
fn linked_name(class: &IngressClass) -> Option<&str> {
    let p = class.spec.as_ref()?.parameters.as_ref()?;
    (p.api_group.as_deref() == Some(MSE_API_GROUP) && p.kind == "MseIngressConfig")
        .then_some(p.name.as_str())
}
