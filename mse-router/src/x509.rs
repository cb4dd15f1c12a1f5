//! What the gateway reads from an X.509 certificate besides what the TLS library checks:
//! its validity period (for expiry diagnostics and metrics) and its subject and issuer
//! names in the RFC 2253 form ingress-nginx passes upstream (`ssl-client-subject-dn`).
//!
//! A small DER reader of just these fields: the certificate's signature and extensions
//! are the TLS library's business.

use std::fmt::Write as _;

/// The fields of a certificate the gateway reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertInfo {
    /// Start of the validity period, in seconds since the Unix epoch.
    pub not_before: i64,
    /// End of the validity period, in seconds since the Unix epoch.
    pub not_after: i64,
    /// The subject name, RFC 2253 (`CN=client,O=Example`), as NGINX's `$ssl_client_s_dn`.
    pub subject: String,
    /// The issuer name, in the same form.
    pub issuer: String,
}

/// Reads validity and names from a DER certificate; `None` when it is not one.
pub fn cert_info(der: &[u8]) -> Option<CertInfo> {
    let (cert, _) = Der::read(der, SEQUENCE)?;
    let (tbs, _) = Der::read(cert, SEQUENCE)?;
    let mut rest = tbs;
    // version [0] EXPLICIT, optional
    if rest.first() == Some(&0xa0) {
        rest = Der::read(rest, 0xa0)?.1;
    }
    let (_serial, r) = Der::read(rest, INTEGER)?;
    let (_sig_alg, r) = Der::read(r, SEQUENCE)?;
    let (issuer, r) = Der::read(r, SEQUENCE)?;
    let (validity, r) = Der::read(r, SEQUENCE)?;
    let (subject, _) = Der::read(r, SEQUENCE)?;
    let (not_before, v) = time(validity)?;
    let (not_after, _) = time(v)?;
    Some(CertInfo {
        not_before,
        not_after,
        subject: name(subject)?,
        issuer: name(issuer)?,
    })
}

const INTEGER: u8 = 0x02;
const OID: u8 = 0x06;
const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// One DER element.
struct Der;

impl Der {
    /// The content of the element at the start of `input` if its tag is `tag`, and what
    /// follows it.
    fn read(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
        let (t, content, rest) = Self::any(input)?;
        (t == tag).then_some((content, rest))
    }

    /// Tag, content and what follows, for any single-byte tag.
    fn any(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, rest) = input.split_first()?;
        let (&first, mut rest) = rest.split_first()?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            let len = rest[..n]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            rest = &rest[n..];
            len
        };
        if rest.len() < len {
            return None;
        }
        Some((tag, &rest[..len], &rest[len..]))
    }
}

/// A UTCTime or GeneralizedTime in `Z` form, as seconds since the epoch.
fn time(input: &[u8]) -> Option<(i64, &[u8])> {
    let (tag, content, rest) = Der::any(input)?;
    let text = std::str::from_utf8(content).ok()?;
    let digits = text.strip_suffix('Z')?;
    let (year, rest_digits) = match tag {
        UTC_TIME if digits.len() >= 10 => {
            let yy: i64 = digits.get(..2)?.parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &digits[2..])
        }
        GENERALIZED_TIME if digits.len() >= 12 => (digits.get(..4)?.parse().ok()?, &digits[4..]),
        _ => return None,
    };
    let field = |i: usize| -> Option<i64> { rest_digits.get(i..i + 2)?.parse().ok() };
    let (month, day, hour, min) = (field(0)?, field(2)?, field(4)?, field(6)?);
    let sec = field(8).unwrap_or(0);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some((days * 86_400 + hour * 3600 + min * 60 + sec, rest))
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_time(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A Name (a sequence of RDN sets) in RFC 2253 form: last RDN first, `,` between RDNs,
/// `+` between the attributes of one RDN.
fn name(mut seq: &[u8]) -> Option<String> {
    let mut rdns = Vec::new();
    while !seq.is_empty() {
        let (mut set, rest) = Der::read(seq, SET)?;
        seq = rest;
        let mut attrs = Vec::new();
        while !set.is_empty() {
            let (atv, rest) = Der::read(set, SEQUENCE)?;
            set = rest;
            let (oid, value) = Der::read(atv, OID)?;
            let (vtag, vbytes, _) = Der::any(value)?;
            let mut s = attribute_name(oid);
            s.push('=');
            match string_value(vtag, vbytes) {
                Some(text) => escape_into(&mut s, &text),
                None => {
                    s.push('#');
                    for b in value.iter().take(2 + vbytes.len()) {
                        let _ = write!(s, "{b:02x}");
                    }
                }
            }
            attrs.push(s);
        }
        rdns.push(attrs.join("+"));
    }
    rdns.reverse();
    Some(rdns.join(","))
}

/// The short name OpenSSL prints for an attribute type, else its dotted OID.
fn attribute_name(oid: &[u8]) -> String {
    let known: &[(&[u8], &str)] = &[
        (&[0x55, 0x04, 0x03], "CN"),
        (&[0x55, 0x04, 0x06], "C"),
        (&[0x55, 0x04, 0x07], "L"),
        (&[0x55, 0x04, 0x08], "ST"),
        (&[0x55, 0x04, 0x09], "street"),
        (&[0x55, 0x04, 0x0a], "O"),
        (&[0x55, 0x04, 0x0b], "OU"),
        (&[0x55, 0x04, 0x05], "serialNumber"),
        (
            &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01],
            "emailAddress",
        ),
        (
            &[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19],
            "DC",
        ),
        (
            &[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01],
            "UID",
        ),
    ];
    if let Some((_, n)) = known.iter().find(|(o, _)| *o == oid) {
        return (*n).to_owned();
    }
    let mut out = String::new();
    let mut value: u64 = 0;
    for b in oid {
        value = (value << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if out.is_empty() {
                let first = (value / 40).min(2);
                let _ = write!(out, "{first}.{}", value - first * 40);
            } else {
                let _ = write!(out, ".{value}");
            }
            value = 0;
        }
    }
    out
}

/// The text of a directory string.
fn string_value(tag: u8, bytes: &[u8]) -> Option<String> {
    match tag {
        // UTF8String, PrintableString, IA5String, NumericString, VisibleString
        0x0c | 0x13 | 0x16 | 0x12 | 0x1a => String::from_utf8(bytes.to_vec()).ok(),
        // TeletexString: taken as Latin-1
        0x14 => Some(bytes.iter().map(|b| char::from(*b)).collect()),
        // BMPString: UCS-2
        0x1e => {
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    }
}

/// RFC 2253 escaping of an attribute value.
fn escape_into(out: &mut String, value: &str) {
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        if c.is_control() {
            let _ = write!(out, "\\{:02X}", c as u32);
        } else {
            out.push(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_validity_and_names_of_a_generated_certificate() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["a.example".to_owned()]).unwrap();
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CountryName, "DE");
        dn.push(rcgen::DnType::OrganizationName, "Example, Inc.");
        dn.push(rcgen::DnType::CommonName, "client one");
        params.distinguished_name = dn;
        params.not_before = rcgen::date_time_ymd(2001, 2, 3);
        params.not_after = rcgen::date_time_ymd(2051, 12, 31);
        let cert = params.self_signed(&key).unwrap();
        let info = cert_info(cert.der()).unwrap();
        // 2001-02-03T00:00:00Z and 2051-12-31T00:00:00Z
        assert_eq!(info.not_before, 981_158_400);
        assert_eq!(info.not_after, 2_587_593_600);
        assert_eq!(info.subject, r"CN=client one,O=Example\, Inc.,C=DE");
        assert_eq!(info.issuer, info.subject);
        assert_eq!(format_time(info.not_before), "2001-02-03T00:00:00Z");
        assert_eq!(format_time(info.not_after), "2051-12-31T00:00:00Z");
        assert_eq!(format_time(86_399), "1970-01-01T23:59:59Z");
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        assert_eq!(cert_info(b""), None);
        assert_eq!(cert_info(&[0x30, 0x82, 0xff]), None);
        assert_eq!(cert_info(&[0x30, 0x03, 0x02, 0x01, 0x00]), None);
    }

    #[test]
    fn unknown_attribute_types_print_as_dotted_oids() {
        assert_eq!(
            attribute_name(&[0x2b, 0x06, 0x01, 0x04, 0x01]),
            "1.3.6.1.4.1"
        );
    }
}
