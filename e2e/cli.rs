//! The breakfix binary against the kind cluster: the image-typo experiment
//! passes with a measured detection, an impossible SLO fails by a stated
//! margin, and neither Ctrl-C, SIGTERM, SIGHUP nor SIGKILL (then
//! `cleanup`) leaves the fault behind.

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

/// Ctrl-C, and the signals CI systems, `timeout`, `docker stop` and a
/// closed terminal send: each reverts the fault before the process exits
/// with the shell's code for it.
#[rstest::rstest]
#[case::ctrl_c("-INT", 130)]
#[case::sigterm("-TERM", 143)]
#[case::sighup("-HUP", 129)]
#[tokio::test]
async fn a_stop_signal_mid_fault_reverts_and_leaves_the_deployment_exactly_as_before(
    #[case] sig: &str,
    #[case] code: i32,
) {
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
    signal(&child, sig);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(code));
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

/// Starts a run with its output kept: returns once it has injected the
/// fault, with a thread collecting the rest of its stderr.
fn start_collecting(
    journal: &Path,
    args: Vec<String>,
) -> (Child, std::thread::JoinHandle<Vec<String>>) {
    let mut child = breakfix(journal)
        .args(args)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    loop {
        match lines.next() {
            Some(Ok(line)) => {
                let injected = line.contains("injected:");
                seen.push(line);
                if injected {
                    break;
                }
            }
            _ => panic!("the run ended before injecting: {seen:?}"),
        }
    }
    let rest = std::thread::spawn(move || {
        seen.extend(lines.map_while(Result::ok));
        seen
    });
    (child, rest)
}

/// The Lease a run holds on the `shop` namespace while its fault is in.
async fn shop_claim() -> Option<k8s_openapi::api::coordination::v1::Lease> {
    let api: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(support::client().await, "kube-system");
    api.get_opt("breakfix-ns-shop").await.unwrap()
}

fn injected_and_recovered(report: &Path) -> (jiff::Timestamp, jiff::Timestamp, String) {
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report).unwrap()).unwrap();
    let exp = &json["experiments"][0];
    let marks = &exp["trials"][0]["marks"];
    let at = |key: &str| -> jiff::Timestamp {
        marks[key]
            .as_str()
            .unwrap_or_else(|| panic!("no {key} in {marks}"))
            .parse()
            .unwrap()
    };
    (
        at("injected"),
        at("recovered"),
        exp["outcome"].as_str().unwrap_or_default().to_string(),
    )
}

/// Two runs on one target of one cluster, the second started while the
/// first's fault is in (the first waits for a stalled rollout, so its fault
/// stays in for half a minute): the second waits for the first's claim (one
/// line naming it), then runs; both pass, and their faults never overlap.
#[tokio::test]
async fn a_second_run_on_the_same_target_waits_for_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let reports = [
        dir.path().join("first.json"),
        dir.path().join("second.json"),
    ];
    let with_report = |experiment: &str, report: &Path| {
        let mut args = run_args(&repo().join("experiments").join(experiment));
        args.extend(["--json".into(), report.display().to_string()]);
        args
    };
    let (mut first, first_out) = start_collecting(
        dir.path(),
        with_report("image-typo-rollout-stalled.yaml", &reports[0]),
    );
    let holder = shop_claim()
        .await
        .and_then(|l| l.spec?.holder_identity)
        .expect("the first run claims namespace shop while its fault is in");
    let second = breakfix(dir.path())
        .args(with_report("image-typo.yaml", &reports[1]))
        .output()
        .unwrap();
    let first_status = first.wait().unwrap();
    let first_out = first_out.join().unwrap().join("\n");
    assert_eq!(first_status.code(), Some(0), "{first_out}");
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    assert!(
        text(&second).contains(&format!(
            "waiting for namespace shop: claimed by run {holder}"
        )),
        "{}",
        text(&second)
    );
    let (a_in, a_out, a) = injected_and_recovered(&reports[0]);
    let (b_in, b_out, b) = injected_and_recovered(&reports[1]);
    assert_eq!((a.as_str(), b.as_str()), ("passed", "passed"));
    assert!(
        b_in > a_out,
        "the second injected only after the first recovered: {a_in}..{a_out} then {b_in}..{b_out}"
    );
    assert!(shop_claim().await.is_none(), "both claims released");
}

/// `--no-wait` while another run's fault is in: exit 2 before touching
/// anything, naming the holder's run, host, pid and start.
#[tokio::test]
async fn no_wait_refuses_naming_the_holder_host_and_start() {
    let dir = tempfile::tempdir().unwrap();
    let experiment = slow_experiment(dir.path());
    let (mut first, first_out) = start_collecting(dir.path(), run_args(&experiment));
    let lease = shop_claim().await.expect("the first run's claim");
    let note = |key: &str| {
        lease
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(key).cloned())
            .unwrap_or_else(|| panic!("no {key} on {lease:?}"))
    };
    let holder = lease
        .spec
        .as_ref()
        .unwrap()
        .holder_identity
        .clone()
        .unwrap();
    let expected = format!(
        "namespace shop is claimed by run {holder} on {} (pid {}), started {}",
        note("breakfix.dev/host"),
        first.id(),
        note("breakfix.dev/run-started"),
    );
    let mut args = run_args(&experiment);
    args.push("--no-wait".into());
    let second = breakfix(dir.path()).args(args).output().unwrap();
    signal(&first, "-INT");
    let first_status = first.wait().unwrap();
    let first_out = first_out.join().unwrap().join("\n");
    assert_eq!(second.status.code(), Some(2), "{}", text(&second));
    assert!(text(&second).contains(&expected), "{}", text(&second));
    assert!(
        text(&second).contains("nothing was applied"),
        "{}",
        text(&second)
    );
    assert_eq!(first_status.code(), Some(130), "{first_out}");
    assert!(shop_claim().await.is_none(), "released after the revert");
}

/// The e2e cluster's API server frozen (SIGSTOP inside its node) until
/// dropped, so a failing test never leaves it frozen.
struct FrozenApiServer(String);

impl FrozenApiServer {
    fn freeze() -> Self {
        let node = format!("{}-control-plane", support::cluster_name());
        apiserver_signal(&node, "-STOP");
        Self(node)
    }
}

impl Drop for FrozenApiServer {
    fn drop(&mut self) {
        apiserver_signal(&self.0, "-CONT");
    }
}

fn apiserver_signal(node: &str, sig: &str) {
    let status = Command::new("docker")
        .args(["exec", node, "pkill", sig, "-x", "kube-apiserver"])
        .status()
        .unwrap();
    assert!(status.success(), "pkill {sig} kube-apiserver in {node}");
}

/// The shop baseline in place and its healthy `web` spec.
async fn healthy_web(dir: &Path) -> DeploymentSpec {
    if let Some(spec) = web_spec().await {
        return spec;
    }
    let warm = breakfix(dir)
        .args(run_args(&repo().join("experiments/image-typo.yaml")))
        .output()
        .unwrap();
    assert_eq!(warm.status.code(), Some(0), "{}", text(&warm));
    web_spec().await.expect("baseline deployment")
}

/// The API server frozen right after injection, for longer than the
/// detect timeout: the run cannot tell a quiet cluster from one it cannot
/// see, so it reports an error (not a failed, let alone a passed, SLO),
/// and reverts the fault once the API server answers again.
#[tokio::test]
async fn an_api_server_frozen_past_the_detect_timeout_is_an_error_and_the_fault_is_reverted() {
    let dir = tempfile::tempdir().unwrap();
    let before = healthy_web(dir.path()).await;
    let experiment = edited_experiment(dir.path(), |t| {
        t.replace(
            "signals: [ErrImagePull, ImagePullBackOff]",
            "signals: [RolloutStalled]",
        )
        .replace("detectWithin: 30s", "detectWithin: 15s")
            + "  timeouts: {detect: 15s}\n"
    });
    let report = dir.path().join("report.json");
    let mut args = run_args(&experiment);
    args.extend(["--json".into(), report.display().to_string()]);
    let (mut child, out) = start_collecting(dir.path(), args);
    let frozen = FrozenApiServer::freeze();
    std::thread::sleep(std::time::Duration::from_secs(30));
    drop(frozen);
    let status = child.wait().unwrap();
    let out = out.join().unwrap().join("\n");
    assert_eq!(status.code(), Some(1), "{out}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let exp = &json["experiments"][0];
    assert_eq!(exp["outcome"], "error", "{out}");
    let error = &exp["trials"][0]["error"];
    assert_eq!(error["unobserved"], true, "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("the API server did not answer for"),
        "{error}"
    );
    assert!(exp["trials"][0]["marks"]["reverted"].is_string(), "{out}");
    assert_eq!(web_spec().await, Some(before), "reverted field for field");
}

/// A third signal while the revert cannot finish (the API server frozen)
/// exits at once, saying what is left and that `cleanup` finishes it;
/// `cleanup` then does, and releases the run's claim.
#[tokio::test]
async fn a_third_signal_exits_naming_what_is_left_and_cleanup_finishes_it() {
    let dir = tempfile::tempdir().unwrap();
    let before = healthy_web(dir.path()).await;
    let experiment = slow_experiment(dir.path());
    let (mut child, out) = start_collecting(dir.path(), run_args(&experiment));
    let frozen = FrozenApiServer::freeze();
    for _ in 0..3 {
        signal(&child, "-TERM");
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let status = child.wait().unwrap();
    drop(frozen);
    let out = out.join().unwrap().join("\n");
    assert_eq!(status.code(), Some(143), "{out}");
    for says in [
        "SIGTERM: exiting before the revert finished; left in the cluster:",
        "restore deployment/web -n shop (not yet done)",
        "run `breakfix cleanup` to finish the revert",
    ] {
        assert!(out.contains(says), "{says}: {out}");
    }
    assert_ne!(web_spec().await, Some(before.clone()), "the fault is left");

    let cleanup = breakfix(dir.path()).arg("cleanup").output().unwrap();
    assert!(cleanup.status.success(), "{}", text(&cleanup));
    assert!(
        text(&cleanup).contains("released claim breakfix-ns-shop -n kube-system"),
        "{}",
        text(&cleanup)
    );
    assert_eq!(web_spec().await, Some(before));
    assert!(shop_claim().await.is_none());
}
