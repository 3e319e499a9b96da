//! The vocabulary of what breakfix can see go wrong in a cluster.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A kind of failure signal, named as Kubernetes reports it where it has a name.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub enum SignalKind {
    /// A container image could not be pulled (first attempt).
    ErrImagePull,
    /// The kubelet is backing off pulling an image.
    ImagePullBackOff,
    /// The image reference itself is malformed.
    InvalidImageName,
    /// A container keeps crashing and the kubelet backs off restarting it.
    CrashLoopBackOff,
    /// A container was killed for exceeding its memory limit.
    OOMKilled,
    /// A container restarted (its restart count went up).
    Restarted,
    /// A running pod's Ready condition is False.
    Unready,
    /// A Service has no ready endpoints left.
    EndpointsEmpty,
    /// A container cannot be created from its spec (missing Secret/ConfigMap key, …).
    CreateContainerConfigError,
    /// A volume could not be mounted (missing Secret/ConfigMap, …).
    FailedMount,
    /// Pods are Pending because no node can take them.
    Unschedulable,
    /// The API server answered 403 to a workload's own calls.
    Forbidden,
    /// A DNS canary's lookups are failing.
    DnsFailures,
    /// A canary's checks (HTTP, DNS or API) are failing.
    CanaryFailing,
    /// Object creation was refused because a ResourceQuota is exhausted.
    QuotaExceeded,
    /// Jobs or pods multiplied past a declared bound.
    PodSurge,
    /// A pod was deleted or evicted.
    PodGone,
    /// A node stopped reporting Ready.
    NodeNotReady,
    /// A rollout stopped progressing (Deployment condition Progressing=False).
    RolloutStalled,
    /// A liveness probe fails; the kubelet restarts the container once it has
    /// failed `failureThreshold` times.
    LivenessFailed,
    /// The kubelet killed a container whose startup probe never passed within
    /// its allowance (`failureThreshold × periodSeconds`).
    StartupFailed,
    /// A liveness or startup probe gave up waiting for the app (`timeoutSeconds`).
    ProbeTimeout,
    /// A started container's readiness probe fails: its pod is taken out of
    /// its Services' endpoints.
    ReadinessFailed,
    /// A canary's recent latency is above the threshold in its args
    /// (`--ready-max-latency`): the service got slow, whether or not it fails.
    LatencyAbove,
}

impl SignalKind {
    /// Every signal breakfix knows, in declaration order (for faults whose
    /// signals are whatever the user names, such as the generic primitives).
    pub const ALL: &'static [SignalKind] = &[
        Self::ErrImagePull,
        Self::ImagePullBackOff,
        Self::InvalidImageName,
        Self::CrashLoopBackOff,
        Self::OOMKilled,
        Self::Restarted,
        Self::Unready,
        Self::EndpointsEmpty,
        Self::CreateContainerConfigError,
        Self::FailedMount,
        Self::Unschedulable,
        Self::Forbidden,
        Self::DnsFailures,
        Self::CanaryFailing,
        Self::QuotaExceeded,
        Self::PodSurge,
        Self::PodGone,
        Self::NodeNotReady,
        Self::RolloutStalled,
        Self::LivenessFailed,
        Self::StartupFailed,
        Self::ProbeTimeout,
        Self::ReadinessFailed,
        Self::LatencyAbove,
    ];

    /// Where the signal sits in [`Self::ALL`]. The match is exhaustive, so a
    /// new variant does not compile until it is added there too.
    pub const fn position(self) -> usize {
        match self {
            Self::ErrImagePull => 0,
            Self::ImagePullBackOff => 1,
            Self::InvalidImageName => 2,
            Self::CrashLoopBackOff => 3,
            Self::OOMKilled => 4,
            Self::Restarted => 5,
            Self::Unready => 6,
            Self::EndpointsEmpty => 7,
            Self::CreateContainerConfigError => 8,
            Self::FailedMount => 9,
            Self::Unschedulable => 10,
            Self::Forbidden => 11,
            Self::DnsFailures => 12,
            Self::CanaryFailing => 13,
            Self::QuotaExceeded => 14,
            Self::PodSurge => 15,
            Self::PodGone => 16,
            Self::NodeNotReady => 17,
            Self::RolloutStalled => 18,
            Self::LivenessFailed => 19,
            Self::StartupFailed => 20,
            Self::ProbeTimeout => 21,
            Self::ReadinessFailed => 22,
            Self::LatencyAbove => 23,
        }
    }

    /// One line on what the signal means, for `breakfix list` and reports.
    pub fn describe(self) -> &'static str {
        match self {
            Self::ErrImagePull => "a container image could not be pulled",
            Self::ImagePullBackOff => "the kubelet backs off pulling an image",
            Self::InvalidImageName => "an image reference is malformed",
            Self::CrashLoopBackOff => "a container keeps crashing; restarts back off",
            Self::OOMKilled => "a container was killed for exceeding its memory limit",
            Self::Restarted => "a container restarted",
            Self::Unready => "a running pod is not Ready",
            Self::EndpointsEmpty => "a Service has no ready endpoints",
            Self::CreateContainerConfigError => "a container cannot be created from its spec",
            Self::FailedMount => "a volume could not be mounted",
            Self::Unschedulable => "pods are Pending; no node can take them",
            Self::Forbidden => "a workload's API calls are refused with 403",
            Self::DnsFailures => "DNS lookups from a canary fail",
            Self::CanaryFailing => "a canary's checks fail",
            Self::QuotaExceeded => "creation refused: ResourceQuota exhausted",
            Self::PodSurge => "jobs or pods multiplied past a bound",
            Self::PodGone => "a pod was deleted or evicted",
            Self::NodeNotReady => "a node is not Ready",
            Self::RolloutStalled => "a rollout stopped progressing",
            Self::LivenessFailed => "a liveness probe fails; the container gets restarted",
            Self::StartupFailed => "a container was killed before its startup probe passed",
            Self::ProbeTimeout => "a liveness or startup probe times out waiting for the app",
            Self::ReadinessFailed => {
                "a readiness probe fails; the pod leaves its Services' endpoints"
            }
            Self::LatencyAbove => "a canary's recent latency is above its threshold",
        }
    }
}

impl fmt::Display for SignalKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::SignalKind;

    #[test]
    fn all_lists_every_signal_once_at_its_position() {
        for (i, kind) in SignalKind::ALL.iter().enumerate() {
            assert_eq!(kind.position(), i, "{kind} is out of place in ALL");
        }
        // The schema enumerates every variant, so a variant missing from ALL shows here.
        let schema = serde_json::to_value(schemars::schema_for!(SignalKind)).unwrap();
        let declared: Vec<String> = schema["oneOf"]
            .as_array()
            .expect("SignalKind's schema is a oneOf of documented constants")
            .iter()
            .map(|v| v["const"].as_str().unwrap().to_string())
            .collect();
        let listed: Vec<String> = SignalKind::ALL.iter().map(ToString::to_string).collect();
        assert_eq!(listed, declared);
    }
}
