//! Draining a node against a real API server and its disruption
//! controller: a PodDisruptionBudget that keeps refusing is reported by
//! name and ends the drain at its timeout (never a hang, the node left
//! cordoned); a budget that relaxes lets the drain finish, with how long
//! it held the pod. The pods are bound to a Node object of the test's own
//! and marked Running and Ready by hand (there is no kubelet here), so the
//! budget counts them as healthy.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use breakfix::runner::upgrade::drain::{DrainError, drain};
use breakfix::testkit;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::wait::await_condition;
use kube::{Api, Client};
use tokio_util::sync::CancellationToken;

/// A node, one Ready pod of `app=web` on it (grace period 0, so an evicted
/// pod is gone at once without a kubelet), and a budget of `min_available`.
async fn setup(ns: &str, client: &Client, min_available: i32) -> String {
    let node_name = format!("drain-{ns}");
    let nodes: Api<Node> = Api::all(client.clone());
    let _ = nodes.delete(&node_name, &DeleteParams::default()).await;
    let node: Node =
        serde_json::from_value(serde_json::json!({"metadata": {"name": node_name}})).unwrap();
    nodes.create(&PostParams::default(), &node).await.unwrap();

    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web-0", "labels": {"app": "web"}},
        "spec": {
            "nodeName": node_name,
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "web", "image": "breakfix/workload:0.1.0"}],
        },
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let ready = serde_json::json!({"status": {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "True"}],
    }});
    pods.patch_status("web-0", &PatchParams::default(), &Patch::Merge(ready))
        .await
        .unwrap();

    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), ns);
    let pdb: PodDisruptionBudget = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web"},
        "spec": {"minAvailable": min_available, "selector": {"matchLabels": {"app": "web"}}},
    }))
    .unwrap();
    pdbs.create(&PostParams::default(), &pdb).await.unwrap();
    // The eviction API refuses while the disruption controller has not
    // judged the budget yet; wait until it has seen the healthy pod.
    let judged = |p: Option<&PodDisruptionBudget>| {
        p.and_then(|p| p.status.as_ref())
            .is_some_and(|s| s.current_healthy == 1 && s.observed_generation.is_some())
    };
    tokio::time::timeout(
        Duration::from_secs(60),
        await_condition(pdbs, "web", judged),
    )
    .await
    .expect("the disruption controller judges the budget")
    .unwrap();
    node_name
}

fn notes() -> (impl Fn(String) + Send + Sync, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    (move |n: String| sink.lock().unwrap().push(n), seen)
}

#[tokio::test]
async fn a_budget_that_keeps_refusing_ends_the_drain_at_its_timeout_naming_it() {
    let ns = testkit::namespace("drain-blocked").await;
    let node = setup(&ns.name, &ns.client, 1).await;
    let (note, seen) = notes();
    let started = Instant::now();
    let result = drain(
        &testkit::control_plane().admin_client_without_retry(),
        &node,
        Duration::from_secs(6),
        &CancellationToken::new(),
        &note,
    )
    .await;
    let took = started.elapsed();
    match result {
        Err(DrainError::BlockedByBudget {
            pdb,
            pod,
            blocked_for,
            ..
        }) => {
            assert_eq!(pdb, format!("{}/web", ns.name));
            assert_eq!(pod, format!("{}/web-0", ns.name));
            assert!(blocked_for >= Duration::from_secs(4), "{blocked_for:?}");
        }
        other => panic!("expected the budget to block the drain, got {other:?}"),
    }
    assert!(took < Duration::from_secs(20), "the drain took {took:?}");
    let text = seen.lock().unwrap().join("\n");
    assert!(
        text.contains(&format!("PodDisruptionBudget {}/web refuses", ns.name)),
        "{text}"
    );
    let nodes: Api<Node> = Api::all(ns.client.clone());
    let cordoned = nodes.get(&node).await.unwrap().spec.unwrap().unschedulable;
    assert_eq!(cordoned, Some(true), "the node stays cordoned");
    let pods: Api<Pod> = Api::namespaced(ns.client.clone(), &ns.name);
    assert!(
        pods.get_opt("web-0").await.unwrap().is_some(),
        "the pod was kept"
    );
    nodes.delete(&node, &DeleteParams::default()).await.unwrap();
}

#[tokio::test]
async fn a_budget_that_relaxes_lets_the_drain_finish_and_says_how_long_it_held() {
    let ns = testkit::namespace("drain-released").await;
    let node = setup(&ns.name, &ns.client, 1).await;
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(ns.client.clone(), &ns.name);
    let relax = async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let patch = serde_json::json!({"spec": {"minAvailable": 0}});
        pdbs.patch("web", &PatchParams::default(), &Patch::Merge(patch))
            .await
            .unwrap();
    };
    let (note, seen) = notes();
    let cancel = CancellationToken::new();
    let evictions = testkit::control_plane().admin_client_without_retry();
    let (report, ()) = tokio::join!(
        drain(&evictions, &node, Duration::from_secs(60), &cancel, &note),
        relax
    );
    let report = report.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.evicted, vec![format!("{}/web-0", ns.name)]);
    assert_eq!(report.blocked.len(), 1, "{report:?}");
    let block = &report.blocked[0];
    assert_eq!(block.pdb, format!("{}/web", ns.name));
    assert!(block.until.is_some());
    assert!(block.refusals >= 1);
    let held = block.blocked_for();
    assert!(
        held >= Duration::from_secs(2) && held < Duration::from_secs(30),
        "{held:?}"
    );
    let text = seen.lock().unwrap().join("\n");
    assert!(text.contains("let"), "{text}");
    let pods: Api<Pod> = Api::namespaced(ns.client.clone(), &ns.name);
    assert!(pods.get_opt("web-0").await.unwrap().is_none(), "evicted");
    let nodes: Api<Node> = Api::all(ns.client.clone());
    nodes.delete(&node, &DeleteParams::default()).await.unwrap();
}
