//! missingMount on a real API server: deleting the Secret (and rolling the
//! Deployment out) or renaming the reference, then the revert bringing back
//! the exact Secret/ConfigMap and Deployment. (The stuck pods need a
//! kubelet: see e2e/faults_mount.rs.)

use breakfix::fault::missing_mount::RESTARTED_AT;
use breakfix::kobj::ObjectRef;
use breakfix::testkit;
use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use rstest::rstest;

use crate::support;

const APP: &str = r#"
apiVersion: v1
kind: Secret
metadata: {name: app-credentials, labels: {app: app}, annotations: {rotated: "2026-01-01"}}
type: Opaque
stringData: {token: fixture-token}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: app-settings}
data: {level: info}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: app}
spec:
  replicas: 1
  selector: {matchLabels: {app: app}}
  template:
    metadata: {labels: {app: app}}
    spec:
      volumes: [{name: credentials, secret: {secretName: app-credentials}}]
      containers:
        - name: app
          image: breakfix/workload:0.1.0
          env: [{name: LOG_LEVEL, valueFrom: {configMapKeyRef: {name: app-settings, key: level}}}]
          volumeMounts: [{name: credentials, mountPath: /etc/app/credentials}]
"#;

#[rstest]
#[case::delete_secret("Secret", "app-credentials", "delete")]
#[case::delete_config_map("ConfigMap", "app-settings", "delete")]
#[case::rename_secret("Secret", "app-credentials", "rename")]
#[case::rename_config_map("ConfigMap", "app-settings", "rename")]
#[tokio::test]
async fn the_reference_breaks_and_the_revert_restores_everything_exactly(
    #[case] kind: &str,
    #[case] name: &str,
    #[case] by: &str,
) {
    let ns = testkit::namespace(&format!("fault-mount-{}-{by}", kind.to_lowercase())).await;
    let dir = tempfile::tempdir().unwrap();
    let baseline = support::baseline(&dir.path().join("baseline"), &ns.name, APP);
    breakfix::baseline::apply_baseline(&ns.client, &baseline, "mount-run")
        .await
        .unwrap();
    let object = ObjectRef::namespaced("v1", kind, &ns.name, name);
    let object_before = breakfix::kobj::get(&ns.client, &object)
        .await
        .unwrap()
        .unwrap();
    let deployments: Api<Deployment> = Api::namespaced(ns.client.clone(), &ns.name);
    let spec_before = deployments.get("app").await.unwrap().spec;

    let fault = support::fault(&format!(
        "missingMount:\n  target: {{namespace: {}, deployment: app}}\n  object: {{kind: {kind}, name: {name}}}\n  by: {by}\n",
        ns.name
    ));
    let mut journal = support::journal(dir.path(), "mount-run");
    let mut ctx = support::context(&ns.client, &mut journal, "mount", "mount-run");
    let injection = fault.inject(&mut ctx).await.unwrap();
    // "fixture-token", base64: the Secret's data as the API server returns it.
    let secret_data = "Zml4dHVyZS10b2tlbg==";
    let journaled = || std::fs::read_to_string(journal_path(dir.path())).unwrap();
    assert_eq!(
        journaled().contains(secret_data),
        kind == "Secret" && by == "delete",
        "a deleted Secret's data is journaled until it is restored"
    );
    let template = deployments.get("app").await.unwrap().spec.unwrap().template;
    let spec_json = serde_json::to_string(&template.spec).unwrap();
    if by == "delete" {
        assert!(
            breakfix::kobj::get(&ns.client, &object)
                .await
                .unwrap()
                .is_none(),
            "{kind} {name} must be gone"
        );
        let annotations = template.metadata.unwrap().annotations.unwrap_or_default();
        assert!(
            annotations.contains_key(RESTARTED_AT),
            "the Deployment must roll out"
        );
        assert!(
            injection.summary.contains("deleted"),
            "{}",
            injection.summary
        );
    } else {
        assert!(
            breakfix::kobj::get(&ns.client, &object)
                .await
                .unwrap()
                .is_some()
        );
        assert!(spec_json.contains(&format!("\"{name}-v2\"")), "{spec_json}");
        assert!(!spec_json.contains(&format!("\"{name}\"")), "{spec_json}");
    }

    let errors = journal.revert_all(&ns.client).await;
    assert!(errors.is_empty(), "{errors:?}");
    assert!(
        !journaled().contains(secret_data),
        "restored: the journal no longer holds the Secret's data"
    );
    let object_after = breakfix::kobj::get(&ns.client, &object)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        support::user_fields(&object_after),
        support::user_fields(&object_before),
        "{kind} {name} must be back exactly (data, labels, annotations)"
    );
    assert_eq!(deployments.get("app").await.unwrap().spec, spec_before);
}

/// The journal file `support::journal` created in `dir`.
fn journal_path(dir: &std::path::Path) -> std::path::PathBuf {
    dir.join("mount-run.jsonl")
}

#[tokio::test]
async fn a_deployment_that_does_not_use_the_object_is_refused_untouched() {
    let ns = testkit::namespace("fault-mount-unused").await;
    let dir = tempfile::tempdir().unwrap();
    let baseline = support::baseline(&dir.path().join("baseline"), &ns.name, APP);
    breakfix::baseline::apply_baseline(&ns.client, &baseline, "mount-run")
        .await
        .unwrap();
    let fault = support::fault(&format!(
        "missingMount:\n  target: {{namespace: {}, deployment: app}}\n  object: {{kind: Secret, name: other}}\n",
        ns.name
    ));
    let mut journal = support::journal(dir.path(), "mount-run");
    let mut ctx = support::context(&ns.client, &mut journal, "mount", "mount-run");
    let err = fault.inject(&mut ctx).await.unwrap_err();
    assert!(
        err.to_string().contains("does not use Secret other"),
        "{err}"
    );
    assert!(journal.pending().is_empty(), "nothing was mutated");
}
