//! IP access control: allow and deny lists for the Ingress and for its hosts. Security
//! keys: a list that cannot be read fails closed.

use crate::IngressPolicy;
use crate::cidr::{Cidr, cidr_list};
use crate::cx::{Cx, Secure};

/// IP allow and deny lists. A client must be in the allow list (when there is one) and
/// not in the deny list; the Ingress's lists take precedence over the host's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccessControl {
    /// `allowlist-source-range`, else `whitelist-source-range`.
    pub allow: Option<Vec<Cidr>>,
    /// `denylist-source-range`, else `blacklist-source-range`.
    pub deny: Option<Vec<Cidr>>,
    /// `domain-whitelist-source-range` (host scope).
    pub host_allow: Option<Vec<Cidr>>,
    /// `domain-blacklist-source-range` (host scope).
    pub host_deny: Option<Vec<Cidr>>,
}

impl AccessControl {
    /// Whether a client address may be served by the Ingress's routes.
    pub fn allows(&self, ip: std::net::IpAddr) -> bool {
        let allow = self.allow.as_ref().or(self.host_allow.as_ref());
        let deny = self.deny.as_ref().or(self.host_deny.as_ref());
        allow.is_none_or(|l| l.iter().any(|c| c.contains(ip)))
            && !deny.is_some_and(|l| l.iter().any(|c| c.contains(ip)))
    }
}

pub(crate) fn parse(cx: &mut Cx<'_>, p: &mut IngressPolicy) {
    let a = &mut p.access;
    a.allow = pair(cx, "allowlist-source-range", "whitelist-source-range");
    a.deny = pair(cx, "denylist-source-range", "blacklist-source-range");
    a.host_allow = list(cx, "domain-whitelist-source-range");
    a.host_deny = list(cx, "domain-blacklist-source-range");
}

fn list(cx: &mut Cx<'_>, name: &str) -> Option<Vec<Cidr>> {
    match cx.get_secure(name, cidr_list) {
        Secure::Valid(l) => Some(l),
        Secure::Absent | Secure::Invalid => None,
    }
}

/// Two names for one list: the first wins when both are set.
fn pair(cx: &mut Cx<'_>, first: &str, second: &str) -> Option<Vec<Cidr>> {
    let a = list(cx, first);
    let b = list(cx, second);
    if a.is_some() && b.is_some() {
        cx.ignored(second, format!("{first} is set and takes precedence"));
    }
    a.or(b)
}
