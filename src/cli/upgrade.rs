//! `breakfix upgrade`: the suite on a kind cluster at `--from`, an in-place
//! upgrade to `--to` measured step by step, the suite again, and the
//! before/after comparison. A thin caller of
//! [`breakfix::runner::upgrade::suite::UpgradeRun`] and
//! [`breakfix::compare`].

use std::path::{Path, PathBuf};

use clap::Args;
use tokio_util::sync::CancellationToken;

use breakfix::cluster::versions::{HostCgroups, KubeVersion, VersionTable};
use breakfix::cluster::{self, KindOptions};
use breakfix::compare::{self, Change, CompareOptions, Comparison};
use breakfix::experiment::upgrade::{LoadedUpgradePlan, load_upgrade_plan};
use breakfix::journal::Journal;
use breakfix::report::upgrade::Verdict;
use breakfix::report::{self};
use breakfix::runner::new_run_id;
use breakfix::runner::transition::TransitionSpec;
use breakfix::runner::upgrade::suite::{UpgradeRun, UpgradeRunReport};
use breakfix::runner::upgrade::{Artifacts, UpgradeConfig, UpgradeOutcome, check_from};
use breakfix::vocab::HumanDuration;

use super::{EXIT_USAGE, load_all, report_diagnostics};

#[derive(Args)]
pub struct UpgradeArgs {
    /// Experiment files or folders of them, run before and after the upgrade.
    paths: Vec<PathBuf>,
    /// The version the cluster starts at (a line of kubernetes.versions).
    #[arg(long)]
    from: String,
    /// The version to upgrade to: newer, at most one minor later.
    #[arg(long)]
    to: String,
    /// A `kind: Upgrade` file: baselines kept up through the upgrade,
    /// per-phase SLOs, drain timeout, a fault during a phase.
    #[arg(long)]
    plan: Option<PathBuf>,
    /// Name of the kind cluster to create (or reuse with --reuse).
    #[arg(long, default_value = "breakfix-upgrade")]
    cluster_name: String,
    /// Worker nodes besides the control plane (a drained node's pods need
    /// somewhere to go).
    #[arg(long, default_value_t = 1)]
    workers: u32,
    /// Run on the kind cluster breakfix created earlier with this name (it
    /// must run --from).
    #[arg(long)]
    reuse: bool,
    /// Keep the cluster after a successful run (a failed upgrade always
    /// leaves it, for inspection).
    #[arg(long)]
    keep: bool,
    /// Override every experiment's `repeat` (both sides).
    #[arg(long)]
    repeat: Option<u32>,
    /// How long draining one node may wait, e.g. `3m` (overrides the
    /// plan's drainTimeout; default 5m).
    #[arg(long, value_parser = parse_duration)]
    drain_timeout: Option<HumanDuration>,
    /// Write the JSON report here; the before and after run reports go
    /// beside it as NAME.before.json and NAME.after.json (`breakfix compare`
    /// reads those).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write a Markdown summary here.
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// Write a self-contained HTML report here.
    #[arg(long)]
    html: Option<PathBuf>,
    /// Where the undo journals go (default: ~/.local/state/breakfix/journal).
    #[arg(long, env = "BREAKFIX_JOURNAL_DIR")]
    journal_dir: Option<PathBuf>,
}

fn parse_duration(text: &str) -> Result<HumanDuration, String> {
    HumanDuration::parse(text).map_err(|e| e.to_string())
}

fn usage(message: impl std::fmt::Display, help: Option<&str>) -> u8 {
    eprintln!("error: {message}");
    if let Some(h) = help {
        eprintln!("  = help: {h}");
    }
    EXIT_USAGE
}

/// The version pair, checked against kubernetes.versions and this host.
fn check_versions(from: &str, to: &str) -> Result<breakfix::cluster::versions::UpgradePath, u8> {
    let parse = |flag: &str, text: &str| {
        KubeVersion::parse(text).map_err(|e| usage(format!("--{flag}: {e}"), None))
    };
    let (from, to) = (parse("from", from)?, parse("to", to)?);
    VersionTable::builtin()
        .upgrade(from, to, HostCgroups::detect())
        .map_err(|e| usage(e, None))
}

pub async fn upgrade(args: UpgradeArgs) -> u8 {
    let path = match check_versions(&args.from, &args.to) {
        Ok(p) => p,
        Err(code) => return code,
    };
    if let Some(0) = args.repeat {
        return usage("--repeat must be at least 1", None);
    }
    let experiments = if args.paths.is_empty() {
        Vec::new()
    } else {
        match load_all(&args.paths) {
            Ok(e) => e,
            Err(code) => return code,
        }
    };
    let plan: Option<LoadedUpgradePlan> = match &args.plan {
        Some(p) => match load_upgrade_plan(p) {
            Ok(plan) => Some(plan),
            Err(problems) => return report_diagnostics(&problems),
        },
        None => None,
    };
    let (from, to) = (path.from.version, path.to.version);
    let artifacts = match Artifacts::locate(from, to).await {
        Ok(a) => a,
        Err(e) => return usage(e, None),
    };
    let cancel = CancellationToken::new();
    super::run::spawn_signal_handler(cancel.clone());

    eprintln!("breakfix: upgrade {from} → {to}; getting a kind cluster at {from}…");
    let opts = KindOptions {
        name: args.cluster_name.clone(),
        node_image: path.from.node_image(),
        workers: args.workers,
        reuse: args.reuse,
        ..KindOptions::default()
    };
    let handle = tokio::select! {
        r = cluster::kind::ensure(&opts) => r,
        () = cancel.cancelled() => {
            eprintln!("interrupted before anything was changed");
            return 130;
        }
    };
    let handle = match handle {
        Ok(h) => h,
        Err(e) => {
            let code = usage(&e, e.help());
            if matches!(e, cluster::ClusterError::Missing { .. }) && opts.node_image.contains(':') {
                eprintln!("  = note: the node image is built by `just upgrade-images {from} {to}`");
            }
            return code;
        }
    };
    if let Err(e) = check_from(&handle.client, &args.cluster_name, from).await {
        return usage(e, None);
    }

    let evictions = match cluster::client_without_retry(&handle.record).await {
        Ok(c) => c,
        Err(e) => return usage(&e, e.help()),
    };
    let run_id = new_run_id();
    let drain_timeout = args
        .drain_timeout
        .map(HumanDuration::get)
        .or_else(|| plan.as_ref().map(|p| p.plan.spec.drain_timeout.get()))
        .unwrap_or(std::time::Duration::from_secs(300));
    let config = UpgradeConfig {
        cluster: args.cluster_name.clone(),
        path: path.clone(),
        host: HostCgroups::detect(),
        artifacts,
        spec: TransitionSpec::namespaces(Vec::<String>::new()),
        phases: plan
            .as_ref()
            .map(|p| p.plan.spec.phases.clone())
            .unwrap_or_default(),
        fault: plan.as_ref().and_then(|p| p.plan.spec.fault.clone()),
        drain_timeout,
        ready_timeout: std::time::Duration::from_secs(300),
        run_id,
        journal_dir: args
            .journal_dir
            .clone()
            .unwrap_or_else(Journal::default_dir),
        cluster_record: handle.record.clone(),
    };
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let progress = tokio::spawn(report::progress::show(rx));
    let run = UpgradeRun {
        client: handle.client.clone(),
        evictions,
        config,
        experiments,
        baselines: plan.map(|p| p.baselines).unwrap_or_default(),
        repeat: args.repeat,
        events: Some(tx),
        cancel: cancel.clone(),
    };
    let report = match run.run().await {
        Ok(r) => r,
        Err(e) => return usage(e, None),
    };
    let _ = progress.await;

    let comparison = match (&report.before, &report.after) {
        (Some(b), Some(a)) => match compare::compare(b, a, &CompareOptions::default()) {
            Ok(c) => Some(c.with_labels(from.to_string(), to.to_string())),
            Err(e) => {
                eprintln!("warning: the before/after comparison failed: {e}");
                None
            }
        },
        _ => None,
    };
    let verdict = comparison.as_ref().map(verdict_of);
    print!("{}", report::upgrade::summary(&report, verdict.as_ref()));

    let mut code = exit_code(&report, comparison.as_ref(), cancel.is_cancelled());
    if let Err(e) = write_reports(&args, &report, comparison.as_ref(), verdict.as_ref()) {
        eprintln!("error: {e}");
        code = code.max(EXIT_USAGE);
    }
    let upgraded = report
        .upgrade
        .as_ref()
        .is_some_and(|u| u.outcome == UpgradeOutcome::Upgraded);
    if handle.created && !args.keep && upgraded {
        eprintln!(
            "deleting kind cluster `{}` (pass --keep to keep it)",
            args.cluster_name
        );
        if let Err(e) = cluster::kind::delete(&args.cluster_name).await {
            eprintln!("warning: {e}");
        }
    } else if !upgraded {
        eprintln!(
            "kind cluster `{0}` is left as it is for inspection (kubeconfig: {1}); delete it with `breakfix cluster down {0}`",
            args.cluster_name,
            handle
                .record
                .kubeconfig
                .as_deref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        );
    }
    code
}

/// 130 interrupted; 1 when the upgrade failed, a per-phase SLO or a side's
/// SLO was missed, or the comparison found a regression; else 0.
fn exit_code(report: &UpgradeRunReport, comparison: Option<&Comparison>, cancelled: bool) -> u8 {
    let interrupted = cancelled
        || report
            .upgrade
            .as_ref()
            .is_some_and(|u| u.outcome == UpgradeOutcome::Interrupted);
    if interrupted {
        return 130;
    }
    let upgrade_ok = report.upgrade.as_ref().is_some_and(|u| u.passed()) && report.error.is_none();
    let sides_ok = [&report.before, &report.after]
        .into_iter()
        .flatten()
        .all(|r| r.exit_code() == 0);
    let no_regression = comparison.is_none_or(|c| c.exit_code() == 0);
    if upgrade_ok && sides_ok && no_regression {
        0
    } else {
        1
    }
}

/// The comparison as verdict lines, regressions first.
fn verdict_of(c: &Comparison) -> Verdict {
    let n = c.counts();
    let headline = format!(
        "before ({}) → after ({}): {} regression(s), {} improvement(s), {} erratic, {} unchanged{}",
        c.before.label,
        c.after.label,
        n.regressions,
        n.improvements,
        n.erratic,
        n.unchanged,
        if n.errors > 0 {
            format!(", {} not comparable", n.errors)
        } else {
            String::new()
        }
    );
    let lines = c
        .experiments
        .iter()
        .filter(|e| e.change != Change::Unchanged)
        .map(|e| {
            let why = e.reasons.first().cloned().unwrap_or_default();
            (e.change.as_str().to_string(), format!("{}: {why}", e.name))
        })
        .collect();
    Verdict { headline, lines }
}

/// `up.json` → `up.before.json`.
fn beside(path: &Path, side: &str) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "upgrade".into());
    path.with_file_name(format!("{stem}.{side}.json"))
}

fn write_reports(
    args: &UpgradeArgs,
    report: &UpgradeRunReport,
    comparison: Option<&Comparison>,
    verdict: Option<&Verdict>,
) -> Result<(), String> {
    if let Some(path) = &args.json {
        let mut value = serde_json::to_value(report).map_err(|e| e.to_string())?;
        if let (Some(c), Some(obj)) = (comparison, value.as_object_mut()) {
            obj.insert(
                "comparison".into(),
                serde_json::to_value(c).map_err(|e| e.to_string())?,
            );
        }
        let text = serde_json::to_string_pretty(&value).map_err(|e| e.to_string())?;
        report::write_file(path, &text).map_err(|e| e.to_string())?;
        for (side, run) in [("before", &report.before), ("after", &report.after)] {
            if let Some(r) = run {
                let text = report::to_json(r).map_err(|e| e.to_string())?;
                report::write_file(&beside(path, side), &text).map_err(|e| e.to_string())?;
            }
        }
    }
    if let Some(path) = &args.markdown {
        report::write_file(path, &report::upgrade::to_markdown(report, verdict))
            .map_err(|e| e.to_string())?;
    }
    if let Some(path) = &args.html {
        report::write_file(path, &report::upgrade::to_html(report, verdict))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case("v1.34.4", "v1.35.4", None)]
    #[case("v1.35.4", "v1.34.4", Some(EXIT_USAGE))]
    #[case("v1.34.4", "v1.36.3", Some(EXIT_USAGE))]
    #[case("v1.34.4", "v1.99.0", Some(EXIT_USAGE))]
    #[case("1.34", "v1.35.4", Some(EXIT_USAGE))]
    fn bad_version_pairs_exit_2(#[case] from: &str, #[case] to: &str, #[case] want: Option<u8>) {
        assert_eq!(check_versions(from, to).err(), want);
    }

    #[test]
    fn side_reports_go_beside_the_json() {
        assert_eq!(
            beside(Path::new("out/up.json"), "before"),
            PathBuf::from("out/up.before.json")
        );
    }
}
