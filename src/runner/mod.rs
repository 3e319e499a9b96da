//! The runner: the library's entry point. It owns a run from start to end:
//! the run id, the undo journal, every experiment's trials, baseline
//! cleanup and the closing of the journal, and hands back a [`RunReport`].
//!
//! ```text
//! for each experiment, for each trial:
//! baseline ─► steady ─► journal+inject ─► detect ─► revert ─► recover(stable) ─► verdict
//!                 └──────────── any error, timeout or cancel ─► revert ─┘
//! then: delete the baselines, close the journal, report
//! ```
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

pub mod events;
pub mod measure;
pub mod outcome;
pub mod partition;
pub mod transition;
mod trial;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use kube::Client;
use tokio_util::sync::CancellationToken;

use crate::baseline::delete_baseline;
use crate::experiment::LoadedExperiment;
use crate::journal::{ClusterRecord, Journal, JournalError, JournalState};
use crate::kobj::ObjectRef;
use crate::slo;
use crate::timeline::Phase;
pub use events::{EventSender, RunEvent};
pub use outcome::{ExperimentReport, Outcome, RunReport, TrialError, TrialReport};
pub use trial::PhaseError;

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

    /// A token that stops the run: the fault in place is reverted, the
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
        Ok(Runner {
            client: self.client,
            cluster,
            run_id,
            journal,
            events: self.events,
            cancel: self.cancel,
            repeat: self.repeat,
            keep_baselines: self.keep_baselines,
        })
    }
}

/// Runs experiments against one cluster, journaling every mutation first.
/// Build one with [`Runner::builder`], then [`Runner::run`].
pub struct Runner {
    client: Client,
    cluster: ClusterRecord,
    run_id: String,
    journal: Journal,
    events: Option<EventSender>,
    cancel: CancellationToken,
    repeat: Option<u32>,
    keep_baselines: bool,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("cluster", &self.cluster)
            .field("run_id", &self.run_id)
            .field("journal", &self.journal.path())
            .finish_non_exhaustive()
    }
}

/// What the run loop shares with the caller in case it panics: the
/// reports so far and the experiment being run.
#[derive(Default)]
struct Progress {
    reports: Vec<ExperimentReport>,
    current: Option<(String, String, String)>,
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

    /// Runs every experiment in order, each for its trials, and returns the
    /// report. Every fault is reverted whatever happens (SLO missed, error,
    /// timeout, cancellation, a panic inside the run); the baselines are
    /// deleted unless kept; the journal is closed once nothing is pending.
    pub async fn run(self, experiments: &[LoadedExperiment]) -> RunReport {
        let started = jiff::Timestamp::now();
        let client = self.client.clone();
        let cluster = self.cluster.clone();
        let run_id = self.run_id.clone();
        let path = self.journal.path().to_path_buf();
        let keep = self.keep_baselines;
        let progress = Arc::new(Mutex::new(Progress::default()));
        let shared = progress.clone();
        let experiments = experiments.to_vec();
        // A task of its own, so a panic inside a trial is caught here and the
        // journal still gets replayed.
        let task = tokio::spawn(async move {
            let mut runner = self;
            let mut applied: Vec<Vec<ObjectRef>> = Vec::new();
            for exp in &experiments {
                if runner.cancel.is_cancelled() {
                    break;
                }
                lock(&shared).current = Some((
                    exp.name().to_string(),
                    exp.path.display().to_string(),
                    exp.experiment.spec.fault.kind().to_string(),
                ));
                let (report, objects) = runner.run_experiment(exp).await;
                let mut p = lock(&shared);
                p.reports.push(report);
                p.current = None;
                applied.push(objects);
            }
            (runner, applied)
        });
        match task.await {
            Ok((runner, applied)) => {
                if !keep {
                    for objects in applied.iter().rev() {
                        if let Err(e) = delete_baseline(&client, objects).await {
                            tracing::warn!("baseline cleanup: {e}");
                        }
                    }
                }
                if runner.journal.pending().is_empty()
                    && let Err(e) = runner.journal.finish()
                {
                    tracing::warn!("{e}");
                }
            }
            Err(crashed) => {
                let message = format!("the run crashed ({crashed}); reverted from the journal");
                replay(&path, &client).await;
                let mut p = lock(&progress);
                if let Some((name, file, fault)) = p.current.take() {
                    p.reports
                        .push(ExperimentReport::errored(name, file, fault, message));
                }
            }
        }
        let experiments = std::mem::take(&mut lock(&progress).reports);
        RunReport {
            schema: outcome::REPORT_SCHEMA_VERSION.into(),
            run_id,
            started,
            finished: jiff::Timestamp::now(),
            cluster,
            experiments,
            partition: None,
            shards: Vec::new(),
        }
    }

    /// Runs every trial of `exp` and judges them; returns the report and
    /// the baseline objects applied (for deletion at the end of the run).
    async fn run_experiment(
        &mut self,
        exp: &LoadedExperiment,
    ) -> (ExperimentReport, Vec<ObjectRef>) {
        let name = exp.name().to_string();
        let trials = self.repeat.unwrap_or(exp.experiment.spec.repeat).max(1);
        self.emit(RunEvent::ExperimentStarted {
            experiment: name.clone(),
            trials,
        });
        let mut reports = Vec::new();
        let mut applied = Vec::new();
        for trial in 1..=trials {
            let report = self.run_trial(exp, trial, &mut applied).await;
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
        let slos = slo::evaluate(&exp.experiment.spec.slo, &data);
        drop(data);
        let outcome = if reports.iter().any(|r| r.interrupted) {
            Outcome::Interrupted
        } else if reports.iter().any(|r| {
            r.error
                .as_ref()
                .is_some_and(|e| e.phase != Phase::Detect && e.phase != Phase::Recover)
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
            fault: exp.experiment.spec.fault.kind().to_string(),
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

    fn emit(&self, event: RunEvent) {
        if let Some(tx) = &self.events {
            let _ = tx.send(event);
        }
    }
}

fn lock(progress: &Mutex<Progress>) -> std::sync::MutexGuard<'_, Progress> {
    progress.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Replays what a crashed run left in its journal.
async fn replay(path: &Path, client: &Client) {
    match JournalState::read(path) {
        Ok(state) => match state.replay(client).await {
            Ok(errors) => {
                for e in errors {
                    tracing::error!("{e}");
                }
            }
            Err(e) => tracing::error!("{e}"),
        },
        Err(e) => tracing::error!("{e}"),
    }
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
