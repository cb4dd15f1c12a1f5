//! WebSocket over HTTP/2 (RFC 8441): an extended CONNECT with `:protocol: websocket` from
//! an HTTP/2 client, to the usual HTTP/1.1 WebSocket upstream.
//!
//! The HTTP/2 server announces `SETTINGS_ENABLE_CONNECT_PROTOCOL`. Such a request is
//! turned into the HTTP/1.1 upgrade request an upstream expects before it goes through the
//! phases like any other (routing, access, balancing): `GET` with `Connection: upgrade`,
//! `Upgrade: websocket`, a fresh `Sec-WebSocket-Key` (RFC 8441 has none) and the client's
//! `Sec-WebSocket-Version` (13 when it sent none). The upstream's `101` becomes the `200`
//! an extended CONNECT expects, without the HTTP/1.1 handshake headers; the WebSocket
//! frames then pass unchanged between the HTTP/2 stream and the upstream connection.
//! Any other answer goes back as it is.

use std::net::SocketAddr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::header::{
    CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use http::{HeaderValue, Method, Request, Response, StatusCode, Version};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::sync::watch;

/// An extended CONNECT being proxied: the client's side of the tunnel, once answered.
pub(crate) struct ExtendedConnect {
    client: OnUpgrade,
}

/// Turns an extended CONNECT for `websocket` into an HTTP/1.1 upgrade request, in place;
/// `None` (and the request untouched) for any other request.
pub(crate) fn accept<B>(req: &mut Request<B>) -> Option<ExtendedConnect> {
    let websocket = req.method() == Method::CONNECT
        && req
            .extensions()
            .get::<hyper::ext::Protocol>()
            .is_some_and(|p| p.as_str().eq_ignore_ascii_case("websocket"));
    if !websocket {
        return None;
    }
    let client = hyper::upgrade::on(&mut *req);
    *req.method_mut() = Method::GET;
    *req.version_mut() = Version::HTTP_11;
    let headers = req.headers_mut();
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    let key = STANDARD.encode(fastrand::u128(..).to_be_bytes());
    if let Ok(key) = HeaderValue::from_str(&key) {
        headers.insert(SEC_WEBSOCKET_KEY, key);
    }
    if !headers.contains_key(SEC_WEBSOCKET_VERSION) {
        headers.insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
    }
    Some(ExtendedConnect { client })
}

// === impl ExtendedConnect ===

impl ExtendedConnect {
    /// Makes the upstream's answer one for the HTTP/2 client and, when the upstream
    /// switched protocols, starts the tunnel. `live` keeps shutdown waiting while it is
    /// open.
    pub(crate) fn answer<B>(
        self,
        response: &mut Response<B>,
        live: &watch::Sender<()>,
        peer: SocketAddr,
    ) {
        if response.status() != StatusCode::SWITCHING_PROTOCOLS {
            return;
        }
        *response.status_mut() = StatusCode::OK;
        let headers = response.headers_mut();
        for name in [CONNECTION, UPGRADE, SEC_WEBSOCKET_ACCEPT] {
            headers.remove(name);
        }
        let server = hyper::upgrade::on(&mut *response);
        let guard = live.subscribe();
        let client = self.client;
        tokio::task::spawn_local(async move {
            let _guard = guard;
            match tokio::join!(client, server) {
                (Ok(client), Ok(server)) => {
                    let (mut client, mut server) = (TokioIo::new(client), TokioIo::new(server));
                    match tokio::io::copy_bidirectional(&mut client, &mut server).await {
                        Ok((up, down)) => {
                            tracing::debug!(%peer, up, down, "WebSocket over HTTP/2 closed");
                        }
                        Err(e) => {
                            tracing::debug!(%peer, error = %e, "WebSocket over HTTP/2 failed");
                        }
                    }
                }
                (Err(e), _) | (_, Err(e)) => {
                    tracing::debug!(%peer, error = %e, "WebSocket over HTTP/2 did not open");
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_extended_connect_for_websocket_is_turned_into_an_upgrade() {
        let mut get = Request::get("http://a.test/").body(()).unwrap();
        assert!(accept(&mut get).is_none());
        let mut plain_connect = Request::connect("a.test:443").body(()).unwrap();
        assert!(accept(&mut plain_connect).is_none());
        assert_eq!(plain_connect.method(), Method::CONNECT);
        let mut ws = Request::connect("http://a.test/chat")
            .version(Version::HTTP_2)
            .extension(hyper::ext::Protocol::from_static("websocket"))
            .body(())
            .unwrap();
        assert!(accept(&mut ws).is_some());
        assert_eq!(ws.method(), Method::GET);
        assert_eq!(ws.version(), Version::HTTP_11);
        let h = ws.headers();
        assert_eq!(h[UPGRADE], "websocket");
        assert_eq!(h[CONNECTION], "upgrade");
        assert_eq!(h[SEC_WEBSOCKET_VERSION], "13");
        let key = STANDARD.decode(h[SEC_WEBSOCKET_KEY].as_bytes()).unwrap();
        assert_eq!(key.len(), 16);
    }
}
