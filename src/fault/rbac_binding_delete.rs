//! rbacBindingDelete: a RoleBinding or ClusterRoleBinding a workload relies
//! on is deleted.
//!
//! The story (Zalando, "Why I love Kubernetes failure stories", 2019,
//! incident #4): a cleanup list (`deletions.yaml`) removed RoleBindings and a
//! ClusterRoleBinding; flannel's API calls failed (`Failed to list *v1.Node:
//! Unauthorized`) and the cluster's network split. Here the workload is an
//! api-canary that lists a resource with its ServiceAccount: once the binding
//! is gone its calls get 403 and it turns Unready. Detection reads the
//! canary's `/status` (the 403 it got) and confirms with a
//! SubjectAccessReview that the API server now says no; both go into the
//! evidence. The revert recreates the exact binding from the journal.

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec, SubjectAccessReviewStatus,
};
use kube::api::PostParams;
use kube::{Api, Client};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Claim, Fault, FaultContext, FaultError, Injection, SharedResource};
use crate::detect::canary::{CanaryRef, CanaryStatus, UnreadyCanary, watch_unready};
use crate::detect::{Observation, Scope, SignalStream};
use crate::kobj::ObjectRef;
use crate::vocab::SignalKind;

const DEFAULT_SIGNALS: &[SignalKind] = &[SignalKind::Forbidden];
const SUPPORTED: &[SignalKind] = &[
    SignalKind::Forbidden,
    SignalKind::CanaryFailing,
    SignalKind::Unready,
];

/// Which kind of binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum BindingKind {
    /// A namespaced RoleBinding.
    RoleBinding,
    /// A ClusterRoleBinding.
    ClusterRoleBinding,
}

/// The binding to delete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BindingRef {
    /// RoleBinding or ClusterRoleBinding.
    pub kind: BindingKind,
    /// RBAC object names may hold `:` (`system:…`), so any non-empty name.
    pub name: String,
    /// The RoleBinding's namespace; none for a ClusterRoleBinding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<crate::vocab::Name>,
}

impl BindingRef {
    /// The binding as an object reference.
    pub fn object(&self) -> ObjectRef {
        let kind = match self.kind {
            BindingKind::RoleBinding => "RoleBinding",
            BindingKind::ClusterRoleBinding => "ClusterRoleBinding",
        };
        ObjectRef {
            api_version: "rbac.authorization.k8s.io/v1".into(),
            kind: kind.into(),
            namespace: self.namespace.as_ref().map(ToString::to_string),
            name: self.name.clone(),
        }
    }
}

/// The rbacBindingDelete fault's settings.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RbacBindingDelete {
    /// The binding to delete.
    pub binding: BindingRef,
    /// The api-canary whose calls rely on the binding.
    pub workload: CanaryRef,
}

impl Fault for RbacBindingDelete {
    const KEY: &'static str = "rbacBindingDelete";
    const SUMMARY: &'static str = "deletes a RoleBinding/ClusterRoleBinding a workload's ServiceAccount relies on; the exact object is restored";
    const STORY: &'static str = "Zalando (2019), incident #4: RoleBindings and a ClusterRoleBinding removed by a cleanup list; flannel got `Unauthorized` listing nodes and the network split";
    const DEFAULT_SIGNALS: &'static [SignalKind] = DEFAULT_SIGNALS;
    const SUPPORTED_SIGNALS: &'static [SignalKind] = SUPPORTED;

    fn objects(&self) -> Vec<super::Named> {
        vec![super::Named {
            key: "binding",
            kind: match self.binding.kind {
                BindingKind::RoleBinding => "RoleBinding",
                BindingKind::ClusterRoleBinding => "ClusterRoleBinding",
            }
            .into(),
            namespace: match self.binding.kind {
                BindingKind::RoleBinding => Some(
                    self.binding
                        .namespace
                        .as_ref()
                        .unwrap_or(&self.workload.namespace)
                        .to_string(),
                ),
                BindingKind::ClusterRoleBinding => None,
            },
            name: self.binding.name.clone(),
        }]
    }

    fn canaries(&self) -> Vec<super::NamedCanary> {
        vec![super::NamedCanary {
            key: "workload",
            namespace: self.workload.namespace.to_string(),
            selector: self.workload.selector.clone(),
        }]
    }

    fn namespace(&self) -> Option<&str> {
        Some(self.workload.namespace.as_str())
    }

    /// A ClusterRoleBinding is cluster-wide RBAC; a RoleBinding belongs to
    /// its namespace. The workload whose calls fail is claimed too.
    fn claims(&self) -> Vec<Claim> {
        let binding = match self.binding.kind {
            BindingKind::ClusterRoleBinding => Claim::Shared(SharedResource::ClusterRbac),
            BindingKind::RoleBinding => {
                Claim::of_namespace(self.binding.namespace.as_ref().map(|n| n.as_str()))
            }
        };
        vec![
            binding,
            Claim::of_namespace(Some(self.workload.namespace.as_str())),
        ]
    }

    fn validate(&self) -> Result<(), String> {
        if self.binding.name.trim().is_empty() {
            return Err("binding.name must not be empty".into());
        }
        match (self.binding.kind, &self.binding.namespace) {
            (BindingKind::RoleBinding, None) => {
                Err("binding.namespace is required for a RoleBinding".into())
            }
            (BindingKind::ClusterRoleBinding, Some(_)) => {
                Err("a ClusterRoleBinding has no namespace; remove binding.namespace".into())
            }
            _ => Ok(()),
        }
    }

    async fn inject(&self, ctx: &mut FaultContext<'_>) -> Result<Injection, FaultError> {
        let target = self.binding.object();
        let scope = Scope {
            pod_selector: Some(self.workload.selector.clone()),
            ..Scope::namespace(self.workload.namespace.as_str())
        };
        let deleted = ctx.delete(&target).await?;
        let subjects = deleted
            .data
            .get("subjects")
            .and_then(|s| s.as_array())
            .map(|subjects| {
                subjects
                    .iter()
                    .map(|s| {
                        let field = |k: &str| s.get(k).and_then(|v| v.as_str()).unwrap_or("");
                        match field("namespace") {
                            "" => format!("{} {}", field("kind"), field("name")),
                            ns => format!("{} {ns}/{}", field("kind"), field("name")),
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        Ok(Injection {
            summary: format!("deleted {target} (subjects: {subjects})"),
            scope,
            extra: vec![watch_forbidden(&ctx.client, &self.workload)],
        })
    }
}

/// The access an api-canary exercises, as a SubjectAccessReview asks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// The ServiceAccount that loses the access.
    pub service_account: String,
    /// Its namespace.
    pub service_account_namespace: String,
    /// The verb it may no longer use.
    pub verb: String,
    /// The resource's API group.
    pub group: String,
    /// The resource.
    pub resource: String,
    /// The namespace the access is checked in.
    pub namespace: String,
}

impl Access {
    /// What `pod` (an api-canary) does, from its ServiceAccount and the
    /// settings its `/status` reports: `list <resource>` in its namespace.
    pub fn of_canary(pod_namespace: &str, service_account: &str, status: &CanaryStatus) -> Self {
        let config = |k: &str| {
            status
                .config
                .get(k)
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        let api_version = config("api_version").unwrap_or_else(|| "v1".into());
        let group = api_version
            .split_once('/')
            .map(|(g, _)| g.to_string())
            .unwrap_or_default();
        Self {
            service_account: service_account.to_string(),
            service_account_namespace: pod_namespace.to_string(),
            verb: "list".into(),
            group,
            resource: config("resource").unwrap_or_else(|| "configmaps".into()),
            namespace: config("namespace").unwrap_or_else(|| pod_namespace.to_string()),
        }
    }

    /// The user name the API server sees for the ServiceAccount.
    pub fn user(&self) -> String {
        format!(
            "system:serviceaccount:{}:{}",
            self.service_account_namespace, self.service_account
        )
    }

    /// The review to send.
    pub fn review(&self) -> SubjectAccessReview {
        SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(self.user()),
                groups: Some(vec![
                    "system:serviceaccounts".into(),
                    format!("system:serviceaccounts:{}", self.service_account_namespace),
                    "system:authenticated".into(),
                ]),
                resource_attributes: Some(ResourceAttributes {
                    namespace: Some(self.namespace.clone()),
                    verb: Some(self.verb.clone()),
                    group: Some(self.group.clone()),
                    resource: Some(self.resource.clone()),
                    ..ResourceAttributes::default()
                }),
                ..SubjectAccessReviewSpec::default()
            },
            ..SubjectAccessReview::default()
        }
    }

    /// One line of evidence from the API server's answer.
    pub fn describe(&self, status: &SubjectAccessReviewStatus) -> String {
        let resource = if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        };
        let verdict = if status.allowed { "may" } else { "may not" };
        let mut line = format!(
            "SubjectAccessReview: {} {verdict} {} {resource} in {} (allowed={}",
            self.user(),
            self.verb,
            self.namespace,
            status.allowed
        );
        if status.denied == Some(true) {
            line.push_str(", denied=true");
        }
        for (label, value) in [
            ("reason", &status.reason),
            ("error", &status.evaluation_error),
        ] {
            if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
                line.push_str(&format!(", {label}: {v}"));
            }
        }
        line.push(')');
        line
    }
}

/// Asks the API server whether `access` is allowed.
pub async fn review(client: &Client, access: &Access) -> Result<SubjectAccessReviewStatus, String> {
    let api: Api<SubjectAccessReview> = Api::all(client.clone());
    api.create(&PostParams::default(), &access.review())
        .await
        .map_err(|e| format!("SubjectAccessReview failed: {e}"))?
        .status
        .ok_or_else(|| "SubjectAccessReview came back without a status".into())
}

/// Reads an unready api-canary: [`SignalKind::Forbidden`] when its last call
/// got 403 and the SubjectAccessReview (if one could be made) says no;
/// [`SignalKind::CanaryFailing`] otherwise.
pub fn classify_api_canary(
    canary: &UnreadyCanary,
    review: Option<(&Access, &Result<SubjectAccessReviewStatus, String>)>,
) -> Observation {
    let status = canary.status.as_ref().ok();
    let got_403 = status.and_then(CanaryStatus::last_http_status) == Some(403);
    let last_error = status
        .and_then(|s| s.last_error.clone())
        .unwrap_or_else(|| "no error recorded".into());
    let denied = match review {
        Some((_, Ok(verdict))) => Some(!verdict.allowed),
        _ => None,
    };
    let (kind, reason) = match (got_403, denied) {
        (true, Some(true) | None) => (SignalKind::Forbidden, "Forbidden"),
        (true, Some(false)) => (SignalKind::CanaryFailing, "ForbiddenButAllowed"),
        (false, _) => (SignalKind::CanaryFailing, "CanaryUnready"),
    };
    let mut obs = canary.observe(
        kind,
        reason,
        format!("API calls of {} fail: {last_error}", canary.name()),
    );
    match review {
        Some((access, Ok(verdict))) => obs.evidence.push(access.describe(verdict)),
        Some((_, Err(why))) => obs.evidence.push(why.clone()),
        None => {}
    }
    obs
}

/// [`SignalKind::Forbidden`] from the api-canary `workload`, each confirmed
/// by a SubjectAccessReview.
pub fn watch_forbidden(client: &Client, workload: &CanaryRef) -> SignalStream {
    let client = client.clone();
    watch_unready(&client, workload)
        .and_then(move |canary| {
            let client = client.clone();
            async move {
                let access = canary.status.as_ref().ok().map(|status| {
                    let sa = canary
                        .pod
                        .spec
                        .as_ref()
                        .and_then(|s| s.service_account_name.clone())
                        .unwrap_or_else(|| "default".into());
                    let ns = canary.pod.metadata.namespace.clone().unwrap_or_default();
                    Access::of_canary(&ns, &sa, status)
                });
                let verdict = match &access {
                    Some(a) => Some(review(&client, a).await),
                    None => None,
                };
                let review = access.as_ref().zip(verdict.as_ref());
                Ok(classify_api_canary(&canary, review))
            }
        })
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn status(last_error: Option<&str>) -> CanaryStatus {
        serde_json::from_value(serde_json::json!({
            "mode": "api-canary", "ready": false, "total": 12, "ok": 9, "failed": 3,
            "last_error": last_error,
            "window": {"seconds": 10.0, "total": 10, "ok": 7, "failed": 3},
            "counters": {"forbidden": 3},
            "config": {"resource": "configmaps", "api_version": "v1", "namespace": null},
        }))
        .expect("a status")
    }

    fn canary(last_error: Option<&str>) -> UnreadyCanary {
        UnreadyCanary {
            pod: serde_json::from_value(serde_json::json!({
                "metadata": {"name": "api-canary-5f8-x", "namespace": "canaries"},
                "spec": {"serviceAccountName": "api-canary", "containers": []},
            }))
            .expect("a pod"),
            status: Ok(status(last_error)),
            since: None,
        }
    }

    const FORBIDDEN: &str = "403 Forbidden: configmaps is forbidden: User \"system:serviceaccount:canaries:api-canary\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"canaries\"";

    fn verdict(allowed: bool) -> Result<SubjectAccessReviewStatus, String> {
        Ok(SubjectAccessReviewStatus {
            allowed,
            ..SubjectAccessReviewStatus::default()
        })
    }

    #[rstest]
    #[case::confirmed(Some(FORBIDDEN), Some(verdict(false)), SignalKind::Forbidden)]
    #[case::review_failed(Some(FORBIDDEN), Some(Err("timeout".to_string())), SignalKind::Forbidden)]
    #[case::allowed_after_all(Some(FORBIDDEN), Some(verdict(true)), SignalKind::CanaryFailing)]
    #[case::other_error(
        Some("timed out after 5s"),
        Some(verdict(true)),
        SignalKind::CanaryFailing
    )]
    #[case::no_error(None, None, SignalKind::CanaryFailing)]
    fn a_403_the_api_server_confirms_is_forbidden(
        #[case] last_error: Option<&str>,
        #[case] verdict: Option<Result<SubjectAccessReviewStatus, String>>,
        #[case] kind: SignalKind,
    ) {
        let canary = canary(last_error);
        let access = Access::of_canary("canaries", "api-canary", &status(last_error));
        let obs = classify_api_canary(&canary, verdict.as_ref().map(|v| (&access, v)));
        assert_eq!(obs.kind, kind);
        assert_eq!(obs.object, "pod/api-canary-5f8-x");
    }

    #[test]
    fn the_review_asks_what_the_canary_does_as_its_service_account() {
        let access = Access::of_canary("canaries", "api-canary", &status(Some(FORBIDDEN)));
        let review = access.review().spec;
        assert_eq!(
            review.user.as_deref(),
            Some("system:serviceaccount:canaries:api-canary")
        );
        let attrs = review.resource_attributes.expect("resource attributes");
        assert_eq!(attrs.verb.as_deref(), Some("list"));
        assert_eq!(attrs.resource.as_deref(), Some("configmaps"));
        assert_eq!(attrs.group.as_deref(), Some(""));
        assert_eq!(attrs.namespace.as_deref(), Some("canaries"));
        let denied = SubjectAccessReviewStatus {
            allowed: false,
            ..SubjectAccessReviewStatus::default()
        };
        assert_eq!(
            access.describe(&denied),
            "SubjectAccessReview: system:serviceaccount:canaries:api-canary may not list configmaps in canaries (allowed=false)"
        );
    }

    #[rstest]
    #[case(BindingKind::RoleBinding, None, false)]
    #[case(BindingKind::RoleBinding, Some("canaries"), true)]
    #[case(BindingKind::ClusterRoleBinding, Some("canaries"), false)]
    #[case(BindingKind::ClusterRoleBinding, None, true)]
    fn namespaces_go_with_role_bindings_only(
        #[case] kind: BindingKind,
        #[case] namespace: Option<&str>,
        #[case] valid: bool,
    ) {
        let fault = RbacBindingDelete {
            binding: BindingRef {
                kind,
                name: "api-canary-reader".into(),
                namespace: namespace.map(|n| crate::vocab::Name::new(n).expect("a name")),
            },
            workload: CanaryRef {
                namespace: crate::vocab::Name::new("canaries").expect("a name"),
                selector: "app=api-canary".into(),
                port: 8080,
            },
        };
        assert_eq!(fault.validate().is_ok(), valid);
    }
}
