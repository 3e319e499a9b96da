//! Running one experiment file through the library [`Runner`] on the e2e
//! cluster, and watching the cluster independently while it runs, so a test
//! can check what the fault did with its own eyes, not only breakfix's.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use breakfix::baseline::{SteadyState, apply_baseline};
use breakfix::experiment::{LoadedExperiment, load_experiment};
use breakfix::journal::{ClusterRecord, JournalState};
use breakfix::kobj::{self, ObjectRef};
use breakfix::runner::{ExperimentReport, Outcome, Runner};
use futures::StreamExt;
use jiff::Timestamp;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Api, Client, Resource};

use crate::support;

/// An experiment file of this repository.
pub fn experiment(relative: &str) -> LoadedExperiment {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("experiments")
        .join(relative);
    load_experiment(&path).unwrap_or_else(|ds| {
        panic!(
            "{}",
            ds.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        )
    })
}

/// Applies the experiment's baseline and waits for its steady state, so the
/// objects the fault will touch can be snapshotted first.
pub async fn steady_baseline(client: &Client, exp: &LoadedExperiment) {
    apply_baseline(client, &exp.baseline, "e2e-baseline")
        .await
        .unwrap_or_else(|e| panic!("baseline {}: {e}", exp.baseline.name()));
    SteadyState::for_baseline(&exp.baseline)
        .wait_steady(client, Duration::from_secs(300))
        .await
        .unwrap_or_else(|e| panic!("baseline {} never steady: {e}", exp.baseline.name()));
}

/// The `spec` of `target` now (None when it does not exist).
pub async fn spec_of(client: &Client, target: &ObjectRef) -> Option<serde_json::Value> {
    kobj::get(client, target)
        .await
        .unwrap_or_else(|e| panic!("reading {target}: {e}"))
        .map(|o| o.data["spec"].clone())
}

/// `target` as its owner wrote it: without what the server sets (uid,
/// resourceVersion, status, …) and without the run label, which each run's
/// baseline apply sets anew. Panics when it does not exist.
pub async fn content_of(client: &Client, target: &ObjectRef) -> serde_json::Value {
    let mut obj = kobj::get(client, target)
        .await
        .unwrap_or_else(|e| panic!("reading {target}: {e}"))
        .unwrap_or_else(|| panic!("{target} missing"));
    kobj::strip_server_fields(&mut obj);
    let mut value = serde_json::to_value(obj).expect("an object serializes");
    if let Some(meta) = value["metadata"].as_object_mut() {
        meta.remove("resourceVersion");
        meta.remove("uid");
        if let Some(labels) = meta.get_mut("labels").and_then(|l| l.as_object_mut()) {
            labels.remove(breakfix::RUN_LABEL);
        }
    }
    value
}

/// What one run of an experiment produced.
pub struct Run {
    pub report: ExperimentReport,
    /// The journal after the run: nothing may be pending.
    pub journal: JournalState,
}

impl Run {
    /// When the (first) trial injected and reverted.
    pub fn fault_window(&self) -> (Timestamp, Timestamp) {
        let marks = &self.report.trials[0].marks;
        (
            marks.injected.expect("the trial injected"),
            marks.reverted.expect("the trial reverted"),
        )
    }

    /// How long the revert took (from detection to the journal replayed).
    pub fn revert_took(&self) -> Duration {
        let marks = &self.report.trials[0].marks;
        match (marks.detected, marks.reverted) {
            (Some(d), Some(r)) => Duration::try_from(r.duration_since(d)).unwrap_or_default(),
            _ => Duration::ZERO,
        }
    }

    /// Asserts the run passed with a signal from `expected` seen from the
    /// cluster, a diagnosis, recovery, and nothing left in the journal.
    /// Returns the detection's (signal, time to detect, time to recover).
    pub fn assert_detected_and_recovered(
        &self,
        expected: &[breakfix::vocab::SignalKind],
    ) -> (breakfix::vocab::SignalKind, Duration, Duration) {
        let trial = &self.report.trials[0];
        let detection = trial.detection.as_ref().unwrap_or_else(|| {
            panic!(
                "no detection; error {:?}; timeline {:#?}",
                trial.error, trial.timeline
            )
        });
        assert!(
            expected.contains(&detection.kind),
            "detected {} but expected one of {expected:?}",
            detection.kind
        );
        assert_eq!(
            self.report.outcome,
            Outcome::Passed,
            "SLOs: {:#?}; error: {:?}",
            self.report.slos,
            trial.error
        );
        assert!(
            trial.diagnosis.is_some(),
            "a detection comes with a diagnosis"
        );
        assert!(
            self.journal.pending.is_empty(),
            "undos left in the journal: {:?}",
            self.journal.pending
        );
        (
            detection.kind,
            trial.marks.time_to_detect().expect("time to detect"),
            trial.marks.time_to_recover().expect("time to recover"),
        )
    }
}

/// Runs `exp` once through the library's [`Runner`], with a journal of its
/// own. The baseline stays applied afterwards: the tests compare the objects
/// the fault touched with their state before, and the next test reuses it.
pub async fn run(client: &Client, exp: &LoadedExperiment) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let runner = Runner::builder(client.clone())
        .cluster(ClusterRecord {
            provider: "kind".into(),
            name: support::cluster_name(),
            kubeconfig: None,
            context: None,
        })
        .journal_dir(dir.path())
        .run_id(format!("e2e-{}-{}", exp.name(), std::process::id()))
        .repeat(1)
        .keep_baselines(true)
        .build()
        .unwrap();
    let path = runner.journal_path().to_path_buf();
    let mut report = runner.run(std::slice::from_ref(exp)).await;
    assert_eq!(report.experiments.len(), 1, "one experiment, one report");
    Run {
        report: report.experiments.remove(0),
        journal: JournalState::read(&path).unwrap(),
    }
}

/// A number read off a watched set of objects at every watch event, with
/// the time it was seen: the test's own view of the cluster.
pub struct Gauge {
    samples: Arc<Mutex<Vec<(Timestamp, i64)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Gauge {
    /// Watches `api` (filtered by `cfg`) and records `measure` over the
    /// objects on every event.
    pub fn watch<K>(api: Api<K>, cfg: watcher::Config, measure: fn(&[Arc<K>]) -> i64) -> Self
    where
        K: Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
        K::DynamicType: Default + Eq + std::hash::Hash + Clone,
    {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let (reader, writer) = reflector::store::<K>();
        let sink = samples.clone();
        let task = tokio::spawn(async move {
            reflector(writer, watcher(api, cfg))
                .default_backoff()
                .for_each(|event| {
                    if let Ok(e) = event
                        && !matches!(e, watcher::Event::Init | watcher::Event::InitApply(_))
                    {
                        let value = measure(&reader.state());
                        sink.lock().unwrap().push((Timestamp::now(), value));
                    }
                    futures::future::ready(())
                })
                .await;
        });
        Self { samples, task }
    }

    /// The value at `from` and every value seen until `to`.
    pub fn during(&self, from: Timestamp, to: Timestamp) -> Vec<i64> {
        let samples = self.samples.lock().unwrap();
        let before = samples
            .iter()
            .rev()
            .find(|(t, _)| *t <= from)
            .map(|(_, v)| *v);
        before
            .into_iter()
            .chain(
                samples
                    .iter()
                    .filter(|(t, _)| *t > from && *t <= to)
                    .map(|(_, v)| *v),
            )
            .collect()
    }

    /// Every value seen.
    pub fn all(&self) -> Vec<i64> {
        self.samples
            .lock()
            .unwrap()
            .iter()
            .map(|(_, v)| *v)
            .collect()
    }
}

impl Drop for Gauge {
    fn drop(&mut self) {
        self.task.abort();
    }
}
