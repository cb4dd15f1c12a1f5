//! `mse-gateway`: serves Kubernetes Ingresses from a Kubernetes API server (kube mode) or
//! from watched manifest files (file mode), or runs the self-contained demo
//! (`mse-gateway demo`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use mse_controller::status::{DEFAULT_LEASE_NAME, PublishAddress};
use mse_gateway::{Options, demo};
use mse_proxy::AuthUrlRoots;
use mse_router::global::GlobalFlags;
use mse_router::{ObjectRef, ServiceRef};

/// mimalloc 2 without transparent huge pages (the `v2` and `no_thp` features). With huge
/// pages, a 2 MiB region of the heap counts whole in resident memory as soon as part of it
/// is used; and mimalloc 3 returns freed memory to the system only a second after it is
/// freed and only when the allocator is busy again, so the memory the first load and
/// compile used stayed resident in an idle gateway. Together they added 20-40 MiB with
/// 10,000 Ingresses; requests cost the same instructions either way.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A Kubernetes Ingress gateway.
///
/// Kube mode (without --manifests): watches Ingresses and what they use on the API server
/// of --kubeconfig (else $KUBECONFIG or ~/.kube/config, else the in-cluster service
/// account); /readyz answers 200 once every watch has listed and the first table is live.
/// File mode (--manifests): serves Ingress manifests from files, watched for changes.
#[derive(Debug, Parser)]
#[command(
    name = "mse-gateway",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start built-in echo backends on loopback and serve the demo manifests, printing
    /// curl commands that show host, path and TLS routing, a rewrite and a canary release.
    Demo(DemoArgs),
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// A file holding the secret (at least 16 bytes; a trailing newline is dropped) the
    /// affinity cookies (affinity: cookie) are keyed with. Give every replica the same
    /// one so that each honours the cookies the others set (in Kubernetes, mount a
    /// Secret). Default: a key drawn at random when the gateway starts.
    #[arg(long, env = "MSE_AFFINITY_KEY_FILE", value_name = "PATH")]
    affinity_key_file: Option<PathBuf>,
    /// File mode: a manifest file or directory (YAML or JSON, many documents), watched for
    /// changes. Repeatable. Without it the gateway runs in kube mode.
    #[arg(long = "manifests", value_name = "PATH")]
    manifests: Vec<PathBuf>,
    /// Kube mode: the kubeconfig to use (its current context). Default: $KUBECONFIG or
    /// ~/.kube/config, else the in-cluster service account.
    #[arg(long, value_name = "PATH")]
    kubeconfig: Option<PathBuf>,
    /// Kube mode: a namespace to watch. Repeatable. Default: every namespace.
    #[arg(long = "namespace", value_name = "NS")]
    namespaces: Vec<String>,
    /// IngressClass name served where no IngressClass object names it.
    #[arg(long, default_value = "mse", value_name = "NAME")]
    ingress_class: String,
    /// Plain HTTP listener (HTTP/1.1 and h2c).
    #[arg(long, default_value = "0.0.0.0:80", value_name = "ADDR")]
    http_addr: SocketAddr,
    /// TLS listener (HTTP/1.1 and HTTP/2, certificate by SNI).
    #[arg(long, default_value = "0.0.0.0:443", value_name = "ADDR")]
    https_addr: SocketAddr,
    /// Admin listener: /healthz /readyz /metrics /debug/routes /debug/diagnostics.
    #[arg(long, default_value = "127.0.0.1:9901", value_name = "ADDR")]
    admin_addr: SocketAddr,
    /// Data-plane worker threads (default: the cores this process may run on).
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
    /// Service that answers requests no Ingress rule matches (no host, or no path under a
    /// host), and the custom-http-errors of Ingresses without default-backend. The port
    /// defaults to the Service's first port. Without it, unmatched requests get 404.
    #[arg(long, value_name = "NS/NAME[:PORT]", value_parser = parse_default_backend)]
    default_backend_service: Option<ServiceRef>,
    /// ConfigMap of gateway-wide settings (ingress-nginx keys); the higress-config
    /// ConfigMap in its namespace is read too. Edits apply without a restart; see
    /// docs/configuration.md.
    #[arg(long, value_name = "NS/NAME", value_parser = parse_configmap)]
    configmap: Option<ObjectRef>,
    /// Redis that counts rate-limit and concurrency-limit for all replicas together
    /// (redis://[user:password@]host[:port][/db]; the redis-url key). Without it, or while
    /// Redis cannot be reached, each replica enforces them on its own.
    #[arg(long, env = "MSE_REDIS_URL", value_name = "URL")]
    redis_url: Option<String>,
    /// Certificate authorities (a PEM file) that verify the certificates of https
    /// auth-url services. Default: the platform's trust store.
    #[arg(long, value_name = "PATH", value_parser = parse_roots)]
    auth_url_ca: Option<AuthUrlRoots>,
    #[command(flatten)]
    client: ClientArgs,
    #[command(flatten)]
    status: StatusArgs,
    #[command(flatten)]
    common: CommonArgs,
}

/// The client address and the gateway-wide IP lists. Each has a global-configuration
/// equivalent (docs/configuration.md); given, the flag beats the ConfigMaps, and the
/// MseIngressConfig's ipAccessControl beats the list flags.
#[derive(Debug, Args)]
struct ClientArgs {
    /// Proxies in front of the gateway (use-forwarded-headers with this
    /// proxy-real-ip-cidr): for a peer in the list, the client address is the right-most
    /// X-Forwarded-For entry that is not in it.
    #[arg(long, value_name = "CIDR,...", value_parser = parse_cidrs)]
    trusted_proxies: Option<String>,
    /// Every connection to the HTTP and HTTPS listeners opens with a PROXY protocol header
    /// (v1 or v2) naming the client; a connection without one is closed (use-proxy-protocol).
    #[arg(long)]
    proxy_protocol: bool,
    /// Gateway-wide allow list: only these clients are served, others get 403 (the
    /// MseIngressConfig's spec.global.ipAccessControl.whitelist).
    #[arg(long, value_name = "CIDR,...", value_parser = parse_cidrs)]
    allow_source_range: Option<String>,
    /// Gateway-wide deny list: these clients get 403 (spec.global.ipAccessControl.blacklist).
    #[arg(long, value_name = "CIDR,...", value_parser = parse_cidrs)]
    deny_source_range: Option<String>,
}

/// Kube mode: what is written to the API server, by the replica holding the leader
/// election Lease (every replica serves traffic).
#[derive(Debug, Args)]
struct StatusArgs {
    /// Write the address of this Service (its load balancer's, else its external or
    /// cluster IP) into the status of the Ingresses served, and follow its changes.
    #[arg(long, value_name = "NS/NAME", value_parser = parse_publish_service, conflicts_with = "publish_status_address")]
    publish_service: Option<PublishAddress>,
    /// Write these IPs or host names into the status of the Ingresses served.
    #[arg(long, value_name = "ADDR[,ADDR]", value_parser = parse_publish_addresses)]
    publish_status_address: Option<PublishAddress>,
    /// Name of the leader election Lease.
    #[arg(long, default_value = DEFAULT_LEASE_NAME, value_name = "NAME")]
    election_id: String,
    /// Namespace of the leader election Lease. Default: $POD_NAMESPACE, else the service
    /// account's namespace, else "default".
    #[arg(long, value_name = "NS")]
    election_namespace: Option<String>,
    /// How long a leader that stopped renewing keeps the Lease (whole seconds).
    #[arg(long, default_value = "15s", value_name = "DURATION", value_parser = parse_duration)]
    election_lease_duration: Duration,
    /// How long the leader keeps leading without a successful renewal.
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = parse_duration)]
    election_renew_deadline: Duration,
    /// How often replicas read the Lease and the leader renews it.
    #[arg(long, default_value = "2s", value_name = "DURATION", value_parser = parse_duration)]
    election_retry_period: Duration,
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// Plain HTTP listener of the demo.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    http_addr: SocketAddr,
    /// TLS listener of the demo.
    #[arg(long, default_value = "127.0.0.1:8443", value_name = "ADDR")]
    https_addr: SocketAddr,
    /// Admin listener of the demo.
    #[arg(long, default_value = "127.0.0.1:9901", value_name = "ADDR")]
    admin_addr: SocketAddr,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Debug, Args)]
struct CommonArgs {
    /// Access log: one line per request (to --access-log-path). Given explicitly (or through
    /// MSE_ACCESS_LOG) it beats disable-access-log of the --configmap ConfigMap; left at its
    /// default, the ConfigMap decides.
    #[arg(long, env = "MSE_ACCESS_LOG", default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    access_log: bool,
    /// Log format, of the gateway's own log and of the access log: `text` (the access log
    /// in ingress-nginx's `upstream` line) or `json` (one object per line). A
    /// `log-format-upstream` in the global configuration still sets the access log's.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    /// Where the access log goes: a file (appended to), or /dev/stdout (the default) or
    /// /dev/stderr.
    #[arg(long, default_value = "/dev/stdout", value_name = "PATH")]
    access_log_path: PathBuf,
}

/// The access log's sink and format from the common flags.
fn access_log(common: &CommonArgs, proxy: &mut mse_proxy::ProxyConfig) -> anyhow::Result<()> {
    proxy.access_log_sink =
        mse_proxy::AccessLogSink::file(&common.access_log_path).map_err(|e| {
            anyhow::anyhow!(
                "--access-log-path {}: {e}",
                common.access_log_path.display()
            )
        })?;
    proxy.access_log_json = common.log_format == "json";
    Ok(())
}

/// Logs (the access log included) go to stderr through a background writer, so a slow
/// terminal or pipe never stalls a worker. The guard flushes it at exit.
fn init_logging(common: &CommonArgs) -> tracing_appender::non_blocking::WorkerGuard {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let (writer, guard) = tracing_appender::non_blocking(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    if common.log_format == "json" {
        builder.json().flatten_event(true).init();
    } else {
        builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
    }
    guard
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let flags = explicit_flags(&matches, &cli);
    let (_log_guard, result) = match cli.command {
        Some(Command::Demo(args)) => {
            let guard = init_logging(&args.common);
            let opts = demo::DemoOptions {
                http_addr: args.http_addr,
                https_addr: args.https_addr,
                admin_addr: args.admin_addr,
                access_log: args.common.access_log,
            };
            (
                guard,
                run(async move { demo::run(opts, mse_controller::shutdown_signal()).await }),
            )
        }
        None => {
            let a = cli.serve;
            let guard = init_logging(&a.common);
            let mut opts = if a.manifests.is_empty() {
                Options::kube(a.kubeconfig, a.namespaces)
            } else {
                if a.kubeconfig.is_some() || !a.namespaces.is_empty() {
                    tracing::warn!(
                        "--kubeconfig and --namespace apply to kube mode and are ignored with --manifests"
                    );
                }
                Options::new(a.manifests)
            };
            opts.ingress_class = a.ingress_class;
            opts.http_addr = Some(a.http_addr);
            opts.https_addr = Some(a.https_addr);
            opts.admin_addr = a.admin_addr;
            if let Some(w) = a.workers {
                opts.workers = w;
            }
            opts.default_backend = a.default_backend_service;
            opts.configmap = a.configmap;
            opts.proxy.auth_url_roots = a.auth_url_ca;
            opts.access_log = a.common.access_log;
            apply_status_args(&mut opts, a.status);
            opts.flags = flags;
            let key = a.affinity_key_file.as_deref().map(read_affinity_key);
            let key = key
                .transpose()
                .and_then(|k| access_log(&a.common, &mut opts.proxy).map(|()| k));
            match key {
                Ok(key) => {
                    opts.proxy.affinity_key = key;
                    (guard, run(serve(opts)))
                }
                Err(e) => (guard, Err(e)),
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mse-gateway: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The affinity cookies' key from `--affinity-key-file`.
fn read_affinity_key(path: &std::path::Path) -> anyhow::Result<mse_proxy::AffinityKey> {
    let bytes = std::fs::read(path)
        .map_err(|e| anyhow::anyhow!("--affinity-key-file {}: {e}", path.display()))?;
    mse_proxy::AffinityKey::new(bytes.trim_ascii_end())
        .map_err(|e| anyhow::anyhow!("--affinity-key-file {}: {e}", path.display()))
}

/// The flags with a global-configuration equivalent that were given explicitly (on the
/// command line or through their environment variable): they beat the ConfigMaps. A flag
/// left at its default is not listed, so that a ConfigMap can override it.
fn explicit_flags(matches: &ArgMatches, cli: &Cli) -> GlobalFlags {
    let mut flags = GlobalFlags::default();
    let explicit = |id: &str| {
        matches!(
            matches.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        )
    };
    if cli.command.is_none() && explicit("access_log") {
        flags.set("--access-log", cli.serve.common.access_log.to_string());
    }
    if cli.command.is_none() {
        client_flags(&mut flags, &cli.serve.client);
        if let Some(url) = &cli.serve.redis_url {
            flags.set("--redis-url", url.as_str());
        }
    }
    flags
}

/// The client-address and IP-list flags given.
fn client_flags(flags: &mut GlobalFlags, c: &ClientArgs) {
    let lists = [
        ("--trusted-proxies", &c.trusted_proxies),
        ("--allow-source-range", &c.allow_source_range),
        ("--deny-source-range", &c.deny_source_range),
    ];
    for (flag, value) in lists {
        if let Some(v) = value {
            flags.set(flag, v.as_str());
        }
    }
    if c.proxy_protocol {
        flags.set("--proxy-protocol", "true");
    }
}

/// A comma list of addresses and CIDRs, checked here so that a typo stops the gateway
/// at start instead of closing it (every request 503) once it runs.
fn parse_cidrs(s: &str) -> Result<String, String> {
    mse_router::cidr_list(s)
        .map(|_| s.to_owned())
        .map_err(|e| e.to_string())
}

/// `--configmap`: the namespace is required, as for ingress-nginx's flag.
fn parse_configmap(s: &str) -> Result<ObjectRef, String> {
    let r: ObjectRef = s.parse().map_err(|e| format!("{e}"))?;
    if r.namespace.is_none() {
        return Err("expected NAMESPACE/NAME".to_owned());
    }
    Ok(r)
}

/// `--auth-url-ca`: the certificates of a PEM file.
fn parse_roots(path: &str) -> Result<AuthUrlRoots, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    mse_proxy::roots_from_pem(&pem).map_err(|e| format!("{path}: {e}"))
}

/// `--default-backend-service`: like ingress-nginx's flag, the namespace is required.
fn parse_default_backend(s: &str) -> Result<ServiceRef, String> {
    let r: ServiceRef = s.parse().map_err(|e| format!("{e}"))?;
    if r.service.namespace.is_none() {
        return Err("expected NAMESPACE/NAME or NAMESPACE/NAME:PORT".to_owned());
    }
    Ok(r)
}

fn apply_status_args(opts: &mut Options, a: StatusArgs) {
    let w = &mut opts.writes;
    w.publish = a.publish_service.or(a.publish_status_address);
    w.lease.name = a.election_id;
    if let Some(ns) = a.election_namespace {
        w.lease.namespace = ns;
    }
    w.lease.lease_duration = a.election_lease_duration;
    w.lease.renew_deadline = a.election_renew_deadline;
    w.lease.retry_period = a.election_retry_period;
}

fn parse_publish_service(s: &str) -> Result<PublishAddress, String> {
    PublishAddress::parse_service(s).map_err(|e| e.to_string())
}

fn parse_publish_addresses(s: &str) -> Result<PublishAddress, String> {
    PublishAddress::parse_fixed(s).map_err(|e| e.to_string())
}

/// `15s`, `500ms`, or plain seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, scale) = if let Some(ms) = s.strip_suffix("ms") {
        (ms, 0.001)
    } else {
        (s.strip_suffix('s').unwrap_or(s), 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("expected a duration such as 15s or 500ms, got {s:?}"))?;
    Duration::try_from_secs_f64(value * scale)
        .map_err(|_| format!("expected a non-negative duration, got {s:?}"))
}

/// Runs the control plane (watcher, compiler, admin) on a small runtime of its own; the
/// data plane has its own worker threads.
fn run(fut: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(fut)
}

async fn serve(opts: Options) -> anyhow::Result<()> {
    let running = mse_gateway::start(opts).await?;
    mse_controller::shutdown_signal().await;
    tracing::info!("shutting down: draining connections");
    running.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_seconds_or_milliseconds() {
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("ten").unwrap_err().contains("\"ten\""));
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn client_address_flags_become_global_flags() {
        let cli = Cli::try_parse_from([
            "mse-gateway",
            "--trusted-proxies",
            "10.0.0.0/8",
            "--proxy-protocol",
            "--deny-source-range",
            "192.0.2.0/24,2001:db8::/32",
        ])
        .unwrap();
        let mut flags = GlobalFlags::default();
        client_flags(&mut flags, &cli.serve.client);
        let want = GlobalFlags::default()
            .with("--trusted-proxies", "10.0.0.0/8")
            .with("--deny-source-range", "192.0.2.0/24,2001:db8::/32")
            .with("--proxy-protocol", "true");
        assert_eq!(flags, want);
        let bad = Cli::try_parse_from(["mse-gateway", "--allow-source-range", "10.0.0.0/33"]);
        assert!(bad.unwrap_err().to_string().contains("/33"));
    }

    #[test]
    fn redis_url_becomes_a_global_flag_in_both_modes() {
        let args = ["mse-gateway", "--redis-url", "redis://redis:6379/0"];
        let matches = Cli::command().try_get_matches_from(args).unwrap();
        let cli = Cli::from_arg_matches(&matches).unwrap();
        let want = GlobalFlags::default().with("--redis-url", "redis://redis:6379/0");
        assert_eq!(explicit_flags(&matches, &cli), want);
    }

    #[test]
    fn status_flags_reach_the_options() {
        let cli = Cli::try_parse_from([
            "mse-gateway",
            "--publish-service",
            "ingress/gw",
            "--election-id",
            "leader",
            "--election-namespace",
            "ops",
            "--election-lease-duration",
            "4s",
        ])
        .unwrap();
        let mut opts = Options::kube(None, Vec::new());
        apply_status_args(&mut opts, cli.serve.status);
        assert_eq!(
            opts.writes.publish,
            Some(PublishAddress::Service {
                namespace: "ingress".into(),
                name: "gw".into()
            })
        );
        assert_eq!(opts.writes.lease.name, "leader");
        assert_eq!(opts.writes.lease.namespace, "ops");
        assert_eq!(opts.writes.lease.lease_duration, Duration::from_secs(4));
        assert!(
            Cli::try_parse_from([
                "mse-gateway",
                "--publish-service",
                "a/b",
                "--publish-status-address",
                "1.2.3.4"
            ])
            .is_err(),
            "the two address sources exclude each other"
        );
    }
}
