//! delete: delete any object, so "what if this disappeared?" is a YAML file.
//!
//! The object is snapshotted into the journal before the delete, and the
//! revert recreates it from that snapshot (server-set fields stripped), as
//! rbacBindingDelete does for bindings. Objects a controller recreates by
//! itself (a ReplicaSet's pods) are podKill's business: recreating the old
//! pod would fight the controller. What the loss breaks is the user's to
//! say in `expect.signals`; detection watches the namespace broadly.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::generic::{
    ObjectTarget, broad_injection, serving_before, watched_namespace, watched_namespace_problem,
};
use super::{Fault, FaultContext, FaultError, Injection};
use crate::vocab::{Name, SignalKind};

/// The delete fault's settings.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DeleteObject {
    /// The object to delete.
    pub target: ObjectTarget,
    /// Namespace whose workloads show the effect; default: the target's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch_namespace: Option<Name>,
}

impl Fault for DeleteObject {
    const KEY: &'static str = "delete";
    const SUMMARY: &'static str = "deletes any object (apiVersion/kind/namespace/name); the revert recreates it from the journaled snapshot; you list the signals its loss should cause";
    const STORY: &'static str = "Zalando (KubeCon 2019), incident #4: a cleanup list deleted objects others relied on (\"deletions.yaml\"); name any object and see what its loss breaks";
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
        if self.target.kind == "Namespace" {
            return Err(
                "deleting a Namespace deletes everything in it, which no snapshot can restore"
                    .into(),
            );
        }
        watched_namespace_problem(
            self.target.namespace.as_ref(),
            self.watch_namespace.as_ref(),
        )
    }

    async fn inject(&self, ctx: &mut FaultContext<'_>) -> Result<Injection, FaultError> {
        let target = self.target.object_ref();
        let watch = watched_namespace(
            self.target.namespace.as_ref(),
            self.watch_namespace.as_ref(),
        )
        .ok_or_else(|| FaultError::Target("no namespace to watch".into()))?
        .clone();
        let serving = serving_before(ctx, &watch).await?;
        let deleted = ctx.delete(&target).await?;
        let deployment = (self.target.kind == "Deployment").then(|| self.target.name.clone());
        Ok(broad_injection(
            ctx,
            &watch,
            None,
            deployment,
            &serving,
            format!(
                "deleted {target} (uid {})",
                deleted.metadata.uid.as_deref().unwrap_or("?")
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_are_not_deleted() {
        let f: DeleteObject = serde_yaml::from_str(
            "target: {apiVersion: v1, kind: Namespace, name: shop}\nwatchNamespace: shop\n",
        )
        .expect("a delete spec");
        assert!(f.validate().unwrap_err().contains("Namespace"));
    }

    #[test]
    fn a_service_can_be_deleted() {
        let f: DeleteObject = serde_yaml::from_str(
            "target: {apiVersion: v1, kind: Service, namespace: shop, name: web}\n",
        )
        .expect("a delete spec");
        assert_eq!(f.validate(), Ok(()));
        assert_eq!(f.namespace(), Some("shop"));
    }
}
