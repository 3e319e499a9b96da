//! Compares two run reports — before and after an upgrade, a configuration
//! change, or any two runs — per experiment and per SLO, and says what
//! regressed beyond the noise the repeats themselves show.
//!
//! ```text
//! RunReport (before) ─┐
//!                     ├─► compare() ─► Comparison: per experiment, per SLO and per signal
//! RunReport (after) ──┘                 regressions, errors, improvements, erratic, …, unchanged
//! ```
//!
//! What counts as a regression:
//! - an SLO verdict that was met before and is missed after, always;
//! - an SLO's per-trial numbers (time to detect, time to recover,
//!   availability, blast radius, conditions) worse beyond the noise rule of
//!   [`noise`] (size floor, then a Mann-Whitney U test or non-overlapping
//!   ranges);
//! - an expected signal that showed in every trial before and in no trial
//!   after (a regression in detection: the fault no longer shows the way it
//!   did).
//!
//! The opposite moves are improvements. An experiment that errored or was
//! interrupted on either side is an `error`: harness trouble is never
//! judged as a finding. Experiments present on one side only are listed as
//! such. The experiments come out ordered by [`Change`]: regressions first,
//! then errors, improvements, erratic ones, one-sided ones, unchanged.
//!
//! The types serialize as the JSON comparison
//! ([`COMPARISON_SCHEMA_VERSION`]); the report module renders them.
//!
//! ```no_run
//! use breakfix::compare::{compare, read_report, CompareOptions};
//! # fn main() -> Result<(), breakfix::compare::CompareError> {
//! let before = read_report("before.json".as_ref())?;
//! let after = read_report("after.json".as_ref())?;
//! let comparison = compare(&before, &after, &CompareOptions::default())?
//!     .with_labels("v1.34.4", "v1.35.4");
//! for e in comparison.experiments.iter().take_while(|e| e.change == breakfix::compare::Change::Regression) {
//!     println!("{}: {}", e.name, e.reasons.join("; "));
//! }
//! # Ok(())
//! # }
//! ```

pub mod noise;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::experiment::slo::Percentile;
use crate::journal::ClusterRecord;
use crate::runner::outcome::REPORT_SCHEMA_VERSION;
use crate::runner::{ExperimentReport, Outcome, RunReport, TrialReport};
use crate::slo::{Comparison as Direction, SloVerdict, Spread, Unit};
use crate::timeline::EntryKind;
use crate::vocab::SignalKind;
pub use noise::{Delta, NoiseTest};

/// Schema version of the JSON comparison (`schema` field).
pub const COMPARISON_SCHEMA_VERSION: &str = "breakfix.dev/comparison/v1";

/// Errors reading reports for a comparison or checking its options.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// A report file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// A report file is not valid JSON or not a report's shape.
    #[error("{path}:{line}:{column}: not a breakfix JSON report: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The line of the problem.
        line: usize,
        /// The column of the problem.
        column: usize,
        /// What the JSON reader said.
        message: String,
    },
    /// A report written with another schema version.
    #[error("{path} has report schema `{found}`; this breakfix reads `{REPORT_SCHEMA_VERSION}`")]
    Schema {
        /// The file.
        path: PathBuf,
        /// The schema it names.
        found: String,
    },
    /// A JSON file without a `schema` field.
    #[error("{path} has no `schema` field: it is not a report written by `breakfix run --json`")]
    NoSchema {
        /// The file.
        path: PathBuf,
    },
    /// A comparison option is out of range.
    #[error("comparison option `{name}` is {value}; it must be {expected}")]
    Option {
        /// The option's name.
        name: &'static str,
        /// The value given.
        value: f64,
        /// What the value must be.
        expected: &'static str,
    },
}

impl CompareError {
    /// What to do about it, for the command line's `= help:` line.
    pub fn help(&self) -> Option<&'static str> {
        match self {
            Self::Read { .. } => {
                Some("check the path; reports are written by `breakfix run --json FILE`")
            }
            Self::Parse { .. } | Self::NoSchema { .. } => Some(
                "pass the file `breakfix run --json` wrote (not the JUnit, Markdown or HTML report)",
            ),
            Self::Schema { .. } => Some(
                "compare reports written by the same breakfix version, or re-run the older side with this one",
            ),
            Self::Option { .. } => None,
        }
    }
}

/// Reads a JSON report written by `breakfix run --json`, checking its
/// schema version before its shape so that a report from another version
/// says so instead of failing on a field.
pub fn read_report(path: &Path) -> Result<RunReport, CompareError> {
    let text = std::fs::read_to_string(path).map_err(|source| CompareError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let parse = |e: serde_json::Error| CompareError::Parse {
        path: path.to_path_buf(),
        line: e.line(),
        column: e.column(),
        message: e
            .to_string()
            .split(" at line ")
            .next()
            .unwrap_or_default()
            .to_string(),
    };
    let value: serde_json::Value = serde_json::from_str(&text).map_err(parse)?;
    match value.get("schema").and_then(|s| s.as_str()) {
        None => {
            return Err(CompareError::NoSchema {
                path: path.to_path_buf(),
            });
        }
        Some(s) if s != REPORT_SCHEMA_VERSION => {
            return Err(CompareError::Schema {
                path: path.to_path_buf(),
                found: s.to_string(),
            });
        }
        Some(_) => {}
    }
    serde_json::from_str(&text).map_err(parse)
}

/// The noise rule's knobs; the defaults are what `breakfix compare` uses.
/// See [`noise`] for how each is applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompareOptions {
    /// Significance level of the Mann-Whitney U test.
    pub alpha: f64,
    /// Trials both sides need before the rank test is used (with two or
    /// three, the ranges must be apart by more than their spread; with one,
    /// numbers alone decide nothing). Below 4 a two-sided test at 0.05 can
    /// never be significant.
    pub min_trials: usize,
    /// Smallest relative move of a duration's median that counts (0.2 = 20%).
    pub min_change: f64,
    /// Smallest move of a duration's median that counts, in milliseconds.
    pub min_ms: f64,
    /// Smallest move of an availability median that counts (0.01 = 1 point).
    pub min_ratio: f64,
    /// Smallest move of a count (blast radius) that counts.
    pub min_count: f64,
}

impl Default for CompareOptions {
    fn default() -> Self {
        Self {
            alpha: 0.05,
            min_trials: 4,
            min_change: 0.2,
            min_ms: 500.0,
            min_ratio: 0.01,
            min_count: 1.0,
        }
    }
}

impl CompareOptions {
    /// Checks that every knob is in its range.
    pub fn validate(&self) -> Result<(), CompareError> {
        let bad = |name, value: f64, expected| {
            Err(CompareError::Option {
                name,
                value,
                expected,
            })
        };
        if !(self.alpha > 0.0 && self.alpha < 1.0) {
            return bad("alpha", self.alpha, "between 0 and 1");
        }
        for (name, value) in [
            ("minChange", self.min_change),
            ("minMs", self.min_ms),
            ("minRatio", self.min_ratio),
            ("minCount", self.min_count),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return bad(name, value, "a finite number ≥ 0");
            }
        }
        Ok(())
    }
}

/// What changed, from worst to best news; experiments are ordered by it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum Change {
    /// Worse beyond the noise, an SLO newly missed, or a signal gone.
    Regression,
    /// Could not be compared: errored or interrupted on a side.
    Error,
    /// Better beyond the noise, or an SLO newly met.
    Improvement,
    /// Moved enough to matter, but within the noise of the trials.
    Erratic,
    /// Only in the before report.
    OnlyBefore,
    /// Only in the after report.
    OnlyAfter,
    /// Nothing moved beyond the floors.
    Unchanged,
}

impl Change {
    /// `regression`, `only before`, as reports print it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Regression => "regression",
            Self::Error => "error",
            Self::Improvement => "improvement",
            Self::Erratic => "erratic",
            Self::OnlyBefore => "only before",
            Self::OnlyAfter => "only after",
            Self::Unchanged => "unchanged",
        }
    }
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which run a side of the comparison is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunInfo {
    /// How reports name this side: the run id unless the caller sets it
    /// (a file name, `v1.34.4`, `base origin/main`).
    pub label: String,
    /// The run's id.
    pub run_id: String,
    /// The cluster it ran on.
    pub cluster: ClusterRecord,
    /// When it started.
    pub started: Timestamp,
    /// When it finished.
    pub finished: Timestamp,
    /// How many experiments it ran.
    pub experiments: usize,
}

impl RunInfo {
    fn of(report: &RunReport) -> Self {
        Self {
            label: report.run_id.clone(),
            run_id: report.run_id.clone(),
            cluster: report.cluster.clone(),
            started: report.started,
            finished: report.finished,
            experiments: report.experiments.len(),
        }
    }
}

/// The whole comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Comparison {
    /// `breakfix.dev/comparison/v1`.
    pub schema: String,
    /// The run compared from.
    pub before: RunInfo,
    /// The run compared to.
    pub after: RunInfo,
    /// The thresholds the comparison used.
    pub options: CompareOptions,
    /// Ordered by [`Change`], then by name.
    pub experiments: Vec<ExperimentComparison>,
}

/// How many experiments fell in each [`Change`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    /// Experiments that got worse beyond noise.
    pub regressions: usize,
    /// Experiments that ended in an error in either run.
    pub errors: usize,
    /// Experiments that got better beyond noise.
    pub improvements: usize,
    /// Experiments too noisy to judge.
    pub erratic: usize,
    /// Experiments only the first run has.
    pub only_before: usize,
    /// Experiments only the second run has.
    pub only_after: usize,
    /// Experiments with no change beyond noise.
    pub unchanged: usize,
}

impl Comparison {
    /// Experiments per [`Change`].
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for e in &self.experiments {
            *match e.change {
                Change::Regression => &mut c.regressions,
                Change::Error => &mut c.errors,
                Change::Improvement => &mut c.improvements,
                Change::Erratic => &mut c.erratic,
                Change::OnlyBefore => &mut c.only_before,
                Change::OnlyAfter => &mut c.only_after,
                Change::Unchanged => &mut c.unchanged,
            } += 1;
        }
        c
    }

    /// Whether any experiment regressed.
    pub fn has_regressions(&self) -> bool {
        self.experiments
            .iter()
            .any(|e| e.change == Change::Regression)
    }

    /// The CLI exit code: 1 when an experiment regressed or could not be
    /// compared (as `run` exits 1 when an experiment could not run), else 0.
    pub fn exit_code(&self) -> i32 {
        let c = self.counts();
        if c.regressions > 0 || c.errors > 0 {
            1
        } else {
            0
        }
    }

    /// Sets how reports name the two sides (default: their run ids).
    pub fn with_labels(mut self, before: impl Into<String>, after: impl Into<String>) -> Self {
        self.before.label = before.into();
        self.after.label = after.into();
        self
    }
}

/// One experiment, before and after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentComparison {
    /// The experiment's name.
    pub name: String,
    /// Its fault's catalogue key.
    pub fault: String,
    /// The worst change among its SLOs, signals and outcome.
    pub change: Change,
    /// Why `change`: the lines of the parts that made it, most important first.
    pub reasons: Vec<String>,
    /// How it did in the first run; `None` when it did not run there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<ExperimentSide>,
    /// How it did in the second run; `None` when it did not run there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<ExperimentSide>,
    /// Per SLO, in the order the reports list them (before's first).
    pub slos: Vec<SloComparison>,
    /// Per expected signal that showed on either side.
    pub signals: Vec<SignalComparison>,
}

/// An experiment's result on one side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentSide {
    /// Its verdict in that run.
    pub outcome: Outcome,
    /// How many trials it ran.
    pub trials: usize,
    /// Whether its verdict was flaky.
    pub flaky: bool,
    /// Trial errors, `trial 2 SteadyState: …`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// One SLO, before and after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SloComparison {
    /// `detectWithin`, `recoverWithin`, `availability`, `blastRadius`, `condition/<name>`.
    pub slo: String,
    /// The unit of the measured values.
    pub unit: Unit,
    /// Whether lower or higher is better.
    pub direction: Direction,
    /// What changed, beyond noise or not.
    pub change: Change,
    /// One line: the verdict change and the numbers' move, e.g.
    /// `met → missed (60.0s at p95: 72.4s); median 3.1s → 12.4s (+9.3s, +300%): beyond the noise (Mann-Whitney p = 0.008, 5 vs 5 trials)`.
    pub reason: String,
    /// The SLO in the first run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<SloSide>,
    /// The SLO in the second run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<SloSide>,
    /// How far the verdict value moved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<Delta>,
    /// The statistical test that judged the move, when both sides had samples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<NoiseTest>,
}

/// One SLO's numbers on one side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SloSide {
    /// The SLO's target.
    pub target: f64,
    /// The percentile its verdict was taken on.
    pub percentile: Percentile,
    /// Whether it was met.
    pub met: bool,
    /// Whether it was met in some trials only.
    pub flaky: bool,
    /// The measurement the verdict was taken on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actual: Option<f64>,
    /// Nearest-rank p50 and p95 counted from the best trial (`None`: that
    /// trial measured nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p50: Option<f64>,
    /// The 95th percentile of the samples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p95: Option<f64>,
    /// Min / median / max of the measured trials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spread: Option<Spread>,
    /// Every trial's value (`None` where the trial measured nothing).
    pub samples: Vec<Option<f64>>,
}

impl SloSide {
    fn of(v: &SloVerdict) -> Self {
        let bad: Vec<f64> = v
            .samples
            .iter()
            .map(|s| match (s, v.comparison) {
                (Some(x), Direction::AtMost) => *x,
                (Some(x), Direction::AtLeast) => -*x,
                (None, _) => f64::INFINITY,
            })
            .collect();
        let value = |p| {
            noise::nearest_rank(&bad, p)
                .filter(|b| b.is_finite())
                .map(|b| match v.comparison {
                    Direction::AtMost => b,
                    Direction::AtLeast => -b,
                })
        };
        Self {
            target: v.target,
            percentile: v.percentile,
            met: v.met,
            flaky: v.flaky,
            actual: v.actual,
            p50: value(0.5),
            p95: value(0.95),
            spread: v.spread,
            samples: v.samples.clone(),
        }
    }
}

/// An expected signal: in how many trials it showed on each side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignalComparison {
    /// The signal.
    pub signal: SignalKind,
    /// Whether it shows more or less often than before.
    pub change: Change,
    /// Trials (that reached injection) in which it showed, before.
    pub before: SignalCount,
    /// How often it showed in the second run.
    pub after: SignalCount,
    /// Why the change counts (or does not), for the report.
    pub reason: String,
}

/// `shown` of `trials`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignalCount {
    /// Trials that saw the signal.
    pub shown: usize,
    /// Trials in the run.
    pub trials: usize,
}

/// Compares two reports experiment by experiment (matched by name).
pub fn compare(
    before: &RunReport,
    after: &RunReport,
    options: &CompareOptions,
) -> Result<Comparison, CompareError> {
    options.validate()?;
    let by_name = |r: &'_ RunReport| -> BTreeMap<String, usize> {
        r.experiments
            .iter()
            .enumerate()
            .map(|(i, e)| (e.name.clone(), i))
            .collect()
    };
    let (b, a) = (by_name(before), by_name(after));
    let names: BTreeSet<&String> = b.keys().chain(a.keys()).collect();
    let mut experiments: Vec<ExperimentComparison> = names
        .into_iter()
        .map(|name| {
            let eb = b.get(name).map(|&i| &before.experiments[i]);
            let ea = a.get(name).map(|&i| &after.experiments[i]);
            experiment(name, eb, ea, options)
        })
        .collect();
    experiments.sort_by(|x, y| x.change.cmp(&y.change).then_with(|| x.name.cmp(&y.name)));
    Ok(Comparison {
        schema: COMPARISON_SCHEMA_VERSION.into(),
        before: RunInfo::of(before),
        after: RunInfo::of(after),
        options: options.clone(),
        experiments,
    })
}

fn side(e: &ExperimentReport) -> ExperimentSide {
    ExperimentSide {
        outcome: e.outcome,
        trials: e.trials.len(),
        flaky: e.flaky,
        errors: e
            .trials
            .iter()
            .filter_map(|t| {
                t.error
                    .as_ref()
                    .map(|err| format!("trial {} {:?}: {}", t.trial, err.phase, err.message))
            })
            .collect(),
    }
}

fn outcome_word(o: Outcome) -> &'static str {
    match o {
        Outcome::Passed => "passed",
        Outcome::Failed => "failed",
        Outcome::Error => "errored",
        Outcome::Interrupted => "was interrupted",
    }
}

fn experiment(
    name: &str,
    before: Option<&ExperimentReport>,
    after: Option<&ExperimentReport>,
    options: &CompareOptions,
) -> ExperimentComparison {
    let fault = before
        .or(after)
        .map(|e| e.fault.clone())
        .unwrap_or_default();
    let mut out = ExperimentComparison {
        name: name.to_string(),
        fault,
        change: Change::Unchanged,
        reasons: Vec::new(),
        before: before.map(side),
        after: after.map(side),
        slos: Vec::new(),
        signals: Vec::new(),
    };
    let (eb, ea) = match (before, after) {
        (Some(b), Some(a)) => (b, a),
        (Some(b), None) => {
            out.change = Change::OnlyBefore;
            out.reasons.push(format!(
                "only in the before run ({})",
                outcome_word(b.outcome)
            ));
            return out;
        }
        (None, Some(a)) => {
            out.change = Change::OnlyAfter;
            out.reasons.push(format!(
                "only in the after run ({})",
                outcome_word(a.outcome)
            ));
            return out;
        }
        (None, None) => return out,
    };
    // Harness trouble on either side is not a finding: say which side and
    // why, and judge nothing.
    let troubled =
        |e: &ExperimentReport| matches!(e.outcome, Outcome::Error | Outcome::Interrupted);
    if troubled(eb) || troubled(ea) {
        out.change = Change::Error;
        for (label, e) in [("before", eb), ("after", ea)] {
            if troubled(e) {
                let first = side(e).errors.into_iter().next().unwrap_or_default();
                out.reasons.push(
                    format!("{label}: {} {first}", outcome_word(e.outcome))
                        .trim_end()
                        .to_string(),
                );
            }
        }
        return out;
    }
    out.slos = slos(eb, ea, options);
    out.signals = signals(eb, ea, options);
    if eb.outcome != ea.outcome {
        let line = format!(
            "{} before, {} after",
            outcome_word(eb.outcome),
            outcome_word(ea.outcome)
        );
        out.reasons.push(line);
    }
    let worst = out
        .slos
        .iter()
        .map(|s| s.change)
        .chain(out.signals.iter().map(|s| s.change))
        .filter(|c| {
            matches!(
                c,
                Change::Regression | Change::Error | Change::Improvement | Change::Erratic
            )
        })
        .min()
        .unwrap_or(Change::Unchanged);
    out.change = worst;
    if worst == Change::Unchanged {
        out.reasons.clear();
        return out;
    }
    for s in out.slos.iter().filter(|s| s.change == worst) {
        out.reasons.push(format!("{}: {}", s.slo, s.reason));
    }
    for s in out.signals.iter().filter(|s| s.change == worst) {
        out.reasons.push(s.reason.clone());
    }
    out
}

fn slos(
    before: &ExperimentReport,
    after: &ExperimentReport,
    options: &CompareOptions,
) -> Vec<SloComparison> {
    let mut names: Vec<&str> = before.slos.iter().map(|s| s.slo.as_str()).collect();
    for s in &after.slos {
        if !names.contains(&s.slo.as_str()) {
            names.push(&s.slo);
        }
    }
    names
        .into_iter()
        .map(|name| {
            let vb = before.slos.iter().find(|s| s.slo == name);
            let va = after.slos.iter().find(|s| s.slo == name);
            slo(name, vb, va, options)
        })
        .collect()
}

fn slo(
    name: &str,
    before: Option<&SloVerdict>,
    after: Option<&SloVerdict>,
    options: &CompareOptions,
) -> SloComparison {
    let any = before.or(after);
    let mut out = SloComparison {
        slo: name.to_string(),
        unit: any.map(|v| v.unit).unwrap_or(Unit::Ms),
        direction: any.map(|v| v.comparison).unwrap_or(Direction::AtMost),
        change: Change::Unchanged,
        reason: String::new(),
        before: before.map(SloSide::of),
        after: after.map(SloSide::of),
        delta: None,
        test: None,
    };
    let (vb, va) = match (before, after) {
        (Some(b), Some(a)) => (b, a),
        (Some(b), None) => {
            out.change = Change::OnlyBefore;
            out.reason = format!("only judged before ({})", b.describe());
            return out;
        }
        (None, Some(a)) => {
            out.change = Change::OnlyAfter;
            out.reason = format!("only judged after ({})", a.describe());
            return out;
        }
        (None, None) => return out,
    };
    if vb.unit != va.unit || vb.comparison != va.comparison {
        out.change = Change::Error;
        out.reason = "measured differently on the two sides (unit or direction changed)".into();
        return out;
    }
    let judged = noise::judge(&vb.samples, &va.samples, vb.unit, vb.comparison, options);
    out.delta = Some(judged.delta);
    out.test = judged.test;
    let mut parts = Vec::new();
    // A verdict flip decides, whatever the noise says.
    let verdict_change = match (vb.met, va.met) {
        (true, false) => {
            parts.push(format!(
                "met → missed ({} at {}: {})",
                va.target_text(),
                va.percentile,
                va.actual_text()
            ));
            Some(Change::Regression)
        }
        (false, true) => {
            parts.push(format!(
                "missed → met ({} at {}: {})",
                va.target_text(),
                va.percentile,
                va.actual_text()
            ));
            Some(Change::Improvement)
        }
        _ => None,
    };
    if (vb.target - va.target).abs() > 1e-9 || vb.percentile != va.percentile {
        parts.push(format!(
            "target changed: {} at {} → {} at {}",
            vb.target_text(),
            vb.percentile,
            va.target_text(),
            va.percentile
        ));
    }
    parts.push(judged.reason);
    out.change = match verdict_change {
        Some(c) => c,
        None => judged.change,
    };
    out.reason = parts.join("; ");
    out
}

/// The expected signals a trial showed: its detection and any expected
/// signal on its timeline.
fn shown(trial: &TrialReport) -> BTreeSet<SignalKind> {
    let mut set: BTreeSet<SignalKind> = trial.marks.detected_signal.into_iter().collect();
    for entry in &trial.timeline.entries {
        if let EntryKind::Signal {
            observation,
            expected: true,
        } = &entry.kind
        {
            set.insert(observation.kind);
        }
    }
    set
}

fn signals(
    before: &ExperimentReport,
    after: &ExperimentReport,
    options: &CompareOptions,
) -> Vec<SignalComparison> {
    // Only trials that reached injection could show anything.
    let injected = |e: &ExperimentReport| -> Vec<BTreeSet<SignalKind>> {
        e.trials
            .iter()
            .filter(|t| t.marks.injected.is_some())
            .map(shown)
            .collect()
    };
    let (tb, ta) = (injected(before), injected(after));
    let kinds: BTreeSet<SignalKind> = tb.iter().chain(&ta).flatten().copied().collect();
    let count = |trials: &[BTreeSet<SignalKind>], k: SignalKind| SignalCount {
        shown: trials.iter().filter(|s| s.contains(&k)).count(),
        trials: trials.len(),
    };
    let others = |trials: &[BTreeSet<SignalKind>], k: SignalKind| -> String {
        let rest: BTreeSet<SignalKind> = trials
            .iter()
            .flatten()
            .copied()
            .filter(|o| *o != k)
            .collect();
        if rest.is_empty() {
            "no expected signal".into()
        } else {
            rest.iter()
                .map(|o| format!("{o} {}/{}", count(trials, *o).shown, trials.len()))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    kinds
        .into_iter()
        .map(|k| {
            let (cb, ca) = (count(&tb, k), count(&ta, k));
            let always = |c: SignalCount| c.trials > 0 && c.shown == c.trials;
            let never = |c: SignalCount| c.trials > 0 && c.shown == 0;
            let ratio = format!(
                "{}/{} trials before, {}/{} after",
                cb.shown, cb.trials, ca.shown, ca.trials
            );
            // Replaced by another expected signal in every trial after:
            // a real change only when enough trials agree (a single trial
            // may catch ErrImagePull or ImagePullBackOff first by chance).
            let replaced = ta.iter().all(|t| !t.is_empty());
            let enough = cb.trials.min(ca.trials) >= options.min_trials.max(1);
            let (change, reason) = if always(cb) && never(ca) && (enough || !replaced) {
                (
                    Change::Regression,
                    format!("signal {k} no longer shows ({ratio}; after: {})", others(&ta, k)),
                )
            } else if always(cb) && never(ca) {
                (
                    Change::Erratic,
                    format!(
                        "signal {k} no longer shows ({ratio}; after: {}), too few trials to tell a change from chance",
                        others(&ta, k)
                    ),
                )
            } else if never(cb) && always(ca) && enough {
                (Change::Improvement, format!("signal {k} now shows ({ratio})"))
            } else if (cb.shown > 0 && never(ca)) || (never(cb) && ca.shown > 0) {
                (
                    Change::Erratic,
                    format!("signal {k} showed in {ratio}: not consistent enough to judge"),
                )
            } else {
                (Change::Unchanged, format!("signal {k}: {ratio}"))
            };
            SignalComparison {
                signal: k,
                change,
                before: cb,
                after: ca,
                reason,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
