//! selectorMismatch: a Service's selector changed so it matches no pod. The
//! pods stay Running and Ready; the Service's endpoints empty out, and every
//! client of the Service fails ("service unreachable").
//!
//! The story: the incident managers' course (seed 003), "Issue 3: Service
//! Unreachable — Service selector doesn't match pod labels": `kubectl get
//! pods` looks healthy, `kubectl get endpoints` is empty. Detection follows
//! that flow: the Service's EndpointSlices (no ready endpoint, with the
//! selector-versus-labels comparison as evidence) and the canaries whose
//! checks go through the Service.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{ListParams, Patch};
use kube::{Api, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Fault, FaultContext, FaultError, Injection};
use crate::detect::Scope;
use crate::detect::broad::{CANARY_LABEL, watch_canaries_failing};
use crate::detect::canary::{CanaryRef, DEFAULT_PORT};
use crate::detect::endpoints::watch_service_endpoints;
use crate::detect::selector::{selector_string, with_selector_evidence};
use crate::kobj::ObjectRef;
use crate::vocab::{Name, SignalKind};

const DEFAULT_SIGNALS: &[SignalKind] = &[SignalKind::EndpointsEmpty];
const SUPPORTED: &[SignalKind] = &[SignalKind::EndpointsEmpty, SignalKind::CanaryFailing];

/// A Service, by namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServiceRef {
    /// The Service's namespace.
    pub namespace: Name,
    /// The Service's name.
    pub service: Name,
}

/// The selectorMismatch fault's settings.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SelectorMismatch {
    /// The Service whose selector gets the typo.
    pub target: ServiceRef,
    /// The broken selector to set; default: every value of the current one
    /// with two letters swapped (`app: web` → `app: ewb`). It must match no pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<BTreeMap<String, String>>,
    /// Label selector of the canaries whose checks go through the Service
    /// (default: the namespace's pods labelled `breakfix.dev/canary`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_selector: Option<String>,
}

/// A plausible typo of a label value: its first two differing adjacent
/// letters swapped, or `-x` appended when it has none.
pub fn misspell_value(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    chars
        .windows(2)
        .position(|w| w[0] != w[1] && w[0].is_ascii_alphabetic() && w[1].is_ascii_alphabetic())
        .map(|i| {
            let mut c = chars.clone();
            c.swap(i, i + 1);
            c.into_iter().collect()
        })
        .unwrap_or_else(|| format!("{value}-x"))
}

/// The merge patch that turns selector `from` into exactly `to`.
pub fn selector_patch(
    from: &BTreeMap<String, String>,
    to: &BTreeMap<String, String>,
) -> serde_json::Value {
    let mut selector = serde_json::Map::new();
    for key in from.keys().filter(|k| !to.contains_key(*k)) {
        selector.insert(key.clone(), serde_json::Value::Null);
    }
    for (key, value) in to {
        selector.insert(key.clone(), value.clone().into());
    }
    json!({"spec": {"selector": selector}})
}

impl Fault for SelectorMismatch {
    const KEY: &'static str = "selectorMismatch";
    const SUMMARY: &'static str = "changes a Service's selector so it matches no pod: pods stay healthy, the endpoints empty out";
    const STORY: &'static str = "\"Kubernetes for incident managers\" (service unreachable): pods Running, `kubectl get endpoints` empty, because the Service's selector does not match the pods' labels";
    const DEFAULT_SIGNALS: &'static [SignalKind] = DEFAULT_SIGNALS;
    const SUPPORTED_SIGNALS: &'static [SignalKind] = SUPPORTED;

    fn objects(&self) -> Vec<super::Named> {
        vec![super::Named {
            key: "target",
            kind: "Service".into(),
            namespace: Some(self.target.namespace.to_string()),
            name: self.target.service.to_string(),
        }]
    }

    fn namespace(&self) -> Option<&str> {
        Some(self.target.namespace.as_str())
    }

    fn validate(&self) -> Result<(), String> {
        match &self.selector {
            Some(s) if s.is_empty() => Err(
                "selector must not be empty: an empty selector makes the Service's endpoints unmanaged, not mismatched"
                    .into(),
            ),
            _ => Ok(()),
        }
    }

    async fn inject(&self, ctx: &mut FaultContext<'_>) -> Result<Injection, FaultError> {
        let ns = self.target.namespace.as_str();
        let name = self.target.service.as_str();
        let target = ObjectRef::namespaced("v1", "Service", ns, name);
        let live: Service =
            ctx.get(&target)
                .await?
                .try_parse()
                .map_err(|e| FaultError::Decode {
                    what: target.to_string(),
                    detail: e.to_string(),
                })?;
        let current = live
            .spec
            .as_ref()
            .and_then(|s| s.selector.clone())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                FaultError::Target(format!(
                    "{target} has no selector; its endpoints are managed by hand, so there is nothing to mismatch"
                ))
            })?;
        let broken = self.selector.clone().unwrap_or_else(|| {
            current
                .iter()
                .map(|(k, v)| (k.clone(), misspell_value(v)))
                .collect()
        });
        if broken == current {
            return Err(FaultError::Target(format!(
                "{target} already selects {}",
                selector_string(&current)
            )));
        }
        let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
        let still = pods
            .list(&ListParams::default().labels(&selector_string(&broken)))
            .await
            .map_err(|e| FaultError::Target(format!("listing pods in {ns}: {e}")))?;
        if !still.items.is_empty() {
            let names: Vec<String> = still.items.iter().map(|p| p.name_any()).collect();
            return Err(FaultError::Target(format!(
                "selector {} still matches {} pod(s) ({}); choose one that matches nothing",
                selector_string(&broken),
                names.len(),
                names.join(", ")
            )));
        }
        ctx.patch(&target, &Patch::Merge(selector_patch(&current, &broken)))
            .await?;
        let canary = CanaryRef {
            namespace: self.target.namespace.clone(),
            selector: self
                .canary_selector
                .clone()
                .unwrap_or_else(|| CANARY_LABEL.to_string()),
            port: DEFAULT_PORT,
        };
        Ok(Injection {
            summary: format!(
                "{target}: selector {} → {} (matches no pod)",
                selector_string(&current),
                selector_string(&broken)
            ),
            scope: Scope {
                namespace: ns.to_string(),
                pod_selector: Some(selector_string(&current)),
                event_name_prefix: Some(name.to_string()),
                not_before: jiff::Timestamp::now(),
                deployment: None,
            },
            extra: vec![
                with_selector_evidence(
                    &ctx.client,
                    ns,
                    watch_service_endpoints(&ctx.client, ns, name),
                ),
                watch_canaries_failing(&ctx.client, &canary),
            ],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("web", "ewb")]
    #[case("checkout-api", "hceckout-api")]
    #[case("v1", "v1-x")]
    #[case("aab", "aba")]
    fn label_values_are_misspelled(#[case] value: &str, #[case] want: &str) {
        assert_eq!(misspell_value(value), want);
    }

    #[test]
    fn the_patch_removes_keys_the_broken_selector_lacks() {
        let from = BTreeMap::from([
            ("app".to_string(), "web".to_string()),
            ("tier".to_string(), "front".to_string()),
        ]);
        let to = BTreeMap::from([("app".to_string(), "wbe".to_string())]);
        assert_eq!(
            selector_patch(&from, &to),
            json!({"spec": {"selector": {"app": "wbe", "tier": null}}})
        );
    }

    #[test]
    fn an_empty_selector_is_refused() {
        let fault: SelectorMismatch =
            serde_yaml::from_str("target: {namespace: shop, service: web}\nselector: {}\n")
                .expect("a spec");
        assert!(fault.validate().unwrap_err().contains("must not be empty"));
    }
}
