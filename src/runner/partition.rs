//! Splitting a suite across CI runners, as cargo-nextest does:
//! `count:i/n` deals the experiments, sorted by name, round-robin to n
//! shards; `hash:i/n` puts each experiment in the shard its name's hash
//! picks, so adding an experiment never moves the others. Every experiment
//! lands in exactly one shard; `report merge` joins the shards' reports.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How experiments are dealt to shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PartitionKind {
    /// Round-robin over the experiments sorted by name: shards differ in
    /// size by at most one.
    Count,
    /// By a stable hash of the experiment's name (XXH3-64 of its UTF-8
    /// bytes, the same on every machine and release): an experiment stays
    /// in its shard when others are added or removed.
    Hash,
}

/// One shard of n: `count:2/4`, `hash:1/3`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Partition {
    /// How experiments are assigned to shards.
    pub kind: PartitionKind,
    /// 1-based shard index.
    pub shard: u32,
    /// How many shards there are.
    pub total: u32,
}

/// A partition that cannot be parsed, with what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid partition `{input}`: {problem}; expected count:I/N or hash:I/N with 1 ≤ I ≤ N, e.g. hash:2/4"
)]
pub struct PartitionError {
    /// The text given.
    pub input: String,
    /// What is wrong with it.
    pub problem: String,
}

impl FromStr for Partition {
    type Err = PartitionError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let fail = |problem: String| PartitionError {
            input: input.to_string(),
            problem,
        };
        let (kind, rest) = input
            .split_once(':')
            .ok_or_else(|| fail("no `count:` or `hash:` in front".into()))?;
        let kind = match kind {
            "count" => PartitionKind::Count,
            "hash" => PartitionKind::Hash,
            other => return Err(fail(format!("unknown kind `{other}`"))),
        };
        let (shard, total) = rest
            .split_once('/')
            .ok_or_else(|| fail("no `/` between the shard and the number of shards".into()))?;
        let number = |s: &str, what: &str| {
            s.parse::<u32>()
                .map_err(|_| fail(format!("{what} `{s}` is not a whole number")))
        };
        let (shard, total) = (number(shard, "shard")?, number(total, "shard count")?);
        if total == 0 {
            return Err(fail("there must be at least one shard".into()));
        }
        if shard == 0 || shard > total {
            return Err(fail(format!(
                "shard {shard} does not exist: shards are numbered 1 to {total}"
            )));
        }
        Ok(Self { kind, shard, total })
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            PartitionKind::Count => "count",
            PartitionKind::Hash => "hash",
        };
        write!(f, "{kind}:{}/{}", self.shard, self.total)
    }
}

impl Serialize for Partition {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Partition {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Partition {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Partition".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^(count|hash):[1-9][0-9]*/[1-9][0-9]*$",
            "description": "A shard of the suite: `count:I/N` (round-robin by name) or `hash:I/N` (by the name's hash)."
        })
    }
}

/// The shard (1-based) an experiment named `name` lands in under `hash:*/total`.
pub fn hash_shard(name: &str, total: u32) -> u32 {
    (xxhash_rust::xxh3::xxh3_64(name.as_bytes()) % u64::from(total.max(1))) as u32 + 1
}

impl Partition {
    /// Keeps the items of this shard, in their original order; `name` gives
    /// each item's experiment name.
    pub fn select<T>(&self, items: Vec<T>, name: impl Fn(&T) -> &str) -> Vec<T> {
        match self.kind {
            PartitionKind::Hash => items
                .into_iter()
                .filter(|item| hash_shard(name(item), self.total) == self.shard)
                .collect(),
            PartitionKind::Count => {
                let mut sorted: Vec<&str> = items.iter().map(&name).collect();
                sorted.sort_unstable();
                let mine: Vec<String> = sorted
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| (*i as u32) % self.total + 1 == self.shard)
                    .map(|(_, n)| n.to_string())
                    .collect();
                items
                    .into_iter()
                    .filter(|item| mine.iter().any(|m| m == name(item)))
                    .collect()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn names() -> Vec<String> {
        // The built-in suite's names and a few more.
        [
            "coredns-memory-squeeze",
            "cron-job-storm-quota",
            "cron-job-storm",
            "delete-service",
            "image-typo-init-container",
            "image-typo-repository",
            "image-typo-rollout-stalled",
            "image-typo",
            "missing-configmap-env",
            "missing-secret-mount",
            "patch-service-port",
            "pod-kill",
            "probe-liveness-timeout",
            "probe-liveness-wrong-path",
            "probe-liveness-wrong-port",
            "probe-readiness-failing",
            "probe-startup-too-short",
            "rbac-clusterrolebinding-delete",
            "rbac-rolebinding-delete",
            "scale-to-zero",
            "selector-mismatch",
            "node-loss",
            "node-loss-eviction",
        ]
        .map(String::from)
        .to_vec()
    }

    #[rstest]
    #[case("count:1/1", PartitionKind::Count, 1, 1)]
    #[case("count:2/4", PartitionKind::Count, 2, 4)]
    #[case("hash:4/4", PartitionKind::Hash, 4, 4)]
    fn parses(
        #[case] text: &str,
        #[case] kind: PartitionKind,
        #[case] shard: u32,
        #[case] total: u32,
    ) {
        let p: Partition = text.parse().expect("valid");
        assert_eq!(p, Partition { kind, shard, total });
        assert_eq!(p.to_string(), text);
    }

    #[rstest]
    #[case("3/2", "invalid partition `3/2`: no `count:` or `hash:` in front")]
    #[case(
        "count:3/2",
        "invalid partition `count:3/2`: shard 3 does not exist: shards are numbered 1 to 2"
    )]
    #[case(
        "hash:0/4",
        "invalid partition `hash:0/4`: shard 0 does not exist: shards are numbered 1 to 4"
    )]
    #[case(
        "count:1/0",
        "invalid partition `count:1/0`: there must be at least one shard"
    )]
    #[case("x:1/2", "invalid partition `x:1/2`: unknown kind `x`")]
    #[case(
        "hash:1-2",
        "invalid partition `hash:1-2`: no `/` between the shard and the number of shards"
    )]
    #[case(
        "hash:a/2",
        "invalid partition `hash:a/2`: shard `a` is not a whole number"
    )]
    #[case(
        "count:-1/2",
        "invalid partition `count:-1/2`: shard `-1` is not a whole number"
    )]
    fn bad_partitions_say_what_is_wrong(#[case] text: &str, #[case] message: &str) {
        let err = text.parse::<Partition>().expect_err("invalid");
        let shown = err.to_string();
        assert!(shown.starts_with(message), "{shown}");
        assert!(shown.ends_with("expected count:I/N or hash:I/N with 1 ≤ I ≤ N, e.g. hash:2/4"));
    }

    #[rstest]
    fn every_experiment_lands_in_exactly_one_shard(
        #[values(PartitionKind::Count, PartitionKind::Hash)] kind: PartitionKind,
        #[values(1, 2, 3, 4, 5)] total: u32,
    ) {
        let all = names();
        let mut seen: Vec<String> = Vec::new();
        for shard in 1..=total {
            let p = Partition { kind, shard, total };
            seen.extend(p.select(all.clone(), |n| n.as_str()));
        }
        let mut expected = all.clone();
        expected.sort();
        seen.sort();
        assert_eq!(seen, expected, "{kind:?} n={total}");
    }

    #[rstest]
    fn count_shards_differ_in_size_by_at_most_one(#[values(1, 2, 3, 4, 5)] total: u32) {
        let sizes: Vec<usize> = (1..=total)
            .map(|shard| {
                Partition {
                    kind: PartitionKind::Count,
                    shard,
                    total,
                }
                .select(names(), |n| n.as_str())
                .len()
            })
            .collect();
        let (min, max) = (sizes.iter().min(), sizes.iter().max());
        assert!(max.zip(min).is_some_and(|(a, b)| a - b <= 1), "{sizes:?}");
    }

    #[test]
    fn a_shard_keeps_the_order_it_was_given() {
        let p: Partition = "count:1/2".parse().expect("valid");
        let picked = p.select(vec!["zeta", "alpha", "mid", "beta"], |n| n);
        // Sorted: alpha beta mid zeta → shard 1 takes alpha and mid.
        assert_eq!(picked, vec!["alpha", "mid"]);
    }

    #[test]
    fn hash_shards_are_stable_across_runs_and_machines() {
        // XXH3-64 is a published algorithm (the reference value of the
        // empty input below) with no seed and no dependence on the
        // platform, so the shards of these names never change.
        assert_eq!(xxhash_rust::xxh3::xxh3_64(b""), 0x2d06_8005_38d3_94c2);
        let four: Vec<u32> = [
            "image-typo",
            "pod-kill",
            "selector-mismatch",
            "coredns-memory-squeeze",
        ]
        .iter()
        .map(|n| hash_shard(n, 4))
        .collect();
        assert_eq!(four, HASH_SHARDS_OF_FOUR);
    }

    #[test]
    fn adding_an_experiment_moves_no_other_under_hash() {
        let p: Partition = "hash:2/3".parse().expect("valid");
        let before = p.select(names(), |n| n.as_str());
        let mut more = names();
        more.push("a-new-experiment".into());
        let after = p.select(more, |n| n.as_str());
        let kept: Vec<&String> = after.iter().filter(|n| *n != "a-new-experiment").collect();
        assert_eq!(kept, before.iter().collect::<Vec<_>>());
    }

    #[test]
    fn partitions_round_trip_through_json() {
        let p: Partition = "hash:3/5".parse().expect("valid");
        let json = serde_json::to_string(&p).expect("encodes");
        assert_eq!(json, "\"hash:3/5\"");
        assert_eq!(
            serde_json::from_str::<Partition>(&json).expect("decodes"),
            p
        );
        assert!(serde_json::from_str::<Partition>("\"hash:6/5\"").is_err());
    }

    const HASH_SHARDS_OF_FOUR: [u32; 4] = [4, 1, 3, 2];
}
