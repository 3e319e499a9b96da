//! Detection fed by real watch events from a real controller manager.

use std::time::Duration;

use breakfix::baseline::apply_baseline;
use breakfix::detect::{Scope, first_expected, merged, watch_pod_signals};
use breakfix::testkit;
use breakfix::vocab::SignalKind;
use futures::StreamExt;

use crate::support;

const STALLING: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  progressDeadlineSeconds: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "breakfix/workload:0.1.0"}]
"#;

#[tokio::test]
async fn a_rollout_past_its_deadline_is_seen_through_a_watch() {
    let ns = testkit::namespace("stall").await;
    let dir = tempfile::tempdir().unwrap();
    let baseline = support::baseline(dir.path(), &ns.name, STALLING);
    let scope = Scope {
        deployment: Some("web".into()),
        pod_selector: Some("app=web".into()),
        ..Scope::namespace(&ns.name)
    };
    apply_baseline(&ns.client, &baseline, "run-d")
        .await
        .unwrap();
    // No node will ever run the pod, so the controller manager declares the
    // rollout stalled once the 2 s deadline passes.
    let signals = merged(vec![
        watch_pod_signals(&ns.client, &scope, Default::default()).boxed(),
    ]);
    let mut seen = Vec::new();
    let obs = first_expected(
        signals,
        &[SignalKind::RolloutStalled],
        Duration::from_secs(60),
        |o| seen.push(o.kind),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}; saw {seen:?}"));
    assert_eq!(obs.object, "deployment/web");
    assert_eq!(obs.reason, "ProgressDeadlineExceeded");
    assert!(
        obs.since.is_some(),
        "the condition's transition time is the signal's cluster time"
    );
}

#[tokio::test]
async fn waiting_for_a_signal_that_never_comes_times_out() {
    let ns = testkit::namespace("quiet").await;
    let scope = Scope::namespace(&ns.name);
    let signals = merged(vec![
        watch_pod_signals(&ns.client, &scope, Default::default()).boxed(),
    ]);
    let err = first_expected(
        signals,
        &[SignalKind::OOMKilled],
        Duration::from_millis(1500),
        |_| {},
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("no expected signal (OOMKilled)"),
        "{err}"
    );
}
