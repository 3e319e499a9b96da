//! `report merge`: the reports of one suite run in shards across CI
//! runners (`run --partition`) joined into one report, which every
//! renderer takes as it takes a single run's.
//!
//! The shards must be of one breakfix version (one report schema), of one
//! partitioning (same kind and shard count, each shard once) and disjoint
//! (an experiment in two shards means a shard was passed twice or two
//! partitionings were mixed). Missing shards are not an error — a runner
//! may have died — but [`Merged::missing`] names them.

use std::collections::BTreeMap;

use crate::journal::ClusterRecord;
use crate::runner::outcome::ShardRecord;
use crate::runner::partition::{Partition, PartitionKind};
use crate::runner::{Outcome, RunReport};

/// Why shard reports cannot be joined.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    /// No shard reports were given.
    #[error("nothing to merge: give the shard reports (e.g. shard-*.json)")]
    Empty,
    /// The shards were written by breakfix versions with different report schemas.
    #[error(
        "{label} has report schema `{found}` but {first} has `{expected}`: shards of one run come from one breakfix version"
    )]
    Schema {
        /// The shard that differs.
        label: String,
        /// Its schema.
        found: String,
        /// The first shard.
        first: String,
        /// The first shard's schema.
        expected: String,
    },
    /// The shards were split differently (another kind or count of shards).
    #[error(
        "{label} is shard {partition} but {other} is {other_partition}: the shards of one run share the kind and the count of shards"
    )]
    MixedPartitions {
        /// The shard that differs.
        label: String,
        /// Its partition.
        partition: Partition,
        /// A shard it disagrees with.
        other: String,
        /// That shard's partition.
        other_partition: Partition,
    },
    /// The same shard was given twice.
    #[error("{label} and {other} are both shard {partition}: pass each shard's report once")]
    SameShard {
        /// One report.
        label: String,
        /// The other.
        other: String,
        /// The shard both are.
        partition: Partition,
    },
    /// An experiment is in two shards.
    #[error(
        "experiment `{name}` is in both {first} and {second}: each experiment runs in one shard (a report passed twice, or a full run mixed with shards?)"
    )]
    Duplicate {
        /// The experiment.
        name: String,
        /// The first report it is in.
        first: String,
        /// The second report it is in.
        second: String,
    },
}

/// The joined report and what went into it.
#[derive(Debug, Clone)]
pub struct Merged {
    /// The merged run.
    pub report: RunReport,
    /// Each input's label (its file) with its shard, in input order.
    pub inputs: Vec<(String, Option<Partition>)>,
    /// The partitioning the shards share, if they carry one.
    pub partitioning: Option<(PartitionKind, u32)>,
    /// Shard numbers of that partitioning with no report.
    pub missing: Vec<u32>,
}

impl Merged {
    /// One line saying what was merged, e.g. `merged 4 reports (hash 1, 2, 3, 4 of 4) into 21 experiments: 20 passed, 1 failed`.
    pub fn describe(&self) -> String {
        let shards = match self.partitioning {
            Some((kind, total)) => {
                let mut have: Vec<u32> = self
                    .inputs
                    .iter()
                    .filter_map(|(_, p)| p.map(|p| p.shard))
                    .collect();
                have.sort_unstable();
                let kind = match kind {
                    PartitionKind::Count => "count",
                    PartitionKind::Hash => "hash",
                };
                format!(
                    " ({kind} shards {} of {total})",
                    have.iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
            None => String::new(),
        };
        let count = |o: Outcome| {
            self.report
                .experiments
                .iter()
                .filter(|e| e.outcome == o)
                .count()
        };
        let mut tally = vec![format!("{} passed", count(Outcome::Passed))];
        for (o, word) in [
            (Outcome::Failed, "failed"),
            (Outcome::Error, "errored"),
            (Outcome::Interrupted, "interrupted"),
        ] {
            if count(o) > 0 {
                tally.push(format!("{} {word}", count(o)));
            }
        }
        format!(
            "merged {} report{}{shards} into {} experiments: {}",
            self.inputs.len(),
            if self.inputs.len() == 1 { "" } else { "s" },
            self.report.experiments.len(),
            tally.join(", ")
        )
    }
}

/// Joins shard reports, each with a label naming it in errors (its file).
pub fn merge(shards: Vec<(String, RunReport)>) -> Result<Merged, MergeError> {
    let Some((first_label, first)) = shards.first() else {
        return Err(MergeError::Empty);
    };
    for (label, r) in &shards {
        if r.schema != first.schema {
            return Err(MergeError::Schema {
                label: label.clone(),
                found: r.schema.clone(),
                first: first_label.clone(),
                expected: first.schema.clone(),
            });
        }
    }
    let mut by_shard: BTreeMap<u32, &str> = BTreeMap::new();
    let mut reference: Option<(&str, Partition)> = None;
    for (label, r) in &shards {
        let Some(p) = r.partition else { continue };
        match reference {
            None => reference = Some((label, p)),
            Some((other, q)) if q.kind != p.kind || q.total != p.total => {
                return Err(MergeError::MixedPartitions {
                    label: label.clone(),
                    partition: p,
                    other: other.to_string(),
                    other_partition: q,
                });
            }
            Some(_) => {}
        }
        if let Some(other) = by_shard.insert(p.shard, label) {
            return Err(MergeError::SameShard {
                label: label.clone(),
                other: other.to_string(),
                partition: p,
            });
        }
    }
    let mut owner: BTreeMap<&str, &str> = BTreeMap::new();
    for (label, r) in &shards {
        for e in &r.experiments {
            if let Some(first) = owner.insert(&e.name, label) {
                return Err(MergeError::Duplicate {
                    name: e.name.clone(),
                    first: first.to_string(),
                    second: label.clone(),
                });
            }
        }
    }
    let partitioning = reference.map(|(_, p)| (p.kind, p.total));
    let missing = match partitioning {
        Some((_, total)) => (1..=total).filter(|s| !by_shard.contains_key(s)).collect(),
        None => Vec::new(),
    };
    let inputs = shards
        .iter()
        .map(|(label, r)| (label.clone(), r.partition))
        .collect();
    let report = join(&shards);
    Ok(Merged {
        report,
        inputs,
        partitioning,
        missing,
    })
}

fn join(shards: &[(String, RunReport)]) -> RunReport {
    let reports: Vec<&RunReport> = shards.iter().map(|(_, r)| r).collect();
    let started = reports.iter().map(|r| r.started).min();
    let finished = reports.iter().map(|r| r.finished).max();
    let first = reports[0];
    // An empty shard ran on no cluster (provider `none`): it names none.
    let ran: Vec<&RunReport> = reports
        .iter()
        .copied()
        .filter(|r| r.cluster.provider != "none")
        .collect();
    let cluster = match ran.first() {
        None => first.cluster.clone(),
        Some(one) if ran.iter().all(|r| r.cluster == one.cluster) => one.cluster.clone(),
        Some(one) => {
            let mut names: Vec<&str> = ran.iter().map(|r| r.cluster.name.as_str()).collect();
            names.dedup();
            let provider = if ran
                .iter()
                .all(|r| r.cluster.provider == one.cluster.provider)
            {
                one.cluster.provider.clone()
            } else {
                "mixed".into()
            };
            ClusterRecord {
                provider,
                name: names.join(", "),
                kubeconfig: None,
                context: None,
            }
        }
    };
    let mut experiments: Vec<_> = reports
        .iter()
        .flat_map(|r| r.experiments.iter().cloned())
        .collect();
    // The order an unsharded run of one folder has: by file, then name.
    experiments.sort_by(|a, b| a.file.cmp(&b.file).then_with(|| a.name.cmp(&b.name)));
    let mut records: Vec<ShardRecord> = Vec::new();
    for r in &reports {
        if r.shards.is_empty() {
            records.push(ShardRecord {
                run_id: r.run_id.clone(),
                partition: r.partition,
                cluster: r.cluster.clone(),
                started: r.started,
                finished: r.finished,
                experiments: r.experiments.len(),
            });
        } else {
            // A merged report merged again: keep its shards flat.
            records.extend(r.shards.iter().cloned());
        }
    }
    records.sort_by_key(|s| s.partition.map(|p| p.shard));
    RunReport {
        schema: first.schema.clone(),
        run_id: if reports.len() == 1 {
            first.run_id.clone()
        } else {
            reports
                .iter()
                .map(|r| r.run_id.as_str())
                .collect::<Vec<_>>()
                .join("+")
        },
        started: started.unwrap_or(first.started),
        finished: finished.unwrap_or(first.finished),
        cluster,
        experiments,
        partition: None,
        shards: records,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;
    use rstest::rstest;

    /// The fixture run split into shards with `partition`, one report each.
    fn sharded(kind: &str, total: u32) -> Vec<(String, RunReport)> {
        (1..=total)
            .map(|shard| {
                let p: Partition = format!("{kind}:{shard}/{total}").parse().expect("valid");
                let mut r = fixture::run_report();
                r.run_id = format!("run-{shard}");
                r.experiments = p.select(r.experiments, |e| e.name.as_str());
                r.partition = Some(p);
                (format!("shard-{shard}.json"), r)
            })
            .collect()
    }

    fn verdicts(r: &RunReport) -> Vec<(String, Outcome, Vec<bool>)> {
        let mut v: Vec<_> = r
            .experiments
            .iter()
            .map(|e| {
                (
                    e.name.clone(),
                    e.outcome,
                    e.slos.iter().map(|s| s.met).collect(),
                )
            })
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    #[rstest]
    fn the_merge_of_the_shards_has_the_unsharded_verdicts(
        #[values("count", "hash")] kind: &str,
        #[values(1, 2, 3, 4, 5)] total: u32,
    ) {
        let merged = merge(sharded(kind, total)).expect("merges");
        let whole = fixture::run_report();
        assert_eq!(verdicts(&merged.report), verdicts(&whole));
        assert!(merged.missing.is_empty());
        assert_eq!(merged.report.shards.len(), total as usize);
        assert_eq!(merged.report.exit_code(), whole.exit_code());
        // The unsharded order of one folder: by file.
        let files: Vec<&str> = merged
            .report
            .experiments
            .iter()
            .map(|e| e.file.as_str())
            .collect();
        let mut sorted = files.clone();
        sorted.sort_unstable();
        assert_eq!(files, sorted);
    }

    #[test]
    fn it_says_what_it_merged_and_what_is_missing() {
        let mut shards = sharded("hash", 4);
        shards.remove(2);
        let merged = merge(shards).expect("merges");
        assert_eq!(merged.missing, vec![3]);
        assert!(
            merged
                .describe()
                .starts_with("merged 3 reports (hash shards 1, 2, 4 of 4) into "),
            "{}",
            merged.describe()
        );
        assert_eq!(merged.report.run_id, "run-1+run-2+run-4");
    }

    #[test]
    fn a_report_passed_twice_is_refused() {
        let mut shards = sharded("count", 2);
        shards.push(shards[0].clone());
        shards[2].0 = "copy.json".into();
        assert_eq!(
            merge(shards).expect_err("refused").to_string(),
            "copy.json and shard-1.json are both shard count:1/2: pass each shard's report once"
        );
    }

    #[test]
    fn mixed_partitionings_are_refused() {
        let mut shards = sharded("count", 2);
        shards.extend(
            sharded("hash", 3)
                .into_iter()
                .map(|(l, r)| (format!("h-{l}"), r)),
        );
        let err = merge(shards).expect_err("refused").to_string();
        assert!(
            err.starts_with("h-shard-1.json is shard hash:1/3 but shard-1.json is count:1/2"),
            "{err}"
        );
    }

    #[test]
    fn a_full_run_mixed_with_shards_is_refused() {
        let mut shards = sharded("hash", 2);
        shards.push(("full.json".into(), fixture::run_report()));
        let err = merge(shards).expect_err("refused").to_string();
        assert!(err.contains("is in both shard-"), "{err}");
        assert!(err.ends_with("and full.json: each experiment runs in one shard (a report passed twice, or a full run mixed with shards?)"), "{err}");
    }

    #[test]
    fn different_schema_versions_are_refused() {
        let mut shards = sharded("count", 2);
        shards[1].1.schema = "breakfix.dev/report/v2".into();
        assert_eq!(
            merge(shards).expect_err("refused").to_string(),
            "shard-2.json has report schema `breakfix.dev/report/v2` but shard-1.json has `breakfix.dev/report/v1`: shards of one run come from one breakfix version"
        );
    }

    #[test]
    fn nothing_to_merge_says_what_to_give() {
        assert_eq!(merge(Vec::new()).expect_err("refused"), MergeError::Empty);
    }

    #[test]
    fn shards_on_different_clusters_name_them_all() {
        let mut shards = sharded("count", 2);
        shards[1].1.cluster.name = "ci-runner-2".into();
        let merged = merge(shards).expect("merges");
        assert_eq!(merged.report.cluster.name, "breakfix, ci-runner-2");
        assert_eq!(merged.report.cluster.provider, "kind");
    }

    #[test]
    fn an_empty_shard_names_no_cluster() {
        let mut shards = sharded("count", 2);
        shards[1].1.cluster.provider = "none".into();
        shards[1].1.cluster.name = "no cluster needed".into();
        shards[1].1.experiments.clear();
        let merged = merge(shards).expect("merges");
        assert_eq!(merged.report.cluster.name, "breakfix");
    }

    #[test]
    fn a_merged_report_round_trips_and_merges_again() {
        let merged = merge(sharded("hash", 3)).expect("merges").report;
        let json = crate::report::to_json(&merged).expect("encodes");
        let back: RunReport = serde_json::from_str(&json).expect("decodes");
        assert_eq!(back.shards, merged.shards);
        let again = merge(vec![("all.json".into(), back)]).expect("merges");
        assert_eq!(again.report.shards.len(), 3);
    }
}
