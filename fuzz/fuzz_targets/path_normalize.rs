//! Path normalisation is total, idempotent and never leaves dot segments or `//`; a
//! request path the gateway accepts is normalised the same way and holds no backslash,
//! encoded separator or dot segment with parameters, and with separators decoded it is
//! such a path.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mse_router::{decoded_request_path, normalize_path, request_path};

fuzz_target!(|path: &str| {
    let once = normalize_path(path).into_owned();
    assert!(once.starts_with('/'));
    assert!(!once.contains("//"));
    assert!(!once.split('/').any(|s| s == "." || s == ".."));
    assert_eq!(normalize_path(&once), once.as_str());
    if let Ok(accepted) = request_path(path) {
        assert_eq!(accepted, once.as_str());
        let upper = once.to_ascii_uppercase();
        assert!(!once.contains('\\') && !upper.contains("%2F") && !upper.contains("%5C"));
        assert!(!once.split('/').any(|s| {
            let s = s.to_ascii_uppercase();
            s.starts_with(".;") || s.starts_with("..;") || s.starts_with(".%3B") || s.starts_with("..%3B")
        }));
        assert_eq!(request_path(&once).as_deref(), Ok(once.as_str()));
    }
    // With separators decoded, what is left is a path `request_path` accepts as it is.
    if let Ok(decoded) = decoded_request_path(path) {
        assert_eq!(request_path(&decoded).as_deref(), Ok(&*decoded));
    }
});
