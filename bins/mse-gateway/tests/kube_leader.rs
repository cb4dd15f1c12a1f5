//! Two `mse-gateway` processes in kube mode against one in-memory API server: both serve
//! traffic, only the Lease holder writes Ingress status, and when it is killed the other
//! takes over and writes.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail the test loudly"
)]

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use mse_test_apiserver::ApiServer;
use serde_json::{Value, json};
use support::kube::cluster;
use support::{PATIENCE, backends, eventually};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const NS: &str = "shop";
const ADDRESS: &str = "203.0.113.7";

/// A free loopback port: bound, noted, released for the child to bind.
async fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
}

/// One HTTP/1.1 request; the status code, or `None` when the connection failed.
async fn status_of(addr: SocketAddr, host: &str, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(addr).await.ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.ok()?;
    let mut buf = Vec::new();
    tokio::time::timeout(PATIENCE, s.read_to_end(&mut buf))
        .await
        .ok()?
        .ok()?;
    let head = String::from_utf8_lossy(&buf);
    head.split(' ').nth(1)?.parse().ok()
}

struct Replica {
    name: &'static str,
    child: Child,
    http: SocketAddr,
    admin: SocketAddr,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn replica(name: &'static str, kubeconfig: &Path) -> Replica {
    let (http, https, admin) = (free_addr().await, free_addr().await, free_addr().await);
    let child = Command::new(env!("CARGO_BIN_EXE_mse-gateway"))
        .args(["--kubeconfig", kubeconfig.to_str().unwrap()])
        .args(["--http-addr", &http.to_string()])
        .args(["--https-addr", &https.to_string()])
        .args(["--admin-addr", &admin.to_string()])
        .args(["--workers", "1", "--access-log", "false"])
        .args(["--publish-status-address", ADDRESS])
        .args(["--election-namespace", "ingress"])
        .args(["--election-lease-duration", "2s"])
        .args(["--election-renew-deadline", "1500ms"])
        .args(["--election-retry-period", "200ms"])
        .env("POD_NAME", name)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Replica {
        name,
        child,
        http,
        admin,
    }
}

fn lease_holder(api: &ApiServer) -> Option<String> {
    api.get(
        "coordination.k8s.io/v1",
        "Lease",
        Some("ingress"),
        "mse-ingress-leader",
    )?
    .pointer("/spec/holderIdentity")?
    .as_str()
    .map(str::to_owned)
}

fn lb_status(api: &ApiServer, name: &str) -> Value {
    api.get("networking.k8s.io/v1", "Ingress", Some(NS), name)
        .and_then(|i| i.pointer("/status/loadBalancer/ingress").cloned())
        .unwrap_or(Value::Null)
}

fn ingress(name: &str, host: &str) -> Value {
    support::kube::ingress(NS, name, host, "web")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_writes_status_and_the_other_replica_takes_over_when_it_is_killed() {
    let k = cluster().await;
    let (api, kubeconfig) = (&k.api, &k.kubeconfig);
    let echo = backends(&["web"]).await;
    support::kube::service(api, NS, "web", &[&echo[0]]);
    api.apply(ingress("shop", "shop.test"));

    let mut replicas = vec![
        replica("gw-a", kubeconfig).await,
        replica("gw-b", kubeconfig).await,
    ];
    for r in &replicas {
        eventually(&format!("{} to be ready", r.name), || async {
            status_of(r.admin, "admin", "/readyz").await == Some(200)
        })
        .await;
    }
    // Both serve traffic, whichever leads.
    for r in &replicas {
        eventually(&format!("{} to serve shop.test", r.name), || async {
            status_of(r.http, "shop.test", "/").await == Some(200)
        })
        .await;
    }
    let expected = json!([{ "ip": ADDRESS }]);
    eventually("the leader to write status", || async {
        lb_status(api, "shop") == expected
    })
    .await;
    let holder = lease_holder(api).expect("a replica holds the Lease");
    let leader = replicas
        .iter()
        .position(|r| holder.starts_with(&format!("{}_", r.name)))
        .unwrap_or_else(|| panic!("the holder {holder:?} is one of the replicas"));

    // Kill the leader (no release: the Lease must expire).
    let mut killed = replicas.remove(leader);
    killed.child.kill().unwrap();
    killed.child.wait().unwrap();
    let survivor = &replicas[0];
    eventually("the other replica to take over the Lease", || async {
        lease_holder(api).is_some_and(|h| h.starts_with(&format!("{}_", survivor.name)))
    })
    .await;

    // The new leader writes status for an Ingress created after the takeover, and keeps
    // serving throughout.
    api.apply(ingress("blog", "blog.test"));
    eventually("the new leader to write status", || async {
        lb_status(api, "blog") == expected
    })
    .await;
    assert_eq!(lb_status(api, "shop"), expected);
    assert_eq!(status_of(survivor.http, "shop.test", "/").await, Some(200));
    eventually("the survivor to serve blog.test", || async {
        status_of(survivor.http, "blog.test", "/").await == Some(200)
    })
    .await;
    let lease = api
        .get(
            "coordination.k8s.io/v1",
            "Lease",
            Some("ingress"),
            "mse-ingress-leader",
        )
        .unwrap();
    assert_eq!(lease["spec"]["leaseTransitions"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_shutting_down_releases_the_lease() {
    let k = cluster().await;
    let api = &k.api;
    api.apply(ingress("shop", "shop.test"));

    let mut o = support::kube::options(&k.kubeconfig, &[]);
    o.writes.publish = Some(mse_controller::status::PublishAddress::parse_fixed(ADDRESS).unwrap());
    o.writes.lease.namespace = "ingress".into();
    o.writes.lease.identity = "gw-solo_abcde".into();
    let running = mse_gateway::start(o).await.unwrap();
    let mut leading = running.leadership().expect("kube mode elects");
    tokio::time::timeout(PATIENCE, leading.wait_for(|l| *l))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lease_holder(api).as_deref(), Some("gw-solo_abcde"));
    eventually("status", || async {
        lb_status(api, "shop") == json!([{ "ip": ADDRESS }])
    })
    .await;

    running.shutdown().await;
    assert_eq!(lease_holder(api), None, "released for the next replica");
    // Status stays: other replicas still serve the Ingress.
    assert_eq!(lb_status(api, "shop"), json!([{ "ip": ADDRESS }]));
}
