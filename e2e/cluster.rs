//! Proof that the registry-free kind cluster is real: what the cluster
//! reports when workloads run, resolve, fail to pull, exceed memory and fail
//! probes.

use std::time::Duration;

use breakfix::vocab::SignalKind;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::wait::{Condition, await_condition, conditions};

use crate::support;

const WORKLOAD: &str = "breakfix/workload:0.1.0";

fn pod(name: &str, image: &str, args: &[&str], extra: &str) -> String {
    let args = args
        .iter()
        .map(|a| format!("\"{a}\""))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, labels: {{app: {name}}}}}\nspec:\n  restartPolicy: Always\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: main\n    image: {image}\n    imagePullPolicy: IfNotPresent\n    args: [{args}]\n{extra}"
    )
}

#[tokio::test]
async fn the_workload_image_runs_and_its_deployment_becomes_available() {
    let client = support::client().await;
    let ns = support::namespace(&client, "e2e-available").await;
    support::apply(
        &client,
        &ns,
        &format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web}}\nspec:\n  replicas: 2\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    spec:\n      containers:\n      - name: web\n        image: {WORKLOAD}\n        args: [serve]\n        readinessProbe: {{httpGet: {{path: /readyz, port: 8080}}, periodSeconds: 1}}\n"
        ),
    )
    .await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let available = await_condition(api, "web", conditions::is_deployment_completed());
    tokio::time::timeout(Duration::from_secs(120), available)
        .await
        .expect("deployment never became Available")
        .unwrap();
}

#[tokio::test]
async fn a_service_name_resolves_through_coredns_from_another_pod() {
    let client = support::client().await;
    let ns = support::namespace(&client, "e2e-dns").await;
    support::apply(
        &client,
        &ns,
        "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  selector: {app: web}\n  ports: [{port: 80, targetPort: 8080}]\n",
    )
    .await;
    let name = format!("web.{ns}.svc.cluster.local");
    let probe = "    readinessProbe: {httpGet: {path: /readyz, port: 8080}, periodSeconds: 1}\n";
    support::apply(
        &client,
        &ns,
        &pod(
            "resolver",
            WORKLOAD,
            &["dns-canary", "--names", &name],
            probe,
        ),
    )
    .await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let ready = await_condition(
        pods,
        "resolver",
        conditions::is_pod_running()
            .and(|p: Option<&Pod>| p.is_some_and(breakfix::baseline::steady::pod_ready)),
    );
    tokio::time::timeout(Duration::from_secs(90), ready)
        .await
        .unwrap_or_else(|_| panic!("the DNS canary never resolved {name} (pod never Ready)"))
        .unwrap();
}

#[tokio::test]
async fn an_image_that_does_not_exist_reaches_image_pull_back_off() {
    let client = support::client().await;
    let ns = support::namespace(&client, "e2e-pull").await;
    support::apply(
        &client,
        &ns,
        &pod("typo", "breakfix/wrokload:0.1.0", &["serve"], ""),
    )
    .await;
    let obs = support::signal(
        &client,
        &ns,
        "app=typo",
        SignalKind::ImagePullBackOff,
        Duration::from_secs(120),
    )
    .await;
    assert_eq!(obs.object, "pod/typo");
    assert_eq!(obs.container.as_deref(), Some("main"));
}

#[tokio::test]
async fn a_container_over_its_memory_limit_is_oom_killed() {
    let client = support::client().await;
    let ns = support::namespace(&client, "e2e-oom").await;
    let limits = "    resources: {limits: {memory: 32Mi}}\n";
    support::apply(
        &client,
        &ns,
        &pod("hog", WORKLOAD, &["serve", "--ballast-mib", "128"], limits),
    )
    .await;
    let obs = support::signal(
        &client,
        &ns,
        "app=hog",
        SignalKind::OOMKilled,
        Duration::from_secs(120),
    )
    .await;
    assert_eq!(obs.reason, "OOMKilled");
    assert!(
        obs.message.contains("137"),
        "exit code 137 expected: {}",
        obs.message
    );
}

#[tokio::test]
async fn a_failing_liveness_probe_gives_crash_loop_back_off() {
    let client = support::client().await;
    let ns = support::namespace(&client, "e2e-liveness").await;
    let probe = "    livenessProbe: {httpGet: {path: /healthz, port: 9999}, periodSeconds: 1, failureThreshold: 1}\n";
    support::apply(&client, &ns, &pod("unlive", WORKLOAD, &["serve"], probe)).await;
    let obs = support::signal(
        &client,
        &ns,
        "app=unlive",
        SignalKind::CrashLoopBackOff,
        Duration::from_secs(180),
    )
    .await;
    assert_eq!(obs.container.as_deref(), Some("main"));
}
