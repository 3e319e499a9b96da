//! What a game day records per team: a timeline of breakfix's observations,
//! the team's declarations, hints and changes, the key moments derived from
//! it, and how each round ended. The live page, `status` and the debrief
//! are all views of this record.

use std::time::Duration;

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::changes::Change;
use super::declare::DeclarationKind;
use super::score::Score;
use crate::detect::Observation;
use crate::vocab::SignalKind;

/// How a hint came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum HintRelease {
    /// The facilitator released it (the team asked).
    Requested,
    /// Its delay ran out.
    Timer,
}

/// Something that happened in one team's round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum EntryKind {
    /// The team's copy reached steady state; the round is about to start.
    Ready {
        /// The team's namespace.
        namespace: String,
    },
    /// The fault is in. `summary` says what breakfix broke (sealed while blind).
    Injected {
        /// What breakfix broke.
        summary: String,
    },
    /// A signal breakfix saw in the team's copy.
    Signal {
        /// The signal.
        observation: Observation,
        /// Whether it is one the experiment expects.
        expected: bool,
    },
    /// breakfix's own detection: the first expected signal.
    HarnessDetected {
        /// The signal.
        signal: SignalKind,
        /// The object it showed on.
        object: String,
    },
    /// A declaration by the team.
    Declared {
        /// Detected, diagnosed or fixed.
        declaration: DeclarationKind,
        /// What the team wrote.
        text: String,
        /// For `diagnosed`: whether it names what the fault broke.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        matched: Option<bool>,
    },
    /// A hint released to the team.
    Hint {
        /// The hint's number, from 1.
        number: usize,
        /// The hint's text.
        text: String,
        /// The points it costs.
        cost: u32,
        /// Whether the team asked for it or the clock released it.
        release: HintRelease,
    },
    /// A change a responder made to an object in the team's scope.
    Change {
        /// The change.
        change: Change,
    },
    /// Steady state held for `settle` after the team's own changes.
    Fixed,
    /// Steady state came back with no change by the team (not counted as a fix).
    SteadyWithoutTeam,
    /// The timebox ran out with the fault still in.
    Timebox,
    /// The round was stopped (facilitator, stop condition, interrupt).
    Stopped {
        /// Who or what stopped it.
        reason: String,
    },
    /// breakfix reverted the fault from the journal.
    Reverted {
        /// What the revert did, undo by undo.
        actions: Vec<String>,
    },
    /// Steady state again after breakfix's revert.
    Recovered,
    /// Something that went wrong (a watch failed, a revert failed).
    Error {
        /// What went wrong.
        message: String,
    },
    /// Anything else worth seeing.
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

/// What the fault's name and story look like while the game day is blind.
pub const SEALED: &str = "sealed until the debrief";

impl Entry {
    /// The entry as a team may see it: breakfix's own observations and
    /// detection are left out (they would give the answer away), and what
    /// breakfix broke or reverted is sealed.
    pub fn for_team(&self) -> Option<Entry> {
        let kind = match &self.kind {
            EntryKind::Signal { .. } | EntryKind::HarnessDetected { .. } => return None,
            EntryKind::Injected { .. } => EntryKind::Injected {
                summary: "the incident starts".into(),
            },
            EntryKind::Reverted { .. } => EntryKind::Reverted {
                actions: vec!["breakfix put the fault back right".into()],
            },
            other => other.clone(),
        };
        Some(Entry { at: self.at, kind })
    }

    /// The entry as the facilitator's page shows it while the game day is
    /// blind: everything, except what breakfix broke.
    pub fn sealed(&self) -> Entry {
        let kind = match &self.kind {
            EntryKind::Injected { .. } => EntryKind::Injected {
                summary: format!("the fault is in ({SEALED})"),
            },
            EntryKind::Reverted { actions } => EntryKind::Reverted {
                actions: vec![format!("{} change(s) reverted ({SEALED})", actions.len())],
            },
            other => other.clone(),
        };
        Entry { at: self.at, kind }
    }

    /// One line for terminals and the Markdown debrief.
    pub fn describe(&self) -> String {
        match &self.kind {
            EntryKind::Ready { namespace } => format!("copy ready in namespace {namespace}"),
            EntryKind::Injected { summary } => format!("injected: {summary}"),
            EntryKind::Signal {
                observation,
                expected,
            } => format!(
                "breakfix saw {}{} on {}: {}",
                observation.kind,
                if *expected { "" } else { " (unexpected)" },
                observation.object,
                observation.reason
            ),
            EntryKind::HarnessDetected { signal, object } => {
                format!("breakfix detected {signal} on {object}")
            }
            EntryKind::Declared {
                declaration,
                text,
                matched,
            } => {
                let verdict = match matched {
                    Some(true) => " (matches the fault)",
                    Some(false) => " (does not match the fault)",
                    None => "",
                };
                if text.is_empty() {
                    format!("team declared {declaration}{verdict}")
                } else {
                    format!("team declared {declaration}: {text}{verdict}")
                }
            }
            EntryKind::Hint {
                number,
                text,
                cost,
                release,
            } => {
                let how = match release {
                    HintRelease::Requested => "on request",
                    HintRelease::Timer => "after its delay",
                };
                format!("hint {number} ({how}, -{cost} points): {text}")
            }
            EntryKind::Change { change } => change.describe(),
            EntryKind::Fixed => "fixed by the team: steady state held".into(),
            EntryKind::SteadyWithoutTeam => {
                "steady again without any change by the team (not counted as a fix)".into()
            }
            EntryKind::Timebox => "timebox reached with the fault still in".into(),
            EntryKind::Stopped { reason } => format!("stopped: {reason}"),
            EntryKind::Reverted { actions } => format!("breakfix reverted: {}", actions.join("; ")),
            EntryKind::Recovered => "steady state again after breakfix's revert".into(),
            EntryKind::Error { message } => format!("error: {message}"),
            EntryKind::Note { message } => message.clone(),
        }
    }
}

/// How a team's round ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "how", rename_all = "camelCase")]
pub enum RoundEnd {
    /// Steady state back by the team's hand, held for `settle`.
    Fixed,
    /// The timebox ran out first; breakfix reverted.
    Timebox,
    /// Stopped (facilitator, stop condition); breakfix reverted.
    Stopped {
        /// Who or what stopped it.
        reason: String,
    },
    /// Ctrl-C or the process stopping; breakfix reverted.
    Interrupted,
    /// The round could not be played (set-up or injection failed).
    Error {
        /// Why it could not be played.
        message: String,
    },
}

impl std::fmt::Display for RoundEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Fixed => f.write_str("fixed"),
            Self::Timebox => f.write_str("timebox"),
            Self::Stopped { reason } => write!(f, "stopped ({reason})"),
            Self::Interrupted => f.write_str("interrupted"),
            Self::Error { message } => write!(f, "error ({message})"),
        }
    }
}

/// The key moments of a team's round.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Marks {
    /// When the fault went in.
    pub injected: Option<Timestamp>,
    /// When the cluster says the first expected signal's condition began.
    pub signal: Option<Timestamp>,
    /// When breakfix saw its first expected signal.
    pub harness_detected: Option<Timestamp>,
    /// When the team declared it detected.
    pub team_detected: Option<Timestamp>,
    /// The first `diagnosed:` declaration that names what the fault broke.
    pub team_diagnosed: Option<Timestamp>,
    /// When the team declared it fixed.
    pub team_declared_fixed: Option<Timestamp>,
    /// The team's first change to the cluster.
    pub first_change: Option<Timestamp>,
    /// When the steady state that ended the round began (the team's fix).
    pub fixed: Option<Timestamp>,
    /// When the round ended.
    pub ended: Option<Timestamp>,
    /// When breakfix reverted the fault, if it had to.
    pub reverted: Option<Timestamp>,
    /// When steady state was back after breakfix's revert.
    pub recovered: Option<Timestamp>,
}

fn between(from: Option<Timestamp>, to: Option<Timestamp>) -> Option<Duration> {
    Duration::try_from(to?.duration_since(from?)).ok()
}

impl Marks {
    /// Injection → breakfix saw the first expected signal.
    pub fn harness_detect(&self) -> Option<Duration> {
        between(self.injected, self.harness_detected)
    }
    /// Injection → the team declared `detected`.
    pub fn team_detect(&self) -> Option<Duration> {
        between(self.injected, self.team_detected)
    }
    /// Injection → the team's first matching diagnosis.
    pub fn team_diagnose(&self) -> Option<Duration> {
        between(self.injected, self.team_diagnosed)
    }
    /// Injection → steady state back by the team's hand.
    pub fn team_fix(&self) -> Option<Duration> {
        between(self.injected, self.fixed)
    }
    /// breakfix's revert → steady again.
    pub fn harness_recover(&self) -> Option<Duration> {
        between(self.reverted, self.recovered)
    }
    /// The cluster's first signal → breakfix saw it.
    pub fn harness_latency(&self) -> Option<Duration> {
        let (signal, detected) = (self.signal?, self.harness_detected?);
        Some(Duration::try_from(detected.duration_since(signal)).unwrap_or(Duration::ZERO))
    }
}

/// One team's whole round.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TeamRecord {
    /// The team's name.
    pub name: String,
    /// The namespace of the team's copy.
    pub namespace: String,
    /// The kubeconfig handed to the team (a file; its token is never shown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig: Option<String>,
    /// Everything that happened in the round, in order.
    pub entries: Vec<Entry>,
    /// The round's moments.
    pub marks: Marks,
    /// How the round ended, once it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<RoundEnd>,
    /// Hints released so far.
    pub hints_used: usize,
    /// Hints there are.
    pub hints_total: usize,
    /// The team's score.
    pub score: Score,
}

impl TeamRecord {
    /// An empty record for `name` playing in `namespace`.
    pub fn new(name: &str, namespace: &str) -> Self {
        Self {
            name: name.to_string(),
            namespace: namespace.to_string(),
            kubeconfig: None,
            entries: Vec::new(),
            marks: Marks::default(),
            end: None,
            hints_used: 0,
            hints_total: 0,
            score: Score::default(),
        }
    }

    /// Appends an entry stamped `at`, keeping the timeline in time order.
    pub fn push(&mut self, at: Timestamp, kind: EntryKind) -> Entry {
        let entry = Entry { at, kind };
        let pos = self.entries.partition_point(|e| e.at <= at);
        self.entries.insert(pos, entry.clone());
        entry
    }

    /// The responders' changes, in order.
    pub fn changes(&self) -> impl Iterator<Item = (&Timestamp, &Change)> {
        self.entries.iter().filter_map(|e| match &e.kind {
            EntryKind::Change { change } => Some((&e.at, change)),
            _ => None,
        })
    }

    /// Whether the round is over.
    pub fn is_over(&self) -> bool {
        self.end.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn entries_stay_in_time_order_whatever_order_they_arrive_in() {
        let mut t = TeamRecord::new("blue", "shop-blue");
        t.push(ts("2026-01-01T00:00:05Z"), EntryKind::Fixed);
        t.push(ts("2026-01-01T00:00:01Z"), EntryKind::Timebox);
        t.push(ts("2026-01-01T00:00:03Z"), EntryKind::Recovered);
        let kinds: Vec<_> = t.entries.iter().map(|e| e.kind.clone()).collect();
        assert_eq!(
            kinds,
            [EntryKind::Timebox, EntryKind::Recovered, EntryKind::Fixed]
        );
    }

    #[test]
    fn a_team_never_sees_what_breakfix_saw_or_broke() {
        let injected = Entry {
            at: ts("2026-01-01T00:00:00Z"),
            kind: EntryKind::Injected {
                summary: "deleted rolebinding/api-canary-reader".into(),
            },
        };
        let seen = injected.for_team().unwrap();
        assert!(!seen.describe().contains("rolebinding"), "{seen:?}");
        assert!(!injected.sealed().describe().contains("rolebinding"));
        let detected = Entry {
            at: ts("2026-01-01T00:00:01Z"),
            kind: EntryKind::HarnessDetected {
                signal: SignalKind::Forbidden,
                object: "pod/api-canary".into(),
            },
        };
        assert_eq!(detected.for_team(), None);
    }

    #[test]
    fn human_and_harness_times_count_from_the_injection() {
        let marks = Marks {
            injected: Some(ts("2026-01-01T00:00:00Z")),
            signal: Some(ts("2026-01-01T00:00:02Z")),
            harness_detected: Some(ts("2026-01-01T00:00:02.300Z")),
            team_detected: Some(ts("2026-01-01T00:01:00Z")),
            fixed: Some(ts("2026-01-01T00:04:00Z")),
            ..Marks::default()
        };
        assert_eq!(marks.harness_detect(), Some(Duration::from_millis(2300)));
        assert_eq!(marks.team_detect(), Some(Duration::from_secs(60)));
        assert_eq!(marks.team_fix(), Some(Duration::from_secs(240)));
        assert_eq!(marks.harness_latency(), Some(Duration::from_millis(300)));
        assert_eq!(marks.team_diagnose(), None);
    }
}
