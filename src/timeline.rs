//! The record of one trial: every phase and observation, timestamped, with
//! where the time came from. Reports and SLO verdicts are computed from it.

use std::time::Duration;

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::detect::Observation;
use crate::vocab::SignalKind;

/// The phases of a trial, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Phase {
    /// Applying the baseline.
    Baseline,
    /// Waiting for steady state.
    SteadyState,
    /// Injecting the fault.
    Inject,
    /// Watching for the expected signal.
    Detect,
    /// Detected, and kept in for `spec.hold` before the revert.
    Hold,
    /// Undoing the fault from the journal.
    Revert,
    /// Waiting for steady state again.
    Recover,
    /// Deleting what the run applied.
    Cleanup,
}

impl Phase {
    /// Present participle for progress lines.
    pub fn doing(self) -> &'static str {
        match self {
            Self::Baseline => "applying baseline",
            Self::SteadyState => "waiting for steady state",
            Self::Inject => "injecting fault",
            Self::Detect => "watching for signals",
            Self::Hold => "holding the fault in",
            Self::Revert => "reverting",
            Self::Recover => "waiting for recovery",
            Self::Cleanup => "cleaning up",
        }
    }
}

/// What happened at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum EntryKind {
    /// A phase began.
    PhaseStarted {
        /// The phase.
        phase: Phase,
    },
    /// Steady state reached (before injection) or regained (recovery).
    Steady,
    /// The fault went in.
    Injected {
        /// What it broke, in words.
        summary: String,
    },
    /// A signal the harness saw (expected or not).
    Signal {
        /// The signal.
        observation: Observation,
        /// Whether it is one the experiment expects.
        expected: bool,
    },
    /// The fault was undone.
    Reverted {
        /// What the revert did, undo by undo.
        actions: Vec<String>,
    },
    /// Steady state regained after the revert.
    Recovered,
    /// Something went wrong.
    Error {
        /// The phase it went wrong in.
        phase: Phase,
        /// What went wrong.
        message: String,
    },
    /// A step of a transition began (a configuration applied, a node rolled).
    StepStarted {
        /// The step.
        step: String,
    },
    /// A step of a transition ended; `error` says why it failed, if it did.
    StepFinished {
        /// The step.
        step: String,
        /// Why it failed, if it did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// Something worth seeing on the timeline that is not a signal (a drain
    /// blocked by a PodDisruptionBudget, a version read back).
    Note {
        /// The note.
        message: String,
    },
}

/// One timeline entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Entry {
    /// When it happened.
    pub at: Timestamp,
    /// What happened.
    #[serde(flatten)]
    pub kind: EntryKind,
}

/// The key moments of a trial, from which every duration is derived.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Marks {
    /// When steady state was first reached.
    pub steady: Option<Timestamp>,
    /// When the fault (its first step) went in: the fault window opens.
    pub injected: Option<Timestamp>,
    /// When its last step went in (the same as `injected` for one fault):
    /// detection is timed from here, since waits between steps are the
    /// story's, not the detector's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_place: Option<Timestamp>,
    /// When the cluster says the detected condition began.
    pub signal: Option<Timestamp>,
    /// When the harness saw the first expected signal.
    pub detected: Option<Timestamp>,
    /// The signal that counted as detection.
    pub detected_signal: Option<SignalKind>,
    /// When the revert finished.
    pub reverted: Option<Timestamp>,
    /// When steady state was back after the revert.
    pub recovered: Option<Timestamp>,
}

fn between(from: Option<Timestamp>, to: Option<Timestamp>) -> Option<Duration> {
    let span = to?.duration_since(from?);
    Duration::try_from(span).ok()
}

impl Marks {
    /// Injection (of the last step) → harness detection.
    pub fn time_to_detect(&self) -> Option<Duration> {
        between(self.in_place.or(self.injected), self.detected)
    }

    /// Revert (or injection, when nothing was reverted) → stable steady state.
    pub fn time_to_recover(&self) -> Option<Duration> {
        between(self.reverted.or(self.injected), self.recovered)
    }

    /// Signal present in the cluster → harness saw it. The cluster's
    /// timestamps have second precision for most objects, so this is an
    /// upper-bounded estimate; it is clamped at zero.
    pub fn harness_latency(&self) -> Option<Duration> {
        let (signal, detected) = (self.signal?, self.detected?);
        Some(Duration::try_from(detected.duration_since(signal)).unwrap_or(Duration::ZERO))
    }
}

/// The ordered record of one trial.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Timeline {
    /// The entries, in order.
    pub entries: Vec<Entry>,
}

impl Timeline {
    /// Appends an entry stamped now and returns it.
    pub fn push(&mut self, kind: EntryKind) -> Entry {
        let entry = Entry {
            at: Timestamp::now(),
            kind,
        };
        self.entries.push(entry.clone());
        entry
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Option<Timestamp> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn durations_derive_from_marks() {
        let marks = Marks {
            injected: ts("2026-01-01T00:00:00Z"),
            signal: ts("2026-01-01T00:00:03Z"),
            detected: ts("2026-01-01T00:00:03.120Z"),
            reverted: ts("2026-01-01T00:00:04Z"),
            recovered: ts("2026-01-01T00:00:19Z"),
            ..Marks::default()
        };
        assert_eq!(marks.time_to_detect(), Some(Duration::from_millis(3120)));
        assert_eq!(marks.time_to_recover(), Some(Duration::from_secs(15)));
        assert_eq!(marks.harness_latency(), Some(Duration::from_millis(120)));
    }

    #[test]
    fn self_healing_recovery_counts_from_injection() {
        let marks = Marks {
            injected: ts("2026-01-01T00:00:00Z"),
            recovered: ts("2026-01-01T00:00:30Z"),
            ..Marks::default()
        };
        assert_eq!(marks.time_to_recover(), Some(Duration::from_secs(30)));
    }

    #[test]
    fn a_signal_stamped_after_detection_clamps_latency_to_zero() {
        let marks = Marks {
            signal: ts("2026-01-01T00:00:05Z"),
            detected: ts("2026-01-01T00:00:04.900Z"),
            ..Marks::default()
        };
        assert_eq!(marks.harness_latency(), Some(Duration::ZERO));
    }

    #[test]
    fn missing_marks_give_no_duration() {
        assert_eq!(Marks::default().time_to_detect(), None);
    }
}
