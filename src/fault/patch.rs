//! patch: change any object with a merge, JSON or strategic-merge patch
//! written in the experiment, so a new fault is a YAML file, not code.
//!
//! The snapshot of the object is journaled before the patch is sent, so the
//! revert restores it exactly, as for every built-in fault. What the patch
//! breaks is the user's to say: `expect.signals` must list the signals it
//! should produce, and detection watches the namespace broadly
//! ([`super::generic`]).

use kube::api::Patch;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::generic::{
    ObjectTarget, broad_injection, serving_before, watched_namespace, watched_namespace_problem,
};
use super::{Fault, FaultContext, FaultError, Injection};
use crate::vocab::{Name, SignalKind};

/// How the patch body is read by the API server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum PatchType {
    /// JSON merge patch (RFC 7386): maps merge, `null` deletes, lists are replaced.
    #[default]
    Merge,
    /// JSON patch (RFC 6902): a list of `{op, path, value}` operations.
    Json,
    /// Kubernetes strategic merge patch (built-in kinds only): lists of
    /// containers, ports, … merge by their key.
    Strategic,
}

/// The patch fault's settings.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PatchObject {
    /// The object to patch.
    pub target: ObjectTarget,
    /// How the patch is applied (merge, strategic merge or JSON patch).
    #[serde(default, rename = "type")]
    pub patch_type: PatchType,
    /// The patch body, in YAML: a mapping for merge and strategic, a list of
    /// operations for json.
    pub patch: serde_json::Value,
    /// Namespace whose workloads show the effect; default: the target's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch_namespace: Option<Name>,
}

impl PatchType {
    /// As written in files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Merge => "merge",
            Self::Json => "json",
            Self::Strategic => "strategic",
        }
    }
}

impl PatchObject {
    /// The patch as kube sends it.
    pub fn to_patch(&self) -> Result<Patch<serde_json::Value>, String> {
        match self.patch_type {
            PatchType::Merge | PatchType::Strategic => {
                let map = self.patch.as_object().ok_or_else(|| {
                    format!(
                        "a {} patch is a mapping of the fields to change",
                        self.patch_type.as_str()
                    )
                })?;
                if map.is_empty() {
                    return Err("the patch is empty; it would change nothing".into());
                }
                Ok(if self.patch_type == PatchType::Merge {
                    Patch::Merge(self.patch.clone())
                } else {
                    Patch::Strategic(self.patch.clone())
                })
            }
            PatchType::Json => {
                let ops: json_patch::Patch =
                    serde_json::from_value(self.patch.clone()).map_err(|e| {
                        format!("a json patch is a list of {{op, path, value}} operations: {e}")
                    })?;
                if ops.0.is_empty() {
                    return Err("the patch has no operations; it would change nothing".into());
                }
                Ok(Patch::Json(ops))
            }
        }
    }
}

impl Fault for PatchObject {
    const KEY: &'static str = "patch";
    const SUMMARY: &'static str = "patches any object (apiVersion/kind/namespace/name) with a merge, JSON or strategic-merge patch written in YAML; you list the signals it should cause";
    const STORY: &'static str = "Pusher (KubeCon 2019), \"Oh Sh*t! The Config Changed!\": one changed field in a live object took production down; write that change as a patch and see who notices";
    const DEFAULT_SIGNALS: &'static [SignalKind] = &[];
    const SUPPORTED_SIGNALS: &'static [SignalKind] = SignalKind::ALL;

    fn objects(&self) -> Vec<super::Named> {
        vec![super::Named {
            key: "target",
            kind: self.target.kind.clone(),
            namespace: self.target.namespace.as_ref().map(ToString::to_string),
            name: self.target.name.clone(),
        }]
    }

    fn namespace(&self) -> Option<&str> {
        self.target.namespace.as_ref().map(Name::as_str)
    }

    fn validate(&self) -> Result<(), String> {
        self.target.validate()?;
        watched_namespace_problem(
            self.target.namespace.as_ref(),
            self.watch_namespace.as_ref(),
        )?;
        self.to_patch().map(|_| ())
    }

    async fn inject(&self, ctx: &mut FaultContext<'_>) -> Result<Injection, FaultError> {
        let patch = self.to_patch().map_err(FaultError::Target)?;
        let target = self.target.object_ref();
        let watch = watched_namespace(
            self.target.namespace.as_ref(),
            self.watch_namespace.as_ref(),
        )
        .ok_or_else(|| FaultError::Target("no namespace to watch".into()))?
        .clone();
        let before = ctx.get(&target).await?;
        let serving = serving_before(ctx, &watch).await?;
        let after = ctx.patch(&target, &patch).await?;
        if after.metadata.resource_version == before.metadata.resource_version {
            return Err(FaultError::Target(format!(
                "the patch left {target} unchanged; it breaks nothing"
            )));
        }
        let deployment = (self.target.kind == "Deployment").then(|| self.target.name.clone());
        Ok(broad_injection(
            ctx,
            &watch,
            None,
            deployment,
            &serving,
            format!("{target}: {} patch applied", self.patch_type.as_str()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn fault(yaml: &str) -> PatchObject {
        serde_yaml::from_str(yaml).expect("a patch spec")
    }

    const TARGET: &str = "target: {apiVersion: v1, kind: Service, namespace: shop, name: web}\n";

    #[rstest]
    #[case("patch: {spec: {selector: {app: nope}}}\n", None)]
    #[case(
        "type: strategic\npatch: {spec: {ports: [{port: 80, targetPort: 9999}]}}\n",
        None
    )]
    #[case(
        "type: json\npatch: [{op: replace, path: /spec/ports/0/targetPort, value: 9999}]\n",
        None
    )]
    #[case(
        "patch: [{op: remove, path: /spec}]\n",
        Some("a merge patch is a mapping")
    )]
    #[case("type: json\npatch: {spec: {}}\n", Some("a json patch is a list"))]
    #[case(
        "type: json\npatch: [{op: frobnicate, path: /a}]\n",
        Some("a json patch is a list")
    )]
    #[case("type: json\npatch: []\n", Some("no operations"))]
    #[case("patch: {}\n", Some("the patch is empty"))]
    fn patch_bodies_are_checked_on_load(#[case] body: &str, #[case] problem: Option<&str>) {
        let result = fault(&format!("{TARGET}{body}")).validate();
        match problem {
            None => assert_eq!(result, Ok(())),
            Some(says) => {
                let err = result.unwrap_err();
                assert!(err.contains(says), "{err}");
            }
        }
    }

    #[test]
    fn a_cluster_scoped_target_needs_watch_namespace() {
        let f = fault(
            "target: {apiVersion: rbac.authorization.k8s.io/v1, kind: ClusterRoleBinding, name: view}\npatch: {subjects: []}\n",
        );
        assert!(f.validate().unwrap_err().contains("watchNamespace"));
        assert_eq!(f.namespace(), None);
    }

    #[test]
    fn the_generic_primitives_produce_whatever_the_user_names() {
        let f = fault(&format!(
            "{TARGET}patch: {{metadata: {{labels: {{a: b}}}}}}\n"
        ));
        assert!(f.default_signals().is_empty());
        assert_eq!(PatchObject::SUPPORTED_SIGNALS, SignalKind::ALL);
    }
}
