//! The pieces of podKill that need no kubelet: deleting a pod its
//! ReplicaSet replaces journals nothing and is seen as PodGone by the
//! deletion watch; a pod nothing would replace is refused.

use std::time::Duration;

use breakfix::detect::gone::watch_pod_deletions_listed;
use breakfix::detect::{Scope, first_expected, merged};
use breakfix::kobj::ObjectRef;
use breakfix::testkit;
use breakfix::vocab::SignalKind;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::wait::await_condition;
use kube::{Api, ResourceExt};

use crate::support;

const WEB: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "breakfix/workload:0.1.0"}]
"#;

#[tokio::test]
async fn a_replaceable_pod_is_deleted_unjournaled_seen_gone_and_replaced() {
    let ns = testkit::namespace("fault-podkill").await;
    let dir = tempfile::tempdir().unwrap();
    let baseline = support::baseline(&dir.path().join("baseline"), &ns.name, WEB);
    breakfix::baseline::apply_baseline(&ns.client, &baseline, "kill-run")
        .await
        .unwrap();
    let api: Api<Pod> = Api::namespaced(ns.client.clone(), &ns.name);
    let before = support::web_pods(&api, 2).await;
    assert_eq!(
        before.len(),
        2,
        "the ReplicaSet controller creates the pods"
    );
    let victim = before[0].name_any();

    let scope = Scope {
        pod_selector: Some("app=web".into()),
        ..Scope::namespace(&ns.name)
    };
    let listed = watch_pod_deletions_listed(&ns.client, &scope, Duration::from_secs(30))
        .await
        .unwrap();
    let signals = merged(vec![listed]);
    let mut journal = support::journal(dir.path(), "kill-run");
    let mut ctx = support::context(&ns.client, &mut journal, "kill", "kill-run");
    let deleting = async {
        let target = ObjectRef::namespaced("v1", "Pod", &ns.name, &victim);
        ctx.delete_replaceable(&target, Some(0)).await.unwrap()
    };
    let (obs, deleted) = tokio::join!(
        first_expected(
            signals,
            &[SignalKind::PodGone],
            Duration::from_secs(30),
            |_| {}
        ),
        deleting
    );
    let obs = obs.unwrap();
    assert_eq!(obs.object, format!("pod/{victim}"));
    assert_eq!(deleted.metadata.name.as_deref(), Some(victim.as_str()));
    assert!(journal.pending().is_empty(), "the controller is the undo");

    let after = support::web_pods(&api, 2).await;
    let names: Vec<String> = after.iter().map(|p| p.name_any()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        !names.contains(&victim),
        "a replacement, not the old pod: {names:?}"
    );
}

#[tokio::test]
async fn a_pod_without_a_controller_is_refused() {
    let ns = testkit::namespace("fault-podkill-bare").await;
    support_apply_bare_pod(&ns).await;
    let dir = tempfile::tempdir().unwrap();
    let mut journal = support::journal(dir.path(), "kill-run");
    let mut ctx = support::context(&ns.client, &mut journal, "kill", "kill-run");
    let target = ObjectRef::namespaced("v1", "Pod", &ns.name, "bare");
    let err = ctx.delete_replaceable(&target, None).await.unwrap_err();
    assert!(err.to_string().contains("no controller"), "{err}");
    let api: Api<Pod> = Api::namespaced(ns.client.clone(), &ns.name);
    let still = await_condition(api, "bare", |p: Option<&Pod>| p.is_some());
    tokio::time::timeout(Duration::from_secs(5), still)
        .await
        .unwrap()
        .unwrap();
}

async fn support_apply_bare_pod(ns: &testkit::TestNamespace) {
    let pod: kube::api::DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "bare", "namespace": ns.name},
        "spec": {"containers": [{"name": "c", "image": "breakfix/workload:0.1.0"}]},
    }))
    .unwrap();
    breakfix::kobj::apply(&ns.client, &pod).await.unwrap();
}
