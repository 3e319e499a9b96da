//! breakfix-workload: the one image every breakfix baseline runs.
//!
//! One binary, one mode per process ([`cli::Mode`]): the `serve` app and the
//! canaries (`dns-canary`, `dns-load`, `api-canary`, `http-canary`) that make
//! injected faults observable from inside the cluster, plus `sleep` for
//! Job/CronJob payloads. Every mode serves `/healthz`, `/readyz`, `/status`
//! and `/` ([`server`]) from the mode's [`state::Stats`], logs one plain line
//! per notable event, and exits 0 promptly on SIGTERM.

pub mod cli;
pub mod error;
pub mod histogram;
pub mod modes;
pub mod server;
pub mod state;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use error::Error;
pub use state::Status;

/// How often readiness is re-evaluated without new samples (so an emptied
/// window or the end of a startup delay is logged when it happens).
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(1);

/// A started mode: its HTTP server and its loop, both stopped by `shutdown`.
pub struct Running {
    /// Where the HTTP server listens.
    pub addr: SocketAddr,
    /// The mode's counters (what `/status` shows).
    pub stats: Arc<state::Stats>,
    /// Cancel to stop everything.
    pub shutdown: CancellationToken,
    /// The mode's loop; ends on its own only for `sleep` or on error.
    pub mode_task: JoinHandle<Result<(), Error>>,
    /// The HTTP server and housekeeping.
    pub server_task: JoinHandle<()>,
}

/// Validate the mode, bind its port and start it.
pub async fn start(mode: cli::Mode) -> Result<Running, Error> {
    let shutdown = CancellationToken::new();
    let port = mode.common().port;
    // Validate flags (and read resolv.conf etc.) before taking the port.
    let (summary_every, prepared) = prepare(mode, shutdown.clone())?;
    let listener = server::bind(port).await?;
    Ok(launch(listener, summary_every, prepared, shutdown))
}

/// Start the mode on an already bound listener (tests use port 0).
pub fn start_on(listener: TcpListener, mode: cli::Mode) -> Result<Running, Error> {
    let shutdown = CancellationToken::new();
    let (summary_every, prepared) = prepare(mode, shutdown.clone())?;
    Ok(launch(listener, summary_every, prepared, shutdown))
}

fn prepare(
    mode: cli::Mode,
    shutdown: CancellationToken,
) -> Result<(Duration, modes::Prepared), Error> {
    let summary_every = mode.common().summary_interval;
    Ok((summary_every, modes::prepare(mode, shutdown)?))
}

fn launch(
    listener: TcpListener,
    summary_every: Duration,
    prepared: modes::Prepared,
    shutdown: CancellationToken,
) -> Running {
    let addr = listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let stats = prepared.stats.clone();
    tracing::info!(
        mode = stats.mode(),
        version = env!("CARGO_PKG_VERSION"),
        "listening on {addr}"
    );
    let app = Arc::new(server::App {
        stats: stats.clone(),
        probes: prepared.probes,
        record_requests: prepared.record_requests,
        hostname: server::hostname(),
        queued: std::sync::atomic::AtomicU64::new(0),
    });
    let mode_task = tokio::spawn(prepared.run);
    let server_task = tokio::spawn({
        let shutdown = shutdown.clone();
        let stats = stats.clone();
        async move {
            tokio::join!(
                server::serve(listener, app, shutdown.clone()),
                housekeeping(stats, summary_every, shutdown),
            );
        }
    });
    Running {
        addr,
        stats,
        shutdown,
        mode_task,
        server_task,
    }
}

/// Re-evaluate readiness every second; log a summary every `summary_every`.
async fn housekeeping(
    stats: Arc<state::Stats>,
    summary_every: Duration,
    shutdown: CancellationToken,
) {
    let mut tick = modes::ticker(HOUSEKEEPING_EVERY);
    let mut last_summary = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        stats.tick();
        if !summary_every.is_zero() && last_summary.elapsed() >= summary_every {
            last_summary = tokio::time::Instant::now();
            tracing::info!(mode = stats.mode(), "summary: {}", stats.summary_line());
        }
    }
}
