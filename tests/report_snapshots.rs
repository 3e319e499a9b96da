//! Every report format rendered whole and compared with its reviewed
//! snapshot (tests/snapshots/), so any change to what a reader sees shows
//! up as a diff in review instead of slipping past a handful of fragments.
//!
//! Two reports, both fixed files, so the renderings are deterministic:
//! - `sample`: docs/samples/run-report.json, the reporters' fixture built
//!   through the real verdict code (a flaky pass, SLOs missed, an error
//!   before injection; `report::fixture` keeps the file current);
//! - `captured`: tests/fixtures/reports/harmful.json, a real run on kind
//!   (three experiments, five trials each, image-typo failing to detect).
//!
//! The JSON format is checked against the fixture files themselves.
//!
//! After an intended change: `cargo insta review` (or
//! `INSTA_UPDATE=always cargo test --test report_snapshots`, then read the
//! `.snap` diff) and commit the snapshots.

use std::path::Path;

use breakfix::compare::read_report;
use breakfix::report::{self, html, junit, markdown};
use breakfix::runner::RunReport;
use rstest::rstest;

fn load(relative: &str) -> RunReport {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    read_report(&path).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

#[rstest]
#[case::sample("sample", "docs/samples/run-report.json")]
#[case::captured("captured", "tests/fixtures/reports/harmful.json")]
fn every_format_renders_as_reviewed(#[case] name: &str, #[case] file: &str) {
    let run = load(file);
    insta::with_settings!({ description => file, omit_expression => true }, {
        insta::assert_snapshot!(format!("{name}-summary"), report::summary(&run));
        insta::assert_snapshot!(format!("{name}-markdown"), markdown::to_markdown(&run));
        insta::assert_snapshot!(
            format!("{name}-junit"),
            junit::to_junit(&run).expect("the JUnit report renders")
        );
        insta::assert_snapshot!(format!("{name}-html"), html::to_html(&run));
    });
}

/// The JSON format's snapshot is the file itself: read and written again,
/// every byte is the same.
#[rstest]
#[case::sample("docs/samples/run-report.json")]
#[case::captured("tests/fixtures/reports/harmful.json")]
fn the_json_report_is_written_back_byte_for_byte(#[case] file: &str) {
    let stored = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file))
        .expect("the fixture reads");
    let written = report::to_json(&load(file)).expect("the JSON report renders");
    assert!(
        written.trim_end() == stored.trim_end(),
        "{file} does not round-trip through the JSON report"
    );
}
