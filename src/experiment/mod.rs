//! Experiment files: the schema, strict loading with file:line:col errors,
//! semantic validation and JSON Schema export.

pub mod canaries;
pub mod gameday;
pub mod plan;
pub mod references;
pub mod slo;
pub mod upgrade;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::baseline::{Baseline, LoadedBaseline, NotRelocatable, Relocation};
use crate::detect::ExpectedSignals;
use crate::fault::{Claim, FaultSpec, SharedResource};
use crate::vocab::{
    ApiVersion, Diagnostic, HumanDuration, Name, SignalKind, diagnostic, is_system_namespace, load,
};
pub use gameday::GameDaySpec;
pub use plan::{FaultPlan, Step, Wait};
pub use slo::SloSpec;

/// `kind: Experiment`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub enum ExperimentKind {
    /// The only kind an Experiment file has.
    #[default]
    Experiment,
}

/// One failure story made repeatable.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Experiment {
    /// `breakfix.dev/v1alpha1`.
    pub api_version: ApiVersion,
    /// `Experiment`.
    pub kind: ExperimentKind,
    /// The experiment's name, description and labels.
    pub metadata: Metadata,
    /// What the experiment does and expects.
    pub spec: ExperimentSpec,
}

/// Kubernetes-style metadata, plus the story the experiment reproduces.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Metadata {
    /// The experiment's name, unique in a run.
    pub name: Name,
    /// The incident this experiment reproduces (who, when, what broke).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub story: Option<String>,
    /// The failure story, for people reading reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Labels to select experiments by.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// What to break, what to expect, and how fast.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExperimentSpec {
    /// Path to a Baseline file (or a folder holding `baseline.yaml`), relative to this file.
    pub baseline: PathBuf,
    /// One fault, or `steps:` several in order (see [`plan`]).
    pub fault: FaultPlan,
    /// The signals that count as detection.
    #[serde(default)]
    pub expect: Expect,
    /// What detection and recovery must achieve.
    pub slo: SloSpec,
    /// Keep the fault in this long after detection before reverting (`5m`),
    /// or until a condition holds (`{object, expression, timeout}`; at its
    /// timeout the hold ends). Canary SLOs are measured over this window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold: Option<Wait>,
    /// How the cluster gets back to steady state after detection.
    #[serde(default)]
    pub recovery: Recovery,
    /// How long each phase may take.
    #[serde(default)]
    pub timeouts: Timeouts,
    /// Recovery counts only once steady state has held this long.
    #[serde(default = "default_settle")]
    pub settle: HumanDuration,
    /// How many times to run the fault; verdicts use the SLO's percentile.
    #[serde(default = "default_repeat")]
    #[schemars(range(min = 1, max = 100))]
    pub repeat: u32,
    /// How the experiment is played as a game day (`breakfix gameday`):
    /// briefing, hints, stop conditions. `breakfix run` ignores it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gameday: Option<GameDaySpec>,
}

impl Experiment {
    /// An experiment built in Rust rather than read from a file: `name`
    /// breaks the baseline at `baseline` (a Baseline file or a folder holding
    /// `baseline.yaml`, relative to the folder given to
    /// [`LoadedExperiment::from_experiment`]) with `fault`, judged against
    /// `slo`; every other field takes the default a file leaving it out gets.
    /// Set the public fields to change them (`spec.expect.signals`, …), then
    /// check it with [`LoadedExperiment::from_experiment`].
    pub fn new(
        name: Name,
        baseline: impl Into<PathBuf>,
        fault: impl Into<FaultPlan>,
        slo: SloSpec,
    ) -> Self {
        Self {
            api_version: ApiVersion::default(),
            kind: ExperimentKind::Experiment,
            metadata: Metadata {
                name,
                story: None,
                description: None,
                labels: BTreeMap::new(),
            },
            spec: ExperimentSpec {
                baseline: baseline.into(),
                fault: fault.into(),
                expect: Expect::default(),
                slo,
                hold: None,
                recovery: Recovery::default(),
                timeouts: Timeouts::default(),
                settle: default_settle(),
                repeat: default_repeat(),
                gameday: None,
            },
        }
    }
}

fn default_settle() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(5))
}

fn default_repeat() -> u32 {
    1
}

/// What the fault must cause.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Expect {
    /// The signals that count as detection: a list (the first of them to
    /// show), `{any: [...]}`, or `{all: [...]}` (every one, with
    /// `inOrder: true` in the order listed). Absent: the fault's own.
    #[serde(default, skip_serializing_if = "ExpectedSignals::is_empty")]
    pub signals: ExpectedSignals,
    /// What the fault must be felt as, or the run proved nothing: a canary's
    /// availability at most, its latency at least, signals that must show.
    /// Judged in a verdict of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impact: Option<Impact>,
}

/// `expect.impact`: the fault must hurt. Every part given must be met.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Impact {
    /// A canary's success ratio must drop to at most `atMost`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability: Option<slo::AvailabilitySlo>,
    /// A canary's latency percentile must reach `atLeast` (or `atLeastTimes`
    /// the baseline window's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<slo::LatencyBound>,
    /// Signals that must be seen between injection and the revert (any
    /// order; detection's own count).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signals: Vec<SignalKind>,
}

impl Impact {
    /// Problems with the impact (keys under `spec.expect.impact`).
    pub fn problems(&self) -> Vec<(Vec<&'static str>, String, Option<String>)> {
        let mut out = Vec::new();
        if self.availability.is_none() && self.latency.is_none() && self.signals.is_empty() {
            out.push((
                vec![],
                "spec.expect.impact names nothing the fault must cause".to_string(),
                Some("give `availability: {canary: …, atMost: \"50%\"}`, `latency: {canary: …, atLeastTimes: 3}` or `signals: […]`, or leave `impact` out".to_string()),
            ));
        }
        if let Some(a) = &self.availability {
            match (a.at_most, a.at_least) {
                (Some(_), Some(_)) => out.push((
                    vec!["availability", "atLeast"],
                    "spec.expect.impact.availability: `atMost` and `atLeast` are both given; an impact is a ceiling, `atMost`".into(),
                    Some("a floor on availability during the fault is an SLO: put it in `slo.availability`".into()),
                )),
                (None, Some(_)) => out.push((
                    vec!["availability", "atLeast"],
                    "spec.expect.impact.availability: an impact says how much the fault must cost: `atMost`".into(),
                    Some("a floor on availability is an SLO: put it in `slo.availability`".into()),
                )),
                (None, None) => out.push((
                    vec!["availability"],
                    "spec.expect.impact.availability needs `atMost`, the highest success ratio that still shows the outage".into(),
                    Some("e.g. `atMost: \"50%\"`".into()),
                )),
                (Some(_), None) => {}
            }
        }
        if let Some(l) = &self.latency {
            for (key, message, help) in l.problems("spec.expect.impact.latency", true) {
                out.push((vec!["latency", key], message, help));
            }
        }
        out
    }
}

/// Who brings the cluster back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Recovery {
    /// breakfix reverts the fault after detection.
    #[default]
    Revert,
    /// Kubernetes heals by itself (pod kill, node loss); breakfix only watches.
    SelfHeal,
}

/// Upper bounds on each waiting phase, so no run hangs.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Timeouts {
    /// How long the baseline may take to become steady.
    #[serde(default = "default_steady_timeout")]
    pub steady_state: HumanDuration,
    /// Give up waiting for a signal after this long (default: 3 × detectWithin, at least 2m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detect: Option<HumanDuration>,
    /// Give up waiting for recovery after this long (default: 3 × recoverWithin, at least 3m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recover: Option<HumanDuration>,
    /// The longest `spec.hold` may keep a fault in (default 10m): a hold
    /// longer than this is refused, so no typo leaves an outage in for hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold: Option<HumanDuration>,
}

/// How long a fault may be held unless `timeouts.hold` says.
pub const DEFAULT_HOLD_LIMIT: std::time::Duration = std::time::Duration::from_secs(600);

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            steady_state: default_steady_timeout(),
            detect: None,
            recover: None,
            hold: None,
        }
    }
}

fn default_steady_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(300))
}

impl ExperimentSpec {
    /// How long to wait for a signal before calling detection failed.
    pub fn detect_timeout(&self) -> std::time::Duration {
        self.timeouts
            .detect
            .map(HumanDuration::get)
            .unwrap_or_else(|| {
                (self.slo.detect_within.get() * 3).max(std::time::Duration::from_secs(120))
            })
    }

    /// How long to wait for recovery before calling it failed.
    pub fn recover_timeout(&self) -> std::time::Duration {
        self.timeouts
            .recover
            .map(HumanDuration::get)
            .unwrap_or_else(|| {
                (self.slo.recover_within.get() * 3).max(std::time::Duration::from_secs(180))
            })
    }

    /// The window canary measurements cover unless they say: the fault
    /// window (injection to recovery).
    pub fn default_window(&self) -> slo::Window {
        if self.hold.is_some() {
            slo::Window::Hold
        } else {
            slo::Window::Fault
        }
    }

    /// The longest a hold may last.
    pub fn hold_limit(&self) -> std::time::Duration {
        self.timeouts
            .hold
            .map(HumanDuration::get)
            .unwrap_or(DEFAULT_HOLD_LIMIT)
    }

    /// The signals that count as detection: the file's, or any of the
    /// fault's defaults.
    pub fn expected_signals(&self) -> ExpectedSignals {
        if self.expect.signals.is_empty() {
            ExpectedSignals::any(&self.fault.default_signals())
        } else {
            self.expect.signals.clone()
        }
    }
}

/// An experiment read from disk, with its baseline resolved and loaded.
#[derive(Debug, Clone)]
pub struct LoadedExperiment {
    /// The Experiment file it was loaded from.
    pub path: PathBuf,
    /// The file's content.
    pub experiment: Experiment,
    /// The baseline it names, loaded.
    pub baseline: LoadedBaseline,
}

impl LoadedExperiment {
    /// Checks an experiment built in Rust exactly as [`load_experiment`]
    /// checks a file, and loads its baseline, resolved against `base_dir`.
    ///
    /// The experiment is rendered as YAML and that text goes through the
    /// file loader under the name `<rust>/<name>.yaml` (also its
    /// [`path`](Self::path)), so every problem is reported at a line and
    /// column of that rendering, with the offending line shown.
    ///
    /// ```
    /// use std::path::Path;
    /// use breakfix::fault::scale::{ScalableKind, ScaleTarget};
    /// use breakfix::fault::Scale;
    /// use breakfix::{
    ///     ExpectedSignals, Experiment, FaultSpec, HumanDuration, LoadedExperiment, Name,
    ///     SignalKind, SloSpec,
    /// };
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let scale = |namespace: &str| -> Result<Experiment, Box<dyn std::error::Error>> {
    ///     let fault = FaultSpec::Scale(Scale {
    ///         target: ScaleTarget {
    ///             kind: ScalableKind::Deployment,
    ///             namespace: Name::new(namespace)?,
    ///             name: Name::new("web")?,
    ///         },
    ///         replicas: 0,
    ///     });
    ///     let slo = SloSpec::new(HumanDuration::parse("20s")?, HumanDuration::parse("45s")?);
    ///     let mut experiment =
    ///         Experiment::new(Name::new("scale-web")?, "baselines/shop", fault, slo);
    ///     experiment.spec.expect.signals = ExpectedSignals::any(&[SignalKind::EndpointsEmpty]);
    ///     Ok(experiment)
    /// };
    ///
    /// // The shop baseline lives in namespace `shop`.
    /// let loaded = LoadedExperiment::from_experiment(scale("shop")?, Path::new("experiments"))
    ///     .map_err(|problems| format!("{problems:?}"))?;
    /// assert_eq!(loaded.name(), "scale-web");
    ///
    /// // A fault aimed at a namespace the baseline does not own is refused,
    /// // at a line and column of the rendered experiment.
    /// let problems = LoadedExperiment::from_experiment(scale("billing")?, Path::new("experiments"))
    ///     .expect_err("billing is not the baseline's namespace");
    /// assert!(problems[0].message.contains("targets namespace `billing`"));
    /// assert_eq!(problems[0].file, Path::new("<rust>/scale-web.yaml"));
    /// assert!(problems[0].line.is_some());
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// Every problem with the experiment and its baseline, each a
    /// [`Diagnostic`], as [`load_experiment`] reports them for a file.
    pub fn from_experiment(
        experiment: Experiment,
        base_dir: &Path,
    ) -> Result<Self, Vec<Diagnostic>> {
        let path = PathBuf::from(format!("<rust>/{}.yaml", experiment.metadata.name));
        let src = serde_yaml::to_string(&experiment).map_err(|e| {
            vec![Diagnostic::file(
                &path,
                format!("cannot render the experiment as YAML: {e}"),
            )]
        })?;
        load_source(&path, &src, base_dir)
    }

    /// The experiment's name.
    pub fn name(&self) -> &str {
        self.experiment.metadata.name.as_str()
    }

    /// This experiment on instance `id` of its baseline
    /// ([`LoadedBaseline::instance`]): the baseline moved into namespaces
    /// of its own, and the fault's targets and the SLOs' objects rewritten
    /// to follow it. Experiments on different instances never touch each
    /// other's objects, so they can run side by side; each game-day team
    /// gets one.
    ///
    /// # Errors
    ///
    /// [`NotRelocatable`] when the baseline cannot move; the experiment
    /// then runs in place, as written.
    pub fn instance(&self, id: &str) -> Result<Self, NotRelocatable> {
        let baseline = self.baseline.instance(id)?;
        let refuse = |reason: String| NotRelocatable {
            baseline: self.baseline.name().to_string(),
            reason,
        };
        let Some(relocation) = &baseline.instance else {
            return Err(refuse("the instance carries no relocation".into()));
        };
        let mut experiment = self.experiment.clone();
        let spec = &mut experiment.spec;
        spec.fault = moved(&spec.fault, relocation)
            .map_err(|e| refuse(format!("the fault cannot be rewritten: {e}")))?;
        spec.slo = moved(&spec.slo, relocation)
            .map_err(|e| refuse(format!("the SLOs cannot be rewritten: {e}")))?;
        spec.expect = moved(&spec.expect, relocation)
            .map_err(|e| refuse(format!("the expectations cannot be rewritten: {e}")))?;
        spec.hold = moved(&spec.hold, relocation)
            .map_err(|e| refuse(format!("the hold cannot be rewritten: {e}")))?;
        Ok(Self {
            path: self.path.clone(),
            experiment,
            baseline,
        })
    }

    /// What the experiment needs to itself while it runs, sorted: the
    /// fault's claims ([`FaultSpec::claims`]), the namespaces of a baseline
    /// applied in place (every experiment on it shares them), and, where
    /// the experiment's own setup makes a shared resource private, less:
    /// a ClusterRoleBinding an instance renamed is that instance's alone,
    /// and a storm of pods that request nothing in a namespace whose quota
    /// caps the pod count cannot fill the nodes for anyone else.
    pub fn claims(&self) -> Vec<Claim> {
        let mut claims = self.experiment.spec.fault.claims();
        match &self.baseline.instance {
            None => {
                let own = self.baseline.spec.namespace.as_str();
                let owned = std::iter::once(own).chain(
                    self.baseline
                        .objects
                        .iter()
                        .filter(|o| o.types.as_ref().is_some_and(|t| t.kind == "Namespace"))
                        .filter_map(|o| o.metadata.name.as_deref()),
                );
                claims.extend(owned.map(|ns| Claim::of_namespace(Some(ns))));
            }
            Some(relocation) => {
                let rbac = cluster_rbac_names(&self.experiment.spec.fault);
                let private = relocation.renamed_cluster_objects();
                if !rbac.is_empty()
                    && rbac.iter().all(|(kind, name)| {
                        private.iter().any(|p| &p.kind == kind && &p.name == name)
                    })
                {
                    claims.retain(|c| *c != Claim::Shared(SharedResource::ClusterRbac));
                }
            }
        }
        // Scheduler capacity is the instance's own when every fault that
        // claims it is a storm of pods a quota caps.
        let capped = |f: &FaultSpec| match f {
            FaultSpec::CronJobStorm(storm) => {
                storm.pod_requests.is_none() && self.has_pod_quota(storm.namespace.as_str())
            }
            other => !other
                .claims()
                .contains(&Claim::Shared(SharedResource::SchedulerCapacity)),
        };
        if self
            .experiment
            .spec
            .fault
            .faults()
            .any(|f| matches!(f, FaultSpec::CronJobStorm(_)))
            && self.experiment.spec.fault.faults().all(capped)
        {
            claims.retain(|c| *c != Claim::Shared(SharedResource::SchedulerCapacity));
        }
        claims.sort();
        claims.dedup();
        claims
    }

    /// Whether the baseline puts a ResourceQuota on the number of pods in `ns`.
    fn has_pod_quota(&self, ns: &str) -> bool {
        let own = self.baseline.spec.namespace.as_str();
        self.baseline.objects.iter().any(|o| {
            o.types.as_ref().is_some_and(|t| t.kind == "ResourceQuota")
                && o.metadata.namespace.as_deref().unwrap_or(own) == ns
                && o.data
                    .pointer("/spec/hard/pods")
                    .is_some_and(|v| !v.is_null())
        })
    }
}

/// `value` rewritten for an instance, through its JSON form.
fn moved<T: Serialize + serde::de::DeserializeOwned>(
    value: &T,
    relocation: &Relocation,
) -> Result<T, serde_json::Error> {
    let mut json = serde_json::to_value(value)?;
    relocation.rewrite_spec(&mut json);
    serde_json::from_value(json)
}

/// The cluster-scoped RBAC objects (`{kind, name}`) a fault (or the steps
/// of a plan) names.
fn cluster_rbac_names(fault: &impl Serialize) -> Vec<(String, String)> {
    fn walk(value: &serde_json::Value, out: &mut Vec<(String, String)>) {
        match value {
            serde_json::Value::Object(map) => {
                if let (Some(kind), Some(name)) = (
                    map.get("kind").and_then(serde_json::Value::as_str),
                    map.get("name").and_then(serde_json::Value::as_str),
                ) && (kind == "ClusterRole" || kind == "ClusterRoleBinding")
                {
                    out.push((kind.to_string(), name.to_string()));
                }
                map.values().for_each(|v| walk(v, out));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Ok(json) = serde_json::to_value(fault) {
        walk(&json, &mut out);
    }
    out
}

/// Loads and validates one experiment file and its baseline; every problem
/// found is returned, not just the first.
///
/// # Errors
///
/// Every problem in the file and its baseline, each a [`Diagnostic`] at
/// file:line:col saying what was expected and how to fix it.
pub fn load_experiment(path: &Path) -> Result<LoadedExperiment, Vec<Diagnostic>> {
    let src = load::read_text(path).map_err(|d| vec![d])?;
    load_source(path, &src, path.parent().unwrap_or(Path::new(".")))
}

/// Parses and validates `src`, an experiment's YAML named `path` in
/// diagnostics, its baseline resolved against `base_dir`. Files and
/// experiments built in Rust ([`LoadedExperiment::from_experiment`]) both
/// come through here, so both get every check.
fn load_source(
    path: &Path,
    src: &str,
    base_dir: &Path,
) -> Result<LoadedExperiment, Vec<Diagnostic>> {
    let experiment: Experiment = load::parse_yaml(path, src).map_err(|d| vec![d])?;
    let mut problems = Vec::new();
    let at = |keys: &[&str], message: String| match diagnostic::locate_key(src, keys) {
        Some((l, c)) => Diagnostic::at(path, src, l, c, message),
        None => Diagnostic::file(path, message),
    };

    let spec = &experiment.spec;
    if spec.repeat == 0 || spec.repeat > 100 {
        problems.push(
            at(
                &["spec", "repeat"],
                format!("spec.repeat is {}, expected 1 to 100", spec.repeat),
            )
            .with_help("repeat runs the fault several times for a percentile verdict"),
        );
    }
    if let Some(detect) = spec.timeouts.detect
        && detect < spec.slo.detect_within
    {
        problems.push(at(
                &["spec", "timeouts", "detect"],
                format!(
                    "spec.timeouts.detect ({detect}) is shorter than spec.slo.detectWithin ({}); the SLO could never be judged",
                    spec.slo.detect_within
                ),
            ));
    }
    for p in spec.slo.problems() {
        let mut keys = vec!["spec", "slo"];
        keys.extend(p.keys.iter().map(String::as_str));
        // The deepest key that can be found: list items are not indexed.
        let located = (1..=keys.len())
            .rev()
            .find_map(|n| diagnostic::locate_key(src, &keys[..n]));
        let d = match located {
            Some((l, c)) => Diagnostic::at(path, src, l, c, p.message),
            None => Diagnostic::file(path, p.message),
        };
        problems.push(match p.help {
            Some(h) => d.with_help(h),
            None => d,
        });
    }
    if let Some(gameday) = &spec.gameday {
        for p in gameday.problems() {
            let mut keys = vec!["spec", "gameday"];
            keys.extend(p.keys.iter().map(String::as_str));
            let located = (1..=keys.len())
                .rev()
                .find_map(|n| diagnostic::locate_key(src, &keys[..n]));
            let d = match located {
                Some((l, c)) => Diagnostic::at(path, src, l, c, p.message),
                None => Diagnostic::file(path, p.message),
            };
            problems.push(match p.help {
                Some(h) => d.with_help(h),
                None => d,
            });
        }
    }
    let located = |keys: &[&str]| {
        (1..=keys.len())
            .rev()
            .find_map(|n| diagnostic::locate_key(src, &keys[..n]))
    };
    if let Some(impact) = &spec.expect.impact {
        for (under, message, help) in impact.problems() {
            let mut keys = vec!["spec", "expect", "impact"];
            keys.extend(under);
            let d = match located(&keys) {
                Some((l, c)) => Diagnostic::at(path, src, l, c, message),
                None => Diagnostic::file(path, message),
            };
            problems.push(match help {
                Some(h) => d.with_help(h),
                None => d,
            });
        }
    }
    let supported = spec.fault.supported_signals();
    let impact_signals = spec.expect.impact.iter().flat_map(|i| i.signals.iter());
    let listed = spec
        .expect
        .signals
        .signals
        .iter()
        .map(|s| (s, ["spec", "expect", "signals"].as_slice()))
        .chain(impact_signals.map(|s| (s, ["spec", "expect", "impact", "signals"].as_slice())));
    for (signal, keys) in listed {
        if !supported.contains(signal) {
            let names: Vec<String> = supported.iter().map(|s| format!("`{s}`")).collect();
            problems.push(
                at(
                    keys,
                    format!(
                        "fault `{}` cannot produce signal `{signal}`",
                        spec.fault.label()
                    ),
                )
                .with_help(format!("expected one of {}", names.join(", "))),
            );
        }
    }
    if spec.expected_signals().is_empty() {
        problems.push(
            at(
                &["spec", "fault"],
                format!(
                    "fault `{}` has no signals of its own; what it breaks depends on what you change",
                    spec.fault.kind()
                ),
            )
            .with_help("list the signals you expect it to cause in spec.expect.signals, e.g. `signals: [EndpointsEmpty, CanaryFailing]`"),
        );
    }
    if let Some(hold) = &spec.hold {
        let (length, key) = match hold {
            Wait::For(d) => (d.get(), vec!["spec", "hold"]),
            Wait::Until(c) => (
                c.timeout.map(HumanDuration::get).unwrap_or_default(),
                vec!["spec", "hold", "timeout"],
            ),
        };
        let limit = spec.hold_limit();
        if length > limit {
            let at_key = if diagnostic::locate_key(src, &key).is_some() {
                key
            } else {
                vec!["spec", "hold"]
            };
            problems.push(
                at(
                    &at_key,
                    format!(
                        "spec.hold keeps the fault in for {}, longer than spec.timeouts.hold ({}), the longest breakfix holds a fault",
                        crate::vocab::duration::format_duration(length),
                        crate::vocab::duration::format_duration(limit)
                    ),
                )
                .with_help("shorten the hold, or raise `timeouts: {hold: …}` if the outage is meant to last that long"),
            );
        }
    }
    if spec.recovery == Recovery::SelfHeal && !spec.fault.can_self_heal() {
        problems.push(
            at(
                &["spec", "recovery"],
                format!("fault `{}` does not heal by itself", spec.fault.kind()),
            )
            .with_help("use `recovery: revert` (the default)"),
        );
    }

    let baseline = match Baseline::resolve_path(&base_dir.join(&spec.baseline)) {
        Ok(baseline_path) => match LoadedBaseline::load(&baseline_path) {
            Ok(b) => Some(b),
            Err(mut ds) => {
                problems.append(&mut ds);
                None
            }
        },
        Err(message) => {
            problems.push(
                at(&["spec", "baseline"], message)
                    .with_help("spec.baseline is relative to the experiment file"),
            );
            None
        }
    };
    for p in spec
        .fault
        .problems(baseline.as_ref().map(|b| b.spec.namespace.as_str()))
    {
        let located = p
            .step
            .and_then(|i| locate_item(src, &["spec", "fault", "steps"], i))
            .or_else(|| diagnostic::locate_key(src, &["spec", "fault", "steps"]))
            .or_else(|| diagnostic::locate_key(src, &["spec", "fault"]));
        let d = match located {
            Some((l, c)) => Diagnostic::at(path, src, l, c, p.message),
            None => Diagnostic::file(path, p.message),
        };
        problems.push(match p.help {
            Some(h) => d.with_help(h),
            None => d,
        });
    }
    if let Some(b) = &baseline
        && let Some(ns) = spec.fault.namespace()
        && ns != b.spec.namespace.as_str()
        && !is_system_namespace(ns)
    {
        problems.push(at(
            &["spec", "fault"],
            format!(
                "the fault targets namespace `{ns}`, but the baseline `{}` lives in `{}`",
                b.name(),
                b.spec.namespace
            ),
        ));
    }

    if let Some(b) = &baseline {
        let impact = spec.expect.impact.as_ref();
        let canaries = spec
            .slo
            .availability
            .iter()
            .map(|a| (&a.canary, false, vec!["spec", "slo", "availability"]))
            .chain(
                spec.slo
                    .latency
                    .iter()
                    .map(|l| (&l.canary, true, vec!["spec", "slo", "latency"])),
            )
            .chain(impact.and_then(|i| i.availability.as_ref()).map(|a| {
                (
                    &a.canary,
                    false,
                    vec!["spec", "expect", "impact", "availability"],
                )
            }))
            .chain(
                impact
                    .and_then(|i| i.latency.as_ref())
                    .map(|l| (&l.canary, true, vec!["spec", "expect", "impact", "latency"])),
            );
        for (canary, needs_latency, keys) in canaries {
            if let Some(message) = canary_problem(b, canary, needs_latency) {
                let mut at_keys = keys.clone();
                at_keys.push("canary");
                let at_keys = if diagnostic::locate_key(src, &at_keys).is_some() {
                    at_keys
                } else {
                    keys.clone()
                };
                problems.push(at(&at_keys, format!("{}: {message}", keys[1..].join("."))));
            }
        }
    }

    if let Some(b) = &baseline {
        for (located_at, missing) in missing_references(b, spec, src) {
            let d = match located_at {
                Some((l, c)) => Diagnostic::at(path, src, l, c, missing.message),
                None => Diagnostic::file(path, missing.message),
            };
            problems.push(d.with_help(missing.help));
        }
    }

    match (problems.is_empty(), baseline) {
        (true, Some(baseline)) => Ok(LoadedExperiment {
            path: path.to_path_buf(),
            experiment,
            baseline,
        }),
        _ => Err(problems),
    }
}

/// Every object and canary `spec` names that `baseline`'s manifests do not
/// hold (and no cluster has by itself), each with where the file names it.
fn missing_references(
    baseline: &LoadedBaseline,
    spec: &ExperimentSpec,
    src: &str,
) -> Vec<(Option<(usize, usize)>, references::Missing)> {
    use crate::fault::Named;
    let deepest = |keys: &[&str]| {
        (1..=keys.len())
            .rev()
            .find_map(|n| diagnostic::locate_key(src, &keys[..n]))
    };
    let condition = |key: &'static str, object: &slo::ObjectTarget| Named {
        key,
        kind: object.kind.clone(),
        namespace: object.namespace.as_ref().map(ToString::to_string),
        name: object.name.clone(),
    };
    let mut out = Vec::new();
    let fault = |f: &FaultSpec, step: Option<usize>| {
        let mut out = Vec::new();
        let at = |key: &str| match step {
            Some(i) => locate_item(src, &["spec", "fault", "steps"], i)
                .or_else(|| deepest(&["spec", "fault", "steps"])),
            None => deepest(&["spec", "fault", f.kind(), key]),
        };
        for named in f.objects() {
            if let Some(m) = references::missing_object(baseline, &named) {
                out.push((at(named.key), m));
            }
        }
        for canary in f.canaries() {
            if let Some(m) = references::missing_canary(baseline, &canary) {
                out.push((at(canary.key), m));
            }
        }
        out
    };
    match &spec.fault {
        FaultPlan::Single(f) => out.extend(fault(f, None)),
        FaultPlan::Steps(s) => {
            for (i, step) in s.steps.iter().enumerate() {
                match step {
                    Step::Fault(f) => out.extend(fault(f, Some(i))),
                    Step::WaitFor(Wait::Until(c)) => {
                        if let Some(m) =
                            references::missing_object(baseline, &condition("object", &c.object))
                        {
                            out.push((
                                locate_item(src, &["spec", "fault", "steps"], i)
                                    .or_else(|| deepest(&["spec", "fault", "steps"])),
                                m,
                            ));
                        }
                    }
                    Step::WaitFor(Wait::For(_)) => {}
                }
            }
        }
    }
    if let Some(Wait::Until(c)) = &spec.hold
        && let Some(m) = references::missing_object(baseline, &condition("object", &c.object))
    {
        out.push((deepest(&["spec", "hold", "object"]), m));
    }
    for (i, c) in spec.slo.conditions.iter().enumerate() {
        if let Some(m) = references::missing_object(baseline, &condition("object", &c.object)) {
            out.push((
                locate_item(src, &["spec", "slo", "conditions"], i)
                    .or_else(|| deepest(&["spec", "slo", "conditions"])),
                m,
            ));
        }
    }
    if let Some(radius) = &spec.slo.blast_radius {
        for (i, w) in radius.workloads.iter().enumerate() {
            let named = Named {
                key: "workloads",
                kind: w.kind.to_string(),
                namespace: Some(w.namespace.to_string()),
                name: w.name.to_string(),
            };
            if let Some(m) = references::missing_object(baseline, &named) {
                out.push((
                    locate_item(src, &["spec", "slo", "blastRadius", "workloads"], i)
                        .or_else(|| deepest(&["spec", "slo", "blastRadius", "workloads"])),
                    m,
                ));
            }
        }
    }
    out
}

/// The 1-based (line, column) of item `index` of the block-style list at
/// `path` (`["spec", "fault", "steps"]`): the column of the item's first
/// key, after its `- `. `None` for flow-style lists (`[…]`).
fn locate_item(src: &str, path: &[&str], index: usize) -> Option<(usize, usize)> {
    let (key_line, key_col) = diagnostic::locate_key(src, path)?;
    let key_indent = key_col - 1;
    let mut item_indent = None;
    let mut seen = 0;
    for (i, line) in src.lines().enumerate().skip(key_line) {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = line.len() - trimmed.len();
        let is_item = trimmed.starts_with("- ") || trimmed == "-";
        match item_indent {
            None if is_item && indent >= key_indent => item_indent = Some(indent),
            None => return None,
            Some(ii) if indent < ii || (indent == ii && !is_item) => return None,
            Some(_) => {}
        }
        if is_item && Some(indent) == item_indent {
            if seen == index {
                let after = trimmed[1..].len() - trimmed[1..].trim_start().len();
                return Some((i + 1, indent + 2 + after));
            }
            seen += 1;
        }
    }
    None
}

/// What is wrong with reading `canary` in `baseline` (for a latency bound
/// when `needs_latency`), as far as the baseline's manifests tell.
fn canary_problem(
    baseline: &LoadedBaseline,
    canary: &slo::CanaryRef,
    needs_latency: bool,
) -> Option<String> {
    let namespace = canary
        .namespace
        .as_ref()
        .map_or(baseline.spec.namespace.as_str(), Name::as_str);
    let pods = canaries::canary_pods(baseline, namespace, canary.selector.as_str())?;
    if pods.is_empty() {
        return Some(format!(
            "no pod template in baseline `{}` has labels matching `{}`; the canary would never be found",
            baseline.name(),
            canary.selector
        ));
    }
    if !needs_latency {
        return None;
    }
    let silent: Vec<String> = pods
        .iter()
        .filter(|p| !p.records_latency())
        .map(|p| match &p.mode {
            Some(mode) => format!("{} runs the workload in `{mode}` mode", p.object),
            None => format!(
                "{} does not run the {} image",
                p.object,
                canaries::WORKLOAD_IMAGE
            ),
        })
        .collect();
    (!silent.is_empty()).then(|| {
        format!(
            "`{}` selects pods that record no latency ({}); a latency bound needs a canary mode that times its checks: {}",
            canary.selector,
            silent.join("; "),
            canaries::LATENCY_MODES.join(", ")
        )
    })
}

/// Expands folders into the experiment files directly inside them
/// (`*.yaml`, `*.yml`, sorted), keeping files as given.
///
/// # Errors
///
/// A [`Diagnostic`] on the first path that does not exist or cannot be read.
pub fn collect_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Diagnostic> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let entries = std::fs::read_dir(path)
                .map_err(|e| Diagnostic::file(path, format!("cannot list folder: {e}")))?;
            let mut found: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.is_file()
                        && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
                })
                .collect();
            found.sort();
            if found.is_empty() {
                return Err(Diagnostic::file(
                    path,
                    "folder holds no *.yaml experiment files",
                ));
            }
            files.extend(found);
        } else if path.exists() {
            files.push(path.clone());
        } else {
            return Err(Diagnostic::file(path, "no such file or folder"));
        }
    }
    Ok(files)
}

/// JSON Schema of the experiment file, for editors (yaml-language-server).
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Experiment)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    fn built_in(name: &str) -> LoadedExperiment {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("experiments")
            .join(format!("{name}.yaml"));
        load_experiment(&path).unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn shared(claims: &[Claim]) -> Vec<SharedResource> {
        claims
            .iter()
            .filter_map(|c| match c {
                Claim::Shared(r) => Some(*r),
                Claim::Namespace(_) => None,
            })
            .collect()
    }

    #[test]
    fn every_built_in_experiment_moves_with_its_targets() {
        let files =
            collect_files(&[Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments")]).unwrap();
        for file in files {
            let exp = load_experiment(&file).unwrap_or_else(|e| panic!("{e:?}"));
            let moved = exp
                .instance("t1")
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            let own = exp.baseline.spec.namespace.as_str();
            let new = moved.baseline.spec.namespace.as_str();
            assert_eq!(new, format!("{own}-bf-t1"));
            if let Some(ns) = exp.experiment.spec.fault.namespace()
                && ns == own
            {
                assert_eq!(moved.experiment.spec.fault.namespace(), Some(new));
            }
            for claim in moved.claims() {
                assert_ne!(
                    claim,
                    Claim::Namespace(own.to_string()),
                    "{}",
                    file.display()
                );
            }
            // Nothing else changed: the same fault, the same SLOs.
            assert_eq!(moved.name(), exp.name());
            assert_eq!(
                moved.experiment.spec.expected_signals(),
                exp.experiment.spec.expected_signals()
            );
        }
    }

    #[rstest]
    #[case::the_suite("experiments")]
    #[case::game_days("experiments/gameday")]
    #[case::multi_node("experiments/multi-node")]
    fn every_built_in_experiment_built_in_rust_passes_the_same_checks(#[case] folder: &str) {
        let files = collect_files(&[Path::new(env!("CARGO_MANIFEST_DIR")).join(folder)]).unwrap();
        assert!(!files.is_empty());
        for file in files {
            let from_file = load_experiment(&file).unwrap_or_else(|e| panic!("{e:?}"));
            let base_dir = file.parent().unwrap();
            let built = LoadedExperiment::from_experiment(from_file.experiment.clone(), base_dir)
                .unwrap_or_else(|e| panic!("{}: {e:?}", file.display()));
            assert_eq!(
                serde_json::to_value(&built.experiment).unwrap(),
                serde_json::to_value(&from_file.experiment).unwrap(),
                "{}",
                file.display()
            );
            assert_eq!(built.baseline.path, from_file.baseline.path);
            assert_eq!(
                built.path,
                Path::new(&format!("<rust>/{}.yaml", from_file.name()))
            );
        }
    }

    #[test]
    fn an_experiment_built_in_rust_is_refused_at_a_line_of_its_rendering() {
        let mut experiment = built_in("scale-to-zero").experiment;
        experiment.spec.repeat = 0;
        experiment.spec.baseline = "baselines/nowhere".into();
        let problems = LoadedExperiment::from_experiment(
            experiment,
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments"),
        )
        .unwrap_err();
        let messages: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(problems.len(), 2, "{messages:#?}");
        for (d, key) in problems.iter().zip(["repeat:", "baseline:"]) {
            assert_eq!(d.file, Path::new("<rust>/scale-to-zero.yaml"));
            let line = d.source_line.as_deref().unwrap_or_default();
            assert!(
                d.line.is_some() && line.trim_start().starts_with(key),
                "{d}"
            );
        }
    }

    #[rstest]
    #[case::coredns_is_shared_wherever_the_canaries_are("coredns-memory-squeeze", &[SharedResource::ClusterDns], &[SharedResource::ClusterDns])]
    #[case::a_renamed_cluster_role_binding_is_the_instances_own("rbac-clusterrolebinding-delete", &[SharedResource::ClusterRbac], &[])]
    #[case::a_storm_that_requests_cpu_fills_the_nodes("cron-job-storm", &[SharedResource::SchedulerCapacity], &[SharedResource::SchedulerCapacity])]
    #[case::a_storm_capped_by_a_pod_quota_does_not("cron-job-storm-quota", &[], &[])]
    #[case::an_image_typo_is_its_namespaces_alone("image-typo", &[], &[])]
    fn claims_in_place_and_in_an_instance(
        #[case] name: &str,
        #[case] in_place: &[SharedResource],
        #[case] instance: &[SharedResource],
    ) {
        let exp = built_in(name);
        assert_eq!(shared(&exp.claims()), in_place);
        assert!(
            exp.claims()
                .contains(&Claim::Namespace(exp.baseline.spec.namespace.to_string()))
        );
        let moved = exp.instance("t1").unwrap();
        assert_eq!(shared(&moved.claims()), instance);
    }

    #[test]
    fn the_slos_objects_follow_the_instance() {
        let moved = built_in("cron-job-storm-quota").instance("q1").unwrap();
        let slo = serde_json::to_value(&moved.experiment.spec.slo).unwrap();
        assert_eq!(
            slo["blastRadius"]["namespaces"],
            serde_json::json!(["shop-neighbour-bf-q1"])
        );
        let fault = serde_json::to_value(&moved.experiment.spec.fault).unwrap();
        assert_eq!(fault["cronJobStorm"]["namespace"], "shop-quota-bf-q1");
        let rbac = built_in("rbac-clusterrolebinding-delete")
            .instance("r1")
            .unwrap();
        let fault = serde_json::to_value(&rbac.experiment.spec.fault).unwrap();
        assert_eq!(
            fault["rbacBindingDelete"]["binding"]["name"],
            "breakfix-canaries-pod-reader-bf-r1"
        );
        assert_eq!(
            fault["rbacBindingDelete"]["workload"]["namespace"],
            "canaries-bf-r1"
        );
    }

    #[rstest]
    #[case("{}", "names nothing")]
    #[case(
        "availability: {canary: {selector: app=c}, atLeast: \"90%\"}",
        "an impact says how much the fault must cost: `atMost`"
    )]
    #[case(
        "availability: {canary: {selector: app=c}, atLeast: \"90%\", atMost: \"10%\"}",
        "`atMost` and `atLeast` are both given"
    )]
    #[case("availability: {canary: {selector: app=c}}", "needs `atMost`")]
    #[case(
        "latency: {canary: {selector: app=c}, atMost: 1s}",
        "an impact is what the fault must cause, a floor"
    )]
    #[case(
        "latency: {canary: {selector: app=c}, atMost: 1s, atLeast: 2s}",
        "`atMost` and `atLeast` are both given"
    )]
    #[case(
        "latency: {canary: {selector: app=c}, atLeastTimes: 0}",
        "a multiple of the baseline is above 0"
    )]
    fn an_impact_must_say_what_the_fault_must_cause(#[case] yaml: &str, #[case] says: &str) {
        let impact: Impact = serde_yaml::from_str(yaml).unwrap();
        let problems = impact.problems();
        assert!(
            problems.iter().any(|(_, m, _)| m.contains(says)),
            "{yaml}\n→ {problems:?}"
        );
    }

    #[test]
    fn a_felt_impact_has_no_problems() {
        let impact: Impact = serde_yaml::from_str(
            "availability: {canary: {selector: app=c}, atMost: \"50%\"}\nlatency: {canary: {selector: app=c}, percentile: p99, atLeastTimes: 3}\nsignals: [CanaryFailing]",
        )
        .unwrap();
        assert_eq!(impact.problems(), vec![]);
    }

    #[rstest]
    #[case("spec:\n  fault:\n    steps:\n      - patch: {}\n      - waitFor: 1s\n      - scale: {}\n", 1, Some((5, 9)))]
    #[case("spec:\n  fault:\n    steps:\n    - patch: {}\n    # a comment\n\n    -   scale: {}\n", 1, Some((7, 9)))]
    #[case("spec:\n  fault:\n    steps: [{patch: {}}]\n", 0, None)]
    #[case("spec:\n  fault:\n    steps:\n      - patch: {}\n  slo: {}\n", 1, None)]
    fn finds_a_list_item_in_the_source(
        #[case] src: &str,
        #[case] index: usize,
        #[case] at: Option<(usize, usize)>,
    ) {
        assert_eq!(locate_item(src, &["spec", "fault", "steps"], index), at);
    }
}
