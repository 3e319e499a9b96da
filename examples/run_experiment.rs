//! Runs experiment files against a cluster you name, through the library's
//! one entry point, and prints the same summary `breakfix run` prints.
//!
//! ```sh
//! cargo run --example run_experiment -- CONTEXT experiments/pod-kill.yaml [MORE.yaml…]
//! ```
//!
//! The context is read from `$KUBECONFIG` (or `~/.kube/config`); like the
//! `breakfix` command, the example never picks the current context by itself.
//! The e2e tier runs [`run`] on its kind cluster (`e2e/example.rs`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use breakfix::{RunReport, Runner, cluster, load_experiment, report};

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(context), files) = (args.next(), args.map(PathBuf::from).collect::<Vec<_>>()) else {
        eprintln!("usage: run_experiment CONTEXT EXPERIMENT.yaml…");
        return ExitCode::from(2);
    };
    match run(None, &context, &files).await {
        Ok(report) => {
            print!("{}", report::summary(&report));
            ExitCode::from(report.exit_code() as u8)
        }
        Err(problem) => {
            eprintln!("{problem}");
            ExitCode::from(2)
        }
    }
}

/// Loads `files` and runs them on the cluster of context `context` in
/// `kubeconfig` (`$KUBECONFIG` or `~/.kube/config` when `None`).
///
/// # Errors
///
/// Every problem in the files (at file:line:col), or why the cluster cannot
/// be reached; nothing has been applied then.
pub async fn run(
    kubeconfig: Option<&Path>,
    context: &str,
    files: &[PathBuf],
) -> Result<RunReport, String> {
    let mut experiments = Vec::new();
    for file in files {
        let exp = load_experiment(file).map_err(|problems| {
            problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        })?;
        experiments.push(exp);
    }
    let handle = cluster::existing_context(kubeconfig, context)
        .await
        .map_err(|e| format!("error: {e}"))?;
    let runner = Runner::builder(handle.client.clone())
        .cluster(handle.record.clone())
        .build()
        .map_err(|e| format!("error: {e}"))?;
    Ok(runner.run(&experiments).await)
}
