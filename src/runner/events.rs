//! The event stream a run emits. The runner never formats output; reporters
//! (progress bars, logs, files) consume these.

use crate::fault::SharedResource;
use crate::timeline::{Entry, Phase};

use super::outcome::{ExperimentReport, TrialReport};
use super::schedule::Placement;

/// Something that happened during a run.
#[derive(Debug, Clone)]
pub enum RunEvent {
    /// Before anything runs: how many at once, why, and where each
    /// experiment goes.
    Planned {
        /// How many experiments run at once.
        jobs: u32,
        /// Why that many (`as asked`, or what the cluster can hold).
        why: String,
        /// Where each experiment goes, in file order.
        experiments: Vec<Placed>,
    },
    /// An experiment's first trial is about to start.
    ExperimentStarted {
        /// The experiment.
        experiment: String,
        /// How many trials it runs.
        trials: u32,
    },
    /// A trial entered a phase.
    PhaseStarted {
        /// The experiment.
        experiment: String,
        /// The trial, from 1.
        trial: u32,
        /// The phase.
        phase: Phase,
    },
    /// A trial's timeline got an entry.
    Timeline {
        /// The experiment.
        experiment: String,
        /// The trial, from 1.
        trial: u32,
        /// The entry.
        entry: Entry,
    },
    /// A trial ended.
    TrialFinished {
        /// The experiment.
        experiment: String,
        /// The trial's report.
        report: Box<TrialReport>,
    },
    /// An experiment's trials all ended and it has a verdict.
    ExperimentFinished {
        /// The experiment's report.
        report: Box<ExperimentReport>,
    },
    /// Something about the run as a whole worth a line of progress (the
    /// baselines being deleted, a wait for another run's claim).
    Note {
        /// The line.
        message: String,
    },
}

/// Where the runner sends events. Dropped events (no listener) are fine.
pub type EventSender = tokio::sync::mpsc::UnboundedSender<RunEvent>;

/// Where one experiment goes in the run, as the plan says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    /// The experiment.
    pub experiment: String,
    /// The shared resources it claims; non-empty means it runs alone.
    pub alone: Vec<SharedResource>,
    /// Runs on instances of its baseline, one per trial.
    pub instances: bool,
    /// Why it runs in its baseline's own namespace although instances were
    /// asked for.
    pub in_place: Option<String>,
}

impl From<&Placement> for Placed {
    fn from(p: &Placement) -> Self {
        Self {
            experiment: p.experiment.clone(),
            alone: p.alone.clone(),
            instances: p.instances,
            in_place: p.in_place.clone(),
        }
    }
}
