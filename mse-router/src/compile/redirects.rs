//! Routes the gateway answers itself: `from-to-www-redirect` and `app-root`.

use std::collections::HashMap;
use std::sync::Arc;

use mse_model::ObjectKey;

use super::{Compiler, HostOrder, RouteAttrs, Selected};
use crate::host::HostMatch;
use crate::path::PathMatch;
use crate::policy::RoutePolicy;
use crate::table::Backend;

impl<'s> Compiler<'s> {
    /// `from-to-www-redirect`: once every rule is known, a host the rules do not define
    /// gets a route answering 308 to its `www.`-less (or `www.`) twin, keeping the request
    /// URI.
    ///
    /// `app-root`: a host of the Ingress's rules without an Exact `/` route gets one that
    /// answers with the redirect, whichever Ingress would serve `/` otherwise.
    pub(super) fn add_host_redirects(&mut self, ingresses: &[Selected<'s>]) {
        if self.www.is_empty() && self.app_roots.is_empty() {
            return;
        }
        let by_key: HashMap<&ObjectKey, &Selected<'s>> =
            ingresses.iter().map(|s| (&s.key, s)).collect();
        for (key, host, policy) in std::mem::take(&mut self.app_roots) {
            let Some(sel) = by_key.get(&key) else {
                continue;
            };
            let defined = self
                .vhosts
                .get(&HostOrder::of(&host))
                .is_some_and(|vh| vh.exact.contains_key("/"));
            if defined {
                // An Exact `/` route exists (an older app-root, or a rule's own path).
                continue;
            }
            let root = policy.app_root.as_deref().unwrap_or("/");
            let field = format!("app-root {root}");
            self.insert_answer_route(sel, host, PathMatch::Exact("/".into()), &field, policy);
        }
        for (key, other, target) in std::mem::take(&mut self.www) {
            let Some(sel) = by_key.get(&key) else {
                continue;
            };
            if self.vhosts.contains_key(&HostOrder::of(&other)) {
                // Defined by some rule (or redirected already by an older Ingress).
                continue;
            }
            let policy = Arc::new(RoutePolicy::www_redirect(&target));
            let field = format!("from-to-www-redirect to {target}");
            self.insert_answer_route(sel, other, PathMatch::Prefix("".into()), &field, policy);
        }
    }

    /// A route the gateway answers itself (a redirect): it has no backend, and `field`
    /// names the annotation that made it.
    pub(super) fn insert_answer_route(
        &mut self,
        sel: &Selected<'s>,
        host: HostMatch,
        path: PathMatch,
        field: &str,
        policy: Arc<RoutePolicy>,
    ) {
        let backend = Backend::Unavailable {
            reason: Arc::from(format!("{field} answers these requests")),
        };
        self.insert_route(
            sel,
            host,
            path,
            false,
            field.into(),
            RouteAttrs::new(backend, Some(policy)),
        );
    }
}
