//! End to end over loopback: the upstream-selection phase with several echo endpoints
//! behind one Service: `load-balance` (`least_conn`, `random`), `upstream-hash-by` (each
//! key, or combination of keys, sticks to one endpoint; removing an endpoint moves only
//! its keys) and cookie
//! affinity (the cookie, its attributes, and canary stickiness). Shares are checked with
//! tolerances, never exact counts.
#![cfg(test)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mse_proxy::echo::EchoServer;
use mse_proxy::{AffinityKey, GatewayHandle};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const HOST: &str = "lb.example.com";

/// `n` echo endpoints named `e0`, `e1`, ...
async fn echoes(n: usize) -> Vec<EchoServer> {
    let mut out = Vec::new();
    for i in 0..n {
        out.push(echo(&format!("e{i}")).await);
    }
    out
}

fn addrs(servers: &[EchoServer]) -> Vec<SocketAddr> {
    servers.iter().map(EchoServer::addr).collect()
}

/// Ingress `lb` for [`HOST`] with `annotations`, to Service `svc` with `endpoints`.
fn balanced(annotations: &[(&str, &str)], endpoints: &[SocketAddr]) -> String {
    annotate(
        &ingress("lb", Some(HOST), &[("/", "Prefix", "svc")]),
        annotations,
    ) + &service("svc", endpoints)
}

/// A gateway on `yaml`, which must compile without warnings (no `not-applied`).
fn clean_gateway(yaml: &str) -> (GatewayHandle, mse_proxy::SharedTable) {
    keyed_gateway(yaml, None)
}

/// [`clean_gateway`] with the affinity cookies keyed by `key`.
fn keyed_gateway(yaml: &str, key: Option<&[u8]>) -> (GatewayHandle, mse_proxy::SharedTable) {
    let (gw, table) = gateway_with(yaml, |c| {
        c.timeouts.upstream_response = Duration::from_secs(60);
        c.affinity_key = key.map(|k| AffinityKey::new(k).unwrap());
    });
    let diagnostics = table.routes().diagnostics().to_vec();
    assert!(
        diagnostics
            .iter()
            .all(|d| d.severity < mse_model::Severity::Warning),
        "{diagnostics:?}"
    );
    (gw, table)
}

async fn get_with(addr: SocketAddr, uri: &str, headers: &[(&str, &str)]) -> Reply {
    let mut tx = h1(addr).await;
    let reply = send1(&mut tx, request(HOST, "GET", uri, headers)).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply
}

/// An upstream that reads requests and never answers; counts the connections it got.
async fn black_hole() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&count);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                }
            });
        }
    });
    (addr, count)
}

/// With one endpoint holding a request that never ends, the algorithm sends no second
/// request there: `least_conn` and `random` (the less loaded of two) both see it busy,
/// also after the same table is published again (the count carries over). Round robin
/// would send it a third of them.
async fn busy_endpoint_gets_no_more(algorithm: &str) {
    let servers = echoes(2).await;
    let (hole, hole_count) = black_hole().await;
    let mut endpoints = addrs(&servers);
    endpoints.push(hole);
    let yaml = balanced(&[("load-balance", algorithm)], &endpoints);
    let (gw, table) = clean_gateway(&yaml);
    let addr = http_addr(&gw);
    let mut answered = 0;
    let mut pending: Vec<tokio::task::JoinHandle<Reply>> = Vec::new();
    for _ in 0..30 {
        let task = tokio::spawn(async move { get_with(addr, "/", &[]).await });
        // Wait until the request was answered, or reached the black hole.
        let deadline = Instant::now() + STEP;
        loop {
            if task.is_finished() {
                task.await.unwrap();
                answered += 1;
                break;
            }
            if hole_count.load(Ordering::SeqCst) > pending.len() {
                pending.push(task);
                // The same table again: the held request stays counted.
                if pending.len() == 1 {
                    table.publish(compile_yaml(&yaml));
                }
                break;
            }
            assert!(
                Instant::now() < deadline,
                "request neither answered nor held"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    assert!(pending.len() <= 1, "{algorithm}: {} held", pending.len());
    assert_eq!(answered + pending.len(), 30);
    for t in pending {
        t.abort();
    }
}

#[tokio::test]
async fn least_conn_avoids_the_endpoint_with_a_request_in_flight() {
    busy_endpoint_gets_no_more("least_conn").await;
}

#[tokio::test]
async fn random_of_two_avoids_the_endpoint_with_a_request_in_flight() {
    busy_endpoint_gets_no_more("random").await;
}

#[tokio::test]
async fn random_and_least_conn_spread_sequential_requests() {
    for algorithm in ["random", "least_conn", "least_request"] {
        let servers = echoes(3).await;
        let (gw, _t) = clean_gateway(&balanced(&[("load-balance", algorithm)], &addrs(&servers)));
        let mut tx = h1(http_addr(&gw)).await;
        let mut counts = BTreeMap::<String, usize>::new();
        for _ in 0..600 {
            let r = send1(&mut tx, get_req(HOST, "/")).await;
            *counts.entry(r.service().to_owned()).or_default() += 1;
        }
        // Even would be 200 each.
        assert_eq!(counts.len(), 3, "{algorithm}: {counts:?}");
        assert!(
            counts.values().all(|c| (100..=300).contains(c)),
            "{algorithm}: {counts:?}"
        );
    }
}

#[tokio::test]
async fn ewma_keeps_away_from_a_slow_endpoint() {
    let servers = echoes(2).await;
    // Answers after a second, as `slow`; the echo endpoints answer at once.
    let answer = b"HTTP/1.1 200 OK\r\nx-echo-service: slow\r\nContent-Length: 2\r\n\r\nok";
    let mut endpoints = addrs(&servers);
    endpoints.push(scripted_upstream(answer, Duration::from_secs(1)).await);
    let (gw, _t) = clean_gateway(&balanced(&[("load-balance", "ewma")], &endpoints));
    let mut tx = h1(http_addr(&gw)).await;
    let mut counts = BTreeMap::<String, usize>::new();
    for _ in 0..60 {
        let r = send1(&mut tx, get_req(HOST, "/")).await;
        assert_eq!(r.status, 200);
        *counts.entry(r.service().to_owned()).or_default() += 1;
    }
    // Round robin would send it 20; once measured, it loses every draw.
    assert!(counts.get("slow").copied().unwrap_or(0) <= 3, "{counts:?}");
    assert_eq!(counts.values().sum::<usize>(), 60);
    assert!(counts.len() >= 2, "{counts:?}");
}

#[tokio::test]
async fn ewma_spreads_over_equally_fast_endpoints() {
    let servers = echoes(3).await;
    let (gw, _t) = clean_gateway(&balanced(&[("load-balance", "ewma")], &addrs(&servers)));
    let mut tx = h1(http_addr(&gw)).await;
    let mut seen = BTreeSet::new();
    for _ in 0..300 {
        seen.insert(
            send1(&mut tx, get_req(HOST, "/"))
                .await
                .service()
                .to_owned(),
        );
    }
    assert_eq!(seen.len(), 3, "{seen:?}");
}

/// Which endpoint answers each of `keys`, asked `repeat` times each; panics when a key
/// is answered by two endpoints.
async fn owners(
    addr: SocketAddr,
    keys: &[String],
    repeat: usize,
    ask: impl Fn(&str) -> (String, Vec<(String, String)>),
) -> BTreeMap<String, String> {
    let mut tx = h1(addr).await;
    let mut out = BTreeMap::new();
    for k in keys {
        let (uri, headers) = ask(k);
        for _ in 0..repeat {
            let h: Vec<(&str, &str)> = headers
                .iter()
                .map(|(a, b)| (a.as_str(), b.as_str()))
                .collect();
            let r = send1(&mut tx, request(HOST, "GET", &uri, &h)).await;
            assert_eq!(r.status, 200);
            let prev = out.insert(k.clone(), r.service().to_owned());
            if let Some(prev) = prev {
                assert_eq!(prev, r.service(), "key {k} moved between requests");
            }
        }
    }
    out
}

fn keys(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("user-{i}")).collect()
}

#[tokio::test]
async fn hash_by_header_query_cookie_and_uri_sticks_each_key_to_one_endpoint() {
    let servers = echoes(4).await;
    type Ask = fn(&str) -> (String, Vec<(String, String)>);
    let cases: [(&str, Ask); 5] = [
        ("$http_x_user", |k| {
            ("/".into(), vec![("x-user".into(), k.into())])
        }),
        ("$arg_user", |k| (format!("/?a=1&user={k}"), vec![])),
        ("$cookie_user", |k| {
            (
                "/".into(),
                vec![("cookie".into(), format!("x=1; user={k}"))],
            )
        }),
        ("$request_uri", |k| (format!("/items/{k}"), vec![])),
        ("${arg_user}-$host$http_x_tenant", |k| {
            (
                format!("/?user={k}"),
                vec![("x-tenant".into(), "t1".into())],
            )
        }),
    ];
    for (var, ask) in cases {
        let (gw, _t) = clean_gateway(&balanced(&[("upstream-hash-by", var)], &addrs(&servers)));
        let map = owners(http_addr(&gw), &keys(60), 3, ask).await;
        let used: BTreeSet<_> = map.values().collect();
        // 60 keys over 4 endpoints: every endpoint gets some.
        assert_eq!(used.len(), 4, "{var}: {map:?}");
    }
}

#[tokio::test]
async fn hash_by_client_address_or_host_sends_one_client_to_one_endpoint() {
    let servers = echoes(3).await;
    for var in ["$remote_addr", "$host", "${binary_remote_addr}"] {
        let (gw, _t) = clean_gateway(&balanced(&[("upstream-hash-by", var)], &addrs(&servers)));
        let mut seen = BTreeSet::new();
        for _ in 0..20 {
            seen.insert(
                get_with(http_addr(&gw), "/", &[])
                    .await
                    .service()
                    .to_owned(),
            );
        }
        assert_eq!(seen.len(), 1, "{var}: {seen:?}");
    }
}

#[tokio::test]
async fn hash_by_subset_keeps_a_key_within_one_subset_of_endpoints() {
    let servers = echoes(6).await;
    let (gw, _t) = clean_gateway(&balanced(
        &[
            ("upstream-hash-by", "$arg_user"),
            ("upstream-hash-by-subset", "true"),
            ("upstream-hash-by-subset-size", "3"),
        ],
        &addrs(&servers),
    ));
    let mut tx = h1(http_addr(&gw)).await;
    let mut subsets = BTreeSet::new();
    for k in keys(24) {
        let mut seen = BTreeSet::new();
        for _ in 0..30 {
            let r = send1(&mut tx, get_req(HOST, &format!("/?user={k}"))).await;
            seen.insert(r.service().to_owned());
        }
        // Random within a subset of three: 30 requests see more than one of them.
        assert!((2..=3).contains(&seen.len()), "{k}: {seen:?}");
        subsets.insert(seen);
    }
    // Two subsets of three endpoints; keys land in both, never across them: two keys'
    // endpoints overlap only within one subset.
    let all: BTreeSet<_> = subsets.iter().flatten().collect();
    assert_eq!(all.len(), 6, "{subsets:?}");
    for a in &subsets {
        for b in &subsets {
            let union: BTreeSet<_> = a.union(b).collect();
            assert!(a.is_disjoint(b) || union.len() <= 3, "{subsets:?}");
        }
    }
}

#[tokio::test]
async fn higress_hash_key_applies_like_the_nginx_one() {
    let servers = echoes(3).await;
    let (gw, _t) = clean_gateway(&balanced(
        &[("higress.io/upstream-hash-by", "$http_x_user")],
        &addrs(&servers),
    ));
    let map = owners(http_addr(&gw), &keys(30), 3, |k| {
        ("/".into(), vec![("x-user".into(), k.into())])
    })
    .await;
    assert!(map.values().collect::<BTreeSet<_>>().len() > 1, "{map:?}");
}

#[tokio::test]
async fn removing_an_endpoint_moves_only_its_keys() {
    let servers = echoes(4).await;
    let all = addrs(&servers);
    let ann = [("upstream-hash-by", "$arg_user")];
    let (gw, table) = clean_gateway(&balanced(&ann, &all));
    let ask = |k: &str| (format!("/?user={k}"), vec![]);
    let before = owners(http_addr(&gw), &keys(120), 1, ask).await;
    // e3 goes away.
    table.publish(compile_yaml(&balanced(&ann, &all[..3])));
    let after = owners(http_addr(&gw), &keys(120), 1, ask).await;
    let mut moved = 0;
    for (k, was) in &before {
        if was == "e3" {
            moved += 1;
            assert_ne!(after[k], "e3");
        } else {
            assert_eq!(&after[k], was, "key {k} moved off a remaining endpoint");
        }
    }
    // About a quarter of the keys were on e3.
    assert!((10..=60).contains(&moved), "{moved} of 120 moved");
}

/// The value of cookie `name` in the `Set-Cookie` of `reply`, with the whole header.
fn set_cookie(reply: &Reply, name: &str) -> Option<(String, String)> {
    reply
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            let value = v.strip_prefix(&format!("{name}="))?.split(';').next()?;
            Some((value.to_owned(), v.to_owned()))
        })
}

#[tokio::test]
async fn affinity_cookie_is_set_with_its_attributes_and_honoured() {
    let servers = echoes(3).await;
    let (gw, _t) = clean_gateway(&balanced(
        &[
            ("affinity", "cookie"),
            ("session-cookie-name", "route"),
            ("session-cookie-path", "/shop"),
            ("session-cookie-max-age", "3600"),
            ("session-cookie-expires", "7200"),
        ],
        &addrs(&servers),
    ));
    let addr = http_addr(&gw);
    let mut sessions = BTreeSet::new();
    for _ in 0..6 {
        let first = get_with(addr, "/shop", &[]).await;
        let (value, header) = set_cookie(&first, "route").expect("affinity cookie");
        assert!(header.contains("; Path=/shop"), "{header}");
        assert!(header.contains("; Max-Age=3600"), "{header}");
        assert!(header.contains("; Expires="), "{header}");
        assert!(header.contains("; HttpOnly"), "{header}");
        // Nothing about the endpoint: no address, no port.
        assert_eq!(value.len(), 16, "{value}");
        for s in &servers {
            let port = s.addr().port().to_string();
            assert!(
                !header.contains(&port) && !header.contains("127.0.0.1"),
                "{header}"
            );
        }
        let cookie = format!("a=b; route={value}");
        for _ in 0..10 {
            let r = get_with(addr, "/shop", &[("cookie", &cookie)]).await;
            assert_eq!(r.service(), first.service(), "the session moved");
            assert!(set_cookie(&r, "route").is_none(), "a second cookie");
        }
        sessions.insert(first.service().to_owned());
    }
    // New sessions are spread.
    assert!(sessions.len() > 1, "{sessions:?}");
    // A cookie naming no endpoint gets a new session.
    let r = get_with(addr, "/shop", &[("cookie", "route=0123456789abcdef")]).await;
    assert!(set_cookie(&r, "route").is_some());
}

#[tokio::test]
async fn affinity_cookie_domain_secure_and_same_site() {
    let servers = echoes(2).await;
    let (gw, _t) = clean_gateway(&balanced(
        &[
            ("affinity", "cookie"),
            ("session-cookie-domain", "example.com"),
            ("session-cookie-secure", "true"),
            ("session-cookie-samesite", "None"),
            ("session-cookie-conditional-samesite-none", "true"),
        ],
        &addrs(&servers),
    ));
    let addr = http_addr(&gw);
    let modern = "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0.0.0 Safari/537.36";
    let r = get_with(addr, "/", &[("user-agent", modern)]).await;
    let (_, header) = set_cookie(&r, "INGRESSCOOKIE").expect("cookie");
    for part in [
        "; Path=/",
        "; Domain=example.com",
        "; Secure",
        "; SameSite=None",
    ] {
        assert!(header.contains(part), "{part} in {header}");
    }
    assert!(
        !header.contains("Max-Age") && !header.contains("Expires"),
        "{header}"
    );
    // A browser that rejects SameSite=None gets the cookie without it.
    let old = "Mozilla/5.0 (X11; Linux x86_64) Chrome/60.0.3112.90 Safari/537.36";
    let r = get_with(addr, "/", &[("user-agent", old)]).await;
    let (_, header) = set_cookie(&r, "INGRESSCOOKIE").expect("cookie");
    assert!(!header.contains("SameSite"), "{header}");
    assert!(header.contains("; Secure"), "{header}");
}

/// A hand-written upstream answering every request with `answer`, after `delay`.
async fn scripted_upstream(answer: &'static [u8], delay: Duration) -> SocketAddr {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while let Ok(n) = stream.read(&mut chunk).await {
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.drain(..end + 4);
                        tokio::time::sleep(delay).await;
                        if stream.write_all(answer).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    addr
}

/// An upstream that answers every request with a cookie of its own.
async fn cookie_upstream() -> SocketAddr {
    let answer = b"HTTP/1.1 200 OK\r\nSet-Cookie: app=1\r\nContent-Length: 2\r\n\r\nok";
    scripted_upstream(answer, Duration::ZERO).await
}

#[tokio::test]
async fn the_affinity_cookie_comes_beside_the_upstreams_own() {
    let (gw, _t) = clean_gateway(&balanced(
        &[("affinity", "cookie")],
        &[cookie_upstream().await],
    ));
    let r = get_with(http_addr(&gw), "/", &[]).await;
    let cookies: Vec<_> = r.headers.get_all("set-cookie").iter().collect();
    assert_eq!(cookies.len(), 2, "{cookies:?}");
    assert!(
        cookies.iter().any(|c| c.as_bytes() == b"app=1"),
        "{cookies:?}"
    );
    assert!(set_cookie(&r, "INGRESSCOOKIE").is_some());
}

#[tokio::test]
async fn replicas_sharing_the_affinity_key_honour_each_others_cookies() {
    let servers = echoes(3).await;
    let yaml = balanced(&[("affinity", "cookie")], &addrs(&servers));
    let key = b"0123456789abcdef0123456789abcdef";
    let (a, _ta) = keyed_gateway(&yaml, Some(key));
    let (b, _tb) = keyed_gateway(&yaml, Some(key));
    let (other, _to) = keyed_gateway(&yaml, Some(b"another key, 16 bytes or more"));
    for _ in 0..6 {
        let first = get_with(http_addr(&a), "/", &[]).await;
        let (value, _) = set_cookie(&first, "INGRESSCOOKIE").expect("cookie");
        let cookie = format!("INGRESSCOOKIE={value}");
        let r = get_with(http_addr(&b), "/", &[("cookie", &cookie)]).await;
        assert_eq!(r.service(), first.service(), "replica b moved the session");
        assert!(set_cookie(&r, "INGRESSCOOKIE").is_none());
        // A replica with another key knows no such endpoint: a new session.
        let r = get_with(http_addr(&other), "/", &[("cookie", &cookie)]).await;
        assert!(set_cookie(&r, "INGRESSCOOKIE").is_some());
    }
}

#[test]
fn an_affinity_key_is_at_least_16_bytes_and_never_shown() {
    let e = AffinityKey::new(b"short").unwrap_err();
    assert!(e.to_string().contains("at least 16 bytes"), "{e}");
    let k = AffinityKey::new(b"a secret of 16 bytes").unwrap();
    assert!(!format!("{k:?}").contains("secret"));
}

#[tokio::test]
async fn an_affinity_cookie_of_a_removed_endpoint_gets_a_new_session() {
    let servers = echoes(2).await;
    let all = addrs(&servers);
    let ann = [("affinity", "cookie"), ("affinity-mode", "persistent")];
    let (gw, table) = clean_gateway(&balanced(&ann, &all));
    let addr = http_addr(&gw);
    // A session on e1.
    let (value, first) = loop {
        let r = get_with(addr, "/", &[]).await;
        if r.service() == "e1" {
            break (set_cookie(&r, "INGRESSCOOKIE").expect("cookie").0, r);
        }
    };
    assert_eq!(first.service(), "e1");
    table.publish(compile_yaml(&balanced(&ann, &all[..1])));
    let r = get_with(addr, "/", &[("cookie", &format!("INGRESSCOOKIE={value}"))]).await;
    assert_eq!(r.service(), "e0");
    let (new, _) = set_cookie(&r, "INGRESSCOOKIE").expect("a new cookie");
    assert_ne!(new, value);
}

/// A main Ingress and a 50% canary, both with cookie affinity; `behavior` is the
/// canary's `affinity-canary-behavior`.
async fn canary_gateway(behavior: &str) -> (GatewayHandle, Vec<EchoServer>) {
    let main = echoes(2).await;
    let canary = vec![echo("canary").await];
    let mut yaml = balanced(&[("affinity", "cookie")], &addrs(&main));
    yaml.push_str(&annotate(
        &ingress("lb-canary", Some(HOST), &[("/", "Prefix", "svc-canary")]),
        &[
            ("canary", "true"),
            ("canary-weight", "50"),
            ("affinity", "cookie"),
            ("affinity-canary-behavior", behavior),
        ],
    ));
    yaml.push_str(&service("svc-canary", &addrs(&canary)));
    let (gw, _t) = clean_gateway(&yaml);
    let mut servers = main;
    servers.extend(canary);
    (gw, servers)
}

/// Requests without cookie until the canary answers one; its affinity cookie.
async fn canary_session(addr: SocketAddr) -> String {
    for _ in 0..200 {
        let r = get_with(addr, "/", &[]).await;
        if r.service() == "canary" {
            return set_cookie(&r, "INGRESSCOOKIE").expect("canary cookie").0;
        }
    }
    panic!("the 50% canary answered none of 200 requests");
}

#[tokio::test]
async fn a_client_affinitized_to_the_canary_stays_on_it() {
    let (gw, _servers) = canary_gateway("sticky").await;
    let addr = http_addr(&gw);
    let value = canary_session(addr).await;
    let cookie = format!("INGRESSCOOKIE={value}");
    for _ in 0..40 {
        let r = get_with(addr, "/", &[("cookie", &cookie)]).await;
        assert_eq!(r.service(), "canary");
    }
    // And one affinitized to a main endpoint stays there.
    let main = loop {
        let r = get_with(addr, "/", &[]).await;
        if r.service() != "canary" {
            break r;
        }
    };
    let (value, _) = set_cookie(&main, "INGRESSCOOKIE").expect("main cookie");
    let cookie = format!("INGRESSCOOKIE={value}");
    for _ in 0..40 {
        let r = get_with(addr, "/", &[("cookie", &cookie)]).await;
        assert_eq!(r.service(), main.service());
    }
}

#[tokio::test]
async fn legacy_canary_behavior_lets_the_weight_decide_again() {
    let (gw, _servers) = canary_gateway("legacy").await;
    let addr = http_addr(&gw);
    let value = canary_session(addr).await;
    let cookie = format!("INGRESSCOOKIE={value}");
    let mut seen = BTreeSet::new();
    // The chance that 100 requests at 50% all go the same way is 2^-99.
    for _ in 0..100 {
        seen.insert(
            get_with(addr, "/", &[("cookie", &cookie)])
                .await
                .service()
                .to_owned(),
        );
    }
    assert!(seen.contains("canary") && seen.len() > 1, "{seen:?}");
}
