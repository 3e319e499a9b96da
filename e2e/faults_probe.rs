//! probeMisconfig on the kind cluster: each probe mistake breaks the app in
//! its own way, the kubelet's own reports tell the mistakes apart, the
//! revert puts the Deployment back exactly and the app serves again.

use std::sync::Arc;

use breakfix::detect::Observation;
use breakfix::detect::endpoints::ready_endpoints;
use breakfix::kobj::ObjectRef;
use breakfix::runner::TrialReport;
use breakfix::timeline::EntryKind;
use breakfix::vocab::SignalKind;
use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::ListParams;
use kube::runtime::watcher;
use rstest::rstest;

use crate::support;
use crate::trial::{self, Gauge};

use SignalKind::*;

/// Every observation of the trial, in the order seen.
pub fn observations(trial: &TrialReport) -> Vec<&Observation> {
    trial
        .timeline
        .entries
        .iter()
        .filter_map(|e| match &e.kind {
            EntryKind::Signal { observation, .. } => Some(observation),
            _ => None,
        })
        .collect()
}

fn ready(slices: &[Arc<EndpointSlice>]) -> i64 {
    let slices: Vec<EndpointSlice> = slices.iter().map(|s| (**s).clone()).collect();
    ready_endpoints(&slices) as i64
}

/// Killing Events for a failed startup probe in `probes` since `since`,
/// listed straight from the API server.
async fn startup_kills_since(client: &kube::Client, since: jiff::Timestamp) -> usize {
    let events: Api<Event> = Api::namespaced(client.clone(), "probes");
    events
        .list(&ListParams::default().fields("reason=Killing"))
        .await
        .unwrap()
        .items
        .iter()
        .filter(|e| {
            e.message
                .as_deref()
                .is_some_and(|m| m.contains("failed startup probe"))
                && breakfix::detect::classify::event_time(e).is_some_and(|t| t >= since)
        })
        .count()
}

fn restarts(pods: &[Arc<Pod>]) -> i64 {
    pods.iter()
        .flat_map(|p| {
            p.status
                .iter()
                .flat_map(|s| s.container_statuses.iter().flatten())
        })
        .map(|c| i64::from(c.restart_count))
        .sum()
}

#[rstest]
#[case::wrong_port(
    "probe-liveness-wrong-port.yaml",
    &[Restarted, CrashLoopBackOff],
    (LivenessFailed, "connection refused"),
    &[StartupFailed, ProbeTimeout]
)]
#[case::wrong_path(
    "probe-liveness-wrong-path.yaml",
    &[Restarted, CrashLoopBackOff],
    (LivenessFailed, "statuscode: 404"),
    &[StartupFailed, ProbeTimeout]
)]
#[case::timeout(
    "probe-liveness-timeout.yaml",
    &[ProbeTimeout],
    (ProbeTimeout, "Liveness probe failed"),
    &[StartupFailed, ReadinessFailed]
)]
#[case::readiness(
    "probe-readiness-failing.yaml",
    &[ReadinessFailed],
    (ReadinessFailed, "statuscode: 404"),
    &[LivenessFailed, StartupFailed, ProbeTimeout, Restarted]
)]
#[case::startup(
    "probe-startup-too-short.yaml",
    &[StartupFailed],
    (StartupFailed, "failed startup probe"),
    &[LivenessFailed, ProbeTimeout, ReadinessFailed]
)]
#[tokio::test]
async fn each_probe_mistake_breaks_the_app_its_own_way_and_is_told_apart(
    #[case] file: &str,
    #[case] expected: &[SignalKind],
    #[case] telltale: (SignalKind, &str),
    #[case] absent: &[SignalKind],
) {
    let client = support::client().await;
    let exp = trial::experiment(file);
    trial::steady_baseline(&client, &exp).await;
    let target = ObjectRef::namespaced("apps/v1", "Deployment", "probes", "api");
    let before = trial::spec_of(&client, &target).await;
    let endpoints = Gauge::watch(
        Api::<EndpointSlice>::namespaced(client.clone(), "probes"),
        watcher::Config::default().labels("kubernetes.io/service-name=api"),
        ready,
    );
    let restart_count = Gauge::watch(
        Api::<Pod>::namespaced(client.clone(), "probes"),
        watcher::Config::default().labels("app=api"),
        restarts,
    );

    let run = trial::run(&client, &exp).await;
    let (signal, detect, recover) = run.assert_detected_and_recovered(expected);
    let trial = &run.report.trials[0];
    let seen = observations(trial);
    let (kind, says) = telltale;
    assert!(
        seen.iter()
            .any(|o| o.kind == kind && o.message.contains(says)),
        "the kubelet's report should include {kind} saying `{says}`; saw {seen:#?}"
    );
    for other in absent {
        assert!(
            seen.iter().all(|o| o.kind != *other),
            "{file} must not look like another mistake ({other}); saw {seen:#?}"
        );
    }

    // The test's own eyes: what the mistake did to the app.
    let (injected, reverted) = run.fault_window();
    let during_restarts = restart_count.during(injected, reverted);
    let during_ready = endpoints.during(injected, reverted);
    if expected.contains(&Restarted) {
        assert!(
            during_restarts.iter().any(|n| *n > 0),
            "containers must really have been restarted: {during_restarts:?}"
        );
    }
    if kind == StartupFailed {
        let kills = startup_kills_since(&client, injected).await;
        assert!(
            kills > 0,
            "the kubelet must have killed containers for their startup probe"
        );
    }
    if kind == ReadinessFailed {
        assert_eq!(
            during_ready.last(),
            Some(&0),
            "the Service must be drained when the fault is detected: {during_ready:?}"
        );
    }
    assert!(
        endpoints.all().last().is_some_and(|n| *n >= 2),
        "after recovery the Service serves from both pods again: {:?}",
        endpoints.all()
    );
    assert_eq!(
        trial::spec_of(&client, &target).await,
        before,
        "{target} exactly as before"
    );
    let diagnosis = trial.diagnosis.as_ref().unwrap();
    eprintln!(
        "{file}: {signal} detected in {detect:?}, recovered in {recover:?}; diagnosis: {}",
        diagnosis.summary
    );
}
