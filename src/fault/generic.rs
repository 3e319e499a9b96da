//! What the generic primitives (`patch`, `delete`, `scale`) share: a
//! reference to any object written in an experiment, and broad detection —
//! their effect is whatever the user's change does, so they watch the whole
//! namespace (pods, events, every Service that was serving, canaries, pod
//! deletions, nodes) and the user names the signals they expect.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{FaultContext, FaultError, Injection};
use crate::detect::Scope;
use crate::detect::broad::{serving_services, watch_broadly};
use crate::detect::gone::watch_pod_deletions;
use crate::detect::selector::with_selector_evidence;
use crate::kobj::ObjectRef;
use crate::vocab::Name;

/// Any object, by apiVersion, kind, namespace (absent for cluster-scoped
/// kinds) and name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ObjectTarget {
    /// `v1`, `apps/v1`, `rbac.authorization.k8s.io/v1`, …
    pub api_version: String,
    /// `Deployment`, `Service`, `ClusterRoleBinding`, …
    pub kind: String,
    /// Absent for cluster-scoped objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<Name>,
    /// The object's name.
    pub name: String,
}

impl ObjectTarget {
    /// Checks the reference's shape (the cluster checks that it exists).
    pub fn validate(&self) -> Result<(), String> {
        let version_ok = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        };
        let api_ok = match self.api_version.split_once('/') {
            Some((group, version)) => version_ok(group) && version_ok(version),
            None => version_ok(&self.api_version),
        };
        if !api_ok {
            return Err(format!(
                "apiVersion `{}` is not `v1` or `<group>/<version>`",
                self.api_version
            ));
        }
        if !self.kind.starts_with(|c: char| c.is_ascii_uppercase())
            || !self.kind.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return Err(format!(
                "kind `{}` is not a Kubernetes kind (e.g. `Deployment`)",
                self.kind
            ));
        }
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 253
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-.:".contains(c));
        if !name_ok {
            return Err(format!(
                "name `{}` is not a Kubernetes object name",
                self.name
            ));
        }
        Ok(())
    }

    /// The reference the journal and the dynamic API use.
    pub fn object_ref(&self) -> ObjectRef {
        ObjectRef {
            api_version: self.api_version.clone(),
            kind: self.kind.clone(),
            namespace: self.namespace.as_ref().map(ToString::to_string),
            name: self.name.clone(),
        }
    }
}

/// The namespace whose workloads show a generic fault's effect: `watch`, or
/// the target's own. Checked by [`watched_namespace_problem`] on load.
pub fn watched_namespace<'a>(
    target: Option<&'a Name>,
    watch: Option<&'a Name>,
) -> Option<&'a Name> {
    watch.or(target)
}

/// The load-time complaint when a generic fault has no namespace to watch.
pub fn watched_namespace_problem(
    target: Option<&Name>,
    watch: Option<&Name>,
) -> Result<(), String> {
    match watched_namespace(target, watch) {
        Some(_) => Ok(()),
        None => Err(
            "the target is cluster-scoped (no namespace); name the namespace whose workloads show the effect in `watchNamespace`"
                .into(),
        ),
    }
}

/// Services serving in `namespace` right now, read before a generic fault
/// mutates anything.
pub async fn serving_before(
    ctx: &FaultContext<'_>,
    namespace: &Name,
) -> Result<Vec<String>, FaultError> {
    serving_services(&ctx.client, namespace.as_str())
        .await
        .map_err(|e| FaultError::Target(format!("listing EndpointSlices in {namespace}: {e}")))
}

/// The injection of a generic fault: pods and events of `namespace` (those
/// matching `pod_selector` when the target has pods of its own), plus every
/// broad source.
pub fn broad_injection(
    ctx: &FaultContext<'_>,
    namespace: &Name,
    pod_selector: Option<String>,
    deployment: Option<String>,
    serving: &[String],
    summary: String,
) -> Injection {
    let scope = Scope {
        namespace: namespace.to_string(),
        pod_selector,
        event_name_prefix: None,
        not_before: jiff::Timestamp::now(),
        deployment,
    };
    let mut extra: Vec<_> = watch_broadly(&ctx.client, namespace, serving)
        .into_iter()
        .map(|s| with_selector_evidence(&ctx.client, namespace.as_str(), s))
        .collect();
    extra.push(watch_pod_deletions(&ctx.client, &scope));
    Injection {
        summary,
        scope,
        extra,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn target(api_version: &str, kind: &str, name: &str) -> ObjectTarget {
        ObjectTarget {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: None,
            name: name.into(),
        }
    }

    #[rstest]
    #[case(target("v1", "Service", "web"), None)]
    #[case(target("apps/v1", "Deployment", "web"), None)]
    #[case(
        target("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "system:coredns"),
        None
    )]
    #[case(target("apps", "Deployment", "web"), None)]
    #[case(target("Apps/V1", "Deployment", "web"), Some("apiVersion"))]
    #[case(target("v1", "service", "web"), Some("kind"))]
    #[case(target("v1", "Service", "Web"), Some("name"))]
    #[case(target("v1", "Service", "../etc"), Some("name"))]
    #[case(target("v1", "Service", ""), Some("name"))]
    fn references_are_checked(#[case] t: ObjectTarget, #[case] problem: Option<&str>) {
        match (t.validate(), problem) {
            (Ok(()), None) => {}
            (Err(e), Some(field)) => assert!(e.starts_with(field), "{e}"),
            (got, want) => panic!("got {got:?}, wanted a problem with {want:?}"),
        }
    }

    #[test]
    fn a_cluster_scoped_target_needs_a_namespace_to_watch() {
        let shop = Name::new("shop").expect("a name");
        assert!(watched_namespace_problem(None, None).is_err());
        assert_eq!(watched_namespace(None, Some(&shop)), Some(&shop));
        assert_eq!(watched_namespace(Some(&shop), None), Some(&shop));
    }
}
