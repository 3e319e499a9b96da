//! Comparisons of reports built through the real verdict code
//! ([`crate::slo::evaluate`]), so that they cannot drift from what a run
//! writes. Captured pairs from real clusters are tested in
//! tests/compare.rs.

use jiff::{SignedDuration, Timestamp};
use rstest::rstest;

use super::*;
use crate::experiment::SloSpec;
use crate::runner::{TrialError, TrialReport};
use crate::slo::{self, Measurements, TrialData};
use crate::timeline::{Marks, Phase, Timeline};

fn at(ms: i64) -> Timestamp {
    "2026-03-01T10:00:00Z"
        .parse::<Timestamp>()
        .expect("a timestamp")
        + SignedDuration::from_millis(ms)
}

/// One trial: detected after `detect` ms (never when `None`), recovered
/// `recover` ms after the revert, showing `signal`.
fn trial(n: u32, detect: Option<f64>, recover: f64, signal: SignalKind) -> TrialReport {
    let base = i64::from(n) * 100_000;
    let injected = at(base);
    let detected = detect.map(|d| at(base + d as i64));
    let reverted = at(base + detect.unwrap_or(30_000.0) as i64 + 10);
    TrialReport {
        trial: n,
        marks: Marks {
            steady: Some(at(base - 1000)),
            injected: Some(injected),
            in_place: None,
            signal: detected,
            detected,
            detected_signal: detect.map(|_| signal),
            reverted: Some(reverted),
            recovered: Some(reverted + SignedDuration::from_millis(recover as i64)),
        },
        detection: None,
        diagnosis: None,
        injected: Some("injected".into()),
        measurements: Measurements::default(),
        timeline: Timeline::default(),
        error: None,
        interrupted: false,
    }
}

fn spec() -> SloSpec {
    serde_yaml::from_str("detectWithin: 30s\nrecoverWithin: 20s\npercentile: p95")
        .expect("an SLO spec")
}

/// An experiment judged by the real verdict code.
fn experiment(
    name: &str,
    detect: &[Option<f64>],
    recover: &[f64],
    signal: SignalKind,
) -> ExperimentReport {
    let trials: Vec<TrialReport> = detect
        .iter()
        .zip(recover)
        .enumerate()
        .map(|(i, (d, r))| trial(i as u32 + 1, *d, *r, signal))
        .collect();
    let data: Vec<TrialData<'_>> = trials
        .iter()
        .map(|t| TrialData {
            marks: &t.marks,
            measurements: &t.measurements,
        })
        .collect();
    let slos = slo::evaluate(&spec(), &data);
    drop(data);
    ExperimentReport {
        name: name.into(),
        file: format!("experiments/{name}.yaml"),
        fault: "podKill".into(),
        story: None,
        outcome: if slos.iter().all(|s| s.met) {
            Outcome::Passed
        } else {
            Outcome::Failed
        },
        flaky: slos.iter().any(|s| s.flaky),
        slos,
        trials,
    }
}

fn run(id: &str, experiments: Vec<ExperimentReport>) -> RunReport {
    RunReport {
        schema: REPORT_SCHEMA_VERSION.into(),
        run_id: id.into(),
        started: at(0),
        finished: at(3_600_000),
        cluster: ClusterRecord {
            provider: "kind".into(),
            name: "bf-compare".into(),
            kubeconfig: None,
            context: None,
        },
        experiments,
        partition: None,
        shards: Vec::new(),
    }
}

const D: [Option<f64>; 5] = [
    Some(900.0),
    Some(1100.0),
    Some(1000.0),
    Some(1300.0),
    Some(950.0),
];
const R: [f64; 5] = [3100.0, 3400.0, 2900.0, 3800.0, 3200.0];
const R_NOISE: [f64; 5] = [3300.0, 2800.0, 3600.0, 3000.0, 3900.0];
const R_SLOW: [f64; 5] = [9100.0, 8400.0, 10200.0, 9600.0, 8900.0];

fn pod_kill(recover: &[f64]) -> ExperimentReport {
    experiment("pod-kill", &D, recover, SignalKind::PodGone)
}

fn compared(before: Vec<ExperimentReport>, after: Vec<ExperimentReport>) -> Comparison {
    compare(
        &run("b", before),
        &run("a", after),
        &CompareOptions::default(),
    )
    .expect("valid options")
}

#[test]
fn the_same_build_with_normal_noise_is_unchanged() {
    let c = compared(vec![pod_kill(&R)], vec![pod_kill(&R_NOISE)]);
    let e = &c.experiments[0];
    assert_eq!(e.change, Change::Unchanged, "{:#?}", e);
    assert!(e.reasons.is_empty(), "{:?}", e.reasons);
    assert_eq!(c.exit_code(), 0);
    assert!(!c.has_regressions());
}

#[test]
fn slower_recovery_beyond_the_noise_is_a_regression_with_its_numbers() {
    let c = compared(vec![pod_kill(&R)], vec![pod_kill(&R_SLOW)]);
    let e = &c.experiments[0];
    assert_eq!(e.change, Change::Regression);
    let recover = e
        .slos
        .iter()
        .find(|s| s.slo == "recoverWithin")
        .expect("recoverWithin");
    assert_eq!(recover.change, Change::Regression);
    assert_eq!(recover.before.as_ref().and_then(|s| s.p50), Some(3200.0));
    assert_eq!(recover.after.as_ref().and_then(|s| s.p95), Some(10200.0));
    assert!(matches!(
        recover.test,
        Some(NoiseTest::MannWhitney { exact: true, .. })
    ));
    assert_eq!(
        e.reasons,
        vec!["recoverWithin: median 3.2s → 9.1s (+5.9s, +184%): beyond the noise (Mann-Whitney p = 0.008, 5 vs 5 trials)".to_string()]
    );
    let detect = e
        .slos
        .iter()
        .find(|s| s.slo == "detectWithin")
        .expect("detectWithin");
    assert_eq!(detect.change, Change::Unchanged);
    assert_eq!(c.exit_code(), 1);
}

#[test]
fn met_to_missed_is_a_regression_even_within_the_noise() {
    // recoverWithin 20s at p95: one slow trial of five crosses it.
    let before = pod_kill(&[18_000.0, 19_000.0, 17_500.0, 19_500.0, 18_500.0]);
    let after = pod_kill(&[18_200.0, 19_200.0, 17_000.0, 21_000.0, 18_100.0]);
    let c = compared(vec![before], vec![after]);
    let recover = &c.experiments[0].slos[1];
    assert_eq!(recover.slo, "recoverWithin");
    assert_eq!(recover.change, Change::Regression);
    assert!(
        recover
            .reason
            .starts_with("met → missed (20.0s at p95: 21.0s); median"),
        "{}",
        recover.reason
    );
    assert!(
        recover.reason.contains("less than the"),
        "{}",
        recover.reason
    );
    assert!(c.experiments[0].reasons[0].starts_with("passed before, failed after"));
}

#[test]
fn missed_to_met_is_an_improvement() {
    let before = pod_kill(&[25_000.0, 26_000.0, 24_000.0, 27_000.0, 25_500.0]);
    let c = compared(vec![before], vec![pod_kill(&R)]);
    assert_eq!(c.experiments[0].change, Change::Improvement);
    assert_eq!(c.exit_code(), 0);
}

#[test]
fn a_signal_that_no_longer_shows_is_a_regression_in_detection() {
    let before = experiment("image-typo", &D, &R, SignalKind::ErrImagePull);
    let after = experiment("image-typo", &D, &R, SignalKind::ImagePullBackOff);
    let c = compared(vec![before], vec![after]);
    let e = &c.experiments[0];
    assert_eq!(e.change, Change::Regression);
    let gone = e
        .signals
        .iter()
        .find(|s| s.signal == SignalKind::ErrImagePull)
        .expect("ErrImagePull compared");
    assert_eq!(gone.change, Change::Regression);
    assert_eq!(
        gone.reason,
        "signal ErrImagePull no longer shows (5/5 trials before, 0/5 after; after: ImagePullBackOff 5/5)"
    );
    assert!(e.reasons.contains(&gone.reason), "{:?}", e.reasons);
}

#[test]
fn one_trial_catching_another_expected_signal_first_is_not_a_regression() {
    let before = experiment("image-typo", &D[..1], &R[..1], SignalKind::ErrImagePull);
    let after = experiment("image-typo", &D[..1], &R[..1], SignalKind::ImagePullBackOff);
    let c = compared(vec![before], vec![after]);
    let e = &c.experiments[0];
    assert_eq!(e.change, Change::Erratic, "{:?}", e.reasons);
    assert!(
        e.reasons
            .iter()
            .any(|r| r.ends_with("too few trials to tell a change from chance")),
        "{:?}",
        e.reasons
    );
    assert_eq!(c.exit_code(), 0);
}

#[test]
fn one_trial_that_shows_nothing_at_all_is_a_regression() {
    let before = experiment("image-typo", &D[..1], &R[..1], SignalKind::ErrImagePull);
    let after = experiment("image-typo", &[None], &R[..1], SignalKind::ErrImagePull);
    let c = compared(vec![before], vec![after]);
    let e = &c.experiments[0];
    assert_eq!(e.change, Change::Regression, "{:?}", e.reasons);
    assert!(
        e.signals[0].reason.contains("after: no expected signal"),
        "{:?}",
        e.signals
    );
}

#[test]
fn a_fault_no_longer_detected_regresses_in_timing_verdict_and_signal() {
    let before = experiment("image-typo", &D, &R, SignalKind::ErrImagePull);
    let after = experiment("image-typo", &[None; 5], &R, SignalKind::ErrImagePull);
    let c = compared(vec![before], vec![after]);
    let e = &c.experiments[0];
    assert_eq!(e.change, Change::Regression);
    let detect = &e.slos[0];
    assert_eq!(detect.change, Change::Regression);
    assert!(
        detect
            .reason
            .starts_with("met → missed (30.0s at p95: never happened)"),
        "{}",
        detect.reason
    );
    assert!(
        detect.reason.contains("median 1.0s → never"),
        "{}",
        detect.reason
    );
    assert!(
        e.reasons.iter().any(|r| r
            .contains("no longer shows (5/5 trials before, 0/5 after; after: no expected signal)")),
        "{:?}",
        e.reasons
    );
}

#[test]
fn a_signal_seen_in_some_trials_only_is_erratic_not_a_regression() {
    let mut before = experiment("image-typo", &D, &R, SignalKind::ErrImagePull);
    for t in before.trials.iter_mut().take(2) {
        t.marks.detected_signal = Some(SignalKind::ImagePullBackOff);
    }
    let after = experiment("image-typo", &D, &R, SignalKind::ErrImagePull);
    let c = compared(vec![before], vec![after]);
    let e = &c.experiments[0];
    assert_eq!(e.change, Change::Erratic, "{:#?}", e.signals);
    assert_eq!(c.exit_code(), 0);
}

#[test]
fn harness_trouble_is_an_error_never_a_regression() {
    let mut after = pod_kill(&R_SLOW);
    after.outcome = Outcome::Error;
    after.trials[0].error = Some(TrialError {
        phase: Phase::SteadyState,
        message: "baseline `shop` never reached steady state".into(),
        unobserved: false,
    });
    let c = compared(vec![pod_kill(&R)], vec![after]);
    let e = &c.experiments[0];
    assert_eq!(e.change, Change::Error);
    assert!(e.slos.is_empty(), "nothing is judged");
    assert_eq!(
        e.reasons,
        vec![
            "after: errored trial 1 SteadyState: baseline `shop` never reached steady state"
                .to_string()
        ]
    );
    assert!(!c.has_regressions());
    assert_eq!(c.exit_code(), 1);
}

#[test]
fn experiments_on_one_side_are_listed_not_failed() {
    let c = compared(
        vec![
            pod_kill(&R),
            experiment("gone", &D, &R, SignalKind::PodGone),
        ],
        vec![pod_kill(&R), experiment("new", &D, &R, SignalKind::PodGone)],
    );
    let change = |n: &str| c.experiments.iter().find(|e| e.name == n).map(|e| e.change);
    assert_eq!(change("gone"), Some(Change::OnlyBefore));
    assert_eq!(change("new"), Some(Change::OnlyAfter));
    assert_eq!(c.exit_code(), 0);
    let counts = c.counts();
    assert_eq!(
        (counts.only_before, counts.only_after, counts.unchanged),
        (1, 1, 1)
    );
}

#[test]
fn regressions_come_first_then_errors_improvements_erratic_one_sided_unchanged() {
    let mut errored = experiment("b-errored", &D, &R, SignalKind::PodGone);
    errored.outcome = Outcome::Interrupted;
    let before = vec![
        experiment("a-unchanged", &D, &R, SignalKind::PodGone),
        experiment("b-errored", &D, &R, SignalKind::PodGone),
        experiment("c-improved", &D, &R_SLOW, SignalKind::PodGone),
        experiment("d-only-before", &D, &R, SignalKind::PodGone),
        experiment(
            "e-erratic",
            &D,
            &[2000.0, 9000.0, 3000.0, 14_000.0, 4000.0],
            SignalKind::PodGone,
        ),
        experiment("z-regressed", &D, &R, SignalKind::PodGone),
    ];
    let after = vec![
        experiment("a-unchanged", &D, &R_NOISE, SignalKind::PodGone),
        errored,
        experiment("c-improved", &D, &R, SignalKind::PodGone),
        experiment(
            "e-erratic",
            &D,
            &[8000.0, 3000.0, 12_000.0, 2500.0, 9500.0],
            SignalKind::PodGone,
        ),
        experiment("z-regressed", &D, &R_SLOW, SignalKind::PodGone),
    ];
    let c = compared(before, after);
    let order: Vec<(&str, Change)> = c
        .experiments
        .iter()
        .map(|e| (e.name.as_str(), e.change))
        .collect();
    assert_eq!(
        order,
        vec![
            ("z-regressed", Change::Regression),
            ("b-errored", Change::Error),
            ("c-improved", Change::Improvement),
            ("e-erratic", Change::Erratic),
            ("d-only-before", Change::OnlyBefore),
            ("a-unchanged", Change::Unchanged),
        ]
    );
}

#[test]
fn labels_name_the_sides() {
    let c = compared(vec![pod_kill(&R)], vec![pod_kill(&R)]).with_labels("v1.34.4", "v1.35.4");
    assert_eq!(
        (c.before.label.as_str(), c.after.label.as_str()),
        ("v1.34.4", "v1.35.4")
    );
    assert_eq!(c.before.run_id, "b");
}

#[test]
fn the_comparison_round_trips_through_json() {
    let c = compared(vec![pod_kill(&R)], vec![pod_kill(&R_SLOW)]);
    let json = serde_json::to_string_pretty(&c).expect("encodes");
    let value: serde_json::Value = serde_json::from_str(&json).expect("parses");
    assert_eq!(value["schema"], COMPARISON_SCHEMA_VERSION);
    assert_eq!(value["experiments"][0]["change"], "regression");
    assert_eq!(
        value["experiments"][0]["slos"][1]["test"]["test"],
        "mannWhitney"
    );
    let back: Comparison = serde_json::from_str(&json).expect("decodes");
    assert_eq!(back, c);
}

#[rstest]
#[case(CompareOptions { alpha: 0.0, ..CompareOptions::default() }, "alpha")]
#[case(CompareOptions { alpha: 1.5, ..CompareOptions::default() }, "alpha")]
#[case(CompareOptions { min_ms: -1.0, ..CompareOptions::default() }, "minMs")]
#[case(CompareOptions { min_change: f64::NAN, ..CompareOptions::default() }, "minChange")]
#[case(CompareOptions { min_count: f64::INFINITY, ..CompareOptions::default() }, "minCount")]
fn bad_options_are_refused(#[case] options: CompareOptions, #[case] name: &str) {
    let r = run("r", vec![]);
    match compare(&r, &r, &options) {
        Err(CompareError::Option { name: n, .. }) => assert_eq!(n, name),
        other => panic!("{other:?}"),
    }
}

mod reading {
    use super::*;

    fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("writes");
        path
    }

    #[test]
    fn a_report_written_by_run_reads_back() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let report = run("r1", vec![pod_kill(&R)]);
        let path = write(
            &dir,
            "r.json",
            &serde_json::to_string(&report).expect("encodes"),
        );
        let back = read_report(&path).expect("reads");
        assert_eq!(back.run_id, "r1");
        assert_eq!(back.experiments.len(), 1);
    }

    #[rstest]
    #[case(
        "{\n  \"schema\": \"breakfix.dev/report/v1\",\n  \"runId\": 3\n}",
        "r.json:3:12: not a breakfix JSON report: invalid type: integer `3`, expected a string"
    )]
    #[case(
        "{\n  \"schema\": \"breakfix.dev/report/v1\",\n",
        "r.json:3:0: not a breakfix JSON report: EOF while parsing a value"
    )]
    #[case(
        "{\"schema\": \"breakfix.dev/report/v0\"}",
        "r.json has report schema `breakfix.dev/report/v0`; this breakfix reads `breakfix.dev/report/v1`"
    )]
    #[case(
        "<testsuites/>",
        "r.json:1:1: not a breakfix JSON report: expected value"
    )]
    #[case(
        "{\"testsuites\": []}",
        "r.json has no `schema` field: it is not a report written by `breakfix run --json`"
    )]
    fn bad_reports_say_where_and_what(#[case] text: &str, #[case] expected: &str) {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = write(&dir, "r.json", text);
        let err = read_report(&path).expect_err("refused");
        let shown = err
            .to_string()
            .replace(&format!("{}/", dir.path().display()), "");
        assert_eq!(shown, expected);
        assert!(err.help().is_some());
    }

    #[test]
    fn a_missing_file_says_so() {
        let err = read_report(Path::new("/nonexistent/before.json")).expect_err("refused");
        assert!(
            err.to_string()
                .starts_with("cannot read /nonexistent/before.json: "),
            "{err}"
        );
    }
}
