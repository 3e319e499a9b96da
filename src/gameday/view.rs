//! Views of a game day's state for the people looking at it: the
//! facilitator (everything, the fault sealed while blind) and a team (its
//! own round only, none of breakfix's observations). The live page, the
//! `status` command and the debrief render these.

use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::record::{Entry, EntryKind, Marks, SEALED, TeamRecord};
use super::{GamePhase, GameState};
use crate::experiment::gameday::Briefing;
use crate::vocab::duration::format_duration;

/// Who is looking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "role", content = "team", rename_all = "camelCase")]
pub enum Viewer {
    /// The facilitator: sees every team and the fault.
    Facilitator,
    /// One team: sees its own round only.
    Team(String),
}

/// A game day as one viewer may see it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct View {
    /// The game day's run id.
    pub run_id: String,
    /// Who the page is for.
    pub viewer: Viewer,
    /// The scenario's name, or its symptom while sealed.
    pub title: String,
    /// What teams were told.
    pub briefing: Briefing,
    /// Where the game day is.
    pub phase: GamePhase,
    /// The phase, in words.
    pub phase_text: String,
    /// The fault revealed (facilitator, once not blind).
    pub fault: Option<FaultView>,
    /// The round's length, in words.
    pub timebox: String,
    /// When the round started.
    pub started: Option<Timestamp>,
    /// When the timebox runs out.
    pub deadline: Option<Timestamp>,
    /// Deadline as milliseconds since the epoch, for the page's clock.
    pub deadline_ms: i64,
    /// Why the game day was stopped, if it was.
    pub stopped: Option<String>,
    /// The teams this viewer may see.
    pub teams: Vec<TeamView>,
}

/// The answer, once it may be seen.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultView {
    /// The scenario's name.
    pub scenario: String,
    /// The fault's catalogue key.
    pub fault: String,
    /// The scenario's story.
    pub story: Option<String>,
    /// Per team: what was broken, and breakfix's diagnosis.
    pub answers: Vec<(String, String, Option<String>)>,
}

/// One team's round, ready to render.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TeamView {
    /// The team's name.
    pub name: String,
    /// The namespace of its copy.
    pub namespace: String,
    /// Its round's status, in words.
    pub status: String,
    /// Whether its round has ended.
    pub over: bool,
    /// Its score.
    pub points: i64,
    /// What earned or cost its points.
    pub score_items: Vec<(String, i64)>,
    /// Hints used of those there are.
    pub hints: String,
    /// (label, value) pairs: human and harness times.
    pub times: Vec<(String, String)>,
    /// How many changes it made.
    pub changes: usize,
    /// Its timeline's rows.
    pub rows: Vec<Row>,
}

/// One timeline row.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    /// Wall-clock time, `HH:MM:SS`.
    pub clock: String,
    /// Offset from the injection, `+1m05s` (empty before it).
    pub offset: String,
    /// A CSS class / machine-readable kind: `change`, `hint`, `declared`, …
    pub class: String,
    /// The row's text.
    pub text: String,
}

fn clock(at: Timestamp) -> String {
    at.strftime("%H:%M:%S").to_string()
}

fn offset(at: Timestamp, from: Option<Timestamp>) -> String {
    let Some(from) = from else {
        return String::new();
    };
    let span = at.duration_since(from);
    match Duration::try_from(span) {
        Ok(d) => format!("+{}", format_duration(d)),
        Err(_) => format!(
            "-{}",
            format_duration(Duration::try_from(-span).unwrap_or_default())
        ),
    }
}

/// The CSS class of an entry.
pub fn class(kind: &EntryKind) -> &'static str {
    match kind {
        EntryKind::Ready { .. } => "ready",
        EntryKind::Injected { .. } => "injected",
        EntryKind::Signal { .. } => "signal",
        EntryKind::HarnessDetected { .. } => "detected",
        EntryKind::Declared { .. } => "declared",
        EntryKind::Hint { .. } => "hint",
        EntryKind::Change { .. } => "change",
        EntryKind::Fixed => "fixed",
        EntryKind::SteadyWithoutTeam => "note",
        EntryKind::Timebox => "timebox",
        EntryKind::Stopped { .. } => "stopped",
        EntryKind::Reverted { .. } => "reverted",
        EntryKind::Recovered => "recovered",
        EntryKind::Error { .. } => "error",
        EntryKind::Note { .. } => "note",
    }
}

fn dur(d: Option<Duration>) -> String {
    d.map(format_duration).unwrap_or_else(|| "–".into())
}

/// Human and harness times of a round, as (label, value).
pub fn times(marks: &Marks, harness: bool) -> Vec<(String, String)> {
    let mut out = vec![
        ("team detected".to_string(), dur(marks.team_detect())),
        ("team diagnosed".to_string(), dur(marks.team_diagnose())),
        ("team fixed".to_string(), dur(marks.team_fix())),
    ];
    if harness {
        out.push(("breakfix detected".into(), dur(marks.harness_detect())));
        out.push(("breakfix latency".into(), dur(marks.harness_latency())));
        if marks.reverted.is_some() {
            out.push((
                "recovered after revert".into(),
                dur(marks.harness_recover()),
            ));
        }
    }
    out
}

fn rows(entries: &[Entry], injected: Option<Timestamp>) -> Vec<Row> {
    entries
        .iter()
        .map(|e| Row {
            clock: clock(e.at),
            offset: offset(e.at, injected),
            class: class(&e.kind).into(),
            text: e.describe(),
        })
        .collect()
}

fn status(t: &TeamRecord, phase: GamePhase) -> String {
    match (&t.end, phase) {
        (Some(end), _) => end.to_string(),
        (None, GamePhase::Preparing) => "preparing".into(),
        (None, _) => "playing".into(),
    }
}

fn team_view(t: &TeamRecord, phase: GamePhase, entries: Vec<Entry>, harness: bool) -> TeamView {
    TeamView {
        name: t.name.clone(),
        namespace: t.namespace.clone(),
        status: status(t, phase),
        over: t.end.is_some(),
        points: t.score.points,
        score_items: t
            .score
            .items
            .iter()
            .map(|i| (i.what.clone(), i.points))
            .collect(),
        hints: format!("{}/{}", t.hints_used, t.hints_total),
        times: times(&t.marks, harness),
        changes: t.changes().count(),
        rows: rows(&entries, t.marks.injected),
    }
}

fn phase_text(p: GamePhase) -> &'static str {
    match p {
        GamePhase::Preparing => "preparing the teams' copies",
        GamePhase::Playing => "playing",
        GamePhase::Reverting => "rounds over: reverting and deleting the copies",
        GamePhase::Over => "over: debrief written",
    }
}

impl GameState {
    /// The state as `viewer` may see it, or `None` for a team that does
    /// not exist.
    pub fn view(&self, viewer: &Viewer) -> Option<View> {
        let revealed = !self.blind;
        let teams = match viewer {
            Viewer::Facilitator => self
                .teams
                .iter()
                .map(|t| {
                    let entries = t
                        .entries
                        .iter()
                        .map(|e| if revealed { e.clone() } else { e.sealed() })
                        .collect();
                    team_view(t, self.phase, entries, true)
                })
                .collect(),
            Viewer::Team(name) => {
                let t = self.teams.iter().find(|t| &t.name == name)?;
                let entries = t.entries.iter().filter_map(Entry::for_team).collect();
                vec![team_view(t, self.phase, entries, false)]
            }
        };
        let fault = (revealed && *viewer == Viewer::Facilitator || self.phase == GamePhase::Over)
            .then(|| FaultView {
                scenario: self.scenario.clone(),
                fault: self.fault.clone(),
                story: self.story.clone(),
                answers: self
                    .answers
                    .iter()
                    .filter(|a| match viewer {
                        Viewer::Facilitator => true,
                        Viewer::Team(n) => &a.team == n,
                    })
                    .map(|a| {
                        (
                            a.team.clone(),
                            a.injected.clone(),
                            a.diagnosis.as_ref().map(|d| d.summary.clone()),
                        )
                    })
                    .collect(),
            });
        let title = if fault.is_some() {
            self.scenario.clone()
        } else {
            self.briefing
                .symptom
                .clone()
                .unwrap_or_else(|| format!("an incident ({SEALED})"))
        };
        Some(View {
            run_id: self.run_id.clone(),
            viewer: viewer.clone(),
            title,
            briefing: self.briefing.clone(),
            phase: self.phase,
            phase_text: phase_text(self.phase).into(),
            fault,
            timebox: format_duration(Duration::from_secs(self.timebox_seconds)),
            started: self.started,
            deadline: self.deadline,
            deadline_ms: self.deadline.map_or(0, |d| d.as_millisecond()),
            stopped: self.stopped.clone(),
            teams,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Observation;
    use crate::vocab::SignalKind;

    fn state() -> GameState {
        let at: Timestamp = "2026-01-01T10:00:00Z".parse().unwrap();
        let mut blue = TeamRecord::new("blue", "canaries");
        blue.marks.injected = Some(at);
        blue.push(
            at,
            EntryKind::Injected {
                summary: "deleted rolebinding/api-canary-reader".into(),
            },
        );
        blue.push(
            at + jiff::SignedDuration::from_secs(2),
            EntryKind::Signal {
                observation: Observation {
                    kind: SignalKind::Forbidden,
                    object: "pod/api-canary-1".into(),
                    container: None,
                    reason: "Forbidden".into(),
                    message: "403".into(),
                    seen_at: at,
                    since: None,
                    evidence: Vec::new(),
                },
                expected: true,
            },
        );
        GameState {
            run_id: "r1".into(),
            scenario: "rbac-rolebinding-delete".into(),
            fault: "rbacBindingDelete".into(),
            story: Some("Zalando 2019".into()),
            blind: true,
            briefing: Briefing {
                symptom: Some("the api canary is down".into()),
                ..Briefing::default()
            },
            timebox_seconds: 600,
            settle_seconds: 5.0,
            phase: GamePhase::Playing,
            started: Some(at),
            deadline: None,
            finished: None,
            stopped: None,
            answers: Vec::new(),
            teams: vec![blue, TeamRecord::new("red", "canaries-red")],
        }
    }

    #[test]
    fn the_facilitator_sees_observations_but_not_the_fault_while_blind() {
        let view = state().view(&Viewer::Facilitator).unwrap();
        assert_eq!(view.title, "the api canary is down");
        assert!(view.fault.is_none());
        let text: Vec<&str> = view.teams[0].rows.iter().map(|r| r.text.as_str()).collect();
        assert!(text.iter().any(|t| t.contains("Forbidden")), "{text:?}");
        assert!(!text.iter().any(|t| t.contains("rolebinding")), "{text:?}");
        assert_eq!(view.teams.len(), 2);
    }

    #[test]
    fn a_team_sees_only_its_own_round_and_nothing_breakfix_saw() {
        let view = state().view(&Viewer::Team("blue".into())).unwrap();
        assert_eq!(view.teams.len(), 1);
        assert!(view.teams[0].rows.iter().all(|r| r.class != "signal"));
        assert!(
            view.teams[0]
                .times
                .iter()
                .all(|(l, _)| !l.starts_with("breakfix"))
        );
        assert!(state().view(&Viewer::Team("green".into())).is_none());
    }

    #[test]
    fn the_debrief_reveals_the_fault() {
        let mut s = state();
        s.phase = GamePhase::Over;
        s.blind = false;
        let view = s.view(&Viewer::Team("blue".into())).unwrap();
        assert_eq!(view.fault.unwrap().fault, "rbacBindingDelete");
        assert_eq!(view.title, "rbac-rolebinding-delete");
    }
}
