//! `breakfix compare before.json after.json`: any two reports of
//! `breakfix run --json` compared experiment by experiment; exit 1 on a
//! regression beyond the noise of the repeats.

use std::path::{Path, PathBuf};

use clap::Args;

use breakfix::compare::{self, CompareError, CompareOptions};
use breakfix::report::{self, comparison};

use super::EXIT_USAGE;

#[derive(Args)]
pub struct CompareArgs {
    /// The earlier report (`breakfix run --json`).
    before: PathBuf,
    /// The later report.
    after: PathBuf,
    /// Write a Markdown comparison here (fits a pull-request comment).
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// Write the comparison as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write a self-contained HTML comparison here.
    #[arg(long)]
    html: Option<PathBuf>,
}

pub(super) fn compare_error(e: &CompareError) -> u8 {
    eprintln!("error: {e}");
    if let Some(help) = e.help() {
        eprintln!("  = help: {help}");
    }
    EXIT_USAGE
}

/// A side's label: its file name, as the user typed it.
fn label(path: &Path) -> String {
    path.display().to_string()
}

/// Reads both reports, compares, prints the summary and writes what was
/// asked. Exits 0 (no regression), 1 (a regression, or an experiment that
/// errored on a side) or 2 (bad input).
pub fn compare(args: CompareArgs) -> u8 {
    let before = match compare::read_report(&args.before) {
        Ok(r) => r,
        Err(e) => return compare_error(&e),
    };
    let after = match compare::read_report(&args.after) {
        Ok(r) => r,
        Err(e) => return compare_error(&e),
    };
    let result = match compare::compare(&before, &after, &CompareOptions::default()) {
        Ok(c) => c.with_labels(label(&args.before), label(&args.after)),
        Err(e) => return compare_error(&e),
    };
    print!("{}", comparison::summary(&result));
    let mut code = result.exit_code() as u8;
    let outputs = [
        (&args.markdown, Ok(comparison::to_markdown(&result))),
        (&args.json, comparison::to_json(&result)),
        (&args.html, Ok(comparison::to_html(&result))),
    ];
    for (path, rendered) in outputs {
        let Some(path) = path else { continue };
        match rendered.and_then(|t| report::write_file(path, &t)) {
            Ok(()) => eprintln!("wrote {}", path.display()),
            Err(e) => {
                eprintln!("error: {e}");
                code = code.max(EXIT_USAGE);
            }
        }
    }
    code
}
