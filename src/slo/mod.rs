//! SLO verdicts: durations measured over trials, compared with targets.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::experiment::SloSpec;
use crate::experiment::duration::format_duration;
use crate::timeline::Marks;

/// The verdict on one SLO over all trials of an experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SloVerdict {
    /// `detectWithin` or `recoverWithin`.
    pub slo: String,
    #[serde(with = "millis")]
    pub target: Duration,
    /// The aggregated measurement (p95 over trials; the single value for one trial).
    #[serde(with = "millis_opt")]
    pub actual: Option<Duration>,
    /// Each trial's measurement (None: never happened).
    #[serde(with = "millis_vec")]
    pub samples: Vec<Option<Duration>>,
    pub met: bool,
}

impl SloVerdict {
    /// How far over target the measurement was.
    pub fn missed_by(&self) -> Option<Duration> {
        let actual = self.actual?;
        actual.checked_sub(self.target).filter(|d| !d.is_zero())
    }

    /// One line, e.g. `detectWithin 60s: 4.2s ✓` or `… missed by 2.1s`.
    pub fn describe(&self) -> String {
        let target = format_duration(self.target);
        match (self.actual, self.met) {
            (Some(a), true) => format!("{} {target}: {} (met)", self.slo, format_duration(a)),
            (Some(a), false) => format!(
                "{} {target}: {} — missed by {}",
                self.slo,
                format_duration(a),
                format_duration(self.missed_by().unwrap_or_default())
            ),
            (None, _) => format!("{} {target}: never happened — missed", self.slo),
        }
    }
}

/// Judges trials against the SLOs.
pub fn evaluate(spec: &SloSpec, trials: &[Marks]) -> Vec<SloVerdict> {
    vec![
        verdict(
            "detectWithin",
            spec.detect_within.get(),
            trials.iter().map(Marks::time_to_detect).collect(),
        ),
        verdict(
            "recoverWithin",
            spec.recover_within.get(),
            trials.iter().map(Marks::time_to_recover).collect(),
        ),
    ]
}

fn verdict(slo: &str, target: Duration, samples: Vec<Option<Duration>>) -> SloVerdict {
    let actual = if samples.iter().any(Option::is_none) {
        None
    } else {
        percentile(&samples.iter().flatten().copied().collect::<Vec<_>>(), 95.0)
    };
    SloVerdict {
        slo: slo.into(),
        target,
        met: actual.is_some_and(|a| a <= target),
        actual,
        samples,
    }
}

/// Nearest-rank percentile (`p` in 0..=100); `None` for no samples.
pub fn percentile(samples: &[Duration], p: f64) -> Option<Duration> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

mod millis_opt {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&(d.as_millis() as u64)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}

mod millis_vec {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(v: &[Option<Duration>], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|d| d.map(|d| d.as_millis() as u64)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Option<Duration>>, D::Error> {
        Ok(Vec::<Option<u64>>::deserialize(d)?
            .into_iter()
            .map(|m| m.map(Duration::from_millis))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn secs(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|s| Duration::from_secs(*s)).collect()
    }

    #[rstest]
    #[case(&[5], 95.0, 5)]
    #[case(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 95.0, 10)]
    #[case(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 50.0, 5)]
    #[case(&[10, 1, 5], 100.0, 10)]
    #[case(&[10, 1, 5], 0.0, 1)]
    fn nearest_rank_percentiles(#[case] samples: &[u64], #[case] p: f64, #[case] expected: u64) {
        assert_eq!(
            percentile(&secs(samples), p),
            Some(Duration::from_secs(expected))
        );
    }

    #[rstest]
    #[case(vec![Some(4)], 5, true, None)]
    #[case(vec![Some(5)], 5, true, None)]
    #[case(vec![Some(8)], 5, false, Some(3))]
    #[case(vec![Some(1), None], 5, false, None)]
    fn verdicts_compare_against_target(
        #[case] samples: Vec<Option<u64>>,
        #[case] target: u64,
        #[case] met: bool,
        #[case] missed: Option<u64>,
    ) {
        let v = verdict(
            "detectWithin",
            Duration::from_secs(target),
            samples
                .into_iter()
                .map(|s| s.map(Duration::from_secs))
                .collect(),
        );
        assert_eq!(v.met, met);
        assert_eq!(v.missed_by(), missed.map(Duration::from_secs));
    }

    #[test]
    fn a_miss_says_by_how_much() {
        let v = verdict(
            "detectWithin",
            Duration::from_millis(1),
            vec![Some(Duration::from_millis(4200))],
        );
        assert_eq!(v.describe(), "detectWithin 1ms: 4.2s — missed by 4.2s");
    }
}
