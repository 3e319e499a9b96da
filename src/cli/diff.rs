//! `breakfix diff`: the same experiments on a pull request's base and head,
//! the migration between them measured, regressions in a PR comment. A thin
//! caller of [`breakfix::diff`].

use std::path::PathBuf;

use clap::Args;
use tokio_util::sync::CancellationToken;

use breakfix::cluster::{self, KindOptions};
use breakfix::diff::git::{Checkout, GitError, Repo};
use breakfix::diff::{self, DiffOptions, Sides};
use breakfix::report;

use super::run::{cluster_error, spawn_signal_handler};
use super::{EXIT_USAGE, load_all};

#[derive(Args)]
pub struct DiffArgs {
    /// Experiment files or folders of them, inside the repository; read at
    /// both versions.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// The version to compare against: a branch, tag or commit (`origin/main`).
    #[arg(long)]
    base: String,
    /// The version under test (default: the work tree, uncommitted changes included).
    #[arg(long)]
    head: Option<String>,
    /// Run only experiments whose experiment or baseline objects the change touches.
    #[arg(long)]
    changed_only: bool,
    /// Run an experiment that errored (harness trouble, not an SLO) up to N more times.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=5))]
    retries: u32,
    /// A canary's availability during the migration below this is a regression.
    #[arg(long, default_value = "99%", value_parser = parse_percent)]
    migration_availability: f64,
    /// Override every experiment's `repeat` on both sides.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100))]
    repeat: Option<u32>,
    /// Write the diff as Markdown fit for a pull-request comment here.
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// Write the diff as JSON here (both run reports, the migration, the comparison).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Name of the kind cluster to create (or reuse with --reuse).
    #[arg(long, default_value = "breakfix-diff")]
    cluster_name: String,
    /// Worker nodes besides the control plane [default: $BREAKFIX_WORKERS, else 0].
    /// Not with --context, where the environment's value is ignored.
    #[arg(long)]
    workers: Option<u32>,
    /// Run on the kind cluster breakfix created earlier with this name.
    #[arg(long)]
    reuse: bool,
    /// Keep the cluster afterwards.
    #[arg(long)]
    keep: bool,
    /// Run on an existing kubeconfig context instead of kind (named explicitly only).
    #[arg(long, conflicts_with_all = ["reuse", "workers"])]
    context: Option<String>,
    /// Kubeconfig for --context.
    #[arg(long, requires = "context")]
    kubeconfig: Option<PathBuf>,
    /// Where the undo journals go (default: ~/.local/state/breakfix/journal).
    #[arg(long, env = "BREAKFIX_JOURNAL_DIR")]
    journal_dir: Option<PathBuf>,
}

fn parse_percent(text: &str) -> Result<f64, String> {
    let number = text.trim().trim_end_matches('%');
    match number.parse::<f64>() {
        Ok(v) if (0.0..=100.0).contains(&v) => Ok(v / 100.0),
        _ => Err(format!("`{text}` is not a percentage like `99%`")),
    }
}

fn git_error(e: &GitError) -> u8 {
    match e.help() {
        Some(help) => eprintln!("error: {e}; {help}"),
        None => eprintln!("error: {e}"),
    }
    EXIT_USAGE
}

/// Loads the experiments under `paths` as they are in `checkout`.
fn load_side(
    repo: &Repo,
    checkout: &Checkout,
    paths: &[PathBuf],
) -> Result<Vec<breakfix::experiment::LoadedExperiment>, u8> {
    let mut mapped = Vec::new();
    for p in paths {
        mapped.push(checkout.path_of(repo, p).map_err(|e| git_error(&e))?);
    }
    load_all(&mapped).inspect_err(|_| {
        eprintln!(
            "(in the {} version, `{}`)",
            if checkout.is_temporary() {
                "checked-out"
            } else {
                "work tree's"
            },
            checkout.label
        );
    })
}

pub async fn diff(args: DiffArgs) -> u8 {
    let repo = match Repo::discover(&args.paths[0]) {
        Ok(r) => r,
        Err(e) => return git_error(&e),
    };
    let base = match repo.checkout(&args.base) {
        Ok(c) => c,
        Err(e) => return git_error(&e),
    };
    let head = match &args.head {
        Some(reference) => repo.checkout(reference),
        None => repo.work_tree(),
    };
    let head = match head {
        Ok(c) => c,
        Err(e) => return git_error(&e),
    };
    // Both versions must load (and render) before any cluster is touched.
    let base_experiments = match load_side(&repo, &base, &args.paths) {
        Ok(e) => e,
        Err(code) => return code,
    };
    let head_experiments = match load_side(&repo, &head, &args.paths) {
        Ok(e) => e,
        Err(code) => return code,
    };

    let workers = match super::resolve_workers(args.workers, args.context.is_some()) {
        Ok(w) => w,
        Err(code) => return code,
    };
    let cancel = CancellationToken::new();
    spawn_signal_handler(cancel.clone());
    eprintln!(
        "breakfix diff: `{}` ({}) → `{}`{}; getting a cluster…",
        base.label,
        short(&base.commit),
        head.label,
        if head.dirty {
            " (uncommitted changes included)"
        } else {
            ""
        }
    );
    let mut attempt = 0;
    let handle = loop {
        let handle = match &args.context {
            Some(context) => cluster::existing_context(args.kubeconfig.as_deref(), context).await,
            None => {
                let opts = KindOptions {
                    name: args.cluster_name.clone(),
                    workers,
                    reuse: args.reuse,
                    ..KindOptions::default()
                };
                tokio::select! {
                    r = cluster::kind::ensure(&opts) => r,
                    _ = cancel.cancelled() => {
                        eprintln!("interrupted before anything was applied");
                        return 130;
                    }
                }
            }
        };
        match handle {
            Ok(h) => break h,
            // A cluster that would not start is harness trouble: retried.
            Err(e) if attempt < args.retries && e.help().is_none() => {
                attempt += 1;
                eprintln!("error: {e}; retrying ({attempt} of {})", args.retries);
            }
            Err(e) => return cluster_error(&e),
        }
    };
    eprintln!(
        "cluster: {} `{}` ready",
        handle.record.provider, handle.record.name
    );

    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let progress = tokio::spawn(report::progress::show(rx));
    let mut options = DiffOptions {
        repeat: args.repeat,
        changed_only: args.changed_only,
        retries: args.retries,
        migration_availability: args.migration_availability,
        cluster: Some(handle.record.clone()),
        journal_dir: args.journal_dir.clone(),
        events: Some(tx),
        cancel: cancel.clone(),
        ..DiffOptions::default()
    };
    let sides = Sides {
        base: &base_experiments,
        head: &head_experiments,
        base_label: base.label.clone(),
        head_label: head.label.clone(),
    };
    let mut report = diff::run_diff(handle.client.clone(), sides, &options).await;
    options.events = None;
    drop(options);
    let _ = progress.await;
    report.base.commit = Some(base.commit.clone());
    report.head.commit = (!head.commit.is_empty()).then(|| head.commit.clone());
    report.head.dirty = head.dirty;

    let markdown = diff::markdown::to_markdown(&report);
    print!("{}", summary(&report));
    let mut code = report.exit_code() as u8;
    if let Some(path) = &args.markdown
        && let Err(e) = report::write_file(path, &markdown)
    {
        eprintln!("error: {e}");
        code = code.max(EXIT_USAGE);
    }
    if let Some(path) = &args.json {
        let written = serde_json::to_string_pretty(&report)
            .map_err(|e| e.to_string())
            .and_then(|t| report::write_file(path, &t).map_err(|e| e.to_string()));
        if let Err(e) = written {
            eprintln!("error: {e}");
            code = code.max(EXIT_USAGE);
        }
    }
    if handle.created && !args.keep && args.context.is_none() {
        eprintln!(
            "deleting kind cluster `{}` (pass --keep to keep it)",
            handle.record.name
        );
        if let Err(e) = cluster::kind::delete(&handle.record.name).await {
            eprintln!("warning: {e}");
        }
    }
    code
}

fn short(commit: &str) -> &str {
    commit.get(..10).unwrap_or(commit)
}

/// What the terminal shows: the verdict, then one line per regression and
/// per harness error.
fn summary(report: &diff::DiffReport) -> String {
    let regressions = report.regressions();
    let errors = report.harness_errors();
    let mut out = String::new();
    for r in &regressions {
        out.push_str(&format!("REGRESSION  {r}\n"));
    }
    for e in &errors {
        out.push_str(&format!("ERROR       {e}\n"));
    }
    for s in report.selection.iter().filter(|s| !s.run) {
        out.push_str(&format!("SKIPPED     {}: {}\n", s.experiment, s.reason));
    }
    if let Some(m) = &report.migration {
        for b in &m.baselines {
            out.push_str(&format!(
                "MIGRATION   {}: rollout {}, worst canary {}\n",
                b.baseline,
                b.rollout_seconds
                    .map_or("never finished".into(), |s| format!("{s:.1}s")),
                b.worst_availability
                    .map_or("-".into(), |r| format!("{:.1}%", r * 100.0)),
            ));
        }
    }
    let counts = report.comparison.counts();
    out.push_str(&format!(
        "{} regression(s), {} error(s), {} improvement(s), {} unchanged; `{}` → `{}`\n",
        regressions.len(),
        errors.len(),
        counts.improvements,
        counts.unchanged,
        report.base.label,
        report.head.label
    ));
    out
}
