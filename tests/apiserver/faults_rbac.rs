//! rbacBindingDelete on a real API server: the fault deletes the binding,
//! the ServiceAccount's own calls get 403, the SubjectAccessReview the
//! detector makes says no, and the revert brings back the exact binding.

use std::time::Duration;

use breakfix::detect::canary::CanaryStatus;
use breakfix::fault::rbac_binding_delete::{Access, review};
use breakfix::kobj::ObjectRef;
use breakfix::testkit;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{DynamicObject, ListParams};
use kube::{Api, Client};
use rstest::rstest;

use crate::support;

/// The api-canary's `/status` config, as the canary reports it.
fn canary_status() -> CanaryStatus {
    serde_json::from_value(serde_json::json!({
        "mode": "api-canary", "ready": true,
        "config": {"resource": "configmaps", "api_version": "v1", "namespace": null},
    }))
    .unwrap()
}

/// What the SubjectAccessReview says, asked until `want` or 15 s pass (the
/// authorizer follows RBAC changes through its informers).
async fn review_settles_to(client: &Client, access: &Access, want: bool) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let allowed = review(client, access).await.unwrap().allowed;
        if allowed == want || tokio::time::Instant::now() > deadline {
            return allowed;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Whether the ServiceAccount's own list call is allowed, asked the same way.
async fn call_settles_to(client: &Client, ns: &str, want: bool) -> bool {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let allowed = match api.list(&ListParams::default().limit(1)).await {
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

fn rbac(kind: &str, ns: &str, name: &str) -> Vec<DynamicObject> {
    let cluster = kind == "ClusterRoleBinding";
    let role_kind = if cluster { "ClusterRole" } else { "Role" };
    let namespace = (!cluster).then_some(ns);
    [
        serde_json::json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": role_kind,
            "metadata": {"name": name, "namespace": namespace},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}],
        }),
        serde_json::json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": kind,
            "metadata": {"name": name, "namespace": namespace, "labels": {"team": "platform"}},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": "api-canary", "namespace": ns}],
        }),
    ]
    .into_iter()
    .map(|v| serde_json::from_value(v).unwrap())
    .collect()
}

#[rstest]
#[case::role_binding("RoleBinding")]
#[case::cluster_role_binding("ClusterRoleBinding")]
#[tokio::test]
async fn the_fault_takes_the_right_away_and_the_review_says_so(#[case] kind: &str) {
    let ns = testkit::namespace(&format!("fault-rbac-{}", kind.to_lowercase())).await;
    let name = format!("api-canary-reader-{}", ns.name);
    let objects = rbac(kind, &ns.name, &name);
    for obj in &objects {
        breakfix::kobj::apply(&ns.client, obj).await.unwrap();
    }
    let sa_client = testkit::control_plane()
        .service_account_client(&ns.name, "api-canary")
        .await;
    let access = Access::of_canary(&ns.name, "api-canary", &canary_status());
    assert!(review_settles_to(&ns.client, &access, true).await);
    assert!(call_settles_to(&sa_client, &ns.name, true).await);

    let target = ObjectRef::of(&objects[1]).unwrap();
    let before = breakfix::kobj::get(&ns.client, &target)
        .await
        .unwrap()
        .unwrap();
    let namespace_field = if kind == "RoleBinding" {
        format!(", namespace: {}", ns.name)
    } else {
        String::new()
    };
    let fault = support::fault(&format!(
        "rbacBindingDelete:\n  binding: {{kind: {kind}, name: {name}{namespace_field}}}\n  workload: {{namespace: {}, selector: app=api-canary}}\n",
        ns.name
    ));
    fault.validate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut journal = support::journal(dir.path(), "rbac-fault");
    let mut ctx = support::context(&ns.client, &mut journal, "rbac", "rbac-fault");
    let injection = fault.inject(&mut ctx).await.unwrap();
    assert!(
        injection
            .summary
            .contains(&format!("ServiceAccount {}/api-canary", ns.name)),
        "{}",
        injection.summary
    );
    assert_eq!(injection.extra.len(), 1, "the canary's Forbidden source");

    assert!(
        !call_settles_to(&sa_client, &ns.name, false).await,
        "the ServiceAccount's calls must get 403"
    );
    assert!(
        !review_settles_to(&ns.client, &access, false).await,
        "the SubjectAccessReview must say no"
    );
    let verdict = review(&ns.client, &access).await.unwrap();
    assert!(
        access
            .describe(&verdict)
            .contains("may not list configmaps"),
        "{}",
        access.describe(&verdict)
    );

    let errors = journal.revert_all(&ns.client).await;
    assert!(errors.is_empty(), "{errors:?}");
    let after = breakfix::kobj::get(&ns.client, &target)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(support::user_fields(&after), support::user_fields(&before));
    assert!(review_settles_to(&ns.client, &access, true).await);
    assert!(call_settles_to(&sa_client, &ns.name, true).await);

    if kind == "ClusterRoleBinding" {
        for obj in objects.iter().rev() {
            let target = ObjectRef::of(obj).unwrap();
            breakfix::kobj::delete_if_present(&ns.client, &target, None)
                .await
                .unwrap();
        }
    }
}
