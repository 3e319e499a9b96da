//! missingMount on the kind cluster: with its Secret gone (or its ConfigMap
//! reference pointing at a name nobody created) a rollout's new pod cannot
//! start — FailedMount or CreateContainerConfigError, as the kubelet reports
//! it — while the old pods keep serving; the revert brings back the exact
//! object and Deployment.

use std::sync::Arc;

use breakfix::kobj::ObjectRef;
use breakfix::vocab::SignalKind;
use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube::runtime::watcher;
use rstest::rstest;

use crate::support;
use crate::trial::{self, Gauge};

fn available(deployments: &[Arc<Deployment>]) -> i64 {
    deployments
        .first()
        .and_then(|d| d.status.as_ref())
        .and_then(|s| s.available_replicas)
        .map(i64::from)
        .unwrap_or(0)
}

#[rstest]
#[case::secret_deleted(
    "missing-secret-mount.yaml",
    "Secret",
    "app-credentials",
    SignalKind::FailedMount,
    "secret \"app-credentials\" not found"
)]
#[case::config_map_renamed(
    "missing-configmap-env.yaml",
    "ConfigMap",
    "app-settings",
    SignalKind::CreateContainerConfigError,
    "configmap \"app-settings-v2\" not found"
)]
#[tokio::test]
async fn new_pods_cannot_start_while_the_old_ones_serve(
    #[case] file: &str,
    #[case] kind: &str,
    #[case] name: &str,
    #[case] expected: SignalKind,
    #[case] message: &str,
) {
    let client = support::client().await;
    let exp = trial::experiment(file);
    trial::steady_baseline(&client, &exp).await;
    let deployment = ObjectRef::namespaced("apps/v1", "Deployment", "mounts", "app");
    let object = ObjectRef::namespaced("v1", kind, "mounts", name);
    let spec_before = trial::spec_of(&client, &deployment).await;
    let object_before = trial::content_of(&client, &object).await;
    let availability = Gauge::watch(
        Api::<Deployment>::namespaced(client.clone(), "mounts"),
        watcher::Config::default().fields("metadata.name=app"),
        available,
    );

    let run = trial::run(&client, &exp).await;
    let (signal, detect, recover) = run.assert_detected_and_recovered(&[expected]);
    let trial = &run.report.trials[0];
    let detection = trial.detection.as_ref().unwrap();
    assert!(
        detection.message.contains(message),
        "the kubelet names the missing object: {}",
        detection.message
    );
    assert!(
        trial
            .diagnosis
            .as_ref()
            .unwrap()
            .summary
            .contains(&format!("the {kind} `")),
        "the diagnosis names the missing {kind}: {:?}",
        trial.diagnosis
    );
    let (injected, reverted) = run.fault_window();
    let served = availability.during(injected, reverted);
    assert!(
        !served.is_empty() && served.iter().all(|n| *n >= 2),
        "the old pods keep serving while the new one is stuck: {served:?}"
    );
    assert_eq!(trial::spec_of(&client, &deployment).await, spec_before);
    assert_eq!(
        trial::content_of(&client, &object).await,
        object_before,
        "{object} exactly as before"
    );
    eprintln!("{file}: {signal} detected in {detect:?}, recovered in {recover:?}");
}
