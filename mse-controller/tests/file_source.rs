//! File mode end to end: real files in temporary directories, loaded (a tree, given files,
//! symlinks, duplicates) and reloaded after edits, breakage and removal.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "helpers outside #[test] fns fail the test loudly"
)]

mod support;

use std::fs;

use mse_controller::FileSource;
use mse_model::Severity;
use support::*;

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
