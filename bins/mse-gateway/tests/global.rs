//! The gateway-wide configuration end to end in file mode: a ConfigMap in the watched
//! manifests, named by `--configmap`, changes what clients get; an edit changes it again
//! without a restart; a bad value keeps the last good one and says so on
//! `/debug/diagnostics`.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail the test loudly"
)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use mse_gateway::{Options, Running};
use mse_proxy::echo::EchoServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a test waits for something that must happen (an edit served). Far longer
/// than it takes on any machine: only a bug gets near it.
const PATIENCE: Duration = Duration::from_secs(30);

/// A raw HTTP/1.1 connection, so that the test sees exactly when the gateway closes it.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// A response: status, head lines, body.
struct Reply {
    status: u16,
    head: String,
    body: String,
}

impl Conn {
    async fn open(addr: SocketAddr) -> Self {
        let stream = tokio::time::timeout(PATIENCE, TcpStream::connect(addr))
            .await
            .expect("connect timed out")
            .expect("connect");
        Self {
            stream,
            buf: Vec::new(),
        }
    }

    /// Reads more; `false` at the end of the stream.
    async fn fill(&mut self) -> bool {
        self.buf.reserve(16 * 1024);
        let n = tokio::time::timeout(PATIENCE, self.stream.read_buf(&mut self.buf))
            .await
            .expect("nothing read in time")
            .unwrap_or(0);
        n > 0
    }

    /// Sends a request and reads its response (framed by Content-Length).
    async fn ask(&mut self, req: &str) -> Reply {
        self.stream.write_all(req.as_bytes()).await.unwrap();
        let end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            assert!(self.fill().await, "closed before a response");
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        let status = head[9..12].parse().unwrap();
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().unwrap())
            })
            .unwrap_or(0);
        while self.buf.len() < end + length {
            assert!(self.fill().await, "closed inside a body");
        }
        let body = String::from_utf8_lossy(&self.buf[end..end + length]).into_owned();
        self.buf.drain(..end + length);
        Reply { status, head, body }
    }

    /// Whether the gateway closes the connection (rather than leaving it open).
    async fn closes(&mut self) -> bool {
        !self.fill().await && self.buf.is_empty()
    }
}

impl Reply {
    fn says_close(&self) -> bool {
        self.head.to_ascii_lowercase().contains("connection: close")
    }
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: conf.test\r\n\r\n")
}

fn post(path: &str, len: usize) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: conf.test\r\nContent-Length: {len}\r\n\r\n{}",
        "x".repeat(len)
    )
}

/// The Service, EndpointSlice and Ingress of `conf.test`, routed to `backend`.
fn site(backend: &EchoServer) -> String {
    let a = backend.addr();
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{ name: conf, namespace: e2e }}\nspec: {{ ports: [{{ port: 80, targetPort: {p} }}] }}\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{ name: conf-1, namespace: e2e, labels: {{ kubernetes.io/service-name: conf }} }}\naddressType: IPv4\nports: [{{ port: {p} }}]\nendpoints: [{{ addresses: [\"{ip}\"] }}]\n---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{ name: conf, namespace: e2e }}\nspec:\n  ingressClassName: mse\n  rules: [{{ host: conf.test, http: {{ paths: [{{ path: /, pathType: Prefix, backend: {{ service: {{ name: conf, port: {{ number: 80 }} }} }} }}] }} }}]\n",
        p = a.port(),
        ip = a.ip()
    )
}

/// The gateway's ConfigMap with these keys.
fn config_map(data: &[(&str, &str)]) -> String {
    let mut y =
        "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: gateway, namespace: ingress }\ndata:\n"
            .to_owned();
    for (k, v) in data {
        y.push_str(&format!("  {k}: \"{v}\"\n"));
    }
    y
}

/// Writes a file the way editors do: a temporary file renamed over the old one.
fn write_atomic(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp~");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

async fn start(dir: &Path) -> Running {
    let mut o = Options::new(vec![dir.to_path_buf()]);
    o.http_addr = Some("127.0.0.1:0".parse().unwrap());
    o.https_addr = Some("127.0.0.1:0".parse().unwrap());
    o.admin_addr = "127.0.0.1:0".parse().unwrap();
    o.workers = 2;
    o.access_log = false;
    o.configmap = Some("ingress/gateway".parse().unwrap());
    tokio::time::timeout(PATIENCE, mse_gateway::start(o))
        .await
        .expect("start timed out")
        .expect("start failed")
}

async fn admin_json(g: &Running, path: &str) -> serde_json::Value {
    let mut c = Conn::open(g.admin_addr()).await;
    let r = c
        .ask(&format!(
            "GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n"
        ))
        .await;
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    serde_json::from_str(&r.body).unwrap()
}

/// Waits until the global configuration in force has `value` for `setting`.
async fn wait_for_setting(g: &Running, setting: &str, value: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let routes = admin_json(g, "/debug/routes").await;
        if routes["global"]["origins"][setting]["value"] == value {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{setting} is not {value:?} after {PATIENCE:?}: {}",
            routes["global"]["origins"]
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether the connection ends right after its `n`th request, and not before.
async fn closes_after(addr: SocketAddr, n: usize) -> bool {
    let mut c = Conn::open(addr).await;
    for i in 1..=n {
        let r = c.ask(&get(&format!("/r{i}"))).await;
        assert_eq!(r.status, 200, "{}", r.body);
        if r.says_close() != (i == n) {
            return false;
        }
    }
    c.closes().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configmap_applies_live_and_a_bad_value_keeps_the_last_good_one() {
    let backend = EchoServer::bind("127.0.0.1:0".parse().unwrap(), "conf")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("site.yaml"), site(&backend)).unwrap();
    let cm = d.join("gateway.yaml");
    std::fs::write(&cm, config_map(&[("keep-alive-requests", "2")])).unwrap();
    let g = start(d).await;
    let http = g.http_addr().unwrap();

    // keep-alive-requests: the second answer closes the connection.
    assert!(closes_after(http, 2).await);
    // proxy-body-size is not set: the default of 1m holds.
    let mut c = Conn::open(http).await;
    assert_eq!(c.ask(&post("/up", 4096)).await.status, 200);

    // Edited: three requests per connection, and a 1k body limit. No restart.
    write_atomic(
        &cm,
        &config_map(&[("keep-alive-requests", "3"), ("proxy-body-size", "1k")]),
    );
    wait_for_setting(&g, "max-body-size", "1k").await;
    assert!(closes_after(http, 3).await);
    let mut c = Conn::open(http).await;
    let r = c.ask(&post("/up", 4096)).await;
    assert_eq!(r.status, 413, "{}", r.body);
    let mut c = Conn::open(http).await;
    assert_eq!(c.ask(&post("/up", 512)).await.status, 200);

    // A bad value: that key keeps its last good value, the other key applies, and the
    // diagnostic names the ConfigMap, the key and the value.
    write_atomic(
        &cm,
        &config_map(&[("keep-alive-requests", "lots"), ("proxy-body-size", "8k")]),
    );
    wait_for_setting(&g, "max-body-size", "8k").await;
    assert!(closes_after(http, 3).await, "the last good value is gone");
    let mut c = Conn::open(http).await;
    assert_eq!(c.ask(&post("/up", 4096)).await.status, 200);
    let diags = admin_json(&g, "/debug/diagnostics").await;
    let d = diags
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["code"] == "invalid-config-value")
        .unwrap_or_else(|| panic!("no invalid-config-value in {diags}"));
    assert_eq!(d["object"]["kind"], "ConfigMap");
    assert_eq!(d["object"]["namespace"], "ingress");
    assert_eq!(d["object"]["name"], "gateway");
    assert_eq!(d["key"], "keep-alive-requests");
    assert_eq!(d["value"], "lots");
    assert!(
        d["message"]
            .as_str()
            .unwrap()
            .contains("the last good value \"3\""),
        "{d}"
    );
    assert!(
        d["source"]["file"]
            .as_str()
            .unwrap()
            .ends_with("gateway.yaml")
    );

    // Fixed: the diagnostic goes, the new value applies.
    write_atomic(&cm, &config_map(&[("keep-alive-requests", "1")]));
    wait_for_setting(&g, "keep-alive-requests", "1").await;
    assert!(closes_after(http, 1).await);
    let diags = admin_json(&g, "/debug/diagnostics").await;
    assert!(
        diags
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["code"] != "invalid-config-value"),
        "{diags}"
    );
    g.shutdown().await;
}
