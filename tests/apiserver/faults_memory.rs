//! memorySqueeze on a real API server: the load pod and the limit change are
//! both journaled before they happen, and the revert deletes the one and
//! restores the other exactly. (The OOM itself needs a kubelet: see
//! e2e/faults_memory.rs.)

use breakfix::fault::memory_squeeze::{LOAD_APP, LOAD_LABEL};
use breakfix::journal::UndoAction;
use breakfix::kobj::ObjectRef;
use breakfix::testkit;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;

use crate::support;

/// A stand-in for kube-system/coredns: same container name and resources.
const COREDNS: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: coredns, labels: {k8s-app: kube-dns}}
spec:
  replicas: 2
  selector: {matchLabels: {k8s-app: kube-dns}}
  template:
    metadata: {labels: {k8s-app: kube-dns}}
    spec:
      containers:
        - name: coredns
          image: registry.k8s.io/coredns/coredns:v1.12.1
          args: [-conf, /etc/coredns/Corefile]
          resources:
            limits: {memory: 170Mi}
            requests: {cpu: 100m, memory: 70Mi}
"#;

#[tokio::test]
async fn the_load_pod_and_the_limit_are_journaled_and_reverted_exactly() {
    let ns = testkit::namespace("fault-memory").await;
    let dir = tempfile::tempdir().unwrap();
    let baseline = support::baseline(&dir.path().join("baseline"), &ns.name, COREDNS);
    breakfix::baseline::apply_baseline(&ns.client, &baseline, "memory-run")
        .await
        .unwrap();
    let deployments: Api<Deployment> = Api::namespaced(ns.client.clone(), &ns.name);
    let pods: Api<Pod> = Api::namespaced(ns.client.clone(), &ns.name);
    let before = deployments.get("coredns").await.unwrap().spec;

    let fault = support::fault(&format!(
        "memorySqueeze:\n  target: {{namespace: {ns}, deployment: coredns}}\n  limit: 32Mi\n  load: {{namespace: {ns}, lookupsPerSecond: 300, uniqueNames: 50}}\n  canary: {{namespace: {ns}, selector: app=dns-canary}}\n",
        ns = ns.name
    ));
    fault.validate().unwrap();
    assert!(
        !fault.is_cluster_scoped(),
        "a test namespace is not kube-system"
    );
    let mut journal = support::journal(dir.path(), "memory-run");
    let mut ctx = support::context(&ns.client, &mut journal, "squeeze", "memory-run");
    let injection = fault.inject(&mut ctx).await.unwrap();
    assert_eq!(
        injection.scope.pod_selector.as_deref(),
        Some("k8s-app=kube-dns")
    );
    assert_eq!(injection.extra.len(), 1, "the dns-canary source");

    // Both mutations are journaled, newest first: the limit, then the load pod.
    let pending = journal.pending();
    assert_eq!(pending.len(), 2, "{pending:?}");
    assert!(
        matches!(&pending[0].1, UndoAction::Restore { object } if ObjectRef::of(object).unwrap().name == "coredns")
    );
    let load_target = match &pending[1].1 {
        UndoAction::Delete { target, .. } => target.clone(),
        other => panic!("expected the load pod's deletion, got {other:?}"),
    };

    let squeezed = deployments.get("coredns").await.unwrap();
    let resources = squeezed
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
        .resources
        .clone()
        .unwrap();
    assert_eq!(resources.limits.unwrap()["memory"].0, "32Mi");
    assert_eq!(
        resources.requests.as_ref().unwrap()["memory"].0,
        "32Mi",
        "the request may not stay above the limit"
    );
    assert_eq!(
        resources.requests.unwrap()["cpu"].0,
        "100m",
        "the rest is kept"
    );

    let load = pods
        .list(&ListParams::default().labels(&format!("{LOAD_LABEL}={LOAD_APP}")))
        .await
        .unwrap()
        .items;
    assert_eq!(load.len(), 1);
    assert_eq!(
        load[0].metadata.name.as_deref(),
        Some(load_target.name.as_str())
    );
    assert_eq!(
        load[0].metadata.labels.as_ref().unwrap()[breakfix::RUN_LABEL],
        "memory-run"
    );
    let args = load[0].spec.as_ref().unwrap().containers[0]
        .args
        .clone()
        .unwrap();
    assert_eq!(args[..3], ["dns-load", "--qps", "300"]);
    let names = args.last().unwrap().split(',').collect::<Vec<_>>();
    assert_eq!(names.len(), 50);
    assert!(names.iter().all(|n| n.ends_with(".www.example.com")));

    let errors = journal.revert_all(&ns.client).await;
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(deployments.get("coredns").await.unwrap().spec, before);
    let left = pods
        .list(&ListParams::default().labels(&format!("{LOAD_LABEL}={LOAD_APP}")))
        .await
        .unwrap()
        .items;
    assert!(
        left.iter().all(|p| p.metadata.deletion_timestamp.is_some()),
        "the load pod is gone or going: {left:?}"
    );
    assert!(journal.pending().is_empty());
}
