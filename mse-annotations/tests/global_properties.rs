//! The global configuration's parser is total and deterministic too: any ConfigMap, any
//! `higress` text and any previous configuration give a result, never a panic; every
//! diagnostic about the ConfigMap names it and one of its keys.

use std::collections::BTreeMap;

use mse_annotations::global::{
    Doc, GLOBAL_KEYS, GlobalConfig, GlobalFlags, GlobalSources, Layer, parse_global,
};
use mse_model::{Kind, ObjectKey};
use proptest::prelude::*;

/// ConfigMap keys: the registry's, near misses, or anything.
fn key() -> impl Strategy<Value = String> {
    let names: Vec<String> = GLOBAL_KEYS
        .iter()
        .filter(|k| k.layer == Layer::ConfigMap)
        .map(|k| k.key.to_owned())
        .collect();
    prop_oneof![
        6 => proptest::sample::select(names),
        2 => "[a-z-]{0,30}",
        1 => "\\PC{0,20}",
    ]
}

fn value() -> impl Strategy<Value = String> {
    let examples: Vec<String> = GLOBAL_KEYS
        .iter()
        .flat_map(|k| [k.valid.to_owned(), k.invalid.to_owned()])
        .collect();
    prop_oneof![
        4 => proptest::sample::select(examples),
        2 => "[ :/,.0-9a-zA-Z_\\n\"'{}\\[\\]-]{0,40}",
        1 => "\\PC{0,60}",
    ]
}

/// `higress` YAML: well-formed sections with odd values, or any text.
fn higress() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => (value(), value()).prop_map(|(a, b)| format!(
            "downstream:\n  idleTimeout: {a:?}\n  maxRequestHeadersKb: {b:?}\nupstream: {{ idleTimeout: {a:?} }}\ngzip: {{ enable: {b:?} }}\n"
        )),
        1 => "\\PC{0,80}",
    ]
}

fn run(
    cm: &BTreeMap<String, String>,
    yaml: &str,
    previous: Option<&GlobalConfig>,
) -> (GlobalConfig, Vec<String>) {
    let cm_key = ObjectKey::new(Kind::ConfigMap, "ingress", "gateway");
    let h_key = ObjectKey::new(Kind::ConfigMap, "ingress", "higress-config");
    let flags = GlobalFlags::default();
    let parsed = parse_global(
        &GlobalSources {
            configmap: Some(Doc {
                object: &cm_key,
                source: None,
                data: cm,
            }),
            higress: Some(Doc {
                object: &h_key,
                source: None,
                data: yaml,
            }),
            ..GlobalSources::new(&flags)
        },
        previous,
    );
    let text = parsed.diagnostics.iter().map(ToString::to_string).collect();
    (parsed.value, text)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn any_sources_give_a_result_and_the_same_one_twice(
        cm in proptest::collection::btree_map(key(), value(), 0..10),
        yaml in higress(),
        before in proptest::collection::btree_map(key(), value(), 0..10),
    ) {
        let (previous, _) = run(&before, "", None);
        let first = run(&cm, &yaml, Some(&previous));
        let second = run(&cm, &yaml, Some(&previous));
        prop_assert_eq!(first, second);
    }

    #[test]
    fn configmap_diagnostics_name_the_configmap_and_one_of_its_keys(
        cm in proptest::collection::btree_map(key(), value(), 0..10),
    ) {
        let cm_key = ObjectKey::new(Kind::ConfigMap, "ingress", "gateway");
        let flags = GlobalFlags::default();
        let parsed = parse_global(
            &GlobalSources {
                configmap: Some(Doc { object: &cm_key, source: None, data: &cm }),
                ..GlobalSources::new(&flags)
            },
            None,
        );
        for d in parsed.diagnostics {
            prop_assert_eq!(d.origin.object.as_ref(), Some(&cm_key));
            let k = d.origin.key.as_deref().unwrap_or("");
            prop_assert!(cm.contains_key(k), "{} names {:?}", d, k);
        }
    }
}
