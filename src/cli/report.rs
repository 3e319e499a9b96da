//! `breakfix report`: renders a stored JSON report again, as the terminal
//! summary or as Markdown, HTML and JUnit files, so CI can publish reports
//! from the artifact a run left without running anything.

use std::path::PathBuf;

use clap::Args;

use breakfix::report::{self, html, junit, markdown};
use breakfix::runner::RunReport;
use breakfix::runner::outcome::REPORT_SCHEMA_VERSION;

use super::EXIT_USAGE;

#[derive(Args)]
pub struct ReportArgs {
    /// A report written by `breakfix run --json`.
    json: PathBuf,
    /// Write a Markdown summary here.
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// Write a self-contained HTML report here.
    #[arg(long)]
    html: Option<PathBuf>,
    /// Write JUnit XML here.
    #[arg(long)]
    junit: Option<PathBuf>,
}

/// Reads the report and writes what was asked; prints the summary when no
/// file was asked for. Exits like the run did (0, 1 or 130), 2 on bad input.
pub fn report(args: ReportArgs) -> u8 {
    let text = match std::fs::read_to_string(&args.json) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", args.json.display());
            return EXIT_USAGE;
        }
    };
    let run: RunReport = match serde_json::from_str(&text) {
        Ok(r) => r,
        Err(e) => {
            eprintln!(
                "error: {} is not a breakfix report ({e}); expected schema `{REPORT_SCHEMA_VERSION}`",
                args.json.display()
            );
            return EXIT_USAGE;
        }
    };
    if run.schema != REPORT_SCHEMA_VERSION {
        eprintln!(
            "error: {} has schema `{}`; this breakfix reads `{REPORT_SCHEMA_VERSION}`",
            args.json.display(),
            run.schema
        );
        return EXIT_USAGE;
    }
    let mut outputs: Vec<(&PathBuf, Result<String, report::ReportError>)> = Vec::new();
    if let Some(p) = &args.markdown {
        outputs.push((p, Ok(markdown::to_markdown(&run))));
    }
    if let Some(p) = &args.html {
        outputs.push((p, Ok(html::to_html(&run))));
    }
    if let Some(p) = &args.junit {
        outputs.push((p, junit::to_junit(&run)));
    }
    if outputs.is_empty() {
        print!("{}", report::summary(&run));
    }
    for (path, rendered) in outputs {
        if let Err(e) = rendered.and_then(|t| report::write_file(path, &t)) {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
        eprintln!("wrote {}", path.display());
    }
    run.exit_code() as u8
}
