//! Node-level detection and nodeLoss's safety checks against a real API
//! server: a node whose Ready condition turns False is seen through the
//! node watch, and nodeLoss refuses any node that is not a kind node
//! container, before journaling or stopping anything.

use std::time::Duration;

use breakfix::baseline::apply_baseline;
use breakfix::detect::first_expected;
use breakfix::detect::nodes::watch_nodes;
use breakfix::fault::{Fault, NodeLoss};
use breakfix::testkit;
use breakfix::vocab::SignalKind;
use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};

use crate::support;

/// A Node object of our own (no kubelet behind it), with `provider_id`.
async fn fake_node(name: &str, provider_id: &str) -> Api<Node> {
    let nodes: Api<Node> = Api::all(testkit::control_plane().admin_client());
    let node: Node = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {"providerID": provider_id},
    }))
    .unwrap();
    let _ = nodes.delete(name, &DeleteParams::default()).await;
    nodes.create(&PostParams::default(), &node).await.unwrap();
    nodes
}

#[tokio::test]
async fn a_node_turning_not_ready_is_seen_through_the_node_watch() {
    let name = format!("lost-{}", std::process::id());
    let nodes = fake_node(&name, "kind://docker/tier/lost").await;
    let status = serde_json::json!({"status": {"conditions": [{
        "type": "Ready",
        "status": "Unknown",
        "reason": "NodeStatusUnknown",
        "message": "Kubelet stopped posting node status.",
        "lastHeartbeatTime": "2026-03-01T10:00:00Z",
        "lastTransitionTime": "2026-03-01T10:00:50Z",
    }]}});
    let client = testkit::control_plane().admin_client();
    let watch = watch_nodes(&client, Some(&name));
    nodes
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(status))
        .await
        .unwrap();
    let obs = first_expected(
        watch,
        &[SignalKind::NodeNotReady],
        Duration::from_secs(30),
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(obs.object, format!("node/{name}"));
    assert_eq!(obs.reason, "NodeStatusUnknown");
    assert_eq!(obs.since, Some("2026-03-01T10:00:50Z".parse().unwrap()));
    nodes.delete(&name, &DeleteParams::default()).await.unwrap();
}

#[tokio::test]
async fn node_loss_stops_only_kind_nodes_and_journals_nothing_otherwise() {
    let ns = testkit::namespace("node-loss").await;
    let dir = tempfile::tempdir().unwrap();
    let baseline = support::baseline(
        &dir.path().join("baseline"),
        &ns.name,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers: [{name: web, image: \"breakfix/workload:0.1.0\"}]\n",
    );
    apply_baseline(&ns.client, &baseline, "run-n")
        .await
        .unwrap();
    let cloud = format!("cloud-{}", std::process::id());
    let nodes = fake_node(&cloud, "aws:///eu-central-1a/i-0abc").await;
    let mut journal = support::journal(&dir.path().join("journal"), "run-n");

    for (node, says) in [
        (cloud.as_str(), "is not a kind node"),
        ("no-such-node", "does not exist"),
    ] {
        let fault: NodeLoss = serde_yaml::from_str(&format!(
            "target: {{namespace: {}, deployment: web}}\nnode: {node}\n",
            ns.name
        ))
        .unwrap();
        assert!(fault.namespace().is_none(), "nodeLoss is cluster-scoped");
        let mut ctx = support::context(&ns.client, &mut journal, "node-loss", "run-n");
        let err = fault.inject(&mut ctx).await.unwrap_err();
        assert!(err.to_string().contains(says), "{err}");
    }
    assert!(
        journal.pending().is_empty(),
        "nothing was journaled, nothing stopped"
    );
    nodes
        .delete(&cloud, &DeleteParams::default())
        .await
        .unwrap();
}
