//! The command-line front end: argument parsing, user-facing diagnostics and
//! exit codes (0 all SLOs met, 1 an SLO missed, 2 bad input or environment,
//! 128 + the signal's number when stopped by SIGINT, SIGTERM, SIGHUP or
//! SIGQUIT after the revert: 130, 143, 129, 131). Everything else lives in the library.

/// `eprintln!` that never panics: stderr may be a terminal that closed
/// (SIGHUP) or a pipe nobody reads any more, and the run must still revert
/// and write its report files.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// `print!` that never panics (see `say!`).
macro_rules! show {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut out = std::io::stdout();
        let _ = write!(out, $($arg)*);
        let _ = out.flush();
    }};
}

mod compare;
mod diff;
mod gameday;
mod report;
mod run;
mod upgrade;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use breakfix::experiment;
use breakfix::vocab::Diagnostic;

/// Exit code for bad input or a broken environment.
pub const EXIT_USAGE: u8 = 2;

#[derive(Parser)]
#[command(
    name = "breakfix",
    version,
    about = "Break Kubernetes on purpose, the ways real teams did; assert detection and recovery meet SLOs"
)]
struct Cli {
    /// More log output (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run experiments on a fresh (or reused) kind cluster, or a named context.
    Run(run::RunArgs),
    /// Run the same experiments on a git base and head of your configuration,
    /// measure the migration between them, and report what regressed.
    Diff(diff::DiffArgs),
    /// Play an experiment as a game day: people find and fix the fault,
    /// timed and hinted, with a live page and a debrief; or talk to the
    /// running one (`declare`, `status`, `hint`, `stop`).
    Gameday(gameday::GamedayArgs),
    /// Upgrade a kind cluster in place (--from → --to), measured step by
    /// step, with the experiments run before and after and compared.
    Upgrade(Box<upgrade::UpgradeArgs>),
    /// Check experiment files without a cluster.
    Validate {
        /// Experiment files or folders of them.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Print the JSON Schema of experiment files (or, with --report, of the JSON report).
    Schema {
        /// The schema of `breakfix run --json` reports instead.
        #[arg(long)]
        report: bool,
    },
    /// Render a stored JSON report (from `run --json`) as Markdown, HTML or
    /// JUnit, or merge shard reports into one (`report merge`).
    Report(report::ReportArgs),
    /// Compare two JSON reports (before and after): regressions beyond the
    /// noise of the repeats, improvements, unchanged; exit 1 on a regression.
    Compare(compare::CompareArgs),
    /// Show the fault catalogue and the failure story behind each fault.
    List {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Revert whatever crashed runs left behind, from their journals; remove
    /// finished journals past their retention.
    Cleanup {
        /// Folder of journals (default: ~/.local/state/breakfix/journal).
        #[arg(long, env = "BREAKFIX_JOURNAL_DIR")]
        journal_dir: Option<PathBuf>,
        /// Finished journals older than this many days are removed (a
        /// journal with anything left to revert never is).
        #[arg(long, env = "BREAKFIX_JOURNAL_RETENTION_DAYS", default_value_t = 30)]
        journal_retention_days: u32,
    },
    /// Manage the kind clusters breakfix creates.
    Cluster {
        #[command(subcommand)]
        command: ClusterCommand,
    },
}

#[derive(Subcommand)]
enum ClusterCommand {
    /// Create a cluster (or reuse the one breakfix created with this name).
    Up(ClusterUpArgs),
    /// Delete clusters breakfix created (like `kind delete cluster`).
    Down {
        /// The clusters to delete.
        #[arg(default_value = "breakfix")]
        names: Vec<String>,
        /// Delete every cluster breakfix created (`breakfix cluster list`),
        /// e.g. ones left by killed test runs that dockerd restarts.
        #[arg(long, conflicts_with = "names")]
        all: bool,
    },
    /// List the clusters breakfix created.
    List,
}

#[derive(Args)]
struct ClusterUpArgs {
    #[arg(long, default_value = "breakfix")]
    name: String,
    /// Worker nodes besides the control plane [default: $BREAKFIX_WORKERS, else 0].
    #[arg(long)]
    workers: Option<u32>,
}

/// `BREAKFIX_WORKERS`, read here rather than by clap: clap counts a value
/// from the environment as a flag given, so it would conflict with
/// `--context` for anyone who has it set (as `just` does).
pub fn workers_from_env() -> Result<Option<u32>, String> {
    match std::env::var("BREAKFIX_WORKERS") {
        Ok(v) if v.trim().is_empty() => Ok(None),
        Ok(v) => v.trim().parse().map(Some).map_err(|_| {
            format!("BREAKFIX_WORKERS={v} is not a number of worker nodes (0, 1, 2, …)")
        }),
        Err(_) => Ok(None),
    }
}

/// The worker count of a command that takes `--workers` and `--context`:
/// the flag, else `BREAKFIX_WORKERS`, else 0. With `--context` (which clap
/// keeps apart from `--workers`) the environment's value is ignored, with a
/// note when it would have mattered. `Err` is the exit code.
pub fn resolve_workers(flag: Option<u32>, context: bool) -> Result<u32, u8> {
    if let Some(w) = flag {
        return Ok(w);
    }
    match workers_from_env() {
        Ok(Some(w)) if context => {
            if w > 0 {
                say!("note: BREAKFIX_WORKERS={w} ignored: --context names an existing cluster");
            }
            Ok(0)
        }
        Ok(w) => Ok(w.unwrap_or(0)),
        Err(message) => {
            say!("error: {message}");
            Err(EXIT_USAGE)
        }
    }
}

/// Entry point: parse, dispatch, map errors to exit codes.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { 0 });
        }
    };
    init_tracing(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let code = runtime.block_on(dispatch(cli.command));
    ExitCode::from(code)
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        // kube's client logs every failed request as an error and every
        // watch the server cut as a warning (an API server restarting under
        // an upgrade makes dozens of both), and its watcher retries broken
        // watches itself; breakfix reports what they cost (a watch gap, a
        // failed measurement), so that noise stays out by default. Its TLS
        // warnings (a CA bundle that cannot be reloaded) stay in.
        0 => {
            "warn,kube_client::client::builder=off,kube_client::client=error,kube_client::client::tls=warn,kube_runtime::watcher=off"
        }
        1 => "info,breakfix=info",
        _ => "debug,breakfix=debug,hyper=info,tower=info,rustls=info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        // A failed write is reported with eprintln!, which panics when
        // stderr is gone (a terminal closed by SIGHUP): keep quiet instead.
        .log_internal_errors(false)
        .try_init();
}

async fn dispatch(command: Command) -> u8 {
    match command {
        Command::Run(args) => run::run(args).await,
        Command::Diff(args) => diff::diff(args).await,
        Command::Gameday(args) => gameday::gameday(args).await,
        Command::Upgrade(args) => upgrade::upgrade(*args).await,
        Command::Validate { paths } => validate(&paths),
        Command::Schema { report } => {
            let schema = if report {
                breakfix::runner::outcome::report_json_schema()
            } else {
                experiment::json_schema()
            };
            println!(
                "{}",
                serde_json::to_string_pretty(&schema).unwrap_or_default()
            );
            0
        }
        Command::Report(args) => report::report(args),
        Command::Compare(args) => compare::compare(args),
        Command::List { json } => list(json),
        Command::Cleanup {
            journal_dir,
            journal_retention_days,
        } => run::cleanup(journal_dir, journal_retention_days).await,
        Command::Cluster { command } => match command {
            ClusterCommand::Up(args) => {
                let workers = match args
                    .workers
                    .map(Ok)
                    .unwrap_or_else(|| workers_from_env().map(|w| w.unwrap_or(0)))
                {
                    Ok(w) => w,
                    Err(message) => {
                        eprintln!("error: {message}");
                        return EXIT_USAGE;
                    }
                };
                run::cluster_up(&args.name, workers).await
            }
            ClusterCommand::Down { names, all } => run::cluster_down(names, all).await,
            ClusterCommand::List => {
                let clusters = breakfix::cluster::KindCluster::all_recorded();
                if clusters.is_empty() {
                    println!("no clusters created by breakfix");
                }
                for c in clusters {
                    println!(
                        "{}\t{} worker(s)\t{}\tkubeconfig {}",
                        c.name,
                        c.workers,
                        c.node_image,
                        c.kubeconfig.display()
                    );
                }
                0
            }
        },
    }
}

/// Loads every experiment under `paths`, printing all diagnostics.
pub fn load_all(paths: &[PathBuf]) -> Result<Vec<experiment::LoadedExperiment>, u8> {
    let files = experiment::collect_files(paths).map_err(|d| report_diagnostics(&[d]))?;
    let mut loaded = Vec::new();
    let mut problems = Vec::new();
    let mut names = std::collections::HashMap::new();
    for file in files {
        match experiment::load_experiment(&file) {
            Ok(exp) => {
                if let Some(other) = names.insert(exp.name().to_string(), file.clone()) {
                    problems.push(Diagnostic::file(
                        &file,
                        format!(
                            "experiment name `{}` is also used by {}",
                            exp.name(),
                            other.display()
                        ),
                    ));
                }
                loaded.push(exp);
            }
            Err(mut ds) => problems.append(&mut ds),
        }
    }
    if problems.is_empty() {
        Ok(loaded)
    } else {
        Err(report_diagnostics(&problems))
    }
}

pub fn report_diagnostics(problems: &[Diagnostic]) -> u8 {
    for d in problems {
        eprintln!("{d}\n");
    }
    eprintln!(
        "error: {} problem{} found; nothing was run",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    EXIT_USAGE
}

fn validate(paths: &[PathBuf]) -> u8 {
    match load_all(paths) {
        Ok(loaded) => {
            for exp in &loaded {
                println!(
                    "ok {} ({}, {})",
                    exp.path.display(),
                    exp.name(),
                    exp.experiment.spec.fault.label()
                );
            }
            0
        }
        Err(code) => code,
    }
}

fn list(json: bool) -> u8 {
    let entries = breakfix::fault::catalogue();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&entries).unwrap_or_default()
        );
        return 0;
    }
    print!("{}", render_catalogue(&entries, LIST_WIDTH));
    0
}

/// Width `breakfix list` wraps its text at.
const LIST_WIDTH: usize = 100;

/// The catalogue as `breakfix list` prints it: one block per fault, its
/// text wrapped at `width` under a hanging label.
fn render_catalogue(entries: &[breakfix::fault::CatalogueEntry], width: usize) -> String {
    use breakfix::vocab::SignalKind;
    let mut out = format!(
        "{} faults (keys under `spec.fault`; `breakfix schema` lists their settings)\n\
         signals: every signal a fault can produce, what spec.expect.signals may name\n\
         default: what counts as detection when spec.expect.signals is empty\n\n",
        entries.len()
    );
    let names = |signals: &[SignalKind]| {
        signals
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    for e in entries {
        let signals = if e.signals == SignalKind::ALL {
            "any: list the ones you expect in spec.expect.signals".to_string()
        } else {
            names(e.signals)
        };
        let default = if e.default_signals.is_empty() {
            "none: spec.expect.signals is required".to_string()
        } else {
            names(e.default_signals)
        };
        let mut lines = vec![
            ("what", e.what),
            ("signals", &signals),
            ("default", &default),
        ];
        if e.self_healing {
            lines.push((
                "heals",
                "by itself: `recovery: selfHeal` waits for Kubernetes",
            ));
        }
        lines.push(("story", e.story));
        out.push_str(e.fault);
        out.push('\n');
        for (label, text) in lines {
            out.push_str(&wrap_labelled(label, text, width));
        }
        out.push('\n');
    }
    out
}

/// `  label    text…` with the text word-wrapped at `width`, continuation
/// lines indented under the text.
fn wrap_labelled(label: &str, text: &str, width: usize) -> String {
    let indent = 11;
    let mut out = format!("  {label:<8} ");
    let mut column = indent;
    for word in text.split_whitespace() {
        if column > indent && column + 1 + word.chars().count() > width {
            out.push('\n');
            out.push_str(&" ".repeat(indent));
            column = indent;
        } else if column > indent {
            out.push(' ');
            column += 1;
        }
        out.push_str(word);
        column += word.chars().count();
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod list_tests {
    use super::*;

    #[test]
    fn long_text_wraps_under_its_label() {
        let text = wrap_labelled("what", "one two three four five six", 22);
        assert_eq!(
            text,
            "  what     one two\n           three four\n           five six\n"
        );
    }

    #[test]
    fn every_fault_is_listed_and_open_ended_signals_say_so() {
        let entries = breakfix::fault::catalogue();
        let text = render_catalogue(&entries, LIST_WIDTH);
        for e in &entries {
            assert!(
                text.contains(&format!("\n{}\n", e.fault)),
                "{} missing",
                e.fault
            );
        }
        assert!(
            text.contains("signals  any: list the ones you expect"),
            "{text}"
        );
        assert!(
            text.contains("default  none: spec.expect.signals is required"),
            "{text}"
        );
        assert!(text.contains("heals    by itself"), "{text}");
        assert!(
            text.lines().all(|l| l.chars().count() <= LIST_WIDTH),
            "{text}"
        );
    }
}
