//! Baseline instances: one baseline applied into namespaces of its own, so
//! that several copies live side by side on one cluster (experiments run
//! concurrently, a team per copy on a game day) without seeing each other.
//!
//! An instance renames every namespace the baseline owns (`shop` →
//! `shop-bf-<id>`: its own namespace and every Namespace object in its
//! manifests) and the cluster-scoped RBAC objects it creates
//! (`ClusterRole`/`ClusterRoleBinding` → `<name>-bf-<id>`), and rewrites
//! every reference to them: objects' namespaces, RoleBinding subjects and
//! role references, namespace selectors and lists, Services' DNS names in
//! any string (`web.shop.svc.cluster.local`, `web.shop`), namespace-valued
//! container arguments and environment values, steady-state checks, and,
//! through [`Relocation::rewrite_spec`], an experiment's fault targets and
//! SLO objects.
//!
//! A baseline that cannot be moved says why ([`NotRelocatable`]): objects
//! in a namespace it does not own (a fixed namespace it insists on), other
//! cluster-scoped objects (CRDs, PriorityClasses, … every copy would share
//! them), or a DNS name of a Service it does not define in a namespace it
//! owns (the name would break once moved).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use kube::Client;
use kube::api::DynamicObject;
use serde::Serialize;
use serde_json::Value;

use super::{ApplyError, LoadedBaseline, SteadyCheck};
use crate::kobj::{self, ObjectRef};
use crate::vocab::Name;

/// The suffix every renamed namespace and object carries: `-bf-<id>`.
pub const INSTANCE_INFIX: &str = "-bf-";

/// Label on every object of an instance: the instance id.
pub const INSTANCE_LABEL: &str = "breakfix.dev/instance";

/// Kinds that are cluster-scoped in every Kubernetes release breakfix
/// supports. Objects of kinds not listed here and written without a
/// namespace are taken as namespaced; applying an instance checks that
/// against discovery and refuses a cluster-scoped one.
const CLUSTER_SCOPED: &[&str] = &[
    "Namespace",
    "Node",
    "PersistentVolume",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "StorageClass",
    "PriorityClass",
    "IngressClass",
    "RuntimeClass",
    "CSIDriver",
    "CSINode",
    "VolumeAttachment",
    "CertificateSigningRequest",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "MutatingAdmissionPolicy",
    "MutatingAdmissionPolicyBinding",
    "APIService",
    "FlowSchema",
    "PriorityLevelConfiguration",
    "VolumeAttributesClass",
    "DeviceClass",
];

/// Cluster-scoped kinds an instance renames rather than shares: objects
/// that only matter through the references breakfix rewrites.
const RENAMED_CLUSTER_KINDS: &[&str] = &["ClusterRole", "ClusterRoleBinding"];

/// Why a baseline cannot be applied as an instance; it runs in place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("baseline `{baseline}` cannot run in a namespace of its own: {reason}")]
pub struct NotRelocatable {
    /// The baseline's name.
    pub baseline: String,
    /// Why it cannot move (a cluster-scoped object, a namespace it does not own, …).
    pub reason: String,
}

/// How one instance of a baseline is moved: what each owned namespace and
/// renamed cluster-scoped object is called in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Relocation {
    /// The instance id: lower-case letters and digits.
    pub id: String,
    /// Each namespace the baseline owns → its name in the instance.
    pub namespaces: BTreeMap<String, String>,
    /// Each cluster-scoped object the baseline owns (as written) → its
    /// name in the instance.
    pub cluster_objects: Vec<(ObjectRef, String)>,
}

/// A short instance id derived from `seed` (five base-36 characters):
/// the same seed gives the same id, so a run id plus an experiment and a
/// trial name one instance.
pub fn instance_id(seed: &str) -> String {
    // FNV-1a, 64 bits: stable across builds and platforms.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in seed.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    (0..5)
        .map(|_| {
            let d = DIGITS[(hash % 36) as usize] as char;
            hash /= 36;
            d
        })
        .collect()
}

impl Relocation {
    /// The instance's name of namespace `ns`, if the baseline owns it.
    pub fn namespace(&self, ns: &str) -> Option<&str> {
        self.namespaces.get(ns).map(String::as_str)
    }

    /// The instance's namespaces, the baseline's own first.
    pub fn new_namespaces(&self) -> impl Iterator<Item = &str> {
        self.namespaces.values().map(String::as_str)
    }

    /// The instance's name of the cluster-scoped object `kind`/`name`, if
    /// the baseline owns (and the instance renames) it.
    pub fn cluster_object(&self, kind: &str, name: &str) -> Option<&str> {
        self.cluster_objects
            .iter()
            .find(|(o, _)| o.kind == kind && o.name == name)
            .map(|(_, n)| n.as_str())
    }

    /// The renamed cluster-scoped objects as they exist in the instance.
    pub fn renamed_cluster_objects(&self) -> Vec<ObjectRef> {
        self.cluster_objects
            .iter()
            .map(|(o, n)| ObjectRef {
                name: n.clone(),
                ..o.clone()
            })
            .collect()
    }

    /// Rewrites an experiment's own data (a fault, SLOs) for the instance:
    /// every `namespace`/`…Namespace` string field naming an owned
    /// namespace, every `namespaces`/`…Namespaces` list, and every
    /// `{kind, name}` naming a renamed cluster-scoped object.
    pub fn rewrite_spec(&self, value: &mut Value) {
        match value {
            Value::Object(map) => {
                let kind = map.get("kind").and_then(Value::as_str).map(str::to_owned);
                let unnamespaced = !map.contains_key("namespace");
                for (key, field) in map.iter_mut() {
                    if is_namespace_key(key) {
                        if let Value::String(s) = field
                            && let Some(new) = self.namespace(s)
                        {
                            *s = new.to_string();
                        }
                    } else if is_namespaces_key(key) {
                        if let Value::Array(items) = field {
                            for item in items {
                                if let Value::String(s) = item
                                    && let Some(new) = self.namespace(s)
                                {
                                    *s = new.to_string();
                                }
                            }
                        }
                    } else if key == "name"
                        && unnamespaced
                        && let (Some(kind), Value::String(s)) = (&kind, &mut *field)
                        && let Some(new) = self.cluster_object(kind, s)
                    {
                        *s = new.to_string();
                    } else {
                        self.rewrite_spec(field);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.rewrite_spec(v)),
            _ => {}
        }
    }
}

fn is_namespace_key(key: &str) -> bool {
    key == "namespace" || key.ends_with("Namespace")
}

fn is_namespaces_key(key: &str) -> bool {
    key == "namespaces" || key.ends_with("Namespaces")
}

impl LoadedBaseline {
    /// How this baseline would be moved into instance `id`, or why it
    /// cannot be. Nothing is applied.
    pub fn relocation(&self, id: &str) -> Result<Relocation, NotRelocatable> {
        let refuse = |reason: String| NotRelocatable {
            baseline: self.name().to_string(),
            reason,
        };
        if id.is_empty()
            || id.len() > 8
            || !id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        {
            return Err(refuse(format!(
                "instance id `{id}` must be 1 to 8 lower-case letters or digits"
            )));
        }
        let own = self.spec.namespace.as_str();
        if crate::vocab::is_system_namespace(own) || own == "default" {
            return Err(refuse(format!(
                "it lives in `{own}`, a namespace every cluster has; give it a namespace of its own"
            )));
        }
        let mut owned = vec![own.to_string()];
        for obj in &self.objects {
            if kind_of(obj) == "Namespace"
                && let Some(name) = &obj.metadata.name
                && !owned.contains(name)
            {
                owned.push(name.clone());
            }
        }
        let mut namespaces = BTreeMap::new();
        for ns in owned {
            let new = format!("{ns}{INSTANCE_INFIX}{id}");
            if Name::new(&new).is_err() {
                return Err(refuse(format!(
                    "namespace `{ns}` is too long to carry the instance suffix `{INSTANCE_INFIX}{id}` (63 characters at most)"
                )));
            }
            namespaces.insert(ns, new);
        }
        let mut cluster_objects = Vec::new();
        for obj in &self.objects {
            let kind = kind_of(obj);
            let name = obj.metadata.name.clone().unwrap_or_default();
            if let Some(ns) = &obj.metadata.namespace
                && !namespaces.contains_key(ns)
            {
                return Err(refuse(format!(
                    "{kind}/{name} is in namespace `{ns}`, which the baseline does not create; an instance cannot move it"
                )));
            }
            if kind == "Namespace" || !CLUSTER_SCOPED.contains(&kind) {
                continue;
            }
            if !RENAMED_CLUSTER_KINDS.contains(&kind) {
                return Err(refuse(format!(
                    "{kind}/{name} is cluster-scoped; every instance would share it"
                )));
            }
            let target = ObjectRef {
                api_version: obj
                    .types
                    .as_ref()
                    .map(|t| t.api_version.clone())
                    .unwrap_or_default(),
                kind: kind.to_string(),
                namespace: None,
                name: name.clone(),
            };
            cluster_objects.push((target, format!("{name}{INSTANCE_INFIX}{id}")));
        }
        Ok(Relocation {
            id: id.to_string(),
            namespaces,
            cluster_objects,
        })
    }

    /// This baseline as instance `id`: every owned namespace and renamed
    /// object moved, every reference to them rewritten. The returned
    /// baseline carries its [`Relocation`] in `instance`; apply it with
    /// [`super::apply_baseline`] and remove it with [`delete_instance`].
    pub fn instance(&self, id: &str) -> Result<Self, NotRelocatable> {
        let relocation = self.relocation(id)?;
        let refuse = |reason: String| NotRelocatable {
            baseline: self.name().to_string(),
            reason,
        };
        let own = self.spec.namespace.as_str();
        let services: BTreeSet<(String, String)> = self
            .objects
            .iter()
            .filter(|o| kind_of(o) == "Service")
            .filter_map(|o| {
                let ns = o.metadata.namespace.as_deref().unwrap_or(own);
                Some((ns.to_string(), o.metadata.name.clone()?))
            })
            .collect();
        let mut objects = Vec::with_capacity(self.objects.len());
        for obj in &self.objects {
            let label = format!(
                "{}/{}",
                kind_of(obj),
                obj.metadata.name.as_deref().unwrap_or_default()
            );
            let mut value = serde_json::to_value(obj)
                .map_err(|e| refuse(format!("{label} cannot be read back: {e}")))?;
            let mut mover = Mover {
                relocation: &relocation,
                services: &services,
                problem: None,
                secret: kind_of(obj) == "Secret",
            };
            mover.object(&mut value);
            if let Some(problem) = mover.problem {
                return Err(refuse(format!("{label}: {problem}")));
            }
            let moved: DynamicObject = serde_json::from_value(value)
                .map_err(|e| refuse(format!("{label} cannot be rewritten: {e}")))?;
            objects.push(moved);
        }
        let mut spec = self.spec.clone();
        spec.namespace = Name::new(relocation.namespace(own).unwrap_or(own))
            .map_err(|e| refuse(e.to_string()))?;
        let rename = |n: &mut Name| {
            if let Some(new) = relocation.namespace(n.as_str())
                && let Ok(new) = Name::new(new)
            {
                *n = new;
            }
        };
        for check in &mut spec.steady_state.checks {
            match check {
                SteadyCheck::PodsReady(p) => p.namespace.iter_mut().for_each(rename),
                SteadyCheck::ServiceEndpoints(e) => e.namespace.iter_mut().for_each(rename),
                SteadyCheck::Deployment(d) => rename(&mut d.namespace),
                SteadyCheck::NodesReady => {}
            }
        }
        Ok(Self {
            path: self.path.clone(),
            spec,
            metadata: self.metadata.clone(),
            objects,
            instance: Some(relocation),
        })
    }
}

/// The kind of a manifest object (`""` when it has none).
fn kind_of(obj: &DynamicObject) -> &str {
    obj.types.as_ref().map(|t| t.kind.as_str()).unwrap_or("")
}

/// Rewrites one manifest object (as JSON) for an instance.
struct Mover<'a> {
    relocation: &'a Relocation,
    /// (namespace, name) of every Service the baseline defines.
    services: &'a BTreeSet<(String, String)>,
    /// The first reference that cannot be rewritten.
    problem: Option<String>,
    /// Rewriting a Secret: problems never quote its data.
    secret: bool,
}

impl Mover<'_> {
    fn object(&mut self, value: &mut Value) {
        let kind = value
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
            if let Some(Value::String(name)) = meta.get_mut("name") {
                let renamed = if kind == "Namespace" {
                    self.relocation.namespace(name)
                } else {
                    self.relocation.cluster_object(&kind, name)
                };
                if let Some(new) = renamed {
                    *name = new.to_string();
                }
            }
            if let Some(Value::String(ns)) = meta.get_mut("namespace")
                && let Some(new) = self.relocation.namespace(ns)
            {
                *ns = new.to_string();
            }
            let labels = meta
                .entry("labels")
                .or_insert_with(|| Value::Object(serde_json::Map::new()));
            if let Value::Object(labels) = labels {
                labels.insert(
                    INSTANCE_LABEL.into(),
                    Value::String(self.relocation.id.clone()),
                );
            }
        }
        for (key, field) in value.as_object_mut().into_iter().flatten() {
            if key != "metadata" && key != "apiVersion" && key != "kind" {
                self.walk(key, field);
            }
        }
    }

    /// Walks a field: namespace fields and lists, namespace selectors,
    /// role references, container arguments and environment, and DNS
    /// names in every string.
    fn walk(&mut self, key: &str, value: &mut Value) {
        match value {
            Value::String(s) => {
                if is_namespace_key(key)
                    && let Some(new) = self.relocation.namespace(s)
                {
                    *s = new.to_string();
                } else {
                    self.dns_names(s);
                }
            }
            Value::Array(items) => {
                let argv = key == "args" || key == "command";
                for item in items.iter_mut() {
                    match item {
                        Value::String(s) if is_namespaces_key(key) => {
                            if let Some(new) = self.relocation.namespace(s) {
                                *s = new.to_string();
                            }
                        }
                        Value::String(s) if argv => self.argument(s),
                        _ => self.walk(key, item),
                    }
                }
            }
            Value::Object(map) => {
                if key == "roleRef"
                    && let Some(kind) = map.get("kind").and_then(Value::as_str).map(str::to_owned)
                    && let Some(Value::String(name)) = map.get_mut("name")
                    && let Some(new) = self.relocation.cluster_object(&kind, name)
                {
                    *name = new.to_string();
                }
                let is_env_entry = map.contains_key("name") && map.contains_key("value");
                for (k, field) in map.iter_mut() {
                    match (k.as_str(), &mut *field) {
                        ("value", Value::String(s)) if is_env_entry => self.argument(s),
                        ("kubernetes.io/metadata.name", Value::String(s)) => {
                            if let Some(new) = self.relocation.namespace(s) {
                                *s = new.to_string();
                            }
                        }
                        _ => self.walk(k, field),
                    }
                }
                // matchExpressions on the namespace's name label.
                if map.get("key").and_then(Value::as_str) == Some("kubernetes.io/metadata.name")
                    && let Some(Value::Array(values)) = map.get_mut("values")
                {
                    for v in values {
                        if let Value::String(s) = v
                            && let Some(new) = self.relocation.namespace(s)
                        {
                            *s = new.to_string();
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// A container argument or environment value: the namespace itself
    /// (`shop`, `--namespace=shop`) is a reference to it; anything else is
    /// searched for DNS names.
    fn argument(&mut self, s: &mut String) {
        if let Some(new) = self.relocation.namespace(s) {
            *s = new.to_string();
            return;
        }
        if let Some((flag, value)) = s.split_once('=')
            && flag.starts_with('-')
            && let Some(new) = self.relocation.namespace(value)
        {
            *s = format!("{flag}={new}");
            return;
        }
        self.dns_names(s);
    }

    /// Rewrites the DNS names of the baseline's Services in `s`
    /// (`web.shop`, `web.shop.svc`, `web.shop.svc.cluster.local`, and pod
    /// names under them). A `.svc` name of a Service the baseline does not
    /// define, in a namespace it owns, cannot follow the move: a problem.
    fn dns_names(&mut self, s: &mut String) {
        let mut out = String::with_capacity(s.len());
        let mut changed = false;
        let mut rest = s.as_str();
        while !rest.is_empty() {
            let start = rest.find(|c: char| is_dns_char(c)).unwrap_or(rest.len());
            out.push_str(&rest[..start]);
            rest = &rest[start..];
            let end = rest.find(|c: char| !is_dns_char(c)).unwrap_or(rest.len());
            let token = &rest[..end];
            rest = &rest[end..];
            match self.dns_token(token) {
                Some(new) => {
                    out.push_str(&new);
                    changed = true;
                }
                None => out.push_str(token),
            }
        }
        if changed {
            *s = out;
        }
    }

    fn dns_token(&mut self, token: &str) -> Option<String> {
        let labels: Vec<&str> = token.split('.').collect();
        for i in 1..labels.len() {
            let Some(new) = self.relocation.namespace(labels[i]) else {
                continue;
            };
            let qualified = labels.get(i + 1) == Some(&"svc");
            if !qualified && i + 1 != labels.len() {
                continue;
            }
            let service = labels[i - 1];
            if self
                .services
                .contains(&(labels[i].to_string(), service.to_string()))
            {
                let mut moved = labels.clone();
                moved[i] = new;
                return Some(moved.join("."));
            }
            if qualified && self.problem.is_none() {
                self.problem = Some(if self.secret {
                    format!(
                        "its data names a Service in namespace `{}` that the baseline does not define; the name cannot follow the move",
                        labels[i]
                    )
                } else {
                    format!(
                        "`{token}` names Service `{service}` in namespace `{}`, which the baseline does not define; the name cannot follow the move",
                        labels[i]
                    )
                });
            }
        }
        None
    }
}

fn is_dns_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '.'
}

/// How long [`delete_instance`] waits by default for an instance's
/// namespaces to be gone (their pods' graceful termination included).
pub const INSTANCE_DELETE_TIMEOUT: Duration = Duration::from_secs(180);

/// Deletes an instance: its renamed cluster-scoped objects, then its
/// namespaces (and with them everything in them), and waits until every
/// one of them is gone, so the next instance starts on a clean cluster.
///
/// # Errors
///
/// The first object that could not be deleted, or a namespace still there
/// after `timeout`; the others are still deleted.
pub async fn delete_instance(
    client: &Client,
    relocation: &Relocation,
    timeout: Duration,
) -> Result<(), ApplyError> {
    let mut first_error = None;
    for target in relocation.renamed_cluster_objects() {
        if let Err(e) = kobj::delete_if_present(client, &target, None).await {
            first_error.get_or_insert(e);
        }
    }
    let namespaces: Vec<ObjectRef> = relocation
        .new_namespaces()
        .map(|ns| ObjectRef {
            api_version: "v1".into(),
            kind: "Namespace".into(),
            namespace: None,
            name: ns.to_string(),
        })
        .collect();
    let results = futures::future::join_all(
        namespaces
            .iter()
            .map(|ns| kobj::delete_tree(client, ns, None, timeout)),
    )
    .await;
    for result in results {
        if let Err(e) = result {
            first_error.get_or_insert(e);
        }
    }
    match first_error {
        None => Ok(()),
        Some(e) => Err(ApplyError::Object(e)),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use rstest::rstest;

    use super::*;

    /// A baseline in `ns` with `manifests` (multi-document YAML).
    fn baseline(ns: &str, manifests: &str) -> LoadedBaseline {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("manifests")).unwrap();
        std::fs::write(dir.path().join("manifests/objects.yaml"), manifests).unwrap();
        std::fs::write(
            dir.path().join("baseline.yaml"),
            format!(
                "apiVersion: breakfix.dev/v1alpha1\nkind: Baseline\nmetadata: {{name: test}}\nspec:\n  namespace: {ns}\n  steadyState:\n    checks:\n      - podsReady: {{selector: app=web}}\n      - serviceEndpoints: {{service: web, namespace: {ns}}}\n      - deployment: {{namespace: kube-system, name: coredns}}\n"
            ),
        )
        .unwrap();
        LoadedBaseline::load(&dir.path().join("baseline.yaml")).unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn find(b: &LoadedBaseline, kind: &str) -> serde_json::Value {
        let obj = b
            .objects
            .iter()
            .find(|o| kind_of(o) == kind)
            .unwrap_or_else(|| panic!("no {kind}"));
        serde_json::to_value(obj).unwrap()
    }

    #[test]
    fn instance_ids_are_short_stable_and_differ_by_seed() {
        let a = instance_id("run-1/image-typo/1");
        assert_eq!(a, instance_id("run-1/image-typo/1"));
        assert_ne!(a, instance_id("run-1/image-typo/2"));
        assert_eq!(a.len(), 5);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
    }

    #[test]
    fn every_reference_to_the_namespace_follows_the_move() {
        let b = baseline(
            "shop",
            "\
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {selector: {app: web}, ports: [{port: 80}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: client, namespace: shop}
spec:
  selector: {matchLabels: {app: client}}
  template:
    metadata: {labels: {app: client}}
    spec:
      containers:
        - name: c
          image: x
          args: [http-canary, --url, 'http://web.shop.svc.cluster.local:80/', --namespace, shop, --watch=shop]
          env:
            - {name: TARGET, value: web.shop}
            - {name: NS, value: shop}
            - {name: OTHER, value: kubernetes.default.svc}
      affinity:
        podAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            - topologyKey: kubernetes.io/hostname
              namespaces: [shop]
              labelSelector: {matchLabels: {app: web}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: reader}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: reader}
subjects:
  - {kind: ServiceAccount, name: client, namespace: shop}
  - {kind: ServiceAccount, name: prometheus, namespace: monitoring}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: reader}
rules: [{apiGroups: [''], resources: [pods], verbs: [list]}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web}
spec: {minAvailable: 1, selector: {matchLabels: {app: web}}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-shop}
spec:
  podSelector: {}
  ingress:
    - from:
        - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: shop}}
        - namespaceSelector:
            matchExpressions: [{key: kubernetes.io/metadata.name, operator: In, values: [shop, other]}]
",
        );
        let i = b.instance("abc12").unwrap();
        assert_eq!(i.spec.namespace.as_str(), "shop-bf-abc12");
        let client = find(&i, "Deployment");
        assert_eq!(client["metadata"]["namespace"], "shop-bf-abc12");
        assert_eq!(client["metadata"]["labels"][INSTANCE_LABEL], "abc12");
        let pod = &client["spec"]["template"]["spec"];
        assert_eq!(
            pod["containers"][0]["args"],
            serde_json::json!([
                "http-canary",
                "--url",
                "http://web.shop-bf-abc12.svc.cluster.local:80/",
                "--namespace",
                "shop-bf-abc12",
                "--watch=shop-bf-abc12"
            ])
        );
        let env = &pod["containers"][0]["env"];
        assert_eq!(env[0]["value"], "web.shop-bf-abc12");
        assert_eq!(env[1]["value"], "shop-bf-abc12");
        assert_eq!(env[2]["value"], "kubernetes.default.svc", "not ours");
        assert_eq!(
            pod["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]["namespaces"],
            serde_json::json!(["shop-bf-abc12"])
        );
        let binding = find(&i, "RoleBinding");
        assert_eq!(binding["subjects"][0]["namespace"], "shop-bf-abc12");
        assert_eq!(binding["subjects"][1]["namespace"], "monitoring");
        assert_eq!(binding["roleRef"]["name"], "reader-bf-abc12");
        assert_eq!(
            find(&i, "ClusterRole")["metadata"]["name"],
            "reader-bf-abc12"
        );
        let pdb = find(&i, "PodDisruptionBudget");
        assert_eq!(pdb["metadata"]["labels"][INSTANCE_LABEL], "abc12");
        let policy = find(&i, "NetworkPolicy");
        let from = &policy["spec"]["ingress"][0]["from"];
        assert_eq!(
            from[0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
            "shop-bf-abc12"
        );
        assert_eq!(
            from[1]["namespaceSelector"]["matchExpressions"][0]["values"],
            serde_json::json!(["shop-bf-abc12", "other"])
        );
        // Steady-state checks follow; CoreDNS stays where it is.
        let checks = serde_json::to_value(&i.spec.steady_state.checks).unwrap();
        assert_eq!(checks[1]["serviceEndpoints"]["namespace"], "shop-bf-abc12");
        assert_eq!(checks[2]["deployment"]["namespace"], "kube-system");
        let relocation = i.instance.as_ref().unwrap();
        assert_eq!(relocation.namespace("shop"), Some("shop-bf-abc12"));
        assert_eq!(
            relocation.renamed_cluster_objects()[0].name,
            "reader-bf-abc12"
        );
        // The original is untouched.
        assert!(b.instance.is_none());
        assert_eq!(find(&b, "Deployment")["metadata"]["namespace"], "shop");
    }

    #[test]
    fn namespaces_the_manifests_create_move_too() {
        let b = baseline(
            "shop-quota",
            "\
apiVersion: v1
kind: Namespace
metadata: {name: shop-neighbour}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: neighbour, namespace: shop-neighbour}
spec:
  selector: {matchLabels: {app: n}}
  template: {metadata: {labels: {app: n}}, spec: {containers: [{name: n, image: x}]}}
",
        );
        let i = b.instance("z9").unwrap();
        assert_eq!(
            find(&i, "Namespace")["metadata"]["name"],
            "shop-neighbour-bf-z9"
        );
        assert_eq!(
            find(&i, "Deployment")["metadata"]["namespace"],
            "shop-neighbour-bf-z9"
        );
        let mut slo = serde_json::json!({"blastRadius": {"namespaces": ["shop-neighbour", "kube-system"]},
            "conditions": [{"object": {"kind": "ResourceQuota", "name": "pods"}}]});
        i.instance.as_ref().unwrap().rewrite_spec(&mut slo);
        assert_eq!(
            slo["blastRadius"]["namespaces"],
            serde_json::json!(["shop-neighbour-bf-z9", "kube-system"])
        );
    }

    #[rstest]
    #[case::an_object_in_a_namespace_it_does_not_own(
        "shop",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: kube-system}\n",
        "ConfigMap/c is in namespace `kube-system`, which the baseline does not create"
    )]
    #[case::a_crd(
        "shop",
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: a.b.c}\nspec: {}\n",
        "CustomResourceDefinition/a.b.c is cluster-scoped; every instance would share it"
    )]
    #[case::a_service_it_does_not_define(
        "shop",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {upstream: 'db.shop.svc:5432'}\n",
        "`db.shop.svc` names Service `db` in namespace `shop`, which the baseline does not define"
    )]
    #[case::a_system_namespace(
        "kube-system",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
        "it lives in `kube-system`"
    )]
    #[case::a_name_too_long(
        "a-namespace-name-that-is-already-very-close-to-the-limit-of-63",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
        "is too long to carry the instance suffix"
    )]
    fn what_cannot_move_says_why(#[case] ns: &str, #[case] manifests: &str, #[case] why: &str) {
        let err = baseline(ns, manifests).instance("abc12").unwrap_err();
        assert!(err.reason.contains(why), "{err}");
        assert!(
            err.to_string()
                .starts_with("baseline `test` cannot run in a namespace of its own")
        );
    }

    #[test]
    fn every_built_in_baseline_moves() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/baselines");
        for entry in std::fs::read_dir(&root).unwrap() {
            let path = entry.unwrap().path().join("baseline.yaml");
            let b = LoadedBaseline::load(&path).unwrap_or_else(|e| panic!("{e:?}"));
            let i = b
                .instance("t1")
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let text = serde_json::to_string(&i.objects).unwrap();
            for old in i.instance.as_ref().unwrap().namespaces.keys() {
                for left in [format!("\"namespace\":\"{old}\""), format!(".{old}.svc")] {
                    assert!(
                        !text.contains(&left),
                        "{}: `{left}` left in {text}",
                        path.display()
                    );
                }
            }
        }
    }
}
