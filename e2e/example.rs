//! examples/run_experiment.rs on the kind cluster: the library's entry point
//! as a newcomer would call it runs pod-kill to a pass, leaves no fault and
//! no baseline behind, and a broken file is refused before anything runs.

use std::path::PathBuf;

use breakfix::Outcome;
use breakfix::cluster::KindCluster;
use breakfix::vocab::SignalKind;
use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;

use crate::support;

#[path = "../examples/run_experiment.rs"]
#[allow(dead_code)]
mod run_experiment;

fn kubeconfig() -> PathBuf {
    let name = support::cluster_name();
    KindCluster::recorded(&name)
        .unwrap_or_else(|| panic!("no kind cluster `{name}`; run `just cluster` first"))
        .kubeconfig
}

#[tokio::test]
async fn the_example_runs_pod_kill_through_the_entry_point() {
    let context = format!("kind-{}", support::cluster_name());
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("experiments/pod-kill.yaml");
    let report = run_experiment::run(Some(&kubeconfig()), &context, &[file])
        .await
        .unwrap_or_else(|e| panic!("the example could not run: {e}"));

    assert_eq!(report.experiments.len(), 1);
    let exp = &report.experiments[0];
    assert_eq!(exp.outcome, Outcome::Passed, "{:#?}", exp);
    assert_eq!(report.exit_code(), 0);
    let detection = exp.trials[0].detection.as_ref().expect("a detection");
    assert_eq!(detection.kind, SignalKind::PodGone);
    let deployments: Api<Deployment> = Api::namespaced(support::client().await, "shop");
    let web = deployments
        .get_opt("web")
        .await
        .expect("deployments readable");
    assert!(
        web.is_none_or(|d| d.metadata.deletion_timestamp.is_some()),
        "the runner deletes the baseline it applied"
    );
}

#[tokio::test]
async fn the_example_refuses_a_broken_file_at_its_line() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let file = dir.path().join("broken.yaml");
    std::fs::write(
        &file,
        "apiVersion: breakfix.dev/v1alpha1\nkind: Experiment\nmetadata:\n  name: broken\nspec:\n  fault: {podKil: {}}\n",
    )
    .expect("written");
    let context = format!("kind-{}", support::cluster_name());
    let problem = run_experiment::run(Some(&kubeconfig()), &context, &[file.clone()])
        .await
        .expect_err("a broken file is refused");
    assert!(
        problem.contains(&format!("{}:6:11", file.display())),
        "the problem names the file, line and column: {problem}"
    );
    assert!(
        problem.contains("unknown fault `podKil`"),
        "the problem says what is wrong: {problem}"
    );
}
