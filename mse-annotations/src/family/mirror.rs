//! Mirroring: `mirror-target-service`, `mirror-target-fqdn[-port]`, `mirror-percentage`.

use mse_model::Diagnostic;

use crate::IngressPolicy;
use crate::cx::Cx;
use crate::value::{self, ServiceRef};

/// Where mirrored requests go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MirrorTarget {
    /// A Service (port `None`: its first port).
    Service(ServiceRef),
    /// A host name and port.
    Fqdn {
        /// The host.
        host: String,
        /// The port.
        port: u16,
    },
}

/// Traffic mirroring: copies of requests are sent to the target and the answers dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mirror {
    /// The target.
    pub target: MirrorTarget,
    /// Share of requests mirrored, 0 to 100.
    pub percentage: u8,
}

pub(crate) fn parse(cx: &mut Cx<'_>, p: &mut IngressPolicy) {
    let service = cx.get("mirror-target-service", value::service_ref);
    let fqdn = cx.get("mirror-target-fqdn", value::host_name);
    let port = cx.get("mirror-target-fqdn-port", |v| {
        value::int(v, 1, 65535).map(|n| u16::try_from(n).unwrap_or(80))
    });
    let percentage = cx.get("mirror-percentage", |v| {
        value::int(v, 0, i64::from(u32::MAX)).map(|n| u8::try_from(n.min(100)).unwrap_or(100))
    });
    if percentage == Some(100) {
        for e in cx.entries("mirror-percentage") {
            if e.value.parse::<u64>().is_ok_and(|n| n > 100) {
                cx.report(
                    Diagnostic::info("invalid-value", "more than 100 means all requests"),
                    e.key,
                    Some(e.value),
                );
            }
        }
    }
    let target = match (fqdn, service) {
        (Some(host), service) => {
            if service.is_some() {
                cx.ignored(
                    "mirror-target-service",
                    "mirror-target-fqdn is set and takes precedence",
                );
            }
            Some(MirrorTarget::Fqdn {
                host,
                port: port.unwrap_or(80),
            })
        }
        (None, Some(s)) => {
            if port.is_some() {
                cx.ignored("mirror-target-fqdn-port", "mirror-target-fqdn is not set");
            }
            Some(MirrorTarget::Service(s))
        }
        (None, None) => {
            cx.ignored("mirror-percentage", "no mirror target is set");
            cx.ignored("mirror-target-fqdn-port", "mirror-target-fqdn is not set");
            None
        }
    };
    p.mirror = target.map(|target| Mirror {
        target,
        percentage: percentage.unwrap_or(100),
    });
}
