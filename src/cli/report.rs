//! `breakfix report`: renders a stored JSON report again, as the terminal
//! summary or as Markdown, HTML and JUnit files, so CI can publish reports
//! from the artifact a run left without running anything; `report merge`
//! first joins the reports of a suite run in shards (`run --partition`).

use std::path::PathBuf;

use clap::{Args, Subcommand};

use breakfix::compare::read_report;
use breakfix::report::{self, html, junit, markdown, merge};
use breakfix::runner::RunReport;

use super::EXIT_USAGE;
use super::compare::compare_error;

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ReportArgs {
    #[command(subcommand)]
    command: Option<ReportCommand>,
    /// A report written by `breakfix run --json`.
    #[arg(required = true)]
    json: Option<PathBuf>,
    #[command(flatten)]
    outputs: Outputs,
}

#[derive(Subcommand)]
enum ReportCommand {
    /// Join the reports of shards (`run --partition`) into one report.
    Merge {
        /// The shard reports, e.g. shard-*.json.
        #[arg(required = true)]
        reports: Vec<PathBuf>,
        /// Write the merged JSON report here.
        #[arg(long)]
        json: Option<PathBuf>,
        #[command(flatten)]
        outputs: Outputs,
    },
}

#[derive(Args)]
struct Outputs {
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

/// Reads the report (or merges the shards) and writes what was asked;
/// prints the summary when no file was asked for. Exits like the run did
/// (0, 1 or 130), 2 on bad input.
pub fn report(args: ReportArgs) -> u8 {
    match (args.command, args.json) {
        (
            Some(ReportCommand::Merge {
                reports,
                json,
                outputs,
            }),
            _,
        ) => merge_reports(&reports, json, &outputs),
        (None, Some(path)) => match read_report(&path) {
            Ok(run) => render(&run, None, &args.outputs),
            Err(e) => compare_error(&e),
        },
        // clap requires the file when there is no subcommand.
        (None, None) => EXIT_USAGE,
    }
}

fn merge_reports(paths: &[PathBuf], json: Option<PathBuf>, outputs: &Outputs) -> u8 {
    let mut shards = Vec::new();
    for path in paths {
        match read_report(path) {
            Ok(r) => shards.push((path.display().to_string(), r)),
            Err(e) => return compare_error(&e),
        }
    }
    let merged = match merge::merge(shards) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    eprintln!("{}", merged.describe());
    if !merged.missing.is_empty() {
        let missing: Vec<String> = merged.missing.iter().map(u32::to_string).collect();
        eprintln!(
            "warning: no report for shard{} {}: the merged report lacks their experiments",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", ")
        );
    }
    render(&merged.report, json.as_ref(), outputs)
}

fn render(run: &RunReport, json: Option<&PathBuf>, o: &Outputs) -> u8 {
    let mut outputs: Vec<(&PathBuf, Result<String, report::ReportError>)> = Vec::new();
    if let Some(p) = json {
        outputs.push((p, report::to_json(run)));
    }
    if let Some(p) = &o.markdown {
        outputs.push((p, Ok(markdown::to_markdown(run))));
    }
    if let Some(p) = &o.html {
        outputs.push((p, Ok(html::to_html(run))));
    }
    if let Some(p) = &o.junit {
        outputs.push((p, junit::to_junit(run)));
    }
    if outputs.is_empty() {
        print!("{}", report::summary(run));
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
