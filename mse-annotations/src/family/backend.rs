//! Service-scope settings: upstream protocol and TLS, load balancing, session affinity,
//! subsets, warm-up and connection pools.

use std::collections::BTreeMap;
use std::time::Duration;

use mse_model::Diagnostic;

use crate::IngressPolicy;
use crate::cx::{Cx, Secure};
use crate::family::secret;
use crate::family::tls::{cipher, colon_list, version};
use crate::family::{CipherSuite, TlsVersion};
use crate::value::{self, ObjectRef, ValueError};

/// `backend-protocol`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum BackendProtocol {
    /// HTTP/1.1 in cleartext.
    #[default]
    Http,
    /// HTTP/1.1 or HTTP/2 over TLS.
    Https,
    /// HTTP/2 in cleartext (h2c, prior knowledge): `HTTP2` or `H2C`.
    Http2,
    /// gRPC: HTTP/2 in cleartext.
    Grpc,
    /// gRPC over TLS.
    Grpcs,
}

impl BackendProtocol {
    /// Whether the upstream connection uses TLS.
    pub fn is_tls(self) -> bool {
        matches!(self, BackendProtocol::Https | BackendProtocol::Grpcs)
    }
}

/// Upstream TLS (`proxy-ssl-*`), used when the protocol is HTTPS or GRPCS.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpstreamTls {
    /// `proxy-ssl-secret`: client certificate and CA.
    pub secret: Option<ObjectRef>,
    /// `proxy-ssl-verify`.
    pub verify: bool,
    /// `proxy-ssl-name`.
    pub name: Option<String>,
    /// `proxy-ssl-server-name`: send SNI.
    pub send_sni: bool,
    /// `proxy-ssl-protocols`: the TLS versions offered (`None`: 1.2 and 1.3).
    pub protocols: Option<Vec<TlsVersion>>,
    /// `proxy-ssl-ciphers`: the suites offered (`None`: the TLS library's defaults).
    pub ciphers: Option<Vec<CipherSuite>>,
}

/// `load-balance`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum LoadBalance {
    /// Round robin.
    #[default]
    RoundRobin,
    /// Fewest requests in flight.
    LeastConn,
    /// Random choice.
    Random,
    /// Peak EWMA of response times.
    Ewma,
}

/// `upstream-hash-by`: what consistent hashing hashes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HashKey {
    /// `$remote_addr`, `$binary_remote_addr`.
    ClientIp,
    /// `$request_uri`: path and query.
    RequestUri,
    /// `$host`.
    Host,
    /// `$http_<name>`: that header (`_` read as `-`, lower case).
    Header(String),
    /// `$arg_<name>`: that query parameter.
    Query(String),
    /// `$cookie_<name>`: that cookie.
    Cookie(String),
    /// Several variables together, such as `$host$request_uri`, in order.
    Combined(Vec<HashKey>),
}

/// `affinity-mode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum AffinityMode {
    /// Sessions may move when endpoints are added.
    #[default]
    Balanced,
    /// Sessions never move while their endpoint is up.
    Persistent,
}

/// `affinity-canary-behavior`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CanaryAffinity {
    /// A client served by a canary stays on it.
    #[default]
    Sticky,
    /// Affinity is ignored when choosing a canary.
    Legacy,
}

/// The affinity cookie.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionCookie {
    /// `session-cookie-name`.
    pub name: String,
    /// `session-cookie-path`.
    pub path: String,
    /// `session-cookie-max-age`.
    pub max_age: Option<Duration>,
    /// `session-cookie-expires`: the cookie's `Expires` is this long after it is set.
    pub expires: Option<Duration>,
    /// `session-cookie-domain`.
    pub domain: Option<String>,
    /// `session-cookie-secure`: `Secure` on every answer (HTTPS requests get it anyway).
    pub secure: bool,
    /// `session-cookie-samesite`.
    pub same_site: Option<SameSite>,
    /// `session-cookie-conditional-samesite-none`: leave `SameSite=None` out for the
    /// browsers known to reject it.
    pub conditional_same_site_none: bool,
    /// `session-cookie-change-on-failure`: the cookie is pointed at the endpoint that
    /// answered when the client's own failed.
    pub change_on_failure: bool,
}

/// `session-cookie-samesite`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SameSite {
    /// `SameSite=None`.
    None,
    /// `SameSite=Lax`.
    Lax,
    /// `SameSite=Strict`.
    Strict,
}

/// Cookie session affinity (`affinity: cookie`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Affinity {
    /// `affinity-mode`.
    pub mode: AffinityMode,
    /// `affinity-canary-behavior`.
    pub canary_behavior: CanaryAffinity,
    /// The cookie.
    pub cookie: SessionCookie,
}

/// `service-subset` and `subset-labels` (MSE).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceSubset {
    /// The subset name; `None` for the base pods.
    pub name: Option<String>,
    /// `subset-labels`: a selector replacing the `opensergo.io/canary*` convention.
    pub labels: BTreeMap<String, String>,
}

/// `connection-policy-*` (MSE).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnectionPolicy {
    /// `connection-policy-tcp-max-connection`.
    pub max_connections: Option<u32>,
    /// `connection-policy-tcp-max-connection-per-endpoint`.
    pub max_connections_per_endpoint: Option<u32>,
    /// `connection-policy-http-max-request-per-connection`.
    pub max_requests_per_connection: Option<u32>,
}

/// Settings of the Service port the Ingress's routes proxy to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BackendPolicy {
    /// `backend-protocol`.
    pub protocol: BackendProtocol,
    /// `proxy-ssl-*`.
    pub tls: UpstreamTls,
    /// `load-balance` (when neither affinity nor hashing applies).
    pub load_balance: LoadBalance,
    /// `upstream-hash-by` (when affinity does not apply).
    pub hash_by: Option<HashKey>,
    /// `upstream-hash-by-subset` with `upstream-hash-by-subset-size` (default 3): the
    /// key picks a subset of that many endpoints, and the request one of them at random.
    pub hash_subset: Option<u32>,
    /// Cookie affinity.
    pub affinity: Option<Affinity>,
    /// `service-upstream`.
    pub service_upstream: bool,
    /// `service-subset`.
    pub subset: Option<ServiceSubset>,
    /// `warmup`.
    pub warmup: Option<Duration>,
    /// `connection-policy-*`.
    pub connections: ConnectionPolicy,
}

pub(crate) fn parse(cx: &mut Cx<'_>, p: &mut IngressPolicy) {
    let b = &mut p.backend;
    b.protocol = cx.get("backend-protocol", protocol).unwrap_or_default();
    upstream_tls(cx, b);
    b.service_upstream = cx.get("service-upstream", value::boolean).unwrap_or(false);

    // Affinity, then hashing, then the algorithm (Part B §1.10).
    let affinity = cx.get("affinity", |v| {
        if v.eq_ignore_ascii_case("cookie") {
            Ok(())
        } else {
            Err(ValueError::Expected("cookie (the only affinity type)"))
        }
    });
    let cookie_keys = [
        "affinity-mode",
        "affinity-canary-behavior",
        "session-cookie-name",
        "session-cookie-path",
        "session-cookie-max-age",
        "session-cookie-expires",
        "session-cookie-domain",
        "session-cookie-secure",
        "session-cookie-samesite",
        "session-cookie-conditional-samesite-none",
        "session-cookie-change-on-failure",
    ];
    if affinity.is_some() {
        let mode = cx
            .get("affinity-mode", |v| match v {
                "balanced" => Ok(AffinityMode::Balanced),
                "persistent" => Ok(AffinityMode::Persistent),
                _ => Err(ValueError::Expected("balanced or persistent")),
            })
            .unwrap_or_default();
        let canary_behavior = cx
            .get("affinity-canary-behavior", |v| match v {
                "sticky" => Ok(CanaryAffinity::Sticky),
                "legacy" => Ok(CanaryAffinity::Legacy),
                _ => Err(ValueError::Expected("sticky or legacy")),
            })
            .unwrap_or_default();
        let cookie = SessionCookie {
            name: cx
                .get("session-cookie-name", value::cookie_name)
                .unwrap_or_else(|| "INGRESSCOOKIE".to_owned()),
            path: cx
                .get("session-cookie-path", value::path)
                .unwrap_or_else(|| "/".to_owned()),
            max_age: cx.get("session-cookie-max-age", value::duration),
            expires: cx.get("session-cookie-expires", value::duration),
            domain: cx.get("session-cookie-domain", |v| {
                value::host_name(v.strip_prefix('.').unwrap_or(v))
            }),
            secure: cx
                .get("session-cookie-secure", value::boolean)
                .unwrap_or(false),
            same_site: cx.get("session-cookie-samesite", same_site),
            conditional_same_site_none: cx
                .get("session-cookie-conditional-samesite-none", value::boolean)
                .unwrap_or(false),
            change_on_failure: cx
                .get("session-cookie-change-on-failure", value::boolean)
                .unwrap_or(false),
        };
        b.affinity = Some(Affinity {
            mode,
            canary_behavior,
            cookie,
        });
    } else {
        for k in cookie_keys {
            cx.ignored(k, "affinity is not set to cookie");
        }
    }
    let hash = cx.get("upstream-hash-by", hash_key);
    let hashed = hash.is_some();
    if hash.is_some() && b.affinity.is_some() {
        cx.ignored("upstream-hash-by", "affinity: cookie takes precedence");
    } else {
        b.hash_by = hash;
    }
    hash_subset(cx, b, hashed);
    let lb = cx.get("load-balance", load_balance);
    if lb.is_some() && (b.affinity.is_some() || b.hash_by.is_some()) {
        let winner = if b.affinity.is_some() {
            "affinity: cookie"
        } else {
            "upstream-hash-by"
        };
        cx.ignored("load-balance", format!("{winner} takes precedence"));
    } else {
        b.load_balance = lb.unwrap_or_default();
    }

    // Subsets, warm-up, connection pools (MSE).
    let subset = cx.get("service-subset", |v| {
        if v.is_empty() || v == "base" {
            Ok(None)
        } else {
            value::label_value(v).map(Some)
        }
    });
    let labels = cx.get("subset-labels", subset_labels);
    match subset {
        Some(name) => {
            b.subset = Some(ServiceSubset {
                name,
                labels: labels.unwrap_or_default(),
            });
        }
        None => {
            if labels.is_some() {
                cx.ignored("subset-labels", "service-subset is not set");
            }
        }
    }
    b.warmup = cx.get("warmup", value::duration);
    let count = |v: &str| value::uint(v, 1, u32::MAX);
    b.connections = ConnectionPolicy {
        max_connections: cx.get("connection-policy-tcp-max-connection", count),
        max_connections_per_endpoint: cx
            .get("connection-policy-tcp-max-connection-per-endpoint", count),
        max_requests_per_connection: cx
            .get("connection-policy-http-max-request-per-connection", count),
    };
}

/// The subset keys, read when `upstream-hash-by` is set (`hashed`), applied when it is in
/// effect (cookie affinity wins over it).
fn hash_subset(cx: &mut Cx<'_>, b: &mut BackendPolicy, hashed: bool) {
    const KEYS: [&str; 2] = ["upstream-hash-by-subset", "upstream-hash-by-subset-size"];
    if !hashed {
        for k in KEYS {
            cx.ignored(k, "upstream-hash-by is not set");
        }
        return;
    }
    let on = cx
        .get("upstream-hash-by-subset", value::boolean)
        .unwrap_or(false);
    let size = cx.get("upstream-hash-by-subset-size", |v| value::uint(v, 1, 1024));
    if on {
        b.hash_subset = b.hash_by.as_ref().map(|_| size.unwrap_or(3));
    } else if size.is_some() {
        cx.ignored(
            "upstream-hash-by-subset-size",
            "upstream-hash-by-subset is not true",
        );
    }
}

fn upstream_tls(cx: &mut Cx<'_>, b: &mut BackendPolicy) {
    const KEYS: [&str; 6] = [
        "proxy-ssl-secret",
        "proxy-ssl-verify",
        "proxy-ssl-name",
        "proxy-ssl-server-name",
        "proxy-ssl-protocols",
        "proxy-ssl-ciphers",
    ];
    if !b.protocol.is_tls() {
        for k in KEYS {
            cx.ignored(
                k,
                "backend-protocol is not HTTPS or GRPCS, so the upstream connection has no TLS",
            );
        }
        return;
    }
    let secret = match secret(cx, "proxy-ssl-secret", true) {
        Secure::Valid(s) => Some(s),
        Secure::Absent | Secure::Invalid => None,
    };
    let verify = match cx.get_secure("proxy-ssl-verify", value::on_off) {
        Secure::Valid(v) => v,
        Secure::Absent | Secure::Invalid => false,
    };
    let name = cx.get("proxy-ssl-name", value::host_name);
    let send_sni = cx
        .get("proxy-ssl-server-name", value::on_off)
        .unwrap_or(false);
    let protocols = cx
        .get_list("proxy-ssl-protocols", value::comma_or_space_list, version)
        .map(|mut v| {
            v.retain(|v| *v >= TlsVersion::V1_2);
            v
        });
    let protocols = match protocols {
        Some(v) if v.is_empty() => {
            cx.ignored(
                "proxy-ssl-protocols",
                "TLS 1.0 and 1.1 are not available, so no version would be left; TLS 1.2 and 1.3 are offered",
            );
            None
        }
        other => other,
    };
    let ciphers = cx.get_list("proxy-ssl-ciphers", colon_list, cipher);
    if verify
        && secret.is_none()
        && !cx.has_failed("proxy-ssl-secret")
        && let Some(e) = cx.entries("proxy-ssl-verify").first().copied()
    {
        cx.report(
            Diagnostic::error(
                "incomplete-upstream-tls",
                "proxy-ssl-verify is on but proxy-ssl-secret (with the CA in ca.crt) is not set, so the upstream certificate cannot be verified; security annotations fail closed: the routes of this Ingress answer 503 until it is fixed",
            ),
            e.key,
            Some(e.value),
        );
        cx.fail(e.key, "proxy-ssl-verify without proxy-ssl-secret");
    }
    b.tls = UpstreamTls {
        secret,
        verify,
        name,
        send_sni,
        protocols,
        ciphers,
    };
}

fn protocol(v: &str) -> Result<BackendProtocol, ValueError> {
    match v.to_ascii_uppercase().as_str() {
        "HTTP" => Ok(BackendProtocol::Http),
        "HTTPS" => Ok(BackendProtocol::Https),
        "HTTP2" | "H2C" => Ok(BackendProtocol::Http2),
        "GRPC" => Ok(BackendProtocol::Grpc),
        "GRPCS" => Ok(BackendProtocol::Grpcs),
        p @ ("AJP" | "FCGI") => Err(ValueError::Invalid(format!(
            "{p} upstreams are not available: the gateway speaks HTTP/1.1, HTTP/2 and gRPC to upstreams; HTTP applies"
        ))),
        _ => Err(ValueError::Expected(
            "HTTP, HTTPS, GRPC, GRPCS, HTTP2 or H2C",
        )),
    }
}

fn load_balance(v: &str) -> Result<LoadBalance, ValueError> {
    match v.to_ascii_lowercase().as_str() {
        "round_robin" => Ok(LoadBalance::RoundRobin),
        "least_conn" | "least_request" => Ok(LoadBalance::LeastConn),
        "random" => Ok(LoadBalance::Random),
        "ewma" => Ok(LoadBalance::Ewma),
        "mcp-sse" => Err(ValueError::Invalid(
            "mcp-sse (MCP stateful sessions) is not supported yet".to_owned(),
        )),
        _ => Err(ValueError::Expected(
            "round_robin, least_conn, random or ewma",
        )),
    }
}

fn same_site(v: &str) -> Result<SameSite, ValueError> {
    match v.to_ascii_lowercase().as_str() {
        "none" => Ok(SameSite::None),
        "lax" => Ok(SameSite::Lax),
        "strict" => Ok(SameSite::Strict),
        _ => Err(ValueError::Expected("None, Lax or Strict")),
    }
}

fn hash_key(v: &str) -> Result<HashKey, ValueError> {
    if !v.starts_with('$') {
        return Err(ValueError::Expected(
            "an NGINX variable such as $remote_addr, $request_uri, $host or $http_x_user",
        ));
    }
    // Variables and the text between them; the text is the same for every request, so
    // only the variables decide where a request goes.
    let mut parts = Vec::new();
    let mut rest = v;
    while let Some(at) = rest.find('$') {
        let var = &rest[at + 1..];
        let (name, after) = match var.strip_prefix('{') {
            Some(braced) => braced
                .split_once('}')
                .ok_or(ValueError::Expected("`}` closing `${`"))?,
            None => {
                let end = var
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(var.len());
                var.split_at(end)
            }
        };
        parts.push(hash_variable(name)?);
        rest = after;
    }
    Ok(match parts.len() {
        1 => parts.remove(0),
        _ => HashKey::Combined(parts),
    })
}

fn hash_variable(var: &str) -> Result<HashKey, ValueError> {
    let named = |prefix: &str| var.strip_prefix(prefix).filter(|n| !n.is_empty());
    let key = match var {
        "remote_addr" | "binary_remote_addr" => HashKey::ClientIp,
        "request_uri" => HashKey::RequestUri,
        "host" => HashKey::Host,
        _ => {
            if let Some(h) = named("http_") {
                HashKey::Header(value::header_name(&h.replace('_', "-"))?)
            } else if let Some(q) = named("arg_") {
                HashKey::Query(value::query_name(q)?)
            } else if let Some(c) = named("cookie_") {
                HashKey::Cookie(value::cookie_name(c)?)
            } else {
                return Err(ValueError::Invalid(format!(
                    "${var} cannot be hashed: use $remote_addr, $request_uri, $host, $http_<name>, $arg_<name> or $cookie_<name>, alone or together"
                )));
            }
        }
    };
    Ok(key)
}

fn subset_labels(v: &str) -> Result<BTreeMap<String, String>, ValueError> {
    let mut out = BTreeMap::new();
    for line in value::lines(v) {
        let mut parts = line.split_whitespace();
        let (Some(k), Some(val), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(ValueError::Expected("`key value` pairs, one per line"));
        };
        out.insert(value::label_name(k)?, value::label_value(val)?);
    }
    if out.is_empty() {
        return Err(ValueError::Empty);
    }
    Ok(out)
}
