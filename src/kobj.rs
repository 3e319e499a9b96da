//! Working with arbitrary Kubernetes objects: references, dynamic APIs,
//! snapshots and exact restore. Faults, baselines and the journal share these.

use std::fmt;

use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiCapabilities, ApiResource, Scope};
use kube::{Api, Client};
use serde::{Deserialize, Serialize};

/// Errors working with objects.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    /// The cluster does not serve the object's kind.
    #[error("the cluster does not serve {api_version} {kind}: {}", explain(source))]
    Discovery {
        /// The kind's apiVersion.
        api_version: String,
        /// The kind.
        kind: String,
        /// What discovery said.
        source: kube::Error,
    },
    /// The API server refused a request about an object.
    #[error("{target}: {}", explain(source))]
    Api {
        /// The object.
        target: ObjectRef,
        /// What the server said.
        source: kube::Error,
    },
    /// An object without a name.
    #[error("{0}: object has no name")]
    Unnamed(String),
    /// An object could not be encoded to JSON.
    #[error("cannot encode object: {0}")]
    Encode(#[from] serde_json::Error),
    /// An object deleted with its dependents was not gone in time.
    #[error("{target} and what it owns were not gone after {waited:?}")]
    StillThere {
        /// The object.
        target: ObjectRef,
        /// How long the wait lasted.
        waited: std::time::Duration,
    },
    /// The watch for an object's deletion failed.
    #[error("watching {target} for its deletion: {}", explain_wait(source))]
    Wait {
        /// The object.
        target: ObjectRef,
        /// What the watch said.
        source: kube::runtime::wait::Error,
    },
}

/// One readable line for an error from a request to the API server. A
/// refusal is its reason and message (`Forbidden: namespaces "shop" is
/// forbidden: …`), not the whole Status, which is logged at info level
/// (`-v`) for whoever needs its details and causes.
pub fn explain(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => {
            tracing::info!(?status, "the API server's answer");
            status_line(status)
        }
        other => other.to_string(),
    }
}

/// [`explain`] for errors of a watch.
pub fn explain_watch(error: &kube::runtime::watcher::Error) -> String {
    use kube::runtime::watcher::Error as W;
    match error {
        W::InitialListFailed(e) => format!("listing failed: {}", explain(e)),
        W::WatchStartFailed(e) => format!("starting the watch failed: {}", explain(e)),
        W::WatchFailed(e) => format!("the watch failed: {}", explain(e)),
        W::WatchError(status) => {
            tracing::info!(?status, "the API server's answer");
            format!("the watch failed: {}", status_line(status))
        }
        other => other.to_string(),
    }
}

/// [`explain`] for errors of [`kube::runtime::wait`].
pub fn explain_wait(error: &kube::runtime::wait::Error) -> String {
    match error {
        kube::runtime::wait::Error::ProbeFailed(e) => explain_watch(e),
    }
}

fn status_line(status: &kube::core::Status) -> String {
    match (status.reason.as_str(), status.message.as_str()) {
        ("", "") => format!("the API server answered {}", status.code),
        ("", message) => message.to_string(),
        (reason, "") => format!("{reason} ({})", status.code),
        (reason, message) => format!("{reason}: {message}"),
    }
}

/// Identifies one object: apiVersion, kind, namespace (if namespaced), name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    /// The object's apiVersion (`apps/v1`).
    pub api_version: String,
    /// The object's kind.
    pub kind: String,
    /// Its namespace; none for cluster-scoped objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
}

impl ObjectRef {
    /// A reference to a namespaced object.
    pub fn namespaced(api_version: &str, kind: &str, namespace: &str, name: &str) -> Self {
        Self {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: Some(namespace.into()),
            name: name.into(),
        }
    }

    /// The reference of a dynamic object (which must carry apiVersion/kind).
    pub fn of(obj: &DynamicObject) -> Result<Self, ObjectError> {
        let types = obj.types.clone().unwrap_or_default();
        let name =
            obj.metadata.name.clone().ok_or_else(|| {
                ObjectError::Unnamed(format!("{} {}", types.api_version, types.kind))
            })?;
        Ok(Self {
            api_version: types.api_version,
            kind: types.kind,
            namespace: obj.metadata.namespace.clone(),
            name,
        })
    }

    /// The group/version/kind.
    pub fn gvk(&self) -> GroupVersionKind {
        let (group, version) = match self.api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", self.api_version.as_str()),
        };
        GroupVersionKind::gvk(group, version, &self.kind)
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{} -n {ns}", self.kind.to_lowercase(), self.name),
            None => write!(f, "{}/{}", self.kind.to_lowercase(), self.name),
        }
    }
}

/// A dynamic API handle for `target`, resolved through discovery.
pub async fn api_for(
    client: &Client,
    target: &ObjectRef,
) -> Result<Api<DynamicObject>, ObjectError> {
    let (resource, caps) = resolve(client, target).await?;
    Ok(match (&caps.scope, &target.namespace) {
        (Scope::Namespaced, Some(ns)) => Api::namespaced_with(client.clone(), ns, &resource),
        (Scope::Namespaced, None) => Api::default_namespaced_with(client.clone(), &resource),
        (Scope::Cluster, _) => Api::all_with(client.clone(), &resource),
    })
}

/// Resolves the API resource serving `target`'s kind.
pub async fn resolve(
    client: &Client,
    target: &ObjectRef,
) -> Result<(ApiResource, ApiCapabilities), ObjectError> {
    kube::discovery::pinned_kind(client, &target.gvk())
        .await
        .map_err(|source| ObjectError::Discovery {
            api_version: target.api_version.clone(),
            kind: target.kind.clone(),
            source,
        })
}

/// Fetches an object, `None` when it does not exist.
pub async fn get(
    client: &Client,
    target: &ObjectRef,
) -> Result<Option<DynamicObject>, ObjectError> {
    let api = api_for(client, target).await?;
    api.get_opt(&target.name)
        .await
        .map_err(|source| ObjectError::Api {
            target: target.clone(),
            source,
        })
}

/// Removes the fields the server owns, so a snapshot can be written back.
pub fn strip_server_fields(obj: &mut DynamicObject) {
    let m = &mut obj.metadata;
    m.resource_version = None;
    m.uid = None;
    m.creation_timestamp = None;
    m.deletion_timestamp = None;
    m.deletion_grace_period_seconds = None;
    m.generation = None;
    m.managed_fields = None;
    if let Some(map) = obj.data.as_object_mut() {
        map.remove("status");
    }
}

/// Writes `snapshot` back exactly: replaces the live object (keeping its
/// resourceVersion for optimistic concurrency) or recreates it if gone.
pub async fn restore(
    client: &Client,
    snapshot: &DynamicObject,
) -> Result<DynamicObject, ObjectError> {
    let target = ObjectRef::of(snapshot)?;
    let api = api_for(client, &target).await?;
    let wrap = |source| ObjectError::Api {
        target: target.clone(),
        source,
    };
    let mut desired = snapshot.clone();
    strip_server_fields(&mut desired);
    // Controllers update status, and so the resourceVersion, all the time (a
    // Deployment whose pods crash changes every few seconds): on a conflict,
    // read again and retry, as client-go's RetryOnConflict does.
    let mut attempt = 1;
    loop {
        let result = match api.get_opt(&target.name).await.map_err(wrap)? {
            Some(live) => {
                desired.metadata.resource_version = live.metadata.resource_version.clone();
                desired.metadata.uid = live.metadata.uid.clone();
                api.replace(&target.name, &PostParams::default(), &desired)
                    .await
            }
            None => api.create(&PostParams::default(), &desired).await,
        };
        match result {
            Err(kube::Error::Api(e)) if e.code == 409 && attempt < RESTORE_ATTEMPTS => {
                tokio::time::sleep(std::time::Duration::from_millis(20 * attempt)).await;
                attempt += 1;
            }
            other => return other.map_err(wrap),
        }
    }
}

/// How often [`restore`] tries before a conflict is an error.
const RESTORE_ATTEMPTS: u64 = 10;

/// Deletes `target` if it exists (and, when `uid` is given, only if it is that
/// same object, not a later one with the same name). Returns whether it deleted.
pub async fn delete_if_present(
    client: &Client,
    target: &ObjectRef,
    uid: Option<&str>,
) -> Result<bool, ObjectError> {
    let api = api_for(client, target).await?;
    let wrap = |source| ObjectError::Api {
        target: target.clone(),
        source,
    };
    let Some(live) = api.get_opt(&target.name).await.map_err(wrap)? else {
        return Ok(false);
    };
    if uid.is_some() && live.metadata.uid.as_deref() != uid {
        return Ok(false);
    }
    let dp = DeleteParams {
        propagation_policy: Some(kube::api::PropagationPolicy::Background),
        ..DeleteParams::default()
    };
    match api.delete(&target.name, &dp).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(false),
        Err(source) => Err(ObjectError::Api {
            target: target.clone(),
            source,
        }),
    }
}

/// Deletes `target` with foreground propagation (if it exists, and when
/// `uid` is given only if it is that same object) and waits until it is
/// gone. Foreground deletion keeps the owner until the garbage collector has
/// removed every dependent that blocks it (a CronJob's Jobs, their Pods), so
/// "gone" means the whole tree is gone. Returns whether it deleted anything.
pub async fn delete_tree(
    client: &Client,
    target: &ObjectRef,
    uid: Option<&str>,
    timeout: std::time::Duration,
) -> Result<bool, ObjectError> {
    let api = api_for(client, target).await?;
    let wrap = |source| ObjectError::Api {
        target: target.clone(),
        source,
    };
    let Some(live) = api.get_opt(&target.name).await.map_err(wrap)? else {
        return Ok(false);
    };
    let live_uid = live.metadata.uid.clone().unwrap_or_default();
    if uid.is_some_and(|u| u != live_uid) {
        return Ok(false);
    }
    match api.delete(&target.name, &DeleteParams::foreground()).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 => return Ok(false),
        Err(source) => return Err(wrap(source)),
    }
    let gone = kube::runtime::wait::await_condition(
        api,
        &target.name,
        kube::runtime::wait::conditions::is_deleted(&live_uid),
    );
    match tokio::time::timeout(timeout, gone).await {
        Ok(Ok(_)) => Ok(true),
        Ok(Err(source)) => Err(ObjectError::Wait {
            target: target.clone(),
            source,
        }),
        Err(_) => Err(ObjectError::StillThere {
            target: target.clone(),
            waited: timeout,
        }),
    }
}

/// Server-side applies `obj` with breakfix's field manager, forcing ownership.
pub async fn apply(client: &Client, obj: &DynamicObject) -> Result<DynamicObject, ObjectError> {
    let target = ObjectRef::of(obj)?;
    let api = api_for(client, &target).await?;
    let pp = PatchParams::apply(crate::vocab::FIELD_MANAGER).force();
    api.patch(&target.name, &pp, &Patch::Apply(obj))
        .await
        .map_err(|source| ObjectError::Api { target, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(reason: &str, message: &str, code: u16) -> kube::Error {
        kube::Error::Api(Box::new(kube::core::Status {
            status: Some(kube::core::response::StatusSummary::Failure),
            code,
            message: message.into(),
            metadata: None,
            reason: reason.into(),
            details: None,
        }))
    }

    #[test]
    fn an_api_refusal_is_one_line_naming_the_object_reason_and_message() {
        let err = ObjectError::Api {
            target: ObjectRef::namespaced("apps/v1", "Deployment", "canaries", "web"),
            source: refused(
                "Forbidden",
                "deployments.apps \"web\" is forbidden: unable to create new content in namespace canaries because it is being terminated",
                403,
            ),
        };
        assert_eq!(
            err.to_string(),
            "deployment/web -n canaries: Forbidden: deployments.apps \"web\" is forbidden: unable to create new content in namespace canaries because it is being terminated"
        );
    }

    #[test]
    fn a_status_without_reason_or_message_still_says_something() {
        assert_eq!(
            explain(&refused("", "", 500)),
            "the API server answered 500"
        );
        assert_eq!(explain(&refused("NotFound", "", 404)), "NotFound (404)");
    }
}
