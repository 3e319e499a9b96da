//! Experiments side by side on the kind cluster, through the binary: the
//! built-in suite four at a time gives the verdicts it gives one at a time,
//! with the experiments that break something shared (CoreDNS, the nodes'
//! capacity) running alone; and Ctrl-C with four experiments live reverts
//! all four, each from its own journal records.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use breakfix::journal::Record;
use breakfix::report::schedule;
use breakfix::runner::{Outcome, RunReport};
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::ListParams;

use crate::support;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn breakfix(journal: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_breakfix"));
    cmd.env("BREAKFIX_JOURNAL_DIR", journal)
        .env_remove("BREAKFIX_JOBS")
        .current_dir(repo());
    cmd
}

/// The journal of the one run in `dir`: its run id and records.
fn journal(dir: &Path) -> (String, Vec<Record>) {
    let file = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .unwrap_or_else(|| panic!("no journal in {}", dir.display()));
    let records: Vec<Record> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let run_id = match &records[0] {
        Record::Header { run_id, .. } => run_id.clone(),
        other => panic!("the journal starts with {other:?}"),
    };
    (run_id, records)
}

/// Per experiment in the journal: undos intended, and how many reverted.
fn undos(records: &[Record]) -> BTreeMap<String, (usize, usize)> {
    let mut owner = BTreeMap::new();
    let mut out = BTreeMap::<String, (usize, usize)>::new();
    for r in records {
        match r {
            Record::Intent {
                seq, experiment, ..
            } => {
                owner.insert(*seq, experiment.clone());
                out.entry(experiment.clone()).or_default().0 += 1;
            }
            Record::Reverted { seq, .. } => out.entry(owner[seq].clone()).or_default().1 += 1,
            _ => {}
        }
    }
    out
}

/// Namespaces the run `run_id` made that still exist (terminating ones count).
async fn namespaces_left(run_id: &str) -> Vec<String> {
    let api: Api<Namespace> = Api::all(support::client().await);
    api.list(&ListParams::default().labels(&format!("{}={run_id}", breakfix::RUN_LABEL)))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect()
}

#[tokio::test]
async fn the_suite_four_at_a_time_keeps_its_verdicts_and_runs_shared_faults_alone() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let out = breakfix(dir.path())
        .args(["run", "experiments/", "--cluster-name"])
        .arg(support::cluster_name())
        .args(["--reuse", "--jobs", "4", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: RunReport = serde_json::from_str(&std::fs::read_to_string(&json).unwrap())
        .unwrap_or_else(|e| panic!("{e}\n{text}"));

    // One at a time, every built-in experiment passes: so does it four at a time.
    let verdicts: Vec<(&str, Outcome)> = report
        .experiments
        .iter()
        .map(|e| (e.name.as_str(), e.outcome))
        .collect();
    let files = breakfix::experiment::collect_files(&[repo().join("experiments")]).unwrap();
    assert_eq!(verdicts.len(), files.len(), "{text}");
    for (name, outcome) in &verdicts {
        assert_eq!(*outcome, Outcome::Passed, "{name}\n{text}");
    }
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("up to 4 at once"), "the plan is said: {text}");
    assert!(
        text.contains("baseline instances deleted"),
        "the kept instances are deleted at the end: {text}"
    );

    // Side by side, except what breaks shared things: those ran alone.
    let spans = schedule::spans(&report);
    let peak = schedule::peak(&spans);
    assert!(
        (2..=4).contains(&peak),
        "at most 4 at once, and more than one: {peak}"
    );
    let alone: Vec<&str> = spans
        .iter()
        .filter(|s| s.alone.is_some())
        .map(|s| s.experiment.as_str())
        .collect();
    assert_eq!(alone, vec!["coredns-memory-squeeze", "cron-job-storm"]);
    for (i, s) in spans.iter().enumerate() {
        if s.alone.is_some() {
            let beside = schedule::overlapping(&spans, i);
            assert!(beside.is_empty(), "{} ran beside {beside:?}", s.experiment);
        }
    }
    // Each trial on an instance that no other trial held at the same time,
    // left for the next experiment on its baseline when it ended cleanly
    // (deleted at the end of the run), deleted at once otherwise; nothing
    // of the run is left, the journal is closed.
    for e in &report.experiments {
        let notes: Vec<&str> = e.trials[0]
            .timeline
            .entries
            .iter()
            .filter_map(|en| match &en.kind {
                breakfix::timeline::EntryKind::Note { message } => Some(message.as_str()),
                _ => None,
            })
            .collect();
        assert!(
            notes.iter().any(|n| n.starts_with("baseline instance in ")),
            "{}: {notes:?}",
            e.name
        );
        assert!(
            notes.iter().any(|n| n.starts_with("instance deleted: ")
                || n.starts_with("instance kept for the next experiment")),
            "{}: {notes:?}",
            e.name
        );
    }
    let (run_id, records) = journal(dir.path());
    assert!(matches!(records.last(), Some(Record::Finished { .. })));
    for (experiment, (intents, reverts)) in undos(&records) {
        assert_eq!(intents, reverts, "{experiment}");
    }
    assert_eq!(namespaces_left(&run_id).await, Vec::<String>::new());
}

/// Four image typos on the shop whose rollouts never report stalled (the
/// progress deadline is ten minutes), so every fault stays in until the
/// run is interrupted.
fn held_experiments(dir: &Path) -> PathBuf {
    let suite = dir.join("suite");
    std::fs::create_dir_all(&suite).unwrap();
    let copied = Command::new("cp")
        .arg("-r")
        .arg(repo().join("experiments/baselines"))
        .arg(&suite)
        .status()
        .unwrap();
    assert!(copied.success());
    let web = suite.join("baselines/shop/manifests/web.yaml");
    let text = std::fs::read_to_string(&web).unwrap();
    std::fs::write(
        &web,
        text.replace(
            "progressDeadlineSeconds: 30",
            "progressDeadlineSeconds: 600",
        ),
    )
    .unwrap();
    for i in 1..=4 {
        std::fs::write(
            suite.join(format!("held-{i}.yaml")),
            format!(
                "apiVersion: breakfix.dev/v1alpha1
kind: Experiment
metadata: {{name: held-{i}}}
spec:
  baseline: baselines/shop
  fault:
    imageTypo:
      target: {{namespace: shop, deployment: web}}
      typo: tag
  expect:
    signals: [RolloutStalled]
  slo: {{detectWithin: 60s, recoverWithin: 60s}}
  timeouts: {{detect: 10m}}
"
            ),
        )
        .unwrap();
    }
    suite
}

#[tokio::test]
async fn ctrl_c_with_four_experiments_live_reverts_all_four() {
    let dir = tempfile::tempdir().unwrap();
    let suite = held_experiments(dir.path());
    let journal_dir = dir.path().join("journal");
    let mut child = breakfix(&journal_dir)
        .arg("run")
        .arg(&suite)
        .arg("--cluster-name")
        .arg(support::cluster_name())
        .args(["--reuse", "--jobs", "4"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut injected = BTreeSet::new();
    let mut seen = Vec::new();
    while injected.len() < 4 {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some((name, _)) = line.split_once(" │ injected:") {
                    injected.insert(name.trim().to_string());
                }
                seen.push(line);
            }
            _ => panic!(
                "the run ended before four injections: {:?}\n{}",
                child.wait(),
                seen.join("\n")
            ),
        }
    }
    // Keep draining stderr so the child never blocks on a full pipe.
    let rest = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>());
    let (run_id, live) = journal(&journal_dir);
    let live = undos(&live);
    assert_eq!(live.len(), 4, "four experiments journaled: {live:?}");
    for (experiment, (intents, reverts)) in &live {
        assert!(intents > reverts, "{experiment} is in: {live:?}");
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let code = child.wait().unwrap().code();
    let rest = rest.join().unwrap();
    assert_eq!(code, Some(130), "{}", rest.join("\n"));

    let (_, records) = journal(&journal_dir);
    let done = undos(&records);
    assert_eq!(done.len(), 4, "{done:?}");
    for (experiment, (intents, reverts)) in &done {
        assert_eq!(
            intents, reverts,
            "{experiment} reverted every undo: {done:?}"
        );
    }
    assert!(matches!(records.last(), Some(Record::Finished { .. })));
    assert_eq!(namespaces_left(&run_id).await, Vec::<String>::new());
}
