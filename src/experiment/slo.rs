//! The `slo:` block of an experiment: what a run is judged against.
//!
//! Besides the timing SLOs every experiment has (`detectWithin`,
//! `recoverWithin`) an experiment may ask for:
//!
//! - `availability`: the success ratio of a canary's own checks (the
//!   workload image's `/status` counters) over the fault window (or the
//!   hold window);
//! - `latency`: a percentile of a canary's check latencies over the same
//!   window, at most a duration or at most a multiple of the same
//!   percentile over a baseline window before injection;
//! - `blastRadius`: how many workloads outside the fault's target may leave
//!   steady state while the fault is in;
//! - `conditions`: the user's own signals and objectives, as a CEL
//!   condition on any object ([`CelExpr`], as Kubernetes writes them) that
//!   must hold through the fault window or become true within a deadline.
//!
//! With `repeat`, each SLO is judged on one percentile of its per-trial
//! measurements (`percentile`, default p95).

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::vocab::{CelExpr, HumanDuration, Name};

/// Service-level objectives the run is judged against.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SloSpec {
    /// Time from injection to the harness seeing an expected signal.
    pub detect_within: HumanDuration,
    /// Time from revert (or injection, for self-healing faults) to stable steady state.
    pub recover_within: HumanDuration,
    /// Which percentile of the trials' measurements each verdict is taken on.
    #[serde(default)]
    pub percentile: Percentile,
    /// Success ratio of a canary's checks from injection to recovery (or
    /// over the hold window).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability: Option<AvailabilitySlo>,
    /// A percentile of a canary's check latencies over the same window: at
    /// most a duration (`atMost`) or a multiple of the baseline's (`atMostTimes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencyBound>,
    /// Workloads outside the target that must stay steady during the fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blast_radius: Option<BlastRadiusSlo>,
    /// Your own objectives: a CEL condition on any object.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<ConditionSlo>,
}

/// The percentile of per-trial measurements a verdict is taken on
/// (nearest rank, counting from the best trial; `max` is the worst trial).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Percentile {
    /// The median.
    P50,
    /// The 90th percentile.
    P90,
    /// The 95th percentile.
    #[default]
    P95,
    /// The 99th percentile.
    P99,
    /// The worst trial.
    Max,
}

impl Percentile {
    /// The fraction of trials at or better than the verdict's trial.
    pub fn fraction(self) -> f64 {
        match self {
            Self::P50 => 0.50,
            Self::P90 => 0.90,
            Self::P95 => 0.95,
            Self::P99 => 0.99,
            Self::Max => 1.0,
        }
    }

    /// `p95`, `max`, as written in files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::P50 => "p50",
            Self::P90 => "p90",
            Self::P95 => "p95",
            Self::P99 => "p99",
            Self::Max => "max",
        }
    }
}

impl fmt::Display for Percentile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A percentage written with its sign: `"95%"`, `"99.9%"`.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Percent(f64);

impl Percent {
    /// Parses `"95%"`; the value must be above 0 and at most 100.
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let Some(number) = t.strip_suffix('%') else {
            return Err(format!(
                "`{t}` is not a percentage; write it with a % sign, e.g. \"95%\""
            ));
        };
        let value: f64 = number
            .trim()
            .parse()
            .map_err(|_| format!("`{t}` is not a percentage; write e.g. \"99.5%\""))?;
        if !(value > 0.0 && value <= 100.0) {
            return Err(format!(
                "`{t}` is out of range; a percentage here is above 0% and at most 100%"
            ));
        }
        Ok(Self(value))
    }

    /// As a ratio, 0..=1.
    pub fn ratio(self) -> f64 {
        self.0 / 100.0
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.0)
    }
}

impl Serialize for Percent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_yaml::Value::deserialize(d)?;
        match value {
            serde_yaml::Value::String(s) => Percent::parse(&s).map_err(serde::de::Error::custom),
            serde_yaml::Value::Number(n) => Err(serde::de::Error::custom(format!(
                "`{n}` is a bare number; write the percentage as a quoted string, e.g. \"{n}%\""
            ))),
            _ => Err(serde::de::Error::custom(
                "expected a percentage such as \"95%\"",
            )),
        }
    }
}

impl JsonSchema for Percent {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Percent".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^[0-9]+(\\.[0-9]+)?%$",
            "description": "A percentage above 0% and at most 100%, e.g. \"95%\"",
        })
    }
}

/// `availability: {canary: {...}, atLeast: "95%"}`; in `expect.impact`,
/// `atMost: "50%"` (the fault must cost at least that much).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AvailabilitySlo {
    /// The canary whose checks are counted.
    pub canary: CanaryRef,
    /// Lowest acceptable success ratio of the canary's checks (an SLO).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_least: Option<Percent>,
    /// Highest success ratio that still shows the outage (`expect.impact`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_most: Option<Percent>,
    /// The window measured: `fault` (injection to recovery) or `hold` (the
    /// hold window); default `hold` when the experiment holds, else `fault`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub over: Option<Window>,
}

/// Which stretch of a trial a canary measurement covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Window {
    /// From injection (the first step) until steady again after the revert.
    Fault,
    /// From detection until the revert: the time `spec.hold` keeps the fault in.
    Hold,
}

impl Window {
    /// As written in files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fault => "fault",
            Self::Hold => "hold",
        }
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A percentile of individual checks (`p50`, `p95`, `p99`, `p99.9`), not
/// to be confused with [`Percentile`], which ranks trials.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct CheckPercentile(f64);

impl CheckPercentile {
    /// Parses `p95`, `p99.9`: a `p` and a number above 0, at most 100.
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let value = t
            .strip_prefix('p')
            .and_then(|n| n.parse::<f64>().ok())
            .ok_or_else(|| {
                format!("`{t}` is not a percentile; write e.g. p50, p95, p99 or p99.9")
            })?;
        if !(value > 0.0 && value <= 100.0) {
            return Err(format!(
                "`{t}` is out of range; a percentile is above p0, at most p100"
            ));
        }
        Ok(Self(value))
    }

    /// 0 < value ≤ 100.
    pub fn value(self) -> f64 {
        self.0
    }
}

impl Default for CheckPercentile {
    fn default() -> Self {
        Self(95.0)
    }
}

impl fmt::Display for CheckPercentile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p{}", self.0)
    }
}

impl Serialize for CheckPercentile {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for CheckPercentile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_yaml::Value::deserialize(d)?;
        match value {
            serde_yaml::Value::String(s) => Self::parse(&s).map_err(serde::de::Error::custom),
            other => Err(serde::de::Error::custom(format!(
                "`{}` is not a percentile; write it as p50, p95, p99 or p99.9",
                serde_yaml::to_string(&other).unwrap_or_default().trim()
            ))),
        }
    }
}

impl JsonSchema for CheckPercentile {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "CheckPercentile".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^p[0-9]+(\\.[0-9]+)?$",
            "description": "A percentile of a canary's checks: p50, p90, p95, p99, p99.9",
        })
    }
}

/// A latency bound on a canary's checks: `{canary, percentile, atMost}`
/// (an SLO), or in `expect.impact` `atLeast` (the fault must make it that
/// slow); `…Times` compares with the same percentile over a baseline window
/// measured right before injection.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LatencyBound {
    /// The canary whose latency is measured.
    pub canary: CanaryRef,
    /// Which percentile of the canary's checks (default p95).
    #[serde(default)]
    pub percentile: CheckPercentile,
    /// The most it may be (an SLO).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_most: Option<HumanDuration>,
    /// The most it may be, as a multiple of the baseline window's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_most_times: Option<f64>,
    /// The least it must reach for the fault to count as felt (`expect.impact`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_least: Option<HumanDuration>,
    /// The least it must reach, as a multiple of the baseline window's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_least_times: Option<f64>,
    /// The window measured: `fault` or `hold` (default: `hold` when the
    /// experiment holds, else `fault`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub over: Option<Window>,
    /// How long the baseline window before injection is (for `…Times`;
    /// default 10s). The canary's checks in it are the reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_window: Option<HumanDuration>,
}

/// The default length of the baseline window a relative latency bound
/// compares with.
pub const DEFAULT_BASELINE_WINDOW: std::time::Duration = std::time::Duration::from_secs(10);

/// What a latency bound asks, once checked: at most or at least, an
/// absolute duration or a multiple of the baseline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LatencyTarget {
    /// At most this long.
    AtMost(std::time::Duration),
    /// At most this many times the baseline window's latency.
    AtMostTimes(f64),
    /// At least this long (a fault must cost this much).
    AtLeast(std::time::Duration),
    /// At least this many times the baseline window's latency.
    AtLeastTimes(f64),
}

impl LatencyTarget {
    /// Whether it compares with the baseline window.
    pub fn relative(self) -> bool {
        matches!(self, Self::AtMostTimes(_) | Self::AtLeastTimes(_))
    }
}

impl LatencyBound {
    /// The one bound given, if exactly one is.
    pub fn target(&self) -> Option<LatencyTarget> {
        let given = [
            self.at_most.map(|d| LatencyTarget::AtMost(d.get())),
            self.at_most_times.map(LatencyTarget::AtMostTimes),
            self.at_least.map(|d| LatencyTarget::AtLeast(d.get())),
            self.at_least_times.map(LatencyTarget::AtLeastTimes),
        ];
        let mut present = given.into_iter().flatten();
        match (present.next(), present.next()) {
            (Some(t), None) => Some(t),
            _ => None,
        }
    }

    /// The baseline window this bound needs, if it is relative.
    pub fn baseline_needed(&self) -> Option<std::time::Duration> {
        self.target().filter(|t| t.relative()).map(|_| {
            self.baseline_window
                .map(HumanDuration::get)
                .unwrap_or(DEFAULT_BASELINE_WINDOW)
        })
    }

    /// Problems with the bound, as an SLO (`at_least_allowed: false`: a
    /// ceiling) or an impact (`true`: a floor). `at` names it in messages.
    pub fn problems(
        &self,
        at: &str,
        as_impact: bool,
    ) -> Vec<(&'static str, String, Option<String>)> {
        let mut out = Vec::new();
        let most = self.at_most.is_some() || self.at_most_times.is_some();
        let least = self.at_least.is_some() || self.at_least_times.is_some();
        if most && least {
            let key = if self.at_least.is_some() {
                "atLeast"
            } else {
                "atLeastTimes"
            };
            out.push((
                key,
                format!("{at}: `atMost` and `atLeast` are both given; a bound is one or the other"),
                Some("an SLO (`slo.latency`) is a ceiling, `atMost`; what the fault must cause (`expect.impact.latency`) is a floor, `atLeast`".to_string()),
            ));
            return out;
        }
        if self.at_most.is_some() && self.at_most_times.is_some() {
            out.push((
                "atMostTimes",
                format!("{at}: `atMost` and `atMostTimes` are both given; keep one"),
                None,
            ));
        }
        if self.at_least.is_some() && self.at_least_times.is_some() {
            out.push((
                "atLeastTimes",
                format!("{at}: `atLeast` and `atLeastTimes` are both given; keep one"),
                None,
            ));
        }
        if !most && !least {
            out.push((
                "canary",
                format!("{at}: no bound; give `{}`", if as_impact { "atLeast` or `atLeastTimes" } else { "atMost` or `atMostTimes" }),
                Some(if as_impact { "e.g. `atLeastTimes: 3`: at least three times the baseline window's" } else { "e.g. `atMost: 500ms`, or `atMostTimes: 3` for three times the baseline window's" }.to_string()),
            ));
        }
        if as_impact && most {
            out.push((
                if self.at_most.is_some() { "atMost" } else { "atMostTimes" },
                format!("{at}: an impact is what the fault must cause, a floor: `atLeast` or `atLeastTimes`"),
                Some("a ceiling on latency during the fault is an SLO: put it in `slo.latency`".into()),
            ));
        }
        if !as_impact && least {
            out.push((
                if self.at_least.is_some() { "atLeast" } else { "atLeastTimes" },
                format!("{at}: an SLO is a ceiling, `atMost` or `atMostTimes`"),
                Some("to require that the fault slows the canary down, use `expect.impact.latency` with `atLeast`".into()),
            ));
        }
        for (key, factor) in [
            ("atMostTimes", self.at_most_times),
            ("atLeastTimes", self.at_least_times),
        ] {
            if let Some(f) = factor
                && !(f.is_finite() && f > 0.0)
            {
                out.push((
                    key,
                    format!("{at}: `{key}` is {f}; a multiple of the baseline is above 0"),
                    None,
                ));
            }
        }
        if self.baseline_window.is_some() && !self.target().is_some_and(|t| t.relative()) {
            out.push((
                "baselineWindow",
                format!("{at}: `baselineWindow` applies to `atMostTimes` / `atLeastTimes`"),
                None,
            ));
        }
        if self.canary.port == 0 {
            out.push(("port", format!("{at}: canary.port must not be 0"), None));
        }
        out
    }
}

/// Pods running the workload image in a canary mode (http-canary,
/// dns-canary, api-canary), whose `/status` counters breakfix reads through
/// the API server's pod proxy at injection and at recovery.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CanaryRef {
    /// Label selector of the canary pods, e.g. `app=web-canary`.
    pub selector: LabelSelector,
    /// Default: the baseline's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<Name>,
    /// The port serving `/status`.
    #[serde(default = "default_canary_port")]
    pub port: u16,
}

fn default_canary_port() -> u16 {
    8080
}

/// An equality-based label selector: `key=value` pairs separated by commas.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(transparent)]
pub struct LabelSelector(
    #[schemars(regex(
        pattern = r"^[A-Za-z0-9._/-]+!?==?[A-Za-z0-9._-]*(,[A-Za-z0-9._/-]+!?==?[A-Za-z0-9._-]*)*$"
    ))]
    String,
);

impl LabelSelector {
    /// Checks `s`: one or more `key=value` (or `key==value`, `key!=value`) pairs.
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if t.is_empty() {
            return Err("empty label selector; write e.g. `app=web-canary`".into());
        }
        let allowed_key = |c: char| c.is_ascii_alphanumeric() || "._/-".contains(c);
        let allowed_value = |c: char| c.is_ascii_alphanumeric() || "._-".contains(c);
        for part in t.split(',') {
            let part = part.trim();
            let (key, value) = part
                .split_once("!=")
                .or_else(|| part.split_once("=="))
                .or_else(|| part.split_once('='))
                .ok_or_else(|| {
                    format!(
                        "`{part}` in selector `{t}` is not `key=value`; write e.g. `app=web-canary`"
                    )
                })?;
            if key.is_empty() || !key.chars().all(allowed_key) {
                return Err(format!("`{key}` in selector `{t}` is not a label key"));
            }
            if !value.chars().all(allowed_value) {
                return Err(format!("`{value}` in selector `{t}` is not a label value"));
            }
        }
        Ok(Self(
            t.split(',').map(str::trim).collect::<Vec<_>>().join(","),
        ))
    }

    /// The selector as the API server takes it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for LabelSelector {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        LabelSelector::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// `blastRadius:` which workloads must stay steady while the fault is in.
/// With neither `namespaces` nor `workloads`, every namespace is watched.
/// The fault's own target is never counted.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BlastRadiusSlo {
    /// Namespaces whose Deployments, StatefulSets and DaemonSets are watched; `"*"` is every namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<NamespaceSelector>,
    /// Individual workloads to watch.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workloads: Vec<WorkloadRef>,
    /// How many watched workloads may leave steady state (default 0).
    #[serde(default)]
    pub max_affected: u32,
}

impl BlastRadiusSlo {
    /// True when every namespace is watched.
    pub fn all_namespaces(&self) -> bool {
        (self.namespaces.is_empty() && self.workloads.is_empty())
            || self.namespaces.iter().any(NamespaceSelector::is_all)
    }
}

/// A namespace name, or `"*"` for every namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(transparent)]
pub struct NamespaceSelector(
    #[schemars(regex(pattern = r"^(\*|[a-z0-9]([-a-z0-9]*[a-z0-9])?)$"))] String,
);

impl NamespaceSelector {
    /// The namespace `name`.
    pub fn named(name: &Name) -> Self {
        Self(name.to_string())
    }

    /// Whether this is `"*"`.
    pub fn is_all(&self) -> bool {
        self.0 == "*"
    }

    /// The namespace name (or `*`).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for NamespaceSelector {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s == "*" {
            return Ok(Self(s));
        }
        Name::new(&s)
            .map(|n| Self(n.to_string()))
            .map_err(|e| serde::de::Error::custom(format!("{e} (or \"*\" for every namespace)")))
    }
}

/// The workload kinds whose steady state breakfix judges.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub enum WorkloadKind {
    /// A Deployment.
    Deployment,
    /// A StatefulSet.
    StatefulSet,
    /// A DaemonSet.
    DaemonSet,
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// One workload, by kind, namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WorkloadRef {
    /// The workload's kind.
    pub kind: WorkloadKind,
    /// Its namespace.
    pub namespace: Name,
    /// Its name.
    pub name: Name,
}

impl fmt::Display for WorkloadRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{} -n {}",
            self.kind.to_string().to_lowercase(),
            self.name,
            self.namespace
        )
    }
}

/// A user-defined objective over one object.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConditionSlo {
    /// Names the objective in reports.
    pub name: Name,
    /// The object the expression reads (watched from injection to recovery).
    pub object: ObjectTarget,
    /// A CEL condition on the object, read as `object`, e.g.
    /// `object.status.readyReplicas >= 1` (docs/slos.md).
    pub expression: CelExpr,
    /// `hold` (default): true from injection to recovery, false for at most
    /// `tolerance` in total. `becomeTrue`: true within `within` of injection.
    #[serde(default)]
    pub must: ConditionMust,
    /// For `must: becomeTrue`: the deadline, counted from injection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within: Option<HumanDuration>,
    /// For `must: hold`: how long in total the condition may be false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<HumanDuration>,
}

/// What a condition must do during the fault window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ConditionMust {
    /// Stay true from injection to recovery (an invariant).
    #[default]
    Hold,
    /// Turn true within `within` of injection (your own signal).
    BecomeTrue,
}

/// Any object: apiVersion, kind, namespace (default: the baseline's, for
/// namespaced kinds) and name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ObjectTarget {
    /// The object's apiVersion (`apps/v1`).
    pub api_version: String,
    /// The object's kind.
    pub kind: String,
    /// Its namespace; none for cluster-scoped objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<Name>,
    /// Its name.
    pub name: String,
}

impl fmt::Display for ObjectTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{} -n {ns}", self.kind.to_lowercase(), self.name),
            None => write!(f, "{}/{}", self.kind.to_lowercase(), self.name),
        }
    }
}

/// A semantic problem in the `slo:` block: where it is (keys under `spec.slo`)
/// and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SloProblem {
    /// The keys of the field at fault, for locating it in the file.
    pub keys: Vec<String>,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
}

impl SloSpec {
    /// Objectives on time alone: an expected signal within `detect_within`
    /// of injection, steady state back within `recover_within`; the
    /// default percentile and no canary, blast-radius or condition SLOs
    /// (set those fields to add them).
    pub fn new(detect_within: HumanDuration, recover_within: HumanDuration) -> Self {
        Self {
            detect_within,
            recover_within,
            percentile: Percentile::default(),
            availability: None,
            latency: None,
            blast_radius: None,
            conditions: Vec::new(),
        }
    }

    /// Checks that need more than types; every problem found is returned.
    pub fn problems(&self) -> Vec<SloProblem> {
        let mut out = Vec::new();
        let problem = |keys: &[&str], message: String, help: Option<&str>| SloProblem {
            keys: keys.iter().map(ToString::to_string).collect(),
            message,
            help: help.map(str::to_string),
        };
        for (i, c) in self.conditions.iter().enumerate() {
            let at = format!("spec.slo.conditions[{i}] `{}`", c.name);
            match c.must {
                ConditionMust::BecomeTrue if c.within.is_none() => out.push(problem(
                    &["conditions", "must"],
                    format!("{at}: `must: becomeTrue` needs `within`, the deadline from injection"),
                    Some("add e.g. `within: 30s`"),
                )),
                ConditionMust::BecomeTrue if c.tolerance.is_some() => out.push(problem(
                    &["conditions", "tolerance"],
                    format!("{at}: `tolerance` applies to `must: hold`, not `becomeTrue`"),
                    None,
                )),
                ConditionMust::Hold if c.within.is_some() => out.push(problem(
                    &["conditions", "within"],
                    format!("{at}: `within` applies to `must: becomeTrue`; a `hold` condition is judged over the whole fault window"),
                    Some("set `must: becomeTrue`, or use `tolerance` for how long it may be false"),
                )),
                _ => {}
            }
            if c.object.api_version.trim().is_empty() || c.object.kind.trim().is_empty() {
                out.push(problem(
                    &["conditions", "object"],
                    format!("{at}: object needs apiVersion and kind"),
                    Some("e.g. `object: {apiVersion: apps/v1, kind: Deployment, name: web}`"),
                ));
            }
            if c.object.name.trim().is_empty() {
                out.push(problem(
                    &["conditions", "object"],
                    format!("{at}: object needs a name"),
                    None,
                ));
            }
            if self.conditions[..i].iter().any(|o| o.name == c.name) {
                out.push(problem(
                    &["conditions", "name"],
                    format!(
                        "condition name `{}` is used twice; reports tell them apart by name",
                        c.name
                    ),
                    None,
                ));
            }
        }
        if let Some(b) = &self.blast_radius
            && b.namespaces.len() > 1
            && b.namespaces.iter().any(NamespaceSelector::is_all)
        {
            out.push(problem(
                &["blastRadius", "namespaces"],
                "spec.slo.blastRadius.namespaces lists \"*\" with other namespaces; \"*\" already watches every namespace".into(),
                Some("keep either \"*\" or the named namespaces"),
            ));
        }
        if let Some(a) = &self.availability {
            if a.canary.port == 0 {
                out.push(problem(
                    &["availability", "canary", "port"],
                    "spec.slo.availability.canary.port must not be 0".into(),
                    Some("the workload image serves /status on 8080 unless --port says otherwise"),
                ));
            }
            if a.at_most.is_some() && a.at_least.is_some() {
                out.push(problem(
                    &["availability", "atMost"],
                    "spec.slo.availability: `atMost` and `atLeast` are both given; an SLO is a floor, `atLeast`".into(),
                    Some("to require that the fault costs availability, use `expect.impact.availability` with `atMost`"),
                ));
            } else if a.at_most.is_some() {
                out.push(problem(
                    &["availability", "atMost"],
                    "spec.slo.availability: an SLO is a floor, `atLeast`; `atMost` says the fault must be felt".into(),
                    Some("move it to `expect.impact.availability`"),
                ));
            } else if a.at_least.is_none() {
                out.push(problem(
                    &["availability"],
                    "spec.slo.availability needs `atLeast`, the lowest acceptable success ratio"
                        .into(),
                    Some("e.g. `atLeast: \"95%\"`"),
                ));
            }
        }
        if let Some(l) = &self.latency {
            for (key, message, help) in l.problems("spec.slo.latency", false) {
                out.push(SloProblem {
                    keys: vec!["latency".into(), key.into()],
                    message,
                    help,
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn slo(yaml: &str) -> Result<SloSpec, String> {
        serde_yaml::from_str(&format!("detectWithin: 30s\nrecoverWithin: 60s\n{yaml}"))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn reads_every_slo_kind() {
        let s = slo(r#"
percentile: p90
availability: {canary: {selector: app=web-canary}, atLeast: "99.5%"}
blastRadius: {namespaces: [kube-system], maxAffected: 1}
conditions:
  - name: web-serves
    object: {apiVersion: apps/v1, kind: Deployment, name: web}
    expression: object.status.availableReplicas >= 1
  - name: alert-fires
    object: {apiVersion: v1, kind: ConfigMap, namespace: shop, name: alerts}
    expression: object.data.firing == "true"
    must: becomeTrue
    within: 45s
"#)
        .unwrap();
        assert_eq!(s.percentile, Percentile::P90);
        let a = s.availability.as_ref().unwrap();
        assert_eq!(a.at_least.map(Percent::ratio), Some(0.995));
        assert_eq!(a.canary.port, 8080);
        assert_eq!(s.blast_radius.as_ref().unwrap().max_affected, 1);
        assert_eq!(s.conditions[1].must, ConditionMust::BecomeTrue);
        assert!(s.problems().is_empty(), "{:?}", s.problems());
    }

    #[rstest]
    #[case("percentile: p42", "unknown variant `p42`")]
    #[case(
        "availability: {canary: {selector: app=web}, atLeast: 95}",
        "write the percentage as a quoted string"
    )]
    #[case(
        "availability: {canary: {selector: app=web}, atLeast: \"120%\"}",
        "out of range"
    )]
    #[case(
        "availability: {canary: {selector: app=web}, atLeast: \"95\"}",
        "with a % sign"
    )]
    #[case(
        "availability: {canary: {selector: 'app web'}, atLeast: \"95%\"}",
        "is not `key=value`"
    )]
    #[case(
        "availability: {canary: {selector: app=web, prot: 80}, atLeast: \"95%\"}",
        "unknown field `prot`"
    )]
    #[case(
        "blastRadius: {namespaces: [Kube_System]}",
        "not a valid Kubernetes name"
    )]
    #[case(
        "blastRadius: {workloads: [{kind: Pod, namespace: a, name: b}]}",
        "unknown variant `Pod`"
    )]
    #[case(
        "conditions: [{name: c, object: {apiVersion: v1, kind: ConfigMap, name: x}, expression: 'object.data.a = 1'}]",
        "`object.data.a = 1`, column 15: CEL: token recognition error"
    )]
    #[case(
        "conditions: [{name: c, object: {apiVersion: v1, kind: ConfigMap, name: x}, expression: '.data.a == \"1\"'}]",
        "CEL: unknown name `.data`"
    )]
    #[case(
        "conditions: [{name: c, object: {apiVersion: v1, kind: ConfigMap, name: x}, expr: object.data.a == 1}]",
        "unknown field `expr`"
    )]
    #[case("condition: {}", "unknown field `condition`")]
    fn refuses_bad_slo_blocks(#[case] yaml: &str, #[case] message: &str) {
        let err = slo(yaml).unwrap_err();
        assert!(err.contains(message), "{yaml}\n→ {err}");
    }

    #[rstest]
    #[case(
        "conditions: [{name: c, object: {apiVersion: v1, kind: ConfigMap, name: x}, expression: has(object.a), must: becomeTrue}]",
        "needs `within`"
    )]
    #[case(
        "conditions: [{name: c, object: {apiVersion: v1, kind: ConfigMap, name: x}, expression: has(object.a), within: 5s}]",
        "applies to `must: becomeTrue`"
    )]
    #[case(
        "conditions: [{name: c, object: {apiVersion: v1, kind: ConfigMap, name: x}, expression: has(object.a), must: becomeTrue, within: 5s, tolerance: 1s}]",
        "applies to `must: hold`"
    )]
    #[case(
        "conditions: [{name: c, object: {apiVersion: v1, kind: ConfigMap, name: x}, expression: has(object.a)}, {name: c, object: {apiVersion: v1, kind: ConfigMap, name: y}, expression: has(object.b)}]",
        "used twice"
    )]
    #[case(
        "blastRadius: {namespaces: ['*', shop]}",
        "already watches every namespace"
    )]
    #[case(
        "availability: {canary: {selector: app=web, port: 0}, atLeast: \"95%\"}",
        "must not be 0"
    )]
    fn finds_semantic_problems(#[case] yaml: &str, #[case] message: &str) {
        let problems = slo(yaml).unwrap().problems();
        assert!(
            problems.iter().any(|p| p.message.contains(message)),
            "{yaml}\n→ {problems:?}"
        );
    }

    #[rstest]
    #[case(BlastRadiusSlo::default(), true)]
    #[case(BlastRadiusSlo { namespaces: vec![NamespaceSelector("shop".into())], ..BlastRadiusSlo::default() }, false)]
    #[case(BlastRadiusSlo { namespaces: vec![NamespaceSelector("*".into())], ..BlastRadiusSlo::default() }, true)]
    fn blast_radius_defaults_to_every_namespace(#[case] b: BlastRadiusSlo, #[case] all: bool) {
        assert_eq!(b.all_namespaces(), all);
    }
}
