//! `kind: Upgrade` files: how `breakfix upgrade --plan FILE` measures an
//! in-place Kubernetes upgrade. Which workloads keep running through it
//! (baselines, whose canaries are read at every step), the SLOs each phase
//! is judged against, how long a drain may wait on PodDisruptionBudgets,
//! and optionally one catalogue fault injected during a phase.
//!
//! ```yaml
//! apiVersion: breakfix.dev/v1alpha1
//! kind: Upgrade
//! metadata: {name: shop-through-upgrade}
//! spec:
//!   baselines: [../baselines/shop-pdb]
//!   drainTimeout: 3m
//!   phases:
//!     controlPlane:
//!       availability: {canary: http, atLeast: "90%"}
//!     nodes:
//!       availability: {atLeast: "95%"}
//!       blastRadius: {maxAffected: 0}
//!   fault:
//!     during: nodes
//!     memorySqueeze: {target: {namespace: kube-system, deployment: coredns}, limit: 24Mi}
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Metadata;
use super::slo::Percent;
use crate::baseline::{Baseline, LoadedBaseline};
use crate::fault::FaultSpec;
use crate::vocab::{ApiVersion, Diagnostic, HumanDuration, Name, diagnostic, load};

/// `kind: Upgrade`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub enum UpgradeKind {
    /// The only kind an upgrade plan file has.
    #[default]
    Upgrade,
}

/// How an upgrade is measured; see the module documentation.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpgradePlan {
    /// `breakfix.dev/v1alpha1`.
    pub api_version: ApiVersion,
    /// `Upgrade`.
    pub kind: UpgradeKind,
    /// The plan's name and description.
    pub metadata: Metadata,
    /// What the upgrade does and what each phase must hold to.
    #[serde(default)]
    pub spec: UpgradePlanSpec,
}

/// The plan itself.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpgradePlanSpec {
    /// Baselines (files, or folders holding `baseline.yaml`, relative to
    /// this file) applied before the "before" suite and kept running
    /// through the upgrade, besides the experiments' own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub baselines: Vec<PathBuf>,
    /// How long draining one node may wait on PodDisruptionBudgets (and on
    /// its pods to terminate) before the upgrade stops (default 5m).
    #[serde(default = "default_drain_timeout")]
    pub drain_timeout: HumanDuration,
    /// What each phase of the upgrade must hold to.
    #[serde(default)]
    pub phases: PhaseSlos,
    /// One catalogue fault, injected as a phase starts and reverted as it
    /// ends ("CoreDNS squeezed while the nodes roll").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<PhaseFault>,
}

impl Default for UpgradePlanSpec {
    fn default() -> Self {
        Self {
            baselines: Vec::new(),
            drain_timeout: default_drain_timeout(),
            phases: PhaseSlos::default(),
            fault: None,
        }
    }
}

fn default_drain_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(300))
}

/// The phases of an upgrade that SLOs and a fault can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum UpgradePhase {
    /// `kubeadm upgrade apply` on the first control-plane node.
    ControlPlane,
    /// Every node's roll: cordon, drain, kubeadm, kubelet, Ready, uncordon.
    /// Its SLOs apply to each node's roll separately.
    Nodes,
}

impl UpgradePhase {
    /// As written in files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ControlPlane => "controlPlane",
            Self::Nodes => "nodes",
        }
    }
}

impl fmt::Display for UpgradePhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// SLOs per phase.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PhaseSlos {
    /// What the control-plane step must hold to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_plane: Option<PhaseSlo>,
    /// What each node's roll must hold to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<PhaseSlo>,
}

impl PhaseSlos {
    /// The SLOs of `phase`, if it has any.
    pub fn of(&self, phase: UpgradePhase) -> Option<&PhaseSlo> {
        match phase {
            UpgradePhase::ControlPlane => self.control_plane.as_ref(),
            UpgradePhase::Nodes => self.nodes.as_ref(),
        }
    }
}

/// What one phase is judged against.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PhaseSlo {
    /// The canaries' success ratio during the phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability: Option<PhaseAvailability>,
    /// How many of the baselines' workloads may leave steady state during
    /// the phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blast_radius: Option<PhaseBlastRadius>,
}

/// `availability: {canary: http, namespace: shop, atLeast: "95%"}`: every
/// canary measured during the phase that matches (all of them by default)
/// must reach `atLeast`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PhaseAvailability {
    /// The canary mode (the `breakfix.dev/canary` label): http, dns or api.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryMode>,
    /// The canary's namespace; the baseline's own when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<Name>,
    /// The least share of the canary's checks that must succeed during the phase.
    pub at_least: Percent,
}

/// The canary modes of the workload image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CanaryMode {
    /// A canary checking an HTTP Service.
    Http,
    /// A canary resolving names through the cluster's DNS.
    Dns,
    /// A canary calling the Kubernetes API server.
    Api,
}

impl CanaryMode {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Dns => "dns",
            Self::Api => "api",
        }
    }
}

/// `blastRadius: {maxAffected: 0}`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PhaseBlastRadius {
    /// The most workloads that may leave steady state during the phase.
    pub max_affected: u32,
}

/// `fault: {during: nodes, <catalogue fault>: {...}}`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PhaseFault {
    /// The upgrade phase it is injected in.
    pub during: UpgradePhase,
    /// The fault, as an experiment writes it.
    #[serde(flatten)]
    pub fault: FaultSpec,
}

/// An upgrade plan read from disk, with its baselines loaded.
#[derive(Debug, Clone)]
pub struct LoadedUpgradePlan {
    /// The plan file it was loaded from.
    pub path: PathBuf,
    /// The file's content.
    pub plan: UpgradePlan,
    /// The baselines it names, loaded.
    pub baselines: Vec<LoadedBaseline>,
}

/// Loads and checks an upgrade plan and its baselines; every problem found
/// is returned, not just the first.
pub fn load_upgrade_plan(path: &Path) -> Result<LoadedUpgradePlan, Vec<Diagnostic>> {
    let (plan, src): (UpgradePlan, String) = load::load_yaml(path).map_err(|d| vec![d])?;
    let mut problems = Vec::new();
    let at = |keys: &[&str], message: String| match diagnostic::locate_key(&src, keys) {
        Some((l, c)) => Diagnostic::at(path, &src, l, c, message),
        None => Diagnostic::file(path, message),
    };
    if let Some(f) = &plan.spec.fault
        && let Err(message) = f.fault.validate()
    {
        problems.push(at(
            &["spec", "fault"],
            format!("spec.fault.{}: {message}", f.fault.kind()),
        ));
    }
    if plan.spec.drain_timeout.get().is_zero() {
        problems.push(
            at(
                &["spec", "drainTimeout"],
                "spec.drainTimeout is 0; a drain needs time for its pods to go".into(),
            )
            .with_help("e.g. `drainTimeout: 3m`"),
        );
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut baselines = Vec::new();
    for entry in &plan.spec.baselines {
        match Baseline::resolve_path(&dir.join(entry)) {
            Ok(file) => match LoadedBaseline::load(&file) {
                Ok(b) => baselines.push(b),
                Err(mut ds) => problems.append(&mut ds),
            },
            Err(message) => problems.push(at(&["spec", "baselines"], message)),
        }
    }
    if problems.is_empty() {
        Ok(LoadedUpgradePlan {
            path: path.to_path_buf(),
            plan,
            baselines,
        })
    } else {
        Err(problems)
    }
}

/// JSON Schema of the upgrade plan file.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(UpgradePlan)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(text.as_bytes()).unwrap();
        path
    }

    #[test]
    fn a_plan_with_phases_and_a_fault_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "up.yaml",
            "apiVersion: breakfix.dev/v1alpha1\nkind: Upgrade\nmetadata: {name: up}\nspec:\n  drainTimeout: 2m\n  phases:\n    controlPlane:\n      availability: {canary: api, atLeast: \"80%\"}\n    nodes:\n      blastRadius: {maxAffected: 1}\n  fault:\n    during: nodes\n    podKill: {target: {namespace: shop, deployment: web}}\n",
        );
        let loaded = load_upgrade_plan(&path).unwrap();
        let spec = &loaded.plan.spec;
        assert_eq!(spec.drain_timeout.get().as_secs(), 120);
        let cp = spec.phases.of(UpgradePhase::ControlPlane).unwrap();
        assert_eq!(
            cp.availability.as_ref().unwrap().canary,
            Some(CanaryMode::Api)
        );
        let fault = spec.fault.as_ref().unwrap();
        assert_eq!(fault.during, UpgradePhase::Nodes);
        assert_eq!(fault.fault.kind(), "podKill");
    }

    #[test]
    fn the_shipped_plans_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/upgrade");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                load_upgrade_plan(&path).unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
                n += 1;
            }
        }
        assert!(n >= 2, "{n} plan(s) in {}", dir.display());
    }

    #[test]
    fn unknown_phases_point_at_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "up.yaml",
            "apiVersion: breakfix.dev/v1alpha1\nkind: Upgrade\nmetadata: {name: up}\nspec:\n  phases:\n    workers: {}\n",
        );
        let problems = load_upgrade_plan(&path).unwrap_err();
        let text = problems[0].to_string();
        assert!(text.contains("up.yaml:6:"), "{text}");
        assert!(text.contains("workers"), "{text}");
    }

    #[test]
    fn a_missing_baseline_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "up.yaml",
            "apiVersion: breakfix.dev/v1alpha1\nkind: Upgrade\nmetadata: {name: up}\nspec:\n  baselines: [nowhere]\n",
        );
        let problems = load_upgrade_plan(&path).unwrap_err();
        assert!(
            problems[0].to_string().contains("does not exist"),
            "{problems:?}"
        );
    }
}
