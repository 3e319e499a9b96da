//! Cordon and drain a node the way `kubectl drain --ignore-daemonsets
//! --delete-emptydir-data` does: every pod the node runs, except DaemonSet
//! pods and static (mirror) pods, is evicted through the eviction API, so
//! PodDisruptionBudgets are respected. An eviction a budget refuses is
//! retried when that budget's status allows a disruption again (a watch on
//! the budget, not a timer), and each refusal is reported: which budget,
//! which pod, for how long. The whole drain is bounded by a timeout; a drain
//! a budget keeps blocking fails naming the budget, never hangs.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{EvictParams, ListParams, Patch, PatchParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Api, Client, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

/// How long to wait before retrying an eviction refused for a reason other
/// than a budget the drain can watch (the API server's `Retry-After`, when it
/// gives one, wins).
const RETRY_UNKNOWN: Duration = Duration::from_secs(5);

/// Errors draining a node. Each names the node.
#[derive(Debug, thiserror::Error)]
pub enum DrainError {
    /// The node could not be cordoned.
    #[error("cordoning {node}: {source}")]
    Cordon {
        /// The node.
        node: String,
        /// What the API server said.
        #[source]
        source: kube::Error,
    },
    /// The node's pods could not be listed.
    #[error("listing the pods on {node}: {source}")]
    List {
        /// The node.
        node: String,
        /// What the API server said.
        #[source]
        source: kube::Error,
    },
    /// A pod's eviction failed for a reason other than a budget.
    #[error("evicting {pod} from {node}: {source}")]
    Evict {
        /// The node.
        node: String,
        /// The pod.
        pod: String,
        /// What the API server said.
        #[source]
        source: kube::Error,
    },
    /// A PodDisruptionBudget refused an eviction until the drain's time ran out.
    #[error(
        "draining {node} timed out after {timeout:?}: PodDisruptionBudget {pdb} refused to let {pod} go for {blocked_for:.1?}; relax the budget or add replicas, or raise the drain timeout"
    )]
    BlockedByBudget {
        /// The node.
        node: String,
        /// The budget.
        pdb: String,
        /// The pod it held.
        pod: String,
        /// How long it held it.
        blocked_for: Duration,
        /// The drain's time limit.
        timeout: Duration,
    },
    /// Pods were still on the node when the drain's time ran out.
    #[error("draining {node} timed out after {timeout:?}; still on the node: {pods}")]
    Timeout {
        /// The node.
        node: String,
        /// The drain's time limit.
        timeout: Duration,
        /// The pods still there.
        pods: String,
    },
    /// A stop signal interrupted the drain.
    #[error("draining {node} was interrupted")]
    Cancelled {
        /// The node.
        node: String,
    },
}

/// A PodDisruptionBudget refusing to let a pod go.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BudgetBlock {
    /// `namespace/name` of the budget (`namespace/?` when the API server did
    /// not say which, and no budget in the namespace could be matched).
    pub pdb: String,
    /// `namespace/name` of the pod it kept.
    pub pod: String,
    /// The first refusal.
    pub since: Timestamp,
    /// When the pod was finally evicted; `None` if it never was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Timestamp>,
    /// Eviction attempts the budget refused.
    pub refusals: u32,
}

impl BudgetBlock {
    /// How long the budget kept the pod (until now, if it still does).
    pub fn blocked_for(&self) -> Duration {
        let end = self.until.unwrap_or_else(Timestamp::now);
        Duration::try_from(end.duration_since(self.since)).unwrap_or_default()
    }
}

/// What a drain did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DrainReport {
    /// The node.
    pub node: String,
    /// Pods evicted, `namespace/name`.
    pub evicted: Vec<String>,
    /// Pods left alone: DaemonSet and static pods.
    pub skipped: Vec<String>,
    /// Evicted pods no controller owned: they are gone for good.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmanaged: Vec<String>,
    /// Every budget that refused an eviction.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocked: Vec<BudgetBlock>,
}

/// Marks `node` unschedulable (or schedulable again).
pub async fn cordon(client: &Client, node: &str, unschedulable: bool) -> Result<(), DrainError> {
    let api: Api<Node> = Api::all(client.clone());
    let patch = serde_json::json!({"spec": {"unschedulable": unschedulable}});
    api.patch(node, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
        .map_err(|source| DrainError::Cordon {
            node: node.into(),
            source,
        })
}

/// Whether a pod stays on a drained node: DaemonSet pods (their controller
/// puts them back at once) and static pods (the kubelet runs them from its
/// manifests; the API only mirrors them).
pub fn stays(pod: &Pod) -> bool {
    let mirror = pod
        .annotations()
        .contains_key("kubernetes.io/config.mirror");
    let daemon = pod
        .owner_references()
        .iter()
        .any(|o| o.controller == Some(true) && o.kind == "DaemonSet");
    mirror || daemon
}

fn finished(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

fn key(pod: &Pod) -> String {
    format!("{}/{}", pod.namespace().unwrap_or_default(), pod.name_any())
}

/// The budget a refusal names: the API server's cause reads "The disruption
/// budget web needs 2 healthy pods and has 2 currently".
pub fn budget_in_refusal(status: &kube::core::Status) -> Option<String> {
    let causes = status.details.as_ref().map(|d| d.causes.as_slice())?;
    causes
        .iter()
        .filter(|c| c.reason == "DisruptionBudget")
        .find_map(|c| {
            c.message
                .strip_prefix("The disruption budget ")
                .and_then(|rest| rest.split_whitespace().next())
                .map(String::from)
        })
}

/// Cordons `node`, then evicts every pod on it that does not [`stay`](stays),
/// retrying refusals, until all are gone or `timeout` passes. `note` hears
/// about each budget's first refusal and its end, for the timeline.
///
/// `client` must not retry 429 answers by itself (kube's clients do by
/// default; see `cluster::client_without_retry`): each eviction is one
/// request here, or a refusal stays invisible inside a call for minutes.
///
/// # Errors
///
/// The node could not be cordoned or its pods listed; an eviction failed for
/// a reason other than a budget; a budget (or a slow pod) kept the drain past
/// `timeout`; `cancel` fired. The node stays cordoned in every case.
pub async fn drain(
    client: &Client,
    node: &str,
    timeout: Duration,
    cancel: &CancellationToken,
    note: &(dyn Fn(String) + Send + Sync),
) -> Result<DrainReport, DrainError> {
    cordon(client, node, true).await?;
    let pods: Api<Pod> = Api::all(client.clone());
    let listed = pods
        .list(&ListParams::default().fields(&format!("spec.nodeName={node}")))
        .await
        .map_err(|source| DrainError::List {
            node: node.into(),
            source,
        })?;
    let mut report = DrainReport {
        node: node.into(),
        ..DrainReport::default()
    };
    let mut to_evict = Vec::new();
    for pod in listed.items {
        if stays(&pod) {
            report.skipped.push(key(&pod));
        } else {
            if pod
                .owner_references()
                .iter()
                .all(|o| o.controller != Some(true))
                && !finished(&pod)
            {
                report.unmanaged.push(key(&pod));
            }
            to_evict.push(pod);
        }
    }
    let deadline = tokio::time::Instant::now() + timeout;
    let evictions = to_evict
        .iter()
        .map(|pod| evict_until_gone(client, node, pod, deadline, timeout, note));
    let all = futures::future::join_all(evictions);
    let results = tokio::select! {
        results = all => results,
        () = cancel.cancelled() => return Err(DrainError::Cancelled { node: node.into() }),
    };
    let mut first_error = None;
    for (pod, (block, result)) in to_evict.iter().zip(results) {
        report.blocked.extend(block);
        match result {
            Ok(()) => report.evicted.push(key(pod)),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        None => Ok(report),
        Some(e) => Err(e),
    }
}

/// Evicts one pod, retrying refusals until `deadline`, then waits for it
/// to be deleted. Returns the budget block it met, if any, with the result.
async fn evict_until_gone(
    client: &Client,
    node: &str,
    pod: &Pod,
    deadline: tokio::time::Instant,
    timeout: Duration,
    note: &(dyn Fn(String) + Send + Sync),
) -> (Option<BudgetBlock>, Result<(), DrainError>) {
    let namespace = pod.namespace().unwrap_or_default();
    let name = pod.name_any();
    let uid = pod.uid().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let mut block: Option<BudgetBlock> = None;
    loop {
        match api.evict(&name, &EvictParams::default()).await {
            Ok(_) => break,
            Err(kube::Error::Api(status)) if status.code == 404 => break,
            Err(kube::Error::Api(status)) if status.code == 429 => {
                let pdb = match budget_in_refusal(&status) {
                    Some(name) => Some(name),
                    None => blocking_budget(client, pod).await,
                };
                let label = format!("{namespace}/{}", pdb.as_deref().unwrap_or("?"));
                let b = block.get_or_insert_with(|| {
                    note(format!(
                        "drain {node}: PodDisruptionBudget {label} refuses to evict {namespace}/{name}"
                    ));
                    BudgetBlock {
                        pdb: label.clone(),
                        pod: format!("{namespace}/{name}"),
                        since: Timestamp::now(),
                        until: None,
                        refusals: 0,
                    }
                });
                b.refusals += 1;
                let retry_after = status
                    .details
                    .as_ref()
                    .map(|d| Duration::from_secs(d.retry_after_seconds.into()))
                    .filter(|d| !d.is_zero())
                    .unwrap_or(RETRY_UNKNOWN);
                let wait = async {
                    match &pdb {
                        Some(pdb) => budget_allows(client, &namespace, pdb, retry_after).await,
                        None => tokio::time::sleep(retry_after).await,
                    }
                };
                if tokio::time::timeout_at(deadline, wait).await.is_err() {
                    let b = block.clone().unwrap_or_else(|| BudgetBlock {
                        pdb: label.clone(),
                        pod: format!("{namespace}/{name}"),
                        since: Timestamp::now(),
                        until: None,
                        refusals: 1,
                    });
                    let err = DrainError::BlockedByBudget {
                        node: node.into(),
                        pdb: b.pdb.clone(),
                        pod: b.pod.clone(),
                        blocked_for: b.blocked_for(),
                        timeout,
                    };
                    return (Some(b), Err(err));
                }
            }
            // Right after an API server restart (kubeadm, a new kubelet on a
            // control-plane node) requests fail for a moment, even as
            // Forbidden while its authorizer's caches fill: retried until
            // the deadline.
            Err(source) if transient(&source) && tokio::time::Instant::now() < deadline => {
                tracing::debug!(%source, pod = %name, "eviction failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(source) => {
                return (
                    block,
                    Err(DrainError::Evict {
                        node: node.into(),
                        pod: format!("{namespace}/{name}"),
                        source,
                    }),
                );
            }
        }
    }
    if let Some(b) = block.as_mut() {
        b.until = Some(Timestamp::now());
        note(format!(
            "drain {node}: {} let {} go after {:.1?} ({} refusal(s))",
            b.pdb,
            b.pod,
            b.blocked_for(),
            b.refusals
        ));
    }
    let gone = await_condition(api, &name, conditions::is_deleted(&uid));
    match tokio::time::timeout_at(deadline, gone).await {
        Ok(_) => (block, Ok(())),
        Err(_) => (
            block,
            Err(DrainError::Timeout {
                node: node.into(),
                timeout,
                pods: format!("{namespace}/{name} (evicted, still terminating)"),
            }),
        ),
    }
}

/// Errors an API server gives while it restarts.
fn transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(status) => matches!(status.code, 403 | 500 | 502 | 503 | 504),
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// Waits until the budget allows a disruption (watching its status), or
/// `at_most` passes: the API server may refuse for a moment after the
/// status says yes, so the caller retries either way.
async fn budget_allows(client: &Client, namespace: &str, pdb: &str, at_most: Duration) {
    let api: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), namespace);
    let allowed = |p: Option<&PodDisruptionBudget>| {
        p.and_then(|p| p.status.as_ref())
            .is_some_and(|s| s.disruptions_allowed > 0)
    };
    // Re-checking right away would fail again while the status still says
    // no; the watch's first event tells where it stands.
    let wait = await_condition(api, pdb, allowed);
    let floor = tokio::time::sleep(Duration::from_secs(1));
    let _ = tokio::time::timeout(at_most.max(Duration::from_secs(1)), async {
        let _ = wait.await;
        floor.await;
    })
    .await;
}

/// The budget in the pod's namespace that selects it and allows no
/// disruption now, when the refusal did not name one.
async fn blocking_budget(client: &Client, pod: &Pod) -> Option<String> {
    let namespace = pod.namespace()?;
    let api: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), &namespace);
    let labels = pod.labels();
    let list = api.list(&ListParams::default()).await.ok()?;
    list.items
        .iter()
        .filter(|p| p.status.as_ref().is_none_or(|s| s.disruptions_allowed == 0))
        .find(|p| {
            p.spec
                .as_ref()
                .and_then(|s| s.selector.as_ref())
                .and_then(|s| s.match_labels.as_ref())
                .is_some_and(|want| selects(want, labels))
        })
        .map(ResourceExt::name_any)
}

fn selects(want: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    !want.is_empty() && want.iter().all(|(k, v)| labels.get(k) == Some(v))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
    use kube::core::Status;
    use rstest::rstest;

    use super::*;

    fn pod(owner: Option<&str>, mirror: bool) -> Pod {
        let mut meta = ObjectMeta {
            name: Some("p".into()),
            namespace: Some("ns".into()),
            ..ObjectMeta::default()
        };
        if let Some(kind) = owner {
            meta.owner_references = Some(vec![OwnerReference {
                kind: kind.into(),
                controller: Some(true),
                name: "owner".into(),
                api_version: "apps/v1".into(),
                uid: "u".into(),
                ..OwnerReference::default()
            }]);
        }
        if mirror {
            meta.annotations = Some(BTreeMap::from([(
                "kubernetes.io/config.mirror".to_string(),
                "hash".to_string(),
            )]));
        }
        Pod {
            metadata: meta,
            ..Pod::default()
        }
    }

    #[rstest]
    #[case(Some("DaemonSet"), false, true)]
    #[case(Some("ReplicaSet"), false, false)]
    #[case(None, true, true)]
    #[case(None, false, false)]
    fn daemonset_and_static_pods_stay(
        #[case] owner: Option<&str>,
        #[case] mirror: bool,
        #[case] want: bool,
    ) {
        assert_eq!(stays(&pod(owner, mirror)), want);
    }

    /// The body an API server answers a refused eviction with.
    fn refusal(causes: serde_json::Value) -> Status {
        serde_json::from_value(serde_json::json!({
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "message": "Cannot evict pod as it would violate the pod's disruption budget.",
            "reason": "TooManyRequests",
            "details": {"causes": causes},
            "code": 429
        }))
        .unwrap()
    }

    #[test]
    fn the_refusing_budget_is_read_from_the_cause() {
        let status = refusal(serde_json::json!([{
            "reason": "DisruptionBudget",
            "message": "The disruption budget web-pdb needs 2 healthy pods and has 2 currently"
        }]));
        assert_eq!(budget_in_refusal(&status).as_deref(), Some("web-pdb"));
    }

    #[test]
    fn a_refusal_without_a_cause_names_no_budget() {
        assert_eq!(budget_in_refusal(&refusal(serde_json::json!([]))), None);
    }

    #[rstest]
    #[case(&[("app", "web")], &[("app", "web"), ("tier", "front")], true)]
    #[case(&[("app", "web")], &[("app", "db")], false)]
    #[case(&[], &[("app", "web")], false)]
    fn match_labels_select(
        #[case] want: &[(&str, &str)],
        #[case] labels: &[(&str, &str)],
        #[case] selected: bool,
    ) {
        let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect()
        };
        assert_eq!(selects(&map(want), &map(labels)), selected);
    }
}
