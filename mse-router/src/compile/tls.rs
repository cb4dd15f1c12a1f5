//! `spec.tls`: certificates from Secrets, the oldest Ingress's certificate for each host,
//! and the check that a certificate names the hosts it is given.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use mse_model::{Diagnostic, Kind, ObjectKey};
use rustls_pki_types::CertificateDer;

use super::host_tls::HostParts;
use super::{Compiler, HostOrder, Selected};
use crate::host::HostMatch;
use crate::tls::{CertId, Certificate, parse_key_pair};

/// The certificates of every `spec.tls` entry, and which one each host gets.
#[derive(Default)]
pub(super) struct TlsBuilder {
    pub(super) certs: Vec<Certificate>,
    pub(super) by_secret: HashMap<ObjectKey, Option<CertId>>,
    /// host pattern -> (certificate, the Ingress that claimed it)
    pub(super) hosts: BTreeMap<HostOrder, (CertId, ObjectKey)>,
    /// The DNS names of each certificate's leaf (`None`: it could not be read).
    pub(super) names: HashMap<CertId, Option<Vec<String>>>,
    /// The TLS policy parts each host got from the oldest Ingress setting them.
    pub(super) host_parts: BTreeMap<HostOrder, HostParts>,
}

// === impl Compiler ===

impl<'s> Compiler<'s> {
    /// The certificates of `spec.tls`; `server-alias` hosts get the certificate of the
    /// entries that list hosts.
    pub(super) fn add_tls(&mut self, sel: &Selected<'s>, aliases: &[HostMatch]) {
        let Some(tls) = sel.ingress.spec.as_ref().and_then(|s| s.tls.as_deref()) else {
            return;
        };
        for (ti, entry) in tls.iter().enumerate() {
            let field = format!("spec.tls[{ti}]");
            let Some(secret_name) = entry.secret_name.as_deref().filter(|s| !s.is_empty()) else {
                self.diag(
                    Diagnostic::warning(
                        "missing-tls-secret-name",
                        "TLS entry has no secretName; its hosts get the default certificate",
                    ),
                    sel,
                    Some(&field),
                );
                continue;
            };
            let Some(cert) = self.certificate(&sel.key.namespace, secret_name, sel, &field) else {
                continue;
            };
            let hosts = entry.hosts.as_deref().unwrap_or(&[]);
            let patterns = self.tls_patterns(sel, hosts, aliases, &field);
            for p in patterns {
                self.assign_certificate(sel, cert, p, &field);
            }
        }
    }

    /// The host patterns of one `spec.tls` entry: its valid hosts and the alias hosts, or
    /// the any-host pattern (the default certificate) when it lists none.
    fn tls_patterns(
        &mut self,
        sel: &Selected<'s>,
        hosts: &[String],
        aliases: &[HostMatch],
        field: &str,
    ) -> Vec<HostMatch> {
        if hosts.is_empty() {
            return vec![HostMatch::Any];
        }
        let mut patterns = Vec::new();
        for h in hosts {
            match HostMatch::parse(h) {
                Ok(HostMatch::Any) | Err(_) => self.diag(
                    Diagnostic::error(
                        "invalid-host",
                        "TLS host is not a DNS name or `*.` wildcard; it is left out",
                    )
                    .value(h.clone()),
                    sel,
                    Some(&format!("{field}.hosts")),
                ),
                Ok(p) => patterns.push(p),
            }
        }
        let extra: Vec<HostMatch> = aliases
            .iter()
            .filter(|a| !patterns.contains(a))
            .cloned()
            .collect();
        patterns.extend(extra);
        patterns
    }

    /// Gives a host pattern this certificate unless an older Ingress's entry gave it one.
    fn assign_certificate(&mut self, sel: &Selected<'s>, cert: CertId, p: HostMatch, field: &str) {
        let order = HostOrder::of(&p);
        if let Some((other, owner)) = self.tls.hosts.get(&order) {
            if *other != cert {
                let d = Diagnostic::warning(
                    "duplicate-tls",
                    format!(
                        "host {p} already has a certificate from the older {owner}; this entry's certificate is not used for it"
                    ),
                );
                self.diag(d, sel, Some(field));
            }
            return;
        }
        self.check_covers(cert, &p, sel, field);
        self.tls.hosts.insert(order, (cert, sel.key.clone()));
        let c = &mut self.tls.certs[cert.0 as usize];
        if !c.hosts.contains(&p) {
            c.hosts.push(p);
        }
    }

    /// The certificate from a Secret, loaded once however many Ingresses name it.
    pub(super) fn certificate(
        &mut self,
        ns: &str,
        name: &str,
        sel: &Selected<'s>,
        field: &str,
    ) -> Option<CertId> {
        let key = ObjectKey::new(Kind::Secret, ns, name);
        if let Some(known) = self.tls.by_secret.get(&key) {
            return *known;
        }
        let result = match self.secrets.get(&(ns, name)) {
            None => Err((
                "missing-secret",
                format!("{key} not found; hosts of this entry get the default certificate"),
            )),
            Some(s) => {
                let data = s.data.as_ref();
                let crt = data.and_then(|d| d.get("tls.crt")).map(|b| b.0.as_slice());
                let k = data.and_then(|d| d.get("tls.key")).map(|b| b.0.as_slice());
                match (crt, k) {
                    (Some(c), Some(k)) => parse_key_pair(c, k).map_err(|e| {
                        (
                            "invalid-tls-secret",
                            format!("{key}: {e}; hosts of this entry get the default certificate"),
                        )
                    }),
                    _ => Err((
                        "invalid-tls-secret",
                        format!(
                            "{key} lacks tls.crt or tls.key; hosts of this entry get the default certificate"
                        ),
                    )),
                }
            }
        };
        let id = match result {
            Ok((chain, private)) => {
                let id = CertId(self.tls.certs.len() as u32);
                let validity = chain
                    .first()
                    .and_then(|leaf| crate::x509::cert_info(leaf))
                    .map(|i| (i.not_before, i.not_after));
                if let Some(v) = validity {
                    self.check_validity(&key, v, sel, field);
                }
                self.tls.certs.push(Certificate {
                    id,
                    secret: key.clone(),
                    hosts: Vec::new(),
                    chain,
                    key: Arc::new(private),
                    validity,
                });
                Some(id)
            }
            Err((code, msg)) => {
                self.diag(
                    Diagnostic::error(code, msg).value(name),
                    sel,
                    Some(&format!("{field}.secretName")),
                );
                None
            }
        };
        self.tls.by_secret.insert(key, id);
        id
    }

    /// Warns when a certificate is outside its validity period: it is served anyway, as
    /// NGINX does, but clients will refuse it. Read against the clock when the table is
    /// compiled; the data plane's expiry metric tracks it from then on.
    fn check_validity(
        &mut self,
        secret: &ObjectKey,
        (not_before, not_after): (i64, i64),
        sel: &Selected<'s>,
        field: &str,
    ) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let (code, what) = if now > not_after {
            (
                "certificate-expired",
                format!("expired at {}", crate::x509::format_time(not_after)),
            )
        } else if now < not_before {
            (
                "certificate-not-yet-valid",
                format!(
                    "is not valid before {}",
                    crate::x509::format_time(not_before)
                ),
            )
        } else {
            return;
        };
        self.diag(
            Diagnostic::warning(
                code,
                format!("the certificate in {secret} {what}; it is served anyway (as NGINX does), and clients will refuse it"),
            ),
            sel,
            Some(&format!("{field}.secretName")),
        );
    }

    /// Warns when a TLS host is not among the names of the certificate it was given:
    /// clients would reject the certificate for that host.
    pub(super) fn check_covers(
        &mut self,
        cert: CertId,
        host: &HostMatch,
        sel: &Selected<'s>,
        field: &str,
    ) {
        let certs = &self.tls.certs;
        let names = self
            .tls
            .names
            .entry(cert)
            .or_insert_with(|| {
                let leaf = certs.get(cert.0 as usize)?.chain.first()?;
                dns_names(leaf)
            })
            .clone();
        let Some(names) = names else {
            return;
        };
        if covers(&names, host) {
            return;
        }
        let secret = &self.tls.certs[cert.0 as usize].secret;
        let listed = if names.is_empty() {
            "no DNS names (the Common Name is ignored by browsers and by this gateway)".to_owned()
        } else {
            names.join(", ")
        };
        self.diag(
            Diagnostic::error(
                "tls-host-not-covered",
                format!(
                    "TLS host {host} is not covered by the certificate in {secret}, which names {listed}; clients will reject the certificate for this host"
                ),
            )
            .value(host.to_string()),
            sel,
            Some(&format!("{field}.hosts")),
        );
    }
}

/// The DNS subject alternative names of a certificate, lower case; `None` when it cannot
/// be parsed (the TLS layer reports that).
fn dns_names(der: &CertificateDer<'_>) -> Option<Vec<String>> {
    let cert = webpki::EndEntityCert::try_from(der).ok()?;
    Some(
        cert.valid_dns_names()
            .map(|n| n.trim_end_matches('.').to_ascii_lowercase())
            .collect(),
    )
}

/// Whether certificate names cover a host pattern, as a TLS client checks: an exact name,
/// or a `*.` name covering exactly one more label; a wildcard host needs the same wildcard.
fn covers(names: &[String], host: &HostMatch) -> bool {
    match host {
        HostMatch::Any => true,
        HostMatch::Exact(h) => names.iter().any(|n| {
            **n == **h
                || n.strip_prefix("*.")
                    .is_some_and(|suffix| h.split_once('.').is_some_and(|(_, rest)| rest == suffix))
        }),
        HostMatch::Wildcard(s) => names.iter().any(|n| n.strip_prefix("*.") == Some(&**s)),
    }
}
