//! A gRPC echo backend for `bench/grpc.sh`: tonic's server side (`tonic::server::Grpc`
//! with a prost message derived in place, no code generation) on hyper's HTTP/2 server,
//! cleartext (h2c), on a current-thread runtime.
//!
//! ```text
//! grpc-echo serve 127.0.0.1:24301      # answers /bench.Echo/Unary with the request's text
//! grpc-echo check 127.0.0.1:24300 hi   # one unary call through a proxy: prints the answer
//! ```
//!
//! `check` is how the benchmark proves that the proxy under test passes gRPC through
//! (status OK in the trailers, the message intact) before the load tool, which only sees
//! HTTP statuses, is pointed at it.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;
use std::task::{Context, Poll};

use http::{Request, Response, Uri};
use hyper::body::Incoming;
use hyper::client::conn::http2;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};
use tonic::Status;
use tonic::server::{Grpc, UnaryService};
use tonic_prost::ProstCodec;

/// The one message: field 1, a string (`0a <len> <bytes>` on the wire).
#[derive(Clone, PartialEq, prost::Message)]
struct Msg {
    #[prost(string, tag = "1")]
    text: String,
}

/// The method's path, as the load tool's request names it.
const METHOD: &str = "/bench.Echo/Unary";

/// Echoes the request's message.
struct Unary;

impl UnaryService<Msg> for Unary {
    type Response = Msg;
    type Future = Pin<Box<dyn Future<Output = Result<tonic::Response<Msg>, Status>> + Send>>;

    fn call(&mut self, request: tonic::Request<Msg>) -> Self::Future {
        Box::pin(async move { Ok(tonic::Response::new(request.into_inner())) })
    }
}

async fn serve(addr: &str) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let svc = service_fn(|req: Request<Incoming>| async move {
                let r = if req.uri().path() == METHOD {
                    Grpc::new(ProstCodec::<Msg, Msg>::default())
                        .unary(Unary, req)
                        .await
                } else {
                    Status::unimplemented("no such method").into_http()
                };
                Ok::<_, Infallible>(r)
            });
            let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .max_concurrent_streams(1024)
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// tonic's client over one hyper HTTP/2 connection.
#[derive(Clone)]
struct Channel(http2::SendRequest<tonic::body::Body>);

impl tower::Service<Request<tonic::body::Body>> for Channel {
    type Response = Response<Incoming>;
    type Error = hyper::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Incoming>, hyper::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), hyper::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: Request<tonic::body::Body>) -> Self::Future {
        let mut tx = self.0.clone();
        Box::pin(async move { tx.send_request(req).await })
    }
}

async fn check(addr: &str, text: &str) -> Result<String, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connecting to {addr}: {e}"))?;
    let (tx, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP/2 handshake with {addr}: {e}"))?;
    tokio::spawn(conn);
    let origin: Uri = format!("http://{addr}")
        .parse()
        .map_err(|e| format!("{addr}: {e}"))?;
    let mut client = tonic::client::Grpc::with_origin(Channel(tx), origin);
    client
        .ready()
        .await
        .map_err(|e| format!("connection not ready: {e}"))?;
    let answer = client
        .unary(
            tonic::Request::new(Msg {
                text: text.to_owned(),
            }),
            http::uri::PathAndQuery::from_static(METHOD),
            ProstCodec::<Msg, Msg>::default(),
        )
        .await
        .map_err(|s| format!("gRPC status {:?}: {}", s.code(), s.message()))?;
    Ok(answer.into_inner().text)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("grpc-echo: runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match args.iter().map(String::as_str).collect::<Vec<_>>()[1..] {
        ["serve", addr] => match rt.block_on(serve(addr)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("grpc-echo: serving on {addr}: {e}");
                ExitCode::FAILURE
            }
        },
        ["check", addr, text] => match rt.block_on(check(addr, text)) {
            Ok(answer) if answer == text => {
                println!("{answer}");
                ExitCode::SUCCESS
            }
            Ok(answer) => {
                eprintln!("grpc-echo: sent {text:?}, got {answer:?}");
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("grpc-echo: {e}");
                ExitCode::FAILURE
            }
        },
        _ => {
            eprintln!("usage: grpc-echo serve ADDR | grpc-echo check ADDR TEXT");
            ExitCode::from(2)
        }
    }
}
