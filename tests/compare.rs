//! `compare` on report pairs captured from real runs on a kind cluster
//! (tests/fixtures/reports/README.md says how they were made): two runs of
//! the same build show normal noise and no regression; a harmful
//! configuration change is flagged.

use std::path::{Path, PathBuf};

use breakfix::compare::{Change, CompareOptions, Comparison, compare, read_report};
use breakfix::runner::RunReport;
use breakfix::vocab::SignalKind;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/reports")
        .join(name)
}

fn load(name: &str) -> RunReport {
    read_report(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn compared(before: &str, after: &str) -> Comparison {
    compare(&load(before), &load(after), &CompareOptions::default()).expect("valid options")
}

fn change_of(c: &Comparison, experiment: &str) -> Change {
    c.experiments
        .iter()
        .find(|e| e.name == experiment)
        .unwrap_or_else(|| panic!("{experiment} compared"))
        .change
}

#[test]
fn the_captured_runs_are_real_repeated_runs() {
    for name in ["same-build-1.json", "same-build-2.json", "harmful.json"] {
        let r = load(name);
        assert_eq!(r.cluster.provider, "kind", "{name}");
        for e in &r.experiments {
            // A trial that never detects ends the experiment's repeats:
            // harmful.json's image-typo stopped after its first.
            let expected = if name == "harmful.json" && e.name == "image-typo" {
                1
            } else {
                5
            };
            assert_eq!(e.trials.len(), expected, "{name} {}", e.name);
            assert!(
                e.trials.iter().all(|t| t.marks.injected.is_some()),
                "{name} {}: every trial injected",
                e.name
            );
        }
    }
}

#[test]
fn two_runs_of_the_same_build_show_no_regression() {
    for (before, after) in [
        ("same-build-1.json", "same-build-2.json"),
        ("same-build-2.json", "same-build-1.json"),
    ] {
        let c = compared(before, after);
        assert!(
            !c.has_regressions(),
            "{before} → {after}:\n{}",
            breakfix::report::comparison::summary(&c)
        );
        assert_eq!(c.exit_code(), 0);
        assert_eq!(c.counts().improvements, 0, "nor an improvement");
        for e in &c.experiments {
            assert!(
                matches!(e.change, Change::Unchanged | Change::Erratic),
                "{}: {:?} {:?}",
                e.name,
                e.change,
                e.reasons
            );
        }
    }
}

#[test]
fn a_run_against_itself_is_unchanged_everywhere() {
    let c = compared("same-build-1.json", "same-build-1.json");
    assert_eq!(c.counts().unchanged, c.experiments.len());
}

#[test]
fn a_harmful_change_is_flagged_as_a_regression() {
    let c = compared("same-build-1.json", "harmful.json");
    assert!(c.has_regressions());
    assert_eq!(c.exit_code(), 1);
    assert_eq!(
        c.experiments[0].change,
        Change::Regression,
        "regressions come first"
    );

    // The readiness probe's delay slows pod-kill's recovery beyond the
    // noise of five trials, while its 45s SLO is still met: only the
    // noise rule can see it.
    let pod_kill = c
        .experiments
        .iter()
        .find(|e| e.name == "pod-kill")
        .expect("pod-kill");
    assert_eq!(
        pod_kill.change,
        Change::Regression,
        "{:?}",
        pod_kill.reasons
    );
    let recover = pod_kill
        .slos
        .iter()
        .find(|s| s.slo == "recoverWithin")
        .expect("recoverWithin");
    assert_eq!(recover.change, Change::Regression, "{}", recover.reason);
    assert!(recover.after.as_ref().is_some_and(|a| a.met), "still met");
    assert!(
        recover
            .reason
            .contains("beyond the noise (Mann-Whitney p = 0.008"),
        "{}",
        recover.reason
    );

    // imagePullPolicy: Never turns the typo into ErrImageNeverPull: the
    // signals the experiment expects no longer show.
    let typo = c
        .experiments
        .iter()
        .find(|e| e.name == "image-typo")
        .expect("image-typo");
    assert_eq!(typo.change, Change::Regression, "{:?}", typo.reasons);
    let gone = typo
        .signals
        .iter()
        .find(|s| s.signal == SignalKind::ErrImagePull)
        .expect("ErrImagePull compared");
    assert_eq!(gone.change, Change::Regression, "{}", gone.reason);
    assert_eq!((gone.before.shown, gone.after.shown), (5, 0));

    // The Service selector fault does not touch the pods: unchanged.
    assert!(
        matches!(
            change_of(&c, "selector-mismatch"),
            Change::Unchanged | Change::Erratic
        ),
        "{:?}",
        change_of(&c, "selector-mismatch")
    );
}

#[test]
fn undoing_the_harmful_change_is_an_improvement() {
    let c = compared("harmful.json", "same-build-2.json");
    assert!(
        !c.has_regressions(),
        "{}",
        breakfix::report::comparison::summary(&c)
    );
    assert_eq!(change_of(&c, "pod-kill"), Change::Improvement);
    assert_eq!(change_of(&c, "image-typo"), Change::Improvement);
}

#[test]
fn the_markdown_of_the_harmful_pair_leads_with_its_regressions() {
    let c = compared("same-build-1.json", "harmful.json");
    let md = breakfix::report::comparison::to_markdown(&c);
    assert!(
        md.starts_with("## ❌ breakfix compare: 2 regressions"),
        "{md}"
    );
    let regressions = md.find("### Regressions").expect("a regressions section");
    let folded = md.find("<details>").expect("details folded");
    assert!(regressions < folded, "{md}");
    assert!(md.contains("| pod-kill | `recoverWithin` |"), "{md}");
    assert!(
        md.contains("| image-typo | signal `ErrImagePull` | 5/5 → 0/1 trials |"),
        "{md}"
    );
}
