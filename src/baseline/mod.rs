//! Baselines: the healthy state a fault is injected into. A Baseline file
//! names a namespace, the objects to apply there — plain manifests, a
//! Kustomize overlay or a Helm chart, as the user keeps them ([`render`]) —
//! and the checks that declare steady state.

mod apply;
pub mod instance;
pub mod render;
pub mod steady;

use std::path::{Path, PathBuf};

use kube::api::DynamicObject;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::vocab::{ApiVersion, Diagnostic, HumanDuration, Name, load};
pub use apply::{
    ApplyError, NAMESPACE_GONE_TIMEOUT, apply_baseline, apply_baseline_noting, delete_baseline,
    wait_namespace_gone, wait_until_not_terminating,
};
pub use instance::{NotRelocatable, Relocation, delete_instance, instance_id};
pub use render::{HelmSource, RenderError};
pub use steady::{SteadyError, SteadyState};

/// `kind: Baseline`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub enum BaselineKind {
    /// The only kind a Baseline file has.
    #[default]
    Baseline,
}

/// A Baseline file.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Baseline {
    /// `breakfix.dev/v1alpha1`.
    pub api_version: ApiVersion,
    /// `Baseline`.
    pub kind: BaselineKind,
    /// The baseline's name and description.
    pub metadata: BaselineMetadata,
    /// What the baseline applies and when it counts as steady.
    pub spec: BaselineSpec,
}

/// A baseline's name and what it is for.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BaselineMetadata {
    /// The name experiments refer to it by.
    pub name: Name,
    /// What the baseline runs, for people reading reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// What a baseline applies (manifests, an overlay or a chart) and how its steady state is judged.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BaselineSpec {
    /// Namespace breakfix creates; namespaced manifests without one land here.
    pub namespace: Name,
    /// Manifest files or folders (`*.yaml`), relative to the Baseline file.
    /// Default: `[manifests]`, unless `kustomize` or `helm` is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifests: Option<Vec<PathBuf>>,
    /// A Kustomize overlay (the folder holding its kustomization.yaml),
    /// relative to the Baseline file, rendered with `kustomize build`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kustomize: Option<PathBuf>,
    /// A Helm chart on disk with values files, rendered with `helm template`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helm: Option<HelmSource>,
    /// When the applied baseline counts as steady, so a fault can be injected.
    #[serde(default)]
    pub steady_state: SteadyStateSpec,
}

impl BaselineSpec {
    /// The manifest files or folders to read: those given, or `manifests`
    /// when the baseline names no overlay or chart either.
    pub fn manifest_entries(&self) -> Vec<PathBuf> {
        match &self.manifests {
            Some(m) => m.clone(),
            None if self.kustomize.is_none() && self.helm.is_none() => {
                vec![PathBuf::from("manifests")]
            }
            None => Vec::new(),
        }
    }

    /// Every file or folder the baseline reads, relative to its file: what a
    /// change must touch to change the baseline.
    pub fn sources(&self) -> Vec<PathBuf> {
        let mut out = self.manifest_entries();
        out.extend(self.kustomize.clone());
        if let Some(h) = &self.helm {
            out.push(h.chart.clone());
            out.extend(h.values.iter().cloned());
        }
        out
    }
}

/// What "healthy" means: every Deployment, StatefulSet and DaemonSet in the
/// manifests fully rolled out and available, plus these checks.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SteadyStateSpec {
    /// How long the baseline may take to become steady before the run gives up.
    #[serde(default = "default_steady_timeout")]
    pub timeout: HumanDuration,
    /// Extra checks beyond the workloads' own readiness.
    #[serde(
        default,
        serialize_with = "serde_yaml::with::singleton_map_recursive::serialize",
        deserialize_with = "serde_yaml::with::singleton_map_recursive::deserialize"
    )]
    pub checks: Vec<SteadyCheck>,
}

impl Default for SteadyStateSpec {
    fn default() -> Self {
        Self {
            timeout: default_steady_timeout(),
            checks: Vec::new(),
        }
    }
}

fn default_steady_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(300))
}

/// A declared steady-state check.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum SteadyCheck {
    /// At least `min` pods matching `selector` are Ready (in the baseline namespace,
    /// or `namespace`).
    PodsReady(PodsReady),
    /// A Deployment outside the manifests (CoreDNS, say) is fully rolled out
    /// and available: every replica updated, ready and available.
    Deployment(DeploymentReady),
    /// Every node of the cluster is Ready (written `- nodesReady`): for
    /// baselines a node-level fault runs against, so recovery includes the
    /// lost node coming back.
    NodesReady,
    /// At least `min` ready endpoints behind a Service (in the baseline
    /// namespace, or `namespace`): the clients' view, which a Deployment's
    /// status alone does not give (a selector or port mistake leaves every
    /// pod Ready).
    ServiceEndpoints(ServiceEndpoints),
}

/// A Service that must have ready endpoints.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServiceEndpoints {
    /// The Service's name.
    pub service: Name,
    /// How many ready endpoints it needs at least.
    #[serde(default = "one")]
    pub min: u32,
    /// Its namespace; the baseline's own when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<Name>,
}

/// A Deployment that must be fully rolled out and ready.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DeploymentReady {
    /// The Deployment's namespace.
    pub namespace: Name,
    /// The Deployment's name.
    pub name: Name,
}

/// Pods matched by a label selector that must be ready.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PodsReady {
    /// The label selector, as `kubectl get -l` reads it.
    pub selector: String,
    /// How many of the matched pods must be ready at least.
    #[serde(default = "one")]
    pub min: u32,
    /// Their namespace; the baseline's own when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<Name>,
}

fn one() -> u32 {
    1
}

impl Baseline {
    /// Resolves `path` to a baseline file: the file itself, or
    /// `baseline.yaml` inside a folder.
    pub fn resolve_path(path: &Path) -> Result<PathBuf, String> {
        if path.is_dir() {
            let file = path.join("baseline.yaml");
            if file.is_file() {
                Ok(file)
            } else {
                Err(format!("{} holds no baseline.yaml", path.display()))
            }
        } else if path.is_file() {
            Ok(path.to_path_buf())
        } else {
            Err(format!("baseline {} does not exist", path.display()))
        }
    }
}

/// A baseline with its manifests parsed.
#[derive(Debug, Clone)]
pub struct LoadedBaseline {
    /// The Baseline file it was loaded from.
    pub path: PathBuf,
    /// The file's spec, as written.
    pub spec: BaselineSpec,
    /// The file's name and description.
    pub metadata: BaselineMetadata,
    /// The manifests' objects, in apply order.
    pub objects: Vec<DynamicObject>,
    /// Set on an instance of the baseline ([`LoadedBaseline::instance`]):
    /// how it was moved into namespaces of its own.
    pub instance: Option<Relocation>,
}

impl LoadedBaseline {
    /// The baseline's name.
    pub fn name(&self) -> &str {
        self.metadata.name.as_str()
    }

    /// Loads the Baseline file at `path`: reads every manifest it names and
    /// renders its overlay or chart, so what `validate` sees is what a run
    /// applies.
    pub fn load(path: &Path) -> Result<Self, Vec<Diagnostic>> {
        let (baseline, src): (Baseline, String) = load::load_yaml(path).map_err(|d| vec![d])?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut problems = Vec::new();
        let mut objects = Vec::new();
        let mut add = |result: Result<Vec<DynamicObject>, Vec<Diagnostic>>| match result {
            Ok(mut objs) => objects.append(&mut objs),
            Err(mut ds) => problems.append(&mut ds),
        };
        for entry in baseline.spec.manifest_entries() {
            let full = dir.join(&entry);
            match manifest_files(&full) {
                Ok(files) => {
                    for file in files {
                        add(parse_manifests(&file));
                    }
                }
                Err(d) => add(Err(vec![d])),
            }
        }
        let at_key = |keys: &[&str], d: Diagnostic| {
            // Errors about the Baseline's own fields point at the field.
            if d.file == path {
                match crate::vocab::diagnostic::locate_key(&src, keys) {
                    Some((l, c)) => {
                        let mut located = Diagnostic::at(path, &src, l, c, d.message);
                        located.help = d.help;
                        located
                    }
                    None => d,
                }
            } else {
                d
            }
        };
        if let Some(overlay) = &baseline.spec.kustomize {
            let label = format!("kustomize build {}", overlay.display());
            add(render::kustomize(&dir.join(overlay))
                .map_err(|e| vec![at_key(&["spec", "kustomize"], e.diagnostic(path))])
                .and_then(|text| parse_rendered(path, &label, &text)));
        }
        if let Some(helm) = &baseline.spec.helm {
            let release = helm
                .release_name
                .as_ref()
                .unwrap_or(&baseline.metadata.name)
                .as_str();
            let label = format!("helm template {}", helm.chart.display());
            add(
                render::helm(dir, helm, release, baseline.spec.namespace.as_str())
                    .map_err(|e| vec![at_key(&["spec", "helm"], e.diagnostic(path))])
                    .and_then(|text| parse_rendered(path, &label, &text)),
            );
        }
        if objects.is_empty() && problems.is_empty() {
            problems.push(Diagnostic::file(
                path,
                "the baseline's manifests hold no objects",
            ));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        sort_for_apply(&mut objects);
        Ok(Self {
            path: path.to_path_buf(),
            spec: baseline.spec,
            metadata: baseline.metadata,
            objects,
            instance: None,
        })
    }
}

/// Orders objects the way `kubectl apply` users expect: namespaces and
/// CRDs first, what others refer to before what refers to it, custom
/// resources after their definitions, webhooks last. Stable: objects of
/// one rank keep the order they were written or rendered in.
pub fn sort_for_apply(objects: &mut [DynamicObject]) {
    objects.sort_by_key(|o| apply_rank(o.types.as_ref().map(|t| t.kind.as_str()).unwrap_or("")));
}

fn manifest_files(path: &Path) -> Result<Vec<PathBuf>, Diagnostic> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries = std::fs::read_dir(path)
        .map_err(|e| Diagnostic::file(path, format!("cannot read manifests: {e}")))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    Ok(files)
}

/// Parses a multi-document manifest file into objects.
pub fn parse_manifests(path: &Path) -> Result<Vec<DynamicObject>, Vec<Diagnostic>> {
    let src = load::read_text(path).map_err(|d| vec![d])?;
    parse_documents(&src, |line, column, message| match line {
        Some(l) => Diagnostic::at(path, &src, l, column.unwrap_or(1), message),
        None => Diagnostic::file(path, message),
    })
}

/// Parses a tool's rendered output. Problems point at the template helm
/// names in its `# Source:` comment when there is one, else at the Baseline
/// file, saying which render produced the document.
fn parse_rendered(
    baseline: &Path,
    label: &str,
    text: &str,
) -> Result<Vec<DynamicObject>, Vec<Diagnostic>> {
    parse_documents(text, |line, _, message| {
        let source = line.and_then(|l| helm_source_before(text, l));
        let what = match &source {
            Some(s) => format!("{label} ({s})"),
            None => label.to_string(),
        };
        Diagnostic::file(baseline, format!("{what}: {message}"))
    })
}

/// The `# Source: CHART/templates/x.yaml` comment of the document holding
/// 1-based `line` of helm's output.
fn helm_source_before(text: &str, line: usize) -> Option<String> {
    text.lines()
        .take(line)
        .collect::<Vec<_>>()
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("# Source: ").map(str::to_string))
}

/// Parses multi-document YAML into objects; `diag(line, column, message)`
/// places a problem (1-based, in `src`).
fn parse_documents(
    src: &str,
    diag: impl Fn(Option<usize>, Option<usize>, String) -> Diagnostic,
) -> Result<Vec<DynamicObject>, Vec<Diagnostic>> {
    let mut objects = Vec::new();
    let mut problems = Vec::new();
    for (idx, (first_line, doc)) in split_documents(src).into_iter().enumerate() {
        let value: serde_yaml::Value = match serde_yaml::from_str(doc) {
            Ok(v) => v,
            Err(e) => {
                let (line, column) = match e.location() {
                    Some(l) => (Some(first_line + l.line() - 1), Some(l.column())),
                    None => (Some(first_line), None),
                };
                problems.push(diag(line, column, strip_location(&e.to_string())));
                continue;
            }
        };
        if value.is_null() {
            continue;
        }
        let at = Some(first_line);
        match serde_yaml::from_value::<DynamicObject>(value) {
            Ok(obj) if obj.types.is_none() => problems.push(diag(
                at,
                None,
                format!("document {}: missing apiVersion or kind", idx + 1),
            )),
            Ok(obj) if obj.metadata.name.is_none() => problems.push(diag(
                at,
                None,
                format!("document {}: missing metadata.name", idx + 1),
            )),
            Ok(obj) => objects.push(obj),
            Err(e) => problems.push(diag(at, None, format!("document {}: {e}", idx + 1))),
        }
    }
    if problems.is_empty() {
        Ok(objects)
    } else {
        Err(problems)
    }
}

/// Splits multi-document YAML at `---` lines into (1-based first line,
/// text) pairs; a document marker at column 0 cannot occur inside a scalar.
fn split_documents(src: &str) -> Vec<(usize, &str)> {
    let mut docs = Vec::new();
    let mut start = 0;
    let mut start_line = 1;
    let mut offset = 0;
    for (idx, line) in src.split_inclusive('\n').enumerate() {
        let bare = line.trim_end();
        if bare == "---" || bare.starts_with("--- ") {
            docs.push((start_line, &src[start..offset]));
            start = offset + line.len();
            start_line = idx + 2;
        }
        offset += line.len();
    }
    docs.push((start_line, &src[start..]));
    docs.retain(|(_, d)| {
        d.lines()
            .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
    });
    docs
}

/// serde_yaml appends " at line L column C"; the diagnostic shows that itself.
fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(idx) if message[idx..].contains(" column ") => message[..idx].to_string(),
        _ => message.to_string(),
    }
}

/// Kinds that others depend on are applied first (and deleted last), after
/// Helm's install order; kinds not named (custom resources) come after
/// every built-in workload, webhooks after everything they could block.
fn apply_rank(kind: &str) -> u8 {
    match kind {
        "Namespace" => 0,
        "CustomResourceDefinition" => 1,
        "PriorityClass" | "StorageClass" | "IngressClass" | "RuntimeClass" => 2,
        "NetworkPolicy" | "ResourceQuota" | "LimitRange" | "PodDisruptionBudget" => 3,
        "ServiceAccount" | "Secret" | "ConfigMap" => 4,
        "PersistentVolume" | "PersistentVolumeClaim" => 5,
        "ClusterRole" | "Role" => 6,
        "ClusterRoleBinding" | "RoleBinding" => 7,
        "Service" => 8,
        "DaemonSet"
        | "Pod"
        | "ReplicationController"
        | "ReplicaSet"
        | "Deployment"
        | "HorizontalPodAutoscaler"
        | "StatefulSet"
        | "Job"
        | "CronJob"
        | "Ingress"
        | "EndpointSlice"
        | "Endpoints" => 9,
        "APIService"
        | "MutatingWebhookConfiguration"
        | "ValidatingWebhookConfiguration"
        | "ValidatingAdmissionPolicy"
        | "ValidatingAdmissionPolicyBinding" => 11,
        _ => 10,
    }
}

/// A baseline in namespace `shop` made of `manifests` (multi-document
/// YAML), loaded from a temporary folder that lives as long as the
/// returned guard: for unit tests elsewhere in the crate.
#[cfg(test)]
pub(crate) fn loaded_for_test(manifests: &str) -> (tempfile::TempDir, LoadedBaseline) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    std::fs::create_dir_all(dir.path().join("manifests")).expect("manifests folder");
    std::fs::write(dir.path().join("manifests/all.yaml"), manifests).expect("manifests");
    std::fs::write(
        dir.path().join("baseline.yaml"),
        "apiVersion: breakfix.dev/v1alpha1\nkind: Baseline\nmetadata: {name: shop}\nspec: {namespace: shop}\n",
    )
    .expect("baseline.yaml");
    let baseline = LoadedBaseline::load(&dir.path().join("baseline.yaml")).expect("it loads");
    (dir, baseline)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn obj(kind: &str, name: &str) -> DynamicObject {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": kind, "metadata": {"name": name}
        }))
        .unwrap()
    }

    #[test]
    fn objects_are_ordered_as_kubectl_apply_users_expect() {
        let mut objects = vec![
            obj("ValidatingWebhookConfiguration", "hook"),
            obj("Widget", "w"),
            obj("Deployment", "web"),
            obj("Service", "web"),
            obj("ConfigMap", "b"),
            obj("ConfigMap", "a"),
            obj("CustomResourceDefinition", "widgets.example.com"),
            obj("Namespace", "other"),
        ];
        sort_for_apply(&mut objects);
        let order: Vec<String> = objects
            .iter()
            .map(|o| o.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(
            order,
            [
                "other",
                "widgets.example.com",
                "b",
                "a",
                "web",
                "web",
                "w",
                "hook"
            ]
        );
    }

    #[rstest]
    #[case("a: 1\n", vec![(1, "a: 1\n")])]
    #[case("---\na: 1\n---\n# only a comment\n---\nb: 2\n", vec![(2, "a: 1\n"), (6, "b: 2\n")])]
    #[case("a: |\n  x\n  ---\n", vec![(1, "a: |\n  x\n  ---\n")])]
    fn splits_documents_with_their_first_line(
        #[case] src: &str,
        #[case] expected: Vec<(usize, &str)>,
    ) {
        assert_eq!(split_documents(src), expected);
    }

    #[test]
    fn a_bad_document_points_at_its_line_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("m.yaml");
        std::fs::write(
            &file,
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [b\n",
        )
        .unwrap();
        let problems = parse_manifests(&file).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].line, Some(9), "{}", problems[0]);
    }
}
