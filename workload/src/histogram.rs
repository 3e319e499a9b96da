//! A lifetime latency histogram with fixed, log-spaced buckets.
//!
//! Every outcome a mode records is counted in the bucket of its latency,
//! split by success and failure, and the counts only ever grow. Because the
//! bucket bounds are the same in every process of every version, two reads of
//! `/status` (say, before a fault and after it) give the latency distribution
//! of exactly what happened between them: subtract the earlier counts from the
//! later ones, bucket by bucket. Percentiles over *any* window the reader
//! chooses come out of that difference, which a sliding window of recent
//! samples (`latency_ms`) cannot give.
//!
//! Bounds are `100µs × 2^(i/4)`, rounded to whole microseconds, for
//! `i = 0..=`[`LAST_BOUND`] (100µs … 62s), plus one overflow bucket: four
//! buckets per doubling, so a percentile read from the buckets is within 19%
//! of the true value (less with interpolation), from sub-millisecond DNS
//! answers to multi-second timeouts. Only non-empty buckets are serialized.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Index of the last finite bound: `100µs × 2^(77/4)` ≈ 62s.
pub const LAST_BOUND: usize = 77;
/// Number of buckets: the finite bounds plus the overflow bucket.
pub const BUCKETS: usize = LAST_BOUND + 2;
/// The smallest bound, in microseconds.
const FIRST_BOUND_US: f64 = 100.0;
/// Buckets per doubling of latency.
const PER_OCTAVE: f64 = 4.0;

/// The scheme, in words, echoed in `/status` so a reader can tell a future
/// change of bounds from a restart.
pub const SCHEME: &str = "le_us = round(100 * 2^(i/4)), i = 0..=77, then +Inf";

/// Upper bound (inclusive) of bucket `i` in microseconds; `None` for the
/// overflow bucket.
pub fn bound_us(i: usize) -> Option<u64> {
    (i <= LAST_BOUND).then(|| (FIRST_BOUND_US * 2f64.powf(i as f64 / PER_OCTAVE)).round() as u64)
}

/// The bucket a latency falls in: the first whose bound is at least it.
pub fn bucket_of(latency: Duration) -> usize {
    let us = latency.as_micros();
    if us <= FIRST_BOUND_US as u128 {
        return 0;
    }
    // Estimate from the logarithm, then correct for rounding at the edges.
    let estimate = (PER_OCTAVE * (us as f64 / FIRST_BOUND_US).log2()).ceil();
    let mut i = (estimate.max(0.0) as usize).min(LAST_BOUND + 1);
    while i > 0 && bound_us(i - 1).is_some_and(|b| u128::from(b) >= us) {
        i -= 1;
    }
    while bound_us(i).is_some_and(|b| u128::from(b) < us) {
        i += 1;
    }
    i
}

/// Lifetime counts per bucket, by outcome.
#[derive(Debug, Clone)]
pub struct Histogram {
    ok: [u64; BUCKETS],
    failed: [u64; BUCKETS],
    count: u64,
    sum: Duration,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            ok: [0; BUCKETS],
            failed: [0; BUCKETS],
            count: 0,
            sum: Duration::ZERO,
        }
    }
}

impl Histogram {
    /// Count one outcome.
    pub fn record(&mut self, latency: Duration, ok: bool) {
        let i = bucket_of(latency);
        if ok {
            self.ok[i] += 1;
        } else {
            self.failed[i] += 1;
        }
        self.count += 1;
        self.sum = self.sum.saturating_add(latency);
    }

    /// The `/status` form: non-empty buckets only.
    pub fn status(&self) -> HistogramStatus {
        HistogramStatus {
            scheme: SCHEME.to_owned(),
            count: self.count,
            sum_ms: (self.sum.as_secs_f64() * 1e6).round() / 1e3,
            buckets: (0..BUCKETS)
                .filter(|&i| self.ok[i] + self.failed[i] > 0)
                .map(|i| Bucket {
                    gt_us: i.checked_sub(1).and_then(bound_us).unwrap_or(0),
                    le_us: bound_us(i),
                    ok: self.ok[i],
                    failed: self.failed[i],
                })
                .collect(),
        }
    }
}

/// The histogram as `/status` shows it (`latency_histogram`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct HistogramStatus {
    /// How the bounds are made ([`SCHEME`]).
    pub scheme: String,
    /// Lifetime outcomes counted (equals `total` of `/status`).
    pub count: u64,
    /// Sum of their latencies in milliseconds (for a mean over a window).
    pub sum_ms: f64,
    /// The non-empty buckets, in increasing order of bound.
    pub buckets: Vec<Bucket>,
}

/// One bucket: outcomes whose latency was above `gt_us` (the previous
/// bucket's bound) and at most `le_us`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Bucket {
    /// Lower bound in microseconds, exclusive (0 for the first bucket).
    #[serde(default)]
    pub gt_us: u64,
    /// Upper bound in microseconds, inclusive; `null` for the overflow bucket.
    pub le_us: Option<u64>,
    /// Successes in this bucket.
    pub ok: u64,
    /// Failures in this bucket.
    pub failed: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    #[test]
    fn bounds_are_log_spaced_and_increasing() {
        assert_eq!(bound_us(0), Some(100));
        assert_eq!(bound_us(4), Some(200));
        assert_eq!(bound_us(40), Some(102_400));
        assert_eq!(bound_us(LAST_BOUND), Some(62_348_702));
        assert_eq!(bound_us(LAST_BOUND + 1), None);
        for i in 1..=LAST_BOUND {
            let (a, b) = (bound_us(i - 1).unwrap(), bound_us(i).unwrap());
            assert!(b > a, "{i}: {a} !< {b}");
            assert!(
                (b as f64 / a as f64) < 1.2,
                "{i}: ratio {}",
                b as f64 / a as f64
            );
        }
    }

    #[test]
    fn every_latency_lands_in_the_first_bucket_that_holds_it() {
        assert_eq!(bucket_of(Duration::ZERO), 0);
        assert_eq!(bucket_of(us(100)), 0);
        assert_eq!(bucket_of(us(101)), 1);
        assert_eq!(bucket_of(us(200)), 4);
        assert_eq!(bucket_of(us(201)), 5);
        assert_eq!(bucket_of(Duration::from_secs(62)), LAST_BOUND);
        assert_eq!(bucket_of(Duration::from_secs(63)), LAST_BOUND + 1);
        assert_eq!(bucket_of(Duration::from_secs(86_400)), LAST_BOUND + 1);
        // Exhaustively at every bound and one microsecond either side.
        for i in 0..=LAST_BOUND {
            let b = bound_us(i).unwrap();
            assert_eq!(bucket_of(us(b)), i, "at {b}");
            assert_eq!(bucket_of(us(b + 1)), i + 1, "above {b}");
            if i > 0 {
                assert_eq!(bucket_of(us(b - 1)), i, "below {b}");
            }
        }
    }

    #[test]
    fn status_lists_non_empty_buckets_by_outcome() {
        let mut h = Histogram::default();
        h.record(us(150), true);
        h.record(us(150), false);
        h.record(us(90), true);
        h.record(Duration::from_secs(100), false);
        let s = h.status();
        assert_eq!(s.count, 4);
        assert_eq!(s.sum_ms, 100_000.39);
        assert_eq!(
            s.buckets,
            vec![
                Bucket {
                    gt_us: 0,
                    le_us: Some(100),
                    ok: 1,
                    failed: 0
                },
                Bucket {
                    gt_us: 141,
                    le_us: Some(168),
                    ok: 1,
                    failed: 1
                },
                Bucket {
                    gt_us: 62_348_702,
                    le_us: None,
                    ok: 0,
                    failed: 1
                },
            ]
        );
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["buckets"][2]["le_us"], serde_json::Value::Null);
    }
}
