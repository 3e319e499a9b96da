//! One trial: the phases from baseline to recovery, and the guarantee that
//! every exit path reverts what was injected.
//!
//! A phase that fails stops the trial with a [`PhaseError`], typed by what
//! failed (the baseline's apply, steady state, the fault, the watch, the
//! revert, recovery); the report keeps its phase and message
//! ([`TrialError`]).

use std::future::Future;

use futures::StreamExt;
use kube::Client;
use tokio_util::sync::CancellationToken;

use super::measure::{MeasureSession, Moment};
use super::pool::Idle;
use super::steps::{self, WaitError};
use super::{EventSender, InstanceUse, Placement, RunEvent, TrialError, TrialReport, Worker};
use crate::baseline::instance::INSTANCE_DELETE_TIMEOUT;
use crate::baseline::{
    ApplyError, SteadyError, SteadyState, apply_baseline_noting, delete_instance,
};
use crate::detect::{self, Scope, diagnose, until_expected, watch_pod_signals};
use crate::experiment::{LoadedExperiment, Recovery, Step};
use crate::fault::{Claim, FaultContext, FaultError};
use crate::journal::{JournalError, UndoAction};
use crate::kobj::ObjectRef;
use crate::lease::{Held, LeaseError};
use crate::slo;
use crate::timeline::{EntryKind, Marks, Phase, Timeline};
use crate::vocab::SignalKind;
use crate::vocab::duration::format_duration;

/// Why a phase of a trial failed. The report keeps the phase and the
/// message ([`TrialError`]); library callers watching [`RunEvent`]s get the
/// same text.
#[derive(Debug, thiserror::Error)]
pub enum PhaseError {
    /// The baseline instance's deletion could not be journaled, so it was
    /// not applied.
    #[error("the baseline instance could not be journaled: {0}")]
    Journal(#[source] JournalError),
    /// The baseline's manifests could not be applied.
    #[error("{}", apply_message(.0))]
    Apply(#[source] ApplyError),
    /// The baseline never reached steady state before injection.
    #[error("baseline `{baseline}` never reached steady state: {source}")]
    NotSteady {
        /// The baseline's name.
        baseline: String,
        /// What was still unmet, or why the watch failed.
        #[source]
        source: SteadyError,
    },
    /// A claim another run holds was not released in time (or at once,
    /// when not waiting), or the Leases could not be written.
    #[error("{0}")]
    Claim(#[source] crate::lease::LeaseError),
    /// Nothing expected was seen, but the API server did not answer for
    /// part of the wait: what the cluster did then is unknown, so the
    /// trial cannot be judged.
    #[error(
        "{source}, and the API server did not answer for {} of that wait: detection cannot be judged",
        format_duration(*unanswered)
    )]
    Unobserved {
        /// Why detection ended (its timeout).
        #[source]
        source: crate::detect::DetectError,
        /// How long the API server left questions unanswered.
        unanswered: std::time::Duration,
    },
    /// The fault could not be injected (anything it did is reverted).
    #[error(transparent)]
    Inject(FaultError),
    /// A step of `fault.steps` failed: its fault could not be injected, or
    /// the wait after a step did not end as it should (the steps before it
    /// are reverted).
    #[error("step {index}/{total}: {source}")]
    Step {
        /// Which step (1-based).
        index: usize,
        /// How many steps the plan has.
        total: usize,
        /// What went wrong in the step.
        #[source]
        source: Box<StepError>,
    },
    /// The plan injected nothing (validation refuses such plans; kept so a
    /// library caller that builds one gets an error, not a panic).
    #[error("the fault plan has no fault to inject")]
    NoFault,
    /// No expected signal, or the watches failed.
    #[error(transparent)]
    Detect(crate::detect::DetectError),
    /// Some undo actions failed; `breakfix cleanup` retries them from the journal.
    #[error("{}", join(.0))]
    Revert(Vec<JournalError>),
    /// The cluster did not come back to steady state, held for the settle window.
    #[error("no recovery: {0}")]
    Recover(#[source] SteadyError),
}

impl PhaseError {
    /// The phase that failed.
    pub fn phase(&self) -> Phase {
        match self {
            Self::Journal(_) | Self::Apply(_) | Self::Claim(_) => Phase::Baseline,
            Self::NotSteady { .. } => Phase::SteadyState,
            Self::Inject(_) | Self::Step { .. } | Self::NoFault => Phase::Inject,
            Self::Detect(_) | Self::Unobserved { .. } => Phase::Detect,
            Self::Revert(_) => Phase::Revert,
            Self::Recover(_) => Phase::Recover,
        }
    }
}

impl From<&PhaseError> for TrialError {
    fn from(e: &PhaseError) -> Self {
        Self {
            phase: e.phase(),
            message: e.to_string(),
            unobserved: matches!(e, PhaseError::Unobserved { .. }),
        }
    }
}

/// What went wrong in one step of `fault.steps`.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// Its fault (`kind`, as the file names it) could not be injected.
    #[error("{kind}: {source}")]
    Inject {
        kind: &'static str,
        #[source]
        source: FaultError,
    },
    /// Its `waitFor` failed.
    #[error(transparent)]
    Wait(WaitError),
}

/// An apply error with the API server's own words, when it refused.
fn apply_message(e: &ApplyError) -> String {
    match e.api_message() {
        Some(api) => format!("{e} — the API server said: {api}"),
        None => e.to_string(),
    }
}

fn join(errors: &[JournalError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Why a phase stopped early: cancelled (in that phase) or failed.
enum Stop {
    Cancelled(Phase),
    Failed(PhaseError),
}

impl Worker {
    /// One trial of `exp` (an instance of the experiment when its baseline
    /// was moved). Baseline objects applied in place go to `applied`; an
    /// instance goes back to the run's pool when the trial ended cleanly,
    /// and is deleted at the end of the trial otherwise.
    pub(super) async fn run_trial(
        &mut self,
        exp: &LoadedExperiment,
        placement: &Placement,
        trial: u32,
        applied: &mut Vec<ObjectRef>,
        instance_use: InstanceUse<'_>,
    ) -> TrialReport {
        let mut t = Trial {
            name: exp.name().to_string(),
            trial,
            timeline: Timeline::default(),
            marks: Marks::default(),
            events: self.events.clone(),
        };
        let mut report = TrialReport {
            trial,
            marks: Marks::default(),
            detection: None,
            diagnosis: None,
            injected: None,
            measurements: slo::Measurements::default(),
            timeline: Timeline::default(),
            error: None,
            interrupted: false,
        };
        let owner = (self.index, trial);
        self.shared
            .holdings
            .hold(owner, Worker::held_namespaces(exp));
        let InstanceUse { key, kept } = instance_use;
        self.note_placement(exp, placement, kept.as_ref(), &mut t);
        // The instance's namespaces are journaled before they exist, on a
        // handle of their own: reverting the fault leaves them, a crash
        // leaves them to `breakfix cleanup`. A kept instance was journaled
        // by the trial that made it.
        let reused = kept.is_some();
        let mut instance_journal = match kept {
            Some(idle) => idle.journal,
            None => self.journal.handle(),
        };
        let instance = exp.baseline.instance.as_ref().filter(|_| !self.shared.keep);
        let mut journaled = Ok(());
        if let Some(relocation) = instance.filter(|_| !reused) {
            let targets = relocation
                .new_namespaces()
                .map(|ns| ObjectRef {
                    api_version: "v1".into(),
                    kind: "Namespace".into(),
                    namespace: None,
                    name: ns.to_string(),
                })
                .chain(relocation.renamed_cluster_objects());
            for target in targets {
                if let Err(e) =
                    instance_journal.intend(&t.name, UndoAction::Delete { target, uid: None })
                {
                    journaled = Err(e);
                    break;
                }
            }
        }
        let mut session = None;
        let mut claims = None;
        let result = match journaled {
            Ok(()) => match self.claim(exp, &mut t).await {
                Ok(held) => {
                    claims = Some(held);
                    self.trial_body(exp, &mut t, &mut report, applied, &mut session)
                        .await
                }
                Err(stop) => Err(stop),
            },
            Err(e) => Err(Stop::Failed(PhaseError::Journal(e))),
        };
        // Whatever happened above, nothing injected may stay behind.
        if !self.journal.pending().is_empty() {
            t.phase(Phase::Revert);
            let actions: Vec<String> = self
                .journal
                .pending()
                .iter()
                .map(|(_, u)| u.describe())
                .collect();
            let errors = self.journal.revert_all(&self.client).await;
            if errors.is_empty() {
                t.marks.reverted = Some(t.record(EntryKind::Reverted { actions }).at);
            } else {
                let failed = TrialError::from(&PhaseError::Revert(errors));
                t.record(EntryKind::Error {
                    phase: failed.phase,
                    message: failed.message.clone(),
                });
                report.error.get_or_insert(failed);
            }
        }
        // Reverted (and recovered, unless it failed to): the claims go.
        if let Some(held) = claims {
            held.release().await;
        }
        if let Some(mut session) = session {
            if let Some(from) = t.marks.injected {
                let to = t.marks.recovered.unwrap_or_else(jiff::Timestamp::now);
                session.set_others(self.shared.holdings.others(owner, from, to));
            }
            report.measurements = session
                .finish(&self.client, t.marks.injected, t.marks.recovered)
                .await;
        }
        if exp.experiment.spec.expect.impact.is_some() && t.marks.injected.is_some() {
            // Every signal the trial saw counts toward what the fault caused.
            let mut kinds: Vec<SignalKind> = t
                .timeline
                .entries
                .iter()
                .filter_map(|e| match &e.kind {
                    EntryKind::Signal { observation, .. } => Some(observation.kind),
                    _ => None,
                })
                .collect();
            kinds.sort();
            kinds.dedup();
            report.measurements.impact.get_or_insert_default().signals = kinds;
        }
        match result {
            Ok(()) => {}
            Err(Stop::Cancelled(phase)) => {
                report.interrupted = true;
                t.record(EntryKind::Error {
                    phase,
                    message: "interrupted".into(),
                });
            }
            Err(Stop::Failed(e)) => {
                let failed = TrialError::from(&e);
                t.record(EntryKind::Error {
                    phase: failed.phase,
                    message: failed.message.clone(),
                });
                report.error.get_or_insert(failed);
            }
        }
        let clean = report.error.is_none()
            && !report.interrupted
            && t.marks.recovered.is_some()
            && !self.cancel.is_cancelled();
        let pool = self.shared.pool.as_ref().filter(|_| clean);
        if let (Some(relocation), Some(pool)) = (instance, pool) {
            t.record(EntryKind::Note {
                message: format!(
                    "instance kept for the next experiment on baseline {}: {}",
                    exp.baseline.name(),
                    relocation.new_namespaces().collect::<Vec<_>>().join(", ")
                ),
            });
            pool.put(
                key.clone(),
                Idle {
                    relocation: relocation.clone(),
                    journal: instance_journal,
                    last_used_by: t.name.clone(),
                },
            );
        } else if let Some(relocation) = instance {
            t.phase(Phase::Cleanup);
            match delete_instance(&self.client, relocation, INSTANCE_DELETE_TIMEOUT).await {
                Ok(()) => {
                    let errors = instance_journal.revert_all(&self.client).await;
                    let gone = relocation.new_namespaces().collect::<Vec<_>>().join(", ");
                    t.record(EntryKind::Note {
                        message: match errors.first() {
                            None => format!("instance deleted: {gone}"),
                            Some(e) => format!("instance deleted: {gone}; journal: {e}"),
                        },
                    });
                }
                Err(e) => {
                    tracing::warn!("deleting the instance of {}: {e}", t.name);
                    t.record(EntryKind::Note {
                        message: format!(
                            "instance not deleted ({e}); `breakfix cleanup` deletes it"
                        ),
                    });
                }
            }
        }
        self.shared.holdings.release(owner);
        report.marks = t.marks;
        report.timeline = t.timeline;
        report
    }

    /// Takes a Lease per claim of the trial, before its baseline is
    /// applied, waiting for another run's as the run allows.
    async fn claim(&self, exp: &LoadedExperiment, t: &mut Trial) -> Result<Held, Stop> {
        let taken = crate::lease::acquire(
            &self.client,
            &self.claimant,
            &exp.claims(),
            self.claim_wait,
            &self.cancel,
            |message| {
                t.record(EntryKind::Note { message });
            },
        )
        .await;
        match taken {
            Ok(held) => Ok(held),
            Err(LeaseError::Cancelled { .. }) => Err(Stop::Cancelled(Phase::Baseline)),
            Err(e) => Err(Stop::Failed(PhaseError::Claim(e))),
        }
    }

    /// Says on the timeline where the trial runs and what it holds.
    fn note_placement(
        &self,
        exp: &LoadedExperiment,
        placement: &Placement,
        kept: Option<&Idle>,
        t: &mut Trial,
    ) {
        let mut parts = Vec::new();
        match (&exp.baseline.instance, &placement.in_place) {
            (Some(relocation), _) => parts.push(format!(
                "baseline instance in {}",
                relocation.new_namespaces().collect::<Vec<_>>().join(", ")
            )),
            (None, Some(why)) => parts.push(format!("baseline in place: {why}")),
            (None, None) => {}
        }
        if let Some(idle) = kept {
            parts.push(format!("instance kept from {}", idle.last_used_by));
        }
        let shared: Vec<String> = exp
            .claims()
            .iter()
            .filter_map(|c| match c {
                Claim::Shared(r) => Some(r.describe().to_string()),
                Claim::Namespace(_) => None,
            })
            .collect();
        if !shared.is_empty() {
            parts.push(format!(
                "{}it breaks {}",
                super::ALONE_NOTE,
                shared.join(", ")
            ));
        }
        if !parts.is_empty() {
            t.record(EntryKind::Note {
                message: parts.join("; "),
            });
        }
    }

    async fn trial_body(
        &mut self,
        exp: &LoadedExperiment,
        t: &mut Trial,
        report: &mut TrialReport,
        applied: &mut Vec<ObjectRef>,
        session: &mut Option<MeasureSession>,
    ) -> Result<(), Stop> {
        let spec = &exp.experiment.spec;
        let cancel = self.cancel.clone();

        t.phase(Phase::Baseline);
        let objects = guard(&cancel, Phase::Baseline, async {
            apply_baseline_noting(&self.client, &exp.baseline, &self.run_id, |message| {
                t.record(EntryKind::Note { message });
            })
            .await
            .map_err(PhaseError::Apply)
        })
        .await?;
        if applied.is_empty() && exp.baseline.instance.is_none() {
            *applied = objects;
        }

        t.phase(Phase::SteadyState);
        let steady = SteadyState::for_baseline(&exp.baseline);
        let timeout = exp
            .baseline
            .spec
            .steady_state
            .timeout
            .get()
            .min(spec.timeouts.steady_state.get());
        let at = guard(&cancel, Phase::SteadyState, async {
            steady
                .wait_steady(&self.client, timeout)
                .await
                .map_err(|source| PhaseError::NotSteady {
                    baseline: exp.baseline.name().to_string(),
                    source,
                })
        })
        .await?;
        t.marks.steady = Some(at);
        t.record(EntryKind::Steady);

        let measuring = guard(&cancel, Phase::SteadyState, async {
            Ok(
                MeasureSession::start_for(&self.client, spec, exp.baseline.spec.namespace.as_str())
                    .await,
            )
        })
        .await?;
        let session = session.insert(measuring);

        t.phase(Phase::Inject);
        // Each step journals its own undo before it mutates anything; a
        // step that fails returns here, and run_trial reverts the steps
        // before it from the journal, newest first.
        let items = spec.fault.items();
        let total = items.len();
        let mut sources = Vec::new();
        let mut scopes: Vec<Scope> = Vec::new();
        let mut summaries = Vec::new();
        let namespace = exp.baseline.spec.namespace.as_str();
        for (i, item) in items.iter().enumerate() {
            let step = |source: StepError| {
                if total > 1 {
                    PhaseError::Step {
                        index: i + 1,
                        total,
                        source: Box::new(source),
                    }
                } else {
                    match source {
                        StepError::Inject { source, .. } => PhaseError::Inject(source),
                        StepError::Wait(e) => PhaseError::Step {
                            index: 1,
                            total: 1,
                            source: Box::new(StepError::Wait(e)),
                        },
                    }
                }
            };
            let label = |what: &str| {
                if total > 1 {
                    format!("step {}/{total}: {what}", i + 1)
                } else {
                    what.to_string()
                }
            };
            match item {
                Step::Fault(fault) => {
                    let mut ctx = FaultContext {
                        client: self.client.clone(),
                        journal: &mut self.journal,
                        experiment: t.name.clone(),
                        run_id: self.run_id.clone(),
                    };
                    let injection = guard(&cancel, Phase::Inject, async {
                        fault.inject(&mut ctx).await.map_err(|source| {
                            step(StepError::Inject {
                                kind: fault.kind(),
                                source,
                            })
                        })
                    })
                    .await?;
                    let summary = label(&injection.summary);
                    let entry = t.record(EntryKind::Injected {
                        summary: summary.clone(),
                    });
                    t.marks.injected.get_or_insert(entry.at);
                    t.marks.in_place = Some(entry.at);
                    summaries.push(summary);
                    session.add_target(&injection.scope);
                    // Restarts from here on count, also during later waits.
                    let restarts = detect::restart_baseline(&self.client, &injection.scope)
                        .await
                        .unwrap_or_default();
                    if !scopes.iter().any(|s| same_scope(s, &injection.scope)) {
                        sources.push(
                            watch_pod_signals(&self.client, &injection.scope, restarts).boxed(),
                        );
                        scopes.push(injection.scope.clone());
                    }
                    sources.extend(injection.extra);
                }
                Step::WaitFor(wait) => {
                    let what = label(&wait.to_string());
                    t.record(EntryKind::StepStarted { step: what.clone() });
                    let waited = guard(&cancel, Phase::Inject, async {
                        steps::wait(&self.client, wait, namespace)
                            .await
                            .map_err(|e| step(StepError::Wait(e)))
                    })
                    .await;
                    t.record(EntryKind::StepFinished {
                        step: match &waited {
                            Ok(done) => format!("{what}: {done}"),
                            Err(_) => what.clone(),
                        },
                        error: waited.as_ref().err().map(|stop| match stop {
                            Stop::Cancelled(_) => "interrupted".to_string(),
                            Stop::Failed(e) => e.to_string(),
                        }),
                    });
                    waited?;
                }
            }
        }
        report.injected = Some(summaries.join("; "));
        let Some(scope) = scopes.last().cloned() else {
            return Err(Stop::Failed(PhaseError::NoFault));
        };

        t.phase(Phase::Detect);
        let expected = spec.expected_signals();
        let signals = detect::merged(sources);
        let mut signals = signals;
        let mut seen = Vec::new();
        let probing = CancellationToken::new();
        let unanswered = tokio::spawn(unanswered_time(self.client.clone(), probing.clone()));
        let detection = guard(&cancel, Phase::Detect, async {
            until_expected(&mut signals, &expected, spec.detect_timeout(), |obs| {
                seen.push(obs.clone())
            })
            .await
            .map_err(PhaseError::Detect)
        })
        .await;
        probing.cancel();
        let unanswered = unanswered.await.unwrap_or_default();
        let detection = match detection {
            Err(Stop::Failed(PhaseError::Detect(source))) if !unanswered.is_zero() => {
                Err(Stop::Failed(PhaseError::Unobserved { source, unanswered }))
            }
            other => other,
        };
        for obs in seen.iter().cloned() {
            let is_expected = expected.contains(&obs.kind);
            t.record_at(
                obs.seen_at,
                EntryKind::Signal {
                    observation: obs,
                    expected: is_expected,
                },
            );
        }
        let detection = detection?;
        t.marks.detected = Some(detection.seen_at);
        t.marks.detected_signal = Some(detection.kind);
        t.marks.signal = detection.since;
        let mut diagnosis = diagnose(&detection, &scope.namespace);
        detect::corroborate(&mut diagnosis, &detection, &seen);
        report.diagnosis = Some(diagnosis);
        report.detection = Some(detection);

        if let Some(hold) = &spec.hold {
            t.phase(Phase::Hold);
            session.read(&self.client, Moment::HoldStart).await;
            // Keep watching while the fault is held: what else it causes
            // belongs on the timeline (and to what the fault must cause).
            let mut held = Vec::new();
            let ended = guard(&cancel, Phase::Hold, async {
                let end = steps::hold(&self.client, hold, namespace, spec.hold_limit());
                tokio::pin!(end);
                let mut watching = true;
                loop {
                    tokio::select! {
                        note = &mut end => return Ok(note),
                        next = signals.next(), if watching => match next {
                            Some(Ok(obs)) => held.push(obs),
                            Some(Err(_)) | None => watching = false,
                        },
                    }
                }
            })
            .await;
            for obs in held {
                let is_expected = expected.contains(&obs.kind);
                t.record_at(
                    obs.seen_at,
                    EntryKind::Signal {
                        observation: obs,
                        expected: is_expected,
                    },
                );
            }
            let note = ended?;
            session.read(&self.client, Moment::HoldEnd).await;
            t.record(EntryKind::Note { message: note });
        }

        if spec.recovery == Recovery::Revert {
            t.phase(Phase::Revert);
            let actions: Vec<String> = self
                .journal
                .pending()
                .iter()
                .map(|(_, u)| u.describe())
                .collect();
            let errors = self.journal.revert_all(&self.client).await;
            if !errors.is_empty() {
                return Err(Stop::Failed(PhaseError::Revert(errors)));
            }
            t.marks.reverted = Some(t.record(EntryKind::Reverted { actions }).at);
        }

        t.phase(Phase::Recover);
        let recovered = guard(&cancel, Phase::Recover, async {
            steady
                .wait_stable(&self.client, spec.settle.get(), spec.recover_timeout())
                .await
                .map_err(PhaseError::Recover)
        })
        .await?;
        t.marks.recovered = Some(recovered);
        t.record_at(recovered, EntryKind::Recovered);
        Ok(())
    }
}

/// Whether two steps' detection scopes watch the same pods, events and
/// Deployment (then one watch serves both).
fn same_scope(a: &Scope, b: &Scope) -> bool {
    a.namespace == b.namespace
        && a.pod_selector == b.pod_selector
        && a.event_name_prefix == b.event_name_prefix
        && a.deployment == b.deployment
}

/// Runs `phase`'s future unless the run is cancelled first.
/// How often, and how patiently, the API server is asked whether it
/// answers while detection waits.
const PROBE_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// How long the API server went unanswered until `stop`: it is asked for
/// its version every [`PROBE_EVERY`], waiting that long for an answer; the
/// time from a question it left unanswered to the next one it answered
/// counts. Watches cannot tell a quiet cluster from a frozen API server
/// (a stopped server keeps their connections open); this can.
async fn unanswered_time(client: Client, stop: CancellationToken) -> std::time::Duration {
    let mut total = std::time::Duration::ZERO;
    let mut down_since: Option<std::time::Instant> = None;
    loop {
        let asked = std::time::Instant::now();
        let answered = tokio::select! {
            _ = stop.cancelled() => break,
            r = tokio::time::timeout(PROBE_EVERY, client.apiserver_version()) => {
                matches!(r, Ok(Ok(_)))
            }
        };
        match (answered, down_since) {
            (false, None) => down_since = Some(asked),
            (true, Some(since)) => {
                total += since.elapsed();
                down_since = None;
            }
            _ => {}
        }
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(PROBE_EVERY.saturating_sub(asked.elapsed())) => {}
        }
    }
    total + down_since.map_or(std::time::Duration::ZERO, |s| s.elapsed())
}

async fn guard<T>(
    cancel: &CancellationToken,
    phase: Phase,
    fut: impl Future<Output = Result<T, PhaseError>>,
) -> Result<T, Stop> {
    tokio::select! {
        biased;
        _ = cancel.cancelled() => Err(Stop::Cancelled(phase)),
        r = fut => r.map_err(Stop::Failed),
    }
}

/// The in-progress record of one trial.
struct Trial {
    name: String,
    trial: u32,
    timeline: Timeline,
    marks: Marks,
    events: Option<EventSender>,
}

impl Trial {
    fn phase(&mut self, phase: Phase) {
        self.record(EntryKind::PhaseStarted { phase });
        if let Some(tx) = &self.events {
            let _ = tx.send(RunEvent::PhaseStarted {
                experiment: self.name.clone(),
                trial: self.trial,
                phase,
            });
        }
    }

    fn record(&mut self, kind: EntryKind) -> crate::timeline::Entry {
        let entry = self.timeline.push(kind);
        self.send(&entry);
        entry
    }

    fn record_at(&mut self, at: jiff::Timestamp, kind: EntryKind) {
        let entry = crate::timeline::Entry { at, kind };
        self.timeline.entries.push(entry.clone());
        self.timeline.entries.sort_by_key(|e| e.at);
        self.send(&entry);
    }

    fn send(&self, entry: &crate::timeline::Entry) {
        if let Some(tx) = &self.events {
            let _ = tx.send(RunEvent::Timeline {
                experiment: self.name.clone(),
                trial: self.trial,
                entry: entry.clone(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::not_steady(
        PhaseError::NotSteady { baseline: "shop".into(), source: SteadyError::StreamEnded },
        Phase::SteadyState,
        "baseline `shop` never reached steady state: the watch streams ended"
    )]
    #[case::no_recovery(
        PhaseError::Recover(SteadyError::StreamEnded),
        Phase::Recover,
        "no recovery: the watch streams ended"
    )]
    #[case::detect(
        PhaseError::Detect(crate::detect::DetectError::StreamEnded),
        Phase::Detect,
        "the watch stream ended before any expected signal"
    )]
    #[case::revert(
        PhaseError::Revert(vec![JournalError::Command("docker start x: no such container".into()), JournalError::Command("y".into())]),
        Phase::Revert,
        "undo failed: docker start x: no such container; undo failed: y"
    )]
    fn the_report_keeps_the_phase_and_the_words(
        #[case] e: PhaseError,
        #[case] phase: Phase,
        #[case] message: &str,
    ) {
        let reported = TrialError::from(&e);
        assert_eq!(reported.phase, phase);
        assert_eq!(reported.message, message);
    }
}
