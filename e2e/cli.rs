//! The breakfix binary against the kind cluster: the image-typo experiment
//! passes with a measured detection, an impossible SLO fails by a stated
//! margin, and neither Ctrl-C nor SIGKILL leaves the fault behind.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use kube::Api;

use crate::support;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn breakfix(journal: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_breakfix"));
    cmd.env("BREAKFIX_JOURNAL_DIR", journal).current_dir(repo());
    cmd
}

fn run_args(experiment: &Path) -> Vec<String> {
    vec![
        "run".into(),
        experiment.display().to_string(),
        "--cluster-name".into(),
        support::cluster_name(),
        "--reuse".into(),
        "--keep".into(),
    ]
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The experiments folder copied to a temp dir, with `edit` applied to image-typo.yaml.
fn edited_experiment(dir: &Path, edit: impl Fn(String) -> String) -> PathBuf {
    let src = repo().join("experiments");
    let copy = |from: &Path, to: &Path| {
        Command::new("cp")
            .arg("-r")
            .arg(from)
            .arg(to)
            .status()
            .unwrap();
    };
    copy(&src.join("baselines"), &dir.join("baselines"));
    let text = std::fs::read_to_string(src.join("image-typo.yaml")).unwrap();
    let path = dir.join("image-typo.yaml");
    std::fs::write(&path, edit(text)).unwrap();
    path
}

async fn web_spec() -> Option<DeploymentSpec> {
    let api: Api<Deployment> = Api::namespaced(support::client().await, "shop");
    api.get_opt("web").await.unwrap().and_then(|d| d.spec)
}

/// image-typo, but waiting for a signal that takes minutes to come (a
/// rollout's progress deadline), so the fault is surely in place when the
/// test interrupts the run.
fn slow_experiment(dir: &Path) -> PathBuf {
    edited_experiment(dir, |t| {
        t.replace(
            "signals: [ErrImagePull, ImagePullBackOff]",
            "signals: [RolloutStalled]",
        )
    })
}

/// Starts a run and returns once it has injected the fault.
fn start_until_injected(journal: &Path, experiment: &Path) -> Child {
    let mut child = breakfix(journal)
        .args(run_args(experiment))
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    loop {
        match lines.next() {
            Some(Ok(line)) if line.contains("injected:") => break,
            Some(Ok(_)) => {}
            _ => panic!("the run ended before injecting: {:?}", child.wait()),
        }
    }
    // Keep draining stderr so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    child
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn image_typo_passes_with_its_detection_time_recorded() {
    let journal = tempfile::tempdir().unwrap();
    let report = journal.path().join("report.json");
    let junit = journal.path().join("junit.xml");
    let mut args = run_args(&repo().join("experiments/image-typo.yaml"));
    args.extend([
        "--json".into(),
        report.display().to_string(),
        "--junit".into(),
        junit.display().to_string(),
    ]);
    let out = breakfix(journal.path()).args(args).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let exp = &json["experiments"][0];
    assert_eq!(exp["outcome"], "passed");
    let detect = &exp["slos"][0];
    assert_eq!(detect["slo"], "detectWithin");
    assert!(detect["actual"].as_f64().unwrap() > 0.0, "{detect}");
    let signal = exp["trials"][0]["detection"]["kind"].as_str().unwrap();
    assert!(
        ["ErrImagePull", "ImagePullBackOff"].contains(&signal),
        "{signal}"
    );
    assert!(exp["trials"][0]["marks"]["recovered"].is_string());
    assert!(
        std::fs::read_to_string(&junit)
            .unwrap()
            .contains("image-typo")
    );
    assert!(text(&out).contains("1 passed, 0 failed"), "{}", text(&out));
}

#[tokio::test]
async fn an_impossible_detection_slo_exits_1_and_says_by_how_much() {
    let dir = tempfile::tempdir().unwrap();
    let experiment = edited_experiment(dir.path(), |t| {
        t.replace("detectWithin: 30s", "detectWithin: 1ms")
    });
    let out = breakfix(dir.path())
        .args(run_args(&experiment))
        .output()
        .unwrap();
    let output = text(&out);
    assert_eq!(out.status.code(), Some(1), "{output}");
    assert!(output.contains("detectWithin 1ms:"), "{output}");
    assert!(output.contains("missed by"), "{output}");
    assert!(output.contains("0 passed, 1 failed"), "{output}");
}

#[tokio::test]
async fn ctrl_c_mid_fault_reverts_and_leaves_the_deployment_exactly_as_before() {
    let journal = tempfile::tempdir().unwrap();
    let experiment = slow_experiment(journal.path());
    // Make sure the baseline exists, then remember the healthy spec.
    let warm = breakfix(journal.path())
        .args(run_args(&repo().join("experiments/image-typo.yaml")))
        .output()
        .unwrap();
    assert_eq!(warm.status.code(), Some(0), "{}", text(&warm));
    let before = web_spec().await.expect("baseline deployment");

    let mut child = start_until_injected(journal.path(), &experiment);
    signal(&child, "-INT");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert_eq!(
        web_spec().await,
        Some(before),
        "the deployment must be exactly as before"
    );
}

#[tokio::test]
async fn cleanup_restores_what_a_killed_run_left_behind() {
    let journal = tempfile::tempdir().unwrap();
    let experiment = slow_experiment(journal.path());
    let warm = breakfix(journal.path())
        .args(run_args(&repo().join("experiments/image-typo.yaml")))
        .output()
        .unwrap();
    assert_eq!(warm.status.code(), Some(0), "{}", text(&warm));
    let before = web_spec().await.expect("baseline deployment");

    let mut child = start_until_injected(journal.path(), &experiment);
    signal(&child, "-KILL");
    child.wait().unwrap();
    let broken = web_spec().await.unwrap();
    assert_ne!(
        broken, before,
        "the fault should still be in place after SIGKILL"
    );

    let out = breakfix(journal.path()).arg("cleanup").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("restore deployment/web -n shop"),
        "{}",
        text(&out)
    );
    assert_eq!(web_spec().await, Some(before));
}
