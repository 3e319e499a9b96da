//! The breakfix binary stopped by a signal mid-fault, against a real API
//! server: SIGTERM, SIGHUP (with its terminal gone) and SIGQUIT revert the
//! fault, write the reports that can be written, and exit with the shell's
//! code for the signal; the object is back field for field.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use breakfix::baseline::apply_baseline;
use breakfix::kobj::ObjectRef;
use rstest::rstest;

use crate::support;

const MANIFESTS: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, labels: {team: checkout}, annotations: {owner: shop}}
data: {mode: live, level: info}
"#;

/// An experiment that patches the ConfigMap and waits for a signal that
/// never comes here (no canary runs): the fault stays in until stopped.
fn experiment(dir: &Path, ns: &str) -> std::path::PathBuf {
    support::baseline(&dir.join("baseline"), ns, MANIFESTS);
    let file = dir.join("experiment.yaml");
    std::fs::write(
        &file,
        format!(
            "apiVersion: breakfix.dev/v1alpha1
kind: Experiment
metadata: {{name: settings-patch}}
spec:
  baseline: baseline
  fault:
    patch:
      target: {{apiVersion: v1, kind: ConfigMap, namespace: {ns}, name: settings}}
      patch: {{data: {{mode: broken}}}}
  expect:
    signals: [CanaryFailing]
  slo: {{detectWithin: 1m, recoverWithin: 1m}}
"
        ),
    )
    .unwrap();
    file
}

#[rstest]
#[case::sigterm("-TERM", 143, false)]
#[case::sighup_with_the_terminal_gone("-HUP", 129, true)]
#[case::sigquit("-QUIT", 131, false)]
#[tokio::test]
async fn a_stop_signal_mid_fault_reverts_and_exits_with_its_code(
    #[case] signal: &str,
    #[case] code: i32,
    #[case] close_output: bool,
) {
    let cp = breakfix::testkit::control_plane();
    let client = cp.admin_client();
    let ns = format!(
        "signal-{}-{}",
        signal.trim_start_matches('-').to_lowercase(),
        std::process::id() % 100_000
    );
    let dir = tempfile::tempdir().unwrap();
    let experiment = experiment(dir.path(), &ns);
    let kubeconfig = support::kubeconfig(dir.path(), &cp.url, cp.admin_token());
    let loaded = breakfix::load_experiment(&experiment).unwrap_or_else(|p| panic!("{p:?}"));
    apply_baseline(&client, &loaded.baseline, "before")
        .await
        .unwrap();
    let target = ObjectRef::namespaced("v1", "ConfigMap", &ns, "settings");
    let before = breakfix::kobj::get(&client, &target)
        .await
        .unwrap()
        .unwrap();

    let report = dir.path().join("report.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_breakfix"))
        .arg("run")
        .arg(&experiment)
        .args(["--context", "testkit", "--keep", "--kubeconfig"])
        .arg(&kubeconfig)
        .arg("--json")
        .arg(&report)
        .env("BREAKFIX_JOURNAL_DIR", dir.path().join("journal"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let injected = line.contains("injected:");
        seen.push(line);
        if injected {
            break;
        }
    }
    let broken = breakfix::kobj::get(&client, &target)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(broken.data["data"]["mode"], "broken", "{seen:?}");

    let stdout = if close_output {
        // The terminal is gone: nobody reads the output any more.
        drop(lines);
        drop(stdout);
        None
    } else {
        Some(stdout)
    };
    let sent = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(code),
        "{seen:?} {}",
        std::fs::read_to_string(&report).unwrap_or_default()
    );
    drop(stdout);

    let after = breakfix::kobj::get(&client, &target)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        without_run_label(support::user_fields(&after)),
        without_run_label(support::user_fields(&before)),
        "the ConfigMap is back field for field"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(json["experiments"][0]["outcome"], "interrupted");
    assert!(json["experiments"][0]["trials"][0]["marks"]["reverted"].is_string());
    let state = breakfix::journal::JournalState::scan(&dir.path().join("journal")).unwrap();
    assert!(state.unfinished.is_empty(), "{:?}", state.unfinished);
}

/// breakfix's run label says which run applied the object last; it is the
/// one field a run is expected to change.
fn without_run_label(mut object: serde_json::Value) -> serde_json::Value {
    if let Some(labels) = object["metadata"]["labels"].as_object_mut() {
        labels.remove(breakfix::RUN_LABEL);
    }
    object
}
