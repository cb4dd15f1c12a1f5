//! The prefixes annotations are read under, and a plain lookup across them.

use std::collections::BTreeMap;

/// The annotation prefixes the gateway reads, highest precedence first.
pub const PREFIXES: [&str; 3] = [
    "nginx.ingress.kubernetes.io/",
    "mse.ingress.kubernetes.io/",
    "higress.io/",
];

/// Prefixes reserved for values the gateway sets itself (`internal.*`): never read from
/// an Ingress, and reported when found.
pub const RESERVED_PREFIXES: [&str; 3] = [
    "internal.nginx.ingress.kubernetes.io/",
    "internal.mse.ingress.kubernetes.io/",
    "internal.higress.io/",
];

/// Prefixes of related products that the gateway does not read; keys under them are
/// reported so that they are not silently lost.
pub const UNREAD_PREFIXES: [&str; 1] = ["higress.ingress.kubernetes.io/"];

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
/// trimming count as absent. (This does not validate values: [`crate::parse`] does.)
pub fn lookup<'a>(annotations: &'a BTreeMap<String, String>, name: &str) -> Option<Found<'a>> {
    PREFIXES.iter().find_map(|p| {
        let (key, value) = annotations.iter().find(|(k, _)| {
            k.len() == p.len() + name.len() && k.starts_with(p) && k.ends_with(name)
        })?;
        let value = value.trim();
        (!value.is_empty()).then_some(Found { key, value })
    })
}

/// Splits a key under one of the [`PREFIXES`] into prefix and name.
pub fn split_key(key: &str) -> Option<(&'static str, &str)> {
    PREFIXES
        .iter()
        .find_map(|p| key.strip_prefix(p).map(|name| (*p, name)))
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

    #[test]
    fn keys_split_into_prefix_and_name() {
        assert_eq!(
            split_key("higress.io/timeout"),
            Some(("higress.io/", "timeout"))
        );
        assert_eq!(split_key("example.com/timeout"), None);
    }
}
