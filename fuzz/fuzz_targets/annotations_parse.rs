//! Any bytes as an annotation map: parsing never panics, is deterministic, and every
//! diagnostic names a key of the map. The input is split into lines; each line is
//! `key=value` (a line without `=` is a key with an empty value). A leading byte picks a
//! prefix for keys without one, so that known keys are reached often.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use mse_model::{AnnotationLines, Kind, ObjectKey};

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let prefix = mse_annotations::PREFIXES[usize::from(first) % 3];
    let mut map = BTreeMap::new();
    for line in text.split('\n') {
        let (k, v) = line.split_once('=').unwrap_or((line, ""));
        let k = if k.contains('/') {
            k.to_owned()
        } else {
            format!("{prefix}{k}")
        };
        // Values may span lines in YAML: `\n` escapes stand for line breaks.
        map.insert(k, v.replace("\\n", "\n"));
    }
    let object = ObjectKey::new(Kind::Ingress, "fuzz", "fuzz");
    let a = mse_annotations::parse(&object, None, &map);
    let b = mse_annotations::parse(&object, None, &map);
    assert_eq!(a.diagnostics, b.diagnostics);
    assert_eq!(format!("{:?}", a.value), format!("{:?}", b.value));
    for d in &a.diagnostics {
        let key = d.origin.key.as_deref().unwrap_or("");
        assert!(map.contains_key(key), "{d} names a key not in the map");
    }
    // The annotation-line scanner takes any text too.
    let _ = AnnotationLines::scan(text);
});
