//! End to end over loopback: basic authentication (`auth-type`, `auth-secret` as an
//! htpasswd file or an auth map, each hash kind, `auth-realm`), remembered credentials
//! and Secret changes, and auth annotations that fail closed.
#![cfg(test)]

mod support;

use std::net::SocketAddr;

use http::StatusCode;
use support::*;

/// Users made with `htpasswd -B -C 4` and `-s`, `{SSHA}` as nginx reads it, and two kinds
/// the gateway refuses: DES crypt and MD5-crypt (`htpasswd -m`), which no maintained
/// library implements.
const HTPASSWD: &str = "\
bcuser:$2y$04$0s4j91.KwrFMq3iLF7ScnePNhuLiURWA9JbEPchKZvjF0hAwNyOf6
mduser:$apr1$XC7RNMoO$n5sqk8SORQSxyDr3.k80q.
shauser:{SHA}KvPXpIScDQubdcQXyPXUdUCmoqA=
sshauser:{SSHA}+I/BcAEHY4Oro3CPqrjtCLjd74BOYUNsMTIzNA==
desuser:RlXk70wGVeroY
";

fn basic_yaml(backend: SocketAddr, users: &str) -> String {
    [
        annotate(
            &ingress("file", Some("file.example.com"), &[("/", "Prefix", "app")]),
            &[
                ("auth-type", "basic"),
                ("auth-secret", "users"),
                ("auth-realm", "Staff only"),
            ],
        ),
        annotate(
            &ingress("map", Some("map.example.com"), &[("/", "Prefix", "app")]),
            &[
                ("auth-type", "basic"),
                ("auth-secret", "user-map"),
                ("auth-secret-type", "auth-map"),
            ],
        ),
        secret("users", &[("auth", users)]),
        secret(
            "user-map",
            &[("mapped", "{SHA}4yHxIwzJYUz88AoES2iSA3j9ph0=")],
        ),
        service("app", &[backend]),
    ]
    .concat()
}

#[tokio::test]
async fn basic_auth_accepts_each_hash_kind_and_refuses_wrong_or_missing_credentials() {
    let app = echo("app").await;
    let (gw, _table) = gateway(&basic_yaml(app.addr(), HTPASSWD));
    let addr = http_addr(&gw);

    for (user, password) in [
        ("bcuser", "bc pass"),
        ("shauser", "sha pass"),
        ("sshauser", "ssha pass"),
    ] {
        // Twice: the second time from the worker's cache for bcrypt.
        for _ in 0..2 {
            let r = get_as(addr, "file.example.com", Some(&basic(user, password))).await;
            assert_eq!((r.status, r.service()), (StatusCode::OK, "app"), "{user}");
            // The credentials go upstream, as nginx passes them.
            assert!(r.echoed_header("authorization").is_some(), "{user}");
        }
        let r = get_as(addr, "file.example.com", Some(&basic(user, "wrong"))).await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "{user} with a wrong password"
        );
        assert_eq!(r.service(), "", "nothing reached the backend");
    }
    // DES crypt and MD5-crypt are not checked: those users are refused (the compile
    // said so).
    let r = get_as(addr, "file.example.com", Some(&basic("desuser", "despass"))).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = get_as(addr, "file.example.com", Some(&basic("mduser", "md pass"))).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    let r = get_as(addr, "file.example.com", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers["www-authenticate"], "Basic realm=\"Staff only\"");
    let r = get_as(addr, "file.example.com", Some(&basic("nobody", "bc pass"))).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = get_as(addr, "file.example.com", Some("Bearer abc")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // The same over HTTP/2.
    let mut h2 = h2c(addr).await;
    let good = basic("shauser", "sha pass");
    let r = send2(
        &mut h2,
        request("file.example.com", "GET", "/", &[("authorization", &good)]),
    )
    .await;
    assert_eq!((r.status, r.service()), (StatusCode::OK, "app"));
    let r = send2(&mut h2, request("file.example.com", "GET", "/", &[])).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // auth-map: one key per user.
    let r = get_as(addr, "map.example.com", Some(&basic("mapped", "md pass"))).await;
    assert_eq!((r.status, r.service()), (StatusCode::OK, "app"));
    let r = get_as(addr, "map.example.com", Some(&basic("mapped", "nope"))).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers["www-authenticate"], "Basic realm=\"\"");
    let r = get_as(addr, "map.example.com", Some(&basic("bcuser", "bc pass"))).await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "users of another Secret"
    );
}

#[tokio::test]
async fn a_changed_secret_is_used_at_once_even_for_remembered_credentials() {
    let app = echo("app").await;
    let (gw, table) = gateway(&basic_yaml(app.addr(), HTPASSWD));
    let addr = http_addr(&gw);
    let good = basic("bcuser", "bc pass");
    // On one connection, so that the same worker remembers it.
    let mut tx = h1(addr).await;
    let auth = [("authorization", good.as_str())];
    for _ in 0..2 {
        let r = send1(&mut tx, request("file.example.com", "GET", "/", &auth)).await;
        assert_eq!(r.status, StatusCode::OK);
    }
    // The password changes: the remembered credentials no longer pass.
    let changed = "bcuser:$2y$04$0dl83p4hr5SKMSrGkhZqGOCPylEiGv/Y5WjrEyZJnx/3pQnYWeGxq";
    table.publish(compile_yaml(&basic_yaml(app.addr(), changed)));
    let r = send1(&mut tx, request("file.example.com", "GET", "/", &auth)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let new = basic("bcuser", "hunter2");
    let r = send1(
        &mut tx,
        request("file.example.com", "GET", "/", &[("authorization", &new)]),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    // The user is dropped: refused as well.
    table.publish(compile_yaml(&basic_yaml(app.addr(), "other:{PLAIN}x")));
    let r = send1(
        &mut tx,
        request("file.example.com", "GET", "/", &[("authorization", &new)]),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_bad_auth_annotation_or_missing_secret_closes_only_its_ingress() {
    let app = echo("app").await;
    let yaml = [
        annotate(
            &ingress(
                "nosecret",
                Some("nosecret.example.com"),
                &[("/", "Prefix", "app")],
            ),
            &[("auth-type", "basic"), ("auth-secret", "missing")],
        ),
        annotate(
            &ingress(
                "badmethod",
                Some("badmethod.example.com"),
                &[("/", "Prefix", "app")],
            ),
            &[
                ("auth-url", "http://127.0.0.1:9/check"),
                ("auth-method", "FETCH"),
            ],
        ),
        annotate(
            &ingress(
                "othersecret",
                Some("other.example.com"),
                &[("/", "Prefix", "app")],
            ),
            &[("auth-type", "basic"), ("auth-secret", "kube-system/users")],
        ),
        ingress("open", Some("open.example.com"), &[("/", "Prefix", "app")]),
        service("app", &[app.addr()]),
    ]
    .concat();
    let table = compile_yaml(&yaml);
    let errors: Vec<String> = table
        .diagnostics()
        .iter()
        .filter(|d| d.severity == mse_model::Severity::Error)
        .map(ToString::to_string)
        .collect();
    for (ingress, key, value) in [
        ("default/nosecret", "auth-secret", "missing"),
        ("default/badmethod", "auth-method", "FETCH"),
        ("default/othersecret", "auth-secret", "kube-system/users"),
    ] {
        assert!(
            errors
                .iter()
                .any(|e| e.contains(ingress) && e.contains(key) && e.contains(value)),
            "{ingress} {key}: {errors:#?}"
        );
    }
    let (gw, _table) = gateway_serving(table, |_| {});
    let addr = http_addr(&gw);
    for host in [
        "nosecret.example.com",
        "badmethod.example.com",
        "other.example.com",
    ] {
        let r = get_as(addr, host, Some(&basic("bcuser", "bc pass"))).await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{host}");
        assert_eq!(r.service(), "", "{host}");
    }
    let r = get_as(addr, "open.example.com", None).await;
    assert_eq!((r.status, r.service()), (StatusCode::OK, "app"));
}
