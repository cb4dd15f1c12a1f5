//! Each family parses into its typed form, and keys that depend on each other say so.

mod support;

use std::net::IpAddr;
use std::time::Duration;

use mse_annotations::*;
use mse_model::{Severity, SourceRef};

use support::{clean, codes, map, object, run};

#[test]
fn canary_rules_follow_nginx_precedence_inputs() {
    let p = run(&[
        ("canary", "true"),
        ("canary-by-header", "X-Canary"),
        ("canary-by-header-value", "a.b|c"),
        ("canary-by-cookie", "beta"),
        ("canary-weight", "30"),
        ("canary-weight-total", "200"),
    ]);
    assert!(clean(&p), "{:#?}", p.diagnostics);
    let c = p.value.canary.canary().unwrap();
    let h = c.header.as_ref().unwrap();
    assert_eq!(h.name, "x-canary");
    // Literal, never a regex.
    assert!(matches!(&h.matcher, CanaryMatch::Value(v) if v == "a.b|c"));
    assert!(matches!(
        c.cookie.as_ref().unwrap().matcher,
        CanaryMatch::AlwaysNever
    ));
    assert_eq!((c.weight, c.weight_total), (30, 200));
}

#[test]
fn canary_yes_is_an_error_that_leaves_the_ingress_out() {
    let p = run(&[("canary", "yes"), ("canary-weight", "100")]);
    assert!(p.value.is_excluded());
    assert_eq!(
        codes(&p.diagnostics),
        [(
            Severity::Error,
            "invalid-canary",
            "nginx.ingress.kubernetes.io/canary".to_owned()
        )]
    );
    // Even when another prefix says true: the intent is unclear, so it stays out.
    let p = run(&[("canary", "yes"), ("higress.io/canary", "true")]);
    assert!(p.value.is_excluded());
}

#[test]
fn canary_keys_without_canary_true_are_reported_as_ignored() {
    let p = run(&[("canary-weight", "10"), ("canary-by-header", "x")]);
    assert!(matches!(p.value.canary, CanaryState::NotCanary));
    let c = codes(&p.diagnostics);
    assert_eq!(c.len(), 2);
    assert!(
        c.iter()
            .all(|(s, code, _)| *s == Severity::Warning && *code == "ignored-annotation")
    );
}

#[test]
fn canary_pattern_loses_to_value_and_weight_is_capped() {
    let p = run(&[
        ("canary", "true"),
        ("canary-by-header", "x"),
        ("canary-by-header-value", "on"),
        ("canary-by-header-pattern", "^o"),
        ("canary-weight", "150"),
    ]);
    let c = p.value.canary.canary().unwrap();
    assert!(matches!(
        c.header.as_ref().unwrap().matcher,
        CanaryMatch::Value(_)
    ));
    assert_eq!(c.weight, 100);
    let c = codes(&p.diagnostics);
    assert!(c.contains(&(
        Severity::Warning,
        "ignored-annotation",
        "nginx.ingress.kubernetes.io/canary-by-header-pattern".to_owned()
    )));
    assert!(c.contains(&(
        Severity::Warning,
        "invalid-value",
        "nginx.ingress.kubernetes.io/canary-weight".to_owned()
    )));
}

#[test]
fn canary_without_any_rule_is_warned() {
    let p = run(&[("canary", "true")]);
    assert_eq!(p.diagnostics[0].code, "canary-without-rule");
}

#[test]
fn cors_lists_are_typed_and_a_star_means_any() {
    let p = run(&[
        ("enable-cors", "true"),
        (
            "cors-allow-origin",
            "https://a.example.com:8443, https://*.Example.com, example.org",
        ),
        ("cors-allow-methods", "get, POST"),
        ("cors-allow-headers", "*"),
        ("cors-max-age", "10m"),
        ("cors-allow-credentials", "false"),
    ]);
    let c = p.value.cors.unwrap();
    assert_eq!(
        c.allow_origin,
        Allow::Only(vec![
            OriginPattern::Exact("https://a.example.com:8443".into()),
            OriginPattern::Subdomains {
                scheme: "https".into(),
                suffix: "example.com".into()
            },
        ])
    );
    assert_eq!(
        c.allow_methods,
        Allow::Only(vec![http::Method::GET, http::Method::POST])
    );
    assert_eq!(c.allow_headers, Allow::Any);
    assert_eq!(c.max_age, Duration::from_secs(600));
    assert!(!c.allow_credentials);
    // The origin without a scheme is dropped with a warning; the rest applies.
    let d = &p.diagnostics[0];
    assert_eq!(d.code, "ignored-entry");
    assert!(d.message.contains("\"example.org\""), "{d}");
}

#[test]
fn cors_defaults_and_keys_without_enable_cors() {
    let p = run(&[("enable-cors", "true")]);
    let c = p.value.cors.unwrap();
    assert_eq!(c.allow_origin, Allow::Any);
    assert!(c.allow_credentials);
    assert_eq!(c.max_age, Duration::from_secs(1_728_000));
    let p = run(&[("cors-allow-origin", "*")]);
    assert!(p.value.cors.is_none());
    assert_eq!(p.diagnostics[0].code, "ignored-annotation");
}

#[test]
fn rewrite_target_keeps_capture_groups_and_rewrite_path_wins() {
    let p = run(&[("rewrite-target", "/api/$1/x$2"), ("use-regex", "true")]);
    let t = p.value.rewrite.target.unwrap();
    assert_eq!(
        t.parts,
        [
            RewritePart::Text("/api/".into()),
            RewritePart::Group(1),
            RewritePart::Text("/x".into()),
            RewritePart::Group(2),
        ]
    );
    assert!(p.value.rewrite.use_regex);
    let p = run(&[("rewrite-target", "/a"), ("higress.io/rewrite-path", "/b")]);
    assert_eq!(p.value.rewrite.path.as_deref(), Some("/b"));
    assert!(p.value.rewrite.target.is_none());
    let p = run(&[
        ("upstream-vhost", "Internal.Example.com:8080"),
        ("x-forwarded-prefix", "/shop"),
    ]);
    assert_eq!(
        p.value.rewrite.upstream_vhost.as_deref(),
        Some("internal.example.com:8080")
    );
    assert_eq!(p.value.rewrite.x_forwarded_prefix.as_deref(), Some("/shop"));
}

#[test]
fn redirects_choose_temporal_over_permanent_and_default_the_code() {
    let p = run(&[("permanent-redirect", "https://new.example.com$request_uri")]);
    let t = p.value.redirect.target.unwrap();
    assert_eq!(t.code, 301);
    assert!(!t.url.is_literal());
    let p = run(&[
        ("permanent-redirect", "https://a.example.com/"),
        ("permanent-redirect-code", "999"),
    ]);
    assert_eq!(p.value.redirect.target.unwrap().code, 301);
    assert!(
        p.diagnostics[0]
            .message
            .contains("the default (301) applies")
    );
    let p = run(&[
        ("permanent-redirect", "https://a.example.com/"),
        ("temporal-redirect", "https://b.example.com/"),
    ]);
    let t = p.value.redirect.target.unwrap();
    assert_eq!(
        (t.code, t.url.raw.as_str()),
        (302, "https://b.example.com/")
    );
}

#[test]
fn ssl_redirect_defaults_to_whether_the_host_has_tls() {
    let p = run(&[]);
    assert!(p.value.redirect.redirects_to_https(true));
    assert!(!p.value.redirect.redirects_to_https(false));
    let p = run(&[("ssl-redirect", "false")]);
    assert!(!p.value.redirect.redirects_to_https(true));
    let p = run(&[("force-ssl-redirect", "true"), ("app-root", "/app")]);
    assert!(p.value.redirect.redirects_to_https(false));
    assert_eq!(p.value.redirect.app_root.as_deref(), Some("/app"));
}

#[test]
fn backend_protocol_upstream_tls_and_load_balancing() {
    let p = run(&[
        ("backend-protocol", "grpcs"),
        ("proxy-ssl-secret", "shop/upstream"),
        ("proxy-ssl-verify", "on"),
        ("proxy-ssl-name", "api.internal"),
        ("proxy-ssl-server-name", "on"),
        ("load-balance", "least_request"),
    ]);
    assert!(clean(&p), "{:#?}", p.diagnostics);
    let b = &p.value.backend;
    assert_eq!(b.protocol, BackendProtocol::Grpcs);
    assert!(b.tls.verify && b.tls.send_sni);
    assert_eq!(b.tls.secret.as_ref().unwrap().to_string(), "shop/upstream");
    assert_eq!(b.load_balance, LoadBalance::LeastConn);
}

#[test]
fn proxy_ssl_keys_without_tls_upstream_are_ignored_not_failed() {
    let p = run(&[("proxy-ssl-verify", "bogus")]);
    assert!(!p.value.fails_closed());
    assert_eq!(p.diagnostics[0].code, "ignored-annotation");
}

#[test]
fn verify_without_a_ca_fails_closed() {
    let p = run(&[("backend-protocol", "HTTPS"), ("proxy-ssl-verify", "on")]);
    assert!(p.value.fails_closed());
    assert_eq!(p.diagnostics[0].code, "incomplete-upstream-tls");
}

#[test]
fn ajp_and_an_unknown_algorithm_fall_back_with_a_reason() {
    let p = run(&[("backend-protocol", "AJP"), ("load-balance", "fastest")]);
    assert_eq!(p.value.backend.protocol, BackendProtocol::Http);
    assert_eq!(p.value.backend.load_balance, LoadBalance::RoundRobin);
    assert!(
        p.diagnostics[0]
            .message
            .contains("AJP upstreams are not available")
    );
    assert!(p.diagnostics[1].message.contains("random or ewma"));
    let p = run(&[("load-balance", "EWMA")]);
    assert!(clean(&p), "{:#?}", p.diagnostics);
    assert_eq!(p.value.backend.load_balance, LoadBalance::Ewma);
}

#[test]
fn affinity_wins_over_hashing_which_wins_over_the_algorithm() {
    let p = run(&[
        ("affinity", "cookie"),
        ("affinity-mode", "persistent"),
        ("session-cookie-name", "route"),
        ("session-cookie-max-age", "3600"),
        ("upstream-hash-by", "$remote_addr"),
    ]);
    let a = p.value.backend.affinity.as_ref().unwrap();
    assert_eq!(a.mode, AffinityMode::Persistent);
    assert_eq!(a.cookie.name, "route");
    assert_eq!(a.cookie.path, "/");
    assert_eq!(a.cookie.max_age, Some(Duration::from_secs(3600)));
    assert!(p.value.backend.hash_by.is_none());
    assert_eq!(p.diagnostics[0].code, "ignored-annotation");

    let p = run(&[
        ("upstream-hash-by", "$http_x_user_id"),
        ("load-balance", "random"),
    ]);
    assert_eq!(
        p.value.backend.hash_by,
        Some(HashKey::Header("x-user-id".into()))
    );
    assert_eq!(p.value.backend.load_balance, LoadBalance::RoundRobin);
    let p = run(&[("upstream-hash-by", "$request_uri-${host}")]);
    assert!(clean(&p), "{:#?}", p.diagnostics);
    assert_eq!(
        p.value.backend.hash_by,
        Some(HashKey::Combined(vec![HashKey::RequestUri, HashKey::Host]))
    );
    for bad in ["$request_uri$server_name", "${host", "$"] {
        let p = run(&[("upstream-hash-by", bad)]);
        assert!(p.value.backend.hash_by.is_none(), "{bad}");
        assert_eq!(p.diagnostics[0].code, "invalid-value", "{bad}");
    }
}

#[test]
fn affinity_cookie_attributes() {
    let p = run(&[
        ("affinity", "cookie"),
        ("session-cookie-domain", ".example.com"),
        ("session-cookie-secure", "true"),
        ("session-cookie-samesite", "lax"),
        ("session-cookie-conditional-samesite-none", "true"),
    ]);
    assert!(clean(&p), "{:#?}", p.diagnostics);
    let c = &p.value.backend.affinity.as_ref().unwrap().cookie;
    assert_eq!(c.domain.as_deref(), Some("example.com"));
    assert!(c.secure && c.conditional_same_site_none);
    assert_eq!(c.same_site, Some(SameSite::Lax));

    let p = run(&[
        ("affinity", "cookie"),
        ("session-cookie-samesite", "Sometimes"),
    ]);
    assert_eq!(p.diagnostics[0].code, "invalid-value");
    assert!(
        p.value
            .backend
            .affinity
            .as_ref()
            .unwrap()
            .cookie
            .same_site
            .is_none()
    );
    // Without affinity the attributes are ignored, with the reason.
    let p = run(&[("session-cookie-secure", "true")]);
    assert_eq!(p.diagnostics[0].code, "ignored-annotation");
}

#[test]
fn hash_subsets() {
    let p = run(&[
        ("upstream-hash-by", "$arg_user"),
        ("upstream-hash-by-subset", "true"),
    ]);
    assert!(clean(&p), "{:#?}", p.diagnostics);
    assert_eq!(p.value.backend.hash_subset, Some(3));
    let p = run(&[
        ("upstream-hash-by", "$arg_user"),
        ("upstream-hash-by-subset-size", "5"),
    ]);
    assert_eq!(p.value.backend.hash_subset, None);
    assert_eq!(p.diagnostics[0].code, "ignored-annotation");
    let p = run(&[("upstream-hash-by-subset", "true")]);
    assert_eq!(p.value.backend.hash_subset, None);
    assert_eq!(p.diagnostics[0].code, "ignored-annotation");
}

#[test]
fn mse_service_keys() {
    let p = run(&[
        ("mse.ingress.kubernetes.io/service-subset", ""),
        (
            "mse.ingress.kubernetes.io/subset-labels",
            "version v2\nzone a",
        ),
        ("mse.ingress.kubernetes.io/warmup", "30"),
        (
            "mse.ingress.kubernetes.io/connection-policy-tcp-max-connection",
            "100",
        ),
    ]);
    assert!(clean(&p), "{:#?}", p.diagnostics);
    let s = p.value.backend.subset.as_ref().unwrap();
    assert_eq!(s.name, None);
    assert_eq!(s.labels.get("zone").map(String::as_str), Some("a"));
    assert_eq!(p.value.backend.warmup, Some(Duration::from_secs(30)));
    assert_eq!(p.value.backend.connections.max_connections, Some(100));
}

#[test]
fn client_tls_ciphers_versions_and_aliases() {
    let p = run(&[
        ("auth-tls-secret", "client-ca"),
        (
            "ssl-ciphers",
            "ECDHE-RSA-AES128-GCM-SHA256:AES128-SHA:!aNULL",
        ),
        ("higress.io/tls-min-protocol-version", "TLSv1.0"),
        ("server-alias", "www.example.com, *.Shop.example.com"),
    ]);
    let t = &p.value.tls;
    assert_eq!(t.client_ca.as_ref().unwrap().name, "client-ca");
    assert_eq!(
        t.ciphers.as_deref(),
        Some(&[CipherSuite::EcdheRsaAes128GcmSha256][..])
    );
    assert_eq!(t.min_version, Some(TlsVersion::V1_0));
    assert_eq!(t.aliases, ["www.example.com", "*.shop.example.com"]);
    let c: Vec<&str> = p.diagnostics.iter().map(|d| d.code).collect();
    assert_eq!(
        c,
        [
            // Two cipher names dropped; TLS 1.0 is not available.
            "ignored-entry",
            "ignored-entry",
            "different-semantics",
        ]
    );
    let c = t.client_cert.as_ref().unwrap();
    assert_eq!(c.verify, VerifyClient::On);
    assert_eq!(c.depth, 1);
    assert!(!c.pass_certificate);
}

#[test]
fn client_certificate_keys() {
    let p = run(&[
        ("auth-tls-secret", "client-ca"),
        ("auth-tls-verify-client", "optional_no_ca"),
        ("auth-tls-verify-depth", "3"),
        ("auth-tls-pass-certificate-to-upstream", "true"),
        (
            "auth-tls-error-page",
            "https://errors.example.com/cert.html",
        ),
        ("auth-tls-match-cn", "CN=(alice|bob)"),
    ]);
    assert!(clean(&p), "{:#?}", p.diagnostics);
    let c = p.value.tls.client_cert.unwrap();
    assert_eq!(c.secret.name, "client-ca");
    assert_eq!(c.verify, VerifyClient::OptionalNoCa);
    assert_eq!(c.depth, 3);
    assert!(c.pass_certificate);
    assert_eq!(
        c.error_page.as_deref(),
        Some("https://errors.example.com/cert.html")
    );
    assert_eq!(c.match_cn.as_deref(), Some("CN=(alice|bob)"));
}

#[test]
fn bad_client_certificate_verification_fails_closed() {
    for (key, value) in [
        ("auth-tls-verify-client", "maybe"),
        ("auth-tls-verify-depth", "0"),
        ("auth-tls-match-cn", "alice"),
        ("auth-tls-match-cn", "CN=(unclosed"),
    ] {
        let p = run(&[("auth-tls-secret", "client-ca"), (key, value)]);
        assert!(p.value.fails_closed(), "{key}: {value}");
        let d = &p.diagnostics[0];
        assert_eq!(d.severity, Severity::Error, "{d:?}");
        assert!(d.origin.key.as_deref().unwrap().ends_with(key), "{d:?}");
    }
    // A bad error page only loses the redirect.
    let p = run(&[
        ("auth-tls-secret", "client-ca"),
        ("auth-tls-error-page", "/relative"),
    ]);
    assert!(!p.value.fails_closed());
    assert_eq!(p.value.tls.client_cert.unwrap().error_page, None);
    // Without auth-tls-secret the other keys do nothing, and say so.
    let p = run(&[("auth-tls-match-cn", "CN=alice")]);
    let d: Vec<&str> = p.diagnostics.iter().map(|d| d.code).collect();
    assert_eq!(d, ["ignored-annotation"]);
    assert!(
        p.diagnostics[0]
            .message
            .contains("auth-tls-secret is not set")
    );
}

#[test]
fn cross_namespace_secrets_are_refused_unless_allowed() {
    let p = run(&[("auth-type", "basic"), ("auth-secret", "other/users")]);
    assert!(p.value.fails_closed());
    assert!(p.diagnostics[0].message.contains("own namespace"));
    let opts = ParseOptions::default().with_cross_namespace_secrets(true);
    let p = parse_with(
        &object(),
        None,
        &map(&[("auth-type", "basic"), ("auth-secret", "other/users")]),
        &opts,
    );
    assert!(!p.value.fails_closed());
    assert_eq!(
        p.value.auth.basic.unwrap().secret.to_string(),
        "other/users"
    );
}

#[test]
fn ip_lists_are_typed_and_allowlist_wins_over_whitelist() {
    let p = run(&[
        ("allowlist-source-range", "10.0.0.0/8"),
        ("whitelist-source-range", "192.168.0.0/16"),
        (
            "mse.ingress.kubernetes.io/blacklist-source-range",
            "10.1.0.0/16",
        ),
    ]);
    let a = &p.value.access;
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    assert!(a.allows(ip("10.2.0.1")));
    assert!(!a.allows(ip("10.1.0.1")));
    assert!(!a.allows(ip("192.168.0.1")));
    assert_eq!(p.diagnostics[0].code, "ignored-annotation");
}

#[test]
fn a_bad_allow_list_fails_closed_but_another_valid_prefix_applies() {
    let p = run(&[("whitelist-source-range", "10.0.0.0/8, nope")]);
    assert!(p.value.fails_closed());
    assert_eq!(p.value.access.allow, None);
    assert_eq!(p.diagnostics[0].severity, Severity::Error);
    let p = run(&[
        ("whitelist-source-range", "nope"),
        ("higress.io/whitelist-source-range", "10.0.0.0/8"),
    ]);
    assert!(!p.value.fails_closed());
    assert_eq!(p.value.access.allow.as_ref().map(Vec::len), Some(1));
    let d = &p.diagnostics[0];
    assert_eq!((d.severity, d.code), (Severity::Warning, "invalid-value"));
    assert!(
        d.message
            .contains("the value of higress.io/whitelist-source-range applies"),
        "{d}"
    );
}

#[test]
fn timeouts_accept_seconds_and_units() {
    let p = run(&[
        ("proxy-connect-timeout", "500ms"),
        ("proxy-read-timeout", "3600"),
        ("higress.io/timeout", "0"),
    ]);
    let t = p.value.timeouts;
    assert_eq!(t.connect, Some(Duration::from_millis(500)));
    assert_eq!(t.read, Some(Duration::from_secs(3600)));
    assert_eq!(t.send, None);
    assert_eq!(t.total, None);
}

#[test]
fn retries_parse_conditions_and_off() {
    let p = run(&[
        (
            "proxy-next-upstream",
            "error timeout http_502 non_idempotent bogus",
        ),
        ("proxy-next-upstream-tries", "5"),
        ("proxy-next-upstream-timeout", "10"),
    ]);
    let r = &p.value.retry;
    let on = r.on.as_ref().unwrap();
    assert!(on.error && on.timeout && on.non_idempotent && !on.invalid_header);
    assert_eq!(on.statuses, [502]);
    assert_eq!((r.tries, r.timeout), (5, Some(Duration::from_secs(10))));
    assert!(r.set);
    assert_eq!(p.diagnostics[0].code, "ignored-entry");
    let p = run(&[("proxy-next-upstream", "off")]);
    assert!(p.value.retry.on.is_none());
    assert!(p.value.retry.set);
    assert_eq!(Retry::default().tries, 3);
    assert!(!run(&[]).value.retry.set);
}

#[test]
fn limits_of_every_kind() {
    let p = run(&[
        ("proxy-body-size", "8m"),
        ("limit-rps", "10"),
        ("limit-burst-multiplier", "3"),
        ("limit-whitelist", "10.0.0.0/8"),
        ("higress.io/route-limit-rpm", "600"),
        ("mse.ingress.kubernetes.io/rate-limit", "100"),
        (
            "mse.ingress.kubernetes.io/rate-limit-fallback-custom-response-body-type",
            "json",
        ),
        ("mse.ingress.kubernetes.io/concurrency-limit", "5"),
        (
            "mse.ingress.kubernetes.io/concurrency-limit-fallback-redirect-url",
            "https://busy.example.com/",
        ),
    ]);
    assert!(clean(&p), "{:#?}", p.diagnostics);
    let l = &p.value.limits;
    assert_eq!(l.body_size, Some(BodySize::Limit(8 << 20)));
    assert_eq!(l.client.rps, Some(10));
    assert_eq!(l.client.burst_multiplier, 3);
    assert_eq!(l.client.exempt.len(), 1);
    assert_eq!(
        l.route,
        Some(RouteRateLimit {
            requests: 600,
            per_minute: true,
            burst_multiplier: 5
        })
    );
    let rate = l.rate.as_ref().unwrap();
    assert!(matches!(
        rate.action,
        LimitAction::Respond {
            code: 429,
            body_type: BodyType::Json,
            ..
        }
    ));
    assert!(matches!(
        l.concurrency.as_ref().unwrap().action,
        LimitAction::Redirect(_)
    ));
    // Absent: the gateway-wide proxy-body-size applies.
    assert_eq!(run(&[]).value.limits.body_size, None);
    assert_eq!(
        run(&[("proxy-body-size", "0")]).value.limits.body_size,
        Some(BodySize::Unlimited)
    );
}

#[test]
fn custom_errors_are_kept_without_a_default_backend() {
    let p = run(&[
        ("default-backend", "errors:8080"),
        ("custom-http-errors", "503,404,404"),
    ]);
    let f = &p.value.fallback;
    assert_eq!(f.default_backend.as_ref().unwrap().port, Some(8080));
    assert_eq!(f.custom_http_errors, [404, 503]);
    // The gateway-wide default backend may serve them: the router decides.
    let p = run(&[("custom-http-errors", "404")]);
    assert_eq!(p.value.fallback.custom_http_errors, [404]);
    assert!(
        p.diagnostics.iter().all(|d| d.code != "ignored-annotation"),
        "{:?}",
        p.diagnostics
    );
}

#[test]
fn mirror_prefers_the_fqdn_target() {
    let p = run(&[
        ("higress.io/mirror-target-service", "shop/shadow"),
        ("higress.io/mirror-percentage", "250"),
    ]);
    let m = p.value.mirror.as_ref().unwrap();
    assert!(matches!(&m.target, MirrorTarget::Service(s) if s.to_string() == "shop/shadow"));
    assert_eq!(m.percentage, 100);
    let p = run(&[
        ("higress.io/mirror-target-service", "shadow"),
        ("higress.io/mirror-target-fqdn", "shadow.example.com"),
        ("higress.io/mirror-target-fqdn-port", "8080"),
    ]);
    assert_eq!(
        p.value.mirror.unwrap().target,
        MirrorTarget::Fqdn {
            host: "shadow.example.com".into(),
            port: 8080
        }
    );
}

#[test]
fn header_edits_and_proxy_redirect() {
    let p = run(&[
        (
            "higress.io/request-header-control-add",
            "X-Env staging\nX-Team \"a b\"",
        ),
        (
            "higress.io/response-header-control-remove",
            "Server, X-Powered-By",
        ),
        ("proxy-redirect-from", "http://internal/"),
        ("proxy-redirect-to", "https://shop.example.com/"),
    ]);
    assert!(clean(&p), "{:#?}", p.diagnostics);
    let h = &p.value.headers;
    assert_eq!(
        h.request.add,
        [
            ("x-env".to_owned(), "staging".to_owned()),
            ("x-team".to_owned(), "a b".to_owned())
        ]
    );
    assert_eq!(h.response.remove, ["server", "x-powered-by"]);
    assert!(matches!(
        p.value.proxy_redirect,
        Some(ProxyRedirect::Replace { .. })
    ));
}

#[test]
fn quoted_header_control_names_and_values_parse_as_in_higress() {
    let value = "'x-test2' \"higress; test=false\"\n\"X-B\" plain\n'x-bad value";
    let p = run(&[("higress.io/request-header-control-add", value)]);
    assert_eq!(
        p.value.headers.request.add,
        [
            ("x-test2".to_owned(), "higress; test=false".to_owned()),
            ("x-b".to_owned(), "plain".to_owned()),
        ]
    );
    // The malformed line is dropped with a warning naming the key, the line and the value.
    assert_eq!(p.diagnostics.len(), 1, "{:#?}", p.diagnostics);
    let d = &p.diagnostics[0];
    assert_eq!(d.code, "ignored-entry");
    assert_eq!(
        d.origin.key.as_deref(),
        Some("higress.io/request-header-control-add")
    );
    assert_eq!(d.value.as_deref(), Some(value));
    assert!(d.message.contains("\"'x-bad value\""), "{}", d.message);
    assert!(d.message.contains("closing quote"), "{}", d.message);
}

#[test]
fn match_families_become_typed_conditions() {
    let p = run(&[
        ("higress.io/match-method", "get POST get"),
        ("higress.io/exact-match-header-X-Env", "staging"),
        ("higress.io/regex-match-query-id", "^[0-9]+$"),
        ("higress.io/prefix-match-pseudo-header-authority", "api."),
        ("higress.io/exact-match-pseudo-header-bogus", "x"),
        ("higress.io/ignore-path-case", "true"),
    ]);
    let m = &p.value.matching;
    assert!(m.ignore_path_case);
    assert_eq!(m.methods, [http::Method::GET, http::Method::POST]);
    assert_eq!(m.headers[0].name, "x-env");
    assert!(matches!(m.queries[0].kind, MatchKind::Regex(_)));
    assert_eq!(m.pseudo_headers.len(), 1);
    assert_eq!(m.pseudo_headers[0].name, ":authority");
    let d = &p.diagnostics[0];
    assert_eq!(
        d.origin.key.as_deref(),
        Some("higress.io/exact-match-pseudo-header-bogus")
    );
}

#[test]
fn basic_and_external_auth() {
    let p = run(&[
        ("auth-type", "basic"),
        ("auth-secret", "users"),
        ("auth-secret-type", "auth-map"),
        ("auth-realm", "Staff"),
        ("auth-url", "https://$host/oauth2/auth"),
        (
            "auth-signin",
            "https://$host/oauth2/start?rd=$escaped_request_uri",
        ),
        ("auth-response-headers", "X-Auth-User"),
    ]);
    assert!(clean(&p), "{:#?}", p.diagnostics);
    let b = p.value.auth.basic.as_ref().unwrap();
    assert_eq!(
        (b.secret_type, b.realm.as_str()),
        (AuthSecretType::AuthMap, "Staff")
    );
    let e = p.value.auth.external.as_ref().unwrap();
    assert_eq!(e.method, http::Method::GET);
    assert_eq!(e.response_headers, ["x-auth-user"]);
    assert!(e.signin.is_some());
}

#[test]
fn half_configured_auth_fails_closed() {
    for pairs in [
        &[("auth-type", "basic")][..],
        &[("auth-secret", "users")][..],
        &[("auth-type", "digest"), ("auth-secret", "users")][..],
        &[("auth-url", "auth-svc")][..],
    ] {
        let p = run(pairs);
        assert!(p.value.fails_closed(), "{pairs:?}");
        assert!(p.value.auth.basic.is_none() && p.value.auth.external.is_none());
        assert!(p.diagnostics.iter().any(|d| d.severity == Severity::Error));
    }
}

#[test]
fn unknown_keys_get_the_nearest_known_key_under_the_same_prefix() {
    let p = run(&[
        ("higress.io/rewrite-taget", "/"),
        ("proxy-read-timout", "5"),
    ]);
    let msgs: Vec<&str> = p.diagnostics.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        msgs,
        [
            "unknown annotation, ignored; did you mean nginx.ingress.kubernetes.io/proxy-read-timeout?",
            "unknown annotation, ignored; did you mean higress.io/rewrite-target?",
        ]
    );
}

#[test]
fn snippets_are_refused_and_buffer_tuning_is_a_note() {
    let p = run(&[
        ("configuration-snippet", "more_set_headers \"X: y\";"),
        ("proxy-buffer-size", "8k"),
        ("my-custom-snippet", "x"),
    ]);
    let c = codes(&p.diagnostics);
    assert_eq!(
        c,
        [
            (
                Severity::Error,
                "refused-annotation",
                "nginx.ingress.kubernetes.io/configuration-snippet".to_owned()
            ),
            (
                Severity::Error,
                "refused-annotation",
                "nginx.ingress.kubernetes.io/my-custom-snippet".to_owned()
            ),
            (
                Severity::Info,
                "no-effect",
                "nginx.ingress.kubernetes.io/proxy-buffer-size".to_owned()
            ),
        ]
    );
    assert!(p.diagnostics[0].message.contains("never executes"));
}

#[test]
fn different_valid_values_under_two_prefixes_warn_about_the_loser() {
    let p = run(&[("use-regex", "true"), ("higress.io/use-regex", "false")]);
    assert!(p.value.rewrite.use_regex);
    let d = p
        .diagnostics
        .iter()
        .find(|d| d.code == "shadowed-annotation")
        .unwrap();
    assert_eq!(d.origin.key.as_deref(), Some("higress.io/use-regex"));
    // The same value twice is not a problem.
    let p = run(&[
        ("proxy-body-size", "8m"),
        ("higress.io/proxy-body-size", "8m"),
    ]);
    assert!(clean(&p), "{:#?}", p.diagnostics);
}

#[test]
fn reserved_and_unread_prefixes_are_reported() {
    let p = run(&[
        ("internal.higress.io/cluster-id", "x"),
        ("higress.ingress.kubernetes.io/timeout", "5"),
        ("cert-manager.io/cluster-issuer", "letsencrypt"),
    ]);
    let c: Vec<&str> = p.diagnostics.iter().map(|d| d.code).collect();
    assert_eq!(c, ["unread-prefix", "reserved-annotation"]);
    assert!(p.diagnostics[0].message.contains("higress.io/timeout"));
}

#[test]
fn diagnostics_name_file_object_key_and_value() {
    let src = SourceRef {
        file: "shop.yaml".into(),
        line: 3,
    };
    let p = parse(
        &object(),
        Some(&src),
        &map(&[("proxy-read-timeout", "ten")]),
    );
    assert_eq!(
        p.diagnostics[0].to_string(),
        "shop.yaml:3: warning: Ingress shop/web: nginx.ingress.kubernetes.io/proxy-read-timeout: expected seconds, e.g. 60, or a time such as 500ms, 60s, 5m, 1h; the default (60s) applies (value \"ten\") [invalid-value]"
    );
}

#[test]
fn different_semantics_keys_get_one_note() {
    let p = run(&[("use-regex", "true"), ("higress.io/use-regex", "true")]);
    let c = codes(&p.diagnostics);
    assert_eq!(
        c,
        [(
            Severity::Info,
            "different-semantics",
            "nginx.ingress.kubernetes.io/use-regex".to_owned()
        )]
    );
}
