//! probeMisconfig on a real API server: each mistake replaces exactly one
//! probe (the strategic-merge `$patch: replace` leaves nothing of the old
//! probe behind), the revert restores the Deployment exactly, and the
//! endpoints source sees a Service with nothing ready behind it. (The
//! probes failing needs a kubelet: see e2e/faults_probe.rs.)

use std::time::Duration;

use breakfix::detect::endpoints::watch_service_endpoints;
use breakfix::detect::{first_expected, merged};
use breakfix::fault::probe_misconfig::{ProbeMistake, misconfigure};
use breakfix::testkit;
use breakfix::vocab::SignalKind;
use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use rstest::rstest;

use crate::support;

const API: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: api}
spec:
  replicas: 1
  strategy: {type: Recreate}
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers:
        - name: api
          image: breakfix/workload:0.1.0
          ports: [{name: http, containerPort: 8080}]
          startupProbe: {httpGet: {path: /healthz, port: http}, periodSeconds: 1, failureThreshold: 30, timeoutSeconds: 3}
          readinessProbe: {httpGet: {path: /readyz, port: http}, periodSeconds: 2, failureThreshold: 2, timeoutSeconds: 3}
          livenessProbe: {tcpSocket: {port: http}, periodSeconds: 2, failureThreshold: 3, timeoutSeconds: 3}
---
apiVersion: v1
kind: Service
metadata: {name: api}
spec:
  selector: {app: api}
  ports: [{port: 80, targetPort: http}]
"#;

#[rstest]
#[case::wrong_port("livenessWrongPort")]
#[case::timeout("livenessTimeout")]
#[case::readiness("readinessFailing")]
#[case::startup("startupTooShort")]
#[case::same_as_readiness("livenessIsReadiness")]
#[tokio::test]
async fn one_probe_is_replaced_wholesale_and_restored_exactly(#[case] mistake: &str) {
    let ns = testkit::namespace(&format!("fault-probe-{}", mistake.to_lowercase())).await;
    let dir = tempfile::tempdir().unwrap();
    let baseline = support::baseline(&dir.path().join("baseline"), &ns.name, API);
    breakfix::baseline::apply_baseline(&ns.client, &baseline, "probe-run")
        .await
        .unwrap();
    let deployments: Api<Deployment> = Api::namespaced(ns.client.clone(), &ns.name);
    let before = deployments.get("api").await.unwrap().spec.unwrap();
    let container = &before.template.spec.as_ref().unwrap().containers[0];
    let parsed: ProbeMistake = serde_json::from_value(mistake.into()).unwrap();
    let expected = misconfigure(container, parsed).unwrap();

    let fault = support::fault(&format!(
        "probeMisconfig:\n  target: {{namespace: {}, deployment: api}}\n  mistake: {mistake}\n",
        ns.name
    ));
    let mut journal = support::journal(dir.path(), "probe-run");
    let mut ctx = support::context(&ns.client, &mut journal, "probe", "probe-run");
    let injection = fault.inject(&mut ctx).await.unwrap();
    assert_eq!(injection.extra.len(), 1, "one Service selects the pods");
    let after = deployments.get("api").await.unwrap().spec.unwrap();
    let live = &after.template.spec.as_ref().unwrap().containers[0];
    let probe = match expected.field {
        "livenessProbe" => &live.liveness_probe,
        "readinessProbe" => &live.readiness_probe,
        _ => &live.startup_probe,
    };
    assert_eq!(
        probe.as_ref(),
        Some(&expected.probe),
        "exactly the misconfigured probe"
    );
    if mistake == "livenessIsReadiness" {
        assert!(
            live.liveness_probe.as_ref().unwrap().tcp_socket.is_none(),
            "the old tcpSocket handler must not survive the replace"
        );
    }

    let errors = journal.revert_all(&ns.client).await;
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(deployments.get("api").await.unwrap().spec.unwrap(), before);
}

#[tokio::test]
async fn a_service_with_nothing_ready_behind_it_is_endpoints_empty() {
    let ns = testkit::namespace("fault-probe-endpoints").await;
    let dir = tempfile::tempdir().unwrap();
    let baseline = support::baseline(&dir.path().join("baseline"), &ns.name, API);
    breakfix::baseline::apply_baseline(&ns.client, &baseline, "probe-run")
        .await
        .unwrap();
    // No kubelet runs the pods, so the Service never has a ready endpoint.
    let obs = first_expected(
        merged(vec![watch_service_endpoints(&ns.client, &ns.name, "api")]),
        &[SignalKind::EndpointsEmpty],
        Duration::from_secs(30),
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(obs.object, "service/api");
}
