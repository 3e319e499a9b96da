//! selectorMismatch on the kind cluster: web's Service stops matching its
//! pods; the endpoints empty out while every pod stays Ready, breakfix
//! detects it from the EndpointSlices (or the canary), and the revert puts
//! the Service back exactly.

use breakfix::detect::endpoints::ready_endpoints;
use breakfix::kobj::ObjectRef;
use breakfix::vocab::SignalKind;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::runtime::watcher;

use crate::support;
use crate::trial::{self, Gauge};

/// Ready endpoints across the slices watched.
pub fn ready_endpoint_count(slices: &[std::sync::Arc<EndpointSlice>]) -> i64 {
    let slices: Vec<EndpointSlice> = slices.iter().map(|s| (**s).clone()).collect();
    ready_endpoints(&slices) as i64
}

/// Ready pods among those watched.
pub fn ready_pod_count(pods: &[std::sync::Arc<Pod>]) -> i64 {
    pods.iter()
        .filter(|p| breakfix::baseline::steady::pod_ready(p))
        .count() as i64
}

#[tokio::test]
async fn a_selector_matching_nothing_empties_the_endpoints_of_healthy_pods() {
    let client = support::client().await;
    let exp = trial::experiment("selector-mismatch.yaml");
    trial::steady_baseline(&client, &exp).await;
    let service = ObjectRef::namespaced("v1", "Service", "shop", "web");
    let before = trial::spec_of(&client, &service).await;

    let endpoints = Gauge::watch(
        Api::<EndpointSlice>::namespaced(client.clone(), "shop"),
        watcher::Config::default().labels("kubernetes.io/service-name=web"),
        ready_endpoint_count,
    );
    let pods = Gauge::watch(
        Api::<Pod>::namespaced(client.clone(), "shop"),
        watcher::Config::default().labels("app=web"),
        ready_pod_count,
    );
    let run = trial::run(&client, &exp).await;
    let (signal, detect, recover) =
        run.assert_detected_and_recovered(&[SignalKind::EndpointsEmpty, SignalKind::CanaryFailing]);
    let (injected, reverted) = run.fault_window();

    let seen = endpoints.during(injected, reverted);
    assert!(
        seen.contains(&0),
        "the Service's endpoints never emptied: {seen:?}"
    );
    let ready = pods.during(injected, reverted);
    assert!(
        ready.iter().all(|n| *n == 2),
        "web's pods must stay Ready all along: {ready:?}"
    );
    let diagnosis = run.report.trials[0].diagnosis.clone().unwrap();
    if signal == SignalKind::EndpointsEmpty {
        assert!(
            diagnosis
                .evidence
                .iter()
                .any(|e| e.contains("selects app=ewb — 0 of")),
            "{diagnosis:#?}"
        );
    }
    assert_eq!(
        trial::spec_of(&client, &service).await,
        before,
        "the Service exactly as before"
    );
    eprintln!("selector-mismatch: {signal} detected in {detect:?}, recovered in {recover:?}");
}
