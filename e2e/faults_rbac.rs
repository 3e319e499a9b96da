//! rbacBindingDelete on the kind cluster: the api-canary's own calls get 403
//! once its binding is gone, the detector reads that off the canary's
//! /status and has a SubjectAccessReview confirm it, and the revert brings
//! back the exact binding.

use std::sync::Arc;

use breakfix::baseline::steady::pod_ready;
use breakfix::kobj::ObjectRef;
use breakfix::vocab::SignalKind;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::watcher;
use rstest::rstest;

use crate::support;
use crate::trial::{self, Gauge};

fn ready_pods(pods: &[Arc<Pod>]) -> i64 {
    pods.iter().filter(|p| pod_ready(p)).count() as i64
}

#[rstest]
#[case::role_binding(
    "rbac-rolebinding-delete.yaml",
    ObjectRef::namespaced(
        "rbac.authorization.k8s.io/v1",
        "RoleBinding",
        "canaries",
        "api-canary-reader"
    ),
    "app=api-canary",
    "list configmaps"
)]
#[case::cluster_role_binding(
    "rbac-clusterrolebinding-delete.yaml",
    ObjectRef {
        api_version: "rbac.authorization.k8s.io/v1".into(),
        kind: "ClusterRoleBinding".into(),
        namespace: None,
        name: "breakfix-canaries-pod-reader".into(),
    },
    "app=api-canary-cluster",
    "list pods"
)]
#[tokio::test]
async fn a_deleted_binding_gives_real_403s_that_a_review_confirms(
    #[case] file: &str,
    #[case] target: ObjectRef,
    #[case] canary: &str,
    #[case] access: &str,
) {
    let client = support::client().await;
    let exp = trial::experiment(file);
    trial::steady_baseline(&client, &exp).await;
    let before = trial::content_of(&client, &target).await;
    let readiness = Gauge::watch(
        Api::<Pod>::namespaced(client.clone(), "canaries"),
        watcher::Config::default().labels(canary),
        ready_pods,
    );

    let run = trial::run(&client, &exp).await;
    let (signal, detect, recover) = run.assert_detected_and_recovered(&[SignalKind::Forbidden]);
    let detection = run.report.trials[0].detection.as_ref().unwrap();
    assert!(
        detection.message.contains("403 Forbidden"),
        "the canary's own call got 403: {}",
        detection.message
    );
    let review = detection
        .evidence
        .iter()
        .find(|e| e.starts_with("SubjectAccessReview"))
        .unwrap_or_else(|| panic!("no SubjectAccessReview in {:?}", detection.evidence));
    assert!(
        review.contains(&format!("may not {access}")) && review.contains("allowed=false"),
        "{review}"
    );
    let diagnosis = run.report.trials[0].diagnosis.as_ref().unwrap();
    assert!(
        diagnosis.evidence.iter().any(|e| e == review),
        "the review is part of the diagnosis: {diagnosis:?}"
    );

    let (injected, reverted) = run.fault_window();
    assert!(
        readiness.during(injected, reverted).contains(&0),
        "the canary itself must have turned Unready: {:?}",
        readiness.all()
    );
    assert_eq!(
        readiness.all().last(),
        Some(&1),
        "and Ready again after the revert"
    );
    assert_eq!(
        trial::content_of(&client, &target).await,
        before,
        "{target} exactly as before"
    );
    eprintln!("{file}: {signal} detected in {detect:?}, recovered in {recover:?}; {review}");
}
