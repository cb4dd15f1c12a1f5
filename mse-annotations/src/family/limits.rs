//! Limits: per-replica route rate limits (`route-limit-*`), per-client limits
//! (`limit-*`), gateway-wide limits (`rate-limit`, `concurrency-limit`), and the request
//! body size (`proxy-body-size`).

use crate::IngressPolicy;
use crate::cidr::{Cidr, cidr_list};
use crate::cx::Cx;
use crate::value::{self, UrlTemplate, ValueError};

/// A token bucket for the whole route, per gateway replica (`route-limit-*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteRateLimit {
    /// Tokens added per period.
    pub requests: u32,
    /// The period: one second or one minute.
    pub per_minute: bool,
    /// Bucket size as a multiple of `requests`.
    pub burst_multiplier: u32,
}

/// Limits per client address (ingress-nginx `limit-*`); excess requests get 503.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientLimits {
    /// `limit-rps`.
    pub rps: Option<u32>,
    /// `limit-rpm`.
    pub rpm: Option<u32>,
    /// `limit-connections`.
    pub connections: Option<u32>,
    /// `limit-burst-multiplier`.
    pub burst_multiplier: u32,
    /// `limit-allowlist` / `limit-whitelist`: clients exempt from these limits.
    pub exempt: Vec<Cidr>,
}

impl Default for ClientLimits {
    fn default() -> Self {
        Self {
            rps: None,
            rpm: None,
            connections: None,
            burst_multiplier: 5,
            exempt: Vec::new(),
        }
    }
}

impl ClientLimits {
    /// Whether any limit is set.
    pub fn is_set(&self) -> bool {
        self.rps.is_some() || self.rpm.is_some() || self.connections.is_some()
    }
}

/// Content type of a limit's response body.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BodyType {
    /// `text/plain`.
    #[default]
    Text,
    /// `application/json`.
    Json,
}

/// What a request over a gateway-wide limit gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LimitAction {
    /// A response.
    Respond {
        /// Status code (default 429).
        code: u16,
        /// Body content type.
        body_type: BodyType,
        /// Body.
        body: String,
    },
    /// A 302 redirect.
    Redirect(UrlTemplate),
}

/// A gateway-wide limit (MSE `rate-limit` or `concurrency-limit`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayLimit {
    /// Requests per second, or requests in flight.
    pub limit: u32,
    /// What excess requests get.
    pub action: LimitAction,
}

/// All limits of the Ingress's routes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// `route-limit-rpm` / `route-limit-rps`.
    pub route: Option<RouteRateLimit>,
    /// `limit-*`.
    pub client: ClientLimits,
    /// `rate-limit` (requests per second, all replicas).
    pub rate: Option<GatewayLimit>,
    /// `concurrency-limit` (requests in flight, all replicas).
    pub concurrency: Option<GatewayLimit>,
    /// `proxy-body-size`; `None` when the annotation is absent or invalid: the gateway-wide
    /// `proxy-body-size` applies (1 MiB by default). Larger bodies get 413.
    pub body_size: Option<BodySize>,
}

/// The largest request body a route accepts (`proxy-body-size`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodySize {
    /// At most this many bytes.
    Limit(u64),
    /// `0`: no limit.
    Unlimited,
}

pub(crate) fn parse(cx: &mut Cx<'_>, p: &mut IngressPolicy) {
    let count = |v: &str| value::uint(v, 1, u32::MAX);
    let l = &mut p.limits;
    l.body_size = cx.get("proxy-body-size", value::size).map(|n| match n {
        0 => BodySize::Unlimited,
        n => BodySize::Limit(n),
    });

    // Per replica, per route.
    let rpm = cx.get("route-limit-rpm", count);
    let rps = cx.get("route-limit-rps", count);
    let burst = cx.get("route-limit-burst-multiplier", count);
    if rpm.is_some() && rps.is_some() {
        cx.ignored(
            "route-limit-rps",
            "route-limit-rpm is set and takes precedence",
        );
    }
    l.route = match (rpm, rps) {
        (Some(n), _) => Some((n, true)),
        (None, Some(n)) => Some((n, false)),
        (None, None) => {
            if burst.is_some() {
                cx.ignored(
                    "route-limit-burst-multiplier",
                    "neither route-limit-rps nor route-limit-rpm is set",
                );
            }
            None
        }
    }
    .map(|(requests, per_minute)| RouteRateLimit {
        requests,
        per_minute,
        burst_multiplier: burst.unwrap_or(5),
    });

    // Per client.
    let mut client = ClientLimits {
        rps: cx.get("limit-rps", count),
        rpm: cx.get("limit-rpm", count),
        connections: cx.get("limit-connections", count),
        ..ClientLimits::default()
    };
    let burst = cx.get("limit-burst-multiplier", count);
    let allow = cx.get("limit-allowlist", cidr_list);
    let white = cx.get("limit-whitelist", cidr_list);
    if allow.is_some() && white.is_some() {
        cx.ignored(
            "limit-whitelist",
            "limit-allowlist is set and takes precedence",
        );
    }
    let exempt = allow.or(white);
    if client.is_set() {
        client.burst_multiplier = burst.unwrap_or(5);
        client.exempt = exempt.unwrap_or_default();
    } else {
        let why = "none of limit-rps, limit-rpm or limit-connections is set";
        if burst.is_some() {
            cx.ignored("limit-burst-multiplier", why);
        }
        if exempt.is_some() {
            cx.ignored("limit-allowlist", why);
            cx.ignored("limit-whitelist", why);
        }
    }
    l.client = client;

    // Gateway-wide.
    l.rate = gateway_limit(cx, "rate-limit");
    l.concurrency = gateway_limit(cx, "concurrency-limit");
}

fn gateway_limit(cx: &mut Cx<'_>, name: &str) -> Option<GatewayLimit> {
    let limit = cx.get(name, |v| value::uint(v, 1, u32::MAX));
    let code_key = format!("{name}-fallback-custom-response-code");
    let type_key = format!("{name}-fallback-custom-response-body-type");
    let body_key = format!("{name}-fallback-custom-response-body");
    let url_key = format!("{name}-fallback-redirect-url");
    let code = cx.get(&code_key, |v| value::status(v, 100, 599));
    let body_type = cx.get(&type_key, |v| match v.to_ascii_lowercase().as_str() {
        "text" => Ok(BodyType::Text),
        "json" => Ok(BodyType::Json),
        _ => Err(ValueError::Expected("text or json")),
    });
    let body = cx.get(&body_key, |v| {
        if v.is_empty() {
            Err(ValueError::Empty)
        } else {
            Ok(v.to_owned())
        }
    });
    let url = cx.get(&url_key, value::url);
    let Some(limit) = limit else {
        for k in [&code_key, &type_key, &body_key, &url_key] {
            cx.ignored(k, format!("{name} is not set"));
        }
        return None;
    };
    let respond = code.is_some() || body_type.is_some() || body.is_some();
    let action = match url {
        Some(url) if !respond => LimitAction::Redirect(url),
        url => {
            if url.is_some() {
                cx.ignored(
                    &url_key,
                    "a custom response is configured and takes precedence (the two are mutually exclusive)",
                );
            }
            LimitAction::Respond {
                code: code.unwrap_or(429),
                body_type: body_type.unwrap_or_default(),
                body: body.unwrap_or_else(|| "sentinel rate limited".to_owned()),
            }
        }
    };
    Some(GatewayLimit { limit, action })
}
