//! The TLS handshake policy of each host: client certificates (`auth-tls-*`), versions
//! and cipher suites. Like ingress-nginx's server-level settings, a host's policy comes
//! from the oldest Ingress that sets it for the host, and covers every route of the host.
//! The client-certificate part and the version/cipher part are taken separately.

use std::collections::BTreeMap;
use std::sync::Arc;

use mse_annotations::global::TlsSettings;
use mse_annotations::{CipherSuite, IngressPolicy, TlsVersion};
use mse_model::{Diagnostic, Kind, ObjectKey};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer};

use super::checks::annotation_key;
use super::{Compiler, HostOrder, Selected};
use crate::host::HostMatch;
use crate::tls::{ClientAuth, HostTls, SubjectPattern, TlsPolicyId, TlsTable};

/// Versions and cipher suites as an Ingress sets them (`None`: the global setting).
type Protocol = (
    Option<TlsVersion>,
    Option<TlsVersion>,
    Option<Vec<CipherSuite>>,
);

/// What the oldest Ingresses set for one host, and which Ingress set it.
#[derive(Default)]
pub(super) struct HostParts {
    client: Option<(Arc<ClientAuth>, ObjectKey)>,
    protocol: Option<(Protocol, ObjectKey)>,
}

// === impl Compiler ===

impl<'s> Compiler<'s> {
    /// The client-certificate settings of an Ingress with its CA read from the Secret.
    /// `Err` holds the annotation key when the CA cannot be used (the Ingress fails
    /// closed); a missing Secret or `ca.crt` is reported by the reference checks.
    pub(super) fn client_auth(
        &mut self,
        sel: &Selected<'s>,
        policy: &IngressPolicy,
    ) -> Result<Option<Arc<ClientAuth>>, String> {
        let Some(c) = &policy.tls.client_cert else {
            return Ok(None);
        };
        let ns = c.secret.namespace_or(&sel.key.namespace).to_owned();
        let Some(secret) = self.secrets.get(&(ns.as_str(), c.secret.name.as_str())) else {
            return Ok(None);
        };
        let data = secret.data.as_ref();
        let Some(ca) = data.and_then(|d| d.get("ca.crt")) else {
            return Ok(None);
        };
        let key = ObjectKey::new(Kind::Secret, ns.as_str(), c.secret.name.as_str());
        let roots: Result<Vec<CertificateDer<'static>>, _> =
            CertificateDer::pem_slice_iter(&ca.0).collect();
        let crls: Result<Vec<CertificateRevocationListDer<'static>>, _> = data
            .and_then(|d| d.get("ca.crl"))
            .map_or(Ok(Vec::new()), |crl| {
                CertificateRevocationListDer::pem_slice_iter(&crl.0).collect()
            });
        let problem = match (&roots, &crls) {
            (Err(e), _) => Some(format!("ca.crt is not valid PEM: {e}")),
            (Ok(r), _) if r.is_empty() => Some("ca.crt holds no CERTIFICATE block".to_owned()),
            (_, Err(e)) => Some(format!("ca.crl is not valid PEM: {e}")),
            _ => None,
        };
        let (Ok(roots), Ok(crls), None) = (roots, crls, &problem) else {
            let k = annotation_key(sel, "auth-tls-secret");
            let what = problem.unwrap_or_default();
            self.diag(
                Diagnostic::error(
                    "invalid-secret",
                    format!("{key}: {what}; security annotations fail closed: the routes of this Ingress answer 503 until it is fixed"),
                )
                .value(c.secret.to_string()),
                sel,
                Some(&k),
            );
            return Err(k);
        };
        let match_cn = match c.match_cn.as_deref().map(SubjectPattern::new).transpose() {
            Ok(m) => m,
            Err(e) => {
                // The annotation parser checked it; a pattern it let through that the
                // regex crate refuses still fails closed.
                let k = annotation_key(sel, "auth-tls-match-cn");
                self.diag(
                    Diagnostic::error("invalid-value", format!("{e}; security annotations fail closed: the routes of this Ingress answer 503 until it is fixed")),
                    sel,
                    Some(&k),
                );
                return Err(k);
            }
        };
        Ok(Some(Arc::new(ClientAuth {
            match_cn,
            secret: key,
            roots,
            crls,
            verify: c.verify,
            depth: c.depth,
            pass_certificate: c.pass_certificate,
            error_page: c.error_page.as_deref().map(Box::from),
        })))
    }

    /// Records the Ingress's TLS policy for its hosts (rules, aliases and `spec.tls`)
    /// where no older Ingress set that part. Returns the `auth-tls-secret` key when an
    /// older Ingress set other client-certificate settings for one of its hosts: its
    /// routes fail closed rather than be served under settings it did not ask for.
    pub(super) fn add_host_tls(
        &mut self,
        sel: &Selected<'s>,
        policy: &IngressPolicy,
        client: Option<Arc<ClientAuth>>,
    ) -> Option<String> {
        let t = &policy.tls;
        let protocol = (t.min_version.is_some() || t.max_version.is_some() || t.ciphers.is_some())
            .then(|| {
                (
                    t.min_version.map(|v| v.max(TlsVersion::V1_2)),
                    t.max_version,
                    t.ciphers.clone(),
                )
            });
        if client.is_none() && protocol.is_none() {
            return None;
        }
        let mut conflict = None;
        for host in ingress_hosts(sel, policy) {
            let parts = self.tls.host_parts.entry(HostOrder::of(&host)).or_default();
            let mut older_client = None;
            let mut older_protocol = None;
            if let Some(c) = &client {
                match &parts.client {
                    None => parts.client = Some((Arc::clone(c), sel.key.clone())),
                    Some((theirs, owner)) if theirs != c => older_client = Some(owner.clone()),
                    Some(_) => {}
                }
            }
            if let Some(p) = &protocol {
                match &parts.protocol {
                    None => parts.protocol = Some((p.clone(), sel.key.clone())),
                    Some((theirs, owner)) if theirs != p => older_protocol = Some(owner.clone()),
                    Some(_) => {}
                }
            }
            if let Some(owner) = older_client {
                let key = annotation_key(sel, "auth-tls-secret");
                self.diag(
                    Diagnostic::error(
                        "tls-policy-conflict",
                        format!("host {host} already has other client-certificate settings from the older {owner}; security annotations fail closed: the routes of this Ingress answer 503 until they agree"),
                    ),
                    sel,
                    Some(&key),
                );
                conflict = Some(key);
            }
            if let Some(owner) = older_protocol {
                let key = [
                    "tls-min-protocol-version",
                    "tls-max-protocol-version",
                    "ssl-ciphers",
                    "ssl-cipher",
                ]
                .iter()
                .find_map(|n| {
                    sel.ingress
                        .metadata
                        .annotations
                        .as_ref()
                        .and_then(|a| mse_annotations::lookup(a, n))
                        .map(|f| f.key.to_owned())
                });
                self.diag(
                    Diagnostic::warning(
                        "tls-policy-conflict",
                        format!("host {host} already has other TLS versions or cipher suites from the older {owner}; those apply to it"),
                    ),
                    sel,
                    key.as_deref(),
                );
            }
        }
        conflict
    }
}

/// The hosts an Ingress serves or has certificates for.
fn ingress_hosts(sel: &Selected<'_>, policy: &IngressPolicy) -> Vec<HostMatch> {
    let mut hosts: Vec<HostMatch> = Vec::new();
    let spec = sel.ingress.spec.as_ref();
    let rules = spec
        .and_then(|s| s.rules.as_deref())
        .unwrap_or(&[])
        .iter()
        .map(|r| r.host.as_deref().unwrap_or(""));
    let tls = spec
        .and_then(|s| s.tls.as_deref())
        .unwrap_or(&[])
        .iter()
        .flat_map(|t| t.hosts.as_deref().unwrap_or(&[]))
        .map(String::as_str);
    let aliases = policy.tls.aliases.iter().map(String::as_str);
    for h in rules.chain(tls).chain(aliases) {
        if let Ok(h) = HostMatch::parse(h)
            && !hosts.contains(&h)
        {
            hosts.push(h);
        }
    }
    if spec.is_some_and(|s| s.rules.as_deref().unwrap_or(&[]).is_empty()) && hosts.is_empty() {
        hosts.push(HostMatch::Any);
    }
    hosts
}

/// Fills the policy part of the TLS table: one [`HostTls`] per distinct policy, and the
/// hosts whose policy differs from what their lookup would otherwise give. `vhosts`: every
/// host that has routes, so that a host without a policy of its own is not given the
/// policy of a wildcard or the default above it.
pub(super) fn policy_table(
    tls: &mut TlsTable,
    parts: BTreeMap<HostOrder, HostParts>,
    vhosts: &[HostOrder],
    global: &TlsSettings,
) {
    let base = global_policy(global);
    tls.policies = vec![base.clone()];
    let mut own: BTreeMap<HostOrder, TlsPolicyId> = BTreeMap::new();
    for (order, p) in parts {
        let mut h = base.clone();
        if let Some(((min, max, ciphers), _)) = p.protocol {
            h.min_version = min.unwrap_or(h.min_version);
            h.max_version = max.unwrap_or(h.max_version);
            // What the Ingress sets wins over the global versions it does not set.
            if h.min_version > h.max_version {
                if max.is_some() {
                    h.min_version = h.max_version;
                } else {
                    h.max_version = h.min_version;
                }
            }
            if ciphers.is_some() {
                h.ciphers = ciphers;
            }
        }
        h.client = p.client.map(|(c, _)| c);
        let id = match tls.policies.iter().position(|x| *x == h) {
            Some(i) => TlsPolicyId(i as u32),
            None => {
                tls.policies.push(h);
                TlsPolicyId(tls.policies.len() as u32 - 1)
            }
        };
        own.insert(order, id);
    }
    for (order, id) in &own {
        insert_policy(tls, order, *id);
    }
    tls.client_auth = tls.policies.iter().any(|p| p.client.is_some());
    if tls.policies.len() <= 1 {
        return;
    }
    for order in vhosts {
        if own.contains_key(order) {
            continue;
        }
        let name = match order {
            HostOrder::Exact(h) => Some(&**h),
            HostOrder::Wildcard(_) | HostOrder::Any => None,
        };
        let found = match order {
            HostOrder::Wildcard(_) => tls.policy_default,
            _ => tls.policy(name),
        };
        if found != TlsPolicyId::DEFAULT && *order != HostOrder::Any {
            insert_policy(tls, order, TlsPolicyId::DEFAULT);
        }
    }
}

/// The policy of hosts that set none: the global `ssl-protocols` and `ssl-ciphers`.
fn global_policy(global: &TlsSettings) -> HostTls {
    let mut h = HostTls::default();
    let versions: Vec<TlsVersion> = global
        .protocols
        .iter()
        .filter_map(|p| match p.as_str() {
            "TLSv1.2" => Some(TlsVersion::V1_2),
            "TLSv1.3" => Some(TlsVersion::V1_3),
            _ => None,
        })
        .collect();
    if let (Some(min), Some(max)) = (versions.iter().min(), versions.iter().max()) {
        h.min_version = *min;
        h.max_version = *max;
    }
    h.ciphers = global
        .ciphers
        .as_deref()
        .and_then(|c| mse_annotations::cipher_names(c).ok());
    h
}

fn insert_policy(tls: &mut TlsTable, order: &HostOrder, id: TlsPolicyId) {
    match order {
        HostOrder::Exact(h) => {
            tls.policy_exact.insert(h.clone(), id);
        }
        HostOrder::Wildcard(s) => {
            tls.policy_wildcard.insert(s.clone(), id);
        }
        HostOrder::Any => tls.policy_default = id,
    }
}
