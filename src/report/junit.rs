//! JUnit XML: one test suite per run, one test case per experiment. A missed
//! SLO is a failure whose message says which SLO missed by how much; its
//! body carries the spread, the per-trial notes and the diagnosis. A flaky
//! experiment that passed on its percentile reports the trials that missed
//! as `flakyFailure` elements, the form CI servers show as "flaky".

use quick_junit::{
    NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestRerun, TestSuite,
};

use super::ReportError;
use crate::runner::{ExperimentReport, Outcome, RunReport};

/// Renders the run as JUnit XML.
pub fn to_junit(report: &RunReport) -> Result<String, ReportError> {
    let mut junit = Report::new(format!("breakfix {}", report.run_id));
    let mut suite = TestSuite::new("breakfix");
    for e in &report.experiments {
        suite.add_test_case(test_case(e));
    }
    junit.add_test_suite(suite);
    junit
        .to_string()
        .map_err(|e| ReportError::Encode(e.to_string()))
}

fn test_case(e: &ExperimentReport) -> TestCase {
    let status = match e.outcome {
        Outcome::Passed => {
            let mut status = TestCaseStatus::success();
            for slo in e.slos.iter().filter(|s| s.flaky) {
                for (i, met) in slo.trials_met.iter().enumerate() {
                    if *met {
                        continue;
                    }
                    let sample = slo.samples.get(i).copied().flatten();
                    let mut rerun = TestRerun::new(NonSuccessKind::Failure);
                    rerun.set_message(format!(
                        "trial {}: {} {} missed ({}); passed on {} over {} trials",
                        i + 1,
                        slo.slo,
                        slo.target_text(),
                        sample
                            .map(|v| slo.unit.format(v))
                            .unwrap_or_else(|| "not measured".into()),
                        slo.percentile,
                        slo.samples.len()
                    ));
                    status.add_rerun(rerun);
                }
            }
            status
        }
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
            let first_error = e.trials.iter().find_map(|t| t.error.as_ref());
            status.set_message(match (e.outcome, first_error) {
                (Outcome::Error, Some(err)) => format!("{:?} failed: {}", err.phase, err.message),
                (Outcome::Interrupted, _) => "interrupted; the fault was reverted".into(),
                _ if missed.is_empty() => format!("{:?}", e.outcome),
                _ => missed.join("; "),
            });
            status.set_type(match e.outcome {
                Outcome::Failed => "SloMissed",
                Outcome::Error => "ExperimentError",
                _ => "Interrupted",
            });
            status.set_description(failure_detail(e));
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
        case.add_property(Property::new(slo.slo.clone(), slo.actual_text()));
        case.add_property(Property::new(
            format!("{}.target", slo.slo),
            slo.target_text(),
        ));
        if let Some(spread) = slo.spread_text() {
            case.add_property(Property::new(format!("{}.spread", slo.slo), spread));
        }
    }
    case.add_property(Property::new("trials", e.trials.len().to_string()));
    case.add_property(Property::new("flaky", e.flaky.to_string()));
    case
}

/// The body of a failure: every missed SLO with its notes, then per trial
/// its error and diagnosis.
fn failure_detail(e: &ExperimentReport) -> String {
    let mut detail = Vec::new();
    if let Some(story) = &e.story {
        detail.push(format!("story: {story}"));
    }
    if let Some((false, line)) = crate::slo::impact_line(&e.slos) {
        detail.push(format!("✗ {line}"));
    }
    for slo in e.slos.iter().filter(|s| !s.met || s.flaky) {
        detail.push(format!(
            "{} {}",
            if slo.met { "~" } else { "✗" },
            slo.describe()
        ));
        detail.extend(slo.notes.iter().map(|n| format!("    {n}")));
    }
    for t in &e.trials {
        if let Some(err) = &t.error {
            detail.push(format!(
                "trial {} {:?} failed: {}",
                t.trial, err.phase, err.message
            ));
        }
        if let Some(d) = &t.diagnosis {
            detail.push(format!("trial {} diagnosis: {}", t.trial, d.summary));
            detail.extend(d.evidence.iter().map(|l| format!("  evidence: {l}")));
            detail.extend(d.next_steps.iter().map(|l| format!("  next: {l}")));
        }
    }
    detail.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;

    fn xml() -> String {
        to_junit(&fixture::run_report()).unwrap()
    }

    #[test]
    fn one_test_case_per_experiment() {
        let xml = xml();
        assert_eq!(xml.matches("<testcase ").count(), 3);
        assert!(xml.contains("tests=\"3\""), "{xml}");
        assert!(xml.contains("failures=\"1\""), "{xml}");
        assert!(xml.contains("errors=\"1\""), "{xml}");
    }
}
