//! `dns-canary`: resolve `--names` every `--interval` through the pod's
//! resolv.conf (search domains and ndots honoured, no cache) and count
//! successes, failures and latency. Ready while the success ratio over
//! `--window` is at least `--ready-threshold`, so a DNS outage (CoreDNS
//! squeezed, NetworkPolicy blocking port 53, ...) flips the pod's Ready
//! condition, which the harness sees through its watches.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use hickory_resolver::TokioResolver;
use hickory_resolver::proto::rr::Name;
use tokio_util::sync::CancellationToken;

use super::dns::{self, ResolverSettings};
use super::{Prepared, fmt_duration};
use crate::cli::DnsCanaryArgs;
use crate::error::Error;
use crate::server::Probes;
use crate::state::{ReadyPolicy, Stats};

/// Build the dns-canary mode.
pub fn prepare(args: DnsCanaryArgs, shutdown: CancellationToken) -> Result<Prepared, Error> {
    let names = dns::parse_names(&args.dns.names)?;
    let recipe = dns::Recipe::read(&ResolverSettings {
        resolv_conf: &args.dns.resolv_conf,
        nameserver: args.dns.nameserver,
        timeout: args.dns.timeout,
        ip_strategy: args.ip_strategy,
    })?;
    let resolver = recipe.build()?;
    let summary = recipe.summary;
    tracing::info!(
        nameservers = ?summary.nameservers,
        search = ?summary.search,
        ndots = summary.ndots,
        "resolving {} every {}",
        args.dns.names.join(","),
        fmt_duration(args.interval)
    );
    let config = serde_json::json!({
        "names": args.dns.names,
        "interval": fmt_duration(args.interval),
        "timeout": fmt_duration(args.dns.timeout),
        "ready_threshold": args.ready_threshold,
        "ip_strategy": args.ip_strategy,
        "resolver": summary,
        "ready_max_latency": args.latency.ready_max_latency.map(fmt_duration),
        "ready_latency_percentile": args.latency.ready_latency_percentile,
    });
    let stats = Arc::new(
        Stats::new(
            "dns-canary",
            args.common.window,
            ReadyPolicy::SuccessRatio {
                threshold: args.ready_threshold,
            },
            config,
        )
        .with_latency_gate(args.latency.gate()),
    );
    let run = run(
        resolver,
        names,
        args.interval,
        args.dns.timeout,
        stats.clone(),
        shutdown,
    );
    Ok(Prepared {
        stats,
        probes: Probes::default(),
        record_requests: false,
        run: Box::pin(run),
    })
}

async fn run(
    resolver: TokioResolver,
    names: Vec<Name>,
    interval: Duration,
    timeout: Duration,
    stats: Arc<Stats>,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let mut seen = vec![false; names.len()];
    let mut ticker = super::ticker(interval);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = ticker.tick() => {}
        }
        // One round: every name once, concurrently; each bounded by `timeout`.
        let round = join_all(names.iter().map(|n| dns::lookup(&resolver, n, timeout)));
        let results = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            r = round => r,
        };
        let mut round = Vec::with_capacity(results.len());
        for (i, (latency, result)) in results.into_iter().enumerate() {
            match result {
                Ok(ips) => {
                    round.push((latency, Ok(())));
                    if !seen[i] {
                        seen[i] = true;
                        let addrs: Vec<String> = ips.iter().map(|ip| ip.to_string()).collect();
                        tracing::info!(
                            "{} resolves to {} ({}ms)",
                            names[i],
                            addrs.join(","),
                            latency.as_millis()
                        );
                    }
                }
                Err(f) => round.push((latency, Err((f.kind, f.message)))),
            }
        }
        stats.record_round(round);
    }
}
