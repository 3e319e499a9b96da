//! Baselines against a real API server: server-side apply, idempotence,
//! quota errors and steady-state verdicts.

use std::time::Duration;

use breakfix::baseline::{SteadyState, apply_baseline};
use breakfix::testkit;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ResourceQuota;
use kube::Api;
use kube::api::PostParams;
use kube::runtime::wait::await_condition;

use crate::support;

const APP: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {mode: test}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: web}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      serviceAccountName: web
      containers: [{name: web, image: breakfix/workload:0.1.0}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80}]
"#;

#[tokio::test]
async fn applying_a_baseline_twice_changes_nothing_the_second_time() {
    let ns = testkit::namespace("apply").await;
    let dir = tempfile::tempdir().unwrap();
    let baseline = support::baseline(dir.path(), &ns.name, APP);

    let first = apply_baseline(&ns.client, &baseline, "run-1")
        .await
        .unwrap();
    let deployments: Api<Deployment> = Api::namespaced(ns.client.clone(), &ns.name);
    let before = deployments.get("web").await.unwrap();
    let second = apply_baseline(&ns.client, &baseline, "run-1")
        .await
        .unwrap();
    let after = deployments.get("web").await.unwrap();

    assert_eq!(first, second);
    // The controller manager updates status in between, so resourceVersion
    // moves; the spec (generation) and breakfix's field ownership must not.
    let applied_at = |d: &Deployment| {
        d.metadata
            .managed_fields
            .iter()
            .flatten()
            .find(|m| {
                m.manager.as_deref() == Some("breakfix") && m.operation.as_deref() == Some("Apply")
            })
            .and_then(|m| m.time.clone())
    };
    assert!(
        applied_at(&before).is_some(),
        "breakfix must own its fields via server-side apply"
    );
    assert_eq!(
        applied_at(&before),
        applied_at(&after),
        "re-apply must be a no-op"
    );
    let kinds: Vec<&str> = first.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "Namespace",
            "ConfigMap",
            "ServiceAccount",
            "Service",
            "Deployment"
        ]
    );
    assert_eq!(after.metadata.generation, Some(1));
    let labels = after.metadata.labels.unwrap();
    assert_eq!(
        labels.get("breakfix.dev/run").map(String::as_str),
        Some("run-1")
    );
    assert_eq!(
        labels
            .get("app.kubernetes.io/managed-by")
            .map(String::as_str),
        Some("breakfix")
    );
}

#[tokio::test]
async fn a_quota_rejection_is_surfaced_with_the_api_servers_words() {
    let ns = testkit::namespace("quota").await;
    let quotas: Api<ResourceQuota> = Api::namespaced(ns.client.clone(), &ns.name);
    let quota = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "tight"},
        "spec": {"hard": {"services": "1"}}
    }))
    .unwrap();
    quotas.create(&PostParams::default(), &quota).await.unwrap();
    let computed = |q: Option<&ResourceQuota>| {
        q.and_then(|q| q.status.as_ref())
            .and_then(|s| s.hard.as_ref())
            .is_some()
    };
    tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(quotas, "tight", computed),
    )
    .await
    .expect("the quota controller never computed the quota")
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let two_services = "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {ports: [{port: 80}]}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: b}\nspec: {ports: [{port: 80}]}\n";
    let baseline = support::baseline(dir.path(), &ns.name, two_services);
    let err = apply_baseline(&ns.client, &baseline, "run-q")
        .await
        .unwrap_err();
    let message = err.api_message().expect("an API error");
    assert!(err.to_string().contains("service/b"), "{err}");
    assert!(message.contains("exceeded quota: tight"), "{message}");
    assert!(message.contains("Forbidden"), "{message}");
}

#[tokio::test]
async fn steady_state_times_out_naming_what_is_not_ready() {
    let ns = testkit::namespace("steady").await;
    let dir = tempfile::tempdir().unwrap();
    let baseline = support::baseline(dir.path(), &ns.name, APP);
    apply_baseline(&ns.client, &baseline, "run-s")
        .await
        .unwrap();

    let steady = SteadyState::for_baseline(&baseline);
    let err = steady
        .wait_steady(&ns.client, Duration::from_secs(3))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&format!("deployment/web -n {}", ns.name)),
        "{text}"
    );
    assert!(text.contains("0/1 ready"), "{text}");
}

#[tokio::test]
async fn a_deployment_scaled_to_zero_is_steady_at_once() {
    let ns = testkit::namespace("zero").await;
    let dir = tempfile::tempdir().unwrap();
    let baseline = support::baseline(
        dir.path(),
        &ns.name,
        &APP.replace("replicas: 1", "replicas: 0"),
    );
    apply_baseline(&ns.client, &baseline, "run-z")
        .await
        .unwrap();
    let steady = SteadyState::for_baseline(&baseline);
    steady
        .wait_stable(
            &ns.client,
            Duration::from_millis(500),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_custom_resource_applies_after_the_crd_the_baseline_brings() {
    let ns = testkit::namespace("crd").await;
    let group = format!("{}.example.com", ns.name);
    // Written the wrong way round: the baseline orders the CRD first and
    // waits until it is served before applying the resource.
    let manifests = format!(
        "apiVersion: {group}/v1\nkind: Gadget\nmetadata: {{name: g}}\nspec: {{size: 3}}\n---\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {{name: gadgets.{group}}}\nspec:\n  group: {group}\n  names: {{kind: Gadget, plural: gadgets, singular: gadget}}\n  scope: Namespaced\n  versions:\n    - name: v1\n      served: true\n      storage: true\n      schema: {{openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}}}\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let baseline = support::baseline(dir.path(), &ns.name, &manifests);
    let applied = apply_baseline(&ns.client, &baseline, "run-crd")
        .await
        .unwrap();
    let kinds: Vec<&str> = applied.iter().map(|o| o.kind.as_str()).collect();
    assert_eq!(kinds, ["Namespace", "CustomResourceDefinition", "Gadget"]);
    let gadget = applied.last().unwrap();
    let got = breakfix::kobj::get(&ns.client, gadget).await.unwrap();
    assert_eq!(got.unwrap().data["spec"]["size"], 3);
    breakfix::baseline::delete_baseline(&ns.client, &applied[1..])
        .await
        .unwrap();
}

/// A ConfigMap whose finalizer keeps its namespace terminating until the
/// test removes it: an earlier run's baseline, still being deleted.
const HELD: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: held, finalizers: [breakfix.dev/test-hold]}
data: {mode: test}
"#;

/// Deletes the namespace `ns` (which holds `HELD`) and returns once it is
/// terminating.
async fn start_deleting(client: &kube::Client, ns: &str) {
    use k8s_openapi::api::core::v1::Namespace;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces.delete(ns, &Default::default()).await.unwrap();
    let terminating = await_condition(namespaces, ns, |n: Option<&Namespace>| {
        n.is_some_and(|n| n.metadata.deletion_timestamp.is_some())
    });
    tokio::time::timeout(Duration::from_secs(30), terminating)
        .await
        .unwrap()
        .unwrap();
}

async fn release(client: &kube::Client, ns: &str) {
    let config_maps: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(client.clone(), ns);
    let patch = serde_json::json!({"metadata": {"finalizers": null}});
    config_maps
        .patch(
            "held",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_baseline_waits_for_its_namespace_to_finish_terminating_and_says_so() {
    use breakfix::baseline::apply_baseline_noting;
    let cp = testkit::control_plane();
    let client = cp.admin_client();
    let ns = format!("terminating-{}", std::process::id() % 100_000);
    let dir = tempfile::tempdir().unwrap();
    let held = support::baseline(&dir.path().join("held"), &ns, HELD);
    apply_baseline(&client, &held, "earlier-run").await.unwrap();
    start_deleting(&client, &ns).await;

    let baseline = support::baseline(&dir.path().join("app"), &ns, APP);
    let (noted_tx, noted_rx) = tokio::sync::oneshot::channel();
    let apply = tokio::spawn({
        let client = client.clone();
        async move {
            apply_baseline_noting(&client, &baseline, "next-run", |m| {
                let _ = noted_tx.send(m);
            })
            .await
        }
    });
    let note = tokio::time::timeout(Duration::from_secs(10), noted_rx)
        .await
        .expect("the wait is announced")
        .unwrap();
    assert!(
        note.contains(&format!("namespace {ns} is still being deleted")),
        "{note}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !apply.is_finished(),
        "nothing is applied into a dying namespace"
    );

    release(&client, &ns).await;
    let applied = tokio::time::timeout(Duration::from_secs(60), apply)
        .await
        .expect("the apply goes on once the namespace is gone")
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(applied.iter().any(|o| o.kind == "Deployment"));
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    assert!(deployments.get_opt("web").await.unwrap().is_some());
}

#[tokio::test]
async fn a_namespace_that_never_finishes_terminating_is_a_bounded_wait_with_a_hint() {
    use breakfix::baseline::wait_until_not_terminating;
    let cp = testkit::control_plane();
    let client = cp.admin_client();
    let ns = format!("stuck-{}", std::process::id() % 100_000);
    let dir = tempfile::tempdir().unwrap();
    let held = support::baseline(dir.path(), &ns, HELD);
    apply_baseline(&client, &held, "earlier-run").await.unwrap();
    start_deleting(&client, &ns).await;

    let err = wait_until_not_terminating(&client, &ns, Duration::from_secs(2), |_| {})
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains(&format!("namespace {ns} is still being deleted after 2.0s")),
        "{message}"
    );
    assert!(message.contains("finalizers"), "{message}");
    release(&client, &ns).await;
}
