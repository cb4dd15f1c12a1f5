//! A gateway with a step of its own, added without changing `mse-proxy`: requests to the
//! routes of chosen Ingresses must carry an API token, checked in the access phase.
//!
//! ```text
//! cargo run -p mse-proxy --example custom_step -- [TOKEN]
//! ```
//!
//! An echo backend starts on loopback and the Ingress `default/shop` routes
//! `shop.localhost` to it. Requests without `X-Api-Token: TOKEN` (default `s3cret`) get
//! 401; the token is taken out before the request goes upstream, and every answer of the
//! gateway says it checked (`X-Token-Checked`). Ctrl-C shuts down gracefully.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;

use http::header::WWW_AUTHENTICATE;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use mse_model::{Snapshot, load_manifests};
use mse_proxy::echo::EchoServer;
use mse_proxy::phases::{RequestInfo, Step, Steps, Verdict};
use mse_proxy::{Gateway, GatewayHandle, Metrics, ProxyConfig, SharedTable};
use mse_router::{CompileOptions, compile};

const API_TOKEN: HeaderName = HeaderName::from_static("x-api-token");
const TOKEN_CHECKED: HeaderName = HeaderName::from_static("x-token-checked");

/// The access-phase check: the Ingresses it protects, and the token they want.
struct TokenCheck {
    /// `namespace/name` of the protected Ingresses.
    ingresses: BTreeSet<String>,
    token: Vec<u8>,
}

impl TokenCheck {
    fn protects(&self, req: &RequestInfo) -> bool {
        req.ingress().is_some_and(|i| {
            self.ingresses
                .contains(&format!("{}/{}", i.namespace, i.name))
        })
    }
}

impl Step for TokenCheck {
    fn name(&self) -> &'static str {
        "token-check"
    }

    fn access(&self, req: &RequestInfo, headers: &HeaderMap) -> Verdict {
        if !self.protects(req) {
            return Verdict::Continue;
        }
        let sent = headers.get(&API_TOKEN).map(HeaderValue::as_bytes);
        if sent.is_some_and(|t| same(t, &self.token)) {
            return Verdict::Continue;
        }
        let Verdict::Respond(mut answer) =
            Verdict::respond(StatusCode::UNAUTHORIZED, "401 Unauthorized\n")
        else {
            return Verdict::Continue;
        };
        answer.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Token realm=\"shop\""),
        );
        Verdict::Respond(answer)
    }

    fn upstream_request(&self, req: &RequestInfo, headers: &mut HeaderMap) {
        // The backend has no use for the token, and should not log it.
        if self.protects(req) {
            headers.remove(&API_TOKEN);
        }
    }

    fn response(&self, req: &RequestInfo, _status: StatusCode, headers: &mut HeaderMap) {
        if self.protects(req) {
            headers.insert(TOKEN_CHECKED, HeaderValue::from_static("1"));
        }
    }
}

/// Compares without stopping at the first difference, so the time taken says nothing
/// about how much of the token was right.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn manifests(backend: SocketAddr) -> String {
    format!(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{ name: shop, namespace: default }}\nspec:\n  ingressClassName: mse\n  rules:\n  - host: shop.localhost\n    http:\n      paths:\n      - {{ path: /, pathType: Prefix, backend: {{ service: {{ name: shop, port: {{ number: 80 }} }} }} }}\n---\napiVersion: v1\nkind: Service\nmetadata: {{ name: shop, namespace: default }}\nspec:\n  ports: [{{ name: http, port: 80, targetPort: http }}]\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{ name: shop-1, namespace: default, labels: {{ kubernetes.io/service-name: shop }} }}\naddressType: IPv4\nports: [{{ name: http, port: {} }}]\nendpoints: [{{ addresses: [\"{}\"] }}]\n",
        backend.port(),
        backend.ip()
    )
}

/// Starts the echo backend and the gateway, with the token check registered, on
/// `http_addr`.
async fn start(
    http_addr: SocketAddr,
    token: &str,
) -> Result<(GatewayHandle, EchoServer), Box<dyn std::error::Error>> {
    let backend = EchoServer::bind(SocketAddr::from(([127, 0, 0, 1], 0)), "shop").await?;
    let mut snapshot = Snapshot::default();
    snapshot.extend(load_manifests(&manifests(backend.addr()), None).objects);
    let table = SharedTable::new(Arc::new(Metrics::new()));
    table.publish(Arc::new(compile(&snapshot, &CompileOptions::default())));

    let mut steps = Steps::default();
    steps.push(TokenCheck {
        ingresses: BTreeSet::from(["default/shop".to_owned()]),
        token: token.as_bytes().to_vec(),
    });
    let mut config = ProxyConfig::default();
    config.http_addr = Some(http_addr);
    config.https_addr = None;
    config.workers = 1;
    config.steps = steps;
    Ok((Gateway::start(config, table)?, backend))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let token = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "s3cret".to_owned());
    let (gateway, backend) = start(SocketAddr::from(([127, 0, 0, 1], 8080)), &token).await?;
    if let Some(http) = gateway.http_addr() {
        println!("try: curl -i -H 'Host: shop.localhost' http://{http}/");
        println!("and: curl -i -H 'Host: shop.localhost' -H 'X-Api-Token: {token}' http://{http}/");
    }
    tokio::signal::ctrl_c().await?;
    gateway.shutdown().await;
    drop(backend);
    Ok(())
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;

    /// One request on a new connection; the whole answer as text.
    async fn request(addr: SocketAddr, host: &str, extra: &str) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let head =
            format!("GET /cart HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n");
        s.write_all(head.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        let read = s.read_to_end(&mut out);
        tokio::time::timeout(std::time::Duration::from_secs(30), read)
            .await
            .expect("the gateway answered")
            .unwrap();
        String::from_utf8_lossy(&out).into_owned()
    }

    #[tokio::test]
    async fn the_token_step_guards_the_shop_and_nothing_else() {
        let (gateway, backend) = start(SocketAddr::from(([127, 0, 0, 1], 0)), "t0ken")
            .await
            .unwrap();
        let addr = gateway.http_addr().unwrap();

        let refused = request(addr, "shop.localhost", "").await;
        assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
        assert!(
            refused.contains("www-authenticate: Token realm=\"shop\""),
            "{refused}"
        );
        assert!(refused.contains("x-token-checked: 1"), "{refused}");
        let wrong = request(addr, "shop.localhost", "X-Api-Token: t0keN\r\n").await;
        assert!(wrong.starts_with("HTTP/1.1 401"), "{wrong}");
        assert_eq!(
            backend.requests(),
            0,
            "refused requests never reach the backend"
        );

        let served = request(addr, "shop.localhost", "X-Api-Token: t0ken\r\n").await;
        assert!(served.starts_with("HTTP/1.1 200"), "{served}");
        assert!(served.contains("x-token-checked: 1"), "{served}");
        // The echo backend answers with the request it saw: no token in it.
        let body = served.to_ascii_lowercase();
        assert!(
            body.contains("/cart") && !body.contains("x-api-token"),
            "{served}"
        );
        assert_eq!(backend.requests(), 1);

        // A request no route matches is not the step's business: 404, unmarked.
        let unrouted = request(addr, "elsewhere.localhost", "").await;
        assert!(unrouted.starts_with("HTTP/1.1 404"), "{unrouted}");
        assert!(!unrouted.contains("x-token-checked"), "{unrouted}");
        gateway.shutdown().await;
    }
}
