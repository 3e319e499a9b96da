//! The breakfix binary where no cluster is needed: `cluster down` on names
//! breakfix did not create, and `--all` with nothing recorded; `run
//! --partition` input checks and empty shards; `--jobs` refused before
//! any cluster is touched; `compare` and `report merge` on stored reports;
//! `validate` on the built-in experiments and on conditions that are not
//! valid CEL.

use std::process::{Command, Output};

/// `breakfix ARGS` with its own empty state directory (cluster registry, journals).
fn breakfix(args: &[&str]) -> (Output, tempfile::TempDir) {
    let state = tempfile::tempdir().expect("a temporary state directory");
    let out = Command::new(env!("CARGO_BIN_EXE_breakfix"))
        .args(args)
        .env("BREAKFIX_STATE_DIR", state.path())
        .output()
        .expect("breakfix runs");
    (out, state)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn cluster_down_all_with_nothing_recorded_says_so_and_succeeds() {
    let (out, _state) = breakfix(&["cluster", "down", "--all"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "no clusters created by breakfix");
}

#[test]
fn cluster_down_refuses_a_cluster_breakfix_did_not_create() {
    let (out, _state) = breakfix(&["cluster", "down", "somebody-elses"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("breakfix did not create a cluster named `somebody-elses`"),
        "stderr: {err}"
    );
}

#[test]
fn cluster_down_with_names_and_all_is_a_usage_error() {
    let (out, _state) = breakfix(&["cluster", "down", "--all", "breakfix"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot be used with"),
        "stderr: {}",
        stderr(&out)
    );
}

/// The sample report (docs/samples), as `run --json` writes it.
fn sample_report() -> serde_json::Value {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/samples/run-report.json"),
    )
    .expect("the sample report");
    serde_json::from_str(&text).expect("valid JSON")
}

fn write_json(dir: &std::path::Path, name: &str, value: &serde_json::Value) -> String {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(value).expect("encodes")).expect("writes");
    path.display().to_string()
}

mod durations_from {
    use super::*;

    #[test]
    fn a_file_that_is_not_a_report_exits_2_naming_line_and_column_before_any_cluster() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let bad = dir.path().join("suite.json");
        std::fs::write(&bad, "{\n  \"schema\": oops\n}\n").expect("write");
        let bad = bad.display().to_string();
        let (out, _state) =
            breakfix(&["run", "experiments/pod-kill.yaml", "--durations-from", &bad]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.starts_with(&format!("error: {bad}:2:13: not a breakfix JSON report")),
            "{err}"
        );
        assert!(
            err.contains("= help: pass the file `breakfix run --json` wrote"),
            "{err}"
        );
        assert!(!err.contains("getting a cluster"), "{err}");
    }

    #[test]
    fn a_report_from_an_earlier_run_is_read_before_the_shard_is_taken() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let json = dir.path().join("empty.json");
        let json = json.display().to_string();
        // A shard pod-kill does not fall in: it takes nothing, timed by a stored report.
        let shard = (1..=40)
            .find(|&i| breakfix::runner::partition::hash_shard("pod-kill", 40) != i)
            .expect("an empty shard");
        let (out, _state) = breakfix(&[
            "run",
            "experiments/pod-kill.yaml",
            "--partition",
            &format!("hash:{shard}/40"),
            "--durations-from",
            "tests/fixtures/reports/same-build-1.json",
            "--json",
            &json,
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert!(
            stderr(&out)
                .contains("longest first, as timed in tests/fixtures/reports/same-build-1.json ("),
            "{}",
            stderr(&out)
        );
    }
}

mod partition {
    use super::*;

    #[test]
    fn bad_partitions_exit_2_with_one_line_before_touching_anything() {
        for bad in ["3/2", "count:3/2", "hash:0/4", "x:1/2", "count:1/0"] {
            let (out, _state) = breakfix(&["run", "experiments/", "--partition", bad]);
            assert_eq!(out.status.code(), Some(2), "{bad}: {}", stderr(&out));
            let err = stderr(&out);
            assert_eq!(err.lines().count(), 1, "{bad}: {err}");
            assert!(
                err.starts_with(&format!("error: invalid partition `{bad}`: ")),
                "{err}"
            );
            assert!(stdout(&out).is_empty());
        }
    }

    #[test]
    fn a_shard_with_no_experiments_writes_an_empty_report_without_a_cluster() {
        // One experiment over many hash shards: most shards are empty.
        let dir = tempfile::tempdir().expect("a temp dir");
        let file = "experiments/pod-kill.yaml";
        let mut empty = None;
        for shard in 1..=5 {
            let json = dir.path().join(format!("shard-{shard}.json"));
            let p = format!("hash:{shard}/5");
            if breakfix::runner::partition::hash_shard("pod-kill", 5) == shard {
                continue;
            }
            let (out, _state) = breakfix(&[
                "run",
                file,
                "--partition",
                &p,
                "--json",
                json.to_str().expect("utf-8"),
            ]);
            assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
            assert!(
                stderr(&out).contains(&format!("shard {p} takes 0 of 1 experiment(s)")),
                "{}",
                stderr(&out)
            );
            empty = Some(json);
        }
        let json = empty.expect("an empty shard");
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(json).expect("written")).expect("JSON");
        assert_eq!(report["experiments"], serde_json::json!([]));
        assert_eq!(report["cluster"]["provider"], "none");
    }
}

mod compare {
    use super::*;

    #[test]
    fn the_same_report_twice_has_no_regression_but_an_error_side_exits_1() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let a = write_json(dir.path(), "a.json", &sample_report());
        let (out, _state) = breakfix(&["compare", &a, &a]);
        // The sample's rbac-binding errored: it cannot be compared.
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let text = stdout(&out);
        assert!(text.contains("1 error, 2 unchanged"), "{text}");
        assert!(!text.contains("REGRESSION"), "{text}");
    }

    #[test]
    fn a_clean_pair_exits_0_and_writes_every_format() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let mut r = sample_report();
        r["experiments"]
            .as_array_mut()
            .expect("experiments")
            .retain(|e| e["outcome"] != "error");
        let a = write_json(dir.path(), "a.json", &r);
        let md = dir.path().join("c.md");
        let json = dir.path().join("c.json");
        let html = dir.path().join("c.html");
        let (out, _state) = breakfix(&[
            "compare",
            &a,
            &a,
            "--markdown",
            md.to_str().expect("utf-8"),
            "--json",
            json.to_str().expect("utf-8"),
            "--html",
            html.to_str().expect("utf-8"),
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let md = std::fs::read_to_string(md).expect("markdown written");
        assert!(
            md.starts_with("## ✅ breakfix compare: 2 unchanged"),
            "{md}"
        );
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(json).expect("json written"))
                .expect("JSON");
        assert_eq!(json["schema"], "breakfix.dev/comparison/v1");
        assert!(
            std::fs::read_to_string(html)
                .expect("html written")
                .starts_with("<!DOCTYPE html>")
        );
    }

    #[test]
    fn bad_input_exits_2_and_says_what_to_do() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let good = write_json(dir.path(), "good.json", &sample_report());
        let mut old = sample_report();
        old["schema"] = "breakfix.dev/report/v0".into();
        let old = write_json(dir.path(), "old.json", &old);
        let junit = dir.path().join("run.xml");
        std::fs::write(&junit, "<testsuites/>").expect("writes");
        let cases = [
            (
                vec!["compare", good.as_str(), "/nonexistent/after.json"],
                "error: cannot read /nonexistent/after.json: ",
            ),
            (
                vec!["compare", old.as_str(), good.as_str()],
                "has report schema `breakfix.dev/report/v0`; this breakfix reads `breakfix.dev/report/v1`",
            ),
            (
                vec!["compare", good.as_str(), junit.to_str().expect("utf-8")],
                "run.xml:1:1: not a breakfix JSON report: expected value",
            ),
        ];
        for (args, expected) in cases {
            let (out, _state) = breakfix(&args);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
            let err = stderr(&out);
            assert!(err.contains(expected), "{args:?}: {err}");
            assert!(err.contains("  = help: "), "{err}");
        }
    }
}

mod merge {
    use super::*;

    #[test]
    fn shards_merge_into_the_unsharded_verdicts() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let whole = sample_report();
        let mut files = Vec::new();
        for shard in 1..=2u32 {
            let p: breakfix::runner::partition::Partition =
                format!("count:{shard}/2").parse().expect("valid");
            let mut r = whole.clone();
            let experiments = r["experiments"].as_array().expect("experiments").clone();
            r["experiments"] = serde_json::Value::Array(
                p.select(experiments, |e| e["name"].as_str().expect("a name")),
            );
            r["partition"] = p.to_string().into();
            r["runId"] = format!("run-{shard}").into();
            files.push(write_json(dir.path(), &format!("shard-{shard}.json"), &r));
        }
        let merged = dir.path().join("all.json");
        let junit = dir.path().join("all.xml");
        let mut args = vec!["report", "merge"];
        args.extend(files.iter().map(String::as_str));
        args.extend([
            "--json",
            merged.to_str().expect("utf-8"),
            "--junit",
            junit.to_str().expect("utf-8"),
        ]);
        let (out, _state) = breakfix(&args);
        // The sample has a failure: the merged report exits like the run.
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(
            stderr(&out).contains(
                "merged 2 reports (count shards 1, 2 of 2) into 3 experiments: 1 passed, 1 failed, 1 errored"
            ),
            "{}",
            stderr(&out)
        );
        let merged: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(merged).expect("written")).expect("JSON");
        let verdicts = |r: &serde_json::Value| {
            let mut v: Vec<(String, String)> = r["experiments"]
                .as_array()
                .expect("experiments")
                .iter()
                .map(|e| (e["name"].to_string(), e["outcome"].to_string()))
                .collect();
            v.sort();
            v
        };
        assert_eq!(verdicts(&merged), verdicts(&whole));
        assert_eq!(merged["shards"].as_array().map(Vec::len), Some(2));
        assert!(junit.exists());
    }

    #[test]
    fn the_same_shard_twice_is_refused() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let mut r = sample_report();
        r["partition"] = "hash:1/2".into();
        let a = write_json(dir.path(), "a.json", &r);
        let b = write_json(dir.path(), "b.json", &r);
        let (out, _state) = breakfix(&["report", "merge", &a, &b]);
        assert_eq!(out.status.code(), Some(2));
        assert!(
            stderr(&out).contains("are both shard hash:1/2: pass each shard's report once"),
            "{}",
            stderr(&out)
        );
    }

    #[test]
    fn report_still_renders_a_single_file() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let a = write_json(dir.path(), "a.json", &sample_report());
        let (out, _state) = breakfix(&["report", &a]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(stdout(&out).contains("EXPERIMENT"), "{}", stdout(&out));
    }
}

#[test]
fn the_built_in_experiments_validate() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/experiments");
    let (out, _state) = breakfix(&["validate", dir]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert!(stdout(&out).contains("(cron-job-storm-quota, cronJobStorm)"));
}

/// An experiment on the built-in shop baseline with `fault` (indented
/// under `fault:`) and `slo` lines added under `slo:`.
fn experiment_on_shop(dir: &std::path::Path, fault: &str, slo: &str) -> String {
    let baseline = concat!(env!("CARGO_MANIFEST_DIR"), "/experiments/baselines/shop");
    let path = dir.join("names.yaml");
    let text = format!(
        "apiVersion: breakfix.dev/v1alpha1
kind: Experiment
metadata: {{name: names}}
spec:
  baseline: {baseline}
  fault:
{fault}
  slo:
    detectWithin: 30s
    recoverWithin: 60s
{slo}
"
    );
    std::fs::write(&path, text).expect("an experiment file");
    path.display().to_string()
}

/// What an experiment names must be in its baseline: a typo is refused
/// without a cluster, at the line and column that names it, with the
/// names the baseline has; the control (the right name) validates.
#[rstest::rstest]
#[case::fault_target(
    "    imageTypo:\n      target: {namespace: shop, deployment: nope}",
    "",
    ":8:7",
    "deployment/nope -n shop is not in the manifests of baseline `shop`; its Deployments in namespace shop: "
)]
#[case::the_secret_a_fault_takes_away(
    "    missingMount:\n      target: {namespace: shop, deployment: web}\n      object: {kind: Secret, name: creds}",
    "",
    ":9:7",
    "secret/creds -n shop is not in the manifests of baseline `shop`; it has no Secret in namespace shop"
)]
#[case::a_step(
    "    steps:\n      - scale: {target: {kind: Deployment, namespace: shop, name: web}, replicas: 0}\n      - waitFor: 5s\n      - podKill: {target: {namespace: shop, deployment: wbe}}",
    "",
    ":10:9",
    "deployment/wbe -n shop is not in the manifests"
)]
#[case::an_slo_condition(
    "    podKill: {target: {namespace: shop, deployment: web}}",
    "    conditions:\n      - name: ready\n        object: {apiVersion: apps/v1, kind: Deployment, name: webb}\n        expression: object.status.readyReplicas >= 1",
    ":12:9",
    "deployment/webb -n shop is not in the manifests"
)]
#[case::a_canary_the_fault_reads(
    "    rbacBindingDelete:\n      binding: {kind: RoleBinding, name: reader, namespace: shop}\n      workload: {namespace: shop, selector: app=nobody}",
    "",
    ":9:7",
    "no pod template of baseline `shop` in namespace shop has labels matching `app=nobody`"
)]
fn a_name_the_baseline_does_not_have_is_refused_where_it_is_written(
    #[case] fault: &str,
    #[case] slo: &str,
    #[case] at: &str,
    #[case] says: &str,
) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let file = experiment_on_shop(dir.path(), fault, slo);
    let (out, _state) = breakfix(&["validate", &file]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert!(err.contains(&format!("--> {file}{at}")), "stderr: {err}");
    assert!(err.contains(says), "stderr: {err}");
    assert!(err.contains("nothing was run"), "stderr: {err}");
}

#[test]
fn the_names_the_baseline_has_validate() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let file = experiment_on_shop(
        dir.path(),
        "    imageTypo:\n      target: {namespace: shop, deployment: web}",
        "    conditions:\n      - name: ready\n        object: {apiVersion: apps/v1, kind: Deployment, name: web}\n        expression: object.status.readyReplicas >= 1",
    );
    let (out, _state) = breakfix(&["validate", &file]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
}

/// An experiment on the built-in shop baseline with `conditions` as given.
fn experiment_with_conditions(dir: &std::path::Path, conditions: &str) -> String {
    let baseline = concat!(env!("CARGO_MANIFEST_DIR"), "/experiments/baselines/shop");
    let path = dir.join("cel.yaml");
    let text = format!(
        "apiVersion: breakfix.dev/v1alpha1
kind: Experiment
metadata: {{name: cel}}
spec:
  baseline: {baseline}
  fault:
    podKill: {{target: {{namespace: shop, deployment: web}}}}
  recovery: selfHeal
  slo:
    detectWithin: 5s
    recoverWithin: 45s
    conditions:
{conditions}
"
    );
    std::fs::write(&path, text).expect("an experiment file");
    path.display().to_string()
}

#[rstest::rstest]
#[case::syntax(
    "      - name: web-ready\n        object: {apiVersion: apps/v1, kind: Deployment, name: web}\n        expression: object.status.readyReplicas >== 2",
    ":15:51",
    "CEL: token recognition error"
)]
#[case::old_path_syntax(
    "      - name: web-ready\n        object: {apiVersion: apps/v1, kind: Deployment, name: web}\n        expression: .status.readyReplicas >= 2",
    ":15:21",
    "unknown name `.status`"
)]
#[case::second_condition(
    "      - name: a\n        object: {apiVersion: v1, kind: ConfigMap, name: a}\n        expression: has(object.data)\n      - name: b\n        object: {apiVersion: v1, kind: ConfigMap, name: b}\n        expression: object.data.x == 'y' && len(object.data) > 1",
    ":18:45",
    "no function `len`"
)]
#[case::old_key(
    "      - name: web-ready\n        object: {apiVersion: apps/v1, kind: Deployment, name: web}\n        expr: .status.readyReplicas >= 2",
    ":15:9",
    "unknown field `expr`"
)]
fn a_condition_that_is_not_valid_cel_is_refused_at_its_line_and_column(
    #[case] conditions: &str,
    #[case] at: &str,
    #[case] says: &str,
) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let file = experiment_with_conditions(dir.path(), conditions);
    let (out, _state) = breakfix(&["validate", &file]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert!(err.contains(&format!("--> {file}{at}")), "stderr: {err}");
    assert!(err.contains(says), "stderr: {err}");
}

/// A git repository with one commit holding an empty experiments folder.
fn git_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary folder");
    std::fs::create_dir(dir.path().join("experiments")).unwrap();
    std::fs::write(dir.path().join("experiments/README"), "x").unwrap();
    for args in [
        &["init", "--quiet", "--initial-branch=main"][..],
        &[
            "-c",
            "user.email=t@example.com",
            "-c",
            "user.name=t",
            "add",
            ".",
        ],
        &[
            "-c",
            "user.email=t@example.com",
            "-c",
            "user.name=t",
            "commit",
            "--quiet",
            "-m",
            "one",
        ],
    ] {
        let ok = Command::new("git")
            .arg("-C")
            .arg(dir.path())
            .args(args)
            .status()
            .unwrap()
            .success();
        assert!(ok, "git {args:?}");
    }
    dir
}

/// `breakfix diff ARGS` run inside `repo`.
fn diff_in(repo: &std::path::Path, args: &[&str]) -> Output {
    let state = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_breakfix"))
        .current_dir(repo)
        .arg("diff")
        .args(args)
        .env("BREAKFIX_STATE_DIR", state.path())
        .env("BREAKFIX_JOURNAL_DIR", state.path())
        .output()
        .expect("breakfix runs")
}

#[test]
fn diff_with_an_unknown_base_says_in_one_line_what_to_do() {
    let repo = git_repo();
    let out = diff_in(repo.path(), &["experiments/", "--base", "origin/nope"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("`origin/nope` is not a commit"), "{err}");
    assert!(err.contains("git fetch origin nope"), "{err}");
}

#[test]
fn diff_outside_a_repository_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("experiments")).unwrap();
    let out = diff_in(dir.path(), &["experiments/", "--base", "main"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("not inside a git repository"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn diff_with_a_bad_migration_threshold_is_a_usage_error() {
    let repo = git_repo();
    let out = diff_in(
        repo.path(),
        &[
            "experiments/",
            "--base",
            "main",
            "--migration-availability",
            "150%",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("not a percentage"),
        "{}",
        stderr(&out)
    );
}

/// An experiment from the built-in suite.
fn experiment(name: &str) -> String {
    format!("{}/experiments/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn gameday_refuses_bad_input_before_touching_any_cluster() {
    let rbac = experiment("rbac-rolebinding-delete.yaml");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port_in_use = taken.local_addr().unwrap().to_string();
    for (args, message) in [
        (vec!["gameday"], "name the experiment to play"),
        (
            vec!["gameday", rbac.as_str(), "--timebox", "0s"],
            "--timebox 0s",
        ),
        (
            vec!["gameday", rbac.as_str(), "--teams", "0"],
            "at least one team",
        ),
        (
            vec!["gameday", rbac.as_str(), "--serve", port_in_use.as_str()],
            "cannot listen on",
        ),
        (
            vec!["gameday", rbac.as_str(), "--team", "blue", "--team", "blue"],
            "team name `blue` is used twice",
        ),
        (
            vec!["gameday", rbac.as_str(), "--team", "Blue Team"],
            "not usable",
        ),
    ] {
        let (out, _state) = breakfix(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(message), "{args:?}: {}", stderr(&out));
        assert!(
            !stderr(&out).contains("getting a cluster"),
            "{args:?} went on to a cluster: {}",
            stderr(&out)
        );
    }
}

#[test]
fn gameday_controls_without_a_running_game_day_say_how_to_reach_one() {
    let (out, _state) = breakfix(&["gameday", "declare", "--team", "blue", "detected"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no running game day found"),
        "{}",
        stderr(&out)
    );
    let (out, _state) = breakfix(&[
        "gameday",
        "status",
        "--server",
        "http://127.0.0.1:9",
        "--token",
        "x",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot reach the game day"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_built_in_game_day_scenarios_validate() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/experiments/gameday");
    let (out, _state) = breakfix(&["validate", dir]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    for scenario in ["pos-down", "payments-slow"] {
        assert!(stdout(&out).contains(scenario), "{}", stdout(&out));
    }
}

#[rstest::rstest]
#[case::zero(
    "0",
    "0 jobs would run nothing; give 1 (one at a time), more, or `auto`"
)]
#[case::not_a_number("many", "`many` is not a number of jobs")]
fn run_refuses_a_number_of_jobs_that_runs_nothing(#[case] jobs: &str, #[case] why: &str) {
    let (out, _state) = breakfix(&["run", "experiments/", "--jobs", jobs]);
    assert_eq!(out.status.code(), Some(2), "stderr: {}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains(why), "stderr: {err}");
    assert!(
        !err.contains("getting a cluster"),
        "nothing was started: {err}"
    );
}

/// `--context` with `BREAKFIX_WORKERS` in the environment (as `just` exports
/// it): the environment's default yields to the flag instead of clashing
/// with it, and the run goes on to the cluster (absent here).
#[test]
fn context_with_breakfix_workers_set_is_not_a_conflict() {
    let state = tempfile::tempdir().expect("a temporary state directory");
    let kubeconfig = state.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters: []\nusers: []\ncontexts: []\n",
    )
    .unwrap();
    let experiment = concat!(env!("CARGO_MANIFEST_DIR"), "/experiments/image-typo.yaml");
    for workers in ["0", "2"] {
        let out = Command::new(env!("CARGO_BIN_EXE_breakfix"))
            .args(["run", experiment, "--context", "staging", "--kubeconfig"])
            .arg(&kubeconfig)
            .env("BREAKFIX_STATE_DIR", state.path())
            .env("BREAKFIX_WORKERS", workers)
            .output()
            .expect("breakfix runs");
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "stderr: {err}");
        assert!(!err.contains("cannot be used with"), "stderr: {err}");
        assert!(err.contains("no context `staging`"), "stderr: {err}");
        assert_eq!(
            err.contains("BREAKFIX_WORKERS=2 ignored"),
            workers == "2",
            "stderr: {err}"
        );
    }
}

#[test]
fn workers_flag_with_context_is_still_a_usage_error() {
    let (out, _state) = breakfix(&[
        "run",
        "experiments/image-typo.yaml",
        "--context",
        "staging",
        "--workers",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot be used with"),
        "stderr: {}",
        stderr(&out)
    );
}

#[test]
fn a_breakfix_workers_that_is_not_a_number_is_named() {
    let state = tempfile::tempdir().expect("a temporary state directory");
    let out = Command::new(env!("CARGO_BIN_EXE_breakfix"))
        .args(["cluster", "up", "--name", "never-made"])
        .env("BREAKFIX_STATE_DIR", state.path())
        .env("BREAKFIX_WORKERS", "two")
        .output()
        .expect("breakfix runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("BREAKFIX_WORKERS=two is not a number"),
        "stderr: {}",
        stderr(&out)
    );
}

/// `cleanup` on a folder holding a journal edited by hand and an old
/// finished one: the bad one is named with its line and nothing of it is
/// reverted (exit 2); the old finished one is removed by retention.
#[test]
fn cleanup_names_a_bad_journal_and_prunes_old_finished_ones() {
    let dir = tempfile::tempdir().expect("a temporary journal folder");
    let header = r#"{"record":"header","run_id":"R","cluster":{"provider":"kind","name":"gone"},"at":"2026-01-01T00:00:00Z","pid":1}"#;
    std::fs::write(
        dir.path().join("edited.jsonl"),
        format!(
            "{}\n{{\"record\":\"intent\",\"seq\":1,\"undo\":{{\"action\":\"reboot\"}}}}\n{{\"record\":\"finished\",\"at\":\"2026-01-01T00:00:01Z\"}}\n",
            header.replace("\"R\"", "\"edited\"")
        ),
    )
    .unwrap();
    let old = dir.path().join("old.jsonl");
    std::fs::write(
        &old,
        format!(
            "{}\n{{\"record\":\"finished\",\"at\":\"2026-01-01T00:00:01Z\"}}\n",
            header.replace("\"R\"", "\"old\"")
        ),
    )
    .unwrap();
    let forty_days = std::time::Duration::from_secs(40 * 24 * 3600);
    std::fs::File::options()
        .append(true)
        .open(&old)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - forty_days)
        .unwrap();

    let out = Command::new(env!("CARGO_BIN_EXE_breakfix"))
        .args(["cleanup", "--journal-dir"])
        .arg(dir.path())
        .output()
        .expect("breakfix runs");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert!(err.contains("edited.jsonl line 2 is not a record"), "{err}");
    assert!(
        err.contains("nothing was reverted from this journal"),
        "{err}"
    );
    assert!(!old.exists(), "the old finished journal is pruned");
    assert!(dir.path().join("edited.jsonl").exists());
    assert!(
        stdout(&out).contains("removed 1 finished journal(s) older than 30 days"),
        "{}",
        stdout(&out)
    );
}

/// Every stop signal ends a run the same orderly way, with the shell's
/// code for it: here while breakfix waits for a cluster that accepts
/// connections and never answers, before anything was injected.
#[rstest::rstest]
#[case::sigint("-INT", 130)]
#[case::sigterm("-TERM", 143)]
#[case::sighup("-HUP", 129)]
#[case::sigquit("-QUIT", 131)]
fn a_stop_signal_before_injection_exits_with_its_code(#[case] signal: &str, #[case] code: i32) {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in silent.incoming() {
            held.push(conn);
        }
    });
    let state = tempfile::tempdir().unwrap();
    let kubeconfig = state.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: silent\n  cluster: {{server: 'https://127.0.0.1:{port}', insecure-skip-tls-verify: true}}\nusers:\n- name: u\n  user: {{token: t}}\ncontexts:\n- name: silent\n  context: {{cluster: silent, user: u}}\n"
        ),
    )
    .unwrap();
    let experiment = concat!(env!("CARGO_MANIFEST_DIR"), "/experiments/image-typo.yaml");
    let mut child = Command::new(env!("CARGO_BIN_EXE_breakfix"))
        .args(["run", experiment, "--context", "silent", "--kubeconfig"])
        .arg(&kubeconfig)
        .env("BREAKFIX_STATE_DIR", state.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let waiting = line.contains("getting a cluster");
        seen.push(line);
        if waiting {
            break;
        }
    }
    // The signal handlers are installed before that line is printed.
    let sent = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    seen.extend(lines.map_while(Result::ok));
    let status = child.wait().unwrap();
    let text = seen.join("\n");
    assert_eq!(status.code(), Some(code), "{text}");
    assert!(
        text.contains("interrupted before any fault was injected"),
        "{text}"
    );
}
