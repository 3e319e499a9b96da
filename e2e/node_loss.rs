//! nodeLoss on a kind cluster with a worker of its own
//! (`$BREAKFIX_NODES_CLUSTER`, default `breakfix-nodes`; created here when
//! missing and deleted again afterwards, reused when it exists): the
//! worker's container is stopped, the control plane marks it NotReady and
//! evicts web's pod there (its replacement lands on the node left),
//! breakfix sees both from its watches, and after the revert (docker start)
//! the node is Ready and web whole again.

use std::time::Duration;

use breakfix::cluster::ClusterHandle;
use breakfix::cluster::kind::{KindOptions, ensure};
use breakfix::kobj::ObjectRef;
use breakfix::vocab::SignalKind;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::ListParams;
use kube::runtime::watcher;
use kube::{Api, ResourceExt};

use crate::trial::{self, Gauge};

fn not_ready(nodes: &[std::sync::Arc<Node>]) -> i64 {
    nodes
        .iter()
        .filter(|n| !breakfix::baseline::steady::node_ready(n))
        .count() as i64
}

/// The kind cluster with a worker, and whether this test created it.
async fn nodes_cluster() -> (String, ClusterHandle) {
    let name = std::env::var("BREAKFIX_NODES_CLUSTER").unwrap_or_else(|_| "breakfix-nodes".into());
    let handle = ensure(&KindOptions {
        name: name.clone(),
        workers: 1,
        reuse: true,
        ready_timeout: Duration::from_secs(600),
        ..KindOptions::default()
    })
    .await
    .unwrap_or_else(|e| panic!("cluster {name} with a worker: {e}"));
    let nodes = Api::<Node>::all(handle.client.clone())
        .list(&Default::default())
        .await
        .unwrap()
        .items;
    assert!(
        nodes.len() >= 2,
        "{name} needs a worker beside the control plane"
    );
    (name, handle)
}

/// Runs `check` and deletes the cluster afterwards if this test made it.
async fn on_nodes_cluster<F, Fut>(check: F)
where
    F: FnOnce(kube::Client) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let (name, handle) = nodes_cluster().await;
    let outcome = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(check(
        handle.client.clone(),
    )))
    .await;
    if handle.created {
        let _ = breakfix::cluster::kind::delete(&name).await;
    }
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

fn timeline(run: &trial::Run) -> String {
    run.report.trials[0]
        .timeline
        .entries
        .iter()
        .map(|e| format!("{} {:?}", e.at, e.kind))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn a_lost_worker_goes_not_ready_and_comes_back_with_the_workload_whole() {
    on_nodes_cluster(|client| async move {
        let exp = trial::experiment("multi-node/1-node-loss.yaml");
        trial::steady_baseline(&client, &exp).await;
        let web = ObjectRef::namespaced("apps/v1", "Deployment", "nodes", "web");
        let before = trial::spec_of(&client, &web).await;
        let lost = Gauge::watch(Api::<Node>::all(client.clone()), watcher::Config::default(), not_ready);

        let run = trial::run(&client, &exp).await;
        let (signal, detect, recover) =
            run.assert_detected_and_recovered(&[SignalKind::NodeNotReady]);
        let (injected, reverted) = run.fault_window();
        let seen = lost.during(injected, reverted);
        assert!(seen.iter().any(|n| *n > 0), "no node went NotReady: {seen:?}");
        let detection = run.report.trials[0].detection.clone().unwrap();
        assert!(detection.object.starts_with("node/"), "{}", detection.object);
        assert!(detection.since.is_some(), "the Ready condition's transition time");
        assert_eq!(lost.all().last(), Some(&0), "every node Ready again");
        assert_eq!(trial::spec_of(&client, &web).await, before);
        eprintln!(
            "node-loss: {signal} detected in {detect:?}, reverted in {:?}, recovered in {recover:?}\n{}",
            run.revert_took(),
            timeline(&run)
        );
    })
    .await;
}

#[tokio::test]
async fn the_lost_workers_pod_is_evicted_and_rescheduled_on_the_node_left() {
    on_nodes_cluster(|client| async move {
        let exp = trial::experiment("multi-node/2-node-loss-eviction.yaml");
        trial::steady_baseline(&client, &exp).await;
        // An earlier eviction may have left both pods on the control plane:
        // delete one so the spread puts its replacement on the worker.
        let pods: Api<Pod> = Api::namespaced(client.clone(), "nodes-eviction");
        let web_pods = pods.list(&ListParams::default().labels("app=web")).await.unwrap().items;
        let on_cp: Vec<&Pod> = web_pods
            .iter()
            .filter(|p| live_on_control_plane(&[std::sync::Arc::new((*p).clone())]) == 1)
            .collect();
        if on_cp.len() == web_pods.len()
            && let Some(pod) = on_cp.first()
        {
            pods.delete(&pod.name_any(), &Default::default()).await.unwrap();
            trial::steady_baseline(&client, &exp).await;
        }
        let web = ObjectRef::namespaced("apps/v1", "Deployment", "nodes-eviction", "web");
        let before = trial::spec_of(&client, &web).await;
        let on_control_plane = Gauge::watch(
            Api::<Pod>::namespaced(client.clone(), "nodes-eviction"),
            watcher::Config::default().labels("app=web"),
            live_on_control_plane,
        );

        let run = trial::run(&client, &exp).await;
        let (signal, detect, recover) = run.assert_detected_and_recovered(&[SignalKind::PodGone]);
        let (injected, _) = run.fault_window();
        let later = on_control_plane.during(injected, jiff::Timestamp::now());
        let most = later.iter().copied().max().unwrap_or(0);
        assert!(
            most >= 2,
            "the evicted pod's replacement must land on the control plane beside the other: {later:?}"
        );
        assert_eq!(trial::spec_of(&client, &web).await, before);
        eprintln!(
            "node-loss-eviction: {signal} detected in {detect:?}, reverted in {:?}, recovered in {recover:?}\n{}",
            run.revert_took(),
            timeline(&run)
        );
    })
    .await;
}

/// web pods (not terminating) scheduled on a control-plane node.
fn live_on_control_plane(pods: &[std::sync::Arc<Pod>]) -> i64 {
    pods.iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            p.spec
                .as_ref()
                .and_then(|s| s.node_name.as_deref())
                .is_some_and(|n| n.ends_with("-control-plane"))
        })
        .count() as i64
}
