//! Steady state: the baseline's workloads fully rolled out and available,
//! plus declared checks, judged from reflector stores fed by watches.

use std::time::Duration;

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt, stream};
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::watcher;
use kube::{Api, Client, Resource};

use super::{LoadedBaseline, SteadyCheck};
use crate::detect::watch::{self, Check as WatchCheck};

/// Errors waiting for steady state.
#[derive(Debug, thiserror::Error)]
pub enum SteadyError {
    /// Some check was still unmet when the wait ran out.
    #[error("not steady after {waited:?}: {unmet}")]
    Timeout {
        /// How long the wait lasted.
        waited: Duration,
        /// Each unmet check and why ("unmet because…").
        unmet: String,
    },
    /// A watch failed past its retries.
    #[error("watch failed: {}", crate::kobj::explain_watch(.0))]
    Watch(#[from] watcher::Error),
    /// The watches ended before the checks were met.
    #[error("the watch streams ended")]
    StreamEnded,
}

/// One thing that must hold for the baseline to be healthy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// A Deployment rolled out: every replica updated, ready and available.
    Deployment {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// A StatefulSet with every replica updated and ready.
    StatefulSet {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// A DaemonSet ready on every node it is scheduled to.
    DaemonSet {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// At least `min` ready pods match a label selector.
    PodsReady {
        /// The pods' namespace.
        namespace: String,
        /// The label selector.
        selector: String,
        /// How many must be ready.
        min: u32,
    },
    /// Every node in the cluster is Ready.
    NodesReady,
    /// At least `min` ready endpoints behind a Service.
    ServiceEndpoints {
        /// The Service's namespace.
        namespace: String,
        /// The Service's name.
        service: String,
        /// How many ready endpoints it needs.
        min: u32,
    },
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Deployment { namespace, name } => write!(f, "deployment/{name} -n {namespace}"),
            Self::StatefulSet { namespace, name } => write!(f, "statefulset/{name} -n {namespace}"),
            Self::DaemonSet { namespace, name } => write!(f, "daemonset/{name} -n {namespace}"),
            Self::PodsReady {
                namespace,
                selector,
                min,
            } => {
                write!(f, "{min}+ ready pods -l {selector} -n {namespace}")
            }
            Self::NodesReady => write!(f, "all nodes Ready"),
            Self::ServiceEndpoints {
                namespace,
                service,
                min,
            } => write!(
                f,
                "{min}+ ready endpoints behind service/{service} -n {namespace}"
            ),
        }
    }
}

/// The set of checks that make up a baseline's steady state.
#[derive(Debug, Clone)]
pub struct SteadyState {
    /// The checks that must all hold.
    pub checks: Vec<Check>,
}

type Verdict = (bool, String);

impl SteadyState {
    /// Every workload in the baseline's manifests, plus its declared checks.
    pub fn for_baseline(baseline: &LoadedBaseline) -> Self {
        let default_ns = baseline.spec.namespace.to_string();
        let mut checks = Vec::new();
        for obj in &baseline.objects {
            let Some(types) = &obj.types else { continue };
            let namespace = obj
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| default_ns.clone());
            let name = obj.metadata.name.clone().unwrap_or_default();
            match (types.api_version.as_str(), types.kind.as_str()) {
                ("apps/v1", "Deployment") => checks.push(Check::Deployment { namespace, name }),
                ("apps/v1", "StatefulSet") => checks.push(Check::StatefulSet { namespace, name }),
                ("apps/v1", "DaemonSet") => checks.push(Check::DaemonSet { namespace, name }),
                _ => {}
            }
        }
        for check in &baseline.spec.steady_state.checks {
            match check {
                SteadyCheck::NodesReady => checks.push(Check::NodesReady),
                SteadyCheck::ServiceEndpoints(e) => checks.push(Check::ServiceEndpoints {
                    namespace: e
                        .namespace
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_else(|| default_ns.clone()),
                    service: e.service.to_string(),
                    min: e.min,
                }),
                SteadyCheck::Deployment(d) => checks.push(Check::Deployment {
                    namespace: d.namespace.to_string(),
                    name: d.name.to_string(),
                }),
                SteadyCheck::PodsReady(p) => checks.push(Check::PodsReady {
                    namespace: p
                        .namespace
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_else(|| default_ns.clone()),
                    selector: p.selector.clone(),
                    min: p.min,
                }),
            }
        }
        Self { checks }
    }

    /// Waits until every check holds at once; returns when that happened.
    pub async fn wait_steady(
        &self,
        client: &Client,
        timeout: Duration,
    ) -> Result<Timestamp, SteadyError> {
        self.wait_stable(client, Duration::ZERO, timeout).await
    }

    /// Waits until every check holds and keeps holding for `settle`; returns
    /// the moment that stable stretch began.
    pub async fn wait_stable(
        &self,
        client: &Client,
        settle: Duration,
        timeout: Duration,
    ) -> Result<Timestamp, SteadyError> {
        let mut verdicts: Vec<watch::Verdict> = self
            .checks
            .iter()
            .map(|c| watch::Verdict::unmet(format!("{c}: not seen yet")))
            .collect();
        if self.checks.is_empty() {
            return Ok(Timestamp::now());
        }
        let streams = self.checks.iter().enumerate().map(|(i, c)| {
            check_stream(client, c)
                .map(move |v| v.map(|v| (i, v)))
                .boxed()
        });
        let mut merged = stream::select_all(streams);
        let deadline = tokio::time::Instant::now() + timeout;
        let mut steady_since: Option<(Timestamp, tokio::time::Instant)> = None;
        loop {
            let settle_at = steady_since.map(|(_, at)| at + settle);
            let wake = settle_at.map_or(deadline, |s| s.min(deadline));
            tokio::select! {
                item = merged.next() => {
                    let (i, v) = item.ok_or(SteadyError::StreamEnded)??;
                    verdicts[i] = v;
                    let all_ok = verdicts.iter().all(|v| v.met);
                    match (all_ok, steady_since) {
                        (true, None) => steady_since = Some((Timestamp::now(), tokio::time::Instant::now())),
                        (false, Some(_)) => steady_since = None,
                        _ => {}
                    }
                    if settle.is_zero()
                        && let Some((at, _)) = steady_since {
                            return Ok(at);
                        }
                }
                _ = tokio::time::sleep_until(wake) => {
                    if let (Some((at, _)), Some(s)) = (steady_since, settle_at)
                        && tokio::time::Instant::now() >= s {
                            return Ok(at);
                        }
                    if tokio::time::Instant::now() >= deadline {
                        let unmet = verdicts
                            .iter()
                            .filter(|v| !v.met)
                            .map(|v| v.why.as_str())
                            .collect::<Vec<_>>()
                            .join("; ");
                        return Err(SteadyError::Timeout {
                            waited: timeout,
                            unmet: if unmet.is_empty() { format!("steady, but not for {settle:?}") } else { unmet },
                        });
                    }
                }
            }
        }
    }
}

impl SteadyState {
    /// The overall verdict on every watch event: whether every check holds
    /// at once, and the checks that do not. For callers that need more than
    /// [`Self::wait_stable`], such as a game day waiting for steady state to
    /// break and then come back by a team's hand.
    pub fn watch(
        &self,
        client: &Client,
    ) -> futures::stream::BoxStream<'static, Result<(bool, String), SteadyError>> {
        if self.checks.is_empty() {
            return stream::once(async { Ok((true, String::new())) })
                .chain(stream::pending())
                .boxed();
        }
        let mut verdicts: Vec<watch::Verdict> = self
            .checks
            .iter()
            .map(|c| watch::Verdict::unmet(format!("{c}: not seen yet")))
            .collect();
        let streams = self.checks.iter().enumerate().map(|(i, c)| {
            check_stream(client, c)
                .map(move |v| v.map(|v| (i, v)))
                .boxed()
        });
        stream::select_all(streams)
            .map(move |item| {
                let (i, v) = item?;
                verdicts[i] = v;
                let unmet: Vec<&str> = verdicts
                    .iter()
                    .filter(|v| !v.met)
                    .map(|v| v.why.as_str())
                    .collect();
                Ok((unmet.is_empty(), unmet.join("; ")))
            })
            .boxed()
    }
}

/// A stream of the check's verdict, judged on every complete view of its
/// watch (never mid-list: see [`crate::detect::watch`]).
fn check_stream(
    client: &Client,
    check: &Check,
) -> futures::stream::BoxStream<'static, Result<watch::Verdict, SteadyError>> {
    let label = check.to_string();
    let verdicts = match check.clone() {
        Check::Deployment { namespace, name } => watch::judged(
            by_name::<Deployment>(client, &namespace, &name),
            watch::named(|d| deployment_verdict(d).into()).labelled(label),
        ),
        Check::StatefulSet { namespace, name } => watch::judged(
            by_name::<StatefulSet>(client, &namespace, &name),
            watch::named(|s| statefulset_verdict(s).into()).labelled(label),
        ),
        Check::DaemonSet { namespace, name } => watch::judged(
            by_name::<DaemonSet>(client, &namespace, &name),
            watch::named(|d| daemonset_verdict(d).into()).labelled(label),
        ),
        Check::PodsReady {
            namespace,
            selector,
            min,
        } => {
            let api: Api<Pod> = Api::namespaced(client.clone(), &namespace);
            let ready = move |pods: &[Arc<Pod>]| {
                let ready = pods.iter().filter(|p| pod_ready(p)).count() as u32;
                watch::Verdict::from((ready >= min, format!("{ready} ready")))
            };
            watch::judged(
                watch::events(api, watcher::Config::default().labels(&selector)),
                WatchCheck::labelled(ready, label),
            )
        }
        Check::ServiceEndpoints {
            namespace,
            service,
            min,
        } => {
            let api: Api<EndpointSlice> = Api::namespaced(client.clone(), &namespace);
            let cfg = watcher::Config::default().labels(&format!(
                "{}={service}",
                crate::detect::endpoints::SERVICE_NAME_LABEL
            ));
            let ready = move |view: &[Arc<EndpointSlice>]| {
                let slices: Vec<EndpointSlice> = view.iter().map(|s| (**s).clone()).collect();
                let ready = crate::detect::endpoints::ready_endpoints(&slices) as u32;
                watch::Verdict::from((ready >= min, format!("{ready} ready")))
            };
            watch::judged(watch::events(api, cfg), WatchCheck::labelled(ready, label))
        }
        Check::NodesReady => {
            let api: Api<Node> = Api::all(client.clone());
            let all_ready = |nodes: &[Arc<Node>]| {
                let ready = nodes.iter().filter(|n| node_ready(n)).count();
                watch::Verdict::from((
                    !nodes.is_empty() && ready == nodes.len(),
                    format!("{ready}/{} ready", nodes.len()),
                ))
            };
            watch::judged(
                watch::events(api, watcher::Config::default()),
                WatchCheck::labelled(all_ready, label),
            )
        }
    };
    verdicts.map_err(SteadyError::from).boxed()
}

/// Whether a node's Ready condition is True.
pub fn node_ready(n: &Node) -> bool {
    n.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The events of a watch on the one object `name` in `namespace`.
fn by_name<K>(client: &Client, namespace: &str, name: &str) -> watch::Events<K>
where
    K: watch::Watched + Resource<Scope = k8s_openapi::NamespaceResourceScope>,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    watch::events(
        api,
        watcher::Config::default().fields(&format!("metadata.name={name}")),
    )
}

/// A Deployment is steady when its latest spec is observed and every replica
/// is updated, ready and available, with no old pods left.
pub fn deployment_verdict(d: &Deployment) -> Verdict {
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let Some(st) = &d.status else {
        return (false, "no status yet".into());
    };
    let generation = d.metadata.generation.unwrap_or(0);
    if st.observed_generation.unwrap_or(0) < generation {
        return (false, "spec change not yet observed".into());
    }
    let (total, updated, ready, available) = (
        st.replicas.unwrap_or(0),
        st.updated_replicas.unwrap_or(0),
        st.ready_replicas.unwrap_or(0),
        st.available_replicas.unwrap_or(0),
    );
    let ok = total == want && updated == want && ready == want && available == want;
    (
        ok,
        format!("{ready}/{want} ready, {updated} updated, {available} available, {total} total"),
    )
}

/// A StatefulSet is steady when every replica is ready on the current revision.
pub fn statefulset_verdict(s: &StatefulSet) -> Verdict {
    let want = s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let Some(st) = &s.status else {
        return (false, "no status yet".into());
    };
    let ready = st.ready_replicas.unwrap_or(0);
    let current = st.current_revision.is_some() && st.current_revision == st.update_revision;
    (ready == want && current, format!("{ready}/{want} ready"))
}

/// A DaemonSet is steady when every scheduled pod is updated and ready.
pub fn daemonset_verdict(d: &DaemonSet) -> Verdict {
    let Some(st) = &d.status else {
        return (false, "no status yet".into());
    };
    let want = st.desired_number_scheduled;
    let ok =
        st.number_ready == want && st.updated_number_scheduled.unwrap_or(0) == want && want > 0;
    (ok, format!("{}/{want} ready", st.number_ready))
}

/// Whether a pod's Ready condition is True.
pub fn pod_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}
