//! Responders' changes, read from the cluster: every write to an object in
//! a team's scope arrives as a watch event, and the object's
//! `managedFields` say which field manager made it — `kubectl-edit`,
//! `kubectl-patch`, `kubectl-rollout`, `kubectl-set`, `kubectl` (server-side
//! apply), `kubectl-client-side-apply`, `helm` — and when (to the second).
//! The fields it changed come from comparing the object before and after.
//! Writes by controllers, the kubelet and breakfix itself are not the
//! team's and are left out. A deletion carries no field manager; it is
//! recorded as one by "someone in the team's scope".

use std::collections::{BTreeMap, HashMap};

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
use kube::api::{ApiResource, DynamicObject};
use kube::core::GroupVersionKind;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc::UnboundedSender;

use crate::baseline::steady::{daemonset_verdict, deployment_verdict, statefulset_verdict};

/// What kind of write it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ChangeOp {
    /// The object was created.
    Create,
    /// The object was changed.
    Update,
    /// The object was deleted.
    Delete,
}

/// One field a change touched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FieldChange {
    /// `spec.template.spec.containers[0].image`
    pub path: String,
    /// `set`, `added` or `removed`.
    pub op: String,
    /// The new value, shortened (never shown for Secrets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// A write to one object by a responder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    /// `deployment/web`
    pub object: String,
    /// The object's namespace.
    pub namespace: String,
    /// Created, changed or deleted.
    pub op: ChangeOp,
    /// The field manager that made the write (`kubectl-edit`); for a
    /// deletion, which carries none, `unknown`.
    pub manager: String,
    /// `Update` or `Apply`, as the object's managedFields say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// The subresource written through (`scale`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subresource: Option<String>,
    /// The fields that changed, old and new values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldChange>,
    /// Whether the object is one the fault touched (restoring it is the fix).
    #[serde(default)]
    pub fault_object: bool,
}

/// The manager recorded for deletions, and for writes that left no
/// managedFields trace.
pub const UNKNOWN_MANAGER: &str = "unknown";

impl Change {
    /// One line: `kubectl-edit set deployment/web spec.…image = web:1.1`.
    pub fn describe(&self) -> String {
        let verb = match self.op {
            ChangeOp::Create => "created",
            ChangeOp::Update => "changed",
            ChangeOp::Delete => "deleted",
        };
        let who = if self.op == ChangeOp::Delete {
            "someone".to_string()
        } else {
            self.manager.clone()
        };
        let mut line = format!("{who} {verb} {}", self.object);
        if let Some(sub) = &self.subresource {
            line.push_str(&format!(" (through its {sub})"));
        }
        let fields: Vec<String> = self
            .fields
            .iter()
            .take(4)
            .map(|f| match &f.value {
                Some(v) => format!("{} = {v}", f.path),
                None => format!("{} ({})", f.path, f.op),
            })
            .collect();
        if !fields.is_empty() {
            line.push_str(": ");
            line.push_str(&fields.join(", "));
            if self.fields.len() > 4 {
                line.push_str(&format!(" and {} more", self.fields.len() - 4));
            }
        }
        line
    }
}

/// Whether a field manager is a person's tool rather than a controller,
/// the kubelet or breakfix itself.
pub fn is_responder(manager: &str) -> bool {
    !(manager == crate::vocab::FIELD_MANAGER
        || manager.starts_with("kube-")
        || manager == "kubelet"
        || manager.is_empty())
}

/// The kinds watched in a team's scope: what responders change while they
/// fix things (workloads, Services, configuration, RBAC, quotas, policies).
pub fn watched_kinds() -> Vec<ApiResource> {
    [
        ("apps", "v1", "Deployment", "deployments"),
        ("apps", "v1", "StatefulSet", "statefulsets"),
        ("apps", "v1", "DaemonSet", "daemonsets"),
        ("", "v1", "Service", "services"),
        ("", "v1", "ConfigMap", "configmaps"),
        ("", "v1", "Secret", "secrets"),
        ("", "v1", "ServiceAccount", "serviceaccounts"),
        ("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims"),
        ("", "v1", "ResourceQuota", "resourcequotas"),
        ("", "v1", "LimitRange", "limitranges"),
        ("rbac.authorization.k8s.io", "v1", "Role", "roles"),
        (
            "rbac.authorization.k8s.io",
            "v1",
            "RoleBinding",
            "rolebindings",
        ),
        ("batch", "v1", "CronJob", "cronjobs"),
        (
            "networking.k8s.io",
            "v1",
            "NetworkPolicy",
            "networkpolicies",
        ),
        (
            "policy",
            "v1",
            "PodDisruptionBudget",
            "poddisruptionbudgets",
        ),
        (
            "autoscaling",
            "v2",
            "HorizontalPodAutoscaler",
            "horizontalpodautoscalers",
        ),
    ]
    .into_iter()
    .map(|(g, v, k, plural)| {
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(g, v, k), plural)
    })
    .collect()
}

/// Annotations that controllers and kubectl keep up to date by themselves.
const NOISY_ANNOTATIONS: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    "deployment.kubernetes.io/revision",
];

/// The part of an object a responder changes: no status, no server-set
/// metadata, no bookkeeping annotations.
fn user_view(obj: &DynamicObject) -> Value {
    let mut v = serde_json::to_value(obj).unwrap_or(Value::Null);
    if let Some(map) = v.as_object_mut() {
        map.remove("status");
        if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
            for key in [
                "resourceVersion",
                "managedFields",
                "generation",
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "selfLink",
            ] {
                meta.remove(key);
            }
            if let Some(ann) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
                for key in NOISY_ANNOTATIONS {
                    ann.remove(*key);
                }
                if ann.is_empty() {
                    meta.remove("annotations");
                }
            }
        }
    }
    v
}

/// `/spec/containers/0/image` → `spec.containers[0].image`.
fn dotted(pointer: &str) -> String {
    let mut out = String::new();
    for part in pointer.split('/').skip(1) {
        let part = part.replace("~1", "/").replace("~0", "~");
        if !part.is_empty() && part.chars().all(|c| c.is_ascii_digit()) {
            out.push_str(&format!("[{part}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&part);
        }
    }
    out
}

/// The longest value shown for a field.
const VALUE_LEN: usize = 80;
/// The most fields recorded for one change.
const MAX_FIELDS: usize = 20;

fn short_value(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if s.chars().count() > VALUE_LEN {
        format!("{}…", s.chars().take(VALUE_LEN).collect::<String>())
    } else {
        s
    }
}

/// The fields that differ between `old` and `new` (user view), with their
/// new values unless `redact` (Secrets).
pub fn field_changes(old: &DynamicObject, new: &DynamicObject, redact: bool) -> Vec<FieldChange> {
    let patch = json_patch::diff(&user_view(old), &user_view(new));
    let ops = serde_json::to_value(&patch).unwrap_or(Value::Null);
    ops.as_array()
        .into_iter()
        .flatten()
        .take(MAX_FIELDS)
        .map(|op| {
            let path = dotted(op.get("path").and_then(Value::as_str).unwrap_or(""));
            let kind = op.get("op").and_then(Value::as_str).unwrap_or("");
            FieldChange {
                path,
                op: match kind {
                    "add" => "added",
                    "remove" => "removed",
                    _ => "set",
                }
                .into(),
                value: if redact || kind == "remove" {
                    None
                } else {
                    op.get("value").map(short_value)
                },
            }
        })
        .collect()
}

fn entry_key(e: &ManagedFieldsEntry) -> (Option<&str>, Option<&str>, Option<&str>) {
    (
        e.manager.as_deref(),
        e.operation.as_deref(),
        e.subresource.as_deref(),
    )
}

/// The field manager that made the write turning `old` into `new`: the
/// managedFields entry (not the status subresource's) that is new or has a
/// new time. Writes through a subresource such as `scale` carry no time, so
/// an entry without one counts as the newest. A write that takes fields
/// from another manager shrinks that manager's entry too; such an entry,
/// with its time unchanged, is not the writer. When no entry is new (the
/// same manager writing again within its one-second resolution, or a
/// `scale` write the API server folded into the field's previous owner),
/// `None`: the write left no trace of who made it.
pub fn writer(old: Option<&DynamicObject>, new: &DynamicObject) -> Option<ManagedFieldsEntry> {
    let entries: Vec<&ManagedFieldsEntry> = new
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|e| e.subresource.as_deref() != Some("status"))
        .collect();
    let before: Vec<&ManagedFieldsEntry> = old
        .and_then(|o| o.metadata.managed_fields.as_ref())
        .map(|v| v.iter().collect())
        .unwrap_or_default();
    let newest = |es: Vec<&ManagedFieldsEntry>| {
        es.into_iter()
            .max_by_key(|e| match &e.time {
                Some(t) => (0, Some(t.0)),
                None => (1, None),
            })
            .cloned()
    };
    let written: Vec<&ManagedFieldsEntry> = entries
        .iter()
        .copied()
        .filter(|e| {
            !before.iter().any(|b| {
                entry_key(b) == entry_key(e)
                    && b.time == e.time
                    && (e.time.is_some() || b.fields_v1 == e.fields_v1)
            })
        })
        .collect();
    if written.is_empty() && old.is_some() {
        None
    } else if written.is_empty() {
        newest(entries)
    } else {
        newest(written)
    }
}

/// What one watch event says about a responder's change, if it was one.
/// `old` is the object as last seen (absent for a creation).
pub fn analyse(
    old: Option<&DynamicObject>,
    new: &DynamicObject,
    fault_objects: &[String],
) -> Option<Change> {
    let kind = new
        .types
        .as_ref()
        .map(|t| t.kind.clone())
        .unwrap_or_default();
    let object = format!(
        "{}/{}",
        kind.to_lowercase(),
        new.metadata.name.clone().unwrap_or_default()
    );
    // No new entry: nothing of breakfix's or a controller's (they leave
    // theirs), so a responder whose tool left no trace.
    let entry = writer(old, new).unwrap_or_else(|| ManagedFieldsEntry {
        manager: Some(UNKNOWN_MANAGER.into()),
        ..ManagedFieldsEntry::default()
    });
    let manager = entry.manager.clone().unwrap_or_default();
    if !is_responder(&manager) {
        return None;
    }
    let (op, fields) = match old {
        Some(old) => {
            let fields = field_changes(old, new, kind == "Secret");
            if fields.is_empty() {
                return None;
            }
            (ChangeOp::Update, fields)
        }
        None => (ChangeOp::Create, Vec::new()),
    };
    Some(Change {
        fault_object: fault_objects.contains(&object),
        object,
        namespace: new.metadata.namespace.clone().unwrap_or_default(),
        op,
        manager,
        operation: entry.operation.clone(),
        subresource: entry.subresource.clone().filter(|s| !s.is_empty()),
        fields,
    })
}

/// A deletion seen on a watch.
pub fn deletion(obj: &DynamicObject, fault_objects: &[String]) -> Change {
    let kind = obj
        .types
        .as_ref()
        .map(|t| t.kind.clone())
        .unwrap_or_default();
    let object = format!(
        "{}/{}",
        kind.to_lowercase(),
        obj.metadata.name.clone().unwrap_or_default()
    );
    Change {
        fault_object: fault_objects.contains(&object),
        object,
        namespace: obj.metadata.namespace.clone().unwrap_or_default(),
        op: ChangeOp::Delete,
        manager: UNKNOWN_MANAGER.into(),
        operation: None,
        subresource: None,
        fields: Vec::new(),
    }
}

/// What the change watch reports.
#[derive(Debug, Clone)]
pub enum Seen {
    /// A responder's write, stamped when breakfix received it.
    Change(Timestamp, Change),
    /// A workload's steady-state verdict, on every event about it.
    Workload {
        /// The workload, as `kind/name`.
        object: String,
        /// Whether it is steady now.
        steady: bool,
        /// Its pods' template labels, to tell which Services select it.
        pod_labels: BTreeMap<String, String>,
    },
    /// A watch failed (it retries with back-off).
    Error(String),
}

/// A workload's verdict and pod labels, if `obj` is a workload.
fn workload_verdict(obj: &DynamicObject) -> Option<(bool, BTreeMap<String, String>)> {
    let kind = obj.types.as_ref()?.kind.as_str();
    let value = serde_json::to_value(obj).ok()?;
    let labels = value
        .pointer("/spec/template/metadata/labels")
        .and_then(|l| serde_json::from_value(l.clone()).ok())
        .unwrap_or_default();
    let steady = match kind {
        "Deployment" => deployment_verdict(&serde_json::from_value(value).ok()?).0,
        "StatefulSet" => statefulset_verdict(&serde_json::from_value(value).ok()?).0,
        "DaemonSet" => daemonset_verdict(&serde_json::from_value(value).ok()?).0,
        _ => return None,
    };
    Some((steady, labels))
}

/// Watches `kind` in `namespace` and sends what responders change (and
/// workloads' verdicts) until `tx` is closed or the task is aborted. The
/// first list is the starting point and is not reported.
pub async fn watch_kind(
    client: Client,
    namespace: String,
    kind: ApiResource,
    fault_objects: Vec<String>,
    tx: UnboundedSender<Seen>,
) {
    let api: Api<DynamicObject> = Api::namespaced_with(client, &namespace, &kind);
    let mut known: HashMap<String, DynamicObject> = HashMap::new();
    let mut relist: HashMap<String, DynamicObject> = HashMap::new();
    let mut listed = false;
    let mut events = watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    let name_of = |o: &DynamicObject| o.metadata.name.clone().unwrap_or_default();
    let with_types = |mut o: DynamicObject| {
        o.types.get_or_insert_with(|| kube::api::TypeMeta {
            api_version: kind.api_version.clone(),
            kind: kind.kind.clone(),
        });
        o
    };
    while let Some(event) = events.next().await {
        let mut out = Vec::new();
        match event {
            Ok(watcher::Event::Init) => relist.clear(),
            Ok(watcher::Event::InitApply(o)) => {
                let o = with_types(o);
                relist.insert(name_of(&o), o);
            }
            Ok(watcher::Event::InitDone) => {
                let fresh = std::mem::take(&mut relist);
                if listed {
                    // A watch that had to list again: what changed meanwhile.
                    for (name, o) in &fresh {
                        match known.get(name) {
                            Some(old)
                                if old.metadata.resource_version == o.metadata.resource_version => {
                            }
                            old => out.extend(
                                analyse(old, o, &fault_objects)
                                    .map(|c| Seen::Change(Timestamp::now(), c)),
                            ),
                        }
                    }
                    for (name, o) in &known {
                        if !fresh.contains_key(name) {
                            out.push(Seen::Change(Timestamp::now(), deletion(o, &fault_objects)));
                        }
                    }
                }
                for o in fresh.values() {
                    if let Some((steady, pod_labels)) = workload_verdict(o) {
                        out.push(Seen::Workload {
                            object: format!("{}/{}", kind.kind.to_lowercase(), name_of(o)),
                            steady,
                            pod_labels,
                        });
                    }
                }
                known = fresh;
                listed = true;
            }
            Ok(watcher::Event::Apply(o)) => {
                let o = with_types(o);
                let name = name_of(&o);
                if let Some(c) = analyse(known.get(&name), &o, &fault_objects) {
                    out.push(Seen::Change(Timestamp::now(), c));
                }
                if let Some((steady, pod_labels)) = workload_verdict(&o) {
                    out.push(Seen::Workload {
                        object: format!("{}/{name}", kind.kind.to_lowercase()),
                        steady,
                        pod_labels,
                    });
                }
                known.insert(name, o);
            }
            Ok(watcher::Event::Delete(o)) => {
                let o = with_types(o);
                known.remove(&name_of(&o));
                out.push(Seen::Change(Timestamp::now(), deletion(&o, &fault_objects)));
            }
            Err(e) => out.push(Seen::Error(format!("watching {}: {e}", kind.plural))),
        }
        for seen in out {
            if tx.send(seen).is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    fn obj(value: Value) -> DynamicObject {
        serde_json::from_value(value).unwrap()
    }

    fn deployment(image: &str, managers: Value) -> DynamicObject {
        obj(serde_json::json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {
                "name": "web", "namespace": "shop", "resourceVersion": "7", "generation": 3,
                "annotations": {"deployment.kubernetes.io/revision": "3"},
                "managedFields": managers,
            },
            "spec": {"template": {"spec": {"containers": [{"name": "web", "image": image}]}}},
            "status": {"readyReplicas": 1},
        }))
    }

    fn entry(manager: &str, operation: &str, time: &str, sub: Option<&str>) -> Value {
        serde_json::json!({"manager": manager, "operation": operation, "apiVersion": "apps/v1",
            "time": time, "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}, "subresource": sub})
    }

    #[test]
    fn a_kubectl_edit_is_attributed_with_its_field_and_value() {
        let old = deployment(
            "web:1",
            serde_json::json!([entry("breakfix", "Apply", "2026-01-01T00:00:00Z", None)]),
        );
        let new = deployment(
            "web:2",
            serde_json::json!([
                entry("breakfix", "Apply", "2026-01-01T00:00:00Z", None),
                entry(
                    "kube-controller-manager",
                    "Update",
                    "2026-01-01T00:00:09Z",
                    Some("status")
                ),
                entry("kubectl-edit", "Update", "2026-01-01T00:00:05Z", None),
            ]),
        );
        let change = analyse(Some(&old), &new, &[]).expect("a responder's change");
        assert_eq!(change.manager, "kubectl-edit");
        assert_eq!(change.op, ChangeOp::Update);
        assert_eq!(
            change.fields,
            [FieldChange {
                path: "spec.template.spec.containers[0].image".into(),
                op: "set".into(),
                value: Some("web:2".into())
            }]
        );
        assert_eq!(
            change.describe(),
            "kubectl-edit changed deployment/web: spec.template.spec.containers[0].image = web:2"
        );
    }

    #[test]
    fn a_scale_takes_the_field_from_the_applier_and_is_still_the_scalers() {
        let applied = |fields: Value| {
            serde_json::json!({"manager": "breakfix", "operation": "Apply", "apiVersion": "apps/v1",
                "time": "2026-01-01T00:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": fields})
        };
        let old = deployment(
            "web:1",
            serde_json::json!([applied(serde_json::json!({"f:spec": {"f:replicas": {}}}))]),
        );
        let mut new = deployment(
            "web:1",
            serde_json::json!([
                applied(serde_json::json!({"f:spec": {}})),
                {"manager": "kubectl", "operation": "Update", "apiVersion": "apps/v1",
                 "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}, "subresource": "scale"},
            ]),
        );
        new.data["spec"]["replicas"] = serde_json::json!(0);
        let change = analyse(Some(&old), &new, &[]).expect("the scale is a change");
        assert_eq!(change.manager, "kubectl");
        assert_eq!(change.subresource.as_deref(), Some("scale"));
        assert_eq!(
            change.describe(),
            "kubectl changed deployment/web (through its scale): spec.replicas = 0"
        );
    }

    #[rstest]
    #[case::controller("kube-controller-manager")]
    #[case::breakfix("breakfix")]
    fn writes_by_controllers_and_breakfix_are_not_the_teams(#[case] manager: &str) {
        let old = deployment("web:1", serde_json::json!([]));
        let new = deployment(
            "web:2",
            serde_json::json!([entry(manager, "Update", "2026-01-01T00:00:05Z", None)]),
        );
        assert_eq!(analyse(Some(&old), &new, &[]), None);
    }

    #[test]
    fn a_status_only_write_is_no_change() {
        let managers = serde_json::json!([entry(
            "kubectl-edit",
            "Update",
            "2026-01-01T00:00:05Z",
            None
        )]);
        let old = deployment("web:1", managers.clone());
        let mut new = deployment("web:1", managers);
        new.data["status"] = serde_json::json!({"readyReplicas": 0});
        new.metadata.resource_version = Some("8".into());
        assert_eq!(analyse(Some(&old), &new, &[]), None);
    }

    #[test]
    fn a_creation_names_its_manager_and_whether_the_fault_touched_it() {
        let rb = obj(serde_json::json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "api-canary-reader", "namespace": "canaries",
                "managedFields": [{"manager": "kubectl-create", "operation": "Update",
                    "time": "2026-01-01T00:00:05Z", "fieldsType": "FieldsV1", "fieldsV1": {}}]},
        }));
        let change = analyse(None, &rb, &["rolebinding/api-canary-reader".into()]).unwrap();
        assert_eq!(change.op, ChangeOp::Create);
        assert_eq!(change.manager, "kubectl-create");
        assert!(change.fault_object);
    }

    #[test]
    fn secret_values_are_never_recorded() {
        let secret = |v: &str| {
            obj(serde_json::json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "db", "namespace": "shop", "managedFields": [
                    {"manager": "kubectl-edit", "operation": "Update", "time": "2026-01-01T00:00:05Z"}]},
                "data": {"password": v},
            }))
        };
        let change = analyse(Some(&secret("b2xk")), &secret("bmV3"), &[]).unwrap();
        assert_eq!(change.fields[0].path, "data.password");
        assert_eq!(change.fields[0].value, None);
        assert!(!change.describe().contains("bmV3"));
    }

    #[rstest]
    #[case(
        "/spec/template/spec/containers/0/image",
        "spec.template.spec.containers[0].image"
    )]
    #[case(
        "/metadata/labels/app.kubernetes.io~1name",
        "metadata.labels.app.kubernetes.io/name"
    )]
    fn pointers_read_as_field_paths(#[case] pointer: &str, #[case] path: &str) {
        assert_eq!(dotted(pointer), path);
    }
}
