//! Which experiments may run side by side: the plan of a run.
//!
//! Every experiment claims what it needs to itself while it runs
//! ([`LoadedExperiment::claims`]): namespaces, or something every workload
//! shares (cluster DNS, the nodes, cluster RBAC, the nodes' capacity). Two
//! experiments run at once only when their claims are disjoint; one that
//! claims a shared resource runs alone, with nothing beside it. With
//! instances on, each trial gets its baseline in namespaces of its own, so
//! experiments on the same baseline no longer collide.
//!
//! The order: experiments that run alone first (nothing runs yet, so no
//! slot is left idle waiting for the cluster to empty), then the rest, each
//! started as soon as a slot is free and nothing it claims is held. The rest
//! go in file order, or, given how long each took before (an earlier run's
//! report), longest first: a long experiment started last would otherwise
//! run on alone at the end. Reports come back in file order whatever the
//! order of execution.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::time::Duration;

use crate::baseline::instance_id;
use crate::experiment::LoadedExperiment;
use crate::fault::{Claim, SharedResource};

/// How many experiments run at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jobs {
    /// As many as the cluster can hold ([`super::capacity::judge`]).
    Auto,
    /// This many at most.
    Fixed(NonZeroU32),
}

impl Default for Jobs {
    /// One at a time: experiments in their baselines' own namespaces, one
    /// after another.
    fn default() -> Self {
        Self::Fixed(NonZeroU32::MIN)
    }
}

/// Why a `--jobs` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobsError {
    /// Zero jobs.
    #[error("0 jobs would run nothing; give 1 (one at a time), more, or `auto`")]
    Zero,
    /// Not a number.
    #[error("`{0}` is not a number of jobs; give a whole number from 1 up, or `auto`")]
    NotANumber(String),
}

impl FromStr for Jobs {
    type Err = JobsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("auto") {
            return Ok(Self::Auto);
        }
        let n: u32 = s.parse().map_err(|_| JobsError::NotANumber(s.into()))?;
        NonZeroU32::new(n).map(Self::Fixed).ok_or(JobsError::Zero)
    }
}

impl std::fmt::Display for Jobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Fixed(n) => write!(f, "{n}"),
        }
    }
}

/// How one experiment is placed in the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The experiment's name.
    pub experiment: String,
    /// Shared resources it claims: non-empty means it runs alone.
    pub alone: Vec<SharedResource>,
    /// Runs on instances of its baseline (one per trial).
    pub instances: bool,
    /// Why it runs in its baseline's own namespace although instances were
    /// asked for (the baseline cannot move).
    pub in_place: Option<String>,
    /// What it holds while it runs (with instances: those of its first
    /// trial's instance, which no other experiment can share).
    pub claims: Vec<Claim>,
}

impl Placement {
    /// Whether this experiment and `other` may run at the same time.
    pub fn compatible(&self, other: &Self) -> bool {
        self.alone.is_empty()
            && other.alone.is_empty()
            && !self.claims.iter().any(|c| other.claims.contains(c))
    }
}

/// The instance id of an experiment's trial: stable for a run, distinct
/// between experiments (by file) and trials.
pub fn trial_instance_id(run_id: &str, exp: &LoadedExperiment, trial: u32) -> String {
    instance_id(&format!("{run_id}/{}/{trial}", exp.path.display()))
}

/// Places each experiment: on instances when `instances` and its baseline
/// can move, otherwise in place; with the claims it holds while it runs.
pub fn place(run_id: &str, experiments: &[LoadedExperiment], instances: bool) -> Vec<Placement> {
    experiments
        .iter()
        .map(|exp| {
            let (claims, on_instances, in_place) = if instances {
                match exp.instance(&trial_instance_id(run_id, exp, 1)) {
                    Ok(moved) => (moved.claims(), true, None),
                    Err(e) => (exp.claims(), false, Some(e.reason)),
                }
            } else {
                (exp.claims(), false, None)
            };
            let alone = claims
                .iter()
                .filter_map(|c| match c {
                    Claim::Shared(r) => Some(*r),
                    Claim::Namespace(_) => None,
                })
                .collect();
            Placement {
                experiment: exp.name().to_string(),
                alone,
                instances: on_instances,
                in_place,
                claims,
            }
        })
        .collect()
}

/// The order to consider experiments in: those that run alone first, in
/// file order, then the rest longest first by `expected` (how long each took
/// before, by name), those it does not know before any it does (they may be
/// long), ties in file order. Indexes into `placements`.
pub fn order(placements: &[Placement], expected: &HashMap<String, Duration>) -> Vec<usize> {
    let (alone, mut shared): (Vec<usize>, Vec<usize>) =
        (0..placements.len()).partition(|&i| !placements[i].alone.is_empty());
    shared.sort_by_key(|&i| {
        std::cmp::Reverse(
            expected
                .get(&placements[i].experiment)
                .copied()
                .unwrap_or(Duration::MAX),
        )
    });
    alone.into_iter().chain(shared).collect()
}

/// The next experiment to start from `waiting` (in order), given those
/// `running`, or `None` when none may start now. An experiment that runs
/// alone waits for the cluster to empty, and nothing behind it overtakes
/// it, so it is never starved.
pub fn next(placements: &[Placement], waiting: &[usize], running: &[usize]) -> Option<usize> {
    for &i in waiting {
        let p = &placements[i];
        if !p.alone.is_empty() {
            return running.is_empty().then_some(i);
        }
        if running.iter().all(|&r| p.compatible(&placements[r])) {
            return Some(i);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    fn placement(name: &str, claims: &[Claim]) -> Placement {
        Placement {
            experiment: name.into(),
            alone: claims
                .iter()
                .filter_map(|c| match c {
                    Claim::Shared(r) => Some(*r),
                    Claim::Namespace(_) => None,
                })
                .collect(),
            instances: true,
            in_place: None,
            claims: claims.to_vec(),
        }
    }

    fn ns(name: &str) -> Claim {
        Claim::Namespace(name.into())
    }

    #[rstest]
    #[case::auto("auto", Ok(Jobs::Auto))]
    #[case::four("4", Ok(Jobs::Fixed(NonZeroU32::new(4).unwrap())))]
    #[case::zero("0", Err(JobsError::Zero))]
    #[case::words("lots", Err(JobsError::NotANumber("lots".into())))]
    #[case::negative("-1", Err(JobsError::NotANumber("-1".into())))]
    fn jobs_are_a_positive_number_or_auto(
        #[case] input: &str,
        #[case] expected: Result<Jobs, JobsError>,
    ) {
        assert_eq!(input.parse::<Jobs>(), expected);
    }

    #[test]
    fn shared_ones_go_first_and_run_alone_and_the_rest_share_by_claims() {
        let p = vec![
            placement("a", &[ns("shop-bf-1")]),
            placement(
                "dns",
                &[
                    ns("canaries-bf-2"),
                    Claim::Shared(SharedResource::ClusterDns),
                ],
            ),
            placement("b", &[ns("shop-bf-3")]),
            placement("c-in-place", &[ns("probes")]),
            placement("d-in-place", &[ns("probes")]),
        ];
        assert_eq!(order(&p, &HashMap::new()), vec![1, 0, 2, 3, 4]);
        let waiting = order(&p, &HashMap::new());
        // Nothing runs: the shared one starts, and alone.
        assert_eq!(next(&p, &waiting, &[]), Some(1));
        assert_eq!(next(&p, &[0, 2, 3, 4], &[1]), None);
        // Then the others, as long as their claims are disjoint.
        assert_eq!(next(&p, &[0, 2, 3, 4], &[]), Some(0));
        assert_eq!(next(&p, &[2, 3, 4], &[0]), Some(2));
        assert_eq!(next(&p, &[3, 4], &[0, 2]), Some(3));
        // d claims what c holds; it waits, and nothing else is left.
        assert_eq!(next(&p, &[4], &[0, 2, 3]), None);
        assert_eq!(next(&p, &[4], &[0, 2]), Some(4));
    }

    #[rstest]
    #[case::none_timed(&[], vec![0, 1, 2, 3, 4])]
    #[case::longest_first(&[("a", 5), ("b", 50), ("c", 20), ("d", 50), ("e", 1)], vec![1, 3, 2, 0, 4])]
    #[case::untimed_before_timed(&[("a", 5), ("c", 20), ("e", 90)], vec![1, 3, 4, 2, 0])]
    #[case::alone_ones_still_first(&[("storm", 1), ("a", 30)], vec![5, 1, 2, 3, 4, 0])]
    fn given_earlier_timings_the_rest_start_longest_first(
        #[case] timed: &[(&str, u64)],
        #[case] expected_order: Vec<usize>,
    ) {
        let mut p: Vec<Placement> = ["a", "b", "c", "d", "e"]
            .iter()
            .map(|n| placement(n, &[ns(n)]))
            .collect();
        if timed.iter().any(|(n, _)| *n == "storm") {
            p.push(placement(
                "storm",
                &[Claim::Shared(SharedResource::SchedulerCapacity)],
            ));
        }
        let expected: HashMap<String, Duration> = timed
            .iter()
            .map(|(n, s)| (n.to_string(), Duration::from_secs(*s)))
            .collect();
        assert_eq!(order(&p, &expected), expected_order);
    }

    #[test]
    fn a_shared_one_is_not_overtaken_while_it_waits_for_the_cluster_to_empty() {
        let p = vec![
            placement("a", &[ns("x")]),
            placement("storm", &[Claim::Shared(SharedResource::SchedulerCapacity)]),
            placement("b", &[ns("y")]),
        ];
        assert_eq!(next(&p, &[1, 2], &[0]), None);
        assert_eq!(next(&p, &[1, 2], &[]), Some(1));
    }

    #[test]
    fn the_built_in_suite_moves_and_runs_two_experiments_alone() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
        let files = crate::experiment::collect_files(&[dir]).unwrap();
        let experiments: Vec<LoadedExperiment> = files
            .iter()
            .map(|f| crate::experiment::load_experiment(f).unwrap_or_else(|e| panic!("{e:?}")))
            .collect();
        let placements = place("run-1", &experiments, true);
        assert!(placements.iter().all(|p| p.instances), "{placements:#?}");
        let alone: Vec<&str> = placements
            .iter()
            .filter(|p| !p.alone.is_empty())
            .map(|p| p.experiment.as_str())
            .collect();
        assert_eq!(alone, vec!["coredns-memory-squeeze", "cron-job-storm"]);
        // In place, experiments on one baseline share its namespace.
        let in_place = place("run-1", &experiments, false);
        let typo = in_place
            .iter()
            .find(|p| p.experiment == "image-typo")
            .unwrap();
        let kill = in_place
            .iter()
            .find(|p| p.experiment == "pod-kill")
            .unwrap();
        assert!(!typo.compatible(kill));
    }
}
