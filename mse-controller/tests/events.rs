//! Diagnostics as Events against the in-memory API server, through the real kube-rs client.
#![cfg(test)]

mod status_support;

use std::sync::Arc;
use std::time::Duration;

use mse_controller::run_compile_loop;
use mse_controller::status::{DiagnosticEvents, EventSettings};
use mse_model::{Diagnostic, Kind, ObjectKey, Snapshot};
use mse_router::CompileOptions;
use mse_test_apiserver::ApiServer;
use serde_json::{Value, json};
use status_support::{client, eventually, ingress, snapshot, within, writes_since};
use tokio::sync::watch;

const EVENTS_PATH: &str = "/apis/events.k8s.io/v1/namespaces/default/events";

fn shop() -> ObjectKey {
    ObjectKey::new(Kind::Ingress, "default", "shop")
}

fn bad_timeout(object: ObjectKey) -> Diagnostic {
    Diagnostic::error(
        "invalid-value",
        "expected seconds; the default of 60s applies",
    )
    .object(object)
    .key("nginx.ingress.kubernetes.io/proxy-read-timeout")
    .value("ten")
}

fn events(server: &ApiServer) -> Vec<Value> {
    server.list("events.k8s.io/v1", "Event")
}

async fn setup() -> (ApiServer, kube::Client, Snapshot) {
    let server = ApiServer::start().await.unwrap();
    server.apply(ingress("shop", "mse", "shop.example.com"));
    server.apply(ingress("blog", "mse", "blog.example.com"));
    let client = client(&server).await;
    let snapshot = snapshot(&client, 1).await;
    (server, client, snapshot)
}

#[tokio::test]
async fn a_diagnostic_that_persists_across_compiles_is_one_event() {
    let (server, client, snapshot) = setup().await;
    let mut events_out = DiagnosticEvents::new(client, "gw-0_abcde");
    let diagnostics = [bad_timeout(shop())];
    let before = server.requests().len();
    for _ in 0..50 {
        events_out.report(&diagnostics, &snapshot).await;
    }
    let writes = writes_since(&server, before);
    assert_eq!(writes.len(), 1, "{writes:?}");
    let stored = events(&server);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["reason"], "invalid-value");
    assert!(stored[0].get("series").is_none_or(Value::is_null));
}

#[tokio::test]
async fn the_event_post_carries_what_kubectl_describe_shows() {
    let (server, client, snapshot) = setup().await;
    let uid = server
        .get("networking.k8s.io/v1", "Ingress", Some("default"), "shop")
        .unwrap()["metadata"]["uid"]
        .clone();
    let mut events_out = DiagnosticEvents::new(client, "gw-0_abcde");
    let before = server.requests().len();
    let flushed = events_out.report(&[bad_timeout(shop())], &snapshot).await;
    assert_eq!(flushed.created, 1);

    let writes = writes_since(&server, before);
    assert_eq!(writes.len(), 1);
    let post = &writes[0];
    assert_eq!(post.method, "POST");
    assert_eq!(post.path, EVENTS_PATH);
    assert_eq!(post.content_type.as_deref(), Some("application/json"));
    let body: Value = serde_json::from_str(&post.body).unwrap();
    assert_eq!(body["apiVersion"], "events.k8s.io/v1");
    assert_eq!(body["kind"], "Event");
    assert_eq!(body["metadata"]["namespace"], "default");
    let name = body["metadata"]["name"].as_str().unwrap();
    let suffix = name.strip_prefix("shop.").expect("named after the object");
    assert!(
        !suffix.is_empty() && suffix.chars().all(|c| c.is_ascii_hexdigit()),
        "{name}"
    );
    assert_eq!(body["type"], "Warning");
    assert_eq!(body["reason"], "invalid-value");
    assert_eq!(body["action"], "Compile");
    assert_eq!(
        body["note"],
        "nginx.ingress.kubernetes.io/proxy-read-timeout: expected seconds; the default of 60s applies (value \"ten\")"
    );
    assert_eq!(
        body["regarding"],
        json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "namespace": "default", "name": "shop", "uid": uid,
        })
    );
    assert_eq!(body["reportingController"], "mse.alibabacloud.com/ingress");
    assert_eq!(body["reportingInstance"], "gw-0_abcde");
    // MicroTime: RFC 3339 in UTC with microseconds.
    let time = body["eventTime"].as_str().unwrap();
    assert!(
        time.ends_with('Z') && time.len() == "2024-01-01T00:00:00.000000Z".len(),
        "{time}"
    );
    assert!(body.get("series").is_none_or(Value::is_null));
}

#[tokio::test]
async fn each_object_and_each_problem_has_its_own_event() {
    let (server, client, snapshot) = setup().await;
    let mut events_out = DiagnosticEvents::new(client, "gw-0_abcde");
    let blog = ObjectKey::new(Kind::Ingress, "default", "blog");
    let other_key = Diagnostic::error("invalid-value", "expected a size")
        .object(shop())
        .key("nginx.ingress.kubernetes.io/proxy-body-size")
        .value("huge");
    let info =
        Diagnostic::info("not-applied", "server-snippet is not applied").object(blog.clone());
    let diagnostics = vec![bad_timeout(shop()), bad_timeout(blog), other_key, info];
    for _ in 0..10 {
        events_out.report(&diagnostics, &snapshot).await;
    }
    let stored = events(&server);
    assert_eq!(stored.len(), 4, "{stored:#?}");
    let mut seen: Vec<(String, String, String)> = stored
        .iter()
        .map(|e| {
            (
                e["regarding"]["name"].as_str().unwrap().to_owned(),
                e["reason"].as_str().unwrap().to_owned(),
                e["type"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    seen.sort();
    let owned = |a: &str, b: &str, c: &str| (a.to_owned(), b.to_owned(), c.to_owned());
    assert_eq!(
        seen,
        [
            owned("blog", "invalid-value", "Warning"),
            owned("blog", "not-applied", "Normal"),
            owned("shop", "invalid-value", "Warning"),
            owned("shop", "invalid-value", "Warning"),
        ]
    );
}

#[tokio::test]
async fn series_updates_are_patches_bounded_by_the_interval() {
    let (server, client, snapshot) = setup().await;
    // No interval: every compile may write the series (bounded by one write per compile).
    let mut settings = EventSettings::default();
    settings.series_interval = Duration::ZERO;
    let mut events_out = DiagnosticEvents::with_settings(client, "gw-0_abcde", settings);
    let diagnostics = [bad_timeout(shop())];
    let before = server.requests().len();
    for _ in 0..3 {
        events_out.report(&diagnostics, &snapshot).await;
    }
    let writes = writes_since(&server, before);
    assert_eq!(writes.len(), 3, "{writes:?}");
    let name = serde_json::from_str::<Value>(&writes[0].body).unwrap()["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    for (patch, count) in writes[1..].iter().zip([2, 3]) {
        assert_eq!(patch.method, "PATCH");
        assert_eq!(patch.path, format!("{EVENTS_PATH}/{name}"));
        assert_eq!(
            patch.content_type.as_deref(),
            Some("application/merge-patch+json")
        );
        let body: Value = serde_json::from_str(&patch.body).unwrap();
        assert_eq!(body["series"]["count"], count);
        assert!(body["series"]["lastObservedTime"].is_string());
    }
    let stored = events(&server);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["series"]["count"], 3);
    assert_eq!(
        stored[0]["reason"], "invalid-value",
        "the Event itself is unchanged"
    );

    // The Event expired on the server: the next write creates a new one.
    server.delete("events.k8s.io/v1", "Event", Some("default"), &name);
    let flushed = events_out.report(&diagnostics, &snapshot).await;
    assert_eq!(flushed.created, 1);
    assert_eq!(events(&server).len(), 1);
}

#[tokio::test]
async fn the_rate_limits_defer_what_exceeds_them() {
    let (server, client, snapshot) = setup().await;
    let mut settings = EventSettings::default();
    settings.object_burst = 2;
    settings.object_refill = Duration::from_secs(3600);
    let mut events_out = DiagnosticEvents::with_settings(client.clone(), "gw-0_abcde", settings);
    let many: Vec<Diagnostic> = (0..5)
        .map(|i| Diagnostic::warning("invalid-value", format!("problem {i}")).object(shop()))
        .collect();
    let flushed = events_out.report(&many, &snapshot).await;
    assert_eq!((flushed.created, flushed.deferred), (2, 3));
    // Another object has its own bucket.
    let blog = bad_timeout(ObjectKey::new(Kind::Ingress, "default", "blog"));
    let mut with_blog = many.clone();
    with_blog.push(blog);
    let flushed = events_out.report(&with_blog, &snapshot).await;
    assert_eq!((flushed.created, flushed.deferred), (1, 3));
    assert_eq!(events(&server).len(), 3);

    // The total bucket holds back every object.
    let mut settings = EventSettings::default();
    settings.total_burst = 1;
    settings.total_refill = Duration::from_secs(3600);
    let mut limited = DiagnosticEvents::with_settings(client.clone(), "gw-1", settings);
    let flushed = limited
        .report(
            &[
                bad_timeout(shop()),
                bad_timeout(ObjectKey::new(Kind::Ingress, "default", "blog")),
            ],
            &snapshot,
        )
        .await;
    assert_eq!((flushed.created, flushed.deferred), (1, 1));
}

#[tokio::test]
async fn diagnostics_without_an_object_are_skipped() {
    let (server, client, snapshot) = setup().await;
    let mut events_out = DiagnosticEvents::new(client, "gw-0_abcde");
    let before = server.requests().len();
    let file_only = Diagnostic::error("unreadable-file", "permission denied");
    let flushed = events_out.report(&[file_only], &snapshot).await;
    assert_eq!(flushed.created, 0);
    assert!(writes_since(&server, before).is_empty());
}

/// The compile loop's output in a `watch`, as the gateway wires it.
fn compiled_watch(
    snapshot: Snapshot,
) -> (
    watch::Sender<Arc<Snapshot>>,
    watch::Receiver<Option<mse_controller::Compiled>>,
) {
    let (snapshot_tx, snapshots) = watch::channel(Arc::new(snapshot));
    let (tx, rx) = watch::channel(None);
    tokio::spawn(run_compile_loop(
        snapshots,
        CompileOptions::default(),
        move |c| {
            tx.send_replace(Some(c));
        },
    ));
    (snapshot_tx, rx)
}

#[tokio::test]
async fn only_the_leader_reports_compile_diagnostics() {
    let server = ApiServer::start().await.unwrap();
    // No Service "web": the compile reports missing-service on each Ingress.
    server.apply(ingress("shop", "mse", "shop.example.com"));
    let client = client(&server).await;
    let (_snapshot_tx, mut compiled) = compiled_watch(snapshot(&client, 1).await);
    within("the first compile", compiled.wait_for(Option::is_some))
        .await
        .unwrap();

    // Not leading: every input is there before it starts; it ends when leadership's
    // channel closes, having written nothing.
    let (leader_tx, leader) = watch::channel(false);
    let before = server.requests().len();
    let task =
        tokio::spawn(DiagnosticEvents::new(client.clone(), "gw-1").run(compiled.clone(), leader));
    drop(leader_tx);
    within("the reporter to stop", task).await.unwrap();
    assert!(writes_since(&server, before).is_empty());

    let (leader_tx, leader) = watch::channel(false);
    let task = tokio::spawn(DiagnosticEvents::new(client, "gw-0").run(compiled, leader));
    leader_tx.send_replace(true);
    eventually("the leader's Event", || {
        events(&server)
            .iter()
            .any(|e| e["reason"] == "missing-service" && e["regarding"]["name"] == "shop")
    })
    .await;
    assert!(
        events(&server)
            .iter()
            .all(|e| e["reportingInstance"] == "gw-0")
    );
    drop(leader_tx);
    within("the reporter to stop", task).await.unwrap();
}
