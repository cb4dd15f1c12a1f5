//! What `rate-limit` shared through Redis costs a request: the lease path (a token spent
//! from the replica's batch, plus the amortised call to Redis when the batch runs out),
//! against the replica's own bucket (no Redis) and one Redis call per request. Guards the
//! decision to lease tokens in batches rather than ask Redis for each request.
//!
//! Needs `redis-server` on the PATH; it is started on a free loopback port.
#![expect(
    clippy::expect_used,
    reason = "a bench without its Redis or runtime should stop at once"
)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use mse_proxy::BenchLimiter;

struct Redis(Child);

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn redis_server() -> (Redis, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string()])
        .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server runs");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "redis-server did not start"
        );
        std::thread::yield_now();
    }
    (Redis(child), format!("redis://127.0.0.1:{port}"))
}

/// `iters` admissions on one runtime, timed as a whole.
fn run(rt: &tokio::runtime::Runtime, limiter: &BenchLimiter, iters: u64) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            assert!(limiter.admit().await, "the bucket ran out");
        }
        start.elapsed()
    })
}

fn shared_limit(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let (_server, url) = redis_server();
    let mut g = c.benchmark_group("rate_limit");
    g.measurement_time(Duration::from_secs(3));
    // A limit no benchmark run exhausts: the bucket holds a second of it.
    let (huge, second) = (u32::MAX / 2, Duration::from_secs(1));
    let local = rt.block_on(async { BenchLimiter::new(None, huge, second) });
    g.bench_function("per_replica", |b| b.iter_custom(|n| run(&rt, &local, n)));
    let leased = rt.block_on(async { BenchLimiter::new(Some(&url), huge, second) });
    g.bench_function("redis_leased", |b| b.iter_custom(|n| run(&rt, &leased, n)));
    // Leases of one token (a limit under 16), good for an eighth of a microsecond, from a
    // bucket that refills at once: a Redis call for every request.
    let single = rt.block_on(async { BenchLimiter::new(Some(&url), 8, Duration::from_micros(1)) });
    g.bench_function("redis_per_request", |b| {
        b.iter_custom(|n| run(&rt, &single, n))
    });
    g.finish();
    eprintln!(
        "redis_leased: {} calls to Redis in all; redis_per_request: {}",
        leased.redis_calls(),
        single.redis_calls()
    );
}

criterion_group!(benches, shared_limit);
criterion_main!(benches);
