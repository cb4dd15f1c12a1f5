//! `mse-lint` end to end: the example manifest set in every format (golden files, rewritten
//! with `MSE_BLESS=1`), exit codes, standard input and file:line accuracy.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "helpers outside #[test] fns fail the test loudly"
)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs mse-lint from the workspace root, so that file names read `examples/lint/...`.
fn lint(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mse-lint"))
        .args(args)
        .current_dir(workspace())
        .output()
        .expect("mse-lint runs")
}

fn lint_stdin(args: &[&str], input: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mse-lint"))
        .args(args)
        .current_dir(workspace())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mse-lint starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// Compares with `tests/golden/<name>`, or rewrites it when `MSE_BLESS` is set.
fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("MSE_BLESS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        expected == actual,
        "{} differs (MSE_BLESS=1 rewrites it):\n--- expected\n{expected}\n--- actual\n{actual}",
        path.display()
    );
}

#[test]
fn human_output_with_migration_report_matches_the_golden_file() {
    let o = lint(&["--summary", "examples/lint"]);
    assert_eq!(o.status.code(), Some(1), "errors exit 1");
    golden("human.txt", &stdout(&o));
}

#[test]
fn json_output_matches_the_golden_file_and_the_documented_schema() {
    let o = lint(&["--format", "json", "--summary", "examples/lint"]);
    assert_eq!(o.status.code(), Some(1));
    let text = stdout(&o);
    golden("lint.json", &text);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["schema"], "mse-lint/v1");
    let diags = v["diagnostics"].as_array().unwrap();
    assert_eq!(
        v["counts"]["error"].as_u64().unwrap() as usize,
        diags.iter().filter(|d| d["severity"] == "error").count()
    );
    for d in diags {
        for field in ["severity", "code", "message"] {
            assert!(d[field].is_string(), "{field} in {d}");
        }
    }
    let classes: Vec<&str> = v["migration"]["annotations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["class"].as_str().unwrap())
        .collect();
    for c in ["supported", "different", "no-effect", "refused", "unknown"] {
        assert!(classes.contains(&c), "{c} in {classes:?}");
    }
}

#[test]
fn github_output_matches_the_golden_file() {
    let o = lint(&["--format", "github", "examples/lint"]);
    assert_eq!(o.status.code(), Some(1));
    let text = stdout(&o);
    golden("github.txt", &text);
    let commands: Vec<&str> = text.lines().filter(|l| l.starts_with("::")).collect();
    assert!(commands.iter().all(|l| l.starts_with("::error file=")
        || l.starts_with("::warning file=")
        || l.starts_with("::notice file=")));
}

#[test]
fn every_annotation_diagnostic_points_at_the_line_of_its_annotation() {
    let o = lint(&["--format", "json", "examples/lint"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let mut checked = 0;
    for d in v["diagnostics"].as_array().unwrap() {
        let (Some(file), Some(line), Some(key)) =
            (d["file"].as_str(), d["line"].as_u64(), d["key"].as_str())
        else {
            continue;
        };
        if key.starts_with("spec.") {
            continue;
        }
        let text = std::fs::read_to_string(workspace().join(file)).unwrap();
        let at = text.lines().nth(line as usize - 1).unwrap();
        assert!(
            at.trim_start().starts_with(key),
            "{file}:{line} is {at:?}, not {key}"
        );
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} annotation diagnostics");
}

#[test]
fn warnings_alone_exit_0_unless_strict_and_stdin_is_read_from_dash() {
    let yaml = "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: web\n  annotations:\n    nginx.ingress.kubernetes.io/proxy-read-timout: \"5\"\nspec:\n  ingressClassName: mse\n  defaultBackend: { service: { name: web, port: { number: 80 } } }\n---\napiVersion: v1\nkind: Service\nmetadata: { name: web }\nspec: { ports: [{ port: 80 }] }\n";
    let o = lint_stdin(&["-"], yaml);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(
        stdout(&o)
            .lines()
            .any(|l| l.starts_with("<stdin>:6: warning: Ingress default/web: nginx.ingress.kubernetes.io/proxy-read-timout: unknown annotation")),
        "{}",
        stdout(&o)
    );
    let o = lint_stdin(&["--strict", "-"], yaml);
    assert_eq!(o.status.code(), Some(1));
    let o = lint_stdin(&["--strict", "--min-severity", "error", "-"], yaml);
    assert_eq!(o.status.code(), Some(1), "hidden warnings still count");
    assert!(!stdout(&o).contains("warning:"));
}

#[test]
fn other_ingress_classes_are_reported_and_can_be_linted_with_ingress_class() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: web\n  annotations:\n    nginx.ingress.kubernetes.io/server-snippet: \"x\"\nspec:\n  ingressClassName: nginx\n  defaultBackend: { service: { name: web, port: { number: 80 } } }\n---\napiVersion: v1\nkind: Service\nmetadata: { name: web }\nspec: { ports: [{ port: 80 }] }\n";
    std::fs::write(dir.path().join("web.yaml"), yaml).unwrap();
    let path = dir.path().to_str().unwrap();
    let o = lint(&[path]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("run with --ingress-class nginx"),
        "{}",
        stdout(&o)
    );
    let o = lint(&["--ingress-class", "nginx", path]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("[refused-annotation]"));
}

#[test]
fn unreadable_input_and_usage_errors_exit_2() {
    let o = lint(&["examples/lint/no-such-file.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot read"));
    assert_eq!(
        lint(&["--format", "xml", "examples/lint"]).status.code(),
        Some(2)
    );
    assert_eq!(lint(&[]).status.code(), Some(2));
    assert_eq!(lint(&["-", "-"]).status.code(), Some(2));
    assert_eq!(lint(&["--help"]).status.code(), Some(0));
}

#[test]
fn good_manifests_exit_0() {
    let o = lint(&["examples/lint/shop.yaml"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains(": 0 errors,"), "{}", stdout(&o));
}

#[test]
fn configmap_keys_are_linted_with_the_gateways_rules() {
    let input = "apiVersion: v1
kind: ConfigMap
metadata: { name: gateway, namespace: ingress }
data:
  keep-alive: \"ten\"
  keep-alive-requsts: \"5\"
  server-snippet: \"return 200;\"
  use-gzip: \"true\"
  upstream-keepalive-time: \"30\"
";
    let o = lint_stdin(&["--configmap", "ingress/gateway", "-"], input);
    assert_eq!(o.status.code(), Some(1), "the refused snippet is an error");
    let text = stdout(&o);
    for want in [
        "<stdin>:1: warning: ConfigMap ingress/gateway: keep-alive: expected seconds",
        "keep-alive-requsts: not a key this gateway reads; did you mean keep-alive-requests? (value \"5\") [unknown-config-key]",
        "<stdin>:1: error: ConfigMap ingress/gateway: server-snippet: refused:",
        "upstream-keepalive-time: valid, but this gateway build does not apply it yet",
    ] {
        assert!(text.contains(want), "{want} missing from:\n{text}");
    }
    // Applied keys are not reported.
    assert!(!text.contains("use-gzip"), "{text}");
    // Without --configmap the ConfigMap is an ordinary one.
    let o = lint_stdin(&["-"], input);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    // The flag needs a namespace.
    assert_eq!(
        lint(&["--configmap", "gateway", "-"]).status.code(),
        Some(2)
    );
}

/// The IP lists are enforced: valid ones lint clean, and a bad entry is an error naming
/// the key and the value (the routes would answer 503).
#[test]
fn ip_lists_lint_clean_when_valid_and_fail_closed_when_not() {
    let ingress = |annotations: &str| {
        format!(
            "apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: admin
  namespace: shop
  annotations:
{annotations}
spec:
  ingressClassName: mse
  rules: [{{ host: admin.example.com }}]
"
        )
    };
    let valid = ingress(
        "    nginx.ingress.kubernetes.io/whitelist-source-range: \"10.0.0.0/8, 2001:db8::/32\"
    nginx.ingress.kubernetes.io/denylist-source-range: 10.9.0.0/16
    mse.ingress.kubernetes.io/domain-whitelist-source-range: 10.0.0.0/8
    mse.ingress.kubernetes.io/domain-blacklist-source-range: 192.0.2.1",
    );
    let o = lint_stdin(&["--strict", "-"], &valid);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(
        !stdout(&o).contains("security-not-enforced"),
        "{}",
        stdout(&o)
    );
    let bad = ingress(
        "    mse.ingress.kubernetes.io/domain-blacklist-source-range: \"192.0.2.0/24, nope\"",
    );
    let o = lint_stdin(&["-"], &bad);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let text = stdout(&o);
    assert!(
        text.contains("<stdin>:7: error: Ingress shop/admin: mse.ingress.kubernetes.io/domain-blacklist-source-range: entry \"nope\""),
        "{text}"
    );
    assert!(text.contains("(value \"192.0.2.0/24, nope\")"), "{text}");
}

#[test]
fn client_certificate_settings_and_certificate_expiry_are_linted() {
    let out = lint(&[
        "--format",
        "json",
        "bins/mse-lint/tests/fixtures/client_tls.yaml",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let found: Vec<(String, String, String)> = doc["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["severity"].as_str().unwrap().to_owned(),
                d["code"].as_str().unwrap().to_owned(),
                d["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let want = |s: &str, c: &str, n: &str| (s.to_owned(), c.to_owned(), n.to_owned());
    assert_eq!(
        found,
        [
            // Served anyway, as NGINX does.
            want("warning", "certificate-expired", "secure"),
            // Other client-certificate settings on the same host fail closed.
            want("error", "tls-policy-conflict", "stricter"),
            want("error", "invalid-value", "typo"),
        ],
        "{}",
        stdout(&out)
    );
}
