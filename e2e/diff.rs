//! `breakfix diff` on the kind cluster, against a small git repository the
//! test makes. Base: web with a readiness probe, a PodDisruptionBudget and
//! `maxUnavailable: 0`, an http canary calling it. Head A drops the probe
//! and sets `maxUnavailable: 100%`: every web pod goes at once during the
//! migration, the canary sees it, and diff reports a regression (exit 1).
//! Head B only adds a label: nothing regresses (exit 0). Both for a
//! Kustomize overlay and a Helm chart.

use std::path::Path;
use std::process::{Command, Output};

use crate::support;

const CANARY: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: http-canary
spec:
  replicas: 1
  selector: {matchLabels: {app: http-canary}}
  template:
    metadata:
      labels: {app: http-canary, breakfix.dev/canary: http}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
        - name: canary
          image: breakfix/workload:0.1.0
          imagePullPolicy: IfNotPresent
          args: [http-canary, --url, http://web/, --interval, 250ms, --timeout, 1s, --window, 4s, --ready-threshold, \"0.9\"]
          ports: [{name: http, containerPort: 8080}]
          readinessProbe: {httpGet: {path: /readyz, port: http}, periodSeconds: 1, failureThreshold: 1}
";

const SERVICE_AND_PDB: &str = "apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web}
spec:
  minAvailable: 1
  selector: {matchLabels: {app: web}}
";

/// web's Deployment; `PROBE` and `STRATEGY` and `LABELS` are filled in.
const WEB: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web LABELS}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  strategy:
    rollingUpdate: STRATEGY
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: web
          image: breakfix/workload:0.1.0
          imagePullPolicy: IfNotPresent
          args: [serve]
          ports: [{name: http, containerPort: 8080}]
PROBE";

const PROBE: &str = "          readinessProbe: {httpGet: {path: /readyz, port: http}, periodSeconds: 1, failureThreshold: 1}\n";

/// The three versions of the change, as a branch each.
#[derive(Clone, Copy)]
enum Version {
    Base,
    /// No readiness probe, every pod replaced at once.
    HeadA,
    /// Only a label on the Deployment.
    HeadB,
}

impl Version {
    fn branch(self) -> &'static str {
        match self {
            Self::Base => "main",
            Self::HeadA => "head-a",
            Self::HeadB => "head-b",
        }
    }

    fn web(self, helm: bool) -> String {
        let (probe, strategy, labels) = match self {
            Self::Base => (PROBE, "{maxSurge: 1, maxUnavailable: 0}", ""),
            Self::HeadA => ("", "{maxSurge: 0, maxUnavailable: 100%}", ""),
            Self::HeadB => (PROBE, "{maxSurge: 1, maxUnavailable: 0}", ", team: shop"),
        };
        if helm {
            // The chart keeps the settings in values; the template reads them.
            return WEB
                .replace("STRATEGY", "{{ toJson .Values.strategy }}")
                .replace("LABELS", "{{ .Values.extraLabels }}")
                .replace("PROBE", "{{- if .Values.probe }}\n          readinessProbe: {httpGet: {path: /readyz, port: http}, periodSeconds: 1, failureThreshold: 1}\n{{- end }}\n");
        }
        WEB.replace("STRATEGY", strategy)
            .replace("LABELS", labels)
            .replace("PROBE", probe)
    }

    fn values(self) -> &'static str {
        match self {
            Self::Base => {
                "probe: true\nstrategy: {maxSurge: 1, maxUnavailable: 0}\nextraLabels: \"\"\n"
            }
            Self::HeadA => {
                "probe: false\nstrategy: {maxSurge: 0, maxUnavailable: 100%}\nextraLabels: \"\"\n"
            }
            Self::HeadB => {
                "probe: true\nstrategy: {maxSurge: 1, maxUnavailable: 0}\nextraLabels: \", team: shop\"\n"
            }
        }
    }
}

fn write(root: &Path, path: &str, text: &str) {
    let full = root.join(path);
    std::fs::create_dir_all(full.parent().unwrap()).unwrap();
    std::fs::write(full, text).unwrap();
}

fn git(root: &Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes `version` of the configuration (Kustomize overlay or Helm chart).
fn write_config(root: &Path, version: Version, helm: bool) {
    if helm {
        write(
            root,
            "charts/shop/Chart.yaml",
            "apiVersion: v2\nname: shop\nversion: 0.1.0\n",
        );
        write(root, "charts/shop/templates/web.yaml", &version.web(true));
        write(root, "charts/shop/templates/canary.yaml", CANARY);
        write(root, "charts/shop/templates/service.yaml", SERVICE_AND_PDB);
        write(
            root,
            "charts/shop/values.yaml",
            "probe: true\nstrategy: {}\nextraLabels: \"\"\n",
        );
        write(root, "values-ci.yaml", version.values());
    } else {
        write(root, "base/web.yaml", &version.web(false));
        write(root, "base/canary.yaml", CANARY);
        write(root, "base/service.yaml", SERVICE_AND_PDB);
        write(
            root,
            "base/kustomization.yaml",
            "resources: [web.yaml, canary.yaml, service.yaml]\n",
        );
        write(
            root,
            "overlays/ci/kustomization.yaml",
            "resources: [../../base]\n",
        );
    }
}

/// A repository with the base on `main` and each head on a branch of its
/// own; `namespace` keeps the two variants apart on the shared cluster.
fn repository(helm: bool, namespace: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    git(root, &["init", "--quiet", "--initial-branch=main"]);
    git(root, &["config", "user.email", "e2e@example.com"]);
    git(root, &["config", "user.name", "e2e"]);
    let source = if helm {
        "helm: {chart: ../../charts/shop, values: [../../values-ci.yaml], releaseName: shop}"
    } else {
        "kustomize: ../../overlays/ci"
    };
    write(
        root,
        "breakfix/baselines/shop.yaml",
        &format!(
            "apiVersion: breakfix.dev/v1alpha1\nkind: Baseline\nmetadata: {{name: shop}}\nspec:\n  namespace: {namespace}\n  {source}\n  steadyState:\n    timeout: 120s\n    checks:\n      - serviceEndpoints: {{service: web, min: 2}}\n"
        ),
    );
    write(
        root,
        "breakfix/pod-kill.yaml",
        &format!(
            "apiVersion: breakfix.dev/v1alpha1\nkind: Experiment\nmetadata: {{name: pod-kill}}\nspec:\n  baseline: baselines/shop.yaml\n  fault:\n    podKill: {{target: {{namespace: {namespace}, deployment: web}}, count: 1}}\n  recovery: selfHeal\n  expect: {{signals: [PodGone]}}\n  settle: 5s\n  slo: {{detectWithin: 10s, recoverWithin: 60s}}\n"
        ),
    );
    write_config(root, Version::Base, helm);
    git(root, &["add", "."]);
    git(root, &["commit", "--quiet", "-m", "base"]);
    for head in [Version::HeadA, Version::HeadB] {
        git(root, &["checkout", "--quiet", "-b", head.branch(), "main"]);
        write_config(root, head, helm);
        git(root, &["commit", "--quiet", "-am", head.branch()]);
    }
    git(root, &["checkout", "--quiet", "main"]);
    dir
}

/// `breakfix diff --base main --head HEAD breakfix/` in `repo`, on the e2e cluster.
fn diff(repo: &Path, head: Version, out: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_breakfix"))
        .current_dir(repo)
        .env("BREAKFIX_JOURNAL_DIR", out.join("journal"))
        .args([
            "diff",
            "breakfix/",
            "--base",
            "main",
            "--head",
            head.branch(),
        ])
        .args([
            "--cluster-name",
            &support::cluster_name(),
            "--reuse",
            "--keep",
        ])
        .arg("--json")
        .arg(out.join("diff.json"))
        .arg("--markdown")
        .arg(out.join("diff.md"))
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn json(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("diff.json")).unwrap()).unwrap()
}

/// Head A regresses (the migration's availability drops), head B does not;
/// the user's checkout is left as it was.
async fn head_a_regresses_and_head_b_does_not(helm: bool, namespace: &str) {
    let repo = repository(helm, namespace);
    let status = |repo: &Path| {
        String::from_utf8(
            Command::new("git")
                .arg("-C")
                .arg(repo)
                .args(["status", "--porcelain", "--branch"])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap()
    };
    let before = status(repo.path());

    let out_a = tempfile::tempdir().unwrap();
    let a = diff(repo.path(), Version::HeadA, out_a.path());
    let log_a = text(&a);
    assert_eq!(a.status.code(), Some(1), "{log_a}");
    let report = json(out_a.path());
    let migration = &report["migration"]["baselines"][0];
    let worst = migration["worstAvailability"].as_f64().unwrap_or(1.0);
    assert!(
        worst < 0.99,
        "availability during the migration {worst}: {log_a}"
    );
    let markdown = std::fs::read_to_string(out_a.path().join("diff.md")).unwrap();
    let first_lines: String = markdown.lines().take(8).collect::<Vec<_>>().join("\n");
    assert!(first_lines.contains("regression"), "{markdown}");
    assert!(first_lines.contains("canary availability"), "{markdown}");
    assert!(markdown.contains("<details>"), "{markdown}");

    let out_b = tempfile::tempdir().unwrap();
    let b = diff(repo.path(), Version::HeadB, out_b.path());
    let log_b = text(&b);
    assert_eq!(b.status.code(), Some(0), "{log_b}");
    let report = json(out_b.path());
    assert_eq!(
        report["migration"]["regressions"].as_array().map(Vec::len),
        Some(0),
        "{log_b}"
    );
    assert!(
        report["migration"]["baselines"][0]["rolloutSeconds"].is_number(),
        "{log_b}"
    );

    assert_eq!(
        status(repo.path()),
        before,
        "the user's checkout was touched"
    );
    let worktrees = Command::new("git")
        .arg("-C")
        .arg(repo.path())
        .args(["worktree", "list"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&worktrees.stdout).lines().count(),
        1
    );
}

#[tokio::test]
async fn kustomize_baseline_head_a_regresses_head_b_does_not() {
    head_a_regresses_and_head_b_does_not(false, "diff-kustomize").await;
}

#[tokio::test]
async fn helm_baseline_head_a_regresses_head_b_does_not() {
    head_a_regresses_and_head_b_does_not(true, "diff-helm").await;
}
