use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use mse_model::{Diagnostic, Kind, MseIngressConfigSpec, ObjectKey, Severity};

use super::*;

fn cm_key() -> ObjectKey {
    ObjectKey::new(Kind::ConfigMap, "ingress", "gateway")
}

fn higress_key() -> ObjectKey {
    ObjectKey::new(Kind::ConfigMap, "ingress", HIGRESS_CONFIG)
}

fn mse_key() -> ObjectKey {
    ObjectKey::new(Kind::MseIngressConfig, "", "edge")
}

fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn mse_spec(yaml: &str) -> MseIngressConfigSpec {
    serde_yaml_ng::from_str(yaml).unwrap()
}

/// Every source at once; `None` leaves it out.
struct Input {
    cm: Option<BTreeMap<String, String>>,
    higress: Option<String>,
    mse: Option<MseIngressConfigSpec>,
    flags: GlobalFlags,
}

impl Input {
    fn new() -> Self {
        Self {
            cm: None,
            higress: None,
            mse: None,
            flags: GlobalFlags::default(),
        }
    }
    fn cm(mut self, pairs: &[(&str, &str)]) -> Self {
        self.cm = Some(data(pairs));
        self
    }
    fn higress(mut self, yaml: &str) -> Self {
        self.higress = Some(yaml.to_owned());
        self
    }
    fn mse(mut self, yaml: &str) -> Self {
        self.mse = Some(mse_spec(yaml));
        self
    }
    fn flag(mut self, flag: &str, value: &str) -> Self {
        self.flags.set(flag, value);
        self
    }
    fn parse(&self, previous: Option<&GlobalConfig>) -> crate::Parsed<GlobalConfig> {
        let (cm, hk, mk) = (cm_key(), higress_key(), mse_key());
        let sources = GlobalSources {
            configmap: self.cm.as_ref().map(|d| Doc {
                object: &cm,
                source: None,
                data: d,
            }),
            higress: self.higress.as_deref().map(|d| Doc {
                object: &hk,
                source: None,
                data: d,
            }),
            mse: self.mse.as_ref().map(|d| Doc {
                object: &mk,
                source: None,
                data: d,
            }),
            flags: &self.flags,
        };
        parse_global(&sources, previous)
    }
}

fn codes(ds: &[Diagnostic]) -> Vec<&'static str> {
    ds.iter().map(|d| d.code).collect()
}

fn one<'d>(ds: &'d [Diagnostic], code: &str) -> &'d Diagnostic {
    let found: Vec<&Diagnostic> = ds.iter().filter(|d| d.code == code).collect();
    assert_eq!(found.len(), 1, "{code} in {ds:#?}");
    found[0]
}

// === the registry ===

#[test]
fn every_key_is_listed_once_per_source() {
    let mut seen = BTreeSet::new();
    for k in GLOBAL_KEYS {
        assert!(seen.insert((k.layer, k.key)), "{} twice", k.key);
        assert!(!k.doc.is_empty(), "{} has no doc", k.key);
    }
}

#[test]
fn every_key_that_sets_something_has_examples_that_behave() {
    for k in GLOBAL_KEYS.iter().filter(|k| k.setting.is_some()) {
        assert!(!k.valid.is_empty() && !k.values.is_empty(), "{}", k.key);
        let mut c = GlobalConfig::default();
        assert!(
            (k.set)(&mut c, k.valid).is_ok(),
            "{} rejects {:?}",
            k.key,
            k.valid
        );
        if !k.invalid.is_empty() {
            let before = c.clone();
            assert!(
                (k.set)(&mut c, k.invalid).is_err(),
                "{} accepts {:?}",
                k.key,
                k.invalid
            );
            assert_eq!(c, before, "{}: a rejected value changed the config", k.key);
        }
    }
}

#[test]
fn every_applied_configmap_key_is_read_with_its_example() {
    for k in GLOBAL_KEYS
        .iter()
        .filter(|k| k.layer == Layer::ConfigMap && k.setting.is_some())
    {
        let parsed = Input::new().cm(&[(k.key, k.valid)]).parse(None);
        let setting = k.setting.unwrap();
        assert_eq!(
            parsed.value.origin(setting).map(|o| o.key),
            Some(k.key),
            "{}",
            k.key
        );
        let expected: &[&str] = match k.status {
            Status::NotApplied(_) => &["not-applied"],
            _ => &[],
        };
        assert_eq!(codes(&parsed.diagnostics), expected, "{}", k.key);
    }
}

#[test]
fn unknown_keys_suggest_the_nearest_one() {
    let parsed = Input::new()
        .cm(&[("keep-alive-request", "5"), ("worker-rlimit-core", "1")])
        .parse(None);
    let d = &parsed.diagnostics;
    assert_eq!(codes(d), ["unknown-config-key", "unknown-config-key"]);
    assert!(
        d[0].message.contains("did you mean keep-alive-requests?"),
        "{d:?}"
    );
    assert_eq!(d[0].severity, Severity::Warning);
    // No near key: a note, since ingress-nginx has many keys that mean nothing here.
    assert_eq!(d[1].severity, Severity::Info);
    assert_eq!(parsed.value, GlobalConfig::default());
}

// === grammars through the ConfigMap ===

#[test]
fn configmap_values_become_typed_settings() {
    let parsed = Input::new()
        .cm(&[
            ("keep-alive", "0"),
            ("keep-alive-requests", "2"),
            ("client-header-timeout", "30s"),
            ("large-client-header-buffers", "4 16k"),
            ("proxy-body-size", "0"),
            ("proxy-connect-timeout", "2"),
            ("upstream-keepalive-connections", "0"),
            ("disable-access-log", "true"),
            (
                "global-allowed-response-headers",
                "X-Frame-Options, X-Robots-Tag",
            ),
            ("hsts-max-age", "31536000"),
            ("hsts-preload", "true"),
        ])
        .parse(None);
    assert!(parsed.diagnostics.is_empty(), "{:#?}", parsed.diagnostics);
    let c = &parsed.value;
    assert_eq!(c.client.keep_alive, Duration::ZERO);
    assert_eq!(c.client.keep_alive_requests, 2);
    assert_eq!(c.client.header_timeout, Duration::from_secs(30));
    assert_eq!(c.client.max_header_size, 64 * 1024);
    assert_eq!(c.client.max_request_target, 16 * 1024);
    assert_eq!(c.client.max_body_size, None);
    assert_eq!(c.upstream.connect_timeout, Duration::from_secs(2));
    assert_eq!(c.upstream.keepalive_connections, 0);
    assert!(!c.logging.access_log);
    assert_eq!(
        c.allowed_response_headers,
        ["x-frame-options", "x-robots-tag"]
    );
    assert_eq!(
        c.tls.hsts_header().as_deref(),
        Some("max-age=31536000; includeSubDomains; preload")
    );
}

#[test]
fn snippets_are_refused_and_allow_snippet_annotations_true_is_an_error() {
    let parsed = Input::new()
        .cm(&[
            ("http-snippet", "lua_shared_dict x 1m;"),
            ("allow-snippet-annotations", "true"),
        ])
        .parse(None);
    let d = &parsed.diagnostics;
    assert_eq!(codes(d), ["refused-config-key", "refused-config-key"]);
    assert!(d.iter().all(|d| d.severity == Severity::Error));
    assert_eq!(
        d[0].origin.key.as_deref(),
        Some("allow-snippet-annotations")
    );
    assert_eq!(d[1].value.as_deref(), Some("lua_shared_dict x 1m;"));
    // False is simply the only setting there is.
    let ok = Input::new()
        .cm(&[("allow-snippet-annotations", "false")])
        .parse(None);
    assert!(ok.diagnostics.is_empty(), "{:?}", ok.diagnostics);
}

#[test]
fn keys_without_effect_are_noted_and_still_checked() {
    let parsed = Input::new()
        .cm(&[
            ("worker-processes", "4"),
            ("compute-full-forwarded-for", "maybe"),
        ])
        .parse(None);
    let d = &parsed.diagnostics;
    assert_eq!(codes(d), ["invalid-config-value", "no-effect"]);
    assert_eq!(d[1].severity, Severity::Info);
}

// === precedence ===

#[test]
fn stronger_sources_win_setting_by_setting() {
    let input = Input::new()
        .cm(&[
            ("keep-alive", "30"),
            ("large-client-header-buffers", "2 8k"),
            ("disable-access-log", "true"),
            ("keep-alive-requests", "7"),
        ])
        .higress("downstream:\n  idleTimeout: 40\n  maxRequestHeadersKb: 60\n")
        .mse("global:\n  ipAccessControl:\n    blacklist: [192.0.2.0/24]\n");
    let parsed = input.parse(None);
    let c = &parsed.value;
    // higress-config beats the ConfigMap.
    assert_eq!(c.client.keep_alive, Duration::from_secs(40));
    assert_eq!(c.client.max_header_size, 60 * 1024);
    assert_eq!(
        c.origin(Setting::KeepAlive).unwrap().layer,
        Layer::HigressConfig
    );
    // What only the ConfigMap has still applies.
    assert_eq!(c.client.keep_alive_requests, 7);
    assert!(!c.logging.access_log);
    // The MseIngressConfig's list.
    assert_eq!(c.access.deny.len(), 1);
    assert!(!c.access.allows("192.0.2.9".parse().unwrap()));
    assert!(c.access.allows("198.51.100.1".parse().unwrap()));
    // The overridden ConfigMap values are notes naming what applies.
    let d = &parsed.diagnostics;
    assert_eq!(codes(d), ["overridden-config-key", "overridden-config-key"]);
    assert!(
        d[0].message
            .contains("higress.downstream.idleTimeout of ConfigMap ingress/higress-config applies"),
        "{}",
        d[0].message
    );
}

#[test]
fn an_explicit_flag_beats_the_configmaps_and_loses_to_the_mse_config() {
    let cm = [("disable-access-log", "true")];
    // Without the flag the ConfigMap turns the log off (a defaulted flag is no source).
    assert!(!Input::new().cm(&cm).parse(None).value.logging.access_log);
    // Given explicitly, the flag wins and the ConfigMap key is reported as overridden.
    let parsed = Input::new()
        .cm(&cm)
        .flag("--access-log", "true")
        .parse(None);
    assert!(parsed.value.logging.access_log);
    assert_eq!(
        parsed.value.origin(Setting::AccessLog).unwrap().layer,
        Layer::Flag
    );
    let d = one(&parsed.diagnostics, "overridden-config-key");
    assert!(
        d.message.contains("the flag --access-log applies"),
        "{}",
        d.message
    );
    // The MseIngressConfig wins over a flag for the keys it has: its IP list applies
    // whatever the flags say, and the flag still wins for the log.
    let parsed = Input::new()
        .cm(&cm)
        .flag("--access-log", "true")
        .mse("global:\n  ipAccessControl:\n    whitelist: [10.0.0.0/8]\n")
        .parse(None);
    assert!(parsed.value.logging.access_log);
    assert_eq!(parsed.value.access.allow.len(), 1);
}

#[test]
fn trusted_proxies_and_the_ip_list_flags_set_their_settings() {
    let parsed = Input::new()
        .cm(&[("proxy-real-ip-cidr", "192.168.0.0/16")])
        .flag("--trusted-proxies", "10.0.0.0/8, ::1")
        .flag("--proxy-protocol", "true")
        .flag("--deny-source-range", "192.0.2.0/24")
        .parse(None);
    let f = &parsed.value.forwarding;
    // The flag both trusts the proxies and names them, beating the ConfigMap's list.
    assert!(f.use_forwarded_headers);
    assert_eq!(f.real_ip_cidr.len(), 2);
    assert!(f.use_proxy_protocol);
    assert!(!parsed.value.access.allows("192.0.2.9".parse().unwrap()));
    one(&parsed.diagnostics, "overridden-config-key");
    // A bad list flag at start-up closes the gateway, as a bad MseIngressConfig list does.
    let parsed = Input::new()
        .flag("--allow-source-range", "10.0.0.0/33")
        .parse(None);
    assert!(parsed.value.access.closed);
    assert_eq!(
        one(&parsed.diagnostics, "invalid-config-value").severity,
        mse_model::Severity::Error
    );
}

#[test]
fn a_configmap_named_higress_config_is_read_both_ways() {
    let yaml = "upstream:\n  idleTimeout: 12\n";
    let hk = higress_key();
    let both = data(&[("higress", yaml), ("keep-alive-requests", "3")]);
    let flags = GlobalFlags::default();
    let sources = GlobalSources {
        configmap: Some(Doc {
            object: &hk,
            source: None,
            data: &both,
        }),
        higress: Some(Doc {
            object: &hk,
            source: None,
            data: yaml,
        }),
        ..GlobalSources::new(&flags)
    };
    let parsed = parse_global(&sources, None);
    assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
    assert_eq!(
        parsed.value.upstream.keepalive_timeout,
        Duration::from_secs(12)
    );
    assert_eq!(parsed.value.client.keep_alive_requests, 3);
}

// === bad values ===

#[test]
fn a_bad_value_keeps_the_last_good_one_and_names_object_key_and_value() {
    let good = Input::new()
        .cm(&[("keep-alive-requests", "2"), ("keep-alive", "30")])
        .parse(None);
    assert!(good.diagnostics.is_empty());
    let bad = Input::new()
        .cm(&[("keep-alive-requests", "two"), ("keep-alive", "45")])
        .parse(Some(&good.value));
    // The bad key keeps 2; the other key applies.
    assert_eq!(bad.value.client.keep_alive_requests, 2);
    assert_eq!(bad.value.client.keep_alive, Duration::from_secs(45));
    let d = one(&bad.diagnostics, "invalid-config-value");
    assert_eq!(
        d.to_string(),
        "warning: ConfigMap ingress/gateway: keep-alive-requests: expected a whole number; the last good value \"2\" (keep-alive-requests of ConfigMap ingress/gateway) stays (value \"two\") [invalid-config-value]"
    );
    // Still kept on the next compile, with the same diagnostic.
    let again = Input::new()
        .cm(&[("keep-alive-requests", "two")])
        .parse(Some(&bad.value));
    assert_eq!(again.value.client.keep_alive_requests, 2);
    assert_eq!(again.diagnostics, bad.diagnostics);
    // Fixed: the new value applies.
    let fixed = Input::new()
        .cm(&[("keep-alive-requests", "9")])
        .parse(Some(&again.value));
    assert_eq!(fixed.value.client.keep_alive_requests, 9);
    assert!(fixed.diagnostics.is_empty());
}

#[test]
fn without_a_last_good_value_the_next_source_or_the_default_applies() {
    let parsed = Input::new()
        .cm(&[("keep-alive", "30"), ("proxy-read-timeout", "soon")])
        .higress("downstream:\n  idleTimeout: forever\n")
        .parse(None);
    assert_eq!(parsed.value.client.keep_alive, Duration::from_secs(30));
    assert_eq!(parsed.value.upstream.read_timeout, Duration::from_secs(60));
    let d = &parsed.diagnostics;
    assert_eq!(codes(d), ["invalid-config-value", "invalid-config-value"]);
    assert!(
        d[0].message
            .ends_with("keep-alive of ConfigMap ingress/gateway applies")
    );
    assert_eq!(
        d[0].origin.key.as_deref(),
        Some("higress.downstream.idleTimeout")
    );
    assert!(
        d[1].message.ends_with("the default (60s) applies"),
        "{}",
        d[1].message
    );
}

#[test]
fn unreadable_higress_yaml_keeps_every_setting_it_had_set() {
    let good = Input::new()
        .higress("downstream:\n  idleTimeout: 40\nupstream:\n  idleTimeout: 5\n")
        .parse(None);
    let broken = Input::new()
        .cm(&[("keep-alive", "30")])
        .higress("downstream: [idleTimeout: 40\n")
        .parse(Some(&good.value));
    let d = one(&broken.diagnostics, "invalid-higress-config");
    assert_eq!(d.origin.key.as_deref(), Some("higress"));
    // Its settings stay, and still beat the ConfigMap.
    assert_eq!(broken.value.client.keep_alive, Duration::from_secs(40));
    assert_eq!(
        broken.value.upstream.keepalive_timeout,
        Duration::from_secs(5)
    );
    // Unknown paths are named in full.
    let unknown = Input::new()
        .higress("downstream:\n  idleTimeoutt: 4\n")
        .parse(None);
    let d = one(&unknown.diagnostics, "unknown-config-key");
    assert_eq!(
        d.origin.key.as_deref(),
        Some("higress.downstream.idleTimeoutt")
    );
    assert!(
        d.message.contains("did you mean downstream.idleTimeout?"),
        "{}",
        d.message
    );
}

#[test]
fn a_bad_ip_list_without_a_last_good_one_closes_the_gateway() {
    let bad = "global:\n  ipAccessControl:\n    whitelist: [10.0.0.0/33]\n";
    let parsed = Input::new().mse(bad).parse(None);
    assert!(parsed.value.access.closed);
    let d = one(&parsed.diagnostics, "invalid-config-value");
    assert_eq!(d.severity, Severity::Error);
    assert_eq!(d.origin.object, Some(mse_key()));
    assert_eq!(
        d.origin.key.as_deref(),
        Some("spec.global.ipAccessControl.whitelist")
    );
    // With a last good list, that list stays.
    let good = Input::new()
        .mse("global:\n  ipAccessControl:\n    whitelist: [10.0.0.0/8]\n")
        .parse(None);
    let kept = Input::new().mse(bad).parse(Some(&good.value));
    assert!(!kept.value.access.closed);
    assert_eq!(kept.value.access.allow, good.value.access.allow);
}

#[test]
fn mse_fields_without_effect_here_are_noted() {
    let parsed = Input::new()
        .mse(
            "global:\n  tls:\n    enableHardwareAcceleration: true\nmonitor:\n  logging:\n    sls:\n      reuseProject: p\n  tracing:\n    openTelemetry:\n      sampleRate: 50\n",
        )
        .parse(None);
    // The sample rate applies (tracing itself is switched on by the ConfigMap).
    assert_eq!(codes(&parsed.diagnostics), ["no-effect", "no-effect"]);
    assert_eq!(parsed.value.tracing.sample_rate, 0.5);
}
