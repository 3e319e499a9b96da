//! Service endpoints: whether a Service still has a ready backend, read from
//! its EndpointSlices as the endpointslice controller maintains them.
//!
//! A Service whose every endpoint is not ready (readiness probes failing) or
//! that has no endpoints at all (selector matching nothing) drops every
//! connection: [`SignalKind::EndpointsEmpty`].

use futures::{StreamExt, TryStreamExt};
use jiff::Timestamp;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::watcher;
use kube::{Api, Client};

use super::classify::Finding;
use super::{DetectError, SignalStream, into_observation, watch};
use crate::vocab::SignalKind;

/// Label the endpointslice controller puts on every slice of a Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// Annotation with the time of the pod change the slice reflects.
const TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";

/// Endpoints across `slices` that may receive traffic. An endpoint whose
/// `ready` condition is unset counts as ready, as the API documents.
pub fn ready_endpoints(slices: &[EndpointSlice]) -> usize {
    slices
        .iter()
        .flat_map(|s| s.endpoints.iter())
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true))
        .count()
}

/// [`SignalKind::EndpointsEmpty`] when `slices` (all slices of `service`)
/// hold no ready endpoint.
pub fn endpoints_finding(service: &str, slices: &[EndpointSlice]) -> Option<Finding> {
    if ready_endpoints(slices) > 0 {
        return None;
    }
    let total: usize = slices.iter().map(|s| s.endpoints.len()).sum();
    let message = if total == 0 {
        format!("service {service} has no endpoints: its selector matches no running pod")
    } else {
        format!(
            "service {service} has {total} endpoint(s), none ready: every backend fails its readiness probe"
        )
    };
    let since = slices
        .iter()
        .filter_map(|s| s.metadata.annotations.as_ref()?.get(TRIGGER_TIME))
        .filter_map(|t| t.parse::<Timestamp>().ok())
        .max();
    Some(Finding {
        kind: SignalKind::EndpointsEmpty,
        container: None,
        reason: if total == 0 {
            "NoEndpoints".into()
        } else {
            "NoReadyEndpoints".into()
        },
        message,
        since,
    })
}

/// Watches the EndpointSlices of `service` in `namespace` and reports
/// [`SignalKind::EndpointsEmpty`] on `service/<name>` whenever none is ready.
pub fn watch_service_endpoints(client: &Client, namespace: &str, service: &str) -> SignalStream {
    let api: Api<EndpointSlice> = Api::namespaced(client.clone(), namespace);
    let cfg = watcher::Config::default().labels(&format!("{SERVICE_NAME_LABEL}={service}"));
    let service = service.to_string();
    watch::views(watch::events(api, cfg))
        .map_err(DetectError::from)
        .try_filter_map(move |view| {
            let slices: Vec<EndpointSlice> = view.iter().map(|s| (**s).clone()).collect();
            let found = endpoints_finding(&service, &slices)
                .map(|f| into_observation(f, format!("service/{service}")));
            futures::future::ready(Ok(found))
        })
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn slice(ready: &[Option<bool>]) -> EndpointSlice {
        let endpoints: Vec<serde_json::Value> = ready
            .iter()
            .enumerate()
            .map(|(i, r)| {
                serde_json::json!({
                    "addresses": [format!("10.244.0.{}", i + 10)],
                    "conditions": {"ready": r},
                })
            })
            .collect();
        serde_json::from_value(serde_json::json!({
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": "api-x1",
                "annotations": {TRIGGER_TIME: "2026-03-01T10:00:02Z"},
            },
            "addressType": "IPv4",
            "endpoints": endpoints,
        }))
        .expect("an EndpointSlice")
    }

    #[rstest]
    #[case::all_ready(&[Some(true), Some(true)], None)]
    #[case::one_ready(&[Some(false), Some(true)], None)]
    #[case::unset_means_ready(&[None], None)]
    #[case::none_ready(&[Some(false), Some(false)], Some("NoReadyEndpoints"))]
    #[case::no_endpoints(&[], Some("NoEndpoints"))]
    fn a_service_is_empty_only_without_a_ready_endpoint(
        #[case] ready: &[Option<bool>],
        #[case] reason: Option<&str>,
    ) {
        let found = endpoints_finding("api", &[slice(ready)]);
        assert_eq!(found.as_ref().map(|f| f.reason.as_str()), reason);
        if let Some(f) = found {
            assert_eq!(f.kind, SignalKind::EndpointsEmpty);
            assert_eq!(f.since, "2026-03-01T10:00:02Z".parse().ok());
        }
    }

    #[test]
    fn no_slices_at_all_is_empty() {
        let f = endpoints_finding("api", &[]).expect("empty");
        assert_eq!(f.reason, "NoEndpoints");
        assert_eq!(f.since, None);
    }
}
