//! The support matrix (`docs/annotations.md`), rendered from the registry.

use std::fmt::Write;

use crate::keys::{Group, KEYS, KeySpec, Support};
use crate::prefix::PREFIXES;

/// A status word for the matrix and the migration report.
pub(crate) fn status_word(s: Support) -> &'static str {
    match s {
        Support::Supported => "supported",
        Support::Different(_) => "supported, different semantics",
        Support::NoEffect(_) => "accepted, no effect",
        Support::Unsupported(_) => "not supported, no effect",
        Support::Refused(_) => "refused",
    }
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn row(out: &mut String, k: &KeySpec) {
    let default = if k.default.is_empty() { "-" } else { k.default };
    let values = if k.values.is_empty() { "-" } else { k.values };
    let mut status = status_word(k.support).to_owned();
    if k.security {
        status.push_str(" (fails closed)");
    }
    let note = match k.support {
        Support::Supported => k.doc.to_owned(),
        Support::Different(n) => format!("{}. **Differs:** {n}", k.doc),
        Support::NoEffect(why) | Support::Unsupported(why) | Support::Refused(why) => {
            why.to_owned()
        }
    };
    let _ = writeln!(
        out,
        "| `{}` | N M H | {} | {} | {} | {} | {} | {} |",
        k.display_name(),
        cell(values),
        cell(default),
        k.scope,
        k.compat,
        status,
        cell(&note),
    );
}

/// Renders `docs/annotations.md`: every key of the registry by group, with its values,
/// default, scope, origin, status and description.
pub fn support_matrix() -> String {
    let mut out = String::new();
    let count = |f: fn(&Support) -> bool| KEYS.iter().filter(|k| f(&k.support)).count();
    let _ = writeln!(out, "# Annotation support matrix\n");
    let _ = writeln!(
        out,
        "<!-- Generated from mse-annotations/src/keys/; do not edit. Regenerate with: MSE_BLESS=1 cargo test -p mse-annotations --test matrix -->\n"
    );
    let _ = writeln!(
        out,
        "Every key is read under three prefixes, highest precedence first: {}. The first *valid* value wins; an invalid value under any prefix is reported even when another prefix supplies a valid one. Prefixes column: N = `{}`, M = `{}`, H = `{}`.\n",
        PREFIXES.map(|p| format!("`{p}`")).join(", "),
        PREFIXES[0],
        PREFIXES[1],
        PREFIXES[2],
    );
    let _ = writeln!(
        out,
        "A bad value is reported and the default applies, except for keys marked *fails closed* (security keys): then every route of the Ingress answers 503 until the value is fixed. `canary` with a value that is not a boolean leaves the Ingress out. Unknown keys under the three prefixes are reported with the nearest known key. `mse-lint` reports all of this before you deploy.\n"
    );
    let _ = writeln!(
        out,
        "{} keys and families: {} supported, {} supported with different semantics, {} accepted without effect, {} not supported, {} refused.\n",
        KEYS.len(),
        count(|s| matches!(s, Support::Supported)),
        count(|s| matches!(s, Support::Different(_))),
        count(|s| matches!(s, Support::NoEffect(_))),
        count(|s| matches!(s, Support::Unsupported(_))),
        count(|s| matches!(s, Support::Refused(_))),
    );
    let _ = writeln!(
        out,
        "Scope: *Ingress* = this Ingress's routes; *host* = every route of the host (the oldest Ingress setting it wins; for the host IP lists, every Ingress's list applies); *Service* = the Service port wherever it is used (the oldest Ingress setting it wins). Origin: *NGINX* = an ingress-nginx key; *Higress ext.* and *MSE ext.* = extensions."
    );
    for g in Group::ALL {
        let keys: Vec<&KeySpec> = KEYS.iter().filter(|k| k.group == g).collect();
        if keys.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n## {}\n", g.title());
        let _ = writeln!(
            out,
            "| key | prefixes | values | default | scope | origin | status | description |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
        for k in keys {
            row(&mut out, k);
        }
    }
    out
}
