//! Renderers of a [`RunReport`]: the terminal summary, JSON, JUnit XML,
//! Markdown (for a PR comment) and a self-contained HTML page. Every
//! renderer reads only the report; the runner never formats.

pub mod comparison;
#[cfg(test)]
pub(crate) mod fixture;
pub mod html;
pub mod junit;
pub mod markdown;
pub mod merge;
pub mod progress;
pub mod schedule;
pub mod upgrade;

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use crate::runner::{ExperimentReport, Outcome, RunReport};
use crate::vocab::duration::format_duration;

/// Errors writing report files.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A report file could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The report could not be encoded.
    #[error("cannot encode report: {0}")]
    Encode(String),
}

/// Writes `text` to `path` atomically (temp file then rename), readable by
/// its owner only (0600): reports quote what the cluster showed (event
/// messages, the values condition SLOs read), which may be object data.
pub fn write_file(path: &Path, text: &str) -> Result<(), ReportError> {
    let io = |source| ReportError::Io {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    crate::state::write_private(path, text.as_bytes()).map_err(io)
}

/// The JSON report (schema `breakfix.dev/report/v1`).
pub fn to_json(report: &RunReport) -> Result<String, ReportError> {
    serde_json::to_string_pretty(report).map_err(|e| ReportError::Encode(e.to_string()))
}

/// The word a report shows for an outcome.
pub fn outcome_word(o: Outcome) -> &'static str {
    match o {
        Outcome::Passed => "PASS",
        Outcome::Failed => "FAIL",
        Outcome::Error => "ERROR",
        Outcome::Interrupted => "INTERRUPTED",
    }
}

/// The nearest-rank p95 of the trials' harness latencies (signal in the
/// cluster → breakfix saw it).
pub fn harness_latency_p95(e: &ExperimentReport) -> Option<Duration> {
    let latencies: Vec<Duration> = e
        .trials
        .iter()
        .filter_map(|t| t.marks.harness_latency())
        .collect();
    crate::slo::percentile(&latencies, 95.0)
}

/// The verdict on a timing SLO as a duration (the percentile's trial).
pub fn verdict_duration(e: &ExperimentReport, slo: &str) -> Option<Duration> {
    e.slos
        .iter()
        .find(|s| s.slo == slo)
        .and_then(|s| s.actual)
        .map(|ms| Duration::from_millis(ms.max(0.0).round() as u64))
}

/// The summary table printed at the end of a run.
pub fn summary(report: &RunReport) -> String {
    let mut out = String::new();
    let width = report
        .experiments
        .iter()
        .map(|e| e.name.len())
        .max()
        .unwrap_or(10)
        .max(10);
    let signal = |e: &ExperimentReport| {
        e.trials
            .last()
            .and_then(|t| t.marks.detected_signal)
            .map(|s| s.to_string())
            .unwrap_or_else(|| "-".into())
    };
    let signal_width = report
        .experiments
        .iter()
        .map(|e| signal(e).len())
        .max()
        .unwrap_or(0)
        .max(16);
    let _ = writeln!(
        out,
        "\n{:<width$}  {:<11}  {:<signal_width$}  {:>9}  {:>9}  {:>9}",
        "EXPERIMENT", "RESULT", "SIGNAL", "DETECT", "RECOVER", "LATENCY"
    );
    let fmt = |d: Option<Duration>| d.map(format_duration).unwrap_or_else(|| "-".into());
    for e in &report.experiments {
        let marks = e.trials.last().map(|t| t.marks.clone()).unwrap_or_default();
        let result = if e.flaky {
            format!("{} ~", outcome_word(e.outcome))
        } else {
            outcome_word(e.outcome).to_string()
        };
        let _ = writeln!(
            out,
            "{:<width$}  {:<11}  {:<signal_width$}  {:>9}  {:>9}  {:>9}",
            e.name,
            result,
            signal(e),
            fmt(verdict_duration(e, "detectWithin").or(marks.time_to_detect())),
            fmt(verdict_duration(e, "recoverWithin").or(marks.time_to_recover())),
            fmt(harness_latency_p95(e)),
        );
        let pad = "";
        if e.trials.len() > 1 {
            let spread = |slo: &str| {
                e.slos
                    .iter()
                    .find(|s| s.slo == slo)
                    .and_then(|s| s.spread_text())
                    .unwrap_or_else(|| "-".into())
            };
            let pct = e
                .slos
                .first()
                .map(|s| s.percentile.as_str())
                .unwrap_or("p95");
            let _ = writeln!(
                out,
                "{pad:<width$}    {} trials, verdicts on {pct}; min / median / max: detect {}, recover {}",
                e.trials.len(),
                spread("detectWithin"),
                spread("recoverWithin"),
            );
        }
        let interrupted = e.outcome == Outcome::Interrupted;
        let impact = crate::slo::impact_line(&e.slos);
        if let Some((felt, line)) = &impact
            && !interrupted
        {
            let _ = writeln!(
                out,
                "{pad:<width$}    {} {line}",
                if *felt { "✓" } else { "✗" }
            );
        }
        for slo in &e.slos {
            // A felt impact is said in its own line above.
            if crate::slo::is_impact(slo) && slo.met {
                continue;
            }
            let timing = slo.slo == "detectWithin" || slo.slo == "recoverWithin";
            // An experiment that errored before measuring anything is
            // explained by its error line, not by empty verdicts.
            let unmeasured = e.outcome == Outcome::Error && slo.samples.iter().all(Option::is_none);
            if unmeasured {
                continue;
            }
            if !slo.met && !interrupted {
                let _ = writeln!(out, "{pad:<width$}    ✗ {}", slo.describe());
                for note in &slo.notes {
                    let _ = writeln!(out, "{pad:<width$}        {note}");
                }
            } else if slo.flaky {
                let _ = writeln!(out, "{pad:<width$}    ~ {}", slo.describe());
            } else if !timing && slo.met {
                let _ = writeln!(out, "{pad:<width$}    ✓ {}", slo.describe());
            }
        }
        for t in &e.trials {
            if let Some(err) = &t.error {
                let _ = writeln!(
                    out,
                    "{pad:<width$}    ✗ trial {} {:?}: {}",
                    t.trial, err.phase, err.message
                );
            }
        }
    }
    let passed = report
        .experiments
        .iter()
        .filter(|e| e.outcome == Outcome::Passed)
        .count();
    let flaky = report.experiments.iter().filter(|e| e.flaky).count();
    let _ = writeln!(
        out,
        "\n{} passed, {} failed{}; run {} on {} `{}`",
        passed,
        report.experiments.len() - passed,
        if flaky > 0 {
            format!(", {flaky} flaky (~)")
        } else {
            String::new()
        },
        report.run_id,
        report.cluster.provider,
        report.cluster.name
    );
    if let Some(schedule) = schedule::summary(report) {
        let _ = writeln!(out, "{schedule}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::vocab::SignalKind;

    #[test]
    fn a_long_signal_name_keeps_the_columns_aligned() {
        let mut report = fixture::run_report();
        let trial = report.experiments[0].trials.last_mut().expect("a trial");
        trial.marks.detected_signal = Some(SignalKind::CreateContainerConfigError);
        let text = summary(&report);
        let column = |line: &str, word: &str| line.find(word).expect("a column");
        let header = text
            .lines()
            .find(|l| l.starts_with("EXPERIMENT"))
            .expect("a header");
        let row = text
            .lines()
            .find(|l| l.contains("CreateContainerConfigError"))
            .expect("the row");
        assert!(row.len() >= header.len(), "{text}");
        let detect_end = column(header, "DETECT") + "DETECT".len();
        assert_eq!(row.as_bytes()[detect_end], b' ', "{text}");
        assert_ne!(row.as_bytes()[detect_end - 1], b' ', "{text}");
    }

    #[test]
    fn an_error_before_injection_is_not_also_reported_as_missed_slos() {
        let text = summary(&fixture::run_report());
        assert!(
            !text.contains("detectWithin 45.0s: never happened"),
            "{text}"
        );
    }

    #[test]
    fn the_json_report_round_trips_and_carries_its_schema() {
        let report = fixture::run_report();
        let json = to_json(&report).unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            value["schema"],
            crate::runner::outcome::REPORT_SCHEMA_VERSION
        );
        assert_eq!(value["experiments"][0]["flaky"], true);
        assert_eq!(value["experiments"][0]["slos"][0]["actual"], 3840);
        assert_eq!(
            value["experiments"][0]["trials"][1]["marks"]["detectedSignal"],
            "ErrImagePull"
        );
        assert_eq!(
            value["experiments"][1]["trials"][0]["measurements"]["availability"]["ok"],
            180
        );
        let back: RunReport = serde_json::from_str(&json).unwrap();
        assert_eq!(to_json(&back).unwrap(), json);
    }

    #[test]
    fn the_report_json_schema_validates_the_shape_it_describes() {
        let schema = crate::runner::outcome::report_json_schema();
        let required = schema["required"].as_array().unwrap();
        for field in ["schema", "runId", "experiments", "cluster"] {
            assert!(required.iter().any(|r| r == field), "{field} not required");
        }
        let defs = schema["$defs"].as_object().unwrap();
        for def in [
            "SloVerdict",
            "TrialReport",
            "Measurements",
            "Marks",
            "Observation",
        ] {
            assert!(defs.contains_key(def), "{def} missing from $defs");
        }
    }
}
