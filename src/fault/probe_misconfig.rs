//! probeMisconfig: the probe mistakes teams make, one variant each.
//!
//! The story: Zalando's 2019 talk lists "wrong readinessprobe" and
//! "livenessprobe = readinessprobe" among the most common mistakes (and
//! links "Kubernetes liveness probes are dangerous"); "Build, Break, and
//! Survive" (2025) warns that misconfigured probes can keep an app from ever
//! starting. Each [`ProbeMistake`] changes one probe of one container (the
//! Deployment is journaled and restored exactly), and each shows up
//! differently, which is what detection must tell apart:
//!
//! | mistake | what the cluster reports | expected signals |
//! |---|---|---|
//! | livenessWrongPort | `Liveness probe failed: … connection refused`, restarts, back-off | Restarted, CrashLoopBackOff |
//! | livenessWrongPath | `Liveness probe failed: … statuscode: 404`, restarts, back-off | Restarted, CrashLoopBackOff |
//! | livenessTimeout | `Liveness probe failed: … context deadline exceeded` | ProbeTimeout |
//! | readinessFailing | `Readiness probe failed: … 404`, pods never Ready, Service empty | ReadinessFailed |
//! | startupTooShort | `Container … failed startup probe, will be restarted` | StartupFailed |
//! | livenessIsReadiness | under load: Unready, then liveness kills the pods too | Restarted |

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Probe, Service};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{DynamicObject, Patch};
use kube::{Api, Client};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::target::LiveDeployment;
use super::{DeploymentRef, Fault, FaultContext, FaultError, Injection};
use crate::detect::endpoints::watch_service_endpoints;
use crate::vocab::{HumanDuration, SignalKind};

/// Every signal some mistake counts as detection ([`ProbeMistake::signals`]).
const DEFAULT_SIGNALS: &[SignalKind] = &[
    SignalKind::Restarted,
    SignalKind::CrashLoopBackOff,
    SignalKind::ProbeTimeout,
    SignalKind::ReadinessFailed,
    SignalKind::StartupFailed,
];
const SUPPORTED: &[SignalKind] = &[
    SignalKind::Restarted,
    SignalKind::CrashLoopBackOff,
    SignalKind::LivenessFailed,
    SignalKind::ProbeTimeout,
    SignalKind::ReadinessFailed,
    SignalKind::Unready,
    SignalKind::EndpointsEmpty,
    SignalKind::StartupFailed,
    SignalKind::RolloutStalled,
];

/// The image the load pods run.
const WORKLOAD_IMAGE: &str = "breakfix/workload:0.1.0";

/// The mistake to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ProbeMistake {
    /// The liveness probe checks a port nothing listens on (its port + 1).
    LivenessWrongPort,
    /// The liveness probe checks a path the app does not serve (`/healthz` → `/health`).
    LivenessWrongPath,
    /// The liveness probe's timeout (1s) is shorter than the app takes to answer.
    LivenessTimeout,
    /// The readiness probe checks a path the app does not serve (`/readyz` → `/ready`).
    ReadinessFailing,
    /// The startup probe allows 2s, less than the app needs to start.
    StartupTooShort,
    /// The liveness probe is a copy of the readiness probe; with `load`, the
    /// readiness failures under load now restart the pods.
    LivenessIsReadiness,
}

impl ProbeMistake {
    /// The signals this mistake shows first.
    pub fn signals(self) -> &'static [SignalKind] {
        match self {
            Self::LivenessWrongPort | Self::LivenessWrongPath => {
                &[SignalKind::Restarted, SignalKind::CrashLoopBackOff]
            }
            Self::LivenessTimeout => &[SignalKind::ProbeTimeout],
            // Not EndpointsEmpty or Unready: a Recreate rollout empties the
            // Service and every starting pod is Unready even when nothing is
            // wrong; only the failing readiness probe tells this mistake.
            Self::ReadinessFailing => &[SignalKind::ReadinessFailed],
            Self::StartupTooShort => &[SignalKind::StartupFailed],
            Self::LivenessIsReadiness => &[SignalKind::Restarted],
        }
    }
}

/// HTTP load on the target's Service, from pods the fault creates.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpLoad {
    /// Load pods, each sending one request at a time.
    #[serde(default = "default_pods")]
    #[schemars(range(min = 1, max = 50))]
    pub pods: u32,
    /// Pause between one pod's requests.
    #[serde(default = "default_interval")]
    pub interval: HumanDuration,
    /// Service to load; default: the first one selecting the target's pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The load generator's image.
    #[serde(default = "default_image")]
    pub image: String,
}

fn default_pods() -> u32 {
    4
}

fn default_interval() -> HumanDuration {
    HumanDuration(std::time::Duration::from_millis(1))
}

fn default_image() -> String {
    WORKLOAD_IMAGE.into()
}

/// The probeMisconfig fault's settings.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProbeMisconfig {
    /// The Deployment whose probe is broken.
    pub target: DeploymentRef,
    /// Container whose probe to break; default: the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// What is wrong with the probe.
    pub mistake: ProbeMistake,
    /// Load that makes `livenessIsReadiness` bite (only for that mistake).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<HttpLoad>,
}

/// A misconfigured probe: which field of the container, the probe, and what changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Misconfigured {
    /// `livenessProbe`, `readinessProbe` or `startupProbe`.
    pub field: &'static str,
    /// The probe after the change.
    pub probe: Probe,
    /// The change, in words.
    pub change: String,
}

/// Makes `mistake` in `container`'s probes; an error says why the container
/// cannot have this mistake (no such probe, nothing to change).
pub fn misconfigure(container: &Container, mistake: ProbeMistake) -> Result<Misconfigured, String> {
    let need = |probe: &Option<Probe>, what: &str| {
        probe
            .clone()
            .ok_or_else(|| format!("container {} has no {what} to misconfigure", container.name))
    };
    match mistake {
        ProbeMistake::LivenessWrongPort => {
            let mut probe = need(&container.liveness_probe, "livenessProbe")?;
            let port = match (&mut probe.http_get, &mut probe.tcp_socket) {
                (Some(h), _) => &mut h.port,
                (None, Some(t)) => &mut t.port,
                (None, None) => {
                    return Err(format!(
                        "the livenessProbe of {} probes no port (exec/grpc)",
                        container.name
                    ));
                }
            };
            let current = resolve_port(container, port)?;
            let wrong = current.checked_add(1).filter(|p| *p <= 65535).unwrap_or(1);
            *port = IntOrString::Int(wrong);
            Ok(Misconfigured {
                field: "livenessProbe",
                probe,
                change: format!("liveness probe port {current} → {wrong}"),
            })
        }
        ProbeMistake::LivenessWrongPath | ProbeMistake::ReadinessFailing => {
            let (field, source, what) = if mistake == ProbeMistake::ReadinessFailing {
                ("readinessProbe", &container.readiness_probe, "readiness")
            } else {
                ("livenessProbe", &container.liveness_probe, "liveness")
            };
            let mut probe = need(source, field)?;
            let get = probe.http_get.as_mut().ok_or_else(|| {
                format!(
                    "the {field} of {} is not an httpGet probe; it has no path",
                    container.name
                )
            })?;
            let current = get.path.clone().unwrap_or_else(|| "/".into());
            let wrong = mistyped_path(&current);
            get.path = Some(wrong.clone());
            Ok(Misconfigured {
                field,
                probe,
                change: format!("{what} probe path {current} → {wrong}"),
            })
        }
        ProbeMistake::LivenessTimeout => {
            let mut probe = need(&container.liveness_probe, "livenessProbe")?;
            let current = probe.timeout_seconds.unwrap_or(1);
            if current <= 1 {
                return Err(format!(
                    "the livenessProbe of {} already times out after 1s",
                    container.name
                ));
            }
            probe.timeout_seconds = Some(1);
            Ok(Misconfigured {
                field: "livenessProbe",
                probe,
                change: format!("liveness probe timeout {current}s → 1s"),
            })
        }
        ProbeMistake::StartupTooShort => {
            let mut probe = match &container.startup_probe {
                Some(p) => p.clone(),
                None => Probe {
                    initial_delay_seconds: None,
                    ..need(&container.liveness_probe, "startupProbe or livenessProbe")?
                },
            };
            let allowance =
                |p: &Probe| p.failure_threshold.unwrap_or(3) * p.period_seconds.unwrap_or(10);
            let before = container.startup_probe.as_ref().map(allowance);
            probe.failure_threshold = Some(2);
            probe.period_seconds = Some(1);
            probe.success_threshold = Some(1);
            let after = allowance(&probe);
            Ok(Misconfigured {
                field: "startupProbe",
                probe,
                change: match before {
                    Some(b) => format!("startup probe allowance {b}s → {after}s"),
                    None => format!("startup probe added with an allowance of {after}s"),
                },
            })
        }
        ProbeMistake::LivenessIsReadiness => {
            let probe = need(&container.readiness_probe, "readinessProbe")?;
            if container.liveness_probe.as_ref() == Some(&probe) {
                return Err(format!(
                    "the livenessProbe of {} already equals its readinessProbe",
                    container.name
                ));
            }
            Ok(Misconfigured {
                field: "livenessProbe",
                probe,
                change: "liveness probe := readiness probe".into(),
            })
        }
    }
}

/// The port number a probe's port means for `container`.
fn resolve_port(container: &Container, port: &IntOrString) -> Result<i32, String> {
    match port {
        IntOrString::Int(p) => Ok(*p),
        IntOrString::String(name) => container
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .map(|p| p.container_port)
            .ok_or_else(|| format!("container {} has no port named {name}", container.name)),
    }
}

/// A plausible slip of `path`: its last character dropped (`/healthz` →
/// `/health`), or `/health` for the root.
pub fn mistyped_path(path: &str) -> String {
    if path.len() > 1 {
        path[..path.len() - 1].to_string()
    } else {
        "/health".into()
    }
}

/// Services in `live`'s namespace whose selector picks its pods.
pub async fn selecting_services(
    client: &Client,
    live: &LiveDeployment,
) -> Result<Vec<String>, FaultError> {
    let api: Api<Service> = Api::namespaced(client.clone(), live.namespace());
    let services = api.list(&Default::default()).await.map_err(|source| {
        FaultError::Target(format!(
            "cannot list services in {}: {source}",
            live.namespace()
        ))
    })?;
    let labels = live
        .deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    Ok(services
        .into_iter()
        .filter(|s| {
            s.spec
                .as_ref()
                .and_then(|spec| spec.selector.as_ref())
                .is_some_and(|sel| selects(sel, &labels))
        })
        .filter_map(|s| s.metadata.name)
        .collect())
}

/// Whether a Service selector picks pods labelled `labels` (an empty
/// selector picks nothing: such Services have manually managed endpoints).
pub fn selects(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// The strategic-merge patch that puts `m` into container `name`, replacing
/// the probe wholesale (no merging with the old probe's handler).
pub fn probe_patch(container: &str, m: &Misconfigured) -> Result<serde_json::Value, FaultError> {
    let mut probe = serde_json::to_value(&m.probe).map_err(|e| FaultError::Decode {
        what: m.field.into(),
        detail: e.to_string(),
    })?;
    if let Some(map) = probe.as_object_mut() {
        map.insert("$patch".into(), json!("replace"));
    }
    Ok(
        json!({"spec": {"template": {"spec": {"containers": [{"name": container, m.field: probe}]}}}}),
    )
}

/// One load pod: `breakfix-workload http-canary` against `url`.
pub fn load_pod(
    name: &str,
    namespace: &str,
    url: &str,
    load: &HttpLoad,
) -> Result<DynamicObject, FaultError> {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/name": "breakfix-http-load"},
        },
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "http-load",
                "image": load.image,
                "imagePullPolicy": "IfNotPresent",
                "args": [
                    "http-canary", "--url", url,
                    "--interval", format!("{}ms", load.interval.get().as_millis().max(1)),
                    "--timeout", "10s",
                    "--summary-interval", "10s",
                ],
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
            }],
        },
    }))
    .map_err(|e| FaultError::Decode {
        what: format!("pod/{name}"),
        detail: e.to_string(),
    })
}

impl Fault for ProbeMisconfig {
    const KEY: &'static str = "probeMisconfig";
    const SUMMARY: &'static str = "misconfigures one probe: liveness on a wrong port/path or with a too-tight timeout, readiness failing, startup allowance too short, liveness = readiness under load";
    const STORY: &'static str = "Zalando (2019): \"wrong readinessprobe\" and \"livenessprobe = readinessprobe\" among the commonest mistakes; \"Build, Break, and Survive\" (2025): misconfigured probes keep apps from starting";
    const DEFAULT_SIGNALS: &'static [SignalKind] = DEFAULT_SIGNALS;
    const SUPPORTED_SIGNALS: &'static [SignalKind] = SUPPORTED;

    fn default_signals(&self) -> &'static [SignalKind] {
        self.mistake.signals()
    }

    fn objects(&self) -> Vec<super::Named> {
        let mut out = vec![self.target.named("target")];
        if let Some(service) = self.load.as_ref().and_then(|l| l.service.clone()) {
            out.push(super::Named {
                key: "load",
                kind: "Service".into(),
                namespace: Some(self.target.namespace.to_string()),
                name: service,
            });
        }
        out
    }

    fn namespace(&self) -> Option<&str> {
        Some(self.target.namespace.as_str())
    }

    fn validate(&self) -> Result<(), String> {
        match (&self.load, self.mistake) {
            (Some(_), ProbeMistake::LivenessIsReadiness) | (None, _) => Ok(()),
            (Some(_), other) => Err(format!(
                "load only applies to livenessIsReadiness, not {}",
                serde_json::to_value(other)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            )),
        }
    }

    async fn inject(&self, ctx: &mut FaultContext<'_>) -> Result<Injection, FaultError> {
        let live = LiveDeployment::fetch(ctx, &self.target).await?;
        let container = live.container(self.container.as_deref())?;
        let m = misconfigure(container, self.mistake)
            .map_err(|why| FaultError::Target(format!("{}: {why}", live.target)))?;
        let services = selecting_services(&ctx.client, &live).await?;
        let scope = live.scope();

        let mut loaded = String::new();
        if let Some(load) = &self.load {
            let service = load
                .service
                .clone()
                .or_else(|| services.first().cloned())
                .ok_or_else(|| {
                    FaultError::Target(format!("no Service selects {}'s pods to load", live.target))
                })?;
            let url = format!("http://{service}.{}.svc.cluster.local/", live.namespace());
            let stamp = jiff::Timestamp::now().as_millisecond() & 0xff_ffff;
            for i in 0..load.pods {
                let name = format!("breakfix-http-load-{stamp:x}-{i}");
                ctx.create(load_pod(&name, live.namespace(), &url, load)?)
                    .await?;
            }
            loaded = format!(
                "; {} load pod(s) GET {url} every {}",
                load.pods, load.interval
            );
        }

        ctx.patch(
            &live.target,
            &Patch::Strategic(probe_patch(&container.name, &m)?),
        )
        .await?;
        let extra = services
            .iter()
            .map(|s| watch_service_endpoints(&ctx.client, live.namespace(), s))
            .collect();
        Ok(Injection {
            summary: format!(
                "{}: container {}: {}{loaded}",
                live.target, container.name, m.change
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

    /// The `api` container of experiments/baselines/probes.
    fn api() -> Container {
        serde_json::from_value(json!({
            "name": "api",
            "image": "breakfix/workload:0.1.0",
            "ports": [{"name": "http", "containerPort": 8080}],
            "startupProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 1, "failureThreshold": 30, "timeoutSeconds": 3},
            "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 2, "failureThreshold": 2, "timeoutSeconds": 3},
            "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 2, "failureThreshold": 3, "timeoutSeconds": 3},
        }))
        .expect("a container")
    }

    #[rstest]
    #[case(
        ProbeMistake::LivenessWrongPort,
        "livenessProbe",
        "liveness probe port 8080 → 8081"
    )]
    #[case(
        ProbeMistake::LivenessWrongPath,
        "livenessProbe",
        "liveness probe path /healthz → /health"
    )]
    #[case(
        ProbeMistake::LivenessTimeout,
        "livenessProbe",
        "liveness probe timeout 3s → 1s"
    )]
    #[case(
        ProbeMistake::ReadinessFailing,
        "readinessProbe",
        "readiness probe path /readyz → /ready"
    )]
    #[case(
        ProbeMistake::StartupTooShort,
        "startupProbe",
        "startup probe allowance 30s → 2s"
    )]
    #[case(
        ProbeMistake::LivenessIsReadiness,
        "livenessProbe",
        "liveness probe := readiness probe"
    )]
    fn each_mistake_changes_one_probe(
        #[case] mistake: ProbeMistake,
        #[case] field: &str,
        #[case] change: &str,
    ) {
        let m = misconfigure(&api(), mistake).expect("misconfigurable");
        assert_eq!(m.field, field);
        assert_eq!(m.change, change);
        let before = match field {
            "livenessProbe" => api().liveness_probe,
            "readinessProbe" => api().readiness_probe,
            _ => api().startup_probe,
        };
        assert_ne!(Some(m.probe), before, "the probe must differ");
    }

    #[test]
    fn the_wrong_port_is_numeric_and_the_rest_is_kept() {
        let m = misconfigure(&api(), ProbeMistake::LivenessWrongPort).expect("ok");
        let get = m.probe.http_get.expect("httpGet");
        assert_eq!(get.port, IntOrString::Int(8081));
        assert_eq!(get.path.as_deref(), Some("/healthz"));
        assert_eq!(m.probe.period_seconds, Some(2));
    }

    #[rstest]
    #[case::no_liveness(ProbeMistake::LivenessWrongPort, "livenessProbe")]
    #[case::no_readiness(ProbeMistake::ReadinessFailing, "readinessProbe")]
    #[case::nothing_to_copy(ProbeMistake::LivenessIsReadiness, "readinessProbe")]
    fn a_missing_probe_is_a_clear_error(#[case] mistake: ProbeMistake, #[case] says: &str) {
        let bare: Container = serde_json::from_value(json!({"name": "bare"})).expect("a container");
        let err = misconfigure(&bare, mistake).expect_err("nothing to misconfigure");
        assert!(err.contains(says), "{err}");
    }

    #[test]
    fn the_patch_replaces_the_probe_wholesale() {
        let m = misconfigure(&api(), ProbeMistake::LivenessIsReadiness).expect("ok");
        let patch = probe_patch("api", &m).expect("a patch");
        let probe = &patch["spec"]["template"]["spec"]["containers"][0]["livenessProbe"];
        assert_eq!(probe["$patch"], "replace");
        assert_eq!(probe["httpGet"]["path"], "/readyz");
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[rstest]
    #[case(&[("app", "web")], &[("app", "web"), ("pod-template-hash", "x")], true)]
    #[case(&[("app", "web"), ("tier", "front")], &[("app", "web")], false)]
    #[case(&[("app", "api")], &[("app", "web")], false)]
    #[case(&[], &[("app", "web")], false)]
    fn service_selectors_pick_pods_by_every_label(
        #[case] selector: &[(&str, &str)],
        #[case] pod: &[(&str, &str)],
        #[case] picked: bool,
    ) {
        assert_eq!(selects(&labels(selector), &labels(pod)), picked);
    }

    #[rstest]
    #[case("/healthz", "/health")]
    #[case("/readyz", "/ready")]
    #[case("/", "/health")]
    fn paths_are_mistyped_plausibly(#[case] path: &str, #[case] wrong: &str) {
        assert_eq!(mistyped_path(path), wrong);
    }

    #[rstest]
    #[case(ProbeMistake::LivenessWrongPort, SignalKind::Restarted)]
    #[case(ProbeMistake::LivenessTimeout, SignalKind::ProbeTimeout)]
    #[case(ProbeMistake::ReadinessFailing, SignalKind::ReadinessFailed)]
    #[case(ProbeMistake::StartupTooShort, SignalKind::StartupFailed)]
    fn mistakes_expect_different_signals(
        #[case] mistake: ProbeMistake,
        #[case] signal: SignalKind,
    ) {
        assert!(mistake.signals().contains(&signal));
        let others = [
            ProbeMistake::LivenessWrongPort,
            ProbeMistake::LivenessTimeout,
            ProbeMistake::ReadinessFailing,
            ProbeMistake::StartupTooShort,
        ];
        for other in others.into_iter().filter(|o| *o != mistake) {
            assert!(
                !other.signals().contains(&signal),
                "{other:?} also expects {signal}"
            );
        }
    }
}
