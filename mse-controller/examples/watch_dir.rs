//! Watches manifest files or directories and prints the routes of every new table.
//!
//! ```text
//! cargo run -p mse-controller --example watch_dir -- path/to/manifests [more paths]
//! ```
//!
//! Edit, add or break a file while it runs: a new table is printed within a second, with
//! the diagnostics that explain it. Set `RUST_LOG=debug` for the watcher's own log. Ctrl-C
//! stops it.

use mse_controller::{Compiled, FileSource, run_compile_loop};
use mse_router::{Backend, CompileOptions, RouteTable};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();

    let paths: Vec<String> = std::env::args().skip(1).collect();
    if paths.is_empty() {
        eprintln!("usage: watch_dir PATH...");
        std::process::exit(2);
    }

    let files = FileSource::new(paths).watch().await?;
    let compile_loop = run_compile_loop(files.subscribe(), CompileOptions::default(), print);
    tokio::select! {
        () = compile_loop => {}
        signal = tokio::signal::ctrl_c() => signal?,
    }
    files.stop().await?;
    Ok(())
}

fn print(compiled: Compiled) {
    let table: &RouteTable = &compiled.table;
    println!(
        "--- generation {}: {} routes, compiled in {:?}",
        compiled.generation(),
        table.routes().len(),
        compiled.compile_time
    );
    for route in table.routes_in_order() {
        let to = match &route.backend {
            Backend::Cluster(id) => {
                let cluster = table.cluster(*id);
                format!("{}:{}", cluster.service, cluster.port)
            }
            Backend::Unavailable { reason } => format!("503 ({reason})"),
        };
        let origin = route
            .source
            .as_ref()
            .map(|s| format!("  [{s}]"))
            .unwrap_or_default();
        println!(
            "{:<32} {:<24} -> {to}{origin}",
            route.host.to_string(),
            route.path.to_string()
        );
    }
    for d in compiled.diagnostics() {
        println!("  {d}");
    }
}
