//! Canaries: pods of breakfix's workload image (`dns-canary`, `api-canary`,
//! `http-canary`) that exercise a cluster service from the inside and report
//! through their Ready condition and their `/status` JSON.
//!
//! The kubelet's readiness probe turns a failing canary Unready; the pod watch
//! sees that at once. The canary's `/status` (read through the API server's pod
//! proxy, so no port-forward and no network path of our own) then says what
//! failed (`403 Forbidden: …`, `kubernetes.default: timed out after 2s`), which
//! faults map to their own signal ([`SignalKind::DnsFailures`],
//! [`SignalKind::Forbidden`], …).

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use futures::{Stream, StreamExt, TryStreamExt};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{DetectError, Observation};
use crate::vocab::{Name, SignalKind};

/// The port every workload mode serves `/status` on.
pub const DEFAULT_PORT: u16 = 8080;
/// How long reading a canary's `/status` may take.
const STATUS_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a canary runs: its namespace and pod label selector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CanaryRef {
    /// The canary pod's namespace.
    pub namespace: Name,
    /// Label selector of the canary's pods, e.g. `app=dns-canary`.
    pub selector: String,
    /// Port of its `/status` endpoint.
    #[serde(default = "default_port")]
    pub port: u16,
}

fn default_port() -> u16 {
    DEFAULT_PORT
}

/// What a canary's `/status` says (the fields breakfix reads; see
/// workload/src/state.rs for the whole document).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CanaryStatus {
    /// What the canary checks (`http`, `dns`, `api`).
    pub mode: String,
    /// Whether the canary considers itself ready.
    pub ready: bool,
    /// Checks since the canary started.
    #[serde(default)]
    pub total: u64,
    /// Of them, checks that succeeded.
    #[serde(default)]
    pub ok: u64,
    /// Of them, checks that failed.
    #[serde(default)]
    pub failed: u64,
    /// The last failure's message.
    #[serde(default)]
    pub last_error: Option<String>,
    /// When the last failure happened, as the canary wrote it.
    #[serde(default)]
    pub last_error_at: Option<String>,
    /// The counts over the canary's recent window.
    #[serde(default)]
    pub window: CanaryWindow,
    /// Failures by kind (`forbidden`, `timeout`, `servfail`, …).
    #[serde(default)]
    pub counters: BTreeMap<String, u64>,
    /// The canary's effective settings (names, resource, url…).
    #[serde(default)]
    pub config: serde_json::Value,
    /// The latency readiness rule (`--ready-max-latency`) and where the
    /// window stands against it; absent without the rule (or from images
    /// older than it).
    #[serde(default)]
    pub latency_gate: Option<LatencyGate>,
}

/// A canary's latency rule: not Ready while `percentile` of its latencies
/// over the window is above `max_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct LatencyGate {
    /// The percentile the gate is on (e.g. 95.0).
    pub percentile: f64,
    /// The bound, in milliseconds.
    pub max_ms: f64,
    /// The latency seen at that percentile, when there were checks.
    #[serde(default)]
    pub observed_ms: Option<f64>,
    /// The window's latency is above the threshold now.
    pub over: bool,
}

/// Counts over the canary's recent window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
pub struct CanaryWindow {
    /// The window's length.
    #[serde(default)]
    pub seconds: f64,
    /// Checks in the window.
    #[serde(default)]
    pub total: u64,
    /// Of them, checks that succeeded.
    #[serde(default)]
    pub ok: u64,
    /// Of them, checks that failed.
    #[serde(default)]
    pub failed: u64,
}

impl CanaryStatus {
    /// Whether the canary says it is slow: its latency rule is over.
    pub fn slow(&self) -> bool {
        self.latency_gate.is_some_and(|g| g.over)
    }

    /// Whether its checks fail by its own success rule, as far as `/status`
    /// tells: the window's ratio under `ready_threshold` (http, dns), or
    /// failures in the window when the rule is another (api-canary).
    pub fn failing(&self) -> bool {
        let threshold = self.config.get("ready_threshold").and_then(|t| t.as_f64());
        match threshold {
            Some(t) if self.window.total > 0 => {
                (self.window.ok as f64 / self.window.total as f64) + 1e-9 < t
            }
            Some(_) => true,
            None => self.window.failed > 0 || self.window.total == 0,
        }
    }

    /// `p95 latency 312ms > 200ms`, when the canary is slow.
    pub fn slow_summary(&self) -> Option<String> {
        let g = self.latency_gate.filter(|g| g.over)?;
        Some(format!(
            "p{} latency {}ms > {}ms over the last {}s",
            g.percentile,
            g.observed_ms.unwrap_or_default(),
            g.max_ms,
            self.window.seconds
        ))
    }

    /// The HTTP status of the last failed call, when the error starts with
    /// one (`403 Forbidden: configmaps is forbidden: …`).
    pub fn last_http_status(&self) -> Option<u16> {
        let error = self.last_error.as_deref()?;
        let code = error.split_whitespace().next()?;
        (code.len() == 3).then(|| code.parse().ok()).flatten()
    }

    /// One line for evidence: recent success, failure kinds, last error.
    pub fn summary(&self) -> String {
        let counters = self
            .counters
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut out = format!(
            "{} /status: {}/{} ok in the last {}s ({} failed since start",
            self.mode, self.window.ok, self.window.total, self.window.seconds, self.failed
        );
        if !counters.is_empty() {
            out.push_str(&format!(": {counters}"));
        }
        out.push(')');
        if let Some(error) = &self.last_error {
            out.push_str(&format!("; last error: {error}"));
        }
        out
    }
}

/// A canary pod that turned Unready, with what its `/status` said then.
#[derive(Debug, Clone)]
pub struct UnreadyCanary {
    /// The canary pod.
    pub pod: Pod,
    /// The status document, or why it could not be read.
    pub status: Result<CanaryStatus, String>,
    /// When the pod's Ready condition turned False.
    pub since: Option<Timestamp>,
}

impl UnreadyCanary {
    /// The pod's name.
    pub fn name(&self) -> String {
        self.pod.name_any()
    }

    /// An observation of `kind` on this pod: `message` first, the canary's
    /// status summary as evidence.
    pub fn observe(&self, kind: SignalKind, reason: &str, message: String) -> Observation {
        let namespace = self.pod.namespace().unwrap_or_default();
        let mut evidence = vec![format!(
            "canary pod {namespace}/{} is Unready (kubectl describe pod {} -n {namespace})",
            self.name(),
            self.name()
        )];
        match &self.status {
            Ok(status) => evidence.push(status.summary()),
            Err(why) => evidence.push(format!("canary /status unreadable: {why}")),
        }
        Observation {
            kind,
            object: format!("pod/{}", self.name()),
            container: None,
            reason: reason.to_string(),
            message,
            seen_at: Timestamp::now(),
            since: self.since,
            evidence,
        }
    }
}

/// When a running pod's Ready condition turned False; `None` if it is Ready
/// (or not running yet).
pub fn unready_since(pod: &Pod) -> Option<Option<Timestamp>> {
    let status = pod.status.as_ref()?;
    if status.phase.as_deref() != Some("Running") || pod.metadata.deletion_timestamp.is_some() {
        return None;
    }
    status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Ready" && c.status == "False")
        .map(|c| c.last_transition_time.as_ref().map(|t| t.0))
}

/// Reads `pod`'s `/status` through the API server's pod proxy.
///
/// # Errors
///
/// Why the status could not be read, in words: the proxy request failed,
/// no answer came in time, or the answer is not a canary status document.
pub async fn read_status(client: &Client, pod: &Pod, port: u16) -> Result<CanaryStatus, String> {
    let namespace = pod.namespace().unwrap_or_default();
    let request = kube::core::Request::new(format!("/api/v1/namespaces/{namespace}/pods"))
        .get_subresource("proxy/status", &format!("{}:{port}", pod.name_any()))
        .map_err(|e| e.to_string())?;
    let text = tokio::time::timeout(STATUS_TIMEOUT, client.request_text(request))
        .await
        .map_err(|_| format!("no answer within {STATUS_TIMEOUT:?}"))?
        .map_err(|e| e.to_string())?;
    serde_json::from_str(&text).map_err(|e| format!("not a canary status document ({e})"))
}

/// Every time a canary pod matching `canary` turns Unready (once per
/// transition), its pod and `/status`.
pub fn watch_unready(
    client: &Client,
    canary: &CanaryRef,
) -> impl Stream<Item = Result<UnreadyCanary, DetectError>> + Send + 'static {
    let api: Api<Pod> = Api::namespaced(client.clone(), canary.namespace.as_str());
    let cfg = watcher::Config::default().labels(&canary.selector);
    let mut reported = HashSet::new();
    let client = client.clone();
    let port = canary.port;
    super::watch::objects(super::watch::events(api, cfg))
        .map_err(DetectError::from)
        .try_filter_map(move |pod| {
            let fresh = unready_since(&pod).filter(|since| {
                reported.insert((pod.metadata.uid.clone().unwrap_or_default(), *since))
            });
            futures::future::ready(Ok(fresh.map(|since| (pod, since))))
        })
        .and_then(move |(pod, since)| {
            let client = client.clone();
            async move {
                let status = read_status(&client, &pod, port).await;
                Ok(UnreadyCanary { pod, status, since })
            }
        })
}

/// Reads a DNS canary's Unready turn as [`SignalKind::DnsFailures`].
pub fn dns_failures(canary: &UnreadyCanary) -> Observation {
    let (reason, message) = match &canary.status {
        Ok(status) => (
            status
                .counters
                .iter()
                .max_by_key(|(_, n)| **n)
                .map(|(kind, _)| kind.clone())
                .unwrap_or_else(|| "Unready".into()),
            format!(
                "DNS lookups from {} fail: {}",
                canary.name(),
                status.last_error.as_deref().unwrap_or("no error recorded")
            ),
        ),
        Err(_) => (
            "Unready".into(),
            format!("DNS canary {} turned Unready", canary.name()),
        ),
    };
    canary.observe(SignalKind::DnsFailures, &reason, message)
}

/// [`SignalKind::DnsFailures`] from the DNS canary `canary`.
pub fn watch_dns_failures(client: &Client, canary: &CanaryRef) -> super::SignalStream {
    watch_unready(client, canary)
        .map_ok(|u| dns_failures(&u))
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn status(json: serde_json::Value) -> CanaryStatus {
        serde_json::from_value(json).expect("a status document")
    }

    #[rstest]
    #[case(
        Some(
            "403 Forbidden: configmaps is forbidden: User \"system:serviceaccount:canaries:api-canary\" cannot list resource"
        ),
        Some(403)
    )]
    #[case(Some("kubernetes.default: timed out after 2s"), None)]
    #[case(Some("GET http://web/: 503 Service Unavailable"), None)]
    #[case(None, None)]
    fn the_last_http_status_is_read_off_the_error(
        #[case] error: Option<&str>,
        #[case] code: Option<u16>,
    ) {
        let s =
            status(serde_json::json!({"mode": "api-canary", "ready": false, "last_error": error}));
        assert_eq!(s.last_http_status(), code);
    }

    #[test]
    fn the_summary_carries_counts_and_the_last_error() {
        let s = status(serde_json::json!({
            "mode": "dns-canary", "ready": false, "total": 40, "ok": 30, "failed": 10,
            "last_error": "kubernetes.default.svc.cluster.local: timed out after 2s",
            "window": {"seconds": 10.0, "total": 12, "ok": 3, "failed": 9},
            "counters": {"timeout": 8, "servfail": 2},
        }));
        assert_eq!(
            s.summary(),
            "dns-canary /status: 3/12 ok in the last 10s (10 failed since start: servfail=2, timeout=8); last error: kubernetes.default.svc.cluster.local: timed out after 2s"
        );
    }
}
