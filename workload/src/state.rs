//! Shared counters, the recent-samples window and readiness.
//!
//! Every mode owns one [`Stats`]: it records each probe/request as a success or
//! a failure with its latency, keeps lifetime totals plus a time-bounded window
//! of recent samples, and decides readiness from a [`ReadyPolicy`]. The HTTP
//! server answers `/readyz` and `/status` from it, so what the kubelet sees
//! (Ready condition) and what the harness reads (`/status`) always agree.
//!
//! Every time-dependent method has an `_at(now)` variant so the tests can use
//! synthetic instants (tokio's paused clock would need its `test-util`
//! feature, which would rebuild the whole tokio-dependent graph for tests).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::histogram::{Histogram, HistogramStatus};

/// Most samples a window keeps, whatever its span: bounds memory under
/// dns-load at high qps (oldest samples are dropped first).
pub const MAX_WINDOW_SAMPLES: usize = 50_000;

/// Failures are logged at most this often (the rest are counted and reported
/// as "N more suppressed" on the next line).
const FAILURE_LOG_EVERY: Duration = Duration::from_secs(1);

/// An outcome to record: `Ok(())`, or `Err((kind, message))` where `kind` is
/// a short snake_case label counted in `counters` and `message` becomes
/// `last_error`.
pub type Outcome = Result<(), (&'static str, String)>;

/// One recorded outcome.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    ok: bool,
    latency: Duration,
}

/// Recent samples, at most `span` old and at most `cap` many.
#[derive(Debug)]
pub struct Window {
    span: Duration,
    cap: usize,
    samples: VecDeque<Sample>,
    /// Successes among `samples`, kept incrementally so readiness checks are
    /// O(1) per record even at thousands of samples per second.
    ok_count: u64,
}

/// Statistics over the samples in a [`Window`].
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct WindowSummary {
    /// Samples in the window.
    pub total: u64,
    /// Successful samples.
    pub ok: u64,
    /// Failed samples.
    pub failed: u64,
    /// Median latency (nearest rank), `None` when the window is empty.
    pub p50: Option<Duration>,
    /// 95th percentile latency (nearest rank).
    pub p95: Option<Duration>,
    /// Largest latency.
    pub max: Option<Duration>,
}

impl WindowSummary {
    /// `ok / total`, `None` when the window is empty.
    pub fn success_ratio(&self) -> Option<f64> {
        (self.total > 0).then(|| self.ok as f64 / self.total as f64)
    }
}

impl Window {
    /// A window keeping samples for `span`, at most `cap` of them.
    pub fn new(span: Duration, cap: usize) -> Self {
        Self {
            span,
            cap: cap.max(1),
            samples: VecDeque::new(),
            ok_count: 0,
        }
    }

    /// How far back the window reaches.
    pub fn span(&self) -> Duration {
        self.span
    }

    /// Add a sample taken at `at` (samples arrive in time order).
    pub fn push(&mut self, at: Instant, ok: bool, latency: Duration) {
        self.prune(at);
        if self.samples.len() >= self.cap {
            self.pop_front();
        }
        self.samples.push_back(Sample { at, ok, latency });
        self.ok_count += u64::from(ok);
    }

    fn pop_front(&mut self) {
        if let Some(s) = self.samples.pop_front() {
            self.ok_count -= u64::from(s.ok);
        }
    }

    /// Drop samples older than `span` before `now`.
    pub fn prune(&mut self, now: Instant) {
        while let Some(front) = self.samples.front() {
            if now.saturating_duration_since(front.at) > self.span {
                self.pop_front();
            } else {
                break;
            }
        }
    }

    /// `(total, ok)` over the window at `now` (prunes first; O(1) amortized).
    pub fn counts(&mut self, now: Instant) -> (u64, u64) {
        self.prune(now);
        (self.samples.len() as u64, self.ok_count)
    }

    /// The `p` (0..=1) nearest-rank percentile of the latencies of the
    /// samples not older than `span`; `None` when there are none. Linear in
    /// the window's size (a selection, not a sort): readiness asks on every
    /// sample.
    pub fn latency_percentile(&self, now: Instant, p: f64) -> Option<Duration> {
        let mut latencies: Vec<Duration> = self
            .samples
            .iter()
            .filter(|s| now.saturating_duration_since(s.at) <= self.span)
            .map(|s| s.latency)
            .collect();
        if latencies.is_empty() {
            return None;
        }
        let rank = (p * latencies.len() as f64).ceil() as usize;
        let index = rank.clamp(1, latencies.len()) - 1;
        Some(*latencies.select_nth_unstable(index).1)
    }

    /// Counts and latency percentiles over the samples not older than `span`.
    pub fn summary(&self, now: Instant) -> WindowSummary {
        let mut latencies = Vec::with_capacity(self.samples.len());
        let mut ok = 0u64;
        for s in &self.samples {
            if now.saturating_duration_since(s.at) <= self.span {
                latencies.push(s.latency);
                ok += u64::from(s.ok);
            }
        }
        latencies.sort_unstable();
        let total = latencies.len() as u64;
        WindowSummary {
            total,
            ok,
            failed: total - ok,
            p50: percentile(&latencies, 0.50),
            p95: percentile(&latencies, 0.95),
            max: latencies.last().copied(),
        }
    }
}

/// Nearest-rank percentile of sorted values: the smallest value with at least
/// `p` of the values at or below it.
fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// The inputs of a readiness decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Observed {
    /// Samples in the window.
    pub window_total: u64,
    /// Successes in the window.
    pub window_ok: u64,
    /// Lifetime outcomes.
    pub total: u64,
    /// Successes since the last failure.
    pub consecutive_ok: u64,
}

/// When a mode counts as Ready (what `/readyz` answers).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ReadyPolicy {
    /// Always ready (serve after its startup delay, dns-load, sleep).
    Always,
    /// Ready while the window has samples and `ok/total >= threshold`
    /// (dns-canary, http-canary): an outage flips Ready within the window.
    SuccessRatio {
        /// Minimum success ratio, 0..=1.
        threshold: f64,
    },
    /// Ready while the last `n` calls all succeeded; right after start, while
    /// fewer than `n` calls were made, all of them (at least one) must have
    /// succeeded (api-canary).
    LastN {
        /// How many recent calls must have succeeded.
        n: u64,
    },
}

impl ReadyPolicy {
    /// Decide readiness from what was observed.
    pub fn is_ready(&self, seen: Observed) -> bool {
        match *self {
            ReadyPolicy::Always => true,
            ReadyPolicy::SuccessRatio { threshold } => {
                // (epsilon: 9/10 must count as >= 0.9 whatever the rounding)
                seen.window_total > 0
                    && seen.window_ok as f64 / seen.window_total as f64 + 1e-9 >= threshold
            }
            ReadyPolicy::LastN { n } => seen.total > 0 && seen.consecutive_ok >= n.min(seen.total),
        }
    }

    /// A short human description for logs and `/status`.
    pub fn describe(&self) -> String {
        match self {
            ReadyPolicy::Always => "always".into(),
            ReadyPolicy::SuccessRatio { threshold } => {
                format!("success ratio over the window >= {threshold}")
            }
            ReadyPolicy::LastN { n } => format!("last {n} calls succeeded"),
        }
    }
}

/// An extra readiness rule for the canaries: Ready only while a percentile
/// of the latencies over the window is at most `max` (flags
/// `--ready-max-latency`, `--ready-latency-percentile`). It turns "the
/// service got slow" into the pod's Ready condition turning False, which a
/// watch on the canary's pods sees with no polling; `/status` then says why
/// (`latency_gate.over`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencyGate {
    /// Which percentile of the window's latencies, in (0, 100].
    pub percentile: f64,
    /// The most it may be.
    pub max: Duration,
}

impl LatencyGate {
    /// `p95 latency over the window <= 200ms`.
    pub fn describe(&self) -> String {
        format!(
            "p{} latency over the window <= {}",
            self.percentile,
            crate::modes::fmt_duration(self.max)
        )
    }
}

/// The latency gate as `/status` shows it (`latency_gate`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct LatencyGateStatus {
    /// The percentile, in (0, 100].
    pub percentile: f64,
    /// The threshold in milliseconds.
    pub max_ms: f64,
    /// The percentile over the window now (nearest rank, successes and
    /// failures alike); `null` when the window is empty.
    pub observed_ms: Option<f64>,
    /// Whether `observed_ms > max_ms`: the canary is not Ready because it is
    /// slow (it may be failing too: see `window`).
    pub over: bool,
}

#[derive(Debug)]
struct Inner {
    total: u64,
    ok: u64,
    failed: u64,
    consecutive_ok: u64,
    last_error: Option<String>,
    last_error_at: Option<jiff::Timestamp>,
    counters: BTreeMap<&'static str, u64>,
    gauges: BTreeMap<&'static str, u64>,
    window: Window,
    /// Every outcome's latency since start.
    histogram: Histogram,
    /// Readiness at the last record, to log transitions.
    was_ready: bool,
    last_failure_log: Option<Instant>,
    suppressed_failures: u64,
}

/// A mode's counters, window and readiness; shared (`Arc`) between the mode's
/// loop and the HTTP server.
#[derive(Debug)]
pub struct Stats {
    mode: &'static str,
    policy: ReadyPolicy,
    latency_gate: Option<LatencyGate>,
    since: jiff::Timestamp,
    started: Instant,
    not_ready_before: Instant,
    config: serde_json::Value,
    inner: Mutex<Inner>,
}

/// What `GET /status` returns. Field names are stable: the harness parses them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Status {
    /// The mode: serve, dns-canary, dns-load, api-canary, http-canary, sleep.
    pub mode: String,
    /// What `/readyz` answers right now.
    pub ready: bool,
    /// Lifetime count of recorded outcomes (requests served, lookups, calls).
    pub total: u64,
    /// Lifetime successes.
    pub ok: u64,
    /// Lifetime failures (`total = ok + failed`).
    pub failed: u64,
    /// The most recent failure, e.g. `403 Forbidden: configmaps is forbidden: ...`
    /// or `kubernetes.default: timeout after 2s`; `null` if none yet.
    pub last_error: Option<String>,
    /// When `last_error` happened (RFC 3339), `null` if never.
    pub last_error_at: Option<String>,
    /// Latency percentiles over the window, successes and failures alike.
    pub latency_ms: Latency,
    /// Every outcome since start by latency bucket and outcome: subtract two
    /// reads to get the latency distribution between them
    /// ([`crate::histogram`]). Absent from versions before it existed.
    #[serde(default)]
    pub latency_histogram: HistogramStatus,
    /// The latency readiness rule and where the window stands against it;
    /// `null` when the mode has none.
    #[serde(default)]
    pub latency_gate: Option<LatencyGateStatus>,
    /// Counts over the window (what readiness is computed from).
    pub window: WindowStatus,
    /// Lifetime failure/outcome breakdown by kind (mode-specific, e.g.
    /// `forbidden`, `nxdomain`, `timeout`, `skipped`). Kinds appear once seen.
    pub counters: BTreeMap<String, u64>,
    /// Current values (mode-specific, e.g. `in_flight`, `ballast_mib`).
    pub gauges: BTreeMap<String, u64>,
    /// Process start time, RFC 3339 (UTC).
    pub since: String,
    /// Seconds since start.
    pub uptime_seconds: f64,
    /// The readiness rule, in words.
    pub ready_policy: String,
    /// The binary's version.
    pub version: String,
    /// The mode's effective settings (names, url, qps, ...).
    pub config: serde_json::Value,
}

/// Latency percentiles in milliseconds; all `null` when the window is empty.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Default)]
pub struct Latency {
    /// Median.
    pub p50: Option<f64>,
    /// 95th percentile.
    pub p95: Option<f64>,
    /// Maximum.
    pub max: Option<f64>,
}

/// Counts over the recent window.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Default)]
pub struct WindowStatus {
    /// Window length in seconds.
    pub seconds: f64,
    /// Samples in the window.
    pub total: u64,
    /// Successes in the window.
    pub ok: u64,
    /// Failures in the window.
    pub failed: u64,
    /// `ok / total`, `null` when the window is empty.
    pub success_ratio: Option<f64>,
}

fn slow_reason(g: &LatencyGateStatus) -> String {
    format!(
        "p{} latency over the window {}ms > {}ms",
        g.percentile,
        g.observed_ms.unwrap_or_default(),
        g.max_ms
    )
}

fn millis(d: Option<Duration>) -> Option<f64> {
    d.map(|d| (d.as_secs_f64() * 1e6).round() / 1e3)
}

impl Stats {
    /// New stats for `mode`, keeping a window of `window` and deciding
    /// readiness by `policy`. `config` is echoed in `/status`.
    pub fn new(
        mode: &'static str,
        window: Duration,
        policy: ReadyPolicy,
        config: serde_json::Value,
    ) -> Self {
        let started = Instant::now();
        Self {
            mode,
            policy,
            latency_gate: None,
            since: jiff::Timestamp::now(),
            started,
            not_ready_before: started,
            config,
            inner: Mutex::new(Inner {
                total: 0,
                ok: 0,
                failed: 0,
                consecutive_ok: 0,
                last_error: None,
                last_error_at: None,
                counters: BTreeMap::new(),
                gauges: BTreeMap::new(),
                window: Window::new(window, MAX_WINDOW_SAMPLES),
                histogram: Histogram::default(),
                was_ready: false,
                last_failure_log: None,
                suppressed_failures: 0,
            }),
        }
    }

    /// Not ready (whatever the policy says) until `delay` after start: the
    /// serve mode's startup delay.
    pub fn with_startup_delay(mut self, delay: Duration) -> Self {
        self.not_ready_before = self.started + delay;
        self
    }

    /// Not ready (whatever the policy says) while the window's latency is
    /// above the gate's threshold.
    pub fn with_latency_gate(mut self, gate: Option<LatencyGate>) -> Self {
        self.latency_gate = gate;
        self
    }

    /// The mode name.
    pub fn mode(&self) -> &'static str {
        self.mode
    }

    /// When the stats were created (process start, for practical purposes).
    pub fn started(&self) -> Instant {
        self.started
    }

    /// True once the startup delay (if any) has passed.
    pub fn started_up(&self, now: Instant) -> bool {
        now >= self.not_ready_before
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave counters inconsistent
        // in a way that matters for a canary; keep serving.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Record a success that took `latency`.
    pub fn success(&self, latency: Duration) {
        self.record_at(Instant::now(), latency, Ok(()));
    }

    /// Record a failure of `kind` (a short snake_case label counted in
    /// `counters`) with its message (becomes `last_error`).
    pub fn failure(&self, latency: Duration, kind: &'static str, error: impl Into<String>) {
        self.record_at(Instant::now(), latency, Err((kind, error.into())));
    }

    /// Record an outcome observed now.
    pub fn record(&self, latency: Duration, outcome: Outcome) {
        self.record_at(Instant::now(), latency, outcome);
    }

    /// Record an outcome observed at `now`.
    pub fn record_at(&self, now: Instant, latency: Duration, outcome: Outcome) {
        let mut inner = self.lock();
        self.apply(&mut inner, now, latency, outcome);
        self.note_readiness(&mut inner, now);
    }

    /// Record several outcomes observed together (a canary round), deciding
    /// readiness once at the end: a round with one good and one bad name
    /// logs no ready/not-ready flicker.
    pub fn record_round(&self, outcomes: impl IntoIterator<Item = (Duration, Outcome)>) {
        let now = Instant::now();
        let mut inner = self.lock();
        for (latency, outcome) in outcomes {
            self.apply(&mut inner, now, latency, outcome);
        }
        self.note_readiness(&mut inner, now);
    }

    fn apply(&self, inner: &mut Inner, now: Instant, latency: Duration, outcome: Outcome) {
        inner.total += 1;
        inner.window.push(now, outcome.is_ok(), latency);
        inner.histogram.record(latency, outcome.is_ok());
        match outcome {
            Ok(()) => {
                inner.ok += 1;
                inner.consecutive_ok += 1;
            }
            Err((kind, error)) => {
                inner.failed += 1;
                inner.consecutive_ok = 0;
                *inner.counters.entry(kind).or_default() += 1;
                let due = inner
                    .last_failure_log
                    .is_none_or(|t| now.saturating_duration_since(t) >= FAILURE_LOG_EVERY);
                if due {
                    let suppressed = std::mem::take(&mut inner.suppressed_failures);
                    if suppressed > 0 {
                        tracing::warn!(mode = self.mode, kind, suppressed, "{error}");
                    } else {
                        tracing::warn!(mode = self.mode, kind, "{error}");
                    }
                    inner.last_failure_log = Some(now);
                } else {
                    inner.suppressed_failures += 1;
                }
                inner.last_error = Some(error);
                inner.last_error_at = Some(jiff::Timestamp::now());
            }
        }
    }

    /// Log a readiness transition, if there was one.
    fn note_readiness(&self, inner: &mut Inner, now: Instant) {
        let ready = self.ready_locked(inner, now);
        if ready != inner.was_ready {
            inner.was_ready = ready;
            let (window_total, window_ok) = inner.window.counts(now);
            let slow = self.gate_locked(inner, now).filter(|g| g.over);
            tracing::info!(
                mode = self.mode,
                window_ok,
                window_total,
                consecutive_ok = inner.consecutive_ok,
                rule = %self.describe_policy(),
                "{}",
                match slow {
                    Some(g) => format!("NOT ready: {}", slow_reason(&g)),
                    None if ready => "ready".to_owned(),
                    None => "NOT ready".to_owned(),
                }
            );
        }
    }

    fn ready_locked(&self, inner: &mut Inner, now: Instant) -> bool {
        if !self.started_up(now) {
            return false;
        }
        let (window_total, window_ok) = inner.window.counts(now);
        self.policy.is_ready(Observed {
            window_total,
            window_ok,
            total: inner.total,
            consecutive_ok: inner.consecutive_ok,
        }) && !self.gate_locked(inner, now).is_some_and(|g| g.over)
    }

    /// Where the window stands against the latency gate, if there is one.
    fn gate_locked(&self, inner: &Inner, now: Instant) -> Option<LatencyGateStatus> {
        let gate = self.latency_gate?;
        let observed = inner
            .window
            .latency_percentile(now, gate.percentile / 100.0);
        Some(LatencyGateStatus {
            percentile: gate.percentile,
            max_ms: millis(Some(gate.max)).unwrap_or_default(),
            observed_ms: millis(observed),
            over: observed.is_some_and(|o| o > gate.max),
        })
    }

    /// The readiness rule in words, latency gate included.
    fn describe_policy(&self) -> String {
        match &self.latency_gate {
            Some(g) => format!("{} and {}", self.policy.describe(), g.describe()),
            None => self.policy.describe(),
        }
    }

    /// Why the mode is not ready when it is its latency, for `/readyz`:
    /// `p95 latency over the window 312ms > 200ms`.
    pub fn slow_reason_at(&self, now: Instant) -> Option<String> {
        let inner = self.lock();
        self.gate_locked(&inner, now)
            .filter(|g| g.over)
            .map(|g| slow_reason(&g))
    }

    /// Re-evaluate readiness without a new sample (time passing empties the
    /// window, or a startup delay ends) and log a transition if any.
    pub fn tick(&self) {
        let now = Instant::now();
        self.note_readiness(&mut self.lock(), now);
    }

    /// What `/readyz` answers now.
    pub fn is_ready(&self) -> bool {
        self.is_ready_at(Instant::now())
    }

    /// Readiness at `now`.
    pub fn is_ready_at(&self, now: Instant) -> bool {
        self.ready_locked(&mut self.lock(), now)
    }

    /// Add `n` to a counter that is not an outcome (e.g. `skipped`).
    pub fn count(&self, name: &'static str, n: u64) {
        *self.lock().counters.entry(name).or_default() += n;
    }

    /// Set a gauge (e.g. `in_flight`, `ballast_mib`).
    pub fn gauge(&self, name: &'static str, value: u64) {
        self.lock().gauges.insert(name, value);
    }

    /// The `/status` document now.
    pub fn status(&self) -> Status {
        self.status_at(Instant::now())
    }

    /// The `/status` document at `now`.
    pub fn status_at(&self, now: Instant) -> Status {
        let mut inner = self.lock();
        let ready = self.ready_locked(&mut inner, now);
        let w = inner.window.summary(now);
        Status {
            mode: self.mode.to_owned(),
            ready,
            total: inner.total,
            ok: inner.ok,
            failed: inner.failed,
            last_error: inner.last_error.clone(),
            last_error_at: inner.last_error_at.map(|t| t.to_string()),
            latency_ms: Latency {
                p50: millis(w.p50),
                p95: millis(w.p95),
                max: millis(w.max),
            },
            latency_histogram: inner.histogram.status(),
            latency_gate: self.gate_locked(&inner, now),
            window: WindowStatus {
                seconds: inner.window.span().as_secs_f64(),
                total: w.total,
                ok: w.ok,
                failed: w.failed,
                success_ratio: w.success_ratio(),
            },
            counters: inner
                .counters
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect(),
            gauges: inner
                .gauges
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect(),
            since: self.since.to_string(),
            uptime_seconds: now.saturating_duration_since(self.started).as_secs_f64(),
            ready_policy: self.describe_policy(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            config: self.config.clone(),
        }
    }

    /// One line for the periodic summary log.
    pub fn summary_line(&self) -> String {
        let s = self.status();
        let ms = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v}ms"));
        let mut line = format!(
            "ready={} total={} ok={} failed={} window={}/{} p50={} p95={} max={}",
            s.ready,
            s.total,
            s.ok,
            s.failed,
            s.window.ok,
            s.window.total,
            ms(s.latency_ms.p50),
            ms(s.latency_ms.p95),
            ms(s.latency_ms.max),
        );
        for (k, v) in s.counters.iter().chain(s.gauges.iter()) {
            line.push_str(&format!(" {k}={v}"));
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn ok() -> Outcome {
        Ok(())
    }

    fn timeout() -> Outcome {
        Err(("timeout", "kubernetes.default: timeout after 2s".to_owned()))
    }

    #[tokio::test]
    async fn empty_window_has_no_statistics() {
        let w = Window::new(secs(10), 100);
        let s = w.summary(Instant::now());
        assert_eq!(s, WindowSummary::default());
        assert_eq!(s.success_ratio(), None);
    }

    #[tokio::test]
    async fn percentiles_use_nearest_rank() {
        let mut w = Window::new(secs(10), 1000);
        let now = Instant::now();
        for i in 1..=100 {
            w.push(now, i % 10 != 0, ms(i));
        }
        let s = w.summary(now);
        assert_eq!((s.total, s.ok, s.failed), (100, 90, 10));
        assert_eq!(s.p50, Some(ms(50)));
        assert_eq!(s.p95, Some(ms(95)));
        assert_eq!(s.max, Some(ms(100)));
        assert_eq!(s.success_ratio(), Some(0.9));

        let mut one = Window::new(secs(10), 10);
        one.push(now, true, ms(7));
        let s = one.summary(now);
        assert_eq!(
            (s.p50, s.p95, s.max),
            (Some(ms(7)), Some(ms(7)), Some(ms(7)))
        );
    }

    #[tokio::test]
    async fn samples_age_out_of_the_window() {
        let mut w = Window::new(secs(10), 1000);
        let t0 = Instant::now();
        w.push(t0, false, ms(900));
        w.push(t0 + secs(6), true, ms(1));
        assert_eq!(w.summary(t0 + secs(6)).total, 2);
        assert_eq!(
            w.summary(t0 + secs(10)).total,
            2,
            "exactly span old is inside"
        );
        // the failure is now 11s old: outside, even before pruning
        let s = w.summary(t0 + secs(11));
        assert_eq!((s.total, s.ok, s.max), (1, 1, Some(ms(1))));
        assert_eq!(w.counts(t0 + secs(11)), (1, 1), "running counts agree");
        w.prune(t0 + secs(30));
        assert_eq!(w.summary(t0 + secs(30)).total, 0);
        assert!(w.samples.is_empty());
    }

    #[tokio::test]
    async fn window_is_capped() {
        let mut w = Window::new(secs(10), 3);
        let now = Instant::now();
        for i in 1..=5 {
            w.push(now, true, ms(i));
        }
        let s = w.summary(now);
        assert_eq!(s.total, 3);
        assert_eq!(s.p50, Some(ms(4)), "oldest samples dropped first");
        assert_eq!(w.counts(now), (3, 3));
    }

    #[tokio::test]
    async fn success_ratio_policy() {
        let p = ReadyPolicy::SuccessRatio { threshold: 0.9 };
        let w = |window_ok, window_total| Observed {
            window_total,
            window_ok,
            total: 100,
            consecutive_ok: 0,
        };
        assert!(!p.is_ready(w(0, 0)), "no samples: not ready");
        assert!(p.is_ready(w(9, 10)));
        assert!(p.is_ready(w(90, 100)), "exactly the threshold");
        assert!(!p.is_ready(w(8, 10)));
        assert!(ReadyPolicy::SuccessRatio { threshold: 0.0 }.is_ready(w(0, 3)));
        assert!(!ReadyPolicy::SuccessRatio { threshold: 0.0 }.is_ready(w(0, 0)));
    }

    #[tokio::test]
    async fn last_n_policy() {
        let p = ReadyPolicy::LastN { n: 3 };
        let seen = |total, consecutive_ok| Observed {
            total,
            consecutive_ok,
            ..Default::default()
        };
        assert!(!p.is_ready(seen(0, 0)), "no calls yet");
        assert!(p.is_ready(seen(1, 1)), "first call succeeded");
        assert!(!p.is_ready(seen(2, 0)), "second call failed");
        assert!(!p.is_ready(seen(4, 2)), "failure among the last 3");
        assert!(p.is_ready(seen(5, 3)));
        assert!(p.is_ready(seen(500, 400)));
    }

    #[tokio::test]
    async fn stats_flip_readiness_on_an_outage_and_back() {
        let stats = Stats::new(
            "dns-canary",
            secs(10),
            ReadyPolicy::SuccessRatio { threshold: 0.9 },
            serde_json::json!({}),
        );
        let t0 = stats.started();
        assert!(!stats.is_ready_at(t0), "nothing observed yet");
        let mut t = t0;
        for _ in 0..10 {
            stats.record_at(t, ms(2), ok());
            t += ms(500);
        }
        assert!(stats.is_ready_at(t));
        stats.record_at(t, ms(2000), timeout());
        assert!(stats.is_ready_at(t), "10/11 = 0.909");
        stats.record_at(t, ms(2000), timeout());
        assert!(!stats.is_ready_at(t), "10/12 < 0.9");
        let st = stats.status_at(t);
        assert_eq!((st.total, st.ok, st.failed), (12, 10, 2));
        assert_eq!(st.counters.get("timeout"), Some(&2));
        assert_eq!(
            st.last_error.as_deref(),
            Some("kubernetes.default: timeout after 2s")
        );
        assert!(st.last_error_at.is_some());
        assert_eq!(st.latency_ms.max, Some(2000.0));
        assert!(!st.ready);
        // the failures age out: ready again on the next success
        t += secs(11);
        stats.record_at(t, ms(1), ok());
        assert!(stats.is_ready_at(t));
        let st = stats.status_at(t);
        assert_eq!(st.window.total, 1);
        assert_eq!(st.window.success_ratio, Some(1.0));
        assert_eq!(st.total, 13, "lifetime totals are kept");
        // and with no samples at all the window empties: not ready
        assert!(!stats.is_ready_at(t + secs(11)));
    }

    #[tokio::test]
    async fn api_canary_readiness_follows_the_last_calls() {
        let stats = Stats::new(
            "api-canary",
            secs(10),
            ReadyPolicy::LastN { n: 3 },
            serde_json::json!({}),
        );
        let t = stats.started();
        let forbidden = || Err(("forbidden", "403 Forbidden".to_owned()));
        stats.record_at(t, ms(5), ok());
        assert!(stats.is_ready_at(t));
        stats.record_at(t, ms(5), forbidden());
        assert!(!stats.is_ready_at(t), "one 403 flips it");
        stats.record_at(t, ms(5), ok());
        stats.record_at(t, ms(5), ok());
        assert!(!stats.is_ready_at(t));
        stats.record_at(t, ms(5), ok());
        assert!(stats.is_ready_at(t), "three successes since");
        assert!(stats.is_ready_at(t + secs(60)), "not time-bound");
    }

    #[tokio::test]
    async fn a_round_is_judged_as_a_whole() {
        let stats = Stats::new(
            "dns-canary",
            secs(10),
            ReadyPolicy::SuccessRatio { threshold: 0.5 },
            serde_json::json!({}),
        );
        stats.record_round([(ms(1), ok()), (ms(2000), timeout())]);
        let st = stats.status();
        assert_eq!((st.total, st.ok, st.failed), (2, 1, 1));
        assert!(st.ready, "1/2 >= 0.5");
        assert_eq!(st.latency_ms.p50, Some(1.0));
    }

    #[tokio::test]
    async fn a_slow_window_turns_a_latency_gated_canary_unready_and_back() {
        let gate = LatencyGate {
            percentile: 95.0,
            max: ms(200),
        };
        let stats = Stats::new(
            "http-canary",
            secs(10),
            ReadyPolicy::SuccessRatio { threshold: 0.9 },
            serde_json::json!({}),
        )
        .with_latency_gate(Some(gate));
        let t0 = stats.started();
        let mut t = t0;
        for _ in 0..20 {
            stats.record_at(t, ms(20), ok());
            t += ms(500);
        }
        assert!(stats.is_ready_at(t));
        assert_eq!(stats.slow_reason_at(t), None);
        // Every request still succeeds, but slowly. With 21 samples the p95
        // is the 20th fastest: one slow sample is forgiven, two are not.
        stats.record_at(t, ms(450), ok());
        assert!(stats.is_ready_at(t), "1 slow of 21");
        let g = stats.status_at(t).latency_gate.expect("a gate");
        assert_eq!((g.percentile, g.max_ms, g.over), (95.0, 200.0, false));
        assert_eq!(g.observed_ms, Some(20.0));
        stats.record_at(t, ms(450), ok());
        assert!(!stats.is_ready_at(t), "all successes, yet not ready: slow");
        let st = stats.status_at(t);
        assert_eq!(st.window.success_ratio, Some(1.0));
        let g = st.latency_gate.expect("a gate");
        assert!(g.over, "{g:?}");
        assert_eq!(g.observed_ms, Some(450.0));
        assert!(
            st.ready_policy
                .contains("p95 latency over the window <= 200ms"),
            "{}",
            st.ready_policy
        );
        assert_eq!(
            stats.slow_reason_at(t).as_deref(),
            Some("p95 latency over the window 450ms > 200ms")
        );
        // The slow samples age out: ready again.
        t += secs(11);
        stats.record_at(t, ms(20), ok());
        assert!(stats.is_ready_at(t));
        assert!(!stats.status_at(t).latency_gate.expect("gate").over);
    }

    #[tokio::test]
    async fn no_gate_no_latency_rule() {
        let stats = Stats::new(
            "http-canary",
            secs(4),
            ReadyPolicy::SuccessRatio { threshold: 0.9 },
            serde_json::json!({}),
        );
        stats.success(secs(30));
        assert!(stats.is_ready(), "slow is fine without a gate");
        assert_eq!(stats.status().latency_gate, None);
    }

    #[tokio::test]
    async fn the_histogram_counts_every_outcome_since_start() {
        let stats = Stats::new(
            "dns-canary",
            secs(1),
            ReadyPolicy::SuccessRatio { threshold: 0.9 },
            serde_json::json!({}),
        );
        let t = stats.started();
        stats.record_at(t, ms(1), ok());
        stats.record_at(t, ms(2000), timeout());
        // Long after the window forgot them, the histogram has them.
        let st = stats.status_at(t + secs(60));
        assert_eq!(st.window.total, 0);
        let h = &st.latency_histogram;
        assert_eq!(h.count, st.total);
        assert_eq!(h.sum_ms, 2001.0);
        let ok: u64 = h.buckets.iter().map(|b| b.ok).sum();
        let failed: u64 = h.buckets.iter().map(|b| b.failed).sum();
        assert_eq!((ok, failed), (1, 1));
        let slow = h
            .buckets
            .iter()
            .find(|b| b.failed == 1)
            .expect("the timeout");
        assert!(
            slow.le_us
                .is_some_and(|le| (2_000_000..2_400_000).contains(&le)),
            "{slow:?}"
        );
    }

    #[tokio::test]
    async fn startup_delay_gates_readiness() {
        let stats = Stats::new(
            "serve",
            secs(10),
            ReadyPolicy::Always,
            serde_json::json!({}),
        )
        .with_startup_delay(secs(5));
        let t0 = stats.started();
        assert!(!stats.is_ready_at(t0));
        assert!(!stats.is_ready_at(t0 + ms(4999)));
        assert!(stats.is_ready_at(t0 + secs(5)));
    }

    #[tokio::test]
    async fn status_serializes_with_stable_names() {
        let stats = Stats::new(
            "api-canary",
            secs(10),
            ReadyPolicy::LastN { n: 3 },
            serde_json::json!({"resource": "configmaps"}),
        );
        stats.failure(ms(3), "forbidden", "403 Forbidden");
        stats.count("skipped", 2);
        stats.gauge("in_flight", 1);
        let v = serde_json::to_value(stats.status()).expect("serialize");
        for key in [
            "mode",
            "ready",
            "total",
            "ok",
            "failed",
            "last_error",
            "latency_ms",
            "since",
            "window",
            "counters",
            "gauges",
        ] {
            assert!(v.get(key).is_some(), "missing {key}: {v}");
        }
        assert_eq!(v["latency_ms"]["p50"], 3.0);
        assert_eq!(v["counters"]["forbidden"], 1);
        assert_eq!(v["counters"]["skipped"], 2);
        assert_eq!(v["gauges"]["in_flight"], 1);
        assert!(
            v["since"]
                .as_str()
                .is_some_and(|s| s.parse::<jiff::Timestamp>().is_ok())
        );
        let back: Status = serde_json::from_value(v).expect("round trip");
        assert_eq!(back.mode, "api-canary");
    }
}
