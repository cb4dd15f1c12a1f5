//! `mse-lint`: what the mse-ingress gateway would say about a set of manifests, before they
//! are deployed. Exit status: 0 no errors, 1 errors (or warnings with `--strict`), 2 usage
//! error or unreadable input.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use mse_controller::FileSource;
use mse_model::{AnnotationLines, Severity, Snapshot, load_manifests};
use mse_router::lint::{Format, RenderOptions, lint};
use mse_router::{CompileOptions, ObjectRef};

/// The name stdin gets in diagnostics.
const STDIN: &str = "<stdin>";

/// Lints Kubernetes Ingress manifests for the mse-ingress gateway: every annotation
/// (ingress-nginx, MSE and Higress prefixes) and every cross-object problem, with file and
/// line.
#[derive(Debug, Parser)]
#[command(name = "mse-lint", version, about)]
struct Cli {
    /// Output format: human, json (schema mse-lint/v1) or github (workflow annotations).
    #[arg(long, value_enum, default_value_t = FormatArg::Human)]
    format: FormatArg,
    /// IngressClass name served where no IngressClass object names it (as the gateway's
    /// --ingress-class). Use `nginx` to lint Ingresses written for ingress-nginx.
    #[arg(long, default_value = "mse", value_name = "NAME")]
    ingress_class: String,
    /// The ConfigMap of gateway-wide settings, as the gateway's --configmap: its keys (and
    /// those of higress-config in its namespace) are checked too. The MseIngressConfig an
    /// IngressClass of ours links is always checked.
    #[arg(long, value_name = "NS/NAME", value_parser = parse_configmap)]
    configmap: Option<ObjectRef>,
    /// Add a migration report: every annotation found, classified as supported, supported
    /// with different semantics, accepted without effect, refused or unknown.
    #[arg(long)]
    summary: bool,
    /// Exit 1 on warnings too.
    #[arg(long)]
    strict: bool,
    /// Hide diagnostics below this severity (they still count).
    #[arg(long, value_enum, default_value_t = Level::Info, value_name = "LEVEL")]
    min_severity: Level,
    /// Manifest files or directories (read recursively: *.yaml, *.yml, *.json), or `-`
    /// for standard input.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum FormatArg {
    Human,
    Json,
    Github,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Level {
    Info,
    Warning,
    Error,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match run(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(message) => {
            eprintln!("mse-lint: {message}");
            ExitCode::from(2)
        }
    }
}

/// Reads the inputs, lints, prints; returns the exit code, or a message for exit 2.
fn run(cli: &Cli) -> Result<u8, String> {
    let stdin_count = cli.paths.iter().filter(|p| p.as_os_str() == "-").count();
    if stdin_count > 1 {
        return Err("`-` (standard input) can be given only once".to_owned());
    }
    let files: Vec<&PathBuf> = cli.paths.iter().filter(|p| p.as_os_str() != "-").collect();
    for p in &files {
        std::fs::metadata(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
    }

    let mut snapshot = if files.is_empty() {
        Snapshot::default()
    } else {
        Snapshot::clone(&FileSource::new(files.iter().copied()).load())
    };
    if let Some(d) = snapshot
        .diagnostics
        .iter()
        .find(|d| d.code == "unreadable-file")
    {
        return Err(d.message.clone());
    }

    if stdin_count == 1 {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("cannot read standard input: {e}"))?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        let loaded = load_manifests(text, Some(STDIN));
        snapshot.extend(loaded.objects);
        snapshot.diagnostics.extend(loaded.diagnostics);
        snapshot
            .annotation_lines
            .insert(STDIN.into(), AnnotationLines::scan(text));
    }

    let options = CompileOptions {
        ingress_class: cli.ingress_class.clone(),
        configmap: cli.configmap.clone(),
        ..CompileOptions::default()
    };
    let report = lint(&snapshot, &options, &snapshot.annotation_lines);
    let format = match cli.format {
        FormatArg::Human => Format::Human,
        FormatArg::Json => Format::Json,
        FormatArg::Github => Format::Github,
    };
    let min = match cli.min_severity {
        Level::Info => Severity::Info,
        Level::Warning => Severity::Warning,
        Level::Error => Severity::Error,
    };
    let text = report.render(
        &RenderOptions::new(format)
            .with_summary(cli.summary)
            .with_min_severity(min),
    );
    let mut out = std::io::stdout().lock();
    // A closed pipe (`mse-lint ... | head`) is not an error of the manifests.
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    Ok(report.exit_code(cli.strict))
}

/// `--configmap`: the namespace is required, as for the gateway's flag.
fn parse_configmap(s: &str) -> Result<ObjectRef, String> {
    let r: ObjectRef = s.parse().map_err(|e| format!("{e}"))?;
    if r.namespace.is_none() {
        return Err("expected NAMESPACE/NAME".to_owned());
    }
    Ok(r)
}
