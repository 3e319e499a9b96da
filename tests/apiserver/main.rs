//! The fast tier: breakfix's own logic against a real kube-apiserver, etcd
//! and kube-controller-manager (no nodes), one control plane per binary.
//! Run with `just test` (needs Docker and the image `just images` builds).

mod baseline;
mod browser;
mod detection;
mod faults_generic;
mod faults_memory;
mod faults_mount;
mod faults_nodes;
mod faults_pod_kill;
mod faults_probe;
mod faults_rbac;
mod faults_storm;
mod gameday;
mod instances;
mod journal;
mod leases;
mod measure;
mod rbac;
mod runner;
mod signals;
mod steps;
mod support;
mod upgrade_drain;
