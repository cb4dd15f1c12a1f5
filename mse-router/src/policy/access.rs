//! IP access control: the allow and deny lists of the gateway, of a host and of an
//! Ingress's routes, compiled once per table into [`IpSet`]s.
//!
//! A request passes them in this order, and the first that refuses answers 403:
//!
//! 1. the gateway's lists (`spec.global.ipAccessControl` of the `MseIngressConfig`, or
//!    `--deny-source-range` and `--allow-source-range`): deny, then allow;
//! 2. the host's lists (`domain-blacklist-source-range`, `domain-whitelist-source-range`),
//!    from every Ingress with rules for the host: a client must be in every allow list
//!    and in no deny list;
//! 3. the route's lists (`denylist-source-range`/`blacklist-source-range`,
//!    `whitelist-source-range`/`allowlist-source-range`). As MSE documents, a route list
//!    takes precedence over the host list of the same kind: where the route has an allow
//!    list, the host's allow list does not apply to it (and likewise for deny lists).
//!
//! Steps 2 and 3 are folded into one [`AccessRules`] per route when the table is
//! compiled, so a request does at most two lookups per level, each a binary search.

use std::net::IpAddr;

use mse_annotations::{Cidr, Group, IngressPolicy, IpSet};
use serde::Serialize;

use super::{Refused, Registration, RoutePolicy};

pub(super) const POLICY: Registration = Registration {
    name: "access",
    groups: &[Group::AccessControl],
    keys: &[],
    build,
};

/// One level's allow and deny lists, compiled.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AccessRules {
    /// Only these clients pass, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow: Option<IpSet>,
    /// These clients are refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deny: Option<IpSet>,
}

/// Which list refused a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The client is in a deny list.
    Denied,
    /// The client is not in an allow list.
    NotAllowed,
}

/// The IP lists of one Ingress, compiled: its routes' own and those it sets for its hosts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IngressAccess {
    /// The routes' lists.
    pub route: AccessRules,
    /// `domain-whitelist-source-range`.
    pub host_allow: Option<IpSet>,
    /// `domain-blacklist-source-range`.
    pub host_deny: Option<IpSet>,
}

// === impl AccessRules ===

impl AccessRules {
    /// The lists of `allow` and `deny`; `None` when both are absent.
    pub fn compile(allow: Option<&[Cidr]>, deny: Option<&[Cidr]>) -> Option<Self> {
        let rules = Self {
            allow: allow.map(IpSet::new),
            deny: deny.map(IpSet::new),
        };
        (!rules.is_empty()).then_some(rules)
    }

    /// Whether neither list is set.
    pub fn is_empty(&self) -> bool {
        self.allow.is_none() && self.deny.is_none()
    }

    /// Why a client at `ip` is refused, if it is: the deny list first, then the allow
    /// list.
    #[inline]
    pub fn check(&self, ip: IpAddr) -> Result<(), Refusal> {
        if self.deny.as_ref().is_some_and(|d| d.contains(ip)) {
            return Err(Refusal::Denied);
        }
        if self.allow.as_ref().is_some_and(|a| !a.contains(ip)) {
            return Err(Refusal::NotAllowed);
        }
        Ok(())
    }

    /// The rules a route applies: its own lists, and the host's where the route has no
    /// list of that kind.
    pub(crate) fn over(&self, host: &AccessRules) -> AccessRules {
        AccessRules {
            allow: self.allow.clone().or_else(|| host.allow.clone()),
            deny: self.deny.clone().or_else(|| host.deny.clone()),
        }
    }

    /// Adds another Ingress's host lists: every allow list must hold the client (their
    /// intersection), any deny list refuses it (their union).
    pub(crate) fn add_host_lists(&mut self, allow: Option<&IpSet>, deny: Option<&IpSet>) {
        if let Some(a) = allow {
            self.allow = Some(match &self.allow {
                Some(mine) => mine.intersection(a),
                None => a.clone(),
            });
        }
        if let Some(d) = deny {
            self.deny = Some(match &self.deny {
                Some(mine) => mine.union(d),
                None => d.clone(),
            });
        }
    }
}

// === impl IngressAccess ===

impl IngressAccess {
    /// Whether it sets a host list.
    pub fn has_host_lists(&self) -> bool {
        self.host_allow.is_some() || self.host_deny.is_some()
    }
}

fn build(p: &IngressPolicy, out: &mut RoutePolicy, _: &mut Vec<Refused>) {
    let a = &p.access;
    let access = IngressAccess {
        route: AccessRules::compile(a.allow.as_deref(), a.deny.as_deref()).unwrap_or_default(),
        host_allow: a.host_allow.as_deref().map(IpSet::new),
        host_deny: a.host_deny.as_deref().map(IpSet::new),
    };
    if !access.route.is_empty() || access.has_host_lists() {
        out.access = Some(Box::new(access));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mse_annotations::cidr_list;

    fn set(s: &str) -> Option<IpSet> {
        Some(IpSet::new(&cidr_list(s).unwrap()))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn deny_is_checked_before_allow() {
        let r = AccessRules {
            allow: set("10.0.0.0/8"),
            deny: set("10.1.0.0/16"),
        };
        assert_eq!(r.check(ip("10.2.0.1")), Ok(()));
        assert_eq!(r.check(ip("10.1.0.1")), Err(Refusal::Denied));
        assert_eq!(r.check(ip("192.0.2.1")), Err(Refusal::NotAllowed));
        assert_eq!(AccessRules::default().check(ip("192.0.2.1")), Ok(()));
    }

    #[test]
    fn route_lists_take_precedence_over_host_lists_of_their_kind() {
        let host = AccessRules {
            allow: set("10.0.0.0/8"),
            deny: set("10.9.0.0/16"),
        };
        let route = AccessRules {
            allow: set("192.168.0.0/16"),
            deny: None,
        };
        let r = route.over(&host);
        assert_eq!(r.check(ip("192.168.1.1")), Ok(()));
        assert_eq!(r.check(ip("10.1.1.1")), Err(Refusal::NotAllowed));
        // The host's deny list still applies: the route has none of its own.
        let r = AccessRules::default().over(&host);
        assert_eq!(r.check(ip("10.9.1.1")), Err(Refusal::Denied));
    }

    #[test]
    fn host_lists_of_several_ingresses_all_apply() {
        let mut host = AccessRules::default();
        host.add_host_lists(set("10.0.0.0/8").as_ref(), set("10.9.0.0/16").as_ref());
        host.add_host_lists(
            set("10.1.0.0/16, 10.9.0.0/16").as_ref(),
            set("::1").as_ref(),
        );
        assert_eq!(host.check(ip("10.1.2.3")), Ok(()));
        assert_eq!(host.check(ip("10.2.0.1")), Err(Refusal::NotAllowed));
        assert_eq!(host.check(ip("10.9.0.1")), Err(Refusal::Denied));
    }
}
