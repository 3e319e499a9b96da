//! Availability from a canary's own counters: each canary pod's `/status`
//! (the workload image's JSON) read through the API server's pod proxy once
//! at injection and once at recovery; the difference is the fault window.
//! Two reads, no polling: the canary itself samples continuously.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};
use serde::Deserialize;

use crate::slo::measurement::{AvailabilityMeasurement, CanaryPodWindow};

/// How long one `/status` read may take.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// The fields of the workload's `/status` that availability and latency need.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CanaryCounters {
    /// The workload mode (`http-canary`, …).
    #[serde(default)]
    pub mode: Option<String>,
    /// Lifetime successes.
    pub ok: u64,
    /// Lifetime checks.
    pub total: u64,
    /// Process start (RFC 3339); a change means the canary restarted.
    pub since: String,
    /// The canary's last failure message.
    #[serde(default)]
    pub last_error: Option<String>,
    /// Every check since start by latency bucket; absent from workload
    /// images older than the histogram.
    #[serde(default)]
    pub latency_histogram: Option<HistogramRead>,
}

/// The workload's `latency_histogram`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct HistogramRead {
    /// The sum of all checks' latencies, in milliseconds.
    #[serde(default)]
    pub sum_ms: f64,
    /// The histogram's buckets, cumulative as Prometheus writes them.
    pub buckets: Vec<BucketRead>,
}

/// One bucket of [`HistogramRead`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct BucketRead {
    /// Absent from the first images with a histogram: estimated from
    /// `le_us` (the buckets are a quarter of a doubling wide).
    #[serde(default)]
    pub gt_us: Option<u64>,
    /// The bucket's upper bound in microseconds; `None` for +Inf.
    pub le_us: Option<u64>,
    /// Successful checks at most that slow.
    #[serde(default)]
    pub ok: u64,
    /// Failed checks at most that slow.
    #[serde(default)]
    pub failed: u64,
}

impl BucketRead {
    /// The lower bound, exclusive.
    pub fn lower_us(&self) -> u64 {
        self.gt_us.unwrap_or_else(|| match self.le_us {
            Some(le) if le > 100 => (le as f64 / 2f64.powf(0.25)).round() as u64,
            _ => 0,
        })
    }
}

/// Why one canary pod's counters could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// The pod did not answer in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The request through the API server's pod proxy failed.
    #[error("GET {path}: {message}")]
    Request {
        /// The proxy path asked.
        path: String,
        /// What the API server or the connection said.
        message: String,
    },
    /// The pod answered with something that is not the workload's `/status`.
    #[error("{pod}: /status is not the workload's JSON ({message}); is it a breakfix canary?")]
    NotWorkload {
        /// The pod.
        pod: String,
        /// Why the answer did not parse.
        message: String,
    },
}

/// One read of every canary pod.
#[derive(Debug, Clone, Default)]
pub struct CanaryRead {
    /// When the counters were read.
    pub at: Option<Timestamp>,
    /// Pod name → its counters, or why they could not be read.
    pub pods: BTreeMap<String, Result<CanaryCounters, ReadError>>,
    /// Listing the pods failed.
    pub error: Option<String>,
}

/// Where the canary is.
#[derive(Debug, Clone)]
pub struct Canary {
    /// The canary pods' namespace.
    pub namespace: String,
    /// The label selector of the canary pods.
    pub selector: String,
    /// The port their status endpoint listens on.
    pub port: u16,
}

impl Canary {
    /// `app=web-canary -n shop`, as reports name it.
    pub fn label(&self) -> String {
        format!("{} -n {}", self.selector, self.namespace)
    }

    /// Reads every running canary pod's counters.
    pub async fn read(&self, client: &Client) -> CanaryRead {
        let api: Api<Pod> = Api::namespaced(client.clone(), &self.namespace);
        let pods = match api
            .list(&ListParams::default().labels(&self.selector))
            .await
        {
            Ok(list) => list.items,
            Err(e) => {
                return CanaryRead {
                    at: Some(Timestamp::now()),
                    error: Some(format!("cannot list pods: {e}")),
                    ..CanaryRead::default()
                };
            }
        };
        let running: Vec<String> = pods
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .map(ResourceExt::name_any)
            .collect();
        let reads = running.iter().map(|name| async move {
            let result = tokio::time::timeout(READ_TIMEOUT, self.read_pod(client, name))
                .await
                .unwrap_or(Err(ReadError::Timeout(READ_TIMEOUT)));
            (name.clone(), result)
        });
        let pods = futures::future::join_all(reads).await.into_iter().collect();
        CanaryRead {
            at: Some(Timestamp::now()),
            pods,
            error: None,
        }
    }

    async fn read_pod(&self, client: &Client, pod: &str) -> Result<CanaryCounters, ReadError> {
        let path = format!(
            "/api/v1/namespaces/{}/pods/{pod}:{}/proxy/status",
            self.namespace, self.port
        );
        let failed = |message: String| ReadError::Request {
            path: path.clone(),
            message,
        };
        let request = http::Request::get(&path)
            .body(Vec::new())
            .map_err(|e| failed(e.to_string()))?;
        let body = client
            .request_text(request)
            .await
            .map_err(|e| failed(e.to_string()))?;
        serde_json::from_str(&body).map_err(|e| ReadError::NotWorkload {
            pod: pod.to_string(),
            message: e.to_string(),
        })
    }
}

/// The fault window from two reads: per pod, the counters' growth between
/// them, allowing for canaries that restarted, appeared or went away.
pub fn window(canary: &str, first: &CanaryRead, second: &CanaryRead) -> AvailabilityMeasurement {
    let mut m = AvailabilityMeasurement {
        canary: canary.to_string(),
        over: None,
        from: first.at,
        to: second.at,
        ..AvailabilityMeasurement::default()
    };
    if let Some(e) = first.error.as_ref().or(second.error.as_ref()) {
        m.error = Some(e.clone());
        return m;
    }
    let names: BTreeSet<&String> = first.pods.keys().chain(second.pods.keys()).collect();
    if names.is_empty() {
        m.error = Some("no running pods match the selector".into());
        return m;
    }
    for name in names {
        let (ok, total, note, last_error) = match (first.pods.get(name), second.pods.get(name)) {
            (Some(Ok(a)), Some(Ok(b))) if a.since == b.since && b.total >= a.total => (
                b.ok.saturating_sub(a.ok),
                b.total - a.total,
                None,
                b.last_error.clone(),
            ),
            (Some(Ok(_)), Some(Ok(b))) => (
                b.ok,
                b.total,
                Some("restarted during the window; counted from its restart".to_string()),
                b.last_error.clone(),
            ),
            (None | Some(Err(_)), Some(Ok(b))) => (
                b.ok,
                b.total,
                Some(match first.pods.get(name) {
                    Some(Err(e)) => {
                        format!("unreadable at injection ({e}); counted from its start")
                    }
                    _ => "started during the window; counted from its start".to_string(),
                }),
                b.last_error.clone(),
            ),
            (Some(Ok(_)), None) => (
                0,
                0,
                Some("gone before recovery; its checks in the window are unknown".to_string()),
                None,
            ),
            (_, Some(Err(e))) => (0, 0, Some(format!("unreadable at recovery: {e}")), None),
            (Some(Err(e)), None) => (0, 0, Some(format!("unreadable at injection: {e}")), None),
            (None, None) => continue,
        };
        m.ok += ok;
        m.total += total;
        m.pods.push(CanaryPodWindow {
            pod: name.clone(),
            ok,
            total,
            note,
            last_error,
        });
    }
    if m.total == 0 && m.pods.iter().all(|p| p.note.is_some()) {
        let why: Vec<String> = m
            .pods
            .iter()
            .filter_map(|p| p.note.as_ref().map(|n| format!("{}: {n}", p.pod)))
            .collect();
        m.error = Some(format!(
            "no canary could be read over the window ({})",
            why.join("; ")
        ));
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn counters(ok: u64, total: u64, since: &str) -> Result<CanaryCounters, ReadError> {
        Ok(CanaryCounters {
            mode: None,
            ok,
            total,
            since: since.into(),
            last_error: (ok < total).then(|| "timeout".to_string()),
            latency_histogram: None,
        })
    }

    fn read(pods: &[(&str, Result<CanaryCounters, ReadError>)]) -> CanaryRead {
        CanaryRead {
            at: Some("2026-01-01T00:00:00Z".parse().unwrap()),
            pods: pods
                .iter()
                .map(|(n, c)| (n.to_string(), c.clone()))
                .collect(),
            error: None,
        }
    }

    #[rstest]
    // Steady canary: only the growth counts.
    #[case(&[("a", counters(100, 100, "t0"))], &[("a", counters(190, 200, "t0"))], 90, 100, None)]
    // Restarted canary: its counters start over; count from the restart.
    #[case(&[("a", counters(100, 100, "t0"))], &[("a", counters(5, 10, "t1"))], 5, 10, Some("restarted"))]
    // A pod that appeared during the window counts from its start.
    #[case(&[("a", counters(10, 10, "t0"))], &[("a", counters(20, 20, "t0")), ("b", counters(3, 4, "t2"))], 13, 14, Some("started during the window"))]
    // A pod that vanished contributes nothing and says so.
    #[case(&[("a", counters(10, 10, "t0")), ("b", counters(10, 10, "t0"))], &[("a", counters(20, 20, "t0"))], 10, 10, Some("gone before recovery"))]
    fn counts_the_growth_between_two_reads(
        #[case] first: &[(&str, Result<CanaryCounters, ReadError>)],
        #[case] second: &[(&str, Result<CanaryCounters, ReadError>)],
        #[case] ok: u64,
        #[case] total: u64,
        #[case] note: Option<&str>,
    ) {
        let m = window("app=c -n shop", &read(first), &read(second));
        assert_eq!((m.ok, m.total), (ok, total), "{m:?}");
        assert_eq!(m.error, None);
        match note {
            Some(n) => assert!(
                m.pods
                    .iter()
                    .any(|p| p.note.as_deref().is_some_and(|x| x.contains(n))),
                "{m:?}"
            ),
            None => assert!(m.pods.iter().all(|p| p.note.is_none()), "{m:?}"),
        }
    }

    #[test]
    fn no_canary_pods_is_an_error_not_a_perfect_score() {
        let m = window("app=c -n shop", &read(&[]), &read(&[]));
        assert_eq!(m.ratio(), None);
        assert!(m.error.unwrap().contains("no running pods"));
    }

    #[test]
    fn unreadable_canaries_are_an_error() {
        let m = window(
            "app=c -n shop",
            &read(&[("a", Err(ReadError::Timeout(READ_TIMEOUT)))]),
            &read(&[("a", Err(ReadError::Timeout(READ_TIMEOUT)))]),
        );
        assert_eq!(m.ratio(), None);
        assert!(m.error.unwrap().contains("unreadable"), "no canary read");
    }

    #[test]
    fn parses_the_workload_status_json() {
        let body = r#"{"mode":"http-canary","ready":true,"total":12,"ok":11,"failed":1,
            "last_error":"GET http://web/: 503","last_error_at":null,
            "latency_ms":{"p50":1.0,"p95":2.0,"max":3.0},
            "window":{"seconds":10.0,"total":5,"ok":5,"failed":0,"success_ratio":1.0},
            "counters":{},"gauges":{},"since":"2026-01-01T00:00:00Z","uptime_seconds":3.0,
            "ready_policy":"always","version":"0.1.0","config":{}}"#;
        let c: CanaryCounters = serde_json::from_str(body).unwrap();
        assert_eq!((c.ok, c.total), (11, 12));
        assert_eq!(c.last_error.as_deref(), Some("GET http://web/: 503"));
    }
}
