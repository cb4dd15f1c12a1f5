use super::*;

#[test]
fn every_key_is_listed_once() {
    let mut seen = std::collections::BTreeSet::new();
    for k in KEYS {
        assert!(seen.insert((k.name, k.pattern as u8)), "{} twice", k.name);
    }
}

#[test]
fn every_supported_key_documents_a_valid_example() {
    for k in KEYS.iter().filter(|k| k.is_supported()) {
        assert!(!k.valid.is_empty(), "{} has no valid example", k.name);
        assert!(!k.doc.is_empty() && !k.values.is_empty(), "{}", k.name);
    }
}

#[test]
fn families_and_snippets_are_found_by_pattern() {
    assert_eq!(
        spec("exact-match-header-x-user").map(|k| k.name),
        Some("exact-match-header-")
    );
    assert_eq!(spec("exact-match-header-"), None);
    assert_eq!(spec("my-own-snippet").map(|k| k.name), Some("-snippet"));
    assert_eq!(
        spec("server-snippet").map(|k| k.name),
        Some("server-snippet")
    );
    assert_eq!(spec("nope"), None);
}

#[test]
fn near_misses_get_a_suggestion() {
    assert_eq!(suggest("ssl-redirects"), Some("ssl-redirect"));
    assert_eq!(suggest("rewrite-taget"), Some("rewrite-target"));
    assert_eq!(suggest("Use-Regex"), Some("use-regex"));
    assert_eq!(suggest("canary-header"), Some("canary-by-header"));
    assert_eq!(suggest("proxy-body-szie"), Some("proxy-body-size"));
    assert_eq!(suggest("completely-unrelated-thing"), None);
}
