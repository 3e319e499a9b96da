//! What a run produced: per trial, per experiment and for the whole run.
//! These are the data every reporter renders.

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::partition::Partition;
use crate::detect::{Diagnosis, Observation};
use crate::journal::ClusterRecord;
use crate::slo::{Measurements, SloVerdict};
use crate::timeline::{Marks, Phase, Timeline};

/// Schema version of the JSON report (`schema` field); bumped on
/// incompatible changes. docs/report-schema.md documents it and
/// `breakfix schema --report` prints it as JSON Schema.
pub const REPORT_SCHEMA_VERSION: &str = "breakfix.dev/report/v1";

/// How an experiment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    /// Every SLO met.
    Passed,
    /// At least one SLO missed.
    Failed,
    /// The experiment could not be carried out (baseline never steady, API errors…).
    Error,
    /// Stopped by Ctrl-C; the fault was reverted.
    Interrupted,
}

/// One run of the fault.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrialReport {
    /// The trial's number, from 1.
    pub trial: u32,
    /// The trial's moments (injected, detected, reverted, recovered).
    pub marks: Marks,
    /// The first expected signal seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detection: Option<Observation>,
    /// What breakfix found to be the cause, when it detected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnosis: Option<Diagnosis>,
    /// What the fault broke, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub injected: Option<String>,
    /// What the availability, blast-radius and condition SLOs measured.
    #[serde(default, skip_serializing_if = "Measurements::is_empty")]
    pub measurements: Measurements,
    /// Everything that happened, in order.
    pub timeline: Timeline,
    /// The phase that failed and why, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<TrialError>,
    /// Whether a stop signal cut the trial short.
    pub interrupted: bool,
}

/// A phase that could not complete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrialError {
    /// The phase that failed.
    pub phase: Phase,
    /// Why.
    pub message: String,
    /// The cluster could not be observed while the phase ran (its API
    /// server did not answer): the trial measured nothing, so the
    /// experiment is an error, never a failed SLO.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unobserved: bool,
}

/// All trials of one experiment and the verdicts on them.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentReport {
    /// The experiment's name.
    pub name: String,
    /// The file it was loaded from.
    pub file: String,
    /// Its fault's catalogue key.
    pub fault: String,
    /// Its failure story.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub story: Option<String>,
    /// Its verdict.
    pub outcome: Outcome,
    /// Some SLO's per-trial verdict flipped between repeats.
    #[serde(default)]
    pub flaky: bool,
    /// Each SLO's verdict over the trials.
    pub slos: Vec<SloVerdict>,
    /// Each trial.
    pub trials: Vec<TrialReport>,
}

/// The whole run.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    /// `breakfix.dev/report/v1`.
    pub schema: String,
    /// The run's id (labels, journal).
    pub run_id: String,
    /// When the run started.
    pub started: Timestamp,
    /// When it finished.
    pub finished: Timestamp,
    /// The cluster it ran on.
    pub cluster: ClusterRecord,
    /// Each experiment, in file order.
    pub experiments: Vec<ExperimentReport>,
    /// The shard of the suite this run took (`run --partition`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<Partition>,
    /// For a report joined by `report merge`: the shard reports it holds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<ShardRecord>,
}

/// One shard report inside a merged report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShardRecord {
    /// The shard run's id.
    pub run_id: String,
    /// Which shard it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<Partition>,
    /// The cluster it ran on.
    pub cluster: ClusterRecord,
    /// When it started.
    pub started: Timestamp,
    /// When it finished.
    pub finished: Timestamp,
    /// How many experiments the shard ran.
    pub experiments: usize,
}

impl RunReport {
    /// The CLI exit code for this report: 0 all met, 1 an SLO missed or an
    /// experiment errored, 130 interrupted.
    pub fn exit_code(&self) -> i32 {
        if self
            .experiments
            .iter()
            .any(|e| e.outcome == Outcome::Interrupted)
        {
            130
        } else if self
            .experiments
            .iter()
            .all(|e| e.outcome == Outcome::Passed)
        {
            0
        } else {
            1
        }
    }
}

/// JSON Schema of the report (`breakfix schema --report`).
pub fn report_json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(RunReport)).unwrap_or_default()
}

impl ExperimentReport {
    /// The report of an experiment that could not be carried out at all
    /// (the run crashed while it ran): outcome `error`, no trials.
    pub fn errored(name: String, file: String, fault: String, message: String) -> Self {
        Self {
            name,
            file,
            fault,
            story: None,
            outcome: Outcome::Error,
            flaky: false,
            slos: Vec::new(),
            trials: vec![TrialReport {
                trial: 1,
                marks: Marks::default(),
                detection: None,
                diagnosis: None,
                injected: None,
                measurements: Measurements::default(),
                timeline: Timeline::default(),
                error: Some(TrialError {
                    phase: Phase::Cleanup,
                    message,
                    unobserved: false,
                }),
                interrupted: false,
            }],
        }
    }
}
