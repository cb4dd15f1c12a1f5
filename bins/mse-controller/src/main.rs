//! `mse-controller`: the operator that turns each `MseIngressConfig` into a running
//! gateway (Deployment, Service, RBAC, PodDisruptionBudget, IngressClass).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use mse_controller::operator::{
    self, DEFAULT_GATEWAY_IMAGE, DEFAULT_GATEWAY_NAMESPACE, OperatorOptions,
};

/// The mse-ingress operator: MseIngressConfig -> gateway Deployment, Service, RBAC, PDB
/// and IngressClass.
#[derive(Debug, Parser)]
#[command(name = "mse-controller", version, about)]
struct Cli {
    /// Kubeconfig to use (default: $KUBECONFIG, ~/.kube/config, then the in-cluster
    /// service account).
    #[arg(long, value_name = "PATH")]
    kubeconfig: Option<PathBuf>,
    /// Print the MseIngressConfig CustomResourceDefinition as YAML and exit.
    #[arg(long)]
    print_crd: bool,
    /// The mse-gateway image the gateway Deployments run.
    #[arg(long, value_name = "IMAGE", default_value = DEFAULT_GATEWAY_IMAGE)]
    gateway_image: String,
    /// Namespace of the gateways' Deployments, Services and other namespaced objects
    /// (it must exist).
    #[arg(long, value_name = "NS", default_value = DEFAULT_GATEWAY_NAMESPACE)]
    gateway_namespace: String,
    /// Log format.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.print_crd {
        return match operator::crd_yaml() {
            Ok(yaml) => {
                print!("{yaml}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("mse-controller: {e}");
                ExitCode::FAILURE
            }
        };
    }
    init_logging(&cli.log_format);
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(run(cli)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mse-controller: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let client = operator::connect(cli.kubeconfig.as_deref()).await?;
    let options = OperatorOptions {
        gateway_image: cli.gateway_image,
        gateway_namespace: cli.gateway_namespace,
    };
    operator::run(client, options, shutdown_signal()).await;
    Ok(())
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().flatten_event(true).init();
    } else {
        builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
    }
}

/// Resolves on SIGTERM or Ctrl-C, and says what happens next.
async fn shutdown_signal() {
    mse_controller::shutdown_signal().await;
    tracing::info!("shutting down: finishing running reconciles");
}
