//! File mode end to end: real files in temporary directories, loaded, watched and compiled.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "helpers outside #[test] fns fail the test loudly"
)]

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use mse_controller::{Compiled, FileSource, run_compile_loop};
use mse_model::{Diagnostic, Severity, Snapshot};
use mse_router::{CompileOptions, RequestHead};
use tokio::sync::{mpsc, watch};
use tokio::time::timeout;

/// Every wait in these tests is bounded by this: far longer than it takes on any machine, so
/// that only a bug gets near it.
const BOUND: Duration = Duration::from_secs(30);

fn ingress(name: &str, host: &str) -> String {
    format!(
        r#"apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{ name: {name}, namespace: default }}
spec:
  ingressClassName: mse
  rules:
  - host: {host}
    http:
      paths:
      - {{ path: /, pathType: Prefix, backend: {{ service: {{ name: web, port: {{ number: 80 }} }} }} }}
"#
    )
}

fn service(name: &str) -> String {
    format!("apiVersion: v1\nkind: Service\nmetadata: {{ name: {name}, namespace: default }}\n")
}

fn write(path: impl AsRef<Path>, text: &str) {
    let path = path.as_ref();
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).unwrap();
    }
    fs::write(path, text).unwrap();
}

/// Writes a file the way editors save: a hidden temporary file renamed over the target.
fn save_by_rename(path: &Path, text: &str) {
    let name = path.file_name().unwrap().to_str().unwrap();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    fs::write(&tmp, text).unwrap();
    fs::rename(&tmp, path).unwrap();
}

fn ingress_names(snapshot: &Snapshot) -> Vec<String> {
    let mut names: Vec<String> = snapshot
        .ingresses
        .iter()
        .map(|i| i.object.metadata.name.clone().unwrap())
        .collect();
    names.sort();
    names
}

fn hosts(snapshot: &Snapshot) -> Vec<String> {
    let mut hosts: Vec<String> = snapshot
        .ingresses
        .iter()
        .flat_map(|i| i.object.spec.as_ref().unwrap().rules.clone().unwrap())
        .map(|r| r.host.unwrap())
        .collect();
    hosts.sort();
    hosts
}

/// `file:line` of every Ingress, in snapshot order.
fn ingress_sources(snapshot: &Snapshot) -> Vec<String> {
    snapshot
        .ingresses
        .iter()
        .map(|i| i.source.as_ref().unwrap().to_string())
        .collect()
}

fn with_code<'s>(snapshot: &'s Snapshot, code: &str) -> Vec<&'s Diagnostic> {
    snapshot
        .diagnostics
        .iter()
        .filter(|d| d.code == code)
        .collect()
}

fn name_of(path: &Path) -> String {
    path.display().to_string()
}

/// Waits, at most `within` in all, for a snapshot that satisfies `done`.
async fn wait_until(
    rx: &mut watch::Receiver<Arc<Snapshot>>,
    within: Duration,
    done: impl Fn(&Snapshot) -> bool,
) -> Arc<Snapshot> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let snapshot = rx.borrow_and_update().clone();
        if done(&snapshot) {
            return snapshot;
        }
        tokio::time::timeout_at(deadline, rx.changed())
            .await
            .expect("no matching snapshot in time")
            .expect("the watcher stopped");
    }
}

// --- loading ---

#[test]
fn directory_tree_loads_in_sorted_path_order() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root.join("b.yaml"), &ingress("b", "b.example.com"));
    write(root.join("a.yml"), &ingress("a", "a.example.com"));
    write(
        root.join("sub/c.json"),
        r#"{"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "c"},
            "spec": {"rules": [{"host": "c.example.com"}]}}"#,
    );
    write(
        root.join("sub/deeper/d.YAML"),
        &ingress("d", "d.example.com"),
    );
    write(root.join("aa/e.yaml"), &ingress("e", "e.example.com"));
    // Not read: hidden names, other extensions.
    write(
        root.join(".hidden.yaml"),
        &ingress("hidden", "x.example.com"),
    );
    write(
        root.join(".git/config.yaml"),
        &ingress("git", "x.example.com"),
    );
    write(root.join("notes.txt"), &ingress("notes", "x.example.com"));
    write(root.join("b.yaml~"), &ingress("backup", "x.example.com"));

    let mut source = FileSource::new([root]);
    let first = source.load();
    let expected: Vec<String> = [
        "a.yml",
        "aa/e.yaml",
        "b.yaml",
        "sub/c.json",
        "sub/deeper/d.YAML",
    ]
    .iter()
    .map(|f| format!("{}:1", name_of(&root.join(f))))
    .collect();
    assert_eq!(ingress_sources(&first), expected);
    assert!(first.diagnostics.is_empty(), "{:?}", first.diagnostics);
    assert_eq!(first.generation, 1);

    // Another source over the same files sees exactly the same thing.
    let again = FileSource::new([root]).load();
    assert_eq!(ingress_sources(&again), expected);
    // Loading again is a new generation.
    assert_eq!(source.load().generation, 2);
}

#[test]
fn given_file_is_read_whatever_its_name_and_named_as_given() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("routes.txt");
    write(
        &file,
        &format!(
            "{}---\n{}",
            service("web"),
            ingress("shop", "shop.example.com")
        ),
    );

    let snapshot = FileSource::new([&file]).load();
    assert_eq!(snapshot.services.len(), 1);
    assert_eq!(
        ingress_sources(&snapshot),
        [format!("{}:5", name_of(&file))]
    );
}

#[test]
fn several_paths_load_in_the_order_given_and_overlaps_are_read_once() {
    let dir = tempfile::tempdir().unwrap();
    let z = dir.path().join("z.yaml");
    write(&z, &ingress("z", "z.example.com"));
    write(
        dir.path().join("conf/a.yaml"),
        &ingress("a", "a.example.com"),
    );

    // z.yaml is named first, then the directory that holds it again.
    let snapshot = FileSource::new([z.clone(), dir.path().to_path_buf()]).load();
    assert_eq!(
        ingress_sources(&snapshot),
        [
            format!("{}:1", name_of(&z)),
            format!("{}:1", name_of(&dir.path().join("conf/a.yaml")))
        ]
    );
    assert!(with_code(&snapshot, "duplicate-object").is_empty());
}

#[cfg(unix)]
#[test]
fn configmap_volume_is_read_once_through_its_symlinks() {
    use std::os::unix::fs::symlink;

    // The layout the kubelet writes: data in a timestamped hidden directory, `..data`
    // pointing at it, and one visible symlink per key.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        root.join("..2024_01_01/shop.yaml"),
        &ingress("shop", "old.example.com"),
    );
    symlink("..2024_01_01", root.join("..data")).unwrap();
    symlink("..data/shop.yaml", root.join("shop.yaml")).unwrap();

    let mut source = FileSource::new([root]);
    let snapshot = source.load();
    assert_eq!(
        ingress_sources(&snapshot),
        [format!("{}:1", name_of(&root.join("shop.yaml")))]
    );
    assert!(
        snapshot.diagnostics.is_empty(),
        "{:?}",
        snapshot.diagnostics
    );

    // The kubelet's update: a new directory, then an atomic swap of `..data`.
    write(
        root.join("..2024_01_02/shop.yaml"),
        &ingress("shop", "new.example.com"),
    );
    symlink("..2024_01_02", root.join("..data_tmp")).unwrap();
    fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
    fs::remove_dir_all(root.join("..2024_01_01")).unwrap();

    let snapshot = source.reload().expect("the swap changed the content");
    assert_eq!(hosts(&snapshot), ["new.example.com"]);
}

#[cfg(unix)]
#[test]
fn symlink_loop_is_walked_once() {
    use std::os::unix::fs::symlink;

    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path().join("sub/shop.yaml"),
        &ingress("shop", "shop.example.com"),
    );
    symlink("..", dir.path().join("sub/up")).unwrap();

    let snapshot = FileSource::new([dir.path()]).load();
    assert_eq!(ingress_names(&snapshot), ["shop"]);
    assert!(
        snapshot.diagnostics.is_empty(),
        "{:?}",
        snapshot.diagnostics
    );
}

#[test]
fn duplicate_objects_keep_the_first_in_path_and_line_order() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.yaml");
    let b = dir.path().join("b.yaml");
    write(
        &a,
        &format!(
            "{}---\n{}",
            ingress("shop", "first.example.com"),
            ingress("shop", "second.example.com")
        ),
    );
    write(&b, &ingress("shop", "third.example.com"));

    let snapshot = FileSource::new([dir.path()]).load();
    assert_eq!(hosts(&snapshot), ["first.example.com"]);
    let dups = with_code(&snapshot, "duplicate-object");
    assert_eq!(dups.len(), 2, "{dups:?}");
    let a1 = format!("{}:1", name_of(&a));
    for (d, place) in dups
        .iter()
        .zip([format!("{}:12", name_of(&a)), format!("{}:1", name_of(&b))])
    {
        assert_eq!(d.severity, Severity::Warning);
        assert_eq!(
            d.origin.object.as_ref().unwrap().to_string(),
            "Ingress default/shop"
        );
        // Both places: the ignored one as the origin, the used one in the message.
        assert_eq!(d.origin.source.as_ref().unwrap().to_string(), place);
        assert!(d.message.contains(&a1), "{d}");
    }
}

#[test]
fn malformed_edit_keeps_last_good_objects_until_fixed() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("shop.yaml");
    write(
        &file,
        &format!(
            "{}---\n{}",
            ingress("shop", "shop.example.com"),
            ingress("api", "api.example.com")
        ),
    );
    let mut source = FileSource::new([dir.path()]);
    assert_eq!(ingress_names(&source.load()), ["api", "shop"]);

    // Half-written: `shop` is edited, `api` is cut off mid-document.
    write(
        &file,
        &format!(
            "{}---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{ name: [api\n",
            ingress("shop", "shop2.example.com")
        ),
    );
    let broken = source.reload().expect("the file changed");
    assert_eq!(ingress_names(&broken), ["api", "shop"]);
    assert_eq!(
        hosts(&broken),
        ["api.example.com", "shop2.example.com"],
        "new shop, last good api"
    );
    assert_eq!(with_code(&broken, "malformed-yaml").len(), 1);
    let kept = with_code(&broken, "kept-last-good");
    assert_eq!(kept.len(), 1, "{:?}", broken.diagnostics);
    assert_eq!(kept[0].severity, Severity::Warning);
    assert_eq!(
        kept[0].origin.object.as_ref().unwrap().to_string(),
        "Ingress default/api"
    );
    assert!(kept[0].to_string().contains(&name_of(&file)), "{}", kept[0]);

    // Fixed, and `api` really removed: now it goes.
    write(&file, &ingress("shop", "shop3.example.com"));
    let fixed = source.reload().expect("the file changed");
    assert_eq!(hosts(&fixed), ["shop3.example.com"]);
    assert!(fixed.diagnostics.is_empty(), "{:?}", fixed.diagnostics);
}

#[test]
fn object_moved_out_of_a_broken_file_is_taken_from_its_new_place() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.yaml");
    write(&a, &ingress("shop", "old.example.com"));
    let mut source = FileSource::new([dir.path()]);
    source.load();

    write(&a, "kind: [broken\n");
    write(
        dir.path().join("b.yaml"),
        &ingress("shop", "new.example.com"),
    );
    let snapshot = source.reload().unwrap();
    assert_eq!(hosts(&snapshot), ["new.example.com"]);
    assert!(with_code(&snapshot, "kept-last-good").is_empty());
    assert!(with_code(&snapshot, "duplicate-object").is_empty());
}

#[test]
fn broken_file_without_a_good_version_keeps_nothing() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path().join("a.yaml"), "apiVersion: v1\nkind: [broken\n");
    let snapshot = FileSource::new([dir.path()]).load();
    assert!(snapshot.is_empty());
    assert_eq!(snapshot.diagnostics.len(), 1, "{:?}", snapshot.diagnostics);
    assert_eq!(snapshot.diagnostics[0].code, "malformed-yaml");
}

#[test]
fn file_that_is_not_utf8_is_malformed_and_keeps_last_good() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.yaml");
    write(&file, &ingress("shop", "shop.example.com"));
    let mut source = FileSource::new([dir.path()]);
    source.load();

    fs::write(&file, b"apiVersion: v1\n\xff\xfe\n").unwrap();
    let snapshot = source.reload().unwrap();
    assert_eq!(ingress_names(&snapshot), ["shop"]);
    let malformed = with_code(&snapshot, "malformed-yaml");
    assert_eq!(malformed.len(), 1);
    assert_eq!(
        malformed[0].origin.source.as_ref().unwrap().to_string(),
        format!("{}:2", name_of(&file))
    );
    assert_eq!(with_code(&snapshot, "kept-last-good").len(), 1);
}

#[test]
fn missing_path_is_an_unreadable_file_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    write(dir.path().join("ok/a.yaml"), &ingress("a", "a.example.com"));

    let snapshot = FileSource::new([missing.clone(), dir.path().join("ok")]).load();
    assert_eq!(
        ingress_names(&snapshot),
        ["a"],
        "the other path is still read"
    );
    let errors = with_code(&snapshot, "unreadable-file");
    assert_eq!(errors.len(), 1, "{:?}", snapshot.diagnostics);
    assert_eq!(errors[0].severity, Severity::Error);
    assert!(
        errors[0].message.contains(&name_of(&missing)),
        "{}",
        errors[0]
    );
    assert!(
        errors[0].message.contains("os error"),
        "names the OS error: {}",
        errors[0]
    );
}

#[cfg(unix)]
#[test]
fn unreadable_file_keeps_last_good_objects() {
    use std::os::unix::fs::symlink;

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("shop.yaml");
    write(&file, &ingress("shop", "shop.example.com"));
    let mut source = FileSource::new([dir.path()]);
    source.load();

    // Listed, but reading it fails (running as root, permissions would not stop a read).
    fs::remove_file(&file).unwrap();
    symlink("gone.yaml", &file).unwrap();
    let snapshot = source.reload().unwrap();
    assert_eq!(ingress_names(&snapshot), ["shop"]);
    let errors = with_code(&snapshot, "unreadable-file");
    assert_eq!(errors.len(), 1, "{:?}", snapshot.diagnostics);
    assert!(errors[0].message.contains(&name_of(&file)), "{}", errors[0]);
    let kept = with_code(&snapshot, "kept-last-good");
    assert_eq!(kept.len(), 1);
    assert_eq!(
        kept[0].origin.object.as_ref().unwrap().to_string(),
        "Ingress default/shop"
    );

    // Readable again.
    fs::remove_file(&file).unwrap();
    write(&file, &ingress("shop", "back.example.com"));
    let snapshot = source.reload().unwrap();
    assert_eq!(hosts(&snapshot), ["back.example.com"]);
    assert!(
        snapshot.diagnostics.is_empty(),
        "{:?}",
        snapshot.diagnostics
    );
}

#[test]
fn vanished_directory_keeps_last_good_objects() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("manifests");
    write(root.join("a.yaml"), &ingress("a", "a.example.com"));
    write(root.join("sub/b.yaml"), &ingress("b", "b.example.com"));
    let mut source = FileSource::new([&root]);
    source.load();

    fs::remove_dir_all(&root).unwrap();
    let snapshot = source.reload().unwrap();
    assert_eq!(ingress_names(&snapshot), ["a", "b"]);
    // One error for the directory, not one per file.
    let errors = with_code(&snapshot, "unreadable-file");
    assert_eq!(errors.len(), 1, "{:?}", snapshot.diagnostics);
    assert!(errors[0].message.contains(&name_of(&root)), "{}", errors[0]);
    assert_eq!(with_code(&snapshot, "kept-last-good").len(), 2);

    write(root.join("a.yaml"), &ingress("a", "a.example.com"));
    let snapshot = source.reload().unwrap();
    assert_eq!(ingress_names(&snapshot), ["a"], "b.yaml is really gone now");
    assert!(
        snapshot.diagnostics.is_empty(),
        "{:?}",
        snapshot.diagnostics
    );
}

#[test]
fn deleted_file_removes_its_objects() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path().join("a.yaml"), &ingress("a", "a.example.com"));
    write(dir.path().join("b.yaml"), &ingress("b", "b.example.com"));
    let mut source = FileSource::new([dir.path()]);
    source.load();

    fs::remove_file(dir.path().join("b.yaml")).unwrap();
    let snapshot = source.reload().unwrap();
    assert_eq!(ingress_names(&snapshot), ["a"]);
    assert!(
        snapshot.diagnostics.is_empty(),
        "{:?}",
        snapshot.diagnostics
    );
}

#[test]
fn unchanged_files_give_no_new_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.yaml");
    let text = ingress("a", "a.example.com");
    write(&file, &text);
    let mut source = FileSource::new([dir.path()]);
    assert_eq!(source.load().generation, 1);

    assert!(source.reload().is_none());
    assert!(source.poll().is_none());
    // Rewritten with the same bytes: the fingerprint may differ, the content does not.
    write(&file, &text);
    assert!(source.reload().is_none());
    assert!(source.poll().is_none());
    assert_eq!(source.generation(), 1, "no generation is used up");

    write(&file, &ingress("a", "a-longer.example.com"));
    let snapshot = source.poll().expect("the size changed");
    assert_eq!(snapshot.generation, 2);
    assert_eq!(hosts(&snapshot), ["a-longer.example.com"]);
}

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
    let (tx, published) = mpsc::unbounded_channel();
    let task = tokio::spawn(run_compile_loop(rx, CompileOptions::default(), move |c| {
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

#[tokio::test]
async fn compile_loop_publishes_the_first_snapshot_and_each_change() {
    let (tx, rx) = watch::channel(snapshot_with(
        1,
        "apiVersion: v1\nkind: Pod\nmetadata: { name: p }\n",
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
