//! File mode end to end: real files in temporary directories, watched; edits, saves by
//! rename and ConfigMap symlink swaps are published, and the watch stops cleanly.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "helpers outside #[test] fns fail the test loudly"
)]

mod support;

use std::fs;
use std::time::Duration;

use mse_controller::FileSource;
use support::*;
use tokio::time::timeout;

// --- watching ---

#[tokio::test]
async fn edit_is_published() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sub/shop.yaml");
    write(&file, &ingress("shop", "old.example.com"));
    let watch = FileSource::new([dir.path()]).watch().await.unwrap();
    let mut rx = watch.subscribe();
    assert_eq!(
        hosts(&rx.borrow()),
        ["old.example.com"],
        "the first snapshot is there at once"
    );
    let first = rx.borrow().generation;

    // Written in place: the watcher may read the file while it is being written, and
    // publish that first.
    write(&file, &ingress("shop", "new.example.com"));
    let snapshot = wait_until(&mut rx, BOUND, |s| hosts(s) == ["new.example.com"]).await;
    assert!(snapshot.generation > first);

    // A new file in a new directory is seen too.
    write(
        dir.path().join("new/api.yaml"),
        &ingress("api", "api.example.com"),
    );
    let snapshot = wait_until(&mut rx, BOUND, |s| ingress_names(s).len() == 2).await;
    assert_eq!(ingress_names(&snapshot), ["api", "shop"]);
    timeout(BOUND, watch.stop()).await.unwrap().unwrap();
}

#[tokio::test]
async fn rename_on_save_of_a_given_file_is_published() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("shop.yaml");
    write(&file, &ingress("shop", "old.example.com"));
    let watch = FileSource::new([&file]).watch().await.unwrap();
    let mut rx = watch.subscribe();

    save_by_rename(&file, &ingress("shop", "new.example.com"));
    wait_until(&mut rx, BOUND, |s| hosts(s) == ["new.example.com"]).await;

    // A second save: the watch survives the file being replaced.
    save_by_rename(&file, &ingress("shop", "newer.example.com"));
    wait_until(&mut rx, BOUND, |s| hosts(s) == ["newer.example.com"]).await;
    timeout(BOUND, watch.stop()).await.unwrap().unwrap();
}

#[cfg(unix)]
#[tokio::test]
async fn configmap_symlink_swap_is_published() {
    use std::os::unix::fs::symlink;

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        root.join("..v1/shop.yaml"),
        &ingress("shop", "old.example.com"),
    );
    symlink("..v1", root.join("..data")).unwrap();
    symlink("..data/shop.yaml", root.join("shop.yaml")).unwrap();
    let watch = FileSource::new([root]).watch().await.unwrap();
    let mut rx = watch.subscribe();
    assert_eq!(hosts(&rx.borrow()), ["old.example.com"]);

    write(
        root.join("..v2/shop.yaml"),
        &ingress("shop", "new.example.com"),
    );
    symlink("..v2", root.join("..data_tmp")).unwrap();
    fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
    wait_until(&mut rx, BOUND, |s| hosts(s) == ["new.example.com"]).await;
    timeout(BOUND, watch.stop()).await.unwrap().unwrap();
}

#[tokio::test]
async fn rewriting_identical_content_publishes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("shop.yaml");
    let text = ingress("shop", "shop.example.com");
    write(&file, &text);
    let watch = FileSource::new([dir.path()]).watch().await.unwrap();
    let mut rx = watch.subscribe();
    let first = rx.borrow().generation;

    // Saved whole each time, so that no half-written file is ever read.
    save_by_rename(&file, &text);
    // Pacing only: longer than the debounce, so that the rewrite is usually read on its
    // own. Read together with the change below, it is not published either.
    tokio::time::sleep(Duration::from_millis(300)).await;
    save_by_rename(&file, &ingress("shop", "changed.example.com"));
    let snapshot = wait_until(&mut rx, BOUND, |s| hosts(s) == ["changed.example.com"]).await;
    assert_eq!(
        snapshot.generation,
        first + 1,
        "the identical rewrite was not published"
    );
    timeout(BOUND, watch.stop()).await.unwrap().unwrap();
}

#[tokio::test]
async fn steady_stream_of_events_does_not_hold_back_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("shop.yaml");
    write(&file, &ingress("shop", "old.example.com"));
    // No polling to fall back on: only the cap on the debounce can publish the edit.
    let watch = FileSource::new([dir.path()])
        .with_poll_interval(Duration::from_secs(3600))
        .watch()
        .await
        .unwrap();
    let mut rx = watch.subscribe();

    // Another process keeps writing in the watched directory, more often than the
    // debounce time, so the events never settle.
    let noise = dir.path().join(".noise");
    let (started, noise_started) = tokio::sync::oneshot::channel();
    let noisy = tokio::spawn(async move {
        let mut started = Some(started);
        for i in 0u32.. {
            fs::write(&noise, i.to_string()).unwrap();
            if i == 2
                && let Some(started) = started.take()
            {
                let _ = started.send(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    timeout(BOUND, noise_started).await.unwrap().unwrap();
    // Saved whole, so that the one snapshot with the edit has the new host.
    save_by_rename(&file, &ingress("shop", "new.example.com"));
    let snapshot = wait_until(&mut rx, BOUND, |s| hosts(s) == ["new.example.com"]).await;
    assert_eq!(ingress_names(&snapshot), ["shop"]);
    noisy.abort();
    timeout(BOUND, watch.stop()).await.unwrap().unwrap();
}

#[tokio::test]
async fn path_created_after_start_is_picked_up() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("later");
    let watch = FileSource::new([&root]).watch().await.unwrap();
    let mut rx = watch.subscribe();
    assert_eq!(with_code(&rx.borrow(), "unreadable-file").len(), 1);

    write(root.join("shop.yaml"), &ingress("shop", "shop.example.com"));
    // The directory may be read before the file is in it: wait for the file.
    let snapshot = wait_until(&mut rx, BOUND, |s| !s.is_empty()).await;
    assert_eq!(ingress_names(&snapshot), ["shop"]);
    assert!(
        snapshot.diagnostics.is_empty(),
        "{:?}",
        snapshot.diagnostics
    );
    timeout(BOUND, watch.stop()).await.unwrap().unwrap();
}

#[tokio::test]
async fn stopping_the_watch_closes_the_channel() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path().join("shop.yaml"),
        &ingress("shop", "shop.example.com"),
    );
    let watch = FileSource::new([dir.path()]).watch().await.unwrap();
    let mut rx = watch.subscribe();
    timeout(BOUND, watch.stop()).await.unwrap().unwrap();
    assert!(timeout(BOUND, rx.changed()).await.unwrap().is_err());
    // The last snapshot is still readable.
    assert_eq!(ingress_names(&rx.borrow()), ["shop"]);
}

#[tokio::test]
async fn dropping_the_watch_stops_it() {
    let dir = tempfile::tempdir().unwrap();
    let watch = FileSource::new([dir.path()]).watch().await.unwrap();
    let mut rx = watch.subscribe();
    drop(watch);
    assert!(timeout(BOUND, rx.changed()).await.unwrap().is_err());
}
