//! The library's one entry point, used as a platform team would use it from
//! its own tests: an experiment file, `Runner::builder(..).build()?.run(..)`,
//! and assertions on the returned report, against a real API server and
//! controller manager.
//!
//! The fault scales a Deployment past its namespace's pod quota; the
//! ReplicaSet controller's refusals (`FailedCreate … exceeded quota`) are the
//! signal. Scaled to what the quota allows, the same fault is harmless and
//! the run must fail: nothing to detect.

use breakfix::journal::JournalState;
use breakfix::{Outcome, Runner, SignalKind, load_experiment};
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use rstest::rstest;

const MANIFESTS: &str = "\
apiVersion: v1
kind: ResourceQuota
metadata: {name: pods}
spec:
  hard: {pods: \"1\"}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 0
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: breakfix/workload:0.1.0
          resources: {limits: {cpu: 10m, memory: 16Mi}}
";

/// Writes a baseline in namespace `ns` and an experiment that scales `web`
/// to `replicas`, expecting the quota to refuse pods.
fn experiment_files(dir: &std::path::Path, ns: &str, replicas: u32) -> std::path::PathBuf {
    let baseline = dir.join("baseline");
    std::fs::create_dir_all(baseline.join("manifests")).unwrap();
    std::fs::write(baseline.join("manifests/objects.yaml"), MANIFESTS).unwrap();
    std::fs::write(
        baseline.join("baseline.yaml"),
        format!(
            "apiVersion: breakfix.dev/v1alpha1\nkind: Baseline\nmetadata: {{name: quota}}\nspec:\n  namespace: {ns}\n  steadyState: {{timeout: 30s}}\n"
        ),
    )
    .unwrap();
    let file = dir.join("scale-past-quota.yaml");
    std::fs::write(
        &file,
        format!(
            "apiVersion: breakfix.dev/v1alpha1
kind: Experiment
metadata: {{name: scale-past-quota}}
spec:
  baseline: baseline
  fault:
    scale:
      target: {{namespace: {ns}, name: web}}
      replicas: {replicas}
  expect:
    signals: [QuotaExceeded]
  slo: {{detectWithin: 10s, recoverWithin: 60s}}
  timeouts: {{detect: 15s}}
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
