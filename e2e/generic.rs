//! The generic primitives on the kind cluster, each through its example
//! experiment: scale web to zero, patch its Service's targetPort, delete its
//! Service. Each must break the shop for real (seen here through our own
//! watches), be detected with the signals the experiment names, and leave
//! the touched object exactly as it was.

use breakfix::kobj::ObjectRef;
use breakfix::vocab::SignalKind;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::runtime::watcher;

use crate::selector_mismatch::ready_endpoint_count;
use crate::support;
use crate::trial::{self, Gauge};

fn web_endpoints(client: &kube::Client) -> Gauge {
    Gauge::watch(
        Api::<EndpointSlice>::namespaced(client.clone(), "shop"),
        watcher::Config::default().labels("kubernetes.io/service-name=web"),
        ready_endpoint_count,
    )
}

#[tokio::test]
async fn scale_to_zero_leaves_the_service_empty_and_gets_its_replicas_back() {
    let client = support::client().await;
    let exp = trial::experiment("scale-to-zero.yaml");
    trial::steady_baseline(&client, &exp).await;
    let web = ObjectRef::namespaced("apps/v1", "Deployment", "shop", "web");
    let before = trial::spec_of(&client, &web).await;
    let endpoints = web_endpoints(&client);

    let run = trial::run(&client, &exp).await;
    let (signal, detect, recover) =
        run.assert_detected_and_recovered(&[SignalKind::EndpointsEmpty, SignalKind::CanaryFailing]);
    let (injected, reverted) = run.fault_window();
    let seen = endpoints.during(injected, reverted);
    assert!(seen.contains(&0), "web's endpoints never emptied: {seen:?}");
    assert_eq!(trial::spec_of(&client, &web).await, before);
    eprintln!("scale-to-zero: {signal} detected in {detect:?}, recovered in {recover:?}");
}

#[tokio::test]
async fn a_patched_target_port_fails_the_clients_while_every_endpoint_stays_ready() {
    let client = support::client().await;
    let exp = trial::experiment("patch-service-port.yaml");
    trial::steady_baseline(&client, &exp).await;
    let service = ObjectRef::namespaced("v1", "Service", "shop", "web");
    let before = trial::spec_of(&client, &service).await;
    let endpoints = web_endpoints(&client);

    let run = trial::run(&client, &exp).await;
    let (signal, detect, recover) = run.assert_detected_and_recovered(&[SignalKind::CanaryFailing]);
    let (injected, reverted) = run.fault_window();
    let seen = endpoints.during(injected, reverted);
    assert!(
        seen.iter().all(|n| *n == 2),
        "only the port breaks; the endpoints stay ready: {seen:?}"
    );
    let detection = run.report.trials[0].detection.clone().unwrap();
    assert!(
        detection.object.starts_with("pod/http-canary-"),
        "{}",
        detection.object
    );
    assert_eq!(trial::spec_of(&client, &service).await, before);
    eprintln!("patch-service-port: {signal} detected in {detect:?}, recovered in {recover:?}");
}

#[tokio::test]
async fn a_deleted_service_is_missed_by_its_clients_and_comes_back_the_same() {
    let client = support::client().await;
    let exp = trial::experiment("delete-service.yaml");
    trial::steady_baseline(&client, &exp).await;
    let service = ObjectRef::namespaced("v1", "Service", "shop", "web");
    let before = trial::spec_of(&client, &service).await;
    let services = Gauge::watch(
        Api::<Service>::namespaced(client.clone(), "shop"),
        watcher::Config::default().fields("metadata.name=web"),
        |s| s.len() as i64,
    );

    let run = trial::run(&client, &exp).await;
    let (signal, detect, recover) =
        run.assert_detected_and_recovered(&[SignalKind::EndpointsEmpty, SignalKind::CanaryFailing]);
    let (injected, reverted) = run.fault_window();
    let seen = services.during(injected, reverted);
    assert!(seen.contains(&0), "the Service never disappeared: {seen:?}");
    assert_eq!(
        trial::spec_of(&client, &service).await,
        before,
        "recreated with the same spec (clusterIP included)"
    );
    eprintln!("delete-service: {signal} detected in {detect:?}, recovered in {recover:?}");
}
