//! `connection-policy-*` (MSE): the upstream connections of a Service and the requests
//! each carries, against loopback backends that count their connections and can hold a
//! request until told to answer.
#![cfg(test)]

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use support::*;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

const HOST: &str = "pool.example.com";

/// A keep-alive backend counting the connections it accepted; a request for `/hold`
/// waits for a permit of `gate` before it is answered.
struct Backend {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    gate: Arc<Semaphore>,
}

impl Backend {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(Semaphore::new(0));
        let (count, held) = (Arc::clone(&connections), Arc::clone(&gate));
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let held = Arc::clone(&held);
                let service = service_fn(move |req: Request<Incoming>| {
                    let held = Arc::clone(&held);
                    async move {
                        if req.uri().path() == "/hold" {
                            held.acquire().await.unwrap().forget();
                        }
                        Ok::<_, std::convert::Infallible>(Response::new(Full::new(
                            Bytes::from_static(b"ok"),
                        )))
                    }
                });
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            addr,
            connections,
            gate,
        }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

fn routed(annotations: &[(&str, &str)], endpoints: &[SocketAddr]) -> String {
    let mut y = annotate(
        &ingress("r", Some(HOST), &[("/", "Prefix", "svc")]),
        annotations,
    );
    y.push_str(&service("svc", endpoints));
    y
}

/// Starts a request for `/hold` on a connection of its own; returns its answer once the
/// backend lets it go.
fn held(addr: SocketAddr) -> tokio::task::JoinHandle<StatusCode> {
    tokio::spawn(async move {
        let mut tx = h1(addr).await;
        send1(&mut tx, get_req(HOST, "/hold")).await.status
    })
}

/// Waits until `backend` accepted `n` connections.
async fn connections_reach(backend: &Backend, n: usize) {
    bounded("the backend's connections", async {
        while backend.connections() < n {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_connection_carries_at_most_max_request_per_connection() {
    let b = Backend::start().await;
    let key = "mse.ingress.kubernetes.io/connection-policy-http-max-request-per-connection";
    let (g, _) = gateway(&routed(&[(key, "2")], &[b.addr]));
    let mut tx = h1(http_addr(&g)).await;
    for _ in 0..10 {
        assert_eq!(
            send1(&mut tx, get_req(HOST, "/")).await.status,
            StatusCode::OK
        );
    }
    assert_eq!(b.connections(), 5, "two requests per upstream connection");
    // Without the key, one connection carries them all.
    let b = Backend::start().await;
    let (g, _) = gateway(&routed(&[], &[b.addr]));
    let mut tx = h1(http_addr(&g)).await;
    for _ in 0..10 {
        assert_eq!(
            send1(&mut tx, get_req(HOST, "/")).await.status,
            StatusCode::OK
        );
    }
    assert_eq!(b.connections(), 1);
}

#[tokio::test]
async fn past_max_connection_a_request_gets_503_at_once() {
    let b = Backend::start().await;
    let key = "mse.ingress.kubernetes.io/connection-policy-tcp-max-connection";
    let (g, _) = gateway(&routed(&[(key, "1")], &[b.addr]));
    let first = held(http_addr(&g));
    connections_reach(&b, 1).await;
    // The one connection is busy: the next request would need a second.
    let reply = get(http_addr(&g), HOST, "/").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    b.gate.add_permits(1);
    assert_eq!(first.await.unwrap(), StatusCode::OK);
    assert_eq!(b.connections(), 1, "the refused request opened none");
}

#[tokio::test]
async fn max_connection_per_endpoint_bounds_each_endpoint() {
    let (one, two) = (Backend::start().await, Backend::start().await);
    let key = "nginx.ingress.kubernetes.io/connection-policy-tcp-max-connection-per-endpoint";
    let (g, _) = gateway(&routed(&[(key, "1")], &[one.addr, two.addr]));
    // Round robin: one held request on each endpoint.
    let a = held(http_addr(&g));
    bounded("the first connection", async {
        while one.connections() + two.connections() < 1 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await;
    let b = held(http_addr(&g));
    bounded("a connection to each endpoint", async {
        while one.connections() + two.connections() < 2 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await;
    assert_eq!((one.connections(), two.connections()), (1, 1));
    let reply = get(http_addr(&g), HOST, "/").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    one.gate.add_permits(1);
    two.gate.add_permits(1);
    assert_eq!(a.await.unwrap(), StatusCode::OK);
    assert_eq!(b.await.unwrap(), StatusCode::OK);
}
