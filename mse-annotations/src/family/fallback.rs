//! Fallback: `default-backend` and `custom-http-errors`.

use crate::IngressPolicy;
use crate::cx::Cx;
use crate::value::{self, ServiceRef};

/// Where requests go when the route's own Service cannot answer well.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fallback {
    /// `default-backend`: used when the route's Service has no ready endpoints.
    pub default_backend: Option<ServiceRef>,
    /// `custom-http-errors`, sorted and without duplicates: upstream statuses replaced by
    /// the answer of the fallback Service. That Service is `default-backend`, or else the
    /// gateway-wide default backend; which one exists is only known when routes are
    /// compiled, so the codes are kept here whether or not `default-backend` is set.
    pub custom_http_errors: Vec<u16>,
}

pub(crate) fn parse(cx: &mut Cx<'_>, p: &mut IngressPolicy) {
    let f = &mut p.fallback;
    f.default_backend = cx.get("default-backend", value::service_ref);
    let codes = cx.get_list("custom-http-errors", value::comma_list, |v| {
        value::status(v, 400, 599)
    });
    if let Some(mut codes) = codes {
        codes.sort_unstable();
        codes.dedup();
        f.custom_http_errors = codes;
    }
}
