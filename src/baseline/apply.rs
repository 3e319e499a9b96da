//! Server-side apply of a baseline, and its removal.

use std::collections::BTreeMap;

use kube::Client;
use kube::api::DynamicObject;
use kube::discovery::Scope;

use super::LoadedBaseline;
use crate::kobj::{self, ObjectError, ObjectRef};

/// Errors applying or removing a baseline.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("applying {target}: {source}")]
    Apply { target: String, source: ObjectError },
    #[error(transparent)]
    Object(#[from] ObjectError),
    #[error(
        "CustomResourceDefinition {name} was applied but not established within {}s; the custom resources after it cannot be applied",
        CRD_ESTABLISHED_TIMEOUT.as_secs()
    )]
    CrdNotEstablished { name: String },
    #[error(
        "namespace {name} is still being deleted after {}s; it cannot take the baseline",
        NAMESPACE_GONE_TIMEOUT.as_secs()
    )]
    NamespaceTerminating { name: String },
    /// An instance's object turned out cluster-scoped: every instance
    /// would share it.
    #[error(
        "{target} is cluster-scoped, so every instance of the baseline would share it; run the baseline in place"
    )]
    SharedInInstance { target: String },
}

/// How long a CRD the baseline applies may take to be served.
const CRD_ESTABLISHED_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

impl ApplyError {
    /// The API server's message when it refused the object (quota, admission, validation).
    pub fn api_message(&self) -> Option<String> {
        let source = match self {
            Self::Apply { source, .. } | Self::Object(source) => source,
            Self::CrdNotEstablished { .. }
            | Self::NamespaceTerminating { .. }
            | Self::SharedInInstance { .. } => return None,
        };
        match source {
            ObjectError::Api {
                source: kube::Error::Api(status),
                ..
            } => Some(format!("{} ({})", status.message, status.reason)),
            _ => None,
        }
    }

    /// Whether the API server refused the objects themselves (validation,
    /// admission, quota, an immutable field), as opposed to the harness or
    /// the cluster being in the way (timeouts, a terminating namespace).
    pub fn refused_by_server(&self) -> bool {
        let (Self::Apply { source, .. } | Self::Object(source)) = self else {
            return false;
        };
        let ObjectError::Api {
            source: kube::Error::Api(status),
            ..
        } = source
        else {
            return false;
        };
        let terminating = status
            .details
            .as_ref()
            .is_some_and(|d| d.causes.iter().any(|c| c.reason == "NamespaceTerminating"));
        matches!(status.code, 400 | 403 | 409 | 422) && !terminating
    }
}

/// How long a namespace being deleted (by an earlier run) may take to go.
const NAMESPACE_GONE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(180);

/// Waits (watching) until the namespace `name`, if it is being deleted, is
/// gone, so a baseline applied right after an earlier run's cleanup does
/// not land in a terminating namespace.
async fn await_not_terminating(client: &Client, name: &str) -> Result<(), ApplyError> {
    use k8s_openapi::api::core::v1::Namespace;
    use kube::runtime::wait::{await_condition, conditions};
    let api: kube::Api<Namespace> = kube::Api::all(client.clone());
    let target = ObjectRef {
        api_version: "v1".into(),
        kind: "Namespace".into(),
        namespace: None,
        name: name.into(),
    };
    let current = api.get_opt(name).await.map_err(|source| ObjectError::Api {
        target: target.clone(),
        source,
    })?;
    let Some(ns) = current else {
        return Ok(());
    };
    if ns.metadata.deletion_timestamp.is_none() {
        return Ok(());
    }
    let uid = ns.metadata.uid.unwrap_or_default();
    tracing::info!(
        namespace = name,
        "waiting for the namespace an earlier run deleted to go"
    );
    match tokio::time::timeout(
        NAMESPACE_GONE_TIMEOUT,
        await_condition(api, name, conditions::is_deleted(&uid)),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "watching the namespace failed");
            Err(ApplyError::NamespaceTerminating { name: name.into() })
        }
        Err(_) => Err(ApplyError::NamespaceTerminating { name: name.into() }),
    }
}

/// Applies the baseline's namespace and objects with server-side apply
/// (idempotent: re-applying an applied baseline changes nothing), labelled
/// as managed by breakfix. Returns the objects in apply order.
pub async fn apply_baseline(
    client: &Client,
    baseline: &LoadedBaseline,
    run_id: &str,
) -> Result<Vec<ObjectRef>, ApplyError> {
    let mut labels = managed_labels(baseline.name(), run_id);
    if let Some(relocation) = &baseline.instance {
        labels.insert(
            super::instance::INSTANCE_LABEL.to_string(),
            relocation.id.clone(),
        );
    }
    let ns = baseline.spec.namespace.as_str();
    let mut namespace: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": ns},
    }))
    .map_err(ObjectError::from)?;
    namespace.metadata.labels = Some(labels.clone());
    await_not_terminating(client, ns).await?;
    let mut applied = Vec::new();
    kobj::apply(client, &namespace)
        .await
        .map_err(|source| ApplyError::Apply {
            target: format!("namespace/{ns}"),
            source,
        })?;
    applied.push(ObjectRef::of(&namespace)?);
    for object in &baseline.objects {
        let mut obj = object.clone();
        let mut target = ObjectRef::of(&obj)?;
        let (_, caps) = kobj::resolve(client, &target).await?;
        if caps.scope == Scope::Namespaced && obj.metadata.namespace.is_none() {
            obj.metadata.namespace = Some(ns.to_string());
            target.namespace = Some(ns.to_string());
        }
        if let Some(relocation) = &baseline.instance
            && caps.scope == Scope::Cluster
            && target.kind != "Namespace"
            && !relocation
                .renamed_cluster_objects()
                .iter()
                .any(|r| r.kind == target.kind && r.name == target.name)
        {
            return Err(ApplyError::SharedInInstance {
                target: target.to_string(),
            });
        }
        obj.metadata
            .labels
            .get_or_insert_default()
            .extend(labels.clone());
        kobj::apply(client, &obj)
            .await
            .map_err(|source| ApplyError::Apply {
                target: target.to_string(),
                source,
            })?;
        tracing::debug!(%target, "applied");
        if target.kind == "CustomResourceDefinition" {
            await_established(client, &target.name).await?;
        }
        applied.push(target);
    }
    Ok(applied)
}

/// Waits (watching) until the CRD `name` is served, so the custom
/// resources the baseline applies after it resolve.
async fn await_established(client: &Client, name: &str) -> Result<(), ApplyError> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::runtime::wait::{await_condition, conditions};
    let api: kube::Api<CustomResourceDefinition> = kube::Api::all(client.clone());
    let established = await_condition(api, name, conditions::is_crd_established());
    match tokio::time::timeout(CRD_ESTABLISHED_TIMEOUT, established).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, crd = name, "watching the CRD failed");
            Err(ApplyError::CrdNotEstablished { name: name.into() })
        }
        Err(_) => Err(ApplyError::CrdNotEstablished { name: name.into() }),
    }
}

/// Deletes what [`apply_baseline`] applied, in reverse order.
pub async fn delete_baseline(client: &Client, applied: &[ObjectRef]) -> Result<(), ApplyError> {
    for target in applied.iter().rev() {
        kobj::delete_if_present(client, target, None).await?;
    }
    Ok(())
}

fn managed_labels(baseline: &str, run_id: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            crate::vocab::MANAGED_LABEL.to_string(),
            "breakfix".to_string(),
        ),
        ("breakfix.dev/baseline".to_string(), baseline.to_string()),
        (crate::vocab::RUN_LABEL.to_string(), run_id.to_string()),
    ])
}
