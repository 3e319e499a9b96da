//! Surges: Jobs and Pods multiplying past a bound, as in Zalando's 2019
//! CronJob incident (a job every minute, `concurrencyPolicy: Allow`, jobs
//! slower than the schedule: they pile up until the cluster drowns).
//!
//! Two reflector stores keep the Jobs and Pods carrying a label; every
//! complete view of either ([`watch::views`]) recounts the live ones, and
//! the moment either count passes its bound the stream reports
//! [`SignalKind::PodSurge`] (once per crossing). The cluster
//! time of the signal is the creation time of the object that crossed it.

use futures::{StreamExt, TryStreamExt, stream};
use jiff::Timestamp;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::watcher;
use kube::{Api, Client};

use super::classify::Finding;
use super::{DetectError, SignalStream, into_observation, watch};
use crate::vocab::SignalKind;

/// The most live Pods and Jobs that are still normal; one more is a surge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SurgeBound {
    /// The most pods the storm may leave at once.
    pub pods: u32,
    /// The most jobs the storm may leave at once.
    pub jobs: u32,
}

/// Whether a pod still takes a place in the cluster: not finished, not being deleted.
pub fn pod_is_live(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    pod.metadata.deletion_timestamp.is_none() && !matches!(phase, Some("Succeeded" | "Failed"))
}

/// Whether a Job is still running: no Complete/Failed condition, not being deleted.
pub fn job_is_live(job: &Job) -> bool {
    let finished = job
        .status
        .iter()
        .flat_map(|s| s.conditions.iter().flatten())
        .any(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True");
    job.metadata.deletion_timestamp.is_none() && !finished
}

/// The creation time of the object that took a count past `bound`: the
/// `bound + 1`-th oldest.
fn crossing_time<'a>(
    created: impl Iterator<Item = Option<&'a Timestamp>>,
    bound: u32,
) -> Option<Timestamp> {
    let mut times: Vec<Timestamp> = created.flatten().copied().collect();
    times.sort();
    times.get(bound as usize).copied()
}

/// [`SignalKind::PodSurge`] when the live `pods` or `jobs` outnumber `bound`.
pub fn surge_finding(pods: &[Pod], jobs: &[Job], bound: SurgeBound, what: &str) -> Option<Finding> {
    let live_pods: Vec<&Pod> = pods.iter().filter(|p| pod_is_live(p)).collect();
    let live_jobs: Vec<&Job> = jobs.iter().filter(|j| job_is_live(j)).collect();
    let pods_over = live_pods.len() > bound.pods as usize;
    let jobs_over = live_jobs.len() > bound.jobs as usize;
    if !pods_over && !jobs_over {
        return None;
    }
    let pod_time = pods_over
        .then(|| {
            crossing_time(
                live_pods
                    .iter()
                    .map(|p| p.metadata.creation_timestamp.as_ref().map(|t| &t.0)),
                bound.pods,
            )
        })
        .flatten();
    let job_time = jobs_over
        .then(|| {
            crossing_time(
                live_jobs
                    .iter()
                    .map(|j| j.metadata.creation_timestamp.as_ref().map(|t| &t.0)),
                bound.jobs,
            )
        })
        .flatten();
    let pending = live_pods
        .iter()
        .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Pending"))
        .count();
    Some(Finding {
        kind: SignalKind::PodSurge,
        container: None,
        reason: if pods_over { "PodSurge" } else { "JobSurge" }.into(),
        message: format!(
            "{} live pods ({pending} Pending) and {} running jobs of {what}; bounds are {} pods and {} jobs",
            live_pods.len(),
            live_jobs.len(),
            bound.pods,
            bound.jobs
        ),
        since: [pod_time, job_time].into_iter().flatten().min(),
    })
}

/// Watches the Jobs and Pods labelled `selector` in `namespace` and reports
/// [`SignalKind::PodSurge`] on `object` each time their count passes `bound`.
pub fn watch_surge(
    client: &Client,
    namespace: &str,
    selector: &str,
    bound: SurgeBound,
    object: String,
) -> SignalStream {
    let cfg = watcher::Config::default().labels(selector);
    let pod_views = watch::views(watch::events(
        Api::<Pod>::namespaced(client.clone(), namespace),
        cfg.clone(),
    ))
    .map_ok(View::Pods);
    let job_views = watch::views(watch::events(
        Api::<Job>::namespaced(client.clone(), namespace),
        cfg,
    ))
    .map_ok(View::Jobs);
    let what = format!("{selector} in {namespace}");
    let (mut pods, mut jobs) = (Vec::new(), Vec::new());
    let mut surging = false;
    stream::select(pod_views, job_views)
        .map_err(DetectError::from)
        .try_filter_map(move |view| {
            match view {
                View::Pods(v) => pods = v.iter().map(|p| (**p).clone()).collect(),
                View::Jobs(v) => jobs = v.iter().map(|j| (**j).clone()).collect(),
            }
            let finding = surge_finding(&pods, &jobs, bound, &what);
            let crossed = finding.is_some() && !surging;
            surging = finding.is_some();
            let out = finding
                .filter(|_| crossed)
                .map(|f| into_observation(f, object.clone()));
            futures::future::ready(Ok(out))
        })
        .boxed()
}

/// A complete view of either watch.
enum View {
    Pods(Vec<std::sync::Arc<Pod>>),
    Jobs(Vec<std::sync::Arc<Job>>),
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn pod(minute: u32, phase: &str, deleting: bool) -> Pod {
        let mut meta = serde_json::json!({
            "name": format!("storm-{minute}-{phase}"),
            "creationTimestamp": format!("2026-03-01T10:{minute:02}:00Z"),
        });
        if deleting {
            meta["deletionTimestamp"] = "2026-03-01T11:00:00Z".into();
        }
        serde_json::from_value(serde_json::json!({"metadata": meta, "status": {"phase": phase}}))
            .expect("a pod")
    }

    fn job(minute: u32, finished: Option<&str>) -> Job {
        let conditions: Vec<serde_json::Value> = finished
            .into_iter()
            .map(|t| serde_json::json!({"type": t, "status": "True"}))
            .collect();
        serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": format!("storm-{minute}"),
                "creationTimestamp": format!("2026-03-01T10:{minute:02}:00Z"),
            },
            "status": {"conditions": conditions},
        }))
        .expect("a job")
    }

    const BOUND: SurgeBound = SurgeBound { pods: 2, jobs: 2 };

    #[rstest]
    #[case::at_the_bound(vec![pod(1, "Running", false), pod(2, "Pending", false)], vec![], None)]
    #[case::one_over(
        vec![pod(3, "Pending", false), pod(1, "Running", false), pod(2, "Running", false)],
        vec![],
        Some(("PodSurge", "2026-03-01T10:03:00Z"))
    )]
    #[case::finished_and_terminating_pods_do_not_count(
        vec![pod(1, "Running", false), pod(2, "Succeeded", false), pod(3, "Failed", false), pod(4, "Running", true)],
        vec![],
        None
    )]
    #[case::jobs_over(
        vec![],
        vec![job(1, None), job(2, None), job(5, None), job(0, Some("Complete"))],
        Some(("JobSurge", "2026-03-01T10:05:00Z"))
    )]
    #[case::finished_jobs_do_not_count(
        vec![],
        vec![job(1, None), job(2, Some("Failed")), job(3, Some("Complete"))],
        None
    )]
    fn a_surge_is_one_past_the_bound_dated_by_the_object_that_crossed_it(
        #[case] pods: Vec<Pod>,
        #[case] jobs: Vec<Job>,
        #[case] want: Option<(&str, &str)>,
    ) {
        let found = surge_finding(&pods, &jobs, BOUND, "breakfix.dev/storm=storm in shop");
        assert_eq!(
            found.as_ref().map(|f| (f.reason.as_str(), f.since)),
            want.map(|(r, t)| (r, Some(t.parse().expect("a timestamp"))))
        );
    }

    #[test]
    fn the_message_counts_pending_pods() {
        let pods = vec![
            pod(1, "Pending", false),
            pod(2, "Pending", false),
            pod(3, "Running", false),
        ];
        let found = surge_finding(&pods, &[], BOUND, "storm").expect("a surge");
        assert_eq!(
            found.message,
            "3 live pods (2 Pending) and 0 running jobs of storm; bounds are 2 pods and 2 jobs"
        );
    }
}
