//! Registry-driven checks: every supported key accepts its valid example under all three
//! prefixes and reports its invalid example; every other key gets the diagnostic its status
//! promises.

use std::collections::BTreeMap;

use mse_annotations::{KEYS, KeySpec, PREFIXES, Pattern, Support, parse};
use mse_model::{Kind, ObjectKey, Severity};

fn object() -> ObjectKey {
    ObjectKey::new(Kind::Ingress, "shop", "web")
}

/// Companion keys that make every supported key take effect, so that its value is read.
const CONTEXT: &[(&str, &str)] = &[
    ("canary", "true"),
    ("canary-by-header", "x-canary"),
    ("canary-by-cookie", "canary"),
    ("canary-by-query", "canary"),
    ("enable-cors", "true"),
    ("backend-protocol", "HTTPS"),
    ("proxy-ssl-secret", "upstream-ca"),
    ("affinity", "cookie"),
    ("upstream-hash-by", "$remote_addr"),
    ("service-subset", "v1"),
    ("limit-rps", "5"),
    ("route-limit-rps", "5"),
    ("rate-limit", "5"),
    ("concurrency-limit", "5"),
    ("default-backend", "fallback"),
    ("mirror-target-fqdn", "shadow.example.com"),
    ("permanent-redirect", "https://example.com/"),
    ("proxy-redirect-from", "http://a/"),
    ("auth-type", "basic"),
    ("auth-secret", "users"),
    ("auth-url", "https://auth.example.com/"),
];

fn key_name(k: &KeySpec) -> String {
    match k.pattern {
        Pattern::Fixed => k.name.to_owned(),
        Pattern::Prefix if k.name.contains("pseudo-header") => format!("{}method", k.name),
        Pattern::Prefix => format!("{}x-test", k.name),
        Pattern::Suffix => format!("custom{}", k.name),
    }
}

fn with_context(prefix: &str, name: &str, value: &str) -> BTreeMap<String, String> {
    let mut m: BTreeMap<String, String> = CONTEXT
        .iter()
        .filter(|(k, _)| *k != name)
        .map(|(k, v)| (format!("{}{k}", PREFIXES[0]), (*v).to_owned()))
        .collect();
    m.insert(format!("{prefix}{name}"), value.to_owned());
    m
}

#[test]
fn the_context_itself_is_clean() {
    let parsed = parse(&object(), None, &with_context(PREFIXES[0], "x-none", ""));
    let bad: Vec<_> = parsed
        .diagnostics
        .iter()
        .filter(|d| d.severity != Severity::Info && d.code != "ignored-annotation")
        .filter(|d| !d.origin.key.as_deref().unwrap_or("").ends_with("x-none"))
        .collect();
    assert!(bad.is_empty(), "{bad:#?}");
    assert!(!parsed.value.fails_closed());
}

#[test]
fn every_supported_key_accepts_its_valid_example_under_every_prefix() {
    for k in KEYS.iter().filter(|k| k.is_supported()) {
        let name = key_name(k);
        for prefix in PREFIXES {
            let parsed = parse(&object(), None, &with_context(prefix, &name, k.valid));
            let full = format!("{prefix}{name}");
            let bad: Vec<_> = parsed
                .diagnostics
                .iter()
                .filter(|d| d.origin.key.as_deref() == Some(full.as_str()))
                .filter(|d| d.severity != Severity::Info && d.code != "ignored-annotation")
                .collect();
            assert!(bad.is_empty(), "{full}: {:?}: {bad:#?}", k.valid);
            assert!(
                !parsed.value.fails_closed(),
                "{full}: {:?}: {:?}",
                k.valid,
                parsed.value.fail_closed
            );
        }
    }
}

#[test]
fn every_supported_key_reports_its_invalid_example() {
    for k in KEYS
        .iter()
        .filter(|k| k.is_supported() && !k.invalid.is_empty())
    {
        let name = key_name(k);
        let parsed = parse(
            &object(),
            None,
            &with_context(PREFIXES[2], &name, k.invalid),
        );
        let full = format!("{}{name}", PREFIXES[2]);
        let d = parsed
            .diagnostics
            .iter()
            .find(|d| {
                d.origin.key.as_deref() == Some(full.as_str())
                    && matches!(d.code, "invalid-value" | "invalid-canary")
            })
            .unwrap_or_else(|| {
                panic!(
                    "{full}: {:?} not reported: {:#?}",
                    k.invalid, parsed.diagnostics
                )
            });
        assert_eq!(d.value.as_deref(), Some(k.invalid), "{full}");
        assert!(d.origin.object.is_some(), "{full}");
        let fails = parsed.value.fails_closed();
        if k.security {
            assert_eq!(d.severity, Severity::Error, "{full}: {d}");
            assert!(fails, "{full} must fail closed");
            assert!(d.message.contains("503"), "{full}: {d}");
        } else if k.name == "canary" {
            assert_eq!(d.severity, Severity::Error, "{full}: {d}");
            assert!(parsed.value.is_excluded());
        } else {
            assert_eq!(d.severity, Severity::Warning, "{full}: {d}");
            assert!(
                !fails,
                "{full} must not fail closed: {:?}",
                parsed.value.fail_closed
            );
            assert!(
                d.message.contains("default") || d.message.contains("ignored"),
                "{full}: the message must say what applies instead: {d}"
            );
        }
    }
}

#[test]
fn every_other_key_gets_the_diagnostic_its_status_promises() {
    for k in KEYS.iter().filter(|k| !k.is_supported()) {
        let name = key_name(k);
        let full = format!("{}{name}", PREFIXES[1]);
        let a: BTreeMap<String, String> = [(full.clone(), "x".to_owned())].into();
        let parsed = parse(&object(), None, &a);
        let [d] = parsed.diagnostics.as_slice() else {
            panic!("{full}: {:#?}", parsed.diagnostics);
        };
        assert_eq!(d.origin.key.as_deref(), Some(full.as_str()));
        let (severity, code) = match k.support {
            Support::NoEffect(_) => (Severity::Info, "no-effect"),
            Support::Unsupported(_) if k.security => (Severity::Error, "unsupported-annotation"),
            Support::Unsupported(_) => (Severity::Warning, "unsupported-annotation"),
            Support::Refused(_) => (Severity::Error, "refused-annotation"),
            Support::Supported | Support::Different(_) => unreachable!(),
        };
        assert_eq!((d.severity, d.code), (severity, code), "{full}");
        assert_eq!(parsed.value.fails_closed(), k.security, "{full}");
    }
}

#[test]
fn every_supported_key_is_read_by_a_family() {
    // A key no family reads would come out as "recognised but not read".
    for k in KEYS.iter().filter(|k| k.is_supported()) {
        let name = key_name(k);
        let parsed = parse(&object(), None, &with_context(PREFIXES[0], &name, k.valid));
        assert!(
            !parsed
                .diagnostics
                .iter()
                .any(|d| d.message.contains("not read by this version")),
            "{name}"
        );
    }
}
