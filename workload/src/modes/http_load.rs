//! `http-load`: start `--qps` GETs of `--url` per second, at most
//! `--concurrency` in flight, each on a fresh resolution and connection like
//! the http-canary's ([`super::http`]). The clients whose demand a service
//! must meet: with serve's `--service-time` and `--capacity`, cutting
//! replicas under this load queues requests and raises every client's
//! latency, which is what a latency SLO on a canary then sees.
//!
//! Pacing is open-loop ([`super::Pacer`]): a request due while every slot is
//! busy is skipped and counted (`skipped`), never queued, so a slow server
//! does not slow the offered load down. Ready always: readiness belongs to
//! the canaries.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::http::Client;
use super::{Prepared, fmt_duration};
use crate::cli::HttpLoadArgs;
use crate::error::Error;
use crate::server::Probes;
use crate::state::{ReadyPolicy, Stats};

const TICK: Duration = Duration::from_millis(5);

/// Build the http-load mode.
pub fn prepare(args: HttpLoadArgs, shutdown: CancellationToken) -> Result<Prepared, Error> {
    let client = Client::new(&args.url, &args.resolv_conf, args.timeout)?;
    tracing::info!(
        "{} GETs/s of {} with at most {} in flight",
        args.qps,
        client.url(),
        args.concurrency
    );
    let config = serde_json::json!({
        "url": args.url,
        "qps": args.qps,
        "concurrency": args.concurrency,
        "timeout": fmt_duration(args.timeout),
    });
    let stats = Arc::new(Stats::new(
        "http-load",
        args.common.window,
        ReadyPolicy::Always,
        config,
    ));
    let load = Load {
        client: Arc::new(client),
        slots: Arc::new(Semaphore::new(args.concurrency as usize)),
        qps: f64::from(args.qps),
        concurrency: args.concurrency as usize,
        stats: stats.clone(),
    };
    Ok(Prepared {
        stats,
        probes: Probes::default(),
        record_requests: false,
        run: Box::pin(load.run(shutdown)),
    })
}

struct Load {
    client: Arc<Client>,
    slots: Arc<Semaphore>,
    qps: f64,
    concurrency: usize,
    stats: Arc<Stats>,
}

impl Load {
    async fn run(self, shutdown: CancellationToken) -> Result<(), Error> {
        let mut pacer = super::Pacer::new(self.qps, self.concurrency);
        let mut ticker = super::ticker(TICK);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = ticker.tick() => {}
            }
            let (due, burst) = pacer.due();
            let mut skipped = burst;
            for _ in 0..due {
                let Ok(permit) = self.slots.clone().try_acquire_owned() else {
                    skipped += 1;
                    continue;
                };
                let client = self.client.clone();
                let stats = self.stats.clone();
                let shutdown = shutdown.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    tokio::select! {
                        _ = shutdown.cancelled() => {}
                        (latency, outcome) = client.outcome() => stats.record(latency, outcome),
                    }
                });
            }
            if skipped > 0 {
                self.stats.count("skipped", skipped);
            }
            self.stats.gauge(
                "in_flight",
                (self.concurrency - self.slots.available_permits()) as u64,
            );
        }
    }
}
