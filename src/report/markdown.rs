//! A Markdown summary sized for a pull-request comment: one headline, one
//! table row per experiment, and details only where something needs
//! attention (a missed SLO, an error, a flaky verdict). GitHub-flavoured:
//! tables and `<details>` blocks.

use std::fmt::Write as _;
use std::time::Duration;

use super::{harness_latency_p95, outcome_word};
use crate::runner::{ExperimentReport, Outcome, RunReport};
use crate::slo::SloVerdict;
use crate::vocab::duration::format_duration;

/// Renders the run as Markdown.
pub fn to_markdown(report: &RunReport) -> String {
    let mut out = String::new();
    let count = |o: Outcome| report.experiments.iter().filter(|e| e.outcome == o).count();
    let mut headline = vec![format!("{} passed", count(Outcome::Passed))];
    if count(Outcome::Failed) > 0 {
        headline.push(format!("{} failed", count(Outcome::Failed)));
    }
    if count(Outcome::Error) > 0 {
        headline.push(format!("{} errored", count(Outcome::Error)));
    }
    if count(Outcome::Interrupted) > 0 {
        headline.push(format!("{} interrupted", count(Outcome::Interrupted)));
    }
    let flaky = report.experiments.iter().filter(|e| e.flaky).count();
    if flaky > 0 {
        headline.push(format!("{flaky} flaky"));
    }
    let overall = match report.exit_code() {
        0 => "✅",
        130 => "⏹️",
        _ => "❌",
    };
    let _ = writeln!(out, "## {overall} breakfix: {}\n", headline.join(", "));
    let trials: usize = report.experiments.iter().map(|e| e.trials.len()).sum();
    let took =
        Duration::try_from(report.finished.duration_since(report.started)).unwrap_or_default();
    let _ = writeln!(
        out,
        "Run `{}` on {} `{}` · {} experiment{} · {trials} trial{} · {}\n",
        report.run_id,
        report.cluster.provider,
        cell(&report.cluster.name),
        report.experiments.len(),
        plural(report.experiments.len()),
        plural(trials),
        format_duration(took)
    );
    if let Some(schedule) = super::schedule::summary(report) {
        let _ = writeln!(out, "Schedule: {schedule}.\n");
    }
    let _ = writeln!(
        out,
        "| | Experiment | Fault | Detect | Recover | Harness latency (p95) | Trials |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|");
    for e in &report.experiments {
        let _ = writeln!(
            out,
            "| {} | {}{} | `{}` | {} | {} | {} | {} |",
            icon(e.outcome),
            cell(&e.name),
            if e.flaky { " ~flaky" } else { "" },
            cell(&e.fault),
            timing_cell(e, "detectWithin"),
            timing_cell(e, "recoverWithin"),
            harness_latency_p95(e)
                .map(format_duration)
                .unwrap_or_else(|| "–".into()),
            e.trials.len()
        );
    }
    for e in &report.experiments {
        let needs_attention = e.outcome != Outcome::Passed || e.flaky;
        let _ = writeln!(out);
        if needs_attention {
            let _ = writeln!(
                out,
                "### {} {} — {}{}\n",
                icon(e.outcome),
                cell(&e.name),
                outcome_word(e.outcome),
                if e.flaky { " (flaky)" } else { "" }
            );
            experiment_body(&mut out, e);
        } else {
            let _ = writeln!(
                out,
                "<details><summary>{} {} — {}</summary>\n",
                icon(e.outcome),
                html_text(&e.name),
                outcome_word(e.outcome)
            );
            experiment_body(&mut out, e);
            let _ = writeln!(out, "</details>");
        }
    }
    let _ = writeln!(
        out,
        "\n<sub>breakfix report schema `{}`; verdicts on the percentile shown, nearest rank over trials.</sub>",
        report.schema
    );
    out
}

fn experiment_body(out: &mut String, e: &ExperimentReport) {
    if let Some(story) = &e.story {
        let _ = writeln!(out, "> {}\n", cell(story));
    }
    let _ = writeln!(
        out,
        "| SLO | Target | Verdict on | Actual | Min / median / max | Trials met | |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|");
    for s in &e.slos {
        let (met, of) = s.met_count();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {met}/{of} | {} |",
            cell(&s.slo),
            cell(&s.target_text()),
            s.percentile,
            cell(&s.actual_text()),
            s.spread_text()
                .map(|t| cell(&t))
                .unwrap_or_else(|| "–".into()),
            verdict_cell(s)
        );
    }
    if let Some((felt, line)) = crate::slo::impact_line(&e.slos) {
        let _ = writeln!(
            out,
            "\n{} **{}**",
            if felt { "✅" } else { "❌" },
            cell(&line)
        );
    }
    let notes: Vec<&String> = e.slos.iter().flat_map(|s| s.notes.iter()).collect();
    let errors: Vec<String> = e
        .trials
        .iter()
        .filter_map(|t| {
            t.error
                .as_ref()
                .map(|err| format!("trial {} {:?} failed: {}", t.trial, err.phase, err.message))
        })
        .collect();
    if !notes.is_empty() || !errors.is_empty() {
        let _ = writeln!(out);
        for line in errors.iter().chain(notes.iter().copied()) {
            let _ = writeln!(out, "- {}", cell(line));
        }
    }
    let diagnosis = e.trials.iter().rev().find_map(|t| t.diagnosis.as_ref());
    if let Some(d) = diagnosis {
        let _ = writeln!(out, "\n**Diagnosis:** {}\n", cell(&d.summary));
        if !d.evidence.is_empty() || !d.next_steps.is_empty() {
            let _ = writeln!(out, "```text");
            for line in &d.evidence {
                let _ = writeln!(out, "{}", line.replace("```", "'''"));
            }
            for line in &d.next_steps {
                let _ = writeln!(out, "$ {}", line.replace("```", "'''"));
            }
            let _ = writeln!(out, "```");
        }
    }
}

fn timing_cell(e: &ExperimentReport, slo: &str) -> String {
    match e.slos.iter().find(|s| s.slo == slo) {
        Some(s) => format!(
            "{} {} / {}",
            if s.met { "" } else { "❌" },
            s.actual_text(),
            s.target_text()
        )
        .trim()
        .to_string(),
        None => "–".into(),
    }
}

fn verdict_cell(s: &SloVerdict) -> String {
    match (s.met, s.flaky) {
        (true, false) => "✅".into(),
        (true, true) => "✅ ~flaky".into(),
        (false, _) => match s.missed_by() {
            Some(by) => format!("❌ missed by {}", s.unit.format(by)),
            None => "❌".into(),
        },
    }
}

fn icon(o: Outcome) -> &'static str {
    match o {
        Outcome::Passed => "✅",
        Outcome::Failed => "❌",
        Outcome::Error => "⚠️",
        Outcome::Interrupted => "⏹️",
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Text safe inside a table cell or a line: no pipes, no raw HTML, one
/// line. Code spans (between backticks) are kept verbatim, since Markdown
/// shows entities there literally.
pub(super) fn cell(text: &str) -> String {
    let one_line = text.replace(['\n', '\r'], " ");
    let balanced = one_line.matches('`').count().is_multiple_of(2);
    one_line
        .split('`')
        .enumerate()
        .map(|(i, part)| {
            if balanced && i % 2 == 1 {
                part.to_string()
            } else {
                html_text(part)
            }
        })
        .collect::<Vec<_>>()
        .join("`")
        .replace('|', "\\|")
}

pub(super) fn html_text(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;

    #[test]
    fn passing_experiments_fold_into_details_and_failures_do_not() {
        let mut report = fixture::run_report();
        report.experiments[0].flaky = false;
        for s in &mut report.experiments[0].slos {
            s.flaky = false;
        }
        let md = to_markdown(&report);
        assert!(
            md.contains("<details><summary>✅ image-typo — PASS</summary>"),
            "{md}"
        );
        assert!(md.contains("### ❌ coredns-squeeze — FAIL"), "{md}");
    }

    #[test]
    fn table_cells_cannot_break_the_table() {
        assert_eq!(cell("a|b\nc <d> `x >= 1`"), "a\\|b c &lt;d&gt; `x >= 1`");
    }
}
