//! cronJobStorm against a real controller manager: its CronJob controller
//! really creates the Jobs and its Job controller the Pods (they stay
//! Pending: this tier has no nodes), a ResourceQuota really refuses them,
//! and the revert leaves no CronJob, Job or Pod behind.
//!
//! The CronJob controller fires at minute boundaries: a storm's first run
//! is caught up at once (`firstRun: now`, the default), or comes at the
//! next boundary (`firstRun: schedule`, up to a minute).

use std::time::Duration;

use breakfix::detect::{Observation, first_expected, merged, watch_pod_signals};
use breakfix::fault::cron_job_storm::FirstRun;
use breakfix::fault::cron_job_storm::STORM_LABEL;
use breakfix::fault::{CronJobStorm, Fault};
use breakfix::journal::JournalState;
use breakfix::testkit::{self, TestNamespace};
use breakfix::vocab::SignalKind;
use futures::StreamExt;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Pod, ResourceQuota};
use kube::Api;
use kube::api::{ListParams, PostParams};
use kube::runtime::WatchStreamExt;

use crate::support;

/// The first minute boundary plus the controllers' work, with room to spare.
const FIRST_FIRING: Duration = Duration::from_secs(100);

fn storm(ns: &str, parallelism: u32, surge_pods: Option<u32>) -> CronJobStorm {
    let mut yaml = format!("namespace: {ns}\nparallelism: {parallelism}\njobDuration: 10m\n");
    if let Some(pods) = surge_pods {
        yaml.push_str(&format!("surge: {{pods: {pods}}}\n"));
    }
    serde_yaml::from_str(&yaml).expect("a cronJobStorm spec")
}

/// The time the controller scheduled the first Job of `ns`'s storm for (its
/// `batch.kubernetes.io/cronjob-scheduled-timestamp`), once there is one.
async fn first_scheduled_run(ns: &TestNamespace) -> jiff::Timestamp {
    let jobs: Api<Job> = Api::namespaced(ns.client.clone(), &ns.name);
    let config = kube::runtime::watcher::Config::default().labels(&format!("{STORM_LABEL}=storm"));
    let stream = kube::runtime::watcher(jobs, config).applied_objects();
    let first = async {
        futures::pin_mut!(stream);
        while let Some(job) = stream.next().await {
            let job = job.expect("watching the storm's Jobs");
            if let Some(at) = job
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("batch.kubernetes.io/cronjob-scheduled-timestamp"))
            {
                return at.parse().expect("an RFC 3339 time");
            }
        }
        panic!("the Job watch ended");
    };
    tokio::time::timeout(FIRST_FIRING, first)
        .await
        .expect("a storm Job within the first firing")
}

async fn storm_counts(ns: &TestNamespace) -> (usize, usize, usize) {
    let lp = ListParams::default().labels(&format!("{STORM_LABEL}=storm"));
    let cron_jobs = Api::<CronJob>::namespaced(ns.client.clone(), &ns.name)
        .list(&lp)
        .await
        .unwrap()
        .items
        .len();
    let jobs = Api::<Job>::namespaced(ns.client.clone(), &ns.name)
        .list(&lp)
        .await
        .unwrap()
        .items
        .len();
    let pods = Api::<Pod>::namespaced(ns.client.clone(), &ns.name)
        .list(&lp)
        .await
        .unwrap()
        .items
        .len();
    (cron_jobs, jobs, pods)
}

/// Injects `fault`, waits for `expected`, then reverts; returns what was seen.
async fn inject_detect_revert(
    ns: &TestNamespace,
    fault: &CronJobStorm,
    expected: SignalKind,
) -> (Observation, Vec<Observation>, (usize, usize, usize)) {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = support::journal(dir.path(), "storm-run");
    let mut ctx = support::context(&ns.client, &mut journal, "cron-job-storm", "storm-run");
    let injection = fault.inject(&mut ctx).await.unwrap();
    let mut sources =
        vec![watch_pod_signals(&ns.client, &injection.scope, Default::default()).boxed()];
    sources.extend(injection.extra);
    let mut seen = Vec::new();
    let detected = first_expected(merged(sources), &[expected], FIRST_FIRING, |o| {
        seen.push(o.clone())
    })
    .await;
    let at_detection = storm_counts(ns).await;
    let errors = journal.revert_all(&ns.client).await;
    assert!(errors.is_empty(), "revert failed: {errors:?}");
    assert!(
        JournalState::read(journal.path())
            .unwrap()
            .pending
            .is_empty(),
        "every undo is marked done"
    );
    let detected = detected.unwrap_or_else(|e| {
        panic!(
            "{e}; saw {:?}",
            seen.iter().map(|o| (o.kind, &o.object)).collect::<Vec<_>>()
        )
    });
    (detected, seen, at_detection)
}

#[tokio::test]
async fn the_controllers_spawn_a_pod_surge_and_the_revert_leaves_nothing_behind() {
    let ns = testkit::namespace("storm").await;
    let fault = storm(&ns.name, 3, Some(2));
    assert_eq!(fault.validate(), Ok(()));

    let (surge, _, (cron_jobs, jobs, pods)) =
        inject_detect_revert(&ns, &fault, SignalKind::PodSurge).await;

    assert_eq!(surge.object, "cronjob/storm");
    assert!(
        surge.message.starts_with("3 live pods (3 Pending)"),
        "{}",
        surge.message
    );
    assert!(surge.since.is_some(), "the crossing pod's creation time");
    assert_eq!(cron_jobs, 1);
    // The caught-up run at once, and another if a minute boundary passed
    // before detection.
    assert!(jobs >= 1, "the CronJob fired: {jobs} Job(s)");
    assert!(pods >= 3, "the Job controller made {pods} pods");
    assert_eq!(
        storm_counts(&ns).await,
        (0, 0, 0),
        "the revert waits until the CronJob, its Jobs and their Pods are gone"
    );
}

#[tokio::test]
async fn a_pod_quota_caps_the_storm_and_the_refusal_is_the_signal() {
    let ns = testkit::namespace("storm-quota").await;
    let quota: ResourceQuota = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "pod-count"},
        "spec": {"hard": {"pods": "2"}},
    }))
    .unwrap();
    Api::<ResourceQuota>::namespaced(ns.client.clone(), &ns.name)
        .create(&PostParams::default(), &quota)
        .await
        .unwrap();
    // The quota controller must have computed usage before it can refuse.
    let quotas: Api<ResourceQuota> = Api::namespaced(ns.client.clone(), &ns.name);
    let counted =
        kube::runtime::wait::await_condition(quotas, "pod-count", |q: Option<&ResourceQuota>| {
            q.and_then(|q| q.status.as_ref())
                .and_then(|s| s.used.as_ref())
                .is_some()
        });
    tokio::time::timeout(Duration::from_secs(30), counted)
        .await
        .unwrap()
        .unwrap();

    let fault = storm(&ns.name, 4, None);
    let (refused, seen, (_, _, pods)) =
        inject_detect_revert(&ns, &fault, SignalKind::QuotaExceeded).await;

    assert_eq!(refused.reason, "FailedCreate");
    assert!(
        refused.message.contains("exceeded quota: pod-count"),
        "{}",
        refused.message
    );
    assert!(
        refused.object.starts_with("job/storm-1-"),
        "{}",
        refused.object
    );
    assert!(pods <= 2, "the quota let {pods} storm pods in");
    assert!(
        seen.iter().all(|o| o.kind != SignalKind::PodSurge),
        "capped at 2 pods, the storm never passes its bound of 4"
    );
    assert_eq!(storm_counts(&ns).await, (0, 0, 0));
}

#[tokio::test]
async fn the_first_run_is_caught_up_at_once_or_waits_for_the_next_boundary() {
    let (now_ns, schedule_ns) = tokio::join!(
        testkit::namespace("storm-now"),
        testkit::namespace("storm-sched")
    );
    let now = storm(&now_ns.name, 1, None);
    let mut schedule = storm(&schedule_ns.name, 1, None);
    schedule.first_run = FirstRun::Schedule;
    let dir = tempfile::tempdir().unwrap();
    let mut journal = support::journal(dir.path(), "storm-run");

    let injected = jiff::Timestamp::now();
    for (ns, fault) in [(&now_ns, &now), (&schedule_ns, &schedule)] {
        let mut ctx = support::context(&ns.client, &mut journal, "cron-job-storm", "storm-run");
        fault.inject(&mut ctx).await.unwrap();
    }
    let (caught_up, scheduled) = tokio::join!(
        first_scheduled_run(&now_ns),
        first_scheduled_run(&schedule_ns)
    );
    let errors = journal.revert_all(&now_ns.client).await;
    assert!(errors.is_empty(), "revert failed: {errors:?}");

    assert!(
        caught_up <= injected,
        "firstRun now: the first Job is the missed run of the boundary before injection ({injected}), not {caught_up}"
    );
    assert!(
        scheduled > injected,
        "firstRun schedule: the first Job waits for the boundary after injection ({injected}), not {scheduled}"
    );
    for ns in [&now_ns, &schedule_ns] {
        assert_eq!(storm_counts(ns).await, (0, 0, 0));
    }
}
