//! Detection: watch streams of cluster state turned into signals.
//!
//! Everything here is built on `kube::runtime::watcher`: breakfix reacts to
//! watch events the moment the API server sends them and never polls. Each
//! [`Observation`] carries two times: when the harness saw it, and when the
//! cluster says the condition began (event or condition timestamp), so the
//! harness's own latency is visible.

pub mod broad;
pub mod canary;
#[cfg(test)]
mod captured;
pub mod classify;
pub mod diagnose;
pub mod endpoints;
pub mod expect;
pub mod gone;
pub mod nodes;
pub mod probe;
pub mod selector;
pub mod surge;
pub mod watch;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt, stream};
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use serde::{Deserialize, Serialize};

use crate::vocab::SignalKind;

pub use classify::Finding;
pub use diagnose::{Diagnosis, corroborate, diagnose};
pub use expect::{Combine, ExpectedSignals};

/// Errors while watching for signals.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// A watch failed past its retries.
    #[error("watch failed: {}", crate::kobj::explain_watch(.0))]
    Watch(#[from] watcher::Error),
    /// No expected signal showed in time.
    #[error("no expected signal ({expected}) within {waited:?}")]
    Timeout {
        /// The signals that were expected.
        expected: String,
        /// How long the watch waited.
        waited: Duration,
    },
    /// The watch ended before any expected signal.
    #[error("the watch stream ended before any expected signal")]
    StreamEnded,
    /// The watch never finished its first list, so nothing could be judged.
    #[error("the watch did not finish listing within {waited:?}")]
    NotListed {
        /// How long it waited.
        waited: Duration,
    },
}

/// A signal seen on a specific object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Observation {
    /// The signal.
    pub kind: SignalKind,
    /// `kind/name` of the object, e.g. `pod/web-5d9c7-abcde`.
    pub object: String,
    /// The container it concerns, when it is about one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// The cluster's short reason (an event reason or a waiting reason).
    pub reason: String,
    /// The cluster's message, as it wrote it.
    pub message: String,
    /// When breakfix received the watch event.
    pub seen_at: Timestamp,
    /// When the cluster says the condition began, if it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Timestamp>,
    /// What else the cluster said about it when it was seen (a canary's
    /// `/status`, a SubjectAccessReview's verdict…), for the diagnosis.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<String>,
}

/// Which pods and events a detector looks at.
#[derive(Debug, Clone)]
pub struct Scope {
    /// The namespace watched.
    pub namespace: String,
    /// Label selector of the target's pods (`app=web`).
    pub pod_selector: Option<String>,
    /// Only events about objects whose name starts with this count.
    pub event_name_prefix: Option<String>,
    /// Events older than this are history, not signals.
    pub not_before: Timestamp,
    /// A Deployment whose rollout conditions are watched too.
    pub deployment: Option<String>,
}

impl Scope {
    /// A scope over a whole namespace, counting events from now on.
    pub fn namespace(namespace: &str) -> Self {
        Self {
            namespace: namespace.to_string(),
            pod_selector: None,
            event_name_prefix: None,
            not_before: Timestamp::now(),
            deployment: None,
        }
    }
}

/// Restart counts per (pod, container) taken at injection, so that only new
/// restarts count as [`SignalKind::Restarted`].
pub type RestartBaseline = HashMap<(String, String), i32>;

/// Takes the restart baseline for the pods in `scope`.
///
/// # Errors
///
/// The API server's error when the pods cannot be listed.
pub async fn restart_baseline(
    client: &Client,
    scope: &Scope,
) -> Result<RestartBaseline, kube::Error> {
    let api: Api<Pod> = Api::namespaced(client.clone(), &scope.namespace);
    let mut lp = kube::api::ListParams::default();
    if let Some(sel) = &scope.pod_selector {
        lp = lp.labels(sel);
    }
    let mut out = HashMap::new();
    for pod in api.list(&lp).await? {
        let name = pod.name_any();
        for cs in pod
            .status
            .iter()
            .flat_map(|s| s.container_statuses.iter().flatten())
        {
            out.insert((name.clone(), cs.name.clone()), cs.restart_count);
        }
    }
    Ok(out)
}

/// A stream of the signals on the pods, events and Deployment in `scope`,
/// re-reported on every change (combine with [`merged`] to deduplicate).
pub fn watch_pod_signals(
    client: &Client,
    scope: &Scope,
    restarts: RestartBaseline,
) -> impl Stream<Item = Result<Observation, DetectError>> + Send + 'static {
    let pods: Api<Pod> = Api::namespaced(client.clone(), &scope.namespace);
    let events: Api<Event> = Api::namespaced(client.clone(), &scope.namespace);
    let mut pod_cfg = watcher::Config::default();
    if let Some(sel) = &scope.pod_selector {
        pod_cfg = pod_cfg.labels(sel);
    }
    // Pods seen being deleted: their containers stop answering probes, and
    // the kubelet's reports of that say nothing about the probes themselves.
    let terminating = std::sync::Arc::new(std::sync::Mutex::new(HashSet::new()));
    let deleting = terminating.clone();
    let pod_stream = watch::objects(watch::events(pods, pod_cfg)).map_ok(move |pod| {
        let name = pod.name_any();
        if pod.metadata.deletion_timestamp.is_some() {
            deleting
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(name.clone());
        }
        let lookup = |c: &str| {
            Some(
                restarts
                    .get(&(name.clone(), c.to_string()))
                    .copied()
                    .unwrap_or(0),
            )
        };
        classify::pod_findings(&pod, &lookup)
            .into_iter()
            .map(|f| into_observation(f, format!("pod/{name}")))
            .collect::<Vec<_>>()
    });
    let prefix = scope.event_name_prefix.clone();
    let not_before = scope.not_before;
    let event_stream = watch::objects(watch::events(events, watcher::Config::default())).map_ok(
        move |ev: Event| {
            let about = &ev.involved_object;
            let name = about.name.clone().unwrap_or_default();
            let probe_of_dying_pod = ev.reason.as_deref() == Some("Unhealthy")
                && terminating
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .contains(&name);
            let relevant = prefix.as_ref().is_none_or(|p| name.starts_with(p.as_str()))
                && classify::event_is_new(&ev, not_before)
                && !probe_of_dying_pod;
            let kind = about.kind.clone().unwrap_or_default().to_lowercase();
            relevant
                .then(|| classify::event_finding(&ev))
                .flatten()
                .map(|f| into_observation(f, format!("{kind}/{name}")))
                .into_iter()
                .collect::<Vec<_>>()
        },
    );
    let deployment_stream = match &scope.deployment {
        Some(name) => {
            let api: Api<Deployment> = Api::namespaced(client.clone(), &scope.namespace);
            let cfg = watcher::Config::default().fields(&format!("metadata.name={name}"));
            watch::objects(watch::events(api, cfg))
                .map_ok(|d| {
                    let object = format!("deployment/{}", d.name_any());
                    classify::deployment_findings(&d)
                        .into_iter()
                        .map(|f| into_observation(f, object.clone()))
                        .collect::<Vec<_>>()
                })
                .boxed()
        }
        None => stream::empty().boxed(),
    };
    stream::select(stream::select(pod_stream, event_stream), deployment_stream)
        .map_err(DetectError::from)
        .map_ok(|batch| stream::iter(batch.into_iter().map(Ok)))
        .try_flatten()
}

/// A boxed stream of observations: what every signal source produces.
pub type SignalStream = BoxStream<'static, Result<Observation, DetectError>>;

/// Merges signal sources into one stream in which each (signal, object,
/// container) is reported once, the first time any source sees it.
pub fn merged(sources: Vec<SignalStream>) -> SignalStream {
    let mut seen = HashSet::new();
    stream::select_all(sources)
        .try_filter(move |o: &Observation| {
            let fresh = seen.insert((o.kind, o.object.clone(), o.container.clone()));
            futures::future::ready(fresh)
        })
        .boxed()
}

/// Turns a finding on `object` into an observation seen now.
pub fn into_observation(f: Finding, object: String) -> Observation {
    Observation {
        kind: f.kind,
        object,
        container: f.container,
        reason: f.reason,
        message: f.message,
        seen_at: Timestamp::now(),
        since: f.since,
        evidence: Vec::new(),
    }
}

/// Waits for the first observation whose kind is in `expected`, handing every
/// observation (expected or not) to `on_observation` as it arrives.
///
/// # Errors
///
/// As [`until_expected`].
pub async fn first_expected<S>(
    signals: S,
    expected: &[SignalKind],
    timeout: Duration,
    on_observation: impl FnMut(&Observation),
) -> Result<Observation, DetectError>
where
    S: Stream<Item = Result<Observation, DetectError>>,
{
    until_expected(
        signals,
        &ExpectedSignals::any(expected),
        timeout,
        on_observation,
    )
    .await
}

/// Waits until the observations meet `expected` (any one, all, or all in
/// order; see [`expect`]) and returns the observation that completed it,
/// handing every observation to `on_observation` as it arrives.
///
/// # Errors
///
/// [`DetectError::Timeout`] (saying what was seen of `expected`) when
/// `timeout` passes first, [`DetectError::StreamEnded`] when `signals` ends
/// first, and the first error `signals` yields.
pub async fn until_expected<S>(
    signals: S,
    expected: &ExpectedSignals,
    timeout: Duration,
    mut on_observation: impl FnMut(&Observation),
) -> Result<Observation, DetectError>
where
    S: Stream<Item = Result<Observation, DetectError>>,
{
    let mut matcher = expected.matcher();
    let wait = async {
        futures::pin_mut!(signals);
        while let Some(item) = signals.next().await {
            let obs = item?;
            on_observation(&obs);
            if matcher.see(obs.kind) {
                return Ok(obs);
            }
        }
        Err(DetectError::StreamEnded)
    };
    let result = tokio::time::timeout(timeout, wait).await;
    result.unwrap_or_else(|_| {
        let seen = matcher.seen();
        let expected = match expected.combine {
            Combine::Any => expected.describe(),
            _ if seen.is_empty() => expected.describe(),
            _ => format!(
                "{}; seen only {}",
                expected.describe(),
                seen.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        Err(DetectError::Timeout {
            expected,
            waited: timeout,
        })
    })
}
