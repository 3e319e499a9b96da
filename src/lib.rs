//! breakfix: turn Kubernetes failure stories into repeatable experiments.
//!
//! An [`experiment::Experiment`] names a baseline (manifests plus a declared
//! steady state), a [`fault::FaultSpec`] and SLOs. The [`runner`] creates or
//! reuses a cluster ([`cluster`]), applies the baseline ([`baseline`]), waits
//! for steady state, journals and injects the fault ([`journal`], [`fault`]),
//! watches the cluster until the expected signal shows ([`detect`]), reverts,
//! waits for recovery, and judges the run against its SLOs ([`slo`]). Every
//! step lands on one [`timeline`] that the [`report`] module renders.
//!
//! The library is usable without the CLI: see [`runner::Runner`].

pub mod baseline;
pub mod cluster;
pub mod detect;
pub mod experiment;
pub mod fault;
pub mod journal;
pub mod kobj;
pub mod report;
pub mod runner;
pub mod slo;
pub mod timeline;

#[cfg(feature = "testkit")]
pub mod testkit;

/// Field manager used for every server-side apply and patch breakfix makes.
pub const FIELD_MANAGER: &str = "breakfix";
/// Label carried by every object breakfix creates, valued with the run id.
pub const RUN_LABEL: &str = "breakfix.dev/run";
/// Label marking objects that belong to breakfix (value: `true`).
pub const MANAGED_LABEL: &str = "app.kubernetes.io/managed-by";
