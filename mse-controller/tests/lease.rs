//! Leader election against the in-memory API server, through the real kube-rs client.
#![cfg(test)]

mod status_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mse_controller::status::{LeaderElector, LeaderHandle, LeaseSettings};
use mse_test_apiserver::ApiServer;
use serde_json::{Value, json};
use status_support::{Gate, client, eventually, gated_client, within};
use tokio::sync::watch;

const NS: &str = "gateways";
const LEASE: &str = "mse-ingress-leader";

/// Short timings, so that expiry happens within the test.
fn settings(identity: &str, lease_secs: u64) -> LeaseSettings {
    let mut s = LeaseSettings::new(NS, LEASE, identity);
    s.lease_duration = Duration::from_secs(lease_secs);
    s.renew_deadline = s.lease_duration.mul_f64(0.75);
    s.retry_period = Duration::from_millis(100);
    s
}

fn lease(server: &ApiServer) -> Value {
    server
        .get("coordination.k8s.io/v1", "Lease", Some(NS), LEASE)
        .expect("the Lease exists")
}

fn holder(server: &ApiServer) -> Option<String> {
    server
        .get("coordination.k8s.io/v1", "Lease", Some(NS), LEASE)?
        .pointer("/spec/holderIdentity")?
        .as_str()
        .map(str::to_owned)
}

/// Records whether two replicas ever claimed leadership at the same time.
fn watch_overlap(a: watch::Receiver<bool>, b: watch::Receiver<bool>) -> Arc<AtomicBool> {
    let overlap = Arc::new(AtomicBool::new(false));
    for (mut mine, other) in [(a.clone(), b.clone()), (b, a)] {
        let overlap = Arc::clone(&overlap);
        tokio::spawn(async move {
            while mine.changed().await.is_ok() {
                if *mine.borrow_and_update() && *other.borrow() {
                    overlap.store(true, Ordering::SeqCst);
                }
            }
        });
    }
    overlap
}

async fn start(server: &ApiServer, identity: &str, lease_secs: u64) -> LeaderHandle {
    LeaderElector::new(client(server).await, settings(identity, lease_secs))
        .expect("valid settings")
        .spawn()
}

#[tokio::test]
async fn one_of_two_leads_and_the_other_takes_over_after_the_leader_stops() {
    let server = ApiServer::start().await.unwrap();
    let a = start(&server, "a", 2).await;
    let b = start(&server, "b", 2).await;
    let overlap = watch_overlap(a.subscribe(), b.subscribe());

    eventually("a leader", || a.is_leader() || b.is_leader()).await;
    let (leader, follower, follower_id) = if a.is_leader() {
        (a, b, "b")
    } else {
        (b, a, "a")
    };
    assert!(!follower.is_leader());
    let first = holder(&server).expect("held");
    assert_ne!(first, follower_id, "the Lease names the leader");
    assert_eq!(lease(&server)["spec"]["leaseTransitions"], 0);
    assert_eq!(lease(&server)["spec"]["leaseDurationSeconds"], 2);

    // The leader renews: its renewTime moves on while it leads.
    let renewed = lease(&server)["spec"]["renewTime"].clone();
    eventually("a renewal", || {
        lease(&server)["spec"]["renewTime"] != renewed
    })
    .await;
    assert_eq!(holder(&server).as_deref(), Some(first.as_str()));

    // Stopped without release, as a crash would: the Lease stays held until it expires.
    drop(leader);
    eventually("the other replica to take over", || follower.is_leader()).await;
    assert_eq!(holder(&server).as_deref(), Some(follower_id));
    let spec = &lease(&server)["spec"];
    assert_eq!(spec["leaseTransitions"], 1);
    // The takeover set a new acquireTime; renewals since moved only renewTime.
    let acquired = spec["acquireTime"].as_str().expect("acquireTime set");
    let renewed = spec["renewTime"].as_str().expect("renewTime set");
    assert!(acquired <= renewed, "{acquired} after {renewed}");
    assert!(!overlap.load(Ordering::SeqCst), "two replicas led at once");
}

#[tokio::test]
async fn a_released_lease_is_taken_over_without_waiting_for_expiry() {
    let server = ApiServer::start().await.unwrap();
    // A lease of 120 s: a takeover within the test's deadline cannot be an expiry.
    let a = start(&server, "a", 120).await;
    eventually("a to lead", || a.is_leader()).await;
    let b = start(&server, "b", 120).await;
    let mut b_leading = b.subscribe();

    within("the release", a.release()).await;
    assert_eq!(holder(&server), None::<String>, "released: no holder");
    within("b to lead", b_leading.wait_for(|l| *l))
        .await
        .unwrap();
    assert_eq!(holder(&server).as_deref(), Some("b"));
    assert_eq!(lease(&server)["spec"]["leaseTransitions"], 1);
    assert_eq!(lease(&server)["spec"]["leaseDurationSeconds"], 120);
}

#[tokio::test]
async fn a_lost_race_for_the_lease_is_a_409_and_leaves_one_leader() {
    let server = ApiServer::start().await.unwrap();
    // A released Lease: anyone may take it at once.
    server
        .create(json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": { "name": LEASE, "namespace": NS },
            "spec": { "leaseDurationSeconds": 1, "leaseTransitions": 3 }
        }))
        .unwrap();
    let gate = Gate::default();
    let mut a = LeaderElector::new(client(&server).await, settings("a", 2)).unwrap();
    let mut b = LeaderElector::new(gated_client(&server, &gate).await, settings("b", 2)).unwrap();

    // b reads the Lease and sends its takeover; the gate holds the write.
    let open = gate.arm(http::Method::PUT, "/leases/");
    let b_round = tokio::spawn(async move {
        let led = b.try_acquire_or_renew().await;
        (b, led)
    });
    within("b's takeover to be held", gate.held()).await;
    // Meanwhile a takes the Lease.
    assert!(a.try_acquire_or_renew().await.unwrap());
    let _ = open.send(());
    let (mut b, b_led) = within("b's round", b_round).await.unwrap();
    assert!(!b_led.unwrap(), "b's write carried a stale resourceVersion");
    assert!(!b.is_leader());
    assert!(a.is_leader());

    let puts: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT")
        .collect();
    assert_eq!(puts.len(), 2, "{puts:?}");
    let bodies: Vec<Value> = puts
        .iter()
        .map(|r| serde_json::from_str(&r.body).unwrap())
        .collect();
    assert_eq!(bodies[0]["spec"]["holderIdentity"], "a");
    assert_eq!(bodies[1]["spec"]["holderIdentity"], "b");
    assert_eq!(
        bodies[0]["metadata"]["resourceVersion"], bodies[1]["metadata"]["resourceVersion"],
        "both wrote over the version they read"
    );
    assert_eq!(holder(&server).as_deref(), Some("a"));
    assert_eq!(lease(&server)["spec"]["leaseTransitions"], 4);

    // The loser's next round sees a's fresh Lease and stays a follower.
    assert!(!b.try_acquire_or_renew().await.unwrap());
    assert!(a.try_acquire_or_renew().await.unwrap());
    assert_eq!(holder(&server).as_deref(), Some("a"));
}

#[tokio::test]
async fn a_leader_whose_renewals_hang_steps_down_at_the_renew_deadline() {
    let server = ApiServer::start().await.unwrap();
    let gate = Gate::default();
    let elector = LeaderElector::new(gated_client(&server, &gate).await, settings("a", 2)).unwrap();
    let handle = elector.spawn();
    let mut leading = handle.subscribe();
    within("a to lead", leading.wait_for(|l| *l)).await.unwrap();

    // Its next renewal never reaches the server.
    let _open = gate.arm(http::Method::PUT, "/leases/");
    within("a to step down", leading.wait_for(|l| !*l))
        .await
        .unwrap();
    assert_eq!(holder(&server).as_deref(), Some("a"), "nobody else took it");
}

#[test]
fn settings_that_cannot_work_are_refused_with_the_setting_named() {
    let mut s = LeaseSettings::new(NS, LEASE, "a");
    assert!(s.validate().is_ok());
    s.renew_deadline = s.lease_duration;
    let e = s.validate().unwrap_err().to_string();
    assert!(e.contains("renew deadline"), "{e}");
    let mut s = LeaseSettings::new(NS, LEASE, "a");
    s.lease_duration = Duration::from_millis(1500);
    assert!(
        s.validate()
            .unwrap_err()
            .to_string()
            .contains("lease duration")
    );
    let mut s = LeaseSettings::new(NS, LEASE, "a");
    s.retry_period = s.renew_deadline;
    assert!(
        s.validate()
            .unwrap_err()
            .to_string()
            .contains("retry period")
    );
    let s = LeaseSettings::new(NS, LEASE, "");
    assert!(s.validate().unwrap_err().to_string().contains("identity"));
}
