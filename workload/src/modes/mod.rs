//! One module per mode. Each `prepare` validates its flags, builds the mode's
//! [`Stats`] (readiness rule, `/status` config echo) and returns the loop to
//! run; the loop returns `Ok(())` when `shutdown` is cancelled (or, for
//! `sleep`, when done).

use std::sync::Arc;

use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::cli::Mode;
use crate::error::Error;
use crate::server::Probes;
use crate::state::Stats;

pub mod api_canary;
pub mod dns;
pub mod dns_canary;
pub mod dns_load;
pub mod http;
pub mod http_canary;
pub mod http_load;
pub mod serve;
pub mod sleep;

/// A mode ready to run.
pub struct Prepared {
    /// Its counters and readiness, shared with the HTTP server.
    pub stats: Arc<Stats>,
    /// Probe behaviour for the HTTP server (serve's knobs).
    pub probes: Probes,
    /// Whether HTTP requests are the mode's outcomes (serve).
    pub record_requests: bool,
    /// The mode's loop.
    pub run: BoxFuture<'static, Result<(), Error>>,
}

/// Validate `mode`'s flags and build its loop.
pub fn prepare(mode: Mode, shutdown: CancellationToken) -> Result<Prepared, Error> {
    match mode {
        Mode::Serve(a) => serve::prepare(a, shutdown),
        Mode::DnsCanary(a) => dns_canary::prepare(a, shutdown),
        Mode::DnsLoad(a) => dns_load::prepare(a, shutdown),
        Mode::ApiCanary(a) => api_canary::prepare(a, shutdown),
        Mode::HttpCanary(a) => http_canary::prepare(a, shutdown),
        Mode::HttpLoad(a) => http_load::prepare(a, shutdown),
        Mode::Sleep(a) => sleep::prepare(a, shutdown),
    }
}

/// A ticker for a loop that must not busy-loop or burst after a stall: the
/// first tick is immediate, missed ticks are not caught up.
pub(crate) fn ticker(period: std::time::Duration) -> tokio::time::Interval {
    let mut t = tokio::time::interval(period.max(std::time::Duration::from_millis(1)));
    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    t
}

/// Open-loop pacing for the load modes: how many operations are due by
/// the elapsed time (`qps × t`), so the rate holds exactly without a timer
/// per operation. After a stall (CPU throttling, a paused process) at most
/// `max_burst` start at once; the rest of the backlog is skipped, not burst.
#[derive(Debug)]
pub(crate) struct Pacer {
    start: std::time::Instant,
    qps: f64,
    started: u64,
    max_burst: u64,
}

impl Pacer {
    /// Pacing `qps` per second for a load with `concurrency` slots.
    pub(crate) fn new(qps: f64, concurrency: usize) -> Self {
        Self {
            start: std::time::Instant::now(),
            qps,
            started: 0,
            max_burst: (qps / 10.0).ceil() as u64 + concurrency as u64,
        }
    }

    /// `(to start now, skipped as an over-long burst)`.
    pub(crate) fn due(&mut self) -> (u64, u64) {
        let target = (self.start.elapsed().as_secs_f64() * self.qps) as u64;
        let due = target.saturating_sub(self.started);
        self.started = target;
        if due > self.max_burst {
            (self.max_burst, due - self.max_burst)
        } else {
            (due, 0)
        }
    }
}

/// Format a duration for messages: `2s`, `150ms`.
pub(crate) fn fmt_duration(d: std::time::Duration) -> String {
    if d.subsec_millis() == 0 && d.as_secs() > 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}
