//! External authentication (`auth-url`), as ingress-nginx's `auth_request` does it: before
//! a request goes upstream, a subrequest without body goes to the authentication
//! service, carrying the client's headers and what the request was
//! (`X-Original-URL`, `X-Original-URI`, `X-Original-Method`, `X-Forwarded-*`,
//! `X-Real-IP`, `X-Auth-Request-Redirect`).
//!
//! - 2xx: the request goes on, with the `auth-response-headers` of the answer set on it,
//!   and the answer's `Set-Cookie` goes to the client with the upstream's answer when that
//!   is 2xx or 3xx (any, with `auth-always-set-cookie`);
//! - 401: the client gets 401 with the answer's `WWW-Authenticate`, or, with
//!   `auth-signin`, a 302 to the sign-in URL (`rd` says where to come back to);
//! - 403: the client gets 403;
//! - any other status: 500, as nginx answers;
//! - no answer (refused, reset, a certificate that does not verify, not within the
//!   timeout, no endpoint): 503. The request never goes through unchecked.
//!
//! With `auth-cache-key`, each worker remembers answers (status and the headers above)
//! for the statuses and times of `auth-cache-duration` (default `200 202 401 5m`), under
//! an HMAC of the Ingress, the auth-url and the key filled in for the request, at most
//! [`ANSWERS`] of them. The key decides who shares an answer, as in ingress-nginx: it
//! should name what identifies the client (`$http_authorization`, a session cookie).
//!
//! An `http` subrequest uses the worker's upstream pool, so connections to the service
//! are kept alive between requests; an `https` one goes through [`super::auth_tls`].

use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue, LOCATION, SET_COOKIE, WWW_AUTHENTICATE};
use http::uri::PathAndQuery;
use http::{HeaderMap, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Empty};
use mse_router::{AnswerCache, ClusterTarget, ExternalAuthPolicy, KeyPart, KeyVar, RedirectVars};

use crate::error::{Chain, ProxyError};
use crate::policy::auth_tls;
use crate::policy::basic_auth;
use crate::policy::remembered::{Key, Remembered, keyed};
use crate::proxy::Worker;
use crate::upstream::{Sent, Upstream};

/// The answer body read (and dropped) at most, to keep the connection; a longer one closes
/// it.
const MAX_BODY: usize = 64 * 1024;

/// Answers remembered at most per worker (`auth-cache-key`).
pub(crate) const ANSWERS: usize = 4096;

/// A worker's remembered answers: status and the headers the request can get.
pub(crate) type Answers = Remembered<Rc<(StatusCode, HeaderMap)>>;

/// The `Set-Cookie` values of an authentication answer, for the client's answer.
pub(crate) struct AuthCookies {
    values: Vec<HeaderValue>,
    /// `auth-always-set-cookie`.
    always: bool,
}

// === impl AuthCookies ===

impl AuthCookies {
    /// The cookies of `headers`, if it has any.
    fn of(policy: &ExternalAuthPolicy, headers: &HeaderMap) -> Option<Box<Self>> {
        let values: Vec<HeaderValue> = headers.get_all(SET_COOKIE).iter().cloned().collect();
        (!values.is_empty()).then(|| {
            Box::new(Self {
                values,
                always: policy.always_set_cookie,
            })
        })
    }

    /// Whether an answer with `status` gets them: with `auth-always-set-cookie` any,
    /// else those nginx's `add_header` applies to (2xx and 3xx but 300 and 305).
    pub(crate) fn apply_to(&self, status: StatusCode) -> bool {
        self.always
            || matches!(
                status.as_u16(),
                200 | 201 | 204 | 206 | 301 | 302 | 303 | 304 | 307 | 308
            )
    }

    /// Adds them to `headers`, beside any of the answer's own.
    pub(crate) fn append_to(&self, headers: &mut HeaderMap) {
        for v in &self.values {
            headers.append(SET_COOKIE, v.clone());
        }
    }
}

/// What the authentication service decided.
pub(crate) enum Outcome {
    /// Go on, with these headers set on the upstream request, in place of the client's of
    /// the same names (an empty value only takes the client's out), and these cookies for
    /// the client's answer.
    Pass(HeaderMap, Option<Box<AuthCookies>>),
    /// The client gets this answer (401, 403, the sign-in redirect).
    Answer(Response<Bytes>),
}

/// What of the client's request the subrequest describes.
pub(crate) struct Original<'a> {
    pub(crate) tls: bool,
    /// The host as received (with port, if given).
    pub(crate) host: &'a str,
    pub(crate) path: &'a str,
    pub(crate) client: IpAddr,
}

/// Asks the authentication service about `req`.
pub(crate) async fn check<B>(
    worker: &Worker,
    policy: &ExternalAuthPolicy,
    req: &Request<B>,
    orig: &Original<'_>,
) -> Result<Outcome, ProxyError> {
    let request_uri = req.uri().path_and_query().map_or("/", PathAndQuery::as_str);
    let scheme = if orig.tls { "https" } else { "http" };
    let vars = RedirectVars {
        scheme,
        host: orig.host,
        request_uri,
        uri: orig.path,
    };
    let url: Uri = vars
        .render(&policy.url)
        .parse()
        .map_err(|_| unavailable("the auth-url is not a valid URL for this request"))?;
    let https = match url.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => return Err(unavailable("the auth-url is not an http or https URL")),
    };
    // `auth-cache-key`: a remembered answer, when there is one.
    let remember = policy
        .cache
        .as_ref()
        .map(|c| (c, answer_key(c, policy, req, orig, &vars)));
    let now = Instant::now();
    if let Some((_, key)) = &remember
        && let Some(hit) = worker.auth_answers.get(key, now)
    {
        return decide(policy, (hit.0, hit.1.clone()), &vars);
    }
    let upstream = upstream(policy, &url, https)?;
    let sub = subrequest(policy, req, orig, &url, scheme, request_uri)?;
    let run = async {
        if https {
            let provider = worker.table.provider();
            let host = url.host().unwrap_or_default();
            let host = host.trim_start_matches('[').trim_end_matches(']');
            auth_tls::exchange(&worker.auth_tls, provider, &upstream, host, sub, MAX_BODY)
                .await
                .map_err(|e| unavailable(&e))
        } else {
            exchange(worker, &upstream, sub).await
        }
    };
    let (status, headers) = tokio::time::timeout(policy.timeout, run)
        .await
        .map_err(|_| unavailable(&format!("{upstream} sent no answer in time")))??;
    let headers = kept(policy, headers);
    if let Some((cache, key)) = remember
        && let Some(ttl) = cache.ttl(status.as_u16())
    {
        let kept = Rc::new((status, headers.clone()));
        worker.auth_answers.insert(key, kept, now + ttl, now);
    }
    decide(policy, (status, headers), &vars)
}

/// Where the subrequest goes: the Service's endpoints when the URL named one, else the
/// URL's host.
fn upstream(policy: &ExternalAuthPolicy, url: &Uri, https: bool) -> Result<Upstream, ProxyError> {
    match &policy.target {
        Some(ClusterTarget::Endpoints(addrs)) => match addrs.len() {
            0 => Err(unavailable("the auth-url Service has no ready endpoint")),
            n => Ok(Upstream::Addr(addrs[fastrand::usize(..n)])),
        },
        Some(ClusterTarget::ExternalName { host, port }) => Ok(Upstream::Name {
            host: Arc::from(&**host),
            port: *port,
        }),
        None => {
            let host = url.host().unwrap_or_default();
            let port = url.port_u16().unwrap_or(if https { 443 } else { 80 });
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            Ok(match bare.parse::<IpAddr>() {
                Ok(ip) => Upstream::Addr(SocketAddr::new(ip, port)),
                Err(_) => Upstream::Name {
                    host: Arc::from(host),
                    port,
                },
            })
        }
    }
}

/// Client headers that are not passed to the authentication service: hop-by-hop ones,
/// the body's framing, and those the gateway sets itself.
const NOT_PASSED: [HeaderName; 10] = [
    header::HOST,
    header::CONTENT_LENGTH,
    header::TRANSFER_ENCODING,
    header::CONNECTION,
    header::TE,
    header::TRAILER,
    header::UPGRADE,
    header::EXPECT,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
];

/// The subrequest: the auth-url's method and target, the client's headers (never the
/// body) and those describing the original request.
fn subrequest<B>(
    policy: &ExternalAuthPolicy,
    req: &Request<B>,
    orig: &Original<'_>,
    url: &Uri,
    scheme: &str,
    request_uri: &str,
) -> Result<Request<Empty<Bytes>>, ProxyError> {
    let mut sub = Request::new(Empty::new());
    *sub.method_mut() = policy.method.clone();
    *sub.uri_mut() = url
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"))
        .into();
    let headers = sub.headers_mut();
    for (name, value) in req.headers() {
        if !NOT_PASSED.contains(name) && !name.as_str().starts_with("x-forwarded-") {
            headers.append(name.clone(), value.clone());
        }
    }
    let value = |s: &str| {
        HeaderValue::from_str(s)
            .map_err(|_| unavailable("the request cannot be described in headers"))
    };
    let authority = url.authority().map_or("", |a| a.as_str());
    let client = orig.client.to_string();
    let set: [(&'static str, String); 10] = [
        ("host", authority.to_owned()),
        (
            "x-original-url",
            format!("{scheme}://{}{request_uri}", orig.host),
        ),
        ("x-original-uri", request_uri.to_owned()),
        ("x-original-method", req.method().as_str().to_owned()),
        ("x-sent-from", "nginx-ingress-controller".to_owned()),
        ("x-real-ip", client.clone()),
        ("x-forwarded-for", client),
        ("x-forwarded-host", orig.host.to_owned()),
        ("x-forwarded-proto", scheme.to_owned()),
        ("x-scheme", scheme.to_owned()),
    ];
    for (name, v) in set {
        headers.insert(HeaderName::from_static(name), value(&v)?);
    }
    let redirect = match &policy.request_redirect {
        Some(v) => v.clone(),
        None => value(request_uri)?,
    };
    headers.insert(HeaderName::from_static("x-auth-request-redirect"), redirect);
    Ok(sub)
}

/// The answer's status and headers; its body is read and dropped.
async fn exchange(
    worker: &Worker,
    upstream: &Upstream,
    mut sub: Request<Empty<Bytes>>,
) -> Result<(StatusCode, HeaderMap), ProxyError> {
    let sent = worker
        .pool
        .send_plain(
            upstream,
            &mut sub,
            None,
            &worker.metrics,
            worker.pool.waits(None),
        )
        .await
        .map_err(|e| unavailable(&Chain(&e).to_string()))?;
    let Sent::Plain { mut head, conn, .. } = sent else {
        return Err(unavailable("unexpected upgrade"));
    };
    let mut headers = std::mem::take(&mut head.headers);
    if let Some(raw) = head.raw.take() {
        raw.into_map(&mut headers);
    }
    let mut body = head.body(conn);
    let mut read = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| unavailable(&e.to_string()))?;
        read += frame.data_ref().map_or(0, Bytes::len);
        if read > MAX_BODY {
            return Ok((head.status, headers));
        }
    }
    if let Some(conn) = body.take_reusable() {
        worker.pool.put(conn);
    }
    Ok((head.status, headers))
}

/// Of the answer's headers, those the client's request or answer can get:
/// `auth-response-headers`, `WWW-Authenticate` and `Set-Cookie`.
fn kept(policy: &ExternalAuthPolicy, mut headers: HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for name in policy
        .response_headers
        .iter()
        .chain([&WWW_AUTHENTICATE, &SET_COOKIE])
    {
        if let http::header::Entry::Occupied(e) = headers.entry(name) {
            let (name, values) = e.remove_entry_mult();
            for v in values {
                out.append(name.clone(), v);
            }
        }
    }
    out
}

/// The key an answer is remembered under: the Ingress, the auth-url and the
/// `auth-cache-key` filled in for this request.
fn answer_key<B>(
    cache: &AnswerCache,
    policy: &ExternalAuthPolicy,
    req: &Request<B>,
    orig: &Original<'_>,
    vars: &RedirectVars<'_>,
) -> Key {
    let mut filled = String::new();
    for part in &cache.key.parts {
        match part {
            KeyPart::Text(t) => filled.push_str(t),
            KeyPart::Var(v) => fill(&mut filled, v, req, orig, vars),
        }
    }
    keyed(&[
        cache.scope.as_bytes(),
        policy.url.raw.as_bytes(),
        filled.as_bytes(),
    ])
}

/// One `auth-cache-key` variable's value for this request (empty when absent).
fn fill<B>(
    out: &mut String,
    var: &KeyVar,
    req: &Request<B>,
    orig: &Original<'_>,
    vars: &RedirectVars<'_>,
) {
    let headers = req.headers();
    let text = |name: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",")
    };
    let value = match var {
        KeyVar::RemoteUser => basic_auth::user(headers).unwrap_or_default(),
        KeyVar::RemoteAddr => orig.client.to_string(),
        KeyVar::Host => orig.host.to_owned(),
        KeyVar::RequestUri => vars.request_uri.to_owned(),
        KeyVar::Uri => vars.uri.to_owned(),
        KeyVar::Scheme => vars.scheme.to_owned(),
        KeyVar::Method => req.method().as_str().to_owned(),
        KeyVar::Header(name) => text(name),
        KeyVar::Cookie(name) => pair(&text("cookie"), ';', name),
        KeyVar::Arg(name) => pair(req.uri().query().unwrap_or(""), '&', name),
        // A variable this build does not know: a distinct marker, never an empty match.
        _ => "\0unknown".to_owned(),
    };
    // Length-prefixed, so that two variables never run into each other.
    out.push_str(&format!("{}:{value}", value.len()));
}

/// The value of `name` in `a=1<sep>b=2` lists (cookies, query strings), as written.
fn pair(list: &str, sep: char, name: &str) -> String {
    list.split(sep)
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
        .unwrap_or_default()
}

/// The answer's meaning for the client's request.
fn decide(
    policy: &ExternalAuthPolicy,
    (status, headers): (StatusCode, HeaderMap),
    vars: &RedirectVars<'_>,
) -> Result<Outcome, ProxyError> {
    let cookies = AuthCookies::of(policy, &headers);
    if status.is_success() {
        let mut pass = HeaderMap::new();
        for name in &policy.response_headers {
            let mut values = headers.get_all(name).iter().peekable();
            if values.peek().is_none() {
                // Absent from the answer: the client's own header of that name is taken
                // out all the same (nginx's `proxy_set_header` with an empty value), so
                // that a client cannot claim what the service did not say.
                pass.append(name.clone(), HeaderValue::from_static(""));
            }
            for v in values {
                pass.append(name.clone(), v.clone());
            }
        }
        return Ok(Outcome::Pass(pass, cookies));
    }
    let answer = match status {
        StatusCode::UNAUTHORIZED => match &policy.signin {
            Some(signin) => {
                let location = HeaderValue::from_str(&vars.render(signin))
                    .map_err(|_| unavailable("the auth-signin URL is not a valid header value"))?;
                let mut r = local(StatusCode::FOUND, "302 Found\n");
                r.headers_mut().insert(LOCATION, location);
                r
            }
            None => {
                let mut r = local(status, "401 Unauthorized\n");
                for v in headers.get_all(WWW_AUTHENTICATE) {
                    r.headers_mut().append(WWW_AUTHENTICATE, v.clone());
                }
                r
            }
        },
        StatusCode::FORBIDDEN => local(status, "403 Forbidden\n"),
        other => return Err(ProxyError::AuthAnswer { status: other }),
    };
    let mut answer = answer;
    if let Some(c) = cookies.filter(|c| c.apply_to(answer.status())) {
        c.append_to(answer.headers_mut());
    }
    Ok(Outcome::Answer(answer))
}

fn local(status: StatusCode, text: &'static str) -> Response<Bytes> {
    let mut r = Response::new(Bytes::from_static(text.as_bytes()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r
}

fn unavailable(reason: &str) -> ProxyError {
    ProxyError::AuthUnavailable {
        reason: reason.to_owned(),
    }
}
