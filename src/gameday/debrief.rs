//! The debrief: the sealed answer revealed, then the retrospective — each
//! team's merged timeline (injection, first signal in the cluster, breakfix
//! detected, team detected, hints, each change, fixed), the human versus
//! harness times, and the scoreboard — as Markdown, self-contained HTML and
//! JSON.

use std::path::{Path, PathBuf};

use askama::Template;

use super::GameState;
use super::record::{Entry, EntryKind, TeamRecord};
use super::view::{self, Viewer};
use crate::report::{ReportError, write_file};
use crate::vocab::duration::format_duration;

/// The files a debrief was written to.
#[derive(Debug, Clone)]
pub struct DebriefFiles {
    /// The debrief as Markdown.
    pub markdown: PathBuf,
    /// The debrief as one HTML page.
    pub html: PathBuf,
    /// The game day's record as JSON.
    pub json: PathBuf,
}

/// A team's timeline with the moments the cluster and breakfix give (the
/// first signal in the cluster) merged in, in time order.
pub fn merged_timeline(team: &TeamRecord) -> Vec<Entry> {
    let mut entries = team.entries.clone();
    if let Some(signal) = team.marks.signal {
        entries.push(Entry {
            at: signal,
            kind: EntryKind::Note {
                message: "first signal in the cluster (the cluster's own timestamp)".into(),
            },
        });
    }
    entries.sort_by_key(|e| e.at);
    entries
}

/// One row of the scoreboard.
#[derive(Debug, Clone)]
pub struct ScoreRow {
    /// The team.
    pub team: String,
    /// How its round ended.
    pub end: String,
    /// Its score.
    pub points: i64,
    /// Hints used of those there were.
    pub hints: String,
    /// How many changes it made.
    pub changes: usize,
    /// Its times (detect, diagnose, fix …) as label and duration.
    pub times: Vec<(String, String)>,
}

fn scoreboard(state: &GameState) -> Vec<ScoreRow> {
    let mut rows: Vec<ScoreRow> = state
        .teams
        .iter()
        .map(|t| ScoreRow {
            team: t.name.clone(),
            end: t.end.as_ref().map(ToString::to_string).unwrap_or_default(),
            points: t.score.points,
            hints: format!("{}/{}", t.hints_used, t.hints_total),
            changes: t.changes().count(),
            times: view::times(&t.marks, true),
        })
        .collect();
    rows.sort_by(|a, b| b.points.cmp(&a.points).then(a.team.cmp(&b.team)));
    rows
}

/// The debrief as Markdown.
pub fn to_markdown(state: &GameState) -> String {
    let mut md = format!(
        "# Game day debrief: {}\n\nRun `{}` · timebox {} · settle {}\n\n",
        state.scenario,
        state.run_id,
        format_duration(std::time::Duration::from_secs(state.timebox_seconds)),
        format_duration(std::time::Duration::from_secs_f64(state.settle_seconds)),
    );
    if let Some(symptom) = &state.briefing.symptom {
        md.push_str(&format!("**Reported:** {symptom}\n\n"));
    }
    md.push_str(&format!("## The answer\n\nThe fault was `{}`", state.fault));
    match &state.story {
        Some(story) => md.push_str(&format!(": {story}\n\n")),
        None => md.push_str(".\n\n"),
    }
    for a in &state.answers {
        md.push_str(&format!("- **{}**: {}", a.team, a.injected));
        if let Some(d) = &a.diagnosis {
            md.push_str(&format!(" — breakfix's diagnosis: {}", d.summary));
        }
        md.push('\n');
    }
    if let Some(reason) = &state.stopped {
        md.push_str(&format!("\nThe game day was stopped: {reason}\n"));
    }
    md.push_str("\n## Scoreboard\n\n");
    let rows = scoreboard(state);
    let labels: Vec<String> = rows
        .first()
        .map(|r| r.times.iter().map(|(l, _)| l.clone()).collect())
        .unwrap_or_default();
    md.push_str("| team | round | points | hints | changes |");
    for l in &labels {
        md.push_str(&format!(" {l} |"));
    }
    md.push_str("\n|---|---|---:|---:|---:|");
    for _ in &labels {
        md.push_str("---:|");
    }
    md.push('\n');
    for r in &rows {
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} |",
            r.team, r.end, r.points, r.hints, r.changes
        ));
        for (_, v) in &r.times {
            md.push_str(&format!(" {v} |"));
        }
        md.push('\n');
    }
    for t in &state.teams {
        md.push_str(&format!(
            "\n## Team {} (namespace {})\n\n",
            t.name, t.namespace
        ));
        let (human, harness) = (t.marks.team_detect(), t.marks.harness_detect());
        md.push_str(&format!(
            "Human vs harness: the team declared detection after {}, breakfix detected after {}",
            human.map(format_duration).unwrap_or_else(|| "–".into()),
            harness.map(format_duration).unwrap_or_else(|| "–".into()),
        ));
        match (t.marks.team_fix(), t.marks.harness_recover()) {
            (Some(fix), _) => md.push_str(&format!("; the team fixed it in {}.\n\n", format_duration(fix))),
            (None, Some(rec)) => md.push_str(&format!(
                "; the team did not fix it, and the cluster was steady {} after breakfix's revert.\n\n",
                format_duration(rec)
            )),
            (None, None) => md.push_str("; nobody fixed it in the round.\n\n"),
        }
        if !t.score.items.is_empty() {
            md.push_str("Score: ");
            md.push_str(
                &t.score
                    .items
                    .iter()
                    .map(|i| format!("{} {:+}", i.what, i.points))
                    .collect::<Vec<_>>()
                    .join(", "),
            );
            md.push_str(&format!(" = **{}**\n\n", t.score.points));
        }
        md.push_str("| time | since injection | what |\n|---|---:|---|\n");
        for e in merged_timeline(t) {
            let since = t
                .marks
                .injected
                .and_then(|i| std::time::Duration::try_from(e.at.duration_since(i)).ok())
                .map(|d| format!("+{}", format_duration(d)))
                .unwrap_or_default();
            md.push_str(&format!(
                "| {} | {} | {} |\n",
                e.at.strftime("%H:%M:%S"),
                since,
                e.describe().replace('|', "\\|")
            ));
        }
    }
    md
}

#[derive(Template)]
#[template(path = "gameday/debrief.html")]
struct DebriefHtml<'a> {
    state: &'a GameState,
    rows: Vec<ScoreRow>,
    labels: Vec<String>,
    teams: Vec<view::TeamView>,
}

/// The debrief as one self-contained HTML file.
pub fn to_html(state: &GameState) -> String {
    let mut revealed = state.clone();
    revealed.blind = false;
    for t in &mut revealed.teams {
        t.entries = merged_timeline(t);
    }
    let teams = revealed
        .view(&Viewer::Facilitator)
        .map(|v| v.teams)
        .unwrap_or_default();
    let rows = scoreboard(state);
    let labels = rows
        .first()
        .map(|r| r.times.iter().map(|(l, _)| l.clone()).collect())
        .unwrap_or_default();
    DebriefHtml {
        state,
        rows,
        labels,
        teams,
    }
    .render()
    .unwrap_or_else(|e| format!("<p>cannot render the debrief: {e}</p>"))
}

/// Writes `debrief.md`, `debrief.html` and `debrief.json` into `dir`.
pub fn write(state: &GameState, dir: &Path) -> Result<DebriefFiles, ReportError> {
    let files = DebriefFiles {
        markdown: dir.join("debrief.md"),
        html: dir.join("debrief.html"),
        json: dir.join("debrief.json"),
    };
    write_file(&files.markdown, &to_markdown(state))?;
    write_file(&files.html, &to_html(state))?;
    let json =
        serde_json::to_string_pretty(state).map_err(|e| ReportError::Encode(e.to_string()))?;
    write_file(&files.json, &json)?;
    Ok(files)
}
