//! The reference of the global configuration (`docs/configuration.md`), rendered from the
//! registry.

use std::fmt::Write;

use super::{GLOBAL_KEYS, GlobalGroup, GlobalKey, Layer, Status};

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn status_word(k: &GlobalKey) -> String {
    let mut s = match k.status {
        Status::Applied => "applied",
        Status::Different(_) => "applied, different semantics",
        Status::NotApplied(_) => "validated, not applied yet",
        Status::NoEffect(_) => "accepted, no effect",
        Status::Refused(_) => "refused",
    }
    .to_owned();
    if k.security {
        s.push_str(" (fails closed)");
    }
    s
}

fn source_word(layer: Layer) -> &'static str {
    match layer {
        Layer::ConfigMap => "ConfigMap",
        Layer::HigressConfig => "higress-config",
        Layer::MseIngressConfig => "MseIngressConfig",
        Layer::Flag => "flag",
        Layer::Default => "default",
    }
}

fn row(out: &mut String, k: &GlobalKey) {
    let dash = |s: &'static str| if s.is_empty() { "-" } else { s };
    let note = match k.status {
        Status::Applied => k.doc.to_owned(),
        Status::Different(n) => format!("{}. **Differs:** {n}", k.doc),
        Status::NotApplied(why) => format!("{}. **Not applied yet:** {why}", k.doc),
        Status::NoEffect(why) | Status::Refused(why) => why.to_owned(),
    };
    let mut key = format!("`{}`", k.display_key());
    if k.section {
        key.push_str(" (section)");
    }
    let _ = writeln!(
        out,
        "| {key} | {} | {} | {} | {} | {} |",
        source_word(k.layer),
        cell(dash(k.values)),
        cell(dash(k.default)),
        status_word(k),
        cell(&note),
    );
}

/// Renders `docs/configuration.md`: how the sources combine, then every key of every
/// source by group, with its values, default, status and description.
pub fn configuration_reference() -> String {
    let mut out = String::new();
    let count = |f: fn(&Status) -> bool| GLOBAL_KEYS.iter().filter(|k| f(&k.status)).count();
    let _ = writeln!(out, "# Global configuration reference\n");
    let _ = writeln!(
        out,
        "<!-- Generated from mse-annotations/src/global/; do not edit. Regenerate with: MSE_BLESS=1 cargo test -p mse-annotations --test configuration -->\n"
    );
    out.push_str(INTRO);
    let _ = writeln!(
        out,
        "\n{} keys: {} applied, {} applied with different semantics, {} validated but not applied yet, {} accepted without effect, {} refused.",
        GLOBAL_KEYS.len(),
        count(|s| matches!(s, Status::Applied)),
        count(|s| matches!(s, Status::Different(_))),
        count(|s| matches!(s, Status::NotApplied(_))),
        count(|s| matches!(s, Status::NoEffect(_))),
        count(|s| matches!(s, Status::Refused(_))),
    );
    for g in GlobalGroup::ALL {
        let mut keys: Vec<&GlobalKey> = GLOBAL_KEYS.iter().filter(|k| k.group == g).collect();
        if keys.is_empty() {
            continue;
        }
        keys.sort_by_key(|k| Layer::SOURCES.iter().position(|l| *l == k.layer));
        let _ = writeln!(out, "\n## {}\n", g.title());
        let _ = writeln!(
            out,
            "| key | source | values | default | status | description |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|");
        for k in keys {
            row(&mut out, k);
        }
    }
    out
}

const INTRO: &str = "\
The gateway reads one gateway-wide configuration from these sources, weakest first; for \
each setting the strongest source that has it wins:

1. **Built-in defaults** (ingress-nginx's, unless a row says otherwise). An application \
embedding the data plane sets its own defaults in `mse_proxy::ProxyConfig`; they stand where \
no source below sets the key.
2. **The ConfigMap named by `--configmap NAMESPACE/NAME`**: ingress-nginx's keys (source \
*ConfigMap*). Values are strings, as in ingress-nginx.
3. **The `higress-config` ConfigMap in the same namespace**: the YAML under its `higress` \
key (source *higress-config*; keys are paths such as `downstream.idleTimeout`). When \
`--configmap` names `higress-config` itself, its `higress` key is read this way and its \
other keys as ingress-nginx keys.
4. **Command-line flags given explicitly** (source *flag*). A flag left at its default is \
not a source: it is the built-in default, so a document overrides it. Given on the command \
line (or through its environment variable), it beats both ConfigMaps.
5. **The `MseIngressConfig` linked from the gateway's IngressClass** (`spec.parameters`, \
apiGroup `mse.alibabacloud.com`), for the fields it has (source *MseIngressConfig*).

Every source is read on each change, in file mode from the manifests, in kube mode from the \
cluster, and the result travels with the compiled route table: a new configuration applies \
without a restart to the requests and connections that start after it (settings of a \
connection, such as its timeouts, `keep-alive-requests` and whether the access log is on, are \
read when it is accepted, as nginx keeps an open connection on the configuration it started \
with). \
`/debug/config` shows the configuration in force and where each setting came from.

A bad value is reported (`invalid-config-value`, with the object, the key and the value) and \
that setting keeps its last good value; the other settings apply. At start-up, with no last \
good value, the next source's value or the default applies, except for the IP lists, which \
fail closed: the gateway answers 503 until the list is fixed. A `higress` YAML that cannot \
be parsed keeps every setting it had set. A valid key that this build does not apply yet is \
reported as `not-applied`; a key overridden by a stronger source as `overridden-config-key`; \
an unknown key as `unknown-config-key` (with the nearest known key); keys without meaning \
here as `no-effect`; injected configuration as `refused-config-key`. `mse-lint --configmap` \
reports the same.
";
