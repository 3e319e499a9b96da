//! Runs experiment files against a cluster you name, through the library's
//! one entry point, and prints the same summary `breakfix run` prints.
//!
//! ```sh
//! cargo run --example run_experiment -- CONTEXT experiments/pod-kill.yaml [MORE.yaml…]
//! ```
//!
//! The context is read from `$KUBECONFIG` (or `~/.kube/config`); like the
//! `breakfix` command, the example never picks the current context by itself.

use std::path::PathBuf;
use std::process::ExitCode;

use breakfix::{Runner, cluster, load_experiment, report};

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(context), files) = (args.next(), args.map(PathBuf::from).collect::<Vec<_>>()) else {
        eprintln!("usage: run_experiment CONTEXT EXPERIMENT.yaml…");
        return ExitCode::from(2);
    };
    let mut experiments = Vec::new();
    for file in &files {
        match load_experiment(file) {
            Ok(exp) => experiments.push(exp),
            Err(problems) => {
                for p in problems {
                    eprintln!("{p}");
                }
                return ExitCode::from(2);
            }
        }
    }
    let handle = match cluster::existing_context(None, &context).await {
        Ok(h) => h,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let runner = match Runner::builder(handle.client.clone())
        .cluster(handle.record.clone())
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let report = runner.run(&experiments).await;
    print!("{}", report::summary(&report));
    ExitCode::from(report.exit_code() as u8)
}
