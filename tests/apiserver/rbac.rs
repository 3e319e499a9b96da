//! Deleting a binding a workload relies on really produces 403s, and the
//! journal's restore brings back the exact object.

use std::time::Duration;

use breakfix::kobj::ObjectRef;
use breakfix::testkit;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{DynamicObject, ListParams};
use kube::{Api, Client};
use rstest::rstest;

use crate::support;

/// Whether `client` may list ConfigMaps in `ns`, asked until `want` or 15 s
/// pass (the authorizer's caches follow RBAC changes within moments).
async fn settles_to(client: &Client, ns: &str, want: bool) -> bool {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let allowed = match api.list(&ListParams::default()).await {
            Ok(_) => true,
            Err(kube::Error::Api(e)) if e.code == 403 => false,
            Err(e) => panic!("unexpected error listing configmaps: {e}"),
        };
        if allowed == want || tokio::time::Instant::now() > deadline {
            return allowed;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn rbac_objects(kind: &str, ns: &str, binding: &str) -> (DynamicObject, DynamicObject) {
    let role_kind = if kind == "ClusterRoleBinding" {
        "ClusterRole"
    } else {
        "Role"
    };
    let namespace = if kind == "ClusterRoleBinding" {
        None
    } else {
        Some(ns)
    };
    let role = serde_json::json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": role_kind,
        "metadata": {"name": binding, "namespace": namespace},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list", "get"]}],
    });
    let binding = serde_json::json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": {
            "name": binding,
            "namespace": namespace,
            "labels": {"team": "network", "tier": "agent"},
            "annotations": {"owner": "platform@example.com"},
        },
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": binding},
        "subjects": [
            {"kind": "ServiceAccount", "name": "canary", "namespace": ns},
            {"kind": "Group", "name": "system:monitoring", "apiGroup": "rbac.authorization.k8s.io"},
        ],
    });
    (
        serde_json::from_value(role).unwrap(),
        serde_json::from_value(binding).unwrap(),
    )
}

#[rstest]
#[case::role_binding("RoleBinding")]
#[case::cluster_role_binding("ClusterRoleBinding")]
#[tokio::test]
async fn a_deleted_binding_breaks_its_workload_and_is_restored_exactly(#[case] kind: &str) {
    let ns = testkit::namespace(&format!("rbac-{}", kind.to_lowercase())).await;
    let name = format!("canary-reader-{}", ns.name);
    let (role, binding) = rbac_objects(kind, &ns.name, &name);
    for obj in [&role, &binding] {
        breakfix::kobj::apply(&ns.client, obj).await.unwrap();
    }
    let canary = testkit::control_plane()
        .service_account_client(&ns.name, "canary")
        .await;
    assert!(
        settles_to(&canary, &ns.name, true).await,
        "the canary should be allowed before the fault"
    );

    let target = ObjectRef::of(&binding).unwrap();
    let before = breakfix::kobj::get(&ns.client, &target)
        .await
        .unwrap()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut journal = support::journal(dir.path(), "rbac-run");
    let mut ctx = support::context(&ns.client, &mut journal, "rbac", "rbac-run");
    ctx.delete(&target).await.unwrap();
    assert!(
        breakfix::kobj::get(&ns.client, &target)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        !settles_to(&canary, &ns.name, false).await,
        "the canary must get 403 once its binding is gone"
    );

    let errors = journal.revert_all(&ns.client).await;
    assert!(errors.is_empty(), "{errors:?}");
    let after = breakfix::kobj::get(&ns.client, &target)
        .await
        .unwrap()
        .expect("binding restored");
    assert_ne!(
        after.metadata.uid, before.metadata.uid,
        "it is a new object…"
    );
    assert_eq!(
        support::user_fields(&after),
        support::user_fields(&before),
        "…with exactly the same content"
    );
    assert!(
        settles_to(&canary, &ns.name, true).await,
        "the canary should be allowed again"
    );
    assert!(journal.pending().is_empty());

    if kind == "ClusterRoleBinding" {
        // Cluster-scoped leftovers would leak into other tests' namespaces.
        let api = breakfix::kobj::api_for(&ns.client, &target).await.unwrap();
        let _ = api.delete(&target.name, &Default::default()).await;
    }
}
