//! `fault.steps` against a real API server: every step journals its undo
//! before it mutates, so a run killed with SIGKILL mid-fault is put back by
//! `breakfix cleanup`, newest step first; and a step that fails makes the
//! runner undo the steps before it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use breakfix::journal::JournalState;
use breakfix::timeline::{EntryKind, Phase};
use breakfix::{Outcome, Runner, load_experiment};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;

use crate::support;

const CONFIGMAPS: &str = "\
apiVersion: v1
kind: ConfigMap
metadata: {name: a}
data: {v: \"1\"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: b}
data: {v: \"1\"}
";

/// A baseline of two ConfigMaps in `ns` and an experiment whose steps are
/// `steps` (YAML list items, indented for `fault.steps`); it waits for a
/// signal that never comes.
fn files(dir: &Path, ns: &str, steps: &str) -> PathBuf {
    support::baseline(&dir.join("baseline"), ns, CONFIGMAPS);
    let file = dir.join("steps.yaml");
    std::fs::write(
        &file,
        format!(
            "apiVersion: breakfix.dev/v1alpha1
kind: Experiment
metadata: {{name: steps}}
spec:
  baseline: baseline
  fault:
    steps:
{steps}
  expect: {{signals: [CanaryFailing]}}
  slo: {{detectWithin: 5m, recoverWithin: 1m}}
  settle: 1s
"
        ),
    )
    .unwrap();
    file
}

fn patch_step(ns: &str, name: &str) -> String {
    format!(
        "      - patch: {{target: {{apiVersion: v1, kind: ConfigMap, namespace: {ns}, name: {name}}}, patch: {{data: {{v: \"2\"}}}}}}\n"
    )
}

async fn value(api: &Api<ConfigMap>, name: &str) -> Option<String> {
    api.get(name)
        .await
        .unwrap()
        .data
        .and_then(|d| d.get("v").cloned())
}

#[tokio::test]
async fn steps_killed_mid_fault_are_undone_newest_first_by_cleanup() {
    let ns = testkit_namespace("steps-kill").await;
    let dir = tempfile::tempdir().unwrap();
    let steps = format!(
        "{}      - waitFor: 1s\n{}",
        patch_step(&ns.name, "a"),
        patch_step(&ns.name, "b")
    );
    let experiment = files(dir.path(), &ns.name, &steps);
    let cp = breakfix::testkit::control_plane();
    let kubeconfig = support::kubeconfig(&dir.path().join("kube"), &cp.url, cp.admin_token());
    let journal_dir = dir.path().join("journal");

    let mut child = Command::new(env!("CARGO_BIN_EXE_breakfix"))
        .args(["run"])
        .arg(&experiment)
        .args(["--context", "testkit", "--kubeconfig"])
        .arg(&kubeconfig)
        .env("BREAKFIX_JOURNAL_DIR", &journal_dir)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    loop {
        match lines.next() {
            Some(Ok(line)) if line.contains("injected: step 3/3") => break,
            Some(Ok(line)) => seen.push(line),
            _ => panic!(
                "the run ended before its last step: {:?}\n{}",
                child.wait(),
                seen.join("\n")
            ),
        }
    }
    std::thread::spawn(move || for _ in lines {});
    let api: Api<ConfigMap> = Api::namespaced(ns.client.clone(), &ns.name);
    assert_eq!(value(&api, "a").await.as_deref(), Some("2"));
    assert_eq!(value(&api, "b").await.as_deref(), Some("2"));

    // SIGKILL: no revert runs; the journal is all that is left.
    child.kill().unwrap();
    child.wait().unwrap();
    let journal = std::fs::read_dir(&journal_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .expect("a journal file");
    let state = JournalState::read(&journal).unwrap();
    assert_eq!(state.pending.len(), 2, "{:?}", state.pending);
    assert_eq!(value(&api, "a").await.as_deref(), Some("2"), "still broken");

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
    let b = stdout
        .find(&format!("restore configmap/b -n {}", ns.name))
        .unwrap_or_else(|| panic!("b not restored: {stdout}"));
    let a = stdout
        .find(&format!("restore configmap/a -n {}", ns.name))
        .unwrap_or_else(|| panic!("a not restored: {stdout}"));
    assert!(b < a, "the newest step is undone first: {stdout}");
    assert_eq!(value(&api, "a").await.as_deref(), Some("1"));
    assert_eq!(value(&api, "b").await.as_deref(), Some("1"));
    assert!(JournalState::read(&journal).unwrap().pending.is_empty());
}

#[tokio::test]
async fn a_failing_second_step_undoes_the_first() {
    let ns = testkit_namespace("steps-fail").await;
    let dir = tempfile::tempdir().unwrap();
    // Step 2's patch is one the API server refuses (a ConfigMap's data
    // holds strings; `validate` cannot know that, the cluster does).
    let steps = format!(
        "{}      - patch: {{target: {{apiVersion: v1, kind: ConfigMap, namespace: {}, name: b}}, patch: {{data: {{v: 2}}}}}}\n",
        patch_step(&ns.name, "a"),
        ns.name
    );
    let experiment = load_experiment(&files(dir.path(), &ns.name, &steps))
        .unwrap_or_else(|problems| panic!("{problems:?}"));
    let runner = Runner::builder(ns.client.clone())
        .journal_dir(dir.path().join("journal"))
        .keep_baselines(true)
        .build()
        .unwrap();
    let journal = runner.journal_path().to_path_buf();
    let report = runner.run(&[experiment]).await;

    let exp = &report.experiments[0];
    assert_eq!(exp.outcome, Outcome::Error, "{exp:#?}");
    let trial = &exp.trials[0];
    let error = trial.error.as_ref().expect("an error");
    assert_eq!(error.phase, Phase::Inject);
    assert!(
        error.message.starts_with("step 2/2: patch:") && error.message.contains("configmap/b"),
        "{}",
        error.message
    );
    assert!(
        trial
            .timeline
            .entries
            .iter()
            .any(|e| matches!(&e.kind, EntryKind::Reverted { actions } if actions.iter().any(|a| a.contains("configmap/a")))),
        "step 1 reverted: {:#?}",
        trial.timeline
    );
    let api: Api<ConfigMap> = Api::namespaced(ns.client.clone(), &ns.name);
    assert_eq!(
        value(&api, "a").await.as_deref(),
        Some("1"),
        "step 1 undone"
    );
    let state = JournalState::read(&journal).unwrap();
    assert!(state.pending.is_empty(), "{:?}", state.pending);
}

#[tokio::test]
async fn a_wait_for_a_condition_follows_the_cluster() {
    let ns = testkit_namespace("steps-wait").await;
    let dir = tempfile::tempdir().unwrap();
    // Step 2 waits until step 1's change shows on the object, then step 3
    // waits for something that never happens and times out: the trial ends
    // in an error at step 3, and both patches so far are undone.
    let steps = format!(
        "{}      - waitFor: {{object: {{apiVersion: v1, kind: ConfigMap, name: a}}, expression: 'object.data.v == \"2\"', timeout: 20s}}\n{}      - waitFor: {{object: {{apiVersion: v1, kind: ConfigMap, name: b}}, expression: 'object.data.v == \"3\"', timeout: 2s}}\n{}",
        patch_step(&ns.name, "a"),
        patch_step(&ns.name, "b"),
        patch_step(&ns.name, "a"),
    );
    let experiment = load_experiment(&files(dir.path(), &ns.name, &steps))
        .unwrap_or_else(|problems| panic!("{problems:?}"));
    let report = Runner::builder(ns.client.clone())
        .journal_dir(dir.path().join("journal"))
        .keep_baselines(true)
        .build()
        .unwrap()
        .run(&[experiment])
        .await;
    let trial = &report.experiments[0].trials[0];
    let error = trial.error.as_ref().expect("the second wait times out");
    assert!(
        error.message.starts_with("step 4/5: waitFor configmap/b")
            && error.message.contains("did not hold within 2.0s")
            && error.message.contains("object.data.v = \"2\""),
        "{}",
        error.message
    );
    let finished: Vec<&str> = trial
        .timeline
        .entries
        .iter()
        .filter_map(|e| match &e.kind {
            EntryKind::StepFinished { step, error: None } => Some(step.as_str()),
            _ => None,
        })
        .collect();
    assert!(
        finished
            .iter()
            .any(|s| s.starts_with("step 2/5: waitFor configmap/a")
                && s.contains("held on configmap/a")),
        "{finished:?}"
    );
    let api: Api<ConfigMap> = Api::namespaced(ns.client.clone(), &ns.name);
    assert_eq!(value(&api, "a").await.as_deref(), Some("1"));
    assert_eq!(value(&api, "b").await.as_deref(), Some("1"));
}

/// A fresh namespace of the testkit control plane.
async fn testkit_namespace(prefix: &str) -> breakfix::testkit::TestNamespace {
    breakfix::testkit::namespace(prefix).await
}
