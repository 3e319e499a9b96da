//! A game day on the kind cluster, the test playing the responders: the
//! built-in pos-down scenario ("POS is down at Store #4523") for two
//! teams, each in a copy of the shop in a namespace of its own. Blue
//! declares, diagnoses and fixes the Service's selector with kubectl
//! through the kubeconfig breakfix gave it; red never touches anything and
//! its round ends at the timebox with breakfix reverting the fault. The
//! times, the captured change, the score and the debrief files are checked.

use std::path::PathBuf;
use std::time::Duration;

use breakfix::cluster::KindCluster;
use breakfix::gameday::changes::ChangeOp;
use breakfix::gameday::record::{EntryKind, RoundEnd};
use breakfix::gameday::{ControlError, GameDay, GameDayHandle, GameState, debrief};
use breakfix::journal::JournalState;
use breakfix::load_experiment;
use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::Api;

use crate::support;

/// Red's whole round: long enough for blue to read, patch and hold the fix
/// for `settle` on a busy machine, short enough to keep the test brief.
const TIMEBOX: Duration = Duration::from_secs(60);

/// Waits until the game day's state satisfies `ok`; panics after `within`.
async fn until(handle: &GameDayHandle, within: Duration, ok: impl Fn(&GameState) -> bool) {
    let mut rx = handle.subscribe();
    let wait = async {
        loop {
            if ok(&handle.state()) {
                return;
            }
            if rx.recv().await.is_err() && !ok(&handle.state()) {
                panic!("the game day ended first: {:?}", handle.state().phase);
            }
        }
    };
    tokio::time::timeout(within, wait)
        .await
        .unwrap_or_else(|_| panic!("not within {within:?}: {:#?}", handle.state().teams));
}

/// The cluster's own kubectl (`just images` builds it), else the one on PATH.
fn kubectl_binary() -> PathBuf {
    std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".cache/breakfix/bin/kubectl"))
        .filter(|k| k.exists())
        .unwrap_or_else(|| PathBuf::from("kubectl"))
}

/// kubectl as a responder runs it, with the team's kubeconfig.
async fn kubectl(kubeconfig: &str, args: &[&str]) -> String {
    let out = tokio::process::Command::new(kubectl_binary())
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .await
        .expect("kubectl runs");
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn pos_down_for_two_teams_one_fixes_it_with_kubectl_the_other_runs_out_of_time() {
    let client = support::client().await;
    let name = support::cluster_name();
    let cluster = KindCluster::recorded(&name).expect("the e2e cluster's record");
    let exp = load_experiment(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("experiments/gameday/pos-down.yaml"),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let game = GameDay::builder(client.clone(), exp)
        .cluster(cluster.record())
        .teams(["blue", "red"])
        .timebox(TIMEBOX)
        .settle(Duration::from_secs(5))
        .journal_dir(dir.path().join("journal"))
        .out_dir(&out)
        .build()
        .unwrap();
    let journals = game.journal_paths();
    let handle = game.handle();
    let play = tokio::spawn(game.run());

    // A responder starts when the tills are down: both copies broken and
    // breakfix's own signal seen in blue's (the endpoint controller has
    // emptied the slice by then).
    until(&handle, Duration::from_secs(240), |s| {
        s.teams.iter().all(|t| t.marks.injected.is_some())
            && s.teams[0].marks.harness_detected.is_some()
    })
    .await;
    let state = handle.state();
    let (blue_ns, red_ns) = (
        state.teams[0].namespace.clone(),
        state.teams[1].namespace.clone(),
    );
    assert!(
        blue_ns.starts_with("shop-bf-") && red_ns.starts_with("shop-bf-") && blue_ns != red_ns,
        "a copy of the shop per team: {blue_ns}, {red_ns}"
    );
    let blue = state.teams[0]
        .kubeconfig
        .clone()
        .expect("blue's kubeconfig");

    // Blue works the incident the way seed 003 teaches it.
    let pods = kubectl(&blue, &["get", "pods", "-l", "app=web", "-o", "name"]).await;
    assert!(pods.contains("pod/web-"), "blue sees its own pods: {pods}");
    let endpoints = kubectl(
        &blue,
        &[
            "get",
            "endpointslices",
            "-l",
            "kubernetes.io/service-name=web",
            "-o",
            "jsonpath={.items[*].endpoints[*].addresses[*]}",
        ],
    )
    .await;
    assert!(
        endpoints.trim().is_empty(),
        "the fault empties web's endpoints: {endpoints}"
    );
    handle
        .declare("blue", "detected: the tills get connection errors from web")
        .await
        .unwrap();
    handle
        .declare(
            "blue",
            "diagnosed: web's Service selector matches no pod label, its endpoints are empty",
        )
        .await
        .unwrap();
    kubectl(
        &blue,
        &[
            "patch",
            "service",
            "web",
            "-p",
            r#"{"spec":{"selector":{"app":"web"}}}"#,
        ],
    )
    .await;

    // Blue's round ends with its fix while red's goes on: a declaration for
    // the ended round is refused and changes nothing.
    until(&handle, TIMEBOX, |s| s.teams[0].end.is_some()).await;
    let entries = handle.state().teams[0].entries.len();
    let refused = handle.declare("blue", "fixed").await;
    assert!(
        matches!(refused, Err(ControlError::RoundOver { .. })),
        "{refused:?}"
    );
    assert!(handle.state().teams[1].end.is_none(), "red still playing");
    assert_eq!(handle.state().teams[0].entries.len(), entries);

    let report = match tokio::time::timeout(Duration::from_secs(300), play).await {
        Ok(r) => r.unwrap(),
        Err(_) => panic!("the game day did not end: {:#?}", handle.state().teams),
    };

    // Blue: fixed by its own hand, its change captured, scored.
    let b = &report.teams[0];
    assert_eq!(b.end, Some(RoundEnd::Fixed), "{:#?}", b.entries);
    let change = b
        .changes()
        .map(|(_, c)| c)
        .find(|c| c.object == "service/web")
        .unwrap_or_else(|| panic!("blue's patch is captured: {:#?}", b.entries));
    assert_eq!(change.manager, "kubectl-patch");
    assert_eq!(change.op, ChangeOp::Update);
    assert!(change.fault_object, "the fault's own Service");
    assert!(
        change
            .fields
            .iter()
            .any(|f| f.path == "spec.selector.app" && f.value.as_deref() == Some("web")),
        "{change:?}"
    );
    let m = &b.marks;
    let (harness, detect, diagnose, fix) = (
        m.harness_detect().expect("breakfix detected it"),
        m.team_detect().expect("blue declared detection"),
        m.team_diagnose().expect("the diagnosis names the selector"),
        m.team_fix().expect("blue fixed it"),
    );
    assert!(
        detect <= diagnose && diagnose < fix,
        "{detect:?} {diagnose:?} {fix:?}"
    );
    assert!(fix < TIMEBOX, "fixed within the timebox: {fix:?}");
    assert!(harness < Duration::from_secs(30), "{harness:?}");
    eprintln!(
        "blue: breakfix detected {harness:?}, blue detected {detect:?}, diagnosed {diagnose:?}, fixed {fix:?}; score {:?}",
        b.score
    );
    assert!(
        b.score.points >= 150,
        "fix, detection and diagnosis: {:?}",
        b.score
    );

    // Red: never touched anything; the timebox ended it, breakfix reverted.
    let r = &report.teams[1];
    assert_eq!(r.end, Some(RoundEnd::Timebox), "{:#?}", r.entries);
    assert_eq!(r.changes().count(), 0);
    assert!(
        r.entries.iter().any(|e| matches!(&e.kind, EntryKind::Reverted { actions } if actions.iter().any(|a| a.contains("service/web")))),
        "breakfix put red's Service back: {:#?}",
        r.entries
    );
    assert!(r.marks.recovered.is_some(), "red's copy steady again");
    assert_eq!(r.score.points, 0);
    assert_eq!(
        report.exit_code(),
        0,
        "a round lost to the timebox is still a round played to its end"
    );

    // The debrief: the sealed answer, both teams, the change.
    let files = debrief::write(&report, &out).unwrap();
    let md = std::fs::read_to_string(&files.markdown).unwrap();
    assert!(md.contains("selectorMismatch"), "the fault revealed: {md}");
    assert!(md.contains("kubectl-patch changed service/web"), "{md}");
    assert!(md.contains("blue") && md.contains("red"), "{md}");
    let html = std::fs::read_to_string(&files.html).unwrap();
    assert!(html.contains("<table") && html.contains("kubectl-patch"));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&files.json).unwrap()).unwrap();
    assert_eq!(json["teams"].as_array().map(Vec::len), Some(2));

    // Nothing left: the copies gone, the journals closed.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for ns in [&blue_ns, &red_ns] {
        if let Some(uid) = namespaces
            .get_opt(ns)
            .await
            .unwrap()
            .and_then(|n| n.metadata.uid)
        {
            let gone = kube::runtime::wait::await_condition(
                namespaces.clone(),
                ns,
                kube::runtime::wait::conditions::is_deleted(&uid),
            );
            tokio::time::timeout(Duration::from_secs(120), gone)
                .await
                .unwrap_or_else(|_| panic!("{ns} not deleted"))
                .unwrap();
        }
        let services: Api<Service> = Api::namespaced(client.clone(), ns);
        assert!(services.get_opt("web").await.unwrap().is_none());
    }
    for path in journals {
        let journal = JournalState::read(&path).unwrap();
        assert!(
            journal.finished && journal.pending.is_empty(),
            "{journal:?}"
        );
    }
}

/// The deployment's CPU limit as a responder reads it.
async fn cpu_limit(kubeconfig: &str) -> String {
    kubectl(
        kubeconfig,
        &[
            "get",
            "deployment",
            "payment-processor",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].resources.limits.cpu}",
        ],
    )
    .await
}

#[tokio::test]
async fn payments_slow_is_fixed_by_raising_the_cpu_limit_with_kubectl() {
    let client = support::client().await;
    let cluster =
        KindCluster::recorded(&support::cluster_name()).expect("the e2e cluster's record");
    let exp = load_experiment(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("experiments/gameday/payments-slow.yaml"),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let game = GameDay::builder(client.clone(), exp)
        .cluster(cluster.record())
        .teams(["green"])
        .timebox(Duration::from_secs(150))
        .settle(Duration::from_secs(5))
        .journal_dir(dir.path().join("journal"))
        .out_dir(&out)
        .build()
        .unwrap();
    let handle = game.handle();
    let play = tokio::spawn(game.run());

    // The tills are slow: breakfix has seen the till's latency rule broken.
    until(&handle, Duration::from_secs(240), |s| {
        s.teams[0].marks.harness_detected.is_some()
    })
    .await;
    let state = handle.state();
    let ns = state.teams[0].namespace.clone();
    assert!(ns.starts_with("payment-bf-"), "a copy of its own: {ns}");
    let green = state.teams[0]
        .kubeconfig
        .clone()
        .expect("green's kubeconfig");

    // Nothing is down: no payment pod failed or restarted (the squeeze
    // rolled the Deployment: a pod may still be starting or draining)...
    let pods = kubectl(
        &green,
        &[
            "get",
            "pods",
            "-l",
            "app=payment-processor",
            "-o",
            "jsonpath={range .items[*]}{.status.phase} {.status.containerStatuses[0].restartCount}{\"\\n\"}{end}",
        ],
    )
    .await;
    assert!(
        pods.lines().any(|l| l == "Running 0")
            && pods
                .lines()
                .all(|l| !l.starts_with("Failed")
                    && matches!(l.split_once(' '), Some((_, "0" | "")))),
        "nothing crashed: {pods}"
    );
    // ...but the limits say it: 10m for payments that need 20m between them.
    assert_eq!(cpu_limit(&green).await, "10m");
    handle
        .declare("green", "detected: payments at the till take seconds")
        .await
        .unwrap();
    handle
        .declare(
            "green",
            "diagnosed: payment-processor's CPU limit is 10m, it is throttled",
        )
        .await
        .unwrap();
    kubectl(
        &green,
        &[
            "set",
            "resources",
            "deployment",
            "payment-processor",
            "-c",
            "processor",
            "--limits=cpu=500m",
        ],
    )
    .await;

    let report = match tokio::time::timeout(Duration::from_secs(300), play).await {
        Ok(r) => r.unwrap(),
        Err(_) => panic!("the game day did not end: {:#?}", handle.state().teams),
    };
    let g = &report.teams[0];
    assert_eq!(g.end, Some(RoundEnd::Fixed), "{:#?}", g.entries);
    let change = g
        .changes()
        .map(|(_, c)| c)
        .find(|c| c.object == "deployment/payment-processor")
        .unwrap_or_else(|| panic!("green's change is captured: {:#?}", g.entries));
    assert_eq!(change.manager, "kubectl-set");
    assert!(change.fault_object, "the object the fault squeezed");
    assert!(
        change.fields.iter().any(|f| f.path.ends_with("resources.limits.cpu")
            && f.value.as_deref() == Some("500m")),
        "{change:?}"
    );
    let m = &g.marks;
    let (harness, fix) = (
        m.harness_detect().expect("breakfix detected it"),
        m.team_fix().expect("green fixed it"),
    );
    assert!(
        m.team_diagnose().is_some(),
        "the diagnosis names the CPU limit"
    );
    assert!(g.score.points >= 150, "{:?}", g.score);
    eprintln!(
        "green: breakfix detected {harness:?}, fixed {fix:?}; score {:?}",
        g.score
    );

    let files = debrief::write(&report, &out).unwrap();
    let md = std::fs::read_to_string(&files.markdown).unwrap();
    assert!(
        md.contains("kubectl-set changed deployment/payment-processor"),
        "the debrief shows the fix: {md}"
    );
    assert!(md.contains("500m"), "with the new limit: {md}");
    assert!(md.contains("LatencyAbove"), "and what breakfix saw: {md}");
}

#[tokio::test]
async fn payments_slow_is_not_detected_when_the_limit_stays_generous() {
    use breakfix::runner::Outcome;
    use breakfix::timeline::Phase;

    // The same scenario with the limit squeezed only to 400m: still 80
    // payments a second per pod for the till's 4. No latency, no signal:
    // the run must fail at detection, or the real one proves nothing.
    let client = support::client().await;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("experiments");
    let text = std::fs::read_to_string(root.join("gameday/payments-slow.yaml")).unwrap();
    assert!(text.contains("cpu: 10m") && text.contains("baseline: ../baselines/"));
    let text = text
        .replacen("cpu: 10m", "cpu: 400m", 1)
        .replacen("detectWithin: 60s", "detectWithin: 30s", 1)
        .replace(
            "baseline: ../baselines/",
            &format!("baseline: {}/baselines/", root.display()),
        )
        + "  timeouts: {detect: 30s}\n";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("payments-harmless.yaml");
    std::fs::write(&path, text).unwrap();
    let harmless = load_experiment(&path).unwrap();
    crate::trial::steady_baseline(&client, &harmless).await;
    let run = crate::trial::run(&client, &harmless).await;
    assert_eq!(run.report.outcome, Outcome::Failed, "{:#?}", run.report);
    let error = run.report.trials[0].error.as_ref().expect("no detection");
    assert_eq!(error.phase, Phase::Detect, "{error:?}");
    assert!(run.journal.pending.is_empty(), "{:?}", run.journal.pending);
}
