//! The event stream a run emits. The runner never formats output; reporters
//! (progress bars, logs, files) consume these.

use crate::timeline::{Entry, Phase};

use super::outcome::{ExperimentReport, TrialReport};

/// Something that happened during a run.
#[derive(Debug, Clone)]
pub enum RunEvent {
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
}

/// Where the runner sends events. Dropped events (no listener) are fine.
pub type EventSender = tokio::sync::mpsc::UnboundedSender<RunEvent>;
