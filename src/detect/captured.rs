//! Classification checked on objects captured from a real kind cluster
//! (tests/fixtures/faults, `kubectl get … -o json` during the e2e runs), so
//! the parsing matches what a kubelet and API server actually write.

use std::path::PathBuf;

use k8s_openapi::api::core::v1::{Event, Pod};
use rstest::rstest;

use super::classify::{event_finding, event_is_new, pod_findings};
use super::diagnose::missing_reference;
use crate::vocab::SignalKind;

fn fixture<T: serde::de::DeserializeOwned>(name: &str) -> T {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/faults")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("fixture exists");
    serde_json::from_str(&text).expect("fixture parses")
}

fn probe_events() -> Vec<Event> {
    let list: serde_json::Value = fixture("events-probes.json");
    serde_json::from_value(list["items"].clone()).expect("events")
}

/// The event from a repeated kubelet report: first seen 10:46:06 (whole
/// seconds), repeated 8 times until 10:47:10.
fn repeated_failed_mount() -> Event {
    fixture("event-failedmount-repeated.json")
}

#[rstest]
#[case::same_second_as_the_injection("2026-11-23T10:46:06.300Z", true)]
#[case::repeated_after_the_injection("2026-11-23T10:46:40Z", true)]
#[case::over_before_the_injection("2026-11-23T10:47:11Z", false)]
fn an_event_counts_if_it_happened_again_after_the_injection(
    #[case] not_before: &str,
    #[case] new: bool,
) {
    let not_before = not_before.parse().expect("a timestamp");
    assert_eq!(event_is_new(&repeated_failed_mount(), not_before), new);
}

#[test]
fn a_failed_mount_names_the_missing_secret() {
    let event = repeated_failed_mount();
    let finding = event_finding(&event).expect("a signal");
    assert_eq!(finding.kind, SignalKind::FailedMount);
    assert_eq!(
        missing_reference(&finding.message),
        Some(("Secret", "app-credentials".to_string()))
    );
}

#[rstest]
#[case(
    "Liveness probe failed: Get \"http://10.244.0.94:8081/healthz\": dial tcp 10.244.0.94:8081: connect: connection refused",
    Some(SignalKind::LivenessFailed)
)]
#[case(
    "Liveness probe failed: HTTP probe failed with statuscode: 404",
    Some(SignalKind::LivenessFailed)
)]
#[case(
    "Liveness probe failed: Get \"http://10.244.0.75:8080/healthz\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)",
    Some(SignalKind::ProbeTimeout)
)]
#[case(
    "Readiness probe failed: HTTP probe failed with statuscode: 404",
    Some(SignalKind::ReadinessFailed)
)]
#[case("Startup probe failed: HTTP probe failed with statuscode: 503", None)]
#[case(
    "Container api failed liveness probe, will be restarted",
    Some(SignalKind::LivenessFailed)
)]
#[case(
    "Container api failed startup probe, will be restarted",
    Some(SignalKind::StartupFailed)
)]
#[case("Stopping container api", Some(SignalKind::PodGone))]
fn the_kubelets_probe_reports_are_told_apart(
    #[case] message: &str,
    #[case] kind: Option<SignalKind>,
) {
    let events = probe_events();
    let event = events
        .iter()
        .find(|e| e.message.as_deref() == Some(message))
        .unwrap_or_else(|| panic!("no captured event says {message:?}"));
    assert_eq!(event_finding(event).map(|f| f.kind), kind, "{message}");
}

#[test]
fn a_container_in_back_off_after_liveness_kills_is_crash_looping_and_restarted() {
    let pod: Pod = fixture("pod-unlive.json");
    let kinds: Vec<SignalKind> = pod_findings(&pod, &|_| Some(0))
        .into_iter()
        .map(|f| f.kind)
        .collect();
    assert!(kinds.contains(&SignalKind::CrashLoopBackOff), "{kinds:?}");
    assert!(kinds.contains(&SignalKind::Restarted), "{kinds:?}");
    assert!(!kinds.contains(&SignalKind::OOMKilled), "{kinds:?}");
}

#[test]
fn a_container_over_its_limit_is_oom_killed() {
    let pod: Pod = fixture("pod-hog.json");
    let findings = pod_findings(&pod, &|_| Some(0));
    let oom = findings
        .iter()
        .find(|f| f.kind == SignalKind::OOMKilled)
        .expect("OOMKilled");
    assert_eq!(oom.container.as_deref(), Some("main"));
    assert!(
        oom.since.is_some(),
        "the kill's finishedAt is its cluster time"
    );
}
