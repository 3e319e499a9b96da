//! Helpers shared by the API-server tier tests.

use std::path::Path;

use breakfix::baseline::LoadedBaseline;
use breakfix::fault::FaultContext;
use breakfix::journal::{ClusterRecord, Journal};
use breakfix::vocab::Name;
use kube::api::DynamicObject;

/// Writes `yaml` manifests and a Baseline file for namespace `ns` under `dir`.
pub fn baseline(dir: &Path, ns: &str, manifests: &str) -> LoadedBaseline {
    std::fs::create_dir_all(dir.join("manifests")).unwrap();
    std::fs::write(dir.join("manifests/objects.yaml"), manifests).unwrap();
    std::fs::write(
        dir.join("baseline.yaml"),
        format!(
            "apiVersion: breakfix.dev/v1alpha1\nkind: Baseline\nmetadata:\n  name: test\nspec:\n  namespace: {ns}\n  steadyState:\n    timeout: 20s\n"
        ),
    )
    .unwrap();
    let mut loaded =
        LoadedBaseline::load(&dir.join("baseline.yaml")).unwrap_or_else(|e| panic!("{e:?}"));
    loaded.spec.namespace = Name::new(ns).unwrap();
    loaded
}

/// What a fault injects through: `client`, journaling into `journal`
/// (created with the same `run_id`), on behalf of `experiment`.
pub fn context<'a>(
    client: &kube::Client,
    journal: &'a mut Journal,
    experiment: &str,
    run_id: &str,
) -> FaultContext<'a> {
    FaultContext {
        client: client.clone(),
        journal,
        experiment: experiment.into(),
        run_id: run_id.into(),
    }
}

/// A journal in `dir` that records the testkit control plane, reachable
/// through a kubeconfig written beside it.
pub fn journal(dir: &Path, run_id: &str) -> Journal {
    let cp = breakfix::testkit::control_plane();
    let kubeconfig = kubeconfig(dir, &cp.url, cp.admin_token());
    Journal::create(
        dir,
        run_id,
        ClusterRecord {
            provider: "context".into(),
            name: "testkit".into(),
            kubeconfig: Some(kubeconfig),
            context: Some("testkit".into()),
        },
    )
    .unwrap()
}

/// The object without the fields the server sets, for before/after comparison.
pub fn user_fields(obj: &DynamicObject) -> serde_json::Value {
    let mut obj = obj.clone();
    breakfix::kobj::strip_server_fields(&mut obj);
    let mut value = serde_json::to_value(obj).unwrap();
    if let Some(meta) = value.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        meta.remove("resourceVersion");
        meta.remove("uid");
    }
    value
}

/// Writes a kubeconfig for the testkit control plane (context `testkit`).
pub fn kubeconfig(dir: &Path, url: &str, token: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: testkit\n  cluster:\n    server: {url}\n    insecure-skip-tls-verify: true\nusers:\n- name: admin\n  user:\n    token: {token}\ncontexts:\n- name: testkit\n  context:\n    cluster: testkit\n    user: admin\ncurrent-context: testkit\n"
        ),
    )
    .unwrap();
    path
}

/// A fault spec from its YAML, written as in experiment files (`imageTypo: {…}`).
pub fn fault(yaml: &str) -> breakfix::fault::FaultSpec {
    serde_yaml::with::singleton_map::deserialize(serde_yaml::Deserializer::from_str(yaml))
        .unwrap_or_else(|e| panic!("bad fault YAML: {e}\n{yaml}"))
}

/// The pods labelled `app=web` in `api`, once a watch of them has seen
/// `want` at the same time; panics after 30s.
pub async fn web_pods(
    api: &kube::Api<k8s_openapi::api::core::v1::Pod>,
    want: usize,
) -> Vec<k8s_openapi::api::core::v1::Pod> {
    use futures::StreamExt;
    use kube::runtime::{reflector, watcher};
    let (store, writer) = reflector::store();
    let counted = reflector(
        writer,
        watcher(api.clone(), watcher::Config::default().labels("app=web")),
    )
    .take_while(|_| futures::future::ready(store.state().len() != want))
    .for_each(|_| futures::future::ready(()));
    tokio::time::timeout(std::time::Duration::from_secs(30), counted)
        .await
        .unwrap_or_else(|_| panic!("{want} web pods within 30s: {:?}", store.state().len()));
    store.state().iter().map(|p| (**p).clone()).collect()
}

/// A baseline that fits this node-less tier: a Deployment at 0 replicas
/// under a one-pod ResourceQuota (the runner and game-day tests share it).
pub const QUOTA_BASELINE: &str = "\
apiVersion: v1
kind: ResourceQuota
metadata: {name: pods}
spec:
  hard: {pods: \"1\"}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 0
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: breakfix/workload:0.1.0
          resources: {limits: {cpu: 10m, memory: 16Mi}}
";
