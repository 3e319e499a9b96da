//! The breakfix binary where no cluster is needed: `cluster down` on names
//! breakfix did not create, and `--all` with nothing recorded.

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
