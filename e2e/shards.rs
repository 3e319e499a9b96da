//! A suite split across two "CI runners" (`run --partition count:i/2`) on
//! the kind cluster, joined by `report merge`: every experiment ran in
//! exactly one shard, the merged verdicts are the unsharded run's, and
//! `compare` of the unsharded run against the merged one finds no
//! regression.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn breakfix(journal: &Path, args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_breakfix"))
        .args(args)
        .env("BREAKFIX_JOURNAL_DIR", journal)
        .current_dir(repo())
        .output()
        .expect("breakfix runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Two quick experiments on the shop baseline.
const SUITE: [&str; 2] = ["experiments/pod-kill.yaml", "experiments/image-typo.yaml"];

fn run(dir: &Path, partition: Option<&str>, json: &Path) -> Output {
    let mut args: Vec<String> = vec!["run".into()];
    args.extend(SUITE.iter().map(|s| s.to_string()));
    args.extend([
        "--cluster-name".into(),
        support::cluster_name(),
        "--reuse".into(),
        "--keep".into(),
        "--json".into(),
        json.display().to_string(),
    ]);
    if let Some(p) = partition {
        args.extend(["--partition".into(), p.into()]);
    }
    breakfix(dir, &args)
}

fn verdicts(path: &Path) -> Vec<(String, String, Vec<bool>)> {
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("a report")).expect("JSON");
    let mut v: Vec<(String, String, Vec<bool>)> = report["experiments"]
        .as_array()
        .expect("experiments")
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap_or_default().to_string(),
                e["outcome"].as_str().unwrap_or_default().to_string(),
                e["slos"]
                    .as_array()
                    .expect("slos")
                    .iter()
                    .map(|s| s["met"].as_bool().unwrap_or_default())
                    .collect(),
            )
        })
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn shards_merge_into_the_unsharded_verdicts_and_compare_clean() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let d = dir.path();
    let whole = d.join("whole.json");
    let out = run(d, None, &whole);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let mut shards = Vec::new();
    for shard in 1..=2 {
        let json = d.join(format!("shard-{shard}.json"));
        let p = format!("count:{shard}/2");
        let out = run(d, Some(&p), &json);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert!(
            text(&out).contains(&format!("shard {p} takes 1 of 2 experiment(s)")),
            "{}",
            text(&out)
        );
        assert_eq!(verdicts(&json).len(), 1, "one experiment per shard");
        shards.push(json);
    }

    let merged = d.join("merged.json");
    let mut args: Vec<String> = vec!["report".into(), "merge".into()];
    args.extend(shards.iter().map(|p| p.display().to_string()));
    args.extend(["--json".into(), merged.display().to_string()]);
    let out = breakfix(d, &args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out)
            .contains("merged 2 reports (count shards 1, 2 of 2) into 2 experiments: 2 passed"),
        "{}",
        text(&out)
    );
    assert_eq!(verdicts(&merged), verdicts(&whole));

    let comparison = d.join("comparison.json");
    let out = breakfix(
        d,
        &[
            "compare".into(),
            whole.display().to_string(),
            merged.display().to_string(),
            "--json".into(),
            comparison.display().to_string(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let c: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&comparison).expect("written"))
            .expect("JSON");
    for e in c["experiments"].as_array().expect("experiments") {
        assert!(
            ["unchanged", "erratic"].contains(&e["change"].as_str().unwrap_or_default()),
            "{e}"
        );
    }
}
