//! `sleep`: a slow Job/CronJob payload. Sleeps `--duration`, then exits 0;
//! SIGTERM ends it early, also with 0. Ready throughout.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{Prepared, fmt_duration};
use crate::cli::SleepArgs;
use crate::error::Error;
use crate::server::Probes;
use crate::state::{ReadyPolicy, Stats};

/// Build the sleep mode.
pub fn prepare(args: SleepArgs, shutdown: CancellationToken) -> Result<Prepared, Error> {
    let stats = Arc::new(Stats::new(
        "sleep",
        args.common.window,
        ReadyPolicy::Always,
        serde_json::json!({ "duration": fmt_duration(args.duration) }),
    ));
    stats.gauge("duration_seconds", args.duration.as_secs());
    let duration = args.duration;
    Ok(Prepared {
        stats,
        probes: Probes::default(),
        record_requests: false,
        run: Box::pin(async move {
            tracing::info!("sleeping {}", fmt_duration(duration));
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = tokio::time::sleep(duration) => {
                    tracing::info!("slept {}; exiting 0", fmt_duration(duration));
                }
            }
            Ok(())
        }),
    })
}
