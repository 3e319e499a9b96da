//! What an experiment names must be there: every object its fault acts on
//! (a Deployment, the Secret it takes away, a binding), every object its
//! SLOs, hold and `waitFor` steps read, and every canary it measures is
//! looked for in its baseline's rendered manifests, or among the system
//! objects breakfix knows every cluster has (CoreDNS, `kube-proxy`, the
//! `default` ServiceAccount, `system:` RBAC). A typo is refused by
//! `validate`, before any cluster is made, naming the objects there are.

use std::collections::BTreeSet;

use kube::api::DynamicObject;

use super::canaries::{canary_pods, pod_template};
use crate::baseline::LoadedBaseline;
use crate::fault::{Named, NamedCanary};

/// Kinds whose objects controllers make under names the manifests cannot
/// tell (a ReplicaSet's hash, a Job's schedule time, a Node): not checked.
const GENERATED_KINDS: &[&str] = &[
    "ReplicaSet",
    "Pod",
    "Endpoints",
    "EndpointSlice",
    "Job",
    "Event",
    "Lease",
    "Node",
    "ControllerRevision",
    "PersistentVolume",
];

/// Kinds with no namespace (the ones an experiment may name).
const CLUSTER_SCOPED_KINDS: &[&str] = &[
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "Node",
    "PersistentVolume",
    "StorageClass",
    "PriorityClass",
    "CustomResourceDefinition",
    "IngressClass",
    "RuntimeClass",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "APIService",
];

/// Objects every cluster breakfix runs on has, by (kind, namespace, name):
/// cluster DNS (CoreDNS, as kubeadm and kind deploy it) and kube-proxy.
const SYSTEM_OBJECTS: &[(&str, &str, &str)] = &[
    ("Deployment", "kube-system", "coredns"),
    ("ConfigMap", "kube-system", "coredns"),
    ("Service", "kube-system", "kube-dns"),
    ("ServiceAccount", "kube-system", "coredns"),
    ("DaemonSet", "kube-system", "kube-proxy"),
    ("ConfigMap", "kube-system", "kube-proxy"),
];

/// Namespaces every cluster has.
const SYSTEM_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

/// Cluster RBAC every cluster has besides the `system:` objects.
const DEFAULT_CLUSTER_ROLES: &[&str] = &["cluster-admin", "admin", "edit", "view"];

/// One name an experiment uses that is not there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    /// What is not there, and what is.
    pub message: String,
    /// How to fix it.
    pub help: String,
}

/// Whether `kind` has no namespace.
pub fn is_cluster_scoped(kind: &str) -> bool {
    CLUSTER_SCOPED_KINDS.contains(&kind)
}

/// A system object every cluster has, which no baseline applies.
fn is_system_object(kind: &str, namespace: Option<&str>, name: &str) -> bool {
    match (kind, namespace) {
        ("ServiceAccount", Some(_)) => name == "default",
        ("ConfigMap", Some(_)) if name == "kube-root-ca.crt" => true,
        ("Namespace", None) => SYSTEM_NAMESPACES.contains(&name),
        ("ClusterRole" | "ClusterRoleBinding", None) => {
            name.starts_with("system:") || DEFAULT_CLUSTER_ROLES.contains(&name)
        }
        (_, Some(ns)) => SYSTEM_OBJECTS.contains(&(kind, ns, name)),
        _ => false,
    }
}

fn kind_of(o: &DynamicObject) -> &str {
    o.types.as_ref().map_or("", |t| t.kind.as_str())
}

/// The namespace an object of the baseline lands in.
fn namespace_of<'a>(baseline: &'a LoadedBaseline, o: &'a DynamicObject) -> Option<&'a str> {
    if is_cluster_scoped(kind_of(o)) {
        return None;
    }
    Some(
        o.metadata
            .namespace
            .as_deref()
            .unwrap_or(baseline.spec.namespace.as_str()),
    )
}

/// The namespaces the baseline applies objects into or creates.
pub fn namespaces(baseline: &LoadedBaseline) -> BTreeSet<String> {
    let mut out = BTreeSet::from([baseline.spec.namespace.to_string()]);
    for o in &baseline.objects {
        if kind_of(o) == "Namespace" {
            out.extend(o.metadata.name.clone());
        } else if let Some(ns) = namespace_of(baseline, o) {
            out.insert(ns.to_string());
        }
    }
    out
}

/// What is wrong with `named` (an object the experiment names) in
/// `baseline`, if anything. A namespaced object written without a
/// namespace is looked for in the baseline's.
pub fn missing_object(baseline: &LoadedBaseline, named: &Named) -> Option<Missing> {
    let kind = named.kind.as_str();
    if GENERATED_KINDS.contains(&kind) {
        return None;
    }
    let namespace = match (&named.namespace, is_cluster_scoped(kind)) {
        (_, true) => None,
        (Some(ns), false) => Some(ns.as_str()),
        (None, false) => Some(baseline.spec.namespace.as_str()),
    };
    if is_system_object(kind, namespace, &named.name) {
        return None;
    }
    let same_kind: Vec<&DynamicObject> = baseline
        .objects
        .iter()
        .filter(|o| kind_of(o) == kind && namespace_of(baseline, o) == namespace)
        .collect();
    if same_kind
        .iter()
        .any(|o| o.metadata.name.as_deref() == Some(named.name.as_str()))
    {
        return None;
    }
    let what = match namespace {
        Some(ns) => format!("{}/{} -n {ns}", kind.to_lowercase(), named.name),
        None => format!("{}/{}", kind.to_lowercase(), named.name),
    };
    let place = namespace.map_or(String::new(), |ns| format!(" in namespace {ns}"));
    let names: Vec<String> = same_kind
        .iter()
        .filter_map(|o| o.metadata.name.clone())
        .collect();
    let has = if names.is_empty() {
        let ns = namespaces(baseline);
        format!(
            "it has no {kind}{place} (its namespaces: {})",
            ns.into_iter().collect::<Vec<_>>().join(", ")
        )
    } else {
        format!("its {kind}s{place}: {}", names.join(", "))
    };
    let system = if namespace.is_some_and(|ns| SYSTEM_NAMESPACES.contains(&ns)) {
        ", nor is it a system object breakfix knows every cluster has"
    } else {
        ""
    };
    Some(Missing {
        message: format!(
            "{what} is not in the manifests of baseline `{}`{system}; {has}",
            baseline.name()
        ),
        help: "fix the name, or add the object to the baseline's manifests".into(),
    })
}

/// What is wrong with a canary the fault names, if anything: no pod
/// template of the baseline in its namespace has matching labels.
pub fn missing_canary(baseline: &LoadedBaseline, canary: &NamedCanary) -> Option<Missing> {
    if canary.namespace == "kube-system" {
        return None;
    }
    let pods = canary_pods(baseline, &canary.namespace, &canary.selector)?;
    if !pods.is_empty() {
        return None;
    }
    let labels: Vec<String> = baseline
        .objects
        .iter()
        .filter(|o| namespace_of(baseline, o) == Some(canary.namespace.as_str()))
        .filter_map(|o| {
            let (labels, _) = pod_template(o)?;
            let labels = labels?;
            let text = labels
                .as_object()?
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",");
            Some(format!(
                "{}/{} ({text})",
                kind_of(o).to_lowercase(),
                o.metadata.name.as_deref().unwrap_or_default()
            ))
        })
        .collect();
    Some(Missing {
        message: format!(
            "no pod template of baseline `{}` in namespace {} has labels matching `{}`; the canary would never be found; its pod templates: {}",
            baseline.name(),
            canary.namespace,
            canary.selector,
            if labels.is_empty() {
                "none".to_string()
            } else {
                labels.join(", ")
            }
        ),
        help: "fix the selector, or add the canary to the baseline's manifests".into(),
    })
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    const MANIFESTS: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: canaries}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "breakfix/workload:0.1.0"}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {selector: {app: web}, ports: [{port: 80}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api-canary, namespace: canaries}
spec:
  selector: {matchLabels: {app: api-canary}}
  template:
    metadata: {labels: {app: api-canary}}
    spec:
      containers: [{name: c, image: "breakfix/workload:0.1.0", args: [api-canary]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: canaries-pod-reader}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects: [{kind: ServiceAccount, name: default, namespace: canaries}]
"#;

    fn baseline() -> (tempfile::TempDir, LoadedBaseline) {
        crate::baseline::loaded_for_test(MANIFESTS)
    }

    fn named(kind: &str, namespace: Option<&str>, name: &str) -> Named {
        Named {
            key: "target",
            kind: kind.into(),
            namespace: namespace.map(str::to_string),
            name: name.into(),
        }
    }

    #[rstest]
    #[case::in_the_baseline("Deployment", Some("shop"), "web")]
    #[case::namespace_defaults_to_the_baselines("Service", None, "web")]
    #[case::in_a_namespace_the_baseline_creates("Deployment", Some("canaries"), "api-canary")]
    #[case::cluster_scoped("ClusterRoleBinding", None, "canaries-pod-reader")]
    #[case::a_namespace_it_creates("Namespace", None, "canaries")]
    #[case::coredns("Deployment", Some("kube-system"), "coredns")]
    #[case::default_service_account("ServiceAccount", Some("shop"), "default")]
    #[case::system_rbac("ClusterRoleBinding", None, "system:coredns")]
    #[case::generated_names_are_not_checked("ReplicaSet", Some("shop"), "web-5d9c7")]
    fn what_is_there_is_found(
        #[case] kind: &str,
        #[case] namespace: Option<&str>,
        #[case] name: &str,
    ) {
        let (_dir, b) = baseline();
        assert_eq!(missing_object(&b, &named(kind, namespace, name)), None);
    }

    #[rstest]
    #[case::a_typo(
        "Deployment",
        Some("shop"),
        "nope",
        "deployment/nope -n shop is not in the manifests of baseline `shop`; its Deployments in namespace shop: web"
    )]
    #[case::another_namespace(
        "Deployment",
        Some("shop"),
        "api-canary",
        "its Deployments in namespace shop: web"
    )]
    #[case::no_such_kind_there(
        "Secret",
        Some("shop"),
        "creds",
        "it has no Secret in namespace shop (its namespaces: canaries, shop)"
    )]
    #[case::an_unknown_system_object(
        "Deployment",
        Some("kube-system"),
        "metrics-server",
        "nor is it a system object breakfix knows every cluster has"
    )]
    #[case::cluster_rbac(
        "ClusterRoleBinding",
        None,
        "canaries-pod-readr",
        "its ClusterRoleBindings: canaries-pod-reader"
    )]
    fn what_is_not_there_is_named_with_what_is(
        #[case] kind: &str,
        #[case] namespace: Option<&str>,
        #[case] name: &str,
        #[case] says: &str,
    ) {
        let (_dir, b) = baseline();
        let missing = missing_object(&b, &named(kind, namespace, name)).expect("missing");
        assert!(missing.message.contains(says), "{}", missing.message);
    }

    #[rstest]
    #[case::there("canaries", "app=api-canary", None)]
    #[case::a_typo(
        "canaries",
        "app=api-canray",
        Some("deployment/api-canary (app=api-canary)")
    )]
    #[case::wrong_namespace("shop", "app=api-canary", Some("deployment/web (app=web)"))]
    #[case::outside_the_baseline_cannot_be_told("elsewhere", "app=x", None)]
    fn a_canary_must_select_a_pod_template(
        #[case] namespace: &str,
        #[case] selector: &str,
        #[case] says: Option<&str>,
    ) {
        let (_dir, b) = baseline();
        let canary = NamedCanary {
            key: "workload",
            namespace: namespace.into(),
            selector: selector.into(),
        };
        let got = missing_canary(&b, &canary);
        match says {
            None => assert_eq!(got, None),
            Some(text) => {
                let message = got.expect("missing").message;
                assert!(message.contains(text), "{message}");
            }
        }
    }
}
