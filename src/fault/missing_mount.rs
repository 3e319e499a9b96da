//! missingMount: a Secret or ConfigMap a Deployment needs is gone.
//!
//! The story (Zalando, "Why I love Kubernetes failure stories", 2019,
//! incident #5): `MountVolume.SetUp failed for volume
//! "outfit-delivery-api-credentials" : secrets "outfit-delivery-api-credentials"
//! not found` — and every new deployment failed. Pods already running keep
//! their mounted copy, so the fault bites at the next rollout: the fault
//! either deletes the object and then rolls the Deployment out (as
//! `kubectl rollout restart` would), or points the Deployment's references at
//! a name nobody created. New pods sit in ContainerCreating (`FailedMount`,
//! for volumes) or `CreateContainerConfigError` (for env references) and the
//! rollout stalls.

use k8s_openapi::api::core::v1::PodSpec;
use kube::api::Patch;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::target::LiveDeployment;
use super::{DeploymentRef, Fault, FaultContext, FaultError, Injection};
use crate::kobj::ObjectRef;
use crate::vocab::SignalKind;

const DEFAULT_SIGNALS: &[SignalKind] = &[
    SignalKind::FailedMount,
    SignalKind::CreateContainerConfigError,
];
const SUPPORTED: &[SignalKind] = &[
    SignalKind::FailedMount,
    SignalKind::CreateContainerConfigError,
    SignalKind::RolloutStalled,
];

/// The annotation `kubectl rollout restart` sets; the fault sets it too, to
/// roll the Deployment out once its Secret/ConfigMap is gone.
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

/// Which kind of object is referenced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ConfigKind {
    /// A Secret.
    Secret,
    /// A ConfigMap.
    ConfigMap,
}

impl ConfigKind {
    fn api_version(self) -> &'static str {
        "v1"
    }

    fn kind(self) -> &'static str {
        match self {
            Self::Secret => "Secret",
            Self::ConfigMap => "ConfigMap",
        }
    }
}

/// The Secret or ConfigMap to take away.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConfigObject {
    /// Secret or ConfigMap.
    pub kind: ConfigKind,
    /// Its name.
    pub name: crate::vocab::Name,
}

/// How the reference is broken.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum BreakBy {
    /// Delete the object, then roll the Deployment out.
    #[default]
    Delete,
    /// Point the Deployment's references at `<name>-v2`, which does not exist.
    Rename,
}

/// The missingMount fault's settings.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MissingMount {
    /// The Deployment that reads the object.
    pub target: DeploymentRef,
    /// The object the Deployment mounts or reads env from (in its namespace).
    pub object: ConfigObject,
    /// How the fault breaks the reference.
    #[serde(default)]
    pub by: BreakBy,
}

/// Where a pod spec uses the object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// A volume (`secret`, `configMap` or a projected source).
    Volume {
        /// The volume's name.
        volume: String,
    },
    /// One env variable's `valueFrom`.
    Env {
        /// The container's name.
        container: String,
        /// The variable's name.
        variable: String,
    },
    /// A container's `envFrom`.
    EnvFrom {
        /// The container's name.
        container: String,
    },
}

/// One use of the object in a pod spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Where the pod template refers to the object.
    pub via: Via,
    /// `optional: true` references do not stop a pod when the object is gone.
    pub optional: bool,
}

impl Reference {
    /// The signal a missing object gives through this reference.
    pub fn signal(&self) -> SignalKind {
        match self.via {
            Via::Volume { .. } => SignalKind::FailedMount,
            Via::Env { .. } | Via::EnvFrom { .. } => SignalKind::CreateContainerConfigError,
        }
    }
}

/// Every use of `kind` `name` in `spec`, in volumes, env and envFrom of
/// containers and init containers.
pub fn references(spec: &PodSpec, kind: ConfigKind, name: &str) -> Vec<Reference> {
    let mut out = Vec::new();
    visit(spec, kind, &mut |via, current, optional| {
        if current == name {
            out.push(Reference { via, optional });
        }
    });
    out
}

/// Renames every use of `kind` `from` in `spec` to `to`; returns how many.
pub fn rename(spec: &mut PodSpec, kind: ConfigKind, from: &str, to: &str) -> usize {
    let mut n = 0;
    visit_mut(spec, kind, &mut |current| {
        if current == from {
            *current = to.to_string();
            n += 1;
        }
    });
    n
}

/// Calls `f(via, name, optional)` for every reference to an object of `kind`.
fn visit(spec: &PodSpec, kind: ConfigKind, f: &mut dyn FnMut(Via, &str, bool)) {
    for v in spec.volumes.iter().flatten() {
        let via = || Via::Volume {
            volume: v.name.clone(),
        };
        match kind {
            ConfigKind::Secret => {
                if let Some(s) = &v.secret
                    && let Some(n) = &s.secret_name
                {
                    f(via(), n, s.optional.unwrap_or(false));
                }
            }
            ConfigKind::ConfigMap => {
                if let Some(c) = &v.config_map {
                    f(via(), &c.name, c.optional.unwrap_or(false));
                }
            }
        }
        for source in v.projected.iter().flat_map(|p| p.sources.iter().flatten()) {
            match kind {
                ConfigKind::Secret => {
                    if let Some(s) = &source.secret {
                        f(via(), &s.name, s.optional.unwrap_or(false));
                    }
                }
                ConfigKind::ConfigMap => {
                    if let Some(c) = &source.config_map {
                        f(via(), &c.name, c.optional.unwrap_or(false));
                    }
                }
            }
        }
    }
    let containers = spec
        .init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter());
    for c in containers {
        for e in c.env.iter().flatten() {
            let from = e.value_from.as_ref();
            let found = match kind {
                ConfigKind::Secret => from
                    .and_then(|v| v.secret_key_ref.as_ref())
                    .map(|r| (&r.name, r.optional)),
                ConfigKind::ConfigMap => from
                    .and_then(|v| v.config_map_key_ref.as_ref())
                    .map(|r| (&r.name, r.optional)),
            };
            if let Some((n, optional)) = found {
                let via = Via::Env {
                    container: c.name.clone(),
                    variable: e.name.clone(),
                };
                f(via, n, optional.unwrap_or(false));
            }
        }
        for e in c.env_from.iter().flatten() {
            let found = match kind {
                ConfigKind::Secret => e.secret_ref.as_ref().map(|r| (&r.name, r.optional)),
                ConfigKind::ConfigMap => e.config_map_ref.as_ref().map(|r| (&r.name, r.optional)),
            };
            if let Some((n, optional)) = found {
                let via = Via::EnvFrom {
                    container: c.name.clone(),
                };
                f(via, n, optional.unwrap_or(false));
            }
        }
    }
}

/// Calls `f(name)` with mutable access to every reference's name.
fn visit_mut(spec: &mut PodSpec, kind: ConfigKind, f: &mut dyn FnMut(&mut String)) {
    for v in spec.volumes.iter_mut().flatten() {
        match kind {
            ConfigKind::Secret => {
                if let Some(n) = v.secret.as_mut().and_then(|s| s.secret_name.as_mut()) {
                    f(n);
                }
            }
            ConfigKind::ConfigMap => {
                if let Some(c) = v.config_map.as_mut() {
                    f(&mut c.name);
                }
            }
        }
        for source in v
            .projected
            .iter_mut()
            .flat_map(|p| p.sources.iter_mut().flatten())
        {
            match kind {
                ConfigKind::Secret => {
                    if let Some(s) = source.secret.as_mut() {
                        f(&mut s.name);
                    }
                }
                ConfigKind::ConfigMap => {
                    if let Some(c) = source.config_map.as_mut() {
                        f(&mut c.name);
                    }
                }
            }
        }
    }
    let containers = spec
        .init_containers
        .iter_mut()
        .flatten()
        .chain(spec.containers.iter_mut());
    for c in containers {
        for e in c.env.iter_mut().flatten() {
            let from = e.value_from.as_mut();
            let name = match kind {
                ConfigKind::Secret => from
                    .and_then(|v| v.secret_key_ref.as_mut())
                    .map(|r| &mut r.name),
                ConfigKind::ConfigMap => from
                    .and_then(|v| v.config_map_key_ref.as_mut())
                    .map(|r| &mut r.name),
            };
            if let Some(n) = name {
                f(n);
            }
        }
        for e in c.env_from.iter_mut().flatten() {
            let name = match kind {
                ConfigKind::Secret => e.secret_ref.as_mut().map(|r| &mut r.name),
                ConfigKind::ConfigMap => e.config_map_ref.as_mut().map(|r| &mut r.name),
            };
            if let Some(n) = name {
                f(n);
            }
        }
    }
}

impl MissingMount {
    /// The name the `rename` variant points the references at.
    pub fn missing_name(&self) -> String {
        format!("{}-v2", self.object.name)
    }
}

impl Fault for MissingMount {
    const KEY: &'static str = "missingMount";
    const SUMMARY: &'static str = "deletes a Secret/ConfigMap a Deployment mounts or reads env from (then rolls it out), or points its references at a missing name";
    const STORY: &'static str = "Zalando (2019), incident #5: `secrets \"outfit-delivery-api-credentials\" not found` in MountVolume.SetUp, and all new deployments failed";
    const DEFAULT_SIGNALS: &'static [SignalKind] = DEFAULT_SIGNALS;
    const SUPPORTED_SIGNALS: &'static [SignalKind] = SUPPORTED;

    fn objects(&self) -> Vec<super::Named> {
        vec![
            self.target.named("target"),
            super::Named {
                key: "object",
                kind: match self.object.kind {
                    ConfigKind::Secret => "Secret",
                    ConfigKind::ConfigMap => "ConfigMap",
                }
                .into(),
                namespace: Some(self.target.namespace.to_string()),
                name: self.object.name.to_string(),
            },
        ]
    }

    fn namespace(&self) -> Option<&str> {
        Some(self.target.namespace.as_str())
    }

    async fn inject(&self, ctx: &mut FaultContext<'_>) -> Result<Injection, FaultError> {
        let live = LiveDeployment::fetch(ctx, &self.target).await?;
        let spec = live.pod_spec()?;
        let kind = self.object.kind;
        let name = self.object.name.as_str();
        let uses = references(spec, kind, name);
        let required: Vec<&Reference> = uses.iter().filter(|r| !r.optional).collect();
        if required.is_empty() {
            return Err(FaultError::Target(if uses.is_empty() {
                format!("{} does not use {} {name}", live.target, kind.kind())
            } else {
                format!(
                    "{} uses {} {name} only with `optional: true`; losing it breaks nothing",
                    live.target,
                    kind.kind()
                )
            }));
        }
        let how = required
            .iter()
            .map(|r| match &r.via {
                Via::Volume { volume } => format!("volume {volume}"),
                Via::Env {
                    container,
                    variable,
                } => format!("env {variable} of {container}"),
                Via::EnvFrom { container } => format!("envFrom of {container}"),
            })
            .collect::<Vec<_>>()
            .join(", ");
        let scope = live.scope();
        let summary = match self.by {
            BreakBy::Delete => {
                let object =
                    ObjectRef::namespaced(kind.api_version(), kind.kind(), live.namespace(), name);
                ctx.delete(&object).await?;
                let rollout = json!({"spec": {"template": {"metadata": {"annotations": {
                    RESTARTED_AT: jiff::Timestamp::now().to_string()
                }}}}});
                ctx.patch(&live.target, &Patch::Strategic(rollout)).await?;
                format!(
                    "deleted {} {name} (used by {how}) and rolled out {}",
                    kind.kind().to_lowercase(),
                    live.target
                )
            }
            BreakBy::Rename => {
                let missing = self.missing_name();
                let mut broken = spec.clone();
                rename(&mut broken, kind, name, &missing);
                let patch = json!({"spec": {"template": {"spec": {
                    "volumes": broken.volumes,
                    "initContainers": broken.init_containers,
                    "containers": broken.containers,
                }}}});
                ctx.patch(&live.target, &Patch::Merge(patch)).await?;
                format!(
                    "{}: {how} now reference {} {missing}, which does not exist",
                    live.target,
                    kind.kind().to_lowercase()
                )
            }
        };
        Ok(Injection {
            summary,
            scope,
            extra: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    /// The pod spec of experiments/baselines/mounts, plus an optional and a
    /// projected reference.
    fn spec() -> PodSpec {
        serde_json::from_value(json!({
            "volumes": [
                {"name": "credentials", "secret": {"secretName": "app-credentials"}},
                {"name": "extra", "secret": {"secretName": "app-extra", "optional": true}},
                {"name": "bundle", "projected": {"sources": [
                    {"configMap": {"name": "app-settings"}},
                    {"secret": {"name": "app-credentials"}},
                ]}},
            ],
            "initContainers": [{"name": "migrate", "envFrom": [{"configMapRef": {"name": "app-settings"}}]}],
            "containers": [{
                "name": "app",
                "env": [
                    {"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"name": "app-settings", "key": "level"}}},
                    {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "app-credentials", "key": "token"}}},
                    {"name": "PLAIN", "value": "app-credentials"},
                ],
            }],
        }))
        .expect("a pod spec")
    }

    fn vol(v: &str) -> Via {
        Via::Volume { volume: v.into() }
    }

    #[rstest]
    #[case::secret(ConfigKind::Secret, "app-credentials", vec![
        (vol("credentials"), false),
        (vol("bundle"), false),
        (Via::Env { container: "app".into(), variable: "TOKEN".into() }, false),
    ])]
    #[case::optional_secret(ConfigKind::Secret, "app-extra", vec![(vol("extra"), true)])]
    #[case::config_map(ConfigKind::ConfigMap, "app-settings", vec![
        (vol("bundle"), false),
        (Via::EnvFrom { container: "migrate".into() }, false),
        (Via::Env { container: "app".into(), variable: "LEVEL".into() }, false),
    ])]
    #[case::unused(ConfigKind::ConfigMap, "app-credentials", vec![])]
    fn every_use_is_found(
        #[case] kind: ConfigKind,
        #[case] name: &str,
        #[case] expected: Vec<(Via, bool)>,
    ) {
        let found: Vec<(Via, bool)> = references(&spec(), kind, name)
            .into_iter()
            .map(|r| (r.via, r.optional))
            .collect();
        assert_eq!(found, expected);
    }

    #[rstest]
    #[case(ConfigKind::Secret, "app-credentials", 3)]
    #[case(ConfigKind::ConfigMap, "app-settings", 3)]
    #[case(ConfigKind::ConfigMap, "nothing", 0)]
    fn renaming_changes_every_use_and_nothing_else(
        #[case] kind: ConfigKind,
        #[case] name: &str,
        #[case] count: usize,
    ) {
        let mut broken = spec();
        assert_eq!(rename(&mut broken, kind, name, "gone"), count);
        assert!(references(&broken, kind, name).is_empty());
        assert_eq!(references(&broken, kind, "gone").len(), count);
        let mut back = broken.clone();
        rename(&mut back, kind, "gone", name);
        assert_eq!(back, spec(), "renaming back restores the spec exactly");
        let plain = broken.containers[0].env.as_ref().expect("env")[2]
            .value
            .clone();
        assert_eq!(
            plain.as_deref(),
            Some("app-credentials"),
            "plain values are not references"
        );
    }

    #[rstest]
    #[case(vol("credentials"), SignalKind::FailedMount)]
    #[case(Via::EnvFrom { container: "app".into() }, SignalKind::CreateContainerConfigError)]
    fn volumes_fail_to_mount_and_env_fails_to_configure(
        #[case] via: Via,
        #[case] signal: SignalKind,
    ) {
        assert_eq!(
            Reference {
                via,
                optional: false
            }
            .signal(),
            signal
        );
    }
}
