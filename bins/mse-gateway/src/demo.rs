//! `mse-gateway demo`: built-in echo backends on loopback, the demo manifests shipped in
//! `examples/demo/`, and the gateway serving them in file mode.
//!
//! The manifests are copied into a fresh directory together with EndpointSlices pointing
//! at the echo backends and a TLS Secret generated at start, so the user can edit the copy
//! and watch the gateway pick the change up.

use std::fmt::Write as _;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use mse_proxy::echo::EchoServer;

use crate::Options;

/// The demo manifests (Ingresses, Services, an IngressClass).
pub const MANIFESTS: &str = include_str!("../../../examples/demo/demo.yaml");

/// The Services of [`MANIFESTS`], each served by one echo backend.
pub const SERVICES: [&str; 4] = ["web", "api", "docs", "api-v2"];

/// Listeners of the demo gateway.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// Plain HTTP listener.
    pub http_addr: SocketAddr,
    /// TLS listener.
    pub https_addr: SocketAddr,
    /// Admin listener.
    pub admin_addr: SocketAddr,
    /// One log line per request.
    pub access_log: bool,
}

/// A demo that is running: the gateway, its echo backends and its manifest directory.
pub struct Demo {
    /// The gateway.
    pub gateway: crate::Running,
    /// The echo backends, one per name in [`SERVICES`].
    pub backends: Vec<EchoServer>,
    /// The directory the gateway watches.
    pub dir: PathBuf,
}

/// Starts the echo backends and the gateway on the demo manifests written into `dir`.
pub async fn start(opts: DemoOptions, dir: &Path) -> anyhow::Result<Demo> {
    let mut backends = Vec::new();
    for name in SERVICES {
        let b = EchoServer::bind(SocketAddr::from(([127, 0, 0, 1], 0)), name)
            .await
            .with_context(|| format!("starting the {name} echo backend"))?;
        backends.push(b);
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))
    };
    write("demo.yaml", MANIFESTS)?;
    write("endpoints.yaml", &endpoint_slices(&backends))?;
    write("tls.yaml", &tls_secret()?)?;

    let mut options = Options::new(vec![dir.to_path_buf()]);
    options.http_addr = Some(opts.http_addr);
    options.https_addr = Some(opts.https_addr);
    options.admin_addr = opts.admin_addr;
    options.access_log = opts.access_log;
    options.workers = 1;
    let gateway = crate::start(options).await?;
    Ok(Demo {
        gateway,
        backends,
        dir: dir.to_path_buf(),
    })
}

/// Runs the demo until `shutdown` resolves, printing how to try it.
pub async fn run(opts: DemoOptions, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("mse-gateway-demo-{}", std::process::id()));
    let demo = start(opts, &dir).await?;
    println!("{}", instructions(&demo));
    shutdown.await;
    demo.gateway.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The text printed at start: curl commands that show the routing.
pub fn instructions(demo: &Demo) -> String {
    let http = demo
        .gateway
        .http_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let https = demo.gateway.https_addr();
    let admin = demo.gateway.admin_addr();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\nmse-gateway demo: serving {} on http://{http}",
        demo.dir.display()
    );
    for b in &demo.backends {
        let _ = writeln!(s, "  echo backend {:<6} on {}", b.service(), b.addr());
    }
    let _ = writeln!(
        s,
        "\nHost and path routing (the echo backends answer with what they received):"
    );
    let _ = writeln!(
        s,
        "  curl -s -H 'Host: shop.demo.test' http://{http}/                # web: Prefix /"
    );
    let _ = writeln!(
        s,
        "  curl -s -H 'Host: shop.demo.test' http://{http}/api/orders/42   # api: longest Prefix /api"
    );
    let _ = writeln!(
        s,
        "  curl -s -H 'Host: shop.demo.test' http://{http}/api/healthz     # web: Exact beats Prefix"
    );
    let _ = writeln!(
        s,
        "  curl -s -H 'Host: shop.demo.test' http://{http}/apis            # web: /api matches by segment only"
    );
    let _ = writeln!(
        s,
        "  curl -s -H 'Host: v2.docs.demo.test' http://{http}/guide        # docs: wildcard host"
    );
    let _ = writeln!(
        s,
        "  curl -si -H 'Host: shop.demo.test' http://{http}/old-api/orders # api sees /api/orders: rewrite-target, plus a response header"
    );
    let _ = writeln!(
        s,
        "  curl -s -H 'Host: anything.else' http://{http}/                 # web: the default backend"
    );
    let _ = writeln!(s, "\nA canary release of /checkout (api, canary api-v2):");
    let _ = writeln!(
        s,
        "  curl -s -H 'Host: shop.demo.test' -H 'x-canary: always' http://{http}/checkout   # api-v2: by header"
    );
    let _ = writeln!(
        s,
        "  for i in $(seq 20); do curl -s -H 'Host: shop.demo.test' http://{http}/checkout | grep -o '\"service\":\"[a-z0-9-]*\"'; done | sort | uniq -c   # about 1 in 4 on api-v2: by weight"
    );
    if let Some(a) = https {
        let port = a.port();
        let _ = writeln!(
            s,
            "\nTLS with SNI (self-signed certificate generated at start):"
        );
        let _ = writeln!(
            s,
            "  curl -sk --resolve shop.demo.test:{port}:{ip} https://shop.demo.test:{port}/api -w '\\n%{{http_version}}\\n'",
            ip = a.ip()
        );
    }
    let _ = writeln!(
        s,
        "\nAdmin: curl -s http://{admin}/debug/routes  and  curl -s http://{admin}/debug/diagnostics"
    );
    let _ = writeln!(
        s,
        "Edit {}/demo.yaml: the change is served within a second. Ctrl-C stops.",
        demo.dir.display()
    );
    s
}

fn endpoint_slices(backends: &[EchoServer]) -> String {
    let mut y = String::from("# Generated by `mse-gateway demo`: the echo backends' addresses.\n");
    for b in backends {
        let a = b.addr();
        let _ = write!(
            y,
            "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: {svc}-demo\n  namespace: demo\n  labels: {{ kubernetes.io/service-name: {svc} }}\naddressType: IPv4\nports: [{{ name: http, port: {port}, protocol: TCP }}]\nendpoints:\n- addresses: [\"{ip}\"]\n  conditions: {{ ready: true }}\n",
            svc = b.service(),
            port = a.port(),
            ip = a.ip(),
        );
    }
    y
}

fn tls_secret() -> anyhow::Result<String> {
    let key = rcgen::KeyPair::generate().context("generating the demo key")?;
    let cert = rcgen::CertificateParams::new(vec!["shop.demo.test".to_owned()])
        .and_then(|p| p.self_signed(&key))
        .context("generating the demo certificate")?;
    let indent = |pem: String| {
        pem.lines()
            .map(|l| format!("    {l}\n"))
            .collect::<String>()
    };
    Ok(format!(
        "# Generated by `mse-gateway demo`: a self-signed certificate for shop.demo.test.\napiVersion: v1\nkind: Secret\nmetadata: {{ name: shop-tls, namespace: demo }}\ntype: kubernetes.io/tls\nstringData:\n  tls.crt: |\n{}  tls.key: |\n{}",
        indent(cert.pem()),
        indent(key.serialize_pem())
    ))
}
