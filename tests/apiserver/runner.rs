//! The library's one entry point, used as a platform team would use it from
//! its own tests: an experiment file, `Runner::builder(..).build()?.run(..)`,
//! and assertions on the returned report, against a real API server and
//! controller manager.
//!
//! The fault scales a Deployment past its namespace's pod quota; the
//! ReplicaSet controller's refusals (`FailedCreate … exceeded quota`) are the
//! signal. Scaled to what the quota allows, the same fault is harmless and
//! the run must fail: nothing to detect.

use std::num::NonZeroU32;

use breakfix::experiment::FaultPlan;
use breakfix::fault::Scale;
use breakfix::fault::scale::{ScalableKind, ScaleTarget};
use breakfix::journal::{JournalState, Record};
use breakfix::runner::{Jobs, RunEvent};
use breakfix::timeline::EntryKind;
use breakfix::{
    ExpectedSignals, Experiment, FaultSpec, HumanDuration, LoadedExperiment, Name, Outcome, Runner,
    SignalKind, SloSpec, load_experiment,
};
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use rstest::rstest;

use crate::support;

/// Writes a baseline in namespace `ns` and an experiment that scales `web`
/// to `replicas`, expecting the quota to refuse pods.
fn experiment_files(dir: &std::path::Path, ns: &str, replicas: u32) -> std::path::PathBuf {
    experiment_file(dir, ns, "scale-past-quota", replicas, "15s")
}

/// The same, named `name`, giving up on detection after `detect`.
pub(crate) fn experiment_file(
    dir: &std::path::Path,
    ns: &str,
    name: &str,
    replicas: u32,
    detect: &str,
) -> std::path::PathBuf {
    let baseline = dir.join("baseline");
    std::fs::create_dir_all(baseline.join("manifests")).unwrap();
    std::fs::write(
        baseline.join("manifests/objects.yaml"),
        support::QUOTA_BASELINE,
    )
    .unwrap();
    std::fs::write(
        baseline.join("baseline.yaml"),
        format!(
            "apiVersion: breakfix.dev/v1alpha1\nkind: Baseline\nmetadata: {{name: quota}}\nspec:\n  namespace: {ns}\n  steadyState: {{timeout: 30s}}\n"
        ),
    )
    .unwrap();
    let file = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &file,
        format!(
            "apiVersion: breakfix.dev/v1alpha1
kind: Experiment
metadata: {{name: {name}}}
spec:
  baseline: baseline
  fault:
    scale:
      target: {{namespace: {ns}, name: web}}
      replicas: {replicas}
  expect:
    signals: [QuotaExceeded]
  slo: {{detectWithin: 10s, recoverWithin: 60s}}
  timeouts: {{detect: {detect}}}
  settle: 1s
"
        ),
    )
    .unwrap();
    file
}

#[rstest]
#[case::past_the_quota_is_detected(3, Outcome::Passed)]
#[case::within_the_quota_is_harmless_and_fails(1, Outcome::Failed)]
#[tokio::test]
async fn a_run_through_the_entry_point(#[case] replicas: u32, #[case] expected: Outcome) {
    let cp = breakfix::testkit::control_plane();
    let client = cp.admin_client();
    let ns = format!("runner-{replicas}-{}", std::process::id() % 100_000);
    let dir = tempfile::tempdir().unwrap();
    let experiment = load_experiment(&experiment_files(dir.path(), &ns, replicas))
        .unwrap_or_else(|problems| panic!("{problems:?}"));

    let runner = Runner::builder(client.clone())
        .journal_dir(dir.path().join("journal"))
        .build()
        .unwrap();
    let journal = runner.journal_path().to_path_buf();
    let report = runner.run(&[experiment]).await;

    let exp = &report.experiments[0];
    assert_eq!(exp.outcome, expected, "{:#?}", exp);
    let trial = &exp.trials[0];
    match expected {
        Outcome::Passed => {
            assert_eq!(
                trial.detection.as_ref().map(|d| d.kind),
                Some(SignalKind::QuotaExceeded)
            );
            assert!(trial.marks.recovered.is_some());
        }
        _ => assert!(trial.detection.is_none(), "{:?}", trial.detection),
    }
    // The runner owns the journal: the fault was reverted and the run closed.
    let state = JournalState::read(&journal).unwrap();
    assert!(state.pending.is_empty(), "{:?}", state.pending);
    assert!(state.finished);
    assert!(trial.marks.reverted.is_some(), "the fault was reverted");
    // … and it deleted the baseline it applied.
    let namespace = Api::<Namespace>::all(client).get_opt(&ns).await.unwrap();
    assert!(
        namespace.is_none_or(|n| n.metadata.deletion_timestamp.is_some()),
        "the baseline's namespace is deleted"
    );
}

/// The scale-past-quota experiment built in Rust, no experiment file: the
/// baseline (from [`experiment_files`]) is the only file it names.
fn built_in_rust(dir: &std::path::Path, target_ns: &str) -> Experiment {
    let fault = FaultSpec::Scale(Scale {
        target: ScaleTarget {
            kind: ScalableKind::Deployment,
            namespace: Name::new(target_ns).unwrap(),
            name: Name::new("web").unwrap(),
        },
        replicas: 3,
    });
    let slo = SloSpec::new(
        HumanDuration::parse("10s").unwrap(),
        HumanDuration::parse("60s").unwrap(),
    );
    let mut experiment = Experiment::new(
        Name::new("scale-past-quota-in-rust").unwrap(),
        "baseline",
        fault,
        slo,
    );
    experiment.spec.expect.signals = ExpectedSignals::any(&[SignalKind::QuotaExceeded]);
    experiment.spec.timeouts.detect = Some(HumanDuration::parse("15s").unwrap());
    experiment.spec.settle = HumanDuration::parse("1s").unwrap();
    // The file helper also writes the baseline this experiment names.
    experiment_files(dir, target_ns, 3);
    experiment
}

#[tokio::test]
async fn an_experiment_built_in_rust_runs_through_the_entry_point() {
    let cp = breakfix::testkit::control_plane();
    let client = cp.admin_client();
    let ns = format!("rust-{}", std::process::id() % 100_000);
    let dir = tempfile::tempdir().unwrap();
    let experiment = LoadedExperiment::from_experiment(built_in_rust(dir.path(), &ns), dir.path())
        .unwrap_or_else(|problems| panic!("{problems:?}"));

    let runner = Runner::builder(client.clone())
        .journal_dir(dir.path().join("journal"))
        .build()
        .unwrap();
    let journal = runner.journal_path().to_path_buf();
    let report = runner.run(&[experiment]).await;

    let exp = &report.experiments[0];
    assert_eq!(exp.name, "scale-past-quota-in-rust");
    assert_eq!(exp.outcome, Outcome::Passed, "{exp:#?}");
    let trial = &exp.trials[0];
    assert_eq!(
        trial.detection.as_ref().map(|d| d.kind),
        Some(SignalKind::QuotaExceeded)
    );
    assert!(trial.marks.reverted.is_some() && trial.marks.recovered.is_some());
    let state = JournalState::read(&journal).unwrap();
    assert!(state.pending.is_empty(), "{:?}", state.pending);
    assert!(state.finished);
}

#[test]
fn an_invalid_experiment_built_in_rust_is_refused_not_run() {
    let dir = tempfile::tempdir().unwrap();
    let ns = format!("rust-bad-{}", std::process::id() % 100_000);
    let mut experiment = built_in_rust(dir.path(), &ns);
    // A namespace the baseline does not own, and a detection timeout
    // shorter than the SLO it must judge.
    if let FaultPlan::Single(FaultSpec::Scale(scale)) = &mut experiment.spec.fault {
        scale.target.namespace = Name::new("somebody-elses").unwrap();
    }
    experiment.spec.timeouts.detect = Some(HumanDuration::parse("5s").unwrap());
    let problems = LoadedExperiment::from_experiment(experiment, dir.path())
        .expect_err("the loader refuses it");
    let messages: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("targets namespace `somebody-elses`")),
        "{messages:#?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("is shorter than spec.slo.detectWithin")),
        "{messages:#?}"
    );
    for d in &problems {
        assert_eq!(
            d.file,
            std::path::Path::new("<rust>/scale-past-quota-in-rust.yaml")
        );
        assert!(d.line.is_some(), "{d}");
    }
}

/// The journal's records, in order.
fn records(path: &std::path::Path) -> Vec<Record> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// For each experiment named in the journal, how many undos it intended
/// and how many of those were reverted.
fn intents_and_reverts(records: &[Record]) -> std::collections::BTreeMap<String, (usize, usize)> {
    let mut owner = std::collections::BTreeMap::new();
    let mut out = std::collections::BTreeMap::<String, (usize, usize)>::new();
    for r in records {
        match r {
            Record::Intent {
                seq, experiment, ..
            } => {
                owner.insert(*seq, experiment.clone());
                out.entry(experiment.clone()).or_default().0 += 1;
            }
            Record::Reverted { seq, .. } => {
                out.entry(owner[seq].clone()).or_default().1 += 1;
            }
            _ => {}
        }
    }
    out
}

/// The namespace a trial's baseline instance ran in, from its timeline.
fn instance_namespace(trial: &breakfix::runner::TrialReport) -> String {
    trial
        .timeline
        .entries
        .iter()
        .find_map(|e| match &e.kind {
            EntryKind::Note { message } => message
                .strip_prefix("baseline instance in ")
                .map(|rest| rest.split([',', ';']).next().unwrap_or(rest).to_string()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no instance note in {:?}", trial.timeline.entries))
}

async fn gone(client: &kube::Client, ns: &str) -> bool {
    Api::<Namespace>::all(client.clone())
        .get_opt(ns)
        .await
        .unwrap()
        .is_none()
}

#[tokio::test]
async fn two_experiments_on_one_baseline_run_side_by_side_each_on_its_own_instance() {
    let cp = breakfix::testkit::control_plane();
    let client = cp.admin_client();
    let ns = format!("side-{}", std::process::id() % 100_000);
    let dir = tempfile::tempdir().unwrap();
    let experiments = [
        load_experiment(&experiment_file(dir.path(), &ns, "past-quota", 3, "15s")).unwrap(),
        load_experiment(&experiment_file(dir.path(), &ns, "within-quota", 1, "15s")).unwrap(),
    ];
    let runner = Runner::builder(client.clone())
        .journal_dir(dir.path().join("journal"))
        .jobs(Jobs::Fixed(NonZeroU32::new(2).unwrap()))
        .build()
        .unwrap();
    let journal = runner.journal_path().to_path_buf();
    let report = runner.run(&experiments).await;

    // In file order, with the verdicts each has alone.
    let outcomes: Vec<_> = report
        .experiments
        .iter()
        .map(|e| (e.name.as_str(), e.outcome))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            ("past-quota", Outcome::Passed),
            ("within-quota", Outcome::Failed)
        ]
    );
    let trials: Vec<_> = report.experiments.iter().map(|e| &e.trials[0]).collect();
    // Each on an instance of its own, and at the same time.
    let namespaces: Vec<String> = trials.iter().map(|t| instance_namespace(t)).collect();
    assert!(
        namespaces[0].starts_with(&format!("{ns}-bf-")),
        "{namespaces:?}"
    );
    assert_ne!(namespaces[0], namespaces[1]);
    let window = |t: &breakfix::runner::TrialReport| {
        (
            t.timeline.entries.first().unwrap().at,
            t.timeline.entries.last().unwrap().at,
        )
    };
    let (a, b) = (window(trials[0]), window(trials[1]));
    assert!(
        a.0 < b.1 && b.0 < a.1,
        "the two ran side by side: {a:?} {b:?}"
    );
    assert!(
        trials[0]
            .injected
            .as_deref()
            .unwrap_or("")
            .contains(&namespaces[0])
    );
    // Each reverted its own fault; the run closed its journal.
    let state = JournalState::read(&journal).unwrap();
    assert!(state.pending.is_empty(), "{:?}", state.pending);
    assert!(state.finished);
    for (experiment, (intents, reverts)) in intents_and_reverts(&records(&journal)) {
        assert!(intents > 0);
        assert_eq!(intents, reverts, "{experiment}: every undo reverted");
    }
    // And the instances are gone, the original namespace never made.
    for ns in namespaces.iter().chain([&ns]) {
        assert!(gone(&client, ns).await, "{ns} is gone");
    }
}

#[tokio::test]
async fn cancelled_with_four_live_every_one_is_reverted() {
    let cp = breakfix::testkit::control_plane();
    let client = cp.admin_client();
    let ns = format!("four-{}", std::process::id() % 100_000);
    let dir = tempfile::tempdir().unwrap();
    // Harmless faults that never show the signal: each stays in until the
    // run is stopped.
    let experiments: Vec<_> = (1..=4)
        .map(|i| {
            load_experiment(&experiment_file(
                dir.path(),
                &ns,
                &format!("held-{i}"),
                1,
                "2m",
            ))
            .unwrap()
        })
        .collect();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let cancel = tokio_util::sync::CancellationToken::new();
    let runner = Runner::builder(client.clone())
        .journal_dir(dir.path().join("journal"))
        .jobs(Jobs::Fixed(NonZeroU32::new(4).unwrap()))
        .events(tx)
        .cancel(cancel.clone())
        .build()
        .unwrap();
    let journal = runner.journal_path().to_path_buf();
    let run = tokio::spawn(async move { runner.run(&experiments).await });
    let mut injected = std::collections::BTreeSet::new();
    while injected.len() < 4 {
        let event = tokio::time::timeout(std::time::Duration::from_secs(60), rx.recv())
            .await
            .expect("four injections within a minute")
            .expect("the run is still going");
        if let RunEvent::Timeline {
            experiment, entry, ..
        } = event
            && matches!(entry.kind, EntryKind::Injected { .. })
        {
            injected.insert(experiment);
        }
    }
    let live = intents_and_reverts(&records(&journal));
    assert_eq!(live.len(), 4, "four experiments journaled: {live:?}");
    cancel.cancel();
    let report = run.await.unwrap();

    assert_eq!(report.exit_code(), 130);
    assert_eq!(report.experiments.len(), 4);
    for e in &report.experiments {
        assert_eq!(e.outcome, Outcome::Interrupted, "{}", e.name);
        assert!(e.trials[0].marks.reverted.is_some(), "{} reverted", e.name);
        assert!(gone(&client, &instance_namespace(&e.trials[0])).await);
    }
    let state = JournalState::read(&journal).unwrap();
    assert!(state.pending.is_empty(), "{:?}", state.pending);
    assert!(state.finished);
    let done = intents_and_reverts(&records(&journal));
    assert_eq!(done.len(), 4);
    for (experiment, (intents, reverts)) in done {
        assert_eq!(intents, reverts, "{experiment}: every undo reverted");
    }
}

#[rstest]
#[case::kept_by_default(false)]
#[case::fresh_when_asked(true)]
#[tokio::test]
async fn an_instance_left_clean_serves_the_next_experiment_on_its_baseline(#[case] fresh: bool) {
    let cp = breakfix::testkit::control_plane();
    let client = cp.admin_client();
    let ns = format!("pool-{}-{}", u8::from(fresh), std::process::id() % 100_000);
    let dir = tempfile::tempdir().unwrap();
    let experiments = [
        load_experiment(&experiment_file(dir.path(), &ns, "first", 3, "15s")).unwrap(),
        load_experiment(&experiment_file(dir.path(), &ns, "second", 3, "15s")).unwrap(),
    ];
    let runner = Runner::builder(client.clone())
        .journal_dir(dir.path().join("journal"))
        .instances(true)
        .fresh_instances(fresh)
        .build()
        .unwrap();
    let journal = runner.journal_path().to_path_buf();
    let report = runner.run(&experiments).await;

    for e in &report.experiments {
        assert_eq!(e.outcome, Outcome::Passed, "{e:#?}");
    }
    let trials: Vec<_> = report.experiments.iter().map(|e| &e.trials[0]).collect();
    let namespaces: Vec<String> = trials.iter().map(|t| instance_namespace(t)).collect();
    let notes: Vec<String> = trials[1]
        .timeline
        .entries
        .iter()
        .filter_map(|e| match &e.kind {
            EntryKind::Note { message } => Some(message.clone()),
            _ => None,
        })
        .collect();
    let kept = notes.iter().any(|n| n.contains("instance kept from first"));
    if fresh {
        assert_ne!(namespaces[0], namespaces[1]);
        assert!(!kept, "{notes:?}");
    } else {
        assert_eq!(namespaces[0], namespaces[1], "the second took the first's");
        assert!(kept, "{notes:?}");
    }
    // Whatever was kept is deleted by the end of the run, and journaled
    // until it is.
    for ns in &namespaces {
        assert!(gone(&client, ns).await, "{ns} is gone");
    }
    let state = JournalState::read(&journal).unwrap();
    assert!(state.pending.is_empty(), "{:?}", state.pending);
    assert!(state.finished);
    for (experiment, (intents, reverts)) in intents_and_reverts(&records(&journal)) {
        assert_eq!(intents, reverts, "{experiment}: every undo reverted");
    }
}
