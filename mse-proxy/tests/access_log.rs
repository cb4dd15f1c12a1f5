//! The access log: ingress-nginx's `upstream` line by default, JSON, a custom
//! `log-format-upstream`, the switches (global and per Ingress), `X-Request-ID`, and no
//! line lost when the gateway stops.
#![cfg(test)]

mod support;

use std::net::SocketAddr;

use http::StatusCode;
use mse_proxy::echo::EchoServer;
use support::*;

async fn backend() -> EchoServer {
    EchoServer::bind(SocketAddr::from(([127, 0, 0, 1], 0)), "a")
        .await
        .unwrap()
}

fn logged_yaml(a: &EchoServer) -> String {
    [
        ingress(
            "logged",
            Some("logged.example.com"),
            &[("/logged", "Prefix", "svc-a")],
        ),
        service("svc-a", &[a.addr()]),
    ]
    .concat()
}

#[tokio::test]
async fn the_default_line_is_ingress_nginx_upstream_format() {
    let a = backend().await;
    let log = MemoryLog::default();
    let (gw, _t) = gateway_with(&logged_yaml(&a), |c| {
        c.access_log = true;
        c.access_log_sink = log.sink();
    });
    let addr = http_addr(&gw);
    let mut tx = h1(addr).await;
    let req = request(
        "logged.example.com",
        "GET",
        "/logged/path?x=1",
        &[
            ("user-agent", "test-agent/1.0"),
            ("referer", "http://ref.example/"),
            ("authorization", &basic("alice", "pw")),
            ("x-request-id", "client-id-123"),
        ],
    );
    let ok = send1(&mut tx, req).await;
    assert_eq!(ok.status, StatusCode::OK);
    // The client's valid request id goes upstream unchanged.
    assert_eq!(
        ok.echoed_header("x-request-id").as_deref(),
        Some("client-id-123")
    );
    let unknown = get(addr, "unknown.example.com", "/zzz").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    // Every line is written by the time the gateway has stopped.
    gw.shutdown().await;

    let lines = log.lines_with("/logged/path");
    assert_eq!(lines.len(), 1, "{:?}", log.lines());
    let line = &lines[0];
    let upstream = format!("[default-svc-a-80] [] {} {}", a.addr(), ok.body.len());
    for part in [
        "127.0.0.1 - alice [",
        "] \"GET /logged/path?x=1 HTTP/1.1\" 200 ",
        "\"http://ref.example/\" \"test-agent/1.0\" ",
        upstream.as_str(),
        " 200 client-id-123",
    ] {
        assert!(line.contains(part), "{part:?} missing from {line}");
    }
    // `$body_bytes_sent` is the body the client got.
    assert!(
        line.contains(&format!("\" 200 {} \"", ok.body.len())),
        "{line}"
    );
    // The time is nginx's `$time_local`: `07/Dec/2026:20:01:06 +0000`.
    let time = line
        .split('[')
        .nth(1)
        .and_then(|t| t.split(']').next())
        .unwrap();
    assert_eq!(time.len(), 26, "{time}");

    // A request no route matched: no upstream, a generated 32-hex-digit request id.
    let line = &log.lines_with("/zzz")[0];
    assert!(line.contains("\" 404 "), "{line}");
    assert!(line.contains("[-] [-] - - - - "), "{line}");
    let id = line.rsplit(' ').next().unwrap();
    assert_eq!(id.len(), 32, "{line}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{line}");
}

#[tokio::test]
async fn a_generated_request_id_goes_upstream_and_into_the_log() {
    let a = backend().await;
    let log = MemoryLog::default();
    let (gw, _t) = gateway_with(&logged_yaml(&a), |c| {
        c.access_log_sink = log.sink();
    });
    let addr = http_addr(&gw);
    let mut tx = h1(addr).await;
    // A request id with a space is not kept.
    let req = request(
        "logged.example.com",
        "GET",
        "/logged/id",
        &[("x-request-id", "bad id")],
    );
    let r = send1(&mut tx, req).await;
    let sent = r.echoed_header("x-request-id").expect("an id upstream");
    assert_eq!(sent.len(), 32, "{sent}");
    let again = get(addr, "logged.example.com", "/logged/id2").await;
    let other = again.echoed_header("x-request-id").expect("an id upstream");
    assert_ne!(sent, other);
    gw.shutdown().await;
    assert!(log.lines_with("/logged/id ")[0].ends_with(&sent));
    assert!(log.lines_with("/logged/id2")[0].ends_with(&other));
}

#[tokio::test]
async fn generate_request_id_false_makes_no_id_and_keeps_the_clients() {
    let a = backend().await;
    let log = MemoryLog::default();
    let yaml = [
        logged_yaml(&a),
        gateway_config_map(&[("generate-request-id", "false")]),
    ]
    .concat();
    let table = compile_yaml_with(&yaml, &configmap_options());
    let (gw, _t) = gateway_serving(table, |c| c.access_log_sink = log.sink());
    let addr = http_addr(&gw);
    let none = get(addr, "logged.example.com", "/logged/plain").await;
    assert_eq!(none.status, StatusCode::OK);
    assert_eq!(none.echoed_header("x-request-id"), None);
    let mut tx = h1(addr).await;
    let req = request(
        "logged.example.com",
        "GET",
        "/logged/client",
        &[("x-request-id", "client-id-7")],
    );
    let kept = send1(&mut tx, req).await;
    assert_eq!(
        kept.echoed_header("x-request-id").as_deref(),
        Some("client-id-7")
    );
    gw.shutdown().await;
    assert!(log.lines_with("/logged/plain")[0].ends_with(" -"));
    assert!(log.lines_with("/logged/client")[0].ends_with(" client-id-7"));
}

#[tokio::test]
async fn json_lines_carry_the_same_fields() {
    let a = backend().await;
    let log = MemoryLog::default();
    let (gw, _t) = gateway_with(&logged_yaml(&a), |c| {
        c.access_log_sink = log.sink();
        c.access_log_json = true;
    });
    let ok = get(
        http_addr(&gw),
        "logged.example.com",
        "/logged/json?q=%22x%22",
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK);
    gw.shutdown().await;
    let lines = log.lines_with("/logged/json");
    assert_eq!(lines.len(), 1, "{:?}", log.lines());
    let v: serde_json::Value = serde_json::from_str(&lines[0]).expect("a JSON line");
    assert_eq!(v["status"], 200);
    assert_eq!(v["method"], "GET");
    assert_eq!(v["host"], "logged.example.com");
    assert_eq!(v["uri"], "/logged/json?q=%22x%22");
    assert_eq!(v["namespace"], "default");
    assert_eq!(v["ingress"], "logged");
    assert_eq!(v["service"], "svc-a");
    assert_eq!(v["service_port"], 80);
    assert_eq!(v["upstream_name"], "default-svc-a-80");
    assert_eq!(v["upstream_addr"], a.addr().to_string());
    assert_eq!(v["upstream_status"], 200);
    assert_eq!(v["body_bytes_sent"], ok.body.len());
    assert_eq!(v["remote_user"], serde_json::Value::Null);
    assert_eq!(v["request_id"].as_str().map(str::len), Some(32));
    assert!(v["request_time"].as_f64().is_some(), "{v}");
    assert!(v["upstream_response_time"].as_f64().is_some(), "{v}");
}

#[tokio::test]
async fn log_format_upstream_sets_a_custom_line() {
    let a = backend().await;
    let log = MemoryLog::default();
    let format = "custom $status $request_method $uri $args $namespace/$ingress_name \
                  $service_name:$service_port $http_x_custom_thing ${request_length}b \
                  $upstream_status $upstream_response_length";
    let yaml = [
        logged_yaml(&a),
        gateway_config_map(&[("log-format-upstream", format)]),
    ]
    .concat();
    let table = compile_yaml_with(&yaml, &configmap_options());
    let (gw, _t) = gateway_serving(table, |c| c.access_log_sink = log.sink());
    let mut tx = h1(http_addr(&gw)).await;
    let req = request(
        "logged.example.com",
        "GET",
        "/logged/custom?a=1",
        &[("x-custom-thing", "thing-value")],
    );
    let ok = send1(&mut tx, req).await;
    assert_eq!(ok.status, StatusCode::OK);
    gw.shutdown().await;
    let lines = log.lines_with("custom ");
    assert_eq!(lines.len(), 1, "{:?}", log.lines());
    let expected_start = "custom 200 GET /logged/custom a=1 default/logged svc-a:80 thing-value ";
    assert!(lines[0].starts_with(expected_start), "{}", lines[0]);
    assert!(
        lines[0].ends_with(&format!("b 200 {}", ok.body.len())),
        "{}",
        lines[0]
    );
}

#[tokio::test]
async fn an_unknown_variable_in_log_format_upstream_is_a_diagnostic_and_the_default_applies() {
    let a = backend().await;
    let log = MemoryLog::default();
    let yaml = [
        logged_yaml(&a),
        gateway_config_map(&[("log-format-upstream", "$remote_addr $geoip_country")]),
    ]
    .concat();
    let table = compile_yaml_with(&yaml, &configmap_options());
    let diagnostic = table
        .diagnostics()
        .iter()
        .map(ToString::to_string)
        .find(|d| d.contains("log-format-upstream"))
        .expect("a diagnostic for the key");
    assert!(diagnostic.contains("$geoip_country"), "{diagnostic}");
    let (gw, _t) = gateway_serving(table, |c| c.access_log_sink = log.sink());
    let ok = get(http_addr(&gw), "logged.example.com", "/logged/fallback").await;
    assert_eq!(ok.status, StatusCode::OK);
    gw.shutdown().await;
    let lines = log.lines_with("/logged/fallback");
    assert_eq!(lines.len(), 1, "{:?}", log.lines());
    assert!(
        lines[0].contains("\"GET /logged/fallback HTTP/1.1\" 200"),
        "{}",
        lines[0]
    );
}

#[tokio::test]
async fn disable_access_log_in_the_tables_global_configuration_turns_it_off_and_on() {
    let a = backend().await;
    let log = MemoryLog::default();
    let yaml = |disabled: &str| {
        [
            logged_yaml(&a),
            gateway_config_map(&[("disable-access-log", disabled)]),
        ]
        .concat()
    };
    let table = compile_yaml_with(&yaml("true"), &configmap_options());
    let (gw, shared) = gateway_serving(table, |c| {
        c.access_log = true;
        c.access_log_sink = log.sink();
    });
    let addr = http_addr(&gw);
    let quiet = get(addr, "logged.example.com", "/logged/quiet").await;
    assert_eq!(quiet.status, StatusCode::OK);
    // Switched on again by a new table, without a restart (for new connections).
    shared.publish(compile_yaml_with(&yaml("false"), &configmap_options()));
    let loud = get(addr, "logged.example.com", "/logged/loud").await;
    assert_eq!(loud.status, StatusCode::OK);
    gw.shutdown().await;
    assert!(log.lines_with("/logged/quiet").is_empty());
    assert_eq!(log.lines_with("/logged/loud").len(), 1);
}

#[tokio::test]
async fn enable_access_log_false_keeps_one_ingress_out_of_the_log() {
    let a = backend().await;
    let log = MemoryLog::default();
    let yaml = [
        annotate(
            &ingress(
                "unlogged",
                Some("unlogged.example.com"),
                &[("/", "Prefix", "svc-a")],
            ),
            &[("enable-access-log", "false")],
        ),
        ingress(
            "logged-too",
            Some("logged-too.example.com"),
            &[("/", "Prefix", "svc-a")],
        ),
        service("svc-a", &[a.addr()]),
    ]
    .concat();
    let (gw, _t) = gateway_with(&yaml, |c| c.access_log_sink = log.sink());
    let addr = http_addr(&gw);
    let r = get(addr, "unlogged.example.com", "/per-ingress-off").await;
    assert_eq!(r.status, StatusCode::OK);
    let r = get(addr, "logged-too.example.com", "/per-ingress-on").await;
    assert_eq!(r.status, StatusCode::OK);
    gw.shutdown().await;
    assert_eq!(log.lines_with("/per-ingress-on").len(), 1);
    assert!(log.lines_with("/per-ingress-off").is_empty());
}

#[tokio::test]
async fn many_lines_from_two_workers_are_whole_and_none_is_lost() {
    let a = backend().await;
    let log = MemoryLog::default();
    let (gw, _t) = gateway_with(&logged_yaml(&a), |c| {
        c.access_log_sink = log.sink();
        c.workers = 2;
    });
    let addr = http_addr(&gw);
    // Enough to pass the buffer's size bound at least once, over several connections.
    let mut tasks = Vec::new();
    for c in 0..4 {
        tasks.push(tokio::spawn(async move {
            let mut tx = h1(addr).await;
            for i in 0..300 {
                let path = format!("/logged/many/{c}/{i}/{}", "x".repeat(100));
                let r = send1(&mut tx, request("logged.example.com", "GET", &path, &[])).await;
                assert_eq!(r.status, StatusCode::OK);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    gw.shutdown().await;
    let lines = log.lines_with("/logged/many/");
    assert_eq!(lines.len(), 1200);
    for line in &lines {
        assert!(line.starts_with("127.0.0.1 - - ["), "{line}");
        assert_eq!(line.matches("/logged/many/").count(), 1, "{line}");
        assert!(line.contains("\" 200 "), "{line}");
    }
}

#[tokio::test]
async fn w3c_trace_context_goes_upstream_unchanged_and_can_be_logged() {
    let a = backend().await;
    let log = MemoryLog::default();
    let yaml = [
        logged_yaml(&a),
        gateway_config_map(&[("log-format-upstream", "trace $http_traceparent $uri")]),
    ]
    .concat();
    let table = compile_yaml_with(&yaml, &configmap_options());
    let (gw, _t) = gateway_serving(table, |c| c.access_log_sink = log.sink());
    let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let mut tx = h1(http_addr(&gw)).await;
    let req = request(
        "logged.example.com",
        "GET",
        "/logged/traced",
        &[("traceparent", parent), ("tracestate", "vendor=abc")],
    );
    let r = send1(&mut tx, req).await;
    assert_eq!(r.echoed_header("traceparent").as_deref(), Some(parent));
    assert_eq!(r.echoed_header("tracestate").as_deref(), Some("vendor=abc"));
    gw.shutdown().await;
    assert_eq!(
        log.lines_with("/logged/traced"),
        vec![format!("trace {parent} /logged/traced")]
    );
}
