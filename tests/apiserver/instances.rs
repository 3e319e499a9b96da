//! Baseline instances against a real API server: two copies of one
//! baseline side by side, every reference to a namespace or renamed object
//! rewritten (checked on what the API server holds), and both deleted
//! cleanly, namespaces and cluster-scoped objects alike.

use std::time::Duration;

use breakfix::baseline::{LoadedBaseline, apply_baseline, delete_instance};
use breakfix::kobj::{self, ObjectRef};
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;

use crate::support;

/// A shop with a client that calls it by DNS, RBAC of both scopes, a PDB
/// and a second namespace of its own.
fn manifests(ns: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Namespace
metadata: {{name: {ns}-side}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: side, namespace: {ns}-side}}
data: {{upstream: "http://web.{ns}.svc.cluster.local:80/"}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {{name: client}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: {ns}-reader}}
rules: [{{apiGroups: [""], resources: [pods], verbs: [list]}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: {ns}-reader}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {ns}-reader}}
subjects: [{{kind: ServiceAccount, name: client, namespace: {ns}}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: client-reader}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {ns}-reader}}
subjects: [{{kind: ServiceAccount, name: client, namespace: {ns}}}]
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec: {{selector: {{app: web}}, ports: [{{port: 80}}]}}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {{name: web}}
spec: {{minAvailable: 1, selector: {{matchLabels: {{app: web}}}}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: client, namespace: {ns}}}
spec:
  replicas: 0
  selector: {{matchLabels: {{app: client}}}}
  template:
    metadata: {{labels: {{app: client}}}}
    spec:
      serviceAccountName: client
      containers:
        - name: client
          image: breakfix/workload:0.1.0
          args: [http-canary, --url, "http://web.{ns}:80/", --namespace, {ns}]
          env: [{{name: WATCH_NAMESPACE, value: {ns}}}]
"#
    )
}

/// Every object of `baseline` as the API server holds it, keyed by what it
/// is called in the original (the instance suffix taken out), with the
/// instance suffix replaced by `-bf-ID` and the fields the server and the
/// run set removed: two instances must come out identical.
async fn applied(
    client: &kube::Client,
    baseline: &LoadedBaseline,
) -> Vec<(String, serde_json::Value)> {
    let relocation = baseline.instance.as_ref().unwrap();
    let suffix = format!("-bf-{}", relocation.id);
    let mut out = Vec::new();
    for obj in &baseline.objects {
        let mut target = ObjectRef::of(obj).unwrap();
        let (_, caps) = kobj::resolve(client, &target).await.unwrap();
        if target.namespace.is_none() && caps.scope == kube::discovery::Scope::Namespaced {
            target.namespace = Some(baseline.spec.namespace.to_string());
        }
        let live = kobj::get(client, &target)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{target} was not applied"));
        let mut value = support::user_fields(&live);
        let meta = value["metadata"].as_object_mut().unwrap();
        meta.remove("managedFields");
        meta.remove("creationTimestamp");
        meta.remove("generation");
        meta.remove("annotations");
        if let Some(labels) = meta.get_mut("labels").and_then(|l| l.as_object_mut()) {
            labels.remove(breakfix::RUN_LABEL);
            labels.remove("kubernetes.io/metadata.name");
            assert_eq!(
                labels.remove("breakfix.dev/instance"),
                Some(relocation.id.clone().into()),
                "{target} carries its instance"
            );
        }
        value.as_object_mut().unwrap().remove("status");
        if let Some(spec) = value.get_mut("spec").and_then(|s| s.as_object_mut()) {
            // Assigned by the API server, different for each Service.
            spec.remove("clusterIP");
            spec.remove("clusterIPs");
        }
        let text = serde_json::to_string(&value)
            .unwrap()
            .replace(&suffix, "-bf-ID");
        out.push((
            target.to_string().replace(&suffix, ""),
            serde_json::from_str(&text).unwrap(),
        ));
    }
    out
}

#[tokio::test]
async fn two_instances_side_by_side_rewrite_every_reference_and_delete_cleanly() {
    let cp = breakfix::testkit::control_plane();
    let client = cp.admin_client();
    let ns = format!("inst-{}", std::process::id() % 100_000);
    let dir = tempfile::tempdir().unwrap();
    let baseline = support::baseline(dir.path(), &ns, &manifests(&ns));

    let first = baseline.instance("a1").unwrap();
    let second = baseline.instance("b2").unwrap();
    apply_baseline(&client, &first, "run-a").await.unwrap();
    apply_baseline(&client, &second, "run-b").await.unwrap();

    let a = applied(&client, &first).await;
    let b = applied(&client, &second).await;
    assert_eq!(a.len(), baseline.objects.len());
    assert_eq!(a, b, "the two instances differ only by their id");
    // Nothing names the original namespaces or cluster objects any more.
    let text = serde_json::to_string(&a).unwrap();
    for old in [
        format!("\"{ns}\""),
        format!("\"{ns}-side\""),
        format!("\"{ns}-reader\""),
        format!("web.{ns}:"),
        format!("web.{ns}.svc"),
    ] {
        assert!(!text.contains(&old), "`{old}` left in {text}");
    }
    let get = |key: &str| {
        a.iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| {
                panic!(
                    "no {key} in {:?}",
                    a.iter().map(|(k, _)| k).collect::<Vec<_>>()
                )
            })
    };
    let deployment = get(&format!("deployment/client -n {ns}"));
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["args"],
        serde_json::json!([
            "http-canary",
            "--url",
            format!("http://web.{ns}-bf-ID:80/"),
            "--namespace",
            format!("{ns}-bf-ID")
        ])
    );
    assert_eq!(container["env"][0]["value"], format!("{ns}-bf-ID"));
    let side = get(&format!("configmap/side -n {ns}-side"));
    assert_eq!(side["metadata"]["namespace"], format!("{ns}-side-bf-ID"));
    assert_eq!(
        side["data"]["upstream"],
        format!("http://web.{ns}-bf-ID.svc.cluster.local:80/")
    );
    let crb = get(&format!("clusterrolebinding/{ns}-reader"));
    assert_eq!(crb["metadata"]["name"], format!("{ns}-reader-bf-ID"));
    assert_eq!(crb["roleRef"]["name"], format!("{ns}-reader-bf-ID"));
    assert_eq!(crb["subjects"][0]["namespace"], format!("{ns}-bf-ID"));
    let rb = get(&format!("rolebinding/client-reader -n {ns}"));
    assert_eq!(rb["subjects"][0]["namespace"], format!("{ns}-bf-ID"));
    assert_eq!(rb["roleRef"]["name"], format!("{ns}-reader-bf-ID"));
    let pdb = get(&format!("poddisruptionbudget/web -n {ns}"));
    assert_eq!(pdb["metadata"]["namespace"], format!("{ns}-bf-ID"));
    // The original namespace was never created.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    assert!(namespaces.get_opt(&ns).await.unwrap().is_none());

    // Deleting one leaves the other whole.
    delete_instance(
        &client,
        first.instance.as_ref().unwrap(),
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    for gone in [format!("{ns}-bf-a1"), format!("{ns}-side-bf-a1")] {
        assert!(
            namespaces.get_opt(&gone).await.unwrap().is_none(),
            "{gone} is gone"
        );
    }
    let crb_a = ObjectRef {
        api_version: "rbac.authorization.k8s.io/v1".into(),
        kind: "ClusterRoleBinding".into(),
        namespace: None,
        name: format!("{ns}-reader-bf-a1"),
    };
    assert!(kobj::get(&client, &crb_a).await.unwrap().is_none());
    assert_eq!(
        applied(&client, &second).await,
        b,
        "the other instance is untouched"
    );

    delete_instance(
        &client,
        second.instance.as_ref().unwrap(),
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    for gone in [format!("{ns}-bf-b2"), format!("{ns}-side-bf-b2")] {
        assert!(
            namespaces.get_opt(&gone).await.unwrap().is_none(),
            "{gone} is gone"
        );
    }
}

#[tokio::test]
async fn a_baseline_that_insists_on_a_namespace_says_why_it_cannot_move() {
    let dir = tempfile::tempdir().unwrap();
    let baseline = support::baseline(
        dir.path(),
        "insists",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: kube-system}\n",
    );
    let err = baseline.instance("a1").unwrap_err();
    assert_eq!(
        err.to_string(),
        "baseline `test` cannot run in a namespace of its own: ConfigMap/c is in namespace `kube-system`, which the baseline does not create; an instance cannot move it"
    );
}
