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

/// Writes the scenario for namespace `ns` under `dir` and returns the
/// experiment file.
fn scenario(dir: &Path, ns: &str) -> PathBuf {
    let baseline = dir.join("baseline");
    std::fs::create_dir_all(baseline.join("manifests")).unwrap();
    std::fs::write(
        baseline.join("manifests/objects.yaml"),
        support::QUOTA_BASELINE,
    )
    .unwrap();
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
    for doc in support::QUOTA_BASELINE.split("---") {
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

/// Where the screenshot of the facilitator's page goes: the file named by
/// `BREAKFIX_GAMEDAY_SCREENSHOT` (docs/gameday-live.png is one), else a
/// temporary folder.
fn screenshot_path(dir: &Path) -> PathBuf {
    std::env::var_os("BREAKFIX_GAMEDAY_SCREENSHOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.join("gameday-live.png"))
}

#[tokio::test]
async fn the_live_page_in_a_real_browser_follows_the_responders_and_gives_teams_no_controls() {
    use fantoccini::Locator;

    let ns = testkit::namespace("gameday-browser").await;
    let dir = tempfile::tempdir().unwrap();
    let exp = load_experiment(&scenario(dir.path(), &ns.name)).unwrap();
    let game = GameDay::builder(ns.client.clone(), exp)
        .cluster(cluster(dir.path()))
        .teams(["blue", "red"])
        .timebox(Duration::from_secs(300))
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
    let play = tokio::spawn(game.run());
    let browser = crate::browser::Browser::start().await;
    until(&handle, Duration::from_secs(90), |s| {
        s.teams.iter().all(|t| t.marks.harness_detected.is_some())
    })
    .await;
    let state = handle.state();
    assert_ne!(
        state.teams[0].namespace, state.teams[1].namespace,
        "each team plays its own copy"
    );
    let blue_kubeconfig = state.teams[0]
        .kubeconfig
        .clone()
        .expect("blue's kubeconfig");
    let red_kubeconfig = state.teams[1].kubeconfig.clone().expect("red's kubeconfig");

    // Red's access stops at its own copy.
    let across = kubectl(
        &red_kubeconfig,
        &["get", "deployments", "-n", &state.teams[0].namespace],
    )
    .await;
    assert!(!across.status.success(), "red must not read blue's copy");

    // A team's page: its own round, a declaration form, no controls.
    let c = &browser.client;
    c.goto(&format!("{url}/team/blue?token={}", tokens.teams["blue"]))
        .await
        .unwrap();
    browser.until_text("#team-blue", "blue").await;
    assert_eq!(browser.count("#stop").await, 0, "a team has no stop button");
    assert_eq!(browser.count("button.stop").await, 0);
    assert_eq!(browser.count("button.hint").await, 0, "nor hint buttons");
    assert_eq!(browser.count("#team-red").await, 0, "nor other teams");
    assert_eq!(browser.count("form#declare").await, 1);
    c.find(Locator::Css("#text"))
        .await
        .unwrap()
        .send_keys("web has fewer pods than it asks for")
        .await
        .unwrap();
    c.find(Locator::Css("form#declare button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .until_text("#team-blue li.declared", "fewer pods")
        .await;

    // The facilitator's page: every team, the controls.
    c.goto(&format!("{url}/?token={}", tokens.facilitator))
        .await
        .unwrap();
    browser.until_text("#team-red", "red").await;
    assert_eq!(browser.count("#stop").await, 1, "the facilitator can stop");
    browser
        .until_text("#team-blue li.declared", "fewer pods")
        .await;
    assert!(
        browser
            .count("#team-blue li.signal, #team-blue li.detected")
            .await
            > 0,
        "breakfix's observations are on the facilitator's timeline"
    );

    // A responder's kubectl change lands: the timeline follows, live.
    let fixed = kubectl(
        &blue_kubeconfig,
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
    let change = browser
        .until_text("#team-blue li.change", "kubectl-patch")
        .await;
    assert!(change.contains("deployment/web"), "{change}");
    browser.until_text("#team-blue li.fixed", "").await;

    // The facilitator's hint button, for the team still playing.
    c.find(Locator::Css("button.hint[data-team=red]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .until_text("#team-red li.hint", "ReplicaSet's events")
        .await;
    browser
        .until_text("#scoreboard tr[data-team=blue] .status", "fixed")
        .await;
    let png = c.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    std::fs::write(screenshot_path(dir.path()), &png).unwrap();

    // The stop button (it asks first): red's round ends, breakfix reverts.
    c.find(Locator::Css("#stop"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.accept_alert().await.unwrap();
    let report = match tokio::time::timeout(Duration::from_secs(90), play).await {
        Ok(r) => r.unwrap(),
        Err(_) => panic!("the game day did not end: {:#?}", handle.state().teams),
    };
    browser.close().await;
    shutdown.cancel();
    let _ = served.await;
    assert_eq!(report.teams[0].end, Some(RoundEnd::Fixed));
    assert!(
        matches!(&report.teams[1].end, Some(RoundEnd::Stopped { reason }) if reason.contains("page")),
        "{:?}",
        report.teams[1].end
    );
    assert!(
        report.teams[1]
            .entries
            .iter()
            .any(|e| matches!(&e.kind, EntryKind::Reverted { .. })),
        "breakfix reverted red's copy: {:#?}",
        report.teams[1].entries
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
async fn a_game_day_killed_mid_round_is_undone_by_cleanup() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::Namespace;
    use kube::Api;

    let ns = testkit::namespace("gameday-kill").await;
    let dir = tempfile::tempdir().unwrap();
    let file = scenario(dir.path(), &ns.name);
    let cp = testkit::control_plane();
    let kubeconfig = support::kubeconfig(dir.path(), &cp.url, cp.admin_token());
    let journal_dir = dir.path().join("journal");
    let breakfix = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_breakfix"));
        cmd.args(args)
            .env("BREAKFIX_JOURNAL_DIR", &journal_dir)
            .env("BREAKFIX_STATE_DIR", dir.path().join("state"));
        cmd
    };
    let out = dir.path().join("out");
    let mut child = breakfix(&[
        "gameday",
        file.to_str().unwrap(),
        "--team",
        "blue",
        "--team",
        "red",
        "--timebox",
        "10m",
        "--serve",
        "127.0.0.1:0",
        "--context",
        "testkit",
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // Read its progress until both faults are in.
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let mut seen = Vec::new();
    let mut injected = 0;
    while injected < 2 {
        match lines.next() {
            Some(Ok(line)) => {
                injected += usize::from(line.contains("injected:"));
                seen.push(line);
            }
            _ => panic!(
                "breakfix gameday ended before injecting: {:?}\n{}",
                child.wait(),
                seen.join("\n")
            ),
        }
    }
    std::thread::spawn(move || for _ in lines {});
    let status = Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    child.wait().unwrap();

    // The copies are there, each with its fault in.
    let namespaces: Api<Namespace> = Api::all(ns.client.clone());
    let copies: Vec<String> = namespaces
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .filter(|n| n.starts_with(&format!("{}-bf-", ns.name)))
        .collect();
    assert_eq!(copies.len(), 2, "a copy per team: {copies:?}");
    for copy in &copies {
        let web: Deployment = Api::namespaced(ns.client.clone(), copy)
            .get("web")
            .await
            .unwrap();
        assert_eq!(
            web.spec.and_then(|s| s.replicas),
            Some(2),
            "the fault is still in {copy} after SIGKILL"
        );
    }

    let cleanup = breakfix(&["cleanup"]).output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&cleanup.stdout),
        String::from_utf8_lossy(&cleanup.stderr)
    );
    assert!(cleanup.status.success(), "{said}");
    assert!(
        said.contains("deployment/web"),
        "the fault reverted: {said}"
    );
    for copy in &copies {
        let Some(uid) = namespaces
            .get_opt(copy)
            .await
            .unwrap()
            .and_then(|n| n.metadata.uid)
        else {
            continue;
        };
        let gone = kube::runtime::wait::await_condition(
            namespaces.clone(),
            copy,
            kube::runtime::wait::conditions::is_deleted(&uid),
        );
        tokio::time::timeout(Duration::from_secs(60), gone)
            .await
            .unwrap_or_else(|_| panic!("copy {copy} not deleted by cleanup: {said}"))
            .unwrap();
    }
    for entry in std::fs::read_dir(&journal_dir).unwrap() {
        let journal = JournalState::read(&entry.unwrap().path()).unwrap();
        assert!(journal.pending.is_empty(), "{journal:?}");
    }
}
