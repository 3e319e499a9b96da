//! Baselines kept as a Kustomize overlay or a Helm chart, rendered by the
//! real `kustomize` and `helm` (the pinned builds in breakfix's cache, from
//! `scripts/build-components.sh`); no cluster. Loading through
//! `LoadedBaseline::load` and through `breakfix validate`, the way users do.

use std::path::{Path, PathBuf};
use std::process::Command;

use breakfix::baseline::LoadedBaseline;
use breakfix::vocab::Diagnostic;

/// Writes `files` (path, text) under a fresh folder.
fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary folder");
    for (path, text) in files {
        let full = dir.path().join(path);
        std::fs::create_dir_all(full.parent().expect("a parent")).expect("mkdir");
        std::fs::write(full, text).expect("write");
    }
    dir
}

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: breakfix/workload:0.1.0}]}
";

const CRD: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  names: {kind: Widget, plural: widgets, singular: widget}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
";

fn kustomize_repo() -> tempfile::TempDir {
    tree(&[
        (
            "base/kustomization.yaml",
            "resources:\n  - widget.yaml\n  - deployment.yaml\n  - crd.yaml\n",
        ),
        ("base/deployment.yaml", DEPLOYMENT),
        ("base/crd.yaml", CRD),
        (
            "base/widget.yaml",
            "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n",
        ),
        (
            "overlays/ci/kustomization.yaml",
            "resources:\n  - ../../base\n  - namespace.yaml\npatches:\n  - target: {kind: Deployment, name: web}\n    patch: |-\n      - op: replace\n        path: /spec/replicas\n        value: 2\n",
        ),
        (
            "overlays/ci/namespace.yaml",
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop-extra}\n",
        ),
        (
            "breakfix/baseline.yaml",
            "apiVersion: breakfix.dev/v1alpha1\nkind: Baseline\nmetadata: {name: shop}\nspec:\n  namespace: shop\n  kustomize: ../overlays/ci\n",
        ),
    ])
}

fn helm_repo() -> tempfile::TempDir {
    tree(&[
        (
            "charts/shop/Chart.yaml",
            "apiVersion: v2\nname: shop\nversion: 0.1.0\n",
        ),
        (
            "charts/shop/values.yaml",
            "replicas: 1\nprobe: {port: 8080}\n",
        ),
        ("charts/shop/crds/widgets.yaml", CRD),
        (
            "charts/shop/templates/deployment.yaml",
            "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-web
  namespace: {{ .Release.Namespace }}
spec:
  replicas: {{ .Values.replicas }}
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: breakfix/workload:0.1.0
          readinessProbe: {httpGet: {path: /, port: {{ .Values.probe.port }}}}
",
        ),
        (
            "charts/shop/templates/widget.yaml",
            "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: {{ .Release.Name }}}\n",
        ),
        ("values-ci.yaml", "replicas: 3\n"),
        (
            "breakfix/baseline.yaml",
            "apiVersion: breakfix.dev/v1alpha1\nkind: Baseline\nmetadata: {name: shop}\nspec:\n  namespace: shop\n  helm:\n    chart: ../charts/shop\n    values: [../values-ci.yaml]\n    releaseName: store\n",
        ),
    ])
}

fn load(dir: &Path) -> Result<LoadedBaseline, Vec<Diagnostic>> {
    LoadedBaseline::load(&dir.join("breakfix/baseline.yaml"))
}

/// (kind, name) of each object, in apply order.
fn kinds_and_names(b: &LoadedBaseline) -> Vec<(String, String)> {
    b.objects
        .iter()
        .map(|o| {
            (
                o.types.as_ref().map(|t| t.kind.clone()).unwrap_or_default(),
                o.metadata.name.clone().unwrap_or_default(),
            )
        })
        .collect()
}

fn field(b: &LoadedBaseline, kind: &str, pointer: &str) -> serde_json::Value {
    let obj = b
        .objects
        .iter()
        .find(|o| o.types.as_ref().is_some_and(|t| t.kind == kind))
        .unwrap_or_else(|| panic!("no {kind}"));
    obj.data.pointer(pointer).cloned().unwrap_or_default()
}

fn only_problem(result: Result<LoadedBaseline, Vec<Diagnostic>>) -> Diagnostic {
    let mut problems = result.expect_err("the render should fail");
    assert_eq!(problems.len(), 1, "{problems:#?}");
    problems.remove(0)
}

fn ends_with(file: &Path, suffix: &str) -> bool {
    file.ends_with(PathBuf::from(suffix))
}

#[test]
fn a_kustomize_overlay_renders_patched_and_in_apply_order() {
    let repo = kustomize_repo();
    let b = load(repo.path()).unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(
        kinds_and_names(&b),
        [
            ("Namespace".into(), "shop-extra".into()),
            (
                "CustomResourceDefinition".into(),
                "widgets.example.com".into()
            ),
            ("Deployment".into(), "web".into()),
            ("Widget".into(), "w".into()),
        ]
    );
    assert_eq!(field(&b, "Deployment", "/spec/replicas"), 2);
}

#[test]
fn a_helm_chart_renders_with_values_release_name_and_crds() {
    let repo = helm_repo();
    let b = load(repo.path()).unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(
        kinds_and_names(&b),
        [
            (
                "CustomResourceDefinition".into(),
                "widgets.example.com".into()
            ),
            ("Deployment".into(), "store-web".into()),
            ("Widget".into(), "store".into()),
        ]
    );
    assert_eq!(field(&b, "Deployment", "/spec/replicas"), 3);
    let deployment = b
        .objects
        .iter()
        .find(|o| o.metadata.name.as_deref() == Some("store-web"));
    assert_eq!(
        deployment.and_then(|d| d.metadata.namespace.as_deref()),
        Some("shop")
    );
}

#[test]
fn a_template_error_points_at_the_template_line_and_column() {
    let repo = helm_repo();
    std::fs::write(repo.path().join("charts/shop/values.yaml"), "replicas: 1\n").unwrap();
    let d = only_problem(load(repo.path()));
    assert!(
        ends_with(&d.file, "charts/shop/templates/deployment.yaml"),
        "{d}"
    );
    assert_eq!((d.line, d.column), (Some(15), Some(62)), "{d}");
    assert!(d.message.contains("nil pointer"), "{d}");
}

#[test]
fn a_broken_values_file_is_named_with_its_line() {
    let repo = helm_repo();
    std::fs::write(
        repo.path().join("values-ci.yaml"),
        "replicas: 3\nprobe: {port: 1\n",
    )
    .unwrap();
    let d = only_problem(load(repo.path()));
    assert!(ends_with(&d.file, "values-ci.yaml"), "{d}");
    assert_eq!(d.line, Some(2), "{d}");
}

#[test]
fn a_kustomization_typo_points_at_the_field() {
    let repo = kustomize_repo();
    std::fs::write(
        repo.path().join("overlays/ci/kustomization.yaml"),
        "resources:\n  - ../../base\nnamePrefx: ci-\n",
    )
    .unwrap();
    let d = only_problem(load(repo.path()));
    assert!(ends_with(&d.file, "overlays/ci/kustomization.yaml"), "{d}");
    assert_eq!(d.line, Some(3), "{d}");
    assert!(d.message.contains("unknown field"), "{d}");
}

#[test]
fn a_missing_resource_points_at_the_line_naming_it() {
    let repo = kustomize_repo();
    std::fs::write(
        repo.path().join("overlays/ci/kustomization.yaml"),
        "resources:\n  - ../../base\n  - missing.yaml\n",
    )
    .unwrap();
    let d = only_problem(load(repo.path()));
    assert!(ends_with(&d.file, "overlays/ci/kustomization.yaml"), "{d}");
    assert_eq!(d.line, Some(3), "{d}");
}

/// `breakfix validate` on an experiment killing `deployment`'s pods over
/// `repo`'s baseline.
fn validate(repo: &Path, deployment: &str) -> std::process::Output {
    std::fs::write(
        repo.join("breakfix/pod-kill.yaml"),
        format!("apiVersion: breakfix.dev/v1alpha1\nkind: Experiment\nmetadata: {{name: pod-kill}}\nspec:\n  baseline: baseline.yaml\n  fault:\n    podKill: {{target: {{namespace: shop, deployment: {deployment}}}}}\n  slo: {{detectWithin: 30s, recoverWithin: 60s}}\n"),
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_breakfix"))
        .arg("validate")
        .arg(repo.join("breakfix/pod-kill.yaml"))
        .env("BREAKFIX_STATE_DIR", state.path())
        .output()
        .expect("breakfix runs")
}

#[test]
fn validate_renders_the_chart_and_accepts_it() {
    let repo = helm_repo();
    let out = validate(repo.path(), "store-web");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

#[test]
fn validate_refuses_a_chart_that_needs_a_network_repository() {
    let repo = helm_repo();
    std::fs::write(
        repo.path().join("charts/shop/Chart.yaml"),
        "apiVersion: v2\nname: shop\nversion: 0.1.0\ndependencies:\n  - name: redis\n    version: 20.0.0\n    repository: oci://registry-1.docker.io/bitnamicharts\n",
    )
    .unwrap();
    let out = validate(repo.path(), "store-web");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("charts/shop/Chart.yaml:7:1"), "{stderr}");
    assert!(stderr.contains("helm dependency build"), "{stderr}");
}

#[test]
fn validate_refuses_a_remote_kustomize_base() {
    let repo = kustomize_repo();
    std::fs::write(
        repo.path().join("overlays/ci/kustomization.yaml"),
        "resources:\n  - https://github.com/example/shop//base?ref=v1\n",
    )
    .unwrap();
    let out = validate(repo.path(), "web");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("overlays/ci/kustomization.yaml:2:1"),
        "{stderr}"
    );
    assert!(stderr.contains("without a network"), "{stderr}");
}
