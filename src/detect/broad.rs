//! Broad detection, for faults whose effect is not known in advance (the
//! generic `patch`, `delete` and `scale` primitives, where the user names
//! the signals they expect): every Service of a namespace that was serving
//! before the fault, every canary there, every node.
//!
//! Which Services were serving is read *before* the fault, so a Service that
//! never had a ready endpoint (a headless placeholder, a Service for a
//! workload not deployed) is not mistaken for one the fault emptied.

use std::collections::BTreeMap;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::ListParams;
use kube::{Api, Client};

use super::canary::{CanaryRef, UnreadyCanary, watch_unready};
use super::endpoints::{SERVICE_NAME_LABEL, ready_endpoints, watch_service_endpoints};
use super::nodes::watch_nodes;
use super::{Observation, SignalStream};
use crate::vocab::{Name, SignalKind};

/// Label that marks a pod as a canary (its value: the canary's mode, e.g. `http`).
pub const CANARY_LABEL: &str = "breakfix.dev/canary";

/// The Services in `namespace` that have at least one ready endpoint now.
///
/// # Errors
///
/// The API server's error when the EndpointSlices cannot be listed.
pub async fn serving_services(
    client: &Client,
    namespace: &str,
) -> Result<Vec<String>, kube::Error> {
    let api: Api<EndpointSlice> = Api::namespaced(client.clone(), namespace);
    let slices = api
        .list(&ListParams::default().labels(SERVICE_NAME_LABEL))
        .await?;
    let mut by_service: BTreeMap<String, Vec<EndpointSlice>> = BTreeMap::new();
    for slice in slices {
        if let Some(service) = slice
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(SERVICE_NAME_LABEL))
            .cloned()
        {
            by_service.entry(service).or_default().push(slice);
        }
    }
    Ok(by_service
        .into_iter()
        .filter(|(_, slices)| ready_endpoints(slices) > 0)
        .map(|(service, _)| service)
        .collect())
}

/// A canary turned Unready, as [`SignalKind::CanaryFailing`], with what its
/// `/status` said.
pub fn canary_failing(canary: &UnreadyCanary) -> Observation {
    let detail = match &canary.status {
        Ok(status) => status
            .last_error
            .clone()
            .unwrap_or_else(|| "no error recorded".into()),
        Err(why) => format!("/status unreadable: {why}"),
    };
    canary.observe(
        SignalKind::CanaryFailing,
        "Unready",
        format!("canary {} turned Unready: {detail}", canary.name()),
    )
}

/// What a canary's Unready turn means: [`SignalKind::LatencyAbove`] when
/// its `/status` says its latency rule is over, [`SignalKind::CanaryFailing`]
/// when its checks fail (or `/status` cannot tell), both when both hold.
pub fn canary_signals(canary: &UnreadyCanary) -> Vec<Observation> {
    let mut out = Vec::new();
    if let Ok(status) = &canary.status
        && let Some(slow) = status.slow_summary()
    {
        out.push(canary.observe(
            SignalKind::LatencyAbove,
            "LatencyAbove",
            format!("canary {} turned Unready: {slow}", canary.name()),
        ));
        if !status.failing() {
            return out;
        }
    }
    out.push(canary_failing(canary));
    out
}

/// [`SignalKind::CanaryFailing`] and [`SignalKind::LatencyAbove`] from the
/// canary pods `canary` selects.
pub fn watch_canaries_failing(client: &Client, canary: &CanaryRef) -> SignalStream {
    watch_unready(client, canary)
        .map_ok(|u| futures::stream::iter(canary_signals(&u).into_iter().map(Ok)))
        .try_flatten()
        .boxed()
}

/// The canaries of `namespace`: pods labelled [`CANARY_LABEL`].
pub fn namespace_canaries(namespace: &Name) -> CanaryRef {
    CanaryRef {
        namespace: namespace.clone(),
        selector: CANARY_LABEL.to_string(),
        port: super::canary::DEFAULT_PORT,
    }
}

/// Every broad source for `namespace`: EndpointsEmpty for each of `serving`
/// (taken before the fault with [`serving_services`]), CanaryFailing for its
/// canaries, NodeNotReady for every node.
pub fn watch_broadly(client: &Client, namespace: &Name, serving: &[String]) -> Vec<SignalStream> {
    let mut sources: Vec<SignalStream> = serving
        .iter()
        .map(|service| watch_service_endpoints(client, namespace.as_str(), service))
        .collect();
    sources.push(watch_canaries_failing(
        client,
        &namespace_canaries(namespace),
    ));
    sources.push(watch_nodes(client, None));
    sources
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::canary::CanaryStatus;

    fn unready(status: Result<CanaryStatus, String>) -> UnreadyCanary {
        UnreadyCanary {
            pod: serde_json::from_value(serde_json::json!({"metadata": {"name": "http-canary-1"}}))
                .expect("a pod"),
            status,
            since: None,
        }
    }

    #[test]
    fn a_failing_canary_says_what_its_last_error_was() {
        let status: CanaryStatus = serde_json::from_value(serde_json::json!({
            "mode": "http-canary", "ready": false,
            "last_error": "GET http://web/: connection refused",
        }))
        .expect("a status");
        let obs = canary_failing(&unready(Ok(status)));
        assert_eq!(obs.kind, SignalKind::CanaryFailing);
        assert_eq!(obs.object, "pod/http-canary-1");
        assert_eq!(
            obs.message,
            "canary http-canary-1 turned Unready: GET http://web/: connection refused"
        );
    }

    fn status(json: serde_json::Value) -> CanaryStatus {
        serde_json::from_value(json).expect("a status")
    }

    #[rstest::rstest]
    // Slow but every check succeeds: latency only.
    #[case(true, 10, 10, &[SignalKind::LatencyAbove])]
    // Slow and failing under the 0.9 rule: both.
    #[case(true, 5, 10, &[SignalKind::LatencyAbove, SignalKind::CanaryFailing])]
    // Failing, not slow: as before.
    #[case(false, 5, 10, &[SignalKind::CanaryFailing])]
    fn an_unready_canary_says_whether_it_is_slow_or_failing(
        #[case] over: bool,
        #[case] ok: u64,
        #[case] total: u64,
        #[case] kinds: &[SignalKind],
    ) {
        let s = status(serde_json::json!({
            "mode": "http-canary", "ready": false,
            "window": {"seconds": 4.0, "total": total, "ok": ok, "failed": total - ok},
            "config": {"ready_threshold": 0.9},
            "latency_gate": {"percentile": 95.0, "max_ms": 200.0, "observed_ms": 312.0, "over": over},
        }));
        let observed: Vec<SignalKind> = canary_signals(&unready(Ok(s)))
            .iter()
            .map(|o| o.kind)
            .collect();
        assert_eq!(observed, kinds);
        if over {
            let obs = &canary_signals(&unready(Ok(status(serde_json::json!({
                "mode": "http-canary", "ready": false,
                "window": {"seconds": 4.0, "total": 8, "ok": 8, "failed": 0},
                "config": {"ready_threshold": 0.9},
                "latency_gate": {"percentile": 95.0, "max_ms": 200.0, "observed_ms": 312.0, "over": true},
            })))))[0];
            assert_eq!(
                obs.message,
                "canary http-canary-1 turned Unready: p95 latency 312ms > 200ms over the last 4s"
            );
        }
    }

    #[test]
    fn an_unreadable_status_is_said_so() {
        let obs = canary_failing(&unready(Err("no answer within 5s".into())));
        assert!(
            obs.message
                .ends_with("/status unreadable: no answer within 5s"),
            "{}",
            obs.message
        );
    }
}
