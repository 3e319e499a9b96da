//! The runner: the library's entry point. It owns a run from start to end:
//! the run id, the undo journal, every experiment's trials, baseline
//! cleanup and the closing of the journal, and hands back a [`RunReport`].
//!
//! ```text
//! plan: claims, who runs alone, jobs ([`schedule`], [`capacity`])
//! each experiment, as many side by side as jobs and claims allow; each trial:
//! baseline (instance) ─► steady ─► journal+inject ─► detect ─► revert ─► recover(stable) ─► verdict ─► delete instance
//!                 └──────────── any error, timeout or cancel ─► revert ─┘
//! then: delete the baselines applied in place, close the journal, report (in file order)
//! ```
//!
//! Experiments running side by side each journal through a handle of their
//! own and revert only what they injected ([`Journal::handle`]).
//!
//! ```no_run
//! # async fn example(client: kube::Client) -> Result<(), Box<dyn std::error::Error>> {
//! use breakfix::{Runner, load_experiment};
//!
//! let experiment = load_experiment("experiments/image-typo.yaml".as_ref())
//!     .map_err(|problems| format!("{} problem(s) in the file", problems.len()))?;
//! let report = Runner::builder(client)
//!     .journal_dir("/tmp/breakfix-journal")
//!     .build()?
//!     .run(&[experiment])
//!     .await;
//! assert_eq!(report.exit_code(), 0, "{}", breakfix::report::summary(&report));
//! # Ok(())
//! # }
//! ```

pub mod capacity;
mod cleanup;
pub mod events;
pub mod measure;
pub mod outcome;
pub mod partition;
mod pool;
pub mod schedule;
pub mod shutdown;
pub mod steps;
pub mod transition;
mod trial;
pub mod upgrade;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use jiff::Timestamp;
use kube::Client;
use tokio_util::sync::CancellationToken;

use crate::experiment::LoadedExperiment;
use crate::fault::Claim;
use crate::journal::{ClusterRecord, Journal, JournalError, JournalState};
use crate::kobj::ObjectRef;
use crate::slo;
use crate::timeline::Phase;
pub use events::{EventSender, Placed, RunEvent};
pub use outcome::{ExperimentReport, Outcome, RunReport, TrialError, TrialReport};
use pool::{BaselineKey, Idle, InstancePool};
pub use schedule::{Jobs, JobsError, Placement};
pub use trial::PhaseError;

/// How a trial's timeline says that its experiment ran alone (followed by
/// what shared thing it breaks): the schedule in reports reads it back.
pub const ALONE_NOTE: &str = "runs alone: ";

/// Errors setting up a run. Everything that goes wrong once the run has
/// started is part of the [`RunReport`] instead.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// The journal could not be created: breakfix refuses to inject
    /// anything it could not undo after a crash.
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// Configures a [`Runner`]; see [`Runner::builder`].
#[must_use]
pub struct RunnerBuilder {
    client: Client,
    cluster: Option<ClusterRecord>,
    journal_dir: Option<PathBuf>,
    run_id: Option<String>,
    events: Option<EventSender>,
    cancel: CancellationToken,
    repeat: Option<u32>,
    keep_baselines: bool,
    jobs: Jobs,
    instances: Option<bool>,
    fresh_instances: bool,
    expected: HashMap<String, Duration>,
    journal_retention: std::time::Duration,
    claim_wait: crate::lease::Wait,
}

impl RunnerBuilder {
    /// Where the cluster is, recorded in the journal so `breakfix cleanup`
    /// can reach it after a crash, and in the report. Without it the
    /// journal says `client`/`unknown`, and only a process that still holds
    /// the client can replay it.
    pub fn cluster(mut self, record: ClusterRecord) -> Self {
        self.cluster = Some(record);
        self
    }

    /// The folder for the undo journal (default: [`Journal::default_dir`]).
    pub fn journal_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.journal_dir = Some(dir.into());
        self
    }

    /// The run id (default: the start time and process id, e.g.
    /// `20261201t130501-1a2b`). It labels every object the run applies.
    pub fn run_id(mut self, run_id: impl Into<String>) -> Self {
        self.run_id = Some(run_id.into());
        self
    }

    /// Where to send [`RunEvent`]s as the run goes (progress, live pages).
    pub fn events(mut self, events: EventSender) -> Self {
        self.events = Some(events);
        self
    }

    /// A token that stops the run: every fault in place is reverted, the
    /// baselines are deleted and the report says `interrupted`.
    pub fn cancel(mut self, cancel: CancellationToken) -> Self {
        self.cancel = cancel;
        self
    }

    /// Overrides every experiment's `repeat`.
    pub fn repeat(mut self, trials: u32) -> Self {
        self.repeat = Some(trials.max(1));
        self
    }

    /// Leaves the baselines applied after the run (default: deleted).
    pub fn keep_baselines(mut self, keep: bool) -> Self {
        self.keep_baselines = keep;
        self
    }

    /// How many experiments may run at once (default: one). Experiments run
    /// side by side only when what they claim is disjoint; one that claims
    /// something every workload shares runs alone ([`schedule`]).
    pub fn jobs(mut self, jobs: Jobs) -> Self {
        self.jobs = jobs;
        self
    }

    /// Whether each trial runs on an instance of its baseline, in
    /// namespaces of its own, deleted after the trial
    /// ([`LoadedExperiment::instance`]). Default: when more than one
    /// experiment runs at once. A baseline that cannot move runs in place,
    /// and the run says why.
    pub fn instances(mut self, instances: bool) -> Self {
        self.instances = Some(instances);
        self
    }

    /// A new instance for every trial, deleted when the trial ends
    /// (default: off). Off, an instance whose trial ended cleanly (fault
    /// reverted, steady state back) is kept for the next experiment on the
    /// same baseline, as a serial run keeps its baselines in place, and
    /// the kept ones are deleted at the end of the run.
    pub fn fresh_instances(mut self, fresh: bool) -> Self {
        self.fresh_instances = fresh;
        self
    }

    /// How long each experiment took before, by name (from an earlier
    /// run's report): with more than one job the longest start first, so
    /// the run does not end on a long one started last. Experiments it does
    /// not name start before those it does. Reports keep file order.
    pub fn expected_durations(
        mut self,
        durations: impl IntoIterator<Item = (String, Duration)>,
    ) -> Self {
        self.expected = durations.into_iter().collect();
        self
    }

    /// How long finished journals are kept (default 30 days): older ones
    /// in the journal folder are removed when the runner is built. A
    /// journal with anything left to revert is never removed.
    pub fn journal_retention(mut self, keep: std::time::Duration) -> Self {
        self.journal_retention = keep;
        self
    }

    /// How long a trial waits for a claim another run holds (a Lease per
    /// claim, [`crate::lease`]) before it errors; `None` errors at once.
    /// Default: [`crate::lease::DEFAULT_WAIT`].
    pub fn claim_wait(mut self, wait: crate::lease::Wait) -> Self {
        self.claim_wait = wait;
        self
    }

    /// Creates the journal and the runner.
    ///
    /// # Errors
    ///
    /// [`RunnerError::Journal`] when the journal folder or file cannot be
    /// written; nothing has touched the cluster then.
    pub fn build(self) -> Result<Runner, RunnerError> {
        let run_id = self.run_id.unwrap_or_else(new_run_id);
        let cluster = self.cluster.unwrap_or_else(|| ClusterRecord {
            provider: "client".into(),
            name: "unknown".into(),
            kubeconfig: None,
            context: None,
        });
        let dir = self.journal_dir.unwrap_or_else(Journal::default_dir);
        let journal = Journal::create(&dir, &run_id, cluster.clone())?;
        match crate::journal::prune(&dir, self.journal_retention) {
            Ok(removed) if !removed.is_empty() => {
                tracing::info!(
                    "removed {} finished journal(s) past retention",
                    removed.len()
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("journal retention: {e}"),
        }
        Ok(Runner {
            client: self.client,
            cluster,
            claimant: Arc::new(crate::lease::Claimant::this_process(&run_id)),
            claim_wait: self.claim_wait,
            run_id,
            journal,
            events: self.events,
            cancel: self.cancel,
            repeat: self.repeat,
            keep_baselines: self.keep_baselines,
            jobs: self.jobs,
            instances: self.instances,
            fresh_instances: self.fresh_instances,
            expected: self.expected,
        })
    }
}

/// Runs experiments against one cluster, journaling every mutation first.
/// Build one with [`Runner::builder`], then [`Runner::run`].
pub struct Runner {
    client: Client,
    cluster: ClusterRecord,
    /// This run, as the holder of its claims' Leases.
    claimant: Arc<crate::lease::Claimant>,
    claim_wait: crate::lease::Wait,
    run_id: String,
    journal: Journal,
    events: Option<EventSender>,
    cancel: CancellationToken,
    repeat: Option<u32>,
    keep_baselines: bool,
    jobs: Jobs,
    instances: Option<bool>,
    fresh_instances: bool,
    expected: HashMap<String, Duration>,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("cluster", &self.cluster)
            .field("run_id", &self.run_id)
            .field("journal", &self.journal.path())
            .field("jobs", &self.jobs)
            .finish_non_exhaustive()
    }
}

/// What one experiment's task hands back.
struct Finished {
    report: ExperimentReport,
    /// Baseline objects applied in place, deleted at the end of the run.
    applied: Vec<ObjectRef>,
}

impl Runner {
    /// Starts configuring a run on the cluster `client` talks to.
    pub fn builder(client: Client) -> RunnerBuilder {
        RunnerBuilder {
            client,
            cluster: None,
            journal_dir: None,
            run_id: None,
            events: None,
            cancel: CancellationToken::new(),
            repeat: None,
            keep_baselines: false,
            jobs: Jobs::default(),
            instances: None,
            fresh_instances: false,
            expected: HashMap::new(),
            journal_retention: crate::journal::DEFAULT_RETENTION,
            claim_wait: Some(crate::lease::DEFAULT_WAIT),
        }
    }

    /// The run id, which labels every object the run applies.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The journal file of this run (read it back with [`JournalState::read`]).
    pub fn journal_path(&self) -> &Path {
        self.journal.path()
    }

    /// Runs every experiment, each for its trials, as many at once as
    /// [`RunnerBuilder::jobs`] allows and their claims permit, and returns
    /// the report, experiments in the order given. Every fault is reverted
    /// whatever happens (SLO missed, error, timeout, cancellation, a panic
    /// inside an experiment); the baselines are deleted unless kept; the
    /// journal is closed once nothing is pending.
    pub async fn run(self, experiments: &[LoadedExperiment]) -> RunReport {
        let started = Timestamp::now();
        let (jobs, why) = match self.jobs {
            Jobs::Fixed(n) => (n.get(), "as asked".to_string()),
            Jobs::Auto => match capacity::judge(&self.client, experiments).await {
                Ok(j) => (j.jobs, j.why),
                Err(e) => (
                    1,
                    format!("the nodes could not be read ({e}); one at a time"),
                ),
            },
        };
        let instances = self.instances.unwrap_or(jobs > 1);
        let placements = schedule::place(&self.run_id, experiments, instances);
        self.emit(RunEvent::Planned {
            jobs,
            why,
            experiments: placements.iter().map(Placed::from).collect(),
        });

        let shared = Arc::new(Shared {
            keep: self.keep_baselines,
            holdings: Holdings::default(),
            pool: (!self.fresh_instances && !self.keep_baselines).then(InstancePool::default),
        });
        let keys: Vec<BaselineKey> = experiments
            .iter()
            .map(|e| BaselineKey::of(&e.baseline))
            .collect();
        let mut deletions = tokio::task::JoinSet::new();
        let mut waiting = schedule::order(&placements, &self.expected);
        let mut running: Vec<usize> = Vec::new();
        let mut tasks = tokio::task::JoinSet::new();
        let mut task_of: HashMap<tokio::task::Id, usize> = HashMap::new();
        let mut reports: Vec<Option<ExperimentReport>> = vec![None; experiments.len()];
        let mut applied: Vec<Vec<ObjectRef>> = Vec::new();
        loop {
            while running.len() < jobs as usize && !self.cancel.is_cancelled() {
                let Some(i) = schedule::next(&placements, &waiting, &running) else {
                    break;
                };
                waiting.retain(|&w| w != i);
                running.push(i);
                let mut worker = Worker {
                    client: self.client.clone(),
                    claimant: self.claimant.clone(),
                    claim_wait: self.claim_wait,
                    run_id: self.run_id.clone(),
                    journal: self.journal.handle(),
                    events: self.events.clone(),
                    cancel: self.cancel.clone(),
                    shared: shared.clone(),
                    index: i,
                };
                let exp = experiments[i].clone();
                let placement = placements[i].clone();
                let trials = self.repeat.unwrap_or(exp.experiment.spec.repeat).max(1);
                let key = keys[i].clone();
                let handle = tasks.spawn(async move {
                    let (report, applied) =
                        worker.run_experiment(&exp, &placement, trials, &key).await;
                    Finished { report, applied }
                });
                task_of.insert(handle.id(), i);
            }
            let Some(joined) = tasks.join_next_with_id().await else {
                break;
            };
            match joined {
                Ok((id, finished)) => {
                    let i = task_of.remove(&id).unwrap_or_default();
                    running.retain(|&r| r != i);
                    applied.push(finished.applied);
                    reports[i] = Some(finished.report);
                }
                Err(crashed) => {
                    let i = task_of.remove(&crashed.id()).unwrap_or_default();
                    running.retain(|&r| r != i);
                    let exp = &experiments[i];
                    reports[i] = Some(ExperimentReport::errored(
                        exp.name().to_string(),
                        exp.path.display().to_string(),
                        exp.experiment.spec.fault.label(),
                        format!("the experiment crashed ({crashed}); reverted from the journal"),
                    ));
                }
            }
            // Instances no experiment still to come can use are deleted
            // now, beside the rest, rather than at the end.
            if let Some(pool) = &shared.pool {
                let needed: std::collections::HashSet<&BaselineKey> =
                    waiting.iter().chain(&running).map(|&w| &keys[w]).collect();
                let unneeded = pool.take_unless(|k| needed.contains(k));
                if !unneeded.is_empty() {
                    let (client, events, shared) =
                        (self.client.clone(), self.events.clone(), shared.clone());
                    deletions.spawn(async move {
                        let owner = (usize::MAX, deletion_number());
                        let held = unneeded
                            .iter()
                            .flat_map(|i| i.relocation.new_namespaces().map(str::to_string))
                            .collect();
                        // Held while they go, so no trial beside them counts
                        // their pods' termination in its blast radius.
                        shared.holdings.hold(owner, held);
                        pool::delete_idle(&client, unneeded, events.as_ref()).await;
                        shared.holdings.release(owner);
                    });
                }
            }
        }
        let (client, events, cancel) = (
            self.client.clone(),
            self.events.clone(),
            self.cancel.clone(),
        );
        let keep = self.keep_baselines;
        if let Some(pool) = &shared.pool {
            pool::delete_idle(&client, pool.drain(), events.as_ref()).await;
        }
        while deletions.join_next().await.is_some() {}
        let claimant = self.claimant.clone();
        if self.journal.pending_in_run() == 0 {
            if let Err(e) = self.journal.finish() {
                tracing::warn!("{e}");
            }
        } else {
            // What a crashed experiment left: every other one has reverted
            // its own, so all that is pending now is the crashed ones'.
            replay(self.journal.path(), &self.client).await;
        }
        if !keep {
            cleanup::delete_baselines(&client, &claimant, &applied, events.as_ref(), &cancel).await;
        }
        RunReport {
            schema: outcome::REPORT_SCHEMA_VERSION.into(),
            run_id: self.run_id,
            started,
            finished: Timestamp::now(),
            cluster: self.cluster,
            experiments: reports.into_iter().flatten().collect(),
            partition: None,
            shards: Vec::new(),
        }
    }

    fn emit(&self, event: RunEvent) {
        if let Some(tx) = &self.events {
            let _ = tx.send(event);
        }
    }
}

/// What every experiment's task shares.
struct Shared {
    /// Leave the baselines (and instances) applied.
    keep: bool,
    holdings: Holdings,
    /// Instances kept between trials; `None` when every trial gets a fresh
    /// one ([`RunnerBuilder::fresh_instances`]) or baselines are kept.
    pool: Option<InstancePool>,
}

/// Which namespaces each running trial holds, and when: so that one
/// experiment's blast radius leaves out what another broke beside it.
#[derive(Default)]
struct Holdings {
    held: Mutex<Vec<Holding>>,
}

struct Holding {
    /// The experiment (its index in the run) and trial.
    owner: (usize, u32),
    namespaces: Vec<String>,
    from: Timestamp,
    to: Option<Timestamp>,
}

impl Holdings {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Holding>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn hold(&self, owner: (usize, u32), namespaces: Vec<String>) {
        self.lock().push(Holding {
            owner,
            namespaces,
            from: Timestamp::now(),
            to: None,
        });
    }

    fn release(&self, owner: (usize, u32)) {
        let now = Timestamp::now();
        for h in self.lock().iter_mut().filter(|h| h.owner == owner) {
            h.to.get_or_insert(now);
        }
    }

    /// Namespaces other trials held at some moment between `from` and `to`.
    fn others(&self, owner: (usize, u32), from: Timestamp, to: Timestamp) -> Vec<String> {
        let mut out: Vec<String> = self
            .lock()
            .iter()
            .filter(|h| h.owner != owner && h.from <= to && h.to.is_none_or(|t| t >= from))
            .flat_map(|h| h.namespaces.iter().cloned())
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// Runs one experiment's trials: what a task of the run owns.
struct Worker {
    client: Client,
    claimant: Arc<crate::lease::Claimant>,
    claim_wait: crate::lease::Wait,
    run_id: String,
    /// This experiment's own handle on the run's journal.
    journal: Journal,
    events: Option<EventSender>,
    cancel: CancellationToken,
    shared: Arc<Shared>,
    /// The experiment's index in the run.
    index: usize,
}

impl Worker {
    /// Runs every trial of `exp` and judges them; returns the report and
    /// the baseline objects applied in place (for deletion at the end of
    /// the run).
    async fn run_experiment(
        &mut self,
        exp: &LoadedExperiment,
        placement: &Placement,
        trials: u32,
        key: &BaselineKey,
    ) -> (ExperimentReport, Vec<ObjectRef>) {
        let name = exp.name().to_string();
        self.emit(RunEvent::ExperimentStarted {
            experiment: name.clone(),
            trials,
        });
        let mut reports = Vec::new();
        let mut applied = Vec::new();
        for trial in 1..=trials {
            let (instance, kept) = if placement.instances {
                let idle = self.shared.pool.as_ref().and_then(|p| p.take(key));
                let id = match &idle {
                    Some(idle) => idle.relocation.id.clone(),
                    None => schedule::trial_instance_id(&self.run_id, exp, trial),
                };
                (exp.instance(&id).ok(), idle)
            } else {
                (None, None)
            };
            let report = self
                .run_trial(
                    instance.as_ref().unwrap_or(exp),
                    placement,
                    trial,
                    &mut applied,
                    InstanceUse { key, kept },
                )
                .await;
            let stop = report.interrupted || report.error.is_some();
            self.emit(RunEvent::TrialFinished {
                experiment: name.clone(),
                report: Box::new(report.clone()),
            });
            reports.push(report);
            if stop {
                break;
            }
        }
        let data: Vec<slo::TrialData<'_>> = reports
            .iter()
            .map(|r| slo::TrialData {
                marks: &r.marks,
                measurements: &r.measurements,
            })
            .collect();
        let spec = &exp.experiment.spec;
        let mut slos = slo::evaluate(&spec.slo, &data);
        if let Some(impact) = &spec.expect.impact {
            slos.extend(slo::evaluate_impact(impact, spec.slo.percentile, &data));
        }
        drop(data);
        let outcome = if reports.iter().any(|r| r.interrupted) {
            Outcome::Interrupted
        } else if reports.iter().any(|r| {
            r.error.as_ref().is_some_and(|e| {
                e.unobserved || (e.phase != Phase::Detect && e.phase != Phase::Recover)
            })
        }) {
            Outcome::Error
        } else if slos.iter().all(|s| s.met) && reports.len() as u32 == trials {
            Outcome::Passed
        } else {
            Outcome::Failed
        };
        let report = ExperimentReport {
            name,
            file: exp.path.display().to_string(),
            fault: exp.experiment.spec.fault.label(),
            story: exp.experiment.metadata.story.clone(),
            outcome,
            flaky: slos.iter().any(|s| s.flaky),
            slos,
            trials: reports,
        };
        self.emit(RunEvent::ExperimentFinished {
            report: Box::new(report.clone()),
        });
        (report, applied)
    }

    /// The namespaces a trial of `exp` holds: those it claims, and its
    /// baseline's (an instance's, or the shared one in place).
    fn held_namespaces(exp: &LoadedExperiment) -> Vec<String> {
        let mut namespaces: Vec<String> = exp
            .claims()
            .into_iter()
            .filter_map(|c| match c {
                Claim::Namespace(ns) => Some(ns),
                Claim::Shared(_) => None,
            })
            .collect();
        if let Some(relocation) = &exp.baseline.instance {
            namespaces.extend(relocation.new_namespaces().map(str::to_string));
        }
        namespaces.sort();
        namespaces.dedup();
        namespaces
    }

    fn emit(&self, event: RunEvent) {
        if let Some(tx) = &self.events {
            let _ = tx.send(event);
        }
    }
}

/// How a trial came by its baseline instance, and where to leave it after.
struct InstanceUse<'a> {
    /// The baseline's key in the pool.
    key: &'a BaselineKey,
    /// The idle instance it took, already journaled and steady; `None`
    /// when it makes a new one.
    kept: Option<Idle>,
}

/// Replays what a crashed run left in its journal.
async fn replay(path: &Path, client: &Client) {
    match JournalState::read(path) {
        Ok(state) => match state.replay(client).await {
            Ok(done) => {
                for r in done {
                    if let Err(e) = r.result {
                        tracing::error!("{}: {e}", r.action);
                    }
                }
            }
            Err(e) => tracing::error!("{e}"),
        },
        Err(e) => tracing::error!("{e}"),
    }
}

/// A number for each background deletion of kept instances, unique in the
/// process: their holder id in [`Holdings`].
fn deletion_number() -> u32 {
    static DELETIONS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    DELETIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// A run id: sortable by time, unique on one machine (the process id, and
/// a counter for later runs of the same process).
pub fn new_run_id() -> String {
    static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let now = jiff::Timestamp::now();
    let pid = std::process::id() & 0xffff;
    match RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) {
        0 => format!("{}-{pid:04x}", now.strftime("%Y%m%dt%H%M%S")),
        n => format!("{}-{pid:04x}-{n}", now.strftime("%Y%m%dt%H%M%S")),
    }
}
