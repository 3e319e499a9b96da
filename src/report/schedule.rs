//! The run as a schedule: when each experiment ran, its fault window, and
//! which ran alone. From the trials' timelines, so it needs nothing the
//! report does not already hold; the HTML report draws it as a chart, and
//! tests ask it who overlapped whom.

use std::fmt::Write as _;
use std::time::Duration;

use jiff::Timestamp;

use crate::runner::{ALONE_NOTE, RunReport};
use crate::timeline::EntryKind;
use crate::vocab::duration::format_duration;

/// One experiment's place in time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// The experiment.
    pub experiment: String,
    /// Its first trial's first entry to its last trial's last entry
    /// (baseline applied to instance deleted).
    pub start: Timestamp,
    /// When its last trial ended.
    pub end: Timestamp,
    /// Each trial's fault window: injection to recovery (or to the trial's
    /// end when it did not recover).
    pub faults: Vec<(Timestamp, Timestamp)>,
    /// Why it ran alone (what shared thing it breaks), if it did.
    pub alone: Option<String>,
}

impl Span {
    /// Whether this span and `other` share any moment.
    pub fn overlaps(&self, other: &Self) -> bool {
        self.start < other.end && other.start < self.end
    }
}

/// The spans of every experiment that ran, in report order.
pub fn spans(report: &RunReport) -> Vec<Span> {
    report
        .experiments
        .iter()
        .filter_map(|e| {
            let entries = e.trials.iter().flat_map(|t| t.timeline.entries.iter());
            let start = entries.clone().map(|en| en.at).min()?;
            let end = entries.clone().map(|en| en.at).max()?;
            let alone = entries.clone().find_map(|en| match &en.kind {
                EntryKind::Note { message } => message
                    .split("; ")
                    .find_map(|part| part.strip_prefix(ALONE_NOTE))
                    .map(str::to_string),
                _ => None,
            });
            let faults = e
                .trials
                .iter()
                .filter_map(|t| {
                    let from = t.marks.injected?;
                    let last = t.timeline.entries.iter().map(|en| en.at).max()?;
                    Some((from, t.marks.recovered.unwrap_or(last)))
                })
                .collect();
            Some(Span {
                experiment: e.name.clone(),
                start,
                end,
                faults,
                alone,
            })
        })
        .collect()
}

/// The names of the experiments whose spans overlap `spans[index]`.
pub fn overlapping(spans: &[Span], index: usize) -> Vec<&str> {
    spans
        .iter()
        .enumerate()
        .filter(|(i, s)| *i != index && s.overlaps(&spans[index]))
        .map(|(_, s)| s.experiment.as_str())
        .collect()
}

/// How many experiments were in at the busiest moment.
pub fn peak(spans: &[Span]) -> usize {
    let mut edges: Vec<(Timestamp, i32)> = spans
        .iter()
        .flat_map(|s| [(s.start, 1), (s.end, -1)])
        .collect();
    // Ends before starts at the same instant: touching is not overlapping.
    edges.sort_by_key(|&(at, delta)| (at, delta));
    let mut live = 0;
    let mut most = 0;
    for (_, delta) in edges {
        live += delta;
        most = most.max(live);
    }
    most.max(0) as usize
}

/// One sentence on how the run was scheduled, for summaries: how many ran
/// at most at once, the experiments' time against the wall time, and who
/// ran alone. `None` when nothing ran side by side.
pub fn summary(report: &RunReport) -> Option<String> {
    let spans = spans(report);
    let most = peak(&spans);
    if most < 2 {
        return None;
    }
    let from = spans.iter().map(|s| s.start).min()?;
    let to = spans.iter().map(|s| s.end).max()?;
    let wall = Duration::try_from(to.duration_since(from)).unwrap_or_default();
    let busy: Duration = spans
        .iter()
        .map(|s| Duration::try_from(s.end.duration_since(s.start)).unwrap_or_default())
        .sum();
    let mut out = format!(
        "side by side, at most {most} at once: {} of experiments in {} of wall time ({:.1}×)",
        format_duration(busy),
        format_duration(wall),
        busy.as_secs_f64() / wall.as_secs_f64().max(0.001)
    );
    let alone: Vec<&str> = spans
        .iter()
        .filter(|s| s.alone.is_some())
        .map(|s| s.experiment.as_str())
        .collect();
    if !alone.is_empty() {
        let _ = write!(out, "; ran alone: {}", alone.join(", "));
    }
    Some(out)
}

const WIDTH: f64 = 1100.0;
const LEFT: f64 = 220.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 24.0;
const ROW: f64 = 18.0;

/// An SVG chart of the schedule: a row per experiment in report order, a
/// bar from its start to its end with its fault windows darker; those
/// that ran alone in another colour. `None` when nothing ran side by side
/// (a serial run's report stays as it was).
pub fn svg(report: &RunReport) -> Option<String> {
    let spans = spans(report);
    if peak(&spans) < 2 {
        return None;
    }
    let from = spans.iter().map(|s| s.start).min()?;
    let to = spans.iter().map(|s| s.end).max()?;
    let span_ms = (to.duration_since(from).as_millis() as f64).max(1.0);
    let x = |t: Timestamp| {
        LEFT + (t.duration_since(from).as_millis() as f64 / span_ms) * (WIDTH - LEFT - RIGHT)
    };
    let height = TOP + ROW * spans.len() as f64 + 24.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<div class=\"chart schedule\"><svg viewBox=\"0 0 {WIDTH} {height}\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"when each experiment ran\" font-family=\"system-ui,-apple-system,Segoe UI,Roboto,Arial,sans-serif\" font-size=\"11\">"
    );
    let total = Duration::from_millis(span_ms as u64);
    let step = tick_step(span_ms as i64);
    let mut tick = 0;
    while tick as f64 <= span_ms {
        let tx = LEFT + (tick as f64 / span_ms) * (WIDTH - LEFT - RIGHT);
        let _ = writeln!(
            out,
            "<line x1=\"{tx:.1}\" y1=\"{:.1}\" x2=\"{tx:.1}\" y2=\"{:.1}\" stroke=\"#eef2f6\"/><text x=\"{tx:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#7b8794\">{}</text>",
            TOP - 4.0,
            height - 20.0,
            height - 6.0,
            format_duration(Duration::from_millis(tick as u64))
        );
        tick += step;
    }
    for (row, s) in spans.iter().enumerate() {
        let y = TOP + ROW * row as f64;
        let (bar, fault) = if s.alone.is_some() {
            ("#d6bcfa", "#805ad5")
        } else {
            ("#bee3f8", "#3182ce")
        };
        let title = match &s.alone {
            Some(why) => format!("{}: ran alone ({why})", s.experiment),
            None => s.experiment.clone(),
        };
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#3e4c59\">{}</text><rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"2\" fill=\"{bar}\"><title>{} · {}</title></rect>",
            LEFT - 6.0,
            y + ROW * 0.7,
            super::html::esc(&s.experiment),
            x(s.start),
            y + 3.0,
            (x(s.end) - x(s.start)).max(1.0),
            ROW - 6.0,
            super::html::esc(&title),
            format_duration(Duration::try_from(s.end.duration_since(s.start)).unwrap_or_default())
        );
        for (a, b) in &s.faults {
            let _ = writeln!(
                out,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"1\" fill=\"{fault}\"><title>fault in, {}</title></rect>",
                x(*a),
                y + 5.0,
                (x(*b) - x(*a)).max(1.0),
                ROW - 10.0,
                format_duration(Duration::try_from(b.duration_since(*a)).unwrap_or_default())
            );
        }
    }
    let _ = writeln!(out, "</svg>");
    let _ = writeln!(
        out,
        "<div class=\"legend\"><span><span class=\"sw\" style=\"background:#bee3f8\"></span>experiment (baseline to cleanup)</span><span><span class=\"sw\" style=\"background:#3182ce\"></span>fault in</span><span><span class=\"sw\" style=\"background:#d6bcfa\"></span>ran alone: breaks something every workload shares</span><span>{} experiments, at most {} at once, {}</span></div></div>",
        spans.len(),
        peak(&spans),
        format_duration(total)
    );
    Some(out)
}

/// A tick every so many milliseconds, about eight over the span.
fn tick_step(span_ms: i64) -> i64 {
    const STEPS: [i64; 8] = [
        5_000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000,
    ];
    STEPS
        .iter()
        .copied()
        .find(|s| span_ms / s <= 10)
        .unwrap_or(1_800_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::TrialReport;
    use crate::timeline::{Entry, Marks, Timeline};

    fn ts(s: u32) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + i64::from(s)).unwrap()
    }

    fn trial(from: u32, to: u32, note: Option<&str>) -> TrialReport {
        let mut entries = vec![Entry {
            at: ts(from),
            kind: EntryKind::PhaseStarted {
                phase: crate::timeline::Phase::Baseline,
            },
        }];
        if let Some(n) = note {
            entries.push(Entry {
                at: ts(from),
                kind: EntryKind::Note { message: n.into() },
            });
        }
        entries.push(Entry {
            at: ts(to),
            kind: EntryKind::Recovered,
        });
        TrialReport {
            trial: 1,
            marks: Marks {
                injected: Some(ts(from + 1)),
                recovered: Some(ts(to)),
                ..Marks::default()
            },
            detection: None,
            diagnosis: None,
            injected: None,
            measurements: Default::default(),
            timeline: Timeline { entries },
            error: None,
            interrupted: false,
        }
    }

    fn report(trials: Vec<(&str, TrialReport)>) -> RunReport {
        let mut r = crate::report::fixture::run_report();
        r.experiments = trials
            .into_iter()
            .map(|(name, t)| {
                let mut e = r.experiments[0].clone();
                e.name = name.into();
                e.trials = vec![t];
                e
            })
            .collect();
        r
    }

    #[test]
    fn who_overlapped_whom_and_who_ran_alone() {
        let r = report(vec![
            (
                "dns",
                trial(
                    0,
                    10,
                    Some("baseline instance in canaries-bf-1; runs alone: it breaks cluster DNS"),
                ),
            ),
            ("a", trial(10, 30, None)),
            ("b", trial(12, 25, None)),
            ("c", trial(26, 40, None)),
        ]);
        let s = spans(&r);
        assert_eq!(s[0].alone.as_deref(), Some("it breaks cluster DNS"));
        assert!(overlapping(&s, 0).is_empty(), "touching is not overlapping");
        assert_eq!(overlapping(&s, 1), vec!["b", "c"]);
        assert_eq!(peak(&s), 2);
        let svg = svg(&r).unwrap();
        assert!(
            svg.contains("dns: ran alone (it breaks cluster DNS)"),
            "{svg}"
        );
        assert!(
            svg.contains("4 experiments, at most 2 at once, 40.0s"),
            "{svg}"
        );
    }
}
