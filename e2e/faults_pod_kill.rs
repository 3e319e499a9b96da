//! podKill on the kind cluster: a pod deleted is seen gone at once, nothing
//! is reverted, and the ReplicaSet brings the count back with a new pod;
//! recovery is timed from the deletion.

use std::collections::BTreeSet;
use std::sync::Arc;

use breakfix::baseline::steady::pod_ready;
use breakfix::kobj::ObjectRef;
use breakfix::runner::Outcome;
use breakfix::vocab::SignalKind;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::runtime::watcher;
use kube::{Api, ResourceExt};

use crate::support;
use crate::trial::{self, Gauge};

fn ready_pods(pods: &[Arc<Pod>]) -> i64 {
    pods.iter()
        .filter(|p| pod_ready(p) && p.metadata.deletion_timestamp.is_none())
        .count() as i64
}

async fn pod_names(api: &Api<Pod>) -> BTreeSet<String> {
    api.list(&ListParams::default().labels("app=web"))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .map(|p| p.name_any())
        .collect()
}

#[tokio::test]
async fn a_killed_pod_is_seen_gone_and_replaced_without_a_revert() {
    let client = support::client().await;
    let exp = trial::experiment("pod-kill.yaml");
    trial::steady_baseline(&client, &exp).await;
    let target = ObjectRef::namespaced("apps/v1", "Deployment", "shop", "web");
    let spec_before = trial::spec_of(&client, &target).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    let names_before = pod_names(&pods).await;
    let ready = Gauge::watch(
        pods.clone(),
        watcher::Config::default().labels("app=web"),
        ready_pods,
    );

    let run = trial::run(&client, &exp).await;
    let trial = &run.report.trials[0];
    let detection = trial.detection.as_ref().unwrap_or_else(|| {
        panic!(
            "no detection; error {:?}; timeline {:#?}",
            trial.error, trial.timeline
        )
    });
    assert_eq!(detection.kind, SignalKind::PodGone);
    let victim = detection.object.trim_start_matches("pod/").to_string();
    assert!(
        names_before.contains(&victim),
        "{victim} was one of {names_before:?}"
    );
    assert_eq!(
        run.report.outcome,
        Outcome::Passed,
        "{:#?}",
        run.report.slos
    );
    assert!(
        trial.marks.reverted.is_none(),
        "a self-healing fault is not reverted"
    );
    assert!(run.journal.pending.is_empty(), "{:?}", run.journal.pending);
    let recovered = trial.marks.time_to_recover().expect("recovered");
    let detected = trial.marks.time_to_detect().expect("detected");

    let names_after = pod_names(&pods).await;
    assert_eq!(names_after.len(), 2, "{names_after:?}");
    assert!(
        !names_after.contains(&victim),
        "the victim was replaced: {names_after:?}"
    );
    let seen = ready.all();
    assert!(
        seen.contains(&1) && seen.last() == Some(&2),
        "ready pods dipped to 1 and came back to 2: {seen:?}"
    );
    assert_eq!(trial::spec_of(&client, &target).await, spec_before);
    eprintln!(
        "pod-kill: PodGone detected in {detected:?}, recovered in {recovered:?} (from the deletion)"
    );
}
