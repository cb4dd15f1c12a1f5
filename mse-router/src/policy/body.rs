//! `proxy-body-size`: the largest request body of the Ingress's routes. Where the Ingress
//! sets none, the gateway-wide `proxy-body-size` applies (see
//! [`mse_annotations::global::ClientSettings::max_body_size`]); the data plane answers 413
//! past the limit.

use mse_annotations::IngressPolicy;

use super::{Refused, Registration, RoutePolicy};

/// The body-size limit, checked in the access phase.
pub(crate) const POLICY: Registration = Registration {
    name: "body-size",
    groups: &[],
    keys: &["proxy-body-size"],
    build,
};

fn build(p: &IngressPolicy, policy: &mut RoutePolicy, _refused: &mut Vec<Refused>) {
    policy.body_size = p.limits.body_size;
}
