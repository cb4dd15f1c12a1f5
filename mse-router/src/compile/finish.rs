//! Laying out the route table once every route, canary and certificate is known.

use std::collections::BTreeMap;

use mse_model::ObjectKey;

use super::host_tls::policy_table;
use super::{Compiler, HostOrder};
use crate::host::{HostMatch, wildcard_suffix};
use crate::matching::Conditions;
use crate::table::RouteTable;
use crate::tls::{CertId, Certificate, TlsTable};

impl<'s> Compiler<'s> {
    /// The route table: virtual hosts in lookup order, the TLS table, which routes
    /// redirect plain HTTP to HTTPS, and the global configuration.
    pub(super) fn finish(self, generation: u64) -> RouteTable {
        let mut table = RouteTable {
            generation,
            routes: self.routes,
            clusters: self.clusters,
            diagnostics: self.diagnostics,
            access: super::access::gateway_rules(&self.global.access),
            global: self.global,
            ..RouteTable::default()
        };
        let vhost_orders: Vec<HostOrder> = self.vhosts.keys().cloned().collect();
        for (i, (order, mut vh)) in self.vhosts.into_iter().enumerate() {
            let i = i as u32;
            let routes = &table.routes;
            vh.regex.sort_by_key(|id| {
                let r = &routes[id.0 as usize];
                (
                    std::cmp::Reverse(r.path.path().len()),
                    Conditions::rank(r.conditions.as_deref()),
                    *id,
                )
            });
            vh.seal(routes);
            match &order {
                HostOrder::Exact(h) => {
                    table.exact_hosts.insert(h.clone(), i);
                }
                HostOrder::Wildcard(s) => {
                    table.wildcard_hosts.insert(s.clone(), i);
                }
                HostOrder::Any => table.any_host = Some(i),
            }
            table.vhosts.push((order.host(), vh));
        }
        let mut tls = tls_table(self.tls.certs, &self.tls.hosts);
        policy_table(
            &mut tls,
            self.tls.host_parts,
            &vhost_orders,
            &table.global.tls,
        );
        for route in &mut table.routes {
            let has_tls = match &route.host {
                HostMatch::Exact(h) => {
                    tls.exact.contains_key(h)
                        || wildcard_suffix(h).is_some_and(|s| tls.wildcard.contains_key(s))
                }
                HostMatch::Wildcard(s) => tls.wildcard.contains_key(s),
                HostMatch::Any => false,
            };
            let defaults = &table.global.tls;
            route.https_redirect = match &route.policy {
                Some(p) => p.redirects_to_https(has_tls, defaults),
                None => defaults.force_ssl_redirect || (defaults.ssl_redirect && has_tls),
            };
            route.own_certificate = has_tls;
        }
        table.tls = tls;
        // The lists grew by doubling; the table keeps them for as long as it is served.
        table.routes.shrink_to_fit();
        table.clusters.shrink_to_fit();
        table.vhosts.shrink_to_fit();
        table.diagnostics.shrink_to_fit();
        table
    }
}

/// The certificates, keyed by the host patterns they were given.
fn tls_table(
    certs: Vec<Certificate>,
    hosts: &BTreeMap<HostOrder, (CertId, ObjectKey)>,
) -> TlsTable {
    let mut tls = TlsTable {
        certs,
        ..TlsTable::default()
    };
    for (order, (id, _)) in hosts {
        match order {
            HostOrder::Exact(h) => {
                tls.exact.insert(h.clone(), *id);
            }
            HostOrder::Wildcard(s) => {
                tls.wildcard.insert(s.clone(), *id);
            }
            HostOrder::Any => tls.default = Some(*id),
        }
    }
    tls
}
