//! Configuration diffs: the same experiments on a pull request's base and
//! head, and the migration between them measured like a fault.
//!
//! ```text
//! cluster ─► config@base ─► steady ─► experiments (before)
//!         ─► migration: config@head applied over base, pruned, rolled out
//!            (canaries, blast radius, rollout time, pods never ready)
//!         ─► experiments (after) ─► compare(before, after) ─► DiffReport
//! ```
//!
//! The two versions come from git ([`git`]); the comparison is
//! [`crate::compare`]'s. A regression is an SLO newly missed or worse beyond
//! the noise, a signal gone, or a migration that broke something (a canary
//! below [`DiffOptions::migration_availability`] during the rollout, pods
//! that never became ready, head objects the API server refused). Harness
//! trouble (an experiment that could not run, an API timeout) is an error,
//! never a finding, and is retried ([`DiffOptions::retries`]).
//!
//! ```no_run
//! # async fn example(client: kube::Client, base: Vec<breakfix::experiment::LoadedExperiment>,
//! #                  head: Vec<breakfix::experiment::LoadedExperiment>) {
//! use breakfix::diff::{DiffOptions, Sides, run_diff};
//! let sides = Sides { base: &base, head: &head, base_label: "origin/main".into(), head_label: "work tree".into() };
//! let report = run_diff(client, sides, &DiffOptions::default()).await;
//! std::process::exit(report.exit_code());
//! # }
//! ```

pub mod git;
pub mod markdown;
pub mod select;

use std::collections::BTreeSet;
use std::time::Duration;

use jiff::Timestamp;
use kube::Client;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::baseline::{LoadedBaseline, SteadyState, apply_baseline, delete_baseline};
use crate::compare::{self, Change, CompareOptions, Comparison};
use crate::experiment::LoadedExperiment;
use crate::journal::ClusterRecord;
use crate::kobj::{self, ObjectRef};
use crate::runner::transition::{Transition, TransitionReport, TransitionSpec};
use crate::runner::{EventSender, Outcome, RunReport, Runner};
pub use select::{Selection, select};

/// Schema version of the JSON diff report (`schema` field).
pub const DIFF_SCHEMA_VERSION: &str = "breakfix.dev/diff/v1";

/// How a diff runs.
#[derive(Debug, Clone)]
pub struct DiffOptions {
    /// Overrides every experiment's `repeat` on both sides.
    pub repeat: Option<u32>,
    /// Run only experiments whose file or baseline objects the change touches.
    pub changed_only: bool,
    /// How many times an experiment that errored (harness trouble, not an
    /// SLO) is run again.
    pub retries: u32,
    /// A canary below this success ratio during the migration is a regression.
    pub migration_availability: f64,
    /// The thresholds the two runs are compared with.
    pub compare: CompareOptions,
    /// The cluster both runs use, as journals name it.
    pub cluster: Option<ClusterRecord>,
    /// Where the runs' journals go (breakfix's default when `None`).
    pub journal_dir: Option<std::path::PathBuf>,
    /// Where progress events go, if anywhere.
    pub events: Option<EventSender>,
    /// Cancels both runs (they revert first).
    pub cancel: CancellationToken,
}

impl Default for DiffOptions {
    fn default() -> Self {
        Self {
            repeat: None,
            changed_only: false,
            retries: 0,
            migration_availability: 0.99,
            compare: CompareOptions::default(),
            cluster: None,
            journal_dir: None,
            events: None,
            cancel: CancellationToken::new(),
        }
    }
}

/// The experiments of both versions, loaded from their checkouts.
pub struct Sides<'a> {
    /// The experiments as the base revision has them.
    pub base: &'a [LoadedExperiment],
    /// The experiments as the head revision has them.
    pub head: &'a [LoadedExperiment],
    /// How reports name the versions (`origin/main`, `work tree`).
    pub base_label: String,
    /// How reports name the head revision.
    pub head_label: String,
}

/// One version of the configuration, as the report names it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Version {
    /// How reports name the revision (a ref or commit).
    pub label: String,
    /// The commit, when it came from git.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The work tree had uncommitted changes (they are part of the head).
    #[serde(default)]
    pub dirty: bool,
}

/// One baseline's migration from base to head.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BaselineMigration {
    /// The baseline's name.
    pub baseline: String,
    /// Objects of the base that the head no longer has, deleted.
    pub pruned: Vec<String>,
    /// From applying the head until every workload was rolled out and
    /// available again, in seconds; `None` when it never was.
    pub rollout_seconds: Option<f64>,
    /// What never became ready, when the rollout did not finish.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_ready: Option<String>,
    /// The worst canary's success ratio during the rollout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worst_availability: Option<f64>,
    /// Workloads that left steady state during the migration.
    pub disturbed: Vec<String>,
}

/// The migration: every baseline's head applied over its base.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Migration {
    /// Each baseline moved from base to head.
    pub baselines: Vec<BaselineMigration>,
    /// Regressions the migration itself showed, one line each.
    pub regressions: Vec<String>,
    /// The steps as measured (canaries and blast radius per step).
    pub transition: TransitionReport,
}

/// An experiment run again because it errored.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Retry {
    /// `base` or `head`.
    pub side: String,
    /// The experiment run again.
    pub experiment: String,
    /// Runs in all, the first included.
    pub attempts: u32,
    /// Whether the last attempt still errored.
    pub still_error: bool,
}

/// The whole diff.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DiffReport {
    /// `breakfix.dev/diff/v1`.
    pub schema: String,
    /// When the diff started.
    pub started: Timestamp,
    /// When it finished.
    pub finished: Timestamp,
    /// The base revision.
    pub base: Version,
    /// The head revision.
    pub head: Version,
    /// Which experiments ran and why; skipped ones say why not.
    pub selection: Vec<Selection>,
    /// The experiments' run on the base revision.
    pub before: RunReport,
    /// The migration from base to head, measured, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration: Option<Migration>,
    /// The experiments' run on the head revision.
    pub after: RunReport,
    /// The two runs compared.
    pub comparison: Comparison,
    /// Experiments run again because their first result looked like noise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retries: Vec<Retry>,
    /// Harness trouble outside any experiment (not findings).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

impl DiffReport {
    /// Every regression, one line each: the migration's first.
    pub fn regressions(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .migration
            .iter()
            .flat_map(|m| m.regressions.iter().cloned())
            .collect();
        out.extend(
            self.comparison
                .experiments
                .iter()
                .filter(|e| e.change == Change::Regression)
                .map(|e| format!("{}: {}", e.name, e.reasons.join("; "))),
        );
        out
    }

    /// Harness trouble: errors outside experiments, and experiments that
    /// could not be compared because they errored on a side.
    pub fn harness_errors(&self) -> Vec<String> {
        let mut out = self.errors.clone();
        out.extend(
            self.comparison
                .experiments
                .iter()
                .filter(|e| e.change == Change::Error)
                .map(|e| format!("{}: {}", e.name, e.reasons.join("; "))),
        );
        out
    }

    /// 1 on a regression (whatever else happened), 130 when interrupted,
    /// 2 when the harness had trouble and nothing regressed, else 0.
    pub fn exit_code(&self) -> i32 {
        if !self.regressions().is_empty() {
            1
        } else if [&self.before, &self.after].iter().any(|r| {
            r.experiments
                .iter()
                .any(|e| e.outcome == Outcome::Interrupted)
        }) {
            130
        } else if !self.harness_errors().is_empty() {
            2
        } else {
            0
        }
    }
}

/// Runs the diff on the cluster `client` talks to (fresh, with nothing of
/// either version applied): base experiments, the migration, head
/// experiments, the comparison. Every fault is reverted whatever happens;
/// what either version applied is deleted at the end.
pub async fn run_diff(client: Client, sides: Sides<'_>, options: &DiffOptions) -> DiffReport {
    let started = Timestamp::now();
    let run_id = crate::runner::new_run_id();
    let selection = select(sides.base, sides.head, options.changed_only);
    let chosen: BTreeSet<&str> = selection
        .iter()
        .filter(|s| s.run)
        .map(|s| s.experiment.as_str())
        .collect();
    let base: Vec<LoadedExperiment> = pick(sides.base, &chosen);
    let head: Vec<LoadedExperiment> = pick(sides.head, &chosen);
    let mut trouble = Trouble::default();

    let before = run_side(
        &client,
        "base",
        &format!("{run_id}-base"),
        &base,
        true,
        options,
        &mut trouble,
    )
    .await;
    let migration = if options.cancel.is_cancelled() {
        None
    } else {
        Some(
            migrate(
                &client,
                &format!("{run_id}-head"),
                &base,
                &head,
                options,
                &mut trouble.errors,
            )
            .await,
        )
    };
    let after = if options.cancel.is_cancelled() {
        run_side(
            &client,
            "head",
            &format!("{run_id}-head"),
            &[],
            false,
            options,
            &mut trouble,
        )
        .await
    } else {
        run_side(
            &client,
            "head",
            &format!("{run_id}-head"),
            &head,
            false,
            options,
            &mut trouble,
        )
        .await
    };
    // What the base applied and the head does not name again is left over.
    cleanup_base(&client, &base, &head).await;

    let comparison = match compare::compare(&before, &after, &options.compare) {
        Ok(c) => c,
        Err(e) => {
            trouble.errors.push(format!("comparing: {e}"));
            empty_comparison(&before, &after, &options.compare)
        }
    }
    .with_labels(sides.base_label.clone(), sides.head_label.clone());
    DiffReport {
        schema: DIFF_SCHEMA_VERSION.into(),
        started,
        finished: Timestamp::now(),
        base: Version {
            label: sides.base_label,
            commit: None,
            dirty: false,
        },
        head: Version {
            label: sides.head_label,
            commit: None,
            dirty: false,
        },
        selection,
        before,
        migration,
        after,
        comparison,
        retries: trouble.retries,
        errors: trouble.errors,
    }
}

fn pick(experiments: &[LoadedExperiment], chosen: &BTreeSet<&str>) -> Vec<LoadedExperiment> {
    experiments
        .iter()
        .filter(|e| chosen.contains(e.name()))
        .cloned()
        .collect()
}

fn empty_comparison(before: &RunReport, after: &RunReport, options: &CompareOptions) -> Comparison {
    let mut b = before.clone();
    let mut a = after.clone();
    b.experiments.clear();
    a.experiments.clear();
    let lenient = CompareOptions::default();
    compare::compare(&b, &a, &lenient)
        .or_else(|_| compare::compare(&b, &a, options))
        .unwrap_or_else(|_| unreachable_comparison(&b, &a))
}

/// Only reached if the default options were invalid, which a test forbids.
fn unreachable_comparison(before: &RunReport, after: &RunReport) -> Comparison {
    Comparison {
        schema: compare::COMPARISON_SCHEMA_VERSION.into(),
        before: compare::RunInfo {
            label: before.run_id.clone(),
            run_id: before.run_id.clone(),
            cluster: before.cluster.clone(),
            started: before.started,
            finished: before.finished,
            experiments: 0,
        },
        after: compare::RunInfo {
            label: after.run_id.clone(),
            run_id: after.run_id.clone(),
            cluster: after.cluster.clone(),
            started: after.started,
            finished: after.finished,
            experiments: 0,
        },
        options: CompareOptions::default(),
        experiments: Vec::new(),
    }
}

/// Harness trouble collected along the diff.
#[derive(Default)]
struct Trouble {
    retries: Vec<Retry>,
    errors: Vec<String>,
}

/// Runs one side's experiments, then again each one that errored, up to
/// `options.retries` times; the last attempt's report stands.
async fn run_side(
    client: &Client,
    side: &str,
    run_id: &str,
    experiments: &[LoadedExperiment],
    keep: bool,
    options: &DiffOptions,
    trouble: &mut Trouble,
) -> RunReport {
    let Trouble { retries, errors } = trouble;
    let mut report = match run_once(client, run_id, experiments, keep, options).await {
        Ok(r) => r,
        Err(e) => {
            errors.push(e);
            return not_run(run_id, options);
        }
    };
    let mut attempts = std::collections::BTreeMap::<String, u32>::new();
    for attempt in 1..=options.retries {
        if options.cancel.is_cancelled() {
            break;
        }
        let errored: BTreeSet<String> = report
            .experiments
            .iter()
            .filter(|e| e.outcome == Outcome::Error)
            .map(|e| e.name.clone())
            .collect();
        if errored.is_empty() {
            break;
        }
        let again: Vec<LoadedExperiment> = experiments
            .iter()
            .filter(|e| errored.contains(e.name()))
            .cloned()
            .collect();
        tracing::info!(
            side,
            attempt,
            "retrying {} experiment(s) that errored",
            again.len()
        );
        let retry = match run_once(
            client,
            &format!("{run_id}-retry{attempt}"),
            &again,
            keep,
            options,
        )
        .await
        {
            Ok(r) => r,
            Err(e) => {
                errors.push(e);
                break;
            }
        };
        for r in retry.experiments {
            *attempts.entry(r.name.clone()).or_insert(1) += 1;
            if let Some(slot) = report.experiments.iter_mut().find(|e| e.name == r.name) {
                *slot = r;
            }
        }
    }
    for (experiment, attempts) in attempts {
        let still_error = report
            .experiments
            .iter()
            .any(|e| e.name == experiment && e.outcome == Outcome::Error);
        retries.push(Retry {
            side: side.into(),
            experiment,
            attempts,
            still_error,
        });
    }
    report
}

async fn run_once(
    client: &Client,
    run_id: &str,
    experiments: &[LoadedExperiment],
    keep: bool,
    options: &DiffOptions,
) -> Result<RunReport, String> {
    let mut builder = Runner::builder(client.clone())
        .run_id(run_id)
        .cancel(options.cancel.clone())
        .keep_baselines(keep);
    if let Some(c) = &options.cluster {
        builder = builder.cluster(c.clone());
    }
    if let Some(d) = &options.journal_dir {
        builder = builder.journal_dir(d.clone());
    }
    if let Some(e) = &options.events {
        builder = builder.events(e.clone());
    }
    if let Some(r) = options.repeat {
        builder = builder.repeat(r);
    }
    match builder.build() {
        Ok(runner) => Ok(runner.run(experiments).await),
        Err(e) => Err(format!("{run_id}: {e}")),
    }
}

/// A report of a run that did not happen (its journal could not be written).
fn not_run(run_id: &str, options: &DiffOptions) -> RunReport {
    let now = Timestamp::now();
    RunReport {
        schema: crate::runner::outcome::REPORT_SCHEMA_VERSION.into(),
        run_id: run_id.into(),
        started: now,
        finished: now,
        cluster: options.cluster.clone().unwrap_or_else(|| ClusterRecord {
            provider: "client".into(),
            name: "unknown".into(),
            kubeconfig: None,
            context: None,
        }),
        experiments: Vec::new(),
        partition: None,
        shards: Vec::new(),
    }
}

/// The distinct baselines of `experiments`, by name, in first-use order.
fn baselines(experiments: &[LoadedExperiment]) -> Vec<&LoadedBaseline> {
    let mut seen = BTreeSet::new();
    experiments
        .iter()
        .map(|e| &e.baseline)
        .filter(|b| seen.insert(b.name().to_string()))
        .collect()
}

/// Applies each head baseline over its base (base left applied by the
/// before run), prunes what the head dropped, and waits for the rollout,
/// all measured as one transition.
async fn migrate(
    client: &Client,
    run_id: &str,
    base: &[LoadedExperiment],
    head: &[LoadedExperiment],
    options: &DiffOptions,
    errors: &mut Vec<String>,
) -> Migration {
    let base_baselines = baselines(base);
    let head_baselines = baselines(head);
    let namespaces: BTreeSet<String> = head_baselines
        .iter()
        .map(|b| b.spec.namespace.to_string())
        .collect();
    let mut spec = TransitionSpec::namespaces(namespaces);
    spec.blast_radius.max_affected = u32::MAX;
    let mut transition = Transition::new(client.clone(), "migration base → head", spec);
    if let Some(e) = &options.events {
        transition = transition.with_events(e.clone());
    }
    let mut migrations = Vec::new();
    let mut regressions = Vec::new();
    for head_b in head_baselines {
        let name = head_b.name().to_string();
        let base_b = base_baselines.iter().find(|b| b.name() == name);
        // The base's objects as applied (idempotent: nothing changes), to
        // know which the head no longer has.
        let base_refs = match base_b {
            Some(b) => match apply_baseline(
                client,
                b,
                &format!("{}-base", run_id.trim_end_matches("-head")),
            )
            .await
            {
                Ok(refs) => refs,
                Err(e) => {
                    let why = e.api_message().unwrap_or_else(|| e.to_string());
                    errors.push(format!("migration of {name}: re-reading the base: {why}"));
                    Vec::new()
                }
            },
            None => Vec::new(),
        };
        let applied = transition
            .step(
                &format!("apply {name}"),
                apply_baseline(client, head_b, run_id),
            )
            .await;
        let head_refs = match applied {
            Ok(refs) => refs,
            Err(e) => {
                let why = e.api_message().unwrap_or_else(|| e.to_string());
                if e.refused_by_server() {
                    regressions.push(format!(
                        "migration of {name}: the API server refused the head configuration: {why}"
                    ));
                } else {
                    errors.push(format!("migration of {name}: applying the head: {why}"));
                }
                continue;
            }
        };
        let keep: BTreeSet<String> = head_refs.iter().map(ToString::to_string).collect();
        let gone: Vec<ObjectRef> = base_refs
            .into_iter()
            .filter(|r| !keep.contains(&r.to_string()))
            .collect();
        let pruned: Vec<String> = gone.iter().map(ToString::to_string).collect();
        if !gone.is_empty() {
            let prune = transition
                .step(&format!("prune {name}"), delete_baseline(client, &gone))
                .await;
            if let Err(e) = prune {
                errors.push(format!("migration of {name}: pruning: {e}"));
            }
        }
        let timeout: Duration = head_b.spec.steady_state.timeout.0;
        let steady = SteadyState::for_baseline(head_b);
        let rolled = transition
            .step(
                &format!("roll out {name}"),
                steady.wait_steady(client, timeout),
            )
            .await;
        let step = transition_last_step(&transition);
        let (rollout_seconds, not_ready) = match &rolled {
            Ok(at) => {
                let from = step.as_ref().map_or(*at, |s| s.0);
                let ms = at.as_millisecond() - from.as_millisecond();
                (Some(ms.max(0) as f64 / 1000.0), None)
            }
            Err(e) => (None, Some(e.to_string())),
        };
        if let Some(what) = &not_ready {
            regressions.push(format!(
                "migration of {name}: the head never became ready within {}: {what}",
                head_b.spec.steady_state.timeout
            ));
        }
        let worst = step.as_ref().and_then(|s| s.1);
        if let Some(ratio) = worst
            && ratio < options.migration_availability
        {
            regressions.push(format!(
                "migration of {name}: canary availability {:.1}% during the rollout (at least {:.1}% expected)",
                ratio * 100.0,
                options.migration_availability * 100.0
            ));
        }
        migrations.push(BaselineMigration {
            baseline: name,
            pruned,
            rollout_seconds,
            not_ready,
            worst_availability: worst,
            disturbed: step.map(|s| s.2).unwrap_or_default(),
        });
    }
    Migration {
        baselines: migrations,
        regressions,
        transition: transition.finish(),
    }
}

/// The last step's start, worst availability and disturbed workloads.
fn transition_last_step(t: &Transition) -> Option<(Timestamp, Option<f64>, Vec<String>)> {
    let s = t.steps().last()?;
    let disturbed = s
        .blast_radius
        .as_ref()
        .map(|b| b.affected.iter().map(|d| d.workload.clone()).collect())
        .unwrap_or_default();
    Some((s.started, s.worst_availability(), disturbed))
}

/// Deletes what the base applied that the head does not have (a baseline
/// the head no longer uses); the after run deleted the head's own.
async fn cleanup_base(client: &Client, base: &[LoadedExperiment], head: &[LoadedExperiment]) {
    let head_names: BTreeSet<&str> = baselines(head).iter().map(|b| b.name()).collect();
    for b in baselines(base) {
        if head_names.contains(b.name()) {
            continue;
        }
        let mut refs = vec![ObjectRef {
            api_version: "v1".into(),
            kind: "Namespace".into(),
            namespace: None,
            name: b.spec.namespace.to_string(),
        }];
        for object in &b.objects {
            let Ok(mut r) = ObjectRef::of(object) else {
                continue;
            };
            if r.namespace.is_none()
                && let Ok((_, caps)) = kobj::resolve(client, &r).await
                && caps.scope == kube::discovery::Scope::Namespaced
            {
                r.namespace = Some(b.spec.namespace.to_string());
            }
            refs.push(r);
        }
        if let Err(e) = delete_baseline(client, &refs).await {
            tracing::warn!("deleting the base's baseline {}: {e}", b.name());
        }
    }
}
