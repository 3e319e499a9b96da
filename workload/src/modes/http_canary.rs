//! `http-canary`: GET `--url` every `--interval` and count 2xx as success.
//! Ready while the success ratio over `--window` is at least
//! `--ready-threshold` (and, with `--ready-max-latency`, while the window's
//! latency percentile is at most that): used for availability and latency
//! SLOs and to see a Service whose selector no longer matches (connection
//! refused / no endpoints) or that got slow.
//!
//! Every request resolves the host afresh and opens a new connection
//! ([`super::http`]).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::http::Client;
use super::{Prepared, fmt_duration};
use crate::cli::HttpCanaryArgs;
use crate::error::Error;
use crate::server::Probes;
use crate::state::{ReadyPolicy, Stats};

/// Build the http-canary mode.
pub fn prepare(args: HttpCanaryArgs, shutdown: CancellationToken) -> Result<Prepared, Error> {
    let client = Client::new(&args.url, &args.resolv_conf, args.timeout)?;
    tracing::info!("GET {} every {}", client.url(), fmt_duration(args.interval));
    let config = serde_json::json!({
        "url": args.url,
        "interval": fmt_duration(args.interval),
        "timeout": fmt_duration(args.timeout),
        "ready_threshold": args.ready_threshold,
        "ready_max_latency": args.latency.ready_max_latency.map(fmt_duration),
        "ready_latency_percentile": args.latency.ready_latency_percentile,
    });
    let stats = Arc::new(
        Stats::new(
            "http-canary",
            args.common.window,
            ReadyPolicy::SuccessRatio {
                threshold: args.ready_threshold,
            },
            config,
        )
        .with_latency_gate(args.latency.gate()),
    );
    let canary = Canary {
        client,
        interval: args.interval,
        stats: stats.clone(),
    };
    Ok(Prepared {
        stats,
        probes: Probes::default(),
        record_requests: false,
        run: Box::pin(canary.run(shutdown)),
    })
}

struct Canary {
    client: Client,
    interval: Duration,
    stats: Arc<Stats>,
}

impl Canary {
    async fn run(self, shutdown: CancellationToken) -> Result<(), Error> {
        let mut logged_success = false;
        let mut ticker = super::ticker(self.interval);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = ticker.tick() => {}
            }
            let (latency, result) = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                r = self.client.call() => r,
            };
            match result {
                Ok((status, addr)) => {
                    self.stats.success(latency);
                    if !logged_success {
                        logged_success = true;
                        tracing::info!(
                            "GET {} -> {} from {addr} ({}ms)",
                            self.client.url(),
                            status.as_u16(),
                            latency.as_millis()
                        );
                    }
                }
                Err(e) => {
                    let msg = format!("GET {}: {e}", self.client.url());
                    self.stats.failure(latency, e.kind(), msg);
                }
            }
        }
    }
}
