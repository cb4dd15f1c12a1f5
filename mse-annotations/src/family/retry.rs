//! Retries: `proxy-next-upstream`, `proxy-next-upstream-tries`,
//! `proxy-next-upstream-timeout` (ingress-nginx semantics: the timeout is the budget for
//! all attempts).

use std::time::Duration;

use mse_model::Diagnostic;

use crate::IngressPolicy;
use crate::cx::Cx;
use crate::value::{self, ValueError};

/// When a request is tried again on another endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryOn {
    /// `error`: the connection failed or broke before a response.
    pub error: bool,
    /// `timeout`: connecting or reading timed out.
    pub timeout: bool,
    /// `invalid_header`: the upstream answered something that is not HTTP.
    pub invalid_header: bool,
    /// `http_NNN`: the upstream answered with one of these statuses.
    pub statuses: Vec<u16>,
    /// `non_idempotent`: POST, PATCH and LOCK may be retried too.
    pub non_idempotent: bool,
}

/// Retry settings; [`Retry::default`] is ingress-nginx's default (`error timeout`, 3
/// tries, no time budget).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retry {
    /// `None` when `proxy-next-upstream` is `off`.
    pub on: Option<RetryOn>,
    /// Most attempts, the first included; 0 means no limit but the number of endpoints.
    pub tries: u32,
    /// Time budget for all attempts; `None` for no limit.
    pub timeout: Option<Duration>,
    /// Whether the Ingress sets any of the keys (otherwise these are the defaults).
    pub set: bool,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            on: Some(RetryOn {
                error: true,
                timeout: true,
                invalid_header: false,
                statuses: Vec::new(),
                non_idempotent: false,
            }),
            tries: 3,
            timeout: None,
            set: false,
        }
    }
}

enum Token {
    Error,
    Timeout,
    InvalidHeader,
    Status(u16),
    NonIdempotent,
    Off,
}

pub(crate) fn parse(cx: &mut Cx<'_>, p: &mut IngressPolicy) {
    let d = Retry::default();
    let mut set = false;
    let on = match cx.get_list("proxy-next-upstream", value::comma_or_space_list, token) {
        None => d.on,
        Some(tokens) => {
            set = true;
            let off = tokens.iter().any(|t| matches!(t, Token::Off));
            if off && tokens.len() > 1 {
                for e in cx.entries("proxy-next-upstream") {
                    cx.report(
                        Diagnostic::warning(
                            "ignored-entry",
                            "`off` turns retries off; the other conditions are ignored",
                        ),
                        e.key,
                        Some(e.value),
                    );
                }
            }
            if off {
                None
            } else {
                let mut on = RetryOn {
                    error: false,
                    timeout: false,
                    invalid_header: false,
                    statuses: Vec::new(),
                    non_idempotent: false,
                };
                for t in tokens {
                    match t {
                        Token::Error => on.error = true,
                        Token::Timeout => on.timeout = true,
                        Token::InvalidHeader => on.invalid_header = true,
                        Token::Status(s) => {
                            if !on.statuses.contains(&s) {
                                on.statuses.push(s);
                            }
                        }
                        Token::NonIdempotent => on.non_idempotent = true,
                        Token::Off => {}
                    }
                }
                Some(on)
            }
        }
    };
    let tries = cx.get("proxy-next-upstream-tries", |v| value::uint(v, 0, 1000));
    let timeout = cx.get("proxy-next-upstream-timeout", value::duration);
    p.retry = Retry {
        on,
        set: set || tries.is_some() || timeout.is_some(),
        tries: tries.unwrap_or(d.tries),
        timeout: timeout.filter(|t| !t.is_zero()),
    };
}

fn token(v: &str) -> Result<Token, ValueError> {
    Ok(match v {
        "error" => Token::Error,
        "timeout" => Token::Timeout,
        "invalid_header" => Token::InvalidHeader,
        "non_idempotent" => Token::NonIdempotent,
        "off" => Token::Off,
        "http_500" | "http_502" | "http_503" | "http_504" | "http_403" | "http_404"
        | "http_429" => Token::Status(value::status(&v[5..], 400, 599)?),
        _ => {
            return Err(ValueError::Expected(
                "error, timeout, invalid_header, http_500, http_502, http_503, http_504, http_403, http_404, http_429, non_idempotent or off",
            ));
        }
    })
}
