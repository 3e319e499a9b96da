//! JUnit XML: one test suite per run, one test case per experiment; a missed
//! SLO is a failure that says by how much, with the diagnosis.

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::ReportError;
use crate::runner::{Outcome, RunReport};

/// Renders the run as JUnit XML.
pub fn to_junit(report: &RunReport) -> Result<String, ReportError> {
    let mut junit = Report::new(format!("breakfix {}", report.run_id));
    let mut suite = TestSuite::new("breakfix");
    for e in &report.experiments {
        let status = match e.outcome {
            Outcome::Passed => TestCaseStatus::success(),
            Outcome::Failed | Outcome::Error | Outcome::Interrupted => {
                let kind = if e.outcome == Outcome::Failed {
                    NonSuccessKind::Failure
                } else {
                    NonSuccessKind::Error
                };
                let mut status = TestCaseStatus::non_success(kind);
                let missed: Vec<String> = e
                    .slos
                    .iter()
                    .filter(|s| !s.met)
                    .map(|s| s.describe())
                    .collect();
                status.set_message(if missed.is_empty() {
                    format!("{:?}", e.outcome)
                } else {
                    missed.join("; ")
                });
                let mut detail = Vec::new();
                for t in &e.trials {
                    if let Some(err) = &t.error {
                        detail.push(format!(
                            "trial {} {:?}: {}",
                            t.trial, err.phase, err.message
                        ));
                    }
                    if let Some(d) = &t.diagnosis {
                        detail.push(format!("diagnosis: {}", d.summary));
                        detail.extend(d.evidence.iter().map(|l| format!("  evidence: {l}")));
                        detail.extend(d.next_steps.iter().map(|l| format!("  next: {l}")));
                    }
                }
                status.set_description(detail.join("\n"));
                status
            }
        };
        let mut case = TestCase::new(e.name.clone(), status);
        case.set_classname(format!("breakfix.{}", e.fault));
        let total: f64 = e
            .trials
            .iter()
            .filter_map(|t| {
                let first = t.timeline.entries.first()?.at;
                let last = t.timeline.entries.last()?.at;
                Some(last.duration_since(first).as_secs_f64())
            })
            .sum();
        case.set_time(std::time::Duration::from_secs_f64(total.max(0.0)));
        for slo in &e.slos {
            case.add_property(quick_junit::Property::new(
                slo.slo.clone(),
                slo.actual
                    .map(|a| format!("{}ms", a.as_millis()))
                    .unwrap_or_else(|| "none".into()),
            ));
        }
        suite.add_test_case(case);
    }
    junit.add_test_suite(suite);
    junit
        .to_string()
        .map_err(|e| ReportError::Encode(e.to_string()))
}
