//! Compile time and heap of a manifest set, with and without the parsed-annotation cache:
//! `cargo run --release -p mse-router --example compile_set -- DIR [ROUNDS]`.
//!
//! Loads every `.yaml`/`.json` file of `DIR` into one snapshot (as file mode does, without
//! the annotation line maps), then:
//! - compiles it `ROUNDS` times (default 10) sharing nothing between Ingresses
//!   (`CompileCache::with_limit(0)`): a compile before the cache existed;
//! - compiles it `ROUNDS` times with a fresh cache each time (a first compile);
//! - compiles it once more with a cache, then `ROUNDS` times after one more Ingress is
//!   added each time (an edit), reusing the cache from the compile before.
//!
//! and prints the median and the largest time of each, and this process's resident
//! memory after loading and at the end (a heap profiler run on it says what holds it).

use std::time::{Duration, Instant};

use mse_model::{Snapshot, load_manifests};
use mse_router::{CompileCache, CompileOptions, compile_cached};

/// This process's resident and peak resident memory (`VmRSS`, `VmHWM`), in bytes.
fn memory() -> (usize, usize) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn mib(bytes: usize) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn summary(mut times: Vec<Duration>) -> String {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    format!(
        "median {:.1} ms, max {:.1} ms",
        ms(times[times.len() / 2]),
        ms(times[times.len() - 1])
    )
}

fn extra(i: usize) -> String {
    format!(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: extra-{i}\n  namespace: bench-extra\n  annotations:\n    kubernetes.io/ingress.class: mse\nspec:\n  rules:\n  - host: extra-{i}.example.com\n    http:\n      paths:\n      - {{ path: /, pathType: Prefix, backend: {{ service: {{ name: echo, port: {{ number: 80 }} }} }} }}\n"
    )
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(dir) = args.first() else {
        eprintln!("usage: compile_set DIR [ROUNDS]");
        std::process::exit(2);
    };
    let rounds: usize = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(10);
    let mut files: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "json"))
        .collect();
    files.sort();
    let mut snapshot = Snapshot {
        generation: 1,
        ..Snapshot::default()
    };
    for f in &files {
        let text = std::fs::read_to_string(f)?;
        snapshot.extend(load_manifests(&text, Some(&f.display().to_string())).objects);
    }
    let (rss, hwm) = memory();
    println!(
        "{} files, {} Ingresses, {} objects; VmRSS {}, VmHWM {}",
        files.len(),
        snapshot.ingresses.len(),
        snapshot.len(),
        mib(rss),
        mib(hwm)
    );
    let opts = CompileOptions::default();

    let mut times = Vec::new();
    for _ in 0..rounds {
        let started = Instant::now();
        let table = compile_cached(&snapshot, &opts, None, &mut CompileCache::with_limit(0));
        times.push(started.elapsed());
        std::hint::black_box(&table);
    }
    println!("no sharing:        {}", summary(times));

    let mut times = Vec::new();
    let mut entries = 0;
    for _ in 0..rounds {
        let mut cache = CompileCache::new();
        let started = Instant::now();
        let table = compile_cached(&snapshot, &opts, None, &mut cache);
        times.push(started.elapsed());
        entries = cache.len();
        std::hint::black_box(&table);
    }
    println!(
        "first compile:     {}; cache {entries} entries",
        summary(times)
    );

    let mut cache = CompileCache::new();
    let mut table = compile_cached(&snapshot, &opts, None, &mut cache);
    let mut times = Vec::new();
    for i in 0..rounds {
        snapshot.generation += 1;
        snapshot.extend(load_manifests(&extra(i), Some("extra.yaml")).objects);
        let started = Instant::now();
        table = compile_cached(&snapshot, &opts, Some(table.global()), &mut cache);
        times.push(started.elapsed());
    }
    let (rss, hwm) = memory();
    println!(
        "edit, cache kept:  {}; {} routes, {} diagnostics, cache {} entries; VmRSS {}, VmHWM {}",
        summary(times),
        table.routes().len(),
        table.diagnostics().len(),
        cache.len(),
        mib(rss),
        mib(hwm)
    );
    Ok(())
}
