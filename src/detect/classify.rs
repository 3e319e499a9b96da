//! Reading failure signals off object status, as `kubectl describe` would.
//! Pure functions over Kubernetes types, so they are tested on captured
//! objects without a cluster.

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ContainerStatus, Event, Pod};

use crate::vocab::SignalKind;

/// One signal read off one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The signal the state shows.
    pub kind: SignalKind,
    /// The container the signal is about, if any.
    pub container: Option<String>,
    /// Kubernetes' reason string (e.g. `ImagePullBackOff`).
    pub reason: String,
    /// The cluster's message for it.
    pub message: String,
    /// When the cluster says the condition began, when it says so.
    pub since: Option<Timestamp>,
}

/// Every signal a pod's status shows right now.
///
/// `baseline_restarts` maps container name to the restart count seen at
/// injection time; a higher count now yields [`SignalKind::Restarted`].
pub fn pod_findings(pod: &Pod, baseline_restarts: &dyn Fn(&str) -> Option<i32>) -> Vec<Finding> {
    let mut out = Vec::new();
    let Some(status) = &pod.status else {
        return out;
    };
    let statuses = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten());
    for cs in statuses {
        container_findings(cs, baseline_restarts, &mut out);
    }
    let phase = status.phase.as_deref().unwrap_or("");
    for cond in status.conditions.iter().flatten() {
        match (cond.type_.as_str(), cond.status.as_str()) {
            ("Ready", "False") if phase == "Running" => out.push(Finding {
                kind: SignalKind::Unready,
                container: None,
                reason: cond.reason.clone().unwrap_or_else(|| "NotReady".into()),
                message: cond.message.clone().unwrap_or_default(),
                since: cond.last_transition_time.as_ref().map(|t| t.0),
            }),
            ("PodScheduled", "False") if cond.reason.as_deref() == Some("Unschedulable") => out
                .push(Finding {
                    kind: SignalKind::Unschedulable,
                    container: None,
                    reason: "Unschedulable".into(),
                    message: cond.message.clone().unwrap_or_default(),
                    since: cond.last_transition_time.as_ref().map(|t| t.0),
                }),
            _ => {}
        }
    }
    if status.reason.as_deref() == Some("Evicted") {
        out.push(Finding {
            kind: SignalKind::PodGone,
            container: None,
            reason: "Evicted".into(),
            message: status.message.clone().unwrap_or_default(),
            since: None,
        });
    }
    out
}

fn container_findings(
    cs: &ContainerStatus,
    baseline_restarts: &dyn Fn(&str) -> Option<i32>,
    out: &mut Vec<Finding>,
) {
    let state = cs.state.as_ref();
    if let Some(waiting) = state.and_then(|s| s.waiting.as_ref()) {
        let reason = waiting.reason.clone().unwrap_or_default();
        let kind = match reason.as_str() {
            "ErrImagePull" => Some(SignalKind::ErrImagePull),
            "ImagePullBackOff" => Some(SignalKind::ImagePullBackOff),
            "InvalidImageName" => Some(SignalKind::InvalidImageName),
            "CrashLoopBackOff" => Some(SignalKind::CrashLoopBackOff),
            "CreateContainerConfigError" | "CreateContainerError" => {
                Some(SignalKind::CreateContainerConfigError)
            }
            _ => None,
        };
        if let Some(kind) = kind {
            out.push(Finding {
                kind,
                container: Some(cs.name.clone()),
                reason,
                message: waiting.message.clone().unwrap_or_default(),
                since: None,
            });
        }
    }
    let terminated = state
        .and_then(|s| s.terminated.as_ref())
        .into_iter()
        .chain(cs.last_state.as_ref().and_then(|s| s.terminated.as_ref()));
    for t in terminated {
        if t.reason.as_deref() == Some("OOMKilled") {
            out.push(Finding {
                kind: SignalKind::OOMKilled,
                container: Some(cs.name.clone()),
                reason: "OOMKilled".into(),
                message: format!("exit code {}", t.exit_code),
                since: t.finished_at.as_ref().map(|ts| ts.0),
            });
            break;
        }
    }
    if let Some(before) = baseline_restarts(&cs.name)
        && cs.restart_count > before
    {
        out.push(Finding {
            kind: SignalKind::Restarted,
            container: Some(cs.name.clone()),
            reason: "Restarted".into(),
            message: format!("restart count {} → {}", before, cs.restart_count),
            since: cs
                .last_state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .and_then(|t| t.finished_at.as_ref())
                .map(|ts| ts.0),
        });
    }
}

/// Signals on a Deployment: a rollout past its progress deadline.
pub fn deployment_findings(d: &Deployment) -> Vec<Finding> {
    d.status
        .iter()
        .flat_map(|s| s.conditions.iter().flatten())
        .filter(|c| c.type_ == "Progressing" && c.status == "False")
        .map(|c| Finding {
            kind: SignalKind::RolloutStalled,
            container: None,
            reason: c
                .reason
                .clone()
                .unwrap_or_else(|| "ProgressDeadlineExceeded".into()),
            message: c.message.clone().unwrap_or_default(),
            since: c.last_transition_time.as_ref().map(|t| t.0),
        })
        .collect()
}

/// The signal a core/v1 Event reports, if it reports one breakfix knows.
pub fn event_finding(event: &Event) -> Option<Finding> {
    let reason = event.reason.clone().unwrap_or_default();
    let message = event.message.clone().unwrap_or_default();
    let kind = match reason.as_str() {
        "FailedMount" => SignalKind::FailedMount,
        "FailedScheduling" => SignalKind::Unschedulable,
        "Unhealthy" => super::probe::parse_unhealthy(&message)?.signal()?,
        "BackOff" if message.contains("pulling image") => SignalKind::ImagePullBackOff,
        "BackOff" if message.contains("restarting failed container") => {
            SignalKind::CrashLoopBackOff
        }
        "Failed"
            if message.contains("ErrImagePull") || message.contains("Failed to pull image") =>
        {
            SignalKind::ErrImagePull
        }
        "Failed"
            if message.contains("CreateContainerConfigError") || message.contains("not found") =>
        {
            SignalKind::CreateContainerConfigError
        }
        "FailedCreate" if message.contains("exceeded quota") => SignalKind::QuotaExceeded,
        "OOMKilling" => SignalKind::OOMKilled,
        "NodeNotReady" => SignalKind::NodeNotReady,
        "Killing" => super::probe::killing_signal(&message),
        "TaintManagerEviction" => SignalKind::PodGone,
        _ => return None,
    };
    Some(Finding {
        kind,
        container: event_container(event),
        reason,
        message,
        since: event_time(event),
    })
}

/// The container an event is about: the kubelet names it in the involved
/// object's field path, `spec.containers{NAME}` or `spec.initContainers{NAME}`.
fn event_container(event: &Event) -> Option<String> {
    let path = event.involved_object.field_path.as_deref()?;
    let start = path.find('{')? + 1;
    let end = path[start..].find('}')? + start;
    Some(path[start..end].to_string())
}

/// The latest time an Event says its condition occurred. The kubelet
/// repeats an event by bumping `count` and `lastTimestamp` (or
/// `series.lastObservedTime`) on the same object, so a repetition after
/// injection is news even when the first occurrence was not.
pub fn event_last_seen(event: &Event) -> Option<Timestamp> {
    event
        .series
        .as_ref()
        .and_then(|s| s.last_observed_time.as_ref().map(|t| t.0))
        .or_else(|| event.last_timestamp.as_ref().map(|t| t.0))
        .or_else(|| event_time(event))
}

/// Whether an Event happened at or after `not_before`. core/v1 Events carry
/// whole seconds, so `not_before` is compared from the start of its second:
/// an event in the same second as the injection counts.
pub fn event_is_new(event: &Event, not_before: Timestamp) -> bool {
    event_last_seen(event).is_some_and(|t| same_second_or_later(t, not_before))
}

/// Whether a whole-second cluster timestamp `t` is at or after
/// `not_before`, counting `not_before`'s own second: the API server
/// truncates what happened 0.7 s after an injection to the second it
/// started in.
pub fn same_second_or_later(t: Timestamp, not_before: Timestamp) -> bool {
    let floor = Timestamp::from_second(not_before.as_second()).unwrap_or(not_before);
    t >= floor
}

/// The best timestamp an Event carries: eventTime (µs), else first/last seen.
pub fn event_time(event: &Event) -> Option<Timestamp> {
    event
        .event_time
        .as_ref()
        .map(|t| t.0)
        .or_else(|| event.first_timestamp.as_ref().map(|t| t.0))
        .or_else(|| event.last_timestamp.as_ref().map(|t| t.0))
        .or_else(|| event.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::same_second("2026-03-01T10:00:05Z", "2026-03-01T10:00:05.700Z", true)]
    #[case::later("2026-03-01T10:00:06Z", "2026-03-01T10:00:05.700Z", true)]
    #[case::earlier_second("2026-03-01T10:00:04Z", "2026-03-01T10:00:05.001Z", false)]
    fn whole_seconds_count_from_the_start_of_not_befores_second(
        #[case] t: &str,
        #[case] not_before: &str,
        #[case] counts: bool,
    ) {
        let t: Timestamp = t.parse().expect("a timestamp");
        let not_before: Timestamp = not_before.parse().expect("a timestamp");
        assert_eq!(same_second_or_later(t, not_before), counts);
    }
}
