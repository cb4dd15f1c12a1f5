//! IP lists: each route's [`AccessRules`], from its Ingress's lists and the host lists of
//! every Ingress with rules for its host (see [`crate::policy::AccessRules`] for the
//! order), and the gateway's lists; compiled once per table.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use mse_annotations::global::AccessSettings;
use mse_model::ObjectKey;

use super::Compiler;
use crate::host::HostMatch;
use crate::policy::AccessRules;

impl Compiler<'_> {
    /// Sets [`crate::Route::access`] on every route that has lists to pass.
    pub(super) fn resolve_access(&mut self) {
        let hosts = self.host_lists();
        let none = AccessRules::default();
        // Routes of one Ingress on one host share their rules.
        let mut shared: HashMap<(usize, &HostMatch), Arc<AccessRules>> = HashMap::new();
        for route in &mut self.routes {
            let own = route.policy.as_ref().and_then(|p| p.access.as_deref());
            let host = hosts.get(&route.host);
            if own.is_none_or(|a| a.route.is_empty()) && host.is_none() {
                continue;
            }
            let key = (
                own.map_or(0, |a| std::ptr::from_ref(a) as usize),
                &route.host,
            );
            let rules = shared.entry(key).or_insert_with(|| {
                let own = own.map_or(&none, |a| &a.route);
                Arc::new(own.over(host.unwrap_or(&none)))
            });
            route.access = Some(Arc::clone(rules));
        }
    }

    /// The host lists of every host: each Ingress with rules for the host adds its
    /// `domain-*` lists once.
    fn host_lists(&self) -> HashMap<HostMatch, AccessRules> {
        let mut hosts: HashMap<HostMatch, AccessRules> = HashMap::new();
        let mut added: HashSet<(&HostMatch, &ObjectKey)> = HashSet::new();
        for route in &self.routes {
            // `spec.defaultBackend` serves every host: it sets no host's lists.
            if route.default_backend {
                continue;
            }
            let Some(a) = route.policy.as_ref().and_then(|p| p.access.as_deref()) else {
                continue;
            };
            if !a.has_host_lists() || !added.insert((&route.host, &route.ingress)) {
                continue;
            }
            hosts
                .entry(route.host.clone())
                .or_default()
                .add_host_lists(a.host_allow.as_ref(), a.host_deny.as_ref());
        }
        hosts
    }
}

/// The gateway's lists, compiled; `None` when it has none.
pub(super) fn gateway_rules(a: &AccessSettings) -> Option<Arc<AccessRules>> {
    let allow = (!a.allow.is_empty()).then_some(a.allow.as_slice());
    let deny = (!a.deny.is_empty()).then_some(a.deny.as_slice());
    AccessRules::compile(allow, deny).map(Arc::new)
}
