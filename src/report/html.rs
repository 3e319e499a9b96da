//! A self-contained HTML report: one file, inline CSS and inline SVG, no
//! scripts, fonts or images to fetch, so it opens offline and can be
//! attached to a CI run as is.
//!
//! Each experiment gets its verdicts (with the per-trial met/missed strip)
//! and a timeline chart: one row per trial, all aligned on the moment of
//! injection, phases drawn as bands, signals as markers, the revert and
//! recovery as marks, and below each row what the extra SLOs saw
//! (condition false, workloads outside the target unsteady) and each
//! pod's states as its signals showed them. Native SVG
//! `<title>` tooltips give the detail on hover.

use std::fmt::Write as _;
use std::time::Duration;

use jiff::Timestamp;

use super::{harness_latency_p95, outcome_word};
use crate::detect::Observation;
use crate::runner::{ExperimentReport, Outcome, RunReport, TrialReport};
use crate::slo::SloVerdict;
use crate::timeline::{EntryKind, Phase};
use crate::vocab::duration::format_duration;

/// Renders the run as one HTML page.
pub fn to_html(report: &RunReport) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let passed = count(report, Outcome::Passed);
    let title = format!("breakfix run {}", report.run_id);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
        esc(&title)
    );
    let verdict_class = match report.exit_code() {
        0 => "pass",
        130 => "interrupted",
        _ => "fail",
    };
    let took =
        Duration::try_from(report.finished.duration_since(report.started)).unwrap_or_default();
    let flaky = report.experiments.iter().filter(|e| e.flaky).count();
    let _ = write!(
        out,
        "<header class=\"{verdict_class}\"><h1>breakfix</h1><p class=\"headline\">{passed} of {} passed{}{}{}</p>\
         <p class=\"meta\">run <code>{}</code> · {} <code>{}</code> · started {} · took {} · schema <code>{}</code></p></header>\n<main>\n",
        report.experiments.len(),
        nonzero(count(report, Outcome::Failed), "failed"),
        nonzero(count(report, Outcome::Error), "errored"),
        nonzero(flaky, "flaky"),
        esc(&report.run_id),
        esc(&report.cluster.provider),
        esc(&report.cluster.name),
        esc(&short_time(report.started)),
        format_duration(took),
        esc(&report.schema),
    );
    overview(&mut out, report);
    if let Some(chart) = super::schedule::svg(report) {
        out.push_str("<h2>Schedule</h2>\n");
        out.push_str(&chart);
    }
    for (i, e) in report.experiments.iter().enumerate() {
        experiment(&mut out, e, i);
    }
    let _ = write!(
        out,
        "</main>\n<footer>Verdicts use the nearest-rank percentile over trials, counted from the best trial. \
         Times in charts are relative to the fault's injection in each trial.</footer>\n</body>\n</html>\n"
    );
    out
}

pub(super) const CSS: &str = r#"
:root{--fg:#1f2933;--muted:#616e7c;--line:#d9e2ec;--bg:#f8fafc;--pass:#1f9d55;--fail:#d64545;--error:#c77c02;--flaky:#8e59d9}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--fg);background:var(--bg)}
header{padding:20px 32px;color:#fff;background:#334e68}
header.pass{background:#1f6f43}header.fail{background:#9b2c2c}header.interrupted{background:#7a5a00}
header h1{margin:0;font-size:15px;letter-spacing:.08em;text-transform:uppercase;opacity:.85}
.headline{margin:4px 0;font-size:26px;font-weight:600}
.meta{margin:0;opacity:.85}.meta code{color:#fff}
main{max-width:1180px;margin:0 auto;padding:16px 32px 40px}
footer{max-width:1180px;margin:0 auto;padding:0 32px 32px;color:var(--muted);font-size:12px}
h2{margin:36px 0 6px;font-size:20px;display:flex;align-items:center;gap:10px}
h2 .file{font-size:12px;font-weight:400;color:var(--muted)}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid var(--line);border-radius:6px;overflow:hidden}
th,td{text-align:left;padding:7px 10px;border-bottom:1px solid var(--line);vertical-align:top}
th.num{text-align:right}th{background:#f0f4f8;font-weight:600;font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.03em}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr:last-child td{border-bottom:0}
a{color:#2166b0;text-decoration:none}a:hover{text-decoration:underline}
code{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#eef2f6;padding:1px 4px;border-radius:3px}
header code{background:rgba(255,255,255,.15)}
.badge{display:inline-block;min-width:58px;text-align:center;padding:2px 8px;border-radius:10px;color:#fff;font-size:11px;font-weight:700;letter-spacing:.04em}
.badge.pass{background:var(--pass)}.badge.fail{background:var(--fail)}.badge.error{background:var(--error)}.badge.interrupted{background:#7b8794}
.badge.flaky{background:var(--flaky)}
.story{margin:4px 0 12px;color:var(--muted);font-style:italic}
.missed{color:var(--fail);font-weight:600}.met{color:var(--pass);font-weight:600}
.dots{white-space:nowrap}.dot{display:inline-block;width:9px;height:9px;border-radius:50%;margin-right:3px}
.dot.ok{background:var(--pass)}.dot.no{background:var(--fail)}
ul.notes{margin:8px 0;padding-left:20px;color:#3e4c59}ul.notes li{margin:2px 0}
.diagnosis{background:#fff;border:1px solid var(--line);border-left:4px solid var(--error);border-radius:4px;padding:8px 12px;margin:10px 0}
.diagnosis pre{margin:6px 0 0;white-space:pre-wrap;font:12px ui-monospace,Menlo,Consolas,monospace;color:#3e4c59}
.chart{background:#fff;border:1px solid var(--line);border-radius:6px;margin-top:12px;padding:6px 6px 2px}
.chart>svg{display:block;width:100%;height:auto}
.legend{display:flex;flex-wrap:wrap;gap:4px 14px;padding:4px 8px 8px;color:var(--muted);font-size:12px}
.legend span{display:inline-flex;align-items:center;gap:5px;white-space:nowrap}.legend svg{flex:none}
.sw{display:inline-block;width:14px;height:10px;border-radius:2px}
.error-box{background:#fff8e6;border:1px solid #f0d9a8;border-radius:4px;padding:8px 12px;margin:10px 0}
"#;

const PHASES: [(Phase, &str, &str); 8] = [
    (Phase::Baseline, "#cbd2d9", "applying baseline"),
    (Phase::SteadyState, "#e4e7eb", "waiting for steady state"),
    (Phase::Inject, "#f29b9b", "injecting"),
    (Phase::Detect, "#fbd38d", "watching for signals"),
    (Phase::Hold, "#f6ad55", "holding the fault in"),
    (Phase::Revert, "#a3bffa", "reverting"),
    (Phase::Recover, "#9ae6b4", "waiting for recovery"),
    (Phase::Cleanup, "#e4e7eb", "cleaning up"),
];

fn phase_style(p: Phase) -> (&'static str, &'static str) {
    PHASES
        .iter()
        .find(|(q, _, _)| *q == p)
        .map(|(_, c, l)| (*c, *l))
        .unwrap_or(("#e4e7eb", "phase"))
}

fn short_phase(p: Phase) -> &'static str {
    match p {
        Phase::Baseline => "baseline",
        Phase::SteadyState => "steady state",
        Phase::Inject => "inject",
        Phase::Detect => "detect",
        Phase::Hold => "hold",
        Phase::Revert => "revert",
        Phase::Recover => "recover",
        Phase::Cleanup => "cleanup",
    }
}

fn count(report: &RunReport, o: Outcome) -> usize {
    report.experiments.iter().filter(|e| e.outcome == o).count()
}

fn nonzero(n: usize, what: &str) -> String {
    if n == 0 {
        String::new()
    } else {
        format!(" · {n} {what}")
    }
}

fn badge_class(o: Outcome) -> &'static str {
    match o {
        Outcome::Passed => "pass",
        Outcome::Failed => "fail",
        Outcome::Error => "error",
        Outcome::Interrupted => "interrupted",
    }
}

fn badges(e: &ExperimentReport) -> String {
    let mut b = format!(
        "<span class=\"badge {}\">{}</span>",
        badge_class(e.outcome),
        outcome_word(e.outcome)
    );
    if e.flaky {
        b.push_str(" <span class=\"badge flaky\" title=\"some SLO was met in some trials and missed in others\">FLAKY</span>");
    }
    b
}

fn overview(out: &mut String, report: &RunReport) {
    out.push_str("<table class=\"overview\"><thead><tr><th>Result</th><th>Experiment</th><th>Fault</th><th class=\"num\">Detect</th><th class=\"num\">Recover</th><th>Other SLOs</th><th class=\"num\">Harness latency p95</th><th class=\"num\">Trials</th></tr></thead><tbody>\n");
    for (i, e) in report.experiments.iter().enumerate() {
        let timing = |slo: &str| {
            e.slos
                .iter()
                .find(|s| s.slo == slo)
                .map(|s| {
                    format!(
                        "<span class=\"{}\">{}</span> / {}",
                        if s.met { "met" } else { "missed" },
                        esc(&s.actual_text()),
                        esc(&s.target_text())
                    )
                })
                .unwrap_or_else(|| "–".into())
        };
        let others: Vec<&SloVerdict> = e
            .slos
            .iter()
            .filter(|s| s.slo != "detectWithin" && s.slo != "recoverWithin")
            .collect();
        let others_text = if others.is_empty() {
            "–".to_string()
        } else {
            let met = others.iter().filter(|s| s.met).count();
            format!(
                "<span class=\"{}\">{met}/{} met</span>",
                if met == others.len() { "met" } else { "missed" },
                others.len()
            )
        };
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td><a href=\"#exp-{i}\">{}</a></td><td><code>{}</code></td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{others_text}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            badges(e),
            esc(&e.name),
            esc(&e.fault),
            timing("detectWithin"),
            timing("recoverWithin"),
            harness_latency_p95(e)
                .map(format_duration)
                .unwrap_or_else(|| "–".into()),
            e.trials.len()
        );
    }
    out.push_str("</tbody></table>\n");
}

fn experiment(out: &mut String, e: &ExperimentReport, index: usize) {
    let _ = writeln!(
        out,
        "<section id=\"exp-{index}\"><h2>{} {} <span class=\"file\">{} · <code>{}</code></span></h2>",
        badges(e),
        esc(&e.name),
        esc(&e.file),
        esc(&e.fault)
    );
    if let Some(story) = &e.story {
        let _ = writeln!(out, "<p class=\"story\">{}</p>", esc(story));
    }
    out.push_str("<table><thead><tr><th>SLO</th><th class=\"num\">Target</th><th>Verdict on</th><th class=\"num\">Actual</th><th class=\"num\">Min / median / max</th><th>Per trial</th><th>Verdict</th></tr></thead><tbody>\n");
    for s in &e.slos {
        let dots: String = s
            .trials_met
            .iter()
            .zip(&s.samples)
            .enumerate()
            .map(|(i, (met, sample))| {
                format!(
                    "<span class=\"dot {}\" title=\"trial {}: {}\"></span>",
                    if *met { "ok" } else { "no" },
                    i + 1,
                    esc(&sample
                        .map(|v| s.unit.format(v))
                        .unwrap_or_else(|| "not measured".into()))
                )
            })
            .collect();
        let verdict = match (s.met, s.missed_by()) {
            (true, _) if s.flaky => {
                "<span class=\"met\">met</span> <span class=\"badge flaky\">FLAKY</span>"
                    .to_string()
            }
            (true, _) => "<span class=\"met\">met</span>".to_string(),
            (false, Some(by)) => format!(
                "<span class=\"missed\">missed by {}</span>",
                esc(&s.unit.format(by))
            ),
            (false, None) => "<span class=\"missed\">missed</span>".to_string(),
        };
        let _ = writeln!(
            out,
            "<tr><td><code>{}</code></td><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"dots\">{dots}</td><td>{verdict}</td></tr>",
            esc(&s.slo),
            esc(&s.target_text()),
            s.percentile,
            esc(&s.actual_text()),
            esc(&s.spread_text().unwrap_or_else(|| "–".into())),
        );
    }
    out.push_str("</tbody></table>\n");
    if let Some((felt, line)) = crate::slo::impact_line(&e.slos) {
        let _ = writeln!(
            out,
            "<p class=\"impact\"><span class=\"{}\">{}</span></p>",
            if felt { "met" } else { "missed" },
            esc(&line)
        );
    }
    let notes: Vec<&String> = e.slos.iter().flat_map(|s| s.notes.iter()).collect();
    if !notes.is_empty() {
        out.push_str("<ul class=\"notes\">");
        for n in notes {
            let _ = write!(out, "<li>{}</li>", esc_code(n));
        }
        out.push_str("</ul>\n");
    }
    for t in &e.trials {
        if let Some(err) = &t.error {
            let _ = writeln!(
                out,
                "<div class=\"error-box\"><strong>trial {}: {} failed.</strong> {}</div>",
                t.trial,
                esc(phase_style(err.phase).1),
                esc_code(&err.message)
            );
        }
    }
    if let Some(d) = e.trials.iter().rev().find_map(|t| t.diagnosis.as_ref()) {
        let mut pre = String::new();
        for l in &d.evidence {
            let _ = writeln!(pre, "{}", esc(l));
        }
        for l in &d.next_steps {
            let _ = writeln!(pre, "$ {}", esc(l));
        }
        let _ = writeln!(
            out,
            "<div class=\"diagnosis\"><strong>Diagnosis:</strong> {}<pre>{}</pre></div>",
            esc(&d.summary),
            pre.trim_end()
        );
    }
    chart(out, e);
    out.push_str("</section>\n");
}

/// One trial laid out on a time axis in milliseconds from its zero point
/// (the injection, or the trial's start when nothing was injected).
struct TrialView<'a> {
    trial: &'a TrialReport,
    zero: Timestamp,
    start: i64,
    end: i64,
    bands: Vec<(Phase, i64, i64)>,
}

fn ms_between(from: Timestamp, to: Timestamp) -> i64 {
    to.duration_since(from).as_millis() as i64
}

fn trial_view(t: &TrialReport) -> Option<TrialView<'_>> {
    let first = t.timeline.entries.first()?.at;
    let last = t
        .timeline
        .entries
        .iter()
        .map(|e| e.at)
        .chain(t.marks.recovered)
        .max()?;
    let zero = t.marks.injected.unwrap_or(first);
    let mut bands = Vec::new();
    let starts: Vec<(Phase, Timestamp)> = t
        .timeline
        .entries
        .iter()
        .filter_map(|e| match e.kind {
            EntryKind::PhaseStarted { phase } => Some((phase, e.at)),
            _ => None,
        })
        .collect();
    for (i, (phase, at)) in starts.iter().enumerate() {
        let until = starts.get(i + 1).map(|(_, a)| *a).unwrap_or(last);
        bands.push((*phase, ms_between(zero, *at), ms_between(zero, until)));
    }
    Some(TrialView {
        trial: t,
        zero,
        start: ms_between(zero, first),
        end: ms_between(zero, last),
        bands,
    })
}

const WIDTH: f64 = 1100.0;
const LEFT: f64 = 112.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 30.0;
const ROW: f64 = 54.0;
const BAND: f64 = 20.0;

struct Axis {
    from: i64,
    to: i64,
}

impl Axis {
    fn x(&self, ms: i64) -> f64 {
        let span = (self.to - self.from).max(1) as f64;
        LEFT + (ms.clamp(self.from, self.to) - self.from) as f64 / span * (WIDTH - LEFT - RIGHT)
    }
}

fn tick_step(span_ms: i64) -> i64 {
    const STEPS: [i64; 12] = [
        250, 500, 1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000,
    ];
    STEPS
        .iter()
        .copied()
        .find(|s| span_ms / s <= 12)
        .unwrap_or(1_200_000)
}

fn seconds_label(ms: i64) -> String {
    if ms == 0 {
        return "inject".into();
    }
    let sign = if ms < 0 { "−" } else { "+" };
    let abs = ms.unsigned_abs();
    if abs.is_multiple_of(1000) {
        if abs >= 60_000 && abs.is_multiple_of(60_000) {
            format!("{sign}{}m", abs / 60_000)
        } else {
            format!("{sign}{}s", abs / 1000)
        }
    } else {
        format!("{sign}{:.1}s", abs as f64 / 1000.0)
    }
}

fn chart(out: &mut String, e: &ExperimentReport) {
    let views: Vec<TrialView<'_>> = e.trials.iter().filter_map(trial_view).collect();
    if views.is_empty() {
        return;
    }
    let post = views.iter().map(|v| v.end).max().unwrap_or(1000).max(1000);
    let pre = views.iter().map(|v| -v.start).max().unwrap_or(0).max(0);
    let injected_any = views.iter().any(|v| v.trial.marks.injected.is_some());
    // Before injection only the last stretch matters (steady state reached);
    // long baseline waits are cut so the fault window keeps the room.
    let shown_pre = if injected_any {
        pre.min((post as f64 * 0.18) as i64).max(pre.min(1500))
    } else {
        pre
    };
    let axis = Axis {
        from: -shown_pre,
        to: post + post / 40,
    };
    let row_heights: Vec<f64> = views
        .iter()
        .map(|v| ROW + LANE * lane_count(v).saturating_sub(1) as f64)
        .collect();
    let height = TOP + row_heights.iter().sum::<f64>() + 26.0;
    let _ = writeln!(
        out,
        "<div class=\"chart\"><svg viewBox=\"0 0 {WIDTH} {height}\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"timeline of {} trials of {}\" font-family=\"system-ui,-apple-system,Segoe UI,Roboto,Arial,sans-serif\" font-size=\"11\">",
        views.len(),
        esc(&e.name)
    );
    // Grid and axis labels.
    let step = tick_step(axis.to - axis.from);
    let mut tick = (axis.from / step) * step;
    while tick <= axis.to {
        if tick >= axis.from {
            let x = axis.x(tick);
            let _ = writeln!(
                out,
                "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"{}\" stroke-width=\"1\"/><text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#7b8794\">{}</text>",
                TOP - 6.0,
                height - 20.0,
                if tick == 0 && injected_any {
                    "#d64545"
                } else {
                    "#eef2f6"
                },
                height - 6.0,
                if injected_any {
                    seconds_label(tick)
                } else {
                    seconds_label(tick).replace("inject", "0s")
                }
            );
        }
        tick += step;
    }
    if shown_pre < pre {
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#9aa5b1\" font-size=\"10\">⟵ {} earlier not shown</text>",
            LEFT + 2.0,
            TOP - 12.0,
            format_duration(Duration::from_millis((pre - shown_pre) as u64))
        );
    }
    // SLO deadlines that are the same for every trial.
    if injected_any && let Some(detect) = e.slos.iter().find(|s| s.slo == "detectWithin") {
        let x = axis.x(detect.target.round() as i64);
        if detect.target.round() as i64 <= axis.to {
            let _ = writeln!(
                out,
                "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#c77c02\" stroke-width=\"1.2\" stroke-dasharray=\"5 4\"><title>detectWithin {}</title></line><text x=\"{:.1}\" y=\"{:.1}\" fill=\"#c77c02\" font-size=\"10\">detectWithin {}</text>",
                TOP - 4.0,
                height - 20.0,
                esc(&detect.target_text()),
                x + 3.0,
                TOP - 12.0,
                esc(&detect.target_text())
            );
        }
    }
    let recover_target = e
        .slos
        .iter()
        .find(|s| s.slo == "recoverWithin")
        .map(|s| s.target.round() as i64);
    for (row, v) in views.iter().enumerate() {
        let y = TOP + row_heights[..row].iter().sum::<f64>();
        trial_row(out, &axis, v, y, recover_target);
    }
    out.push_str("</svg>\n");
    legend(out);
    out.push_str("</div>\n");
}

fn trial_row(
    out: &mut String,
    axis: &Axis,
    v: &TrialView<'_>,
    y: f64,
    recover_target: Option<i64>,
) {
    let t = v.trial;
    let _ = writeln!(
        out,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" font-weight=\"600\" fill=\"#3e4c59\">trial {}</text>",
        LEFT - 10.0,
        y + BAND * 0.7,
        t.trial
    );
    let _ = writeln!(
        out,
        "<rect x=\"{LEFT}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{BAND}\" fill=\"#f5f7fa\"/>",
        WIDTH - LEFT - RIGHT
    );
    for (phase, from, to) in &v.bands {
        if *to < axis.from {
            continue;
        }
        let (x1, x2) = (axis.x(*from), axis.x(*to));
        let (color, label) = phase_style(*phase);
        let _ = writeln!(
            out,
            "<rect x=\"{x1:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{BAND}\" fill=\"{color}\"><title>{label}: {} → {} ({})</title></rect>",
            (x2 - x1).max(1.0),
            seconds_label(*from).replace("inject", "0s"),
            seconds_label(*to).replace("inject", "0s"),
            format_duration(Duration::from_millis((to - from).max(0) as u64))
        );
        // Centred: signals and marks cluster at a band's ends.
        if x2 - x1 > 6.5 * label.len() as f64 + 24.0 {
            let _ = writeln!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#3e4c59\" font-size=\"10\" opacity=\".75\">{label}</text>",
                (x1 + x2) / 2.0,
                y + BAND * 0.68
            );
        }
    }
    let at = |ts: Option<Timestamp>| ts.map(|ts| ms_between(v.zero, ts));
    let marks = &t.marks;
    if let Some(ms) = at(marks.injected) {
        vline(
            out,
            axis.x(ms),
            y,
            "#d64545",
            2.2,
            &format!("injected: {}", t.injected.as_deref().unwrap_or("fault")),
        );
    }
    if let Some(ms) = at(marks.reverted) {
        vline(
            out,
            axis.x(ms),
            y,
            "#4c51bf",
            2.2,
            &format!("reverted at {}", seconds_label(ms)),
        );
        if let Some(target) = recover_target {
            let (x1, x2) = (axis.x(ms), axis.x(ms + target));
            let yb = y + BAND + 3.0;
            let _ = writeln!(
                out,
                "<path d=\"M{x1:.1} {yb:.1} H{x2:.1} M{x2:.1} {:.1} V{:.1}\" stroke=\"#4c51bf\" stroke-width=\"1\" stroke-dasharray=\"3 3\" fill=\"none\" opacity=\".6\"><title>recoverWithin deadline</title></path>",
                yb - 3.0,
                yb + 3.0
            );
        }
    }
    if let Some(ms) = at(marks.recovered) {
        vline(
            out,
            axis.x(ms),
            y,
            "#1f9d55",
            2.6,
            &format!("recovered (steady again) at {}", seconds_label(ms)),
        );
    }
    // Signals: expected ones as diamonds, others as small circles.
    for entry in &t.timeline.entries {
        let EntryKind::Signal {
            observation,
            expected,
        } = &entry.kind
        else {
            continue;
        };
        let ms = ms_between(v.zero, entry.at);
        if ms < axis.from {
            continue;
        }
        let x = axis.x(ms);
        let cy = y + BAND / 2.0;
        let tip = format!(
            "{} on {} at {}{}: {}",
            observation.kind,
            observation.object,
            seconds_label(ms),
            observation
                .since
                .map(|s| format!(
                    " (in the cluster since {})",
                    seconds_label(ms_between(v.zero, s))
                ))
                .unwrap_or_default(),
            observation.message
        );
        if *expected {
            let _ = writeln!(
                out,
                "<path d=\"M{x:.1} {:.1} l6 6 l-6 6 l-6 -6 z\" fill=\"#9b2c2c\" stroke=\"#fff\" stroke-width=\"1\"><title>{}</title></path>",
                cy - 6.0,
                esc(&tip)
            );
        } else {
            let _ = writeln!(
                out,
                "<circle cx=\"{x:.1}\" cy=\"{cy:.1}\" r=\"3.6\" fill=\"#fff\" stroke=\"#7b8794\" stroke-width=\"1.4\"><title>{}</title></circle>",
                esc(&tip)
            );
        }
    }
    if let (Some(since), Some(seen)) = (at(marks.signal), at(marks.detected)) {
        let (x1, x2) = (axis.x(since), axis.x(seen));
        let yt = y - 3.0;
        let _ = writeln!(
            out,
            "<path d=\"M{x1:.1} {:.1} l4 -6 h-8 z\" fill=\"#9b2c2c\" opacity=\".55\"><title>signal in the cluster at {} (harness saw it {} later)</title></path><line x1=\"{x1:.1}\" y1=\"{yt:.1}\" x2=\"{x2:.1}\" y2=\"{yt:.1}\" stroke=\"#9b2c2c\" stroke-width=\"1\" opacity=\".55\"/>",
            yt,
            seconds_label(since),
            format_duration(Duration::from_millis((seen - since).max(0) as u64))
        );
    }
    for entry in &t.timeline.entries {
        if let EntryKind::Error { phase, message } = &entry.kind {
            let x = axis.x(ms_between(v.zero, entry.at));
            let cy = y + BAND / 2.0;
            let _ = writeln!(
                out,
                "<path d=\"M{:.1} {:.1} l10 10 m0 -10 l-10 10\" stroke=\"#1f2933\" stroke-width=\"2.4\"><title>{} failed: {}</title></path>",
                x - 5.0,
                cy - 5.0,
                esc(phase_style(*phase).1),
                esc(message)
            );
        }
    }
    measurement_lanes(out, axis, v, y + BAND + 8.0);
    // Under the trial's name: what it measured, one fact a line.
    let lines: Vec<String> = match (t.marks.time_to_detect(), t.marks.time_to_recover()) {
        (Some(d), Some(r)) => vec![
            format!("detect {}", format_duration(d)),
            format!("recover {}", format_duration(r)),
        ],
        (Some(d), None) => vec![
            format!("detect {}", format_duration(d)),
            "no recovery".into(),
        ],
        _ => t
            .error
            .as_ref()
            .map(|e| vec![format!("{} failed", short_phase(e.phase))])
            .unwrap_or_default(),
    };
    for (i, line) in lines.iter().enumerate() {
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#7b8794\" font-size=\"9.5\">{}</text>",
            LEFT - 10.0,
            y + BAND + 11.0 + 11.0 * i as f64,
            esc(line)
        );
    }
}

fn vline(out: &mut String, x: f64, y: f64, color: &str, width: f64, title: &str) {
    let _ = writeln!(
        out,
        "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"{color}\" stroke-width=\"{width}\"><title>{}</title></line>",
        y - 4.0,
        y + BAND + 4.0,
        esc(title)
    );
}

/// Under a trial's band, one lane per extra SLO that has something to
/// show (a condition's false stretches, workloads outside the target out
/// of steady state, the canary's window and success ratio), then one lane
/// per pod the signals were seen on.
fn lane_count(v: &TrialView<'_>) -> usize {
    let m = &v.trial.measurements;
    pod_states(v.trial).len()
        + m.conditions
            .iter()
            .filter(|c| !c.false_spans.is_empty())
            .count()
        + usize::from(
            m.blast_radius
                .as_ref()
                .is_some_and(|b| !b.affected.is_empty()),
        )
        + usize::from(m.availability.is_some())
        + usize::from(m.latency.is_some())
}

const LANE: f64 = 13.0;

/// At most this many pod lanes per trial; the rest are named in the last.
const MAX_POD_LANES: usize = 6;

/// One pod's lane: its name (`None` for the lane of the pods left out) and
/// what was seen on it, in order.
type PodLane<'a> = (Option<&'a str>, Vec<(Timestamp, &'a Observation)>);

/// What the trial's signals said of each pod, in the order seen: a pod's
/// states as breakfix saw them (`ErrImagePull`, then `ImagePullBackOff`,
/// then `PodGone`). The last lane of a long list stands for the pods left
/// out.
fn pod_states(t: &TrialReport) -> Vec<PodLane<'_>> {
    let mut pods: Vec<PodLane<'_>> = Vec::new();
    for entry in &t.timeline.entries {
        let EntryKind::Signal { observation, .. } = &entry.kind else {
            continue;
        };
        let Some(pod) = observation.object.strip_prefix("pod/") else {
            continue;
        };
        match pods.iter_mut().find(|(name, _)| *name == Some(pod)) {
            Some((_, seen)) => seen.push((entry.at, observation)),
            None => pods.push((Some(pod), vec![(entry.at, observation)])),
        }
    }
    if pods.len() > MAX_POD_LANES {
        let rest: Vec<(Timestamp, &Observation)> = pods
            .drain(MAX_POD_LANES - 1..)
            .flat_map(|(_, seen)| seen)
            .collect();
        pods.push((None, rest));
    }
    pods
}

fn measurement_lanes(out: &mut String, axis: &Axis, v: &TrialView<'_>, top: f64) {
    let m = &v.trial.measurements;
    let end = |to: Option<Timestamp>, fallback: Option<Timestamp>| {
        to.or(fallback)
            .map(|t| ms_between(v.zero, t))
            .unwrap_or(v.end)
    };
    let mut y = top;
    for c in m.conditions.iter().filter(|c| !c.false_spans.is_empty()) {
        let mut last_x2 = axis.x(axis.from);
        let mut first_x1 = None;
        for s in &c.false_spans {
            let (from, to) = (ms_between(v.zero, s.from), end(s.to, c.to));
            let (x1, x2) = (axis.x(from), axis.x(to));
            first_x1.get_or_insert(x1);
            last_x2 = x2;
            let _ = writeln!(
                out,
                "<rect x=\"{x1:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"7\" rx=\"2\" fill=\"#dd6b20\"><title>condition {}: `{}` false {} → {} ({})</title></rect>",
                (x2 - x1).max(2.0),
                esc(&c.name),
                esc(&c.expr),
                seconds_label(from),
                seconds_label(to),
                esc(&s.values)
            );
        }
        let label = format!(
            "{} false {}",
            c.name,
            format_duration(Duration::from_millis(c.false_ms))
        );
        lane_label(
            out,
            first_x1.unwrap_or(last_x2),
            last_x2,
            y + 7.0,
            "#c05621",
            &label,
        );
        y += LANE;
    }
    if let Some(b) = &m.blast_radius
        && !b.affected.is_empty()
    {
        let mut first_x1 = None;
        let mut last_x2 = axis.x(axis.from);
        for d in &b.affected {
            let (from, to) = (ms_between(v.zero, d.left), end(d.back, b.to));
            let (x1, x2) = (axis.x(from), axis.x(to));
            first_x1.get_or_insert(x1);
            last_x2 = last_x2.max(x2);
            let _ = writeln!(
                out,
                "<rect x=\"{x1:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"7\" rx=\"2\" fill=\"#8e59d9\" opacity=\".85\"><title>outside the target: {} unsteady {} → {} ({})</title></rect>",
                (x2 - x1).max(2.0),
                esc(&d.workload),
                seconds_label(from),
                seconds_label(to),
                esc(&d.reason)
            );
        }
        let mut names: Vec<&str> = b.affected.iter().map(|d| d.workload.as_str()).collect();
        names.dedup();
        let label = if names.len() == 1 {
            format!("{} unsteady", names[0])
        } else {
            format!("{} workloads unsteady", names.len())
        };
        lane_label(
            out,
            first_x1.unwrap_or(last_x2),
            last_x2,
            y + 7.0,
            "#6b46c1",
            &label,
        );
        y += LANE;
    }
    if let Some(a) = &m.availability {
        let from = a.from.map(|t| ms_between(v.zero, t)).unwrap_or(0);
        let to = end(a.to, None);
        let (x1, x2) = (axis.x(from), axis.x(to));
        let ratio = a
            .ratio()
            .map(|r| format!("canary {:.1}% of {} checks ok", r * 100.0, a.total))
            .unwrap_or_else(|| {
                format!(
                    "canary: {}",
                    a.error.clone().unwrap_or_else(|| "not measured".into())
                )
            });
        let _ = writeln!(
            out,
            "<path d=\"M{x1:.1} {:.1} v6 M{x1:.1} {:.1} H{x2:.1} M{x2:.1} {:.1} v6\" stroke=\"#2b6cb0\" stroke-width=\"1.4\" fill=\"none\"><title>availability window ({}): read at {} and {}; {}</title></path>",
            y + 1.0,
            y + 4.0,
            y + 1.0,
            esc(&a.canary),
            seconds_label(from),
            seconds_label(to),
            esc(&ratio)
        );
        // Above the bracket, so the line never runs through the text.
        lane_label(out, x1, x2, y + 1.5, "#2b6cb0", &ratio);
        y += LANE;
    }
    if let Some(l) = &m.latency {
        let w = &l.window;
        let from = w.from.map(|t| ms_between(v.zero, t)).unwrap_or(0);
        let to = end(w.to, None);
        let (x1, x2) = (axis.x(from), axis.x(to));
        let ms = |v: f64| format_duration(Duration::from_micros((v * 1000.0).round() as u64));
        let text = match (w.percentile_ms(50.0), w.percentile_ms(95.0)) {
            (Some(p50), Some(p95)) => {
                let base = l
                    .baseline
                    .as_ref()
                    .and_then(|b| b.percentile_ms(95.0))
                    .map(|b| format!(" (baseline p95 {})", ms(b)))
                    .unwrap_or_default();
                format!(
                    "canary p50 {} p95 {} over {} checks{base}",
                    ms(p50),
                    ms(p95),
                    w.count
                )
            }
            _ => format!(
                "canary latency: {}",
                w.error.clone().unwrap_or_else(|| "not measured".into())
            ),
        };
        let _ = writeln!(
            out,
            "<path d=\"M{x1:.1} {:.1} v6 M{x1:.1} {:.1} H{x2:.1} M{x2:.1} {:.1} v6\" stroke=\"#2c7a7b\" stroke-width=\"1.4\" fill=\"none\"><title>latency, {} window ({}): read at {} and {}; {}</title></path>",
            y + 1.0,
            y + 4.0,
            y + 1.0,
            l.over,
            esc(&l.canary),
            seconds_label(from),
            seconds_label(to),
            esc(&text)
        );
        lane_label(out, x1, x2, y + 1.5, "#2c7a7b", &text);
        y += LANE;
    }
    let pods = pod_states(v.trial);
    let pods_left_out = |seen: &[(Timestamp, &Observation)]| {
        let mut names: Vec<&str> = seen.iter().map(|(_, o)| o.object.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        names.len()
    };
    for (pod, seen) in &pods {
        let xs: Vec<f64> = seen
            .iter()
            .map(|(at, _)| axis.x(ms_between(v.zero, *at)))
            .collect();
        let (x1, x2) = (xs[0], xs[xs.len() - 1]);
        let _ = writeln!(
            out,
            "<line x1=\"{x1:.1}\" y1=\"{:.1}\" x2=\"{x2:.1}\" y2=\"{:.1}\" stroke=\"#9aa5b1\" stroke-width=\"1.4\"/>",
            y + 3.5,
            y + 3.5
        );
        for (x, (at, o)) in xs.iter().zip(seen) {
            let _ = writeln!(
                out,
                "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"7\" height=\"7\" rx=\"1.5\" fill=\"#52606d\"><title>{} on {} at {}: {}</title></rect>",
                x - 3.5,
                o.kind,
                esc(&o.object),
                seconds_label(ms_between(v.zero, *at)),
                esc(&o.message)
            );
        }
        let mut states: Vec<String> = seen.iter().map(|(_, o)| o.kind.to_string()).collect();
        states.dedup();
        let label = match pod {
            Some(name) => format!("{name}: {}", states.join(" → ")),
            None => format!("{} more pods: {}", pods_left_out(seen), states.join(", ")),
        };
        lane_label(out, x1, x2, y + 7.0, "#3e4c59", &label);
        y += LANE;
    }
}

/// A label beside a measurement bar: after it when there is room, else
/// before it, else over its right end with a white halo.
fn lane_label(out: &mut String, x1: f64, x2: f64, baseline: f64, color: &str, text: &str) {
    let needed = 5.4 * text.chars().count() as f64 + 8.0;
    let (x, anchor) = if WIDTH - RIGHT - x2 >= needed {
        (x2 + 5.0, "start")
    } else if x1 - LEFT >= needed {
        (x1 - 5.0, "end")
    } else {
        (x2 - 4.0, "end")
    };
    let _ = writeln!(
        out,
        "<text x=\"{x:.1}\" y=\"{baseline:.1}\" text-anchor=\"{anchor}\" fill=\"{color}\" font-size=\"9.5\" stroke=\"#fff\" stroke-width=\"3\" paint-order=\"stroke\">{}</text>",
        esc(text)
    );
}

fn legend(out: &mut String) {
    out.push_str("<div class=\"legend\">");
    for (phase, color, label) in PHASES {
        if phase == Phase::Cleanup {
            continue;
        }
        let _ = write!(
            out,
            "<span><i class=\"sw\" style=\"background:{color}\"></i>{label}</span>"
        );
    }
    out.push_str(
        "<span><svg width=\"12\" height=\"12\"><path d=\"M6 0 l6 6 l-6 6 l-6 -6 z\" fill=\"#9b2c2c\"/></svg>expected signal</span>\
         <span><svg width=\"10\" height=\"10\"><circle cx=\"5\" cy=\"5\" r=\"3.6\" fill=\"#fff\" stroke=\"#7b8794\" stroke-width=\"1.4\"/></svg>other signal</span>\
         <span><i class=\"sw\" style=\"background:#d64545;width:3px\"></i>injected</span>\
         <span><i class=\"sw\" style=\"background:#4c51bf;width:3px\"></i>reverted</span>\
         <span><i class=\"sw\" style=\"background:#1f9d55;width:3px\"></i>recovered</span>\
         <span><i class=\"sw\" style=\"background:#dd6b20;height:6px\"></i>condition false</span>\
         <span><i class=\"sw\" style=\"background:#8e59d9;height:6px\"></i>outside the target, unsteady</span>\
         <span><i class=\"sw\" style=\"background:#52606d;width:7px;height:7px\"></i>a pod's state (its signals, in order)</span>",
    );
    out.push_str("</div>");
}

fn short_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// Escapes text and shows `backticked` parts as code.
pub(super) fn esc_code(text: &str) -> String {
    if !text.matches('`').count().is_multiple_of(2) {
        return esc(text);
    }
    text.split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                format!("<code>{}</code>", esc(part))
            } else {
                esc(part)
            }
        })
        .collect()
}

/// Escapes text for HTML element content and attribute values.
pub(super) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;
    use rstest::rstest;

    fn html() -> String {
        to_html(&fixture::run_report())
    }

    #[test]
    fn is_one_self_contained_file() {
        let page = html();
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(page.trim_end().ends_with("</html>"));
        for external in [
            "<script",
            "<link",
            "src=\"http",
            "href=\"http",
            "url(",
            "@import",
        ] {
            assert!(!page.contains(external), "found {external}");
        }
    }

    #[rstest]
    #[case("1 of 3 passed · 1 failed · 1 errored · 1 flaky")]
    #[case("<a href=\"#exp-0\">image-typo</a>")]
    #[case("<span class=\"badge flaky\"")]
    #[case("<span class=\"missed\">missed by 5%</span>")]
    #[case("aria-label=\"timeline of 3 trials of image-typo\"")]
    #[case("detectWithin 30.0s</text>")]
    #[case(
        "<title>condition web-keeps-serving: `object.status.availableReplicas &gt;= 2` false +9s → +21s (object.status.availableReplicas = 1)</title>"
    )]
    #[case("<title>outside the target: deployment/web -n shop unsteady +9s → +21s")]
    #[case(">canary 90.0% of 200 checks ok</text>")]
    #[case(">web-keeps-serving false 12.0s</text>")]
    #[case(">deployment/web -n shop unsteady</text>")]
    #[case("<title>ImagePullBackOff on pod/web-7c9d-k8f2q at +2.6s (in the cluster since +2.5s)")]
    #[case(">web-7c9d-k8f2q: ImagePullBackOff</text>")]
    #[case(">web-7c9d-x2x1: Unready</text>")]
    #[case("<strong>trial 1: waiting for steady state failed.</strong>")]
    #[case("The image-typo story &lt;with markup &amp; quotes&quot;&gt;")]
    fn shows_what_a_person_looks_for(#[case] fragment: &str) {
        let page = html();
        assert!(page.contains(fragment), "missing {fragment:?}");
    }

    #[test]
    fn many_pods_share_the_last_lane() {
        let mut report = fixture::run_report();
        let trial = &mut report.experiments[0].trials[0];
        let seen = trial
            .timeline
            .entries
            .iter()
            .find(|e| matches!(e.kind, EntryKind::Signal { .. }))
            .cloned()
            .expect("a signal");
        for n in 0..10 {
            let mut entry = seen.clone();
            if let EntryKind::Signal { observation, .. } = &mut entry.kind {
                observation.object = format!("pod/storm-{n}");
            }
            trial.timeline.entries.push(entry);
        }
        // Two pods of the fixture's own and ten more, one signal each.
        let left_out = 12 - (MAX_POD_LANES - 1);
        let lanes = pod_states(trial);
        assert_eq!(lanes.len(), MAX_POD_LANES);
        let (name, rest) = lanes.last().expect("a last lane");
        assert_eq!(*name, None);
        assert_eq!(rest.len(), left_out);
        assert!(to_html(&report).contains(&format!(">{left_out} more pods: ")));
    }

    #[test]
    fn every_trial_gets_a_row() {
        let page = html();
        for n in 1..=3 {
            assert!(page.contains(&format!(">trial {n}</text>")), "trial {n}");
        }
        assert_eq!(page.matches("<div class=\"chart\">").count(), 3);
    }

    #[rstest]
    #[case(0, "inject")]
    #[case(2_000, "+2s")]
    #[case(-1_500, "−1.5s")]
    #[case(120_000, "+2m")]
    fn axis_labels_read_as_offsets(#[case] ms: i64, #[case] label: &str) {
        assert_eq!(seconds_label(ms), label);
    }

    #[rstest]
    #[case(10_000, 1_000)]
    #[case(60_000, 5_000)]
    #[case(600_000, 60_000)]
    fn ticks_stay_readable(#[case] span: i64, #[case] step: i64) {
        assert_eq!(tick_step(span), step);
    }
}
