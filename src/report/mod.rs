//! Renderers of a [`RunReport`]: the terminal summary, JSON and JUnit XML.

pub mod junit;
pub mod progress;

use std::fmt::Write as _;
use std::path::Path;

use crate::experiment::duration::format_duration;
use crate::runner::{Outcome, RunReport};

/// Errors writing report files.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot write {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot encode report: {0}")]
    Encode(String),
}

/// Writes `text` to `path` atomically (temp file then rename).
pub fn write_file(path: &Path, text: &str) -> Result<(), ReportError> {
    let io = |source| ReportError::Io {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// The JSON report (schema `breakfix.dev/report/v1`).
pub fn to_json(report: &RunReport) -> Result<String, ReportError> {
    serde_json::to_string_pretty(report).map_err(|e| ReportError::Encode(e.to_string()))
}

fn outcome_word(o: Outcome) -> &'static str {
    match o {
        Outcome::Passed => "PASS",
        Outcome::Failed => "FAIL",
        Outcome::Error => "ERROR",
        Outcome::Interrupted => "INTERRUPTED",
    }
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
    let _ = writeln!(
        out,
        "\n{:<width$}  {:<11}  {:<16}  {:>9}  {:>9}  {:>9}",
        "EXPERIMENT", "RESULT", "SIGNAL", "DETECT", "RECOVER", "LATENCY"
    );
    for e in &report.experiments {
        let last = e.trials.last();
        let marks = last.map(|t| t.marks.clone()).unwrap_or_default();
        let fmt =
            |d: Option<std::time::Duration>| d.map(format_duration).unwrap_or_else(|| "-".into());
        let detect = e
            .slos
            .iter()
            .find(|s| s.slo == "detectWithin")
            .and_then(|s| s.actual);
        let recover = e
            .slos
            .iter()
            .find(|s| s.slo == "recoverWithin")
            .and_then(|s| s.actual);
        let _ = writeln!(
            out,
            "{:<width$}  {:<11}  {:<16}  {:>9}  {:>9}  {:>9}",
            e.name,
            outcome_word(e.outcome),
            marks
                .detected_signal
                .map(|s| s.to_string())
                .unwrap_or_else(|| "-".into()),
            fmt(detect.or(marks.time_to_detect())),
            fmt(recover.or(marks.time_to_recover())),
            fmt(marks.harness_latency()),
        );
        for slo in e
            .slos
            .iter()
            .filter(|s| !s.met && e.outcome != Outcome::Interrupted)
        {
            let _ = writeln!(out, "{:<width$}    ✗ {}", "", slo.describe());
        }
        for t in &e.trials {
            if let Some(err) = &t.error {
                let _ = writeln!(
                    out,
                    "{:<width$}    ✗ trial {} {:?}: {}",
                    "", t.trial, err.phase, err.message
                );
            }
        }
    }
    let passed = report
        .experiments
        .iter()
        .filter(|e| e.outcome == Outcome::Passed)
        .count();
    let _ = writeln!(
        out,
        "\n{} passed, {} failed; run {} on {} `{}`",
        passed,
        report.experiments.len() - passed,
        report.run_id,
        report.cluster.provider,
        report.cluster.name
    );
    out
}
