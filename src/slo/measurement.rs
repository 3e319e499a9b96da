//! What the runner measured during one trial's fault window for the SLOs
//! beyond timing: plain data, produced by `runner::measure`, judged by
//! [`super::evaluate`] and rendered by the reporters.

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::experiment::slo::Window;
use crate::vocab::SignalKind;

/// Everything measured for one trial; absent parts were not asked for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Measurements {
    /// The availability canary's counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability: Option<AvailabilityMeasurement>,
    /// The latency canary's histogram.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencyMeasurement>,
    /// The workloads that left steady state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blast_radius: Option<BlastRadiusMeasurement>,
    /// Each condition's record.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<ConditionMeasurement>,
    /// What `expect.impact` asked to measure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impact: Option<ImpactMeasurements>,
}

/// What the fault caused, for `expect.impact`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImpactMeasurements {
    /// The availability canary's counts over the impact window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability: Option<AvailabilityMeasurement>,
    /// The latency canary's histogram over the impact window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencyMeasurement>,
    /// Every kind of signal seen from injection to the revert.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signals: Vec<SignalKind>,
}

impl Measurements {
    /// True when nothing beyond timing was measured.
    pub fn is_empty(&self) -> bool {
        self.availability.is_none()
            && self.latency.is_none()
            && self.blast_radius.is_none()
            && self.conditions.is_empty()
            && self.impact.is_none()
    }
}

/// A canary's checks over the fault window, from two reads of each canary
/// pod's `/status` counters (at injection and at recovery; or, over the
/// hold window, when the hold began and ended).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AvailabilityMeasurement {
    /// `app=web-canary -n shop`.
    pub canary: String,
    /// The window measured (absent in reports from before windows existed: `fault`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub over: Option<Window>,
    /// Start of the measured window.
    pub from: Option<Timestamp>,
    /// End of the measured window.
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
    /// The canary pod.
    pub pod: String,
    /// Its successful checks.
    pub ok: u64,
    /// Its checks.
    pub total: u64,
    /// How the window was read: restarts and pods that came or went.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The canary's last error at the second read, e.g. `nxdomain …`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// A canary's check latencies over a window, and over the baseline window
/// before injection when a bound is relative to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LatencyMeasurement {
    /// `app=web-canary -n shop`.
    pub canary: String,
    /// The window the SLO is judged over.
    pub over: Window,
    /// The latencies in that window.
    pub window: LatencyWindow,
    /// The latencies before the fault, for targets relative to them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<LatencyWindow>,
}

/// The latency distribution of a canary's checks between two reads of its
/// `/status` histogram (every pod's, summed): the later counts minus the
/// earlier, bucket by bucket.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LatencyWindow {
    /// Start of the window.
    pub from: Option<Timestamp>,
    /// End of the window.
    pub to: Option<Timestamp>,
    /// Checks in the window (successes and failures: a timeout counts at
    /// the timeout).
    pub count: u64,
    /// Their latencies' sum, in milliseconds.
    pub sum_ms: f64,
    /// Non-empty buckets, by increasing bound.
    pub buckets: Vec<LatencyBucket>,
    /// Pods that restarted, came or went, as for availability.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Why no distribution could be measured, if none could.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Checks whose latency was above `gt_us` and at most `le_us` (`None`:
/// no upper bound).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LatencyBucket {
    /// The bucket's lower bound, in microseconds.
    pub gt_us: u64,
    /// The bucket's upper bound in microseconds; `None` for +Inf.
    pub le_us: Option<u64>,
    /// Checks in the bucket.
    pub count: u64,
}

impl LatencyWindow {
    /// The `p`th percentile (0 < p ≤ 100) in milliseconds: the bucket
    /// holding the nearest-rank check, interpolated linearly inside it
    /// (within the bucket's width, ≤ 19%). `None` without checks or on error.
    pub fn percentile_ms(&self, p: f64) -> Option<f64> {
        if self.error.is_some() || self.count == 0 {
            return None;
        }
        let rank = ((p / 100.0) * self.count as f64).ceil().max(1.0);
        let mut below = 0u64;
        for b in &self.buckets {
            let reached = below + b.count;
            if reached as f64 >= rank {
                let Some(upper_us) = b.le_us else {
                    // Beyond the last bound: all that is known is "more than".
                    return Some(b.gt_us as f64 / 1000.0);
                };
                let into = (rank - below as f64) / b.count.max(1) as f64;
                let us = b.gt_us as f64 + upper_us.saturating_sub(b.gt_us) as f64 * into;
                return Some(us / 1000.0);
            }
            below = reached;
        }
        None
    }

    /// The mean in milliseconds.
    pub fn mean_ms(&self) -> Option<f64> {
        (self.error.is_none() && self.count > 0).then(|| self.sum_ms / self.count as f64)
    }
}

/// Workloads outside the target that left steady state during the fault.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BlastRadiusMeasurement {
    /// Start of the watched window.
    pub from: Option<Timestamp>,
    /// End of the watched window.
    pub to: Option<Timestamp>,
    /// Workloads steady at injection and watched until recovery.
    pub watched: u32,
    /// The fault's target, never counted.
    pub excluded: Vec<String>,
    /// Workloads already unsteady at injection (not counted).
    pub unsteady_at_start: Vec<String>,
    /// Namespaces other experiments of the run held while this one's fault
    /// was in (not counted: what broke there was theirs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub others: Vec<String>,
    /// Each watched workload that left steady state, with when and why.
    pub affected: Vec<Disturbance>,
    /// When the watch broke after it started (the API server restarting
    /// under an upgrade) and why; it re-lists and goes on, but a workload
    /// that left steady state and came back while it was broken is not seen.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub watch_gaps: Vec<String>,
    /// Why the recording stopped early, if it did.
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
    /// When it left steady state.
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
    /// The condition's name.
    pub name: String,
    /// `deployment/web -n shop`.
    pub object: String,
    /// Its CEL expression.
    pub expr: String,
    /// Start of the watched window.
    pub from: Option<Timestamp>,
    /// End of the watched window.
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
    /// Why the recording stopped early, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A stretch during which a condition did not hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FalseSpan {
    /// When the condition stopped holding.
    pub from: Timestamp,
    /// `None`: still false when the window closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Timestamp>,
    /// The values the expression read when it turned false.
    pub values: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn window(buckets: &[(u64, Option<u64>, u64)]) -> LatencyWindow {
        LatencyWindow {
            count: buckets.iter().map(|(_, _, n)| n).sum(),
            buckets: buckets
                .iter()
                .map(|(gt_us, le_us, count)| LatencyBucket {
                    gt_us: *gt_us,
                    le_us: *le_us,
                    count: *count,
                })
                .collect(),
            ..LatencyWindow::default()
        }
    }

    #[rstest]
    // 100 checks, 90 fast (in (1ms, 2ms]), 10 slow (in (400ms, 476ms]).
    #[case(50.0, Some(1.0 + 50.0 / 90.0))]
    #[case(90.0, Some(2.0))]
    #[case(95.0, Some(400.0 + 76.0 * 0.5))]
    #[case(100.0, Some(476.0))]
    fn percentiles_interpolate_inside_the_bucket(#[case] p: f64, #[case] ms: Option<f64>) {
        let w = window(&[(1000, Some(2000), 90), (400_000, Some(476_000), 10)]);
        let got = w.percentile_ms(p);
        assert!(
            got.zip(ms).is_some_and(|(g, m)| (g - m).abs() < 1e-6),
            "p{p}: {got:?} != {ms:?}"
        );
    }

    #[test]
    fn beyond_the_last_bound_reads_as_its_lower_edge() {
        let w = window(&[(52_428_800, Some(62_348_702), 1), (62_348_702, None, 3)]);
        assert_eq!(w.percentile_ms(99.0), Some(62_348.702));
    }

    #[test]
    fn nothing_measured_has_no_percentile() {
        assert_eq!(LatencyWindow::default().percentile_ms(95.0), None);
        let failed = LatencyWindow {
            error: Some("no canary".into()),
            ..window(&[(0, Some(1000), 4)])
        };
        assert_eq!(failed.percentile_ms(50.0), None);
        assert_eq!(failed.mean_ms(), None);
    }
}
