//! Pods going away: deletion (graceful or not) and removal, read off the pod
//! watch. A pod deleted with a grace period first shows a
//! `deletionTimestamp` (Terminating) and is removed later; one deleted with
//! no grace, or never scheduled, only shows up as the watch's Delete event.
//! Either is [`SignalKind::PodGone`], whichever comes first.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use jiff::SignedDuration;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};

use super::classify::{Finding, same_second_or_later};
use super::{DetectError, Scope, SignalStream, into_observation};
use crate::vocab::SignalKind;

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
///
/// The watch starts when the stream is first polled: a pod removed before
/// that (deleted with no grace period) is never seen. A fault that deletes
/// pods itself uses [`watch_pod_deletions_listed`] instead.
pub fn watch_pod_deletions(client: &Client, scope: &Scope) -> SignalStream {
    deletions(raw_pod_watch(client, scope), scope.not_before)
}

/// [`watch_pod_deletions`], returned once the watch has listed the pods in
/// `scope`: every deletion made after this returns reaches the stream, even
/// one with no grace period, because the watch resumes from the list's
/// resourceVersion when it is next polled.
///
/// # Errors
///
/// [`DetectError::NotListed`] when the list takes longer than `within`,
/// [`DetectError::StreamEnded`] or the watch's error when it fails first.
pub async fn watch_pod_deletions_listed(
    client: &Client,
    scope: &Scope,
    within: Duration,
) -> Result<SignalStream, DetectError> {
    let mut raw = raw_pod_watch(client, scope);
    let mut listed = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, raw.next()).await {
            Err(_) => return Err(DetectError::NotListed { waited: within }),
            Ok(None) => return Err(DetectError::StreamEnded),
            Ok(Some(Err(e))) => return Err(e.into()),
            Ok(Some(Ok(watcher::Event::InitDone))) => break,
            Ok(Some(Ok(event))) => listed.push(Ok(event)),
        }
    }
    Ok(deletions(
        futures::stream::iter(listed).chain(raw).boxed(),
        scope.not_before,
    ))
}

type PodEvents = super::watch::Events<Pod>;

fn raw_pod_watch(client: &Client, scope: &Scope) -> PodEvents {
    let api: Api<Pod> = Api::namespaced(client.clone(), &scope.namespace);
    let mut cfg = watcher::Config::default();
    if let Some(selector) = &scope.pod_selector {
        cfg = cfg.labels(selector);
    }
    super::watch::events(api, cfg)
}

/// The pod watch's events as [`SignalKind::PodGone`] observations of pods
/// whose deletion was asked for at or after `not_before`.
fn deletions(events: PodEvents, not_before: jiff::Timestamp) -> SignalStream {
    events
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
                .filter(|f| f.since.is_none_or(|t| same_second_or_later(t, not_before)))
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
