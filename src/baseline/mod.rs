//! Baselines: the healthy state a fault is injected into. A Baseline file
//! names a namespace, the manifests to apply there and the checks that
//! declare steady state.

mod apply;
pub mod steady;

use std::path::{Path, PathBuf};

use kube::api::DynamicObject;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::vocab::{ApiVersion, Diagnostic, HumanDuration, Name, load};
pub use apply::{ApplyError, apply_baseline, delete_baseline};
pub use steady::{SteadyError, SteadyState};

/// `kind: Baseline`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub enum BaselineKind {
    #[default]
    Baseline,
}

/// A Baseline file.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Baseline {
    pub api_version: ApiVersion,
    pub kind: BaselineKind,
    pub metadata: BaselineMetadata,
    pub spec: BaselineSpec,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BaselineMetadata {
    pub name: Name,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BaselineSpec {
    /// Namespace breakfix creates; namespaced manifests without one land here.
    pub namespace: Name,
    /// Manifest files or folders (`*.yaml`), relative to the Baseline file.
    #[serde(default = "default_manifests")]
    pub manifests: Vec<PathBuf>,
    #[serde(default)]
    pub steady_state: SteadyStateSpec,
}

fn default_manifests() -> Vec<PathBuf> {
    vec![PathBuf::from("manifests")]
}

/// What "healthy" means: every Deployment, StatefulSet and DaemonSet in the
/// manifests fully rolled out and available, plus these checks.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SteadyStateSpec {
    #[serde(default = "default_steady_timeout")]
    pub timeout: HumanDuration,
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

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServiceEndpoints {
    pub service: Name,
    #[serde(default = "one")]
    pub min: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<Name>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DeploymentReady {
    pub namespace: Name,
    pub name: Name,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PodsReady {
    pub selector: String,
    #[serde(default = "one")]
    pub min: u32,
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
    pub path: PathBuf,
    pub spec: BaselineSpec,
    pub metadata: BaselineMetadata,
    /// The manifests' objects, in apply order.
    pub objects: Vec<DynamicObject>,
}

impl LoadedBaseline {
    /// The baseline's name.
    pub fn name(&self) -> &str {
        self.metadata.name.as_str()
    }

    /// Loads the Baseline file at `path` and every manifest it names.
    pub fn load(path: &Path) -> Result<Self, Vec<Diagnostic>> {
        let (baseline, _src): (Baseline, String) = load::load_yaml(path).map_err(|d| vec![d])?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut problems = Vec::new();
        let mut objects = Vec::new();
        for entry in &baseline.spec.manifests {
            let full = dir.join(entry);
            let files = match manifest_files(&full) {
                Ok(f) => f,
                Err(d) => {
                    problems.push(d);
                    continue;
                }
            };
            for file in files {
                match parse_manifests(&file) {
                    Ok(mut objs) => objects.append(&mut objs),
                    Err(mut ds) => problems.append(&mut ds),
                }
            }
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
        objects
            .sort_by_key(|o| apply_rank(o.types.as_ref().map(|t| t.kind.as_str()).unwrap_or("")));
        Ok(Self {
            path: path.to_path_buf(),
            spec: baseline.spec,
            metadata: baseline.metadata,
            objects,
        })
    }
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
    let mut objects = Vec::new();
    let mut problems = Vec::new();
    for (idx, doc) in serde_yaml::Deserializer::from_str(&src).enumerate() {
        let value = match serde_yaml::Value::deserialize(doc) {
            Ok(v) => v,
            Err(e) => {
                let d = match e.location() {
                    Some(l) => Diagnostic::at(path, &src, l.line(), l.column(), e.to_string()),
                    None => Diagnostic::file(path, e.to_string()),
                };
                problems.push(d);
                break;
            }
        };
        if value.is_null() {
            continue;
        }
        match serde_yaml::from_value::<DynamicObject>(value) {
            Ok(obj) if obj.types.is_none() => problems.push(Diagnostic::file(
                path,
                format!("document {}: missing apiVersion or kind", idx + 1),
            )),
            Ok(obj) if obj.metadata.name.is_none() => problems.push(Diagnostic::file(
                path,
                format!("document {}: missing metadata.name", idx + 1),
            )),
            Ok(obj) => objects.push(obj),
            Err(e) => problems.push(Diagnostic::file(path, format!("document {}: {e}", idx + 1))),
        }
    }
    if problems.is_empty() {
        Ok(objects)
    } else {
        Err(problems)
    }
}

/// Kinds that others depend on are applied first (and deleted last).
fn apply_rank(kind: &str) -> u8 {
    match kind {
        "Namespace" => 0,
        "CustomResourceDefinition" => 1,
        "ResourceQuota" | "LimitRange" | "PriorityClass" => 2,
        "ServiceAccount" | "Secret" | "ConfigMap" => 3,
        "ClusterRole" | "Role" => 4,
        "ClusterRoleBinding" | "RoleBinding" => 5,
        "Service" | "PersistentVolumeClaim" => 6,
        _ => 7,
    }
}
