use std::time::Duration;

use mse_router::{IpSet, cidr_list};

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn limiter(limits: LocalLimits) -> Arc<Limiter> {
    Arc::new(Limiter::new(&limits))
}

fn per_client_rpm(rpm: u32, multiplier: u32) -> LocalLimits {
    LocalLimits {
        client_rpm: Some(Rate::new(rpm, true, multiplier)),
        ..LocalLimits::default()
    }
}

/// How many of `n` requests at `at` pass.
fn passed(l: &Arc<Limiter>, client: IpAddr, at: Instant, n: usize) -> usize {
    (0..n).filter(|_| l.admit(client, at).is_ok()).count()
}

#[test]
fn a_client_gets_its_burst_then_one_request_per_interval() {
    let l = limiter(per_client_rpm(2, 3));
    let t0 = l.base;
    assert_eq!(passed(&l, ip("10.0.0.1"), t0, 20), 6);
    assert_eq!(l.admit(ip("10.0.0.1"), t0).unwrap_err(), Over::ClientRate);
    // Half a minute later, one token is back.
    let t1 = t0 + Duration::from_secs(30);
    assert_eq!(passed(&l, ip("10.0.0.1"), t1, 5), 1);
    // Another client has its own bucket.
    assert_eq!(passed(&l, ip("10.0.0.2"), t1, 20), 6);
    // After the whole burst's time, the bucket is full again, and no fuller.
    let t2 = t1 + Duration::from_secs(3600);
    assert_eq!(passed(&l, ip("10.0.0.1"), t2, 20), 6);
}

#[test]
fn rps_and_rpm_both_apply() {
    let l = limiter(LocalLimits {
        client_rps: Some(Rate::new(10, false, 1)),
        client_rpm: Some(Rate::new(4, true, 1)),
        ..LocalLimits::default()
    });
    assert_eq!(passed(&l, ip("10.0.0.1"), l.base, 20), 4);
}

#[test]
fn exempt_clients_skip_the_per_client_limits_but_not_the_route_limit() {
    let l = limiter(LocalLimits {
        client_rpm: Some(Rate::new(1, true, 1)),
        exempt: Some(IpSet::new(&cidr_list("10.1.0.0/16").unwrap())),
        ..LocalLimits::default()
    });
    assert_eq!(passed(&l, ip("10.1.2.3"), l.base, 50), 50);
    assert_eq!(passed(&l, ip("10.2.2.3"), l.base, 50), 1);
    assert_eq!(l.remembered(), 1);
    let l = limiter(LocalLimits {
        route: Some(Rate::new(1, true, 2)),
        client_rpm: Some(Rate::new(100, true, 1)),
        exempt: Some(IpSet::new(&cidr_list("10.1.0.0/16").unwrap())),
        ..LocalLimits::default()
    });
    assert_eq!(passed(&l, ip("10.1.2.3"), l.base, 5), 2);
    assert_eq!(l.admit(ip("10.2.2.3"), l.base).unwrap_err(), Over::Route);
}

#[test]
fn the_route_bucket_is_shared_by_all_clients() {
    let l = limiter(LocalLimits {
        route: Some(Rate::new(1, true, 3)),
        ..LocalLimits::default()
    });
    assert_eq!(passed(&l, ip("10.0.0.1"), l.base, 2), 2);
    assert_eq!(passed(&l, ip("10.0.0.2"), l.base, 5), 1);
    assert_eq!(l.admit(ip("10.0.0.3"), l.base).unwrap_err(), Over::Route);
    assert_eq!(l.remembered(), 0);
}

#[test]
fn connections_are_counted_until_their_slot_is_dropped() {
    let l = limiter(LocalLimits {
        connections: Some(2),
        ..LocalLimits::default()
    });
    let a = l.admit(ip("10.0.0.1"), l.base).unwrap().unwrap();
    let b = l.admit(ip("10.0.0.1"), l.base).unwrap().unwrap();
    assert_eq!(
        l.admit(ip("10.0.0.1"), l.base).unwrap_err(),
        Over::Connections
    );
    let other = l.admit(ip("10.0.0.2"), l.base).unwrap();
    assert!(other.is_some());
    drop(a);
    let c = l.admit(ip("10.0.0.1"), l.base).unwrap();
    assert_eq!(
        l.admit(ip("10.0.0.1"), l.base).unwrap_err(),
        Over::Connections
    );
    drop((b, c, other));
    assert_eq!(passed(&l, ip("10.0.0.1"), l.base, 2), 2);
}

#[test]
fn memory_is_bounded_and_forgetting_never_grants_more_than_a_burst() {
    let l = limiter(per_client_rpm(1, 2));
    let t0 = l.base;
    let total = SHARDS * PER_SHARD * 2;
    for i in 0..total {
        let client = IpAddr::from((0x0a00_0000u32 + i as u32).to_be_bytes());
        assert_eq!(passed(&l, client, t0, 3), 2, "client {i}");
        assert!(l.remembered() <= SHARDS * PER_SHARD);
    }
    // A client that may have been forgotten gets at most its burst again.
    let first = ip("10.0.0.0");
    assert!(passed(&l, first, t0, 5) <= 2);
}

#[test]
fn clients_holding_requests_are_never_forgotten() {
    let l = limiter(LocalLimits {
        connections: Some(1),
        ..LocalLimits::default()
    });
    let mut held = Vec::new();
    let mut refused = 0;
    for i in 0..(SHARDS * PER_SHARD + 100) {
        let client = IpAddr::from((0x0a00_0000u32 + i as u32).to_be_bytes());
        match l.admit(client, l.base) {
            Ok(slot) => held.push((client, slot)),
            Err(over) => {
                assert_eq!(over, Over::ClientRate);
                refused += 1;
            }
        }
    }
    assert!(refused >= 100, "{refused}");
    for (client, _) in held.iter().take(50) {
        assert_eq!(l.admit(*client, l.base).unwrap_err(), Over::Connections);
    }
    held.clear();
    assert_eq!(passed(&l, ip("10.0.0.0"), l.base, 1), 1);
}

#[test]
fn limiters_carry_over_for_the_same_route_and_limits() {
    let yaml = |rpm: &str| {
        format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{ name: s, namespace: default }}\nspec: {{ ports: [{{ port: 80 }}] }}\n---\n\
             apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{ name: a, namespace: default, annotations: {{ nginx.ingress.kubernetes.io/limit-rpm: \"{rpm}\" }} }}\n\
             spec: {{ ingressClassName: mse, rules: [{{ host: a.test, http: {{ paths: [{{ path: /, pathType: Prefix, backend: {{ service: {{ name: s, port: {{ number: 80 }} }} }} }}] }} }}] }}\n"
        )
    };
    let compile = |y: &str| {
        let mut snapshot = mse_model::Snapshot::default();
        snapshot.extend(mse_model::load_manifests(y, None).objects);
        mse_router::compile(&snapshot, &mse_router::CompileOptions::default())
    };
    let t1 = compile(&yaml("1"));
    assert_eq!(t1.routes().len(), 1, "{:#?}", t1.diagnostics());
    let l1 = plan(&t1, None);
    let limiter = l1.iter().flatten().next().unwrap();
    assert!(limiter.admit(ip("10.0.0.1"), Instant::now()).is_ok());
    let t2 = compile(&yaml("1"));
    let l2 = plan(&t2, Some((&t1, &l1)));
    let kept = l2.iter().flatten().next().unwrap();
    assert!(Arc::ptr_eq(limiter, kept));
    let t3 = compile(&yaml("2"));
    let l3 = plan(&t3, Some((&t2, &l2)));
    assert!(!Arc::ptr_eq(kept, l3.iter().flatten().next().unwrap()));
}
