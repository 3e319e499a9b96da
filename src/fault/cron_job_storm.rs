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
//! minutes for `* * * * *`), so the first Job appears up to 60 s after
//! injection, its pods a moment later. Detection SLOs must allow for that.

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
            ctx.create_tree(obj).await?;
        }
        let bound = self.surge_bound();
        let selector = self.selector();
        Ok(Injection {
            summary: format!(
                "{} CronJob(s) {}-1… in {ns}: `{}`, concurrencyPolicy Allow, {} pod(s) per job sleeping {}; surge past {} pods or {} jobs",
                self.cron_jobs,
                self.name,
                self.schedule,
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
