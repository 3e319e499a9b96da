//! Blast radius: watches Deployments, StatefulSets and DaemonSets outside
//! the fault's target and records every one that was steady at injection and
//! left steady state before recovery. Steady means what it means for a
//! baseline ([`crate::baseline::steady`]): fully rolled out and available.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{StreamExt, stream};
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use tokio::sync::oneshot;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::baseline::steady::{daemonset_verdict, deployment_verdict, statefulset_verdict};
use crate::detect::Scope;
use crate::experiment::slo::{BlastRadiusSlo, WorkloadKind};
use crate::slo::measurement::{BlastRadiusMeasurement, Disturbance};

/// The steady-state verdict's words for a spec change the controller has
/// not acted on yet: true, but says nothing about the damage.
const NOT_OBSERVED: &str = "not yet observed";

/// How long the initial lists may take before the watch is given up.
const INIT_TIMEOUT: Duration = Duration::from_secs(30);

/// One workload's identity and the labels of its pods.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct WorkloadKey {
    /// The workload's kind.
    pub kind: WorkloadKind,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl std::fmt::Display for WorkloadKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{} -n {}",
            self.kind.to_string().to_lowercase(),
            self.name,
            self.namespace
        )
    }
}

/// What one watch event says about one workload.
#[derive(Debug, Clone)]
enum Update {
    Seen {
        key: WorkloadKey,
        steady: bool,
        why: String,
        pod_labels: BTreeMap<String, String>,
    },
    Gone(WorkloadKey),
    /// One stream finished its initial list.
    InitDone,
    Failed(String),
}

/// The history of one workload since the watch was armed.
#[derive(Debug, Clone, Default)]
pub struct WorkloadHistory {
    /// Steady when the watch was armed (`None`: appeared later).
    pub steady_at_start: Option<bool>,
    /// Whether it is steady now.
    pub steady: bool,
    /// Its pods' template labels.
    pub pod_labels: BTreeMap<String, String>,
    /// Each time it left steady state, and when it came back.
    pub disturbances: Vec<Disturbance>,
}

/// What the watch task hands back.
#[derive(Debug, Default)]
pub struct Recorded {
    /// Every workload seen, with its history.
    pub workloads: BTreeMap<WorkloadKey, WorkloadHistory>,
    /// Watch failures after the first list: the watch backs off, re-lists
    /// and goes on (see [`BlastRadiusMeasurement::watch_gaps`]).
    pub gaps: Vec<String>,
    /// Why the recording stopped early, if it did.
    pub error: Option<String>,
}

/// A running blast-radius watch; dropping it stops the watch.
pub struct BlastWatch {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<Recorded>,
    _stop_on_drop: DropGuard,
}

impl BlastWatch {
    /// Starts the watches and returns once each has listed what exists
    /// (that moment is the baseline: what is steady then must stay steady).
    pub async fn start(client: &Client, spec: &BlastRadiusSlo) -> Self {
        let streams = streams(client, spec);
        let expected_inits = streams.len();
        let workloads_filter = (!spec.all_namespaces() && !spec.workloads.is_empty()).then(|| {
            (
                spec.namespaces
                    .iter()
                    .map(|n| n.as_str().to_string())
                    .collect::<Vec<_>>(),
                spec.workloads
                    .iter()
                    .map(|w| WorkloadKey {
                        kind: w.kind,
                        namespace: w.namespace.to_string(),
                        name: w.name.to_string(),
                    })
                    .collect::<Vec<_>>(),
            )
        });
        let stop = CancellationToken::new();
        let (armed_tx, armed_rx) = oneshot::channel();
        let task = tokio::spawn(record(
            stream::select_all(streams),
            expected_inits,
            workloads_filter,
            stop.clone(),
            armed_tx,
        ));
        let _ = tokio::time::timeout(INIT_TIMEOUT, armed_rx).await;
        Self {
            _stop_on_drop: stop.clone().drop_guard(),
            stop,
            task,
        }
    }

    /// Stops watching and returns what was recorded between `from` and `to`,
    /// leaving out the fault's targets (`scopes`: one per step) and the
    /// namespaces of other experiments that ran beside this one (`others`).
    pub async fn finish(
        self,
        scopes: &[Scope],
        others: &[String],
        from: Timestamp,
        to: Timestamp,
    ) -> BlastRadiusMeasurement {
        self.stop.cancel();
        let recorded = self.task.await.unwrap_or_else(|e| Recorded {
            error: Some(format!("the blast-radius watch crashed: {e}")),
            ..Recorded::default()
        });
        summarize(recorded, scopes, others, from, to)
    }
}

/// Turns the recorded histories into the measurement (pure). Workloads in
/// `others` (namespaces another experiment of the run held during the
/// window) are not counted: what breaks there is that experiment's doing.
pub fn summarize(
    recorded: Recorded,
    scopes: &[Scope],
    others: &[String],
    from: Timestamp,
    to: Timestamp,
) -> BlastRadiusMeasurement {
    let mut m = BlastRadiusMeasurement {
        from: Some(from),
        to: Some(to),
        watch_gaps: recorded.gaps,
        error: recorded.error,
        ..BlastRadiusMeasurement::default()
    };
    for (key, history) in recorded.workloads {
        if others.contains(&key.namespace) {
            if !m.others.contains(&key.namespace) {
                m.others.push(key.namespace.clone());
            }
            continue;
        }
        if scopes
            .iter()
            .any(|s| is_target(&key, &history.pod_labels, s))
        {
            m.excluded.push(key.to_string());
            continue;
        }
        match history.steady_at_start {
            Some(true) => m.watched += 1,
            Some(false) => {
                m.unsteady_at_start.push(key.to_string());
                continue;
            }
            None => continue,
        }
        for mut d in history.disturbances {
            if d.left > to || d.back.is_some_and(|b| b < from) {
                continue;
            }
            if d.back.is_some_and(|b| b > to) {
                d.back = None;
            }
            m.affected.push(d);
        }
    }
    m.affected.sort_by_key(|d| d.left);
    m
}

/// Whether a workload is the fault's target: the Deployment the fault names,
/// a workload whose pods the fault's selector picks, or, for a fault scoped
/// to a whole namespace, anything in that namespace.
pub fn is_target(key: &WorkloadKey, pod_labels: &BTreeMap<String, String>, scope: &Scope) -> bool {
    if key.namespace != scope.namespace {
        return false;
    }
    if scope.deployment.is_none() && scope.pod_selector.is_none() {
        return true;
    }
    if key.kind == WorkloadKind::Deployment
        && scope.deployment.as_deref() == Some(key.name.as_str())
    {
        return true;
    }
    scope
        .pod_selector
        .as_deref()
        .is_some_and(|sel| selector_matches(sel, pod_labels))
}

/// Equality-based selector matching (`a=b,c!=d`), the subset scopes use.
fn selector_matches(selector: &str, labels: &BTreeMap<String, String>) -> bool {
    selector
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .all(|part| {
            if let Some((k, v)) = part.split_once("!=") {
                labels.get(k.trim()).map(String::as_str) != Some(v.trim())
            } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                labels.get(k.trim()).map(String::as_str) == Some(v.trim())
            } else {
                labels.contains_key(part)
            }
        })
}

async fn record(
    mut updates: stream::SelectAll<BoxStream<'static, Update>>,
    expected_inits: usize,
    filter: Option<(Vec<String>, Vec<WorkloadKey>)>,
    stop: CancellationToken,
    armed: oneshot::Sender<()>,
) -> Recorded {
    let mut out = Recorded::default();
    let mut inits = 0;
    let mut armed = Some(armed);
    if expected_inits == 0 {
        out.error = Some("nothing to watch".into());
        return out;
    }
    loop {
        let update = tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            u = updates.next() => match u {
                Some(u) => u,
                None => {
                    out.error.get_or_insert_with(|| "the watch streams ended".into());
                    break;
                }
            },
        };
        let now = Timestamp::now();
        match update {
            Update::InitDone => {
                inits += 1;
                if inits == expected_inits
                    && let Some(tx) = armed.take()
                {
                    for history in out.workloads.values_mut() {
                        history.steady_at_start = Some(history.steady);
                    }
                    let _ = tx.send(());
                }
            }
            // Before the first list a failure means nothing was measured;
            // after it, the watcher backs off and re-lists (an API server
            // restarting under an upgrade), which is a gap, not a failure.
            Update::Failed(e) if armed.is_none() => {
                const MAX_GAPS: usize = 20;
                let line = format!("{}: {e}", now.strftime("%H:%M:%S"));
                let repeated = out.gaps.last().is_some_and(|l| l.ends_with(e.as_str()));
                if !repeated && out.gaps.len() < MAX_GAPS {
                    out.gaps.push(line);
                }
            }
            Update::Failed(e) => {
                out.error.get_or_insert(e);
            }
            Update::Seen {
                key,
                steady,
                why,
                pod_labels,
            } => {
                if let Some((namespaces, workloads)) = &filter
                    && !namespaces.contains(&key.namespace)
                    && !workloads.contains(&key)
                {
                    continue;
                }
                let is_armed = armed.is_none();
                let history = out.workloads.entry(key.clone()).or_default();
                history.pod_labels = pod_labels;
                if is_armed && history.steady_at_start == Some(true) {
                    if history.steady && !steady {
                        history.disturbances.push(Disturbance {
                            workload: key.to_string(),
                            left: now,
                            back: None,
                            reason: why,
                        });
                    } else if let Some(last) = history.disturbances.last_mut()
                        && last.back.is_none()
                    {
                        if steady {
                            last.back = Some(now);
                        } else if last.reason.contains(NOT_OBSERVED) {
                            // The first telling state, not the controller's
                            // "not yet observed" that comes before it.
                            last.reason = why;
                        }
                    }
                }
                history.steady = steady;
            }
            Update::Gone(key) => {
                let is_armed = armed.is_none();
                if let Some(history) = out.workloads.get_mut(&key) {
                    if is_armed && history.steady_at_start == Some(true) && history.steady {
                        history.disturbances.push(Disturbance {
                            workload: key.to_string(),
                            left: now,
                            back: None,
                            reason: "deleted".into(),
                        });
                    }
                    history.steady = false;
                }
            }
        }
    }
    out
}

fn streams(client: &Client, spec: &BlastRadiusSlo) -> Vec<BoxStream<'static, Update>> {
    let mut out = Vec::new();
    let mut namespaces: Vec<Option<String>> = if spec.all_namespaces() {
        vec![None]
    } else {
        spec.namespaces
            .iter()
            .map(|n| Some(n.as_str().to_string()))
            .collect()
    };
    if !spec.all_namespaces() {
        for w in &spec.workloads {
            let ns = Some(w.namespace.to_string());
            if !namespaces.contains(&ns) {
                namespaces.push(ns);
            }
        }
    }
    for ns in namespaces {
        out.push(kind_stream::<Deployment>(
            client,
            ns.as_deref(),
            WorkloadKind::Deployment,
            deployment_verdict,
            |d| {
                d.spec
                    .as_ref()
                    .and_then(|s| s.template.metadata.as_ref())
                    .and_then(|m| m.labels.clone())
            },
        ));
        out.push(kind_stream::<StatefulSet>(
            client,
            ns.as_deref(),
            WorkloadKind::StatefulSet,
            statefulset_verdict,
            |s| {
                s.spec
                    .as_ref()
                    .and_then(|s| s.template.metadata.as_ref())
                    .and_then(|m| m.labels.clone())
            },
        ));
        out.push(kind_stream::<DaemonSet>(
            client,
            ns.as_deref(),
            WorkloadKind::DaemonSet,
            daemonset_verdict,
            |d| {
                d.spec
                    .as_ref()
                    .and_then(|s| s.template.metadata.as_ref())
                    .and_then(|m| m.labels.clone())
            },
        ));
    }
    out
}

fn kind_stream<K>(
    client: &Client,
    namespace: Option<&str>,
    kind: WorkloadKind,
    verdict: fn(&K) -> (bool, String),
    labels: fn(&K) -> Option<BTreeMap<String, String>>,
) -> BoxStream<'static, Update>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
    K::DynamicType: Default,
{
    let api: Api<K> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let key = move |obj: &K| WorkloadKey {
        kind,
        namespace: obj.namespace().unwrap_or_default(),
        name: obj.name_any(),
    };
    watcher(api, watcher::Config::default())
        .default_backoff()
        .map(move |event| match event {
            Ok(watcher::Event::Apply(obj) | watcher::Event::InitApply(obj)) => {
                let (steady, why) = verdict(&obj);
                vec![Update::Seen {
                    key: key(&obj),
                    steady,
                    why,
                    pod_labels: labels(&obj).unwrap_or_default(),
                }]
            }
            Ok(watcher::Event::Delete(obj)) => vec![Update::Gone(key(&obj))],
            Ok(watcher::Event::InitDone) => vec![Update::InitDone],
            Ok(watcher::Event::Init) => vec![],
            Err(e) => vec![Update::Failed(format!("watching {kind}s: {e}"))],
        })
        .flat_map(stream::iter)
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn key(kind: WorkloadKind, ns: &str, name: &str) -> WorkloadKey {
        WorkloadKey {
            kind,
            namespace: ns.into(),
            name: name.into(),
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn scope(ns: &str, deployment: Option<&str>, selector: Option<&str>) -> Scope {
        Scope {
            deployment: deployment.map(str::to_string),
            pod_selector: selector.map(str::to_string),
            ..Scope::namespace(ns)
        }
    }

    #[rstest]
    #[case(key(WorkloadKind::Deployment, "shop", "web"), &[], scope("shop", Some("web"), None), true)]
    #[case(key(WorkloadKind::Deployment, "shop", "api"), &[("app", "api")], scope("shop", Some("web"), Some("app=web")), false)]
    #[case(key(WorkloadKind::StatefulSet, "shop", "db"), &[("app", "web"), ("tier", "x")], scope("shop", None, Some("app=web")), true)]
    #[case(key(WorkloadKind::Deployment, "other", "web"), &[("app", "web")], scope("shop", Some("web"), Some("app=web")), false)]
    #[case(key(WorkloadKind::DaemonSet, "shop", "agent"), &[], scope("shop", None, None), true)]
    #[case(key(WorkloadKind::Deployment, "shop", "web"), &[("app", "web")], scope("shop", None, Some("app!=web")), false)]
    fn the_target_is_never_counted(
        #[case] key: WorkloadKey,
        #[case] pod_labels: &[(&str, &str)],
        #[case] scope: Scope,
        #[case] target: bool,
    ) {
        assert_eq!(is_target(&key, &labels(pod_labels), &scope), target);
    }

    fn ts(s: &str) -> Timestamp {
        format!("2026-01-01T00:00:{s}Z").parse().unwrap()
    }

    fn disturbance(workload: &str, left: &str, back: Option<&str>) -> Disturbance {
        Disturbance {
            workload: workload.into(),
            left: ts(left),
            back: back.map(ts),
            reason: "0/1 ready".into(),
        }
    }

    #[test]
    fn summarizes_what_left_steady_state_inside_the_window() {
        let mut workloads = BTreeMap::new();
        let coredns = key(WorkloadKind::Deployment, "kube-system", "coredns");
        workloads.insert(
            coredns.clone(),
            WorkloadHistory {
                steady_at_start: Some(true),
                disturbances: vec![
                    disturbance(&coredns.to_string(), "05", Some("09")),
                    disturbance(&coredns.to_string(), "50", None),
                ],
                ..WorkloadHistory::default()
            },
        );
        workloads.insert(
            key(WorkloadKind::Deployment, "shop", "web"),
            WorkloadHistory {
                steady_at_start: Some(true),
                disturbances: vec![disturbance("deployment/web -n shop", "02", None)],
                ..WorkloadHistory::default()
            },
        );
        workloads.insert(
            key(WorkloadKind::DaemonSet, "kube-system", "kindnet"),
            WorkloadHistory {
                steady_at_start: Some(false),
                ..WorkloadHistory::default()
            },
        );
        workloads.insert(
            key(WorkloadKind::StatefulSet, "kube-system", "quiet"),
            WorkloadHistory {
                steady_at_start: Some(true),
                steady: true,
                ..WorkloadHistory::default()
            },
        );
        let m = summarize(
            Recorded {
                workloads,
                gaps: Vec::new(),
                error: None,
            },
            &[scope("shop", Some("web"), None)],
            &[],
            ts("00"),
            ts("30"),
        );
        assert_eq!(m.excluded, vec!["deployment/web -n shop".to_string()]);
        assert_eq!(
            m.unsteady_at_start,
            vec!["daemonset/kindnet -n kube-system".to_string()]
        );
        assert_eq!(m.watched, 2);
        assert_eq!(
            m.affected,
            vec![disturbance(
                "deployment/coredns -n kube-system",
                "05",
                Some("09")
            )]
        );
        assert_eq!(m.affected_count(), Some(1));
    }
}
