//! breakfix: turn Kubernetes failure stories into repeatable experiments.
//!
//! An [`Experiment`] names a baseline (manifests plus a declared steady
//! state), a [`FaultSpec`] and SLOs. A [`Runner`] applies the baseline on a
//! cluster ([`cluster`], [`baseline`]), waits for steady state, journals and
//! injects the fault ([`journal`], [`fault`]), watches the cluster until the
//! expected signal shows ([`detect`]), reverts, waits for recovery, and
//! judges the run against its SLOs ([`slo`]). Every step lands on one
//! [`timeline`]; the [`report`] module renders the [`RunReport`].
//!
//! The modules import one way only, from the vocabulary up:
//! [`vocab`]/[`state`] → [`kobj`] → [`journal`] → [`detect`] → [`baseline`]/[`fault`]
//! → [`experiment`]/[`cluster`] → [`timeline`] → [`slo`] → [`runner`] →
//! [`compare`] → [`report`] → [`diff`]/[`gameday`]; the command line sits on top and
//! the library works without it. Modules of one layer never import each
//! other; `tests/layering.rs` (run by `just lint`) fails on any import that
//! breaks the order. A [`gameday::GameDay`] plays an experiment with people
//! instead of reverting it by itself.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let client = kube::Client::try_default().await?;
//! let experiment = breakfix::load_experiment("experiments/pod-kill.yaml".as_ref())
//!     .map_err(|problems| format!("{} problem(s) in the file", problems.len()))?;
//! let report = breakfix::Runner::builder(client).build()?.run(&[experiment]).await;
//! println!("{}", breakfix::report::summary(&report));
//! # Ok(())
//! # }
//! ```

// Every public item says what it is and why; `just lint` (clippy with
// -D warnings) turns a missing doc comment into an error.
#![warn(missing_docs)]

pub mod baseline;
pub mod cluster;
pub mod compare;
pub mod detect;
pub mod diff;
pub mod experiment;
pub mod fault;
pub mod gameday;
pub mod journal;
pub mod kobj;
pub mod lease;
pub mod report;
pub mod runner;
pub mod slo;
pub mod state;
pub mod timeline;
pub mod vocab;

#[cfg(feature = "testkit")]
pub mod testkit;

pub use baseline::LoadedBaseline;
pub use detect::ExpectedSignals;
pub use experiment::{Experiment, LoadedExperiment, SloSpec, load_experiment};
pub use fault::FaultSpec;
pub use journal::ClusterRecord;
pub use runner::{
    ExperimentReport, Outcome, RunEvent, RunReport, Runner, RunnerBuilder, RunnerError,
};
pub use vocab::{
    Diagnostic, FIELD_MANAGER, HumanDuration, MANAGED_LABEL, Name, RUN_LABEL, SignalKind,
};
