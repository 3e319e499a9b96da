//! The whole of `breakfix upgrade`, as a library call: the experiments on
//! the cluster at the old version (the "before" report), the upgrade with
//! the baselines kept running through it, then the same experiments again
//! (the "after" report). Comparing the two reports is the caller's (the
//! `compare` module sits above the runner).

use std::collections::BTreeSet;
use std::time::Duration;

use jiff::Timestamp;
use kube::Client;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::{Upgrade, UpgradeConfig, UpgradeOutcome, UpgradeReport};
use crate::baseline::steady::SteadyState;
use crate::baseline::{LoadedBaseline, apply_baseline, delete_baseline};
use crate::experiment::LoadedExperiment;
use crate::experiment::slo::{BlastRadiusSlo, NamespaceSelector};
use crate::runner::transition::TransitionSpec;
use crate::runner::{EventSender, RunReport, Runner, RunnerError};

/// Version of [`UpgradeRunReport`]'s JSON.
pub const UPGRADE_REPORT_SCHEMA: &str = "breakfix.dev/upgrade-report/v1";

/// How long the plan's own baselines may take to become steady.
const PLAN_STEADY_TIMEOUT: Duration = Duration::from_secs(300);

/// The suite before, the upgrade, the suite after.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeRunReport {
    /// [`UPGRADE_REPORT_SCHEMA`].
    pub schema: String,
    /// The run's id.
    pub run_id: String,
    /// When it started.
    pub started: Timestamp,
    /// When it finished.
    pub finished: Timestamp,
    /// The experiments on the old version; `None` when none were given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<RunReport>,
    /// `None` when the run stopped before the upgrade began (the plan's
    /// baselines never became steady, or it was interrupted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade: Option<UpgradeReport>,
    /// The same experiments on the new version; only after an upgrade that
    /// completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<RunReport>,
    /// Why the run stopped early, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An upgrade run ready to go; see the module documentation.
pub struct UpgradeRun {
    /// A client for the cluster.
    pub client: Client,
    /// Drains the nodes: a client that does not retry 429 answers
    /// (`cluster::client_without_retry`).
    pub evictions: Client,
    /// What to upgrade and how it is judged.
    pub config: UpgradeConfig,
    /// The experiments run before and after the upgrade.
    pub experiments: Vec<LoadedExperiment>,
    /// The plan's own baselines, applied first and kept up throughout.
    pub baselines: Vec<LoadedBaseline>,
    /// How many trials each experiment runs, when not the default.
    pub repeat: Option<u32>,
    /// Where progress events go, if anywhere.
    pub events: Option<EventSender>,
    /// Stops the run (reverting first).
    pub cancel: CancellationToken,
}

impl UpgradeRun {
    /// Runs it; see the module documentation. The baselines are deleted at
    /// the end only when the upgrade completed: after a failure the cluster
    /// is left as it was, for inspection.
    ///
    /// # Errors
    ///
    /// The runner's journal could not be created (nothing was touched).
    pub async fn run(self) -> Result<UpgradeRunReport, RunnerError> {
        let started = Timestamp::now();
        let run_id = self.config.run_id.clone();
        let mut report = UpgradeRunReport {
            schema: UPGRADE_REPORT_SCHEMA.into(),
            run_id: run_id.clone(),
            started,
            finished: started,
            before: None,
            upgrade: None,
            after: None,
            error: None,
        };
        let mut applied = Vec::new();
        for b in &self.baselines {
            let objects = match apply_baseline(&self.client, b, &run_id).await {
                Ok(objects) => objects,
                Err(e) => {
                    report.error = Some(format!("baseline {}: {e}", b.name()));
                    return Ok(finish(report));
                }
            };
            applied.push(objects);
            let steady = SteadyState::for_baseline(b);
            tokio::select! {
                r = steady.wait_steady(&self.client, PLAN_STEADY_TIMEOUT) => if let Err(e) = r {
                    report.error = Some(format!("baseline {} never became steady: {e}", b.name()));
                    return Ok(finish(report));
                },
                () = self.cancel.cancelled() => {
                    report.error = Some("interrupted before the upgrade".into());
                    return Ok(finish(report));
                }
            }
        }
        if !self.experiments.is_empty() {
            let before = self
                .runner(&format!("{run_id}-before"), true)?
                .run(&self.experiments)
                .await;
            report.before = Some(before);
        }
        if self.cancel.is_cancelled() {
            report.error = Some("interrupted before the upgrade".into());
            return Ok(finish(report));
        }

        let mut config = self.config.clone();
        config.spec = transition_spec(&self.baselines, &self.experiments);
        let mut upgrade = Upgrade::new(self.client.clone(), self.evictions.clone(), config)
            .cancel(self.cancel.clone());
        if let Some(tx) = &self.events {
            upgrade = upgrade.events(tx.clone());
        }
        let done = upgrade.run().await;
        let upgraded = done.outcome == UpgradeOutcome::Upgraded;
        report.upgrade = Some(done);
        if !upgraded || self.cancel.is_cancelled() {
            return Ok(finish(report));
        }

        if !self.experiments.is_empty() {
            let after = self
                .runner(&format!("{run_id}-after"), false)?
                .run(&self.experiments)
                .await;
            report.after = Some(after);
        }
        for objects in applied.iter().rev() {
            if let Err(e) = delete_baseline(&self.client, objects).await {
                tracing::warn!("baseline cleanup: {e}");
            }
        }
        Ok(finish(report))
    }

    fn runner(&self, run_id: &str, keep_baselines: bool) -> Result<Runner, RunnerError> {
        let mut builder = Runner::builder(self.client.clone())
            .cluster(self.config.cluster_record.clone())
            .journal_dir(&self.config.journal_dir)
            .run_id(run_id)
            .cancel(self.cancel.clone())
            .keep_baselines(keep_baselines);
        if let Some(tx) = &self.events {
            builder = builder.events(tx.clone());
        }
        if let Some(n) = self.repeat {
            builder = builder.repeat(n);
        }
        builder.build()
    }
}

fn finish(mut report: UpgradeRunReport) -> UpgradeRunReport {
    report.finished = Timestamp::now();
    report
}

/// What the upgrade's steps measure: the canaries of every baseline's
/// namespace, and the blast radius over those namespaces (the upgrade's own
/// rollouts in kube-system are the upgrade, not its blast radius).
pub fn transition_spec(
    baselines: &[LoadedBaseline],
    experiments: &[LoadedExperiment],
) -> TransitionSpec {
    let namespaces: BTreeSet<_> = baselines
        .iter()
        .chain(experiments.iter().map(|e| &e.baseline))
        .map(|b| b.spec.namespace.clone())
        .collect();
    TransitionSpec {
        canary_namespaces: namespaces.iter().map(ToString::to_string).collect(),
        blast_radius: BlastRadiusSlo {
            namespaces: namespaces.iter().map(NamespaceSelector::named).collect(),
            workloads: Vec::new(),
            max_affected: 0,
        },
    }
}
