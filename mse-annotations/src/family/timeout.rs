//! Timeouts: `timeout` (total) and the ingress-nginx `proxy-*-timeout` keys.

use std::time::Duration;

use crate::IngressPolicy;
use crate::cx::Cx;
use crate::value;

/// Timeouts of the Ingress's routes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// `timeout`: the whole request; `None` for no limit.
    pub total: Option<Duration>,
    /// `proxy-connect-timeout` (default 5 s).
    pub connect: Duration,
    /// `proxy-read-timeout` (default 60 s).
    pub read: Duration,
    /// `proxy-send-timeout` (default 60 s).
    pub send: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            total: None,
            connect: Duration::from_secs(5),
            read: Duration::from_secs(60),
            send: Duration::from_secs(60),
        }
    }
}

pub(crate) fn parse(cx: &mut Cx<'_>, p: &mut IngressPolicy) {
    let d = Timeouts::default();
    p.timeouts = Timeouts {
        total: cx.get("timeout", value::duration).filter(|t| !t.is_zero()),
        connect: cx
            .get("proxy-connect-timeout", value::duration)
            .unwrap_or(d.connect),
        read: cx
            .get("proxy-read-timeout", value::duration)
            .unwrap_or(d.read),
        send: cx
            .get("proxy-send-timeout", value::duration)
            .unwrap_or(d.send),
    };
}
