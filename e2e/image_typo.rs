//! imageTypo's variants on the kind cluster: a typo in the repository, in
//! an init container's image, and the stalled rollout seen from the
//! Deployment. With maxUnavailable 0 the old ReplicaSet keeps serving all
//! along, which these tests check with their own watches.

use breakfix::kobj::ObjectRef;
use breakfix::vocab::SignalKind;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::runtime::watcher;

use crate::selector_mismatch::ready_endpoint_count;
use crate::support;
use crate::trial::{self, Gauge};

fn available(deployments: &[std::sync::Arc<Deployment>]) -> i64 {
    deployments
        .first()
        .and_then(|d| d.status.as_ref())
        .and_then(|s| s.available_replicas)
        .map(i64::from)
        .unwrap_or(0)
}

/// Runs `file` against `deployment` in `ns`, asserting the old pods keep
/// serving (two available replicas, two ready endpoints) throughout.
async fn old_pods_keep_serving(
    file: &str,
    ns: &str,
    deployment: &str,
    expected: &[SignalKind],
) -> trial::Run {
    let client = support::client().await;
    let exp = trial::experiment(file);
    trial::steady_baseline(&client, &exp).await;
    let target = ObjectRef::namespaced("apps/v1", "Deployment", ns, deployment);
    let before = trial::spec_of(&client, &target).await;
    let availability = Gauge::watch(
        Api::<Deployment>::namespaced(client.clone(), ns),
        watcher::Config::default().fields(&format!("metadata.name={deployment}")),
        available,
    );
    let endpoints = Gauge::watch(
        Api::<EndpointSlice>::namespaced(client.clone(), ns),
        watcher::Config::default().labels(&format!("kubernetes.io/service-name={deployment}")),
        ready_endpoint_count,
    );

    let run = trial::run(&client, &exp).await;
    let (signal, detect, recover) = run.assert_detected_and_recovered(expected);
    let (injected, reverted) = run.fault_window();
    let available = availability.during(injected, reverted);
    assert!(
        !available.is_empty() && available.iter().all(|n| *n >= 2),
        "the old ReplicaSet must keep both replicas available: {available:?}"
    );
    let ready = endpoints.during(injected, reverted);
    assert!(
        !ready.is_empty() && ready.iter().all(|n| *n >= 2),
        "the Service must keep two ready endpoints: {ready:?}"
    );
    assert_eq!(
        trial::spec_of(&client, &target).await,
        before,
        "{target} exactly as before"
    );
    eprintln!("{file}: {signal} detected in {detect:?}, recovered in {recover:?}");
    run
}

#[tokio::test]
async fn a_repository_typo_stalls_new_pods_while_the_old_ones_serve() {
    old_pods_keep_serving(
        "image-typo-repository.yaml",
        "shop",
        "web",
        &[SignalKind::ErrImagePull, SignalKind::ImagePullBackOff],
    )
    .await;
}

#[tokio::test]
async fn an_init_container_typo_is_seen_on_the_init_container() {
    let run = old_pods_keep_serving(
        "image-typo-init-container.yaml",
        "checkout",
        "checkout",
        &[SignalKind::ErrImagePull, SignalKind::ImagePullBackOff],
    )
    .await;
    // Detection is fast (the kubelet's pull event), often before the pod's
    // status shows the waiting init container, so the evidence is what was
    // broken and what was seen: the init container's image, a pull failure,
    // while the app containers of the old pods kept serving (checked above).
    let trial = &run.report.trials[0];
    let injected = trial.injected.as_deref().unwrap_or_default();
    assert!(injected.contains("container migrate"), "{injected}");
    let detection = trial.detection.as_ref().expect("a detection");
    assert!(detection.message.contains("0.1.00"), "{detection:?}");
}

#[tokio::test]
async fn a_stalled_rollout_is_reported_by_the_deployment_while_the_old_pods_serve() {
    let run = old_pods_keep_serving(
        "image-typo-rollout-stalled.yaml",
        "shop",
        "web",
        &[SignalKind::RolloutStalled],
    )
    .await;
    let availability = run.report.slos.iter().find(|v| v.slo == "availability");
    assert!(
        availability.is_some_and(|v| v.met),
        "the http-canary's availability SLO must hold: {:#?}",
        run.report.slos
    );
}
