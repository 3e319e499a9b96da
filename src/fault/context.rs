//! The only way faults touch a cluster: primitives that journal first.

use kube::Client;
use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams, Preconditions};
use serde_json::Value;

use super::FaultError;
use crate::journal::{Journal, UndoAction};
use crate::kobj::{self, ObjectError, ObjectRef};

/// Handed to [`super::Fault::inject`]: a client and the run's journal.
pub struct FaultContext<'a> {
    /// A client for the cluster the fault breaks.
    pub client: Client,
    /// The run's journal: every change is journaled before it is made.
    pub journal: &'a mut Journal,
    /// Experiment name, recorded with each undo.
    pub experiment: String,
    /// The run's id, put on every object the fault creates.
    pub run_id: String,
}

impl FaultContext<'_> {
    /// Fetches `target`, failing with a clear message if it is absent.
    pub async fn get(&self, target: &ObjectRef) -> Result<DynamicObject, FaultError> {
        kobj::get(&self.client, target).await?.ok_or_else(|| {
            FaultError::Target(format!("{target} not found; is the baseline applied?"))
        })
    }

    /// Patches `target` after journaling a snapshot to restore.
    pub async fn patch(
        &mut self,
        target: &ObjectRef,
        patch: &Patch<Value>,
    ) -> Result<DynamicObject, FaultError> {
        let snapshot = self.get(target).await?;
        self.journal.intend(
            &self.experiment,
            UndoAction::Restore {
                object: Box::new(snapshot),
            },
        )?;
        let api = kobj::api_for(&self.client, target).await?;
        let pp = PatchParams {
            field_manager: Some(crate::vocab::FIELD_MANAGER.into()),
            ..PatchParams::default()
        };
        api.patch(&target.name, &pp, patch).await.map_err(|source| {
            FaultError::Object(ObjectError::Api {
                target: target.clone(),
                source,
            })
        })
    }

    /// Deletes `target` after journaling a snapshot to recreate.
    pub async fn delete(&mut self, target: &ObjectRef) -> Result<DynamicObject, FaultError> {
        let snapshot = self.get(target).await?;
        self.journal.intend(
            &self.experiment,
            UndoAction::Restore {
                object: Box::new(snapshot.clone()),
            },
        )?;
        kobj::delete_if_present(&self.client, target, snapshot.metadata.uid.as_deref()).await?;
        Ok(snapshot)
    }

    /// Deletes an object its controller replaces (a ReplicaSet's pod),
    /// journaling no undo: the controller's reconciliation is the undo, and
    /// recreating the old object would fight it. Refuses objects no
    /// controller owns, since nothing would bring those back. The delete is
    /// conditional on the object's uid, so a replacement is never hit.
    pub async fn delete_replaceable(
        &mut self,
        target: &ObjectRef,
        grace_period_seconds: Option<u32>,
    ) -> Result<DynamicObject, FaultError> {
        let live = self.get(target).await?;
        let controlled = live
            .metadata
            .owner_references
            .iter()
            .flatten()
            .any(|o| o.controller == Some(true));
        if !controlled {
            return Err(FaultError::Target(format!(
                "{target} has no controller to replace it; deleting it would not heal by itself"
            )));
        }
        let api = kobj::api_for(&self.client, target).await?;
        let dp = DeleteParams {
            grace_period_seconds,
            preconditions: Some(Preconditions {
                uid: live.metadata.uid.clone(),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        api.delete(&target.name, &dp).await.map_err(|source| {
            FaultError::Object(ObjectError::Api {
                target: target.clone(),
                source,
            })
        })?;
        Ok(live)
    }

    /// Creates `obj` (labelled with the run) after journaling its deletion.
    pub async fn create(&mut self, mut obj: DynamicObject) -> Result<DynamicObject, FaultError> {
        obj.metadata
            .labels
            .get_or_insert_default()
            .insert(crate::vocab::RUN_LABEL.into(), self.run_id.clone());
        let target = ObjectRef::of(&obj)?;
        self.journal
            .intend(&self.experiment, UndoAction::Delete { target, uid: None })?;
        Ok(kobj::apply(&self.client, &obj).await?)
    }

    /// Creates `obj` (labelled with the run) after journaling the deletion of
    /// it and of everything it will own: for objects that spawn others (a
    /// CronJob's Jobs and Pods), so the revert leaves none of them behind.
    pub async fn create_tree(
        &mut self,
        mut obj: DynamicObject,
    ) -> Result<DynamicObject, FaultError> {
        obj.metadata
            .labels
            .get_or_insert_default()
            .insert(crate::vocab::RUN_LABEL.into(), self.run_id.clone());
        let target = ObjectRef::of(&obj)?;
        self.journal.intend(
            &self.experiment,
            UndoAction::DeleteTree { target, uid: None },
        )?;
        Ok(kobj::apply(&self.client, &obj).await?)
    }

    /// Stops the kind node container `container` (`docker stop`) after
    /// journaling `docker start` for it. The caller checks that the container
    /// is a worker node of a kind cluster.
    pub async fn stop_node(&mut self, container: &str) -> Result<(), FaultError> {
        self.journal.intend(
            &self.experiment,
            UndoAction::StartNode {
                container: container.to_string(),
            },
        )?;
        let out = tokio::process::Command::new("docker")
            .args(["stop", container])
            .output()
            .await
            .map_err(|e| FaultError::Command(format!("docker stop {container}: {e}")))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(FaultError::Command(format!(
                "docker stop {container}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    }
}
