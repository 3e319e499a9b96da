//! memorySqueeze on the kind cluster: CoreDNS with its limit lowered to 24Mi
//! idles at 11–13 MB, but under the fault's DNS load (unique names walking
//! the ndots:5 search list) it needs 30–40 MB and is OOMKilled; the
//! dns-canary sees lookups time out. The revert restores the exact
//! Deployment and removes the load pod.

use std::sync::Arc;

use breakfix::fault::memory_squeeze::{LOAD_APP, LOAD_LABEL};
use breakfix::kobj::ObjectRef;
use breakfix::vocab::SignalKind;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;
use kube::runtime::watcher;

use crate::support;
use crate::trial::{self, Gauge};

/// CoreDNS containers whose last termination was an OOM kill.
fn oom_killed(pods: &[Arc<Pod>]) -> i64 {
    pods.iter()
        .flat_map(|p| {
            p.status
                .iter()
                .flat_map(|s| s.container_statuses.iter().flatten())
        })
        .filter(|c| {
            [c.state.as_ref(), c.last_state.as_ref()]
                .into_iter()
                .flatten()
                .filter_map(|s| s.terminated.as_ref())
                .any(|t| t.reason.as_deref() == Some("OOMKilled"))
        })
        .count() as i64
}

#[tokio::test]
async fn a_squeezed_coredns_under_dns_load_is_oom_killed_and_restored_exactly() {
    let client = support::client().await;
    let exp = trial::experiment("coredns-memory-squeeze.yaml");
    assert!(
        exp.experiment.spec.fault.is_cluster_scoped(),
        "CoreDNS is shared by the whole cluster: never beside other experiments"
    );
    trial::steady_baseline(&client, &exp).await;
    let coredns = ObjectRef::namespaced("apps/v1", "Deployment", "kube-system", "coredns");
    let before = trial::spec_of(&client, &coredns).await;
    let killed = Gauge::watch(
        Api::<Pod>::namespaced(client.clone(), "kube-system"),
        watcher::Config::default().labels("k8s-app=kube-dns"),
        oom_killed,
    );

    let run = trial::run(&client, &exp).await;
    let (signal, detect, recover) =
        run.assert_detected_and_recovered(&[SignalKind::OOMKilled, SignalKind::DnsFailures]);
    let (injected, reverted) = run.fault_window();
    let during = killed.during(injected, reverted);
    assert!(
        during.iter().any(|n| *n > 0),
        "the kubelet must have OOM-killed CoreDNS: {during:?}"
    );
    let injected_summary = run.report.trials[0].injected.as_deref().unwrap_or_default();
    assert!(
        injected_summary.contains("→ 24Mi") && injected_summary.contains("unique names"),
        "{injected_summary}"
    );

    assert_eq!(
        trial::spec_of(&client, &coredns).await,
        before,
        "CoreDNS exactly as before"
    );
    let load = Api::<Pod>::namespaced(client.clone(), "canaries")
        .list(&ListParams::default().labels(&format!("{LOAD_LABEL}={LOAD_APP}")))
        .await
        .unwrap()
        .items;
    assert!(
        load.iter().all(|p| p.metadata.deletion_timestamp.is_some()),
        "the load pod is gone or going: {:?}",
        load.iter().map(|p| &p.metadata.name).collect::<Vec<_>>()
    );
    eprintln!("coredns-memory-squeeze: {signal} detected in {detect:?}, recovered in {recover:?}");
}
