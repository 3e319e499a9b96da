//! `dns-load`: start `--qps` lookups per second, at most `--concurrency` in
//! flight, through the pod's resolv.conf with no cache. A name like
//! `www.example.com` under `ndots:5` is first tried with every search domain,
//! so each lookup costs the cluster DNS several queries (times two with
//! `--ip-strategy both`, glibc's A+AAAA): the amplification behind Zalando's
//! 2019 CoreDNS incident, used here to squeeze CoreDNS's memory.
//!
//! Pacing: a 5 ms ticker starts however many lookups are due by the elapsed
//! time ([`super::Pacer`]), so the rate holds exactly. A
//! due lookup that finds all slots busy is skipped and counted (`skipped`):
//! the load never queues up, and `/status` shows when the client (not the
//! server) is the bottleneck. Ready always: readiness belongs to the canaries.
//!
//! Each in-flight slot owns its own resolver: a hickory resolver merges
//! concurrent identical queries into one upstream query, which would make the
//! load collapse exactly when the DNS server slows down (real clients, one
//! libc resolver per pod, do not merge).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::proto::rr::Name;
use tokio_util::sync::CancellationToken;

use super::dns::{self, ResolverSettings};
use super::{Prepared, fmt_duration};
use crate::cli::DnsLoadArgs;
use crate::error::Error;
use crate::server::Probes;
use crate::state::{ReadyPolicy, Stats};

const TICK: Duration = Duration::from_millis(5);

/// Build the dns-load mode.
pub fn prepare(args: DnsLoadArgs, shutdown: CancellationToken) -> Result<Prepared, Error> {
    let names = dns::parse_names(&args.dns.names)?;
    let recipe = dns::Recipe::read(&ResolverSettings {
        resolv_conf: &args.dns.resolv_conf,
        nameserver: args.dns.nameserver,
        timeout: args.dns.timeout,
        ip_strategy: args.ip_strategy,
    })?;
    let resolvers = (0..args.concurrency)
        .map(|_| recipe.build())
        .collect::<Result<Vec<_>, _>>()?;
    let summary = recipe.summary;
    tracing::info!(
        nameservers = ?summary.nameservers,
        search = ?summary.search,
        ndots = summary.ndots,
        "{} lookups/s of {} with at most {} in flight",
        args.qps,
        args.dns.names.join(","),
        args.concurrency
    );
    let config = serde_json::json!({
        "names": args.dns.names,
        "qps": args.qps,
        "concurrency": args.concurrency,
        "timeout": fmt_duration(args.dns.timeout),
        "ip_strategy": args.ip_strategy,
        "resolver": summary,
    });
    let stats = Arc::new(Stats::new(
        "dns-load",
        args.common.window,
        ReadyPolicy::Always,
        config,
    ));
    let load = Load {
        slots: Arc::new(Mutex::new(resolvers)),
        names: names.into(),
        qps: f64::from(args.qps),
        concurrency: args.concurrency as usize,
        timeout: args.dns.timeout,
        stats: stats.clone(),
    };
    Ok(Prepared {
        stats,
        probes: Probes::default(),
        record_requests: false,
        run: Box::pin(load.run(shutdown)),
    })
}

/// Idle resolvers; a lookup in flight holds one (see the module docs).
type Slots = Arc<Mutex<Vec<TokioResolver>>>;

/// A resolver taken from [`Slots`], given back when the lookup ends (also
/// if it is cancelled at shutdown).
struct Slot {
    resolver: Option<TokioResolver>,
    slots: Slots,
}

impl Slot {
    fn take(slots: &Slots) -> Option<Slot> {
        let resolver = lock(slots).pop()?;
        Some(Slot {
            resolver: Some(resolver),
            slots: slots.clone(),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(r) = self.resolver.take() {
            lock(&self.slots).push(r);
        }
    }
}

fn lock(slots: &Slots) -> MutexGuard<'_, Vec<TokioResolver>> {
    slots.lock().unwrap_or_else(PoisonError::into_inner)
}

struct Load {
    slots: Slots,
    names: Arc<[Name]>,
    qps: f64,
    concurrency: usize,
    timeout: Duration,
    stats: Arc<Stats>,
}

impl Load {
    async fn run(self, shutdown: CancellationToken) -> Result<(), Error> {
        let mut pacer = super::Pacer::new(self.qps, self.concurrency);
        let mut next_name = 0usize;
        let mut ticker = super::ticker(TICK);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = ticker.tick() => {}
            }
            let (due, burst) = pacer.due();
            if burst > 0 {
                self.stats.count("skipped", burst);
            }
            let mut skipped = 0;
            for _ in 0..due {
                let Some(slot) = Slot::take(&self.slots) else {
                    skipped += 1;
                    continue;
                };
                let name = self.names[next_name].clone();
                next_name = (next_name + 1) % self.names.len();
                let stats = self.stats.clone();
                let timeout = self.timeout;
                tokio::spawn(async move {
                    let Some(resolver) = slot.resolver.as_ref() else {
                        return;
                    };
                    let (latency, result) = dns::lookup(resolver, &name, timeout).await;
                    drop(slot);
                    match result {
                        Ok(_) => stats.success(latency),
                        Err(f) => stats.failure(latency, f.kind, f.message),
                    }
                });
            }
            if skipped > 0 {
                self.stats.count("skipped", skipped);
            }
            let idle = lock(&self.slots).len();
            self.stats
                .gauge("in_flight", (self.concurrency - idle) as u64);
        }
    }
}
