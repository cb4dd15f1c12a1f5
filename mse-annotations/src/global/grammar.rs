//! Value grammars of global keys that annotations do not share: context-free, like
//! [`crate::value`], each returning what was expected when the value does not fit.

use std::time::Duration;

use super::{GlobalConfig, Reject};
use crate::value::{self, ValueError};

/// Accepts any value (keys whose value is never read).
pub(super) fn any(_: &mut GlobalConfig, _: &str) -> Result<(), Reject> {
    Ok(())
}

/// A duration as annotations take it (`60`, `500ms`, `5m`), not zero.
pub(super) fn positive_duration(v: &str) -> Result<Duration, ValueError> {
    let d = value::duration(v)?;
    if d.is_zero() {
        return Err(ValueError::Invalid("must be more than zero".to_owned()));
    }
    Ok(d)
}

/// Whole seconds, as Higress writes them (`180`); zero allowed.
pub(super) fn whole_seconds(v: &str) -> Result<Duration, ValueError> {
    value::uint(v, 0, u32::MAX).map(|n| Duration::from_secs(u64::from(n)))
}

/// Whole milliseconds, more than zero (Higress `tracing.timeout`).
pub(super) fn millis(v: &str) -> Result<Duration, ValueError> {
    value::uint(v, 1, u32::MAX).map(|n| Duration::from_millis(u64::from(n)))
}

/// The smallest request head the data plane can be given (its minimum read buffer).
pub(super) const MIN_HEADER: u64 = 8 * 1024;
/// The largest request head accepted (Higress's `maxRequestHeadersKb` maximum).
pub(super) const MAX_HEADER: u64 = 8192 * 1024;

/// `large-client-header-buffers`: `number size` (`4 8k`), the whole head being up to
/// number × size bytes, between 8 KiB and 8 MiB.
pub(super) fn header_buffers(v: &str) -> Result<(u32, u32), ValueError> {
    const EXPECTED: ValueError =
        ValueError::Expected("a number of buffers and a buffer size, e.g. 4 8k");
    let mut parts = v.split_whitespace();
    let (Some(n), Some(size), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(EXPECTED);
    };
    let n = value::uint(n, 1, 1024).map_err(|_| EXPECTED)?;
    let size = value::size(size).map_err(|_| EXPECTED)?;
    let total = head_bytes(u64::from(n).saturating_mul(size))?;
    // Within the whole head, which is at most 8 MiB.
    Ok((total, u32::try_from(size).unwrap_or(total).min(total)))
}

/// Higress `downstream.maxRequestHeadersKb`: kibibytes, 8 to 8192 here.
pub(super) fn header_kib(v: &str) -> Result<u32, ValueError> {
    let kib = value::uint(v, 8, 8192)?;
    head_bytes(u64::from(kib) * 1024)
}

fn head_bytes(total: u64) -> Result<u32, ValueError> {
    if !(MIN_HEADER..=MAX_HEADER).contains(&total) {
        return Err(ValueError::Invalid(format!(
            "the whole request head ({total} bytes) must be between 8 KiB and 8 MiB"
        )));
    }
    u32::try_from(total).map_err(|_| ValueError::Expected("a smaller size"))
}

/// `proxy-body-size`: a size, `0` for no limit.
pub(super) fn body_size(v: &str) -> Result<Option<u64>, ValueError> {
    value::size(v).map(|n| (n > 0).then_some(n))
}

/// A comma-separated list of HTTP header names, lower case; empty means none.
pub(super) fn header_names(v: &str) -> Result<Vec<String>, ValueError> {
    value::comma_list(v)
        .into_iter()
        .map(|n| {
            value::header_name(n)
                .map_err(|_| ValueError::Invalid(format!("{n:?} is not a header name")))
        })
        .collect()
}

/// TLS versions, space-separated (`TLSv1.2 TLSv1.3`): the versions the TLS library has.
pub(super) fn tls_versions(v: &str) -> Result<Vec<String>, ValueError> {
    let mut out = Vec::new();
    for p in v.split_whitespace() {
        match p {
            "TLSv1.2" | "TLSv1.3" => out.push(p.to_owned()),
            "SSLv2" | "SSLv3" | "TLSv1" | "TLSv1.1" => {
                return Err(ValueError::Invalid(format!(
                    "{p} is not offered: only TLSv1.2 and TLSv1.3 are"
                )));
            }
            _ => return Err(ValueError::Expected("TLS versions such as TLSv1.2 TLSv1.3")),
        }
    }
    if out.is_empty() {
        return Err(ValueError::Empty);
    }
    Ok(out)
}

/// An OpenSSL cipher list (`ECDHE-RSA-AES128-GCM-SHA256:...`).
pub(super) fn cipher_list(v: &str) -> Result<String, ValueError> {
    let ok = |b: u8| b.is_ascii_alphanumeric() || b"-_+!@=.:".contains(&b);
    if v.is_empty() {
        return Err(ValueError::Empty);
    }
    if !v.bytes().all(ok) || v.split(':').any(str::is_empty) {
        return Err(ValueError::Expected(
            "an OpenSSL cipher list: names separated by colons",
        ));
    }
    crate::family::cipher_names(v)?;
    Ok(v.to_owned())
}

/// The status of a redirect to HTTPS: 301, 302, 307 or 308.
pub(super) fn redirect_code(v: &str) -> Result<u16, ValueError> {
    match value::status(v, 300, 308)? {
        c @ (301 | 302 | 307 | 308) => Ok(c),
        _ => Err(ValueError::Expected("301, 302, 307 or 308")),
    }
}

/// MIME types (`text/html application/json`), space- or comma-separated.
pub(super) fn mime_types(v: &str) -> Result<Vec<String>, ValueError> {
    let items = value::comma_or_space_list(v);
    if items.is_empty() {
        return Err(ValueError::Empty);
    }
    items
        .into_iter()
        .map(|t| {
            let ok = t.split_once('/').is_some_and(|(a, b)| {
                let tok = |s: &str| {
                    !s.is_empty()
                        && s.bytes()
                            .all(|c| c.is_ascii_alphanumeric() || b"!#$&-^_.+*".contains(&c))
                };
                tok(a) && tok(b)
            });
            if ok {
                Ok(t.to_ascii_lowercase())
            } else {
                Err(ValueError::Invalid(format!("{t:?} is not a MIME type")))
            }
        })
        .collect()
}

/// A number within `min..=max` (decimal point allowed).
pub(super) fn number(v: &str, min: f64, max: f64) -> Result<f64, ValueError> {
    match v.parse::<f64>() {
        Ok(n) if n.is_finite() && (min..=max).contains(&n) => Ok(n),
        Ok(_) => Err(ValueError::Invalid(format!(
            "must be between {min} and {max}"
        ))),
        Err(_) => Err(ValueError::Expected("a number")),
    }
}

/// A TCP port.
pub(super) fn port(v: &str) -> Result<u16, ValueError> {
    value::uint(v, 1, 65535).map(|p| p as u16)
}

/// A host name or an IP address.
pub(super) fn host(v: &str) -> Result<String, ValueError> {
    if v.parse::<std::net::IpAddr>().is_ok() {
        return Ok(v.to_owned());
    }
    value::host_name(v)
}

/// A non-empty line of text (log formats, service names).
pub(super) fn text(v: &str) -> Result<String, ValueError> {
    if v.is_empty() {
        return Err(ValueError::Empty);
    }
    value::header_value(v)
}

/// Higress `gzip.compressionLevel`: `BEST_SPEED` (1), `BEST_COMPRESSION` (9),
/// `COMPRESSION_LEVEL_1` to `COMPRESSION_LEVEL_9`, `DEFAULT_COMPRESSION` (6).
pub(super) fn gzip_level_name(v: &str) -> Result<u32, ValueError> {
    const EXPECTED: ValueError = ValueError::Expected(
        "BEST_SPEED, BEST_COMPRESSION, DEFAULT_COMPRESSION or COMPRESSION_LEVEL_1 to COMPRESSION_LEVEL_9",
    );
    match v {
        "BEST_SPEED" => Ok(1),
        "BEST_COMPRESSION" => Ok(9),
        "DEFAULT_COMPRESSION" => Ok(6),
        _ => v
            .strip_prefix("COMPRESSION_LEVEL_")
            .and_then(|n| value::uint(n, 1, 9).ok())
            .ok_or(EXPECTED),
    }
}

/// One of `words`.
pub(super) fn one_of(v: &str, words: &[&str], expected: &'static str) -> Result<(), ValueError> {
    if words.contains(&v) {
        Ok(())
    } else {
        Err(ValueError::Expected(expected))
    }
}

/// A Redis URL: `redis://[user:password@]host[:port][/db]` (no TLS: `rediss://` is not
/// supported by this build).
pub(super) fn redis_url(v: &str) -> Result<String, ValueError> {
    let v = v.trim();
    if v.is_empty() {
        return Err(ValueError::Empty);
    }
    let Some(rest) = v.strip_prefix("redis://") else {
        return Err(ValueError::Expected(
            "a redis:// URL such as redis://redis:6379/0",
        ));
    };
    let authority = rest.split('/').next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host_port.split(':').next().unwrap_or(""),
    };
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(ValueError::Expected(
            "a redis:// URL with a host, such as redis://redis:6379/0",
        ));
    }
    let port = host_port.rsplit_once(']').map_or(host_port, |(_, p)| p);
    if let Some((_, p)) = port.rsplit_once(':')
        && p.parse::<u16>().is_err()
    {
        return Err(ValueError::Invalid(format!("port {p:?} is not a port")));
    }
    let db = rest
        .get(authority.len()..)
        .unwrap_or("")
        .trim_start_matches('/');
    if !db.is_empty() && db.parse::<u32>().is_err() {
        return Err(ValueError::Invalid(format!(
            "database {db:?} is not a number"
        )));
    }
    Ok(v.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_buffers_multiply_number_and_size() {
        assert_eq!(header_buffers("4 8k"), Ok((32 * 1024, 8 * 1024)));
        assert_eq!(header_buffers(" 2   16k "), Ok((32 * 1024, 16 * 1024)));
        assert_eq!(header_buffers("1 8k"), Ok((8 * 1024, 8 * 1024)));
        assert!(header_buffers("4").is_err());
        assert!(header_buffers("4 8k 2").is_err());
        assert!(header_buffers("four 8k").is_err());
        // Smaller than the data plane's read buffer, or too large.
        assert!(header_buffers("1 1k").is_err());
        assert!(header_buffers("1024 1m").is_err());
        assert_eq!(header_kib("60"), Ok(60 * 1024));
        assert!(header_kib("4").is_err());
        assert!(header_kib("8193").is_err());
    }

    #[test]
    fn durations_sizes_and_lists() {
        assert_eq!(positive_duration("75"), Ok(Duration::from_secs(75)));
        assert_eq!(positive_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(positive_duration("0").is_err());
        assert_eq!(whole_seconds("0"), Ok(Duration::ZERO));
        assert!(whole_seconds("1.5").is_err());
        assert_eq!(body_size("0"), Ok(None));
        assert_eq!(body_size("8m"), Ok(Some(8 << 20)));
        assert_eq!(
            header_names("X-Frame-Options, Strict-Transport-Security"),
            Ok(vec![
                "x-frame-options".to_owned(),
                "strict-transport-security".to_owned()
            ])
        );
        assert_eq!(header_names(""), Ok(vec![]));
        assert!(header_names("X Bad").is_err());
        assert_eq!(
            mime_types("text/html application/json"),
            Ok(vec!["text/html".to_owned(), "application/json".to_owned()])
        );
        assert!(mime_types("html").is_err());
    }

    #[test]
    fn tls_and_redirect_grammars() {
        assert_eq!(tls_versions("TLSv1.2 TLSv1.3").map(|v| v.len()), Ok(2));
        assert!(tls_versions("TLSv1.1 TLSv1.2").is_err());
        assert!(tls_versions("").is_err());
        assert!(cipher_list("ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384").is_ok());
        assert!(cipher_list("AES;rm").is_err());
        assert!(cipher_list("A::B").is_err());
        let e = cipher_list("ECDHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES128-GCM-SHA256:RC4-MD5");
        assert!(
            matches!(&e, Err(ValueError::Invalid(m)) if m.starts_with("DHE-RSA-AES128-GCM-SHA256, RC4-MD5 are not offered")),
            "{e:?}"
        );
        assert_eq!(redirect_code("301"), Ok(301));
        assert!(redirect_code("303").is_err());
        assert!(redirect_code("200").is_err());
    }

    #[test]
    fn numbers_ports_hosts_and_levels() {
        assert_eq!(number("0.25", 0.0, 1.0), Ok(0.25));
        assert!(number("1.5", 0.0, 1.0).is_err());
        assert!(number("NaN", 0.0, 1.0).is_err());
        assert_eq!(port("4317"), Ok(4317));
        assert!(port("0").is_err());
        assert_eq!(
            host("otel.monitoring.svc"),
            Ok("otel.monitoring.svc".to_owned())
        );
        assert_eq!(host("10.0.0.1"), Ok("10.0.0.1".to_owned()));
        assert!(host("not a host").is_err());
        assert_eq!(gzip_level_name("BEST_SPEED"), Ok(1));
        assert_eq!(gzip_level_name("COMPRESSION_LEVEL_5"), Ok(5));
        assert!(gzip_level_name("COMPRESSION_LEVEL_10").is_err());
    }

    #[test]
    fn redis_urls_need_the_scheme_a_host_and_numbers_where_numbers_go() {
        for ok in [
            "redis://redis:6379/0",
            "redis://:pw@10.0.0.1",
            "redis://[::1]:6379",
        ] {
            assert_eq!(redis_url(ok).as_deref(), Ok(ok));
        }
        for bad in [
            "",
            "redis:6379",
            "http://redis",
            "redis://",
            "redis://r:port",
            "redis://r/db",
        ] {
            assert!(redis_url(bad).is_err(), "{bad}");
        }
    }
}
