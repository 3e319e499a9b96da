//! cronJobStorm on the kind cluster: real CronJobs fire (their first run
//! caught up at once, later ones at minute boundaries), their Jobs' pods
//! pile up (Pending once the node's CPU is
//! spoken for), breakfix sees the surge, and the revert leaves no CronJob,
//! Job or Pod behind. With a pod quota the storm is capped, the refusal is
//! the signal, and another namespace's workload never notices.

use breakfix::fault::cron_job_storm::STORM_LABEL;
use breakfix::kobj::ObjectRef;
use breakfix::vocab::SignalKind;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::runtime::watcher;
use kube::{Api, Client};

use crate::support;
use crate::trial::{self, Gauge};

fn storm_selector() -> String {
    format!("{STORM_LABEL}=storm")
}

fn live_pods(pods: &[std::sync::Arc<Pod>]) -> i64 {
    pods.iter()
        .filter(|p| breakfix::detect::surge::pod_is_live(p))
        .count() as i64
}

fn available(deployments: &[std::sync::Arc<Deployment>]) -> i64 {
    deployments
        .first()
        .and_then(|d| d.status.as_ref())
        .and_then(|s| s.available_replicas)
        .map(i64::from)
        .unwrap_or(0)
}

/// CronJobs, Jobs and Pods of the storm left in `ns`.
async fn leftovers(client: &Client, ns: &str) -> (usize, usize, usize) {
    let lp = ListParams::default().labels(&storm_selector());
    (
        Api::<CronJob>::namespaced(client.clone(), ns)
            .list(&lp)
            .await
            .unwrap()
            .items
            .len(),
        Api::<Job>::namespaced(client.clone(), ns)
            .list(&lp)
            .await
            .unwrap()
            .items
            .len(),
        Api::<Pod>::namespaced(client.clone(), ns)
            .list(&lp)
            .await
            .unwrap()
            .items
            .len(),
    )
}

#[tokio::test]
async fn a_storm_of_cron_jobs_floods_the_node_and_the_revert_removes_every_job_and_pod() {
    let client = support::client().await;
    let exp = trial::experiment("cron-job-storm.yaml");
    trial::steady_baseline(&client, &exp).await;
    let web = ObjectRef::namespaced("apps/v1", "Deployment", "shop", "web");
    let before = trial::spec_of(&client, &web).await;
    let storm_pods = Gauge::watch(
        Api::<Pod>::namespaced(client.clone(), "shop"),
        watcher::Config::default().labels(&storm_selector()),
        live_pods,
    );

    let run = trial::run(&client, &exp).await;
    let (signal, detect, recover) =
        run.assert_detected_and_recovered(&[SignalKind::PodSurge, SignalKind::Unschedulable]);
    let peak = storm_pods.all().into_iter().max().unwrap_or(0);
    assert!(peak > 0, "no storm pod was ever created");
    if signal == SignalKind::PodSurge {
        assert!(
            peak > 6,
            "a surge past 6 pods, but at most {peak} were seen"
        );
    }
    assert_eq!(
        leftovers(&client, "shop").await,
        (0, 0, 0),
        "the revert leaves no CronJob, Job or Pod behind"
    );
    assert_eq!(trial::spec_of(&client, &web).await, before);
    eprintln!(
        "cron-job-storm: {signal} detected in {detect:?} (peak {peak} storm pods), reverted (CronJobs, Jobs and Pods gone) in {:?}, recovered in {recover:?}",
        run.revert_took()
    );
}

#[tokio::test]
async fn a_pod_quota_caps_the_storm_and_the_neighbour_namespace_stays_steady() {
    let client = support::client().await;
    let exp = trial::experiment("cron-job-storm-quota.yaml");
    trial::steady_baseline(&client, &exp).await;
    let quota = ObjectRef::namespaced("v1", "ResourceQuota", "shop-quota", "pod-count");
    let quota_before = trial::spec_of(&client, &quota).await;
    let all_pods = Gauge::watch(
        Api::<Pod>::namespaced(client.clone(), "shop-quota"),
        watcher::Config::default(),
        live_pods,
    );
    let neighbour = Gauge::watch(
        Api::<Deployment>::namespaced(client.clone(), "shop-neighbour"),
        watcher::Config::default().fields("metadata.name=neighbour"),
        available,
    );

    let run = trial::run(&client, &exp).await;
    let (signal, detect, recover) = run.assert_detected_and_recovered(&[SignalKind::QuotaExceeded]);
    let detection = run.report.trials[0].detection.clone().unwrap();
    assert!(
        detection.message.contains("exceeded quota: pod-count"),
        "{}",
        detection.message
    );
    let timeline = &run.report.trials[0].timeline;
    assert!(
        !format!("{timeline:?}").contains("PodSurge"),
        "the quota keeps the storm under its surge bound"
    );
    let peak = all_pods.all().into_iter().max().unwrap_or(0);
    assert!(
        peak <= 6,
        "the namespace ran {peak} pods past its quota of 6"
    );
    let (injected, reverted) = run.fault_window();
    let neighbours = neighbour.during(injected, reverted);
    assert!(
        !neighbours.is_empty() && neighbours.iter().all(|n| *n == 1),
        "the neighbour namespace's workload must stay available: {neighbours:?}"
    );
    for slo in ["blastRadius", "condition/storm-capped-at-quota"] {
        let verdict = run.report.slos.iter().find(|v| v.slo == slo);
        assert!(
            verdict.is_some_and(|v| v.met),
            "the verdict must say {slo} held: {:#?}",
            run.report.slos
        );
    }
    assert_eq!(leftovers(&client, "shop-quota").await, (0, 0, 0));
    assert_eq!(trial::spec_of(&client, &quota).await, quota_before);
    eprintln!(
        "cron-job-storm-quota: {signal} detected in {detect:?} (namespace peak {peak} pods), reverted in {:?}, recovered in {recover:?}",
        run.revert_took()
    );
}
