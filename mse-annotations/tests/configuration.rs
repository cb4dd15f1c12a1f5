//! `docs/configuration.md` is generated from the global registry; this fails when it is
//! stale. Regenerate with `MSE_BLESS=1 cargo test -p mse-annotations --test configuration`.

use std::path::PathBuf;

use mse_annotations::global::{GLOBAL_KEYS, configuration_reference};

#[test]
fn configuration_reference_in_docs_is_up_to_date() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/configuration.md");
    let fresh = configuration_reference();
    if std::env::var_os("MSE_BLESS").is_some() {
        if let Err(e) = std::fs::write(&path, &fresh) {
            panic!("cannot write {}: {e}", path.display());
        }
        return;
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == fresh,
        "{} is stale: regenerate it with MSE_BLESS=1 cargo test -p mse-annotations --test configuration",
        path.display()
    );
}

#[test]
fn configuration_reference_lists_every_key() {
    let doc = configuration_reference();
    for k in GLOBAL_KEYS {
        assert!(
            doc.contains(&format!("| `{}`", k.display_key())),
            "{}",
            k.key
        );
    }
}
