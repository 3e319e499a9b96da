//! The SLOs beyond timing on a real cluster: a canary's availability read
//! through the pod proxy, the blast radius, user conditions, repeats with
//! percentile verdicts, and every report format written by one run.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support;

const NAMESPACE: &str = "breakfix-e2e-slos";

const MANIFESTS: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  strategy: {rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
        - name: web
          image: breakfix/workload:0.1.0
          imagePullPolicy: IfNotPresent
          args: [serve]
          ports: [{name: http, containerPort: 8080}]
          readinessProbe: {httpGet: {path: /readyz, port: http}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web-canary, labels: {app: web-canary}}
spec:
  replicas: 1
  selector: {matchLabels: {app: web-canary}}
  template:
    metadata: {labels: {app: web-canary}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
        - name: canary
          image: breakfix/workload:0.1.0
          imagePullPolicy: IfNotPresent
          args: [http-canary, --url, "http://web/", --interval, 200ms, --timeout, 1s]
          ports: [{name: http, containerPort: 8080}]
          readinessProbe: {httpGet: {path: /readyz, port: http}, periodSeconds: 1}
"#;

fn write_experiment(dir: &Path, slo: &str) -> PathBuf {
    std::fs::create_dir_all(dir.join("baseline/manifests")).unwrap();
    std::fs::write(dir.join("baseline/manifests/objects.yaml"), MANIFESTS).unwrap();
    std::fs::write(
        dir.join("baseline/baseline.yaml"),
        format!(
            "apiVersion: breakfix.dev/v1alpha1\nkind: Baseline\nmetadata: {{name: slos}}\nspec:\n  namespace: {NAMESPACE}\n  steadyState: {{timeout: 180s}}\n"
        ),
    )
    .unwrap();
    let path = dir.join("image-typo-slos.yaml");
    std::fs::write(
        &path,
        format!(
            r#"apiVersion: breakfix.dev/v1alpha1
kind: Experiment
metadata:
  name: image-typo-slos
  story: a broken image while the old pods keep serving
spec:
  baseline: baseline
  fault:
    imageTypo:
      target: {{namespace: {NAMESPACE}, deployment: web}}
  expect:
    signals: [ErrImagePull, ImagePullBackOff]
  settle: 2s
  slo:
    detectWithin: 60s
    recoverWithin: 120s
{slo}
"#
        ),
    )
    .unwrap();
    path
}

fn run(dir: &Path, experiment: &Path, extra: &[&str]) -> (Output, serde_json::Value) {
    let report = dir.join("report.json");
    let out = Command::new(env!("CARGO_BIN_EXE_breakfix"))
        .env("BREAKFIX_JOURNAL_DIR", dir.join("journal"))
        .args(["run", &experiment.display().to_string()])
        .args([
            "--cluster-name",
            &support::cluster_name(),
            "--reuse",
            "--keep",
        ])
        .args(["--json", &report.display().to_string()])
        .args(extra)
        .output()
        .unwrap();
    let json = std::fs::read_to_string(&report)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null);
    (out, json)
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn slo<'a>(json: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    json["experiments"][0]["slos"]
        .as_array()
        .and_then(|v| v.iter().find(|s| s["slo"] == name))
        .unwrap_or_else(|| panic!("no verdict {name}: {json}"))
}

#[tokio::test]
async fn a_stalled_rollout_keeps_serving_and_every_report_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let experiment = write_experiment(
        dir.path(),
        r#"    percentile: p50
    availability: {canary: {selector: app=web-canary}, atLeast: "90%"}
    blastRadius: {namespaces: [NS]}
    conditions:
      - name: web-keeps-serving
        object: {apiVersion: apps/v1, kind: Deployment, name: web}
        expression: object.status.availableReplicas >= 2
      - name: rollout-starts
        object: {apiVersion: apps/v1, kind: Deployment, name: web}
        expression: object.status.updatedReplicas >= 1
        must: becomeTrue
        within: 60s"#
            .replace("NS", NAMESPACE)
            .as_str(),
    );
    let (md, html, xml) = (
        dir.path().join("summary.md"),
        dir.path().join("report.html"),
        dir.path().join("junit.xml"),
    );
    let (out, json) = run(
        dir.path(),
        &experiment,
        &[
            "--repeat",
            "2",
            "--markdown",
            &md.display().to_string(),
            "--html",
            &html.display().to_string(),
            "--junit",
            &xml.display().to_string(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let exp = &json["experiments"][0];
    assert_eq!(exp["outcome"], "passed", "{json}");
    assert_eq!(exp["trials"].as_array().unwrap().len(), 2);

    let availability = slo(&json, "availability");
    assert!(
        availability["actual"].as_f64().unwrap() >= 0.9,
        "{availability}"
    );
    let window = &exp["trials"][0]["measurements"]["availability"];
    assert!(
        window["total"].as_u64().unwrap() > 5,
        "the canary checked during the window: {window}"
    );

    let blast = &exp["trials"][0]["measurements"]["blastRadius"];
    assert_eq!(
        blast["excluded"][0],
        format!("deployment/web -n {NAMESPACE}"),
        "{blast}"
    );
    assert_eq!(blast["watched"], 1, "the canary is watched: {blast}");
    assert_eq!(slo(&json, "blastRadius")["actual"], 0);

    assert_eq!(
        slo(&json, "condition/web-keeps-serving")["actual"],
        0,
        "maxUnavailable 0 keeps both old pods"
    );
    let started = slo(&json, "condition/rollout-starts");
    assert_eq!(started["met"], true, "{started}");
    assert_eq!(
        slo(&json, "detectWithin")["samples"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let md = std::fs::read_to_string(md).unwrap();
    assert!(md.contains("| availability | ≥ 90% | p50 |"), "{md}");
    let html = std::fs::read_to_string(html).unwrap();
    assert!(html.contains("aria-label=\"timeline of 2 trials of image-typo-slos\""));
    let xml = std::fs::read_to_string(xml).unwrap();
    assert!(xml.contains("<property name=\"availability\""), "{xml}");
}

#[tokio::test]
async fn a_condition_that_cannot_hold_fails_the_run_with_the_values_read() {
    let dir = tempfile::tempdir().unwrap();
    let experiment = write_experiment(
        dir.path(),
        r#"    conditions:
      - name: three-available
        object: {apiVersion: apps/v1, kind: Deployment, name: web}
        expression: object.status.availableReplicas >= 3"#,
    );
    let (out, json) = run(dir.path(), &experiment, &[]);
    let output = text(&out);
    assert_eq!(out.status.code(), Some(1), "{output}");
    assert!(
        output.contains("✗ condition/three-available 0ms:"),
        "{output}"
    );
    assert!(
        output.contains("object.status.availableReplicas = 2"),
        "{output}"
    );
    assert_eq!(json["experiments"][0]["outcome"], "failed");
}
