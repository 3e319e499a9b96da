//! `just bench` in one short round on the e2e cluster, so that it cannot
//! rot: every part runs, every tool's round must succeed, and the summary
//! must hold figures for each. The figures of this run mean nothing (dev
//! profile, one round); BENCHMARKS.md holds the measured ones.

use std::process::Command;

use breakfix::cluster::KindCluster;

use crate::support;

#[test]
fn bench_runs_one_round_of_every_part_and_reports_it() {
    let name = support::cluster_name();
    let cluster = KindCluster::recorded(&name)
        .unwrap_or_else(|| panic!("no kind cluster `{name}` made by breakfix; run `just cluster`"));
    let out_dir = tempfile::tempdir().unwrap();
    let repo = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("bash")
        .arg(format!("{repo}/scripts/bench.sh"))
        .current_dir(repo)
        .env("BREAKFIX_CLUSTER", &name)
        .env("BENCH_KUBECONFIG", &cluster.kubeconfig)
        .env("BENCH_OUT", out_dir.path())
        .env("BENCH_SAMPLES", "4")
        .env("BENCH_REPEAT", "1")
        .env("BENCH_ROUNDS", "1")
        .env("BENCH_PROFILE", "dev")
        .env("BENCH_WAIT_E2E", "0")
        // As `just bench` exports it: it must not clash with --context.
        .env("BREAKFIX_WORKERS", "0")
        .output()
        .unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{log}");
    let results = std::fs::read_to_string(out_dir.path().join("results.md")).unwrap();
    assert!(!results.contains("no valid round"), "{results}");
    assert!(!results.contains("failed to run"), "{results}");
    for section in ["(a) Harness latency", "(a′)", "(b, c)"] {
        assert!(results.contains(section), "{section} missing:\n{results}");
    }
    let breakfix_round = results
        .lines()
        .find(|l| l.starts_with("| breakfix | 1 |"))
        .unwrap_or_else(|| panic!("no breakfix round:\n{results}"));
    assert!(
        breakfix_round.contains("| passed | 0 |"),
        "{breakfix_round}"
    );
}
