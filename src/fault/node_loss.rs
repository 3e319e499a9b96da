//! nodeLoss: a worker node of a kind cluster stops (`docker stop` of its
//! container), as when a machine dies. Nothing on the node reports it: the
//! control plane notices the missing heartbeats after its grace period and
//! marks the node NotReady, then taints it, and pods that do not tolerate
//! the taint are evicted and rescheduled.
//!
//! The story: "Picture-story Kubernetes" (seed 001) and the Zalando talk
//! both rest on the promise that Kubernetes reschedules around a lost node;
//! this fault checks it on a real node and times it. The revert
//! (`docker start`, journaled before the stop) brings the node back;
//! recovery means the node is Ready and the workloads steady again.
//!
//! Only kind nodes are ever stopped: the node's providerID must say
//! `kind://docker/<cluster>/<node>` and the container must carry kind's
//! cluster label. The control-plane node is refused. The fault is
//! cluster-scoped and never runs beside other experiments.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::ListParams;
use kube::{Api, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Claim, DeploymentRef, Fault, FaultContext, FaultError, Injection, SharedResource};
use crate::detect::Scope;
use crate::detect::broad::{namespace_canaries, watch_canaries_failing};
use crate::detect::gone::watch_pod_deletions;
use crate::detect::nodes::watch_nodes;
use crate::detect::selector::selector_string;
use crate::vocab::SignalKind;

const DEFAULT_SIGNALS: &[SignalKind] = &[SignalKind::NodeNotReady];
const SUPPORTED: &[SignalKind] = &[
    SignalKind::NodeNotReady,
    SignalKind::PodGone,
    SignalKind::Unready,
    SignalKind::Unschedulable,
    SignalKind::CanaryFailing,
];

/// Label kind puts on a node's container, valued with the cluster name.
pub const KIND_CLUSTER_LABEL: &str = "io.x-k8s.kind.cluster";
/// Label of control-plane nodes.
const CONTROL_PLANE_LABEL: &str = "node-role.kubernetes.io/control-plane";

/// The nodeLoss fault's settings.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NodeLoss {
    /// The workload whose pods are followed (evictions, rescheduling).
    pub target: DeploymentRef,
    /// Node to stop; default: the worker running the most of the target's
    /// pods (refused when no worker runs any).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// The kind cluster and node container named by a kind node's providerID
/// (`kind://docker/<cluster>/<node>`).
pub fn kind_container(provider_id: &str) -> Option<(&str, &str)> {
    let rest = provider_id.strip_prefix("kind://docker/")?;
    let (cluster, node) = rest.split_once('/')?;
    let ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
    };
    (ok(cluster) && ok(node)).then_some((cluster, node))
}

/// Whether `node` is a control-plane node.
pub fn is_control_plane(node: &Node) -> bool {
    node.labels().contains_key(CONTROL_PLANE_LABEL)
}

/// The worker that runs the most of `pods` (ties: the first by name).
pub fn busiest_worker<'a>(nodes: &'a [Node], pods: &[Pod]) -> Option<&'a Node> {
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for pod in pods {
        if let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) {
            *count.entry(node).or_default() += 1;
        }
    }
    let mut workers: Vec<&Node> = nodes.iter().filter(|n| !is_control_plane(n)).collect();
    workers.sort_by_key(|n| n.name_any());
    workers
        .into_iter()
        .rev()
        .max_by_key(|n| count.get(n.name_any().as_str()).copied().unwrap_or(0))
}

/// The kind cluster label on docker container `container`.
async fn container_cluster(container: &str) -> Result<String, FaultError> {
    let format = format!("{{{{index .Config.Labels \"{KIND_CLUSTER_LABEL}\"}}}}");
    let out = tokio::process::Command::new("docker")
        .args(["inspect", "--format", &format, container])
        .output()
        .await
        .map_err(|e| FaultError::Command(format!("docker inspect {container}: {e}")))?;
    if !out.status.success() {
        return Err(FaultError::Command(format!(
            "docker inspect {container}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

impl Fault for NodeLoss {
    const KEY: &'static str = "nodeLoss";
    const SUMMARY: &'static str = "stops a worker node's container on a kind cluster (docker stop); the node goes NotReady and its pods are evicted and rescheduled (revert: docker start)";
    const STORY: &'static str = "\"Picture-story Kubernetes\" and Zalando (2019): a node disappears and the cluster must reschedule around it; how long until anyone notices, and until the workloads are whole again?";
    const DEFAULT_SIGNALS: &'static [SignalKind] = DEFAULT_SIGNALS;
    const SUPPORTED_SIGNALS: &'static [SignalKind] = SUPPORTED;

    /// None: a node belongs to the whole cluster, so this fault is
    /// cluster-scoped and runs alone.
    fn objects(&self) -> Vec<super::Named> {
        vec![self.target.named("target")]
    }

    fn namespace(&self) -> Option<&str> {
        None
    }

    fn claims(&self) -> Vec<Claim> {
        vec![Claim::Shared(SharedResource::Nodes)]
    }

    fn validate(&self) -> Result<(), String> {
        match &self.node {
            Some(n) if n.trim().is_empty() => Err("node must not be empty".into()),
            _ => Ok(()),
        }
    }

    async fn inject(&self, ctx: &mut FaultContext<'_>) -> Result<Injection, FaultError> {
        let ns = self.target.namespace.as_str();
        let name = self.target.deployment.as_str();
        let deployment = Api::<Deployment>::namespaced(ctx.client.clone(), ns)
            .get_opt(name)
            .await
            .map_err(|e| FaultError::Target(format!("reading deployment/{name} -n {ns}: {e}")))?
            .ok_or_else(|| {
                FaultError::Target(format!(
                    "deployment/{name} -n {ns} not found; is the baseline applied?"
                ))
            })?;
        let selector = deployment
            .spec
            .as_ref()
            .and_then(|s| s.selector.match_labels.as_ref())
            .map(selector_string)
            .ok_or_else(|| {
                FaultError::Target(format!("deployment/{name} -n {ns} has no matchLabels"))
            })?;
        let pods = Api::<Pod>::namespaced(ctx.client.clone(), ns)
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| FaultError::Target(format!("listing pods -l {selector}: {e}")))?;
        let nodes = Api::<Node>::all(ctx.client.clone())
            .list(&ListParams::default())
            .await
            .map_err(|e| FaultError::Target(format!("listing nodes: {e}")))?
            .items;
        let node = match &self.node {
            Some(wanted) => nodes
                .iter()
                .find(|n| &n.name_any() == wanted)
                .ok_or_else(|| FaultError::Target(format!("node/{wanted} does not exist")))?,
            None => busiest_worker(&nodes, &pods.items).ok_or_else(|| {
                FaultError::Target(
                    "the cluster has no worker node to lose; create one with `breakfix cluster up --workers 1` (or `run --workers 1`)"
                        .into(),
                )
            })?,
        };
        let node_name = node.name_any();
        if is_control_plane(node) {
            return Err(FaultError::Target(format!(
                "node/{node_name} is a control-plane node; nodeLoss only stops workers"
            )));
        }
        let provider_id = node
            .spec
            .as_ref()
            .and_then(|s| s.provider_id.clone())
            .unwrap_or_default();
        let (cluster, container) = kind_container(&provider_id).ok_or_else(|| {
            FaultError::Target(format!(
                "node/{node_name} is not a kind node (providerID `{provider_id}`); nodeLoss only stops kind node containers"
            ))
        })?;
        let labelled = container_cluster(container).await?;
        if labelled != cluster {
            return Err(FaultError::Target(format!(
                "container {container} is not a node of kind cluster `{cluster}` (its {KIND_CLUSTER_LABEL} label is `{labelled}`)"
            )));
        }
        let on_node = pods
            .items
            .iter()
            .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(&node_name))
            .count();
        if on_node == 0 && self.node.is_none() {
            return Err(FaultError::Target(format!(
                "no worker runs any of deployment/{name}'s {} pod(s), so losing node/{node_name} would test nothing about it (Kubernetes does not move pods back after a node returns); spread them again, e.g. `kubectl rollout restart deployment/{name} -n {ns}`, or name the node to lose with `node:`",
                pods.items.len()
            )));
        }
        ctx.stop_node(container).await?;
        let scope = Scope {
            namespace: ns.to_string(),
            pod_selector: Some(selector),
            event_name_prefix: Some(format!("{name}-")),
            not_before: jiff::Timestamp::now(),
            deployment: Some(name.to_string()),
        };
        Ok(Injection {
            summary: format!(
                "node/{node_name} stopped (docker stop {container}, kind cluster {cluster}); it ran {on_node} of deployment/{name}'s {} pod(s)",
                pods.items.len()
            ),
            extra: vec![
                watch_nodes(&ctx.client, Some(&node_name)),
                watch_pod_deletions(&ctx.client, &scope),
                watch_canaries_failing(&ctx.client, &namespace_canaries(&self.target.namespace)),
            ],
            scope,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("kind://docker/breakfix-nodes/breakfix-nodes-worker", Some(("breakfix-nodes", "breakfix-nodes-worker")))]
    #[case("kind://docker/kind/kind-worker2", Some(("kind", "kind-worker2")))]
    #[case("aws:///eu-central-1a/i-0abc", None)]
    #[case("kind://podman/kind/kind-worker", None)]
    #[case("kind://docker/kind/worker;rm -rf", None)]
    #[case("kind://docker/kind/", None)]
    fn only_kind_docker_nodes_name_a_container(
        #[case] provider_id: &str,
        #[case] want: Option<(&str, &str)>,
    ) {
        assert_eq!(kind_container(provider_id), want);
    }

    fn node(name: &str, control_plane: bool) -> Node {
        let labels = if control_plane {
            serde_json::json!({CONTROL_PLANE_LABEL: ""})
        } else {
            serde_json::json!({})
        };
        serde_json::from_value(serde_json::json!({"metadata": {"name": name, "labels": labels}}))
            .expect("a node")
    }

    fn pod_on(node: &str) -> Pod {
        serde_json::from_value(serde_json::json!({"metadata": {"name": "p"}, "spec": {"nodeName": node, "containers": []}}))
            .expect("a pod")
    }

    #[rstest]
    #[case(vec![pod_on("cp"), pod_on("w2"), pod_on("w2"), pod_on("w1")], Some("w2"))]
    #[case(vec![pod_on("cp"), pod_on("cp")], Some("w1"))]
    #[case(vec![pod_on("w1"), pod_on("w2")], Some("w1"))]
    fn the_busiest_worker_is_chosen(#[case] pods: Vec<Pod>, #[case] want: Option<&str>) {
        let nodes = vec![node("cp", true), node("w1", false), node("w2", false)];
        assert_eq!(
            busiest_worker(&nodes, &pods).map(|n| n.name_any()),
            want.map(String::from)
        );
    }

    #[test]
    fn a_cluster_without_workers_has_no_node_to_lose() {
        assert!(busiest_worker(&[node("cp", true)], &[pod_on("cp")]).is_none());
    }
}
