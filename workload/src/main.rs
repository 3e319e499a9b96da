//! Entry point: parse flags, set up plain-text logging, run the mode until it
//! finishes or SIGTERM/SIGINT arrives, exit 0 promptly (pod deletion speed
//! depends on it). Exit 1 on a fatal error, 2 on bad flags.

use std::process::ExitCode;
use std::time::Duration;

use breakfix_workload::{Error, cli, start};
use tokio::signal::unix::{SignalKind, signal};

/// How long the mode gets to stop after SIGTERM before we exit anyway.
const STOP_GRACE: Duration = Duration::from_secs(1);

fn main() -> ExitCode {
    let cli = cli::parse();
    init_logging();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 4));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("{}", Error::Runtime(e));
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli.mode));
    // Don't wait for in-flight lookups or blocking threads.
    runtime.shutdown_timeout(Duration::from_millis(200));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(mode: cli::Mode) -> Result<(), Error> {
    let mut term = signal(SignalKind::terminate()).map_err(|source| Error::Signal {
        signal: "SIGTERM",
        source,
    })?;
    let mut int = signal(SignalKind::interrupt()).map_err(|source| Error::Signal {
        signal: "SIGINT",
        source,
    })?;
    let mut running = start(mode).await?;
    let finished = tokio::select! {
        _ = term.recv() => { tracing::info!("SIGTERM: exiting"); None }
        _ = int.recv() => { tracing::info!("SIGINT: exiting"); None }
        r = &mut running.mode_task => Some(r),
    };
    running.shutdown.cancel();
    let result = match finished {
        Some(r) => r,
        None => match tokio::time::timeout(STOP_GRACE, &mut running.mode_task).await {
            Ok(r) => r,
            Err(_) => Ok(Ok(())),
        },
    };
    let _ = tokio::time::timeout(STOP_GRACE, running.server_task).await;
    match result {
        Ok(r) => r,
        Err(join) => Err(Error::Config(format!("the mode's task failed: {join}"))),
    }
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("info,hickory_resolver=warn,hickory_net=warn,hickory_proto=warn,kube=warn")
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_target(false)
        .with_writer(std::io::stderr)
        .init();
}
