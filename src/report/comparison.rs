//! Renderers of a [`Comparison`]: the terminal summary, Markdown for a
//! pull-request comment (regressions on top, the rest folded) and one
//! self-contained HTML page. The JSON is the comparison itself.

use std::fmt::Write as _;

use super::html::{CSS, esc, esc_code};
use super::markdown::{cell, html_text};
use crate::compare::{Change, Comparison, ExperimentComparison, RunInfo, SloComparison, SloSide};
use crate::slo::Unit;

/// The JSON comparison (schema `breakfix.dev/comparison/v1`).
pub fn to_json(c: &Comparison) -> Result<String, super::ReportError> {
    serde_json::to_string_pretty(c).map_err(|e| super::ReportError::Encode(e.to_string()))
}

/// `1 regression, 2 improvements, 15 unchanged`: the non-zero counts.
pub fn headline(c: &Comparison) -> String {
    let n = c.counts();
    let parts: Vec<String> = [
        (n.regressions, "regression", "regressions"),
        (n.errors, "error", "errors"),
        (n.improvements, "improvement", "improvements"),
        (n.erratic, "erratic", "erratic"),
        (n.only_before, "only before", "only before"),
        (n.only_after, "only after", "only after"),
        (n.unchanged, "unchanged", "unchanged"),
    ]
    .into_iter()
    .filter(|(count, _, _)| *count > 0)
    .map(|(count, one, many)| format!("{count} {}", if count == 1 { one } else { many }))
    .collect();
    if parts.is_empty() {
        "no experiments".into()
    } else {
        parts.join(", ")
    }
}

/// How the noise was judged, in one line.
pub fn noise_rule(c: &Comparison) -> String {
    let o = &c.options;
    format!(
        "a change counts beyond max({}, {:.0}%) for durations, {} for availability, {} for counts, \
         and beyond the noise: Mann-Whitney U at p < {} with ≥ {} trials a side; with fewer, ranges apart by more than their spread; \
         with one trial, numbers alone never count; met → missed always counts",
        Unit::Ms.format(o.min_ms),
        o.min_change * 100.0,
        points(o.min_ratio),
        o.min_count,
        o.alpha,
        o.min_trials,
    )
}

fn points(ratio: f64) -> String {
    let p = ratio * 100.0;
    if (p - p.round()).abs() < 1e-9 {
        format!(
            "{p:.0} point{}",
            if (p - 1.0).abs() < 1e-9 { "" } else { "s" }
        )
    } else {
        format!("{p:.2} points")
    }
}

fn side_line(info: &RunInfo) -> String {
    let run = if info.label == info.run_id {
        String::new()
    } else {
        format!("run {}, ", info.run_id)
    };
    format!(
        "{} ({run}{} `{}`, {} experiment{})",
        info.label,
        info.cluster.provider,
        info.cluster.name,
        info.experiments,
        if info.experiments == 1 { "" } else { "s" }
    )
}

fn value(unit: Unit, v: Option<f64>) -> String {
    match v {
        Some(v) => unit.format(v),
        None if unit == Unit::Ms => "never".into(),
        None => "–".into(),
    }
}

/// `3.2s → 9.1s` for a percentile of an SLO, `–` when it is absent.
fn pair(s: Option<&SloComparison>, pick: fn(&SloSide) -> Option<f64>) -> String {
    let Some(s) = s else { return "–".into() };
    let one = |side: &Option<SloSide>| match side {
        Some(side) => value(s.unit, pick(side)),
        None => "–".into(),
    };
    format!("{} → {}", one(&s.before), one(&s.after))
}

fn slo<'a>(e: &'a ExperimentComparison, name: &str) -> Option<&'a SloComparison> {
    e.slos.iter().find(|s| s.slo == name)
}

fn trials(e: &ExperimentComparison) -> String {
    let n = |s: &Option<crate::compare::ExperimentSide>| {
        s.as_ref()
            .map(|s| s.trials.to_string())
            .unwrap_or_else(|| "–".into())
    };
    format!("{} → {}", n(&e.before), n(&e.after))
}

fn mark(c: Change) -> &'static str {
    match c {
        Change::Regression => "✗",
        Change::Error => "!",
        Change::Improvement => "✓",
        Change::Erratic => "~",
        Change::OnlyBefore | Change::OnlyAfter => "±",
        Change::Unchanged => "=",
    }
}

fn word(c: Change) -> String {
    match c {
        Change::Regression | Change::Error => c.as_str().to_uppercase(),
        _ => c.as_str().to_string(),
    }
}

/// The summary printed by `breakfix compare`.
pub fn summary(c: &Comparison) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\nbefore: {}", side_line(&c.before));
    let _ = writeln!(out, "after:  {}\n", side_line(&c.after));
    let width = c
        .experiments
        .iter()
        .map(|e| e.name.len())
        .max()
        .unwrap_or(10)
        .max(10);
    let detect: Vec<String> = c
        .experiments
        .iter()
        .map(|e| pair(slo(e, "detectWithin"), |s| s.p50))
        .collect();
    let recover: Vec<String> = c
        .experiments
        .iter()
        .map(|e| pair(slo(e, "recoverWithin"), |s| s.p50))
        .collect();
    let dw = detect
        .iter()
        .map(|d| d.chars().count())
        .max()
        .unwrap_or(0)
        .max(18);
    let rw = recover
        .iter()
        .map(|d| d.chars().count())
        .max()
        .unwrap_or(0)
        .max(19);
    let _ = writeln!(
        out,
        "{:<width$}  {:<12}  {:<dw$}  {:<rw$}  TRIALS",
        "EXPERIMENT", "CHANGE", "DETECT p50", "RECOVER p50"
    );
    for (i, e) in c.experiments.iter().enumerate() {
        let _ = writeln!(
            out,
            "{:<width$}  {:<12}  {:<dw$}  {:<rw$}  {}",
            e.name,
            word(e.change),
            detect[i],
            recover[i],
            trials(e)
        );
        for r in &e.reasons {
            let _ = writeln!(out, "{:<width$}    {} {r}", "", mark(e.change));
        }
    }
    let _ = writeln!(out, "\n{}", headline(c));
    let _ = writeln!(out, "noise: {}", noise_rule(c));
    out
}

/// A Markdown comparison sized for a pull-request comment.
pub fn to_markdown(c: &Comparison) -> String {
    let mut out = String::new();
    let icon = if c.has_regressions() {
        "❌"
    } else if c.exit_code() != 0 {
        "⚠️"
    } else {
        "✅"
    };
    let _ = writeln!(out, "## {icon} breakfix compare: {}\n", headline(c));
    let _ = writeln!(
        out,
        "**Before** {} → **after** {}\n",
        cell(&side_line(&c.before)),
        cell(&side_line(&c.after))
    );
    let group = |change: Change| c.experiments.iter().filter(move |e| e.change == change);
    let regressions: Vec<&ExperimentComparison> = group(Change::Regression).collect();
    if !regressions.is_empty() {
        let _ = writeln!(out, "### Regressions\n");
        let _ = writeln!(out, "| Experiment | SLO | p50 | p95 | Verdict |");
        let _ = writeln!(out, "|---|---|---|---|---|");
        for e in &regressions {
            for s in e.slos.iter().filter(|s| s.change == Change::Regression) {
                let verdict = |side: &Option<SloSide>| match side {
                    Some(s) if s.met => "met",
                    Some(_) => "missed",
                    None => "–",
                };
                let _ = writeln!(
                    out,
                    "| {} | `{}` | {} | {} | {} → {} |",
                    cell(&e.name),
                    s.slo,
                    pair(Some(s), |x| x.p50),
                    pair(Some(s), |x| x.p95),
                    verdict(&s.before),
                    verdict(&s.after)
                );
            }
            for s in e.signals.iter().filter(|s| s.change == Change::Regression) {
                let _ = writeln!(
                    out,
                    "| {} | signal `{}` | {}/{} → {}/{} trials | | |",
                    cell(&e.name),
                    s.signal,
                    s.before.shown,
                    s.before.trials,
                    s.after.shown,
                    s.after.trials
                );
            }
        }
        let _ = writeln!(out);
        for e in &regressions {
            for r in &e.reasons {
                let _ = writeln!(out, "- **{}** {}", cell(&e.name), cell(r));
            }
        }
        let _ = writeln!(out);
    }
    let errors: Vec<&ExperimentComparison> = group(Change::Error).collect();
    if !errors.is_empty() {
        let _ = writeln!(out, "### Could not compare\n");
        for e in &errors {
            let _ = writeln!(
                out,
                "- **{}** {}",
                cell(&e.name),
                cell(&e.reasons.join("; "))
            );
        }
        let _ = writeln!(out);
    }
    let improvements: Vec<&ExperimentComparison> = group(Change::Improvement).collect();
    if !improvements.is_empty() {
        let _ = writeln!(out, "### Improvements\n");
        for e in &improvements {
            let _ = writeln!(
                out,
                "- **{}** {}",
                cell(&e.name),
                cell(&e.reasons.join("; "))
            );
        }
        let _ = writeln!(out);
    }
    for (change, title) in [
        (Change::Erratic, "Erratic: moved, but within the noise"),
        (Change::OnlyBefore, "Only in the before run"),
        (Change::OnlyAfter, "Only in the after run"),
    ] {
        let list: Vec<&ExperimentComparison> = group(change).collect();
        if list.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "<details><summary>{} ({})</summary>\n",
            html_text(title),
            list.len()
        );
        for e in list {
            let _ = writeln!(
                out,
                "- **{}** {}",
                cell(&e.name),
                cell(&e.reasons.join("; "))
            );
        }
        let _ = writeln!(out, "\n</details>\n");
    }
    let _ = writeln!(
        out,
        "<details><summary>All experiments ({})</summary>\n",
        c.experiments.len()
    );
    let _ = writeln!(
        out,
        "| | Experiment | Detect p50 | Recover p50 | Other SLOs | Trials |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    for e in &c.experiments {
        let others: Vec<String> = e
            .slos
            .iter()
            .filter(|s| s.slo != "detectWithin" && s.slo != "recoverWithin")
            .map(|s| format!("`{}` {}", s.slo, pair(Some(s), |x| x.p50)))
            .collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            md_icon(e.change),
            cell(&e.name),
            pair(slo(e, "detectWithin"), |s| s.p50),
            pair(slo(e, "recoverWithin"), |s| s.p50),
            if others.is_empty() {
                "–".to_string()
            } else {
                cell(&others.join(", "))
            },
            trials(e)
        );
    }
    let _ = writeln!(out, "\n</details>\n");
    let _ = writeln!(out, "<sub>{}.</sub>", html_text(&noise_rule(c)));
    out
}

fn md_icon(c: Change) -> &'static str {
    match c {
        Change::Regression => "❌",
        Change::Error => "⚠️",
        Change::Improvement => "✅",
        Change::Erratic => "〰️",
        Change::OnlyBefore | Change::OnlyAfter => "➖",
        Change::Unchanged => "⚪",
    }
}

const EXTRA_CSS: &str = r#"
.badge.regression{background:var(--fail)}.badge.improvement{background:var(--pass)}.badge.erratic{background:var(--flaky)}
.badge.unchanged,.badge.only{background:#7b8794}.badge.cmp-error{background:var(--error)}
td.reason{color:#3e4c59;font-size:13px}
"#;

fn badge(c: Change) -> String {
    let class = match c {
        Change::Regression => "regression",
        Change::Error => "cmp-error",
        Change::Improvement => "improvement",
        Change::Erratic => "erratic",
        Change::OnlyBefore | Change::OnlyAfter => "only",
        Change::Unchanged => "unchanged",
    };
    format!("<span class=\"badge {class}\">{}</span>", esc(&word(c)))
}

/// The comparison as one self-contained HTML page.
pub fn to_html(c: &Comparison) -> String {
    let mut out = String::with_capacity(32 * 1024);
    let title = format!("breakfix compare {} → {}", c.before.label, c.after.label);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>{CSS}{EXTRA_CSS}</style>\n</head>\n<body>\n",
        esc(&title)
    );
    let class = if c.exit_code() == 0 { "pass" } else { "fail" };
    let _ = write!(
        out,
        "<header class=\"{class}\"><h1>breakfix compare</h1><p class=\"headline\">{}</p>\
         <p class=\"meta\">before {} · after {} · schema <code>{}</code></p></header>\n<main>\n",
        esc(&headline(c)),
        esc_code(&side_line(&c.before)),
        esc_code(&side_line(&c.after)),
        esc(&c.schema)
    );
    out.push_str("<table><thead><tr><th>Change</th><th>Experiment</th><th>Fault</th><th class=\"num\">Detect p50</th><th class=\"num\">Recover p50</th><th class=\"num\">Trials</th><th>Why</th></tr></thead><tbody>\n");
    for (i, e) in c.experiments.iter().enumerate() {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td><a href=\"#cmp-{i}\">{}</a></td><td><code>{}</code></td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"reason\">{}</td></tr>",
            badge(e.change),
            esc(&e.name),
            esc(&e.fault),
            esc(&pair(slo(e, "detectWithin"), |s| s.p50)),
            esc(&pair(slo(e, "recoverWithin"), |s| s.p50)),
            esc(&trials(e)),
            esc_code(&e.reasons.join("; "))
        );
    }
    out.push_str("</tbody></table>\n");
    for (i, e) in c.experiments.iter().enumerate() {
        experiment_html(&mut out, e, i);
    }
    let _ = write!(
        out,
        "</main>\n<footer>{}. Percentiles are nearest rank over the trials, counted from the best; a trial that measured nothing counts as the worst.</footer>\n</body>\n</html>\n",
        esc(&noise_rule(c))
    );
    out
}

fn experiment_html(out: &mut String, e: &ExperimentComparison, index: usize) {
    let _ = writeln!(
        out,
        "<section id=\"cmp-{index}\"><h2>{} {} <span class=\"file\"><code>{}</code> · trials {}</span></h2>",
        badge(e.change),
        esc(&e.name),
        esc(&e.fault),
        esc(&trials(e))
    );
    if !e.reasons.is_empty() {
        out.push_str("<ul class=\"notes\">");
        for r in &e.reasons {
            let _ = write!(out, "<li>{}</li>", esc_code(r));
        }
        out.push_str("</ul>\n");
    }
    if !e.slos.is_empty() {
        out.push_str("<table><thead><tr><th>SLO</th><th>Change</th><th class=\"num\">Target</th><th class=\"num\">p50</th><th class=\"num\">p95</th><th class=\"num\">Min / median / max</th><th>Verdict</th><th>Why</th></tr></thead><tbody>\n");
        for s in &e.slos {
            let spread = |side: &Option<SloSide>| {
                side.as_ref()
                    .and_then(|x| x.spread)
                    .map(|sp| {
                        format!(
                            "{} / {} / {}",
                            s.unit.format(sp.min),
                            s.unit.format(sp.median),
                            s.unit.format(sp.max)
                        )
                    })
                    .unwrap_or_else(|| "–".into())
            };
            let verdict = |side: &Option<SloSide>| match side {
                Some(x) if x.met => "<span class=\"met\">met</span>",
                Some(_) => "<span class=\"missed\">missed</span>",
                None => "–",
            };
            let target = |side: &Option<SloSide>| {
                side.as_ref()
                    .map(|x| s.unit.format(x.target))
                    .unwrap_or_else(|| "–".into())
            };
            let _ = writeln!(
                out,
                "<tr><td><code>{}</code></td><td>{}</td><td class=\"num\">{} → {}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}<br>{}</td><td>{} → {}</td><td class=\"reason\">{}</td></tr>",
                esc(&s.slo),
                badge(s.change),
                esc(&target(&s.before)),
                esc(&target(&s.after)),
                esc(&pair(Some(s), |x| x.p50)),
                esc(&pair(Some(s), |x| x.p95)),
                esc(&spread(&s.before)),
                esc(&spread(&s.after)),
                verdict(&s.before),
                verdict(&s.after),
                esc_code(&s.reason)
            );
        }
        out.push_str("</tbody></table>\n");
    }
    if !e.signals.is_empty() {
        out.push_str("<table style=\"margin-top:10px\"><thead><tr><th>Signal</th><th>Change</th><th class=\"num\">Trials shown (before → after)</th><th>Why</th></tr></thead><tbody>\n");
        for s in &e.signals {
            let _ = writeln!(
                out,
                "<tr><td><code>{}</code></td><td>{}</td><td class=\"num\">{}/{} → {}/{}</td><td class=\"reason\">{}</td></tr>",
                s.signal,
                badge(s.change),
                s.before.shown,
                s.before.trials,
                s.after.shown,
                s.after.trials,
                esc_code(&s.reason)
            );
        }
        out.push_str("</tbody></table>\n");
    }
    out.push_str("</section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::{CompareOptions, compare};
    use crate::report::fixture;
    use crate::runner::{Outcome, RunReport};
    use rstest::rstest;

    /// The fixture run against itself with image-typo's recovery made
    /// slower in every trial, coredns-squeeze dropped, rbac-binding fixed.
    fn pair_of_runs() -> (RunReport, RunReport) {
        let before = fixture::run_report();
        let mut after = fixture::run_report();
        after.run_id = "20260302t100000-9f9f".into();
        let typo = &mut after.experiments[0];
        for (v, slow) in typo.slos[1]
            .samples
            .iter_mut()
            .zip([90_000.0, 95_000.0, 99_000.0])
        {
            *v = Some(slow);
        }
        typo.slos[1].met = false;
        typo.slos[1].actual = Some(99_000.0);
        typo.outcome = Outcome::Failed;
        after.experiments.remove(1);
        (before, after)
    }

    fn comparison() -> Comparison {
        let (b, a) = pair_of_runs();
        compare(&b, &a, &CompareOptions::default())
            .expect("valid options")
            .with_labels("before.json", "after.json")
    }

    #[rstest]
    #[case("before: before.json (run 20260301t100000-1a2b, kind `breakfix`, 3 experiments)")]
    #[case("EXPERIMENT       CHANGE        DETECT p50          RECOVER p50          TRIALS")]
    #[case("image-typo       REGRESSION    3.8s → 3.8s         12.0s → 1m35s        3 → 3")]
    #[case(
        "    ✗ recoverWithin: met → missed (1m00s at p50: 1m39s); median 12.0s → 1m35s (+1m23s, +692%): beyond the noise (the ranges are apart by more than either side's spread, 3 vs 3 trials)"
    )]
    #[case("rbac-binding     ERROR")]
    #[case("coredns-squeeze  only before")]
    #[case("1 regression, 1 error, 1 only before")]
    fn the_terminal_summary_puts_regressions_first(#[case] line: &str) {
        let text = summary(&comparison());
        assert!(text.contains(line), "missing {line:?} in\n{text}");
        let pos = |n: &str| text.find(n).expect("listed");
        assert!(pos("image-typo  ") < pos("rbac-binding  "));
        assert!(pos("rbac-binding  ") < pos("coredns-squeeze  "));
    }

    #[rstest]
    #[case("## ❌ breakfix compare: 1 regression, 1 error, 1 only before")]
    #[case("### Regressions")]
    #[case("| image-typo | `recoverWithin` | 12.0s → 1m35s | 14.0s → 1m39s | met → missed |")]
    #[case("### Could not compare")]
    #[case("<details><summary>Only in the before run (1)</summary>")]
    #[case("<details><summary>All experiments (3)</summary>")]
    fn the_markdown_fits_a_pull_request_comment(#[case] line: &str) {
        let md = to_markdown(&comparison());
        assert!(md.contains(line), "missing {line:?} in\n{md}");
        assert!(md.find("### Regressions") < md.find("<details>"));
    }

    #[test]
    fn no_regression_says_so_in_the_headline() {
        let r = fixture::run_report();
        let c = compare(&r, &r, &CompareOptions::default()).expect("valid");
        let md = to_markdown(&c);
        assert!(
            md.starts_with("## ⚠️ breakfix compare: 1 error, 2 unchanged"),
            "{md}"
        );
        assert!(!md.contains("### Regressions"), "{md}");
    }

    #[test]
    fn the_html_page_is_self_contained_and_escaped() {
        let page = to_html(&comparison());
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(!page.contains("<script"));
        assert!(page.contains("<span class=\"badge regression\">REGRESSION</span>"));
        assert!(page.contains("id=\"cmp-0\""));
        assert!(page.contains("<code>recoverWithin</code>"));
        assert!(!page.contains("src=\"http"));
    }

    #[test]
    fn the_json_is_the_comparison() {
        let c = comparison();
        let json = to_json(&c).expect("encodes");
        let back: Comparison = serde_json::from_str(&json).expect("decodes");
        assert_eq!(back, c);
    }
}
