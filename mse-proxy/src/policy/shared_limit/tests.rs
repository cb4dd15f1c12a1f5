use mse_model::Kind;

use super::*;

fn limits(rate: Option<u32>, conc: Option<u32>) -> SharedLimits {
    let l = |limit| SharedLimit {
        limit,
        answer: LimitAnswer::Respond {
            status: StatusCode::TOO_MANY_REQUESTS,
            content_type: HeaderValue::from_static("text/plain; charset=utf-8"),
            body: "sentinel rate limited".into(),
        },
    };
    SharedLimits {
        rate: rate.map(l),
        concurrency: conc.map(l),
    }
}

fn vars() -> RedirectVars<'static> {
    RedirectVars {
        scheme: "http",
        host: "a.example.com",
        request_uri: "/x?y",
        uri: "/x",
    }
}

fn limiter(l: &SharedLimits) -> Arc<SharedLimiter> {
    let key = ObjectKey::new(Kind::Ingress, "default", "shop");
    SharedLimiter::new(l, (&key, "rules[0]"), None, Duration::from_secs(3600))
}

#[tokio::test]
async fn without_redis_each_replica_admits_the_whole_rate_limit() {
    let l = limiter(&limits(Some(3), None));
    for _ in 0..3 {
        assert!(matches!(l.admit(&vars()).await, Ok(None)));
    }
    let refused = l.admit(&vars()).await.expect_err("over the limit");
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(&refused.body()[..], b"sentinel rate limited");
}

#[tokio::test]
async fn without_redis_each_replica_admits_the_whole_concurrency_limit() {
    let l = limiter(&limits(None, Some(2)));
    let a = l.admit(&vars()).await.expect("first").expect("a slot");
    let _b = l.admit(&vars()).await.expect("second").expect("a slot");
    assert!(l.admit(&vars()).await.is_err());
    drop(a);
    assert!(l.admit(&vars()).await.is_ok());
}

#[test]
fn admitting_and_renewing_share_one_word() {
    let c = ConcState {
        keys: Arc::new(["a".into(), "b".into()]),
        packed: AtomicU64::new(0),
        refill: tokio::sync::Mutex::new(()),
    };
    assert!(!c.enter(|held| held));
    c.set_held(2);
    assert!(c.enter(|held| held));
    assert!(c.enter(|held| held));
    assert!(!c.enter(|held| held));
    assert_eq!(c.load(), (2, 2));
    c.leave();
    c.set_held(1);
    assert_eq!(c.load(), (1, 1));
    // The local bound ignores what Redis granted.
    assert!(c.enter(|_| 5));
}

#[test]
fn leases_double_while_spent_and_shrink_to_what_was_spent() {
    let r = RateState {
        key: "k".into(),
        lease: Mutex::new(Lease {
            tokens: 0,
            until: Instant::now(),
            size: 0,
            want: 1,
            empty_until: None,
        }),
        refill: tokio::sync::Mutex::new(()),
        local: AtomicU64::new(0),
        base: Instant::now(),
    };
    let later = Instant::now() + Duration::from_secs(3600);
    assert_eq!(r.next_want(8), 2);
    assert!(r.leased(2, later));
    assert!(r.spend(Instant::now()));
    assert!(!r.spend(Instant::now()));
    assert_eq!(r.next_want(8), 4);
    assert!(r.leased(4, later));
    assert!(r.spend(Instant::now()));
    // Expired with two left: the next lease is what was spent of it.
    assert!(!r.spend(later));
    assert_eq!(r.next_want(8), 2);
    // Redis empty: known until it says a token comes back, in its epoch only.
    r.empty(later, 3);
    assert!(r.known_empty(Instant::now(), 3));
    assert!(!r.known_empty(Instant::now(), 4));
    assert!(!r.known_empty(later, 3));
    assert_eq!(r.next_want(8), 2);
}

#[test]
fn a_redirect_answer_is_a_302() {
    let limit = SharedLimit {
        limit: 1,
        answer: LimitAnswer::Redirect(Location::Fixed(HeaderValue::from_static(
            "https://busy.example.com/",
        ))),
    };
    let r = answer(Some(&limit), &vars());
    assert_eq!(r.status(), StatusCode::FOUND);
    assert_eq!(r.headers()[LOCATION], "https://busy.example.com/");
}
