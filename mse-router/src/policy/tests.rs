use std::collections::BTreeSet;

use mse_annotations::{Group, KEYS};

use super::*;

/// The annotation groups and single keys the data plane applies: a registration lost or
/// added by mistake shows here.
#[test]
fn the_registered_groups_and_keys_are_the_applied_ones() {
    let groups: BTreeSet<String> = POLICIES
        .iter()
        .flat_map(|r| r.groups)
        .map(|g| format!("{g:?}"))
        .collect();
    let want = [
        Group::AccessControl,
        Group::Canary,
        Group::Cors,
        Group::Fallback,
        Group::Headers,
        Group::Matching,
        Group::Mirror,
        Group::Redirect,
        Group::Retry,
        Group::Rewrite,
    ];
    let want: BTreeSet<String> = want.iter().map(|g| format!("{g:?}")).collect();
    assert_eq!(groups, want);
    let keys: Vec<&str> = POLICIES.iter().flat_map(|r| r.keys).copied().collect();
    let single = [
        "proxy-body-size",
        "enable-access-log",
        "route-limit-rps",
        "route-limit-rpm",
        "route-limit-burst-multiplier",
        "limit-rps",
        "limit-rpm",
        "limit-connections",
        "limit-burst-multiplier",
        "limit-whitelist",
        "limit-allowlist",
        "rate-limit",
        "rate-limit-fallback-custom-response-code",
        "rate-limit-fallback-custom-response-body-type",
        "rate-limit-fallback-custom-response-body",
        "rate-limit-fallback-redirect-url",
        "concurrency-limit",
        "concurrency-limit-fallback-custom-response-code",
        "concurrency-limit-fallback-custom-response-body-type",
        "concurrency-limit-fallback-custom-response-body",
        "concurrency-limit-fallback-redirect-url",
        "auth-type",
        "auth-secret",
        "auth-secret-type",
        "auth-realm",
        "auth-url",
        "auth-method",
        "auth-response-headers",
        "auth-signin",
        "auth-signin-redirect-param",
        "auth-request-redirect",
        "auth-always-set-cookie",
        "auth-cache-key",
        "auth-cache-duration",
        "load-balance",
        "upstream-hash-by",
        "upstream-hash-by-subset",
        "upstream-hash-by-subset-size",
        "affinity",
        "affinity-mode",
        "affinity-canary-behavior",
        "session-cookie-name",
        "session-cookie-path",
        "session-cookie-max-age",
        "session-cookie-expires",
        "session-cookie-domain",
        "session-cookie-secure",
        "session-cookie-samesite",
        "session-cookie-conditional-samesite-none",
        "session-cookie-change-on-failure",
        "timeout",
        "proxy-connect-timeout",
        "proxy-read-timeout",
        "proxy-send-timeout",
        "connection-policy-tcp-max-connection",
        "connection-policy-tcp-max-connection-per-endpoint",
        "connection-policy-http-max-request-per-connection",
        "backend-protocol",
        "proxy-ssl-secret",
        "proxy-ssl-verify",
        "proxy-ssl-name",
        "proxy-ssl-server-name",
        "proxy-ssl-protocols",
        "proxy-ssl-ciphers",
        "service-upstream",
        "service-subset",
        "subset-labels",
        "warmup",
        "server-alias",
        "auth-tls-secret",
        "auth-tls-verify-client",
        "auth-tls-verify-depth",
        "auth-tls-pass-certificate-to-upstream",
        "auth-tls-error-page",
        "auth-tls-match-cn",
        "ssl-ciphers",
        "ssl-cipher",
        "tls-min-protocol-version",
        "tls-max-protocol-version",
    ];
    assert_eq!(keys, single);

    // Key by key: these annotations are applied, every other one gets `not-applied`.
    for spec in KEYS {
        let before = want.contains(&format!("{:?}", spec.group)) || single.contains(&spec.name);
        assert_eq!(applies(spec).is_some(), before, "{}", spec.name);
    }
}

#[test]
fn every_policy_has_its_own_name_and_something_to_apply() {
    let mut names = BTreeSet::new();
    for r in POLICIES {
        assert!(names.insert(r.name), "{} is registered twice", r.name);
        assert!(
            !r.groups.is_empty() || !r.keys.is_empty(),
            "{} applies no annotation",
            r.name
        );
    }
}

#[test]
fn a_key_in_no_group_is_applied_only_when_registered() {
    let Some(alias) = KEYS.iter().find(|k| k.name == "server-alias") else {
        panic!("server-alias is not in the registry");
    };
    assert_eq!(applies(alias), Some("server-alias"));
    // `ssl-passthrough` shares the group and is not applied.
    let Some(other) = KEYS.iter().find(|k| k.name == "ssl-passthrough") else {
        panic!("ssl-passthrough is not in the registry");
    };
    assert_eq!(other.group, alias.group);
    assert_eq!(applies(other), None, "{}", other.name);
}
