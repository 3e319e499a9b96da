//! Renderers for `breakfix upgrade`: the terminal summary, a Markdown page
//! fit for a pull-request comment, and one self-contained HTML file. Each
//! shows the upgrade's steps with their wall time, availability and blast
//! radius, the per-phase SLO verdicts, the versions read back from the
//! cluster, any failure with its last log lines, and the before/after
//! verdict lines the caller computed (comparing runs is not this module's).

use std::fmt::Write as _;
use std::time::Duration;

use crate::runner::transition::StepReport;
use crate::runner::upgrade::UpgradeOutcome;
use crate::runner::upgrade::suite::UpgradeRunReport;
use crate::timeline::EntryKind;
use crate::vocab::duration::format_duration;

/// The before/after verdict, already judged by the caller: a headline and
/// one line per experiment that changed (regressions first).
#[derive(Debug, Clone, Default)]
pub struct Verdict {
    /// One line: passed or failed, and why.
    pub headline: String,
    /// `(marker, text)`: `regression`, `improvement`, `erratic`, …
    pub lines: Vec<(String, String)>,
}

fn took(step: &StepReport) -> Duration {
    Duration::try_from(step.finished.duration_since(step.started)).unwrap_or_default()
}

fn availability(step: &StepReport) -> String {
    match step.worst_availability() {
        Some(r) => format!("{:.1}%", r * 100.0),
        None if step.availability.is_empty() => "-".into(),
        None => "no checks".into(),
    }
}

fn blast(step: &StepReport) -> String {
    match step.blast_radius.as_ref().and_then(|m| m.affected_count()) {
        Some(n) => n.to_string(),
        None => "-".into(),
    }
}

fn outcome_line(report: &UpgradeRunReport) -> String {
    match &report.upgrade {
        Some(u) => match u.outcome {
            UpgradeOutcome::Upgraded => format!("upgraded {} → {}", u.from, u.to),
            UpgradeOutcome::Failed => format!("upgrade {} → {} FAILED", u.from, u.to),
            UpgradeOutcome::Interrupted => format!("upgrade {} → {} interrupted", u.from, u.to),
        },
        None => "the upgrade did not start".into(),
    }
}

/// The terminal summary.
pub fn summary(report: &UpgradeRunReport, verdict: Option<&Verdict>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", outcome_line(report));
    if let Some(e) = &report.error {
        let _ = writeln!(out, "  stopped: {e}");
    }
    if let Some(u) = &report.upgrade {
        let _ = writeln!(
            out,
            "{:<34} {:>9} {:>13} {:>12}  RESULT",
            "STEP", "TOOK", "AVAILABILITY", "BLAST RADIUS"
        );
        for s in &u.transition.steps {
            let _ = writeln!(
                out,
                "{:<34} {:>9} {:>13} {:>12}  {}",
                s.name,
                format_duration(took(s)),
                availability(s),
                blast(s),
                s.error
                    .as_deref()
                    .map_or("ok".to_string(), |e| format!("FAILED: {}", first_line(e)))
            );
        }
        for d in &u.drains {
            for b in &d.blocked {
                let _ = writeln!(
                    out,
                    "  drain {}: PodDisruptionBudget {} held {} for {}",
                    d.node,
                    b.pdb,
                    b.pod,
                    format_duration(b.blocked_for())
                );
            }
        }
        for v in &u.slos {
            let _ = writeln!(
                out,
                "  {} {} {}: {}",
                if v.met { "✓" } else { "✗" },
                v.step,
                v.slo,
                v.measured
            );
        }
        if let Some(f) = &u.fault {
            let _ = writeln!(
                out,
                "  fault {} during {}: {}{}",
                f.fault,
                f.during,
                f.summary.as_deref().unwrap_or("not injected"),
                f.error
                    .as_deref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            );
            if let Some(injected) = f.injected {
                let _ = match f.reverted {
                    Some(reverted) => writeln!(
                        out,
                        "    in for {}, reverted",
                        format_duration(
                            Duration::try_from(reverted.duration_since(injected))
                                .unwrap_or_default()
                        )
                    ),
                    None => writeln!(out, "    NOT reverted: run `breakfix cleanup`"),
                };
            }
        }
        if let Some(f) = &u.failure {
            let what = if u.outcome == UpgradeOutcome::Interrupted {
                "interrupted"
            } else {
                "failed"
            };
            let _ = writeln!(out, "  {what} at {}: {f}", f.step);
            if let Some(tail) = &f.log_tail {
                for line in tail.lines() {
                    let _ = writeln!(out, "    | {line}");
                }
            }
        }
        let _ = writeln!(out, "  cluster: {}", u.state);
        let _ = writeln!(out, "  host cgroups: {}", u.host_cgroups);
    }
    for (label, run) in [("before", &report.before), ("after", &report.after)] {
        if let Some(r) = run {
            let passed = r
                .experiments
                .iter()
                .filter(|e| e.outcome == crate::runner::Outcome::Passed)
                .count();
            let _ = writeln!(
                out,
                "suite {label}: {passed} of {} experiment(s) passed (run {})",
                r.experiments.len(),
                r.run_id
            );
        }
    }
    if let Some(v) = verdict {
        let _ = writeln!(out, "{}", v.headline);
        for (marker, text) in &v.lines {
            let _ = writeln!(out, "  {marker:<12} {text}");
        }
    }
    out
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// A Markdown page: headline, steps table, verdicts, details folded.
pub fn to_markdown(report: &UpgradeRunReport, verdict: Option<&Verdict>) -> String {
    let mut out = String::new();
    let ok = report.upgrade.as_ref().is_some_and(|u| u.passed())
        && verdict.is_none_or(|v| v.lines.iter().all(|(m, _)| m != "regression"));
    let _ = writeln!(
        out,
        "## {} breakfix upgrade: {}\n",
        if ok { "✅" } else { "❌" },
        outcome_line(report)
    );
    if let Some(e) = &report.error {
        let _ = writeln!(out, "Stopped: {}\n", cell(e));
    }
    if let Some(u) = &report.upgrade {
        let _ = writeln!(
            out,
            "Cluster `{}` ({} cgroups): {}\n",
            u.cluster,
            u.host_cgroups,
            cell(&u.state)
        );
        let _ = writeln!(
            out,
            "| Step | Took | Availability (worst canary) | Blast radius | Result |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|");
        for s in &u.transition.steps {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                cell(&s.name),
                format_duration(took(s)),
                availability(s),
                blast(s),
                s.error
                    .as_deref()
                    .map_or("ok".into(), |e| format!("❌ {}", cell(first_line(e))))
            );
        }
        if !u.slos.is_empty() {
            let _ = writeln!(out, "\n**Per-phase SLOs**\n");
            for v in &u.slos {
                let _ = writeln!(
                    out,
                    "- {} `{}` {}: {}",
                    if v.met { "✅" } else { "❌" },
                    cell(&v.step),
                    cell(&v.slo),
                    cell(&v.measured)
                );
            }
        }
        let blocks: Vec<String> = u
            .drains
            .iter()
            .flat_map(|d| {
                d.blocked.iter().map(move |b| {
                    format!(
                        "- drain `{}`: PodDisruptionBudget `{}` held `{}` for {} ({} refusal(s))",
                        d.node,
                        b.pdb,
                        b.pod,
                        format_duration(b.blocked_for()),
                        b.refusals
                    )
                })
            })
            .collect();
        if !blocks.is_empty() {
            let _ = writeln!(
                out,
                "\n**Drains held by PodDisruptionBudgets**\n\n{}",
                blocks.join("\n")
            );
        }
        if let Some(f) = &u.failure {
            let _ = writeln!(
                out,
                "\n**Failed at `{}`**: {}\n",
                f.step,
                cell(&f.to_string())
            );
            if let Some(tail) = &f.log_tail {
                let _ = writeln!(out, "```\n{tail}\n```");
            }
        }
    }
    if let Some(v) = verdict {
        let _ = writeln!(out, "\n**Before → after**: {}\n", cell(&v.headline));
        for (marker, text) in &v.lines {
            let _ = writeln!(out, "- **{marker}** {}", cell(text));
        }
    }
    if let Some(u) = &report.upgrade {
        let _ = writeln!(out, "\n<details><summary>Timeline</summary>\n");
        for e in &u.transition.timeline.entries {
            let _ = writeln!(
                out,
                "- `{}` {}",
                e.at.strftime("%H:%M:%S%.3f"),
                cell(&entry_text(&e.kind))
            );
        }
        let _ = writeln!(out, "\n</details>");
    }
    out
}

fn entry_text(kind: &EntryKind) -> String {
    match kind {
        EntryKind::StepStarted { step } => format!("▶ {step}"),
        EntryKind::StepFinished { step, error: None } => format!("■ {step} done"),
        EntryKind::StepFinished {
            step,
            error: Some(e),
        } => format!("■ {step} failed: {e}"),
        EntryKind::Note { message } => message.clone(),
        other => format!("{other:?}"),
    }
}

fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One self-contained HTML file: the steps as bars on a time axis, the
/// verdicts, the timeline.
pub fn to_html(report: &UpgradeRunReport, verdict: Option<&Verdict>) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>breakfix upgrade</title><style>\
body{{font:14px system-ui,sans-serif;margin:2em;max-width:1100px}}table{{border-collapse:collapse}}\
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}.bar{{background:#4a7;height:14px}}\
.bad{{background:#c44}}.ok{{color:#282}}.no{{color:#b22}}pre{{background:#f4f4f4;padding:8px}}\
</style></head><body><h1>{}</h1>",
        esc(&outcome_line(report))
    );
    if let Some(u) = &report.upgrade {
        let _ = write!(
            out,
            "<p>Cluster <code>{}</code>, host cgroups {}: {}</p>",
            esc(&u.cluster),
            esc(&u.host_cgroups),
            esc(&u.state)
        );
        let start = u.transition.started;
        let total = Duration::try_from(u.transition.finished.duration_since(start))
            .unwrap_or_default()
            .as_secs_f64()
            .max(1.0);
        let _ = write!(
            out,
            "<table><tr><th>Step</th><th>Took</th><th>Availability</th><th>Blast radius</th><th style=\"width:400px\">When</th></tr>"
        );
        for s in &u.transition.steps {
            let offset = Duration::try_from(s.started.duration_since(start))
                .unwrap_or_default()
                .as_secs_f64();
            let width = took(s).as_secs_f64();
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><div class=\"bar{}\" style=\"margin-left:{:.1}%;width:{:.1}%\" title=\"{}\"></div></td></tr>",
                esc(&s.name),
                format_duration(took(s)),
                availability(s),
                blast(s),
                if s.error.is_some() { " bad" } else { "" },
                offset / total * 100.0,
                (width / total * 100.0).max(0.5),
                esc(s.error.as_deref().unwrap_or("ok"))
            );
        }
        let _ = write!(out, "</table>");
        if !u.slos.is_empty() {
            let _ = write!(out, "<h2>Per-phase SLOs</h2><ul>");
            for v in &u.slos {
                let _ = write!(
                    out,
                    "<li class=\"{}\">{} {}: {}</li>",
                    if v.met { "ok" } else { "no" },
                    esc(&v.step),
                    esc(&v.slo),
                    esc(&v.measured)
                );
            }
            let _ = write!(out, "</ul>");
        }
        if let Some(f) = &u.failure {
            let _ = write!(
                out,
                "<h2>Failed at {}</h2><p>{}</p>",
                esc(&f.step),
                esc(&f.to_string())
            );
            if let Some(t) = &f.log_tail {
                let _ = write!(out, "<pre>{}</pre>", esc(t));
            }
        }
    }
    if let Some(v) = verdict {
        let _ = write!(
            out,
            "<h2>Before → after</h2><p>{}</p><ul>",
            esc(&v.headline)
        );
        for (m, t) in &v.lines {
            let _ = write!(out, "<li><b>{}</b> {}</li>", esc(m), esc(t));
        }
        let _ = write!(out, "</ul>");
    }
    if let Some(u) = &report.upgrade {
        let _ = write!(out, "<h2>Timeline</h2><ul>");
        for e in &u.transition.timeline.entries {
            let _ = write!(
                out,
                "<li><code>{}</code> {}</li>",
                e.at.strftime("%H:%M:%S%.3f"),
                esc(&entry_text(&e.kind))
            );
        }
        let _ = write!(out, "</ul>");
    }
    let _ = writeln!(out, "</body></html>");
    out
}
