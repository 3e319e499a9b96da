//! Latency from a canary's own histogram: each canary pod's `/status`
//! `latency_histogram` (lifetime counts in fixed buckets) read at the two
//! ends of a window; the later counts minus the earlier are the checks made
//! in between, summed over the pods. Two reads per window, no polling.

use std::collections::{BTreeMap, BTreeSet};

use super::availability::{CanaryCounters, CanaryRead, HistogramRead};
use crate::slo::measurement::{LatencyBucket, LatencyWindow};

/// Counts per bucket, keyed by upper bound (`None` last: the overflow).
#[derive(Debug, Default)]
struct Sum {
    /// upper bound → (lower bound, count); `u64::MAX` stands for no bound.
    buckets: BTreeMap<u64, (u64, u64)>,
    count: u64,
    sum_ms: f64,
}

impl Sum {
    /// Adds `later` minus `earlier` (`None`: everything in `later`).
    fn add(&mut self, later: &HistogramRead, earlier: Option<&HistogramRead>) {
        let before: BTreeMap<Option<u64>, u64> = earlier
            .map(|h| {
                h.buckets
                    .iter()
                    .map(|b| (b.le_us, b.ok + b.failed))
                    .collect()
            })
            .unwrap_or_default();
        for b in &later.buckets {
            let grown =
                (b.ok + b.failed).saturating_sub(before.get(&b.le_us).copied().unwrap_or(0));
            if grown == 0 {
                continue;
            }
            let entry = self
                .buckets
                .entry(b.le_us.unwrap_or(u64::MAX))
                .or_insert((b.lower_us(), 0));
            entry.1 += grown;
            self.count += grown;
        }
        self.sum_ms += (later.sum_ms - earlier.map_or(0.0, |h| h.sum_ms)).max(0.0);
    }

    fn buckets(&self) -> Vec<LatencyBucket> {
        self.buckets
            .iter()
            .map(|(le, (gt, count))| LatencyBucket {
                gt_us: *gt,
                le_us: (*le != u64::MAX).then_some(*le),
                count: *count,
            })
            .collect()
    }
}

/// The latency distribution of the checks made between two reads of every
/// pod of a canary, allowing for pods that restarted, appeared or went away
/// (as availability does).
pub fn window(first: &CanaryRead, second: &CanaryRead) -> LatencyWindow {
    let mut w = LatencyWindow {
        from: first.at,
        to: second.at,
        ..LatencyWindow::default()
    };
    if let Some(e) = first.error.as_ref().or(second.error.as_ref()) {
        w.error = Some(e.clone());
        return w;
    }
    let names: BTreeSet<&String> = first.pods.keys().chain(second.pods.keys()).collect();
    if names.is_empty() {
        w.error = Some("no running pods match the selector".into());
        return w;
    }
    let histogram = |c: &CanaryCounters, pod: &str| {
        c.latency_histogram.clone().ok_or_else(|| {
            format!(
                "{pod}: its /status has no latency histogram ({} mode, or a workload image older than the histogram: rebuild it with scripts/workload-image.sh)",
                c.mode.as_deref().unwrap_or("unknown")
            )
        })
    };
    let mut sum = Sum::default();
    let mut missing = Vec::new();
    for name in names {
        match (first.pods.get(name), second.pods.get(name)) {
            (Some(Ok(a)), Some(Ok(b))) if a.since == b.since && b.total >= a.total => {
                match (histogram(a, name), histogram(b, name)) {
                    (Ok(ha), Ok(hb)) => sum.add(&hb, Some(&ha)),
                    (Err(e), _) | (_, Err(e)) => missing.push(e),
                }
            }
            (earlier, Some(Ok(b))) => {
                match histogram(b, name) {
                    Ok(hb) => {
                        sum.add(&hb, None);
                        w.notes.push(match earlier {
                        Some(Ok(_)) => format!("{name}: restarted during the window; counted from its restart"),
                        Some(Err(e)) => format!("{name}: unreadable at the window's start ({e}); counted from its start"),
                        None => format!("{name}: started during the window; counted from its start"),
                    });
                    }
                    Err(e) => missing.push(e),
                }
            }
            (Some(Ok(_)), None) => w.notes.push(format!(
                "{name}: gone before the window closed; its checks in it are unknown"
            )),
            (_, Some(Err(e))) => w
                .notes
                .push(format!("{name}: unreadable at the window's end: {e}")),
            (Some(Err(e)), None) => w
                .notes
                .push(format!("{name}: unreadable at the window's start: {e}")),
            (None, None) => {}
        }
    }
    w.count = sum.count;
    w.sum_ms = (sum.sum_ms * 1000.0).round() / 1000.0;
    w.buckets = sum.buckets();
    if !missing.is_empty() {
        w.error = Some(missing.join("; "));
    } else if w.count == 0 {
        w.error = Some(if w.notes.is_empty() {
            "the canary made no checks in the window".to_string()
        } else {
            format!("no checks measured in the window ({})", w.notes.join("; "))
        });
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::measure::availability::{BucketRead, ReadError};

    fn counters(since: &str, buckets: &[(u64, u64, u64)]) -> Result<CanaryCounters, ReadError> {
        let total = buckets.iter().map(|(_, ok, failed)| ok + failed).sum();
        Ok(CanaryCounters {
            mode: Some("http-canary".into()),
            ok: total,
            total,
            since: since.into(),
            last_error: None,
            latency_histogram: Some(HistogramRead {
                sum_ms: total as f64,
                buckets: buckets
                    .iter()
                    .map(|(le, ok, failed)| BucketRead {
                        gt_us: None,
                        le_us: Some(*le),
                        ok: *ok,
                        failed: *failed,
                    })
                    .collect(),
            }),
        })
    }

    fn read(pods: &[(&str, Result<CanaryCounters, ReadError>)]) -> CanaryRead {
        CanaryRead {
            at: Some("2026-01-01T00:00:00Z".parse().unwrap()),
            pods: pods
                .iter()
                .map(|(n, c)| (n.to_string(), c.clone()))
                .collect(),
            error: None,
        }
    }

    #[test]
    fn only_the_checks_between_the_reads_count() {
        // Before: 100 fast checks. After: 20 more fast, 10 slow (5 failed).
        let first = read(&[("a", counters("t0", &[(2000, 100, 0)]))]);
        let second = read(&[("a", counters("t0", &[(2000, 120, 0), (476_000, 5, 5)]))]);
        let w = window(&first, &second);
        assert_eq!(w.error, None);
        assert_eq!(w.count, 30);
        assert_eq!(w.buckets.len(), 2);
        assert_eq!(w.buckets[0].count, 20);
        assert_eq!(
            w.buckets[1].gt_us, 400_267,
            "estimated a quarter doubling down"
        );
        let p95 = w.percentile_ms(95.0).unwrap();
        assert!(p95 > 400.0 && p95 <= 476.0, "{p95}");
        assert!(w.percentile_ms(50.0).unwrap() <= 2.0);
    }

    #[test]
    fn pods_are_summed_and_a_restart_counts_from_zero() {
        let first = read(&[
            ("a", counters("t0", &[(2000, 10, 0)])),
            ("b", counters("t0", &[(2000, 10, 0)])),
        ]);
        let second = read(&[
            ("a", counters("t0", &[(2000, 15, 0)])),
            ("b", counters("t1", &[(2000, 3, 0)])),
            ("c", counters("t2", &[(2000, 2, 0)])),
        ]);
        let w = window(&first, &second);
        assert_eq!(w.count, 5 + 3 + 2);
        assert!(
            w.notes.iter().any(|n| n.starts_with("b: restarted")),
            "{:?}",
            w.notes
        );
        assert!(
            w.notes.iter().any(|n| n.starts_with("c: started")),
            "{:?}",
            w.notes
        );
    }

    #[test]
    fn a_canary_without_a_histogram_is_an_error_not_a_fast_one() {
        let mut old = counters("t0", &[]).unwrap();
        old.latency_histogram = None;
        old.mode = Some("sleep".into());
        let w = window(&read(&[("a", Ok(old.clone()))]), &read(&[("a", Ok(old))]));
        assert_eq!(w.percentile_ms(95.0), None);
        assert!(
            w.error
                .unwrap()
                .contains("no latency histogram (sleep mode")
        );
    }

    #[test]
    fn no_checks_is_not_measured() {
        let same = read(&[("a", counters("t0", &[(2000, 10, 0)]))]);
        let w = window(&same, &same);
        assert_eq!(w.count, 0);
        assert!(w.error.unwrap().contains("no checks"));
    }
}
