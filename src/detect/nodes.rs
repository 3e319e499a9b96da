//! Nodes: a node whose kubelet stopped reporting, read off the node watch.
//!
//! When a node is lost (its machine stopped, its kubelet dead), nothing on
//! the node says so: the node lifecycle controller in the control plane
//! notices missing heartbeats after `--node-monitor-grace-period` (50 s by
//! default) and sets the node's Ready condition to Unknown
//! (`NodeStatusUnknown`, "Kubelet stopped posting node status."). That
//! transition is [`SignalKind::NodeNotReady`], dated by the condition's
//! `lastTransitionTime`.

use std::collections::HashSet;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Node;
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};

use super::classify::Finding;
use super::{DetectError, SignalStream, into_observation, watch};
use crate::vocab::SignalKind;

/// [`SignalKind::NodeNotReady`] when `node`'s Ready condition is not True.
pub fn node_finding(node: &Node) -> Option<Finding> {
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))?;
    if ready.status == "True" {
        return None;
    }
    Some(Finding {
        kind: SignalKind::NodeNotReady,
        container: None,
        reason: ready.reason.clone().unwrap_or_else(|| "NotReady".into()),
        message: format!(
            "node {} Ready={}: {}",
            node.name_any(),
            ready.status,
            ready.message.as_deref().unwrap_or("no message")
        ),
        since: ready.last_transition_time.as_ref().map(|t| t.0),
    })
}

/// Watches nodes (only `name` when given) and reports each one that turns
/// NotReady, once per transition.
pub fn watch_nodes(client: &Client, name: Option<&str>) -> SignalStream {
    let api: Api<Node> = Api::all(client.clone());
    let mut cfg = watcher::Config::default();
    if let Some(name) = name {
        cfg = cfg.fields(&format!("metadata.name={name}"));
    }
    let mut reported = HashSet::new();
    watch::objects(watch::events(api, cfg))
        .map_err(DetectError::from)
        .try_filter_map(move |node| {
            let found = node_finding(&node).filter(|f| reported.insert((node.name_any(), f.since)));
            futures::future::ready(Ok(
                found.map(|f| into_observation(f, format!("node/{}", node.name_any())))
            ))
        })
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn node(ready: Option<(&str, &str)>) -> Node {
        let conditions: Vec<serde_json::Value> = ready
            .into_iter()
            .map(|(status, reason)| {
                serde_json::json!({
                    "type": "Ready",
                    "status": status,
                    "reason": reason,
                    "message": "Kubelet stopped posting node status.",
                    "lastTransitionTime": "2026-03-01T10:00:50Z",
                })
            })
            .collect();
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "breakfix-nodes-worker"},
            "status": {"conditions": conditions},
        }))
        .expect("a node")
    }

    #[rstest]
    #[case::ready(Some(("True", "KubeletReady")), None)]
    #[case::unknown(Some(("Unknown", "NodeStatusUnknown")), Some("NodeStatusUnknown"))]
    #[case::not_ready(Some(("False", "KubeletNotReady")), Some("KubeletNotReady"))]
    #[case::no_condition_yet(None, None)]
    fn a_node_is_lost_when_ready_is_not_true(
        #[case] ready: Option<(&str, &str)>,
        #[case] reason: Option<&str>,
    ) {
        let found = node_finding(&node(ready));
        assert_eq!(found.as_ref().map(|f| f.reason.as_str()), reason);
        if let Some(f) = found {
            assert_eq!(
                f.since,
                Some("2026-03-01T10:00:50Z".parse().expect("a timestamp"))
            );
            assert!(
                f.message.contains("Kubelet stopped posting"),
                "{}",
                f.message
            );
        }
    }
}
