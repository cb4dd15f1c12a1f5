//! Annotations for the mse-ingress gateway: every key typed and diagnosed.
//!
//! In the crate graph this sits between the pure model and the router:
//! `mse-model` -> **`mse-annotations`** -> `mse-router`. It turns the annotations of one
//! Ingress into a typed [`IngressPolicy`] plus every [`mse_model::Diagnostic`] ([`parse`]),
//! from one registry of every key ([`KEYS`]) that also renders the support matrix
//! ([`support_matrix`], `docs/annotations.md`) and classifies keys for the migration report
//! ([`Migration`]).
//!
//! Every key is accepted under three prefixes, [`PREFIXES`], in that order of precedence:
//! `nginx.ingress.kubernetes.io/`, `mse.ingress.kubernetes.io/` and `higress.io/`. The first
//! *valid* value wins; an invalid value under any prefix is a diagnostic. A bad value of an
//! ordinary key falls back to its default; a bad security key (auth, IP lists, TLS secrets)
//! fails closed ([`IngressPolicy::fail_closed`]); `canary` that is not a boolean leaves the
//! Ingress out ([`IngressPolicy::is_excluded`]).
//!
//! ```
//! use std::collections::BTreeMap;
//! use mse_annotations::{parse, LoadBalance};
//! use mse_model::{Kind, ObjectKey};
//!
//! let mut a = BTreeMap::new();
//! a.insert("nginx.ingress.kubernetes.io/load-balance".to_owned(), "fastest".to_owned());
//! a.insert("higress.io/load-balance".to_owned(), "least_conn".to_owned());
//! a.insert("nginx.ingress.kubernetes.io/whitelist-source-range".to_owned(), "10.0.0.0/33".to_owned());
//! let parsed = parse(&ObjectKey::new(Kind::Ingress, "default", "shop"), None, &a);
//!
//! // The first valid value wins, and the invalid one is still reported.
//! assert_eq!(parsed.value.backend.load_balance, LoadBalance::LeastConn);
//! assert_eq!(parsed.diagnostics[0].code, "invalid-value");
//! // A bad allow list never opens the routes: they answer 503.
//! assert!(parsed.value.fails_closed());
//! ```
//!
//! [`lookup`] is the plain, unvalidated lookup across prefixes.
//!
//! [`global`] reads the gateway-wide configuration (the ingress-nginx ConfigMap, Higress's
//! `higress-config`, the linked `MseIngressConfig` and explicit flags) into one typed
//! [`global::GlobalConfig`], from a registry of its own that also renders
//! `docs/configuration.md`.

mod cidr;
mod cx;
mod family;
pub mod global;
mod ipset;
mod keys;
mod matrix;
mod migration;
mod parse;
mod prefix;
mod registry;
pub mod value;

pub use cidr::{Cidr, cidr_list};
pub use family::*;
pub use ipset::IpSet;
pub use keys::{Compat, Group, KEYS, KeySpec, Pattern, Scope, Support, spec, suggest};
pub use matrix::support_matrix;
pub use migration::{Class, ClassTotal, Migration, MigrationRow, classify};
pub use parse::{FailClosed, IngressPolicy, ParseOptions, Parsed, parse, parse_with};
pub use prefix::{
    Found, INGRESS_CLASS, IS_DEFAULT_CLASS, PREFIXES, RESERVED_PREFIXES, UNREAD_PREFIXES, lookup,
    parse_bool, split_key,
};
pub use value::{ObjectRef, ServiceRef, UrlPart, UrlTemplate, UrlVar, ValueError};
