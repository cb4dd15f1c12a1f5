//! Client-facing TLS for the Ingress's hosts: client certificates (`auth-tls-secret`,
//! `auth-tls-verify-client`, `auth-tls-verify-depth`, `auth-tls-pass-certificate-to-upstream`,
//! `auth-tls-error-page`), `ssl-ciphers` (and `ssl-cipher`), `tls-min/max-protocol-version`,
//! and `server-alias`.

use mse_model::Diagnostic;

use crate::IngressPolicy;
use crate::cx::{Cx, Secure};
use crate::family::secret;
use crate::value::{self, ObjectRef, ValueError};

/// A TLS cipher suite the gateway's TLS library (rustls) offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum CipherSuite {
    /// TLS 1.3 `TLS_AES_128_GCM_SHA256`.
    Tls13Aes128GcmSha256,
    /// TLS 1.3 `TLS_AES_256_GCM_SHA384`.
    Tls13Aes256GcmSha384,
    /// TLS 1.3 `TLS_CHACHA20_POLY1305_SHA256`.
    Tls13Chacha20Poly1305Sha256,
    /// `ECDHE-ECDSA-AES128-GCM-SHA256`.
    EcdheEcdsaAes128GcmSha256,
    /// `ECDHE-ECDSA-AES256-GCM-SHA384`.
    EcdheEcdsaAes256GcmSha384,
    /// `ECDHE-ECDSA-CHACHA20-POLY1305`.
    EcdheEcdsaChacha20Poly1305,
    /// `ECDHE-RSA-AES128-GCM-SHA256`.
    EcdheRsaAes128GcmSha256,
    /// `ECDHE-RSA-AES256-GCM-SHA384`.
    EcdheRsaAes256GcmSha384,
    /// `ECDHE-RSA-CHACHA20-POLY1305`.
    EcdheRsaChacha20Poly1305,
}

impl CipherSuite {
    const ALL: [(&'static str, CipherSuite); 9] = [
        ("TLS_AES_128_GCM_SHA256", CipherSuite::Tls13Aes128GcmSha256),
        ("TLS_AES_256_GCM_SHA384", CipherSuite::Tls13Aes256GcmSha384),
        (
            "TLS_CHACHA20_POLY1305_SHA256",
            CipherSuite::Tls13Chacha20Poly1305Sha256,
        ),
        (
            "ECDHE-ECDSA-AES128-GCM-SHA256",
            CipherSuite::EcdheEcdsaAes128GcmSha256,
        ),
        (
            "ECDHE-ECDSA-AES256-GCM-SHA384",
            CipherSuite::EcdheEcdsaAes256GcmSha384,
        ),
        (
            "ECDHE-ECDSA-CHACHA20-POLY1305",
            CipherSuite::EcdheEcdsaChacha20Poly1305,
        ),
        (
            "ECDHE-RSA-AES128-GCM-SHA256",
            CipherSuite::EcdheRsaAes128GcmSha256,
        ),
        (
            "ECDHE-RSA-AES256-GCM-SHA384",
            CipherSuite::EcdheRsaAes256GcmSha384,
        ),
        (
            "ECDHE-RSA-CHACHA20-POLY1305",
            CipherSuite::EcdheRsaChacha20Poly1305,
        ),
    ];

    /// The OpenSSL name (what ingress-nginx users write).
    pub fn openssl_name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, s)| *s == self)
            .map_or("", |(n, _)| n)
    }
}

/// A TLS protocol version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TlsVersion {
    /// TLS 1.0 (not available: the floor is 1.2).
    V1_0,
    /// TLS 1.1 (not available: the floor is 1.2).
    V1_1,
    /// TLS 1.2.
    V1_2,
    /// TLS 1.3.
    V1_3,
}

/// `auth-tls-verify-client`: whether client certificates are asked for and must verify.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum VerifyClient {
    /// `on`: a certificate that chains to the CA is required (the default).
    #[default]
    On,
    /// `off`: no certificate is asked for.
    Off,
    /// `optional`: a certificate is asked for; when one is sent it must verify.
    Optional,
    /// `optional_no_ca`: a certificate is asked for and passed on whether or not it
    /// verifies.
    OptionalNoCa,
}

impl VerifyClient {
    /// The value as written in the annotation.
    pub fn as_str(self) -> &'static str {
        match self {
            VerifyClient::On => "on",
            VerifyClient::Off => "off",
            VerifyClient::Optional => "optional",
            VerifyClient::OptionalNoCa => "optional_no_ca",
        }
    }
}

/// The default of `auth-tls-verify-depth`, as in ingress-nginx.
pub const DEFAULT_VERIFY_DEPTH: u8 = 1;

/// Client certificate settings of a host (`auth-tls-*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientCertPolicy {
    /// `auth-tls-secret`: the Secret whose `ca.crt` (and optional `ca.crl`) verifies
    /// client certificates.
    pub secret: ObjectRef,
    /// `auth-tls-verify-client` (`on`).
    pub verify: VerifyClient,
    /// `auth-tls-verify-depth` (1): the most CA certificates above the client's own.
    pub depth: u8,
    /// `auth-tls-pass-certificate-to-upstream` (false): the client certificate goes
    /// upstream in `ssl-client-cert`.
    pub pass_certificate: bool,
    /// `auth-tls-error-page`: where a client without a valid certificate is redirected
    /// instead of getting 400.
    pub error_page: Option<String>,
    /// `auth-tls-match-cn`: a regular expression (starting `CN=`) the certificate's
    /// subject must match, else 403.
    pub match_cn: Option<String>,
}

/// Client-facing TLS settings of the Ingress's hosts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsPolicy {
    /// `auth-tls-secret`: the CA that client certificates must chain to.
    pub client_ca: Option<ObjectRef>,
    /// The `auth-tls-*` settings, when `auth-tls-secret` is valid.
    pub client_cert: Option<ClientCertPolicy>,
    /// `ssl-ciphers` / `ssl-cipher`; `None` means the TLS library's defaults.
    pub ciphers: Option<Vec<CipherSuite>>,
    /// `tls-min-protocol-version` as written (the gateway never goes below 1.2).
    pub min_version: Option<TlsVersion>,
    /// `tls-max-protocol-version`.
    pub max_version: Option<TlsVersion>,
    /// `server-alias`: more host names served like the Ingress's hosts.
    pub aliases: Vec<String>,
}

pub(crate) fn parse(cx: &mut Cx<'_>, p: &mut IngressPolicy) {
    let t = &mut p.tls;
    let ca = secret(cx, "auth-tls-secret", true);
    let absent = matches!(ca, Secure::Absent);
    t.client_ca = match ca {
        Secure::Valid(s) => Some(s),
        Secure::Absent | Secure::Invalid => None,
    };
    t.client_cert = client_cert(cx, t.client_ca.clone());
    if absent {
        for key in CLIENT_CERT_KEYS {
            cx.ignored(key, "auth-tls-secret is not set");
        }
    }
    let plural = cx.get_list("ssl-ciphers", colon_list, cipher);
    let singular = cx.get_list("ssl-cipher", colon_list, cipher);
    t.ciphers = match (plural, singular) {
        (Some(c), singular) => {
            if singular.is_some() {
                cx.ignored("ssl-cipher", "ssl-ciphers is set and takes precedence");
            }
            Some(c)
        }
        (None, s) => s,
    };
    t.min_version = cx.get("tls-min-protocol-version", version);
    if matches!(t.min_version, Some(TlsVersion::V1_0 | TlsVersion::V1_1)) {
        for e in cx.entries("tls-min-protocol-version") {
            cx.report(
                Diagnostic::info(
                    "different-semantics",
                    "TLS 1.0 and 1.1 are not available: the lowest version offered is TLS 1.2",
                ),
                e.key,
                Some(e.value),
            );
        }
    }
    t.max_version = cx.get("tls-max-protocol-version", |v| match version(v)? {
        TlsVersion::V1_0 | TlsVersion::V1_1 => Err(ValueError::Invalid(
            "TLS 1.0 and 1.1 are not available, so no version would be left".to_owned(),
        )),
        ok => Ok(ok),
    });
    if let (Some(min), Some(max)) = (t.min_version, t.max_version)
        && min > max
    {
        cx.ignored(
            "tls-min-protocol-version",
            "it is above tls-max-protocol-version; both defaults apply",
        );
        cx.ignored(
            "tls-max-protocol-version",
            "it is below tls-min-protocol-version; both defaults apply",
        );
        t.min_version = None;
        t.max_version = None;
    }
    t.aliases = cx
        .get_list(
            "server-alias",
            value::comma_or_space_list,
            value::host_pattern,
        )
        .unwrap_or_default();
}

/// The `auth-tls-*` keys that take effect only with `auth-tls-secret`.
const CLIENT_CERT_KEYS: [&str; 5] = [
    "auth-tls-verify-client",
    "auth-tls-verify-depth",
    "auth-tls-pass-certificate-to-upstream",
    "auth-tls-error-page",
    "auth-tls-match-cn",
];

/// The `auth-tls-*` keys besides the Secret. A bad `auth-tls-verify-client` or
/// `auth-tls-verify-depth` fails closed (they restrict who is served); a bad
/// `auth-tls-error-page` only loses the redirect (the client gets 400 instead). A bad
/// `auth-tls-match-cn` fails closed too.
fn client_cert(cx: &mut Cx<'_>, secret: Option<ObjectRef>) -> Option<ClientCertPolicy> {
    let verify = cx.get_secure("auth-tls-verify-client", verify_client);
    let depth = cx.get_secure("auth-tls-verify-depth", |v| {
        value::uint(v, 1, 16).map(|d| d as u8)
    });
    let pass = cx.get("auth-tls-pass-certificate-to-upstream", value::boolean);
    let error_page = cx.get("auth-tls-error-page", |v| {
        let u = value::url(v)?;
        if !u.is_literal() {
            return Err(ValueError::Invalid(
                "request variables are not supported here".to_owned(),
            ));
        }
        Ok(u.raw)
    });
    let match_cn = cx.get_secure("auth-tls-match-cn", |v| {
        if !v.starts_with("CN=") {
            return Err(ValueError::Expected(
                "a regular expression starting with CN=",
            ));
        }
        value::regex(v).map(|_| v.to_owned())
    });
    let secret = secret?;
    let mut policy = ClientCertPolicy {
        secret,
        verify: VerifyClient::On,
        depth: DEFAULT_VERIFY_DEPTH,
        pass_certificate: pass.unwrap_or(false),
        error_page,
        match_cn: None,
    };
    if let Secure::Valid(m) = match_cn {
        policy.match_cn = Some(m);
    }
    if let Secure::Valid(v) = verify {
        policy.verify = v;
    }
    if let Secure::Valid(d) = depth {
        policy.depth = d;
    }
    Some(policy)
}

fn verify_client(v: &str) -> Result<VerifyClient, ValueError> {
    match v {
        "on" => Ok(VerifyClient::On),
        "off" => Ok(VerifyClient::Off),
        "optional" => Ok(VerifyClient::Optional),
        "optional_no_ca" => Ok(VerifyClient::OptionalNoCa),
        _ => Err(ValueError::Expected("on, off, optional or optional_no_ca")),
    }
}

/// The suites of a colon-separated list of names (the global `ssl-ciphers`). Every name
/// must be one the gateway offers: the error names the others.
pub fn cipher_names(v: &str) -> Result<Vec<CipherSuite>, ValueError> {
    let mut out = Vec::new();
    let mut unknown = Vec::new();
    for name in colon_list(v) {
        match cipher(name) {
            Ok(c) => out.push(c),
            Err(_) => unknown.push(name),
        }
    }
    if !unknown.is_empty() {
        let verb = if unknown.len() == 1 { "is" } else { "are" };
        return Err(ValueError::Invalid(format!(
            "{} {verb} not offered by the gateway's TLS library, which has {}",
            unknown.join(", "),
            CipherSuite::ALL
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    if out.is_empty() {
        return Err(ValueError::Empty);
    }
    Ok(out)
}

pub(crate) fn colon_list(v: &str) -> Vec<&str> {
    v.split(':')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

pub(crate) fn cipher(v: &str) -> Result<CipherSuite, ValueError> {
    if let Some((_, s)) = CipherSuite::ALL.iter().find(|(n, _)| *n == v) {
        return Ok(*s);
    }
    let is_keyword = v.starts_with(['!', '+', '-', '@'])
        || matches!(
            v,
            "ALL"
                | "DEFAULT"
                | "HIGH"
                | "MEDIUM"
                | "LOW"
                | "COMPLEMENTOFDEFAULT"
                | "aNULL"
                | "eNULL"
        );
    if is_keyword {
        return Err(ValueError::Invalid(
            "cipher-string keywords and exclusions (HIGH, !aNULL, ...) are not supported; list suite names".to_owned(),
        ));
    }
    Err(ValueError::Invalid(
        "not offered by the gateway's TLS library (rustls offers ECDHE with AES-GCM or CHACHA20-POLY1305, and the TLS 1.3 suites)".to_owned(),
    ))
}

pub(crate) fn version(v: &str) -> Result<TlsVersion, ValueError> {
    match v.to_ascii_lowercase().as_str() {
        "tlsv1.0" | "tlsv1" => Ok(TlsVersion::V1_0),
        "tlsv1.1" => Ok(TlsVersion::V1_1),
        "tlsv1.2" => Ok(TlsVersion::V1_2),
        "tlsv1.3" => Ok(TlsVersion::V1_3),
        _ => Err(ValueError::Expected("TLSv1.0, TLSv1.1, TLSv1.2 or TLSv1.3")),
    }
}
