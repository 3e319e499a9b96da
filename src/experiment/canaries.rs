//! What a baseline's manifests say about the canaries an experiment reads:
//! which pod templates a canary selector picks, and in which workload mode
//! they run, so that a latency bound on a canary that records no latency
//! (a `sleep` pod, or a pod not running breakfix's workload image at all)
//! is refused when the file is loaded, not after a cluster was made.

use kube::api::DynamicObject;
use serde_json::Value;

use crate::baseline::LoadedBaseline;

/// The image every canary runs (any tag).
pub const WORKLOAD_IMAGE: &str = "breakfix/workload";

/// Workload modes that record a latency for each check (`/status`
/// `latency_histogram`). `sleep` records none.
pub const LATENCY_MODES: &[&str] = &[
    "serve",
    "dns-canary",
    "dns-load",
    "api-canary",
    "http-canary",
    "http-load",
];

/// Every mode the workload image has.
const MODES: &[&str] = &[
    "serve",
    "dns-canary",
    "dns-load",
    "api-canary",
    "http-canary",
    "http-load",
    "sleep",
];

/// A pod template a canary selector picks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanaryPods {
    /// `deployment/http-canary`.
    pub object: String,
    /// The workload mode of its workload-image container, `None` when no
    /// container runs the workload image.
    pub mode: Option<String>,
}

impl CanaryPods {
    /// Whether its checks carry a latency.
    pub fn records_latency(&self) -> bool {
        self.mode
            .as_deref()
            .is_some_and(|m| LATENCY_MODES.contains(&m))
    }
}

/// The pod templates of `baseline` in `namespace` whose labels `selector`
/// matches; `None` when the baseline does not manage `namespace` (the
/// canary lives elsewhere, and the manifests cannot tell).
pub fn canary_pods(
    baseline: &LoadedBaseline,
    namespace: &str,
    selector: &str,
) -> Option<Vec<CanaryPods>> {
    if !super::references::namespaces(baseline).contains(namespace) {
        return None;
    }
    let own = baseline.spec.namespace.as_str();
    let requirements = parse_selector(selector);
    Some(
        baseline
            .objects
            .iter()
            .filter(|o| o.metadata.namespace.as_deref().unwrap_or(own) == namespace)
            .filter_map(|o| {
                let (labels, template) = pod_template(o)?;
                requirements
                    .iter()
                    .all(|r| r.matches(labels.as_ref()))
                    .then(|| CanaryPods {
                        object: format!(
                            "{}/{}",
                            o.types
                                .as_ref()
                                .map(|t| t.kind.to_lowercase())
                                .unwrap_or_default(),
                            o.metadata.name.as_deref().unwrap_or("")
                        ),
                        mode: workload_mode(template),
                    })
            })
            .collect(),
    )
}

/// The pod labels and the pod template (what holds `spec.containers`) of
/// a workload object, or of a bare pod.
pub(super) fn pod_template(o: &DynamicObject) -> Option<(Option<Value>, &Value)> {
    let kind = o.types.as_ref()?.kind.as_str();
    let pointer = match kind {
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => "/spec/template",
        "CronJob" => "/spec/jobTemplate/spec/template",
        "Pod" => {
            let labels = o
                .metadata
                .labels
                .as_ref()
                .and_then(|l| serde_json::to_value(l).ok());
            return Some((labels, &o.data));
        }
        _ => return None,
    };
    let template = o.data.pointer(pointer)?;
    Some((template.pointer("/metadata/labels").cloned(), template))
}

/// The mode of the first container running the workload image: its first
/// argument when that names a mode, else `serve` (the image's default).
fn workload_mode(template: &Value) -> Option<String> {
    let containers = template.pointer("/spec/containers")?.as_array()?;
    let container = containers.iter().find(|c| {
        c.get("image")
            .and_then(Value::as_str)
            .is_some_and(|i| i.starts_with(WORKLOAD_IMAGE))
    })?;
    let first = container
        .pointer("/args/0")
        .or_else(|| container.pointer("/command/1"))
        .and_then(Value::as_str);
    Some(match first {
        Some(m) if MODES.contains(&m) => m.to_string(),
        _ => "serve".to_string(),
    })
}

/// One `key=value`, `key==value` or `key!=value` requirement.
struct Requirement {
    key: String,
    value: String,
    equal: bool,
}

impl Requirement {
    fn matches(&self, labels: Option<&Value>) -> bool {
        let actual = labels
            .and_then(|l| l.get(&self.key))
            .and_then(Value::as_str);
        (actual == Some(self.value.as_str())) == self.equal
    }
}

fn parse_selector(selector: &str) -> Vec<Requirement> {
    selector
        .split(',')
        .filter_map(|part| {
            let part = part.trim();
            let (key, value, equal) = if let Some((k, v)) = part.split_once("!=") {
                (k, v, false)
            } else if let Some((k, v)) = part.split_once("==") {
                (k, v, true)
            } else {
                let (k, v) = part.split_once('=')?;
                (k, v, true)
            };
            Some(Requirement {
                key: key.trim().to_string(),
                value: value.trim().to_string(),
                equal,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const MANIFESTS: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: http-canary}
spec:
  selector: {matchLabels: {app: http-canary}}
  template:
    metadata: {labels: {app: http-canary, tier: canary}}
    spec:
      containers: [{name: c, image: "breakfix/workload:0.1.0", args: [http-canary, --url, "http://web/"]}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "breakfix/workload:0.1.0"}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nap}
spec:
  schedule: "* * * * *"
  jobTemplate:
    spec:
      template:
        metadata: {labels: {app: nap, tier: canary}}
        spec:
          containers: [{name: s, image: "breakfix/workload:0.1.0", args: [sleep]}]
---
apiVersion: v1
kind: Pod
metadata: {name: nginx, labels: {app: nginx}}
spec:
  containers: [{name: n, image: "nginx:1.27"}]
"#;

    fn baseline() -> (tempfile::TempDir, LoadedBaseline) {
        crate::baseline::loaded_for_test(MANIFESTS)
    }

    #[rstest]
    #[case("app=http-canary", &[("deployment/http-canary", Some("http-canary"))])]
    #[case("app=web", &[("deployment/web", Some("serve"))])]
    #[case("app=nap", &[("cronjob/nap", Some("sleep"))])]
    #[case("app=nginx", &[("pod/nginx", None)])]
    #[case("tier=canary,app!=nap", &[("deployment/http-canary", Some("http-canary"))])]
    #[case("app=nothing", &[])]
    fn finds_the_pods_a_selector_picks_and_their_mode(
        #[case] selector: &str,
        #[case] expected: &[(&str, Option<&str>)],
    ) {
        let (_dir, b) = baseline();
        let found = canary_pods(&b, "shop", selector).unwrap();
        let got: Vec<(&str, Option<&str>)> = found
            .iter()
            .map(|p| (p.object.as_str(), p.mode.as_deref()))
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn only_latency_modes_record_latency() {
        let (_dir, b) = baseline();
        let pods = |s| canary_pods(&b, "shop", s).unwrap();
        assert!(pods("app=http-canary")[0].records_latency());
        assert!(!pods("app=nap")[0].records_latency());
        assert!(!pods("app=nginx")[0].records_latency());
        assert_eq!(canary_pods(&b, "elsewhere", "app=web"), None);
    }
}
