//! `breakfix run`, `cleanup` and `cluster`: the commands that touch clusters.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use clap::Args;
use tokio_util::sync::CancellationToken;

use breakfix::cluster::{self, ClusterError, KindOptions};
use breakfix::compare;
use breakfix::journal::ClusterRecord;
use breakfix::journal::{self, Journal, JournalState};
use breakfix::lease;
use breakfix::report::{self, junit};
use breakfix::runner::outcome::REPORT_SCHEMA_VERSION;
use breakfix::runner::partition::Partition;
use breakfix::runner::shutdown::{Shutdown, ShutdownEvent, StopSignal};
use breakfix::runner::{Jobs, RunReport, Runner};

use super::{EXIT_USAGE, load_all};

#[derive(Args)]
pub struct RunArgs {
    /// Experiment files or folders of them.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Name of the kind cluster to create (or reuse with --reuse).
    #[arg(long, default_value = "breakfix")]
    cluster_name: String,
    /// Worker nodes besides the control plane [default: $BREAKFIX_WORKERS, else 0].
    /// Not with --context, where the environment's value is ignored.
    #[arg(long)]
    workers: Option<u32>,
    /// Run on the kind cluster breakfix created earlier with this name, if it exists.
    #[arg(long)]
    reuse: bool,
    /// Keep the cluster and the baseline objects after the run.
    #[arg(long)]
    keep: bool,
    /// Run on an existing kubeconfig context instead of kind. Must be named
    /// explicitly; breakfix never picks the current context by itself.
    #[arg(long, conflicts_with_all = ["reuse", "workers"])]
    context: Option<String>,
    /// Kubeconfig for --context (default: $KUBECONFIG or ~/.kube/config).
    #[arg(long, requires = "context")]
    kubeconfig: Option<PathBuf>,
    /// Override every experiment's `repeat`.
    #[arg(long)]
    repeat: Option<u32>,
    /// How many experiments run at once: a number, or `auto` (what the
    /// cluster's nodes hold, judged from their allocatable CPU and memory
    /// against the baselines' requests). With more than one, each trial
    /// gets its baseline in a namespace of its own; experiments that break
    /// something every workload shares (CoreDNS, the nodes, …) run alone.
    #[arg(long, short = 'j', env = "BREAKFIX_JOBS", default_value = "1")]
    jobs: Jobs,
    /// With more than one job: a new baseline instance for every trial,
    /// deleted when it ends. By default an instance whose trial ended
    /// cleanly is kept for the next experiment on the same baseline (as a
    /// serial run keeps its baselines in place) and deleted at the end.
    #[arg(long)]
    fresh_instances: bool,
    /// Start the experiments that took longest in this earlier report (the
    /// file `--json` wrote) first, so that a run with several jobs does not
    /// end on a long experiment started last. Experiments it does not list
    /// start before those it does. The reports keep file order.
    #[arg(long, value_name = "REPORT.json")]
    durations_from: Option<PathBuf>,
    /// Refuse (exit 2, naming the holder) instead of waiting when another
    /// run holds what an experiment breaks (its claim's Lease in kube-system).
    #[arg(long)]
    no_wait: bool,
    /// Write the JSON report here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write a JUnit XML report here.
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Write a Markdown summary here (fits a pull-request comment).
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// Write a self-contained HTML report with timeline charts here.
    #[arg(long)]
    html: Option<PathBuf>,
    /// Where the undo journal goes (default: ~/.local/state/breakfix/journal).
    #[arg(long, env = "BREAKFIX_JOURNAL_DIR")]
    journal_dir: Option<PathBuf>,
    /// Finished journals older than this many days are removed when the run
    /// starts (a journal with anything left to revert never is).
    #[arg(long, env = "BREAKFIX_JOURNAL_RETENTION_DAYS", default_value_t = 30)]
    journal_retention_days: u32,
    /// Run one shard of the experiments, for CI runners that split a suite:
    /// `count:I/N` deals them round-robin by name, `hash:I/N` by a stable
    /// hash of the name. `breakfix report merge` joins the shards' reports.
    #[arg(long, value_name = "count:I/N|hash:I/N")]
    partition: Option<String>,
}

pub(super) fn cluster_error(e: &ClusterError) -> u8 {
    say!("error: {e}");
    if let Some(help) = e.help() {
        say!("  = help: {help}");
    }
    EXIT_USAGE
}

/// How long each experiment took in the report at `path`, for
/// `--durations-from`. A report of another schema version is set aside with
/// a warning (the run goes in file order); a file that is not a report is
/// bad input (exit 2).
fn earlier_durations(path: &std::path::Path) -> Result<Vec<(String, Duration)>, u8> {
    match compare::read_report(path) {
        Ok(earlier) => {
            let durations: Vec<(String, Duration)> = report::schedule::spans(&earlier)
                .into_iter()
                .map(|span| {
                    let took = span.end.duration_since(span.start);
                    (span.experiment, took.try_into().unwrap_or_default())
                })
                .collect();
            say!(
                "breakfix: longest first, as timed in {} ({} experiment(s))",
                path.display(),
                durations.len()
            );
            Ok(durations)
        }
        Err(e @ compare::CompareError::Schema { .. }) => {
            say!("warning: {e}; --durations-from ignored, experiments start in file order");
            Ok(Vec::new())
        }
        Err(e) => Err(super::compare::compare_error(&e)),
    }
}

pub async fn run(args: RunArgs) -> u8 {
    let partition: Option<Partition> = match args.partition.as_deref().map(str::parse) {
        None => None,
        Some(Ok(p)) => Some(p),
        Some(Err(e)) => {
            say!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let mut experiments = match load_all(&args.paths) {
        Ok(e) => e,
        Err(code) => return code,
    };
    if let Some(0) = args.repeat {
        say!("error: --repeat must be at least 1");
        return EXIT_USAGE;
    }
    let expected = match &args.durations_from {
        Some(path) => match earlier_durations(path) {
            Ok(durations) => durations,
            Err(code) => return code,
        },
        None => Vec::new(),
    };
    if let Some(p) = partition {
        let all = experiments.len();
        experiments = p.select(experiments, |e| e.name());
        let names: Vec<&str> = experiments.iter().map(|e| e.name()).collect();
        say!(
            "breakfix: shard {p} takes {} of {all} experiment(s){}",
            names.len(),
            if names.is_empty() {
                String::new()
            } else {
                format!(": {}", names.join(", "))
            }
        );
        if experiments.is_empty() {
            // Still a report, so that `report merge` sees every shard.
            let now = jiff::Timestamp::now();
            let report = RunReport {
                schema: REPORT_SCHEMA_VERSION.into(),
                run_id: format!("empty-shard-{}", p.shard),
                started: now,
                finished: now,
                cluster: ClusterRecord {
                    provider: "none".into(),
                    name: "no cluster needed".into(),
                    kubeconfig: None,
                    context: None,
                },
                experiments: Vec::new(),
                partition: Some(p),
                shards: Vec::new(),
            };
            return write_reports(&report, &args, None);
        }
    }
    let workers = match super::resolve_workers(args.workers, args.context.is_some()) {
        Ok(w) => w,
        Err(code) => return code,
    };
    let shutdown = match Shutdown::listen() {
        Ok(s) => s,
        Err(e) => {
            say!("error: cannot listen for signals: {e}");
            return EXIT_USAGE;
        }
    };
    let cancel = shutdown.token();
    let stopped_by = shutdown.signal_handle();
    let journal_path = Arc::new(OnceLock::new());
    tokio::spawn(report_signals(shutdown, journal_path.clone()));

    say!(
        "breakfix: {} experiment(s); getting a cluster…",
        experiments.len()
    );
    let handle = async {
        match &args.context {
            Some(context) => cluster::existing_context(args.kubeconfig.as_deref(), context).await,
            None => {
                let opts = KindOptions {
                    name: args.cluster_name.clone(),
                    workers,
                    reuse: args.reuse,
                    ..KindOptions::default()
                };
                cluster::kind::ensure(&opts).await
            }
        }
    };
    let handle = tokio::select! {
        r = handle => r,
        _ = cancel.cancelled() => {
            say!("interrupted before any fault was injected");
            return stopped_by.get().map_or(130, |s| s.exit_code() as u8);
        }
    };
    let handle = match handle {
        Ok(h) => h,
        Err(e) => return cluster_error(&e),
    };
    say!(
        "cluster: {} `{}` ready",
        handle.record.provider,
        handle.record.name
    );

    if args.no_wait {
        let claims: Vec<_> = experiments.iter().flat_map(|e| e.claims()).collect();
        match lease::holders(&handle.client, &claims, "").await {
            Ok(held) if held.is_empty() => {}
            Ok(held) => {
                for (claim, holder) in &held {
                    say!("error: {claim} is claimed by {holder}");
                }
                say!(
                    "  = help: nothing was applied; run again when that run is done, or without --no-wait to wait for it"
                );
                return EXIT_USAGE;
            }
            Err(e) => {
                say!("error: {e}");
                return EXIT_USAGE;
            }
        }
    }

    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let mut builder = Runner::builder(handle.client.clone())
        .cluster(handle.record.clone())
        .events(tx)
        .cancel(cancel.clone())
        .keep_baselines(args.keep)
        .jobs(args.jobs)
        .fresh_instances(args.fresh_instances)
        .expected_durations(expected)
        .journal_retention(retention(args.journal_retention_days))
        .claim_wait((!args.no_wait).then_some(lease::DEFAULT_WAIT));
    if let Some(dir) = &args.journal_dir {
        builder = builder.journal_dir(dir);
    }
    if let Some(repeat) = args.repeat {
        builder = builder.repeat(repeat);
    }
    let runner = match builder.build() {
        Ok(r) => r,
        Err(e) => {
            say!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let _ = journal_path.set(runner.journal_path().to_path_buf());
    let progress = tokio::spawn(report::progress::show(rx));
    let mut report = runner.run(&experiments).await;
    let _ = progress.await;
    report.partition = partition;

    let code = write_reports(&report, &args, stopped_by.get());
    if handle.created && !args.keep && args.context.is_none() {
        say!(
            "deleting kind cluster `{}` (pass --keep to keep it)",
            handle.record.name
        );
        if let Err(e) = cluster::kind::delete(&handle.record.name).await {
            say!("warning: {e}");
        }
    }
    code
}

/// Prints the summary and writes the report files asked for; the exit code
/// of the run (2 when a file could not be written; the signal's code when
/// one stopped it).
fn write_reports(report: &RunReport, args: &RunArgs, stopped_by: Option<StopSignal>) -> u8 {
    show!("{}", report::summary(report));
    let mut code = match (report.exit_code(), stopped_by) {
        (130, Some(signal)) => signal.exit_code(),
        (code, _) => code,
    } as u8;
    let mut written = |path: &Option<PathBuf>, text: Result<String, report::ReportError>| {
        if let Some(path) = path
            && let Err(e) = text.and_then(|t| report::write_file(path, &t))
        {
            say!("error: {e}");
            code = code.max(EXIT_USAGE);
        }
    };
    written(&args.json, report::to_json(report));
    written(&args.junit, junit::to_junit(report));
    written(&args.markdown, Ok(report::markdown::to_markdown(report)));
    written(&args.html, Ok(report::html::to_html(report)));
    code
}

/// For commands that stop on their own token (`diff`, `gameday`): the
/// first SIGINT, SIGTERM, SIGHUP or SIGQUIT cancels `cancel`, and the
/// signals are reported as for `run`.
pub(super) fn spawn_signal_handler(cancel: CancellationToken) {
    match Shutdown::listen() {
        Ok(shutdown) => {
            let stopped = shutdown.token();
            tokio::spawn(async move {
                stopped.cancelled().await;
                cancel.cancel();
            });
            tokio::spawn(report_signals(shutdown, Arc::new(OnceLock::new())));
        }
        Err(e) => say!("warning: cannot listen for signals ({e}); Ctrl-C ends the process"),
    }
}

/// Says what the stop signals do as they come: the first stops the run
/// (which reverts), the second is acknowledged, the third exits with the
/// signal's code after saying what the journal still holds.
async fn report_signals(mut shutdown: Shutdown, journal: Arc<OnceLock<PathBuf>>) {
    while let Some(event) = shutdown.next().await {
        match event {
            ShutdownEvent::Stopping(signal) => say!(
                "\n{signal}: stopping; reverting the fault (a second signal changes nothing, a third exits and leaves the rest to `breakfix cleanup`)"
            ),
            ShutdownEvent::StillReverting(signal) => {
                say!("{signal}: still reverting; one more exits without finishing")
            }
            ShutdownEvent::Forced(signal) => {
                let left = journal
                    .get()
                    .and_then(|p| JournalState::read(p).ok())
                    .map(|s| s.pending)
                    .unwrap_or_default();
                if left.is_empty() {
                    say!("{signal}: exiting; nothing injected is left in the cluster");
                } else {
                    say!("{signal}: exiting before the revert finished; left in the cluster:");
                    for (_, undo) in &left {
                        say!("  {} (not yet done)", undo.describe());
                    }
                    say!("run `breakfix cleanup` to finish the revert");
                }
                std::process::exit(signal.exit_code());
            }
        }
    }
}

/// Replays what crashed runs left, journal by journal, saying for each
/// undo whether it worked; then removes finished journals older than
/// `retention_days`. Exit 0 when nothing is left to revert, 1 when some
/// undo failed or a run is still live, 2 when a journal cannot be read.
pub async fn cleanup(dir: Option<PathBuf>, retention_days: u32) -> u8 {
    let dir = dir.unwrap_or_else(Journal::default_dir);
    let scan = match JournalState::scan(&dir) {
        Ok(j) => j,
        Err(e) => {
            say!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let mut code = 0;
    for e in &scan.unreadable {
        say!("error: {e}");
        code = EXIT_USAGE;
    }
    if scan.unfinished.is_empty() && scan.unreadable.is_empty() {
        println!("nothing to clean up in {}", dir.display());
    }
    for state in scan.unfinished {
        code = code.max(cleanup_one(&state).await);
    }
    match journal::prune(&dir, retention(retention_days)) {
        Ok(removed) if !removed.is_empty() => println!(
            "removed {} finished journal(s) older than {retention_days} days from {}",
            removed.len(),
            dir.display()
        ),
        Ok(_) => {}
        Err(e) => say!("warning: {e}"),
    }
    code
}

/// How long finished journals are kept, from a number of days.
pub fn retention(days: u32) -> Duration {
    Duration::from_secs(u64::from(days) * 24 * 3600)
}

async fn cleanup_one(state: &JournalState) -> u8 {
    println!(
        "run {} on {} `{}` (started {}, pid {}): {} change(s) to revert",
        state.run_id,
        state.cluster.provider,
        state.cluster.name,
        state.started.strftime("%Y-%m-%d %H:%M:%S UTC"),
        state.pid,
        state.pending.len()
    );
    for w in &state.warnings {
        println!("  note: {w}");
    }
    if state.is_live() {
        println!(
            "  skipped: that run is still running and reverts its own faults (stop it with Ctrl-C or SIGTERM)"
        );
        return 1;
    }
    let client = match tokio::time::timeout(
        Duration::from_secs(30),
        cluster::client_for_record(&state.cluster),
    )
    .await
    {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            say!("  error: {e}; nothing reverted");
            return 1;
        }
        Err(_) => {
            say!("  error: cluster did not answer within 30s; nothing reverted");
            return 1;
        }
    };
    let done = match state.replay(&client).await {
        Ok(done) => done,
        Err(e) => {
            say!("  error: {e}");
            return 1;
        }
    };
    let failed = done.iter().filter(|r| r.result.is_err()).count();
    for r in &done {
        match &r.result {
            Ok(()) => println!("  {}: done", r.action),
            Err(e) => println!("  {}: FAILED: {e}", r.action),
        }
    }
    if failed == 0 {
        match lease::release_run(&client, &state.run_id).await {
            Ok(names) => {
                for name in names {
                    println!("  released claim {name} -n {}", lease::LEASE_NAMESPACE);
                }
            }
            Err(e) => {
                println!("  note: its claims were not released ({e}); they expire by themselves")
            }
        }
        println!("  done");
        0
    } else {
        println!(
            "  {} of {} reverted; {failed} left in {} (run `breakfix cleanup` again once the cause is fixed)",
            done.len() - failed,
            done.len(),
            state.path.display()
        );
        1
    }
}

pub async fn cluster_up(name: &str, workers: u32) -> u8 {
    let opts = KindOptions {
        name: name.into(),
        workers,
        reuse: true,
        ..KindOptions::default()
    };
    match cluster::kind::ensure(&opts).await {
        Ok(h) => {
            let kubeconfig = h
                .record
                .kubeconfig
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            println!(
                "cluster `{name}` ready ({})\n  kubectl --kubeconfig {kubeconfig} get nodes",
                if h.created { "created" } else { "reused" }
            );
            0
        }
        Err(e) => cluster_error(&e),
    }
}

/// Deletes each named cluster, or with `all` every cluster breakfix
/// recorded; one that fails does not stop the others.
pub async fn cluster_down(names: Vec<String>, all: bool) -> u8 {
    let names = if all {
        let recorded = cluster::KindCluster::all_recorded();
        if recorded.is_empty() {
            println!("no clusters created by breakfix");
        }
        recorded.into_iter().map(|c| c.name).collect()
    } else {
        names
    };
    let mut code = 0;
    for name in &names {
        match cluster::kind::delete(name).await {
            Ok(()) => println!("deleted cluster `{name}`"),
            Err(e) => code = code.max(cluster_error(&e)),
        }
    }
    code
}
