//! The SLO measurements beyond timing, fed by real watches: a condition on
//! an object that goes false and back, workloads outside the target leaving
//! steady state, and a canary that is not there.

use std::time::Duration;

use breakfix::detect::Scope;
use breakfix::experiment::SloSpec;
use breakfix::runner::measure::MeasureSession;
use breakfix::slo::{self, Measurements, TrialData};
use breakfix::testkit;
use breakfix::timeline::Marks;
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::wait::await_condition;

fn slo(yaml: &str) -> SloSpec {
    serde_yaml::from_str(&format!("detectWithin: 30s\nrecoverWithin: 60s\n{yaml}")).unwrap()
}

async fn set_state(api: &Api<ConfigMap>, state: &str) {
    api.patch(
        "alerts",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"data": {"state": state}})),
    )
    .await
    .unwrap();
}

fn verdict<'a>(verdicts: &'a [slo::SloVerdict], name: &str) -> &'a slo::SloVerdict {
    verdicts
        .iter()
        .find(|v| v.slo == name)
        .unwrap_or_else(|| panic!("no verdict {name} in {verdicts:?}"))
}

fn judge(spec: &SloSpec, from: Timestamp, to: Timestamp, m: &Measurements) -> Vec<slo::SloVerdict> {
    let marks = Marks {
        injected: Some(from),
        detected: Some(from),
        recovered: Some(to),
        ..Marks::default()
    };
    slo::evaluate(
        spec,
        &[TrialData {
            marks: &marks,
            measurements: m,
        }],
    )
}

#[tokio::test]
async fn a_condition_that_dips_is_measured_and_judged() {
    let ns = testkit::namespace("measure-cond").await;
    let api: Api<ConfigMap> = Api::namespaced(ns.client.clone(), &ns.name);
    let cm: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "alerts"},
        "data": {"state": "ok"}
    }))
    .unwrap();
    api.create(&PostParams::default(), &cm).await.unwrap();
    let spec = slo(r#"
conditions:
  - name: stays-ok
    object: {apiVersion: v1, kind: ConfigMap, name: alerts}
    expression: object.data.state == "ok"
    tolerance: 100ms
  - name: alert-fires
    object: {apiVersion: v1, kind: ConfigMap, name: alerts}
    expression: object.data.state == "firing"
    must: becomeTrue
    within: 30s
  - name: missing-kind
    object: {apiVersion: example.com/v1, kind: Widget, name: w}
    expression: has(object.status)
"#);
    let session = MeasureSession::start(&ns.client, &spec, &ns.name).await;
    let from = Timestamp::now();
    set_state(&api, "firing").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    set_state(&api, "ok").await;
    // The window ends once the session's watch has had time to deliver the
    // change back (as a run's window ends after the settle period).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let to = Timestamp::now();
    let m = session.finish(&ns.client, Some(from), Some(to)).await;

    let stays = &m.conditions[0];
    assert_eq!(stays.object, format!("configmap/alerts -n {}", ns.name));
    assert!(stays.initially, "{stays:?}");
    assert_eq!(stays.false_spans.len(), 1, "{stays:?}");
    assert_eq!(
        stays.false_spans[0].values,
        "object.data.state = \"firing\""
    );
    assert!(stays.false_spans[0].to.is_some(), "it came back: {stays:?}");
    assert!(
        (1000..5000).contains(&stays.false_ms),
        "false for about 1.5s: {stays:?}"
    );
    let fires = &m.conditions[1];
    assert!(!fires.initially);
    assert!(fires.became_true.is_some_and(|t| t >= from), "{fires:?}");
    assert!(
        m.conditions[2]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("Widget")),
        "an unknown kind is a measurement error: {:?}",
        m.conditions[2]
    );

    let verdicts = judge(&spec, from, to, &m);
    assert!(!verdict(&verdicts, "condition/stays-ok").met);
    assert!(verdict(&verdicts, "condition/alert-fires").met);
    let missing = verdict(&verdicts, "condition/missing-kind");
    assert!(!missing.met);
    assert!(missing.notes[0].contains("Widget"), "{:?}", missing.notes);
}

fn deployment(name: &str, replicas: i32) -> Deployment {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "breakfix/workload:0.1.0"}]}
            }
        }
    }))
    .unwrap()
}

async fn scale(api: &Api<Deployment>, name: &str, replicas: i32) {
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"spec": {"replicas": replicas}})),
    )
    .await
    .unwrap();
}

/// A Deployment scaled to zero is steady once the controller has observed
/// it; this control plane has no nodes, so scaling up makes it unsteady.
async fn steady(api: &Api<Deployment>, name: &str) {
    let observed = await_condition(api.clone(), name, |d: Option<&Deployment>| {
        d.is_some_and(|d| breakfix::baseline::steady::deployment_verdict(d).0)
    });
    tokio::time::timeout(Duration::from_secs(30), observed)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn workloads_outside_the_target_that_leave_steady_state_are_counted() {
    let ns = testkit::namespace("measure-blast").await;
    let api: Api<Deployment> = Api::namespaced(ns.client.clone(), &ns.name);
    for name in ["web", "api", "batch"] {
        api.create(&PostParams::default(), &deployment(name, 0))
            .await
            .unwrap();
        steady(&api, name).await;
    }
    let spec = slo(&format!(
        "blastRadius: {{namespaces: [{}], maxAffected: 0}}",
        ns.name
    ));
    let mut session = MeasureSession::start(&ns.client, &spec, &ns.name).await;
    let from = Timestamp::now();
    session.set_target(&Scope {
        deployment: Some("web".into()),
        pod_selector: Some("app=web".into()),
        ..Scope::namespace(&ns.name)
    });
    // The target breaks (never counted) and so does a bystander.
    scale(&api, "web", 1).await;
    scale(&api, "api", 1).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    scale(&api, "api", 0).await;
    steady(&api, "api").await;
    // The session stamps what its own watch receives; the window ends once
    // that watch has had a moment to deliver what this test's watch saw
    // (the runner's window likewise ends after the settle period).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let to = Timestamp::now();
    let m = session.finish(&ns.client, Some(from), Some(to)).await;

    let b = m.blast_radius.as_ref().unwrap();
    assert_eq!(b.error, None);
    assert_eq!(b.excluded, vec![format!("deployment/web -n {}", ns.name)]);
    assert_eq!(b.watched, 2, "api and batch: {b:?}");
    assert_eq!(b.affected.len(), 1, "{b:?}");
    let d = &b.affected[0];
    assert_eq!(d.workload, format!("deployment/api -n {}", ns.name));
    assert!(d.back.is_some(), "api came back: {d:?}");
    assert!(d.reason.contains("0/1 ready"), "{d:?}");

    let verdicts = judge(&spec, from, to, &m);
    let blast = verdict(&verdicts, "blastRadius");
    assert_eq!(blast.actual, Some(1.0));
    assert!(!blast.met);
    assert!(
        blast.notes[0].contains("deployment/api"),
        "{:?}",
        blast.notes
    );
}

#[tokio::test]
async fn a_canary_that_is_not_there_is_not_measured_as_available() {
    let ns = testkit::namespace("measure-avail").await;
    let spec = slo("availability: {canary: {selector: app=web-canary}, atLeast: \"99%\"}");
    let session = MeasureSession::start(&ns.client, &spec, &ns.name).await;
    let from = Timestamp::now();
    let m = session.finish(&ns.client, Some(from), None).await;
    let a = m.availability.as_ref().unwrap();
    assert_eq!(a.canary, format!("app=web-canary -n {}", ns.name));
    assert_eq!(a.ratio(), None);
    assert!(
        a.error
            .as_deref()
            .is_some_and(|e| e.contains("no running pods")),
        "{a:?}"
    );
    let verdicts = judge(&spec, from, Timestamp::now(), &m);
    assert!(!verdict(&verdicts, "availability").met);
}

#[tokio::test]
async fn nothing_is_reported_for_a_trial_that_never_injected() {
    let ns = testkit::namespace("measure-none").await;
    let spec = slo(
        "blastRadius: {}\nconditions: [{name: c, object: {apiVersion: v1, kind: ConfigMap, name: x}, expression: has(object.data)}]",
    );
    let session = MeasureSession::start(&ns.client, &spec, &ns.name).await;
    let m = session.finish(&ns.client, None, None).await;
    assert!(m.is_empty(), "{m:?}");
}
