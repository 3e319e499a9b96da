//! End-to-end tests on a real kind cluster (`just e2e` creates it first).
//! They share the cluster named by $BREAKFIX_CLUSTER (default `breakfix`)
//! and run one at a time.

mod bench_smoke;
mod cli;
mod cluster;
mod cron_job_storm;
mod diff;
mod example;
mod faults_memory;
mod faults_mount;
mod faults_pod_kill;
mod faults_probe;
mod faults_rbac;
mod gameday;
mod generic;
mod image_typo;
mod language;
mod node_loss;
mod parallel;
mod selector_mismatch;
mod shards;
mod slos;
mod support;
mod trial;
mod upgrade;
