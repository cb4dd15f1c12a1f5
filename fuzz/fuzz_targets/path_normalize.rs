//! Path normalisation is total, idempotent and never leaves dot segments or `//`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mse_router::normalize_path;

fuzz_target!(|path: &str| {
    let once = normalize_path(path).into_owned();
    assert!(once.starts_with('/'));
    assert!(!once.contains("//"));
    assert!(!once.split('/').any(|s| s == "." || s == ".."));
    assert_eq!(normalize_path(&once), once.as_str());
});
