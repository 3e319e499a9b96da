//! One trial: the phases from baseline to recovery, and the guarantee that
//! every exit path reverts what was injected.

use std::future::Future;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::measure::MeasureSession;
use super::{EventSender, RunEvent, Runner, TrialError, TrialReport};
use crate::baseline::{SteadyState, apply_baseline};
use crate::detect::{self, diagnose, until_expected, watch_pod_signals};
use crate::experiment::{LoadedExperiment, Recovery};
use crate::fault::FaultContext;
use crate::kobj::ObjectRef;
use crate::slo;
use crate::timeline::{EntryKind, Marks, Phase, Timeline};

/// Why a phase stopped early.
enum Stop {
    Cancelled,
    Failed(String),
}

impl Runner {
    pub(super) async fn run_trial(
        &mut self,
        exp: &LoadedExperiment,
        trial: u32,
        applied: &mut Vec<ObjectRef>,
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
        let mut session = None;
        let result = self
            .trial_body(exp, &mut t, &mut report, applied, &mut session)
            .await;
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
                let message = errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ");
                t.record(EntryKind::Error {
                    phase: Phase::Revert,
                    message: message.clone(),
                });
                report.error.get_or_insert(TrialError {
                    phase: Phase::Revert,
                    message,
                });
            }
        }
        if let Some(session) = session {
            report.measurements = session
                .finish(&self.client, t.marks.injected, t.marks.recovered)
                .await;
        }
        match result {
            Ok(()) => {}
            Err((phase, Stop::Cancelled)) => {
                report.interrupted = true;
                t.record(EntryKind::Error {
                    phase,
                    message: "interrupted".into(),
                });
            }
            Err((phase, Stop::Failed(message))) => {
                t.record(EntryKind::Error {
                    phase,
                    message: message.clone(),
                });
                report.error.get_or_insert(TrialError { phase, message });
            }
        }
        report.marks = t.marks;
        report.timeline = t.timeline;
        report
    }

    async fn trial_body(
        &mut self,
        exp: &LoadedExperiment,
        t: &mut Trial,
        report: &mut TrialReport,
        applied: &mut Vec<ObjectRef>,
        session: &mut Option<MeasureSession>,
    ) -> Result<(), (Phase, Stop)> {
        let spec = &exp.experiment.spec;
        let cancel = self.cancel.clone();

        t.phase(Phase::Baseline);
        let objects = guard(&cancel, Phase::Baseline, async {
            apply_baseline(&self.client, &exp.baseline, &self.run_id)
                .await
                .map_err(|e| match e.api_message() {
                    Some(api) => format!("{e} — the API server said: {api}"),
                    None => e.to_string(),
                })
        })
        .await?;
        if applied.is_empty() {
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
                .map_err(|e| {
                    format!(
                        "baseline `{}` never reached steady state: {e}",
                        exp.baseline.name()
                    )
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
        let mut ctx = FaultContext {
            client: self.client.clone(),
            journal: &mut self.journal,
            experiment: t.name.clone(),
            run_id: self.run_id.clone(),
        };
        let injection = guard(&cancel, Phase::Inject, async {
            spec.fault.inject(&mut ctx).await.map_err(|e| e.to_string())
        })
        .await?;
        let injected = t.record(EntryKind::Injected {
            summary: injection.summary.clone(),
        });
        t.marks.injected = Some(injected.at);
        report.injected = Some(injection.summary.clone());
        session.set_target(&injection.scope);

        t.phase(Phase::Detect);
        let expected = spec.expected_signals();
        let restarts = detect::restart_baseline(&self.client, &injection.scope)
            .await
            .unwrap_or_default();
        let mut sources = vec![watch_pod_signals(&self.client, &injection.scope, restarts).boxed()];
        sources.extend(injection.extra);
        let signals = detect::merged(sources);
        let mut seen = Vec::new();
        let detection = guard(&cancel, Phase::Detect, async {
            until_expected(signals, &expected, spec.detect_timeout(), |obs| {
                seen.push(obs.clone())
            })
            .await
            .map_err(|e| e.to_string())
        })
        .await;
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
        let mut diagnosis = diagnose(&detection, &injection.scope.namespace);
        detect::corroborate(&mut diagnosis, &detection, &seen);
        report.diagnosis = Some(diagnosis);
        report.detection = Some(detection);

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
                let message = errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ");
                return Err((Phase::Revert, Stop::Failed(message)));
            }
            t.marks.reverted = Some(t.record(EntryKind::Reverted { actions }).at);
        }

        t.phase(Phase::Recover);
        let recovered = guard(&cancel, Phase::Recover, async {
            steady
                .wait_stable(&self.client, spec.settle.get(), spec.recover_timeout())
                .await
                .map_err(|e| format!("no recovery: {e}"))
        })
        .await?;
        t.marks.recovered = Some(recovered);
        t.record_at(recovered, EntryKind::Recovered);
        Ok(())
    }
}

/// Runs a phase's future unless the run is cancelled first.
async fn guard<T>(
    cancel: &CancellationToken,
    phase: Phase,
    fut: impl Future<Output = Result<T, String>>,
) -> Result<T, (Phase, Stop)> {
    tokio::select! {
        biased;
        _ = cancel.cancelled() => Err((phase, Stop::Cancelled)),
        r = fut => r.map_err(|m| (phase, Stop::Failed(m))),
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
