//! How many experiments a cluster holds at once (`--jobs auto`): the
//! nodes' allocatable CPU and memory, less what running pods request,
//! against what the largest baseline requests (its workloads with a
//! rollout's surge pod each), capped by the nodes' CPUs.
//!
//! Requests are what the scheduler counts, so they decide whether the pods
//! of several baselines fit at all. They say little about what the pods
//! really burn while they start, probe and roll out, and nothing about the
//! control plane's own work per pod; on a small kind node that, not the
//! requests, is what runs out first (BENCHMARKS.md has the measurements
//! behind [`JOBS_PER_CPU`]).

use k8s_openapi::api::core::v1::{Node, Pod, PodSpec};
use kube::api::ListParams;
use kube::{Api, Client};

use crate::experiment::LoadedExperiment;

/// At most this many experiments per allocatable CPU of the nodes: on this
/// project's 2-core kind node the built-in suite ran fastest with six at
/// once, every verdict the same as one at a time (BENCHMARKS.md).
pub const JOBS_PER_CPU: u64 = 3;

/// CPU (millicores) and memory (bytes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    /// CPU, in millicores.
    pub cpu_millis: u64,
    /// Memory, in bytes.
    pub memory: u64,
}

impl Resources {
    fn add(&mut self, other: Self) {
        self.cpu_millis += other.cpu_millis;
        self.memory += other.memory;
    }

    fn times(self, n: u64) -> Self {
        Self {
            cpu_millis: self.cpu_millis * n,
            memory: self.memory * n,
        }
    }
}

impl std::fmt::Display for Resources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}m CPU and {}Mi",
            self.cpu_millis,
            self.memory / (1024 * 1024)
        )
    }
}

/// The verdict: how many at once, and why, in one sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    /// How many experiments may run at once.
    pub jobs: u32,
    /// Why that many, for the progress line.
    pub why: String,
}

/// Reads the nodes and pods and judges how many of `experiments` fit at once.
///
/// # Errors
///
/// Listing nodes or pods failed.
pub async fn judge(
    client: &Client,
    experiments: &[LoadedExperiment],
) -> Result<Judgement, kube::Error> {
    let nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await?;
    let pods = Api::<Pod>::all(client.clone())
        .list(&ListParams::default().fields("status.phase!=Succeeded,status.phase!=Failed"))
        .await?;
    let mut allocatable = Resources::default();
    let mut cpus = 0;
    for node in nodes.items.iter().filter(|n| {
        !n.spec
            .as_ref()
            .and_then(|s| s.unschedulable)
            .unwrap_or(false)
    }) {
        let alloc = node.status.as_ref().and_then(|s| s.allocatable.as_ref());
        let get = |key: &str| alloc.and_then(|a| a.get(key)).map(|q| q.0.as_str());
        let node_resources = Resources {
            cpu_millis: get("cpu").and_then(cpu_millis).unwrap_or(0),
            memory: get("memory").and_then(bytes).unwrap_or(0),
        };
        cpus += node_resources.cpu_millis;
        allocatable.add(node_resources);
    }
    let mut requested = Resources::default();
    for pod in &pods.items {
        if let Some(spec) = &pod.spec {
            requested.add(pod_requests(spec));
        }
    }
    let largest = experiments
        .iter()
        .map(footprint)
        .max_by_key(|r| (r.cpu_millis, r.memory))
        .unwrap_or_default();
    Ok(decide(
        allocatable,
        requested,
        largest,
        cpus.div_ceil(1000),
        experiments.len(),
    ))
}

/// The decision itself, from the numbers (pure).
pub fn decide(
    allocatable: Resources,
    requested: Resources,
    largest: Resources,
    cpus: u64,
    experiments: usize,
) -> Judgement {
    let free = Resources {
        cpu_millis: allocatable.cpu_millis.saturating_sub(requested.cpu_millis),
        memory: allocatable.memory.saturating_sub(requested.memory),
    };
    let fit = |free: u64, each: u64| free.checked_div(each).unwrap_or(u64::MAX);
    let by_requests =
        fit(free.cpu_millis, largest.cpu_millis).min(fit(free.memory, largest.memory));
    let cap = (JOBS_PER_CPU * cpus).max(1);
    let jobs = by_requests.min(cap).clamp(1, experiments.max(1) as u64);
    let room = if by_requests == u64::MAX {
        "any number".to_string()
    } else {
        by_requests.to_string()
    };
    let why = format!(
        "the nodes have {free} free of requests and the largest baseline asks {largest} with a rollout's surge: room for {room}; at most {JOBS_PER_CPU} per CPU ({cpus} CPU{})",
        if cpus == 1 { "" } else { "s" }
    );
    Judgement {
        jobs: u32::try_from(jobs).unwrap_or(u32::MAX),
        why,
    }
}

/// What an experiment's baseline requests: every workload's pods, each
/// with one more pod for a rolling update's surge.
pub fn footprint(exp: &LoadedExperiment) -> Resources {
    let mut total = Resources::default();
    for obj in &exp.baseline.objects {
        let kind = obj.types.as_ref().map(|t| t.kind.as_str()).unwrap_or("");
        let (pods, template) = match kind {
            "Deployment" | "StatefulSet" | "ReplicaSet" => (
                obj.data
                    .pointer("/spec/replicas")
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(1)
                    + 1,
                obj.data.pointer("/spec/template/spec"),
            ),
            "DaemonSet" => (1, obj.data.pointer("/spec/template/spec")),
            "Job" => (
                obj.data
                    .pointer("/spec/parallelism")
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(1),
                obj.data.pointer("/spec/template/spec"),
            ),
            "Pod" => (1, obj.data.pointer("/spec")),
            _ => continue,
        };
        if let Some(spec) = template.and_then(|t| serde_json::from_value::<PodSpec>(t.clone()).ok())
        {
            total.add(pod_requests(&spec).times(pods));
        }
    }
    total
}

/// What a pod requests: its containers' requests, or its largest init
/// container's when that is more (they run one at a time, before the rest).
pub fn pod_requests(spec: &PodSpec) -> Resources {
    let of = |c: &k8s_openapi::api::core::v1::Container| {
        let requests = c.resources.as_ref().and_then(|r| r.requests.as_ref());
        let get = |key: &str| requests.and_then(|r| r.get(key)).map(|q| q.0.as_str());
        Resources {
            cpu_millis: get("cpu").and_then(cpu_millis).unwrap_or(0),
            memory: get("memory").and_then(bytes).unwrap_or(0),
        }
    };
    let mut sum = Resources::default();
    for c in &spec.containers {
        sum.add(of(c));
    }
    for c in spec.init_containers.iter().flatten() {
        let init = of(c);
        sum.cpu_millis = sum.cpu_millis.max(init.cpu_millis);
        sum.memory = sum.memory.max(init.memory);
    }
    sum
}

/// A Kubernetes quantity in its base unit (`100m` → 0.1, `16Mi` → 16777216).
pub fn quantity(s: &str) -> Option<f64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(split);
    let value: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        s if s.starts_with(['e', 'E']) => 10f64.powi(s[1..].parse().ok()?),
        _ => return None,
    };
    Some(value * factor)
}

fn cpu_millis(s: &str) -> Option<u64> {
    quantity(s).map(|v| (v * 1000.0).round() as u64)
}

fn bytes(s: &str) -> Option<u64> {
    quantity(s).map(|v| v.round() as u64)
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case("100m", 0.1)]
    #[case("2", 2.0)]
    #[case("1.5", 1.5)]
    #[case("16Mi", 16.0 * 1024.0 * 1024.0)]
    #[case("1G", 1e9)]
    #[case("128974848", 128_974_848.0)]
    #[case("1e3", 1000.0)]
    fn quantities(#[case] input: &str, #[case] expected: f64) {
        assert_eq!(quantity(input), Some(expected));
    }

    #[test]
    fn a_bad_quantity_is_none() {
        assert_eq!(quantity("lots"), None);
        assert_eq!(quantity("5Xi"), None);
    }

    const GI: u64 = 1024 * 1024 * 1024;

    #[rstest]
    #[case::capped_by_cpus(2000, 950, 2, 21, 6)]
    #[case::by_requests(2000, 1900, 2, 21, 2)]
    #[case::full_node_still_runs_one(2000, 2000, 2, 21, 1)]
    #[case::never_more_than_experiments(8000, 0, 8, 3, 3)]
    fn decides_from_free_requests_and_cpus(
        #[case] alloc_cpu: u64,
        #[case] used_cpu: u64,
        #[case] cpus: u64,
        #[case] experiments: usize,
        #[case] jobs: u32,
    ) {
        let j = decide(
            Resources {
                cpu_millis: alloc_cpu,
                memory: 20 * GI,
            },
            Resources {
                cpu_millis: used_cpu,
                memory: GI,
            },
            Resources {
                cpu_millis: 50,
                memory: 96 * 1024 * 1024,
            },
            cpus,
            experiments,
        );
        assert_eq!(j.jobs, jobs, "{}", j.why);
    }

    #[test]
    fn the_shop_asks_for_its_pods_and_a_surge_each() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/image-typo.yaml");
        let exp = crate::experiment::load_experiment(&path).unwrap_or_else(|e| panic!("{e:?}"));
        // web: 2 replicas + 1 surge × 10m/16Mi; http-canary: 1 + 1 × 5m/16Mi.
        assert_eq!(
            footprint(&exp),
            Resources {
                cpu_millis: 40,
                memory: 5 * 16 * 1024 * 1024
            }
        );
    }
}
