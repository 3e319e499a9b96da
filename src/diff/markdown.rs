//! A diff as Markdown fit for a pull-request comment: one heading with the
//! verdict, regressions on top (one line each), harness trouble apart from
//! findings, and everything else folded in `<details>`.

use std::fmt::Write;

use super::DiffReport;
use crate::compare::Change;

/// A hidden marker the comment starts with, so a CI step can find and
/// update its earlier comment instead of adding one per push.
pub const COMMENT_MARKER: &str = "<!-- breakfix-diff -->";

/// Renders `report`.
pub fn to_markdown(report: &DiffReport) -> String {
    let mut out = String::new();
    let regressions = report.regressions();
    let errors = report.harness_errors();
    let verdict = match (regressions.len(), errors.len()) {
        (0, 0) => "✅ no regression".to_string(),
        (0, e) => format!("⚠️ no regression found, {e} harness error{}", plural(e)),
        (r, _) => format!("❌ {r} regression{}", plural(r)),
    };
    let _ = writeln!(out, "{COMMENT_MARKER}");
    let _ = writeln!(
        out,
        "### breakfix diff: {verdict}\n\n`{}` → `{}`{} · {} experiment{} compared · {}\n",
        report.base.label,
        report.head.label,
        if report.head.dirty {
            " (uncommitted changes included)"
        } else {
            ""
        },
        report.comparison.experiments.len(),
        plural(report.comparison.experiments.len()),
        duration(report.finished.as_millisecond() - report.started.as_millisecond()),
    );
    if !regressions.is_empty() {
        let _ = writeln!(out, "**Regressions**\n");
        for r in &regressions {
            let _ = writeln!(out, "- {}", escape(r));
        }
        out.push('\n');
    }
    if !errors.is_empty() {
        let _ = writeln!(
            out,
            "**Harness errors** (not findings about the change; nothing was judged for these)\n"
        );
        for e in &errors {
            let _ = writeln!(out, "- {}", escape(e));
        }
        out.push('\n');
    }
    if !report.retries.is_empty() {
        let _ = writeln!(out, "Retried after harness errors:\n");
        for r in &report.retries {
            let _ = writeln!(
                out,
                "- {} on {}: {} attempt{}, {}",
                r.experiment,
                r.side,
                r.attempts,
                plural(r.attempts as usize),
                if r.still_error {
                    "still an error"
                } else {
                    "then ran"
                }
            );
        }
        out.push('\n');
    }
    if let Some(m) = &report.migration {
        let _ = writeln!(
            out,
            "<details><summary>Migration: {} baseline{}</summary>\n\n| baseline | rollout | worst canary | disturbed | pruned |\n|---|---|---|---|---|",
            m.baselines.len(),
            plural(m.baselines.len())
        );
        for b in &m.baselines {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                b.baseline,
                match (b.rollout_seconds, &b.not_ready) {
                    (Some(s), _) => format!("{s:.1}s"),
                    (None, Some(what)) => format!("never ready: {}", escape(what)),
                    (None, None) => "-".into(),
                },
                b.worst_availability
                    .map_or("-".into(), |r| format!("{:.1}%", r * 100.0)),
                if b.disturbed.is_empty() {
                    "-".into()
                } else {
                    escape(&b.disturbed.join(", "))
                },
                if b.pruned.is_empty() {
                    "-".into()
                } else {
                    escape(&b.pruned.join(", "))
                },
            );
        }
        out.push_str("\n</details>\n\n");
    }
    let changed: Vec<_> = report
        .comparison
        .experiments
        .iter()
        .filter(|e| e.change != Change::Unchanged)
        .collect();
    if !changed.is_empty() {
        let _ = writeln!(
            out,
            "<details><summary>Experiments that moved: {}</summary>\n\n| experiment | change | why |\n|---|---|---|",
            changed.len()
        );
        for e in changed {
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                e.name,
                e.change,
                escape(&e.reasons.join("; "))
            );
        }
        out.push_str("\n</details>\n\n");
    }
    let unchanged: Vec<&str> = report
        .comparison
        .experiments
        .iter()
        .filter(|e| e.change == Change::Unchanged)
        .map(|e| e.name.as_str())
        .collect();
    if !unchanged.is_empty() {
        let _ = writeln!(
            out,
            "<details><summary>Unchanged: {}</summary>\n\n{}\n\n</details>\n",
            unchanged.len(),
            unchanged.join(", ")
        );
    }
    let skipped: Vec<_> = report.selection.iter().filter(|s| !s.run).collect();
    if !skipped.is_empty() {
        let _ = writeln!(
            out,
            "<details><summary>Skipped by --changed-only: {}</summary>\n",
            skipped.len()
        );
        for s in skipped {
            let _ = writeln!(out, "- {}: {}", s.experiment, escape(&s.reason));
        }
        out.push_str("\n</details>\n");
    }
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn duration(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    if s >= 60 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// Keeps a value from breaking the table or starting markup.
fn escape(text: &str) -> String {
    text.replace('|', "\\|")
        .replace('<', "&lt;")
        .replace('\n', " ")
}
