//! Run reports for the reporters' tests: built from trials through the real
//! verdict code, so the fixtures cannot drift from what a run produces.
//!
//! - `image-typo`: 3 trials, passes on p50 but one trial detected late (flaky);
//! - `coredns-squeeze`: 1 trial, misses availability, blast radius and a condition;
//! - `rbac-binding`: never reached steady state (an error).

use jiff::{SignedDuration, Timestamp};
use serde_json::json;

use crate::detect::{Diagnosis, Observation};
use crate::experiment::SloSpec;
use crate::journal::ClusterRecord;
use crate::runner::{ExperimentReport, Outcome, RunReport, TrialError, TrialReport};
use crate::slo::measurement::{
    AvailabilityMeasurement, BlastRadiusMeasurement, CanaryPodWindow, ConditionMeasurement,
    Disturbance, FalseSpan,
};
use crate::slo::{self, Measurements, TrialData};
use crate::timeline::{Entry, EntryKind, Marks, Phase, Timeline};
use crate::vocab::SignalKind;

pub const START: &str = "2026-03-01T10:00:00Z";

fn at(base: Timestamp, ms: i64) -> Timestamp {
    base + SignedDuration::from_millis(ms)
}

fn observation(
    kind: SignalKind,
    object: &str,
    seen: Timestamp,
    since: Option<Timestamp>,
) -> Observation {
    serde_json::from_value(json!({
        "kind": kind,
        "object": object,
        "container": "web",
        "reason": kind.to_string(),
        "message": format!("Back-off pulling image \"breakfix/workload:0.1.00\" <{kind}>"),
        "seenAt": seen,
        "since": since,
    }))
    .expect("a valid observation")
}

/// Millisecond offsets of one trial's moments from its start.
struct Shape {
    injected: i64,
    signal: i64,
    detected: i64,
    reverted: i64,
    recovered: i64,
    end: i64,
}

fn trial(n: u32, base: Timestamp, shape: &Shape, signal: SignalKind) -> TrialReport {
    let t = |ms| at(base, ms);
    let mut entries = vec![
        Entry { at: t(0), kind: EntryKind::PhaseStarted { phase: Phase::Baseline } },
        Entry { at: t(300), kind: EntryKind::PhaseStarted { phase: Phase::SteadyState } },
        Entry { at: t(shape.injected - 400), kind: EntryKind::Steady },
        Entry { at: t(shape.injected - 300), kind: EntryKind::PhaseStarted { phase: Phase::Inject } },
        Entry {
            at: t(shape.injected),
            kind: EntryKind::Injected {
                summary: "deployment/web -n shop container web image breakfix/workload:0.1.0 → breakfix/workload:0.1.00".into(),
            },
        },
        Entry { at: t(shape.injected + 5), kind: EntryKind::PhaseStarted { phase: Phase::Detect } },
    ];
    let unexpected = observation(
        SignalKind::Unready,
        "pod/web-7c9d-x2x1",
        t(shape.injected + 900),
        None,
    );
    entries.push(Entry {
        at: unexpected.seen_at,
        kind: EntryKind::Signal {
            observation: unexpected,
            expected: false,
        },
    });
    let detection = observation(
        signal,
        "pod/web-7c9d-k8f2q",
        t(shape.detected),
        Some(t(shape.signal)),
    );
    entries.push(Entry {
        at: detection.seen_at,
        kind: EntryKind::Signal {
            observation: detection.clone(),
            expected: true,
        },
    });
    entries.extend([
        Entry {
            at: t(shape.detected + 2),
            kind: EntryKind::PhaseStarted {
                phase: Phase::Revert,
            },
        },
        Entry {
            at: t(shape.reverted),
            kind: EntryKind::Reverted {
                actions: vec!["restore deployment/web -n shop".into()],
            },
        },
        Entry {
            at: t(shape.reverted + 1),
            kind: EntryKind::PhaseStarted {
                phase: Phase::Recover,
            },
        },
        Entry {
            at: t(shape.recovered),
            kind: EntryKind::Recovered,
        },
    ]);
    entries.sort_by_key(|e| e.at);
    TrialReport {
        trial: n,
        marks: Marks {
            steady: Some(t(shape.injected - 400)),
            injected: Some(t(shape.injected)),
            in_place: None,
            signal: Some(t(shape.signal)),
            detected: Some(t(shape.detected)),
            detected_signal: Some(signal),
            reverted: Some(t(shape.reverted)),
            recovered: Some(t(shape.recovered)),
        },
        diagnosis: Some(Diagnosis {
            summary: "pod web-7c9d-k8f2q container web cannot pull its image; check the image name and tag in the workload spec".into(),
            evidence: vec!["ImagePullBackOff on pod/web-7c9d-k8f2q container web: Back-off pulling image".into()],
            next_steps: vec!["kubectl describe pod web-7c9d-k8f2q -n shop".into()],
        }),
        detection: Some(detection),
        injected: Some("deployment/web -n shop container web image breakfix/workload:0.1.0 → breakfix/workload:0.1.00".into()),
        measurements: Measurements::default(),
        timeline: Timeline { entries },
        error: None,
        interrupted: false,
    }
}

fn experiment(
    name: &str,
    fault: &str,
    slo_yaml: &str,
    trials: Vec<TrialReport>,
    outcome_when_error: Option<Outcome>,
) -> ExperimentReport {
    let spec: SloSpec = serde_yaml::from_str(slo_yaml).expect("a valid slo block");
    let data: Vec<TrialData<'_>> = trials
        .iter()
        .map(|t| TrialData {
            marks: &t.marks,
            measurements: &t.measurements,
        })
        .collect();
    let slos = slo::evaluate(&spec, &data);
    let outcome = outcome_when_error.unwrap_or(if slos.iter().all(|s| s.met) {
        Outcome::Passed
    } else {
        Outcome::Failed
    });
    ExperimentReport {
        name: name.into(),
        file: format!("experiments/{name}.yaml"),
        fault: fault.into(),
        story: Some(format!("The {name} story <with markup & quotes\">")),
        outcome,
        flaky: slos.iter().any(|s| s.flaky),
        slos,
        trials,
    }
}

/// A run of three experiments covering pass, flaky, miss and error.
pub fn run_report() -> RunReport {
    let start: Timestamp = START.parse().expect("a timestamp");
    let shapes = [
        Shape {
            injected: 2500,
            signal: 5000,
            detected: 5120,
            reverted: 5300,
            recovered: 17300,
            end: 22300,
        },
        Shape {
            injected: 2400,
            signal: 6000,
            detected: 6240,
            reverted: 6400,
            recovered: 16400,
            end: 21400,
        },
        Shape {
            injected: 2600,
            signal: 33000,
            detected: 33400,
            reverted: 33600,
            recovered: 47600,
            end: 52600,
        },
    ];
    let mut offset = 0;
    let mut typo_trials = Vec::new();
    for (i, shape) in shapes.iter().enumerate() {
        let signal = if i == 1 {
            SignalKind::ErrImagePull
        } else {
            SignalKind::ImagePullBackOff
        };
        typo_trials.push(trial(i as u32 + 1, at(start, offset), shape, signal));
        offset += shape.end;
    }
    let typo = experiment(
        "image-typo",
        "imageTypo",
        "detectWithin: 30s\nrecoverWithin: 60s\npercentile: p50\n",
        typo_trials,
        None,
    );

    let squeeze_base = at(start, offset);
    let mut squeeze_trial = trial(
        1,
        squeeze_base,
        &Shape {
            injected: 3000,
            signal: 9000,
            detected: 9300,
            reverted: 9500,
            recovered: 31500,
            end: 36500,
        },
        SignalKind::ImagePullBackOff,
    );
    let t = |ms| at(squeeze_base, ms);
    squeeze_trial.measurements = Measurements {
        availability: Some(AvailabilityMeasurement {
            canary: "app=dns-canary -n shop".into(),
            over: None,
            from: Some(t(2990)),
            to: Some(t(36400)),
            ok: 180,
            total: 200,
            pods: vec![CanaryPodWindow {
                pod: "dns-canary-5f6-abc".into(),
                ok: 180,
                total: 200,
                note: None,
                last_error: Some("www.example.com: timeout after 2s".into()),
            }],
            error: None,
        }),
        latency: None,
        impact: None,
        blast_radius: Some(BlastRadiusMeasurement {
            from: Some(t(3000)),
            to: Some(t(31500)),
            watched: 7,
            excluded: vec!["deployment/coredns -n kube-system".into()],
            unsteady_at_start: vec![],
            others: vec![],
            watch_gaps: vec![],
            affected: vec![Disturbance {
                workload: "deployment/web -n shop".into(),
                left: t(12000),
                back: Some(t(24000)),
                reason: "1/2 ready, 2 updated, 1 available, 2 total".into(),
            }],
            error: None,
        }),
        conditions: vec![ConditionMeasurement {
            name: "web-keeps-serving".into(),
            object: "deployment/web -n shop".into(),
            expr: "object.status.availableReplicas >= 2".into(),
            from: Some(t(3000)),
            to: Some(t(31500)),
            initially: true,
            became_true: Some(t(3000)),
            false_spans: vec![FalseSpan {
                from: t(12000),
                to: Some(t(24000)),
                values: "object.status.availableReplicas = 1".into(),
            }],
            false_ms: 12000,
            error: None,
        }],
    };
    let squeeze = experiment(
        "coredns-squeeze",
        "memorySqueeze",
        r#"detectWithin: 30s
recoverWithin: 60s
availability: {canary: {selector: app=dns-canary}, atLeast: "95%"}
blastRadius: {}
conditions:
  - {name: web-keeps-serving, object: {apiVersion: apps/v1, kind: Deployment, name: web}, expression: object.status.availableReplicas >= 2, tolerance: 5s}
"#,
        vec![squeeze_trial],
        None,
    );

    let rbac_base = at(start, offset + 40_000);
    let rbac_trial = TrialReport {
        trial: 1,
        marks: Marks::default(),
        detection: None,
        diagnosis: None,
        injected: None,
        measurements: Measurements::default(),
        timeline: Timeline {
            entries: vec![
                Entry { at: rbac_base, kind: EntryKind::PhaseStarted { phase: Phase::Baseline } },
                Entry { at: at(rbac_base, 200), kind: EntryKind::PhaseStarted { phase: Phase::SteadyState } },
                Entry {
                    at: at(rbac_base, 180_200),
                    kind: EntryKind::Error {
                        phase: Phase::SteadyState,
                        message: "baseline `rbac` never reached steady state: deployment/api-canary -n rbac: 0/1 ready".into(),
                    },
                },
            ],
        },
        error: Some(TrialError {
            phase: Phase::SteadyState,
            message: "baseline `rbac` never reached steady state: deployment/api-canary -n rbac: 0/1 ready".into(),
            unobserved: false,
        }),
        interrupted: false,
    };
    let rbac = experiment(
        "rbac-binding",
        "rbacBindingDelete",
        "detectWithin: 45s\nrecoverWithin: 90s\n",
        vec![rbac_trial],
        Some(Outcome::Error),
    );

    RunReport {
        schema: crate::runner::outcome::REPORT_SCHEMA_VERSION.into(),
        run_id: "20260301t100000-1a2b".into(),
        started: start,
        finished: at(start, offset + 221_000),
        cluster: ClusterRecord {
            provider: "kind".into(),
            name: "breakfix".into(),
            kubeconfig: None,
            context: None,
        },
        experiments: vec![typo, squeeze, rbac],
        partition: None,
        shards: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fixture as JSON, checked in so `breakfix report` can render it
    /// (docs/samples) and so schema changes show up in review. Refresh with
    /// `BREAKFIX_BLESS=1 cargo test --lib report::fixture`.
    #[test]
    fn the_checked_in_sample_report_is_current() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/samples/run-report.json");
        let json = crate::report::to_json(&run_report()).unwrap() + "\n";
        if std::env::var_os("BREAKFIX_BLESS").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &json).unwrap();
        }
        let stored = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            stored == json,
            "{} is out of date; rerun with BREAKFIX_BLESS=1 and review the diff",
            path.display()
        );
    }

    #[test]
    fn the_fixture_covers_pass_flaky_miss_and_error() {
        let r = run_report();
        let outcomes: Vec<Outcome> = r.experiments.iter().map(|e| e.outcome).collect();
        assert_eq!(
            outcomes,
            vec![Outcome::Passed, Outcome::Failed, Outcome::Error]
        );
        assert!(r.experiments[0].flaky);
        assert!(!r.experiments[1].flaky);
    }
}
