//! Ingress semantics for the mse-ingress gateway, as pure functions over owned data.
//!
//! [`compile`] turns a [`mse_model::Snapshot`] into an immutable [`RouteTable`]: class
//! selection, host and path matching and their order, conflicts between Ingresses,
//! `spec.defaultBackend`, backend resolution (Service port -> target port -> ready
//! EndpointSlice addresses) and TLS certificate selection. Compiling never fails as a whole:
//! every problem is a [`mse_model::Diagnostic`] kept in the table, and only the part it
//! touches is left out or answers 503.
//!
//! [`RouteTable::lookup`] matches a request head (host and normalised path) and says why it
//! matched. The crate does no I/O, so a data plane of any kind can embed it.
//!
//! ```
//! use mse_model::{load_manifests, Snapshot};
//! use mse_router::{compile, CompileOptions, RequestHead, normalize_path};
//!
//! let yaml = r#"
//! apiVersion: networking.k8s.io/v1
//! kind: Ingress
//! metadata: { name: shop, namespace: default }
//! spec:
//!   ingressClassName: mse
//!   rules:
//!   - host: shop.example.com
//!     http:
//!       paths:
//!       - { path: /api, pathType: Prefix, backend: { service: { name: api, port: { number: 80 } } } }
//!       - { path: /, pathType: Prefix, backend: { service: { name: web, port: { number: 80 } } } }
//! "#;
//! let mut snapshot = Snapshot::default();
//! snapshot.extend(load_manifests(yaml, Some("shop.yaml")).objects);
//! let table = compile(&snapshot, &CompileOptions::default());
//!
//! let path = normalize_path("/api//v1/../orders");
//! assert_eq!(path, "/api/orders");
//! let m = table.lookup(&RequestHead::new("Shop.Example.com:8080", &path)).unwrap();
//! assert_eq!(m.route.path.to_string(), "Prefix /api");
//! // The Services do not exist in this snapshot: the routes are kept, answer 503, and
//! // the table says why.
//! assert!(table.diagnostics().iter().any(|d| d.code == "missing-service"));
//! ```

mod canary;
mod compile;
mod host;
pub mod lint;
mod matching;
mod path;
mod policy;
mod ring;
mod table;
mod tls;
pub mod x509;

pub use canary::{Canaries, CanaryVersion, Destination, WEIGHT_SCALE};
pub use compile::{
    CompileCache, CompileOptions, compile, compile_cached, compile_with, selected_ingresses,
};
pub use host::{HostMatch, normalize_host};
pub use matching::{Conditions, RequestHead};
/// The `proxy-body-size` of a route's policy ([`RoutePolicy::body_size`]).
pub use mse_annotations::BodySize;
/// What `upstream-hash-by` hashes ([`Balance::Hash`]).
pub use mse_annotations::HashKey;
/// A compiled set of addresses, as in [`AccessRules`]: membership by binary search.
pub use mse_annotations::IpSet;
/// The ConfigMap reference type of [`CompileOptions::configmap`]; parse it from
/// `namespace/name` with [`str::parse`].
pub use mse_annotations::ObjectRef;
/// The `SameSite` attribute of the affinity cookie ([`CookieAffinity::same_site`]).
pub use mse_annotations::SameSite;
/// The Service reference type of [`CompileOptions::default_backend`]; parse it from
/// `namespace/name[:port]` with [`str::parse`].
pub use mse_annotations::ServiceRef;
/// The gateway-wide configuration a table carries ([`RouteTable::global`]), and how it is
/// read.
pub use mse_annotations::global;
/// An address or network, and the comma list of them the IP-list annotations and flags
/// take.
pub use mse_annotations::{Cidr, cidr_list};
/// The values of the client-facing TLS annotations a [`HostTls`] holds.
pub use mse_annotations::{CipherSuite, TlsVersion, VerifyClient};
pub use path::{
    Groups, InvalidPath, PathMatch, RegexPath, decoded_request_path, normalize_path, request_path,
};
pub use policy::{
    AccessRules, AllowedOrigin, AnswerCache, AuthPolicy, Balance, BasicAuthPolicy, CacheKey,
    CacheValid, ConnectionLimits, CookieAffinity, CorsPolicy, EXTERNAL_AUTH_TIMEOUT,
    ExchangePolicy, ExternalAuthPolicy, FallbackPolicy, HashKind, HeaderOps, IngressAccess,
    KeyPart, KeyVar, LimitAnswer, LocalLimits, Location, LocationRewrite, MirrorPolicy, Rate,
    Redirect, RedirectVars, Refusal, RequestHeadPlan, RetryPolicy, RoutePolicy, SharedLimit,
    SharedLimits, StoredHash, UpstreamProtocol, UpstreamTls, parse_htpasswd,
};
pub use ring::{HashRing, POINTS_PER_ENDPOINT, hash_key};
pub use table::{
    Backend, Cluster, ClusterId, ClusterTarget, HostKind, Match, Route, RouteId, RouteTable,
};
pub use tls::{CertId, Certificate, ClientAuth, HostTls, SniEntry, SubjectPattern, TlsPolicyId};
