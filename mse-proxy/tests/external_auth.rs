//! End to end over loopback: external authentication (`auth-url` against a real service
//! on loopback: allow, 401 and 403 relayed, `auth-response-headers` copied upstream,
//! `auth-signin` with `rd`, https, `auth-cache-key`, cookies, the service down or silent
//! failing closed).
#![cfg(test)]

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use support::*;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// A user made with `htpasswd -nbs mduser "md pass"`.
const HTPASSWD: &str = "mduser:{SHA}4yHxIwzJYUz88AoES2iSA3j9ph0=";

/// What the authentication service was asked.
#[derive(Clone, Debug)]
struct Asked {
    method: http::Method,
    target: String,
    headers: HeaderMap,
    body: Bytes,
}

/// An authentication service on loopback. It decides by the request's `x-verdict`
/// header: `allow` (200 with `x-auth-user` and `x-not-copied`), `allow-bare` (200 alone),
/// `401` (with `WWW-Authenticate: Bearer`), `403`, `418`.
struct AuthService {
    addr: SocketAddr,
    asked: Arc<Mutex<Vec<Asked>>>,
}

impl AuthService {
    async fn start() -> Self {
        Self::start_with(None).await
    }

    /// Over TLS, with `leaf`'s certificate.
    async fn start_tls(leaf: &Leaf) -> Self {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let cert = CertificateDer::from_pem_slice(leaf.cert_pem.as_bytes()).expect("cert");
        let key = PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).expect("key");
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .expect("server config");
        Self::start_with(Some(TlsAcceptor::from(Arc::new(config)))).await
    }

    async fn start_with(tls: Option<TlsAcceptor>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let asked: Arc<Mutex<Vec<Asked>>> = Arc::default();
        let log = Arc::clone(&asked);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let log = Arc::clone(&log);
                let tls = tls.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let log = Arc::clone(&log);
                        async move { Ok::<_, Infallible>(answer(&log, req).await) }
                    });
                    let http = hyper::server::conn::http1::Builder::new();
                    match tls {
                        Some(tls) => {
                            if let Ok(s) = tls.accept(stream).await {
                                let _ = http.serve_connection(TokioIo::new(s), svc).await;
                            }
                        }
                        None => {
                            let _ = http.serve_connection(TokioIo::new(stream), svc).await;
                        }
                    }
                });
            }
        });
        Self { addr, asked }
    }

    fn asked(&self) -> Vec<Asked> {
        self.asked.lock().unwrap().clone()
    }
}

async fn answer(log: &Mutex<Vec<Asked>>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let verdict = parts
        .headers
        .get("x-verdict")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    log.lock().unwrap().push(Asked {
        method: parts.method,
        target: parts
            .uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        headers: parts.headers,
        body,
    });
    let mut r = Response::new(Full::new(Bytes::from_static(b"auth says")));
    match verdict.as_str() {
        "allow" => {
            r.headers_mut()
                .insert("x-auth-user", "alice".parse().unwrap());
            r.headers_mut().insert("x-not-copied", "1".parse().unwrap());
            r.headers_mut()
                .insert("set-cookie", "session=fresh".parse().unwrap());
        }
        "401" => {
            *r.status_mut() = StatusCode::UNAUTHORIZED;
            r.headers_mut()
                .insert("www-authenticate", "Bearer realm=\"x\"".parse().unwrap());
        }
        "allow-bare" => {}
        "403" => {
            *r.status_mut() = StatusCode::FORBIDDEN;
            r.headers_mut()
                .insert("set-cookie", "session=gone".parse().unwrap());
        }
        _ => *r.status_mut() = StatusCode::IM_A_TEAPOT,
    }
    r
}

fn external_yaml(app: SocketAddr, auth_url: &str, extra: &[(&str, &str)]) -> String {
    let mut annotations = vec![
        ("auth-url", auth_url),
        ("auth-response-headers", "X-Auth-User"),
    ];
    annotations.extend_from_slice(extra);
    [
        annotate(
            &ingress("ext", Some("ext.example.com"), &[("/", "Prefix", "app")]),
            &annotations,
        ),
        service("app", &[app]),
    ]
    .concat()
}

#[tokio::test]
async fn external_auth_allows_denies_and_copies_headers_as_ingress_nginx_does() {
    let app = echo("app").await;
    let auth = AuthService::start().await;
    let url = format!("http://{}/check?for=$host", auth.addr);
    let (gw, _table) = gateway(&external_yaml(app.addr(), &url, &[("auth-method", "POST")]));
    let addr = http_addr(&gw);
    let mut tx = h1(addr).await;

    // Allowed: the request goes upstream with the named answer header only; the
    // client's own x-auth-user is replaced.
    let mut req = request(
        "ext.example.com",
        "PUT",
        "/items?q=1",
        &[("x-verdict", "allow"), ("x-auth-user", "mallory")],
    );
    *req.body_mut() = Full::new(Bytes::from_static(b"the body"));
    let r = send1(&mut tx, req).await;
    assert_eq!((r.status, r.service()), (StatusCode::OK, "app"));
    assert_eq!(r.echoed_header("x-auth-user").as_deref(), Some("alice"));
    assert_eq!(r.echoed_header("x-not-copied"), None);
    assert_eq!(r.json()["body"], "the body", "the body still goes upstream");
    let asked = auth.asked();
    let a = asked.last().expect("the auth service was asked");
    assert_eq!(a.method, http::Method::POST, "auth-method");
    assert_eq!(a.target, "/check?for=ext.example.com");
    assert!(a.body.is_empty(), "never the body");
    let h = |n: &str| a.headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
    assert_eq!(h("x-original-uri"), "/items?q=1");
    assert_eq!(h("x-original-url"), "http://ext.example.com/items?q=1");
    assert_eq!(h("x-original-method"), "PUT");
    assert_eq!(h("x-forwarded-host"), "ext.example.com");
    assert_eq!(h("x-forwarded-proto"), "http");
    assert_eq!(h("x-real-ip"), "127.0.0.1");
    assert_eq!(h("x-verdict"), "allow", "the client's headers are passed");
    assert_eq!(h("host"), auth.addr.to_string());
    assert!(matches!(h("content-length"), "" | "0"), "no body announced");

    // An answer without x-auth-user: the client's own does not go upstream either.
    let r = send1(
        &mut tx,
        request(
            "ext.example.com",
            "GET",
            "/",
            &[("x-verdict", "allow-bare"), ("x-auth-user", "mallory")],
        ),
    )
    .await;
    assert_eq!((r.status, r.service()), (StatusCode::OK, "app"));
    assert_eq!(r.echoed_header("x-auth-user"), None);

    // 401 with the service's challenge, 403, and anything else 500: never upstream.
    let r = send1(
        &mut tx,
        request("ext.example.com", "GET", "/", &[("x-verdict", "401")]),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers["www-authenticate"], "Bearer realm=\"x\"");
    let r = send1(
        &mut tx,
        request("ext.example.com", "GET", "/", &[("x-verdict", "403")]),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = send1(
        &mut tx,
        request("ext.example.com", "GET", "/", &[("x-verdict", "418")]),
    )
    .await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(r.service(), "");
}

#[tokio::test]
async fn a_401_with_auth_signin_redirects_with_rd() {
    let app = echo("app").await;
    let auth = AuthService::start().await;
    let url = format!("http://{}/check", auth.addr);
    let yaml = external_yaml(
        app.addr(),
        &url,
        &[("auth-signin", "https://login.example.com/start?app=shop")],
    );
    let (gw, _table) = gateway(&yaml);
    let mut tx = h1(http_addr(&gw)).await;
    let r = send1(
        &mut tx,
        request(
            "ext.example.com",
            "GET",
            "/a%20b?x=1",
            &[("x-verdict", "401")],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(
        r.headers["location"],
        "https://login.example.com/start?app=shop&rd=http://ext.example.com%2Fa%2520b%3Fx%3D1"
    );
    let r = send1(
        &mut tx,
        request("ext.example.com", "GET", "/", &[("x-verdict", "allow")]),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);

    // auth-signin-redirect-param names the parameter; one already in the URL is kept.
    for (param, signin, location) in [
        (
            "return_to",
            "https://login.example.com/start",
            "https://login.example.com/start?return_to=http://ext.example.com%2Fx",
        ),
        (
            "rd",
            "https://login.example.com/start?rd=/home",
            "https://login.example.com/start?rd=/home",
        ),
    ] {
        let yaml = external_yaml(
            app.addr(),
            &url,
            &[
                ("auth-signin", signin),
                ("auth-signin-redirect-param", param),
            ],
        );
        let (gw, _table) = gateway(&yaml);
        let mut tx = h1(http_addr(&gw)).await;
        let headers = [("x-verdict", "401")];
        let r = send1(&mut tx, request("ext.example.com", "GET", "/x", &headers)).await;
        assert_eq!(r.headers["location"], location, "{param}");
    }
}

#[tokio::test]
async fn an_auth_url_naming_a_service_goes_to_its_endpoints() {
    let app = echo("app").await;
    let auth = AuthService::start().await;
    let yaml = [
        external_yaml(
            app.addr(),
            "http://auth-svc.default.svc.cluster.local/check",
            &[],
        ),
        service("auth-svc", &[auth.addr]),
    ]
    .concat();
    let (gw, _table) = gateway(&yaml);
    let mut tx = h1(http_addr(&gw)).await;
    let r = send1(
        &mut tx,
        request("ext.example.com", "GET", "/", &[("x-verdict", "allow")]),
    )
    .await;
    assert_eq!((r.status, r.service()), (StatusCode::OK, "app"));
    assert_eq!(auth.asked().len(), 1);
}

#[tokio::test]
async fn an_auth_service_down_or_silent_fails_closed() {
    let app = echo("app").await;
    // Down: a port nothing listens on any more.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let down = closed.local_addr().unwrap();
    drop(closed);
    // Silent: accepts and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let _hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let yaml = [
        external_yaml(app.addr(), &format!("http://{down}/check"), &[]),
        annotate(
            &ingress(
                "silent",
                Some("silent.example.com"),
                &[("/", "Prefix", "app")],
            ),
            &[("auth-url", &format!("http://{silent_addr}/check"))],
        ),
    ]
    .concat();
    let (gw, _table) = gateway(&yaml);
    let addr = http_addr(&gw);
    let r = get_as(addr, "ext.example.com", None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.service(), "");
    let r = get_as(addr, "silent.example.com", None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.service(), "");
}

#[tokio::test]
async fn basic_and_external_auth_must_both_pass() {
    let app = echo("app").await;
    let auth = AuthService::start().await;
    let url = format!("http://{}/check", auth.addr);
    let yaml = [
        annotate(
            &ingress("both", Some("both.example.com"), &[("/", "Prefix", "app")]),
            &[
                ("auth-type", "basic"),
                ("auth-secret", "users"),
                ("auth-url", &url),
            ],
        ),
        secret("users", &[("auth", HTPASSWD)]),
        service("app", &[app.addr()]),
    ]
    .concat();
    let (gw, _table) = gateway(&yaml);
    let mut tx = h1(http_addr(&gw)).await;
    let good = basic("mduser", "md pass");
    let bad = basic("mduser", "nope");
    let r = send1(
        &mut tx,
        request(
            "both.example.com",
            "GET",
            "/",
            &[("authorization", &bad), ("x-verdict", "allow")],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(auth.asked().is_empty(), "basic auth is checked first");
    let r = send1(
        &mut tx,
        request(
            "both.example.com",
            "GET",
            "/",
            &[("authorization", &good), ("x-verdict", "403")],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = send1(
        &mut tx,
        request(
            "both.example.com",
            "GET",
            "/",
            &[("authorization", &good), ("x-verdict", "allow")],
        ),
    )
    .await;
    assert_eq!((r.status, r.service()), (StatusCode::OK, "app"));
}

#[tokio::test]
async fn an_https_auth_url_is_verified_against_the_configured_roots() {
    let app = echo("app").await;
    let ca = TestCa::new();
    let auth = AuthService::start_tls(&ca.leaf(&["auth-tls.default.svc"])).await;
    let yaml = [
        external_yaml(app.addr(), "https://auth-tls.default.svc/check", &[]),
        service("auth-tls", &[auth.addr]).replacen("port: 80,", "port: 443,", 1),
    ]
    .concat();
    let roots = |cert: &rustls::pki_types::CertificateDer<'static>| {
        let mut store = rustls::RootCertStore::empty();
        store.add(cert.clone()).expect("CA");
        Some(Arc::new(store))
    };
    let (gw, _table) = gateway_with(&yaml, |c| c.auth_url_roots = roots(&ca.cert));
    let mut tx = h1(http_addr(&gw)).await;
    let r = send1(
        &mut tx,
        request("ext.example.com", "GET", "/", &[("x-verdict", "allow")]),
    )
    .await;
    assert_eq!((r.status, r.service()), (StatusCode::OK, "app"));
    assert_eq!(r.echoed_header("x-auth-user").as_deref(), Some("alice"));
    let r = send1(
        &mut tx,
        request("ext.example.com", "GET", "/", &[("x-verdict", "403")]),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let asked = auth.asked().len();
    assert_eq!(asked, 2);

    // A gateway that does not trust the service's CA never lets the request through.
    let other = TestCa::new();
    let (gw, _table) = gateway_with(&yaml, |c| c.auth_url_roots = roots(&other.cert));
    let r = get_as(http_addr(&gw), "ext.example.com", None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.service(), "");
    assert_eq!(
        auth.asked().len(),
        asked,
        "no request without a verified certificate"
    );
}

#[tokio::test]
async fn auth_cache_key_remembers_answers_per_key_for_the_statuses_of_auth_cache_duration() {
    let app = echo("app").await;
    let auth = AuthService::start().await;
    let url = format!("http://{}/check", auth.addr);
    let yaml = external_yaml(
        app.addr(),
        &url,
        &[
            ("auth-cache-key", "$http_x_user"),
            ("auth-request-redirect", "https://app.example.com/back"),
        ],
    );
    let (gw, _table) = gateway(&yaml);
    // One connection: one worker, whose memory this is.
    let mut tx = h1(http_addr(&gw)).await;
    let mut ask = async |user: &str, verdict: &str| {
        let headers = [("x-user", user), ("x-verdict", verdict)];
        send1(&mut tx, request("ext.example.com", "GET", "/", &headers)).await
    };
    let r = ask("a", "allow").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(auth.asked().len(), 1);
    let asked = &auth.asked()[0];
    assert_eq!(
        asked.headers["x-auth-request-redirect"],
        "https://app.example.com/back"
    );
    // Remembered for "a": the service is not asked, whatever it would say now, and the
    // remembered headers are set.
    let r = ask("a", "403").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.echoed_header("x-auth-user").as_deref(), Some("alice"));
    assert_eq!(auth.asked().len(), 1);
    // Another key is asked.
    let r = ask("b", "403").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(auth.asked().len(), 2);
    // 403 is not in the default auth-cache-duration (200 202 401 5m): asked again.
    let r = ask("b", "allow").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(auth.asked().len(), 3);
    // 401 is, with its challenge.
    for _ in 0..2 {
        let r = ask("c", "401").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(r.headers["www-authenticate"], "Bearer realm=\"x\"");
    }
    assert_eq!(auth.asked().len(), 4);
}

#[tokio::test]
async fn the_auth_answers_cookies_reach_the_client_as_add_header_would_send_them() {
    let app = echo("app").await;
    let auth = AuthService::start().await;
    let url = format!("http://{}/check", auth.addr);
    let yaml = [
        external_yaml(app.addr(), &url, &[]),
        annotate(
            &ingress(
                "always",
                Some("always.example.com"),
                &[("/", "Prefix", "app")],
            ),
            &[("auth-url", &url), ("auth-always-set-cookie", "true")],
        ),
    ]
    .concat();
    let (gw, _table) = gateway(&yaml);
    let mut tx = h1(http_addr(&gw)).await;
    let cookies = |r: &Reply| -> Vec<String> {
        r.headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    };
    // With the upstream's 200, beside the upstream's own cookie.
    let headers = [("x-verdict", "allow"), ("x-echo-set-cookie", "app=1")];
    let r = send1(&mut tx, request("ext.example.com", "GET", "/", &headers)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(cookies(&r), ["app=1", "session=fresh"]);
    // Not with the upstream's 500, nor with the gateway's 403.
    let headers = [("x-verdict", "allow"), ("x-echo-status", "500")];
    let r = send1(&mut tx, request("ext.example.com", "GET", "/", &headers)).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(cookies(&r).is_empty());
    let r = send1(
        &mut tx,
        request("ext.example.com", "GET", "/", &[("x-verdict", "403")]),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(cookies(&r).is_empty());
    // With auth-always-set-cookie, with any answer.
    let headers = [("x-verdict", "allow"), ("x-echo-status", "500")];
    let r = send1(&mut tx, request("always.example.com", "GET", "/", &headers)).await;
    assert_eq!(cookies(&r), ["session=fresh"]);
    let r = send1(
        &mut tx,
        request("always.example.com", "GET", "/", &[("x-verdict", "403")]),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(cookies(&r), ["session=gone"]);
}

#[tokio::test]
async fn the_auth_service_is_told_the_client_a_trusted_proxy_names() {
    let app = echo("app").await;
    let auth = AuthService::start().await;
    let url = format!("http://{}/check", auth.addr);
    let mut opts = configmap_options();
    opts.flags = mse_router::global::GlobalFlags::default().with("--trusted-proxies", "127.0.0.1");
    let table = compile_yaml_with(&external_yaml(app.addr(), &url, &[]), &opts);
    let (gw, _table) = gateway_serving(table, |_| {});
    let mut tx = h1(http_addr(&gw)).await;
    let r = send1(
        &mut tx,
        request(
            "ext.example.com",
            "GET",
            "/",
            &[("x-verdict", "allow"), ("x-forwarded-for", "203.0.113.9")],
        ),
    )
    .await;
    assert_eq!((r.status, r.service()), (StatusCode::OK, "app"));
    let asked = auth.asked();
    let a = asked.last().expect("the auth service was asked");
    let h = |n: &str| a.headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
    assert_eq!(
        h("x-real-ip"),
        "203.0.113.9",
        "the derived client, not the proxy"
    );
    gw.shutdown().await;
}
