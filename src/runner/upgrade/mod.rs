//! In-place Kubernetes upgrades of a kind cluster, measured like a fault.
//!
//! kind cannot upgrade a cluster in place, so this does what kubeadm's own
//! test tool (kinder) does, the way kubeadm's documentation orders it, with
//! nothing pulled:
//!
//! ```text
//! stage          every node: the target's kubeadm/kubelet/kubectl copied in,
//!                its control-plane images imported into containerd
//! control-plane  first control-plane node: kubeadm upgrade apply <to>
//! node <name>    each node in turn (control plane first): cordon, drain
//!                through the eviction API, kubeadm upgrade node (not on the
//!                first control-plane node), new kubelet and kubectl, kubelet
//!                restarted, Ready at <to> (and its static pods back),
//!                uncordon
//! ```
//!
//! Each of those is a step of a [`Transition`]: canaries' availability and
//! the blast radius are measured over it, every sub-step lands on its
//! timeline, and the plan's per-phase SLOs are judged on it. One catalogue
//! fault may be injected as a phase starts and is reverted as it ends, and
//! at once on cancellation. The versions are read back from the cluster at
//! the end. A step that fails stops the upgrade: the report names the node
//! and the sub-step, with the last lines of its output, and says what state
//! the cluster was left in (it is never reported upgraded).
//!
//! On a cgroup v1 host kubeadm's SystemVerification preflight is ignored
//! for targets whose kubelet refuses v1 by default: breakfix's node images
//! carry `failCgroupV1: false` as a kubelet drop-in, and the stage step
//! writes it into nodes that lack it, before any new kubelet starts.

pub mod drain;
pub mod node;
pub mod suite;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::runtime::wait::await_condition;
use kube::{Api, Client};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::EventSender;
use super::transition::{Notes, StepReport, Transition, TransitionReport, TransitionSpec};
use crate::baseline::steady::node_ready;
use crate::cluster::kind::cache_dir;
use crate::cluster::versions::{HostCgroups, KubeVersion, UpgradePath, VersionError};
use crate::experiment::upgrade::{PhaseFault, PhaseSlos, UpgradePhase};
use crate::fault::FaultContext;
use crate::journal::{ClusterRecord, Journal, JournalError};
pub use drain::{BudgetBlock, DrainError, DrainReport};
use node::{KindNode, NodeError};

/// Where the target's binaries go in each node.
const UPGRADE_DIR: &str = "/kind/upgrade";
/// The kubelet drop-in that lets kubelets ≥ 1.35 run on cgroup v1.
const CGROUP_DROPIN: &str = "/etc/kubernetes/kubelet.conf.d/50-breakfix-cgroupv1.conf";
const CGROUP_DROPIN_TEXT: &str = "# breakfix: let the kubelet run on a cgroup v1 host (KEP-5573).\napiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nfailCgroupV1: false\n";
/// The static pods of a control-plane node, as kubeadm names their mirror pods.
const STATIC_PODS: [&str; 4] = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
];
/// How long a restarted kubelet has to restart its static pods before
/// they are taken as kept.
const STATIC_RESTART_GRACE: Duration = Duration::from_secs(30);

/// Errors before the upgrade touches anything (exit code 2 material).
#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    /// The versions do not make an upgrade breakfix can do.
    #[error(transparent)]
    Version(#[from] VersionError),
    /// Something the upgrade needs has not been built.
    #[error(
        "the upgrade to {version} needs {what}, which is not built here; build it with `{help}`"
    )]
    Missing {
        /// The version it is for.
        version: KubeVersion,
        /// What is missing.
        what: String,
        /// How to build it.
        help: String,
    },
    /// The cluster does not run the version the upgrade starts from.
    #[error(
        "cluster `{cluster}` runs Kubernetes {found}, not --from {from}; name the version it runs"
    )]
    WrongFrom {
        /// The cluster.
        cluster: String,
        /// The version it runs.
        found: String,
        /// The version the upgrade starts from.
        from: KubeVersion,
    },
    /// A command on a node failed.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// The API server could not be reached.
    #[error("cannot reach the cluster: {0}")]
    Kube(#[from] kube::Error),
    /// The journal could not be created or written.
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// The target version's binaries in the build cache and the images its
/// kubeadm lists, all present in the host's Docker.
#[derive(Debug, Clone)]
pub struct Artifacts {
    /// The version they are for.
    pub version: KubeVersion,
    /// Where its kubeadm, kubelet and kubectl are.
    pub bin_dir: PathBuf,
    /// The images its control plane needs, as kubeadm names them.
    pub images: Vec<String>,
}

impl Artifacts {
    /// Finds what `scripts/build-images.sh` built for `version`.
    ///
    /// # Errors
    ///
    /// [`UpgradeError::Missing`] naming what is missing and the command that
    /// builds it.
    pub async fn locate(from: KubeVersion, version: KubeVersion) -> Result<Self, UpgradeError> {
        let help = format!("just upgrade-images {from} {version}");
        let bin_dir = cache_dir().join(format!("components/k8s-{version}/bin"));
        for bin in ["kubeadm", "kubelet", "kubectl"] {
            if !bin_dir.join(bin).is_file() {
                return Err(UpgradeError::Missing {
                    version,
                    what: format!("{}", bin_dir.join(bin).display()),
                    help,
                });
            }
        }
        let kubeadm = bin_dir.join("kubeadm");
        let out = tokio::process::Command::new(&kubeadm)
            .args(["config", "images", "list", "--kubernetes-version"])
            .arg(version.to_string())
            .output()
            .await
            .map_err(|e| UpgradeError::Missing {
                version,
                what: format!("a working {} ({e})", kubeadm.display()),
                help: help.clone(),
            })?;
        let images: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(String::from)
            .collect();
        if !out.status.success() || images.is_empty() {
            return Err(UpgradeError::Missing {
                version,
                what: format!("the image list of {}", kubeadm.display()),
                help,
            });
        }
        for image in &images {
            let present = tokio::process::Command::new("docker")
                .args(["image", "inspect", "--format", "{{.Id}}", image])
                .output()
                .await
                .is_ok_and(|o| o.status.success());
            if !present {
                return Err(UpgradeError::Missing {
                    version,
                    what: format!("image {image}"),
                    help,
                });
            }
        }
        Ok(Self {
            version,
            bin_dir,
            images,
        })
    }
}

/// Everything an upgrade needs besides the cluster's client.
#[derive(Debug, Clone)]
pub struct UpgradeConfig {
    /// The kind cluster's name (its node containers carry it as a label).
    pub cluster: String,
    /// From which version to which.
    pub path: UpgradePath,
    /// This host's cgroup layout.
    pub host: HostCgroups,
    /// What the target version needs, already built.
    pub artifacts: Artifacts,
    /// What the transition measures at every step.
    pub spec: TransitionSpec,
    /// What each phase must hold to.
    pub phases: PhaseSlos,
    /// A fault injected during one phase, if any.
    pub fault: Option<PhaseFault>,
    /// Draining one node may take this long.
    pub drain_timeout: Duration,
    /// A restarted kubelet has this long to report Ready at the target.
    pub ready_timeout: Duration,
    /// The run id (journal, and the name on the fault's undo records).
    pub run_id: String,
    /// For the fault's journal, so `breakfix cleanup` can revert it after a crash.
    pub journal_dir: PathBuf,
    /// The cluster as journals and reports name it.
    pub cluster_record: ClusterRecord,
}

/// How the upgrade ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum UpgradeOutcome {
    /// Every step completed and the cluster reports the target version.
    Upgraded,
    /// A step failed, or the cluster does not report the target version.
    Failed,
    /// Cancelled (Ctrl-C) before the end.
    Interrupted,
}

/// Which node and sub-step failed, and what it said.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeFailure {
    /// The transition step (`control-plane`, `node bf-worker`).
    pub step: String,
    /// The node it failed on, if it was a node's step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The sub-step (`kubeadm upgrade apply`, `drain`, `kubelet Ready`).
    pub action: String,
    /// Why it failed.
    pub message: String,
    /// The last lines of the failed command's output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_tail: Option<String>,
}

impl fmt::Display for UpgradeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.node {
            Some(node) => write!(f, "{} on {node}: {}", self.action, self.message),
            None => write!(f, "{}: {}", self.action, self.message),
        }
    }
}

/// The versions the cluster reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterVersions {
    /// The API server's `/version` gitVersion.
    pub api_server: String,
    /// Each node's kubelet version.
    pub kubelets: BTreeMap<String, String>,
    /// Nodes still cordoned.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cordoned: Vec<String>,
}

impl ClusterVersions {
    /// Whether the API server and every kubelet report `version`.
    pub fn all_at(&self, version: KubeVersion) -> bool {
        let v = version.to_string();
        self.api_server == v && !self.kubelets.is_empty() && self.kubelets.values().all(|k| *k == v)
    }

    /// One line: `API server v1.35.4; kubelets: a v1.35.4, b v1.34.4 (cordoned)`.
    pub fn describe(&self) -> String {
        let kubelets: Vec<String> = self
            .kubelets
            .iter()
            .map(|(n, v)| {
                let cordoned = if self.cordoned.contains(n) {
                    " (cordoned)"
                } else {
                    ""
                };
                format!("{n} {v}{cordoned}")
            })
            .collect();
        format!(
            "API server {}; kubelets: {}",
            self.api_server,
            kubelets.join(", ")
        )
    }
}

/// The catalogue fault injected during a phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FaultRecord {
    /// The fault's catalogue key.
    pub fault: String,
    /// The phase it was injected in.
    pub during: UpgradePhase,
    /// What it broke, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// When it went in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub injected: Option<Timestamp>,
    /// When it was reverted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverted: Option<Timestamp>,
    /// What went wrong with it, if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One per-phase SLO judged on one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PhaseVerdict {
    /// The phase.
    pub phase: UpgradePhase,
    /// The step it was measured over.
    pub step: String,
    /// `availability ≥ 95% (breakfix.dev/canary=http -n shop)`.
    pub slo: String,
    /// `97.2% (351/361 checks)`.
    pub measured: String,
    /// Whether it was met.
    pub met: bool,
}

/// What an upgrade did, measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeReport {
    /// The version upgraded from.
    pub from: KubeVersion,
    /// The version upgraded to.
    pub to: KubeVersion,
    /// The cluster's name.
    pub cluster: String,
    /// `v1` or `v2`: the host's cgroups, which the kubelets ran on.
    pub host_cgroups: String,
    /// The verdict.
    pub outcome: UpgradeOutcome,
    /// Where and why it failed, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<UpgradeFailure>,
    /// What state the cluster was left in, in one line.
    pub state: String,
    /// The versions read back from the cluster at the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versions: Option<ClusterVersions>,
    /// Each node's drain.
    pub drains: Vec<DrainReport>,
    /// The fault injected during the upgrade, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<FaultRecord>,
    /// Each phase's verdict.
    pub slos: Vec<PhaseVerdict>,
    /// The upgrade's steps and timeline.
    pub transition: TransitionReport,
}

impl UpgradeReport {
    /// Upgraded, and every per-phase SLO met.
    pub fn passed(&self) -> bool {
        self.outcome == UpgradeOutcome::Upgraded && self.slos.iter().all(|s| s.met)
    }

    /// Wall time of each step, in order.
    pub fn step_times(&self) -> Vec<(&str, Duration)> {
        self.transition
            .steps
            .iter()
            .map(|s| {
                let took =
                    Duration::try_from(s.finished.duration_since(s.started)).unwrap_or_default();
                (s.name.as_str(), took)
            })
            .collect()
    }
}

/// A step's failure, before it becomes an [`UpgradeFailure`].
#[derive(Debug)]
struct StepFailure {
    node: Option<String>,
    action: String,
    message: String,
    tail: Option<String>,
    interrupted: bool,
}

impl StepFailure {
    fn on(node: &str, action: &str, error: impl fmt::Display) -> Self {
        Self {
            node: Some(node.into()),
            action: action.into(),
            message: error.to_string(),
            tail: None,
            interrupted: false,
        }
    }

    fn command(node: &str, action: &str, error: &NodeError) -> Self {
        Self {
            tail: error.tail().map(String::from),
            message: match error {
                NodeError::Failed {
                    status, command, ..
                } => format!("`{command}` {status}"),
                other => other.to_string(),
            },
            ..Self::on(node, action, "")
        }
    }

    fn interrupted(node: Option<&str>, action: &str) -> Self {
        Self {
            node: node.map(String::from),
            action: action.into(),
            message: "interrupted".into(),
            tail: None,
            interrupted: true,
        }
    }
}

impl fmt::Display for StepFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.node {
            Some(node) => write!(f, "{} on {node}: {}", self.action, self.message),
            None => write!(f, "{}: {}", self.action, self.message),
        }
    }
}

/// The fault of the plan, journaled so it is reverted on every exit path:
/// at the end of its phase, on cancellation (at once, from a task of its
/// own), or by `breakfix cleanup` after a crash.
struct FaultSlot {
    client: Client,
    spec: PhaseFault,
    journal: tokio::sync::Mutex<Journal>,
    record: std::sync::Mutex<FaultRecord>,
    experiment: String,
    run_id: String,
}

impl FaultSlot {
    async fn inject(&self, notes: &Notes) {
        let mut journal = self.journal.lock().await;
        let mut ctx = FaultContext {
            client: self.client.clone(),
            journal: &mut journal,
            experiment: self.experiment.clone(),
            run_id: self.run_id.clone(),
        };
        let result = self.spec.fault.inject(&mut ctx).await;
        let mut record = lock(&self.record);
        match result {
            Ok(injection) => {
                notes.note(format!("fault injected: {}", injection.summary));
                record.summary = Some(injection.summary);
                record.injected = Some(Timestamp::now());
            }
            Err(e) => {
                notes.note(format!("fault could not be injected: {e}"));
                record.error = Some(e.to_string());
            }
        }
    }

    /// Reverts what is journaled; does nothing when nothing is.
    async fn revert(&self, notes: Option<&Notes>) {
        let mut journal = self.journal.lock().await;
        if journal.pending().is_empty() {
            return;
        }
        let errors = journal.revert_all(&self.client).await;
        let mut record = lock(&self.record);
        record.reverted = Some(Timestamp::now());
        let message = if errors.is_empty() {
            "fault reverted".to_string()
        } else {
            let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
            record.error = Some(text.join("; "));
            format!(
                "fault revert failed: {}; run `breakfix cleanup`",
                text.join("; ")
            )
        };
        if let Some(n) = notes {
            n.note(message);
        }
    }

    /// Closes the journal once nothing is left in it to revert, so
    /// `breakfix cleanup` has nothing to do for this run (and needs no
    /// cluster, which may be deleted by then).
    async fn close(&self, notes: &Notes) {
        let journal = self.journal.lock().await;
        if journal.pending().is_empty()
            && let Err(e) = journal.handle().finish()
        {
            notes.note(format!("the fault's journal cannot be closed: {e}"));
        }
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Checks the cluster is the one to upgrade: its API server runs `from`.
///
/// # Errors
///
/// [`UpgradeError::WrongFrom`], or the cluster cannot be reached.
pub async fn check_from(
    client: &Client,
    cluster: &str,
    from: KubeVersion,
) -> Result<(), UpgradeError> {
    let found = client.apiserver_version().await?.git_version;
    if found == from.to_string() {
        Ok(())
    } else {
        Err(UpgradeError::WrongFrom {
            cluster: cluster.into(),
            found,
            from,
        })
    }
}

/// An upgrade ready to run; see the module documentation.
pub struct Upgrade {
    client: Client,
    /// Evicts pods; must not retry 429s (see [`drain::drain`]).
    evictions: Client,
    config: UpgradeConfig,
    events: Option<EventSender>,
    cancel: CancellationToken,
}

impl Upgrade {
    /// An upgrade through `client`; `evictions` drains the nodes and must
    /// be a client that does not retry 429 answers by itself
    /// (`cluster::client_without_retry`).
    pub fn new(client: Client, evictions: Client, config: UpgradeConfig) -> Self {
        Self {
            client,
            evictions,
            config,
            events: None,
            cancel: CancellationToken::new(),
        }
    }

    /// Sends every timeline entry as a run event too (progress lines).
    #[must_use]
    pub fn events(mut self, events: EventSender) -> Self {
        self.events = Some(events);
        self
    }

    /// Stops the upgrade at the next safe point (a kubeadm command already
    /// running is left to finish: stopping it half-way is what breaks
    /// clusters); the fault, if one is in, is reverted at once.
    #[must_use]
    pub fn cancel(mut self, cancel: CancellationToken) -> Self {
        self.cancel = cancel;
        self
    }

    /// Runs the upgrade and reports; see the module documentation.
    pub async fn run(self) -> UpgradeReport {
        let c = &self.config;
        let name = format!("upgrade {} → {}", c.path.from.version, c.path.to.version);
        let mut transition = Transition::new(self.client.clone(), name.clone(), c.spec.clone());
        if let Some(tx) = &self.events {
            transition = transition.with_events(tx.clone());
        }
        let notes = transition.notes();
        let host = match c.host {
            HostCgroups::V1 => "v1",
            HostCgroups::V2 => "v2",
        };
        notes.note(format!(
            "upgrade {} → {} of kind cluster `{}`; host cgroups {host}",
            c.path.from.version, c.path.to.version, c.cluster
        ));

        let slot = match &c.fault {
            Some(spec) => match Journal::create(
                &c.journal_dir,
                &format!("{}-upgrade", c.run_id),
                c.cluster_record.clone(),
            ) {
                Ok(journal) => Some(Arc::new(FaultSlot {
                    client: self.client.clone(),
                    spec: spec.clone(),
                    journal: tokio::sync::Mutex::new(journal),
                    record: std::sync::Mutex::new(FaultRecord {
                        fault: spec.fault.kind().into(),
                        during: spec.during,
                        summary: None,
                        injected: None,
                        reverted: None,
                        error: None,
                    }),
                    experiment: name.clone(),
                    run_id: c.run_id.clone(),
                })),
                Err(e) => {
                    notes.note(format!(
                        "no fault injected: its journal cannot be written: {e}"
                    ));
                    None
                }
            },
            None => None,
        };
        // Ctrl-C reverts the fault at once, whatever the upgrade is doing.
        let on_cancel = slot.as_ref().map(|slot| {
            let slot = slot.clone();
            let cancel = self.cancel.clone();
            let notes = notes.clone();
            tokio::spawn(async move {
                cancel.cancelled().await;
                slot.revert(Some(&notes)).await;
            })
        });

        let mut failure: Option<StepFailure> = None;
        let mut drains = Vec::new();
        let nodes = match node::kind_nodes(&c.cluster).await {
            Ok(nodes) => nodes,
            Err(e) => {
                failure = Some(StepFailure {
                    node: None,
                    action: "list nodes".into(),
                    message: e.to_string(),
                    tail: None,
                    interrupted: false,
                });
                Vec::new()
            }
        };

        if failure.is_none() {
            failure = self
                .guarded(&mut transition, "stage", None, self.stage(&nodes, &notes))
                .await
                .err();
        }
        let phase_fault = |phase| slot.as_ref().filter(|s| s.spec.during == phase);
        if failure.is_none() {
            // Nothing new goes in once Ctrl-C came (a command in a node it
            // let finish may have ended the step before without an error).
            if let Some(s) = phase_fault(UpgradePhase::ControlPlane)
                && !self.cancel.is_cancelled()
            {
                s.inject(&notes).await;
            }
            let first = &nodes[0];
            failure = self
                .guarded(
                    &mut transition,
                    "control-plane",
                    Some(&first.name),
                    self.control_plane(first, &notes),
                )
                .await
                .err();
            if let Some(s) = phase_fault(UpgradePhase::ControlPlane) {
                s.revert(Some(&notes)).await;
            }
        }
        if failure.is_none() {
            // Nothing new goes in once Ctrl-C came (a command in a node it
            // let finish may have ended the step before without an error).
            if let Some(s) = phase_fault(UpgradePhase::Nodes)
                && !self.cancel.is_cancelled()
            {
                s.inject(&notes).await;
            }
            for (i, n) in nodes.iter().enumerate() {
                let step = format!("node {}", n.name);
                let result = self
                    .guarded(
                        &mut transition,
                        &step,
                        Some(&n.name),
                        self.roll(n, i == 0, &notes),
                    )
                    .await;
                match result {
                    Ok(report) => drains.push(report),
                    Err(f) => {
                        failure = Some(f);
                        break;
                    }
                }
            }
            if let Some(s) = phase_fault(UpgradePhase::Nodes) {
                s.revert(Some(&notes)).await;
            }
        }
        // Whatever happened, nothing injected stays behind.
        if let Some(s) = &slot {
            s.revert(Some(&notes)).await;
        }
        if let Some(task) = on_cancel {
            task.abort();
        }
        if let Some(s) = &slot {
            s.close(&notes).await;
        }

        let versions = read_versions(&self.client).await;
        let to = c.path.to.version;
        let outcome = match (&failure, &versions) {
            // A wait that Ctrl-C cut short fails as well as one that was
            // told it was interrupted: both are the interruption.
            (Some(f), _) if f.interrupted || self.cancel.is_cancelled() => {
                UpgradeOutcome::Interrupted
            }
            (Some(_), _) => UpgradeOutcome::Failed,
            (None, Ok(v)) if v.all_at(to) => UpgradeOutcome::Upgraded,
            (None, _) => UpgradeOutcome::Failed,
        };
        if failure.is_none() && outcome == UpgradeOutcome::Failed {
            failure = Some(StepFailure {
                node: None,
                action: "versions".into(),
                message: match &versions {
                    Ok(v) => format!(
                        "the cluster does not report {to} everywhere: {}",
                        v.describe()
                    ),
                    Err(e) => format!("cannot read the versions back: {e}"),
                },
                tail: None,
                interrupted: false,
            });
        }
        let state = match &versions {
            Ok(v) => {
                notes.note(format!("versions read from the cluster: {}", v.describe()));
                match outcome {
                    UpgradeOutcome::Upgraded => format!("upgraded to {to}: {}", v.describe()),
                    _ => format!("left for inspection, not upgraded: {}", v.describe()),
                }
            }
            Err(e) => {
                format!("left for inspection, not upgraded; its versions could not be read: {e}")
            }
        };
        let fault = slot.as_ref().map(|s| lock(&s.record).clone());
        let transition = transition.finish();
        let slos = judge(&c.phases, &transition.steps);
        let failure = failure.map(|f| {
            let step = transition
                .steps
                .iter()
                .rev()
                .find(|s| s.error.is_some())
                .map_or_else(|| f.action.clone(), |s| s.name.clone());
            UpgradeFailure {
                step,
                node: f.node,
                action: f.action,
                message: f.message,
                log_tail: f.tail,
            }
        });
        UpgradeReport {
            from: c.path.from.version,
            to,
            cluster: c.cluster.clone(),
            host_cgroups: host.into(),
            outcome,
            failure,
            state,
            versions: versions.ok(),
            drains,
            fault,
            slos,
            transition,
        }
    }

    /// Runs `action` as the measured step `name` unless cancelled first.
    async fn guarded<T>(
        &self,
        transition: &mut Transition,
        name: &str,
        node: Option<&str>,
        action: impl std::future::Future<Output = Result<T, StepFailure>>,
    ) -> Result<T, StepFailure> {
        if self.cancel.is_cancelled() {
            return Err(StepFailure::interrupted(node, name));
        }
        transition.step(name, action).await
    }

    /// Copies the target's binaries and images into every node, and makes
    /// sure each has the cgroup v1 drop-in before any new kubelet starts.
    async fn stage(&self, nodes: &[KindNode], notes: &Notes) -> Result<(), StepFailure> {
        let a = &self.config.artifacts;
        let dir = format!("{UPGRADE_DIR}/{}", a.version);
        for n in nodes {
            node::exec(&n.name, &["mkdir", "-p", &dir])
                .await
                .map_err(|e| StepFailure::command(&n.name, "stage", &e))?;
            for bin in ["kubeadm", "kubelet", "kubectl"] {
                node::copy_in(&n.name, &a.bin_dir.join(bin), &format!("{dir}/{bin}"))
                    .await
                    .map_err(|e| StepFailure::command(&n.name, "copy binaries", &e))?;
            }
            node::import_images(&n.name, &a.images)
                .await
                .map_err(|e| StepFailure::command(&n.name, "import images", &e))?;
            let has_dropin = node::sh(
                &n.name,
                &format!("test -s {CGROUP_DROPIN} && grep -q -- '--config-dir=/etc/kubernetes/kubelet.conf.d' /etc/default/kubelet && echo yes || echo no"),
            )
            .await
            .map_err(|e| StepFailure::command(&n.name, "check kubelet drop-in", &e))?;
            if has_dropin.trim() != "yes" {
                node::write_file(&n.name, CGROUP_DROPIN, CGROUP_DROPIN_TEXT)
                    .await
                    .map_err(|e| StepFailure::command(&n.name, "write kubelet drop-in", &e))?;
                node::sh(
                    &n.name,
                    "grep -q -- --config-dir /etc/default/kubelet || sed -i 's#^KUBELET_EXTRA_ARGS=.*#& --config-dir=/etc/kubernetes/kubelet.conf.d#' /etc/default/kubelet",
                )
                .await
                .map_err(|e| StepFailure::command(&n.name, "write kubelet drop-in", &e))?;
                notes.note(format!(
                    "{}: wrote the kubelet drop-in failCgroupV1: false",
                    n.name
                ));
            }
            notes.note(format!(
                "{}: staged kubeadm, kubelet, kubectl {} and {} image(s)",
                n.name,
                a.version,
                a.images.len()
            ));
        }
        Ok(())
    }

    fn preflight_flags(&self) -> Vec<&'static str> {
        if self
            .config
            .path
            .ignore_system_verification(self.config.host)
        {
            vec!["--ignore-preflight-errors=SystemVerification"]
        } else {
            Vec::new()
        }
    }

    /// `kubeadm upgrade apply` on the first control-plane node; then the
    /// API server must answer with the target version.
    async fn control_plane(&self, first: &KindNode, notes: &Notes) -> Result<(), StepFailure> {
        let to = self.config.artifacts.version.to_string();
        let n = &first.name;
        self.swap_kubeadm(n).await?;
        let mut args = vec!["kubeadm", "upgrade", "apply", to.as_str(), "--yes"];
        args.extend(self.preflight_flags());
        notes.note(format!("{n}: {}", args.join(" ")));
        node::exec(n, &args)
            .await
            .map_err(|e| StepFailure::command(n, "kubeadm upgrade apply", &e))?;
        let version = wait_api_server(&self.client, &self.cancel, Duration::from_secs(120))
            .await
            .map_err(|e| StepFailure::on(n, "API server back", e))?;
        notes.note(format!("API server reports {version}"));
        if version != to {
            return Err(StepFailure::on(
                n,
                "API server version",
                format!("the API server reports {version} after kubeadm upgrade apply {to}"),
            ));
        }
        Ok(())
    }

    async fn swap_kubeadm(&self, n: &str) -> Result<(), StepFailure> {
        let dir = format!("{UPGRADE_DIR}/{}", self.config.artifacts.version);
        node::exec(
            n,
            &[
                "install",
                "-m",
                "0755",
                &format!("{dir}/kubeadm"),
                "/usr/bin/kubeadm",
            ],
        )
        .await
        .map(|_| ())
        .map_err(|e| StepFailure::command(n, "install kubeadm", &e))
    }

    /// One node's roll; see the module documentation.
    async fn roll(
        &self,
        n: &KindNode,
        first: bool,
        notes: &Notes,
    ) -> Result<DrainReport, StepFailure> {
        let name = n.name.as_str();
        let to = self.config.artifacts.version;
        notes.note(format!("{name}: cordon and drain"));
        let note = |m: String| notes.note(m);
        let report = drain::drain(
            &self.evictions,
            name,
            self.config.drain_timeout,
            &self.cancel,
            &note,
        )
        .await
        .map_err(|e| match e {
            DrainError::Cancelled { .. } => StepFailure::interrupted(Some(name), "drain"),
            other => StepFailure::on(name, "drain", other),
        })?;
        notes.note(format!(
            "{name}: drained ({} evicted, {} left: DaemonSet or static pods)",
            report.evicted.len(),
            report.skipped.len()
        ));
        self.checkpoint(name, "kubeadm upgrade node")?;
        if !first {
            self.swap_kubeadm(name).await?;
            let mut args = vec!["kubeadm", "upgrade", "node"];
            args.extend(self.preflight_flags());
            notes.note(format!("{name}: {}", args.join(" ")));
            node::exec(name, &args)
                .await
                .map_err(|e| StepFailure::command(name, "kubeadm upgrade node", &e))?;
        }
        self.checkpoint(name, "restart kubelet")?;
        let dir = format!("{UPGRADE_DIR}/{to}");
        let restarted = Timestamp::now();
        node::sh(
            name,
            &format!(
                "install -m 0755 {dir}/kubelet /usr/bin/kubelet && install -m 0755 {dir}/kubectl /usr/bin/kubectl && printf %s {to} > /kind/version && systemctl daemon-reload && systemctl restart kubelet"
            ),
        )
        .await
        .map_err(|e| StepFailure::command(name, "restart kubelet", &e))?;
        notes.note(format!(
            "{name}: kubelet and kubectl {to} in place, kubelet restarted"
        ));
        wait_node_at(
            &self.client,
            name,
            to,
            self.config.ready_timeout,
            &self.cancel,
        )
        .await
        .map_err(|e| {
            if self.cancel.is_cancelled() {
                StepFailure::interrupted(Some(name), "kubelet Ready")
            } else {
                StepFailure::on(name, "kubelet Ready", e)
            }
        })?;
        notes.note(format!("{name}: Ready, kubelet {to}"));
        if n.control_plane {
            wait_static_pods(
                &self.client,
                name,
                restarted,
                self.config.ready_timeout,
                &self.cancel,
            )
            .await
            .map_err(|e| StepFailure::on(name, "static pods back", e))?;
            notes.note(format!("{name}: control-plane static pods Ready again"));
        }
        drain::cordon(&self.client, name, false)
            .await
            .map_err(|e| StepFailure::on(name, "uncordon", e))?;
        notes.note(format!("{name}: uncordoned"));
        Ok(report)
    }

    fn checkpoint(&self, node: &str, next: &str) -> Result<(), StepFailure> {
        if self.cancel.is_cancelled() {
            Err(StepFailure::interrupted(Some(node), next))
        } else {
            Ok(())
        }
    }
}

/// Waits for the API server to answer `/version` again (it restarts under
/// kubeadm and under a new kubelet); returns its gitVersion. `/version` has
/// nothing to watch, so this asks once a second, for `within` at most.
async fn wait_api_server(
    client: &Client,
    cancel: &CancellationToken,
    within: Duration,
) -> Result<String, String> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let error = match client.apiserver_version().await {
            Ok(info) => return Ok(info.git_version),
            Err(e) => e.to_string(),
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(format!("no answer within {within:?}: {error}"));
        }
        tokio::select! {
            () = cancel.cancelled() => return Err("interrupted".into()),
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

fn kubelet_version(n: &Node) -> Option<&str> {
    n.status
        .as_ref()
        .and_then(|s| s.node_info.as_ref())
        .map(|i| i.kubelet_version.as_str())
}

/// Waits (a watch) until `node` is Ready with its kubelet at `version`.
async fn wait_node_at(
    client: &Client,
    node: &str,
    version: KubeVersion,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<(), String> {
    let api: Api<Node> = Api::all(client.clone());
    let want = version.to_string();
    let cond = move |n: Option<&Node>| {
        n.is_some_and(|n| node_ready(n) && kubelet_version(n) == Some(want.as_str()))
    };
    tokio::select! {
        r = tokio::time::timeout(timeout, await_condition(api.clone(), node, cond)) => match r {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => {
                let now = api.get_opt(node).await.ok().flatten();
                let seen = now.as_ref().map_or_else(
                    || "the node is gone".to_string(),
                    |n| format!("kubelet {}, Ready {}", kubelet_version(n).unwrap_or("?"), node_ready(n)),
                );
                Err(format!("not Ready at {version} after {timeout:?} ({seen}); see `docker exec {node} journalctl -u kubelet`"))
            }
        },
        () = cancel.cancelled() => Err("interrupted".into()),
    }
}

/// After a control-plane node's kubelet restarts, its static pods are
/// restarted too (the new kubelet hashes them differently): waits until
/// each mirror pod is Ready with containers started after `restarted`, or,
/// when the kubelet kept one, Ready once `STATIC_RESTART_GRACE` has passed.
async fn wait_static_pods(
    client: &Client,
    node: &str,
    restarted: Timestamp,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<(), String> {
    let api: Api<Pod> = Api::namespaced(client.clone(), "kube-system");
    let grace_over = Timestamp::now() + STATIC_RESTART_GRACE;
    let deadline = tokio::time::Instant::now() + timeout;
    for component in STATIC_PODS {
        let name = format!("{component}-{node}");
        let fresh = move |p: Option<&Pod>| {
            p.is_some_and(|p| {
                crate::baseline::steady::pod_ready(p)
                    && (Timestamp::now() >= grace_over || started_after(p, restarted))
            })
        };
        loop {
            if cancel.is_cancelled() {
                return Err("interrupted".into());
            }
            // The API server itself restarts here; a broken watch is retried.
            let wait = tokio::time::timeout(
                Duration::from_secs(5),
                await_condition(api.clone(), &name, fresh),
            );
            if let Ok(Ok(_)) = wait.await {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!("{name} not Ready again within {timeout:?}"));
            }
        }
    }
    Ok(())
}

fn started_after(pod: &Pod, at: Timestamp) -> bool {
    let statuses = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref());
    statuses.is_some_and(|cs| {
        !cs.is_empty()
            && cs.iter().all(|c| {
                c.state
                    .as_ref()
                    .and_then(|s| s.running.as_ref())
                    .and_then(|r| r.started_at.as_ref())
                    .is_some_and(|t| t.0 >= at)
            })
    })
}

/// The versions the cluster reports now.
pub async fn read_versions(client: &Client) -> Result<ClusterVersions, String> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match read_versions_once(client).await {
            Ok(v) => return Ok(v),
            // The API server may be restarting under a new kubelet.
            Err(e) if attempt >= 10 => return Err(e.to_string()),
            Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    }
}

async fn read_versions_once(client: &Client) -> Result<ClusterVersions, kube::Error> {
    let api_server = client.apiserver_version().await?.git_version;
    let nodes: Api<Node> = Api::all(client.clone());
    let mut v = ClusterVersions {
        api_server,
        ..ClusterVersions::default()
    };
    for n in nodes.list(&Default::default()).await?.items {
        let name = n.metadata.name.clone().unwrap_or_default();
        if n.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) {
            v.cordoned.push(name.clone());
        }
        v.kubelets
            .insert(name, kubelet_version(&n).unwrap_or("?").to_string());
    }
    Ok(v)
}

/// Judges each step against its phase's SLOs.
pub fn judge(phases: &PhaseSlos, steps: &[StepReport]) -> Vec<PhaseVerdict> {
    let mut verdicts = Vec::new();
    for step in steps {
        let phase = match step.name.as_str() {
            "control-plane" => UpgradePhase::ControlPlane,
            n if n.starts_with("node ") => UpgradePhase::Nodes,
            _ => continue,
        };
        let Some(slo) = phases.of(phase) else {
            continue;
        };
        if let Some(a) = &slo.availability {
            let mode = a
                .canary
                .map(|m| format!("breakfix.dev/canary={} ", m.as_str()));
            let ns = a.namespace.as_ref().map(|n| format!(" -n {n}"));
            let matching: Vec<_> = step
                .availability
                .iter()
                .filter(|m| {
                    mode.as_ref()
                        .is_none_or(|p| m.canary.starts_with(p.as_str()))
                })
                .filter(|m| ns.as_ref().is_none_or(|s| m.canary.ends_with(s.as_str())))
                .collect();
            if matching.is_empty() {
                verdicts.push(PhaseVerdict {
                    phase,
                    step: step.name.clone(),
                    slo: format!("availability ≥ {}", a.at_least),
                    measured: "no matching canary was running".into(),
                    met: false,
                });
            }
            for m in matching {
                let (measured, met) = match (m.ratio(), &m.error) {
                    (Some(r), _) => (
                        format!("{:.1}% ({}/{} checks)", r * 100.0, m.ok, m.total),
                        r >= a.at_least.ratio(),
                    ),
                    (None, Some(e)) => (format!("not measured: {e}"), false),
                    (None, None) => ("no checks during the step".to_string(), true),
                };
                verdicts.push(PhaseVerdict {
                    phase,
                    step: step.name.clone(),
                    slo: format!("availability ≥ {} ({})", a.at_least, m.canary),
                    measured,
                    met,
                });
            }
        }
        if let Some(b) = &slo.blast_radius {
            let (measured, met) = match step.blast_radius.as_ref() {
                Some(m) => match m.affected_count() {
                    Some(count) => {
                        let names: Vec<&str> =
                            m.affected.iter().map(|d| d.workload.as_str()).collect();
                        let detail = if names.is_empty() {
                            String::new()
                        } else {
                            format!(": {}", names.join(", "))
                        };
                        (
                            format!("{count} affected{detail}"),
                            count <= u64::from(b.max_affected),
                        )
                    }
                    None => (
                        format!("not measured: {}", m.error.clone().unwrap_or_default()),
                        false,
                    ),
                },
                None => ("not measured".to_string(), false),
            };
            verdicts.push(PhaseVerdict {
                phase,
                step: step.name.clone(),
                slo: format!("blastRadius ≤ {}", b.max_affected),
                measured,
                met,
            });
        }
    }
    verdicts
}
