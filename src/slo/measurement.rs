//! What the runner measured during one trial's fault window for the SLOs
//! beyond timing: plain data, produced by `runner::measure`, judged by
//! [`super::evaluate`] and rendered by the reporters.

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Everything measured for one trial; absent parts were not asked for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Measurements {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability: Option<AvailabilityMeasurement>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blast_radius: Option<BlastRadiusMeasurement>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<ConditionMeasurement>,
}

impl Measurements {
    /// True when nothing beyond timing was measured.
    pub fn is_empty(&self) -> bool {
        self.availability.is_none() && self.blast_radius.is_none() && self.conditions.is_empty()
    }
}

/// A canary's checks over the fault window, from two reads of each canary
/// pod's `/status` counters (at injection and at recovery).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AvailabilityMeasurement {
    /// `app=web-canary -n shop`.
    pub canary: String,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    /// Checks that succeeded in the window, over all canary pods.
    pub ok: u64,
    /// Checks made in the window, over all canary pods.
    pub total: u64,
    /// Per pod: what its counters said.
    pub pods: Vec<CanaryPodWindow>,
    /// Why no ratio could be measured, if none could.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl AvailabilityMeasurement {
    /// `ok / total`; `None` without checks in the window or on error.
    pub fn ratio(&self) -> Option<f64> {
        (self.error.is_none() && self.total > 0).then(|| self.ok as f64 / self.total as f64)
    }
}

/// One canary pod's part of the window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryPodWindow {
    pub pod: String,
    pub ok: u64,
    pub total: u64,
    /// How the window was read: restarts and pods that came or went.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The canary's last error at the second read, e.g. `nxdomain …`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// Workloads outside the target that left steady state during the fault.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BlastRadiusMeasurement {
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    /// Workloads steady at injection and watched until recovery.
    pub watched: u32,
    /// The fault's target, never counted.
    pub excluded: Vec<String>,
    /// Workloads already unsteady at injection (not counted).
    pub unsteady_at_start: Vec<String>,
    /// Each watched workload that left steady state, with when and why.
    pub affected: Vec<Disturbance>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl BlastRadiusMeasurement {
    /// How many distinct workloads left steady state; `None` on error.
    pub fn affected_count(&self) -> Option<u64> {
        if self.error.is_some() {
            return None;
        }
        let mut names: Vec<&str> = self.affected.iter().map(|d| d.workload.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        Some(names.len() as u64)
    }
}

/// One workload out of steady state for a while.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Disturbance {
    /// `deployment/coredns -n kube-system`.
    pub workload: String,
    pub left: Timestamp,
    /// When it was steady again (`None`: not before the window closed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub back: Option<Timestamp>,
    /// Its state when it left steady state (the first one that says more
    /// than "spec change not yet observed"), e.g.
    /// `1/2 ready, 2 updated, 1 available, 2 total`.
    pub reason: String,
}

/// A user condition over the fault window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConditionMeasurement {
    pub name: String,
    /// `deployment/web -n shop`.
    pub object: String,
    pub expr: String,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    /// Whether it held when the window opened.
    pub initially: bool,
    /// First moment it held at or after injection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub became_true: Option<Timestamp>,
    /// Stretches during which it did not hold, with the values read.
    pub false_spans: Vec<FalseSpan>,
    /// Total time it did not hold within the window, in milliseconds.
    pub false_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A stretch during which a condition did not hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FalseSpan {
    pub from: Timestamp,
    /// `None`: still false when the window closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Timestamp>,
    /// The values the expression read when it turned false.
    pub values: String,
}
