//! Baseline instances kept between experiments of one run.
//!
//! A serial run applies each baseline once, in place, and every experiment
//! on it starts from a baseline that is already steady. Side by side, each
//! trial gets an instance of its own instead; making one costs its pods'
//! start-up in a fresh namespace, and deleting one costs its pods'
//! graceful termination. The pool gives side-by-side runs what a serial run
//! has: an instance whose trial ended cleanly (fault reverted, steady state
//! back and held) waits here, and the next experiment on the same baseline
//! takes it instead of making its own. Only one trial holds an instance at a
//! time, so experiments never share one at once. Whatever is left in the
//! pool is deleted at the end of the run, all at once.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Mutex, PoisonError};

use kube::Client;

use super::{EventSender, RunEvent};
use crate::baseline::instance::INSTANCE_DELETE_TIMEOUT;
use crate::baseline::{LoadedBaseline, Relocation, delete_instance};
use crate::journal::Journal;
use crate::vocab::duration::format_duration;

/// Which instances may stand in for each other: the same baseline file with
/// the same rendered objects.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BaselineKey(u64);

impl BaselineKey {
    /// The key of `baseline` as loaded (before it is moved into an instance).
    pub fn of(baseline: &LoadedBaseline) -> Self {
        let mut hasher = DefaultHasher::new();
        baseline.path.hash(&mut hasher);
        serde_json::to_string(&baseline.objects)
            .unwrap_or_default()
            .hash(&mut hasher);
        Self(hasher.finish())
    }
}

/// An instance no trial holds, ready for the next one on its baseline.
#[derive(Debug)]
pub struct Idle {
    /// How the baseline was moved: its id names the instance again.
    pub relocation: Relocation,
    /// The journal handle that holds the instance's deletion (journaled
    /// before it was made), so a crash leaves it to `breakfix cleanup`.
    pub journal: Journal,
    /// The experiment whose trial used it last.
    pub last_used_by: String,
}

/// The run's idle instances, by baseline.
#[derive(Debug, Default)]
pub struct InstancePool {
    idle: Mutex<HashMap<BaselineKey, Vec<Idle>>>,
}

impl InstancePool {
    /// Takes an idle instance of the baseline `key`, if there is one.
    pub fn take(&self, key: &BaselineKey) -> Option<Idle> {
        self.lock().get_mut(key).and_then(Vec::pop)
    }

    /// Leaves `idle` for the next trial on the baseline `key`.
    pub fn put(&self, key: BaselineKey, idle: Idle) {
        self.lock().entry(key).or_default().push(idle);
    }

    /// Every idle instance of the baselines `keep` does not want.
    pub fn take_unless(&self, keep: impl Fn(&BaselineKey) -> bool) -> Vec<Idle> {
        let mut idle = self.lock();
        let gone: Vec<BaselineKey> = idle.keys().filter(|k| !keep(k)).cloned().collect();
        gone.into_iter()
            .filter_map(|k| idle.remove(&k))
            .flatten()
            .collect()
    }

    /// Every idle instance, emptying the pool.
    pub fn drain(&self) -> Vec<Idle> {
        self.lock().drain().flat_map(|(_, idle)| idle).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<BaselineKey, Vec<Idle>>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Deletes the instances left in the pool at the end of a run, all at
/// once, and marks their deletion done in the journal; says so through
/// `events`. An instance that cannot be deleted stays journaled, for
/// `breakfix cleanup`.
pub(super) async fn delete_idle(client: &Client, idle: Vec<Idle>, events: Option<&EventSender>) {
    if idle.is_empty() {
        return;
    }
    let say = |message: String| {
        if let Some(tx) = events {
            let _ = tx.send(RunEvent::Note { message });
        }
    };
    let names: Vec<String> = idle
        .iter()
        .flat_map(|i| i.relocation.new_namespaces().map(str::to_string))
        .collect();
    say(format!(
        "deleting {} baseline instance(s) kept between experiments: {}",
        idle.len(),
        names.join(", ")
    ));
    let started = std::time::Instant::now();
    let results = futures::future::join_all(idle.into_iter().map(|mut i| async move {
        let deleted = delete_instance(client, &i.relocation, INSTANCE_DELETE_TIMEOUT).await;
        match deleted {
            Ok(()) => i
                .journal
                .revert_all(client)
                .await
                .into_iter()
                .next()
                .map(|e| e.to_string()),
            Err(e) => Some(format!(
                "{} not deleted ({e}); `breakfix cleanup` deletes it",
                i.relocation.new_namespaces().collect::<Vec<_>>().join(", ")
            )),
        }
    }))
    .await;
    let problems: Vec<String> = results.into_iter().flatten().collect();
    if problems.is_empty() {
        say(format!(
            "baseline instances deleted ({})",
            format_duration(started.elapsed())
        ));
    } else {
        for problem in problems {
            say(problem);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use rstest::rstest;

    use super::*;

    fn key(dir: &str) -> BaselineKey {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("experiments/baselines")
            .join(dir)
            .join("baseline.yaml");
        BaselineKey::of(&LoadedBaseline::load(&path).expect("a built-in baseline loads"))
    }

    #[rstest]
    #[case::same_baseline("shop", "shop", true)]
    #[case::other_baseline("shop", "canaries", false)]
    #[case::same_objects_other_file("shop", "shop-load", false)]
    fn instances_stand_in_for_each_other_only_on_the_same_baseline(
        #[case] a: &str,
        #[case] b: &str,
        #[case] same: bool,
    ) {
        assert_eq!(key(a) == key(b), same);
    }
}
