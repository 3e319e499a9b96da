//! cronJobStorm: CronJobs that fire every minute, allow concurrent runs, run
//! jobs slower than their schedule and keep no history limits, so Jobs and
//! Pods pile up until quota, scheduler or API server give.
//!
//! The story (Zalando, KubeCon 2019, incident #2): an "innocent" CronJob
//! whose `concurrencyPolicy: Forbid` and history limits sat at the wrong
//! level of the manifest, so the defaults applied (Allow); its pods
//! multiplied, the API server went down, and the ingress lost its routes.
//! The lesson on the slide: use quota for the number of pods. Run this fault
//! against a baseline with a ResourceQuota to see the mitigation hold
//! ([`SignalKind::QuotaExceeded`] instead of a surge).
//!
//! The CronJobs are created through [`FaultContext::create_tree`]: the revert
//! deletes each with foreground propagation and waits until the CronJob, its
//! Jobs and their Pods are all gone.
//!
//! Timing: the CronJob controller fires at schedule boundaries (whole
//! minutes for `* * * * *`). A new CronJob's first Job would come up to a
//! whole period after injection; with `firstRun: now` (the default) each
//! CronJob's `status.lastScheduleTime` is set to just before the schedule's
//! last boundary, so the controller starts that missed run at once, as it
//! does for a CronJob resumed or a controller restarted (no
//! `startingDeadlineSeconds`, so no run is too late). Later runs come at
//! the boundaries. `firstRun: schedule` waits for the next boundary.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Claim, Fault, FaultContext, FaultError, Injection, SharedResource};
use crate::detect::Scope;
use crate::detect::surge::{SurgeBound, watch_surge};
use crate::vocab::{HumanDuration, Name, SignalKind};

const DEFAULT_SIGNALS: &[SignalKind] = &[SignalKind::PodSurge];
const SUPPORTED: &[SignalKind] = &[
    SignalKind::PodSurge,
    SignalKind::Unschedulable,
    SignalKind::QuotaExceeded,
];

/// Label carried by the CronJobs, their Jobs and their Pods (value: the storm's name).
pub const STORM_LABEL: &str = "breakfix.dev/storm";
/// The image the jobs run unless `image` says otherwise.
pub const DEFAULT_IMAGE: &str = "breakfix/workload:0.1.0";
const MAX_CRON_JOBS: u32 = 20;
const MAX_PARALLELISM: u32 = 50;

/// CPU and memory requests of each storm pod (what makes pods Pending once
/// the nodes are full).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PodRequests {
    /// The CPU each storm pod requests (a Kubernetes quantity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    /// The memory each storm pod requests (a Kubernetes quantity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
}

/// When the pile-up counts as a surge: more live pods or running jobs than this.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SurgeSpec {
    /// Default: one firing's worth (`cronJobs × parallelism`), so a surge
    /// means runs overlap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pods: Option<u32>,
    /// Default: `cronJobs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobs: Option<u32>,
}

/// When a storm's first run starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum FirstRun {
    /// At once: each CronJob is marked as last scheduled just before the
    /// schedule's last boundary, so the controller catches that run up
    /// straight away.
    #[default]
    Now,
    /// At the schedule's next boundary, as for any new CronJob (up to a
    /// whole period after injection).
    Schedule,
}

/// The cronJobStorm fault's settings.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CronJobStorm {
    /// Namespace the CronJobs are created in.
    pub namespace: Name,
    /// Name prefix of the CronJobs (`<name>-1`, `<name>-2`, …).
    #[serde(default = "default_name")]
    pub name: Name,
    /// How many CronJobs to create.
    #[serde(default = "default_cron_jobs")]
    #[schemars(range(min = 1, max = 20))]
    pub cron_jobs: u32,
    /// Cron schedule; the controller fires at its boundaries.
    #[serde(default = "default_schedule")]
    pub schedule: String,
    /// When the first run starts: `now` (the default; the controller
    /// catches up the schedule's last boundary) or `schedule` (its next).
    #[serde(default, skip_serializing_if = "is_now")]
    pub first_run: FirstRun,
    /// Pods per Job (parallelism and completions).
    #[serde(default = "default_parallelism")]
    #[schemars(range(min = 1, max = 50))]
    pub parallelism: u32,
    /// How long each job's pods sleep; longer than the schedule means pile-up.
    #[serde(default = "default_job_duration")]
    pub job_duration: HumanDuration,
    /// What each storm pod requests, so the storm can fill nodes or quotas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_requests: Option<PodRequests>,
    /// Image of the job pods (it must run `sleep --duration`).
    #[serde(default = "default_image")]
    pub image: String,
    /// The bound on the surge the detector judges, when not the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub surge: Option<SurgeSpec>,
}

fn default_name() -> Name {
    Name::new("storm").unwrap_or_else(|_| unreachable!("`storm` is a valid name"))
}

fn default_cron_jobs() -> u32 {
    1
}

fn default_schedule() -> String {
    "* * * * *".into()
}

fn default_parallelism() -> u32 {
    3
}

fn default_job_duration() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(600))
}

fn default_image() -> String {
    DEFAULT_IMAGE.into()
}

fn is_now(first_run: &FirstRun) -> bool {
    *first_run == FirstRun::Now
}

/// A schedule as the CronJob controller reads it: five fields or a macro,
/// weekday and day of month either matching.
fn parse_schedule(schedule: &str) -> Result<croner::Cron, String> {
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Disallowed)
        .build()
        .parse(schedule)
        .map_err(|e| format!("schedule `{schedule}`: {e}"))
}

/// What to write to a CronJob's `status.lastScheduleTime` so that the
/// controller starts the run of the schedule's last boundary at or before
/// `now` at once: one second before that boundary (UTC, as the controller
/// of a kind cluster reads schedules without a `timeZone`).
pub fn caught_up_last_schedule(
    schedule: &str,
    now: jiff::Timestamp,
) -> Result<jiff::Timestamp, String> {
    let cron = parse_schedule(schedule)?;
    let now = now.to_zoned(jiff::tz::TimeZone::UTC);
    let boundary = cron
        .find_previous_occurrence(&now, true)
        .map_err(|e| format!("schedule `{schedule}` has no run before {now}: {e}"))?;
    boundary
        .timestamp()
        .checked_sub(jiff::SignedDuration::from_secs(1))
        .map_err(|e| format!("schedule `{schedule}`: {e}"))
}

impl CronJobStorm {
    /// The bound past which the pile-up is a surge.
    pub fn surge_bound(&self) -> SurgeBound {
        let surge = self.surge.clone().unwrap_or_default();
        SurgeBound {
            pods: surge.pods.unwrap_or(self.cron_jobs * self.parallelism),
            jobs: surge.jobs.unwrap_or(self.cron_jobs),
        }
    }

    /// `breakfix.dev/storm=<name>`: selects the CronJobs, Jobs and Pods.
    pub fn selector(&self) -> String {
        format!("{STORM_LABEL}={}", self.name)
    }

    /// The CronJob manifest number `index` (1-based).
    pub fn cron_job(&self, index: u32) -> serde_json::Value {
        let labels = json!({ STORM_LABEL: self.name.as_str() });
        let mut container = json!({
            "name": "job",
            "image": self.image,
            "imagePullPolicy": "IfNotPresent",
            "args": ["sleep", "--duration", format!("{}s", self.job_duration.get().as_secs())],
        });
        if let Some(requests) = &self.pod_requests {
            let mut map = serde_json::Map::new();
            if let Some(cpu) = &requests.cpu {
                map.insert("cpu".into(), cpu.clone().into());
            }
            if let Some(memory) = &requests.memory {
                map.insert("memory".into(), memory.clone().into());
            }
            container["resources"] = json!({ "requests": map });
        }
        json!({
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {
                "name": format!("{}-{index}", self.name),
                "namespace": self.namespace.as_str(),
                "labels": labels,
            },
            "spec": {
                "schedule": self.schedule,
                "concurrencyPolicy": "Allow",
                "jobTemplate": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "parallelism": self.parallelism,
                        "completions": self.parallelism,
                        "backoffLimit": 0,
                        "template": {
                            "metadata": {"labels": labels},
                            "spec": {
                                "restartPolicy": "Never",
                                "terminationGracePeriodSeconds": 1,
                                "containers": [container],
                            },
                        },
                    },
                },
            },
        })
    }

    /// Marks a created CronJob as last scheduled just before the schedule's
    /// last boundary, so the controller starts that run now.
    async fn catch_up(
        &self,
        ctx: &FaultContext<'_>,
        created: kube::api::DynamicObject,
    ) -> Result<(), FaultError> {
        let target = crate::kobj::ObjectRef::of(&created)?;
        let last = caught_up_last_schedule(&self.schedule, jiff::Timestamp::now())
            .map_err(FaultError::Target)?;
        let api: kube::Api<k8s_openapi::api::batch::v1::CronJob> =
            kube::Api::namespaced(ctx.client.clone(), self.namespace.as_str());
        let patch = json!({ "status": { "lastScheduleTime": last.strftime("%Y-%m-%dT%H:%M:%SZ").to_string() } });
        api.patch_status(
            &target.name,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .map_err(|source| crate::kobj::ObjectError::Api {
            target: target.clone(),
            source,
        })?;
        Ok(())
    }
}

/// Checks a standard five-field cron schedule (or a `@hourly`-style macro)
/// enough to catch the usual slips; the API server checks the rest.
pub fn check_schedule(schedule: &str) -> Result<(), String> {
    let s = schedule.trim();
    if let Some(name) = s.strip_prefix('@') {
        const MACROS: &[&str] = &[
            "yearly", "annually", "monthly", "weekly", "daily", "midnight", "hourly",
        ];
        return if MACROS.contains(&name) {
            Ok(())
        } else {
            Err(format!(
                "schedule `{s}` is not a macro Kubernetes knows (@hourly, @daily, …)"
            ))
        };
    }
    let fields: Vec<&str> = s.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "schedule `{s}` has {} fields; a cron schedule has 5 (minute hour day month weekday), e.g. `* * * * *`",
            fields.len()
        ));
    }
    if let Some(bad) = fields.iter().find(|f| {
        !f.chars()
            .all(|c| c.is_ascii_alphanumeric() || "*/,-?".contains(c))
    }) {
        return Err(format!("schedule `{s}`: field `{bad}` is not cron syntax"));
    }
    Ok(())
}

impl Fault for CronJobStorm {
    const KEY: &'static str = "cronJobStorm";
    const SUMMARY: &'static str = "creates CronJobs firing every minute with concurrencyPolicy Allow, jobs that sleep longer than the schedule and no history limits; Jobs and Pods pile up (revert deletes CronJobs, Jobs and Pods)";
    const STORY: &'static str = "Zalando (KubeCon 2019): a CronJob with its concurrencyPolicy at the wrong level flooded the cluster with pods until the API server fell over; lesson: a ResourceQuota on the number of pods";
    const DEFAULT_SIGNALS: &'static [SignalKind] = DEFAULT_SIGNALS;
    const SUPPORTED_SIGNALS: &'static [SignalKind] = SUPPORTED;

    fn namespace(&self) -> Option<&str> {
        Some(self.namespace.as_str())
    }

    /// Its namespace, and the nodes' room for pods, which a storm fills for
    /// everyone unless a quota caps it.
    fn claims(&self) -> Vec<Claim> {
        vec![
            Claim::of_namespace(Some(self.namespace.as_str())),
            Claim::Shared(SharedResource::SchedulerCapacity),
        ]
    }

    fn validate(&self) -> Result<(), String> {
        check_schedule(&self.schedule)?;
        parse_schedule(&self.schedule)?;
        if !(1..=MAX_CRON_JOBS).contains(&self.cron_jobs) {
            return Err(format!(
                "cronJobs is {}, expected 1 to {MAX_CRON_JOBS}",
                self.cron_jobs
            ));
        }
        if !(1..=MAX_PARALLELISM).contains(&self.parallelism) {
            return Err(format!(
                "parallelism is {}, expected 1 to {MAX_PARALLELISM}",
                self.parallelism
            ));
        }
        if self.job_duration.get() < std::time::Duration::from_secs(1) {
            return Err("jobDuration must be at least 1s".into());
        }
        if self.image.trim().is_empty() {
            return Err("image must not be empty".into());
        }
        // `<name>-<index>` plus the controller's `-<minutes>` job suffix must
        // stay within the 52 characters a CronJob name may have.
        if self.name.as_str().len() + 1 + MAX_CRON_JOBS.to_string().len() > 52 {
            return Err(format!(
                "name `{}` is too long for a CronJob name prefix",
                self.name
            ));
        }
        Ok(())
    }

    async fn inject(&self, ctx: &mut FaultContext<'_>) -> Result<Injection, FaultError> {
        let ns = self.namespace.as_str();
        for index in 1..=self.cron_jobs {
            let manifest = self.cron_job(index);
            let obj = serde_json::from_value(manifest).map_err(|e| FaultError::Decode {
                what: format!("cronjob/{}-{index}", self.name),
                detail: e.to_string(),
            })?;
            let created = ctx.create_tree(obj).await?;
            if self.first_run == FirstRun::Now {
                self.catch_up(ctx, created).await?;
            }
        }
        let bound = self.surge_bound();
        let selector = self.selector();
        Ok(Injection {
            summary: format!(
                "{} CronJob(s) {}-1… in {ns}: `{}`{}, concurrencyPolicy Allow, {} pod(s) per job sleeping {}; surge past {} pods or {} jobs",
                self.cron_jobs,
                self.name,
                self.schedule,
                match self.first_run {
                    FirstRun::Now => " (first run caught up at once)",
                    FirstRun::Schedule => " (first run at the next boundary)",
                },
                self.parallelism,
                self.job_duration,
                bound.pods,
                bound.jobs
            ),
            scope: Scope {
                namespace: ns.to_string(),
                pod_selector: Some(selector.clone()),
                event_name_prefix: Some(format!("{}-", self.name)),
                not_before: jiff::Timestamp::now(),
                deployment: None,
            },
            extra: vec![watch_surge(
                &ctx.client,
                ns,
                &selector,
                bound,
                format!("cronjob/{}", self.name),
            )],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn storm(yaml: &str) -> CronJobStorm {
        serde_yaml::from_str(yaml).expect("a cronJobStorm spec")
    }

    #[rstest]
    #[case("* * * * *", true)]
    #[case("*/15 9-19 * * Mon-Fri", true)]
    #[case("@hourly", true)]
    #[case("@every 1m", false)]
    #[case("* * * *", false)]
    #[case("* * * * * *", false)]
    #[case("* * * * $(reboot)", false)]
    fn schedules_are_checked(#[case] schedule: &str, #[case] ok: bool) {
        assert_eq!(check_schedule(schedule).is_ok(), ok, "{schedule}");
    }

    #[test]
    fn the_manifest_is_the_storm_of_the_story() {
        let s = storm(
            "namespace: shop\ncronJobs: 2\nparallelism: 4\njobDuration: 10m\npodRequests: {cpu: 100m}\n",
        );
        let cj = s.cron_job(2);
        assert_eq!(cj["metadata"]["name"], "storm-2");
        assert_eq!(cj["spec"]["schedule"], "* * * * *");
        assert_eq!(cj["spec"]["concurrencyPolicy"], "Allow");
        assert!(cj["spec"].get("successfulJobsHistoryLimit").is_none());
        let job = &cj["spec"]["jobTemplate"]["spec"];
        assert_eq!(job["parallelism"], 4);
        assert_eq!(job["template"]["metadata"]["labels"][STORM_LABEL], "storm");
        let container = &job["template"]["spec"]["containers"][0];
        assert_eq!(container["args"], json!(["sleep", "--duration", "600s"]));
        assert_eq!(container["resources"]["requests"]["cpu"], "100m");
    }

    #[rstest]
    #[case::every_minute("* * * * *", "2026-12-01T23:41:17Z", "2026-12-01T23:40:59Z")]
    #[case::on_a_boundary("* * * * *", "2026-12-01T23:41:00Z", "2026-12-01T23:40:59Z")]
    #[case::every_quarter_hour("*/15 * * * *", "2026-12-01T23:41:17Z", "2026-12-01T23:29:59Z")]
    #[case::hourly("@hourly", "2026-12-01T23:41:17Z", "2026-12-01T22:59:59Z")]
    #[case::weekdays_at_nine("0 9 * * Mon-Fri", "2026-12-05T10:00:00Z", "2026-12-04T08:59:59Z")]
    fn a_caught_up_storm_was_last_scheduled_just_before_the_last_boundary(
        #[case] schedule: &str,
        #[case] now: &str,
        #[case] last: &str,
    ) {
        let now: jiff::Timestamp = now.parse().expect("a timestamp");
        let last: jiff::Timestamp = last.parse().expect("a timestamp");
        assert_eq!(caught_up_last_schedule(schedule, now), Ok(last));
    }

    #[rstest]
    #[case("namespace: shop\n", FirstRun::Now)]
    #[case("namespace: shop\nfirstRun: schedule\n", FirstRun::Schedule)]
    fn the_first_run_is_now_unless_it_waits_for_the_schedule(
        #[case] yaml: &str,
        #[case] first_run: FirstRun,
    ) {
        assert_eq!(storm(yaml).first_run, first_run);
    }

    #[rstest]
    #[case("namespace: shop\n", SurgeBound { pods: 3, jobs: 1 })]
    #[case("namespace: shop\ncronJobs: 3\nparallelism: 2\n", SurgeBound { pods: 6, jobs: 3 })]
    #[case("namespace: shop\nsurge: {pods: 4}\n", SurgeBound { pods: 4, jobs: 1 })]
    fn the_surge_bound_defaults_to_one_firing(#[case] yaml: &str, #[case] bound: SurgeBound) {
        assert_eq!(storm(yaml).surge_bound(), bound);
    }

    #[rstest]
    #[case("namespace: shop\ncronJobs: 0\n", "cronJobs is 0")]
    #[case("namespace: shop\nparallelism: 51\n", "parallelism is 51")]
    #[case("namespace: shop\nschedule: '* *'\n", "has 2 fields")]
    #[case("namespace: shop\nimage: ' '\n", "image must not be empty")]
    fn bad_settings_are_refused(#[case] yaml: &str, #[case] says: &str) {
        let err = storm(yaml).validate().unwrap_err();
        assert!(err.contains(says), "{err}");
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err =
            serde_yaml::from_str::<CronJobStorm>("namespace: shop\nconcurrencyPolicy: Forbid\n")
                .unwrap_err();
        assert!(
            err.to_string()
                .contains("unknown field `concurrencyPolicy`"),
            "{err}"
        );
    }
}
