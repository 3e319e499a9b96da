//! Access to the e2e kind cluster, and small helpers.

use std::time::Duration;

use breakfix::cluster::{KindCluster, client_for_context};
use breakfix::detect::{Observation, Scope, first_expected, merged, watch_pod_signals};
use breakfix::vocab::SignalKind;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, DynamicObject, ObjectMeta, PostParams};
use kube::{Api, Client};

/// The cluster `just cluster` made.
pub fn cluster_name() -> String {
    std::env::var("BREAKFIX_CLUSTER").unwrap_or_else(|_| "breakfix".into())
}

/// A client for the e2e cluster; fails the test if there is none.
pub async fn client() -> Client {
    let name = cluster_name();
    let cluster = KindCluster::recorded(&name).unwrap_or_else(|| {
        panic!("no kind cluster `{name}` made by breakfix; run `just cluster` first")
    });
    client_for_context(Some(&cluster.kubeconfig), &format!("kind-{name}"))
        .await
        .unwrap_or_else(|e| panic!("cannot reach cluster `{name}`: {e}"))
}

/// A fresh namespace (deleted first if a previous run left it).
pub async fn namespace(client: &Client, name: &str) -> String {
    let api: Api<Namespace> = Api::all(client.clone());
    if api.get_opt(name).await.unwrap().is_some() {
        let _ = api.delete(name, &DeleteParams::foreground()).await;
        let gone = kube::runtime::wait::await_condition(
            api.clone(),
            name,
            kube::runtime::wait::conditions::is_deleted(""),
        );
        let _ = tokio::time::timeout(Duration::from_secs(120), gone).await;
    }
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    // A namespace still terminating answers 409; wait it out.
    for _ in 0..120 {
        match api.create(&PostParams::default(), &ns).await {
            Ok(_) => return name.to_string(),
            Err(kube::Error::Api(e)) if e.code == 409 => {
                tokio::time::sleep(Duration::from_secs(1)).await
            }
            Err(e) => panic!("cannot create namespace {name}: {e}"),
        }
    }
    panic!("namespace {name} never finished terminating")
}

/// Applies YAML documents into `ns`.
pub async fn apply(client: &Client, ns: &str, yaml: &str) {
    for doc in serde_yaml::Deserializer::from_str(yaml) {
        let mut obj: DynamicObject = serde::Deserialize::deserialize(doc).unwrap();
        if obj.metadata.namespace.is_none()
            && obj.types.as_ref().is_some_and(|t| t.kind != "Namespace")
        {
            obj.metadata.namespace = Some(ns.into());
        }
        breakfix::kobj::apply(client, &obj).await.unwrap();
    }
}

/// Waits for the first `expected` signal on pods matching `selector` in `ns`.
pub async fn signal(
    client: &Client,
    ns: &str,
    selector: &str,
    expected: SignalKind,
    within: Duration,
) -> Observation {
    let scope = Scope {
        pod_selector: Some(selector.into()),
        ..Scope::namespace(ns)
    };
    let mut seen = Vec::new();
    first_expected(
        merged(vec![
            watch_pod_signals(client, &scope, Default::default()).boxed(),
        ]),
        &[expected],
        within,
        |o| seen.push(format!("{} {}", o.kind, o.object)),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}; saw {seen:?}"))
}
