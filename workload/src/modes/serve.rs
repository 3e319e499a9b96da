//! `serve`: the application the baselines deploy. Its "traffic" is its HTTP
//! requests (counted in `/status`); its knobs make probe and resource faults
//! bite:
//!
//! - `--startup-delay`: /healthz and /readyz answer 503 until it has passed
//!   (a too-short startupProbe/livenessProbe kills the pod before then);
//! - `--response-delay`: every /healthz and /readyz answer is this late
//!   (a too-tight probe `timeoutSeconds` fails);
//! - `--fail-liveness-after`: /healthz answers 500 from then on (restarts);
//! - `--ballast-mib` / `--ballast-growth-mib-per-sec`: resident memory that
//!   grows into the container's limit (OOMKilled);
//! - `--service-time` / `--capacity`: what serving `/` costs, so a pod has a
//!   capacity and fewer replicas under load means queueing (latency);
//! - `--cpu-per-request`: CPU time burnt per request to `/`, so a squeezed
//!   CPU limit (CFS throttling) makes every request slower.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::{Prepared, fmt_duration};
use crate::cli::ServeArgs;
use crate::error::Error;
use crate::server::{Probes, Work};
use crate::state::{ReadyPolicy, Stats};

const MIB: u64 = 1024 * 1024;
/// How often the ballast grows (the rate is spread over these steps).
const GROWTH_STEP: Duration = Duration::from_millis(100);
/// Growth is logged at most this often.
const GROWTH_LOG_EVERY: Duration = Duration::from_secs(1);

/// Build the serve mode.
pub fn prepare(args: ServeArgs, shutdown: CancellationToken) -> Result<Prepared, Error> {
    if let Some(max) = args.ballast_max_mib
        && max < args.ballast_mib
    {
        return Err(Error::Config(format!(
            "--ballast-max-mib {max} is below --ballast-mib {}",
            args.ballast_mib
        )));
    }
    let config = serde_json::json!({
        "startup_delay": fmt_duration(args.startup_delay),
        "response_delay": fmt_duration(args.response_delay),
        "fail_liveness_after": args.fail_liveness_after.map(fmt_duration),
        "ballast_mib": args.ballast_mib,
        "ballast_growth_mib_per_sec": args.ballast_growth_mib_per_sec,
        "ballast_max_mib": args.ballast_max_mib,
        "service_time": fmt_duration(args.service_time),
        "capacity": args.capacity,
        "cpu_per_request": fmt_duration(args.cpu_per_request),
    });
    let stats = Arc::new(
        Stats::new("serve", args.common.window, ReadyPolicy::Always, config)
            .with_startup_delay(args.startup_delay),
    );
    let started = stats.started();
    let probes = Probes {
        response_delay: args.response_delay,
        fail_liveness_at: args.fail_liveness_after.map(|d| started + d),
        work: (!args.service_time.is_zero()
            || args.capacity > 0
            || !args.cpu_per_request.is_zero())
        .then(|| Work {
            service_time: args.service_time,
            cpu: args.cpu_per_request,
            slots: (args.capacity > 0).then(|| Arc::new(Semaphore::new(args.capacity as usize))),
        }),
    };
    let run = run(args, stats.clone(), started, shutdown);
    Ok(Prepared {
        stats,
        probes,
        record_requests: true,
        run: Box::pin(run),
    })
}

async fn run(
    args: ServeArgs,
    stats: Arc<Stats>,
    started: Instant,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let mut ballast = Ballast::default();
    if args.ballast_mib > 0 {
        ballast.grow(args.ballast_mib * MIB);
        stats.gauge("ballast_mib", ballast.mib());
        tracing::info!("ballast: allocated and touched {} MiB", ballast.mib());
    }
    let max_bytes = args.ballast_max_mib.map_or(u64::MAX, |m| m * MIB);
    let growth_per_step = args.ballast_growth_mib_per_sec * MIB as f64 * GROWTH_STEP.as_secs_f64();
    let mut growing = growth_per_step > 0.0 && ballast.bytes < max_bytes;
    let mut owed = 0.0f64;
    let mut last_growth_log = Instant::now();
    let mut growth = super::ticker(GROWTH_STEP);

    let startup_at = tokio::time::Instant::from_std(started + args.startup_delay);
    let mut startup_pending = !args.startup_delay.is_zero();
    let fail_at = args
        .fail_liveness_after
        .map(|d| tokio::time::Instant::from_std(started + d));
    let mut fail_pending = fail_at.is_some();

    tracing::info!(
        "serving; startup delay {}, response delay {}",
        fmt_duration(args.startup_delay),
        fmt_duration(args.response_delay)
    );
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep_until(startup_at), if startup_pending => {
                startup_pending = false;
                stats.tick();
                tracing::info!(
                    "startup delay of {} over: /healthz and /readyz answer 200",
                    fmt_duration(args.startup_delay)
                );
            }
            _ = tokio::time::sleep_until(fail_at.unwrap_or(startup_at)), if fail_pending => {
                fail_pending = false;
                tracing::warn!("liveness failure injected: /healthz answers 500 from now on");
            }
            _ = growth.tick(), if growing => {
                owed += growth_per_step;
                let step = (owed as u64).min(max_bytes - ballast.bytes);
                if step > 0 {
                    owed -= step as f64;
                    ballast.grow(step);
                    stats.gauge("ballast_mib", ballast.mib());
                }
                if ballast.bytes >= max_bytes {
                    growing = false;
                    tracing::info!("ballast: reached --ballast-max-mib ({} MiB); growth stops", ballast.mib());
                } else if last_growth_log.elapsed() >= GROWTH_LOG_EVERY {
                    last_growth_log = Instant::now();
                    tracing::info!("ballast: {} MiB", ballast.mib());
                }
            }
        }
    }
}

/// Memory that is really resident: every byte is written, so the pages count
/// against the cgroup's memory limit (a calloc'ed zero page would not).
#[derive(Debug, Default)]
struct Ballast {
    chunks: Vec<Vec<u8>>,
    bytes: u64,
}

impl Ballast {
    /// Allocate `bytes` more, in chunks of at most 1 MiB, touching each.
    fn grow(&mut self, mut bytes: u64) {
        while bytes > 0 {
            let n = bytes.min(MIB);
            let chunk = vec![0xA5u8; n as usize];
            self.chunks.push(std::hint::black_box(chunk));
            self.bytes += n;
            bytes -= n;
        }
    }

    fn mib(&self) -> u64 {
        self.bytes / MIB
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ballast_is_counted_in_whole_chunks() {
        let mut b = Ballast::default();
        b.grow(3 * MIB + 10);
        assert_eq!(b.bytes, 3 * MIB + 10);
        assert_eq!(b.mib(), 3);
        assert_eq!(b.chunks.len(), 4);
        assert!(b.chunks.iter().all(|c| c.iter().all(|&x| x == 0xA5)));
    }
}
