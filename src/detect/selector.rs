//! What a responder checks when a Service has no endpoints ("service
//! unreachable" in the incident managers' course): the Service's selector,
//! how many pods it matches, and which labels the namespace's pods carry
//! instead. Read from the API at the moment the signal is seen, and attached
//! to the observation as evidence for the diagnosis.

use std::collections::{BTreeMap, BTreeSet};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::ListParams;
use kube::{Api, Client};

use super::{Observation, SignalStream};
use crate::vocab::SignalKind;

/// `a=1,b=2` from a selector map.
pub fn selector_string(selector: &BTreeMap<String, String>) -> String {
    selector
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Whether `labels` carry every pair of `selector`.
pub fn matches(
    selector: &BTreeMap<String, String>,
    labels: Option<&BTreeMap<String, String>>,
) -> bool {
    selector
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// Evidence lines comparing `service`'s selector with `pods`' labels.
pub fn selector_evidence(service: &Service, pods: &[Pod]) -> Vec<String> {
    let name = service.metadata.name.as_deref().unwrap_or("?");
    let Some(selector) = service
        .spec
        .as_ref()
        .and_then(|s| s.selector.as_ref())
        .filter(|s| !s.is_empty())
    else {
        return vec![format!(
            "service {name} has no selector: its endpoints are managed by hand"
        )];
    };
    let live: Vec<&Pod> = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();
    let matched = live
        .iter()
        .filter(|p| matches(selector, p.metadata.labels.as_ref()))
        .count();
    let mut lines = vec![format!(
        "service {name} selects {} — {matched} of {} pod(s) in the namespace match",
        selector_string(selector),
        live.len()
    )];
    if matched == 0 {
        let keys: BTreeSet<&String> = selector.keys().collect();
        let mut carried: BTreeMap<String, usize> = BTreeMap::new();
        for pod in &live {
            let Some(labels) = pod.metadata.labels.as_ref() else {
                continue;
            };
            let pairs: BTreeMap<String, String> = labels
                .iter()
                .filter(|(k, _)| keys.contains(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if !pairs.is_empty() {
                *carried.entry(selector_string(&pairs)).or_default() += 1;
            }
        }
        if carried.is_empty() {
            lines.push(format!(
                "no pod carries any of the selector's keys ({})",
                keys.iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        } else {
            let list = carried
                .iter()
                .map(|(pairs, n)| format!("{pairs} ({n} pod(s))"))
                .collect::<Vec<_>>()
                .join(", ");
            lines.push(format!("pods carry instead: {list}"));
        }
    }
    lines
}

/// Looks up `service` and the pods of `namespace`, for [`selector_evidence`].
pub async fn lookup_evidence(client: &Client, namespace: &str, service: &str) -> Vec<String> {
    let services: Api<Service> = Api::namespaced(client.clone(), namespace);
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    match (
        services.get_opt(service).await,
        pods.list(&ListParams::default()).await,
    ) {
        (Ok(Some(svc)), Ok(list)) => selector_evidence(&svc, &list.items),
        (Ok(None), _) => vec![format!("service {service} does not exist any more")],
        (Err(e), _) | (_, Err(e)) => vec![format!(
            "could not read service {service} and its pods: {e}"
        )],
    }
}

/// Adds [`lookup_evidence`] to every [`SignalKind::EndpointsEmpty`] on a
/// `service/<name>` that `signals` yields.
pub fn with_selector_evidence(
    client: &Client,
    namespace: &str,
    signals: SignalStream,
) -> SignalStream {
    let client = client.clone();
    let namespace = namespace.to_string();
    signals
        .and_then(move |mut obs: Observation| {
            let client = client.clone();
            let namespace = namespace.clone();
            async move {
                if obs.kind == SignalKind::EndpointsEmpty
                    && let Some(service) = obs.object.strip_prefix("service/")
                {
                    let lines = lookup_evidence(&client, &namespace, service).await;
                    obs.evidence.extend(lines);
                }
                Ok(obs)
            }
        })
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn service(selector: Option<serde_json::Value>) -> Service {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web"},
            "spec": {"selector": selector},
        }))
        .expect("a service")
    }

    fn pod(labels: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({"metadata": {"name": "p", "labels": labels}}))
            .expect("a pod")
    }

    #[rstest]
    #[case::mismatch(
        Some(serde_json::json!({"app": "ewb"})),
        vec![pod(serde_json::json!({"app": "web"})), pod(serde_json::json!({"app": "web"})), pod(serde_json::json!({"app": "http-canary"}))],
        vec!["service web selects app=ewb — 0 of 3 pod(s) in the namespace match", "pods carry instead: app=http-canary (1 pod(s)), app=web (2 pod(s))"]
    )]
    #[case::matching_but_unready(
        Some(serde_json::json!({"app": "web"})),
        vec![pod(serde_json::json!({"app": "web", "pod-template-hash": "x"}))],
        vec!["service web selects app=web — 1 of 1 pod(s) in the namespace match"]
    )]
    #[case::foreign_keys(
        Some(serde_json::json!({"tier": "front"})),
        vec![pod(serde_json::json!({"app": "web"}))],
        vec!["service web selects tier=front — 0 of 1 pod(s) in the namespace match", "no pod carries any of the selector's keys (tier)"]
    )]
    #[case::no_selector(None, vec![], vec!["service web has no selector: its endpoints are managed by hand"])]
    fn the_evidence_compares_selector_and_labels(
        #[case] selector: Option<serde_json::Value>,
        #[case] pods: Vec<Pod>,
        #[case] want: Vec<&str>,
    ) {
        assert_eq!(selector_evidence(&service(selector), &pods), want);
    }
}
