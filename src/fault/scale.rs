//! scale: set a Deployment, StatefulSet or ReplicaSet to N replicas — to
//! zero (everything behind a Service gone), to one (no redundancy left), or
//! far up (a capacity test).
//!
//! The change is a merge patch of `spec.replicas` through
//! [`FaultContext::patch`], so the journal holds the object as it was and
//! the revert restores it exactly. What the new scale breaks is the user's
//! to say in `expect.signals` (scale to zero: `EndpointsEmpty`,
//! `CanaryFailing`); detection watches the namespace broadly.

use kube::api::Patch;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::generic::{broad_injection, serving_before};
use super::{Fault, FaultContext, FaultError, Injection};
use crate::detect::selector::selector_string;
use crate::kobj::ObjectRef;
use crate::vocab::{Name, SignalKind};

const MAX_REPLICAS: u32 = 1000;

/// Workload kinds with a `spec.replicas`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ScalableKind {
    /// A Deployment.
    #[default]
    Deployment,
    /// A StatefulSet.
    StatefulSet,
    /// A ReplicaSet.
    ReplicaSet,
}

impl ScalableKind {
    /// The kind's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deployment => "Deployment",
            Self::StatefulSet => "StatefulSet",
            Self::ReplicaSet => "ReplicaSet",
        }
    }
}

/// The workload to scale (apiVersion apps/v1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ScaleTarget {
    /// The workload's kind.
    #[serde(default)]
    pub kind: ScalableKind,
    /// Its namespace.
    pub namespace: Name,
    /// Its name.
    pub name: Name,
}

/// The scale fault's settings.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Scale {
    /// The workload to scale.
    pub target: ScaleTarget,
    /// The replica count it is scaled to.
    #[schemars(range(max = 1000))]
    pub replicas: u32,
}

impl Fault for Scale {
    const KEY: &'static str = "scale";
    const SUMMARY: &'static str = "scales a Deployment, StatefulSet or ReplicaSet to N replicas (0: nothing left behind its Service); you list the signals it should cause";
    const STORY: &'static str = "Datadog (KubeCon 2019), \"10 ways to shoot yourself in the foot\": a `spec.replicas` applied from a stale manifest scaled a live service down; scale it yourself and time who notices";
    const DEFAULT_SIGNALS: &'static [SignalKind] = &[];
    const SUPPORTED_SIGNALS: &'static [SignalKind] = SignalKind::ALL;

    fn objects(&self) -> Vec<super::Named> {
        vec![super::Named {
            key: "target",
            kind: match self.target.kind {
                ScalableKind::Deployment => "Deployment",
                ScalableKind::StatefulSet => "StatefulSet",
                ScalableKind::ReplicaSet => "ReplicaSet",
            }
            .into(),
            namespace: Some(self.target.namespace.to_string()),
            name: self.target.name.to_string(),
        }]
    }

    fn namespace(&self) -> Option<&str> {
        Some(self.target.namespace.as_str())
    }

    fn validate(&self) -> Result<(), String> {
        if self.replicas > MAX_REPLICAS {
            return Err(format!(
                "replicas is {}, at most {MAX_REPLICAS}",
                self.replicas
            ));
        }
        Ok(())
    }

    async fn inject(&self, ctx: &mut FaultContext<'_>) -> Result<Injection, FaultError> {
        let ns = &self.target.namespace;
        let kind = self.target.kind.as_str();
        let name = self.target.name.as_str();
        let target = ObjectRef::namespaced("apps/v1", kind, ns.as_str(), name);
        let live = ctx.get(&target).await?;
        let spec = live.data.get("spec");
        let current = spec
            .and_then(|s| s.get("replicas"))
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(1);
        if current == u64::from(self.replicas) {
            return Err(FaultError::Target(format!(
                "{target} already has {current} replica(s); scaling to {} changes nothing",
                self.replicas
            )));
        }
        let selector = spec
            .and_then(|s| s.pointer("/selector/matchLabels"))
            .and_then(|m| serde_json::from_value(m.clone()).ok())
            .map(|m| selector_string(&m));
        let serving = serving_before(ctx, ns).await?;
        ctx.patch(
            &target,
            &Patch::Merge(json!({"spec": {"replicas": self.replicas}})),
        )
        .await?;
        let deployment = (self.target.kind == ScalableKind::Deployment).then(|| name.to_string());
        Ok(broad_injection(
            ctx,
            ns,
            selector,
            deployment,
            &serving,
            format!("{target}: replicas {current} → {}", self.replicas),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kind_defaults_to_deployment_and_replicas_are_bounded() {
        let f: Scale = serde_yaml::from_str("target: {namespace: shop, name: web}\nreplicas: 0\n")
            .expect("a scale spec");
        assert_eq!(f.target.kind, ScalableKind::Deployment);
        assert_eq!(f.validate(), Ok(()));
        let big: Scale = serde_yaml::from_str(
            "target: {kind: StatefulSet, namespace: db, name: pg}\nreplicas: 5000\n",
        )
        .expect("a scale spec");
        assert!(big.validate().unwrap_err().contains("at most 1000"));
    }

    #[test]
    fn only_scalable_kinds_are_read() {
        let err = serde_yaml::from_str::<Scale>(
            "target: {kind: Service, namespace: shop, name: web}\nreplicas: 0\n",
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("unknown variant `Service`"),
            "{err}"
        );
    }
}
