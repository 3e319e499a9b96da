//! The `gameday:` block of an experiment: what people playing it as a game
//! day are told, the hints they may get, and when breakfix stops a round by
//! itself. `breakfix run` ignores it; `breakfix gameday` reads it.
//!
//! ```yaml
//! gameday:
//!   briefing:
//!     symptom: "POS is down at Store #4523: the tills cannot reach the backend"
//!     reportedBy: the store manager, by phone
//!     tools: kubectl in your namespace (get, describe, logs, events, edit, rollout)
//!   hints:
//!     - {text: "Start where the user's request goes: the Service.", after: 5m}
//!     - {text: "kubectl get endpoints", cost: 20}
//!   answer: [selector, endpoints, label]
//!   stopWhen:
//!     outsideScope: true
//!     signals: [NodeNotReady]
//! ```

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::vocab::{HumanDuration, SignalKind};

/// How a scenario is played as a game day.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GameDaySpec {
    /// What responders are told when the round starts.
    #[serde(default)]
    pub briefing: Briefing,
    /// The hint ladder, released in order on the facilitator's request or
    /// by themselves after their delay. Empty: hints come from breakfix's
    /// own diagnosis of the signals it saw.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hints: Vec<Hint>,
    /// Words that make a `diagnosed:` declaration correct, besides the
    /// words of the fault's own signals (e.g. `[rolebinding, rbac]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub answer: Vec<String>,
    /// Steady state must hold this long after the team's fix for the round
    /// to end as fixed (default: the experiment's `settle`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settle: Option<HumanDuration>,
    /// The round's length when `--timebox` is not given (default 20m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timebox: Option<HumanDuration>,
    /// Whether the fault's name and story stay sealed until the debrief
    /// (default true).
    #[serde(default = "yes")]
    pub blind: bool,
    /// When breakfix stops every round by itself and reverts.
    #[serde(default)]
    pub stop_when: StopWhen,
}

fn yes() -> bool {
    true
}

/// What responders are told: the symptom as a user would report it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Briefing {
    /// The symptom as reported, e.g. "checkout returns 503".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symptom: Option<String>,
    /// Who reported it and how.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported_by: Option<String>,
    /// What responders may use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<String>,
}

/// One rung of the hint ladder.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Hint {
    /// The hint's text.
    pub text: String,
    /// Released by itself this long after the injection, if not asked for earlier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<HumanDuration>,
    /// Points it costs the team (default 10).
    #[serde(default = "default_hint_cost")]
    #[schemars(range(max = 100))]
    pub cost: u32,
}

/// Points a hint costs unless it says otherwise.
pub const DEFAULT_HINT_COST: u32 = 10;

fn default_hint_cost() -> u32 {
    DEFAULT_HINT_COST
}

/// Stop conditions: any one of them ends every round at once, and breakfix
/// reverts what is still broken.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StopWhen {
    /// A Deployment, StatefulSet or DaemonSet outside every team's copy that
    /// was steady at injection leaves steady state: the blast radius has
    /// left the teams' scope.
    #[serde(default)]
    pub outside_scope: bool,
    /// Any of these signals seen in a team's copy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signals: Vec<SignalKind>,
}

impl StopWhen {
    /// Whether any stop condition is set.
    pub fn is_set(&self) -> bool {
        self.outside_scope || !self.signals.is_empty()
    }
}

/// A problem in the block, with the keys under `spec.gameday` it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GameDayProblem {
    /// The keys of the field at fault, for locating it in the file.
    pub keys: Vec<String>,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
}

impl GameDaySpec {
    /// Checks that need more than types.
    pub fn problems(&self) -> Vec<GameDayProblem> {
        let mut out = Vec::new();
        for (i, hint) in self.hints.iter().enumerate() {
            if hint.text.trim().is_empty() {
                out.push(GameDayProblem {
                    keys: vec!["hints".into()],
                    message: format!("spec.gameday.hints[{i}] has no text"),
                    help: Some("write what the hint tells the team".into()),
                });
            }
        }
        let mut last: Option<HumanDuration> = None;
        for (i, hint) in self.hints.iter().enumerate() {
            if let Some(after) = hint.after {
                if let Some(before) = last
                    && after < before
                {
                    out.push(GameDayProblem {
                        keys: vec!["hints".into()],
                        message: format!(
                            "spec.gameday.hints[{i}] is released after {after}, earlier than the hint before it ({before})"
                        ),
                        help: Some(
                            "hints form a ladder: each one's `after` is at least the previous one's"
                                .into(),
                        ),
                    });
                }
                last = Some(after);
            }
        }
        if let (Some(timebox), Some(settle)) = (self.timebox, self.settle)
            && settle >= timebox
        {
            out.push(GameDayProblem {
                keys: vec!["settle".into()],
                message: format!(
                    "spec.gameday.settle ({settle}) is not shorter than the timebox ({timebox}); no fix could ever count"
                ),
                help: None,
            });
        }
        for word in &self.answer {
            if word.trim().chars().count() < 3 {
                out.push(GameDayProblem {
                    keys: vec!["answer".into()],
                    message: format!(
                        "spec.gameday.answer word `{word}` is shorter than 3 letters; it would match nearly anything"
                    ),
                    help: None,
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    fn spec(yaml: &str) -> GameDaySpec {
        serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("{e}: {yaml}"))
    }

    #[test]
    fn defaults_are_blind_with_no_hints_and_no_stop_condition() {
        let s = spec("{}");
        assert!(s.blind);
        assert!(s.hints.is_empty());
        assert!(!s.stop_when.is_set());
    }

    #[test]
    fn a_hint_costs_ten_unless_it_says_otherwise() {
        let s = spec("hints: [{text: a}, {text: b, cost: 25, after: 5m}]");
        assert_eq!(s.hints[0].cost, DEFAULT_HINT_COST);
        assert_eq!(s.hints[1].cost, 25);
        assert_eq!(s.hints[1].after, Some(HumanDuration::parse("5m").unwrap()));
    }

    #[rstest]
    #[case::empty_hint("hints: [{text: ' '}]", "has no text")]
    #[case::ladder_out_of_order(
        "hints: [{text: a, after: 5m}, {text: b, after: 2m}]",
        "earlier than the hint before it"
    )]
    #[case::settle_beyond_timebox("settle: 5m\ntimebox: 2m", "no fix could ever count")]
    #[case::short_answer("answer: [ab]", "shorter than 3 letters")]
    fn semantic_problems_are_named(#[case] yaml: &str, #[case] message: &str) {
        let problems = spec(yaml).problems();
        assert!(
            problems.iter().any(|p| p.message.contains(message)),
            "{problems:?}"
        );
    }

    #[rstest]
    #[case::unknown_key("briefing: {symptom: a, colour: red}")]
    #[case::unknown_signal("stopWhen: {signals: [Sad]}")]
    #[case::bad_duration("timebox: 20")]
    fn bad_blocks_do_not_parse(#[case] yaml: &str) {
        assert!(serde_yaml::from_str::<GameDaySpec>(yaml).is_err(), "{yaml}");
    }
}
