//! Annotation lookup for the mse-ingress gateway.
//!
//! Every key is accepted under three prefixes, [`PREFIXES`], in that order of precedence:
//! `nginx.ingress.kubernetes.io/`, `mse.ingress.kubernetes.io/` and `higress.io/`.
//! [`lookup`] returns the value of the first prefix that carries the key; a value that
//! is empty after trimming counts as absent.
//!
//! ```
//! use std::collections::BTreeMap;
//!
//! let mut a = BTreeMap::new();
//! a.insert("higress.io/use-regex".to_owned(), "true".to_owned());
//! a.insert("nginx.ingress.kubernetes.io/use-regex".to_owned(), " ".to_owned());
//! let found = mse_annotations::lookup(&a, "use-regex").unwrap();
//! assert_eq!(found.value, "true");
//! assert_eq!(found.key, "higress.io/use-regex");
//! ```

use std::collections::BTreeMap;

/// The annotation prefixes the gateway reads, highest precedence first.
pub const PREFIXES: [&str; 3] = [
    "nginx.ingress.kubernetes.io/",
    "mse.ingress.kubernetes.io/",
    "higress.io/",
];

/// The legacy annotation that names an Ingress's class.
pub const INGRESS_CLASS: &str = "kubernetes.io/ingress.class";

/// The IngressClass annotation that marks the cluster's default class.
pub const IS_DEFAULT_CLASS: &str = "ingressclass.kubernetes.io/is-default-class";

/// An annotation found under one of the [`PREFIXES`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found<'a> {
    /// The full key, prefix included.
    pub key: &'a str,
    /// The value, trimmed.
    pub value: &'a str,
}

/// Finds `name` under the three prefixes, in precedence order. Values that are empty after
/// trimming count as absent.
pub fn lookup<'a>(annotations: &'a BTreeMap<String, String>, name: &str) -> Option<Found<'a>> {
    PREFIXES.iter().find_map(|p| {
        let (key, value) = annotations.iter().find(|(k, _)| {
            k.len() == p.len() + name.len() && k.starts_with(p) && k.ends_with(name)
        })?;
        let value = value.trim();
        (!value.is_empty()).then_some(Found { key, value })
    })
}

/// Parses a boolean the way Go's `strconv.ParseBool` does (which is what ingress-nginx and
/// Higress accept): `1 t T TRUE true True` and `0 f F FALSE false False`.
pub fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn nginx_prefix_wins_over_mse_and_higress() {
        let a = map(&[
            ("higress.io/x", "h"),
            ("mse.ingress.kubernetes.io/x", "m"),
            ("nginx.ingress.kubernetes.io/x", "n"),
        ]);
        assert_eq!(lookup(&a, "x").unwrap().value, "n");
        let a = map(&[("higress.io/x", "h"), ("mse.ingress.kubernetes.io/x", "m")]);
        assert_eq!(lookup(&a, "x").unwrap().value, "m");
    }

    #[test]
    fn other_prefixes_and_suffix_collisions_are_not_matched() {
        let a = map(&[("example.com/x", "e"), ("higress.io/xx", "h")]);
        assert_eq!(lookup(&a, "x"), None);
    }

    #[test]
    fn go_booleans() {
        assert_eq!(parse_bool("True"), Some(true));
        assert_eq!(parse_bool("0"), Some(false));
        assert_eq!(parse_bool("yes"), None);
    }
}
