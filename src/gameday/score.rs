//! The scoreboard: points for fixing (more the sooner), for declaring
//! detection before the fix and for a diagnosis that names the fault; hints
//! and collateral damage cost points.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::record::Marks;

/// Points for a fix by the team's hand.
pub const FIX_POINTS: i64 = 100;
/// Most speed points, for a fix at the injection; none at the timebox.
pub const SPEED_POINTS: i64 = 50;
/// Points for declaring `detected` before the round ended.
pub const DETECT_POINTS: i64 = 20;
/// Points for a `diagnosed` declaration that names what the fault broke.
pub const DIAGNOSE_POINTS: i64 = 30;
/// Points each piece of collateral damage costs.
pub const COLLATERAL_POINTS: i64 = 15;

/// A team's points, item by item.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Score {
    /// The total, never below zero.
    pub points: i64,
    /// What made it up: (reason, points), in a fixed order.
    pub items: Vec<ScoreItem>,
}

/// One line of a score.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ScoreItem {
    /// What earned or cost the points.
    pub what: String,
    /// The points (negative for a cost).
    pub points: i64,
}

/// What the score is computed from.
#[derive(Debug, Clone, Copy)]
pub struct ScoreInput<'a> {
    /// The team's moments.
    pub marks: &'a Marks,
    /// The round's length.
    pub timebox: Duration,
    /// Costs of the hints released, in order.
    pub hint_costs: &'a [u32],
    /// Pieces of collateral damage the team caused.
    pub collateral: usize,
}

/// Scores a round (also while it runs: what the team has earned so far).
pub fn score(input: ScoreInput<'_>) -> Score {
    let mut items = Vec::new();
    if let Some(fix) = input.marks.team_fix() {
        items.push(ScoreItem {
            what: "fixed by the team".into(),
            points: FIX_POINTS,
        });
        let left = input.timebox.saturating_sub(fix).as_secs_f64();
        let total = input.timebox.as_secs_f64().max(1.0);
        let speed = (SPEED_POINTS as f64 * left / total).round() as i64;
        if speed > 0 {
            items.push(ScoreItem {
                what: format!(
                    "speed: fixed in {}",
                    crate::vocab::duration::format_duration(fix)
                ),
                points: speed,
            });
        }
    }
    let detected_in_time = match (input.marks.team_detected, input.marks.ended) {
        (Some(d), Some(end)) => d <= end,
        (Some(_), None) => true,
        _ => false,
    };
    if detected_in_time {
        items.push(ScoreItem {
            what: "declared detection".into(),
            points: DETECT_POINTS,
        });
    }
    if input.marks.team_diagnosed.is_some() {
        items.push(ScoreItem {
            what: "diagnosis names the fault".into(),
            points: DIAGNOSE_POINTS,
        });
    }
    for (i, cost) in input.hint_costs.iter().enumerate() {
        items.push(ScoreItem {
            what: format!("hint {}", i + 1),
            points: -i64::from(*cost),
        });
    }
    if input.collateral > 0 {
        items.push(ScoreItem {
            what: format!("collateral damage ×{}", input.collateral),
            points: -COLLATERAL_POINTS * input.collateral as i64,
        });
    }
    let points = items.iter().map(|i| i.points).sum::<i64>().max(0);
    Score { points, items }
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;

    use super::*;

    fn at(secs: i64) -> Option<Timestamp> {
        Some(Timestamp::from_second(1_700_000_000 + secs).unwrap())
    }

    #[test]
    fn a_fast_fix_with_a_good_diagnosis_scores_high() {
        let marks = Marks {
            injected: at(0),
            team_detected: at(30),
            team_diagnosed: at(60),
            fixed: at(120),
            ended: at(130),
            ..Marks::default()
        };
        let s = score(ScoreInput {
            marks: &marks,
            timebox: Duration::from_secs(600),
            hint_costs: &[10],
            collateral: 1,
        });
        // 100 + 50·480/600 + 20 + 30 − 10 − 15
        assert_eq!(s.points, 100 + 40 + 20 + 30 - 10 - 15, "{s:?}");
    }

    #[test]
    fn no_fix_no_fix_points_and_never_below_zero() {
        let marks = Marks {
            injected: at(0),
            ended: at(600),
            ..Marks::default()
        };
        let s = score(ScoreInput {
            marks: &marks,
            timebox: Duration::from_secs(600),
            hint_costs: &[10, 10, 20],
            collateral: 0,
        });
        assert_eq!(s.points, 0);
        assert!(s.items.iter().all(|i| i.points < 0), "{s:?}");
    }

    #[test]
    fn a_detection_declared_after_the_round_earns_nothing() {
        let marks = Marks {
            injected: at(0),
            team_detected: at(700),
            ended: at(600),
            ..Marks::default()
        };
        let s = score(ScoreInput {
            marks: &marks,
            timebox: Duration::from_secs(600),
            hint_costs: &[],
            collateral: 0,
        });
        assert_eq!(s.points, 0);
    }
}
