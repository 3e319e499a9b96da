//! podKill: delete some of a Deployment's pods and let Kubernetes heal.
//!
//! The story is the reconciliation loop itself ("Picture-story Kubernetes",
//! 2021; the responder course's "if a container crashes, K8s restarts it"):
//! a node reboot, an eviction or a careless `kubectl delete pod` takes pods
//! away, and the ReplicaSet controller must bring the count back before the
//! users notice. Nothing is reverted: time-to-recover runs from the
//! deletion to a stable steady state.

use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::{Api, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::target::LiveDeployment;
use super::{DeploymentRef, Fault, FaultContext, FaultError, Injection};
use crate::detect::gone::watch_pod_deletions_listed;
use crate::kobj::ObjectRef;
use crate::vocab::SignalKind;

const DEFAULT_SIGNALS: &[SignalKind] = &[SignalKind::PodGone];
const SUPPORTED: &[SignalKind] = &[SignalKind::PodGone, SignalKind::Unready];
/// How long the pod watch may take to list before the deletion.
const LIST_WITHIN: std::time::Duration = std::time::Duration::from_secs(30);

/// The podKill fault's settings.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PodKill {
    /// The Deployment one of whose pods is deleted.
    pub target: DeploymentRef,
    /// How many running pods to delete (oldest first).
    #[serde(default = "one")]
    #[schemars(range(min = 1))]
    pub count: u32,
    /// Override the pods' termination grace period (0: kill at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_period_seconds: Option<u32>,
}

fn one() -> u32 {
    1
}

impl Fault for PodKill {
    const KEY: &'static str = "podKill";
    const SUMMARY: &'static str = "deletes N running pods of a Deployment; its ReplicaSet must replace them (self-healing, no revert)";
    const STORY: &'static str = "\"Picture-story Kubernetes\" (2021) and the incident-manager course: pods die (node loss, eviction, a stray kubectl delete) and the reconciliation loop must restore the replica count";
    const DEFAULT_SIGNALS: &'static [SignalKind] = DEFAULT_SIGNALS;
    const SUPPORTED_SIGNALS: &'static [SignalKind] = SUPPORTED;
    const SELF_HEALING: bool = true;

    fn objects(&self) -> Vec<super::Named> {
        vec![self.target.named("target")]
    }

    fn namespace(&self) -> Option<&str> {
        Some(self.target.namespace.as_str())
    }

    fn validate(&self) -> Result<(), String> {
        if self.count == 0 {
            return Err("count must be at least 1".into());
        }
        Ok(())
    }

    async fn inject(&self, ctx: &mut FaultContext<'_>) -> Result<Injection, FaultError> {
        let live = LiveDeployment::fetch(ctx, &self.target).await?;
        let selector = live.selector().ok_or_else(|| {
            FaultError::Target(format!("{} has no matchLabels selector", live.target))
        })?;
        let api: Api<Pod> = Api::namespaced(ctx.client.clone(), live.namespace());
        let pods = api
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| FaultError::Target(format!("cannot list pods of {}: {e}", live.target)))?;
        let victims = victims(pods.items, self.count as usize);
        if victims.len() < self.count as usize {
            return Err(FaultError::Target(format!(
                "{} has {} running pod(s); cannot delete {}",
                live.target,
                victims.len(),
                self.count
            )));
        }
        // Scope first: its clock starts before the first deletion. The
        // watch lists before the first deletion too, so a pod removed at
        // once (no grace period) is still a change it reports.
        let scope = live.scope();
        let deletions = watch_pod_deletions_listed(&ctx.client, &scope, LIST_WITHIN)
            .await
            .map_err(|e| {
                FaultError::Target(format!("cannot watch the pods of {}: {e}", live.target))
            })?;
        let mut deleted = Vec::new();
        for pod in &victims {
            let target = ObjectRef::namespaced("v1", "Pod", live.namespace(), &pod.name_any());
            ctx.delete_replaceable(&target, self.grace_period_seconds)
                .await?;
            deleted.push(pod.name_any());
        }
        let extra = vec![deletions];
        Ok(Injection {
            summary: format!(
                "{}: deleted pod(s) {}; its ReplicaSet must replace them",
                live.target,
                deleted.join(", ")
            ),
            scope,
            extra,
        })
    }
}

/// The `count` oldest running, not yet terminating pods (ties by name, so
/// the choice is reproducible).
pub fn victims(mut pods: Vec<Pod>, count: usize) -> Vec<Pod> {
    pods.retain(|p| {
        p.metadata.deletion_timestamp.is_none()
            && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
    });
    pods.sort_by(|a, b| {
        a.metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0)
            .cmp(&b.metadata.creation_timestamp.as_ref().map(|t| t.0))
            .then_with(|| a.name_any().cmp(&b.name_any()))
    });
    pods.truncate(count);
    pods
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn pod(name: &str, created: &str, phase: &str, terminating: bool) -> Pod {
        let mut meta = serde_json::json!({"name": name, "creationTimestamp": created});
        if terminating {
            meta["deletionTimestamp"] = "2026-03-01T10:00:00Z".into();
        }
        serde_json::from_value(serde_json::json!({"metadata": meta, "status": {"phase": phase}}))
            .expect("a pod")
    }

    #[rstest]
    #[case(1, &["web-b"])]
    #[case(2, &["web-b", "web-a"])]
    #[case(5, &["web-b", "web-a", "web-c"])]
    fn the_oldest_running_pods_go_first(#[case] count: usize, #[case] expected: &[&str]) {
        let pods = vec![
            pod("web-a", "2026-03-01T09:00:00Z", "Running", false),
            pod("web-b", "2026-03-01T08:00:00Z", "Running", false),
            pod("web-c", "2026-03-01T09:00:00Z", "Running", false),
            pod("web-d", "2026-03-01T07:00:00Z", "Pending", false),
            pod("web-e", "2026-03-01T07:00:00Z", "Running", true),
        ];
        let names: Vec<String> = victims(pods, count).iter().map(|p| p.name_any()).collect();
        assert_eq!(names, expected);
    }
}
