//! Which route serves a request, and why.
//!
//! ```text
//! cargo run -p mse-router --example explain_match -- examples/demo/demo.yaml shop.demo.test /api/orders
//! ```

use std::process::ExitCode;

use mse_model::{Snapshot, load_manifests};
use mse_router::{CompileOptions, RequestHead, compile, normalize_path};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [file, host, path] = args.as_slice() else {
        eprintln!("usage: explain_match MANIFEST.yaml HOST PATH");
        return ExitCode::from(2);
    };
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{file}: {e}");
            return ExitCode::from(2);
        }
    };
    let loaded = load_manifests(&text, Some(file));
    let mut snapshot = Snapshot::default();
    snapshot.extend(loaded.objects);
    let table = compile(&snapshot, &CompileOptions::default());
    for d in loaded.diagnostics.iter().chain(table.diagnostics()) {
        println!("{d}");
    }
    let path = normalize_path(path);
    match table.lookup(&RequestHead::new(host, &path)) {
        Some(m) => {
            println!("{host} {path} -> {}", m.why());
            match m.cluster {
                Some(c) => println!("backend {} port {}: {:?}", c.service, c.port, c.target),
                None => println!("backend unavailable: the gateway answers 503"),
            }
            ExitCode::SUCCESS
        }
        None => {
            println!("{host} {path} -> no route: the gateway answers 404");
            ExitCode::FAILURE
        }
    }
}
