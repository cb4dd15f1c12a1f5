//! `docs/annotations.md` is generated from the registry; this fails when it is stale.
//! Regenerate with `MSE_BLESS=1 cargo test -p mse-annotations --test matrix`.

use std::path::PathBuf;

#[test]
fn support_matrix_in_docs_is_up_to_date() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/annotations.md");
    let fresh = mse_annotations::support_matrix();
    if std::env::var_os("MSE_BLESS").is_some() {
        if let Err(e) = std::fs::write(&path, &fresh) {
            panic!("cannot write {}: {e}", path.display());
        }
        return;
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == fresh,
        "{} is stale: regenerate it with MSE_BLESS=1 cargo test -p mse-annotations --test matrix",
        path.display()
    );
}

#[test]
fn support_matrix_lists_every_key() {
    let m = mse_annotations::support_matrix();
    for k in mse_annotations::KEYS {
        assert!(
            m.contains(&format!("| `{}` |", k.display_name())),
            "{}",
            k.name
        );
    }
}
