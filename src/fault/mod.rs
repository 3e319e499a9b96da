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

use crate::detect::{Scope, SignalKind, SignalStream};
use crate::journal::JournalError;
use crate::kobj::ObjectError;
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
    #[error(transparent)]
    Object(#[from] ObjectError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("{0}")]
    Target(String),
    #[error("cannot decode {what}: {detail}")]
    Decode { what: String, detail: String },
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

/// The behaviour every fault shares.
pub trait Fault {
    /// Signals that count as detection when the experiment names none.
    fn default_signals(&self) -> &'static [SignalKind];
    /// Every signal this fault can produce.
    fn supported_signals(&self) -> &'static [SignalKind];
    /// The namespace the fault acts in.
    fn namespace(&self) -> Option<&str>;
    /// Checks that need more than types (mutually exclusive options, …).
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
    /// Whether Kubernetes heals this fault without a revert.
    fn can_self_heal(&self) -> bool {
        false
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
    pub namespace: crate::experiment::Name,
    pub deployment: crate::experiment::Name,
}

/// Declares the fault catalogue once: the [`FaultSpec`] enum (one variant
/// per fault, keyed in files by its camelCase name), its dispatch to
/// [`Fault`], and the catalogue `breakfix list` prints. Adding a fault means
/// one line here plus its module.
macro_rules! faults {
    ($($variant:ident($ty:ty) => $key:literal, $entry:path;)+) => {
        /// The fault an experiment injects: exactly one key.
        #[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
        #[serde(rename_all = "camelCase")]
        pub enum FaultSpec {
            $($variant($ty),)+
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
                    $(FaultSpec::$variant(_) => $key,)+
                }
            }
        }

        /// The fault catalogue, with the failure story behind each fault.
        pub fn catalogue() -> Vec<CatalogueEntry> {
            vec![$($entry,)+]
        }
    };
}

faults! {
    ImageTypo(ImageTypo) => "imageTypo", image_typo::CATALOGUE;
    ProbeMisconfig(ProbeMisconfig) => "probeMisconfig", probe_misconfig::CATALOGUE;
    MemorySqueeze(MemorySqueeze) => "memorySqueeze", memory_squeeze::CATALOGUE;
    RbacBindingDelete(RbacBindingDelete) => "rbacBindingDelete", rbac_binding_delete::CATALOGUE;
    MissingMount(MissingMount) => "missingMount", missing_mount::CATALOGUE;
    PodKill(PodKill) => "podKill", pod_kill::CATALOGUE;
    CronJobStorm(CronJobStorm) => "cronJobStorm", cron_job_storm::CATALOGUE;
    SelectorMismatch(SelectorMismatch) => "selectorMismatch", selector_mismatch::CATALOGUE;
    NodeLoss(NodeLoss) => "nodeLoss", node_loss::CATALOGUE;
    Patch(PatchObject) => "patch", patch::CATALOGUE;
    Delete(DeleteObject) => "delete", delete::CATALOGUE;
    Scale(Scale) => "scale", scale::CATALOGUE;
}

impl FaultSpec {
    pub fn default_signals(&self) -> &'static [SignalKind] {
        dispatch!(self, f => f.default_signals())
    }

    pub fn supported_signals(&self) -> &'static [SignalKind] {
        dispatch!(self, f => f.supported_signals())
    }

    pub fn namespace(&self) -> Option<&str> {
        dispatch!(self, f => f.namespace())
    }

    pub fn validate(&self) -> Result<(), String> {
        dispatch!(self, f => f.validate())
    }

    pub fn can_self_heal(&self) -> bool {
        dispatch!(self, f => f.can_self_heal())
    }

    /// Whether the fault touches cluster-wide services (CoreDNS, cluster RBAC,
    /// nodes) and so must not run beside other experiments.
    pub fn is_cluster_scoped(&self) -> bool {
        self.namespace()
            .is_none_or(crate::experiment::is_system_namespace)
    }

    /// Injects the fault.
    pub async fn inject(&self, ctx: &mut FaultContext<'_>) -> Result<Injection, FaultError> {
        dispatch!(self, f => f.inject(ctx).await)
    }
}

/// One row of `breakfix list`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CatalogueEntry {
    pub fault: &'static str,
    pub what: &'static str,
    pub signals: &'static [SignalKind],
    pub story: &'static str,
}
