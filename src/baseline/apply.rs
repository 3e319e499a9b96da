//! Server-side apply of a baseline, and its removal.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::DynamicObject;
use kube::discovery::Scope;
use kube::runtime::wait::{await_condition, conditions};
use kube::{Api, Client};

use super::LoadedBaseline;
use crate::kobj::{self, ObjectError, ObjectRef};

/// How long a baseline apply waits for a namespace still being deleted
/// (an earlier run's baseline, say) to be gone, and how long the end of a
/// run waits for its baseline's namespace to go.
pub const NAMESPACE_GONE_TIMEOUT: Duration = Duration::from_secs(300);

/// Errors applying or removing a baseline.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// An object was refused by the API server.
    #[error("applying {target}: {source}")]
    Apply {
        /// The object, as `kind/name -n namespace`.
        target: String,
        /// What the server said.
        source: ObjectError,
    },
    /// Reading or writing an object failed.
    #[error(transparent)]
    Object(#[from] ObjectError),
    /// A CustomResourceDefinition in the baseline never became
    /// Established, so its custom objects cannot be applied.
    #[error(
        "CustomResourceDefinition {name} was applied but not established within {}s; the custom resources after it cannot be applied",
        CRD_ESTABLISHED_TIMEOUT.as_secs()
    )]
    CrdNotEstablished {
        /// The CRD's name.
        name: String,
    },
    /// A namespace the baseline needs is still being deleted (by an earlier run) after the wait.
    #[error(
        "namespace {namespace} is still being deleted after {}; look for finalizers that hold it: `kubectl get namespace {namespace} -o yaml`",
        crate::vocab::duration::format_duration(*waited)
    )]
    StillTerminating {
        /// The namespace.
        namespace: String,
        /// How long the apply waited for it.
        waited: Duration,
    },
    /// An instance's object turned out cluster-scoped: every instance
    /// would share it.
    #[error(
        "{target} is cluster-scoped, so every instance of the baseline would share it; run the baseline in place"
    )]
    SharedInInstance {
        /// The object the instances would share.
        target: String,
    },
}

/// How long a CRD the baseline applies may take to be served.
const CRD_ESTABLISHED_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

impl ApplyError {
    /// The API server's message when it refused the object (quota, admission, validation).
    pub fn api_message(&self) -> Option<String> {
        let source = match self {
            Self::Apply { source, .. } | Self::Object(source) => source,
            Self::CrdNotEstablished { .. }
            | Self::StillTerminating { .. }
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

/// Applies the baseline's namespace and objects with server-side apply
/// (idempotent: re-applying an applied baseline changes nothing), labelled
/// as managed by breakfix. Returns the objects in apply order. A namespace
/// still being deleted (an earlier run's) is waited for first; see
/// [`apply_baseline_noting`] to be told.
pub async fn apply_baseline(
    client: &Client,
    baseline: &LoadedBaseline,
    run_id: &str,
) -> Result<Vec<ObjectRef>, ApplyError> {
    apply_baseline_noting(client, baseline, run_id, |_| {}).await
}

/// [`apply_baseline`], calling `note` once with a line to show the user
/// when it has to wait for the namespace to finish terminating.
pub async fn apply_baseline_noting(
    client: &Client,
    baseline: &LoadedBaseline,
    run_id: &str,
    note: impl FnOnce(String),
) -> Result<Vec<ObjectRef>, ApplyError> {
    let mut labels = managed_labels(baseline.name(), run_id);
    if let Some(relocation) = &baseline.instance {
        labels.insert(
            super::instance::INSTANCE_LABEL.to_string(),
            relocation.id.clone(),
        );
    }
    let ns = baseline.spec.namespace.as_str();
    wait_until_not_terminating(client, ns, NAMESPACE_GONE_TIMEOUT, note).await?;
    let mut namespace: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": ns},
    }))
    .map_err(ObjectError::from)?;
    namespace.metadata.labels = Some(labels.clone());
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

/// Waits (watching) until the CRD `name` is Established, then until the
/// API server's discovery lists each version it serves, so the custom
/// resources the baseline applies after it resolve. Established comes
/// first: discovery follows it a moment later, and a custom resource
/// resolved in between gets a 404 from discovery.
async fn await_established(client: &Client, name: &str) -> Result<(), ApplyError> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::runtime::wait::{await_condition, conditions};
    let api: kube::Api<CustomResourceDefinition> = kube::Api::all(client.clone());
    let served = async {
        let crd = await_condition(api, name, conditions::is_crd_established())
            .await
            .map_err(|e| tracing::debug!(error = %e, crd = name, "watching the CRD failed"))?;
        let Some(crd) = crd else { return Err(()) };
        for version in crd.spec.versions.iter().filter(|v| v.served) {
            let group_version = format!("{}/{}", crd.spec.group, version.name);
            await_discovered(client, &group_version, &crd.spec.names.plural).await;
        }
        Ok(())
    };
    match tokio::time::timeout(CRD_ESTABLISHED_TIMEOUT, served).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(())) | Err(_) => Err(ApplyError::CrdNotEstablished { name: name.into() }),
    }
}

/// Returns once discovery lists `plural` in `group_version`. Discovery
/// cannot be watched, so it asks again after a short, growing pause; the
/// caller bounds the wait.
async fn await_discovered(client: &Client, group_version: &str, plural: &str) {
    let mut pause = std::time::Duration::from_millis(50);
    loop {
        match client.list_api_group_resources(group_version).await {
            Ok(list) if list.resources.iter().any(|r| r.name == plural) => return,
            Ok(_) => tracing::debug!(group_version, plural, "not in discovery yet"),
            Err(e) => tracing::debug!(error = %e, group_version, "not in discovery yet"),
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(std::time::Duration::from_secs(1));
    }
}

/// Deletes what [`apply_baseline`] applied, in reverse order, without
/// waiting for the namespace to be gone (see [`wait_namespace_gone`]).
pub async fn delete_baseline(client: &Client, applied: &[ObjectRef]) -> Result<(), ApplyError> {
    for target in applied.iter().rev() {
        kobj::delete_if_present(client, target, None).await?;
    }
    Ok(())
}

/// If namespace `ns` is terminating, calls `note` and waits (a watch,
/// bounded by `timeout`) until it is gone, so that what is applied next
/// lands in a live namespace instead of being refused ("unable to create
/// new content in namespace … because it is being terminated").
pub async fn wait_until_not_terminating(
    client: &Client,
    ns: &str,
    timeout: Duration,
    note: impl FnOnce(String),
) -> Result<(), ApplyError> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let live = namespaces
        .get_opt(ns)
        .await
        .map_err(|source| namespace_error(ns, source))?;
    let Some(uid) = live
        .filter(|n| n.metadata.deletion_timestamp.is_some())
        .and_then(|n| n.metadata.uid)
    else {
        return Ok(());
    };
    note(format!(
        "namespace {ns} is still being deleted (an earlier run's baseline?); waiting for it to go (at most {})",
        crate::vocab::duration::format_duration(timeout)
    ));
    wait_gone(namespaces, ns, &uid, timeout).await
}

/// Waits (a watch, bounded by `timeout`) until namespace `ns` — the one
/// with `uid`, not a later one of the same name — is gone.
pub async fn wait_namespace_gone(
    client: &Client,
    ns: &str,
    uid: &str,
    timeout: Duration,
) -> Result<(), ApplyError> {
    wait_gone(Api::all(client.clone()), ns, uid, timeout).await
}

async fn wait_gone(
    namespaces: Api<Namespace>,
    ns: &str,
    uid: &str,
    timeout: Duration,
) -> Result<(), ApplyError> {
    let gone = await_condition(namespaces, ns, conditions::is_deleted(uid));
    match tokio::time::timeout(timeout, gone).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(source)) => Err(ApplyError::Object(ObjectError::Wait {
            target: namespace_ref(ns),
            source,
        })),
        Err(_) => Err(ApplyError::StillTerminating {
            namespace: ns.to_string(),
            waited: timeout,
        }),
    }
}

fn namespace_ref(ns: &str) -> ObjectRef {
    ObjectRef {
        api_version: "v1".into(),
        kind: "Namespace".into(),
        namespace: None,
        name: ns.to_string(),
    }
}

fn namespace_error(ns: &str, source: kube::Error) -> ApplyError {
    ApplyError::Object(ObjectError::Api {
        target: namespace_ref(ns),
        source,
    })
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
