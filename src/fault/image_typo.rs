//! imageTypo: a container image changed to a name or tag that does not exist.
//!
//! The story: a one-character slip in a manifest ships; new pods sit in
//! ErrImagePull / ImagePullBackOff, the rollout stalls, and the old
//! ReplicaSet keeps serving only as long as maxUnavailable allows.

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::Patch;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{DeploymentRef, Fault, FaultContext, FaultError, Injection};
use crate::detect::Scope;
use crate::kobj::ObjectRef;
use crate::vocab::SignalKind;

/// The catalogue row.
pub const CATALOGUE: super::CatalogueEntry = super::CatalogueEntry {
    fault: "imageTypo",
    what: "changes a container image (tag or repository, app or init container) to one that does not exist; new pods cannot pull it and the rollout stalls while the old ReplicaSet keeps serving",
    signals: SUPPORTED,
    story: "\"Build, Break, and Survive\" (2025): a one-letter typo in an image tag leaves new pods in ImagePullBackOff while the rollout stalls",
};

pub(crate) const DEFAULT_SIGNALS: &[SignalKind] =
    &[SignalKind::ErrImagePull, SignalKind::ImagePullBackOff];
const SUPPORTED: &[SignalKind] = &[
    SignalKind::ErrImagePull,
    SignalKind::ImagePullBackOff,
    SignalKind::InvalidImageName,
    SignalKind::RolloutStalled,
];

/// Which part of the image reference the typo is in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum TypoIn {
    /// `app:1.2.3` → `app:1.2.33` (a repeated keystroke).
    #[default]
    Tag,
    /// `team/app:1.2.3` → `team/pap:1.2.3` (two letters swapped).
    Repository,
}

/// The imageTypo fault's settings.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ImageTypo {
    pub target: DeploymentRef,
    /// Container to break; default: the first container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// Break an init container instead of an app container.
    #[serde(default)]
    pub init_container: bool,
    /// Where the typo goes when `image` is not given.
    #[serde(default)]
    pub typo: TypoIn,
    /// The broken image to set; default: derived from the current one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

impl Fault for ImageTypo {
    fn default_signals(&self) -> &'static [SignalKind] {
        DEFAULT_SIGNALS
    }

    fn supported_signals(&self) -> &'static [SignalKind] {
        SUPPORTED
    }

    fn namespace(&self) -> Option<&str> {
        Some(self.target.namespace.as_str())
    }

    fn validate(&self) -> Result<(), String> {
        match &self.image {
            Some(image) if image.trim().is_empty() => Err("image must not be empty".into()),
            _ => Ok(()),
        }
    }

    async fn inject(&self, ctx: &mut FaultContext<'_>) -> Result<Injection, FaultError> {
        let ns = self.target.namespace.as_str();
        let name = self.target.deployment.as_str();
        let target = ObjectRef::namespaced("apps/v1", "Deployment", ns, name);
        let live = ctx.get(&target).await?;
        let deployment: Deployment = live.try_parse().map_err(|e| FaultError::Decode {
            what: target.to_string(),
            detail: e.to_string(),
        })?;
        let pod_spec = deployment
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .ok_or_else(|| FaultError::Target(format!("{target} has no pod template")))?;
        let containers = if self.init_container {
            pod_spec.init_containers.clone().unwrap_or_default()
        } else {
            pod_spec.containers.clone()
        };
        let list = if self.init_container {
            "initContainers"
        } else {
            "containers"
        };
        let container = match &self.container {
            Some(c) => containers.iter().find(|x| &x.name == c),
            None => containers.first(),
        }
        .ok_or_else(|| {
            FaultError::Target(format!(
                "{target} has no such container in spec.template.spec.{list}"
            ))
        })?;
        let current = container.image.clone().unwrap_or_default();
        let broken = self
            .image
            .clone()
            .unwrap_or_else(|| misspell(&current, self.typo));
        let patch = json!({"spec": {"template": {"spec": {list: [{"name": container.name, "image": broken}]}}}});
        ctx.patch(&target, &Patch::Strategic(patch)).await?;
        let selector = deployment
            .spec
            .as_ref()
            .and_then(|s| s.selector.match_labels.as_ref())
            .map(|labels| {
                labels
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            });
        Ok(Injection {
            summary: format!(
                "{target}: container {} image {current} → {broken}",
                container.name
            ),
            scope: Scope {
                namespace: ns.to_string(),
                pod_selector: selector,
                event_name_prefix: Some(format!("{name}-")),
                not_before: jiff::Timestamp::now(),
                deployment: Some(name.to_string()),
            },
            extra: Vec::new(),
        })
    }
}

/// A plausible human typo of `image` in the chosen part.
pub fn misspell(image: &str, part: TypoIn) -> String {
    let (repo, tag) = split_image(image);
    match part {
        TypoIn::Tag => {
            let tag = tag.unwrap_or("latest");
            let last = tag.chars().last().unwrap_or('0');
            format!("{repo}:{tag}{last}")
        }
        TypoIn::Repository => {
            let (prefix, last_segment) = match repo.rsplit_once('/') {
                Some((p, s)) => (format!("{p}/"), s),
                None => (String::new(), repo),
            };
            let chars: Vec<char> = last_segment.chars().collect();
            let swapped = chars
                .windows(2)
                .position(|w| {
                    w[0] != w[1] && w[0].is_ascii_alphabetic() && w[1].is_ascii_alphabetic()
                })
                .map(|i| {
                    let mut c = chars.clone();
                    c.swap(i, i + 1);
                    c.into_iter().collect::<String>()
                })
                .unwrap_or_else(|| format!("{last_segment}x"));
            match tag {
                Some(t) => format!("{prefix}{swapped}:{t}"),
                None => format!("{prefix}{swapped}"),
            }
        }
    }
}

/// Splits `registry/repo:tag` into repo and tag (a digest stays in the repo part).
fn split_image(image: &str) -> (&str, Option<&str>) {
    if image.contains('@') {
        return (image, None);
    }
    match image.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, Some(tag)),
        _ => (image, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("breakfix/workload:0.1.0", TypoIn::Tag, "breakfix/workload:0.1.00")]
    #[case("nginx", TypoIn::Tag, "nginx:latestt")]
    #[case("localhost:5000/app:v2", TypoIn::Tag, "localhost:5000/app:v22")]
    #[case(
        "breakfix/workload:0.1.0",
        TypoIn::Repository,
        "breakfix/owrkload:0.1.0"
    )]
    #[case("nginx", TypoIn::Repository, "gninx")]
    #[case("localhost:5000/app", TypoIn::Repository, "localhost:5000/pap")]
    fn misspells_plausibly(#[case] image: &str, #[case] part: TypoIn, #[case] expected: &str) {
        assert_eq!(misspell(image, part), expected);
    }
}
