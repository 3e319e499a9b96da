//! The noise rule: whether the difference between the trials of one SLO
//! before and after a change is real, or within what the repeats
//! themselves scatter.
//!
//! Each trial of an SLO is one number (see [`crate::slo`]): a duration, a
//! success ratio or a count, with a side that is better. A trial that
//! measured nothing (never detected, never recovered, canary unreadable)
//! counts as the worst value, as it does in the SLO verdicts. Before and
//! after are judged in two steps:
//!
//! 1. **Size.** The medians (nearest rank, counted from the best trial)
//!    must differ by at least a floor: for durations the larger of
//!    [`CompareOptions::min_ms`] and [`CompareOptions::min_change`] of the
//!    before median; for availability [`CompareOptions::min_ratio`]
//!    (percentage points); for counts [`CompareOptions::min_count`]; for
//!    factors (latency against a baseline window) `min_change` of the
//!    before median. A
//!    smaller change is `unchanged`, however consistent: it is not worth a
//!    red pull request.
//! 2. **Noise.** With at least [`CompareOptions::min_trials`] trials on
//!    both sides: a two-sided Mann-Whitney U test over all trials must give
//!    p < [`CompareOptions::alpha`]. Up to 60 trials in all the p-value is
//!    exact, ties included (every split of the pooled midranks is counted;
//!    statrs' exact method refuses ties, and availability or blast radius
//!    tie all the time); above, statrs' normal approximation with tie
//!    correction. With two or three trials on a side the rank test cannot
//!    reach that level, so the rule is on the spread: the two sides'
//!    ranges must be apart by at least the larger of their own spreads
//!    (max − min). With one trial on a side nothing shows the noise: the
//!    numbers alone never make a regression (an SLO verdict that flips
//!    still does, see [`super`]).
//!
//! A change that passes step 1 but not step 2 is `erratic`: large enough
//! to matter, but the trials overlap too much to tell (the idea of
//! vector.dev's regression detector, which reports such experiments
//! without failing the build).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use statrs::stats_tests::Alternative;
use statrs::stats_tests::mannwhitneyu::{MannWhitneyUMethod, mannwhitneyu};

use super::{Change, CompareOptions};
use crate::slo::{Comparison as Direction, Unit};

/// Up to this many trials in all, the Mann-Whitney p-value is exact
/// (counted over every split of the pooled ranks, ties included); above,
/// statrs' normal approximation with tie correction is used.
const EXACT_MAX_TRIALS: usize = 60;

/// How the noise was judged.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "test", rename_all = "camelCase")]
pub enum NoiseTest {
    /// Two-sided Mann-Whitney U over the trials (before's U and the p-value).
    #[serde(rename_all = "camelCase")]
    MannWhitney {
        /// The U statistic.
        u: f64,
        /// The two-sided p-value.
        p: f64,
        /// Whether p is exact (small samples) or from the normal approximation.
        exact: bool,
    },
    /// Two or three trials on a side, too few for the rank test: whether
    /// the two sides' ranges are apart, by how much (`gap`, when both
    /// bounds were measured) and how much each side scatters on its own
    /// (`spread`, the larger max − min; absent when a side mixes measured
    /// and unmeasured trials).
    #[serde(rename_all = "camelCase")]
    Ranges {
        /// Whether the two sets of samples do not overlap at all.
        apart: bool,
        /// The gap between the sets when they are apart.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        gap: Option<f64>,
        /// The larger run's spread (max − min), which the gap is judged against.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        spread: Option<f64>,
    },
    /// One trial on a side: it shows no noise at all, so numbers alone
    /// never make a regression or an improvement.
    SingleTrial,
}

impl NoiseTest {
    /// Whether the test says the sides differ.
    pub fn significant(&self, alpha: f64) -> bool {
        match *self {
            Self::MannWhitney { p, .. } => p < alpha,
            // Apart by more than either side scatters on its own.
            Self::Ranges { apart, gap, spread } => {
                apart
                    && match (gap, spread) {
                        (None, _) => true,
                        (Some(_), None) => false,
                        (Some(g), Some(s)) => g + 1e-9 >= s,
                    }
            }
            Self::SingleTrial => false,
        }
    }

    /// `Mann-Whitney p = 0.008`, `ranges overlap`.
    pub fn describe(&self) -> String {
        match *self {
            Self::MannWhitney { p, .. } if p < 0.001 => "Mann-Whitney p < 0.001".into(),
            Self::MannWhitney { p, .. } => format!("Mann-Whitney p = {p:.3}"),
            Self::Ranges { apart: false, .. } => "the trials' ranges overlap".into(),
            Self::Ranges { gap: None, .. } => {
                "every trial on the worse side measured nothing".into()
            }
            Self::Ranges { spread: None, .. } => {
                "the ranges are apart, but a side mixes measured and unmeasured trials".into()
            }
            Self::Ranges {
                gap: Some(g),
                spread: Some(sp),
                ..
            } if g + 1e-9 >= sp => "the ranges are apart by more than either side's spread".into(),
            Self::Ranges { .. } => "the ranges are apart by less than a side's own spread".into(),
            Self::SingleTrial => "one trial on a side shows no noise".into(),
        }
    }
}

/// How the typical value (the median trial) moved.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Delta {
    /// After's median minus before's (`None`: a side's median trial measured nothing).
    pub absolute: Option<f64>,
    /// `absolute` relative to before's median (`None` when that is zero or missing).
    pub relative: Option<f64>,
    /// The move is towards the bad side of the SLO.
    pub worse: bool,
    /// The smallest move that counts (the size floor of step 1).
    pub floor: f64,
}

/// The noise rule's answer for one SLO.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    /// `Regression`, `Improvement`, `Erratic` or `Unchanged`.
    pub change: Change,
    /// How far the verdict value moved.
    pub delta: Delta,
    /// `None` when a side has no trials.
    pub test: Option<NoiseTest>,
    /// One line: what moved, by how much, and why it counts or not.
    pub reason: String,
}

/// Judges the trials of one SLO before and after (see the module docs).
pub fn judge(
    before: &[Option<f64>],
    after: &[Option<f64>],
    unit: Unit,
    direction: Direction,
    options: &CompareOptions,
) -> Judgement {
    let bad_before = badness(before, direction);
    let bad_after = badness(after, direction);
    let (Some(med_b), Some(med_a)) = (median(&bad_before), median(&bad_after)) else {
        return Judgement {
            change: Change::Unchanged,
            delta: Delta {
                absolute: None,
                relative: None,
                worse: false,
                floor: 0.0,
            },
            test: None,
            reason: "no trials on one side".into(),
        };
    };
    let value = |bad: f64| match direction {
        Direction::AtMost => bad,
        Direction::AtLeast => -bad,
    };
    let fewest = before.len().min(after.len());
    let floor = match unit {
        Unit::Ms if med_b.is_finite() => options.min_ms.max(options.min_change * med_b.abs()),
        Unit::Ms => options.min_ms,
        Unit::Ratio => options.min_ratio,
        Unit::Count => options.min_count,
        Unit::Factor if med_b.is_finite() => options.min_change * med_b.abs(),
        Unit::Factor => 0.0,
    };
    let (absolute, moved) = match (med_b.is_finite(), med_a.is_finite()) {
        (true, true) => (Some(value(med_a) - value(med_b)), med_a - med_b),
        (true, false) => (None, f64::INFINITY),
        (false, true) => (None, f64::NEG_INFINITY),
        (false, false) => (None, 0.0),
    };
    let relative = absolute
        .filter(|_| value(med_b).abs() > 1e-12)
        .map(|a| a / value(med_b).abs());
    let delta = Delta {
        absolute,
        relative,
        worse: moved > 0.0,
        floor,
    };
    let test = if fewest >= options.min_trials.max(2) {
        mann_whitney(&bad_before, &bad_after)
    } else if fewest >= 2 {
        ranges(&bad_before, &bad_after, moved > 0.0)
    } else {
        NoiseTest::SingleTrial
    };
    let shown = |bad: f64| {
        if bad.is_finite() {
            unit.format(value(bad))
        } else {
            "never".into()
        }
    };
    let motion = format!(
        "median {} → {}{}",
        shown(med_b),
        shown(med_a),
        match (absolute, relative) {
            (Some(a), Some(r)) if unit == Unit::Ms => format!(" ({}, {})", signed(unit, a), pct(r)),
            (Some(a), _) => format!(" ({})", signed(unit, a)),
            _ => String::new(),
        }
    );
    let trials = format!("{} vs {} trials", before.len(), after.len());
    let big = moved.abs() + 1e-9 >= floor;
    let beyond = test.significant(options.alpha);
    let (change, reason) = if !big {
        (
            Change::Unchanged,
            format!("{motion}: less than the {} that counts", unit.format(floor)),
        )
    } else if beyond {
        let change = if delta.worse {
            Change::Regression
        } else {
            Change::Improvement
        };
        (
            change,
            format!("{motion}: beyond the noise ({}, {trials})", test.describe()),
        )
    } else if test == NoiseTest::SingleTrial {
        (
            Change::Erratic,
            format!(
                "{motion}: one trial on a side shows no noise, so the numbers alone cannot tell ({trials}; repeat, 4 or more trials a side, for a verdict)"
            ),
        )
    } else {
        (
            Change::Erratic,
            format!(
                "{motion}: within the noise of the trials ({}, {trials})",
                test.describe()
            ),
        )
    };
    Judgement {
        change,
        delta,
        test: Some(test),
        reason,
    }
}

/// Each trial as "how bad": the value for at-most SLOs, its negation for
/// at-least ones, +∞ for a trial that measured nothing.
fn badness(samples: &[Option<f64>], direction: Direction) -> Vec<f64> {
    samples
        .iter()
        .map(|s| match (s, direction) {
            (Some(v), Direction::AtMost) => *v,
            (Some(v), Direction::AtLeast) => -*v,
            (None, _) => f64::INFINITY,
        })
        .collect()
}

/// Nearest-rank percentile `p` (0..=1) of badness values, counted from the
/// best (lowest); `None` for no values.
pub(super) fn nearest_rank(bad: &[f64], p: f64) -> Option<f64> {
    if bad.is_empty() {
        return None;
    }
    let mut sorted = bad.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (p * sorted.len() as f64 - 1e-9).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn median(bad: &[f64]) -> Option<f64> {
    nearest_rank(bad, 0.5)
}

/// How far apart the two sides' ranges are, towards the worse side, and
/// how much each side scatters on its own (badness values).
fn ranges(before: &[f64], after: &[f64], after_worse: bool) -> NoiseTest {
    let (better, worse) = if after_worse {
        (before, after)
    } else {
        (after, before)
    };
    let max = |v: &[f64]| v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    // A side of equal values (all unmeasured included) has no spread; one
    // that mixes measured and unmeasured trials has an unbounded one.
    let spread = |v: &[f64]| {
        let (lo, hi) = (min(v), max(v));
        if lo == hi {
            Some(0.0)
        } else if hi.is_finite() {
            Some(hi - lo)
        } else {
            None
        }
    };
    let spread = match (spread(before), spread(after)) {
        (Some(a), Some(b)) => Some(a.max(b)),
        _ => None,
    };
    let (lo_worse, hi_better) = (min(worse), max(better));
    NoiseTest::Ranges {
        apart: lo_worse > hi_better,
        gap: (lo_worse.is_finite() && hi_better.is_finite()).then_some(lo_worse - hi_better),
        spread,
    }
}

fn mann_whitney(before: &[f64], after: &[f64]) -> NoiseTest {
    let (n1, n2) = (before.len(), after.len());
    if n1 + n2 > EXACT_MAX_TRIALS {
        return match mannwhitneyu(
            before,
            after,
            MannWhitneyUMethod::AsymptoticInclContinuityCorrection,
            Alternative::TwoSided,
        ) {
            Ok((u, p)) => NoiseTest::MannWhitney {
                u,
                p: if p.is_nan() { 1.0 } else { p },
                exact: false,
            },
            // Only reachable with NaN samples or an empty side, both
            // excluded by construction; judge by the ranges rather than
            // fail the comparison.
            Err(_) => ranges(before, after, median(after) > median(before)),
        };
    }
    let ranks = doubled_midranks(before, after);
    let observed: u64 = ranks[..n1].iter().sum();
    // U of the before side: its rank sum less the smallest possible one.
    let u = observed as f64 / 2.0 - (n1 * (n1 + 1)) as f64 / 2.0;
    NoiseTest::MannWhitney {
        u,
        p: exact_p(&ranks, n1, observed),
        exact: true,
    }
}

/// Pooled samples' midranks (ties share the mean of their ranks), doubled
/// so that they are whole numbers; before's first, then after's.
fn doubled_midranks(before: &[f64], after: &[f64]) -> Vec<u64> {
    let all: Vec<f64> = before.iter().chain(after).copied().collect();
    let mut order: Vec<usize> = (0..all.len()).collect();
    order.sort_by(|&a, &b| all[a].total_cmp(&all[b]));
    let mut ranks = vec![0; all.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && all[order[j + 1]] == all[order[i]] {
            j += 1;
        }
        // Ranks i+1 ..= j+1 share their mean; doubled: i + j + 2.
        for &k in &order[i..=j] {
            ranks[k] = (i + j + 2) as u64;
        }
        i = j + 1;
    }
    ranks
}

/// Exact two-sided p-value of a rank sum: over every way to pick `n1` of the
/// pooled (doubled) ranks, the share whose sum lies at least as far from
/// its mean as the observed one. Ties need no correction: the midranks are
/// permuted as they are.
fn exact_p(ranks: &[u64], n1: usize, observed: u64) -> f64 {
    let total: u64 = ranks.iter().sum();
    let max = total as usize;
    // ways[k][s]: how many picks of k ranks sum to s (as floats: C(60, 30)
    // is about 1.2e17, and only ratios are needed).
    let mut ways = vec![vec![0.0_f64; max + 1]; n1 + 1];
    ways[0][0] = 1.0;
    for &r in ranks {
        let r = r as usize;
        for k in (1..=n1).rev() {
            let (lower, upper) = ways.split_at_mut(k);
            let (from, to) = (&lower[k - 1], &mut upper[0]);
            for s in (r..=max).rev() {
                to[s] += from[s - r];
            }
        }
    }
    let n = ranks.len() as f64;
    // The mean doubled rank sum of n1 ranks: n1 (n + 1).
    let mean = n1 as f64 * (n + 1.0);
    let distance = (observed as f64 - mean).abs() - 1e-9;
    let picks = &ways[n1];
    let all: f64 = picks.iter().sum();
    let extreme: f64 = picks
        .iter()
        .enumerate()
        .filter(|(s, _)| (*s as f64 - mean).abs() >= distance)
        .map(|(_, w)| w)
        .sum();
    (extreme / all).min(1.0)
}

fn signed(unit: Unit, v: f64) -> String {
    let sign = if v < 0.0 { "−" } else { "+" };
    match unit {
        Unit::Ratio => {
            format!("{sign}{:.2} points", (v * 100.0).abs()).replace(".00 points", " points")
        }
        _ => format!("{sign}{}", unit.format(v.abs())),
    }
}

fn pct(r: f64) -> String {
    let sign = if r < 0.0 { "−" } else { "+" };
    format!("{sign}{:.0}%", (r * 100.0).abs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn opts() -> CompareOptions {
        CompareOptions::default()
    }

    fn ms(v: &[f64]) -> Vec<Option<f64>> {
        v.iter().map(|s| Some(s * 1000.0)).collect()
    }

    #[rstest]
    // Same build, normal scatter of recovery times: nothing to report.
    #[case::same_build_noise(&[3.1, 3.4, 2.9, 3.8, 3.2], &[3.3, 2.8, 3.6, 3.0, 3.9], Change::Unchanged)]
    // Every trial slower by seconds: a regression.
    #[case::consistently_slower(&[3.1, 3.4, 2.9, 3.8, 3.2], &[9.1, 8.4, 10.2, 9.6, 8.9], Change::Regression)]
    #[case::consistently_faster(&[9.1, 8.4, 10.2, 9.6, 8.9], &[3.1, 3.4, 2.9, 3.8, 3.2], Change::Improvement)]
    // The median moved a lot, but the trials scatter as much: erratic.
    #[case::wide_scatter(&[2.0, 9.0, 3.0, 14.0, 4.0], &[8.0, 3.0, 12.0, 2.5, 9.5], Change::Erratic)]
    // Consistent but tiny (+300 ms on 3 s): below the floor.
    #[case::tiny_shift(&[3.0, 3.1, 3.2, 3.05, 3.15], &[3.3, 3.4, 3.5, 3.35, 3.45], Change::Unchanged)]
    // Three trials a side: the ranges decide.
    #[case::few_apart(&[3.0, 3.5, 4.0], &[8.0, 9.0, 9.5], Change::Regression)]
    #[case::few_overlap(&[3.0, 3.5, 8.5], &[8.0, 9.0, 9.5], Change::Erratic)]
    // Two a side, apart but by less than a side's own scatter (pod-kill's
    // recoveries come in whole seconds: 0.9s, 1.9s, 2.9s).
    #[case::two_apart_within_spread(&[0.9, 1.9], &[2.0, 2.9], Change::Erratic)]
    #[case::two_apart_beyond_spread(&[0.9, 1.0], &[9.8, 9.9], Change::Regression)]
    // One trial a side: nothing shows the noise. Same build, captured: a
    // pod-kill recovery of 850ms in one run and 5.9s in the next.
    #[case::single_modest(&[3.0], &[4.5], Change::Erratic)]
    #[case::single_same_build(&[0.85], &[5.9], Change::Erratic)]
    #[case::single_small(&[3.0], &[3.2], Change::Unchanged)]
    fn durations(#[case] before: &[f64], #[case] after: &[f64], #[case] expected: Change) {
        let j = judge(
            &ms(before),
            &ms(after),
            Unit::Ms,
            Direction::AtMost,
            &opts(),
        );
        assert_eq!(j.change, expected, "{}", j.reason);
    }

    #[rstest]
    // Never detected after, in every trial: the worst value, beyond noise.
    #[case(vec![Some(900.0); 5], vec![None; 5], Change::Regression)]
    #[case(vec![Some(900.0), Some(950.0)], vec![None, None], Change::Regression)]
    #[case(vec![Some(900.0), None], vec![None, None], Change::Erratic)]
    #[case(vec![None; 5], vec![Some(900.0); 5], Change::Improvement)]
    #[case(vec![None; 5], vec![None; 5], Change::Unchanged)]
    // One trial of five not detected after: the median did not move.
    #[case(vec![Some(900.0); 5], vec![Some(900.0), Some(950.0), None, Some(880.0), Some(910.0)], Change::Unchanged)]
    fn unmeasured_trials_are_the_worst(
        #[case] before: Vec<Option<f64>>,
        #[case] after: Vec<Option<f64>>,
        #[case] expected: Change,
    ) {
        let j = judge(&before, &after, Unit::Ms, Direction::AtMost, &opts());
        assert_eq!(j.change, expected, "{}", j.reason);
    }

    #[rstest]
    #[case(&[1.0, 1.0, 1.0, 1.0, 1.0], &[1.0, 0.995, 1.0, 1.0, 1.0], Change::Unchanged)]
    #[case(&[1.0, 1.0, 1.0, 1.0, 1.0], &[0.62, 0.7, 0.55, 0.66, 0.71], Change::Regression)]
    #[case(&[0.62, 0.7, 0.55, 0.66, 0.71], &[1.0, 1.0, 1.0, 1.0, 1.0], Change::Improvement)]
    #[case(&[1.0, 0.4, 1.0, 0.5, 1.0], &[0.45, 1.0, 0.5, 1.0, 0.42], Change::Erratic)]
    fn availability_is_better_higher(
        #[case] before: &[f64],
        #[case] after: &[f64],
        #[case] expected: Change,
    ) {
        let s = |v: &[f64]| v.iter().copied().map(Some).collect::<Vec<_>>();
        let j = judge(
            &s(before),
            &s(after),
            Unit::Ratio,
            Direction::AtLeast,
            &opts(),
        );
        assert_eq!(j.change, expected, "{}", j.reason);
        if expected == Change::Regression {
            assert!(j.delta.worse);
        }
    }

    #[rstest]
    #[case(&[0.0; 5], &[0.0; 5], Change::Unchanged)]
    #[case(&[0.0; 5], &[2.0, 2.0, 1.0, 2.0, 2.0], Change::Regression)]
    #[case(&[0.0, 0.0, 1.0, 0.0, 0.0], &[0.0, 1.0, 0.0, 0.0, 0.0], Change::Unchanged)]
    fn counts(#[case] before: &[f64], #[case] after: &[f64], #[case] expected: Change) {
        let s = |v: &[f64]| v.iter().copied().map(Some).collect::<Vec<_>>();
        let j = judge(
            &s(before),
            &s(after),
            Unit::Count,
            Direction::AtMost,
            &opts(),
        );
        assert_eq!(j.change, expected, "{}", j.reason);
    }

    #[test]
    fn the_exact_test_matches_the_textbook_value() {
        // Five against five with no overlap: the most extreme arrangement,
        // two-sided p = 2 / C(10, 5) = 2 / 252.
        match mann_whitney(&[1.0, 2.0, 3.0, 4.0, 5.0], &[6.0, 7.0, 8.0, 9.0, 10.0]) {
            NoiseTest::MannWhitney { u, p, exact } => {
                assert!(exact);
                assert_eq!(u, 0.0);
                assert!((p - 2.0 / 252.0).abs() < 1e-12, "{p}");
            }
            other => panic!("{other:?}"),
        }
    }

    fn p_of(before: &[f64], after: &[f64]) -> (f64, bool) {
        match mann_whitney(before, after) {
            NoiseTest::MannWhitney { p, exact, .. } => (p, exact),
            other => panic!("{other:?}"),
        }
    }

    #[rstest]
    // All tied: no evidence at all.
    #[case(&[1.0; 5], &[1.0; 5], 1.0)]
    // scipy.stats.mannwhitneyu(method="exact") on untied samples:
    // [19, 22, 16, 29, 24] vs [20, 11, 17, 12] → 0.1111.
    #[case(&[19.0, 22.0, 16.0, 29.0, 24.0], &[20.0, 11.0, 17.0, 12.0], 0.111_111_111_111_111_1)]
    // Four against four, separated: 2 / C(8, 4).
    #[case(&[1.0, 2.0, 3.0, 4.0], &[5.0, 6.0, 7.0, 8.0], 2.0 / 70.0)]
    // Ties, counted exactly: 0 0 0 0 0 against 1 1 1 1 1 is as extreme as
    // can be, 2 / 252.
    #[case(&[0.0; 5], &[1.0; 5], 2.0 / 252.0)]
    // Never-measured trials (+∞) tie among themselves and rank worst.
    #[case(&[1.0, 2.0, 3.0, 4.0, 5.0], &[f64::INFINITY; 5], 2.0 / 252.0)]
    // Three against three cannot get below 2 / 20: why min_trials is 4.
    #[case(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0], 0.1)]
    fn exact_p_values(#[case] before: &[f64], #[case] after: &[f64], #[case] expected: f64) {
        let (p, exact) = p_of(before, after);
        assert!(exact);
        assert!((p - expected).abs() < 1e-12, "p = {p}, expected {expected}");
    }

    #[test]
    fn ties_among_some_trials_are_permuted_exactly() {
        // Blast radius 0 0 1 0 0 against 0 1 0 0 0: the same, p = 1.
        let (p, _) = p_of(&[0.0, 0.0, 1.0, 0.0, 0.0], &[0.0, 1.0, 0.0, 0.0, 0.0]);
        assert!((p - 1.0).abs() < 1e-12, "{p}");
        // 0 0 0 0 0 against 1 1 2 1 1: P = 2 / 252 as well.
        let (p, _) = p_of(&[0.0; 5], &[1.0, 1.0, 2.0, 1.0, 1.0]);
        assert!((p - 2.0 / 252.0).abs() < 1e-12, "{p}");
    }

    #[test]
    fn many_trials_use_the_normal_approximation() {
        let before: Vec<f64> = (0..40).map(f64::from).collect();
        let after: Vec<f64> = (20..60).map(f64::from).collect();
        let (p, exact) = p_of(&before, &after);
        assert!(!exact);
        assert!(p < 0.001, "{p}");
    }

    #[test]
    fn the_reason_says_what_moved_and_why_it_counts() {
        let j = judge(
            &ms(&[3.1, 3.4, 2.9, 3.8, 3.2]),
            &ms(&[9.1, 8.4, 10.2, 9.6, 8.9]),
            Unit::Ms,
            Direction::AtMost,
            &opts(),
        );
        assert_eq!(
            j.reason,
            "median 3.2s → 9.1s (+5.9s, +184%): beyond the noise (Mann-Whitney p = 0.008, 5 vs 5 trials)"
        );
        let j = judge(
            &[Some(1.0); 5],
            &[Some(0.62), Some(0.7), Some(0.55), Some(0.66), Some(0.71)],
            Unit::Ratio,
            Direction::AtLeast,
            &opts(),
        );
        assert!(
            j.reason.starts_with("median 100% → 66% (−34 points)"),
            "{}",
            j.reason
        );
    }
}
