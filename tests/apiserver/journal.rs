//! The undo journal against a real API server: the intent is on disk before
//! the mutation, and `breakfix cleanup` restores after a crash.

use std::process::Command;

use breakfix::baseline::apply_baseline;
use breakfix::fault::Fault;
use breakfix::fault::{DeploymentRef, ImageTypo};
use breakfix::journal::{JournalState, UndoAction};
use breakfix::testkit;
use breakfix::vocab::Name;
use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;

use crate::support;

const WEB: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  annotations: {team: checkout}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "breakfix/workload:0.1.0", args: [serve]}]
"#;

fn image_of(d: &Deployment) -> String {
    d.spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
        .image
        .clone()
        .unwrap()
}

#[tokio::test]
async fn the_undo_is_on_disk_before_the_fault_and_cleanup_restores_after_a_crash() {
    let ns = testkit::namespace("journal").await;
    let dir = tempfile::tempdir().unwrap();
    let baseline = support::baseline(&dir.path().join("baseline"), &ns.name, WEB);
    apply_baseline(&ns.client, &baseline, "run-j")
        .await
        .unwrap();
    let deployments: Api<Deployment> = Api::namespaced(ns.client.clone(), &ns.name);
    let before = deployments.get("web").await.unwrap();

    let journal_dir = dir.path().join("journal");
    let mut journal = support::journal(&journal_dir, "crashed-run");
    let fault = ImageTypo {
        target: DeploymentRef {
            namespace: Name::new(&ns.name).unwrap(),
            deployment: Name::new("web").unwrap(),
        },
        container: None,
        init_container: false,
        typo: Default::default(),
        image: None,
    };
    let mut ctx = support::context(&ns.client, &mut journal, "image-typo", "crashed-run");
    let injection = fault.inject(&mut ctx).await.unwrap();
    assert!(
        injection
            .summary
            .contains("breakfix/workload:0.1.0 → breakfix/workload:0.1.00"),
        "{}",
        injection.summary
    );
    let broken = deployments.get("web").await.unwrap();
    assert_eq!(image_of(&broken), "breakfix/workload:0.1.00");

    // The journal holds the object as it was before the patch.
    let state = JournalState::read(journal.path()).unwrap();
    assert_eq!(state.pending.len(), 1);
    let UndoAction::Restore { object } = &state.pending[0].1 else {
        panic!("expected a restore, got {:?}", state.pending[0].1)
    };
    let snapshot: Deployment = object.as_ref().clone().try_parse().unwrap();
    assert_eq!(
        snapshot.spec, before.spec,
        "the journal holds the pre-fault spec"
    );
    assert_eq!(image_of(&snapshot), "breakfix/workload:0.1.0");

    // The process "dies" here: the journal is never finished.
    drop(journal);

    let out = Command::new(env!("CARGO_BIN_EXE_breakfix"))
        .args(["cleanup", "--journal-dir"])
        .arg(&journal_dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "cleanup failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("restore deployment/web -n {}", ns.name)),
        "{stdout}"
    );

    let restored = deployments.get("web").await.unwrap();
    assert_eq!(image_of(&restored), "breakfix/workload:0.1.0");
    assert_eq!(
        restored.spec, before.spec,
        "the spec must be exactly as before the fault"
    );
    assert_eq!(
        restored
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("team"))
            .map(String::as_str),
        Some("checkout")
    );
    assert_eq!(restored.metadata.labels, before.metadata.labels);

    let again = Command::new(env!("CARGO_BIN_EXE_breakfix"))
        .args(["cleanup", "--journal-dir"])
        .arg(&journal_dir)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing to clean up"));
}
