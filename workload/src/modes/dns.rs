//! DNS plumbing shared by dns-canary, dns-load and http-canary: a hickory
//! resolver configured from the pod's resolv.conf (search domains, ndots,
//! nameservers, attempts) with its cache disabled, so every lookup really goes
//! to the cluster DNS, and a classification of lookup failures.

use std::net::SocketAddr;
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{LookupIpStrategy, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::lookup_ip::LookupIp;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::Name;

use super::fmt_duration;
use crate::cli::IpStrategy;
use crate::error::Error;

/// Resolver settings beyond resolv.conf.
#[derive(Debug, Clone)]
pub struct ResolverSettings<'a> {
    /// resolv.conf to read.
    pub resolv_conf: &'a Path,
    /// Replaces resolv.conf's nameservers when set.
    pub nameserver: Option<SocketAddr>,
    /// Per-query timeout (the lookup as a whole is also bounded by the caller).
    pub timeout: Duration,
    /// Which records to ask for.
    pub ip_strategy: IpStrategy,
}

/// What the resolver was configured with, for logs and `/status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ResolverSummary {
    /// Nameservers queried.
    pub nameservers: Vec<String>,
    /// Search domains, in order.
    pub search: Vec<String>,
    /// resolv.conf's ndots.
    pub ndots: usize,
    /// Tries per nameserver.
    pub attempts: usize,
}

/// A resolver configuration read once from resolv.conf, from which any
/// number of independent resolvers can be built.
#[derive(Debug, Clone)]
pub struct Recipe {
    config: ResolverConfig,
    opts: ResolverOpts,
    /// What it amounts to, for logs and `/status`.
    pub summary: ResolverSummary,
}

impl Recipe {
    /// Read resolv.conf and apply `s`: no cache, the given timeout and
    /// record types, optionally another nameserver.
    pub fn read(s: &ResolverSettings<'_>) -> Result<Self, Error> {
        let data = std::fs::read(s.resolv_conf).map_err(|source| Error::ResolvConfRead {
            path: s.resolv_conf.to_owned(),
            source,
        })?;
        let (mut config, mut opts) = hickory_resolver::system_conf::parse_resolv_conf(data)
            .map_err(|source| Error::ResolvConfParse {
                path: s.resolv_conf.to_owned(),
                source,
            })?;
        if let Some(ns) = s.nameserver {
            let mut server = NameServerConfig::udp_and_tcp(ns.ip());
            for c in &mut server.connections {
                c.port = ns.port();
            }
            config = ResolverConfig::from_parts(
                config.domain().cloned(),
                config.search().to_vec(),
                vec![server],
            );
        }
        if config.name_servers().is_empty() {
            return Err(Error::Config(format!(
                "{} lists no nameserver (and no --nameserver given)",
                s.resolv_conf.display()
            )));
        }
        // No caching at all: a canary must see the DNS service as it is now,
        // and load must reach it. (cache_size 0 alone still lets an entry live
        // until the cache's housekeeping runs; zero TTL bounds make entries
        // stale at once.)
        opts.cache_size = 0;
        opts.positive_max_ttl = Some(Duration::ZERO);
        opts.negative_max_ttl = Some(Duration::ZERO);
        opts.timeout = opts.timeout.min(s.timeout);
        opts.ip_strategy = match s.ip_strategy {
            IpStrategy::Ipv4 => LookupIpStrategy::Ipv4Only,
            IpStrategy::Ipv6 => LookupIpStrategy::Ipv6Only,
            IpStrategy::Both => LookupIpStrategy::Ipv4AndIpv6,
            IpStrategy::Ipv4ThenIpv6 => LookupIpStrategy::Ipv4thenIpv6,
        };
        let summary = ResolverSummary {
            nameservers: config
                .name_servers()
                .iter()
                .map(|n| {
                    let port = n.connections.first().map_or(53, |c| c.port);
                    SocketAddr::new(n.ip, port).to_string()
                })
                .collect(),
            search: config.search().iter().map(ToString::to_string).collect(),
            ndots: opts.ndots,
            attempts: opts.attempts,
        };
        Ok(Self {
            config,
            opts,
            summary,
        })
    }

    /// A new resolver. Note that one resolver merges concurrent identical
    /// queries into one upstream query; dns-load uses one resolver per
    /// in-flight slot so that it does not.
    pub fn build(&self) -> Result<TokioResolver, Error> {
        TokioResolver::builder_with_config(self.config.clone(), TokioRuntimeProvider::default())
            .with_options(self.opts.clone())
            .build()
            .map_err(Error::Resolver)
    }
}

/// Parse the names up front so a typo is a startup error, not a failure count.
pub fn parse_names(names: &[String]) -> Result<Vec<Name>, Error> {
    names
        .iter()
        .map(|n| n.trim())
        .filter(|n| !n.is_empty())
        .map(|n| Name::from_str(n).map_err(|e| Error::Config(format!("bad DNS name {n:?}: {e}"))))
        .collect::<Result<Vec<_>, _>>()
        .and_then(|v| {
            if v.is_empty() {
                Err(Error::Config("--names is empty".into()))
            } else {
                Ok(v)
            }
        })
}

/// A failed lookup: a kind for the counters and a message for `last_error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupFailure {
    /// `nxdomain`, `no_records`, `servfail`, `refused`, `rcode`, `timeout`,
    /// `io`, `error`.
    pub kind: &'static str,
    /// e.g. `kubernetes.default: timed out after 2s`.
    pub message: String,
}

/// Resolve `name` (walking the search list) within `timeout`.
pub async fn lookup(
    resolver: &TokioResolver,
    name: &Name,
    timeout: Duration,
) -> (Duration, Result<LookupIp, LookupFailure>) {
    let start = Instant::now();
    let result = match tokio::time::timeout(timeout, resolver.lookup_ip(name.clone())).await {
        Ok(Ok(ips)) if ips.iter().next().is_some() => Ok(ips),
        Ok(Ok(_)) => Err(LookupFailure {
            kind: "no_records",
            message: format!("{name}: no address records"),
        }),
        Ok(Err(e)) => Err(classify(name, &e, timeout)),
        Err(_) => Err(LookupFailure {
            kind: "timeout",
            message: format!("{name}: timed out after {}", fmt_duration(timeout)),
        }),
    };
    (start.elapsed(), result)
}

/// Map a hickory error to a failure kind and a readable message.
pub fn classify(name: &Name, e: &NetError, timeout: Duration) -> LookupFailure {
    let (kind, what) = match e {
        NetError::Dns(DnsError::NoRecordsFound(nr))
            if nr.response_code == ResponseCode::NXDomain =>
        {
            ("nxdomain", "NXDOMAIN (after the search list)".to_owned())
        }
        NetError::Dns(DnsError::NoRecordsFound(_)) => {
            ("no_records", "no address records".to_owned())
        }
        NetError::Dns(DnsError::ResponseCode(ResponseCode::ServFail)) => {
            ("servfail", "SERVFAIL".to_owned())
        }
        NetError::Dns(DnsError::ResponseCode(ResponseCode::Refused)) => {
            ("refused", "REFUSED".to_owned())
        }
        NetError::Dns(DnsError::ResponseCode(code)) => ("rcode", format!("response code {code}")),
        NetError::Timeout => (
            "timeout",
            format!("timed out after {}", fmt_duration(timeout)),
        ),
        NetError::Io(io) => ("io", format!("I/O error: {io}")),
        NetError::NoConnections => ("io", "no connection to any nameserver".to_owned()),
        other => ("error", other.to_string()),
    };
    LookupFailure {
        kind,
        message: format!("{name}: {what}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated() {
        let ok = parse_names(&["kubernetes.default".into(), " www.example.com ".into()]);
        assert_eq!(ok.map(|v| v.len()).ok(), Some(2));
        assert!(parse_names(&[]).is_err());
        assert!(parse_names(&["".into()]).is_err());
        assert!(parse_names(&["a..b".into()]).is_err());
    }

    #[test]
    fn failures_are_classified() {
        let name = Name::from_str("kubernetes.default").expect("name");
        let t = Duration::from_secs(2);
        assert_eq!(classify(&name, &NetError::Timeout, t).kind, "timeout");
        assert_eq!(
            classify(
                &name,
                &NetError::Dns(DnsError::ResponseCode(ResponseCode::ServFail)),
                t
            ),
            LookupFailure {
                kind: "servfail",
                message: "kubernetes.default: SERVFAIL".into()
            }
        );
    }
}
