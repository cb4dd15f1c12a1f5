//! One module per feature: its typed settings and the function that reads its keys.
//!
//! Each `parse(cx, policy)` reads its keys through the parse context (which records them as
//! read and reports bad values) and fills its part of the [`crate::IngressPolicy`].

pub(crate) mod access;
pub(crate) mod auth;
pub(crate) mod backend;
pub(crate) mod canary;
pub(crate) mod cors;
pub(crate) mod fallback;
pub(crate) mod headers;
pub(crate) mod limits;
pub(crate) mod matching;
pub(crate) mod mirror;
pub(crate) mod redirect;
pub(crate) mod retry;
pub(crate) mod rewrite;
pub(crate) mod timeout;
pub(crate) mod tls;

pub use access::AccessControl;
pub use auth::{
    Auth, AuthSecretType, BasicAuth, CacheKey, CacheValid, ExternalAuth, KeyPart, KeyVar,
};
pub use backend::{
    Affinity, AffinityMode, BackendPolicy, BackendProtocol, CanaryAffinity, ConnectionPolicy,
    HashKey, LoadBalance, SameSite, ServiceSubset, SessionCookie, UpstreamTls,
};
pub use canary::{Canary, CanaryMatch, CanaryRule, CanaryState};
pub use cors::{Allow, Cors, OriginPattern};
pub use fallback::Fallback;
pub use headers::{HeaderControl, HeaderEdits, ProxyRedirect};
pub use limits::{
    BodySize, BodyType, ClientLimits, GatewayLimit, LimitAction, Limits, RouteRateLimit,
};
pub use matching::{MatchKind, MatchRules, ValueMatch};
pub use mirror::{Mirror, MirrorTarget};
pub use redirect::{Redirect, RedirectTarget};
pub use retry::{Retry, RetryOn};
pub use rewrite::{Rewrite, RewritePart, RewriteTarget};
pub use timeout::Timeouts;
pub use tls::{
    CipherSuite, ClientCertPolicy, DEFAULT_VERIFY_DEPTH, TlsPolicy, TlsVersion, VerifyClient,
    cipher_names,
};

use crate::cx::{Cx, Secure};
use crate::value::{self, ObjectRef, ValueError};

/// Reads a Secret reference, enforcing the namespace rule: a reference to another
/// namespace is an error unless the options allow it. Returns `Secure::Invalid` (and fails
/// closed when `security`) when it cannot be used.
pub(crate) fn secret(cx: &mut Cx<'_>, name: &str, security: bool) -> Secure<ObjectRef> {
    let ns = cx.namespace().to_owned();
    let allow = cx.options.allow_cross_namespace_secrets;
    let check = move |v: &str| -> Result<ObjectRef, ValueError> {
        let r = value::secret_ref(v)?;
        match &r.namespace {
            Some(other) if *other != ns && !allow => Err(ValueError::Invalid(format!(
                "the Secret is in namespace {other:?}, but Secrets are read only from the Ingress's own namespace ({ns:?}) unless the gateway allows cross-namespace references"
            ))),
            _ => Ok(r),
        }
    };
    if security {
        cx.get_secure(name, check)
    } else {
        match cx.get(name, check) {
            Some(r) => Secure::Valid(r),
            None => Secure::Absent,
        }
    }
}
