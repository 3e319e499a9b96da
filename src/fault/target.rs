//! A fault's target Deployment as it is live in the cluster: fetched once,
//! decoded, and asked for what faults need (its pod template, a container,
//! its pod selector, the detection scope over its pods and events).

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Container, PodSpec};

use super::{DeploymentRef, FaultContext, FaultError};
use crate::detect::Scope;
use crate::kobj::ObjectRef;

/// A Deployment read from the cluster, with the reference faults patch it by.
#[derive(Debug, Clone)]
pub struct LiveDeployment {
    pub target: ObjectRef,
    pub deployment: Deployment,
}

impl LiveDeployment {
    /// Fetches and decodes `target`, failing with a clear message if it is absent.
    pub async fn fetch(ctx: &FaultContext<'_>, target: &DeploymentRef) -> Result<Self, FaultError> {
        let target = ObjectRef::namespaced(
            "apps/v1",
            "Deployment",
            target.namespace.as_str(),
            target.deployment.as_str(),
        );
        let deployment = ctx
            .get(&target)
            .await?
            .try_parse()
            .map_err(|e| FaultError::Decode {
                what: target.to_string(),
                detail: e.to_string(),
            })?;
        Ok(Self { target, deployment })
    }

    /// The Deployment's namespace.
    pub fn namespace(&self) -> &str {
        self.target.namespace.as_deref().unwrap_or_default()
    }

    /// The Deployment's name.
    pub fn name(&self) -> &str {
        &self.target.name
    }

    /// The pod template's spec.
    pub fn pod_spec(&self) -> Result<&PodSpec, FaultError> {
        self.deployment
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .ok_or_else(|| FaultError::Target(format!("{} has no pod template", self.target)))
    }

    /// The container named `name`, or the first one.
    pub fn container(&self, name: Option<&str>) -> Result<&Container, FaultError> {
        let containers = &self.pod_spec()?.containers;
        match name {
            Some(n) => containers.iter().find(|c| c.name == n),
            None => containers.first(),
        }
        .ok_or_else(|| {
            FaultError::Target(format!(
                "{} has no container {}",
                self.target,
                name.unwrap_or("at all")
            ))
        })
    }

    /// `key=value,…` from the Deployment's matchLabels.
    pub fn selector(&self) -> Option<String> {
        self.deployment
            .spec
            .as_ref()
            .and_then(|s| s.selector.match_labels.as_ref())
            .filter(|labels| !labels.is_empty())
            .map(|labels| {
                labels
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            })
    }

    /// Detection over the Deployment's pods, their events and its rollout,
    /// counting from now.
    pub fn scope(&self) -> Scope {
        Scope {
            namespace: self.namespace().to_string(),
            pod_selector: self.selector(),
            event_name_prefix: Some(format!("{}-", self.name())),
            not_before: jiff::Timestamp::now(),
            deployment: Some(self.name().to_string()),
        }
    }
}
