//! File mode end to end: snapshots through the compile loop, and a watched directory compiled
//! to routes that follow its edits.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "helpers outside #[test] fns fail the test loudly"
)]

mod support;

use std::sync::Arc;

use mse_controller::{Compiled, FileSource, run_compile_loop};
use mse_model::Snapshot;
use mse_router::{CompileOptions, RequestHead};
use support::*;
use tokio::sync::{mpsc, watch};
use tokio::time::timeout;

// --- the compile loop ---

fn snapshot_with(generation: u64, yaml: &str) -> Arc<Snapshot> {
    let loaded = mse_model::load_manifests(yaml, Some("test.yaml"));
    let mut snapshot = Snapshot {
        generation,
        diagnostics: loaded.diagnostics,
        ..Snapshot::default()
    };
    snapshot.extend(loaded.objects);
    Arc::new(snapshot)
}

fn spawn_loop(
    rx: watch::Receiver<Arc<Snapshot>>,
) -> (
    mpsc::UnboundedReceiver<Compiled>,
    tokio::task::JoinHandle<()>,
) {
    spawn_loop_with(rx, CompileOptions::default())
}

fn spawn_loop_with(
    rx: watch::Receiver<Arc<Snapshot>>,
    options: CompileOptions,
) -> (
    mpsc::UnboundedReceiver<Compiled>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, published) = mpsc::unbounded_channel();
    let task = tokio::spawn(run_compile_loop(rx, options, move |c| {
        tx.send(c).unwrap();
    }));
    (published, task)
}

async fn next_compiled(published: &mut mpsc::UnboundedReceiver<Compiled>) -> Compiled {
    timeout(BOUND, published.recv())
        .await
        .expect("nothing published in time")
        .expect("loop ended")
}

fn gateway_config_map(data: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{ name: gateway, namespace: ingress }}\ndata: {{ {data} }}\n"
    )
}

#[tokio::test]
async fn compile_loop_keeps_the_last_good_global_value_across_snapshots() {
    let options = CompileOptions {
        configmap: Some("ingress/gateway".parse().unwrap()),
        ..CompileOptions::default()
    };
    let (tx, rx) = watch::channel(snapshot_with(
        1,
        &gateway_config_map("keep-alive-requests: \"2\""),
    ));
    let (mut published, task) = spawn_loop_with(rx, options);
    let first = next_compiled(&mut published).await;
    assert_eq!(first.table.global().client.keep_alive_requests, 2);

    // A bad value: the previous table's value stays, and the other key applies.
    tx.send(snapshot_with(
        2,
        &gateway_config_map("keep-alive-requests: \"lots\", keep-alive: \"5\""),
    ))
    .unwrap();
    let second = next_compiled(&mut published).await;
    let g = second.table.global();
    assert_eq!(g.client.keep_alive_requests, 2);
    assert_eq!(g.client.keep_alive.as_secs(), 5);
    let d = second
        .diagnostics()
        .find(|d| d.code == "invalid-config-value")
        .expect("the bad value is reported");
    assert_eq!(d.origin.key.as_deref(), Some("keep-alive-requests"));
    assert_eq!(d.value.as_deref(), Some("lots"));

    // Still bad on the next snapshot: still the last good value.
    tx.send(snapshot_with(
        3,
        &gateway_config_map("keep-alive-requests: \"lots\""),
    ))
    .unwrap();
    let third = next_compiled(&mut published).await;
    assert_eq!(third.table.global().client.keep_alive_requests, 2);
    drop(tx);
    timeout(BOUND, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn compile_loop_publishes_the_first_snapshot_and_each_change() {
    let (tx, rx) = watch::channel(snapshot_with(
        1,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: p }\n",
    ));
    let (mut published, task) = spawn_loop(rx);

    let first = next_compiled(&mut published).await;
    assert_eq!(first.generation(), 1);
    assert_eq!(first.table.generation(), 1);
    // The load diagnostics travel with the table.
    assert_eq!(first.load_diagnostics.len(), 1);
    assert_eq!(first.load_diagnostics[0].code, "unknown-kind");
    assert!(first.diagnostics().any(|d| d.code == "unknown-kind"));

    tx.send(snapshot_with(2, &service("web"))).unwrap();
    let second = next_compiled(&mut published).await;
    assert_eq!(second.generation(), 2);
    assert!(second.load_diagnostics.is_empty());

    // The source going away ends the loop.
    drop(tx);
    timeout(BOUND, task).await.unwrap().unwrap();
    assert!(published.recv().await.is_none());
}

#[tokio::test]
async fn compile_loop_skips_the_generation_zero_placeholder() {
    let (tx, rx) = watch::channel(Arc::new(Snapshot::default()));
    let (mut published, task) = spawn_loop(rx);
    tx.send(snapshot_with(1, "")).unwrap();
    assert_eq!(next_compiled(&mut published).await.generation(), 1);
    drop(tx);
    timeout(BOUND, task).await.unwrap().unwrap();
    assert!(
        published.recv().await.is_none(),
        "generation 0 was never published"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compile_loop_compiles_only_the_newest_of_snapshots_sent_while_busy() {
    let (tx, rx) = watch::channel(snapshot_with(1, ""));
    let (published_tx, mut published) = mpsc::unbounded_channel();
    let (gate, gate_rx) = std::sync::mpsc::channel::<()>();
    // Publishing generation 1 blocks until the test has sent more snapshots: the loop is
    // busy the whole time.
    let task = tokio::spawn(run_compile_loop(
        rx,
        CompileOptions::default(),
        move |c: Compiled| {
            let generation = c.generation();
            published_tx.send(c).unwrap();
            if generation == 1 {
                gate_rx.recv_timeout(BOUND).unwrap();
            }
        },
    ));

    assert_eq!(next_compiled(&mut published).await.generation(), 1);
    for generation in 2..=5 {
        tx.send(snapshot_with(generation, "")).unwrap();
    }
    gate.send(()).unwrap();
    assert_eq!(next_compiled(&mut published).await.generation(), 5);
    drop(tx);
    timeout(BOUND, task).await.unwrap().unwrap();
    assert!(
        published.recv().await.is_none(),
        "generations 2 to 4 were skipped"
    );
}

#[tokio::test]
async fn watched_directory_compiles_to_routes_that_follow_edits() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("shop.yaml");
    write(&file, &ingress("shop", "old.example.com"));
    let watch = FileSource::new([dir.path()]).watch().await.unwrap();
    let (mut published, task) = spawn_loop(watch.subscribe());

    let first = next_compiled(&mut published).await;
    assert_eq!(first.table.routes().len(), 1);
    assert!(
        first
            .table
            .lookup(&RequestHead::new("old.example.com", "/"))
            .is_some()
    );

    // Saved whole, so that the next table is the edited one.
    save_by_rename(&file, &ingress("shop", "new.example.com"));
    let next = next_compiled(&mut published).await;
    assert!(next.generation() > first.generation());
    assert!(
        next.table
            .lookup(&RequestHead::new("new.example.com", "/cart"))
            .is_some()
    );
    assert!(
        next.table
            .lookup(&RequestHead::new("old.example.com", "/"))
            .is_none()
    );

    // Stopping the source ends the loop.
    timeout(BOUND, watch.stop()).await.unwrap().unwrap();
    timeout(BOUND, task).await.unwrap().unwrap();
}
