//! imageTypo: a container image changed to a name or tag that does not exist.
//!
//! The story: a one-character slip in a manifest ships; new pods sit in
//! ErrImagePull / ImagePullBackOff, the rollout stalls, and the old
//! ReplicaSet keeps serving only as long as maxUnavailable allows.

use kube::api::Patch;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::target::LiveDeployment;
use super::{DeploymentRef, Fault, FaultContext, FaultError, Injection};
use crate::vocab::SignalKind;

const DEFAULT_SIGNALS: &[SignalKind] = &[SignalKind::ErrImagePull, SignalKind::ImagePullBackOff];
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
    /// The Deployment whose image gets the typo.
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
    const KEY: &'static str = "imageTypo";
    const SUMMARY: &'static str = "changes a container image (tag or repository, app or init container) to one that does not exist; new pods cannot pull it and the rollout stalls while the old ReplicaSet keeps serving";
    const STORY: &'static str = "\"Build, Break, and Survive\" (2025): a one-letter typo in an image tag leaves new pods in ImagePullBackOff while the rollout stalls";
    const DEFAULT_SIGNALS: &'static [SignalKind] = DEFAULT_SIGNALS;
    const SUPPORTED_SIGNALS: &'static [SignalKind] = SUPPORTED;

    fn objects(&self) -> Vec<super::Named> {
        vec![self.target.named("target")]
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
        let live = LiveDeployment::fetch(ctx, &self.target).await?;
        let pod_spec = live.pod_spec()?;
        let (containers, list) = if self.init_container {
            (
                pod_spec.init_containers.clone().unwrap_or_default(),
                "initContainers",
            )
        } else {
            (pod_spec.containers.clone(), "containers")
        };
        let container = match &self.container {
            Some(c) => containers.iter().find(|x| &x.name == c),
            None => containers.first(),
        }
        .ok_or_else(|| {
            FaultError::Target(format!(
                "{} has no such container in spec.template.spec.{list}",
                live.target
            ))
        })?;
        let current = container.image.clone().unwrap_or_default();
        let broken = self
            .image
            .clone()
            .unwrap_or_else(|| misspell(&current, self.typo));
        let patch = json!({"spec": {"template": {"spec": {list: [{"name": container.name, "image": broken}]}}}});
        ctx.patch(&live.target, &Patch::Strategic(patch)).await?;
        Ok(Injection {
            summary: format!(
                "{}: container {} image {current} → {broken}",
                live.target, container.name
            ),
            scope: live.scope(),
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
