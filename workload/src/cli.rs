//! Command line: one subcommand per mode, every flag with a `WORKLOAD_*`
//! environment fallback so a manifest can set knobs through `env:` as well as
//! `args:`. Durations are humantime-like (`500ms`, `5s`, `2m`, `1h30m`; a bare
//! number is seconds).

use std::ffi::OsString;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// breakfix-workload: the app and the canaries that make injected faults
/// observable from inside a cluster. Every mode serves /healthz, /readyz,
/// /status and / on --port. Without a mode, runs `serve`.
#[derive(Debug, Parser)]
#[command(name = "breakfix-workload", version, max_term_width = 100)]
pub struct Cli {
    /// What to run (default: serve).
    #[command(subcommand)]
    pub mode: Mode,
}

/// The modes. Each is a module under [`crate::modes`].
#[derive(Debug, Subcommand)]
pub enum Mode {
    /// The application: health endpoints with injectable startup delay, probe
    /// latency, liveness failure and memory ballast.
    Serve(ServeArgs),
    /// Resolve names in a loop through the pod's resolv.conf; Ready while the
    /// recent success ratio is at least --ready-threshold.
    DnsCanary(DnsCanaryArgs),
    /// Generate DNS lookup load at a fixed rate with bounded concurrency.
    DnsLoad(DnsLoadArgs),
    /// List a resource in the pod's namespace with its ServiceAccount; Ready
    /// while the last --ready-after calls succeeded.
    ApiCanary(ApiCanaryArgs),
    /// GET a URL in a loop (new connection each time); Ready while the recent
    /// success ratio is at least --ready-threshold.
    HttpCanary(HttpCanaryArgs),
    /// Generate HTTP GET load at a fixed rate with bounded concurrency.
    HttpLoad(HttpLoadArgs),
    /// Sleep, then exit 0 (a slow Job/CronJob payload).
    Sleep(SleepArgs),
}

impl Mode {
    /// The mode's name as on the command line and in `/status`.
    pub fn name(&self) -> &'static str {
        match self {
            Mode::Serve(_) => "serve",
            Mode::DnsCanary(_) => "dns-canary",
            Mode::DnsLoad(_) => "dns-load",
            Mode::ApiCanary(_) => "api-canary",
            Mode::HttpCanary(_) => "http-canary",
            Mode::HttpLoad(_) => "http-load",
            Mode::Sleep(_) => "sleep",
        }
    }

    /// The flags every mode has.
    pub fn common(&self) -> &CommonArgs {
        match self {
            Mode::Serve(a) => &a.common,
            Mode::DnsCanary(a) => &a.common,
            Mode::DnsLoad(a) => &a.common,
            Mode::ApiCanary(a) => &a.common,
            Mode::HttpCanary(a) => &a.common,
            Mode::HttpLoad(a) => &a.common,
            Mode::Sleep(a) => &a.common,
        }
    }
}

const SUBCOMMANDS: &[&str] = &[
    "serve",
    "dns-canary",
    "dns-load",
    "api-canary",
    "http-canary",
    "http-load",
    "sleep",
    "help",
];

/// Parse the process arguments, defaulting to `serve` when no mode is named
/// (so `breakfix-workload --startup-delay 5s` and an empty `args:` both serve).
pub fn parse() -> Cli {
    Cli::parse_from(with_default_mode(std::env::args_os()))
}

/// Insert `serve` after the program name unless the first argument already
/// names a mode or asks for top-level help/version.
pub fn with_default_mode(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut args: Vec<OsString> = args.into_iter().collect();
    let first = args.get(1).and_then(|a| a.to_str()).map(str::to_owned);
    let keep = match first.as_deref() {
        Some(f) => SUBCOMMANDS.contains(&f) || matches!(f, "-h" | "--help" | "-V" | "--version"),
        None => false,
    };
    if !keep {
        args.insert(1.min(args.len()), OsString::from("serve"));
    }
    args
}

/// Flags every mode accepts.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// HTTP port for /healthz, /readyz, /status and / (0 picks a free port).
    // Not WORKLOAD_PORT: Kubernetes injects `<SERVICE>_PORT=tcp://...` into
    // every pod for every Service, so a Service named "workload" would set it.
    #[arg(long, env = "WORKLOAD_LISTEN_PORT", default_value_t = 8080)]
    pub port: u16,
    /// Window over which latency percentiles and success ratios are computed.
    #[arg(long, env = "WORKLOAD_WINDOW", default_value = "10s", value_parser = parse_duration)]
    pub window: Duration,
    /// How often to log a one-line summary of the counters (0 = never).
    #[arg(long, env = "WORKLOAD_SUMMARY_INTERVAL", default_value = "30s", value_parser = parse_duration)]
    pub summary_interval: Duration,
}

/// `serve` flags.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Flags every mode has.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Before this has passed, /healthz and /readyz answer 503 "starting"
    /// (to make a too-short startup probe bite).
    #[arg(long, env = "WORKLOAD_STARTUP_DELAY", default_value = "0s", value_parser = parse_duration)]
    pub startup_delay: Duration,
    /// Added to every /healthz and /readyz response (to make a too-tight
    /// probe timeoutSeconds bite).
    #[arg(long, env = "WORKLOAD_RESPONSE_DELAY", default_value = "0s", value_parser = parse_duration)]
    pub response_delay: Duration,
    /// Allocate and touch this many MiB at start.
    #[arg(long, env = "WORKLOAD_BALLAST_MIB", default_value_t = 0)]
    pub ballast_mib: u64,
    /// Then keep allocating (and touching) this many MiB per second, e.g. to
    /// run into a memory limit and get OOMKilled.
    #[arg(long, env = "WORKLOAD_BALLAST_GROWTH_MIB_PER_SEC", default_value_t = 0.0, value_parser = parse_non_negative)]
    pub ballast_growth_mib_per_sec: f64,
    /// Stop growing the ballast at this size (default: never stop).
    #[arg(long, env = "WORKLOAD_BALLAST_MAX_MIB")]
    pub ballast_max_mib: Option<u64>,
    /// From this long after start, /healthz answers 500 (a liveness failure).
    #[arg(long, env = "WORKLOAD_FAIL_LIVENESS_AFTER", value_parser = parse_duration)]
    pub fail_liveness_after: Option<Duration>,
    /// How long serving one request to / takes (slept while holding one of
    /// --capacity slots; probes and /status are not affected).
    #[arg(long, env = "WORKLOAD_SERVICE_TIME", default_value = "0s", value_parser = parse_duration)]
    pub service_time: Duration,
    /// Requests to / served at once; the rest wait in line, first come first
    /// served (0 = no limit). With --service-time this is the pod's capacity:
    /// capacity ÷ service time requests per second.
    #[arg(long, env = "WORKLOAD_CAPACITY", default_value_t = 0)]
    pub capacity: u32,
    /// CPU time each request to / burns (after its --service-time, in its
    /// --capacity slot), counted on the serving thread's own CPU clock: a
    /// CPU limit that throttles the container stretches it in wall time,
    /// so a squeezed limit makes every client slower, as in a real service.
    #[arg(long, env = "WORKLOAD_CPU_PER_REQUEST", default_value = "0s", value_parser = parse_duration)]
    pub cpu_per_request: Duration,
}

/// The canaries' optional latency rule for readiness.
#[derive(Debug, Clone, Args)]
pub struct LatencyGateArgs {
    /// Not Ready while the --ready-latency-percentile of the latencies over
    /// --window is above this (e.g. 200ms): a slow service flips the
    /// canary's Ready condition, as a failing one does. Default: no rule.
    #[arg(long, env = "WORKLOAD_READY_MAX_LATENCY", value_parser = parse_duration)]
    pub ready_max_latency: Option<Duration>,
    /// Which percentile --ready-max-latency applies to: p50, p95, p99, p99.9
    /// (or the bare number).
    #[arg(long, env = "WORKLOAD_READY_LATENCY_PERCENTILE", default_value = "p95", value_parser = parse_percentile)]
    pub ready_latency_percentile: f64,
}

impl LatencyGateArgs {
    /// The rule, when --ready-max-latency is given.
    pub fn gate(&self) -> Option<crate::state::LatencyGate> {
        self.ready_max_latency.map(|max| crate::state::LatencyGate {
            percentile: self.ready_latency_percentile,
            max,
        })
    }
}

/// Which address records a DNS lookup asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IpStrategy {
    /// A only.
    Ipv4,
    /// AAAA only.
    Ipv6,
    /// A and AAAA in parallel, as glibc does: twice the queries per search name.
    Both,
    /// A, and AAAA only when A has no answer.
    Ipv4ThenIpv6,
}

/// DNS flags shared by dns-canary and dns-load.
#[derive(Debug, Clone, Args)]
pub struct DnsArgs {
    /// Names to resolve, comma-separated. Names with fewer dots than resolv.conf's
    /// ndots are tried with each search domain first (the ndots:5 amplification).
    #[arg(long, env = "WORKLOAD_NAMES", value_delimiter = ',', required = true)]
    pub names: Vec<String>,
    /// Per-lookup deadline, search-list walk included.
    #[arg(long, env = "WORKLOAD_TIMEOUT", default_value = "2s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Resolver configuration (search domains, ndots, nameservers).
    #[arg(long, env = "WORKLOAD_RESOLV_CONF", default_value = "/etc/resolv.conf")]
    pub resolv_conf: std::path::PathBuf,
    /// Send queries here instead of resolv.conf's nameservers (IP or IP:PORT);
    /// search domains and ndots still come from resolv.conf.
    #[arg(long, env = "WORKLOAD_NAMESERVER", value_parser = parse_nameserver)]
    pub nameserver: Option<SocketAddr>,
}

/// `dns-canary` flags.
#[derive(Debug, Clone, Args)]
pub struct DnsCanaryArgs {
    /// Flags every mode has.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Names, timeout and resolver configuration.
    #[command(flatten)]
    pub dns: DnsArgs,
    /// Pause between rounds (each round resolves every name once).
    #[arg(long, env = "WORKLOAD_INTERVAL", default_value = "500ms", value_parser = parse_duration)]
    pub interval: Duration,
    /// Ready while the success ratio over --window is at least this.
    #[arg(long, env = "WORKLOAD_READY_THRESHOLD", default_value_t = 0.9, value_parser = parse_ratio)]
    pub ready_threshold: f64,
    /// Records to ask for (default A only: one query per search name).
    #[arg(long, env = "WORKLOAD_IP_STRATEGY", value_enum, default_value_t = IpStrategy::Ipv4)]
    pub ip_strategy: IpStrategy,
    /// The optional latency rule for readiness.
    #[command(flatten)]
    pub latency: LatencyGateArgs,
}

/// `dns-load` flags.
#[derive(Debug, Clone, Args)]
pub struct DnsLoadArgs {
    /// Flags every mode has.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Names, timeout and resolver configuration.
    #[command(flatten)]
    pub dns: DnsArgs,
    /// Lookups started per second (each costs one query per search name and
    /// record type until one answers).
    #[arg(long, env = "WORKLOAD_QPS", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub qps: u32,
    /// Most lookups in flight at once; a lookup due while all slots are busy is
    /// skipped and counted as `skipped` (the load never queues up unboundedly).
    #[arg(long, env = "WORKLOAD_CONCURRENCY", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: u32,
    /// Records to ask for (default both, like glibc: A and AAAA per search name).
    #[arg(long, env = "WORKLOAD_IP_STRATEGY", value_enum, default_value_t = IpStrategy::Both)]
    pub ip_strategy: IpStrategy,
}

/// `api-canary` flags.
#[derive(Debug, Clone, Args)]
pub struct ApiCanaryArgs {
    /// Flags every mode has.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Pause between calls.
    #[arg(long, env = "WORKLOAD_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    pub interval: Duration,
    /// Resource (plural) to list in the pod's namespace.
    #[arg(long, env = "WORKLOAD_RESOURCE", default_value = "configmaps")]
    pub resource: String,
    /// apiVersion of the resource (`v1` for the core group, else `group/version`).
    #[arg(long, env = "WORKLOAD_API_VERSION", default_value = "v1")]
    pub api_version: String,
    /// Namespace to list in (default: the ServiceAccount's namespace file, else
    /// the kubeconfig context's).
    #[arg(long, env = "WORKLOAD_NAMESPACE")]
    pub namespace: Option<String>,
    /// Per-call deadline.
    #[arg(long, env = "WORKLOAD_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Ready while this many most recent calls all succeeded (fewer right after
    /// start: ready on the first success).
    #[arg(long, env = "WORKLOAD_READY_AFTER", default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    pub ready_after: u64,
    /// The optional latency rule for readiness.
    #[command(flatten)]
    pub latency: LatencyGateArgs,
}

/// `http-canary` flags.
#[derive(Debug, Clone, Args)]
pub struct HttpCanaryArgs {
    /// Flags every mode has.
    #[command(flatten)]
    pub common: CommonArgs,
    /// http:// URL to GET. The host is resolved through resolv.conf each time.
    #[arg(long, env = "WORKLOAD_URL")]
    pub url: String,
    /// Pause between requests.
    #[arg(long, env = "WORKLOAD_INTERVAL", default_value = "500ms", value_parser = parse_duration)]
    pub interval: Duration,
    /// Per-request deadline (DNS, connect, response and body).
    #[arg(long, env = "WORKLOAD_TIMEOUT", default_value = "2s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Ready while the success (2xx) ratio over --window is at least this.
    #[arg(long, env = "WORKLOAD_READY_THRESHOLD", default_value_t = 0.9, value_parser = parse_ratio)]
    pub ready_threshold: f64,
    /// Resolver configuration used for the URL's host.
    #[arg(long, env = "WORKLOAD_RESOLV_CONF", default_value = "/etc/resolv.conf")]
    pub resolv_conf: std::path::PathBuf,
    /// The optional latency rule for readiness.
    #[command(flatten)]
    pub latency: LatencyGateArgs,
}

/// `http-load` flags.
#[derive(Debug, Clone, Args)]
pub struct HttpLoadArgs {
    /// Flags every mode has.
    #[command(flatten)]
    pub common: CommonArgs,
    /// http:// URL to GET. The host is resolved through resolv.conf.
    #[arg(long, env = "WORKLOAD_URL")]
    pub url: String,
    /// Requests started per second.
    #[arg(long, env = "WORKLOAD_QPS", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub qps: u32,
    /// Most requests in flight at once; a request due while all slots are
    /// busy is skipped and counted as `skipped` (the load never queues up on
    /// the client side).
    #[arg(long, env = "WORKLOAD_CONCURRENCY", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: u32,
    /// Per-request deadline (DNS, connect, response and body).
    #[arg(long, env = "WORKLOAD_TIMEOUT", default_value = "2s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Resolver configuration used for the URL's host.
    #[arg(long, env = "WORKLOAD_RESOLV_CONF", default_value = "/etc/resolv.conf")]
    pub resolv_conf: std::path::PathBuf,
}

/// `sleep` flags.
#[derive(Debug, Clone, Args)]
pub struct SleepArgs {
    /// Flags every mode has.
    #[command(flatten)]
    pub common: CommonArgs,
    /// How long to sleep before exiting 0.
    #[arg(long, env = "WORKLOAD_DURATION", default_value = "120s", value_parser = parse_duration)]
    pub duration: Duration,
}

/// Parse `500ms`, `5s`, `2m`, `1h30m` (jiff's friendly format, or ISO 8601
/// `PT5S`); a bare integer is seconds. Negative durations are rejected.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let signed: jiff::SignedDuration = s
        .parse()
        .map_err(|e| format!("{s:?} is not a duration like 500ms, 5s, 2m or 1h30m ({e})"))?;
    Duration::try_from(signed).map_err(|_| format!("{s:?}: a duration cannot be negative"))
}

fn parse_ratio(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} is not a ratio between 0 and 1")),
    }
}

/// `p95`, `95`, `p99.9`, `50`: a percentile in (0, 100].
pub fn parse_percentile(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let n = t.strip_prefix('p').unwrap_or(t);
    match n.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 100.0 => Ok(v),
        _ => Err(format!(
            "{s:?} is not a percentile like p50, p95, p99 or p99.9"
        )),
    }
}

fn parse_non_negative(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("{s:?} is not a non-negative number")),
    }
}

/// `10.96.0.10`, `10.96.0.10:53`, `::1`, `[::1]:5353`; the port defaults to 53.
pub fn parse_nameserver(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    s.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| format!("{s:?} is not an IP or IP:PORT"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_args(args: &[&str]) -> Result<Cli, clap::Error> {
        let argv = std::iter::once("breakfix-workload")
            .chain(args.iter().copied())
            .map(OsString::from);
        Cli::try_parse_from(with_default_mode(argv))
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("200ms"), Ok(Duration::from_millis(200)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("PT1.5S"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("-5s").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn serve_is_the_default_mode() {
        let cli = parse_args(&[]).expect("no args");
        assert_eq!(cli.mode.name(), "serve");
        let cli = parse_args(&["--startup-delay", "5s", "--port", "9000"]).expect("serve flags");
        let Mode::Serve(a) = cli.mode else {
            panic!("not serve")
        };
        assert_eq!(a.startup_delay, Duration::from_secs(5));
        assert_eq!(a.common.port, 9000);
    }

    #[test]
    fn serve_burns_cpu_per_request_only_when_asked() {
        let Mode::Serve(a) = parse_args(&[]).expect("serve").mode else {
            panic!("not serve")
        };
        assert_eq!(a.cpu_per_request, Duration::ZERO);
        let Mode::Serve(a) = parse_args(&["--cpu-per-request", "10ms", "--capacity", "2"])
            .expect("serve")
            .mode
        else {
            panic!("not serve")
        };
        assert_eq!(a.cpu_per_request, Duration::from_millis(10));
        assert!(parse_args(&["--cpu-per-request", "lots"]).is_err());
        assert!(
            parse_args(&[
                "http-canary",
                "--url",
                "http://x/",
                "--cpu-per-request",
                "1ms"
            ])
            .is_err()
        );
    }

    #[test]
    fn dns_canary_flags() {
        let cli = parse_args(&["dns-canary", "--names", "a,b.c", "--interval", "200ms"])
            .expect("dns-canary");
        let Mode::DnsCanary(a) = cli.mode else {
            panic!("not dns-canary")
        };
        assert_eq!(a.dns.names, vec!["a", "b.c"]);
        assert_eq!(a.interval, Duration::from_millis(200));
        assert_eq!(a.ready_threshold, 0.9);
        assert!(parse_args(&["dns-canary", "--names", "a", "--ready-threshold", "1.5"]).is_err());
    }

    #[test]
    fn percentiles() {
        assert_eq!(parse_percentile("p95"), Ok(95.0));
        assert_eq!(parse_percentile("99.9"), Ok(99.9));
        assert_eq!(parse_percentile("p100"), Ok(100.0));
        assert!(parse_percentile("p0").is_err());
        assert!(parse_percentile("101").is_err());
        assert!(parse_percentile("fast").is_err());
    }

    #[test]
    fn canaries_take_a_latency_rule() {
        let cli = parse_args(&[
            "http-canary",
            "--url",
            "http://web/",
            "--ready-max-latency",
            "200ms",
            "--ready-latency-percentile",
            "p99",
        ])
        .expect("http-canary");
        let Mode::HttpCanary(a) = cli.mode else {
            panic!("not http-canary")
        };
        let gate = a.latency.gate().expect("a gate");
        assert_eq!(
            (gate.percentile, gate.max),
            (99.0, Duration::from_millis(200))
        );
        let cli = parse_args(&["api-canary"]).expect("api-canary");
        let Mode::ApiCanary(a) = cli.mode else {
            panic!("not api-canary")
        };
        assert_eq!(a.latency.gate(), None, "no rule unless asked");
        assert!(parse_args(&["serve", "--ready-max-latency", "1s"]).is_err());
    }

    #[test]
    fn nameservers() {
        assert_eq!(
            parse_nameserver("10.96.0.10"),
            Ok("10.96.0.10:53".parse().expect("addr"))
        );
        assert_eq!(
            parse_nameserver("127.0.0.1:5353"),
            Ok("127.0.0.1:5353".parse().expect("addr"))
        );
        assert!(parse_nameserver("dns.local").is_err());
    }
}
