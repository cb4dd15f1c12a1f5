//! `enable-access-log`: `false` keeps the requests of the Ingress's routes out of the access
//! log, which is otherwise on unless the global configuration turns it off
//! (`disable-access-log`).

use mse_annotations::IngressPolicy;

use super::{Refused, Registration, RoutePolicy};

/// The access log, per Ingress.
pub(crate) const POLICY: Registration = Registration {
    name: "access-log",
    groups: &[],
    keys: &["enable-access-log"],
    build,
};

fn build(p: &IngressPolicy, policy: &mut RoutePolicy, _refused: &mut Vec<Refused>) {
    policy.no_access_log = !p.access_log;
}
