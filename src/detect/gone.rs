//! Pods going away: deletion (graceful or not) and removal, read off the pod
//! watch. A pod deleted with a grace period first shows a
//! `deletionTimestamp` (Terminating) and is removed later; one deleted with
//! no grace, or never scheduled, only shows up as the watch's Delete event.
//! Either is [`SignalKind::PodGone`], whichever comes first.

use futures::{StreamExt, TryStreamExt};
use jiff::SignedDuration;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};

use super::classify::Finding;
use super::{DetectError, Scope, SignalKind, SignalStream, into_observation};

/// How a pod left, as the watch reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Departure {
    /// The pod is still there, maybe terminating.
    Present,
    /// The watch reported the pod removed.
    Removed,
}

/// [`SignalKind::PodGone`] when `pod` is terminating or was removed. `since`
/// is when the deletion was asked for (deletionTimestamp minus the grace
/// period it was given).
pub fn pod_gone_finding(pod: &Pod, departure: Departure) -> Option<Finding> {
    let requested = pod.metadata.deletion_timestamp.as_ref().map(|t| {
        let grace = pod.metadata.deletion_grace_period_seconds.unwrap_or(0);
        t.0 - SignedDuration::from_secs(grace)
    });
    let phase = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_else(|| "Unknown".into());
    let (reason, message) = match (departure, requested) {
        (Departure::Removed, _) => (
            "Deleted",
            format!("pod {} was removed (last phase {phase})", pod.name_any()),
        ),
        (Departure::Present, Some(_)) => (
            "Terminating",
            format!(
                "pod {} is being deleted (grace period {}s, phase {phase})",
                pod.name_any(),
                pod.metadata.deletion_grace_period_seconds.unwrap_or(0)
            ),
        ),
        (Departure::Present, None) => return None,
    };
    Some(Finding {
        kind: SignalKind::PodGone,
        container: None,
        reason: reason.into(),
        message,
        since: requested,
    })
}

/// Watches the pods in `scope` and reports each one deleted after
/// `scope.not_before` as [`SignalKind::PodGone`].
pub fn watch_pod_deletions(client: &Client, scope: &Scope) -> SignalStream {
    let api: Api<Pod> = Api::namespaced(client.clone(), &scope.namespace);
    let mut cfg = watcher::Config::default();
    if let Some(selector) = &scope.pod_selector {
        cfg = cfg.labels(selector);
    }
    let not_before = scope.not_before;
    watcher(api, cfg)
        .default_backoff()
        .map_err(DetectError::from)
        .try_filter_map(move |event| {
            let (pod, departure) = match event {
                watcher::Event::Apply(p) | watcher::Event::InitApply(p) => (p, Departure::Present),
                watcher::Event::Delete(p) => (p, Departure::Removed),
                watcher::Event::Init | watcher::Event::InitDone => {
                    return futures::future::ready(Ok(None));
                }
            };
            let found = pod_gone_finding(&pod, departure)
                .filter(|f| f.since.is_none_or(|t| t >= not_before))
                .map(|f| into_observation(f, format!("pod/{}", pod.name_any())));
            futures::future::ready(Ok(found))
        })
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn pod(deletion: Option<(&str, i64)>) -> Pod {
        let mut meta = serde_json::json!({"name": "web-7d4b9-x2k8p"});
        if let Some((at, grace)) = deletion {
            meta["deletionTimestamp"] = at.into();
            meta["deletionGracePeriodSeconds"] = grace.into();
        }
        serde_json::from_value(serde_json::json!({
            "metadata": meta,
            "status": {"phase": "Running"},
        }))
        .expect("a pod")
    }

    #[rstest]
    #[case::running(None, Departure::Present, None, None)]
    #[case::terminating(
        Some(("2026-03-01T10:00:05Z", 5)),
        Departure::Present,
        Some("Terminating"),
        Some("2026-03-01T10:00:00Z")
    )]
    #[case::removed_after_grace(
        Some(("2026-03-01T10:00:05Z", 5)),
        Departure::Removed,
        Some("Deleted"),
        Some("2026-03-01T10:00:00Z")
    )]
    #[case::removed_at_once(None, Departure::Removed, Some("Deleted"), None)]
    fn deletions_are_pod_gone_since_they_were_asked_for(
        #[case] deletion: Option<(&str, i64)>,
        #[case] departure: Departure,
        #[case] reason: Option<&str>,
        #[case] since: Option<&str>,
    ) {
        let found = pod_gone_finding(&pod(deletion), departure);
        assert_eq!(found.as_ref().map(|f| f.reason.as_str()), reason);
        assert_eq!(
            found.and_then(|f| f.since),
            since.map(|s| s.parse().expect("a timestamp"))
        );
    }
}
