//! A responder's write-up of a detection: what broke, the evidence, and the
//! commands to look further (the investigation flows of the failure stories).

use serde::{Deserialize, Serialize};

use super::{Observation, probe};
use crate::vocab::SignalKind;

/// What a responder would write in the incident channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Diagnosis {
    /// One line: what broke.
    pub summary: String,
    /// What in the cluster shows it.
    pub evidence: Vec<String>,
    /// What a person would run or change next.
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
    let missing = missing_reference(&obs.message);
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
            "service {name} has no ready endpoints: every request to it fails; check its pods' readiness and its selector"
        ),
        SignalKind::Forbidden => format!(
            "{kind} {name}'s API calls are refused (403); a (Cluster)RoleBinding it needs is missing"
        ),
        SignalKind::CreateContainerConfigError | SignalKind::FailedMount => match &missing {
            Some((what, missing_name)) => format!(
                "{kind} {name} cannot start: the {what} `{missing_name}` it references does not exist"
            ),
            None => {
                format!("{kind} {name} cannot start; a Secret or ConfigMap it mounts is missing")
            }
        },
        SignalKind::LivenessFailed => format!(
            "{kind} {name}{container}'s liveness probe fails, so the kubelet restarts a container that may be fine"
        ),
        SignalKind::StartupFailed => format!(
            "{kind} {name}{container} is killed before it finishes starting: its startup probe allows less time than the app needs"
        ),
        SignalKind::ReadinessFailed => format!(
            "{kind} {name}'s readiness probe fails, so it receives no traffic; if every pod fails it, the Service is down"
        ),
        SignalKind::ProbeTimeout => format!(
            "{kind} {name}'s probe times out: the app answers slower than the probe's timeoutSeconds"
        ),
        SignalKind::DnsFailures => format!(
            "DNS lookups fail inside the cluster (seen by {kind} {name}); check CoreDNS's pods, restarts and memory"
        ),
        SignalKind::PodGone => format!(
            "{kind} {name} was deleted; its controller should replace it (check who deleted it)"
        ),
        SignalKind::Restarted => format!(
            "{kind} {name}{container} restarted; read its previous logs and its liveness probe"
        ),
        SignalKind::PodSurge => format!(
            "jobs and pods are piling up in {namespace} ({kind} {name}): something creates them faster than they finish, as a CronJob with concurrencyPolicy Allow and jobs slower than its schedule does; stop it, then cap it with a ResourceQuota on pod count"
        ),
        SignalKind::QuotaExceeded => format!(
            "{kind} {name} could not create what it wanted: a ResourceQuota in {namespace} is exhausted; if a runaway (a CronJob storm) hit it, the quota is containing it as designed, otherwise the quota is too small"
        ),
        SignalKind::Unschedulable => format!(
            "{kind} {name} is Pending: no node can take it (requests larger than what is free, taints, affinity); the cluster is full or the pod asks for too much"
        ),
        SignalKind::NodeNotReady if kind == "node" => format!(
            "node {name} stopped reporting (machine or kubelet gone); its pods are evicted once their unreachable toleration runs out (300s unless set) and rescheduled where they fit"
        ),
        SignalKind::NodeNotReady => {
            format!("{kind} {name} runs on a node that is not Ready; it may be gone with the node")
        }
        SignalKind::CanaryFailing => format!(
            "canary {kind} {name} fails its checks: clients of what it calls see errors now, whatever pod status says"
        ),
        SignalKind::LatencyAbove => format!(
            "canary {kind} {name} says what it calls got slow: its recent latency is above its threshold, whether or not requests fail; look for too few replicas under load, CPU throttling, or a slow dependency"
        ),
        SignalKind::RolloutStalled => format!(
            "{kind} {name}'s rollout made no progress within its progressDeadlineSeconds: the new ReplicaSet's pods never become available (the old ones keep serving only as far as maxUnavailable allows)"
        ),
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
    if let Some(explained) = probe::explain(&obs.message) {
        evidence.push(explained);
    }
    evidence.extend(obs.evidence.iter().cloned());
    // A DNS canary only reports the outage; the steps go to CoreDNS (the
    // canary's own namespace is in the evidence).
    let mut next_steps = if obs.kind == SignalKind::DnsFailures {
        Vec::new()
    } else {
        vec![
            format!("kubectl describe {kind} {name} -n {namespace}"),
            format!(
                "kubectl get events -n {namespace} --field-selector involvedObject.name={name} --sort-by=.lastTimestamp"
            ),
        ]
    };
    let c = obs
        .container
        .as_deref()
        .map(|c| format!(" -c {c}"))
        .unwrap_or_default();
    match obs.kind {
        SignalKind::CrashLoopBackOff | SignalKind::Restarted => {
            next_steps.push(format!("kubectl logs {name} -n {namespace}{c} --previous"));
        }
        SignalKind::OOMKilled => {
            next_steps.push(format!("kubectl logs {name} -n {namespace}{c} --previous"));
            next_steps.push(format!(
                "kubectl get {kind} {name} -n {namespace} -o jsonpath='{{.spec.containers[*].resources}}'"
            ));
        }
        SignalKind::LivenessFailed
        | SignalKind::StartupFailed
        | SignalKind::ProbeTimeout
        | SignalKind::ReadinessFailed
        | SignalKind::Unready => {
            next_steps.push(format!(
                "kubectl get {kind} {name} -n {namespace} -o jsonpath='{{range .spec.containers[*]}}{{.name}}: liveness={{.livenessProbe}} readiness={{.readinessProbe}} startup={{.startupProbe}}{{\"\\n\"}}{{end}}'"
            ));
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
            next_steps.push(format!(
                "kubectl get rolebindings -n {namespace} -o wide; kubectl get clusterrolebindings -o wide"
            ));
        }
        SignalKind::EndpointsEmpty => {
            next_steps.push(format!("kubectl get endpointslices -n {namespace} -o wide"));
            next_steps.push(format!(
                "kubectl get pods -n {namespace} -o wide --show-labels"
            ));
        }
        SignalKind::CreateContainerConfigError | SignalKind::FailedMount => {
            if let Some((what, missing_name)) = &missing {
                next_steps.push(format!(
                    "kubectl get {} {missing_name} -n {namespace}",
                    what.to_lowercase()
                ));
            }
            next_steps.push(format!("kubectl rollout status deployment -n {namespace}"));
        }
        SignalKind::DnsFailures => {
            next_steps.push("kubectl get pods -n kube-system -l k8s-app=kube-dns -o wide".into());
            next_steps.push(
                "kubectl describe pods -n kube-system -l k8s-app=kube-dns | grep -A3 'Last State'"
                    .into(),
            );
            next_steps.push("kubectl logs -n kube-system -l k8s-app=kube-dns --previous".into());
        }
        SignalKind::PodGone => {
            next_steps.push(format!(
                "kubectl get events -n {namespace} --field-selector reason=Killing"
            ));
            next_steps.push(format!("kubectl get replicasets -n {namespace}"));
        }
        SignalKind::PodSurge | SignalKind::QuotaExceeded => {
            next_steps.push(format!("kubectl get cronjobs,jobs -n {namespace}"));
            next_steps.push(format!(
                "kubectl get pods -n {namespace} --field-selector=status.phase=Pending"
            ));
            next_steps.push(format!("kubectl describe resourcequota -n {namespace}"));
            next_steps.push(format!(
                "kubectl patch cronjob <name> -n {namespace} -p '{{\"spec\":{{\"suspend\":true}}}}'"
            ));
        }
        SignalKind::Unschedulable => {
            next_steps.push("kubectl describe nodes | grep -A8 'Allocated resources'".into());
            next_steps.push(format!(
                "kubectl get pods -n {namespace} --field-selector=status.phase=Pending"
            ));
        }
        SignalKind::NodeNotReady => {
            next_steps.push("kubectl get nodes -o wide".into());
            if kind == "node" {
                next_steps.push(format!(
                    "kubectl get pods -A -o wide --field-selector spec.nodeName={name}"
                ));
            }
        }
        SignalKind::CanaryFailing => {
            next_steps.push(format!("kubectl logs {name} -n {namespace} --tail=20"));
            next_steps.push(format!(
                "kubectl get services,endpointslices -n {namespace} -o wide"
            ));
        }
        SignalKind::RolloutStalled => {
            next_steps.push(format!(
                "kubectl rollout status {kind}/{name} -n {namespace}"
            ));
            next_steps.push(format!("kubectl get replicasets -n {namespace} -o wide"));
            next_steps.push(format!("kubectl rollout undo {kind}/{name} -n {namespace}"));
        }
        _ => {}
    }
    Diagnosis {
        summary,
        evidence,
        next_steps,
    }
}

/// Adds what else was seen during detection to `diagnosis`: observations on
/// the same object (a liveness failure that explains a restart), and
/// Services left without endpoints. A restart or crash loop explained by a
/// failing probe gets that cause as its summary.
pub fn corroborate(diagnosis: &mut Diagnosis, detection: &Observation, seen: &[Observation]) {
    let related = seen.iter().filter(|o| {
        (o.object == detection.object && o.kind != detection.kind)
            || (o.kind == SignalKind::EndpointsEmpty && o.object != detection.object)
    });
    let mut cause = None;
    for o in related {
        let line = format!(
            "also seen: {} on {}: {}",
            o.kind,
            o.object,
            o.message.trim()
        );
        if diagnosis.evidence.contains(&line) {
            continue;
        }
        diagnosis.evidence.push(line);
        if let Some(explained) = probe::explain(&o.message) {
            if matches!(
                o.kind,
                SignalKind::LivenessFailed | SignalKind::ProbeTimeout
            ) {
                cause.get_or_insert(explained.clone());
            }
            diagnosis.evidence.push(explained);
        }
    }
    if let Some(cause) = cause
        && matches!(
            detection.kind,
            SignalKind::Restarted | SignalKind::CrashLoopBackOff
        )
    {
        let (kind, name) = detection
            .object
            .split_once('/')
            .unwrap_or(("pod", detection.object.as_str()));
        diagnosis.summary =
            format!("{kind} {name} is restarted by the kubelet, not crashing by itself: {cause}");
    }
}

/// The Secret or ConfigMap a kubelet message says is missing, e.g.
/// `MountVolume.SetUp failed for volume "creds" : secret "app-credentials" not found`
/// → `("Secret", "app-credentials")`.
pub fn missing_reference(message: &str) -> Option<(&'static str, String)> {
    let lower = message.to_lowercase();
    let (what, at) = [
        ("Secret", "secrets \""),
        ("Secret", "secret \""),
        ("ConfigMap", "configmaps \""),
        ("ConfigMap", "configmap \""),
    ]
    .into_iter()
    .find_map(|(what, needle)| lower.find(needle).map(|i| (what, i + needle.len())))?;
    let rest = message.get(at..)?;
    let (name, tail) = rest.split_once('"')?;
    tail.trim_start()
        .starts_with("not found")
        .then(|| (what, name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn observation(kind: SignalKind, object: &str, message: &str) -> Observation {
        Observation {
            kind,
            object: object.into(),
            container: None,
            reason: "Reason".into(),
            message: message.into(),
            seen_at: jiff::Timestamp::UNIX_EPOCH,
            since: None,
            evidence: Vec::new(),
        }
    }

    #[rstest]
    #[case(
        r#"MountVolume.SetUp failed for volume "credentials" : secret "app-credentials" not found"#,
        Some(("Secret", "app-credentials"))
    )]
    #[case(
        r#"MountVolume.SetUp failed for volume "outfit-delivery-api-credentials" : secrets "outfit-delivery-api-credentials" not found"#,
        Some(("Secret", "outfit-delivery-api-credentials"))
    )]
    #[case(r#"configmap "app-settings" not found"#, Some(("ConfigMap", "app-settings")))]
    #[case(r#"couldn't find key level in ConfigMap mounts/app-settings"#, None)]
    #[case("Back-off restarting failed container", None)]
    fn the_missing_object_is_named(#[case] message: &str, #[case] want: Option<(&str, &str)>) {
        let got = missing_reference(message);
        assert_eq!(
            got.as_ref().map(|(w, n)| (*w, n.as_str())),
            want,
            "{message}"
        );
    }

    #[rstest]
    #[case::mount(
        SignalKind::FailedMount,
        r#"MountVolume.SetUp failed for volume "credentials" : secret "app-credentials" not found"#,
        "the Secret `app-credentials` it references does not exist",
        "kubectl get secret app-credentials -n mounts"
    )]
    #[case::wrong_port(
        SignalKind::LivenessFailed,
        r#"Liveness probe failed: Get "http://10.244.0.7:8081/healthz": dial tcp 10.244.0.7:8081: connect: connection refused"#,
        "liveness probe fails",
        "--previous"
    )]
    #[case::startup(
        SignalKind::StartupFailed,
        "Container api failed startup probe, will be restarted",
        "startup probe allows less time than the app needs",
        "startup={.startupProbe}"
    )]
    #[case::dns(
        SignalKind::DnsFailures,
        "DNS lookups from dns-canary-1 fail: kubernetes.default: timed out after 2s",
        "DNS lookups fail inside the cluster",
        "k8s-app=kube-dns"
    )]
    fn each_signal_gets_its_own_reading(
        #[case] kind: SignalKind,
        #[case] message: &str,
        #[case] summary_says: &str,
        #[case] next_step_says: &str,
    ) {
        let d = diagnose(&observation(kind, "pod/app-1", message), "mounts");
        assert!(d.summary.contains(summary_says), "{}", d.summary);
        assert!(
            d.next_steps.iter().any(|s| s.contains(next_step_says)),
            "{:?}",
            d.next_steps
        );
    }

    #[rstest]
    #[case::surge(
        SignalKind::PodSurge,
        "cronjob/storm",
        "CronJob with concurrencyPolicy Allow",
        "suspend"
    )]
    #[case::quota(
        SignalKind::QuotaExceeded,
        "job/storm-1-29",
        "quota is containing it",
        "describe resourcequota"
    )]
    #[case::pending(
        SignalKind::Unschedulable,
        "pod/storm-1-29-x",
        "is Pending",
        "Allocated resources"
    )]
    #[case::lost_node(
        SignalKind::NodeNotReady,
        "node/worker",
        "node worker stopped reporting",
        "spec.nodeName=worker"
    )]
    #[case::canary(
        SignalKind::CanaryFailing,
        "pod/http-canary-1",
        "clients of what it calls see errors",
        "endpointslices"
    )]
    #[case::stalled(
        SignalKind::RolloutStalled,
        "deployment/web",
        "progressDeadlineSeconds",
        "rollout undo deployment/web"
    )]
    fn storms_nodes_canaries_and_rollouts_get_their_own_reading(
        #[case] kind: SignalKind,
        #[case] object: &str,
        #[case] summary_says: &str,
        #[case] next_step_says: &str,
    ) {
        let d = diagnose(&observation(kind, object, "message"), "shop");
        assert!(d.summary.contains(summary_says), "{}", d.summary);
        assert!(
            d.next_steps.iter().any(|s| s.contains(next_step_says)),
            "{:?}",
            d.next_steps
        );
    }

    #[test]
    fn evidence_gathered_at_detection_is_kept() {
        let mut obs = observation(
            SignalKind::Forbidden,
            "pod/api-canary-1",
            "403 Forbidden: configmaps is forbidden",
        );
        obs.evidence = vec!["SubjectAccessReview: denied".into()];
        let d = diagnose(&obs, "canaries");
        assert_eq!(
            d.evidence.last().map(String::as_str),
            Some("SubjectAccessReview: denied")
        );
    }

    #[test]
    fn a_restart_explained_by_a_failing_liveness_probe_says_so() {
        let restarted = observation(SignalKind::Restarted, "pod/api-1", "restart count 0 → 1");
        let seen = vec![
            observation(
                SignalKind::LivenessFailed,
                "pod/api-1",
                r#"Liveness probe failed: Get "http://10.244.0.7:8081/healthz": dial tcp 10.244.0.7:8081: connect: connection refused"#,
            ),
            observation(
                SignalKind::LivenessFailed,
                "pod/api-2",
                "Liveness probe failed: HTTP probe failed with statuscode: 404",
            ),
            observation(
                SignalKind::EndpointsEmpty,
                "service/api",
                "service api has 2 endpoint(s), none ready",
            ),
            restarted.clone(),
        ];
        let mut d = diagnose(&restarted, "probes");
        corroborate(&mut d, &restarted, &seen);
        assert!(
            d.summary.contains("restarted by the kubelet")
                && d.summary.contains("nothing listens on the probed port"),
            "{}",
            d.summary
        );
        assert!(d.evidence.iter().any(|e| e.contains("service/api")));
        assert!(
            !d.evidence.iter().any(|e| e.contains("pod/api-2")),
            "another pod's failure is not this pod's evidence: {:?}",
            d.evidence
        );
    }

    #[test]
    fn a_restart_with_nothing_else_seen_keeps_its_own_reading() {
        let restarted = observation(SignalKind::Restarted, "pod/api-1", "restart count 0 → 1");
        let mut d = diagnose(&restarted, "probes");
        let before = d.clone();
        corroborate(&mut d, &restarted, std::slice::from_ref(&restarted));
        assert_eq!(d, before);
    }

    #[test]
    fn probe_messages_are_explained() {
        let obs = observation(
            SignalKind::ReadinessFailed,
            "pod/api-1",
            "Readiness probe failed: HTTP probe failed with statuscode: 404",
        );
        let d = diagnose(&obs, "probes");
        assert!(
            d.evidence.iter().any(|e| e.contains("path does not exist")),
            "{:?}",
            d.evidence
        );
    }
}
