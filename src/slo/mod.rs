//! SLO verdicts: per-trial measurements compared with targets, judged on a
//! chosen percentile over repeats, with the spread and a flakiness flag.
//!
//! Every SLO reduces to one number per trial (a duration in milliseconds, a
//! success ratio or a count) and a target it must stay under (`atMost`) or
//! over (`atLeast`). A trial without a measurement (never detected, never
//! recovered, canary unreadable) counts as the worst possible value. The
//! verdict takes the nearest-rank percentile counted from the best trial, so
//! p95 over 20 trials forgives one bad trial and `max` forgives none. An SLO
//! is flaky when some trials met it and others did not.

pub mod measurement;

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::experiment::slo::{
    ConditionMust, ConditionSlo, LatencyBound, LatencyTarget, Percentile,
};
use crate::experiment::{Impact, SloSpec};
use crate::timeline::Marks;
use crate::vocab::duration::format_duration;
pub use measurement::Measurements;

/// What an SLO's numbers are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Unit {
    /// Milliseconds.
    Ms,
    /// A success ratio, 0 to 1.
    Ratio,
    /// A number of things (workloads).
    Count,
    /// A multiple of a reference (latency over the baseline window's).
    Factor,
}

impl Unit {
    /// A value in this unit, the way people read it.
    pub fn format(self, value: f64) -> String {
        match self {
            Self::Ms => format_duration(Duration::from_millis(value.max(0.0).round() as u64)),
            Self::Ratio => {
                let pct = value * 100.0;
                if (pct - pct.round()).abs() < 1e-9 {
                    format!("{pct:.0}%")
                } else {
                    format!("{pct:.2}%")
                }
            }
            Self::Count => format!("{}", value.round() as i64),
            Self::Factor => format!("{value:.1}×"),
        }
    }
}

/// Which side of the target is good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Comparison {
    /// The measurement must not exceed the target (durations, counts).
    AtMost,
    /// The measurement must reach the target (availability).
    AtLeast,
}

impl Comparison {
    fn meets(self, value: f64, target: f64) -> bool {
        match self {
            Self::AtMost => value <= target + 1e-9,
            Self::AtLeast => value + 1e-9 >= target,
        }
    }

    /// `a` is better than `b`.
    fn better(self, a: f64, b: f64) -> std::cmp::Ordering {
        match self {
            Self::AtMost => a.total_cmp(&b),
            Self::AtLeast => b.total_cmp(&a),
        }
    }
}

/// Best, median and worst of the trials that produced a measurement.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Spread {
    /// The lowest trial value.
    #[serde(with = "number")]
    #[schemars(with = "f64")]
    pub min: f64,
    /// The median trial value.
    #[serde(with = "number")]
    #[schemars(with = "f64")]
    pub median: f64,
    /// The highest trial value.
    #[serde(with = "number")]
    #[schemars(with = "f64")]
    pub max: f64,
}

/// The verdict on one SLO over all trials of an experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SloVerdict {
    /// `detectWithin`, `recoverWithin`, `availability`, `blastRadius` or `condition/<name>`.
    pub slo: String,
    /// The unit of the values.
    pub unit: Unit,
    /// Whether the value must stay under or over the target.
    pub comparison: Comparison,
    /// The target, in `unit`.
    #[serde(with = "number")]
    #[schemars(with = "f64")]
    pub target: f64,
    /// The percentile the verdict is taken on.
    pub percentile: Percentile,
    /// The measurement at that percentile (`None`: that trial measured nothing).
    #[serde(with = "number_opt")]
    #[schemars(with = "Option<f64>")]
    pub actual: Option<f64>,
    /// Each trial's measurement, in trial order (`null`: nothing measured).
    #[serde(with = "number_vec")]
    #[schemars(with = "Vec<Option<f64>>")]
    pub samples: Vec<Option<f64>>,
    /// Whether each trial on its own met the target.
    pub trials_met: Vec<bool>,
    /// Min / median / max of the measured samples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spread: Option<Spread>,
    /// Whether the SLO was met.
    pub met: bool,
    /// Some trials met the target and some did not.
    pub flaky: bool,
    /// Why trials missed, e.g. `trial 2: deployment/coredns -n kube-system left steady state`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl SloVerdict {
    /// How far on the wrong side of the target the verdict's measurement is.
    pub fn missed_by(&self) -> Option<f64> {
        let actual = self.actual?;
        let gap = match self.comparison {
            Comparison::AtMost => actual - self.target,
            Comparison::AtLeast => self.target - actual,
        };
        (gap > 1e-9).then_some(gap)
    }

    /// The target with its comparison, e.g. `30s`, `≥ 95%`, `≤ 0`.
    pub fn target_text(&self) -> String {
        let t = self.unit.format(self.target);
        match (self.unit, self.comparison) {
            (Unit::Ms, Comparison::AtMost) => t,
            (_, Comparison::AtMost) => format!("≤ {t}"),
            (_, Comparison::AtLeast) => format!("≥ {t}"),
        }
    }

    /// The measurement at the percentile, or `never` / `not measured`.
    pub fn actual_text(&self) -> String {
        match self.actual {
            Some(a) => self.unit.format(a),
            None if self.unit == Unit::Ms => "never happened".into(),
            None => "not measured".into(),
        }
    }

    /// `3.1s / 4.0s / 9.8s` (min / median / max); `None` with fewer than
    /// two measured trials, where there is no spread to show.
    pub fn spread_text(&self) -> Option<String> {
        if self.samples.iter().flatten().count() < 2 {
            return None;
        }
        self.spread.map(|s| {
            format!(
                "{} / {} / {}",
                self.unit.format(s.min),
                self.unit.format(s.median),
                self.unit.format(s.max)
            )
        })
    }

    /// How many trials met the target on their own, e.g. `3 of 5`.
    pub fn met_count(&self) -> (usize, usize) {
        (
            self.trials_met.iter().filter(|m| **m).count(),
            self.trials_met.len(),
        )
    }

    /// One line, e.g. `detectWithin 30s: 4.2s (met)`,
    /// `detectWithin 30s (p95 of 5): 42.1s — missed by 12.1s; spread 3.1s / 4.0s / 42.1s; flaky: met in 4 of 5 trials`.
    pub fn describe(&self) -> String {
        let trials = self.samples.len();
        let head = if trials > 1 {
            format!(
                "{} {} ({} of {trials})",
                self.slo,
                self.target_text(),
                self.percentile
            )
        } else {
            format!("{} {}", self.slo, self.target_text())
        };
        let mut line = match (self.actual, self.met) {
            (Some(_), true) => format!("{head}: {} (met)", self.actual_text()),
            (Some(_), false) => format!(
                "{head}: {} — missed by {}",
                self.actual_text(),
                self.unit.format(self.missed_by().unwrap_or_default())
            ),
            (None, _) => format!("{head}: {} — missed", self.actual_text()),
        };
        if trials > 1
            && let Some(spread) = self.spread_text()
        {
            line.push_str(&format!("; spread {spread}"));
        }
        if self.flaky {
            let (met, of) = self.met_count();
            line.push_str(&format!("; flaky: met in {met} of {of} trials"));
        }
        line
    }
}

/// One trial's data, as the verdicts need it.
#[derive(Debug, Clone, Copy)]
pub struct TrialData<'a> {
    /// The trial's moments.
    pub marks: &'a Marks,
    /// What the trial measured.
    pub measurements: &'a Measurements,
}

/// Judges trials against every SLO in `spec`.
pub fn evaluate(spec: &SloSpec, trials: &[TrialData<'_>]) -> Vec<SloVerdict> {
    let pct = spec.percentile;
    let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1000.0);
    let mut out = vec![
        verdict(
            Judged::duration("detectWithin", spec.detect_within.get(), pct),
            trials
                .iter()
                .map(|t| (ms(t.marks.time_to_detect()), None))
                .collect(),
        ),
        verdict(
            Judged::duration("recoverWithin", spec.recover_within.get(), pct),
            trials
                .iter()
                .map(|t| (ms(t.marks.time_to_recover()), None))
                .collect(),
        ),
    ];
    if let Some(a) = &spec.availability
        && let Some(at_least) = a.at_least
    {
        let judged = Judged {
            slo: "availability".into(),
            unit: Unit::Ratio,
            comparison: Comparison::AtLeast,
            target: at_least.ratio(),
            percentile: pct,
        };
        let samples = trials
            .iter()
            .map(|t| match &t.measurements.availability {
                Some(m) => (m.ratio(), availability_note(m)),
                None => (
                    None,
                    Some("not measured (the trial ended before injection)".into()),
                ),
            })
            .collect();
        out.push(verdict(judged, samples));
    }
    if let Some(l) = &spec.latency
        && let Some(target) = l.target()
    {
        out.push(latency_verdict(
            "latency",
            l,
            target,
            pct,
            trials.iter().map(|t| t.measurements.latency.as_ref()),
        ));
    }
    if let Some(b) = &spec.blast_radius {
        let judged = Judged {
            slo: "blastRadius".into(),
            unit: Unit::Count,
            comparison: Comparison::AtMost,
            target: f64::from(b.max_affected),
            percentile: pct,
        };
        let samples = trials
            .iter()
            .map(|t| match &t.measurements.blast_radius {
                Some(m) => (m.affected_count().map(|n| n as f64), blast_note(m)),
                None => (
                    None,
                    Some("not measured (the trial ended before injection)".into()),
                ),
            })
            .collect();
        out.push(verdict(judged, samples));
    }
    for c in &spec.conditions {
        let samples = trials
            .iter()
            .map(|t| {
                let m = t
                    .measurements
                    .conditions
                    .iter()
                    .find(|m| m.name == c.name.as_str());
                condition_sample(c, m)
            })
            .collect();
        out.push(verdict(condition_judged(c, pct), samples));
    }
    out
}

/// The name every impact verdict starts with: `impact/availability`,
/// `impact/latency/p95`, `impact/signal/CanaryFailing`.
pub const IMPACT: &str = "impact/";

/// Verdicts on what the fault must cause (`expect.impact`), one per part,
/// judged on the same percentile of trials as the SLOs. A part that was
/// not measured (never held, canary unreadable) counts as not felt.
pub fn evaluate_impact(
    impact: &Impact,
    pct: Percentile,
    trials: &[TrialData<'_>],
) -> Vec<SloVerdict> {
    let mut out = Vec::new();
    let measured = |t: &TrialData<'_>| t.measurements.impact.clone().unwrap_or_default();
    if let Some(a) = &impact.availability
        && let Some(at_most) = a.at_most
    {
        let judged = Judged {
            slo: format!("{IMPACT}availability"),
            unit: Unit::Ratio,
            comparison: Comparison::AtMost,
            target: at_most.ratio(),
            percentile: pct,
        };
        let samples = trials
            .iter()
            .map(|t| match measured(t).availability {
                Some(m) => (m.ratio(), availability_note(&m)),
                None => (
                    None,
                    Some("not measured (the trial ended before injection)".into()),
                ),
            })
            .collect();
        out.push(verdict(judged, samples));
    }
    if let Some(l) = &impact.latency
        && let Some(target) = l.target()
    {
        let latencies: Vec<Option<measurement::LatencyMeasurement>> =
            trials.iter().map(|t| measured(t).latency).collect();
        out.push(latency_verdict(
            "impact/latency",
            l,
            target,
            pct,
            latencies.iter().map(Option::as_ref),
        ));
    }
    for signal in &impact.signals {
        let judged = Judged {
            slo: format!("{IMPACT}signal/{signal}"),
            unit: Unit::Count,
            comparison: Comparison::AtLeast,
            target: 1.0,
            percentile: pct,
        };
        let samples = trials
            .iter()
            .map(|t| {
                let seen = measured(t).signals.contains(signal);
                let note =
                    (!seen).then(|| format!("{signal} was never seen while the fault was in"));
                (Some(f64::from(u8::from(seen))), note)
            })
            .collect();
        out.push(verdict(judged, samples));
    }
    out
}

/// Whether `v` is a verdict on what the fault must cause.
pub fn is_impact(v: &SloVerdict) -> bool {
    v.slo.starts_with(IMPACT)
}

/// The impact's own verdict line: `felt`, with what showed it, or `NOT
/// felt`, with what did not; `None` without `expect.impact`.
pub fn impact_line(verdicts: &[SloVerdict]) -> Option<(bool, String)> {
    let impact: Vec<&SloVerdict> = verdicts.iter().filter(|v| is_impact(v)).collect();
    if impact.is_empty() {
        return None;
    }
    let felt = impact.iter().all(|v| v.met);
    let parts: Vec<String> = impact
        .iter()
        .filter(|v| felt || !v.met)
        .map(|v| {
            let name = v.slo.trim_start_matches(IMPACT);
            match name.strip_prefix("signal/") {
                Some(signal) if v.met => format!("{signal} seen"),
                Some(signal) => format!("{signal} never seen"),
                None => format!("{name} {}: {}", v.target_text(), v.actual_text()),
            }
        })
        .collect();
    Some(if felt {
        (true, format!("impact felt: {}", parts.join("; ")))
    } else {
        (
            false,
            format!(
                "impact NOT felt: {}; the fault did not bite, so this run proves nothing",
                parts.join("; ")
            ),
        )
    })
}

/// The verdict on a latency bound: its percentile of the canary's checks
/// over the window, in milliseconds, or as a multiple of the same
/// percentile over the baseline window. `name` is `latency` for the SLO,
/// `impact/latency` for the impact.
pub fn latency_verdict<'a>(
    name: &str,
    bound: &LatencyBound,
    target: LatencyTarget,
    pct: Percentile,
    trials: impl Iterator<Item = Option<&'a measurement::LatencyMeasurement>>,
) -> SloVerdict {
    let p = bound.percentile;
    let (unit, comparison, target_value) = match target {
        LatencyTarget::AtMost(d) => (Unit::Ms, Comparison::AtMost, d.as_secs_f64() * 1000.0),
        LatencyTarget::AtLeast(d) => (Unit::Ms, Comparison::AtLeast, d.as_secs_f64() * 1000.0),
        LatencyTarget::AtMostTimes(f) => (Unit::Factor, Comparison::AtMost, f),
        LatencyTarget::AtLeastTimes(f) => (Unit::Factor, Comparison::AtLeast, f),
    };
    let judged = Judged {
        slo: format!("{name}/{p}"),
        unit,
        comparison,
        target: target_value,
        percentile: pct,
    };
    let samples = trials
        .map(|m| match m {
            Some(m) => latency_sample(m, p.value(), target.relative()),
            None => (
                None,
                Some("not measured (the trial ended before injection)".into()),
            ),
        })
        .collect();
    verdict(judged, samples)
}

/// A latency trial's number and what explains it.
fn latency_sample(
    m: &measurement::LatencyMeasurement,
    p: f64,
    relative: bool,
) -> (Option<f64>, Option<String>) {
    let ms = |v: f64| format_duration(Duration::from_micros((v * 1000.0).max(0.0).round() as u64));
    let in_window = |w: &measurement::LatencyWindow, what: &str| -> Result<f64, String> {
        if let Some(e) = &w.error {
            return Err(format!("canary {} over the {what}: {e}", m.canary));
        }
        w.percentile_ms(p)
            .ok_or_else(|| format!("canary {} made no checks over the {what}", m.canary))
    };
    let window_name = format!("{} window", m.over);
    let value = match in_window(&m.window, &window_name) {
        Ok(v) => v,
        Err(e) => return (None, Some(e)),
    };
    let described = format!(
        "canary {}: p{p} {} over {} checks in the {window_name}",
        m.canary,
        ms(value),
        m.window.count
    );
    if !relative {
        return (Some(value), Some(described));
    }
    let Some(baseline) = &m.baseline else {
        return (None, Some("the baseline window was not measured".into()));
    };
    match in_window(baseline, "baseline window") {
        Ok(b) if b > 0.0 => (
            Some(value / b),
            Some(format!(
                "{described}, against {} over {} checks in the baseline window",
                ms(b),
                baseline.count
            )),
        ),
        Ok(_) => (
            None,
            Some(format!(
                "canary {}: the baseline window's latency is zero; nothing to compare with",
                m.canary
            )),
        ),
        Err(e) => (None, Some(e)),
    }
}

/// An SLO's identity and target.
struct Judged {
    slo: String,
    unit: Unit,
    comparison: Comparison,
    target: f64,
    percentile: Percentile,
}

impl Judged {
    fn duration(slo: &str, target: Duration, percentile: Percentile) -> Self {
        Self {
            slo: slo.into(),
            unit: Unit::Ms,
            comparison: Comparison::AtMost,
            target: target.as_secs_f64() * 1000.0,
            percentile,
        }
    }
}

fn condition_judged(c: &ConditionSlo, percentile: Percentile) -> Judged {
    let target = match c.must {
        ConditionMust::Hold => c.tolerance.map(|t| t.get()).unwrap_or_default(),
        ConditionMust::BecomeTrue => c.within.map(|t| t.get()).unwrap_or_default(),
    };
    Judged::duration(&format!("condition/{}", c.name), target, percentile)
}

/// A condition trial's number: time false (hold) or time to turn true (becomeTrue).
fn condition_sample(
    c: &ConditionSlo,
    m: Option<&measurement::ConditionMeasurement>,
) -> (Option<f64>, Option<String>) {
    let Some(m) = m else {
        return (
            None,
            Some("not measured (the trial ended before injection)".into()),
        );
    };
    if let Some(e) = &m.error {
        return (None, Some(format!("{}: {e}", m.object)));
    }
    match c.must {
        ConditionMust::Hold => {
            let note = m.false_spans.first().map(|s| {
                format!(
                    "`{}` was false for {} in total (first {}: {})",
                    m.expr,
                    format_duration(Duration::from_millis(m.false_ms)),
                    after(m.from, s.from),
                    s.values
                )
            });
            (Some(m.false_ms as f64), note)
        }
        ConditionMust::BecomeTrue => {
            let took = match (m.from, m.became_true) {
                (Some(from), Some(at)) => Duration::try_from(at.duration_since(from))
                    .ok()
                    .map(|d| d.as_secs_f64() * 1000.0),
                _ => None,
            };
            let note = took.is_none().then(|| {
                let last = m
                    .false_spans
                    .last()
                    .map(|s| format!(" (last read: {})", s.values))
                    .unwrap_or_default();
                format!("`{}` never held{last}", m.expr)
            });
            (took, note)
        }
    }
}

fn availability_note(m: &measurement::AvailabilityMeasurement) -> Option<String> {
    if let Some(e) = &m.error {
        return Some(format!("canary {}: {e}", m.canary));
    }
    if m.total == 0 {
        return Some(format!(
            "canary {} made no checks in the fault window",
            m.canary
        ));
    }
    let errors: Vec<String> = m
        .pods
        .iter()
        .filter(|p| p.ok < p.total)
        .map(|p| {
            let last = p
                .last_error
                .as_deref()
                .map(|e| format!(", last error: {e}"))
                .unwrap_or_default();
            format!("{} {}/{} ok{last}", p.pod, p.ok, p.total)
        })
        .collect();
    Some(format!(
        "canary {}: {}/{} checks ok{}",
        m.canary,
        m.ok,
        m.total,
        if errors.is_empty() {
            String::new()
        } else {
            format!(" ({})", errors.join("; "))
        }
    ))
}

fn blast_note(m: &measurement::BlastRadiusMeasurement) -> Option<String> {
    if let Some(e) = &m.error {
        return Some(format!("blast radius not measured: {e}"));
    }
    if m.affected.is_empty() {
        return None;
    }
    Some(
        m.affected
            .iter()
            .map(|d| {
                format!(
                    "{} left steady state {} ({}){}",
                    d.workload,
                    after(m.from, d.left),
                    d.reason,
                    match d.back {
                        Some(b) => format!(", steady again {}", after(m.from, b)),
                        None => ", not steady again before the window closed".into(),
                    }
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
    )
}

/// `9.0s after injection` (or the timestamp, without a window start).
fn after(from: Option<jiff::Timestamp>, at: jiff::Timestamp) -> String {
    match from.and_then(|f| Duration::try_from(at.duration_since(f)).ok()) {
        Some(d) => format!("{} after injection", format_duration(d)),
        None => format!("at {at}"),
    }
}

fn verdict(judged: Judged, trials: Vec<(Option<f64>, Option<String>)>) -> SloVerdict {
    let Judged {
        slo,
        unit,
        comparison,
        target,
        percentile,
    } = judged;
    let samples: Vec<Option<f64>> = trials.iter().map(|(s, _)| *s).collect();
    let trials_met: Vec<bool> = samples
        .iter()
        .map(|s| s.is_some_and(|v| comparison.meets(v, target)))
        .collect();
    let notes = trials
        .iter()
        .zip(&trials_met)
        .enumerate()
        .filter(|(_, (_, met))| !**met)
        .filter_map(|(i, ((_, note), _))| note.as_ref().map(|n| format!("trial {}: {n}", i + 1)))
        .collect();
    let actual = at_percentile(&samples, percentile, comparison);
    let flaky =
        trials_met.len() > 1 && trials_met.iter().any(|m| *m) && trials_met.iter().any(|m| !*m);
    SloVerdict {
        slo,
        unit,
        comparison,
        target,
        percentile,
        met: actual.is_some_and(|a| comparison.meets(a, target)),
        actual,
        spread: spread(&samples),
        samples,
        trials_met,
        flaky,
        notes,
    }
}

/// The sample at nearest rank `ceil(fraction × n)`, counting from the best
/// trial; missing samples rank worst (and yield `None` when picked).
fn at_percentile(samples: &[Option<f64>], p: Percentile, comparison: Comparison) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut ranked = samples.to_vec();
    ranked.sort_by(|a, b| match (a, b) {
        (Some(x), Some(y)) => comparison.better(*x, *y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    let rank = (p.fraction() * ranked.len() as f64 - 1e-9).ceil() as usize;
    ranked[rank.clamp(1, ranked.len()) - 1]
}

fn spread(samples: &[Option<f64>]) -> Option<Spread> {
    let mut present: Vec<f64> = samples.iter().flatten().copied().collect();
    if present.is_empty() {
        return None;
    }
    present.sort_by(f64::total_cmp);
    let median = present[present.len().div_ceil(2) - 1];
    Some(Spread {
        min: present[0],
        median,
        max: present[present.len() - 1],
    })
}

/// Nearest-rank percentile of durations (`p` in 0..=100); `None` for no samples.
pub fn percentile(samples: &[Duration], p: f64) -> Option<Duration> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// JSON numbers: whole values as integers (milliseconds, counts), others as floats.
mod number {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.fract() == 0.0 && *v >= 0.0 && *v < 9.0e15 {
            s.serialize_u64(*v as u64)
        } else {
            s.serialize_f64(*v)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        f64::deserialize(d)
    }
}

mod number_opt {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => super::number::serialize(v, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        Option::<f64>::deserialize(d)
    }
}

mod number_vec {
    use serde::ser::SerializeSeq;
    use serde::{Deserialize, Deserializer, Serializer};

    struct Num(f64);

    impl serde::Serialize for Num {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            super::number::serialize(&self.0, s)
        }
    }

    pub fn serialize<S: Serializer>(v: &[Option<f64>], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(v.len()))?;
        for item in v {
            seq.serialize_element(&item.map(Num))?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Option<f64>>, D::Error> {
        Vec::<Option<f64>>::deserialize(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slo::measurement::{
        AvailabilityMeasurement, BlastRadiusMeasurement, ConditionMeasurement, Disturbance,
        FalseSpan,
    };
    use rstest::rstest;

    fn secs(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|s| Duration::from_secs(*s)).collect()
    }

    fn ts(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    #[rstest]
    #[case(&[5], 95.0, 5)]
    #[case(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 95.0, 10)]
    #[case(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 50.0, 5)]
    #[case(&[10, 1, 5], 100.0, 10)]
    #[case(&[10, 1, 5], 0.0, 1)]
    fn nearest_rank_percentiles(#[case] samples: &[u64], #[case] p: f64, #[case] expected: u64) {
        assert_eq!(
            percentile(&secs(samples), p),
            Some(Duration::from_secs(expected))
        );
    }

    fn judged(target_ms: f64, p: Percentile) -> Judged {
        Judged {
            slo: "detectWithin".into(),
            unit: Unit::Ms,
            comparison: Comparison::AtMost,
            target: target_ms,
            percentile: p,
        }
    }

    fn plain(samples: &[Option<f64>]) -> Vec<(Option<f64>, Option<String>)> {
        samples.iter().map(|s| (*s, None)).collect()
    }

    #[rstest]
    #[case(&[Some(4.0)], Percentile::P95, Some(4.0), true, false)]
    #[case(&[Some(5.0)], Percentile::P95, Some(5.0), true, false)]
    #[case(&[Some(8.0)], Percentile::P95, Some(8.0), false, false)]
    #[case(&[Some(1.0), None], Percentile::P95, None, false, true)]
    #[case(&[Some(1.0), None], Percentile::P50, Some(1.0), true, true)]
    // 20 trials, one slow: p95 (rank 19) forgives it, max does not.
    #[case(&[Some(1.0); 19].iter().copied().chain([Some(9.0)]).collect::<Vec<_>>(), Percentile::P95, Some(1.0), true, true)]
    #[case(&[Some(1.0); 19].iter().copied().chain([Some(9.0)]).collect::<Vec<_>>(), Percentile::Max, Some(9.0), false, true)]
    // 10 trials, one slow: p95 is rank 10, the slow one.
    #[case(&[Some(1.0); 9].iter().copied().chain([Some(9.0)]).collect::<Vec<_>>(), Percentile::P95, Some(9.0), false, true)]
    #[case(&[Some(3.0), Some(1.0), Some(2.0), Some(4.0)], Percentile::P50, Some(2.0), true, false)]
    fn judges_on_the_chosen_percentile(
        #[case] samples: &[Option<f64>],
        #[case] p: Percentile,
        #[case] actual: Option<f64>,
        #[case] met: bool,
        #[case] flaky: bool,
    ) {
        let v = verdict(judged(5.0, p), plain(samples));
        assert_eq!(v.actual, actual);
        assert_eq!(v.met, met);
        assert_eq!(v.flaky, flaky);
    }

    #[test]
    fn availability_percentiles_count_from_the_best_trial() {
        let judged = Judged {
            slo: "availability".into(),
            unit: Unit::Ratio,
            comparison: Comparison::AtLeast,
            target: 0.95,
            percentile: Percentile::P50,
        };
        let v = verdict(judged, plain(&[Some(0.99), Some(0.90), Some(0.97)]));
        assert_eq!(v.actual, Some(0.97));
        assert!(v.met);
        assert!(v.flaky);
        assert_eq!(v.trials_met, vec![true, false, true]);
    }

    #[test]
    fn spread_is_min_median_max_of_measured_trials() {
        let v = verdict(
            judged(5000.0, Percentile::P95),
            plain(&[Some(3000.0), None, Some(1000.0), Some(9000.0)]),
        );
        assert_eq!(
            v.spread,
            Some(Spread {
                min: 1000.0,
                median: 3000.0,
                max: 9000.0
            })
        );
        assert_eq!(v.spread_text().unwrap(), "1.0s / 3.0s / 9.0s");
    }

    #[rstest]
    #[case(vec![Some(4200.0)], 1.0, "detectWithin 1ms: 4.2s — missed by 4.2s")]
    #[case(vec![Some(4200.0)], 5000.0, "detectWithin 5.0s: 4.2s (met)")]
    #[case(vec![None], 5000.0, "detectWithin 5.0s: never happened — missed")]
    #[case(
        vec![Some(4000.0), Some(6000.0)],
        5000.0,
        "detectWithin 5.0s (p95 of 2): 6.0s — missed by 1.0s; spread 4.0s / 4.0s / 6.0s; flaky: met in 1 of 2 trials"
    )]
    fn a_verdict_says_by_how_much(
        #[case] samples: Vec<Option<f64>>,
        #[case] target: f64,
        #[case] expected: &str,
    ) {
        let v = verdict(judged(target, Percentile::P95), plain(&samples));
        assert_eq!(v.describe(), expected);
    }

    #[test]
    fn notes_explain_only_the_trials_that_missed() {
        let v = verdict(
            judged(5.0, Percentile::P95),
            vec![
                (Some(1.0), Some("fine".into())),
                (Some(9.0), Some("slow".into())),
            ],
        );
        assert_eq!(v.notes, vec!["trial 2: slow".to_string()]);
    }

    fn spec(yaml: &str) -> SloSpec {
        serde_yaml::from_str(&format!("detectWithin: 30s\nrecoverWithin: 60s\n{yaml}")).unwrap()
    }

    #[test]
    fn judges_availability_blast_radius_and_conditions() {
        let spec = spec(
            r#"
availability: {canary: {selector: app=web-canary}, atLeast: "95%"}
blastRadius: {}
conditions:
  - {name: serving, object: {apiVersion: apps/v1, kind: Deployment, name: web}, expression: object.status.availableReplicas >= 1, tolerance: 2s}
  - {name: alert, object: {apiVersion: v1, kind: ConfigMap, name: alerts}, expression: object.data.firing == "true", must: becomeTrue, within: 10s}
"#,
        );
        let marks = Marks {
            injected: Some(ts("2026-01-01T00:00:00Z")),
            detected: Some(ts("2026-01-01T00:00:04Z")),
            reverted: Some(ts("2026-01-01T00:00:05Z")),
            recovered: Some(ts("2026-01-01T00:00:20Z")),
            ..Marks::default()
        };
        let measurements = Measurements {
            availability: Some(AvailabilityMeasurement {
                canary: "app=web-canary -n shop".into(),
                ok: 90,
                total: 100,
                ..AvailabilityMeasurement::default()
            }),
            latency: None,
            impact: None,
            blast_radius: Some(BlastRadiusMeasurement {
                watched: 5,
                affected: vec![Disturbance {
                    workload: "deployment/coredns -n kube-system".into(),
                    left: ts("2026-01-01T00:00:03Z"),
                    back: None,
                    reason: "1/2 ready".into(),
                }],
                ..BlastRadiusMeasurement::default()
            }),
            conditions: vec![
                ConditionMeasurement {
                    name: "serving".into(),
                    expr: "object.status.availableReplicas >= 1".into(),
                    false_ms: 1500,
                    ..ConditionMeasurement::default()
                },
                ConditionMeasurement {
                    name: "alert".into(),
                    expr: "object.data.firing == \"true\"".into(),
                    from: marks.injected,
                    became_true: Some(ts("2026-01-01T00:00:12Z")),
                    false_spans: vec![FalseSpan {
                        from: ts("2026-01-01T00:00:00Z"),
                        to: Some(ts("2026-01-01T00:00:12Z")),
                        values: "object.data.firing is not set".into(),
                    }],
                    ..ConditionMeasurement::default()
                },
            ],
        };
        let verdicts = evaluate(
            &spec,
            &[TrialData {
                marks: &marks,
                measurements: &measurements,
            }],
        );
        let by_name = |n: &str| verdicts.iter().find(|v| v.slo == n).unwrap();
        assert!(by_name("detectWithin").met);
        assert!(by_name("recoverWithin").met);
        let a = by_name("availability");
        assert!(!a.met);
        assert_eq!(a.describe(), "availability ≥ 95%: 90% — missed by 5%");
        assert_eq!(
            a.notes,
            vec!["trial 1: canary app=web-canary -n shop: 90/100 checks ok".to_string()]
        );
        let b = by_name("blastRadius");
        assert!(!b.met);
        assert_eq!(b.actual, Some(1.0));
        assert!(
            b.notes[0].contains("deployment/coredns -n kube-system left steady state"),
            "{:?}",
            b.notes
        );
        assert!(by_name("condition/serving").met);
        let alert = by_name("condition/alert");
        assert_eq!(alert.actual, Some(12000.0));
        assert!(!alert.met);
    }

    fn latency_window(fast: u64, slow: u64) -> measurement::LatencyWindow {
        measurement::LatencyWindow {
            count: fast + slow,
            sum_ms: fast as f64 * 1.5 + slow as f64 * 440.0,
            buckets: vec![
                measurement::LatencyBucket {
                    gt_us: 1000,
                    le_us: Some(2000),
                    count: fast,
                },
                measurement::LatencyBucket {
                    gt_us: 400_000,
                    le_us: Some(476_000),
                    count: slow,
                },
            ],
            ..measurement::LatencyWindow::default()
        }
    }

    #[rstest]
    // 20% slow checks: p95 lands in the slow bucket.
    #[case(
        "atMost: 300ms",
        80,
        20,
        false,
        "latency/p95 300ms: 457ms — missed by 157ms"
    )]
    #[case("atMost: 500ms", 80, 20, true, "latency/p95 500ms: 457ms (met)")]
    // Relative: p95 against the baseline window's 1.95ms.
    #[case(
        "atMostTimes: 3",
        80,
        20,
        false,
        "latency/p95 ≤ 3.0×: 234.4× — missed by 231.4×"
    )]
    #[case("atMostTimes: 3", 100, 0, true, "latency/p95 ≤ 3.0×: 1.0× (met)")]
    fn judges_latency_absolute_or_against_the_baseline(
        #[case] bound: &str,
        #[case] fast: u64,
        #[case] slow: u64,
        #[case] met: bool,
        #[case] line: &str,
    ) {
        let spec = spec(&format!(
            "latency: {{canary: {{selector: app=http-canary}}, percentile: p95, {bound}}}"
        ));
        let measurements = Measurements {
            latency: Some(measurement::LatencyMeasurement {
                canary: "app=http-canary -n shop".into(),
                over: crate::experiment::slo::Window::Fault,
                window: latency_window(fast, slow),
                baseline: Some(latency_window(100, 0)),
            }),
            ..Measurements::default()
        };
        let marks = Marks::default();
        let verdicts = evaluate(
            &spec,
            &[TrialData {
                marks: &marks,
                measurements: &measurements,
            }],
        );
        let v = verdicts.iter().find(|v| v.slo == "latency/p95").unwrap();
        assert_eq!(v.met, met, "{v:?}");
        assert_eq!(v.describe(), line);
        if !met {
            assert!(
                v.notes[0].contains("p95 457ms over 100 checks in the fault window"),
                "{:?}",
                v.notes
            );
        }
    }

    use crate::vocab::SignalKind;

    fn impact(yaml: &str) -> Impact {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn felt(ok: u64, total: u64, signals: &[SignalKind]) -> Measurements {
        Measurements {
            impact: Some(measurement::ImpactMeasurements {
                availability: Some(AvailabilityMeasurement {
                    canary: "app=http-canary -n shop".into(),
                    ok,
                    total,
                    ..AvailabilityMeasurement::default()
                }),
                latency: None,
                signals: signals.to_vec(),
            }),
            ..Measurements::default()
        }
    }

    #[rstest]
    // The canary saw the outage and the signal showed: felt.
    #[case(2, 40, &[SignalKind::CanaryFailing], true, "impact felt: availability ≤ 10%: 5%; CanaryFailing seen")]
    // The fault was harmless: every check passed, no signal.
    #[case(40, 40, &[], false, "impact NOT felt: availability ≤ 10%: 100%; CanaryFailing never seen; the fault did not bite, so this run proves nothing")]
    // Half felt is not felt.
    #[case(2, 40, &[], false, "impact NOT felt: CanaryFailing never seen; the fault did not bite, so this run proves nothing")]
    fn the_impact_is_judged_on_what_the_fault_caused(
        #[case] ok: u64,
        #[case] total: u64,
        #[case] signals: &[SignalKind],
        #[case] all_felt: bool,
        #[case] line: &str,
    ) {
        let i = impact(
            "availability: {canary: {selector: app=http-canary}, atMost: \"10%\"}\nsignals: [CanaryFailing]",
        );
        let marks = Marks::default();
        let m = felt(ok, total, signals);
        let verdicts = evaluate_impact(
            &i,
            Percentile::P95,
            &[TrialData {
                marks: &marks,
                measurements: &m,
            }],
        );
        assert_eq!(verdicts.len(), 2);
        assert!(verdicts.iter().all(is_impact));
        assert_eq!(verdicts.iter().all(|v| v.met), all_felt, "{verdicts:#?}");
        assert_eq!(impact_line(&verdicts), Some((all_felt, line.to_string())));
    }

    #[test]
    fn an_impact_never_measured_is_not_felt() {
        let i = impact("latency: {canary: {selector: app=c}, atLeastTimes: 3}");
        let marks = Marks::default();
        let none = Measurements::default();
        let v = evaluate_impact(
            &i,
            Percentile::P95,
            &[TrialData {
                marks: &marks,
                measurements: &none,
            }],
        );
        assert_eq!(v[0].slo, "impact/latency/p95");
        assert!(!v[0].met);
        assert_eq!(impact_line(&[]), None, "no impact asked, no line");
    }

    #[test]
    fn latency_without_checks_is_a_miss_with_a_reason() {
        let spec = spec("latency: {canary: {selector: app=c}, atMost: 1s}");
        let measurements = Measurements {
            latency: Some(measurement::LatencyMeasurement {
                canary: "app=c -n shop".into(),
                over: crate::experiment::slo::Window::Hold,
                window: measurement::LatencyWindow {
                    error: Some("no hold window: the fault was never held".into()),
                    ..Default::default()
                },
                baseline: None,
            }),
            ..Measurements::default()
        };
        let marks = Marks::default();
        let v = evaluate(
            &spec,
            &[TrialData {
                marks: &marks,
                measurements: &measurements,
            }],
        );
        let l = v.iter().find(|v| v.slo == "latency/p95").unwrap();
        assert!(!l.met);
        assert_eq!(l.actual, None);
        assert!(
            l.notes[0].contains("over the hold window: no hold window"),
            "{:?}",
            l.notes
        );
    }

    #[test]
    fn a_trial_that_never_reached_injection_is_not_measured() {
        let spec = spec("availability: {canary: {selector: app=c}, atLeast: \"99%\"}");
        let marks = Marks::default();
        let none = Measurements::default();
        let v = evaluate(
            &spec,
            &[TrialData {
                marks: &marks,
                measurements: &none,
            }],
        );
        let a = v.iter().find(|v| v.slo == "availability").unwrap();
        assert_eq!(a.actual, None);
        assert!(!a.met);
        assert!(a.notes[0].contains("not measured"));
    }

    #[rstest]
    #[case(4200.0, "4200")]
    #[case(0.955, "0.955")]
    #[case(1.0, "1")]
    fn whole_numbers_serialize_as_integers(#[case] v: f64, #[case] json: &str) {
        let verdict = SloVerdict {
            actual: Some(v),
            ..verdict(judged(5.0, Percentile::P95), plain(&[Some(v)]))
        };
        let value = serde_json::to_value(&verdict).unwrap();
        assert_eq!(value["actual"].to_string(), json);
        let back: SloVerdict = serde_json::from_value(value).unwrap();
        assert_eq!(back.actual, Some(v));
    }
}
