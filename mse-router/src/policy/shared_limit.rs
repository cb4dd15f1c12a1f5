//! Limits shared by every gateway replica: MSE `rate-limit` (requests per second for the
//! route) and `concurrency-limit` (requests in flight for the route), with their
//! `-fallback-*` answers (a status, default 429, with a text or JSON body, or a 302 to
//! `-fallback-redirect-url`).
//!
//! With a Redis configured (`--redis-url`, global `redis-url`) the data plane counts them
//! there, so that N replicas share one limit; without one, and while Redis cannot be
//! reached, each replica enforces the whole limit on its own (the compiler says so with a
//! `limit-per-replica` warning). This is the configuration; the counting is the data
//! plane's.

use http::{HeaderValue, StatusCode};
use mse_annotations::{BodyType, GatewayLimit, IngressPolicy, LimitAction};

use super::{Location, Refused, Registration, RoutePolicy};

pub(super) const POLICY: Registration = Registration {
    name: "shared-limits",
    groups: &[],
    keys: &[
        "rate-limit",
        "rate-limit-fallback-custom-response-code",
        "rate-limit-fallback-custom-response-body-type",
        "rate-limit-fallback-custom-response-body",
        "rate-limit-fallback-redirect-url",
        "concurrency-limit",
        "concurrency-limit-fallback-custom-response-code",
        "concurrency-limit-fallback-custom-response-body-type",
        "concurrency-limit-fallback-custom-response-body",
        "concurrency-limit-fallback-redirect-url",
    ],
    build,
};

/// The shared limits of an Ingress's routes; each route counts on its own.
#[derive(Clone, Debug, Default)]
pub struct SharedLimits {
    /// `rate-limit`: requests per second, all replicas together.
    pub rate: Option<SharedLimit>,
    /// `concurrency-limit`: requests in flight, all replicas together.
    pub concurrency: Option<SharedLimit>,
}

/// One shared limit and the answer to requests over it.
#[derive(Clone, Debug)]
pub struct SharedLimit {
    /// Requests per second, or requests in flight (at least 1).
    pub limit: u32,
    /// What a request over the limit gets.
    pub answer: LimitAnswer,
}

/// The answer to a request over a shared limit.
#[derive(Clone, Debug)]
pub enum LimitAnswer {
    /// `-fallback-custom-response-*`: a status and a body.
    Respond {
        /// The status (429 by default).
        status: StatusCode,
        /// `Content-Type`: `text/plain` or `application/json`.
        content_type: HeaderValue,
        /// The body (`sentinel rate limited` by default, as MSE).
        body: Box<str>,
    },
    /// `-fallback-redirect-url`: a 302 to this location.
    Redirect(Location),
}

// === impl SharedLimits ===

impl PartialEq for SharedLimits {
    /// Same limits (the answers aside): the data plane keeps its counts for them.
    fn eq(&self, other: &Self) -> bool {
        let limit = |l: &Option<SharedLimit>| l.as_ref().map(|l| l.limit);
        limit(&self.rate) == limit(&other.rate)
            && limit(&self.concurrency) == limit(&other.concurrency)
    }
}

impl SharedLimits {
    /// The limits set, as (annotation key without prefix, value) pairs: for diagnostics.
    pub fn keys(&self) -> impl Iterator<Item = (&'static str, u32)> {
        let rate = self.rate.as_ref().map(|l| ("rate-limit", l.limit));
        let conc = (self.concurrency.as_ref()).map(|l| ("concurrency-limit", l.limit));
        rate.into_iter().chain(conc)
    }
}

fn shared(l: &GatewayLimit) -> SharedLimit {
    let answer = match &l.action {
        LimitAction::Respond {
            code,
            body_type,
            body,
        } => LimitAnswer::Respond {
            status: StatusCode::from_u16(*code).unwrap_or(StatusCode::TOO_MANY_REQUESTS),
            content_type: HeaderValue::from_static(match body_type {
                BodyType::Text => "text/plain; charset=utf-8",
                BodyType::Json => "application/json",
            }),
            body: body.as_str().into(),
        },
        LimitAction::Redirect(url) => LimitAnswer::Redirect(
            match (url.is_literal()).then(|| HeaderValue::from_str(&url.raw).ok()) {
                Some(Some(v)) => Location::Fixed(v),
                _ => Location::Template(url.clone()),
            },
        ),
    };
    SharedLimit {
        limit: l.limit.max(1),
        answer,
    }
}

fn build(p: &IngressPolicy, out: &mut RoutePolicy, _: &mut Vec<Refused>) {
    let l = &p.limits;
    let limits = SharedLimits {
        rate: l.rate.as_ref().map(shared),
        concurrency: l.concurrency.as_ref().map(shared),
    };
    if limits.rate.is_some() || limits.concurrency.is_some() {
        out.shared_limits = Some(Box::new(limits));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use mse_model::{Kind, ObjectKey};

    use super::*;

    fn policy(pairs: &[(&str, &str)]) -> RoutePolicy {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (format!("mse.ingress.kubernetes.io/{k}"), (*v).to_owned()))
            .collect();
        let key = ObjectKey::new(Kind::Ingress, "default", "shop");
        let parsed = mse_annotations::parse(&key, None, &map);
        let (built, _) = RoutePolicy::build(&parsed.value);
        built.unwrap_or_default()
    }

    #[test]
    fn rate_and_concurrency_limits_carry_their_answers() {
        let p = policy(&[
            ("rate-limit", "100"),
            ("rate-limit-fallback-custom-response-code", "503"),
            ("rate-limit-fallback-custom-response-body-type", "json"),
            (
                "rate-limit-fallback-custom-response-body",
                "{\"busy\":true}",
            ),
            ("concurrency-limit", "7"),
            (
                "concurrency-limit-fallback-redirect-url",
                "https://example.com/busy",
            ),
        ]);
        let s = p.shared_limits.expect("shared limits");
        let rate = s.rate.as_ref().expect("rate");
        assert_eq!(rate.limit, 100);
        let LimitAnswer::Respond {
            status,
            content_type,
            body,
        } = &rate.answer
        else {
            panic!("a response: {:?}", rate.answer);
        };
        assert_eq!(*status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(content_type, "application/json");
        assert_eq!(&**body, "{\"busy\":true}");
        let conc = s.concurrency.as_ref().expect("concurrency");
        assert_eq!(conc.limit, 7);
        assert!(matches!(
            &conc.answer,
            LimitAnswer::Redirect(Location::Fixed(v)) if v == "https://example.com/busy"
        ));
        assert_eq!(
            s.keys().collect::<Vec<_>>(),
            [("rate-limit", 100), ("concurrency-limit", 7)]
        );
    }

    #[test]
    fn the_default_answer_is_429_sentinel_rate_limited() {
        let p = policy(&[("rate-limit", "5")]);
        let s = p.shared_limits.expect("shared limits");
        let rate = s.rate.expect("rate");
        assert!(matches!(
            &rate.answer,
            LimitAnswer::Respond { status, body, .. }
                if *status == StatusCode::TOO_MANY_REQUESTS && &**body == "sentinel rate limited"
        ));
        assert!(s.concurrency.is_none());
    }
}
