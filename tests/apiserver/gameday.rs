//! Game days on a real API server: the fault is injected and left in; a
//! team fixes it with the real kubectl through the kubeconfig breakfix gave
//! it (RBAC scoped to its namespace) and the change is captured with its
//! field manager; a team that never fixes it has its round end at the
//! timebox with the fault reverted from the journal; controls refuse what
//! they must, over the page server's HTTP API too.
//!
//! The scenario: a Deployment at 0 replicas under a quota of one pod; the
//! fault scales it to 2, the ReplicaSet controller's refusals are breakfix's
//! signal (QuotaExceeded), and steady state (the Deployment fully rolled
//! out) breaks until someone scales it back.

use std::path::{Path, PathBuf};
use std::time::Duration;

use breakfix::gameday::changes::ChangeOp;
use breakfix::gameday::record::{EntryKind, RoundEnd};
use breakfix::gameday::server::{self, Tokens};
use breakfix::gameday::{ControlError, GameDay, GameDayHandle, GamePhase, debrief};
use breakfix::journal::{ClusterRecord, JournalState};
use breakfix::{SignalKind, load_experiment, testkit};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;

use crate::support;

const MANIFESTS: &str = "\
apiVersion: v1
kind: ResourceQuota
metadata: {name: pods}
spec:
  hard: {pods: \"1\"}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 0
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: breakfix/workload:0.1.0
          resources: {limits: {cpu: 10m, memory: 16Mi}}
";

/// Writes the scenario for namespace `ns` under `dir` and returns the
/// experiment file.
fn scenario(dir: &Path, ns: &str) -> PathBuf {
    let baseline = dir.join("baseline");
    std::fs::create_dir_all(baseline.join("manifests")).unwrap();
    std::fs::write(baseline.join("manifests/objects.yaml"), MANIFESTS).unwrap();
    std::fs::write(
        baseline.join("baseline.yaml"),
        format!(
            "apiVersion: breakfix.dev/v1alpha1\nkind: Baseline\nmetadata: {{name: quota}}\nspec:\n  namespace: {ns}\n  steadyState: {{timeout: 30s}}\n"
        ),
    )
    .unwrap();
    let file = dir.join("scaled-past-quota.yaml");
    std::fs::write(
        &file,
        format!(
            "apiVersion: breakfix.dev/v1alpha1
kind: Experiment
metadata: {{name: scaled-past-quota, story: a stale manifest scaled web past its quota}}
spec:
  baseline: baseline
  fault:
    scale:
      target: {{kind: Deployment, namespace: {ns}, name: web}}
      replicas: 2
  expect:
    signals: [QuotaExceeded]
  slo: {{detectWithin: 30s, recoverWithin: 30s}}
  gameday:
    briefing:
      symptom: web never finishes rolling out
      tools: kubectl in your namespace
    hints:
      - {{text: look at the ReplicaSet's events, cost: 5}}
      - {{text: count the pods the quota allows, after: 1h}}
    answer: [quota, replicas]
"
        ),
    )
    .unwrap();
    file
}

/// A kubeconfig for the control plane and the record that names it.
fn cluster(dir: &Path) -> ClusterRecord {
    let cp = testkit::control_plane();
    ClusterRecord {
        provider: "context".into(),
        name: "testkit".into(),
        kubeconfig: Some(support::kubeconfig(dir, &cp.url, cp.admin_token())),
        context: Some("testkit".into()),
    }
}

/// Waits until the game day's state satisfies `ok`; panics after `within`.
async fn until(
    handle: &GameDayHandle,
    within: Duration,
    ok: impl Fn(&breakfix::gameday::GameState) -> bool,
) {
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

/// The kubectl `just images-tier` builds (the cluster's own version), else
/// the one on PATH.
fn kubectl_binary() -> PathBuf {
    let cache = std::env::var_os("BREAKFIX_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/breakfix")));
    cache
        .map(|c| c.join("bin/kubectl"))
        .filter(|k| k.exists())
        .unwrap_or_else(|| PathBuf::from("kubectl"))
}

/// Runs the real kubectl with the team's kubeconfig.
async fn kubectl(kubeconfig: &str, args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(kubectl_binary())
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .await
        .expect("kubectl runs (`just images-tier` builds it)")
}

async fn http(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let mut req = hyper::Request::builder().method(method).uri(url);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let req = req
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let res = client.request(req).await.unwrap();
    let status = res.status().as_u16();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or_default())
}

#[tokio::test]
async fn a_team_fixes_it_with_kubectl_and_its_change_is_captured() {
    let ns = testkit::namespace("gameday-fix").await;
    let dir = tempfile::tempdir().unwrap();
    let exp = load_experiment(&scenario(dir.path(), &ns.name)).unwrap();
    let game = GameDay::builder(ns.client.clone(), exp)
        .cluster(cluster(dir.path()))
        .teams(["blue"])
        .timebox(Duration::from_secs(120))
        .settle(Duration::from_secs(2))
        .journal_dir(dir.path().join("journal"))
        .out_dir(dir.path().join("out"))
        .build()
        .unwrap();
    let journals = game.journal_paths();
    let handle = game.handle();
    let tokens = Tokens::generate(&handle.teams());
    let listener = server::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", server::local_addr(&listener).unwrap());
    let shutdown = tokio_util::sync::CancellationToken::new();
    let served = server::serve(listener, handle.clone(), tokens.clone(), shutdown.clone());

    assert_eq!(
        handle.declare("blue", "detected: too early").await,
        Err(ControlError::NotStarted),
        "no declaration before the round starts"
    );
    let play = tokio::spawn(game.run());
    until(&handle, Duration::from_secs(60), |s| {
        s.teams[0].marks.harness_detected.is_some()
    })
    .await;
    let state = handle.state();
    assert_eq!(state.phase, GamePhase::Playing);
    let kubeconfig = state.teams[0]
        .kubeconfig
        .clone()
        .expect("a team kubeconfig");

    // The team's access reaches its namespace only.
    let outside = kubectl(&kubeconfig, &["get", "pods", "-n", "default"]).await;
    assert!(
        !outside.status.success(),
        "the team must not read other namespaces"
    );
    assert!(
        String::from_utf8_lossy(&outside.stderr).contains("forbidden"),
        "{}",
        String::from_utf8_lossy(&outside.stderr)
    );

    // Controls over HTTP: no token, a team's token for a control, a bad declaration.
    assert_eq!(
        http("GET", &format!("{url}/api/status"), None, None)
            .await
            .0,
        401
    );
    let team_token = tokens.teams["blue"].as_str();
    let (code, body) = http("POST", &format!("{url}/api/stop"), Some(team_token), None).await;
    assert_eq!(code, 403, "{body}");
    let (code, body) = http(
        "POST",
        &format!("{url}/api/declare"),
        Some(team_token),
        Some(serde_json::json!({"team": "blue", "text": "solved: it"})),
    )
    .await;
    assert_eq!(code, 400, "{body}");
    let (code, body) = http(
        "POST",
        &format!("{url}/api/declare"),
        Some(team_token),
        Some(
            serde_json::json!({"team": "blue", "text": "detected: web has fewer pods than asked"}),
        ),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = http(
        "POST",
        &format!("{url}/api/hint"),
        Some(&tokens.facilitator),
        Some(serde_json::json!({"team": "blue"})),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let (code, view) = http("GET", &format!("{url}/api/status"), Some(team_token), None).await;
    assert_eq!(code, 200);
    let rows = view["teams"][0]["rows"].as_array().unwrap();
    assert!(
        rows.iter()
            .all(|r| r["class"] != "signal" && r["class"] != "detected"),
        "a team never sees breakfix's observations: {rows:?}"
    );
    assert!(view["fault"].is_null(), "the fault stays sealed: {view}");
    handle
        .declare("blue", "diagnosed: scaled past the pod quota")
        .await
        .unwrap();

    // The fix, as a responder types it.
    let fixed = kubectl(
        &kubeconfig,
        &[
            "patch",
            "deployment",
            "web",
            "-p",
            r#"{"spec":{"replicas":0}}"#,
        ],
    )
    .await;
    assert!(
        fixed.status.success(),
        "{}",
        String::from_utf8_lossy(&fixed.stderr)
    );

    let report = match tokio::time::timeout(Duration::from_secs(90), play).await {
        Ok(r) => r.unwrap(),
        Err(_) => panic!("the game day did not end: {:#?}", handle.state().teams),
    };
    shutdown.cancel();
    let _ = served.await;
    let blue = &report.teams[0];
    assert_eq!(blue.end, Some(RoundEnd::Fixed), "{:#?}", blue.entries);
    let change = blue
        .changes()
        .map(|(_, c)| c)
        .find(|c| c.object == "deployment/web")
        .unwrap_or_else(|| panic!("the scale is captured: {:#?}", blue.entries));
    assert_eq!(change.manager, "kubectl-patch");
    assert_eq!(change.op, ChangeOp::Update);
    assert!(change.fault_object, "the fault touched web");
    assert!(
        change
            .fields
            .iter()
            .any(|f| f.path == "spec.replicas" && f.value.as_deref() == Some("0")),
        "{change:?}"
    );
    let marks = &blue.marks;
    assert!(marks.harness_detect().is_some() && marks.team_detect().is_some());
    assert!(
        marks.team_diagnose().is_some(),
        "the diagnosis names the quota"
    );
    assert!(marks.team_fix().unwrap() > marks.team_detect().unwrap());
    assert_eq!(blue.hints_used, 1);
    assert!(blue.score.points > 100, "{:?}", blue.score);
    assert!(
        blue.entries.iter().any(|e| matches!(&e.kind, EntryKind::Signal { observation, .. } if observation.kind == SignalKind::QuotaExceeded)),
        "breakfix's own detection is on the facilitator's timeline"
    );
    assert_eq!(report.exit_code(), 0);

    let files = debrief::write(&report, &dir.path().join("out")).unwrap();
    let md = std::fs::read_to_string(&files.markdown).unwrap();
    assert!(md.contains("The fault was `scale`"), "{md}");
    assert!(md.contains("kubectl-patch changed deployment/web"), "{md}");
    let html = std::fs::read_to_string(&files.html).unwrap();
    assert!(
        html.contains("kubectl-patch") && html.contains("<table"),
        "{html}"
    );

    for path in journals {
        let journal = JournalState::read(&path).unwrap();
        assert!(
            journal.finished && journal.pending.is_empty(),
            "{journal:?}"
        );
    }
}

#[tokio::test]
async fn a_round_nobody_fixes_ends_at_the_timebox_with_the_fault_reverted() {
    let ns = testkit::namespace("gameday-timebox").await;
    let dir = tempfile::tempdir().unwrap();
    let exp = load_experiment(&scenario(dir.path(), &ns.name)).unwrap();
    let game = GameDay::builder(ns.client.clone(), exp)
        .cluster(cluster(dir.path()))
        .teams(["red"])
        .timebox(Duration::from_secs(10))
        .settle(Duration::from_secs(2))
        .journal_dir(dir.path().join("journal"))
        .out_dir(dir.path().join("out"))
        .build()
        .unwrap();
    let handle = game.handle();
    let journals = game.journal_paths();
    let report = tokio::time::timeout(Duration::from_secs(120), game.run())
        .await
        .expect("the game day ends");
    let red = &report.teams[0];
    assert_eq!(red.end, Some(RoundEnd::Timebox), "{:#?}", red.entries);
    let reverted = red
        .entries
        .iter()
        .find_map(|e| match &e.kind {
            EntryKind::Reverted { actions } => Some(actions.clone()),
            _ => None,
        })
        .expect("breakfix reverted the fault");
    assert!(
        reverted.iter().any(|a| a.contains("deployment/web")),
        "{reverted:?}"
    );
    assert!(
        red.marks.recovered.is_some(),
        "steady again after the revert"
    );
    assert_eq!(red.marks.team_fix(), None);
    assert_eq!(red.score.points, 0);
    assert_eq!(
        handle.declare("red", "fixed").await,
        Err(ControlError::GameOver),
        "no declaration once the game day is over"
    );
    for path in journals {
        let journal = JournalState::read(&path).unwrap();
        assert!(
            journal.finished && journal.pending.is_empty(),
            "{journal:?}"
        );
    }
}

#[tokio::test]
async fn changes_made_with_kubectl_are_read_back_with_their_field_manager() {
    let ns = testkit::namespace("gameday-changes").await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = cluster(dir.path()).kubeconfig.unwrap();
    let kubeconfig = kubeconfig.to_str().unwrap();
    for doc in MANIFESTS.split("---") {
        let mut obj: kube::api::DynamicObject = serde_yaml::from_str(doc).unwrap();
        obj.metadata.namespace = Some(ns.name.clone());
        breakfix::kobj::apply(&ns.client, &obj).await.unwrap();
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for kind in breakfix::gameday::changes::watched_kinds() {
        tasks.push(tokio::spawn(breakfix::gameday::changes::watch_kind(
            ns.client.clone(),
            ns.name.clone(),
            kind,
            vec!["deployment/web".into()],
            tx.clone(),
        )));
    }
    // Let the watches list what exists first.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let n = ns.name.as_str();
    for args in [
        vec!["scale", "deployment", "web", "--replicas=1", "-n", n],
        vec!["set", "env", "deployment/web", "MODE=fast", "-n", n],
        vec![
            "create",
            "rolebinding",
            "viewers",
            "--clusterrole=view",
            "--group=team",
            "-n",
            n,
        ],
        vec!["delete", "resourcequota", "pods", "-n", n],
    ] {
        let out = kubectl(kubeconfig, &args).await;
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut seen = Vec::new();
    let collect = async {
        while let Some(s) = rx.recv().await {
            if let breakfix::gameday::changes::Seen::Change(_, c) = s {
                seen.push(c);
                if seen.len() >= 4 {
                    return;
                }
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(20), collect).await;
    for t in tasks {
        t.abort();
    }
    let lines: Vec<String> = seen.iter().map(|c| c.describe()).collect();
    for want in [
        "kubectl changed deployment/web (through its scale): spec.replicas = 1",
        "kubectl-set changed deployment/web",
        "kubectl-create created rolebinding/viewers",
        "someone deleted resourcequota/pods",
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(want)),
            "{want} not in {lines:#?}"
        );
    }
    assert!(
        seen.iter()
            .find(|c| c.object == "deployment/web")
            .unwrap()
            .fault_object
    );
}
