//! Faults: what breakfix breaks, and how it is undone.
//!
//! Every fault is data ([`FaultSpec`], one variant per fault, read from the
//! experiment file) plus an implementation of [`Fault`]. Faults never mutate
//! the cluster directly: they go through [`FaultContext`], whose primitives
//! (patch, delete, create) journal the exact undo before the mutation is
//! sent. Reverting is therefore the same for every fault: replay the journal.

mod context;
pub mod cron_job_storm;
pub mod delete;
pub mod generic;
pub mod image_typo;
pub mod memory_squeeze;
pub mod missing_mount;
pub mod node_loss;
pub mod patch;
pub mod pod_kill;
pub mod probe_misconfig;
pub mod rbac_binding_delete;
pub mod scale;
pub mod selector_mismatch;
mod target;

use std::future::Future;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::detect::{Scope, SignalStream};
use crate::journal::JournalError;
use crate::kobj::ObjectError;
use crate::vocab::SignalKind;
pub use context::FaultContext;
pub use cron_job_storm::CronJobStorm;
pub use delete::DeleteObject;
pub use image_typo::ImageTypo;
pub use memory_squeeze::MemorySqueeze;
pub use missing_mount::MissingMount;
pub use node_loss::NodeLoss;
pub use patch::PatchObject;
pub use pod_kill::PodKill;
pub use probe_misconfig::ProbeMisconfig;
pub use rbac_binding_delete::RbacBindingDelete;
pub use scale::Scale;
pub use selector_mismatch::SelectorMismatch;

/// Errors injecting a fault.
#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    /// Reading or writing an object failed.
    #[error(transparent)]
    Object(#[from] ObjectError),
    /// The undo could not be journaled, so the fault was not injected.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The target is missing or not in a state the fault can break.
    #[error("{0}")]
    Target(String),
    /// An object read from the cluster could not be decoded.
    #[error("cannot decode {what}: {detail}")]
    Decode {
        /// What was decoded.
        what: String,
        /// Why it failed.
        detail: String,
    },
    /// A command the fault runs (on a kind node) failed.
    #[error("{0}")]
    Command(String),
}

/// What an injection did, and where to look for its signals.
pub struct Injection {
    /// One line: what was broken, for the timeline.
    pub summary: String,
    /// Pods, events and Deployment the standard detector watches.
    pub scope: Scope,
    /// Further signal sources the fault needs (canaries, endpoints, counts…),
    /// merged with the standard ones.
    pub extra: Vec<SignalStream>,
}

impl std::fmt::Debug for Injection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Injection")
            .field("summary", &self.summary)
            .field("scope", &self.scope)
            .field("extra", &self.extra.len())
            .finish()
    }
}

/// The behaviour every fault shares, and what the catalogue says of it.
///
/// Each fault declares its catalogue entry here, once: its key, summary,
/// story, signals and whether it heals by itself. `breakfix list`, the
/// validation of `expect.signals` and `recovery: selfHeal` all read these.
pub trait Fault {
    /// The fault's key under `spec.fault` (`imageTypo`); serde reads the
    /// same key (a test checks they agree).
    const KEY: &'static str;
    /// What the fault does to the cluster, and how it is undone.
    const SUMMARY: &'static str;
    /// The incident behind the fault.
    const STORY: &'static str;
    /// Signals that count as detection when the experiment names none
    /// (for a fault whose settings choose them, every one it may choose).
    const DEFAULT_SIGNALS: &'static [SignalKind];
    /// Every signal the fault can produce: what `expect.signals` may name.
    const SUPPORTED_SIGNALS: &'static [SignalKind];
    /// Whether Kubernetes heals the fault without a revert (`recovery: selfHeal`).
    const SELF_HEALING: bool = false;

    /// Signals that count as detection for these settings when the
    /// experiment names none; by default [`Fault::DEFAULT_SIGNALS`].
    fn default_signals(&self) -> &'static [SignalKind] {
        Self::DEFAULT_SIGNALS
    }
    /// The namespace the fault acts in.
    fn namespace(&self) -> Option<&str>;
    /// Checks that need more than types (mutually exclusive options, …).
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
    /// What the fault needs to itself while it is in (see [`Claim`]). The
    /// default: the namespace it acts in, or the whole cluster when it acts
    /// in a system namespace or on cluster-scoped objects.
    fn claims(&self) -> Vec<Claim> {
        vec![Claim::of_namespace(self.namespace())]
    }
    /// The objects the fault's settings name, which must exist when it is
    /// injected: `validate` looks for each in the baseline's manifests.
    fn objects(&self) -> Vec<Named> {
        Vec::new()
    }
    /// The canaries (pods by label selector) the fault's settings name.
    fn canaries(&self) -> Vec<NamedCanary> {
        Vec::new()
    }
    /// Breaks the cluster, journaling every undo first.
    fn inject(
        &self,
        ctx: &mut FaultContext<'_>,
    ) -> impl Future<Output = Result<Injection, FaultError>> + Send;
}

/// A Deployment, by namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DeploymentRef {
    /// The Deployment's namespace.
    pub namespace: crate::vocab::Name,
    /// The Deployment's name.
    pub deployment: crate::vocab::Name,
}

impl DeploymentRef {
    /// The Deployment as an object the fault names under `key`.
    pub fn named(&self, key: &'static str) -> Named {
        Named {
            key,
            kind: "Deployment".into(),
            namespace: Some(self.namespace.to_string()),
            name: self.deployment.to_string(),
        }
    }
}

/// An object a fault's settings name (its target, the Secret it takes
/// away, …), found by kind, namespace and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    /// The key under the fault that names it (`target`, `object`, `binding`).
    pub key: &'static str,
    /// Its kind (`Deployment`).
    pub kind: String,
    /// Absent for cluster-scoped objects, or where the file leaves it out.
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
}

/// A canary a fault's settings name: pods by label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedCanary {
    /// The key under the fault that names it (`workload`, `canary`).
    pub key: &'static str,
    /// The namespace of its pods.
    pub namespace: String,
    /// The label selector of its pods (`app=api-canary`).
    pub selector: String,
}

/// Declares the faults once: the [`FaultSpec`] enum (one variant per
/// fault, keyed in files by its camelCase name, which must be the fault's
/// [`Fault::KEY`]), its dispatch to [`Fault`], and the catalogue `breakfix
/// list` prints from each fault's declarations. Adding a fault means one
/// line here plus its module.
macro_rules! faults {
    ($($variant:ident($ty:ty);)+) => {
        /// The fault an experiment injects: exactly one key.
        #[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
        #[serde(rename_all = "camelCase")]
        pub enum FaultSpec {
            $(
                #[doc = concat!("The `", stringify!($variant), "` fault: [`", stringify!($ty), "`].")]
                $variant($ty),
            )+
        }

        macro_rules! dispatch {
            ($self:expr, $f:ident => $body:expr) => {
                match $self {
                    $(FaultSpec::$variant($f) => $body,)+
                }
            };
        }

        impl FaultSpec {
            /// The fault's key as written in files (`imageTypo`).
            pub fn kind(&self) -> &'static str {
                match self {
                    $(FaultSpec::$variant(_) => <$ty as Fault>::KEY,)+
                }
            }

            /// Every signal this fault can produce.
            pub fn supported_signals(&self) -> &'static [SignalKind] {
                match self {
                    $(FaultSpec::$variant(_) => <$ty as Fault>::SUPPORTED_SIGNALS,)+
                }
            }

            /// Whether Kubernetes heals this fault without a revert.
            pub fn can_self_heal(&self) -> bool {
                match self {
                    $(FaultSpec::$variant(_) => <$ty as Fault>::SELF_HEALING,)+
                }
            }
        }

        /// The fault catalogue, from each fault's declarations, in the
        /// order of [`FaultSpec`].
        pub fn catalogue() -> Vec<CatalogueEntry> {
            vec![$(CatalogueEntry::of::<$ty>(),)+]
        }
    };
}

faults! {
    ImageTypo(ImageTypo);
    ProbeMisconfig(ProbeMisconfig);
    MemorySqueeze(MemorySqueeze);
    RbacBindingDelete(RbacBindingDelete);
    MissingMount(MissingMount);
    PodKill(PodKill);
    CronJobStorm(CronJobStorm);
    SelectorMismatch(SelectorMismatch);
    NodeLoss(NodeLoss);
    Patch(PatchObject);
    Delete(DeleteObject);
    Scale(Scale);
}

impl FaultSpec {
    /// Signals that count as detection when the experiment names none.
    pub fn default_signals(&self) -> &'static [SignalKind] {
        dispatch!(self, f => f.default_signals())
    }

    /// The namespace the fault works in, when it has one.
    pub fn namespace(&self) -> Option<&str> {
        dispatch!(self, f => f.namespace())
    }

    /// Checks what serde cannot (ranges, combinations); the problem in words.
    pub fn validate(&self) -> Result<(), String> {
        dispatch!(self, f => f.validate())
    }

    /// The objects the fault's settings name ([`Fault::objects`]).
    pub fn objects(&self) -> Vec<Named> {
        dispatch!(self, f => f.objects())
    }

    /// The canaries the fault's settings name ([`Fault::canaries`]).
    pub fn canaries(&self) -> Vec<NamedCanary> {
        dispatch!(self, f => f.canaries())
    }

    /// What the fault needs to itself while it is in, sorted.
    pub fn claims(&self) -> Vec<Claim> {
        let mut claims = dispatch!(self, f => f.claims());
        claims.sort();
        claims.dedup();
        claims
    }

    /// Whether the fault touches something every workload shares (CoreDNS,
    /// cluster RBAC, nodes, scheduler capacity) and so must not run beside
    /// other experiments.
    pub fn is_cluster_scoped(&self) -> bool {
        self.claims().iter().any(|c| matches!(c, Claim::Shared(_)))
    }

    /// Injects the fault.
    pub async fn inject(&self, ctx: &mut FaultContext<'_>) -> Result<Injection, FaultError> {
        dispatch!(self, f => f.inject(ctx).await)
    }
}

/// Something a fault needs to itself while it is in. Two experiments may
/// run side by side only when their claims are disjoint, and a run holds a
/// Lease per claim so that two runs sharing a cluster never break, or apply
/// a baseline over, the same thing at once.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum Claim {
    /// Objects of one namespace: only experiments in that namespace collide.
    Namespace(String),
    /// Something every workload of the cluster depends on.
    Shared(SharedResource),
}

impl Claim {
    /// The claim of a fault acting in `namespace`: that namespace, or the
    /// whole cluster for a system namespace or cluster-scoped objects.
    pub fn of_namespace(namespace: Option<&str>) -> Self {
        match namespace {
            Some(ns) if !crate::vocab::is_system_namespace(ns) => Self::Namespace(ns.to_string()),
            _ => Self::Shared(SharedResource::Cluster),
        }
    }

    /// A short stable key, fit for an object name: `ns-shop`, `cluster-dns`.
    pub fn key(&self) -> String {
        match self {
            Self::Namespace(ns) => format!("ns-{ns}"),
            Self::Shared(r) => r.key().to_string(),
        }
    }
}

impl std::fmt::Display for Claim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Namespace(ns) => write!(f, "namespace {ns}"),
            Self::Shared(r) => f.write_str(r.describe()),
        }
    }
}

/// Cluster-wide things a fault can break for everyone.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum SharedResource {
    /// Cluster DNS (CoreDNS).
    ClusterDns,
    /// Nodes (a stopped node takes every pod on it).
    Nodes,
    /// Cluster-wide RBAC (ClusterRoleBindings).
    ClusterRbac,
    /// The nodes' room for pods (a storm of pods fills it).
    SchedulerCapacity,
    /// Objects in a system namespace or cluster-scoped ones, otherwise unnamed.
    Cluster,
}

impl SharedResource {
    /// A short stable key, fit for an object name.
    pub fn key(self) -> &'static str {
        match self {
            Self::ClusterDns => "cluster-dns",
            Self::Nodes => "nodes",
            Self::ClusterRbac => "cluster-rbac",
            Self::SchedulerCapacity => "scheduler-capacity",
            Self::Cluster => "cluster",
        }
    }

    /// What it is, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Self::ClusterDns => "cluster DNS",
            Self::Nodes => "the nodes",
            Self::ClusterRbac => "cluster-wide RBAC",
            Self::SchedulerCapacity => "the nodes' capacity for pods",
            Self::Cluster => "cluster-wide objects",
        }
    }
}

/// One fault of `breakfix list`, as the fault declares itself.
///
/// `signals` means one thing here and everywhere in the catalogue: every
/// signal the fault can produce, which `expect.signals` may name.
/// `default_signals` are those that count as detection when the experiment
/// names none.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CatalogueEntry {
    /// The key under `spec.fault`.
    pub fault: &'static str,
    /// What it does.
    pub what: &'static str,
    /// Every signal it can produce.
    pub signals: &'static [SignalKind],
    /// What counts as detection when `expect.signals` is empty.
    pub default_signals: &'static [SignalKind],
    /// Whether it heals by itself (`recovery: selfHeal`).
    pub self_healing: bool,
    /// The incident behind it.
    pub story: &'static str,
}

impl CatalogueEntry {
    /// The entry fault `F` declares.
    pub fn of<F: Fault>() -> Self {
        Self {
            fault: F::KEY,
            what: F::SUMMARY,
            signals: F::SUPPORTED_SIGNALS,
            default_signals: F::DEFAULT_SIGNALS,
            self_healing: F::SELF_HEALING,
            story: F::STORY,
        }
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    fn fault(yaml: &str) -> FaultSpec {
        serde_yaml::with::singleton_map::deserialize(serde_yaml::Deserializer::from_str(yaml))
            .unwrap_or_else(|e| panic!("{e}: {yaml}"))
    }

    #[rstest]
    #[case::image_typo_claims_its_namespace(
        "imageTypo: {target: {namespace: shop, deployment: web}, typo: tag}",
        &[Claim::Namespace("shop".into())]
    )]
    #[case::coredns_squeeze_claims_cluster_dns(
        "memorySqueeze: {target: {namespace: kube-system, deployment: coredns}, limit: 24Mi, load: {namespace: canaries}}",
        &[Claim::Namespace("canaries".into()), Claim::Shared(SharedResource::ClusterDns)]
    )]
    #[case::cluster_role_binding_is_cluster_rbac(
        "rbacBindingDelete: {binding: {kind: ClusterRoleBinding, name: reader}, workload: {namespace: canaries, selector: app=api-canary}}",
        &[Claim::Namespace("canaries".into()), Claim::Shared(SharedResource::ClusterRbac)]
    )]
    #[case::node_loss_claims_the_nodes(
        "nodeLoss: {target: {namespace: nodes, deployment: web}}",
        &[Claim::Shared(SharedResource::Nodes)])]
    #[case::storm_claims_scheduler_capacity(
        "cronJobStorm: {namespace: shop}",
        &[Claim::Namespace("shop".into()), Claim::Shared(SharedResource::SchedulerCapacity)]
    )]
    #[case::patch_in_kube_system_claims_the_cluster(
        "patch: {target: {apiVersion: v1, kind: ConfigMap, namespace: kube-system, name: x}, patch: {data: {a: b}}, watchNamespace: shop}",
        &[Claim::Shared(SharedResource::Cluster)]
    )]
    fn each_fault_claims_what_it_breaks(#[case] yaml: &str, #[case] claims: &[Claim]) {
        let f = fault(yaml);
        assert_eq!(f.claims(), claims);
        assert_eq!(
            f.is_cluster_scoped(),
            claims.iter().any(|c| matches!(c, Claim::Shared(_)))
        );
    }

    /// The keys serde reads under `spec.fault`, in variant order, from the
    /// JSON Schema it derives.
    fn serde_keys() -> Vec<String> {
        let schema = serde_json::to_value(schemars::schema_for!(FaultSpec)).expect("a schema");
        schema["oneOf"]
            .as_array()
            .expect("one schema per variant")
            .iter()
            .map(|v| {
                v["required"][0]
                    .as_str()
                    .expect("a single required key")
                    .to_string()
            })
            .collect()
    }

    #[test]
    fn the_key_serde_reads_is_the_key_each_fault_declares() {
        let declared: Vec<String> = catalogue().iter().map(|e| e.fault.to_string()).collect();
        assert_eq!(serde_keys(), declared);
    }

    #[test]
    fn defaults_are_signals_the_fault_can_produce() {
        for e in catalogue() {
            for s in e.default_signals {
                assert!(
                    e.signals.contains(s),
                    "{}: default {s} is not supported",
                    e.fault
                );
            }
        }
    }

    #[rstest]
    #[case("imageTypo: {target: {namespace: shop, deployment: web}, typo: tag}")]
    #[case("podKill: {target: {namespace: shop, deployment: web}}")]
    #[case(
        "probeMisconfig: {target: {namespace: shop, deployment: web}, mistake: readinessFailing}"
    )]
    #[case(
        "probeMisconfig: {target: {namespace: shop, deployment: web}, mistake: startupTooShort}"
    )]
    #[case("scale: {target: {namespace: shop, name: web}, replicas: 0}")]
    fn an_instance_reads_its_declarations(#[case] yaml: &str) {
        let f = fault(yaml);
        let entry = catalogue()
            .into_iter()
            .find(|e| e.fault == f.kind())
            .expect("in the catalogue");
        assert_eq!(f.supported_signals(), entry.signals);
        assert_eq!(f.can_self_heal(), entry.self_healing);
        for s in f.default_signals() {
            assert!(entry.default_signals.contains(s), "{yaml}: {s}");
        }
    }
}
