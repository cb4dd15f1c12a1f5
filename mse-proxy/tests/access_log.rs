//! The access log: one `access` event per request, with the fields ingress-nginx users
//! know, and none when it is switched off. This binary owns the global subscriber.
#![cfg(test)]

mod support;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use http::StatusCode;
use mse_proxy::echo::EchoServer;
use support::*;

/// Everything the subscriber wrote.
fn captured() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&log);
        tracing_subscriber::fmt()
            .with_env_filter("access=info")
            .with_ansi(false)
            .with_writer(move || Sink(Arc::clone(&sink)))
            .init();
        log
    })
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn lines_with(marker: &str) -> Vec<String> {
    let text = String::from_utf8_lossy(&captured().lock().unwrap()).into_owned();
    text.lines()
        .filter(|l| l.contains(marker))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn each_request_is_logged_with_route_upstream_status_and_bytes() {
    let log = captured();
    let a = EchoServer::bind(SocketAddr::from(([127, 0, 0, 1], 0)), "a")
        .await
        .unwrap();
    let yaml = [
        ingress(
            "logged",
            Some("logged.example.com"),
            &[("/", "Prefix", "svc-a")],
        ),
        service("svc-a", &[a.addr()]),
    ]
    .concat();
    let table = shared(compile_yaml(&yaml));
    let mut config = loopback_config();
    config.access_log = true;
    let gw = mse_proxy::Gateway::start(config, table).unwrap();
    let ok = get(http_addr(&gw), "logged.example.com", "/logged/path?x=1").await;
    assert_eq!(ok.status, StatusCode::OK);
    let with_port = get(http_addr(&gw), "logged.example.com:81", "/nope/../x").await;
    assert_eq!(with_port.status, StatusCode::OK);
    let unknown = get(http_addr(&gw), "unknown.example.com", "/zzz").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    // The line is written when the response body ends, just after the client has it.
    bounded("the access log lines", async {
        while lines_with("/logged/path").is_empty() || lines_with("/zzz").is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let lines = lines_with("/logged/path");
    assert_eq!(
        lines.len(),
        1,
        "{:?}",
        String::from_utf8_lossy(&log.lock().unwrap())
    );
    let line = &lines[0];
    for field in [
        "remote_addr=127.0.0.1",
        "host=\"logged.example.com\"",
        "method=GET",
        "path=\"/logged/path?x=1\"",
        "status=200",
        &format!("bytes={}", ok.body.len()),
        &format!("upstream_addr={}", a.addr()),
        "upstream_status=200",
        "ingress=default/logged",
        "complete=true",
    ] {
        assert!(line.contains(field), "{field} missing from {line}");
    }
    let line = &lines_with("/zzz")[0];
    assert!(
        line.contains("status=404")
            && line.contains("upstream_addr=-")
            && line.contains("ingress=-"),
        "{line}"
    );
    gw.shutdown().await;

    // Switched off: nothing more is logged.
    let table = shared(compile_yaml(&yaml));
    let mut config = loopback_config();
    config.access_log = false;
    let gw = mse_proxy::Gateway::start(config, table).unwrap();
    assert_eq!(
        get(http_addr(&gw), "logged.example.com", "/quiet")
            .await
            .status,
        StatusCode::OK
    );
    // Once the gateway has stopped, every line it would write is written.
    gw.shutdown().await;
    assert!(lines_with("/quiet").is_empty());
}

#[tokio::test]
async fn disable_access_log_in_the_tables_global_configuration_turns_it_off_and_on() {
    captured();
    let a = EchoServer::bind(SocketAddr::from(([127, 0, 0, 1], 0)), "a")
        .await
        .unwrap();
    let yaml = |disabled: &str| {
        [
            ingress(
                "toggled",
                Some("toggled.example.com"),
                &[("/", "Prefix", "svc-a")],
            ),
            service("svc-a", &[a.addr()]),
            gateway_config_map(&[("disable-access-log", disabled)]),
        ]
        .concat()
    };
    let table = shared(compile_yaml_with(&yaml("true"), &configmap_options()));
    let mut config = loopback_config();
    config.access_log = true;
    let gw = mse_proxy::Gateway::start(config, table.clone()).unwrap();
    let addr = http_addr(&gw);
    let quiet = get(addr, "toggled.example.com", "/toggled-quiet").await;
    assert_eq!(quiet.status, StatusCode::OK);
    // Switched on again by a new table, without a restart.
    table.publish(compile_yaml_with(&yaml("false"), &configmap_options()));
    let loud = get(addr, "toggled.example.com", "/toggled-loud").await;
    assert_eq!(loud.status, StatusCode::OK);
    bounded("the access log line", async {
        while lines_with("/toggled-loud").is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    // Once the gateway has stopped, every line it would write is written.
    gw.shutdown().await;
    assert!(lines_with("/toggled-quiet").is_empty());
}

#[tokio::test]
async fn enable_access_log_false_keeps_one_ingress_out_of_the_log() {
    captured();
    let a = EchoServer::bind(SocketAddr::from(([127, 0, 0, 1], 0)), "a")
        .await
        .unwrap();
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
    let table = shared(compile_yaml(&yaml));
    let mut config = loopback_config();
    config.access_log = true;
    let gw = mse_proxy::Gateway::start(config, table).unwrap();
    let addr = http_addr(&gw);
    let r = get(addr, "unlogged.example.com", "/per-ingress-off").await;
    assert_eq!(r.status, StatusCode::OK);
    let r = get(addr, "logged-too.example.com", "/per-ingress-on").await;
    assert_eq!(r.status, StatusCode::OK);
    gw.shutdown().await;
    assert_eq!(lines_with("/per-ingress-on").len(), 1);
    assert!(lines_with("/per-ingress-off").is_empty());
}
