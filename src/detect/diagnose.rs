//! A responder's write-up of a detection: what broke, the evidence, and the
//! commands to look further (the investigation flows of the failure stories).

use serde::{Deserialize, Serialize};

use super::{Observation, SignalKind};

/// What a responder would write in the incident channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Diagnosis {
    pub summary: String,
    pub evidence: Vec<String>,
    pub next_steps: Vec<String>,
}

/// Diagnoses an observation made in `namespace`.
pub fn diagnose(obs: &Observation, namespace: &str) -> Diagnosis {
    let (kind, name) = obs
        .object
        .split_once('/')
        .unwrap_or(("pod", obs.object.as_str()));
    let container = obs
        .container
        .as_deref()
        .map(|c| format!(" container {c}"))
        .unwrap_or_default();
    let summary = match obs.kind {
        SignalKind::ErrImagePull | SignalKind::ImagePullBackOff | SignalKind::InvalidImageName => {
            format!(
                "{kind} {name}{container} cannot pull its image; check the image name and tag in the workload spec"
            )
        }
        SignalKind::CrashLoopBackOff => format!(
            "{kind} {name}{container} keeps crashing; read its previous logs and probe settings"
        ),
        SignalKind::OOMKilled => {
            format!("{kind} {name}{container} was killed for exceeding its memory limit")
        }
        SignalKind::Unready => format!(
            "{kind} {name} is running but not Ready; its readiness probe or dependencies fail"
        ),
        SignalKind::EndpointsEmpty => format!(
            "service {name} has no ready endpoints; compare its selector with the pods' labels"
        ),
        SignalKind::Forbidden => format!(
            "{kind} {name}'s API calls are refused (403); a (Cluster)RoleBinding it needs is missing"
        ),
        SignalKind::CreateContainerConfigError | SignalKind::FailedMount => {
            format!("{kind} {name} cannot start; a Secret or ConfigMap it mounts is missing")
        }
        other => format!("{kind} {name}: {}", other.describe()),
    };
    let mut evidence = vec![format!(
        "{} on {}{container}: {}",
        obs.reason,
        obs.object,
        obs.message.trim()
    )];
    if let Some(since) = obs.since {
        evidence.push(format!("cluster reports it since {since}"));
    }
    let mut next_steps = vec![
        format!("kubectl describe {kind} {name} -n {namespace}"),
        format!(
            "kubectl get events -n {namespace} --field-selector involvedObject.name={name} --sort-by=.lastTimestamp"
        ),
    ];
    match obs.kind {
        SignalKind::CrashLoopBackOff | SignalKind::OOMKilled | SignalKind::Restarted => {
            let c = obs
                .container
                .as_deref()
                .map(|c| format!(" -c {c}"))
                .unwrap_or_default();
            next_steps.push(format!("kubectl logs {name} -n {namespace}{c} --previous"));
        }
        SignalKind::ErrImagePull | SignalKind::ImagePullBackOff => {
            next_steps.push(format!("kubectl rollout history deployment -n {namespace}"));
            next_steps.push(format!(
                "kubectl rollout undo deployment/<name> -n {namespace}"
            ));
        }
        SignalKind::Forbidden => {
            next_steps.push(format!(
                "kubectl auth can-i --list --as=system:serviceaccount:{namespace}:<serviceaccount> -n {namespace}"
            ));
        }
        SignalKind::EndpointsEmpty => {
            next_steps.push(format!("kubectl get endpointslices -n {namespace} -o wide"));
        }
        _ => {}
    }
    Diagnosis {
        summary,
        evidence,
        next_steps,
    }
}
