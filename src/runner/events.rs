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
        jobs: u32,
        /// Why that many (`as asked`, or what the cluster can hold).
        why: String,
        experiments: Vec<Placed>,
    },
    ExperimentStarted {
        experiment: String,
        trials: u32,
    },
    PhaseStarted {
        experiment: String,
        trial: u32,
        phase: Phase,
    },
    Timeline {
        experiment: String,
        trial: u32,
        entry: Entry,
    },
    TrialFinished {
        experiment: String,
        report: Box<TrialReport>,
    },
    ExperimentFinished {
        report: Box<ExperimentReport>,
    },
    /// Something about the run as a whole worth a line of progress (the
    /// baselines being deleted, a wait for another run's claim).
    Note {
        message: String,
    },
}

/// Where the runner sends events. Dropped events (no listener) are fine.
pub type EventSender = tokio::sync::mpsc::UnboundedSender<RunEvent>;

/// Where one experiment goes in the run, as the plan says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
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
