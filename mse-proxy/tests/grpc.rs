//! gRPC end to end over loopback: a tonic client and a tonic server (messages derived with
//! prost, no code generation) through the gateway, over h2c and over TLS with ALPN h2 to
//! the gateway, and cleartext HTTP/2 (`backend-protocol: GRPC`) to the upstream.
#![cfg(test)]

mod support;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http::uri::PathAndQuery;
use http::{Request, Response, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http2;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use support::*;
use tokio::net::{TcpListener, TcpStream};
use tonic::server::{
    ClientStreamingService, Grpc as GrpcServer, ServerStreamingService, StreamingService,
    UnaryService,
};
use tonic::{Code, Status, Streaming};
use tonic_prost::ProstCodec;

/// The one message type of the test service.
#[derive(Clone, PartialEq, prost::Message)]
struct Msg {
    #[prost(string, tag = "1")]
    text: String,
}

fn msg(text: &str) -> Msg {
    Msg {
        text: text.to_owned(),
    }
}

type MsgStream = Pin<Box<dyn Stream<Item = Result<Msg, Status>> + Send>>;
type Answer<T> = Pin<Box<dyn Future<Output = Result<tonic::Response<T>, Status>> + Send>>;

/// `Unary`: echoes; `fail` gets FAILED_PRECONDITION with a message; `hang` never answers.
struct Unary;

impl UnaryService<Msg> for Unary {
    type Response = Msg;
    type Future = Answer<Msg>;

    fn call(&mut self, request: tonic::Request<Msg>) -> Self::Future {
        Box::pin(async move {
            let text = request.into_inner().text;
            match text.as_str() {
                "fail" => Err(Status::failed_precondition("nothing to echo here")),
                "hang" => std::future::pending().await,
                _ => Ok(tonic::Response::new(msg(&format!("echo: {text}")))),
            }
        })
    }
}

/// `Count`: `n` messages `0`..`n`; `n-abort` ends with ABORTED after them, in trailers.
struct Count;

impl ServerStreamingService<Msg> for Count {
    type Response = Msg;
    type ResponseStream = MsgStream;
    type Future = Answer<MsgStream>;

    fn call(&mut self, request: tonic::Request<Msg>) -> Self::Future {
        Box::pin(async move {
            let text = request.into_inner().text;
            let (n, abort) = match text.strip_suffix("-abort") {
                Some(n) => (n, true),
                None => (text.as_str(), false),
            };
            let n: usize = n.parse().map_err(|_| Status::invalid_argument("a count"))?;
            let mut items: Vec<Result<Msg, Status>> =
                (0..n).map(|i| Ok(msg(&i.to_string()))).collect();
            if abort {
                items.push(Err(Status::aborted(format!("stopped after {n}"))));
            }
            let stream: MsgStream = Box::pin(futures_util::stream::iter(items));
            Ok(tonic::Response::new(stream))
        })
    }
}

/// `Join`: the texts of every message, joined with `+`.
struct Join;

impl ClientStreamingService<Msg> for Join {
    type Response = Msg;
    type Future = Answer<Msg>;

    fn call(&mut self, request: tonic::Request<Streaming<Msg>>) -> Self::Future {
        Box::pin(async move {
            let mut stream = request.into_inner();
            let mut texts = Vec::new();
            while let Some(m) = stream.message().await? {
                texts.push(m.text);
            }
            Ok(tonic::Response::new(msg(&texts.join("+"))))
        })
    }
}

/// `Chat`: answers each message as it comes.
struct Chat;

impl StreamingService<Msg> for Chat {
    type Response = Msg;
    type ResponseStream = MsgStream;
    type Future = Answer<MsgStream>;

    fn call(&mut self, request: tonic::Request<Streaming<Msg>>) -> Self::Future {
        Box::pin(async move {
            let stream = request.into_inner();
            let out: MsgStream =
                Box::pin(stream.map(|m| m.map(|m| msg(&format!("re: {}", m.text)))));
            Ok(tonic::Response::new(out))
        })
    }
}

fn codec() -> ProstCodec<Msg, Msg> {
    ProstCodec::default()
}

/// A gRPC server speaking h2c on a free loopback port.
async fn grpc_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let svc = service_fn(|req: Request<Incoming>| async move {
                    let mut grpc = GrpcServer::new(codec());
                    let r = match req.uri().path() {
                        "/test.Echo/Unary" => grpc.unary(Unary, req).await,
                        "/test.Echo/Count" => grpc.server_streaming(Count, req).await,
                        "/test.Echo/Join" => grpc.client_streaming(Join, req).await,
                        "/test.Echo/Chat" => grpc.streaming(Chat, req).await,
                        _ => Status::unimplemented("no such method").into_http(),
                    };
                    Ok::<_, Infallible>(r)
                });
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
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

type Client = tonic::client::Grpc<Channel>;

async fn client_over<S>(io: S, host: &str) -> Client
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (tx, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(io))
        .await
        .expect("h2 handshake");
    tokio::spawn(conn);
    let origin: Uri = format!("http://{host}").parse().unwrap();
    tonic::client::Grpc::with_origin(Channel(tx), origin)
}

async fn h2c_client(addr: SocketAddr, host: &str) -> Client {
    let stream = bounded("connecting", TcpStream::connect(addr))
        .await
        .unwrap();
    client_over(stream, host).await
}

fn path(method: &'static str) -> PathAndQuery {
    PathAndQuery::from_static(method)
}

async fn unary(client: &mut Client, text: &str) -> Result<String, Status> {
    bounded("ready", client.ready()).await.unwrap();
    let r = bounded(
        "unary call",
        client.unary(
            tonic::Request::new(msg(text)),
            path("/test.Echo/Unary"),
            codec(),
        ),
    )
    .await?;
    Ok(r.into_inner().text)
}

/// Ingress `grpc` for `grpc.example.com` to Service `svc-grpc` (endpoint `addr`) with
/// `backend-protocol: GRPC`.
fn grpc_routes(addr: SocketAddr) -> String {
    annotate(
        &routed_to(&[("grpc", addr)]),
        &[("backend-protocol", "GRPC")],
    )
}

/// Every kind of call, through the gateway on `client`.
async fn every_kind_of_call(client: &mut Client) {
    assert_eq!(unary(client, "hello").await.unwrap(), "echo: hello");

    // A non-OK status with its message, relayed as the server sent it.
    let e = unary(client, "fail").await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert_eq!(e.message(), "nothing to echo here");

    // Server streaming; then one that ends with an error status in the trailers, after
    // its messages.
    bounded("ready", client.ready()).await.unwrap();
    let r = bounded(
        "server streaming",
        client.server_streaming(
            tonic::Request::new(msg("4")),
            path("/test.Echo/Count"),
            codec(),
        ),
    )
    .await
    .unwrap();
    let mut stream = r.into_inner();
    let mut got = Vec::new();
    while let Some(m) = bounded("next message", stream.message()).await.unwrap() {
        got.push(m.text);
    }
    assert_eq!(got, ["0", "1", "2", "3"]);
    let trailers = stream.trailers().await.unwrap().expect("trailers");
    assert_eq!(trailers.get("grpc-status").unwrap(), "0");

    bounded("ready", client.ready()).await.unwrap();
    let r = bounded(
        "server streaming",
        client.server_streaming(
            tonic::Request::new(msg("2-abort")),
            path("/test.Echo/Count"),
            codec(),
        ),
    )
    .await
    .unwrap();
    let mut stream = r.into_inner();
    assert_eq!(stream.message().await.unwrap().unwrap().text, "0");
    assert_eq!(stream.message().await.unwrap().unwrap().text, "1");
    let e = bounded("the final status", stream.message())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Aborted);
    assert_eq!(e.message(), "stopped after 2");

    // Client streaming.
    bounded("ready", client.ready()).await.unwrap();
    let parts = futures_util::stream::iter(["a", "b", "c"].map(msg));
    let r = bounded(
        "client streaming",
        client.client_streaming(tonic::Request::new(parts), path("/test.Echo/Join"), codec()),
    )
    .await
    .unwrap();
    assert_eq!(r.into_inner().text, "a+b+c");

    // Bidirectional: each answer arrives before the next message is sent.
    let (tx, rx) = tokio::sync::mpsc::channel::<Msg>(1);
    let outgoing =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) });
    bounded("ready", client.ready()).await.unwrap();
    tx.send(msg("one")).await.unwrap();
    let r = bounded(
        "bidi streaming",
        client.streaming(
            tonic::Request::new(outgoing),
            path("/test.Echo/Chat"),
            codec(),
        ),
    )
    .await
    .unwrap();
    let mut answers = r.into_inner();
    for text in ["one", "two", "three"] {
        if text != "one" {
            tx.send(msg(text)).await.unwrap();
        }
        let a = bounded("an answer", answers.message())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(a.text, format!("re: {text}"));
    }
    drop(tx);
    assert!(
        bounded("the end", answers.message())
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn grpc_calls_of_every_kind_pass_over_h2c() {
    let server = grpc_server().await;
    let (gw, _) = gateway(&grpc_routes(server));
    let mut client = h2c_client(http_addr(&gw), "grpc.example.com").await;
    every_kind_of_call(&mut client).await;
    gw.shutdown().await;
}

#[tokio::test]
async fn grpc_calls_of_every_kind_pass_over_tls_with_alpn_h2() {
    let server = grpc_server().await;
    let ca = TestCa::new();
    let leaf = ca.leaf(&["grpc.example.com"]);
    let mut yaml = tls_ingress("grpc-tls", "grpc-cert", &["grpc.example.com"], "svc-grpc");
    yaml = annotate(&yaml, &[("backend-protocol", "GRPC")]);
    yaml.push_str(&tls_secret("grpc-cert", &leaf.cert_pem, &leaf.key_pem));
    yaml.push_str(&service("svc-grpc", &[server]));
    let (gw, _) = gateway(&yaml);
    let stream = tls(
        &verifying_client(&ca.cert, &[b"h2"]),
        https_addr(&gw),
        "grpc.example.com",
    )
    .await;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let mut client = client_over(stream, "grpc.example.com").await;
    every_kind_of_call(&mut client).await;
    gw.shutdown().await;
}

#[tokio::test]
async fn grpc_timeout_is_a_deadline_answered_with_deadline_exceeded() {
    let server = grpc_server().await;
    let (gw, _) = gateway(&grpc_routes(server));
    // tonic's client only sends the header: the deadline is the gateway's to enforce.
    let mut client = h2c_client(http_addr(&gw), "grpc.example.com").await;
    bounded("ready", client.ready()).await.unwrap();
    let mut req = tonic::Request::new(msg("hang"));
    req.set_timeout(std::time::Duration::from_millis(200));
    let e = bounded(
        "a call past its deadline",
        client.unary(req, path("/test.Echo/Unary"), codec()),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::DeadlineExceeded, "{e:?}");
    // Within its deadline, a call is answered as usual.
    let mut req = tonic::Request::new(msg("quick"));
    req.set_timeout(std::time::Duration::from_secs(30));
    bounded("ready", client.ready()).await.unwrap();
    let r = bounded(
        "a call within its deadline",
        client.unary(req, path("/test.Echo/Unary"), codec()),
    )
    .await
    .unwrap();
    assert_eq!(r.into_inner().text, "echo: quick");
    gw.shutdown().await;
}

#[tokio::test]
async fn request_trailers_reach_an_http2_upstream() {
    // An upstream that answers with the trailers of the request as headers.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc = service_fn(|req: Request<Incoming>| async move {
                    let collected = req.into_body().collect().await.unwrap();
                    let trailers = collected.trailers().cloned().unwrap_or_default();
                    let mut r = Response::new(Full::new(collected.to_bytes()));
                    for (k, v) in &trailers {
                        r.headers_mut().insert(k.clone(), v.clone());
                    }
                    Ok::<_, Infallible>(r)
                });
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    let (gw, _) = gateway(&annotate(
        &routed_to(&[("t", addr)]),
        &[("backend-protocol", "HTTP2")],
    ));
    let stream = TcpStream::connect(http_addr(&gw)).await.unwrap();
    let (mut tx, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut trailers = http::HeaderMap::new();
    trailers.insert("x-checksum", "abc".parse().unwrap());
    let body = http_body_util::StreamBody::new(futures_util::stream::iter([
        Ok::<_, Infallible>(hyper::body::Frame::data(Bytes::from_static(b"payload"))),
        Ok(hyper::body::Frame::trailers(trailers)),
    ]));
    let req = Request::post("http://t.example.com/upload")
        .body(body)
        .unwrap();
    let r = bounded("a request with trailers", tx.send_request(req))
        .await
        .unwrap();
    assert_eq!(r.headers().get("x-checksum").unwrap(), "abc");
    let body = r.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"payload");
    gw.shutdown().await;
}
