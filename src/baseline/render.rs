//! Rendering baselines the way users keep them — a Kustomize overlay or a
//! Helm chart with values files — into manifests, with the real tools.
//!
//! `kustomize` and `helm` are the pinned builds `scripts/build-components.sh`
//! puts in breakfix's cache (`$BREAKFIX_KUSTOMIZE` / `$BREAKFIX_HELM`
//! override them; `PATH` is the last resort). Rendering never reaches a
//! network: a chart whose dependencies are not vendored, a chart named by
//! repository or URL, and an overlay with a remote resource are refused
//! before a tool runs, and helm runs with configuration and cache folders of
//! its own, so the user's repositories and credentials are never read.
//!
//! A tool's error names the user's file (a template, a values file, a
//! kustomization) where its message says which; [`RenderError::diagnostic`]
//! turns it into a [`Diagnostic`] at that file and line.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::vocab::{Diagnostic, Name};

/// The Kubernetes version charts see as `.Capabilities.KubeVersion`: the
/// one breakfix's node image runs (versions.env).
pub const KUBE_VERSION: &str = env!("BREAKFIX_K8S_VERSION");

/// `helm:` in a Baseline: a chart on disk, rendered with `helm template`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HelmSource {
    /// The chart's folder (holding Chart.yaml) or packaged `.tgz`, relative
    /// to the Baseline file. Dependencies must be vendored in its `charts/`.
    pub chart: PathBuf,
    /// Values files, relative to the Baseline file, later ones overriding
    /// earlier ones (`helm -f a.yaml -f b.yaml`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<PathBuf>,
    /// `.Release.Name` (default: the baseline's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_name: Option<Name>,
}

/// The tool a render runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// `helm template`.
    Helm,
    /// `kustomize build`.
    Kustomize,
}

impl Tool {
    /// The command's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Helm => "helm",
            Self::Kustomize => "kustomize",
        }
    }

    fn env_var(self) -> &'static str {
        match self {
            Self::Helm => "BREAKFIX_HELM",
            Self::Kustomize => "BREAKFIX_KUSTOMIZE",
        }
    }

    /// Where the binary is: `$BREAKFIX_HELM`/`$BREAKFIX_KUSTOMIZE`, the
    /// pinned build in breakfix's cache, or the first one on `PATH`.
    pub fn binary(self) -> PathBuf {
        if let Some(p) = std::env::var_os(self.env_var()) {
            return PathBuf::from(p);
        }
        let cached = cache_dir().join("bin").join(self.name());
        if cached.is_file() {
            return cached;
        }
        std::env::var_os("PATH")
            .and_then(|path| {
                std::env::split_paths(&path)
                    .map(|d| d.join(self.name()))
                    .find(|p| p.is_file())
            })
            .unwrap_or(cached)
    }
}

impl std::fmt::Display for Tool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// breakfix's build cache (`$BREAKFIX_CACHE`, default `~/.cache/breakfix`).
fn cache_dir() -> PathBuf {
    std::env::var_os("BREAKFIX_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("."))
                .join(".cache/breakfix")
        })
}

/// Why a baseline could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The tool's binary is not in breakfix's cache or on the PATH.
    #[error("{tool} is not installed ({binary}: {detail})")]
    ToolMissing {
        /// The tool that is missing.
        tool: Tool,
        /// Where breakfix looked for it.
        binary: PathBuf,
        /// Why it could not be run.
        detail: String,
    },
    /// The overlay or chart folder does not exist.
    #[error("{path} does not exist")]
    NotFound {
        /// The folder named in the Baseline file.
        path: PathBuf,
    },
    /// The folder holds no kustomization.yaml.
    #[error("{path} is not a Kustomize overlay (no kustomization.yaml in it)")]
    NotAKustomization {
        /// The folder named in the Baseline file.
        path: PathBuf,
    },
    /// A chart from a repository rather than a folder: breakfix renders offline only.
    #[error("chart `{chart}` is not on disk; breakfix renders charts kept in your repository")]
    RemoteChart {
        /// The chart reference as written.
        chart: String,
    },
    /// The chart depends on a chart it would have to download.
    #[error(
        "chart {chart} needs `{dependency}` from {repository}, which is not vendored in its charts/ folder; breakfix renders without a network"
    )]
    NetworkDependency {
        /// The chart that declares the dependency.
        chart: PathBuf,
        /// The dependency's name.
        dependency: String,
        /// The repository it would come from.
        repository: String,
        /// Where the dependency is declared (Chart.yaml, 1-based line).
        line: Option<usize>,
    },
    /// A kustomization names a remote resource (a URL or git reference), which needs the network.
    #[error("{file} refers to remote resource `{resource}`; breakfix renders without a network")]
    RemoteResource {
        /// The kustomization.yaml that names it.
        file: PathBuf,
        /// The remote resource as written.
        resource: String,
        /// Its line in the file, when found.
        line: Option<usize>,
    },
    /// The tool ran and failed; its message, located where it says.
    #[error("{tool} failed: {message}")]
    Failed {
        /// The tool that failed.
        tool: Tool,
        /// The user's file the tool blamed (or the chart/overlay itself).
        file: PathBuf,
        /// The line it blamed, when its message names one.
        line: Option<usize>,
        /// The column it blamed, when its message names one.
        column: Option<usize>,
        /// What the tool said.
        message: String,
    },
    /// A file of the overlay or chart could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
}

impl RenderError {
    /// How to fix it.
    pub fn help(&self) -> Option<String> {
        match self {
            Self::ToolMissing { tool, .. } => Some(format!(
                "build it with `./just images-tier` (scripts/build-components.sh {tool}; it lands in ~/.cache/breakfix/bin), or set {}",
                tool.env_var()
            )),
            Self::NotFound { .. } => Some("paths in a Baseline are relative to the Baseline file".into()),
            Self::NotAKustomization { .. } => Some("name the folder that holds the overlay's kustomization.yaml".into()),
            Self::RemoteChart { .. } => Some(
                "pull the chart into your repository (`helm pull REPO/CHART --untar`) and name its folder".into(),
            ),
            Self::NetworkDependency { .. } => Some(
                "vendor it: run `helm dependency build` in the chart folder and commit charts/".into(),
            ),
            Self::RemoteResource { .. } => Some(
                "vendor the remote base into your repository and refer to it by a relative path".into(),
            ),
            Self::Failed { .. } | Self::Io { .. } => None,
        }
    }

    /// This error as a diagnostic: at the user's file the tool blamed, or
    /// else at `fallback` (the Baseline file).
    pub fn diagnostic(&self, fallback: &Path) -> Diagnostic {
        let (file, line, column) = match self {
            Self::Failed {
                file, line, column, ..
            } => (file.clone(), *line, *column),
            Self::NetworkDependency { chart, line, .. } => {
                (chart.join("Chart.yaml"), *line, line.map(|_| 1))
            }
            Self::RemoteResource { file, line, .. } => (file.clone(), *line, line.map(|_| 1)),
            _ => (fallback.to_path_buf(), None, None),
        };
        let file = normalize(&file);
        let message = self.to_string();
        let d = match (line, std::fs::read_to_string(&file)) {
            (Some(l), Ok(src)) => Diagnostic::at(&file, &src, l, column.unwrap_or(1), message),
            _ => Diagnostic::file(&file, message),
        };
        match self.help() {
            Some(h) => d.with_help(h),
            None => d,
        }
    }
}

/// `a/b/../c` → `a/c`, without touching the file system: paths in a
/// Baseline are relative to it, and diagnostics read better without `..`.
pub fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// `kustomize build DIR`: the overlay's objects as multi-document YAML.
pub fn kustomize(dir: &Path) -> Result<String, RenderError> {
    if !dir.exists() {
        return Err(RenderError::NotFound {
            path: dir.to_path_buf(),
        });
    }
    let mut seen = BTreeSet::new();
    check_kustomization(dir, &mut seen)?;
    let out = run(Tool::Kustomize, &[], |c| {
        c.arg("build").arg(dir);
    })?;
    out.map_err(|stderr| kustomize_error(dir, &stderr))
}

/// `helm template` of `source`'s chart (paths relative to `base_dir`, the
/// Baseline file's folder) for release `release` in `namespace`, CRDs
/// included, test hooks left out.
pub fn helm(
    base_dir: &Path,
    source: &HelmSource,
    release: &str,
    namespace: &str,
) -> Result<String, RenderError> {
    let chart = &base_dir.join(&source.chart);
    let values: Vec<PathBuf> = source.values.iter().map(|v| base_dir.join(v)).collect();
    let values = values.as_slice();
    if !chart.exists() {
        let text = source.chart.to_string_lossy();
        let first_part_missing = source
            .chart
            .components()
            .next()
            .is_some_and(|c| !base_dir.join(c).exists());
        if text.contains("://") || (looks_like_repo_ref(&text) && first_part_missing) {
            return Err(RenderError::RemoteChart {
                chart: text.into_owned(),
            });
        }
        return Err(RenderError::NotFound {
            path: chart.to_path_buf(),
        });
    }
    if chart.is_dir() {
        check_chart_dependencies(chart)?;
    }
    for v in values {
        if !v.is_file() {
            return Err(RenderError::NotFound { path: v.clone() });
        }
    }
    // helm's own state (repositories, registry logins, caches) in a folder of
    // this render's own: nothing of the user's is read, nothing is fetched.
    let home = tempfile::tempdir().map_err(|source| RenderError::Io {
        path: std::env::temp_dir(),
        source,
    })?;
    let h = home.path();
    let env = [
        ("HELM_CACHE_HOME", h.join("cache")),
        ("HELM_CONFIG_HOME", h.join("config")),
        ("HELM_DATA_HOME", h.join("data")),
        ("HELM_REPOSITORY_CONFIG", h.join("repositories.yaml")),
        ("HELM_REGISTRY_CONFIG", h.join("registry.json")),
        ("KUBECONFIG", h.join("kubeconfig")),
    ];
    let out = run(Tool::Helm, &env, |c| {
        c.args(["template", release])
            .arg(chart)
            .args(["--namespace", namespace])
            .args(["--kube-version", KUBE_VERSION])
            .args(["--include-crds", "--skip-tests"]);
        for v in values {
            c.arg("--values").arg(v);
        }
    })?;
    out.map_err(|stderr| helm_error(chart, values, &stderr))
}

/// Runs `tool`; `Ok(Err(stderr))` when it ran and failed.
fn run(
    tool: Tool,
    env: &[(&str, PathBuf)],
    args: impl FnOnce(&mut Command),
) -> Result<Result<String, String>, RenderError> {
    let binary = tool.binary();
    let mut cmd = Command::new(&binary);
    args(&mut cmd);
    cmd.envs(env.iter().map(|(k, v)| (k, v)))
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(std::process::Stdio::null());
    tracing::debug!(?cmd, "rendering");
    let out = cmd.output().map_err(|e| RenderError::ToolMissing {
        tool,
        binary: binary.clone(),
        detail: e.to_string(),
    })?;
    if out.status.success() {
        Ok(Ok(String::from_utf8_lossy(&out.stdout).into_owned()))
    } else {
        Ok(Err(String::from_utf8_lossy(&out.stderr).trim().to_string()))
    }
}

/// `repo/chart` as `helm install` takes it (a name, not a path that exists).
fn looks_like_repo_ref(text: &str) -> bool {
    let parts: Vec<&str> = text.split('/').collect();
    parts.len() == 2
        && parts
            .iter()
            .all(|p| !p.is_empty() && !p.starts_with('.') && !p.contains('.'))
}

/// The kustomization file in `dir`, as kustomize looks for it.
fn kustomization_file(dir: &Path) -> Option<PathBuf> {
    ["kustomization.yaml", "kustomization.yml", "Kustomization"]
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
}

/// Walks the overlay and the local bases it refers to, refusing remote
/// resources (a URL or a git reference) before kustomize would fetch them.
fn check_kustomization(dir: &Path, seen: &mut BTreeSet<PathBuf>) -> Result<(), RenderError> {
    let Some(file) = kustomization_file(dir) else {
        return Err(RenderError::NotAKustomization {
            path: dir.to_path_buf(),
        });
    };
    let canonical = file.canonicalize().unwrap_or_else(|_| file.clone());
    if !seen.insert(canonical) {
        return Ok(());
    }
    let src = std::fs::read_to_string(&file).map_err(|source| RenderError::Io {
        path: file.clone(),
        source,
    })?;
    // A kustomization kustomize cannot parse is reported by kustomize itself.
    let Ok(doc) = serde_yaml::from_str::<serde_yaml::Value>(&src) else {
        return Ok(());
    };
    for key in ["resources", "bases", "components"] {
        let Some(items) = doc.get(key).and_then(|v| v.as_sequence()) else {
            continue;
        };
        for item in items.iter().filter_map(|v| v.as_str()) {
            if is_remote_resource(item) {
                return Err(RenderError::RemoteResource {
                    file: file.clone(),
                    resource: item.to_string(),
                    line: line_of(&src, item),
                });
            }
            let local = dir.join(item);
            if local.is_dir() {
                check_kustomization(&local, seen)?;
            }
        }
    }
    Ok(())
}

fn is_remote_resource(item: &str) -> bool {
    item.contains("://")
        || item.starts_with("git@")
        || item.starts_with("github.com/")
        || item.starts_with("gitlab.com/")
        || item.starts_with("bitbucket.org/")
        || item.contains("?ref=")
}

/// 1-based line of the first line containing `needle`.
fn line_of(src: &str, needle: &str) -> Option<usize> {
    src.lines().position(|l| l.contains(needle)).map(|i| i + 1)
}

/// Refuses a chart whose dependencies would have to be downloaded: each
/// one from a repository (not `file://`) must be vendored in `charts/`.
fn check_chart_dependencies(chart: &Path) -> Result<(), RenderError> {
    let file = chart.join("Chart.yaml");
    let src = match std::fs::read_to_string(&file) {
        Ok(s) => s,
        // helm says what is wrong with a folder that is not a chart.
        Err(_) => return Ok(()),
    };
    let Ok(doc) = serde_yaml::from_str::<serde_yaml::Value>(&src) else {
        return Ok(());
    };
    let Some(deps) = doc.get("dependencies").and_then(|v| v.as_sequence()) else {
        return Ok(());
    };
    for dep in deps {
        let name = dep.get("name").and_then(|v| v.as_str()).unwrap_or("");
        let repository = dep.get("repository").and_then(|v| v.as_str()).unwrap_or("");
        if name.is_empty() || repository.is_empty() || repository.starts_with("file://") {
            continue;
        }
        if !is_vendored(&chart.join("charts"), name) {
            return Err(RenderError::NetworkDependency {
                chart: chart.to_path_buf(),
                dependency: name.to_string(),
                repository: repository.to_string(),
                line: line_of(&src, repository),
            });
        }
    }
    Ok(())
}

/// `charts/NAME/` or `charts/NAME-VERSION.tgz` exists.
fn is_vendored(charts: &Path, name: &str) -> bool {
    if charts.join(name).join("Chart.yaml").is_file() {
        return true;
    }
    let Ok(entries) = std::fs::read_dir(charts) else {
        return false;
    };
    entries.filter_map(Result::ok).any(|e| {
        let file = e.file_name();
        let file = file.to_string_lossy();
        file.strip_suffix(".tgz")
            .and_then(|stem| stem.strip_prefix(name))
            .is_some_and(|rest| rest.starts_with('-'))
    })
}

/// The tool's error as one line: `Error: ` prefixes and helm's "Use
/// --debug" hint dropped, continuation lines joined.
fn tool_message(stderr: &str) -> String {
    stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("Use --debug"))
        .map(|l| l.strip_prefix("Error: ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Maps `helm template`'s error to the file it names: a template
/// (`CHART/templates/x.yaml:12:20 executing …`, `YAML parse error on
/// CHART/templates/x.yaml: …`) or a values file.
fn helm_error(chart: &Path, values: &[PathBuf], stderr: &str) -> RenderError {
    let message = tool_message(stderr);
    let failed = |file: PathBuf, line, column| RenderError::Failed {
        tool: Tool::Helm,
        file,
        line,
        column,
        message: message.clone(),
    };
    // Values files: helm quotes the path it was given.
    for v in values {
        let shown = v.to_string_lossy();
        if message.contains(shown.as_ref()) {
            return failed(v.clone(), yaml_line(&message), None);
        }
    }
    if let Some((rel, line, column)) = template_position(&message) {
        return failed(chart_file(chart, &rel), Some(line), Some(column));
    }
    if let Some(rest) = message.split("YAML parse error on ").nth(1)
        && let Some((rel, _)) = rest.split_once(": ")
    {
        // The line helm gives is one of the rendered output, not the template.
        return failed(chart_file(chart, rel), None, None);
    }
    if message.contains("Chart.yaml") {
        return failed(chart.join("Chart.yaml"), yaml_line(&message), None);
    }
    failed(chart.to_path_buf(), None, None)
}

/// The first `FILE:LINE:COL` in a message (`shop/templates/x.yaml:12:20`)
/// → (`shop/templates/x.yaml`, 12, 20).
fn template_position(message: &str) -> Option<(String, usize, usize)> {
    message.split_whitespace().find_map(|word| {
        let word = word.trim_end_matches(':');
        let mut parts = word.rsplitn(3, ':');
        let column = parts.next()?.parse().ok()?;
        let line = parts.next()?.parse().ok()?;
        let file = parts.next()?;
        let file = file.strip_prefix("template:").unwrap_or(file);
        (file.contains('/') && !file.is_empty()).then(|| (file.to_string(), line, column))
    })
}

/// `yaml: line 3: …` in a message → 3.
fn yaml_line(message: &str) -> Option<usize> {
    let rest = message.split("line ").nth(1)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// helm names files `CHARTNAME/templates/x.yaml` (subcharts
/// `CHARTNAME/charts/sub/templates/x.yaml`); the chart's folder replaces
/// the first part.
fn chart_file(chart: &Path, rel: &str) -> PathBuf {
    match rel.split_once('/') {
        Some((_, inside)) => chart.join(inside),
        None => chart.to_path_buf(),
    }
}

/// Maps kustomize's error to the file it concerns: a file it names that
/// exists (relative to the overlay, as kustomize names them), else the
/// overlay's kustomization at the line naming that file or field.
fn kustomize_error(dir: &Path, stderr: &str) -> RenderError {
    let message = tool_message(stderr);
    let kustomization = kustomization_file(dir).unwrap_or_else(|| dir.to_path_buf());
    let names: Vec<&str> = message
        .split(['\'', '"', ' '])
        .map(|w| w.trim_end_matches([':', ',', ';']))
        .filter(|w| w.ends_with(".yaml") || w.ends_with(".yml"))
        .collect();
    let existing = names.iter().find_map(|w| {
        let p = Path::new(w);
        [p.to_path_buf(), dir.join(p)]
            .into_iter()
            .find(|c| c.is_file() && !c.ends_with("kustomization.yaml"))
    });
    let (file, line) = match existing {
        Some(file) => {
            let line = yaml_line(&message);
            (file, line)
        }
        None => {
            let src = std::fs::read_to_string(&kustomization).unwrap_or_default();
            let mentioned = names
                .iter()
                .filter_map(|w| Path::new(w).file_name()?.to_str())
                .find_map(|name| line_of(&src, name));
            let field = message
                .split("unknown field \"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .and_then(|field| {
                    src.lines()
                        .position(|l| l.trim_start().starts_with(&format!("{field}:")))
                        .map(|i| i + 1)
                });
            let line = mentioned.or(field).or_else(|| {
                message
                    .contains("invalid Kustomization")
                    .then(|| yaml_line(&message))
                    .flatten()
            });
            (kustomization, line)
        }
    };
    RenderError::Failed {
        tool: Tool::Kustomize,
        file,
        line,
        column: None,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case(
        "template: shop/templates/deployment.yaml:12:20: executing \"x\" at <.Values.a.b>: nil pointer",
        Some(("shop/templates/deployment.yaml", 12, 20))
    )]
    #[case(
        "shop/templates/deployment.yaml:15:43 executing \"shop/templates/deployment.yaml\" at <.Values.probe.port>: nil pointer evaluating interface {}.port",
        Some(("shop/templates/deployment.yaml", 15, 43))
    )]
    #[case("YAML parse error on shop/templates/x.yaml: yaml: line 3", None)]
    fn finds_template_positions(
        #[case] message: &str,
        #[case] expected: Option<(&str, usize, usize)>,
    ) {
        assert_eq!(
            template_position(message),
            expected.map(|(f, l, c)| (f.to_string(), l, c))
        );
    }

    #[rstest]
    #[case("bitnami/nginx", true)]
    #[case("shop", false)]
    #[case("./charts/shop", false)]
    #[case("charts/shop.tgz", false)]
    #[case("a/b/c", false)]
    fn tells_repository_references(#[case] text: &str, #[case] expected: bool) {
        assert_eq!(looks_like_repo_ref(text), expected);
    }

    #[rstest]
    #[case("https://github.com/org/repo//base?ref=v1", true)]
    #[case("github.com/org/repo/base", true)]
    #[case("git@github.com:org/repo.git", true)]
    #[case("../base", false)]
    #[case("deployment.yaml", false)]
    fn tells_remote_resources(#[case] item: &str, #[case] remote: bool) {
        assert_eq!(is_remote_resource(item), remote);
    }

    #[test]
    fn a_chart_with_an_unvendored_dependency_is_refused_at_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let chart = dir.path().join("shop");
        std::fs::create_dir_all(chart.join("charts")).unwrap();
        std::fs::write(
            chart.join("Chart.yaml"),
            "apiVersion: v2\nname: shop\nversion: 0.1.0\ndependencies:\n  - name: redis\n    version: 1.2.3\n    repository: https://charts.example.com\n  - name: local\n    version: 0.1.0\n    repository: file://../local\n",
        )
        .unwrap();
        let err = check_chart_dependencies(&chart).unwrap_err();
        assert!(
            matches!(&err, RenderError::NetworkDependency { dependency, line: Some(7), .. } if dependency == "redis"),
            "{err:?}"
        );
        let d = err.diagnostic(Path::new("baseline.yaml"));
        assert_eq!(
            d.location(),
            format!("{}:7:1", chart.join("Chart.yaml").display())
        );
        assert!(d.help.unwrap().contains("helm dependency build"));

        std::fs::write(chart.join("charts/redis-1.2.3.tgz"), b"x").unwrap();
        check_chart_dependencies(&chart).unwrap();
    }

    #[test]
    fn a_remote_base_is_refused_before_kustomize_runs() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("base");
        let overlay = dir.path().join("overlays/ci");
        std::fs::create_dir_all(&base).unwrap();
        std::fs::create_dir_all(&overlay).unwrap();
        std::fs::write(
            base.join("kustomization.yaml"),
            "resources:\n  - deployment.yaml\n  - https://github.com/org/repo//base?ref=v1\n",
        )
        .unwrap();
        std::fs::write(
            overlay.join("kustomization.yaml"),
            "resources:\n  - ../../base\n",
        )
        .unwrap();
        let err = kustomize(&overlay).unwrap_err();
        assert!(
            matches!(&err, RenderError::RemoteResource { line: Some(3), .. }),
            "{err:?}"
        );
    }

    #[test]
    fn a_folder_without_kustomization_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = kustomize(dir.path()).unwrap_err();
        assert!(
            matches!(err, RenderError::NotAKustomization { .. }),
            "{err:?}"
        );
    }

    #[rstest]
    #[case("bitnami/nginx", true)]
    #[case("oci://registry.example.com/shop", true)]
    #[case("charts/shop", false)]
    fn charts_not_on_disk_are_refused(#[case] chart: &str, #[case] remote: bool) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("charts")).unwrap();
        let source = HelmSource {
            chart: chart.into(),
            values: vec![],
            release_name: None,
        };
        let err = helm(dir.path(), &source, "r", "ns").unwrap_err();
        if remote {
            assert!(matches!(err, RenderError::RemoteChart { .. }), "{err:?}");
        } else {
            assert!(matches!(err, RenderError::NotFound { .. }), "{err:?}");
        }
    }
}
