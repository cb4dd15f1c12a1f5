//! Request hardening of the client-facing HTTP/1.1 server, one test per rule, over raw
//! loopback sockets: framing (Transfer-Encoding, Content-Length, chunk lines), the request
//! target and Host, the body limit, and connections. Each test writes the bytes by hand,
//! asserts the status and that the connection closes, and what the upstream saw.
#![cfg(test)]

mod http1_client;
mod support;

use std::net::SocketAddr;

use http1_client::*;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends `request`, and a GET pipelined behind it, on a new connection; asserts the answer
/// is one of `statuses`, that nothing follows it (the GET is never parsed) and that the
/// connection then closes.
async fn refused(addr: SocketAddr, request: &str, statuses: &[u16]) {
    let mut c = Client::connect(addr).await;
    // The gateway may close before it has read all of it.
    let _ = tokio::time::timeout(
        WAIT,
        c.stream
            .write_all(format!("{request}{}", get_a("/pipelined")).as_bytes()),
    )
    .await;
    let r = c.response().await;
    assert!(statuses.contains(&r.status), "{request:?} got {r:?}");
    assert!(r.connection_has("close"), "{request:?} got {r:?}");
    assert!(c.closes().await, "{request:?}: still open");
}

const PIPELINED: &str = "GET /pipelined HTTP/1.1\r\nHost: up.example.com\r\n\r\n";

/// Sends a chunked POST with `body` and a pipelined GET behind it to a gateway whose
/// upstream reads heads and never answers; asserts one 400, the close, and that the
/// upstream never saw the end of the body nor the pipelined request.
async fn bad_chunked_body(addr: SocketAddr, upstream: &std::sync::Mutex<Seen>, body: &str) {
    let mut c = Client::connect(addr).await;
    c.send(format!(
        "POST /bad HTTP/1.1\r\nHost: up.example.com\r\nTransfer-Encoding: chunked\r\n\r\n{body}{PIPELINED}"
    ))
    .await;
    let (rest, closed) = c.rest(WAIT).await;
    assert!(rest.starts_with("HTTP/1.1 400 "), "{body:?}: {rest:?}");
    assert_eq!(rest.matches("HTTP/1.1").count(), 1, "{body:?}: {rest:?}");
    assert!(closed, "{body:?}: still open after {rest:?}");
    for seen in &upstream.lock().unwrap().conns {
        let seen = lossy(seen);
        assert!(!seen.contains("pipelined"), "{body:?}: {seen:?}");
        let sent = seen.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        assert!(!sent.ends_with("0\r\n\r\n"), "{body:?}: {seen:?}");
    }
}

// === framing ===

#[tokio::test]
async fn transfer_encoding_beside_content_length_gets_400_and_close() {
    let (a, gw, _) = echo_client(|_| {}).await;
    for (first, second) in [
        ("Content-Length: 5", "Transfer-Encoding: chunked"),
        ("Transfer-Encoding: chunked", "Content-Length: 5"),
        ("Transfer-Encoding: chunked", "Content-Length: 0"),
    ] {
        let req = format!(
            "POST / HTTP/1.1\r\nHost: a.example.com\r\n{first}\r\n{second}\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        );
        refused(http_addr(&gw), &req, &[400]).await;
    }
    assert_eq!(a.requests(), 0);
    gw.shutdown().await;
}

#[tokio::test]
async fn repeated_transfer_encoding_or_codings_besides_chunked_are_refused() {
    let (a, gw, _) = echo_client(|_| {}).await;
    for (te, status) in [
        (
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
            400,
        ),
        ("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked", 400),
        ("Transfer-Encoding: chunked, chunked", 400),
        (
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity",
            400,
        ),
        ("Transfer-Encoding: identity", 400),
        ("Transfer-Encoding: ", 400),
        ("Transfer-Encoding: chunked;q=1", 400),
        // A coding the gateway does not implement, before a final chunked.
        ("Transfer-Encoding: gzip, chunked", 501),
        ("Transfer-Encoding: deflate,chunked", 501),
    ] {
        let req = format!(
            "POST / HTTP/1.1\r\nHost: a.example.com\r\n{te}\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        );
        refused(http_addr(&gw), &req, &[status]).await;
    }
    assert_eq!(a.requests(), 0);
    gw.shutdown().await;
}

#[tokio::test]
async fn equal_repeated_content_lengths_are_forwarded_as_one_and_others_get_400() {
    let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let (addr, seen) = scripted(answer, true, false).await;
    let gw = gateway_waiting_an_hour(&routed_to(&[("up", addr)]), |_| {});
    let mut c = Client::connect(http_addr(&gw)).await;
    for cl in [
        "Content-Length: 5\r\nContent-Length: 5",
        "Content-Length: 5\r\ncontent-length: 5\r\nCONTENT-LENGTH: 5",
        "Content-Length: 5\r\nX-A: b\r\ncontent-length: 5",
    ] {
        let r = c
            .ask(format!(
                "POST /cl HTTP/1.1\r\nHost: up.example.com\r\n{cl}\r\n\r\nhello"
            ))
            .await;
        assert_eq!(r.status, 200, "{cl:?}");
    }
    let conns = seen.lock().unwrap().conns.clone();
    let sent = lossy(&conns.concat()).to_ascii_lowercase();
    assert_eq!(sent.matches("post /cl ").count(), 3, "{sent}");
    assert_eq!(sent.matches("content-length: 5\r\n").count(), 3, "{sent}");
    assert_eq!(sent.matches("content-length").count(), 3, "{sent}");
    for cl in [
        "Content-Length: 5\r\nContent-Length: 6",
        "Content-Length: 5, 6",
        // A list in one line, even of equal values (hyper's server refuses it too).
        "Content-Length: 5, 5",
        "Content-Length: 5,",
        "Content-Length: ,5",
    ] {
        let req = format!("POST /cl HTTP/1.1\r\nHost: up.example.com\r\n{cl}\r\n\r\nhello!");
        refused(http_addr(&gw), &req, &[400]).await;
    }
    assert_eq!(seen.lock().unwrap().lines.len(), 3);
    gw.shutdown().await;
}

#[tokio::test]
async fn chunk_size_lines_must_be_bare_hex_digits_within_range() {
    let (addr, seen) = scripted(b"", false, false).await;
    let gw = gateway_waiting_an_hour(&routed_to(&[("up", addr)]), |_| {});
    for body in [
        "+5\r\nhello\r\n0\r\n\r\n",
        "-5\r\nhello\r\n0\r\n\r\n",
        " 5\r\nhello\r\n0\r\n\r\n",
        "5 \r\nhello\r\n0\r\n\r\n",
        "5 ;ext=1\r\nhello\r\n0\r\n\r\n",
        "0x5\r\nhello\r\n0\r\n\r\n",
        "5_\r\nhello\r\n0\r\n\r\n",
        "\r\nhello\r\n0\r\n\r\n",
        ";ext\r\nhello\r\n0\r\n\r\n",
        // 2^64: one past the largest size.
        "10000000000000000\r\nhello\r\n0\r\n\r\n",
        "00000000000000000005\r\nhello\r\n0\r\n\r\n",
    ] {
        bad_chunked_body(http_addr(&gw), &seen, body).await;
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn bare_lf_or_cr_anywhere_in_a_chunked_body_gets_400() {
    let (addr, seen) = scripted(b"", false, false).await;
    let gw = gateway_waiting_an_hour(&routed_to(&[("up", addr)]), |_| {});
    for body in [
        // After a chunk size.
        "5\nhello\r\n0\r\n\r\n",
        // After chunk extensions.
        "5;name=value\nhello\r\n0\r\n\r\n",
        // A CR inside the extensions.
        "5;na\rme\r\nhello\r\n0\r\n\r\n",
        // After chunk data.
        "5\r\nhello\n0\r\n\r\n",
        // The last chunk, and the end of the trailer section.
        "5\r\nhello\r\n0\n\r\n",
        "5\r\nhello\r\n0\r\n\n",
        // A trailer line.
        "5\r\nhello\r\n0\r\nX-T: 1\n\r\n",
        "5\r\nhello\r\n0\r\nX-T: 1\r\r\n\r\n",
        // A folded trailer line.
        "5\r\nhello\r\n0\r\nX-T: 1\r\n folded\r\n\r\n",
    ] {
        bad_chunked_body(http_addr(&gw), &seen, body).await;
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn a_well_formed_chunked_body_with_extensions_and_trailers_is_served() {
    let (a, gw, mut c) = echo_client(|_| {}).await;
    let seen = c
        .ask(concat!(
            "POST /ok HTTP/1.1\r\nHost: a.example.com\r\nTransfer-Encoding: chunked\r\n\r\n",
            "5;a=b;c=\"d e\"\r\nhello\r\nA\r\n0123456789\r\n0;last\r\nX-T: 1\r\n\r\n",
        ))
        .await
        .json();
    assert_eq!(seen["body"], "hello0123456789");
    assert_eq!(c.ask(get_a("/after")).await.json()["path"], "/after");
    assert_eq!(a.requests(), 2);
    gw.shutdown().await;
}

// === request target and Host ===

#[tokio::test]
async fn a_backslash_or_an_encoded_slash_or_backslash_in_the_path_gets_400() {
    let (a, gw, _) = echo_client(|_| {}).await;
    for path in [
        "/a\\b",
        "/\\evil.example.com",
        "/a%2Fb",
        "/a%2fb",
        "/a%5Cb",
        "/a%5cb",
        "/%2F%2Fevil.example.com",
    ] {
        let req = format!("GET {path} HTTP/1.1\r\nHost: a.example.com\r\n\r\n");
        refused(http_addr(&gw), &req, &[400]).await;
    }
    assert_eq!(a.requests(), 0);
    // In the query they are data.
    let mut c = Client::connect(http_addr(&gw)).await;
    let seen = c.ask(get_a("/q?to=%2Fx%5C")).await.json();
    assert_eq!(seen["query"], "to=%2Fx%5C");
    assert_eq!(a.requests(), 1);
    gw.shutdown().await;
}

#[tokio::test]
async fn with_mse_decode_path_separators_the_decoded_path_is_matched_and_forwarded() {
    let (app, other) = (echo("app").await, echo("other").await);
    let yaml = format!(
        "{}{}{}{}{}",
        ingress(
            "app",
            Some("up.example.com"),
            &[("/app", "Prefix", "svc-app")]
        ),
        service("svc-app", &[app.addr()]),
        ingress(
            "other",
            Some("up.example.com"),
            &[("/", "Prefix", "svc-other")]
        ),
        service("svc-other", &[other.addr()]),
        gateway_config_map(&[("mse-decode-path-separators", "true")]),
    );
    let table = compile_yaml_with(&yaml, &configmap_options());
    let (gw, _) = gateway_serving(table, |c| {
        c.timeouts.header_read = std::time::Duration::from_secs(3600);
    });
    let mut c = Client::connect(http_addr(&gw)).await;
    for (path, service, seen) in [
        ("/app%2F..%2Fadmin", "other", "/admin"),
        ("/app%5Cx", "app", "/app/x"),
        ("/app\\x%2fy", "app", "/app/x/y"),
    ] {
        let r = c
            .ask(format!(
                "GET {path} HTTP/1.1\r\nHost: up.example.com\r\n\r\n"
            ))
            .await;
        assert_eq!(r.header("x-echo-service"), Some(service), "{path}");
        assert_eq!(r.json()["path"], seen, "{path}");
    }
    // Dot segments with parameters are refused still.
    let req = "GET /app%2F..;%2Fadmin HTTP/1.1\r\nHost: up.example.com\r\n\r\n";
    refused(http_addr(&gw), req, &[400]).await;
    assert_eq!((app.requests(), other.requests()), (2, 1));
    gw.shutdown().await;
}

#[tokio::test]
async fn dot_segments_with_parameters_never_escape_a_prefix() {
    let (app, other) = (echo("app").await, echo("other").await);
    let yaml = format!(
        "{}{}{}{}",
        ingress(
            "app",
            Some("up.example.com"),
            &[("/app", "Prefix", "svc-app")]
        ),
        service("svc-app", &[app.addr()]),
        ingress(
            "other",
            Some("up.example.com"),
            &[("/", "Prefix", "svc-other")]
        ),
        service("svc-other", &[other.addr()]),
    );
    let gw = gateway_waiting_an_hour(&yaml, |_| {});
    for path in [
        "/app/..;/admin",
        "/app/..;jsessionid=1/admin",
        "/app/.;/x",
        "/app/%2e%2e;/admin",
        "/app/%2E.;x=1/admin",
        "/app/..%3b/admin",
    ] {
        let req = format!("GET {path} HTTP/1.1\r\nHost: up.example.com\r\n\r\n");
        refused(http_addr(&gw), &req, &[400]).await;
    }
    assert_eq!((app.requests(), other.requests()), (0, 0));
    // A parameter on an ordinary segment is data; plain dot segments are resolved.
    let mut c = Client::connect(http_addr(&gw)).await;
    let r = c
        .ask("GET /app/a;v=1/../b HTTP/1.1\r\nHost: up.example.com\r\n\r\n")
        .await;
    assert_eq!((r.status, r.header("x-echo-service")), (200, Some("app")));
    assert_eq!(r.json()["path"], "/app/b");
    gw.shutdown().await;
}

#[tokio::test]
async fn an_absolute_form_target_is_routed_and_checked_by_its_authority() {
    let (a, b) = (echo("a").await, echo("b").await);
    let gw = gateway_waiting_an_hour(&routed_to(&[("a", a.addr()), ("b", b.addr())]), |_| {});
    let mut c = Client::connect(http_addr(&gw)).await;
    let r = c
        .ask("GET http://a.example.com/x HTTP/1.1\r\nHost: b.example.com\r\n\r\n")
        .await;
    assert_eq!(r.header("x-echo-service"), Some("a"));
    assert_eq!(r.json()["host"], "a.example.com");
    // The same path rules apply to its path.
    let bad = "GET http://a.example.com/a%2Fb HTTP/1.1\r\nHost: a.example.com\r\n\r\n";
    refused(http_addr(&gw), bad, &[400]).await;
    // Userinfo in the authority, and an invalid Host beside a valid authority.
    let userinfo =
        "GET http://b.example.com@a.example.com/ HTTP/1.1\r\nHost: a.example.com\r\n\r\n";
    refused(http_addr(&gw), userinfo, &[400]).await;
    let two_hosts =
        "GET http://a.example.com/ HTTP/1.1\r\nHost: a.example.com\r\nHost: b.example.com\r\n\r\n";
    refused(http_addr(&gw), two_hosts, &[400]).await;
    assert_eq!((a.requests(), b.requests()), (1, 0));
    gw.shutdown().await;
}

#[tokio::test]
async fn a_host_that_is_not_one_valid_authority_gets_400() {
    let (a, gw, _) = echo_client(|_| {}).await;
    for host in [
        "Host: a.example.com b",
        "Host: a.example.com/x",
        "Host: a.example.com\\x",
        "Host: a.example.com,b.example.com",
        "Host: user@a.example.com",
        "Host: a.example.com:80:80",
        "Host: a.example.com:8o",
        "Host: a.example.com?x",
        "Host: a.example.com#x",
        "Host: [::1",
        "Host: a.example.com\r\nHost: a.example.com",
        "Host: ",
    ] {
        let req = format!("GET / HTTP/1.1\r\n{host}\r\n\r\n");
        refused(http_addr(&gw), &req, &[400]).await;
    }
    assert_eq!(a.requests(), 0);
    // Valid forms: a port, an IP literal, upper case.
    let mut c = Client::connect(http_addr(&gw)).await;
    for host in [
        "a.example.com:80",
        "A.Example.COM",
        "[::1]:8080",
        "127.0.0.1",
    ] {
        let r = c
            .ask(format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n"))
            .await;
        assert!(matches!(r.status, 200 | 404), "{host}: {r:?}");
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn a_request_target_over_8_kib_gets_414() {
    let (a, gw, _) = echo_client(|_| {}).await;
    let long = format!("/{}", "t".repeat(8 * 1024));
    let req = format!("GET {long} HTTP/1.1\r\nHost: a.example.com\r\n\r\n");
    refused(http_addr(&gw), &req, &[414]).await;
    assert_eq!(a.requests(), 0);
    // Just under the limit is served.
    let mut c = Client::connect(http_addr(&gw)).await;
    let ok = format!("/{}", "t".repeat(8 * 1024 - 2));
    let r = c
        .ask(format!("GET {ok} HTTP/1.1\r\nHost: a.example.com\r\n\r\n"))
        .await;
    assert_eq!(r.status, 200);
    gw.shutdown().await;
}

#[tokio::test]
async fn a_longer_target_limit_is_configurable() {
    let (a, gw, mut c) = echo_client(|c| c.max_request_target = 16 * 1024).await;
    let long = format!("/{}", "t".repeat(12 * 1024));
    let r = c
        .ask(format!(
            "GET {long} HTTP/1.1\r\nHost: a.example.com\r\n\r\n"
        ))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(a.requests(), 1);
    gw.shutdown().await;
}

#[tokio::test]
async fn a_head_section_over_the_limit_gets_431() {
    let (a, gw, _) = echo_client(|_| {}).await;
    let big = format!("X-Big: {}\r\n", "h".repeat(8 * 1024)).repeat(5);
    let req = format!("GET / HTTP/1.1\r\nHost: a.example.com\r\n{big}\r\n");
    refused(http_addr(&gw), &req, &[431]).await;
    assert_eq!(a.requests(), 0);
    gw.shutdown().await;
}

// === body size ===

#[tokio::test]
async fn a_content_length_over_the_default_1m_gets_413_before_the_upstream_is_contacted() {
    let (addr, seen) = scripted(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true, false).await;
    let gw = gateway_waiting_an_hour(&routed_to(&[("up", addr)]), |_| {});
    let req = format!(
        "POST / HTTP/1.1\r\nHost: up.example.com\r\nContent-Length: {}\r\n\r\n",
        (1 << 20) + 1
    );
    // Nothing of the body is sent: the answer comes from the head alone.
    refused(http_addr(&gw), &req, &[413]).await;
    assert!(seen.lock().unwrap().conns.is_empty());
    gw.shutdown().await;
}

#[tokio::test]
async fn a_chunked_body_passing_the_limit_gets_413_at_once_and_close() {
    let (addr, seen) = scripted(b"", false, false).await;
    let yaml = annotate(&routed_to(&[("up", addr)]), &[("proxy-body-size", "1k")]);
    let gw = gateway_waiting_an_hour(&yaml, |_| {});
    let mut c = Client::connect(http_addr(&gw)).await;
    // 1,200 bytes and no last chunk: the answer cannot wait for the end of the body.
    let chunk = format!("258\r\n{}\r\n", "b".repeat(0x258));
    c.send(format!(
        "POST / HTTP/1.1\r\nHost: up.example.com\r\nTransfer-Encoding: chunked\r\n\r\n{chunk}{chunk}"
    ))
    .await;
    let r = c.response().await;
    assert_eq!(r.status, 413, "{r:?}");
    assert!(r.connection_has("close"), "{r:?}");
    assert!(c.closes().await);
    for seen in &seen.lock().unwrap().conns {
        let body = lossy(seen);
        let body = body.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        assert!(body.matches('b').count() <= 1024, "{} bytes", body.len());
    }
    gw.shutdown().await;
}

// === connections ===

/// Whether a new connection to `addr` is served a GET for `/`.
async fn served(addr: SocketAddr) -> bool {
    let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else {
        return false;
    };
    if stream.write_all(get_a("/").as_bytes()).await.is_err() {
        return false;
    }
    let mut first = [0u8; 12];
    matches!(
        tokio::time::timeout(WAIT, stream.read_exact(&mut first)).await,
        Ok(Ok(_)) if &first == b"HTTP/1.1 200"
    )
}

#[tokio::test]
async fn connections_past_the_worker_limit_are_closed_until_one_ends() {
    let (_a, gw, mut first) = echo_client(|c| {
        c.workers = 1;
        c.max_worker_connections = 2;
    })
    .await;
    let addr = http_addr(&gw);
    let mut second = Client::connect(addr).await;
    // Both are served, so both are counted.
    assert_eq!(first.ask(get_a("/1")).await.status, 200);
    assert_eq!(second.ask(get_a("/2")).await.status, 200);
    let mut third = Client::connect(addr).await;
    let _ = third.stream.write_all(get_a("/3").as_bytes()).await;
    let (rest, closed) = third.rest(WAIT).await;
    assert!(closed && rest.is_empty(), "{rest:?}");
    // Once one ends, new connections are served again.
    drop(first);
    let deadline = tokio::time::Instant::now() + WAIT;
    while !served(addr).await {
        assert!(tokio::time::Instant::now() < deadline, "never served again");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(second.ask(get_a("/4")).await.status, 200);
    gw.shutdown().await;
}
