//! The `outsideScope` stop condition: Deployments, StatefulSets and
//! DaemonSets outside every team's copy that were steady when the game day
//! started must stay steady. The first one that leaves steady state stops
//! every round.

use std::collections::{HashMap, HashSet};

use futures::{StreamExt, stream};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use tokio::sync::mpsc::UnboundedSender;

use crate::baseline::steady::{daemonset_verdict, deployment_verdict, statefulset_verdict};

/// A workload outside the teams' scope that left steady state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breach {
    pub object: String,
    pub why: String,
}

/// The verdict's words for a spec change the controller has not acted on
/// yet: transient, not damage.
const NOT_OBSERVED: &str = "not yet observed";

enum Seen {
    Listed,
    Verdict {
        key: String,
        steady: bool,
        why: String,
    },
}

fn verdicts<K>(
    client: &Client,
    kind: &'static str,
    verdict: fn(&K) -> (bool, String),
) -> futures::stream::BoxStream<'static, Seen>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let api: Api<K> = Api::all(client.clone());
    watcher(api, watcher::Config::default())
        .default_backoff()
        .filter_map(move |event| {
            let seen = match event {
                Ok(watcher::Event::InitApply(o) | watcher::Event::Apply(o)) => {
                    let (steady, why) = verdict(&o);
                    Some(Seen::Verdict {
                        key: format!(
                            "{kind}/{} -n {}",
                            o.name_any(),
                            o.namespace().unwrap_or_default()
                        ),
                        steady,
                        why,
                    })
                }
                Ok(watcher::Event::InitDone) => Some(Seen::Listed),
                _ => None,
            };
            futures::future::ready(seen)
        })
        .boxed()
}

/// Watches every workload outside `excluded` namespaces and sends the
/// first breach; returns once the watches have listed what exists (that
/// moment is the baseline) and keeps watching in a task until `tx` closes.
pub async fn watch_outside(
    client: &Client,
    excluded: Vec<String>,
    tx: UnboundedSender<Breach>,
) -> tokio::task::JoinHandle<()> {
    let streams = vec![
        verdicts::<Deployment>(client, "deployment", deployment_verdict),
        verdicts::<StatefulSet>(client, "statefulset", statefulset_verdict),
        verdicts::<DaemonSet>(client, "daemonset", daemonset_verdict),
    ];
    let expected = streams.len();
    let (armed_tx, armed_rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let mut merged = stream::select_all(streams);
        let mut listed = 0;
        let mut armed = Some(armed_tx);
        let mut steady_at_start: HashMap<String, bool> = HashMap::new();
        let mut reported = HashSet::new();
        while let Some(seen) = merged.next().await {
            match seen {
                Seen::Listed => {
                    listed += 1;
                    if listed >= expected
                        && let Some(a) = armed.take()
                    {
                        let _ = a.send(());
                    }
                }
                Seen::Verdict { key, steady, why } => {
                    if excluded
                        .iter()
                        .any(|ns| key.ends_with(&format!(" -n {ns}")))
                    {
                        continue;
                    }
                    if armed.is_some() {
                        steady_at_start.insert(key, steady);
                        continue;
                    }
                    let was_steady = *steady_at_start.entry(key.clone()).or_insert(steady);
                    if was_steady
                        && !steady
                        && !why.contains(NOT_OBSERVED)
                        && reported.insert(key.clone())
                        && tx.send(Breach { object: key, why }).is_err()
                    {
                        return;
                    }
                }
            }
        }
    });
    let _ = tokio::time::timeout(std::time::Duration::from_secs(30), armed_rx).await;
    task
}
