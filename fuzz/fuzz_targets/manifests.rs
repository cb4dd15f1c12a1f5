//! Any bytes as a manifest file: loading and compiling never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let loaded = mse_model::load_manifests(text, Some("fuzz.yaml"));
    let mut snapshot = mse_model::Snapshot::default();
    snapshot.extend(loaded.objects);
    let table = mse_router::compile(&snapshot, &mse_router::CompileOptions::default());
    let _ = table.to_json();
});
