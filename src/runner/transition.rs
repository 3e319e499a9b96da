//! Transitions: a change the run makes on purpose and does not revert (the
//! head of a configuration applied over its base, a Kubernetes upgrade node
//! by node), measured like a fault.
//!
//! A [`Transition`] is a sequence of named steps. Each step is a window: the
//! canaries (every pod labelled `breakfix.dev/canary` in the watched
//! namespaces) are read as it starts and as it ends, and a blast-radius
//! watch records every workload that left steady state during it. Each
//! step's start and end land on the transition's timeline, and what it
//! measured lands in its [`StepReport`]. Nothing polls: canaries count their
//! own checks, and the blast radius comes from watches.
//!
//! ```no_run
//! # async fn example(client: kube::Client) -> Result<(), String> {
//! use breakfix::runner::transition::{Transition, TransitionSpec};
//!
//! let spec = TransitionSpec::namespaces(["shop"]);
//! let mut migration = Transition::new(client, "apply head", spec);
//! migration
//!     .step("apply", async { Ok::<_, String>(()) /* apply the new config */ })
//!     .await?;
//! let report = migration.finish();
//! println!("{} step(s)", report.steps.len());
//! # Ok(())
//! # }
//! ```

use std::fmt::Display;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use jiff::Timestamp;
use kube::Client;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::measure::availability::{self, Canary, CanaryRead};
use super::measure::blast_radius::BlastWatch;
use super::{EventSender, RunEvent};
use crate::detect::canary::DEFAULT_PORT;
use crate::experiment::slo::BlastRadiusSlo;
use crate::slo::measurement::{AvailabilityMeasurement, BlastRadiusMeasurement};
use crate::timeline::{Entry, EntryKind, Timeline};

/// The label every canary pod carries (its value is the canary's mode).
pub const CANARY_LABEL: &str = "breakfix.dev/canary";

/// What a transition is measured against.
#[derive(Debug, Clone)]
pub struct TransitionSpec {
    /// Namespaces whose canaries are read at each step's start and end.
    pub canary_namespaces: Vec<String>,
    /// Which workloads must stay steady; every namespace when empty.
    pub blast_radius: BlastRadiusSlo,
}

impl TransitionSpec {
    /// Canaries of `namespaces`, and the blast radius over every namespace.
    pub fn namespaces<I, S>(namespaces: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            canary_namespaces: namespaces.into_iter().map(Into::into).collect(),
            blast_radius: BlastRadiusSlo {
                namespaces: Vec::new(),
                workloads: Vec::new(),
                max_affected: 0,
            },
        }
    }
}

/// What one step of a transition did to the cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepReport {
    /// The step's name (`control-plane`, `node <name>` …).
    pub name: String,
    /// When it started.
    pub started: Timestamp,
    /// When it finished.
    pub finished: Timestamp,
    /// Per canary (namespace and mode): its checks during the step.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub availability: Vec<AvailabilityMeasurement>,
    /// Workloads that left steady state during the step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blast_radius: Option<BlastRadiusMeasurement>,
    /// Why the step failed, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl StepReport {
    /// The worst canary's success ratio during the step, if any was measured.
    pub fn worst_availability(&self) -> Option<f64> {
        self.availability
            .iter()
            .filter_map(AvailabilityMeasurement::ratio)
            .min_by(f64::total_cmp)
    }
}

/// A whole transition: its steps in order and its timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransitionReport {
    /// The transition's name.
    pub name: String,
    /// When it started.
    pub started: Timestamp,
    /// When it finished.
    pub finished: Timestamp,
    /// Its steps, in order.
    pub steps: Vec<StepReport>,
    /// Everything that happened, in order.
    pub timeline: Timeline,
}

impl TransitionReport {
    /// Whether every step completed.
    pub fn completed(&self) -> bool {
        self.steps.iter().all(|s| s.error.is_none())
    }
}

/// A transition in progress; see the module documentation.
pub struct Transition {
    client: Client,
    name: String,
    spec: TransitionSpec,
    started: Timestamp,
    steps: Vec<StepReport>,
    timeline: Timeline,
    events: Option<EventSender>,
    /// Notes taken through [`Notes`] handles, not yet on the timeline.
    pending: Arc<Mutex<Vec<Entry>>>,
}

/// A handle that puts notes on a transition's timeline while one of its
/// steps runs (the step holds the transition itself): a drain blocked by a
/// PodDisruptionBudget, a sub-step of a node's roll. Notes land on the
/// timeline stamped when they were taken, before the step's end.
#[derive(Clone)]
pub struct Notes {
    transition: String,
    pending: Arc<Mutex<Vec<Entry>>>,
    events: Option<EventSender>,
}

impl Notes {
    /// Notes `message` now.
    pub fn note(&self, message: impl Into<String>) {
        let entry = Entry {
            at: Timestamp::now(),
            kind: EntryKind::Note {
                message: message.into(),
            },
        };
        if let Some(tx) = &self.events {
            let _ = tx.send(RunEvent::Timeline {
                experiment: self.transition.clone(),
                trial: 0,
                entry: entry.clone(),
            });
        }
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(entry);
    }
}

impl Transition {
    /// Starts a transition named `name` (e.g. `upgrade v1.34.4 → v1.35.4`).
    pub fn new(client: Client, name: impl Into<String>, spec: TransitionSpec) -> Self {
        Self {
            client,
            name: name.into(),
            spec,
            started: Timestamp::now(),
            steps: Vec::new(),
            timeline: Timeline::default(),
            events: None,
            pending: Arc::default(),
        }
    }

    /// A handle for notes taken while a step runs; see [`Notes`].
    pub fn notes(&self) -> Notes {
        Notes {
            transition: self.name.clone(),
            pending: self.pending.clone(),
            events: self.events.clone(),
        }
    }

    /// Sends each timeline entry as a [`RunEvent::Timeline`] too.
    #[must_use]
    pub fn with_events(mut self, events: EventSender) -> Self {
        self.events = Some(events);
        self
    }

    /// Notes something on the timeline (a PDB blocking a drain, a version
    /// read back from the cluster).
    pub fn note(&mut self, message: impl Into<String>) {
        self.record(EntryKind::Note {
            message: message.into(),
        });
    }

    /// Runs `action` as the step `name`, measured: canaries are read right
    /// before it starts and right after it ends, and the blast radius is
    /// watched throughout. Returns what `action` returned; a failed step is
    /// recorded with its error and the transition goes on only if the
    /// caller goes on.
    ///
    /// # Errors
    ///
    /// The action's own error, unchanged.
    pub async fn step<T, E, F>(&mut self, name: &str, action: F) -> Result<T, E>
    where
        F: Future<Output = Result<T, E>>,
        E: Display,
    {
        let canaries = self.canaries();
        let blast = BlastWatch::start(&self.client, &self.spec.blast_radius).await;
        let before = read_all(&self.client, &canaries).await;
        let started = self
            .record(EntryKind::StepStarted {
                step: name.to_string(),
            })
            .at;
        let result = action.await;
        let error = result.as_ref().err().map(ToString::to_string);
        let after = read_all(&self.client, &canaries).await;
        let finished = self
            .record(EntryKind::StepFinished {
                step: name.to_string(),
                error: error.clone(),
            })
            .at;
        // A namespace without a canary of some mode has nothing to say about it.
        let availability = canaries
            .iter()
            .zip(before.iter().zip(after.iter()))
            .filter(|(_, (first, second))| {
                first.error.is_some()
                    || second.error.is_some()
                    || !first.pods.is_empty()
                    || !second.pods.is_empty()
            })
            .map(|(canary, (first, second))| availability::window(&canary.label(), first, second))
            .collect();
        let blast_radius = Some(blast.finish(&[], &[], started, finished).await);
        self.steps.push(StepReport {
            name: name.to_string(),
            started,
            finished,
            availability,
            blast_radius,
            error,
        });
        result
    }

    /// The steps measured so far, in order.
    pub fn steps(&self) -> &[StepReport] {
        &self.steps
    }

    /// Ends the transition and returns its report.
    pub fn finish(mut self) -> TransitionReport {
        self.take_pending();
        TransitionReport {
            name: self.name,
            started: self.started,
            finished: Timestamp::now(),
            steps: self.steps,
            timeline: self.timeline,
        }
    }

    /// One canary per namespace and mode: `breakfix.dev/canary=http -n shop`.
    fn canaries(&self) -> Vec<Canary> {
        self.spec
            .canary_namespaces
            .iter()
            .flat_map(|ns| {
                ["http", "dns", "api"].map(|mode| Canary {
                    namespace: ns.clone(),
                    selector: format!("{CANARY_LABEL}={mode}"),
                    port: DEFAULT_PORT,
                })
            })
            .collect()
    }

    /// Moves notes taken through [`Notes`] onto the timeline.
    fn take_pending(&mut self) {
        let notes =
            std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner));
        self.timeline.entries.extend(notes);
    }

    fn record(&mut self, kind: EntryKind) -> Entry {
        self.take_pending();
        let entry = self.timeline.push(kind);
        if let Some(tx) = &self.events {
            let _ = tx.send(RunEvent::Timeline {
                experiment: self.name.clone(),
                trial: 0,
                entry: entry.clone(),
            });
        }
        entry
    }
}

async fn read_all(client: &Client, canaries: &[Canary]) -> Vec<CanaryRead> {
    futures::future::join_all(canaries.iter().map(|c| c.read(client))).await
}
