//! The parser is total and deterministic: any map of strings gives a result, never a
//! panic, and the same map always gives the same result.

use std::collections::BTreeMap;

use mse_annotations::{KEYS, PREFIXES, Pattern, parse};
use mse_model::{Kind, ObjectKey, SourceRef};
use proptest::prelude::*;

/// Keys that exercise the parser: known names (and near misses) under our prefixes, plus
/// anything at all.
fn key() -> impl Strategy<Value = String> {
    let names: Vec<String> = KEYS
        .iter()
        .map(|k| match k.pattern {
            Pattern::Fixed => k.name.to_owned(),
            Pattern::Prefix => format!("{}x", k.name),
            Pattern::Suffix => format!("a{}", k.name),
        })
        .collect();
    let known = (0..PREFIXES.len(), proptest::sample::select(names))
        .prop_map(|(p, n)| format!("{}{n}", PREFIXES[p]));
    let fuzzy =
        (0..PREFIXES.len(), "[a-z-]{0,30}").prop_map(|(p, n)| format!("{}{n}", PREFIXES[p]));
    prop_oneof![
        6 => known,
        2 => fuzzy,
        1 => "internal\\.higress\\.io/[a-z]{0,5}",
        1 => "\\PC{0,40}",
    ]
}

/// Values: registry examples, tricky fragments, or anything at all.
fn value() -> impl Strategy<Value = String> {
    let examples: Vec<String> = KEYS
        .iter()
        .flat_map(|k| [k.valid.to_owned(), k.invalid.to_owned()])
        .collect();
    prop_oneof![
        4 => proptest::sample::select(examples),
        2 => "[ $:/,.*0-9a-zA-Z_\\n\"'{}()\\[\\]^|?+-]{0,40}",
        1 => "\\PC{0,80}",
        1 => "\\p{Any}{0,20}",
    ]
}

fn render(m: &BTreeMap<String, String>) -> (String, Vec<String>) {
    let object = ObjectKey::new(Kind::Ingress, "ns", "name");
    let src = SourceRef {
        file: "f.yaml".into(),
        line: 1,
    };
    let parsed = parse(&object, Some(&src), m);
    (
        format!("{:?}", parsed.value),
        parsed.diagnostics.iter().map(ToString::to_string).collect(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn parsing_any_map_never_panics_and_is_deterministic(
        m in proptest::collection::btree_map(key(), value(), 0..12)
    ) {
        let first = render(&m);
        let second = render(&m);
        prop_assert_eq!(first, second);
    }

    #[test]
    fn every_diagnostic_names_the_object_and_a_key_that_is_in_the_map(
        m in proptest::collection::btree_map(key(), value(), 0..12)
    ) {
        let object = ObjectKey::new(Kind::Ingress, "ns", "name");
        for d in parse(&object, None, &m).diagnostics {
            prop_assert_eq!(d.origin.object.as_ref(), Some(&object));
            let k = d.origin.key.as_deref().unwrap_or("");
            prop_assert!(m.contains_key(k), "{} names {:?}", d, k);
        }
    }
}
