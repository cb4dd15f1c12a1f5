//! Timeouts: `timeout` (total) and the ingress-nginx `proxy-*-timeout` keys.

use std::time::Duration;

use crate::IngressPolicy;
use crate::cx::Cx;
use crate::value;

/// Timeouts of the Ingress's routes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timeouts {
    /// `timeout`: the whole request; `None` for no limit.
    pub total: Option<Duration>,
    /// `proxy-connect-timeout`; `None`: the gateway-wide value (5 s by default).
    pub connect: Option<Duration>,
    /// `proxy-read-timeout`; `None`: the gateway-wide value (60 s by default).
    pub read: Option<Duration>,
    /// `proxy-send-timeout`; `None`: the gateway-wide value (60 s by default).
    pub send: Option<Duration>,
}

pub(crate) fn parse(cx: &mut Cx<'_>, p: &mut IngressPolicy) {
    p.timeouts = Timeouts {
        total: cx.get("timeout", value::duration).filter(|t| !t.is_zero()),
        connect: cx.get("proxy-connect-timeout", value::duration),
        read: cx.get("proxy-read-timeout", value::duration),
        send: cx.get("proxy-send-timeout", value::duration),
    };
}
