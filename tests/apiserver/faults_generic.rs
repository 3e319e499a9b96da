//! The generic primitives (patch, delete, scale) and selectorMismatch
//! against a real API server: each journals the object as it was before
//! changing it, and the journal's revert puts back exactly that object.

use breakfix::baseline::apply_baseline;
use breakfix::fault::{
    DeleteObject, Fault, FaultError, Injection, PatchObject, Scale, SelectorMismatch,
};
use breakfix::journal::{Journal, JournalState};
use breakfix::kobj::{self, ObjectRef};
use breakfix::testkit::{self, TestNamespace};
use kube::api::DynamicObject;
use rstest::rstest;

use crate::support;

const SHOP: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  annotations: {team: checkout}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: "breakfix/workload:0.1.0"
          args: [serve]
          ports: [{name: http, containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata:
  name: web
  labels: {app: web}
spec:
  selector: {app: web, tier: front}
  ports:
    - {name: http, port: 80, targetPort: http}
"#;

fn deployment(ns: &str) -> ObjectRef {
    ObjectRef::namespaced("apps/v1", "Deployment", ns, "web")
}

fn service(ns: &str) -> ObjectRef {
    ObjectRef::namespaced("v1", "Service", ns, "web")
}

async fn shop(prefix: &str) -> (TestNamespace, tempfile::TempDir) {
    let ns = testkit::namespace(prefix).await;
    let dir = tempfile::tempdir().unwrap();
    let baseline = support::baseline(&dir.path().join("baseline"), &ns.name, SHOP);
    apply_baseline(&ns.client, &baseline, "run-g")
        .await
        .unwrap();
    synced_by_its_controller(&ns).await;
    (ns, dir)
}

/// Waits until the Deployment controller has written its part of web (the
/// `deployment.kubernetes.io/revision` annotation, the observed
/// generation), so the "before" snapshot is the object a steady baseline
/// has, not one the controller is about to change.
async fn synced_by_its_controller(ns: &TestNamespace) {
    use k8s_openapi::api::apps::v1::Deployment;
    let api: kube::Api<Deployment> = kube::Api::namespaced(ns.client.clone(), &ns.name);
    let synced = kube::runtime::wait::await_condition(api, "web", |d: Option<&Deployment>| {
        d.is_some_and(|d| {
            let annotated = d
                .metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key("deployment.kubernetes.io/revision"));
            let observed = d.status.as_ref().and_then(|s| s.observed_generation);
            annotated && observed >= d.metadata.generation
        })
    });
    tokio::time::timeout(std::time::Duration::from_secs(30), synced)
        .await
        .expect("the Deployment controller syncs web within 30s")
        .unwrap();
}

async fn live(ns: &TestNamespace, target: &ObjectRef) -> Option<DynamicObject> {
    kobj::get(&ns.client, target).await.unwrap()
}

async fn inject<F: Fault>(
    ns: &TestNamespace,
    journal: &mut Journal,
    fault: &F,
) -> Result<Injection, FaultError> {
    let mut ctx = support::context(&ns.client, journal, "generic", "run-g");
    fault.inject(&mut ctx).await
}

/// Injects, checks `broken` on the live object, reverts, and checks the
/// object is exactly as before.
async fn round_trip<F: Fault>(
    prefix: &str,
    fault: impl Fn(&str) -> F,
    target: impl Fn(&str) -> ObjectRef,
    broken: impl Fn(Option<&DynamicObject>) -> bool,
) {
    let (ns, dir) = shop(prefix).await;
    let target = target(&ns.name);
    let before = live(&ns, &target).await.expect("the baseline object");
    let mut journal = support::journal(&dir.path().join("journal"), "run-g");
    let fault = fault(&ns.name);
    assert_eq!(fault.validate(), Ok(()));
    inject(&ns, &mut journal, &fault)
        .await
        .unwrap_or_else(|e| panic!("inject: {e}"));
    let during = live(&ns, &target).await;
    assert!(broken(during.as_ref()), "not broken: {during:?}");

    let errors = journal.revert_all(&ns.client).await;
    assert!(errors.is_empty(), "{errors:?}");
    assert!(
        JournalState::read(journal.path())
            .unwrap()
            .pending
            .is_empty()
    );
    let after = live(&ns, &target).await.expect("restored");
    assert_eq!(
        support::user_fields(&after),
        support::user_fields(&before),
        "{target} must be exactly as before"
    );
}

fn yaml<T: serde::de::DeserializeOwned>(text: String) -> T {
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn selector_app(obj: Option<&DynamicObject>) -> Option<String> {
    obj?.data
        .pointer("/spec/selector/app")?
        .as_str()
        .map(String::from)
}

fn target_port(obj: Option<&DynamicObject>) -> Option<serde_json::Value> {
    obj?.data.pointer("/spec/ports/0/targetPort").cloned()
}

#[rstest]
#[case::merge("type: merge\npatch: {spec: {selector: {app: nope, tier: null}}}")]
#[case::json("type: json\npatch: [{op: replace, path: /spec/selector, value: {app: nope}}]")]
#[case::strategic("type: strategic\npatch: {spec: {selector: {app: nope}}}")]
#[tokio::test]
async fn a_patch_of_each_type_is_reverted_exactly(#[case] body: &str) {
    round_trip(
        "patch",
        |ns| {
            yaml::<PatchObject>(format!(
                "target: {{apiVersion: v1, kind: Service, namespace: {ns}, name: web}}\n{body}\n"
            ))
        },
        service,
        |s| selector_app(s).as_deref() == Some("nope"),
    )
    .await;
}

#[tokio::test]
async fn a_json_patch_of_a_port_is_reverted_exactly() {
    round_trip(
        "patch-port",
        |ns| {
            yaml::<PatchObject>(format!(
                "target: {{apiVersion: v1, kind: Service, namespace: {ns}, name: web}}\ntype: json\npatch: [{{op: replace, path: /spec/ports/0/targetPort, value: 9999}}]\n"
            ))
        },
        service,
        |s| target_port(s) == Some(serde_json::json!(9999)),
    )
    .await;
}

#[tokio::test]
async fn a_deleted_service_is_recreated_from_its_snapshot() {
    round_trip(
        "delete",
        |ns| {
            yaml::<DeleteObject>(format!(
                "target: {{apiVersion: v1, kind: Service, namespace: {ns}, name: web}}\n"
            ))
        },
        service,
        |s| s.is_none(),
    )
    .await;
}

#[tokio::test]
async fn a_deployment_scaled_to_zero_gets_its_replicas_back() {
    round_trip(
        "scale",
        |ns| {
            yaml::<Scale>(format!(
                "target: {{namespace: {ns}, name: web}}\nreplicas: 0\n"
            ))
        },
        deployment,
        |d| {
            d.and_then(|d| d.data.pointer("/spec/replicas"))
                .and_then(serde_json::Value::as_u64)
                == Some(0)
        },
    )
    .await;
}

#[tokio::test]
async fn a_mismatched_selector_is_reverted_exactly() {
    round_trip(
        "selector",
        |ns| yaml::<SelectorMismatch>(format!("target: {{namespace: {ns}, service: web}}\n")),
        service,
        |s| {
            selector_app(s).as_deref() == Some("ewb")
                && s.and_then(|s| s.data.pointer("/spec/selector/tier"))
                    .and_then(|t| t.as_str())
                    == Some("rfont")
        },
    )
    .await;
}

#[tokio::test]
async fn a_selector_that_still_matches_pods_is_refused_and_nothing_changes() {
    let (ns, dir) = shop("selector-match").await;
    // The tier has no nodes, but the ReplicaSet's pods exist (Pending) with their labels.
    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> =
        kube::Api::namespaced(ns.client.clone(), &ns.name);
    support::web_pods(&pods, 2).await;
    let before = live(&ns, &service(&ns.name)).await.unwrap();
    let mut journal = support::journal(&dir.path().join("journal"), "run-g");
    let fault: SelectorMismatch = yaml(format!(
        "target: {{namespace: {}, service: web}}\nselector: {{app: web}}\n",
        ns.name
    ));
    let err = inject(&ns, &mut journal, &fault).await.unwrap_err();
    assert!(err.to_string().contains("still matches 2 pod(s)"), "{err}");
    assert!(journal.pending().is_empty(), "nothing was journaled");
    assert_eq!(
        support::user_fields(&live(&ns, &service(&ns.name)).await.unwrap()),
        support::user_fields(&before)
    );
}

#[tokio::test]
async fn a_patch_that_changes_nothing_is_an_error_and_reverts_cleanly() {
    let (ns, dir) = shop("patch-noop").await;
    let mut journal = support::journal(&dir.path().join("journal"), "run-g");
    let fault: PatchObject = yaml(format!(
        "target: {{apiVersion: v1, kind: Service, namespace: {}, name: web}}\npatch: {{metadata: {{labels: {{app: web}}}}}}\n",
        ns.name
    ));
    let err = inject(&ns, &mut journal, &fault).await.unwrap_err();
    assert!(
        err.to_string().contains("unchanged; it breaks nothing"),
        "{err}"
    );
    assert!(journal.revert_all(&ns.client).await.is_empty());
}
