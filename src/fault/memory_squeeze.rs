//! memorySqueeze: a container's memory limit lowered, and real load driven
//! at it until the limit is exceeded.
//!
//! The story (Zalando, "Why I love Kubernetes failure stories", 2019,
//! incident #1): a spike of HTTP requests became a spike of DNS queries —
//! no DNS caching in the clients, and `ndots:5` makes every external name
//! first walk the pod's search domains — CoreDNS's memory grew past its
//! fixed limit and it was OOMKilled, taking cluster DNS (and the monitoring
//! that depended on it) down.
//!
//! By default the target is CoreDNS. The fault creates a load pod (journaled,
//! so the revert deletes it) running `breakfix-workload dns-load` against
//! names that are all different (so neither CoreDNS's cache nor the
//! client's absorbs them: every lookup is new work and a new cache entry)
//! and shorter than ndots (so each walks the search list, several queries
//! per lookup), then lowers the memory limit (journaled: the revert restores
//! the exact Deployment). Signals: OOMKilled and restarts on the CoreDNS
//! pods, and DNS failures seen by a dns-canary (its Unready turn, with its
//! `/status` as evidence).

use kube::api::{DynamicObject, Patch};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::target::LiveDeployment;
use super::{Claim, DeploymentRef, Fault, FaultContext, FaultError, Injection, SharedResource};
use crate::detect::canary::{CanaryRef, watch_dns_failures};
use crate::vocab::{Name, SignalKind};

const DEFAULT_SIGNALS: &[SignalKind] = &[SignalKind::OOMKilled, SignalKind::DnsFailures];
const SUPPORTED: &[SignalKind] = &[
    SignalKind::OOMKilled,
    SignalKind::Restarted,
    SignalKind::CrashLoopBackOff,
    SignalKind::DnsFailures,
    SignalKind::Unready,
];

/// The image the load pod runs.
pub const WORKLOAD_IMAGE: &str = "breakfix/workload:0.1.0";
/// Label on the load pods, so they can be found (and cleaned up) by name.
pub const LOAD_LABEL: &str = "app.kubernetes.io/name";
/// Its value.
pub const LOAD_APP: &str = "breakfix-dns-load";

/// The memorySqueeze fault's settings.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MemorySqueeze {
    /// The workload to squeeze (default: kube-system/coredns).
    #[serde(default = "coredns")]
    pub target: DeploymentRef,
    /// Container to squeeze; default: the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// The new memory limit, a Kubernetes quantity (`24Mi`).
    pub limit: String,
    /// The DNS load that makes the squeeze bite.
    pub load: DnsLoad,
    /// A dns-canary whose Unready turn is [`SignalKind::DnsFailures`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryRef>,
}

fn coredns() -> DeploymentRef {
    DeploymentRef {
        namespace: Name::new("kube-system").expect("a constant, valid name"),
        deployment: Name::new("coredns").expect("a constant, valid name"),
    }
}

/// DNS query load from one pod.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DnsLoad {
    /// Where the load pod runs (its resolv.conf decides the search list).
    pub namespace: Name,
    /// Lookups started per second (each is several queries: search list × A/AAAA).
    #[serde(default = "default_rate")]
    #[schemars(range(min = 1, max = 100000))]
    pub lookups_per_second: u32,
    /// Most lookups in flight at once.
    #[serde(default = "default_concurrency")]
    #[schemars(range(min = 1, max = 10000))]
    pub concurrency: u32,
    /// Domains the unique names are made under (`q17-<run>.www.example.com`).
    #[serde(default = "default_domains")]
    pub domains: Vec<String>,
    /// How many distinct names the load cycles through.
    #[serde(default = "default_unique")]
    #[schemars(range(min = 1, max = 20000))]
    pub unique_names: u32,
    /// The load pod's image.
    #[serde(default = "default_image")]
    pub image: String,
}

fn default_rate() -> u32 {
    400
}

fn default_concurrency() -> u32 {
    256
}

fn default_domains() -> Vec<String> {
    vec!["www.example.com".into()]
}

fn default_unique() -> u32 {
    4000
}

fn default_image() -> String {
    WORKLOAD_IMAGE.into()
}

/// Bytes in a Kubernetes memory quantity (`24Mi`, `100M`, `1.5Gi`, `33554432`).
pub fn memory_bytes(quantity: &str) -> Option<u64> {
    let q = quantity.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(q.len());
    let (number, suffix) = q.split_at(split);
    let value: f64 = number.parse().ok()?;
    let factor: f64 = match suffix {
        "" => 1.0,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let bytes = value * factor;
    (bytes.is_finite() && bytes >= 1.0).then_some(bytes as u64)
}

/// `count` distinct names under `domains` (round robin), salted so a second
/// trial does not find the first trial's answers in any cache. Each has
/// fewer dots than ndots:5, so a resolver tries every search domain first.
pub fn unique_names(domains: &[String], count: u32, salt: &str) -> Vec<String> {
    (0..count as usize)
        .map(|i| {
            let domain = &domains[i % domains.len().max(1)];
            format!("q{i}-{salt}.{domain}")
        })
        .collect()
}

/// The load pod: `breakfix-workload dns-load` over `names`.
pub fn load_pod(name: &str, load: &DnsLoad, names: &[String]) -> Result<DynamicObject, FaultError> {
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": load.namespace.as_str(),
            "labels": {LOAD_LABEL: LOAD_APP},
        },
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "restartPolicy": "Always",
            "containers": [{
                "name": "dns-load",
                "image": load.image,
                "imagePullPolicy": "IfNotPresent",
                "args": [
                    "dns-load",
                    "--qps", load.lookups_per_second.to_string(),
                    "--concurrency", load.concurrency.to_string(),
                    "--timeout", "2s",
                    "--summary-interval", "10s",
                    "--names", names.join(","),
                ],
                "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080}, "periodSeconds": 2},
                "resources": {"requests": {"cpu": "100m", "memory": "32Mi"}},
            }],
        },
    });
    serde_json::from_value(pod).map_err(|e| FaultError::Decode {
        what: format!("pod/{name}"),
        detail: e.to_string(),
    })
}

impl Fault for MemorySqueeze {
    const KEY: &'static str = "memorySqueeze";
    const SUMMARY: &'static str = "lowers a container's memory limit (CoreDNS by default) and drives DNS query load (ndots:5 search-list expansion, unique names) until it is exceeded";
    const STORY: &'static str = "Zalando (2019), incident #1: a DNS query spike (no client caching, ndots:5) pushed CoreDNS past its fixed memory limit; OOMKilled, cluster DNS down";
    const DEFAULT_SIGNALS: &'static [SignalKind] = DEFAULT_SIGNALS;
    const SUPPORTED_SIGNALS: &'static [SignalKind] = SUPPORTED;

    fn objects(&self) -> Vec<super::Named> {
        vec![self.target.named("target")]
    }

    fn canaries(&self) -> Vec<super::NamedCanary> {
        self.canary
            .iter()
            .map(|c| super::NamedCanary {
                key: "canary",
                namespace: c.namespace.to_string(),
                selector: c.selector.clone(),
            })
            .collect()
    }

    fn namespace(&self) -> Option<&str> {
        Some(self.target.namespace.as_str())
    }

    /// The squeezed Deployment (CoreDNS: cluster DNS, which every workload
    /// uses) and the namespace the DNS load runs in.
    fn claims(&self) -> Vec<Claim> {
        let target = if self.target.namespace.as_str() == "kube-system"
            && self.target.deployment.as_str() == "coredns"
        {
            Claim::Shared(SharedResource::ClusterDns)
        } else {
            Claim::of_namespace(Some(self.target.namespace.as_str()))
        };
        vec![
            target,
            Claim::of_namespace(Some(self.load.namespace.as_str())),
        ]
    }

    fn validate(&self) -> Result<(), String> {
        if memory_bytes(&self.limit).is_none() {
            return Err(format!(
                "limit `{}` is not a memory quantity like 24Mi",
                self.limit
            ));
        }
        let load = &self.load;
        if load.domains.is_empty() || load.domains.iter().any(|d| d.trim().is_empty()) {
            return Err("load.domains must name at least one domain".into());
        }
        if load.domains.iter().any(|d| d.matches('.').count() >= 4) {
            return Err(
                "load.domains: names must have fewer than 4 dots, or ndots:5 would not walk the search list"
                    .into(),
            );
        }
        if load.lookups_per_second == 0 || load.concurrency == 0 || load.unique_names == 0 {
            return Err(
                "load.lookupsPerSecond, concurrency and uniqueNames must be at least 1".into(),
            );
        }
        Ok(())
    }

    async fn inject(&self, ctx: &mut FaultContext<'_>) -> Result<Injection, FaultError> {
        let live = LiveDeployment::fetch(ctx, &self.target).await?;
        let container = live.container(self.container.as_deref())?;
        let resources = container.resources.clone().unwrap_or_default();
        let memory = |m: &Option<
            std::collections::BTreeMap<
                String,
                k8s_openapi::apimachinery::pkg::api::resource::Quantity,
            >,
        >| {
            m.as_ref()
                .and_then(|m| m.get("memory"))
                .map(|q| q.0.clone())
        };
        let old_limit = memory(&resources.limits).unwrap_or_else(|| "none".into());
        let limit_bytes = memory_bytes(&self.limit)
            .ok_or_else(|| FaultError::Target(format!("bad limit {}", self.limit)))?;
        // A request above the new limit would be refused; lower it with the limit.
        let request = memory(&resources.requests)
            .filter(|r| memory_bytes(r).is_some_and(|b| b <= limit_bytes))
            .unwrap_or_else(|| self.limit.clone());

        // The load first, so the squeezed pods meet it from their first second.
        let stamp = jiff::Timestamp::now().as_millisecond();
        let salt = format!("{:x}", stamp & 0xff_ffff);
        let pod_name = format!("{LOAD_APP}-{salt}");
        let names = unique_names(&self.load.domains, self.load.unique_names, &salt);
        ctx.create(load_pod(&pod_name, &self.load, &names)?).await?;

        let scope = live.scope();
        let patch = json!({"spec": {"template": {"spec": {"containers": [{
            "name": container.name,
            "resources": {"limits": {"memory": self.limit}, "requests": {"memory": request}},
        }]}}}});
        ctx.patch(&live.target, &Patch::Strategic(patch)).await?;

        let extra = self
            .canary
            .iter()
            .map(|c| watch_dns_failures(&ctx.client, c))
            .collect();
        Ok(Injection {
            summary: format!(
                "{}: container {} memory limit {old_limit} → {}; load pod {}/{pod_name}: {} lookups/s over {} unique names (ndots:5 search-list walk)",
                live.target,
                container.name,
                self.limit,
                self.load.namespace,
                self.load.lookups_per_second,
                self.load.unique_names
            ),
            scope,
            extra,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("24Mi", Some(24 * 1024 * 1024))]
    #[case("170Mi", Some(170 * 1024 * 1024))]
    #[case("1.5Gi", Some(1536 * 1024 * 1024))]
    #[case("100M", Some(100_000_000))]
    #[case("33554432", Some(33_554_432))]
    #[case("24MB", None)]
    #[case("Mi", None)]
    #[case("", None)]
    fn memory_quantities(#[case] q: &str, #[case] bytes: Option<u64>) {
        assert_eq!(memory_bytes(q), bytes);
    }

    #[test]
    fn names_are_unique_salted_and_below_ndots() {
        let domains = vec!["www.example.com".to_string(), "api.example.org".to_string()];
        let names = unique_names(&domains, 1000, "a1b2");
        let distinct: std::collections::HashSet<&String> = names.iter().collect();
        assert_eq!(distinct.len(), 1000);
        assert_eq!(names[0], "q0-a1b2.www.example.com");
        assert_eq!(names[1], "q1-a1b2.api.example.org");
        assert!(names.iter().all(|n| n.matches('.').count() < 5));
        assert_ne!(
            unique_names(&domains, 1, "ffff"),
            unique_names(&domains, 1, "a1b2")
        );
    }

    #[test]
    fn the_load_pod_runs_dns_load_over_every_name() {
        let load: DnsLoad =
            serde_json::from_value(json!({"namespace": "canaries"})).expect("defaults");
        let names = unique_names(&load.domains, 3, "s");
        let pod = load_pod("breakfix-dns-load-s", &load, &names).expect("a pod");
        let args = &pod.data["spec"]["containers"][0]["args"];
        assert_eq!(args[0], "dns-load");
        assert_eq!(args[2], "400");
        assert_eq!(
            args.as_array().and_then(|a| a.last()),
            Some(&json!(
                "q0-s.www.example.com,q1-s.www.example.com,q2-s.www.example.com"
            ))
        );
        assert_eq!(pod.metadata.namespace.as_deref(), Some("canaries"));
    }

    #[rstest]
    #[case("24Mi", vec!["www.example.com"], true)]
    #[case("24 megs", vec!["www.example.com"], false)]
    #[case("24Mi", vec![], false)]
    #[case("24Mi", vec!["a.b.c.d.example.com"], false)]
    fn settings_are_checked(#[case] limit: &str, #[case] domains: Vec<&str>, #[case] ok: bool) {
        let fault: MemorySqueeze = serde_json::from_value(json!({
            "limit": limit,
            "load": {"namespace": "canaries", "domains": domains},
        }))
        .expect("a fault");
        assert_eq!(fault.validate().is_ok(), ok, "{:?}", fault.validate());
        assert_eq!(fault.target, coredns());
    }
}
